//! One Huawei Cloud API call as it arrives on HTTP, with its AK/SK
//! `SDK-HMAC-SHA256` signature material (reference: huawei-bss.md §1).
//!
//! Parsing never looks up keys; [`HuaweiCall::verify`] checks the signature
//! with the secret the caller resolved from [`HuaweiCall::access_key_id`].
//! The gateway's inbound side and the simulated Huawei BSS use this same
//! parser, so both refuse the same requests.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use time::OffsetDateTime;
use time::macros::format_description;
use tollgate_sign::huawei;

use crate::error::Error;

/// APIG's code for every AK/SK authentication failure (wrong signature,
/// unknown AK, missing or stale `X-Sdk-Date`), HTTP 401.
pub const APIG_AUTH_FAILED: &str = "APIG.0301";
/// APIG's code for a path no API is published at, HTTP 404.
pub const APIG_NO_API: &str = "APIG.0101";

/// Huawei APIG accepts a signature whose `X-Sdk-Date` is within 15 minutes
/// of its clock, either way; the SDKs rely on that window, so the gateway
/// and the sim use the same.
pub const SDK_DATE_WINDOW_SECS: i64 = 15 * 60;

/// A parsed, not yet authenticated, Huawei call.
#[derive(Debug, Clone)]
pub struct HuaweiCall {
    /// HTTP method.
    pub method: Method,
    /// The path as sent (still percent-encoded).
    pub raw_path: String,
    /// The decoded path.
    pub path: String,
    /// The query string as sent (no `?`), forwarded byte for byte.
    pub raw_query: String,
    /// Decoded query parameters, in wire order.
    pub query: Vec<(String, String)>,
    /// Headers as `(lower-case name, value)`, in wire order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Bytes,
    /// `Host` as sent (with port): the signature covers it.
    pub host: String,
    /// The parsed `Authorization` header.
    pub authorization: huawei::Authorization,
    /// `X-Sdk-Date`, as sent.
    pub sdk_date: String,
}

/// An APIG authentication refusal (401 `APIG.0301`).
pub fn auth_failed(why: impl std::fmt::Display) -> Error {
    Error::customer(
        StatusCode::UNAUTHORIZED,
        APIG_AUTH_FAILED,
        format!("Incorrect IAM authentication information: {why}"),
        "signature",
    )
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether `path` belongs to Huawei's BSS API family (`/v1.0/`, `/v2/`,
/// `/v3/`, `/v4/`): Alibaba's RPC and V3 calls always use `/`.
pub fn is_huawei_path(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    matches!(first, "v1.0" | "v2" | "v3" | "v4") && path.starts_with('/')
}

/// Parses `YYYYMMDDTHHMMSSZ`.
pub fn parse_sdk_date(s: &str) -> Option<OffsetDateTime> {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

/// Formats `t` as `YYYYMMDDTHHMMSSZ`.
pub fn format_sdk_date(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    t.format(fmt).unwrap_or_default()
}

impl HuaweiCall {
    /// Reads the signature material. Fails (`APIG.0301`, 401) when the
    /// `Authorization` or `X-Sdk-Date` header is missing or malformed.
    pub fn parse(parts: &http::request::Parts, body: Bytes) -> Result<Self, Error> {
        let raw_path = parts.uri.path().to_owned();
        let path = tollgate_sign::encode::percent_decode(&raw_path);
        let raw_query = parts.uri.query().unwrap_or("").to_owned();
        let query = form_urlencoded_pairs(&raw_query);
        let mut headers = Vec::with_capacity(parts.headers.len());
        for (name, value) in &parts.headers {
            let Ok(v) = value.to_str() else {
                return Err(auth_failed(format_args!(
                    "header {name} is not visible ASCII"
                )));
            };
            headers.push((name.as_str().to_owned(), v.to_owned()));
        }
        let host = header_str(&parts.headers, "host")
            .map(str::to_owned)
            .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()))
            .unwrap_or_default();
        if !headers.iter().any(|(n, _)| n == "host") && !host.is_empty() {
            headers.push(("host".to_owned(), host.clone()));
        }
        let Some(auth_value) = header_str(&parts.headers, "authorization") else {
            return Err(auth_failed("Authorization header not found"));
        };
        let authorization = huawei::Authorization::parse(auth_value)
            .ok_or_else(|| auth_failed("the Authorization header is not SDK-HMAC-SHA256"))?;
        let sdk_date = header_str(&parts.headers, huawei::DATE_HEADER)
            .map(str::to_owned)
            .ok_or_else(|| auth_failed("X-Sdk-Date header not found"))?;
        if parse_sdk_date(&sdk_date).is_none() {
            return Err(auth_failed("X-Sdk-Date is not YYYYMMDDTHHMMSSZ"));
        }
        if !authorization
            .signed_headers
            .iter()
            .any(|h| h == huawei::DATE_HEADER)
        {
            return Err(auth_failed("X-Sdk-Date is not a signed header"));
        }
        Ok(Self {
            method: parts.method.clone(),
            raw_path,
            path,
            raw_query,
            query,
            headers,
            body,
            host,
            authorization,
            sdk_date,
        })
    }

    /// Refuses a call that sends a security-relevant header twice: the
    /// signature verifier and the body check (or BSS) could otherwise
    /// each read a different copy, e.g. two `X-Sdk-Content-Sha256` values
    /// let one body be verified and another forwarded. The gateway calls
    /// this; the simulated BSS, like API Gateway, reads the last copy.
    pub fn refuse_duplicate_headers(&self, headers: &HeaderMap) -> Result<(), Error> {
        const ALWAYS: [&str; 8] = [
            "authorization",
            "host",
            "content-type",
            "x-sdk-date",
            "x-sdk-content-sha256",
            "x-domain-id",
            "x-project-id",
            "x-security-token",
        ];
        let signed = self.authorization.signed_headers.iter().map(String::as_str);
        for name in ALWAYS.into_iter().chain(signed) {
            if headers.get_all(name).iter().nth(1).is_some() {
                return Err(auth_failed(format_args!(
                    "header {name} is given more than once"
                )));
            }
        }
        Ok(())
    }

    /// The AK the call claims (not yet verified).
    pub fn access_key_id(&self) -> &str {
        &self.authorization.access_key_id
    }

    /// A header's value (last one wins, as in the signature).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A decoded query parameter (first occurrence).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Checks `X-Sdk-Date` against `now` (± [`SDK_DATE_WINDOW_SECS`]).
    pub fn check_date(&self, now: OffsetDateTime) -> Result<(), Error> {
        let Some(at) = parse_sdk_date(&self.sdk_date) else {
            return Err(auth_failed("X-Sdk-Date is not YYYYMMDDTHHMMSSZ"));
        };
        if (now - at).whole_seconds().abs() > SDK_DATE_WINDOW_SECS {
            return Err(auth_failed(
                "the request has expired: X-Sdk-Date is more than 15 minutes from the server's time",
            ));
        }
        Ok(())
    }

    /// Recomputes the signature with `secret` and the call's own signed
    /// headers; compares in constant time.
    pub fn verify(&self, secret: &str) -> Result<(), Error> {
        // Every signed header must be present: a list naming an absent
        // header would let a caller sign headers the server never sees.
        for name in &self.authorization.signed_headers {
            if self.header(name).is_none() {
                return Err(auth_failed(format_args!(
                    "signed header {name} is not in the request"
                )));
            }
        }
        let req = huawei::Request {
            method: self.method.as_str(),
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        };
        huawei::verify(&req, secret, &self.sdk_date, &self.authorization)
            .map_err(|_| auth_failed("verify aksk signature fail"))
    }
}

/// Decodes `a=1&b=2` (`+` is a space, as the SDKs' servers read it).
fn form_urlencoded_pairs(raw: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[cfg(test)]
mod tests;
