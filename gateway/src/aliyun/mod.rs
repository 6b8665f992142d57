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
