//! Tollgate: a reverse-proxy gateway for cloud resellers.
//!
//! A customer's signed Alibaba Cloud call comes in; Tollgate authenticates it
//! with the key the partner issued, refuses what the customer may not do,
//! re-signs it with the partner's AccessKey naming the customer in `OwnerId`,
//! forwards it, and passes the answer back. The provider only ever sees the
//! partner's key; the customer never sees it.
//!
//! The request path, one module per step (see `ARCHITECTURE.md`):
//!
//! | step | module |
//! |---|---|
//! | listen, limits, shutdown | [`server`] |
//! | parse the provider's wire format | [`aliyun`], [`huawei`] (Huawei calls take their own phases: `proxy/huawei.rs`) |
//! | authenticate (signature, window, nonce, key → customer, OwnerId) | [`auth`] |
//! | classify (what the API is: kind, permission codes) | [`catalog`] |
//! | authorize (customer policies, IAM 1.1 syntax) | [`authz`] |
//! | classify (product and upstream) | [`upstream::Routes`] |
//! | partner pricing (Wasm modules: price, bundle, admit) | [`pricing`] |
//! | re-sign with the partner's key | [`resign`] |
//! | reserve / settle purchases against budgets | [`ledger`] |
//! | forward with pooling and timeouts | [`upstream`] |
//! | the phases, in order, with a per-request context | [`proxy`] |
//! | errors → provider format (one place per provider) | [`aliyun::envelope`], [`huawei::envelope`] |
//!
//! Plus [`sim`], the simulated cloud (Alibaba BSS and ECS, Huawei BSS) every
//! test and the demo run against.
//!
//! Guarantees this crate keeps (and its tests check):
//! * a customer can never act as another customer: `OwnerId` is always set by
//!   Tollgate, and a caller-supplied one is refused unless the key is a
//!   frontend key allowed to act for that customer;
//! * the customer's credentials never reach the provider, and no secret
//!   (partner or customer) appears in a log line, an error or a metric.

pub mod admin;
pub mod aliyun;
pub mod auth;
pub mod authz;
pub mod catalog;
pub mod cli;
pub mod client;
pub mod config;
pub mod diagnostic;
pub mod error;
pub mod huawei;
pub mod ledger;
pub mod metrics;
pub mod pricing;
pub mod proxy;
pub mod reload;
pub mod resign;
pub mod secret;
pub mod server;
pub mod sim;
pub mod telemetry;
pub mod upstream;

/// The response body type everywhere: answers are complete (and small) by the
/// time they are sent, because re-pricing needs the whole upstream body.
pub type Body = http_body_util::Full<bytes::Bytes>;
