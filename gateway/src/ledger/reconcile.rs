//! The background half of the ledger: settling pending holds by asking the
//! provider, expiring holds nobody could settle, and delivering alarms.
//!
//! **Reconciler.** A hold is *due* when its outcome has been unknown for
//! `reconcile_grace`, or when it is still `held` `reconcile_grace` after its
//! forward deadline (its request died with its process: crash recovery — on
//! startup every such hold is found on the first pass). For each customer
//! with due holds it lists the provider's orders (`QueryOrders`, signed with
//! the partner's key) since the oldest due hold, drops the orders already
//! attached to a hold, and matches the rest to the due holds, oldest first:
//! same product, same order type (`New` for `CreateInstance`/`RunInstances`,
//! `Renew` for `RenewInstance`), created no earlier than the hold (minus a
//! minute of clock skew), and — when the hold knows the provider's price —
//! the same `PretaxAmount`. A match commits the hold with that order id (the
//! `(customer, order)` unique index makes a double claim impossible, also
//! across replicas); no match releases it: past the grace period a call that
//! reached the provider has produced its order.
//!
//! That is how Alibaba holds are settled. Huawei holds (the hold's
//! `provider`) are settled by asking Huawei BSS what the hold's
//! `provider_ref` names — the paid order's status, or the customer's
//! renewal orders — with the credential the partner holds for the
//! customer: `ledger::reconcile_huawei`. A provider that cannot be asked
//! (no route, no credential, no answer) defers its holds to the next pass.
//!
//! A customer that still has purchases *in flight* is skipped for this pass
//! (their orders could be mistaken for a pending hold's); in-flight holds
//! end within the forward timeout, so this defers by seconds. Expired holds
//! are settled regardless.
//!
//! **Sweeper.** A hold past its expiry is settled the same way if the
//! provider can be asked, and otherwise expired (its amount freed).
//!
//! **Alarms.** Due outbox rows are leased (one replica each), POSTed to the
//! webhooks, and marked delivered or rescheduled with backoff.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::alarms::{self, CLAIM_LEASE_MS, MAX_ATTEMPTS};
use super::money::Micros;
use super::reconcile_huawei::HuaweiAccess;
use super::types::{Hold, HoldState, LedgerError, Provider};
use super::{Ledger, now_ms};
use crate::aliyun::outbound::{Freshness, OutboundCall, SigningKey};
use crate::metrics::OutcomeLabels;
use crate::upstream::{Forwarder, Upstream};

/// Clock skew tolerated between the gateway and the provider when matching
/// an order's `CreateTime` to a hold. One minute: NTP-synced clocks differ
/// by milliseconds; the minute also absorbs the provider's second-rounding.
pub const SKEW_MS: i64 = 60_000;
/// Most holds handled per pass (the rest wait for the next pass).
pub const BATCH: i64 = 1_000;
/// Most `QueryOrders` pages read per customer and pass (100 orders each).
pub const MAX_PAGES: u32 = 20;

/// How the reconciler reaches the providers; a provider without access
/// has its holds deferred (and expired past their expiry).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProviderAccess<'a> {
    /// Alibaba BSS, when routed.
    pub alibaba: Option<AlibabaAccess<'a>>,
    /// Huawei BSS, when configured (see `ledger::reconcile_huawei`).
    pub huawei: Option<HuaweiAccess<'a>>,
}

/// How the reconciler reaches Alibaba: BSS (for `QueryOrders`) with the
/// partner's key.
#[derive(Debug, Clone, Copy)]
pub struct AlibabaAccess<'a> {
    /// The pooled client.
    pub forwarder: &'a Forwarder,
    /// The partner's key.
    pub key: SigningKey<'a>,
    /// The BSS upstream.
    pub bss: &'a Upstream,
}

/// One provider order, as `QueryOrders` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOrder {
    /// `OrderId`.
    pub id: String,
    /// `ProductCode`.
    pub product: String,
    /// `OrderType`.
    pub order_type: String,
    /// `CreateTime`, unix ms.
    pub created_ms: i64,
    /// `PretaxAmount`, when it parses.
    pub pretax: Option<Micros>,
}

/// A due hold, and whether it is past its expiry.
pub type DueHold = (Hold, bool);

/// What a pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Holds committed to a found order.
    pub committed: usize,
    /// Holds released (no order at the provider).
    pub released: usize,
    /// Holds expired without an answer from the provider.
    pub expired: usize,
    /// Customers skipped (purchases in flight, or the provider unreachable).
    pub deferred: usize,
}

fn order_type_of(action: &str) -> &'static str {
    match action {
        "RenewInstance" => "Renew",
        "ModifyInstance" => "Upgrade",
        _ => "New",
    }
}

/// Lists `uid`'s orders created since `since_ms`.
pub async fn query_orders(
    access: &AlibabaAccess<'_>,
    uid: &str,
    since_ms: i64,
    now_ms: i64,
) -> Result<Vec<ProviderOrder>, String> {
    let fmt = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
            .map(crate::aliyun::format_timestamp)
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for page in 1..=MAX_PAGES {
        let req = OutboundCall {
            method: http::Method::POST,
            action: "QueryOrders".into(),
            version: "2017-12-14".into(),
            query: vec![
                ("OwnerId".into(), uid.to_owned()),
                ("CreateTimeStart".into(), fmt(since_ms)),
                ("CreateTimeEnd".into(), fmt(now_ms + SKEW_MS)),
                ("PageNum".into(), page.to_string()),
                ("PageSize".into(), "100".into()),
                ("Format".into(), "JSON".into()),
            ],
            form: Vec::new(),
        }
        .sign(
            access.bss.scheme,
            &access.bss.authority,
            access.key,
            &Freshness::now(),
        );
        let answer = access
            .forwarder
            .send(req, access.bss.timeout)
            .await
            .map_err(|e| format!("QueryOrders: {}", e.code))?;
        let body: Value = serde_json::from_slice(&answer.body)
            .map_err(|_| "QueryOrders answered something that is not JSON".to_owned())?;
        if !answer.status.is_success() || body.get("Success") == Some(&Value::Bool(false)) {
            return Err(format!(
                "QueryOrders: HTTP {} {}",
                answer.status.as_u16(),
                body.get("Code").and_then(Value::as_str).unwrap_or("")
            ));
        }
        let list = body
            .pointer("/Data/OrderList/Order")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let n = list.len();
        for o in list {
            let s = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let created_ms = crate::aliyun::parse_timestamp(&s("CreateTime"))
                .map_or(0, |t| t.unix_timestamp() * 1000);
            out.push(ProviderOrder {
                id: s("OrderId"),
                product: s("ProductCode"),
                order_type: s("OrderType"),
                created_ms,
                pretax: Micros::parse_amount(&s("PretaxAmount")).ok(),
            });
        }
        let total = body
            .pointer("/Data/TotalCount")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if n < 100 || u64::from(page) * 100 >= total {
            break;
        }
    }
    Ok(out)
}

/// The first order in `orders` that can be `hold`'s.
fn matching<'o>(
    hold: &Hold,
    orders: &'o [ProviderOrder],
    taken: &HashSet<String>,
) -> Option<&'o ProviderOrder> {
    let wanted = order_type_of(&hold.action);
    orders.iter().find(|o| {
        !taken.contains(&o.id)
            && o.product.eq_ignore_ascii_case(&hold.product)
            && o.order_type.eq_ignore_ascii_case(wanted)
            && o.created_ms >= hold.created_at - SKEW_MS
            && hold.official.is_none_or(|p| o.pretax == Some(p))
    })
}

impl Ledger {
    pub(super) fn reconciled(&self, outcome: &'static str) {
        self.metrics
            .ledger_reconciled
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// One reconciler + sweeper pass.
    pub async fn reconcile_once(
        &self,
        access: &ProviderAccess<'_>,
    ) -> Result<PassReport, LedgerError> {
        self.ready().await?;
        let now = now_ms();
        let grace = i64::try_from(self.settings.reconcile_grace.as_millis()).unwrap_or(i64::MAX);
        let mut by_customer: BTreeMap<String, Vec<(Hold, bool)>> = BTreeMap::new();
        let mut seen = HashSet::new();
        for h in self.store.expired_holds(now, BATCH).await? {
            seen.insert(h.id.clone());
            by_customer
                .entry(h.customer.clone())
                .or_default()
                .push((h, true));
        }
        for h in self.store.due_holds(now, grace, BATCH).await? {
            if seen.insert(h.id.clone()) {
                by_customer
                    .entry(h.customer.clone())
                    .or_default()
                    .push((h, false));
            }
        }
        let mut report = PassReport::default();
        for (customer, mut holds) in by_customer {
            holds.sort_by_key(|(h, _)| h.created_at);
            self.reconcile_customer(access, &customer, &holds, now, &mut report)
                .await?;
        }
        Ok(report)
    }

    async fn reconcile_customer(
        &self,
        access: &ProviderAccess<'_>,
        customer: &str,
        holds: &[(Hold, bool)],
        now: i64,
        report: &mut PassReport,
    ) -> Result<(), LedgerError> {
        let any_expired = holds.iter().any(|(_, e)| *e);
        let in_flight = self
            .store
            .holds(customer, true, BATCH)
            .await?
            .iter()
            .any(|h| h.state == HoldState::Held && h.forward_deadline > now);
        if in_flight && !any_expired {
            report.deferred += 1;
            self.reconciled("deferred");
            return Ok(());
        }
        let (huawei, alibaba): (Vec<DueHold>, Vec<DueHold>) = holds
            .iter()
            .cloned()
            .partition(|(h, _)| h.provider == Provider::Huawei);
        if !huawei.is_empty() {
            self.reconcile_huawei(access.huawei.as_ref(), customer, &huawei, now, report)
                .await?;
        }
        if !alibaba.is_empty() {
            self.reconcile_alibaba(access.alibaba.as_ref(), customer, &alibaba, now, report)
                .await?;
        }
        Ok(())
    }

    /// Settles `customer`'s due Alibaba holds by `QueryOrders` (see the
    /// module docs).
    async fn reconcile_alibaba(
        &self,
        access: Option<&AlibabaAccess<'_>>,
        customer: &str,
        holds: &[(Hold, bool)],
        now: i64,
        report: &mut PassReport,
    ) -> Result<(), LedgerError> {
        let since = holds.iter().map(|(h, _)| h.created_at).min().unwrap_or(now) - SKEW_MS;
        let orders = match (self.uid(customer), access) {
            (Some(uid), Some(access)) => query_orders(access, &uid, since, now).await,
            (None, _) => Err(format!("customer {customer} is not in the customers file")),
            (_, None) => Err("no Alibaba BSS route to ask".to_owned()),
        };
        let mut orders = match orders {
            Ok(o) => o,
            Err(why) => {
                tracing::warn!(customer, error = %why, "reconciler: the provider could not be asked");
                self.reconciled("query_failed");
                report.deferred += 1;
                for (h, expired) in holds.iter().filter(|(_, e)| *e) {
                    debug_assert!(*expired);
                    self.settle_release(h, "expired: not settled before its expiry and the provider could not be asked", true, now, report)
                        .await?;
                }
                return Ok(());
            }
        };
        orders.sort_by_key(|o| o.created_ms);
        let ids: Vec<String> = orders.iter().map(|o| o.id.clone()).collect();
        let mut taken: HashSet<String> = self
            .store
            .claimed_orders(customer, ids)
            .await?
            .into_iter()
            .collect();
        for (h, expired) in holds {
            let mut settled = false;
            while let Some(order) = matching(h, &orders, &taken) {
                let id = order.id.clone();
                taken.insert(id.clone());
                match self.store.commit(&h.id, Some(&id), None, now).await {
                    Ok(_) => {
                        tracing::info!(customer, hold = %h.id, order = %id, "reconciler: pending hold committed to the provider's order");
                        report.committed += 1;
                        self.reconciled("committed");
                        settled = true;
                        break;
                    }
                    Err(LedgerError::OrderClaimed(_)) => continue,
                    Err(LedgerError::NotOpen { .. }) => {
                        settled = true;
                        break;
                    }
                    Err(e) => return Err(e),
                }
            }
            if !settled {
                let why = if *expired {
                    "expired: no order at the provider"
                } else {
                    "no order at the provider"
                };
                self.settle_release(h, why, *expired, now, report).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn settle_release(
        &self,
        h: &Hold,
        why: &str,
        expired: bool,
        now: i64,
        report: &mut PassReport,
    ) -> Result<(), LedgerError> {
        match self.store.release(&h.id, why, expired, now).await {
            Ok(()) => {
                tracing::info!(customer = %h.customer, hold = %h.id, reason = why, "reconciler: pending hold released");
                if expired {
                    report.expired += 1;
                    self.reconciled("expired");
                } else {
                    report.released += 1;
                    self.reconciled("released");
                }
                Ok(())
            }
            // Settled meanwhile (by its own request or another replica).
            Err(LedgerError::NotOpen { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Expires every open hold past its expiry without asking the provider
    /// (used when no provider route is configured to ask).
    pub async fn expire_once(&self) -> Result<usize, LedgerError> {
        self.ready().await?;
        let now = now_ms();
        let mut report = PassReport::default();
        for h in self.store.expired_holds(now, BATCH).await? {
            self.settle_release(
                &h,
                "expired: not settled before its expiry",
                true,
                now,
                &mut report,
            )
            .await?;
        }
        Ok(report.expired)
    }

    /// One alarm delivery pass; returns how many alarms were handled.
    pub async fn deliver_alarms_once(&self) -> Result<usize, LedgerError> {
        self.ready().await?;
        let now = now_ms();
        let due = self.store.claim_alarms(now, CLAIM_LEASE_MS, 50).await?;
        for alarm in &due {
            if alarm.attempts == 0 {
                // First claim of this crossing (exactly one replica gets it).
                let kind = serde_json::from_str::<Value>(&alarm.payload)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/threshold/kind")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    });
                let outcome = if kind.as_deref() == Some("ratio") {
                    "ratio"
                } else {
                    "amount"
                };
                self.metrics
                    .ledger_alarms
                    .get_or_create(&OutcomeLabels { outcome })
                    .inc();
                tracing::warn!(customer = %alarm.customer, payload = %alarm.payload, "budget alarm");
            }
            let result = if self.webhooks.is_empty() {
                Ok(())
            } else {
                self.webhooks.post(&alarm.payload).await
            };
            let attempts = alarm.attempts + 1;
            let give_up = result.is_err() && attempts >= MAX_ATTEMPTS;
            let outcome = match (&result, give_up) {
                (Ok(()), _) => "delivered",
                (Err(_), true) => "gave_up",
                (Err(_), false) => "failed",
            };
            if let Err(e) = &result {
                tracing::warn!(customer = %alarm.customer, attempts, error = %e, "budget alarm webhook failed");
            }
            self.metrics
                .ledger_alarm_deliveries
                .get_or_create(&OutcomeLabels { outcome })
                .inc();
            let next = now_ms() + alarms::backoff_ms(alarm.attempts);
            self.store
                .alarm_attempted(alarm.id, result, next, give_up, now_ms())
                .await?;
        }
        Ok(due.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(action: &str, product: &str, created: i64, official: Option<i64>) -> Hold {
        Hold {
            id: "h".into(),
            customer: "acme".into(),
            amount: Micros(1),
            currency: "CNY".into(),
            client_token: None,
            fingerprint: String::new(),
            request_id: String::new(),
            action: action.into(),
            product: product.into(),
            official: official.map(Micros),
            provider: Provider::Alibaba,
            provider_ref: None,
            state: HoldState::Unknown,
            order_id: None,
            answer: None,
            reason: None,
            created_at: created,
            forward_deadline: created,
            expires_at: created,
            unknown_at: Some(created),
            settled_at: None,
        }
    }

    fn order(id: &str, product: &str, kind: &str, created: i64, pretax: i64) -> ProviderOrder {
        ProviderOrder {
            id: id.into(),
            product: product.into(),
            order_type: kind.into(),
            created_ms: created,
            pretax: Some(Micros(pretax)),
        }
    }

    #[test]
    fn matching_checks_product_type_time_amount_and_claims() {
        let t = 1_000_000_000;
        let orders = vec![
            order("1", "oss", "New", t - 2 * SKEW_MS, 5),
            order("2", "rds", "New", t, 5),
            order("3", "oss", "Renew", t, 5),
            order("4", "oss", "New", t, 7),
            order("5", "oss", "New", t + 10, 5),
        ];
        let h = hold("CreateInstance", "oss", t, Some(5));
        let mut taken = HashSet::new();
        assert_eq!(
            matching(&h, &orders, &taken).map(|o| o.id.as_str()),
            Some("5")
        );
        taken.insert("5".to_owned());
        assert_eq!(matching(&h, &orders, &taken), None);
        let renew = hold("RenewInstance", "OSS", t, None);
        assert_eq!(
            matching(&renew, &orders, &taken).map(|o| o.id.as_str()),
            Some("3")
        );
    }
}
