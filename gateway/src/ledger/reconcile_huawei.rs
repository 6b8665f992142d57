//! The reconciler's Huawei half: settling a due Huawei hold by asking
//! Huawei BSS, signed with the credential the partner holds for the
//! hold's customer (the Huawei proxy's own outbound path,
//! `huawei::outbound`).
//!
//! A Huawei hold records what asking needs ([`HuaweiRef`], the hold's
//! `provider_ref`): the customer's account (`X-Domain-Id`) and
//!
//! * for `PayOrders`, the paid order's id: `ShowCustomerOrderDetails`
//!   tells its status — completed (5) commits the hold with that id;
//!   pending payment (6) or cancelled (4) releases it; an order BSS does
//!   not know (`CBC.30000010`) releases it (nothing can have been paid);
//!   any other status (processing, pending approval) or no answer defers;
//! * for an auto-paid `RenewalResources`, the renewed resource ids: its
//!   order id was in the lost answer, so `ListCustomerOrders`
//!   (`order_type` 2, renewal) lists the customer's renewal orders of the
//!   hold's window, and the first completed one not yet attached to a hold
//!   (nor to an open `PayOrders` hold), created while the call could have
//!   run (from the hold's creation to its forward deadline, ± [`SKEW_MS`])
//!   and of the price the hold was made for (`amount_after_discount` =
//!   the renewal rating's), commits the hold. The listing does not name an
//!   order's resources (huawei-bss.md §6.1), so the window, the price and
//!   the `(customer, order)` claim are the match, as for Alibaba's
//!   `QueryOrders`. Such an order still in progress (pending approval,
//!   processing, to be confirmed) makes the hold wait; no such order past
//!   the grace period releases the hold: an auto-paid renewal that reached
//!   BSS has produced its order.
//!
//! "Cannot ask" (no Huawei endpoint, no held credential, no reference, BSS
//! unreachable or erring) defers the hold to the next pass, and past its
//! expiry expires it — exactly as Alibaba holds behave.

use std::collections::HashSet;

use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::money::Micros;
use super::reconcile::{MAX_PAGES, PassReport, SKEW_MS};
use super::types::{Hold, LedgerError};
use super::{Ledger, Provider};
use crate::huawei::call::format_sdk_date;
use crate::huawei::keys::HuaweiSide;
use crate::huawei::outbound::{OutboundCall, signed_request};
use crate::upstream::Forwarder;

/// `ShowCustomerOrderDetails` / `ListCustomerOrders` order statuses.
const COMPLETED: i64 = 5;
const CANCELLED: i64 = 4;
const PENDING_PAYMENT: i64 = 6;
/// `order_type` of a renewal order.
const RENEWAL: i64 = 2;
/// BSS's answer for an order it does not know.
const NO_SUCH_ORDER: &str = "CBC.30000010";
/// Orders per `ListCustomerOrders` page (BSS's largest `limit`).
const PAGE_SIZE: u32 = 100;

/// How the reconciler reaches Huawei BSS.
#[derive(Debug, Clone, Copy)]
pub struct HuaweiAccess<'a> {
    /// The pooled client.
    pub forwarder: &'a Forwarder,
    /// The endpoint and the credentials the partner holds per customer.
    pub side: &'a HuaweiSide,
}

/// What reconciling a Huawei hold needs (its `provider_ref`, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HuaweiRef {
    /// The customer's Huawei account (`X-Domain-Id`).
    pub domain_id: String,
    /// `PayOrders`: the order paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// `RenewalResources`: the resources renewed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_ids: Vec<String>,
}

impl HuaweiRef {
    /// The stored form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_str(s).ok()
    }
}

/// One Huawei order, as BSS shows or lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HuaweiOrder {
    /// `order_id`.
    pub id: String,
    /// `status`.
    pub status: i64,
    /// `order_type`.
    pub order_type: i64,
    /// `create_time`, unix ms.
    pub created_ms: i64,
    /// `amount_after_discount` in the order's currency (× `measure_id`),
    /// when it reads.
    pub amount: Option<Micros>,
}

fn order_of(v: &Value) -> HuaweiOrder {
    let amount = v
        .get("amount_after_discount")
        .and_then(crate::huawei::pricing::decimal)
        .zip(v.get("measure_id").and_then(Value::as_i64).map_or(
            Some(rust_decimal::Decimal::ONE),
            crate::huawei::pricing::measure_factor,
        ))
        .and_then(|(a, f)| Micros::from_decimal(a * f).ok());
    HuaweiOrder {
        id: v
            .get("order_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        status: v.get("status").and_then(Value::as_i64).unwrap_or(0),
        order_type: v.get("order_type").and_then(Value::as_i64).unwrap_or(0),
        created_ms: v
            .get("create_time")
            .and_then(Value::as_str)
            .and_then(crate::aliyun::parse_timestamp)
            .map_or(0, |t| t.unix_timestamp() * 1000),
        amount,
    }
}

/// Why BSS gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AskError {
    /// BSS answered this `error_code`.
    Refused(String),
    /// No answer, or one that is not BSS's JSON (no secrets in it).
    Failed(String),
}

impl std::fmt::Display for AskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(code) => write!(f, "BSS refused: {code}"),
            Self::Failed(why) => f.write_str(why),
        }
    }
}

/// A signed `GET` to BSS for `customer`'s account.
async fn get(
    access: &HuaweiAccess<'_>,
    customer: &str,
    domain_id: &str,
    path: &str,
    query: &str,
) -> Result<Value, AskError> {
    let key = access.side.held(customer).ok_or_else(|| {
        AskError::Failed(format!(
            "the partner holds no Huawei credential for customer {customer}"
        ))
    })?;
    let up = &access.side.upstream;
    let req = signed_request(
        &OutboundCall {
            method: Method::GET,
            raw_path: path,
            raw_query: query,
            domain_id: Some(domain_id),
            extra_headers: Vec::new(),
            content_type: None,
            body: bytes::Bytes::new(),
        },
        &up.scheme,
        &up.authority,
        key,
        &format_sdk_date(time::OffsetDateTime::now_utc()),
    );
    let answer = access
        .forwarder
        .send(req, up.timeout)
        .await
        .map_err(|e| AskError::Failed(format!("{path}: {}", e.code)))?;
    let v: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    match v.get("error_code").and_then(Value::as_str) {
        Some(code) => Err(AskError::Refused(code.to_owned())),
        None if answer.status.is_success() && v.is_object() => Ok(v),
        None => Err(AskError::Failed(format!(
            "{path}: HTTP {}",
            answer.status.as_u16()
        ))),
    }
}

/// The order `order_id` as BSS shows it; `None`: BSS does not know it.
pub async fn order_status(
    access: &HuaweiAccess<'_>,
    customer: &str,
    domain_id: &str,
    order_id: &str,
) -> Result<Option<HuaweiOrder>, String> {
    let path = format!(
        "/v2/orders/customer-orders/details/{}",
        tollgate_sign::encode::percent_encode(order_id)
    );
    match get(access, customer, domain_id, &path, "").await {
        Ok(v) => v
            .get("order_info")
            .map(|o| Some(order_of(o)))
            .ok_or_else(|| "ShowCustomerOrderDetails answered without order_info".to_owned()),
        Err(AskError::Refused(code)) if code == NO_SUCH_ORDER => Ok(None),
        Err(e) => Err(format!("ShowCustomerOrderDetails: {e}")),
    }
}

/// `customer`'s renewal orders created between `since_ms` and `until_ms`.
pub async fn renewal_orders(
    access: &HuaweiAccess<'_>,
    customer: &str,
    domain_id: &str,
    since_ms: i64,
    until_ms: i64,
) -> Result<Vec<HuaweiOrder>, String> {
    let fmt = |ms: i64| {
        time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
            .map(crate::aliyun::format_timestamp)
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for page in 0..MAX_PAGES {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("order_type", &RENEWAL.to_string())
            .append_pair("create_time_begin", &fmt(since_ms))
            .append_pair("create_time_end", &fmt(until_ms))
            .append_pair("order_by", "createTime")
            .append_pair("limit", &PAGE_SIZE.to_string())
            .append_pair("offset", &(page * PAGE_SIZE).to_string())
            .finish();
        let v = get(
            access,
            customer,
            domain_id,
            "/v2/orders/customer-orders",
            &query,
        )
        .await
        .map_err(|e| format!("ListCustomerOrders: {e}"))?;
        let list = v
            .get("order_infos")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let n = list.len();
        out.extend(list.iter().map(order_of));
        let total = v.get("total_count").and_then(Value::as_u64).unwrap_or(0);
        if n < PAGE_SIZE as usize || u64::from((page + 1) * PAGE_SIZE) >= total {
            break;
        }
    }
    // The window is also checked here: the filter is BSS's, the match ours.
    out.retain(|o| o.created_ms >= since_ms && o.created_ms <= until_ms);
    Ok(out)
}

/// Whether `o` is a free renewal order of `hold`'s window and price.
fn could_be(hold: &Hold, o: &HuaweiOrder, taken: &HashSet<String>) -> bool {
    !taken.contains(&o.id)
        && o.order_type == RENEWAL
        && o.created_ms >= hold.created_at - SKEW_MS
        && o.created_ms <= hold.forward_deadline + SKEW_MS
        && hold.official.is_none_or(|p| o.amount == Some(p))
}

/// The first completed order in `orders` that can be renewal `hold`'s.
pub fn renewal_match<'o>(
    hold: &Hold,
    orders: &'o [HuaweiOrder],
    taken: &HashSet<String>,
) -> Option<&'o HuaweiOrder> {
    orders
        .iter()
        .find(|o| o.status == COMPLETED && could_be(hold, o, taken))
}

/// Whether an order that can be `hold`'s is still in progress at BSS
/// (pending approval 1, processing 3, to be confirmed 9): the hold waits
/// for it rather than being released.
pub fn renewal_in_progress(hold: &Hold, orders: &[HuaweiOrder], taken: &HashSet<String>) -> bool {
    orders
        .iter()
        .any(|o| matches!(o.status, 1 | 3 | 9) && could_be(hold, o, taken))
}

/// What one pass decided for one hold.
enum Verdict {
    Commit(String),
    Release(&'static str),
    /// Cannot ask (why): deferred, or expired past its expiry.
    Defer(String),
    /// Asked, but the order is still in progress at BSS.
    Wait,
}

impl Ledger {
    /// Settles `customer`'s due Huawei holds (oldest first; the flag: past
    /// its expiry). See the module docs.
    pub(super) async fn reconcile_huawei(
        &self,
        access: Option<&HuaweiAccess<'_>>,
        customer: &str,
        holds: &[(Hold, bool)],
        now: i64,
        report: &mut PassReport,
    ) -> Result<(), LedgerError> {
        // Renewal orders, listed once per pass for the customer's account.
        let mut renewals: Option<Result<Vec<HuaweiOrder>, String>> = None;
        let mut taken: HashSet<String> = HashSet::new();
        let mut deferred = false;
        for (h, expired) in holds {
            let asked = h.provider_ref.as_deref().and_then(HuaweiRef::parse);
            let verdict = match (access, asked) {
                (None, _) => Verdict::Defer("no Huawei endpoint is configured".to_owned()),
                (Some(_), None) => Verdict::Defer(
                    "the hold does not record what to ask Huawei (made before schema 2)".to_owned(),
                ),
                (Some(access), Some(r)) => match &r.order_id {
                    Some(order_id) => {
                        match order_status(access, customer, &r.domain_id, order_id).await {
                            Ok(Some(o)) if o.status == COMPLETED => Verdict::Commit(o.id),
                            Ok(Some(o)) if o.status == PENDING_PAYMENT || o.status == CANCELLED => {
                                Verdict::Release("the order was not paid")
                            }
                            Ok(Some(_)) => Verdict::Wait,
                            Ok(None) => Verdict::Release("the provider does not know the order"),
                            Err(why) => Verdict::Defer(why),
                        }
                    }
                    None => {
                        if renewals.is_none() {
                            let since =
                                holds.iter().map(|(h, _)| h.created_at).min().unwrap_or(now)
                                    - SKEW_MS;
                            let listed = renewal_orders(
                                access,
                                customer,
                                &r.domain_id,
                                since,
                                now + SKEW_MS,
                            )
                            .await;
                            if let Ok(list) = &listed {
                                taken = self.huawei_taken(customer, list).await?;
                            }
                            renewals = Some(listed);
                        }
                        match renewals.as_ref() {
                            Some(Ok(list)) => match renewal_match(h, list, &taken) {
                                Some(o) => Verdict::Commit(o.id.clone()),
                                None if renewal_in_progress(h, list, &taken) => Verdict::Wait,
                                None => Verdict::Release("no renewal order at the provider"),
                            },
                            Some(Err(why)) => Verdict::Defer(why.clone()),
                            None => Verdict::Defer("not listed".to_owned()),
                        }
                    }
                },
            };
            match verdict {
                Verdict::Commit(order_id) => {
                    taken.insert(order_id.clone());
                    match self.store.commit(&h.id, Some(&order_id), None, now).await {
                        Ok(_) => {
                            tracing::info!(customer, hold = %h.id, order = %order_id, "reconciler: pending Huawei hold committed to the provider's order");
                            report.committed += 1;
                            self.reconciled("committed");
                        }
                        // Another hold already charges this order: this
                        // one must not charge it again.
                        Err(LedgerError::OrderClaimed(_)) => {
                            self.settle_release(
                                h,
                                "the order is already charged by another hold",
                                *expired,
                                now,
                                report,
                            )
                            .await?;
                        }
                        Err(LedgerError::NotOpen { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                Verdict::Release(why) => {
                    self.settle_release(h, why, *expired, now, report).await?;
                }
                Verdict::Defer(why) => {
                    tracing::warn!(customer, hold = %h.id, error = %why, "reconciler: Huawei BSS could not be asked");
                    self.reconciled("query_failed");
                    deferred = true;
                    if *expired {
                        self.settle_release(h, "expired: not settled before its expiry and the provider could not be asked", true, now, report).await?;
                    }
                }
                Verdict::Wait => {
                    deferred = true;
                    if *expired {
                        self.settle_release(
                            h,
                            "expired: the order was still in progress at the provider",
                            true,
                            now,
                            report,
                        )
                        .await?;
                    }
                }
            }
        }
        if deferred {
            report.deferred += 1;
        }
        Ok(())
    }

    /// Orders of `listed` a renewal hold must not take: those attached to
    /// a hold, and those an open `PayOrders` hold of `customer` is paying.
    async fn huawei_taken(
        &self,
        customer: &str,
        listed: &[HuaweiOrder],
    ) -> Result<HashSet<String>, LedgerError> {
        let ids = listed.iter().map(|o| o.id.clone()).collect();
        let mut taken: HashSet<String> = self
            .store
            .claimed_orders(customer, ids)
            .await?
            .into_iter()
            .collect();
        for h in self
            .store
            .holds(customer, true, super::reconcile::BATCH)
            .await?
        {
            if h.provider == Provider::Huawei
                && h.state.is_open()
                && let Some(id) = h
                    .provider_ref
                    .as_deref()
                    .and_then(HuaweiRef::parse)
                    .and_then(|r| r.order_id)
            {
                taken.insert(id);
            }
        }
        Ok(taken)
    }
}

#[cfg(test)]
mod tests;
