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

/// How many nonces are remembered at most (all keys together, spread over
/// the shards). Past that the
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
    nonces: Nonces,
}

/// Nonces seen, each until its expiry (unix seconds), as 128-bit keyed
/// hashes of (AccessKey, nonce), in shards: a single table of a million
/// entries stalled every call for tens of milliseconds whenever it grew
/// (all of them waiting on its lock), which showed as a 200 ms p99 in the
/// proxy bench's direct runs. A shard grows in well under a millisecond.
#[derive(Debug)]
struct Nonces {
    shards: Box<[Mutex<NonceShard>]>,
    hasher: crate::auth::NonceHasher,
}

const NONCE_SHARDS: usize = 64;

#[derive(Debug, Default)]
struct NonceShard {
    seen: HashMap<u128, i64>,
    order: VecDeque<(i64, u128)>,
}

impl Nonces {
    fn new() -> Self {
        Self::with_shards(NONCE_SHARDS)
    }

    fn with_shards(count: usize) -> Self {
        Self {
            shards: (0..count.max(1))
                .map(|_| Mutex::new(NonceShard::default()))
                .collect(),
            hasher: crate::auth::NonceHasher::new(),
        }
    }

    /// Records `nonce` of `key_id` until `expires`; `false` if it is still
    /// remembered.
    fn insert(&self, key_id: &str, nonce: &str, expires: i64, now: i64) -> bool {
        let entry = self.hasher.entry(key_id, nonce);
        let idx = crate::auth::NonceHasher::shard(entry, self.shards.len());
        let mut shard = self.shards[idx]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let shard = &mut *shard;
        let cap = NONCE_CAPACITY.div_ceil(self.shards.len());
        while let Some(&(exp, old)) = shard.order.front() {
            if exp > now && shard.seen.len() < cap {
                break;
            }
            shard.order.pop_front();
            if shard.seen.get(&old) == Some(&exp) {
                shard.seen.remove(&old);
            }
        }
        match shard.seen.get(&entry) {
            Some(exp) if *exp > now => false,
            _ => {
                shard.seen.insert(entry, expires);
                shard.order.push_back((expires, entry));
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
            nonces: Nonces::new(),
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
        let fresh = self
            .nonces
            .insert(&partner.access_key_id, call.nonce(), expires, now_s);
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
        // One shard, so that every entry is pruned by the same inserts.
        let cache = Nonces::with_shards(1);
        assert!(cache.insert("K", "a", 100, 0));
        assert!(!cache.insert("K", "a", 100, 50));
        assert!(cache.insert("K", "b", 120, 50));
        assert!(
            cache.insert("K", "a", 300, 150),
            "expired at 100, fresh again at 150"
        );
        assert!(!cache.insert("K", "a", 300, 200));
        let remembered: usize = cache
            .shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.seen.len()))
            .sum();
        assert_eq!(
            remembered, 1,
            "expired entries are pruned: only \"a\" (until 300) is left"
        );
    }

    #[test]
    fn each_access_key_has_its_own_nonces() {
        let cache = Nonces::new();
        assert!(cache.insert("K1", "n", 100, 0));
        assert!(cache.insert("K2", "n", 100, 0), "another key may use it");
        assert!(
            cache.insert("K1n", "", 100, 0),
            "key and nonce are told apart"
        );
        assert!(!cache.insert("K1", "n", 100, 1));
    }
}
