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
use crate::aliyun::outbound::{Freshness, OutboundCall, OutboundParts, SigningKey};
use crate::aliyun::{AliyunCall, OWNER_PARAMS};
use crate::config::OutboundScheme;

/// Parameters a caller may send that are about *its* signature or session,
/// never forwarded.
const CALLER_ONLY: [&str; 1] = ["SecurityToken"];

fn is_business(name: &str) -> bool {
    !SIGNATURE_PARAMS.contains(&name)
        && !OWNER_PARAMS.contains(&name)
        && !CALLER_ONLY.contains(&name)
}

/// The call as the provider will see it, before signing.
pub fn outbound_call(call: &AliyunCall, owner_uid: &str) -> OutboundCall {
    let mut query: Vec<(String, String)> = call
        .query
        .iter()
        .filter(|(k, _)| is_business(k))
        .cloned()
        .collect();
    let form: Vec<(String, String)> = call
        .form
        .iter()
        .filter(|(k, _)| is_business(k))
        .cloned()
        .collect();
    query.push(("OwnerId".to_owned(), owner_uid.to_owned()));
    OutboundCall {
        method: call.method.clone(),
        action: call.action.clone(),
        version: call.version.clone(),
        query,
        form,
    }
}

/// The signed upstream request: [`outbound_call`]'s parameters, borrowed
/// from the parsed call rather than copied, signed with the partner's key.
pub fn resign(
    call: &AliyunCall,
    owner_uid: &str,
    scheme: OutboundScheme,
    authority: &str,
    partner: SigningKey<'_>,
    fresh: &Freshness,
) -> Request<Body> {
    let mut query: Vec<(&str, &str)> = call
        .query
        .iter()
        .filter(|(k, _)| is_business(k))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    query.push(("OwnerId", owner_uid));
    OutboundParts {
        method: &call.method,
        action: &call.action,
        version: &call.version,
        query,
        form: call
            .form
            .iter()
            .filter(|(k, _)| is_business(k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect(),
    }
    .sign(scheme, authority, partner, fresh)
}

#[cfg(test)]
mod tests;
