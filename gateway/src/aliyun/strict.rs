//! What the gateway refuses of a parsed Alibaba call before it trusts any
//! of it: the ways one request can say two things.
//!
//! A provider reads a request with its own parser. If the request names a
//! parameter twice (repeated, split between the query and the form body,
//! or in another letter case), or sends a security-relevant header twice,
//! the gateway and the provider may each read a different copy: the
//! gateway would price, authorize or verify one request and the provider
//! act on another. So the gateway refuses every such request outright,
//! in linear time, before authentication (a refusal here costs no key
//! lookup and consumes no nonce):
//!
//! * more than [`MAX_PARAMS`] parameters, or a name longer than
//!   [`MAX_NAME_LEN`] or with a character no Alibaba parameter name has
//!   (letters, digits, `.`, `_`, `-`): no whitespace, no control bytes;
//! * the same name twice, compared case-insensitively, across query and
//!   form body together;
//! * a reserved name (signature, owner, credential fields) in any spelling
//!   but its own, e.g. `ownerid`, `OwnerID`, `securitytoken`;
//! * `Host`, `Content-Type`, `Authorization` or any `x-acs-*` header twice,
//!   and, for V3, any signed header twice;
//! * a V3 signature that does not sign every header that decides what the
//!   call is ([`V3_REQUIRED_SIGNED`]).
//!
//! The simulated cloud does not run these checks: like the real provider,
//! it reads the first copy, which is what lets the attack tests show that
//! nothing two-faced ever reaches it.

use std::collections::HashSet;

use http::{HeaderMap, StatusCode};

use super::{AliyunCall, Credential};
use crate::error::{Error, Result};

/// Most parameters one call may carry (query and form together). The
/// largest legitimate calls (ECS `RunInstances` with 16 data disks, 20 tags
/// and network interfaces) stay under 500; the cap keeps the per-request
/// work bounded whatever a client sends.
pub const MAX_PARAMS: usize = 1_000;

/// Longest parameter name. Alibaba's longest flattened names
/// (`NetworkInterface.N.SecurityGroupIds.M`, `PrivateDnsNameOptions.…`) are
/// under 64 characters.
pub const MAX_NAME_LEN: usize = 128;

/// Names outside [`super::call_and_owner_params`] that
/// also decide what or where a call is, in their one accepted spelling.
pub const ALSO_RESERVED: [&str; 2] = ["RegionId", "ClientToken"];

/// The one accepted spelling of a reserved name (identity, signature,
/// ownership, region, idempotency token) that `name` spells in another
/// case, if it does: such a name is refused, so no provider can read an
/// owner or credential the gateway did not see.
fn respelled(name: &str) -> Option<&'static str> {
    super::call_and_owner_params()
        .chain(ALSO_RESERVED)
        .find(|r| r.eq_ignore_ascii_case(name) && *r != name)
}

/// Headers a V3 signature must cover: what the call is (`x-acs-action`,
/// `x-acs-version`), where it goes (`host`), when and once
/// (`x-acs-date`, `x-acs-signature-nonce`) and what it carries
/// (`x-acs-content-sha256`). The official SDKs sign all of them.
pub const V3_REQUIRED_SIGNED: [&str; 6] = [
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
];

fn refuse(code: &'static str, message: String, reason: &'static str) -> Error {
    Error::customer(StatusCode::BAD_REQUEST, code, message, reason)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Refuses a call whose parameters can be read two ways (see the module
/// docs). Linear in the number of parameters.
pub fn check_params(call: &AliyunCall) -> Result<()> {
    let count = call.query.len() + call.form.len();
    if count > MAX_PARAMS {
        return Err(refuse(
            "InvalidParameter",
            format!("The request carries {count} parameters; at most {MAX_PARAMS} are accepted."),
            "too_many_parameters",
        ));
    }
    let mut seen: HashSet<Caseless<'_>> = HashSet::with_capacity(count);
    for (name, _) in call.query.iter().chain(call.form.iter()) {
        if !valid_name(name) {
            return Err(refuse(
                "InvalidParameter",
                format!(
                    "The parameter name \"{}\" is not valid (letters, digits, '.', '_' and '-', at most {MAX_NAME_LEN}).",
                    printable(name)
                ),
                "parameter_name",
            ));
        }
        if let Some(canonical) = respelled(name) {
            return Err(refuse(
                "InvalidParameter",
                format!("The parameter \"{name}\" must be spelled \"{canonical}\"."),
                "parameter_spelling",
            ));
        }
        if !seen.insert(Caseless(name)) {
            return Err(refuse(
                "InvalidParameter.Duplicate",
                format!(
                    "The parameter \"{name}\" is given more than once (query and body count together, letter case ignored)."
                ),
                "duplicate_parameter",
            ));
        }
    }
    Ok(())
}

/// A parameter name compared and hashed without regard to ASCII case
/// (names are ASCII by then: `valid_name`), so the duplicate check
/// allocates nothing per parameter.
#[derive(Debug, Clone, Copy)]
struct Caseless<'a>(&'a str);

impl PartialEq for Caseless<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(other.0)
    }
}

impl Eq for Caseless<'_> {}

impl std::hash::Hash for Caseless<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
        state.write_usize(self.0.len());
    }
}

/// A name as it may be echoed: control bytes and non-ASCII escaped, cut.
fn printable(name: &str) -> String {
    name.chars()
        .take(64)
        .flat_map(char::escape_default)
        .collect()
}

/// Refuses duplicated security-relevant headers and V3 signatures that do
/// not cover [`V3_REQUIRED_SIGNED`].
pub fn check_headers(call: &AliyunCall, headers: &HeaderMap) -> Result<()> {
    let once = |name: &str| -> Result<()> {
        if headers.get_all(name).iter().nth(1).is_some() {
            return Err(refuse(
                "InvalidParameter.Duplicate",
                format!("The header \"{name}\" is given more than once."),
                "duplicate_header",
            ));
        }
        Ok(())
    };
    for name in ["host", "content-type", "authorization"] {
        once(name)?;
    }
    for name in headers.keys() {
        if name.as_str().starts_with("x-acs-") {
            once(name.as_str())?;
        }
    }
    if let Credential::V3 { authorization, .. } = &call.credential {
        for name in &authorization.signed_headers {
            once(name)?;
        }
        if let Some(missing) = V3_REQUIRED_SIGNED
            .iter()
            .find(|h| !authorization.signed_headers.iter().any(|s| s == *h))
        {
            return Err(refuse(
                "IncompleteSignature",
                format!(
                    "The request signature does not conform to Aliyun standards: SignedHeaders must include \"{missing}\"."
                ),
                "signature",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
