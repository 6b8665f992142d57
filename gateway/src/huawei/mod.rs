//! Huawei Cloud's wire format: calls signed with AK/SK `SDK-HMAC-SHA256`
//! ([`call`], parsed and verified the same way by the gateway's inbound
//! side and by the simulated BSS), outbound signing ([`outbound`]), the
//! error envelope ([`envelope`]) and partner re-pricing of rating answers
//! ([`pricing`]). The request path for Huawei calls is `proxy::huawei`;
//! calls are classified by [`crate::catalog::Catalog::huawei`].

pub mod call;
pub mod envelope;
pub mod keys;
pub mod outbound;
pub mod pricing;
