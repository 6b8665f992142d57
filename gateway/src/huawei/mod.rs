//! Huawei Cloud's wire format. For now: the error envelope, so refusals
//! (permission codes today) already have their Huawei shape; the Huawei
//! provider routes calls through [`crate::catalog::Catalog::huawei`] and
//! answers errors with [`envelope::error_response`].

pub mod envelope;
