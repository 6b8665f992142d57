//! One Alibaba RPC call as it arrives on HTTP, in either signature scheme.
//!
//! * RPC (V2, `HMAC-SHA1`): `GET` with everything in the query, or `POST` with
//!   the query and/or an `application/x-www-form-urlencoded` body; the two are
//!   merged and all of it is signed.
//! * V3 (`ACS3-HMAC-SHA256`): `Action`/`Version` in `x-acs-action` /
//!   `x-acs-version`, business parameters in the query (and form body), the
//!   signature in `Authorization`.
//!
//! Parsing never looks up keys; [`AliyunCall::verify`] does that with the
//! secret the caller resolved from [`AliyunCall::access_key_id`].

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use tollgate_sign::{aliyun_rpc, aliyun_v3};

use crate::error::{Error, Result};

/// How the call proves who sent it.
#[derive(Debug, Clone)]
pub enum Credential {
    /// Signature V2 in the parameters.
    Rpc {
        /// `AccessKeyId`.
        access_key_id: String,
        /// `Signature` (base64).
        signature: String,
        /// `SignatureNonce`.
        nonce: String,
        /// `Timestamp`.
        timestamp: String,
    },
    /// Signature V3 in the headers.
    V3 {
        /// The parsed `Authorization` header.
        authorization: aliyun_v3::Authorization,
        /// `x-acs-signature-nonce`.
        nonce: String,
        /// `x-acs-date`.
        date: String,
    },
}

/// A parsed, not yet authenticated, Alibaba RPC call.
#[derive(Debug, Clone)]
pub struct AliyunCall {
    /// HTTP method.
    pub method: Method,
    /// Decoded request path (always `/` for RPC; kept for V3 canonicalisation).
    pub path: String,
    /// Decoded query parameters, in wire order.
    pub query: Vec<(String, String)>,
    /// Decoded form-body parameters, in wire order (empty unless the body is a form).
    pub form: Vec<(String, String)>,
    /// Headers as `(lower-case name, value)`, for V3 canonicalisation
    /// (empty for RPC calls, whose signature does not cover headers).
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Bytes,
    /// `Action` (parameter or `x-acs-action`).
    pub action: String,
    /// `Version` (parameter or `x-acs-version`).
    pub version: String,
    /// The `Host` the caller addressed (with port).
    pub host: String,
    /// The signature material.
    pub credential: Credential,
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn decode_pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn is_form(headers: &HeaderMap) -> bool {
    header_str(headers, "content-type")
        .map(|ct| {
            ct.split(';').next().is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        })
        .unwrap_or(false)
}

impl AliyunCall {
    /// Reads a call from its request head and complete body.
    ///
    /// Refuses, in Alibaba's own codes, what cannot be an Alibaba call:
    /// unsupported methods, a missing `Action`/`Version`, an incomplete
    /// signature, or an unknown signature method.
    pub fn parse(parts: &http::request::Parts, body: Bytes) -> Result<Self> {
        if parts.method != Method::GET && parts.method != Method::POST {
            return Err(Error::customer(
                StatusCode::BAD_REQUEST,
                "UnsupportedHTTPMethod",
                format!("This http method \"{}\" is not supported.", parts.method),
                "malformed",
            ));
        }
        let query = decode_pairs(parts.uri.query().unwrap_or("").as_bytes());
        let form = if is_form(&parts.headers) {
            decode_pairs(&body)
        } else {
            Vec::new()
        };
        // Only a V3 signature covers headers; RPC calls skip the copy.
        let headers: Vec<(String, String)> =
            if parts.headers.contains_key(http::header::AUTHORIZATION) {
                parts
                    .headers
                    .iter()
                    .filter_map(|(n, v)| {
                        v.to_str()
                            .ok()
                            .map(|v| (n.as_str().to_owned(), v.to_owned()))
                    })
                    .collect()
            } else {
                Vec::new()
            };
        let host = header_str(&parts.headers, "host")
            .map(str::to_owned)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_default();
        let path = tollgate_sign::encode::percent_decode(parts.uri.path());

        let lookup = |name: &str| -> Option<String> {
            query
                .iter()
                .chain(form.iter())
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };

        let (credential, action, version) = if let Some(auth) =
            header_str(&parts.headers, "authorization")
        {
            let authorization = aliyun_v3::Authorization::parse(auth).map_err(|e| {
                Error::customer(
                    StatusCode::BAD_REQUEST,
                    "IncompleteSignature",
                    e.to_string(),
                    "malformed",
                )
            })?;
            let need = |name: &'static str| -> Result<String> {
                header_str(&parts.headers, name)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        Error::customer(
                            StatusCode::BAD_REQUEST,
                            "MissingParameter",
                            format!("The required header \"{name}\" is not supplied."),
                            "missing_parameter",
                        )
                    })
            };
            let action = need("x-acs-action")?;
            let version = need("x-acs-version")?;
            let nonce = need("x-acs-signature-nonce")?;
            let date = need("x-acs-date")?;
            let sha = need("x-acs-content-sha256")?;
            // The payload hash is part of what was signed; it must also be
            // the hash of what arrived, or a body could be swapped under a
            // valid signature.
            if !tollgate_sign::constant_time_eq(
                &sha.to_ascii_lowercase(),
                &tollgate_sign::sha256_hex(&body),
            ) {
                return Err(Error::customer(
                    StatusCode::BAD_REQUEST,
                    "ContentSHA256NotMatched",
                    "The x-acs-content-sha256 header does not match the request body.",
                    "signature",
                ));
            }
            (
                Credential::V3 {
                    authorization,
                    nonce,
                    date,
                },
                action,
                version,
            )
        } else {
            let action = lookup("Action").ok_or_else(|| Error::missing("Action"))?;
            let version = lookup("Version").ok_or_else(|| Error::missing("Version"))?;
            let access_key_id =
                lookup("AccessKeyId").ok_or_else(|| Error::missing("AccessKeyId"))?;
            let signature = lookup("Signature").ok_or_else(|| {
                Error::customer(
                    StatusCode::BAD_REQUEST,
                    "IncompleteSignature",
                    "The request signature does not conform to Aliyun standards.",
                    "malformed",
                )
            })?;
            let method =
                lookup("SignatureMethod").ok_or_else(|| Error::missing("SignatureMethod"))?;
            if method != aliyun_rpc::SIGNATURE_METHOD {
                return Err(Error::customer(
                    StatusCode::BAD_REQUEST,
                    "InvalidSignatureMethod",
                    format!("Specified signature method \"{method}\" is not supported."),
                    "malformed",
                ));
            }
            let sv =
                lookup("SignatureVersion").ok_or_else(|| Error::missing("SignatureVersion"))?;
            if sv != aliyun_rpc::SIGNATURE_VERSION {
                return Err(Error::customer(
                    StatusCode::BAD_REQUEST,
                    "InvalidSignatureVersion",
                    format!("Specified signature version \"{sv}\" is not supported."),
                    "malformed",
                ));
            }
            let nonce = lookup("SignatureNonce").ok_or_else(|| Error::missing("SignatureNonce"))?;
            let timestamp = lookup("Timestamp").ok_or_else(|| Error::missing("Timestamp"))?;
            (
                Credential::Rpc {
                    access_key_id,
                    signature,
                    nonce,
                    timestamp,
                },
                action,
                version,
            )
        };

        Ok(Self {
            method: parts.method.clone(),
            path,
            query,
            form,
            headers,
            body,
            action,
            version,
            host,
            credential,
        })
    }

    /// The AccessKey id that claims to have signed the call.
    pub fn access_key_id(&self) -> &str {
        match &self.credential {
            Credential::Rpc { access_key_id, .. } => access_key_id,
            Credential::V3 { authorization, .. } => &authorization.access_key_id,
        }
    }

    /// The signature nonce.
    pub fn nonce(&self) -> &str {
        match &self.credential {
            Credential::Rpc { nonce, .. } | Credential::V3 { nonce, .. } => nonce,
        }
    }

    /// The signing time as sent (`Timestamp` or `x-acs-date`).
    pub fn timestamp(&self) -> &str {
        match &self.credential {
            Credential::Rpc { timestamp, .. } => timestamp,
            Credential::V3 { date, .. } => date,
        }
    }

    /// Which scheme signed the call: `"rpc"` or `"v3"` (for logs and metrics).
    pub fn scheme(&self) -> &'static str {
        match self.credential {
            Credential::Rpc { .. } => "rpc",
            Credential::V3 { .. } => "v3",
        }
    }

    /// The first value of a parameter, query before form body.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .chain(self.form.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter (query, then form), signature parameters included.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query
            .iter()
            .chain(self.form.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `true` when the caller asked for an XML answer (`Format=XML`).
    pub fn wants_xml(&self) -> bool {
        self.param("Format")
            .is_some_and(|f| f.eq_ignore_ascii_case("xml"))
    }

    /// Checks the signature with `secret`, in constant time.
    ///
    /// On mismatch answers `SignatureDoesNotMatch` and, like the real
    /// gateway, echoes the server-side string to sign (it holds no secret).
    pub fn verify(&self, secret: &str) -> Result<()> {
        match &self.credential {
            Credential::Rpc { signature, .. } => {
                let params: Vec<(&str, &str)> = self.params().collect();
                aliyun_rpc::verify(self.method.as_str(), &params, secret, signature)
                    .map_err(|sts| signature_mismatch(&sts))
            }
            Credential::V3 { authorization, .. } => {
                let hashed = tollgate_sign::sha256_hex(&self.body);
                let req = aliyun_v3::Request {
                    method: self.method.as_str(),
                    path: &self.path,
                    query: &self.query,
                    headers: &self.headers,
                    hashed_payload: &hashed,
                };
                aliyun_v3::verify(&req, secret, authorization)
                    .map_err(|signed| signature_mismatch(&signed.canonical_request))
            }
        }
    }
}

fn signature_mismatch(server_string: &str) -> Error {
    Error::customer(
        StatusCode::BAD_REQUEST,
        "SignatureDoesNotMatch",
        format!(
            "Specified signature is not matched with our calculation. server string to sign is:{server_string}"
        ),
        "signature",
    )
}
