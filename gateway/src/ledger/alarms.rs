//! Budget alarms: crossing detection (pure, used inside the stores'
//! transactions) and delivery of the outbox to the operator's webhooks.
//!
//! * A threshold fires when the available quota (limit − consumed − held)
//!   goes below its level (`SetResellerUserAlarmThreshold`: "alert when
//!   quota < threshold"); it is re-armed when the available quota is back at
//!   or above the level. Each crossing is reported once: the fired bit is
//!   stored on the budget row and changed in the same transaction that
//!   writes the `alarm` entry and the outbox row, so with several replicas
//!   only one of them records a given crossing.
//! * Delivery runs in the background from the outbox (never on a purchase's
//!   path): POST JSON to every configured URL, retried with exponential
//!   backoff (1 s doubling, capped at 5 minutes) for at most
//!   [`MAX_ATTEMPTS`] attempts; the outbox row records the outcome.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use super::money::Micros;
use super::types::{Budget, MAX_THRESHOLDS, Threshold};

/// Most delivery attempts per alarm. 10 attempts with 1 s doubling backoff
/// capped at 5 minutes span about 15 minutes: long enough to ride out a
/// webhook receiver's restart, short enough that a dead URL does not keep
/// the outbox growing.
pub const MAX_ATTEMPTS: i32 = 10;
/// Timeout of one webhook POST. 5 s: receivers should answer at once.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a claimed outbox row is reserved for one deliverer before
/// another replica may try it: longer than a POST to every URL.
pub const CLAIM_LEASE_MS: i64 = 60_000;

/// What changed in a budget's alarm state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmChange {
    /// The new fired mask.
    pub mask: i64,
    /// Thresholds that fired now: (index, threshold, level).
    pub fired: Vec<(usize, Threshold, Micros)>,
    /// Thresholds re-armed now.
    pub rearmed: Vec<(usize, Threshold, Micros)>,
}

/// Compares the budget's available quota with its thresholds; `None` when
/// nothing changes (the common case, checked on every balance change).
pub fn evaluate(b: &Budget) -> Option<AlarmChange> {
    if b.thresholds.is_empty() && b.alarm_fired == 0 {
        return None;
    }
    let available = b.available();
    let mut mask = b.alarm_fired;
    let mut fired = Vec::new();
    let mut rearmed = Vec::new();
    for (i, t) in b.thresholds.iter().enumerate().take(MAX_THRESHOLDS) {
        let bit = 1_i64 << i;
        let level = t.level(b.limit);
        let is_fired = mask & bit != 0;
        if !is_fired && available < level {
            mask |= bit;
            fired.push((i, *t, level));
        } else if is_fired && available >= level {
            mask &= !bit;
            rearmed.push((i, *t, level));
        }
    }
    // Bits of thresholds that no longer exist are cleared.
    let valid = if b.thresholds.len() >= 63 {
        -1
    } else {
        (1_i64 << b.thresholds.len()) - 1
    };
    mask &= valid;
    (mask != b.alarm_fired || !fired.is_empty()).then_some(AlarmChange {
        mask,
        fired,
        rearmed,
    })
}

/// The webhook payload of one crossing.
pub fn payload(b: &Budget, threshold: Threshold, level: Micros, entry_id: i64, at: i64) -> String {
    let t = match threshold {
        Threshold::Amount { micros } => json!({
            "kind": "amount",
            "amount": Micros(micros).to_money_string(),
        }),
        Threshold::Ratio {
            numerator,
            denominator,
        } => json!({
            "kind": "ratio",
            "numerator": numerator,
            "denominator": denominator,
        }),
    };
    json!({
        "event": "budget.alarm",
        "alarm_type": "quota_low_balance",
        "customer": b.customer,
        "currency": b.currency,
        "threshold": t,
        "level": level.to_money_string(),
        "available": b.available().to_money_string(),
        "limit": b.limit.to_money_string(),
        "consumed": b.consumed.to_money_string(),
        "held": b.held.to_money_string(),
        "entry_id": entry_id,
        "at_ms": at,
    })
    .to_string()
}

/// Backoff before attempt `attempts + 1`: 1 s doubling, at most 5 minutes.
pub fn backoff_ms(attempts: i32) -> i64 {
    let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(0);
    (1_000_i64 << exp).min(300_000)
}

/// Posts alarm payloads to webhook URLs.
#[derive(Debug, Clone)]
pub struct Webhooks {
    urls: Vec<http::Uri>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Webhooks {
    /// A poster for `urls` (`http://` only, like the upstreams).
    pub fn new(urls: &[String]) -> anyhow::Result<Self> {
        let mut parsed = Vec::with_capacity(urls.len());
        for u in urls {
            let uri: http::Uri = u
                .parse()
                .map_err(|e| anyhow::anyhow!("alarm webhook {u}: {e}"))?;
            if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                anyhow::bail!("alarm webhook {u}: only http://host[:port]/path URLs are supported");
            }
            parsed.push(uri);
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(WEBHOOK_TIMEOUT));
        Ok(Self {
            urls: parsed,
            client: Client::builder(TokioExecutor::new()).build(connector),
        })
    }

    /// Whether any URL is configured.
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// POSTs `payload` to every URL; `Err` names the first failure. A URL
    /// that answers 2xx counts as delivered.
    pub async fn post(&self, payload: &str) -> Result<(), String> {
        let mut failures = Vec::new();
        for uri in &self.urls {
            let req = Request::post(uri.clone())
                .header(http::header::CONTENT_TYPE, "application/json")
                .header("user-agent", "tollgate-ledger-alarms")
                .body(Full::new(Bytes::from(payload.to_owned())));
            let Ok(req) = req else {
                failures.push(format!("{uri}: bad request"));
                continue;
            };
            let sent = tokio::time::timeout(WEBHOOK_TIMEOUT, async {
                let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let _ = resp.into_body().collect().await;
                Ok::<StatusCode, String>(status)
            })
            .await;
            match sent {
                Ok(Ok(status)) if status.is_success() => {}
                Ok(Ok(status)) => failures.push(format!("{uri}: HTTP {status}")),
                Ok(Err(e)) => failures.push(format!("{uri}: {e}")),
                Err(_) => failures.push(format!("{uri}: timed out")),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::types::Status;

    fn budget(limit: i64, consumed: i64, held: i64, t: Vec<Threshold>, fired: i64) -> Budget {
        Budget {
            customer: "acme".into(),
            currency: "CNY".into(),
            limit: Micros(limit),
            consumed: Micros(consumed),
            held: Micros(held),
            status: Status::Normal,
            thresholds: t,
            alarm_fired: fired,
            created_at: 0,
            updated_at: 0,
        }
    }

    const RATIO_30: Threshold = Threshold::Ratio {
        numerator: 30,
        denominator: 100,
    };
    const AMOUNT_100: Threshold = Threshold::Amount { micros: 100 };

    #[test]
    fn fires_once_below_and_rearms_at_or_above() {
        // limit 1000: ratio level 300; amount level 100.
        let t = vec![RATIO_30, AMOUNT_100];
        assert_eq!(evaluate(&budget(1000, 600, 0, t.clone(), 0)), None);
        let c = evaluate(&budget(1000, 600, 150, t.clone(), 0)).expect("crossed 300");
        assert_eq!(c.mask, 0b01);
        assert_eq!(c.fired, vec![(0, RATIO_30, Micros(300))]);
        // Still below: nothing new (reported once).
        assert_eq!(evaluate(&budget(1000, 650, 150, t.clone(), 0b01)), None);
        // Both below.
        let c = evaluate(&budget(1000, 950, 0, t.clone(), 0b01)).expect("crossed 100");
        assert_eq!((c.mask, c.fired.len()), (0b11, 1));
        // Back to exactly the ratio level: re-armed.
        let c = evaluate(&budget(1000, 700, 0, t.clone(), 0b11)).expect("re-armed");
        assert_eq!(c.mask, 0b00);
        assert_eq!(c.rearmed.len(), 2);
        assert!(c.fired.is_empty());
    }

    #[test]
    fn stale_bits_of_removed_thresholds_are_cleared() {
        let c = evaluate(&budget(1000, 0, 0, vec![], 0b100)).expect("cleared");
        assert_eq!(c.mask, 0);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(0), 1_000);
        assert_eq!(backoff_ms(3), 8_000);
        assert_eq!(backoff_ms(30), 300_000);
    }
}
