//! The Huawei side of the gateway's configuration, resolved: the AK/SKs the
//! partner issued customers (inbound), the credentials the partner holds
//! for each customer's Huawei account (outbound) and the BSS endpoint.
//!
//! Invariants: every issued key belongs to a customer with a Huawei
//! account (`huawei_domain_id`) *and* a held credential, checked at load,
//! so an authenticated call can always be signed on the way out; secrets
//! live in [`SecretString`] (redacted `Debug`) and are only exposed to the
//! signer.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use time::OffsetDateTime;

use super::call::{HuaweiCall, SDK_DATE_WINDOW_SECS, auth_failed, parse_sdk_date};
use super::outbound::HuaweiKey;
use crate::auth::{Customer, NonceCache, NonceError};
use crate::config::{CustomersFile, HuaweiPartnerConfig};
use crate::error::Error;
use crate::secret::{ExposeSecret as _, SecretString};

/// An issued inbound key.
#[derive(Debug)]
struct IssuedKey {
    secret: SecretString,
    customer: Arc<Customer>,
    domain_id: String,
    enabled: bool,
}

/// A credential the partner holds for a customer's account.
#[derive(Debug)]
struct HeldKey {
    access_key_id: String,
    secret: SecretString,
}

/// Where Huawei calls go.
#[derive(Debug, Clone)]
pub struct HuaweiUpstream {
    /// `http`.
    pub scheme: String,
    /// `host[:port]`: also the signed `host`.
    pub authority: String,
    /// Whole-call timeout.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
}

/// Who an authenticated Huawei call acts for.
#[derive(Debug, Clone)]
pub struct HuaweiWho {
    /// The AK that signed it.
    pub access_key_id: String,
    /// The customer.
    pub customer: Arc<Customer>,
    /// The customer's Huawei account (domain) id.
    pub domain_id: String,
}

/// How many state-changing calls are remembered for replay refusal.
/// 100,000 × ~120 bytes ≈ 12 MiB; pay/renew/unsubscribe calls are rare next
/// to reads, so this covers over 100 such calls per second for the whole
/// 15-minute window. When full of live entries, such calls are refused
/// (`CBC.0250`, flow control) rather than let a replay through.
pub const REPLAY_CAPACITY: usize = 100_000;

/// The resolved Huawei configuration.
#[derive(Debug)]
pub struct HuaweiSide {
    issued: HashMap<String, IssuedKey>,
    held: HashMap<String, HeldKey>,
    /// Signatures of state-changing calls seen inside their window.
    replays: std::sync::Arc<NonceCache>,
    /// The BSS endpoint.
    pub upstream: HuaweiUpstream,
}

impl HuaweiSide {
    /// Loads every secret and cross-checks keys, customers and held credentials.
    pub fn load(
        cfg: &HuaweiPartnerConfig,
        base_dir: &Path,
        customers: &CustomersFile,
        customers_dir: &Path,
    ) -> anyhow::Result<Self> {
        let uri: http::Uri = cfg.url.parse().context("[partner.huawei] url")?;
        let upstream = HuaweiUpstream {
            scheme: uri.scheme_str().unwrap_or("http").to_owned(),
            authority: uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .context("[partner.huawei] url has no host")?,
            timeout: Duration::from_millis(cfg.timeout_ms),
            connect_timeout: Duration::from_millis(cfg.connect_timeout_ms),
        };
        let mut held = HashMap::new();
        for h in &cfg.customers {
            anyhow::ensure!(
                customers.customers.iter().any(|c| c.id == h.customer),
                "[partner.huawei]: unknown customer `{}`",
                h.customer
            );
            let secret = h.secret.load(
                base_dir,
                &format!("huawei credential held for {}", h.customer),
            )?;
            held.insert(
                h.customer.clone(),
                HeldKey {
                    access_key_id: h.access_key_id.clone(),
                    secret,
                },
            );
        }
        let mut issued = HashMap::new();
        for k in &customers.huawei_keys {
            let c = customers
                .customers
                .iter()
                .find(|c| c.id == k.customer)
                .with_context(|| format!("huawei key `{}`: unknown customer", k.access_key_id))?;
            let domain_id = c
                .huawei_domain_id
                .clone()
                .with_context(|| format!("customer `{}` has no huawei_domain_id", c.id))?;
            anyhow::ensure!(
                held.contains_key(&c.id),
                "huawei key `{}`: the partner holds no Huawei credential for customer `{}` ([[partner.huawei.customer]])",
                k.access_key_id,
                c.id
            );
            let secret = k
                .secret
                .load(customers_dir, &format!("huawei key {}", k.access_key_id))?;
            issued.insert(
                k.access_key_id.clone(),
                IssuedKey {
                    secret,
                    customer: Arc::new(Customer::from_config(c)),
                    domain_id,
                    enabled: k.enabled,
                },
            );
        }
        Ok(Self {
            issued,
            held,
            replays: std::sync::Arc::new(NonceCache::new(REPLAY_CAPACITY)),
            upstream,
        })
    }

    /// How many inbound keys are issued.
    pub fn key_count(&self) -> usize {
        self.issued.len()
    }

    /// Authenticates like APIG, in its order: `X-Sdk-Date` window, key,
    /// signature; then Tollgate's rules: the body is signed (no
    /// `UNSIGNED-PAYLOAD`), no temporary credentials (only
    /// issued AK/SKs exist), and an `X-Domain-Id` (sent by SDK global
    /// credentials) must name the key's own customer account. Every
    /// refusal is `APIG.0301` 401, as Huawei answers them.
    pub fn authenticate(&self, call: &HuaweiCall, now: OffsetDateTime) -> Result<HuaweiWho, Error> {
        call.check_date(now)?;
        let key = self
            .issued
            .get(call.access_key_id())
            .filter(|k| k.enabled)
            .ok_or_else(|| auth_failed("the access key does not exist or is disabled"))?;
        call.verify(key.secret.expose_secret())?;
        // The signature covers `X-Sdk-Content-Sha256` instead of the body
        // when it is sent: APIG accepts `UNSIGNED-PAYLOAD`, but then a body
        // could be swapped under a valid signature, so Tollgate takes only
        // the body's real hash (the SDKs send the header only for non-JSON
        // uploads, which BSS has none of).
        if let Some(claimed) = call.header(tollgate_sign::huawei::CONTENT_SHA256_HEADER)
            && !claimed
                .trim()
                .eq_ignore_ascii_case(&tollgate_sign::sha256_hex(&call.body))
        {
            return Err(auth_failed(
                "X-Sdk-Content-Sha256 must be the body's SHA-256 (unsigned payloads are not accepted)",
            ));
        }
        if call.header("x-security-token").is_some() {
            return Err(auth_failed(
                "temporary security credentials are not accepted",
            ));
        }
        if let Some(d) = call.header("x-domain-id")
            && d != key.domain_id
        {
            return Err(auth_failed(
                "X-Domain-Id does not match the access key's account",
            ));
        }
        Ok(HuaweiWho {
            access_key_id: call.access_key_id().to_owned(),
            customer: key.customer.clone(),
            domain_id: key.domain_id.clone(),
        })
    }

    /// Shares `replays` as this side's memory of state-changing calls: a
    /// policy reload builds a new side, and must not forget which signed
    /// calls were already accepted (that would let one be replayed).
    #[must_use]
    pub fn with_replays(mut self, replays: std::sync::Arc<NonceCache>) -> Self {
        self.replays = replays;
        self
    }

    /// A fresh memory of state-changing calls, sized as [`Self::load`] sizes it.
    pub fn new_replays() -> std::sync::Arc<NonceCache> {
        std::sync::Arc::new(NonceCache::new(REPLAY_CAPACITY))
    }

    /// Huawei signatures carry no nonce (API Gateway accepts the same
    /// signed call again for 15 minutes). For calls that change state or
    /// spend money Tollgate accepts a signature once while its `X-Sdk-Date`
    /// is in the window, so a captured payment or renewal cannot be
    /// replayed: `CBC.99008040` ("operation too frequent", 400). Call after
    /// [`Self::authenticate`], so only correctly signed calls are remembered.
    pub fn once(&self, call: &HuaweiCall, now: OffsetDateTime) -> Result<(), Error> {
        let at = parse_sdk_date(&call.sdk_date).map_or(0, OffsetDateTime::unix_timestamp);
        match self.replays.insert(
            call.access_key_id(),
            &call.authorization.signature,
            at + SDK_DATE_WINDOW_SECS,
            now.unix_timestamp(),
        ) {
            Ok(()) => Ok(()),
            Err(NonceError::Replayed | NonceError::TooLong) => Err(Error::customer(
                http::StatusCode::BAD_REQUEST,
                "CBC.99008040",
                "Operation too frequent: this signed request was already received; sign it again to repeat it.",
                "replay",
            )),
            Err(NonceError::Full | NonceError::KeyFull) => Err(Error::customer(
                http::StatusCode::TOO_MANY_REQUESTS,
                "CBC.0250",
                "Flow control: too many state-changing calls in the signature window; retry later.",
                "replay_cache_full",
            )),
        }
    }

    /// The credential the partner holds for `customer` (checked at load for
    /// every customer with an issued key).
    pub fn held(&self, customer: &str) -> Option<HuaweiKey<'_>> {
        self.held.get(customer).map(|h| HuaweiKey {
            access_key_id: &h.access_key_id,
            secret: h.secret.expose_secret(),
        })
    }
}

#[cfg(test)]
mod tests;
