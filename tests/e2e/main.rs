//! End-to-end tests: real `tollgate sim` and `tollgate serve` processes on
//! ephemeral ports, called the way customers and frontends call them.
//! One binary, a module per feature.

mod support;

mod alibaba;
mod attacks;
mod budget;
mod huawei;
mod huawei_reconcile;
mod ops;
mod permissions;
mod pricing;
mod refusals;
mod reload;
mod sdk_python;
