//! `tollgate sign`: prints the canonical string(s), the string to sign and
//! the signature of one request, for people debugging a
//! `SignatureDoesNotMatch`.
//!
//! Paste the request your SDK sent (its debug log shows the URL, headers and
//! body) and compare: the first line that differs from the SDK's own
//! canonical string is the culprit. Nothing is invented: RPC requests are
//! signed with exactly the parameters given (no `SignatureNonce`, `Timestamp`
//! or `AccessKeyId` is added), V3/Huawei/ROA with exactly the headers given.
//! The one convenience: V3 and Huawei sign `host`, so when no `Host` header
//! is given the authority of `--url` is used, as the SDKs do.
//!
//! When the pasted request carries its signature (`Signature=` parameter for
//! RPC, `Authorization` header otherwise), the output says whether it
//! matches; V3 and Huawei then sign the header list that `Authorization`
//! names, as a verifier does.
//!
//! The secret comes from `--secret-env VAR` or `--secret-file PATH`, never
//! from the command line (which would land in shell history), and is never
//! printed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use tollgate_sign::encode;
use tollgate_sign::{aliyun_roa, aliyun_rpc, aliyun_v3, huawei, sha256_hex};

use crate::secret::{ExposeSecret as _, SecretRef};

/// Which signature to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheme {
    /// Alibaba RPC, HMAC-SHA1, SignatureVersion 1.0 (parameters in query/form).
    Rpc,
    /// Alibaba ACS3-HMAC-SHA256 (`Authorization: ACS3-HMAC-SHA256 ...`).
    V3,
    /// Huawei SDK-HMAC-SHA256 (`Authorization: SDK-HMAC-SHA256 ...`).
    Huawei,
    /// Alibaba ROA (`Authorization: acs AK:signature`).
    Roa,
}

impl Scheme {
    /// The method when `--method` is not given: RPC calls are usually GETs
    /// with everything in the query; V3, Huawei and ROA calls of the current
    /// SDKs are usually POSTs. Pass `--method` whenever the SDK did otherwise.
    fn default_method(self) -> &'static str {
        match self {
            Self::Rpc => "GET",
            Self::V3 | Self::Huawei | Self::Roa => "POST",
        }
    }
}

/// How ROA writes a query parameter with an empty value; it depends on the
/// SDK that sent the request (see `tollgate_sign::aliyun_roa::EmptyValue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RoaEmptyValue {
    /// `k=`: the older Python core SDK (`aliyunsdkcore`).
    #[default]
    KeyEquals,
    /// Bare `k`: the Go SDK and darabonba `openapi-util` SDKs.
    BareKey,
}

/// `tollgate sign` options.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The signature scheme.
    #[arg(long, value_enum)]
    pub scheme: Scheme,
    /// HTTP method, as the SDK sent it. Default: GET for rpc, POST for v3, huawei and roa.
    #[arg(long)]
    pub method: Option<String>,
    /// The full request URL, e.g. `http://127.0.0.1:8080/?Action=...`; its
    /// path and query are decoded and signed (`+` in the query is a space).
    #[arg(long)]
    pub url: String,
    /// An extra query parameter `K=V` (decoded; repeatable). A bare `K` is a
    /// parameter without value (ROA signs it as a bare key).
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    /// A request header `Name: value` (repeatable). Include `Authorization`
    /// to check the SDK's signature against the computed one.
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The request body, byte for byte. For rpc it is a form whose parameters
    /// are signed with the query's.
    #[arg(long)]
    pub body: Option<String>,
    /// The AccessKey id, for the Authorization line (default: the one in the
    /// given `Authorization` header, or `AccessKeyId` for rpc).
    #[arg(long)]
    pub access_key_id: Option<String>,
    /// Name of the environment variable holding the AccessKey secret.
    #[arg(
        long,
        value_name = "VAR",
        required_unless_present = "secret_file",
        conflicts_with = "secret_file"
    )]
    pub secret_env: Option<String>,
    /// File holding the AccessKey secret (surrounding whitespace trimmed).
    #[arg(long, value_name = "PATH")]
    pub secret_file: Option<PathBuf>,
    /// roa only: how the SDK wrote an empty query value.
    #[arg(long, value_enum, default_value_t = RoaEmptyValue::KeyEquals)]
    pub roa_empty_value: RoaEmptyValue,
}

/// The request, decoded, as every signer takes it.
#[derive(Debug)]
struct Input {
    method: String,
    /// The URL's authority (`host[:port]`), if it has one.
    authority: Option<String>,
    /// Decoded path.
    path: String,
    /// Decoded query (URL first, then `--param`); `None`: no `=` given.
    query: Vec<(String, Option<String>)>,
    /// Headers as given.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Input {
    fn parse(args: &SignArgs) -> anyhow::Result<Self> {
        let uri: http::Uri = args
            .url
            .parse()
            .with_context(|| format!("--url {:?} is not a URL", args.url))?;
        let path = decode(uri.path(), false).context("the URL path")?;
        let mut query = Vec::new();
        for part in uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
        {
            query.push(decode_pair(part, true).context("the URL query")?);
        }
        for param in &args.params {
            // Given decoded on the command line: taken as is.
            query.push(match param.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (param.clone(), None),
            });
        }
        if let Some((k, _)) = query.iter().find(|(k, _)| k.is_empty()) {
            bail!("a query parameter has an empty name ({k:?})");
        }
        let mut headers = Vec::new();
        for h in &args.headers {
            let (name, value) = h
                .split_once(':')
                .with_context(|| format!("--header {h:?} is not `Name: value`"))?;
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                bail!("--header {h:?}: bad header name");
            }
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        Ok(Self {
            method: args
                .method
                .clone()
                .unwrap_or_else(|| args.scheme.default_method().to_owned()),
            authority: uri.authority().map(|a| a.as_str().to_owned()),
            path,
            query,
            headers,
            body: args.body.as_deref().unwrap_or("").as_bytes().to_vec(),
        })
    }

    /// The first value of a header (case-insensitive).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The query with a missing value as empty, for the schemes that do not
    /// tell the two apart.
    fn flat_query(&self) -> Vec<(String, String)> {
        self.query
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect()
    }

    /// The headers, plus `host` from the URL when none was given (V3 and
    /// Huawei sign it, and the SDKs take it from the endpoint).
    fn headers_with_host(&self) -> Vec<(String, String)> {
        let mut headers = self.headers.clone();
        if let (None, Some(authority)) = (self.header("host"), &self.authority) {
            headers.push(("host".to_owned(), authority.clone()));
        }
        headers
    }
}

/// Percent-decodes a URL component; `plus` also turns `+` into a space (query).
fn decode(s: &str, plus: bool) -> anyhow::Result<String> {
    let s = if plus {
        s.replace('+', " ")
    } else {
        s.to_owned()
    };
    let decoded = percent_encoding::percent_decode_str(&s)
        .decode_utf8()
        .with_context(|| format!("{s:?} is not UTF-8 once decoded"))?;
    Ok(decoded.into_owned())
}

fn decode_pair(part: &str, plus: bool) -> anyhow::Result<(String, Option<String>)> {
    Ok(match part.split_once('=') {
        Some((k, v)) => (decode(k, plus)?, Some(decode(v, plus)?)),
        None => (decode(part, plus)?, None),
    })
}

/// The labelled report.
#[derive(Debug, Default)]
struct Report(String);

impl Report {
    /// `label:` padded to a column, then the value.
    fn line(&mut self, label: &str, value: &str) {
        let _ = writeln!(self.0, "{:<19}{value}", format!("{label}:"));
    }

    /// `label:` alone, then the text verbatim (canonical strings span lines).
    fn block(&mut self, label: &str, text: &str) {
        let _ = writeln!(self.0, "{label}:\n{text}");
    }

    /// Whether the signature the request carried matches.
    fn provided(&mut self, provided: &str, matches: bool) {
        self.line("provided", provided);
        self.line("matches", if matches { "yes" } else { "NO" });
    }
}

/// Computes and formats the signature of the request in `args`; returns the
/// text to print. Never includes the secret.
pub fn run(args: &SignArgs) -> anyhow::Result<String> {
    let secret_ref = SecretRef {
        secret_env: args.secret_env.clone(),
        secret_file: args.secret_file.clone(),
    };
    let secret = secret_ref.load(Path::new("."), "the signing secret")?;
    let input = Input::parse(args)?;
    let secret = secret.expose_secret();
    let mut out = Report::default();
    match args.scheme {
        Scheme::Rpc => rpc(&input, args, secret, &mut out),
        Scheme::V3 => v3(&input, args, secret, &mut out)?,
        Scheme::Huawei => hw(&input, args, secret, &mut out)?,
        Scheme::Roa => roa(&input, args, secret, &mut out)?,
    }
    Ok(out.0)
}

fn rpc(input: &Input, args: &SignArgs, secret: &str, out: &mut Report) {
    let mut params = input.flat_query();
    // RPC signs query and form parameters together.
    if let Some(body) = &args.body {
        params.extend(form_urlencoded::parse(body.as_bytes()).into_owned());
    }
    let canonical = aliyun_rpc::canonicalized_query(&params);
    let sts = aliyun_rpc::string_to_sign(&input.method, &canonical);
    let signature = aliyun_rpc::signature(secret, &sts);
    out.line(
        "scheme",
        &format!(
            "{} (Alibaba RPC, SignatureVersion {})",
            aliyun_rpc::SIGNATURE_METHOD,
            aliyun_rpc::SIGNATURE_VERSION
        ),
    );
    out.block("canonicalized query", &canonical);
    out.block("string to sign", &sts);
    out.line("signature", &signature);
    if let Some(authority) = &input.authority {
        // The query's own parameters plus the signature, ready for curl
        // (the form body, if any, still goes in the body).
        let mut query: Vec<(String, String)> = input
            .flat_query()
            .into_iter()
            .filter(|(k, _)| k != "Signature")
            .collect();
        query.push(("Signature".to_owned(), signature.clone()));
        let encoded: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    encode::percent_encode(k),
                    encode::percent_encode(v)
                )
            })
            .collect();
        out.line(
            "signed url",
            &format!("http://{authority}{}?{}", input.path, encoded.join("&")),
        );
    }
    if let Some((_, provided)) = params.iter().find(|(k, _)| k == "Signature") {
        out.provided(
            provided,
            tollgate_sign::constant_time_eq(&signature, provided),
        );
    }
    let missing: Vec<&str> = aliyun_rpc::SIGNATURE_PARAMS
        .iter()
        .copied()
        .filter(|p| {
            *p != "Signature" && *p != "SignatureType" && !params.iter().any(|(k, _)| k == p)
        })
        .collect();
    if !missing.is_empty() {
        out.line(
            "note",
            &format!(
                "no {} given; signed as given (paste the request your SDK sent)",
                missing.join(", ")
            ),
        );
    }
}

fn v3(input: &Input, args: &SignArgs, secret: &str, out: &mut Report) -> anyhow::Result<()> {
    let query = input.flat_query();
    let headers = input.headers_with_host();
    // The SDK puts its payload hash in this header; without it, hash the body.
    let hashed_payload = match input.header("x-acs-content-sha256") {
        Some(h) => h.to_owned(),
        None => sha256_hex(&input.body),
    };
    let provided = match input.header("authorization") {
        Some(h) => Some(
            aliyun_v3::Authorization::parse(h)
                .with_context(|| format!("the Authorization header {h:?}"))?,
        ),
        None => None,
    };
    let req = aliyun_v3::Request {
        method: &input.method,
        path: &input.path,
        query: &query,
        headers: &headers,
        hashed_payload: &hashed_payload,
    };
    let signed = aliyun_v3::sign(
        &req,
        secret,
        provided.as_ref().map(|a| a.signed_headers.as_slice()),
    );
    out.line("scheme", aliyun_v3::ALGORITHM);
    out.block("canonical request", &signed.canonical_request);
    out.block("string to sign", &signed.string_to_sign);
    out.line("signature", &signed.signature);
    let ak = args
        .access_key_id
        .as_deref()
        .or(provided.as_ref().map(|a| a.access_key_id.as_str()));
    match ak {
        Some(ak) => out.line(
            "authorization",
            &aliyun_v3::authorization(ak, &signed.signed_headers, &signed.signature),
        ),
        None => out.line("authorization", "(pass --access-key-id to print it)"),
    }
    if let Some(auth) = &provided {
        out.provided(
            &auth.signature,
            tollgate_sign::constant_time_eq(&signed.signature, &auth.signature),
        );
    }
    Ok(())
}

fn hw(input: &Input, args: &SignArgs, secret: &str, out: &mut Report) -> anyhow::Result<()> {
    let query = input.flat_query();
    let headers = input.headers_with_host();
    let sdk_date = input.header(huawei::DATE_HEADER).context(
        "huawei signing needs the date the SDK signed at: --header 'X-Sdk-Date: 20240501T083000Z'",
    )?;
    let provided =
        match input.header("authorization") {
            Some(h) => Some(huawei::Authorization::parse(h).with_context(|| {
                format!("the Authorization header {h:?} is not SDK-HMAC-SHA256")
            })?),
            None => None,
        };
    let signed_names = match &provided {
        Some(auth) => auth.signed_headers.clone(),
        None => {
            // What the SDK would sign: every header it set, but not the
            // Authorization it adds afterwards.
            let mut names = huawei::default_signed_headers(&headers);
            names.retain(|n| n != "authorization");
            names
        }
    };
    let req = huawei::Request {
        method: &input.method,
        path: &input.path,
        query: &query,
        headers: &headers,
        body: &input.body,
    };
    let signed = huawei::sign(&req, secret, sdk_date, &signed_names);
    out.line("scheme", huawei::ALGORITHM);
    out.block("canonical request", &signed.canonical_request);
    out.block("string to sign", &signed.string_to_sign);
    out.line("signature", &signed.signature);
    let ak = args
        .access_key_id
        .as_deref()
        .or(provided.as_ref().map(|a| a.access_key_id.as_str()));
    match ak {
        Some(ak) => out.line(
            "authorization",
            &huawei::authorization(ak, &signed.signed_headers, &signed.signature),
        ),
        None => out.line("authorization", "(pass --access-key-id to print it)"),
    }
    if let Some(auth) = &provided {
        out.provided(
            &auth.signature,
            tollgate_sign::constant_time_eq(&signed.signature, &auth.signature),
        );
    }
    Ok(())
}

fn roa(input: &Input, args: &SignArgs, secret: &str, out: &mut Report) -> anyhow::Result<()> {
    let provided = match input.header("authorization") {
        Some(h) => Some(
            aliyun_roa::Authorization::parse(h)
                .with_context(|| format!("the Authorization header {h:?}"))?,
        ),
        None => None,
    };
    let empty_value = match args.roa_empty_value {
        RoaEmptyValue::KeyEquals => aliyun_roa::EmptyValue::KeyEquals,
        RoaEmptyValue::BareKey => aliyun_roa::EmptyValue::BareKey,
    };
    let options = aliyun_roa::Options {
        empty_value,
        ..aliyun_roa::Options::default()
    };
    let req = aliyun_roa::Request {
        method: &input.method,
        path: &input.path,
        query: &input.query,
        headers: &input.headers,
    };
    let signed = aliyun_roa::sign(&req, secret, options);
    out.line("scheme", "acs (Alibaba ROA, HMAC-SHA1)");
    out.block("string to sign", &signed.string_to_sign);
    out.line("signature", &signed.signature);
    let ak = args
        .access_key_id
        .as_deref()
        .or(provided.as_ref().map(|a| a.access_key_id.as_str()));
    match ak {
        Some(ak) => out.line(
            "authorization",
            &aliyun_roa::authorization(ak, &signed.signature),
        ),
        None => out.line("authorization", "(pass --access-key-id to print it)"),
    }
    // The body is signed only through Content-MD5; say when they disagree.
    if args.body.is_some() {
        let md5 = aliyun_roa::content_md5(&input.body);
        out.line("body content-md5", &md5);
        if input.header("content-md5").is_some_and(|h| h != md5) {
            out.line("note", "the Content-MD5 header does not match the body");
        }
    }
    if let Some(auth) = &provided {
        // Either empty-value style is accepted, as the gateway does.
        out.provided(
            &auth.signature,
            aliyun_roa::verify(&req, secret, auth).is_ok(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
