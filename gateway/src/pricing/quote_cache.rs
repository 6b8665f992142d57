//! Memoized quotes: a module's answer to an order, kept for the next
//! identical order.
//!
//! Why this is exact, not an approximation: a pricing module is a pure
//! function of its prepared configuration and the order. It gets a fresh
//! instance per call (no state survives a call), imports nothing that could
//! vary (every WASI import is linked to a trap: no clock, no randomness, no
//! environment, no files), and the configuration is fixed for the life of a
//! [`LoadedModule`](super::LoadedModule) (a reload that changes a module or
//! its configuration makes a new one, with an empty cache). So the same
//! order always gets the same answer, and answering it from memory is the
//! same answer without the instance.
//!
//! What is kept and what is not:
//! * the key is the *whole* order, byte for byte: action, intent, kind,
//!   the customer (id, UID, group, tags), currency and every line with its
//!   official amounts at their exact scale (`1.0` and `1.00` are different
//!   keys, as a module may treat them differently). One customer's answer
//!   is never served for another customer's order;
//! * only successful answers (priced, or a purchase denied by `admit`) are
//!   kept: a failure (trap, deadline, memory, invalid output) is never
//!   remembered, so a call cut off on an overloaded machine is retried by
//!   the next identical order;
//! * the cache is bounded in bytes (`limits::QUOTE_CACHE_BYTES`) and
//!   evicts by S3-FIFO (`quick_cache`): orders seen once leave first.
//!
//! The point is the request path: a customer's console re-quotes the same
//! configuration many times while a buyer decides, and each of those
//! identical price queries then costs a hash lookup instead of an instance.

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::{ChargeType, Intent, Order, OrderKind, PeriodUnit, Priced};

/// Bytes a cached answer is charged besides its key: its struct sizes and
/// texts, roughly (the bound is on memory, so an estimate that errs high is
/// fine).
fn answer_weight(p: &Priced) -> u64 {
    let q = &p.quote;
    let lines: usize = q.lines.iter().map(|l| 96 + l.id.len() + l.rule.len()).sum();
    let bundles: usize = q
        .bundles
        .iter()
        .map(|b| {
            128 + b.id.len()
                + b.rule.len()
                + b.description.len()
                + b.attached_to.as_ref().map_or(0, String::len)
        })
        .sum();
    (256 + q.module.len() + lines + bundles) as u64
}

#[derive(Clone, Debug)]
struct ByBytes;

impl Weighter<Box<[u8]>, Priced> for ByBytes {
    fn weight(&self, key: &Box<[u8]>, val: &Priced) -> u64 {
        key.len() as u64 + answer_weight(val)
    }
}

/// One module's memoized answers (none when disabled).
pub struct QuoteCache {
    entries: Option<Cache<Box<[u8]>, Priced, ByBytes>>,
}

impl std::fmt::Debug for QuoteCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.entries {
            Some(c) => f
                .debug_struct("QuoteCache")
                .field("entries", &c.len())
                .field("weight", &c.weight())
                .finish(),
            None => f.write_str("QuoteCache(disabled)"),
        }
    }
}

impl QuoteCache {
    /// A cache holding up to `bytes` of keys and answers.
    pub fn new(bytes: u64) -> Self {
        // quick_cache sizes its tables from an item estimate: a one-line
        // quote weighs about 1 KiB.
        let items = usize::try_from(bytes / 1024).unwrap_or(usize::MAX).max(16);
        Self {
            entries: Some(Cache::with_weighter(items, bytes.max(1), ByBytes)),
        }
    }

    /// A cache that keeps nothing.
    pub fn disabled() -> Self {
        Self { entries: None }
    }

    /// Whether it keeps answers.
    pub fn enabled(&self) -> bool {
        self.entries.is_some()
    }

    /// The answer remembered for `key`, if any.
    pub fn get(&self, key: &[u8]) -> Option<Priced> {
        self.entries.as_ref()?.get(key)
    }

    /// Remembers `priced` as the answer to `key`.
    pub fn insert(&self, key: Vec<u8>, priced: &Priced) {
        // quick_cache itself refuses an entry heavier than its capacity.
        if let Some(c) = &self.entries {
            c.insert(key.into_boxed_slice(), priced.clone());
        }
    }

    /// Answers kept.
    pub fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, Cache::len)
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The cache key of `order`: every field, length-prefixed, amounts as
/// their exact 16-byte decimal form (mantissa and scale).
pub fn key(order: &Order) -> Vec<u8> {
    let mut k = Vec::with_capacity(128 + 160 * order.lines.len());
    let text = |k: &mut Vec<u8>, s: &str| {
        k.extend_from_slice(&(s.len() as u32).to_le_bytes());
        k.extend_from_slice(s.as_bytes());
    };
    text(&mut k, &order.action);
    k.push(match order.intent {
        Intent::Quote => 0,
        Intent::Purchase => 1,
    });
    k.push(match order.kind {
        OrderKind::New => 0,
        OrderKind::Renewal => 1,
        OrderKind::Upgrade => 2,
        OrderKind::Downgrade => 3,
    });
    let c = &order.customer;
    text(&mut k, &c.id);
    text(&mut k, &c.uid);
    text(&mut k, &c.group);
    k.extend_from_slice(&(c.tags.len() as u32).to_le_bytes());
    for t in &c.tags {
        text(&mut k, t);
    }
    text(&mut k, &order.currency);
    k.extend_from_slice(&(order.lines.len() as u32).to_le_bytes());
    for l in &order.lines {
        text(&mut k, &l.id);
        text(&mut k, &l.product);
        text(&mut k, &l.sku);
        k.extend_from_slice(&(l.config.len() as u32).to_le_bytes());
        for (name, value) in &l.config {
            text(&mut k, name);
            text(&mut k, value);
        }
        text(&mut k, &l.region);
        k.extend_from_slice(&l.quantity.to_le_bytes());
        k.extend_from_slice(&l.period_count.to_le_bytes());
        k.push(match l.period_unit {
            PeriodUnit::Hour => 0,
            PeriodUnit::Day => 1,
            PeriodUnit::Week => 2,
            PeriodUnit::Month => 3,
            PeriodUnit::Year => 4,
            PeriodUnit::Usage => 5,
        });
        k.push(match l.charge_type {
            ChargeType::Subscription => 0,
            ChargeType::PayAsYouGo => 1,
        });
        k.extend_from_slice(&l.official.serialize());
        k.extend_from_slice(&l.official_trade.serialize());
    }
    k
}
