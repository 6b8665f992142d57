//! Alibaba Cloud's wire format: how an RPC call looks on HTTP, how it is
//! authenticated, and how answers and errors are shaped.
//!
//! Shared by the gateway (customers' calls in, partner calls out) and the
//! simulated cloud (partner calls in), so both read requests the same way.

pub mod call;
pub mod envelope;
pub mod outbound;
pub mod provider;
pub mod purchase;
pub mod strict;

pub use call::{AliyunCall, Credential};

/// Parameters that scope a call to an account. Tollgate sets `OwnerId`
/// itself; the others are refused from callers (see `auth::owner`).
pub const OWNER_PARAMS: [&str; 4] = [
    "OwnerId",
    "OwnerAccount",
    "ResourceOwnerId",
    "ResourceOwnerAccount",
];

/// Parameters about the call itself rather than what it does, besides the
/// signature's own (`tollgate_sign::aliyun_rpc::SIGNATURE_PARAMS`): its
/// name, its answer format and the caller's session credentials. Like the
/// signature parameters they are not business (not priced, not part of a
/// purchase's fingerprint), and the caller's values are never forwarded
/// as given.
pub const CALL_PARAMS: [&str; 5] = [
    "Action",
    "Version",
    "Format",
    "SecurityToken",
    "BearerToken",
];

/// Every call, signature and owner parameter name (see [`CALL_PARAMS`],
/// [`OWNER_PARAMS`]).
pub fn call_and_owner_params() -> impl Iterator<Item = &'static str> {
    tollgate_sign::aliyun_rpc::SIGNATURE_PARAMS
        .into_iter()
        .chain(CALL_PARAMS)
        .chain(OWNER_PARAMS)
}

/// Whether `name` is a call, signature or owner parameter: everything
/// else a call carries is business.
pub fn is_call_or_owner_param(name: &str) -> bool {
    call_and_owner_params().any(|p| p == name)
}

/// Formats a UTC time as Alibaba's `yyyy-MM-ddTHH:mm:ssZ`.
pub fn format_timestamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Parses Alibaba's ISO 8601 UTC timestamp (`2018-01-18T10:57:00Z`, also with
/// fractional seconds, as some SDKs send).
pub fn parse_timestamp(s: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
}

/// A fresh request id in Alibaba's upper-case UUID form.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4()
        .hyphenated()
        .to_string()
        .to_ascii_uppercase()
}

#[cfg(test)]
mod tests;
