//! Step: re-sign. Strip everything the customer's signature and identity put
//! on the call, name the customer in `OwnerId`, and sign with the partner's
//! AccessKey.
//!
//! Invariants: no customer credential field (AccessKeyId, Signature*,
//! Timestamp, SecurityToken, Authorization and `x-acs-*` headers) and no
//! caller-chosen owner field reaches the provider; `OwnerId` is always the
//! authenticated customer's UID.

use http::Request;
use tollgate_sign::aliyun_rpc::SIGNATURE_PARAMS;

use crate::Body;
use crate::aliyun::outbound::{Freshness, OutboundParts, SigningKey};
use crate::aliyun::{AliyunCall, OWNER_PARAMS};
use crate::config::OutboundScheme;

/// Parameters a caller may send that are about *its* signature or session,
/// never forwarded.
const CALLER_ONLY: [&str; 2] = ["SecurityToken", "BearerToken"];

fn is_business(name: &str) -> bool {
    !SIGNATURE_PARAMS.contains(&name)
        && !OWNER_PARAMS.contains(&name)
        && !CALLER_ONLY.contains(&name)
}

/// The call as the provider will see it, before signing: the business
/// parameters, borrowed from the parsed call (not copied), and `OwnerId`
/// set to the customer.
pub fn outbound_parts<'a>(call: &'a AliyunCall, owner_uid: &'a str) -> OutboundParts<'a> {
    let business = |params: &'a [(String, String)]| {
        params
            .iter()
            .filter(|(k, _)| is_business(k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
    };
    let mut query: Vec<(&str, &str)> = business(&call.query).collect();
    query.push(("OwnerId", owner_uid));
    OutboundParts {
        method: &call.method,
        action: &call.action,
        version: &call.version,
        query,
        form: business(&call.form).collect(),
    }
}

/// The signed upstream request: [`outbound_parts`] signed with the
/// partner's key.
pub fn resign(
    call: &AliyunCall,
    owner_uid: &str,
    scheme: OutboundScheme,
    authority: &str,
    partner: SigningKey<'_>,
    fresh: &Freshness,
) -> Request<Body> {
    outbound_parts(call, owner_uid).sign(scheme, authority, partner, fresh)
}

#[cfg(test)]
mod tests;
