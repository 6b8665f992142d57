//! The provider-side checks of the simulated cloud, in the real gateway's
//! order: timestamp format → timestamp window → AccessKey lookup → signature
//! → nonce replay. A nonce is consumed only by a correctly signed request, so
//! a forged request cannot burn a legitimate caller's nonce.
//!
//! Then, per action, the BID owner rule: `OwnerId` names one of the calling
//! partner's end customers (or the partner itself); anything else is
//! `InvalidOwner` ("owner doesn't belong to caller").

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use http::StatusCode;
use secrecy::ExposeSecret as _;
use time::OffsetDateTime;

use crate::aliyun::{AliyunCall, parse_timestamp};
use crate::error::Error;
use crate::secret::SecretString;

/// How many nonces are remembered per AccessKey at most. Past that the
/// oldest are forgotten early: this bounds memory under a load benchmark
/// (tens of thousands of calls a second inside one window), at the cost of
/// replay detection for nonces older than the newest million.
pub const NONCE_CAPACITY: usize = 1_000_000;

/// A partner account allowed to call (the BID / reseller).
#[derive(Debug)]
pub struct Partner {
    /// The partner's own UID.
    pub uid: String,
    /// Its AccessKey id.
    pub access_key_id: String,
    /// Its AccessKey secret.
    pub secret: SecretString,
    /// UIDs of its end customers.
    pub customers: HashSet<String>,
}

/// Keys, clock window and replay memory.
#[derive(Debug)]
pub struct Auth {
    partners: HashMap<String, Arc<Partner>>,
    window_secs: i64,
    nonces: Mutex<HashMap<String, NonceCache>>,
}

/// Nonces seen for one AccessKey, each until its expiry (unix seconds).
#[derive(Debug, Default)]
struct NonceCache {
    seen: HashMap<String, i64>,
    order: VecDeque<(i64, String)>,
}

impl NonceCache {
    /// Records `nonce` until `expires`; `false` if it is still remembered.
    fn insert(&mut self, nonce: &str, expires: i64, now: i64) -> bool {
        while let Some((exp, _)) = self.order.front() {
            if *exp > now && self.seen.len() < NONCE_CAPACITY {
                break;
            }
            if let Some((exp, old)) = self.order.pop_front()
                && self.seen.get(&old) == Some(&exp)
            {
                self.seen.remove(&old);
            }
        }
        match self.seen.get(nonce) {
            Some(exp) if *exp > now => false,
            _ => {
                self.seen.insert(nonce.to_owned(), expires);
                self.order.push_back((expires, nonce.to_owned()));
                true
            }
        }
    }
}

fn refuse(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
    reason: &'static str,
) -> Error {
    Error::customer(status, code, message, reason)
}

impl Auth {
    /// A key table over `partners` with a clock window of `window_secs`.
    pub fn new(partners: Vec<Partner>, window_secs: u64) -> Self {
        Self {
            partners: partners
                .into_iter()
                .map(|p| (p.access_key_id.clone(), Arc::new(p)))
                .collect(),
            window_secs: i64::try_from(window_secs).unwrap_or(i64::MAX),
            nonces: Mutex::new(HashMap::new()),
        }
    }

    /// Authenticates a parsed call; returns the calling partner.
    pub fn authenticate(
        &self,
        call: &AliyunCall,
        now: OffsetDateTime,
    ) -> Result<Arc<Partner>, Error> {
        let field = if call.scheme() == "v3" {
            "x-acs-date"
        } else {
            "Timestamp"
        };
        let ts = parse_timestamp(call.timestamp()).ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                "InvalidTimeStamp.Format",
                format!("Specified time stamp or date value is not well formatted ({field})."),
                "timestamp",
            )
        })?;
        let now_s = now.unix_timestamp();
        let ts_s = ts.unix_timestamp();
        if (now_s - ts_s).abs() > self.window_secs {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "InvalidTimeStamp.Expired",
                format!("Specified time stamp or date value is expired ({field})."),
                "timestamp",
            ));
        }
        let partner = self.partners.get(call.access_key_id()).ok_or_else(|| {
            refuse(
                StatusCode::NOT_FOUND,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
                "unknown_key",
            )
        })?;
        call.verify(partner.secret.expose_secret())?;
        // A nonce only needs remembering while its timestamp is inside the
        // window: after that the window check refuses a replay anyway.
        let expires = ts_s.saturating_add(self.window_secs);
        let fresh = {
            let mut caches = self
                .nonces
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            caches
                .entry(partner.access_key_id.clone())
                .or_default()
                .insert(call.nonce(), expires, now_s)
        };
        if !fresh {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
                "replay",
            ));
        }
        Ok(partner.clone())
    }
}

/// Whose resources a call acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerRule {
    /// `OwnerId` optional: absent means the partner's own account.
    Optional,
    /// `OwnerId` required and must be an end customer (reseller quota APIs).
    Customer,
}

/// Resolves the account a call acts on, per the BID rules.
pub fn resolve_owner(
    partner: &Partner,
    call: &AliyunCall,
    rule: OwnerRule,
) -> Result<String, Error> {
    let owner_id = call.param("OwnerId").filter(|v| !v.is_empty());
    let owner_account = call.param("OwnerAccount").filter(|v| !v.is_empty());
    let not_yours = || {
        refuse(
            StatusCode::BAD_REQUEST,
            "InvalidOwner",
            "owner doesn't belong to caller",
            "owner",
        )
    };
    if owner_id.is_some() && owner_account.is_some() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "InvalidOwner",
            "OwnerId and OwnerAccount can not be specified at the same time.",
            "owner",
        ));
    }
    if let Some(account) = owner_account {
        // The simulator knows accounts by UID only.
        return Err(Error::invalid(
            "OwnerAccount",
            format_args!("account \"{account}\" is not known; use OwnerId"),
        ));
    }
    match (owner_id, rule) {
        (None, OwnerRule::Optional) => Ok(partner.uid.clone()),
        (None, OwnerRule::Customer) => Err(Error::missing("OwnerId")),
        (Some(id), _) if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) => Err(
            Error::invalid("OwnerId", format_args!("\"{id}\" is not a UID")),
        ),
        (Some(id), _) if partner.customers.contains(id) => Ok(id.to_owned()),
        (Some(id), OwnerRule::Optional) if id == partner.uid => Ok(id.to_owned()),
        (Some(_), _) => Err(not_yours()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_cache_forgets_expired_entries() {
        let mut cache = NonceCache::default();
        assert!(cache.insert("a", 100, 0));
        assert!(!cache.insert("a", 100, 50));
        assert!(cache.insert("b", 120, 50));
        assert!(
            cache.insert("a", 300, 150),
            "expired at 100, fresh again at 150"
        );
        assert!(!cache.insert("a", 300, 200));
        assert!(
            !cache.seen.contains_key("b") || cache.seen["b"] > 150,
            "expired entries are pruned"
        );
    }
}
