//! Replay protection: each (AccessKey, nonce) is accepted once while its
//! timestamp is inside the window.
//!
//! A nonce only needs remembering until its own timestamp leaves the window
//! (after that the timestamp check refuses the replay), so each entry
//! expires at `timestamp + window`, not `now + window`. The map is sharded to
//! keep lock hold times short under concurrency.
//!
//! Entries are 128-bit keyed hashes of (AccessKey, nonce), not the texts:
//! a live entry costs 24 bytes and no allocation, so a cache of a million
//! nonces stays small enough to be quick. The same call always hashes the
//! same, so a replay is always caught; two different calls share an entry
//! only if two independent 64-bit SipHashes with secret per-process keys
//! both collide (at most one in 10^26 for a full cache), and even then
//! the cost is one honest call refused as a replay, never one admitted.
//!
//! This memory is per process: several replicas behind a load balancer need
//! a shared store (or sticky routing by key) for cross-replica replay
//! protection.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;

/// Why a nonce was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Seen before inside the window.
    Replayed,
    /// Longer than [`MAX_NONCE_LEN`].
    TooLong,
    /// The cache is at capacity with live entries.
    Full,
    /// This AccessKey holds its whole share of the cache.
    KeyFull,
}

/// Longest nonce accepted: SDKs send 32–36 characters; the cap bounds memory.
pub const MAX_NONCE_LEN: usize = 256;

const SHARDS: usize = 64;

/// One AccessKey may hold at most 1/8 of the cache by default: with the
/// default million entries that is 125,000 nonces in the 15-minute window
/// (about 140 calls a second, sustained, from one key), and it takes at
/// least eight keys flooding together to fill the memory for everyone.
pub const DEFAULT_KEY_SHARE: usize = 8;

/// The sharded nonce memory.
#[derive(Debug)]
pub struct NonceCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    per_key_per_shard: u32,
    hasher: NonceHasher,
}

/// The 128-bit entry a replay memory keeps for (AccessKey, nonce): two
/// independently keyed SipHashes (secret per-process keys), the key's
/// length first so that ("ab", "c") and ("a", "bc") differ. The gateway's
/// cache and the simulated cloud's both keep these.
#[derive(Debug, Default)]
pub struct NonceHasher([std::collections::hash_map::RandomState; 2]);

impl NonceHasher {
    /// Fresh secret keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry for `nonce` of `key_id`.
    pub fn entry(&self, key_id: &str, nonce: &str) -> u128 {
        let half = |state: &std::collections::hash_map::RandomState| {
            let mut h = state.build_hasher();
            h.write_usize(key_id.len());
            h.write(key_id.as_bytes());
            h.write(nonce.as_bytes());
            h.finish()
        };
        (u128::from(half(&self.0[0])) << 64) | u128::from(half(&self.0[1]))
    }

    /// A tag for `key_id` alone (the per-key share is counted by it).
    pub fn key_tag(&self, key_id: &str) -> u64 {
        let mut h = self.0[0].build_hasher();
        h.write(b"key:");
        h.write(key_id.as_bytes());
        h.finish()
    }

    /// Which of `shards` keeps `entry`: chosen by its high half, so that
    /// the low half (what a shard's table hashes by) is independent of it.
    pub fn shard(entry: u128, shards: usize) -> usize {
        usize::try_from((entry >> 64) as u64 % shards as u64).unwrap_or(0)
    }
}

/// The map of one shard: keys are already uniform hashes, so the map uses
/// their low bits as they are instead of hashing them again. The value is
/// the entry's expiry and the tag of the AccessKey it belongs to.
type Seen = HashMap<u128, (i64, u64), std::hash::BuildHasherDefault<Passthrough>>;

/// A `Hasher` for keys that are themselves keyed hashes.
#[derive(Debug, Default)]
struct Passthrough(u64);

impl Hasher for Passthrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128`/`write_u64` are used; fold anything else.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }

    fn write_u128(&mut self, v: u128) {
        // The high half picks the shard; the low half, independent of it,
        // spreads entries inside the shard.
        self.0 = v as u64;
    }
}

#[derive(Debug, Default)]
struct Shard {
    seen: Seen,
    /// Live entries per AccessKey tag (the per-key share).
    per_key: HashMap<u64, u32, std::hash::BuildHasherDefault<Passthrough>>,
    /// Earliest expiry in `seen`; sweeping before then finds nothing.
    next_expiry: i64,
}

impl Shard {
    fn sweep(&mut self, now: i64) {
        let per_key = &mut self.per_key;
        self.seen.retain(|_, (exp, tag)| {
            let keep = *exp >= now;
            if !keep && let Some(n) = per_key.get_mut(tag) {
                *n = n.saturating_sub(1);
            }
            keep
        });
        self.per_key.retain(|_, n| *n > 0);
        self.next_expiry = self
            .seen
            .values()
            .map(|(exp, _)| *exp)
            .min()
            .unwrap_or(i64::MAX);
    }
}

impl NonceCache {
    /// A cache holding up to `capacity` live nonces, of which one AccessKey
    /// may hold [`DEFAULT_KEY_SHARE`] (see [`NonceCache::with_key_share`]).
    pub fn new(capacity: usize) -> Self {
        Self::with_key_share(capacity, capacity / DEFAULT_KEY_SHARE)
    }

    /// A cache holding up to `capacity` live nonces, at most about
    /// `per_key` of them for any one AccessKey: one key that sends calls as
    /// fast as it can fills its own share and is refused (`Full`), while
    /// every other key still has room.
    pub fn with_key_share(capacity: usize, per_key: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        // A key's entries spread evenly over the shards (they are keyed
        // hashes); a quarter more per shard plus a few absorbs the
        // unevenness, so an honest key near its share is not refused early.
        let per_key_per_shard = (per_key.div_ceil(SHARDS) * 5 / 4 + 4).min(per_shard);
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard,
            per_key_per_shard: u32::try_from(per_key_per_shard).unwrap_or(u32::MAX),
            hasher: NonceHasher::new(),
        }
    }

    /// Records `nonce` for `key_id`, valid until `expires` (unix seconds).
    pub fn insert(
        &self,
        key_id: &str,
        nonce: &str,
        expires: i64,
        now: i64,
    ) -> Result<(), NonceError> {
        if nonce.len() > MAX_NONCE_LEN {
            return Err(NonceError::TooLong);
        }
        let entry = self.hasher.entry(key_id, nonce);
        let tag = self.hasher.key_tag(key_id);
        let idx = NonceHasher::shard(entry, SHARDS);
        let mut shard = self.shards[idx]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if shard.seen.get(&entry).is_some_and(|&(exp, _)| exp >= now) {
            return Err(NonceError::Replayed);
        }
        let key_count = |shard: &Shard| shard.per_key.get(&tag).copied().unwrap_or(0);
        if (shard.seen.len() >= self.per_shard || key_count(&shard) >= self.per_key_per_shard)
            && shard.next_expiry <= now
        {
            shard.sweep(now);
        }
        if shard.seen.len() >= self.per_shard {
            return Err(NonceError::Full);
        }
        if key_count(&shard) >= self.per_key_per_shard {
            return Err(NonceError::KeyFull);
        }
        if shard.seen.is_empty() {
            shard.next_expiry = expires;
        }
        shard.next_expiry = shard.next_expiry.min(expires);
        if let Some((_, old_tag)) = shard.seen.insert(entry, (expires, tag)) {
            // An expired entry of the same call, replaced.
            if let Some(n) = shard.per_key.get_mut(&old_tag) {
                *n = n.saturating_sub(1);
            }
        }
        *shard.per_key.entry(tag).or_insert(0) += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_once_per_key() {
        let c = NonceCache::new(100);
        assert_eq!(c.insert("k1", "n", 1000, 10), Ok(()));
        assert_eq!(c.insert("k1", "n", 1000, 11), Err(NonceError::Replayed));
        assert_eq!(
            c.insert("k2", "n", 1000, 11),
            Ok(()),
            "another key may use the same nonce"
        );
    }

    #[test]
    fn the_key_and_the_nonce_are_told_apart() {
        // Entries are hashes of (key, nonce): moving a character from the
        // key to the nonce is another call, not a replay.
        let c = NonceCache::new(100);
        assert_eq!(c.insert("ab", "c", 1000, 10), Ok(()));
        assert_eq!(c.insert("a", "bc", 1000, 10), Ok(()));
        assert_eq!(c.insert("ab", "c", 1000, 11), Err(NonceError::Replayed));
        assert_eq!(c.insert("a", "bc", 1000, 11), Err(NonceError::Replayed));
    }

    #[test]
    fn capacity_bounds_the_cache_and_expiry_frees_it() {
        let cap = SHARDS * 4;
        let c = NonceCache::with_key_share(cap, cap);
        // 64 tries per shard on average: every shard fills up (the chance
        // that one gets fewer than 4 is below 1e-20).
        let tries = SHARDS * 64;
        let early = (0..tries)
            .filter(|i| c.insert("k", &format!("early{i}"), 100, 50).is_ok())
            .count();
        assert_eq!(early, cap, "a full cache refuses instead of growing");
        // At t=200 every early entry has expired: the room is reusable.
        let late = (0..tries)
            .filter(|i| c.insert("k", &format!("late{i}"), 500, 200).is_ok())
            .count();
        assert_eq!(late, cap);
        // ...and the expired early nonces no longer count as replays, since
        // their timestamps are outside the window anyway.
    }

    #[test]
    fn one_key_cannot_fill_the_memory_for_the_others() {
        let cap = SHARDS * 64;
        let c = NonceCache::with_key_share(cap, cap / 8);
        let flooded = (0..cap)
            .filter(|i| c.insert("flood", &format!("f{i}"), 1000, 10).is_ok())
            .count();
        assert!(
            flooded < cap / 4,
            "the flooding key is held to about its share ({flooded} of {cap})"
        );
        assert_eq!(
            c.insert("flood", "one-more", 1000, 10),
            Err(NonceError::KeyFull)
        );
        // Another key is still served, and so are its own replays caught.
        let served = (0..cap / 16)
            .filter(|i| c.insert("quiet", &format!("q{i}"), 1000, 10).is_ok())
            .count();
        assert_eq!(served, cap / 16);
        assert_eq!(c.insert("quiet", "q1", 1000, 11), Err(NonceError::Replayed));
        // Once the flood's entries expire, the key gets its share back.
        assert_eq!(c.insert("flood", "later", 3000, 2000), Ok(()));
    }

    #[test]
    fn overlong_nonces_are_refused() {
        let c = NonceCache::new(10);
        assert_eq!(
            c.insert("k", &"x".repeat(MAX_NONCE_LEN + 1), 1, 0),
            Err(NonceError::TooLong)
        );
    }
}
