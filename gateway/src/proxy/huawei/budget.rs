//! Budget guards for the Huawei calls that spend or return money (the
//! `ledger::purchase` pattern: gate, hold before forwarding, settle after):
//!
//! * `PayOrders` (v2 and v3): the order's price is asked from BSS
//!   (`ShowCustomerOrderDetails`, with the held credential), priced by the
//!   partner's module when one is configured (the customer is charged the
//!   partner price; `admit` may refuse), and held before the payment is
//!   forwarded;
//! * `RenewalResources` with `is_auto_pay` 1 (paid at once): priced from
//!   `ListRenewRateOnPeriod` the same way and held; without auto-pay it
//!   only creates an unpaid order (paid later through `PayOrders`), so it
//!   is gated, not held;
//! * `CancelResourcesSubscription`: refunds are not charged: gated only
//!   (a customer without a usable budget cannot change subscriptions).
//!
//! Settle: a success (2xx without `error_code`) commits with the order id
//! (the paid order, or the renewal's first `order_ids`); a provider refusal
//! or a connect failure releases; after a timeout or reset the paid
//! order's status is asked from BSS (completed → commit, pending or
//! cancelled → release); a renewal, or a payment BSS cannot be asked about,
//! is left unknown for the reconciler, which asks BSS again from what the
//! hold records (`provider_ref`: the account, and the paid order or the
//! renewed resources; see `ledger::reconcile_huawei`). Ledger refusals are
//! answered `CBC.18000016` ("insufficient permissions, contact your
//! partner").

use http::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::{Api, PRODUCT, customer_info, error_in_body};
use crate::error::{Error, Origin};
use crate::huawei::call::{HuaweiCall, format_sdk_date};
use crate::huawei::keys::{HuaweiSide, HuaweiWho};
use crate::huawei::outbound::{OutboundCall, signed_request};
use crate::huawei::pricing::{self as hwpricing, PricedAnswer, decimal, measure_factor};
use crate::ledger::money::Micros;
use crate::ledger::reconcile_huawei::HuaweiRef;
use crate::ledger::{NewHold, Provider, Reserved, now_ms};
use crate::pricing::{Admission, ChargeType, Intent, LineItem, Order, OrderKind, PeriodUnit};
use crate::proxy::{Gateway, RequestCtx};
use crate::upstream::Answer;

/// What a Huawei hold needs at settle time.
#[derive(Debug, Clone)]
pub(in crate::proxy) struct HwTicket {
    hold_id: String,
    customer: String,
    /// The order paid (PayOrders); `None` for a renewal (its id is in the answer).
    order_id: Option<String>,
}

/// Ledger refusals in Huawei's vocabulary.
fn in_huawei_terms(mut e: Error) -> Error {
    e.code = if e.reason == "nonce_replay" {
        // The once-per-signature rule, as `HuaweiSide::once` answers it.
        "CBC.99008040".into()
    } else if e.origin == Origin::Customer {
        "CBC.18000016".into()
    } else {
        "CBC.0999".into()
    };
    e
}

fn body_json(call: &HuaweiCall) -> Value {
    serde_json::from_slice(&call.body).unwrap_or(Value::Null)
}

/// A BSS error answer as the customer's error (same code, status, message).
fn provider_error(status: StatusCode, v: &Value) -> Error {
    let code = v
        .get("error_code")
        .and_then(Value::as_str)
        .unwrap_or("CBC.0999")
        .to_owned();
    let msg = v
        .get("error_msg")
        .and_then(Value::as_str)
        .unwrap_or("The provider refused the price query.")
        .to_owned();
    let status = if status.is_success() {
        StatusCode::BAD_REQUEST
    } else {
        status
    };
    Error::upstream(status, code, msg, "provider_price_error", false)
}

impl Gateway {
    /// The reserve phase for Huawei calls (see the module docs).
    pub(super) async fn huawei_reserve(
        &self,
        ctx: &RequestCtx,
        side: &HuaweiSide,
        call: &HuaweiCall,
        who: &HuaweiWho,
        api: Api,
    ) -> Result<Option<HwTicket>, Error> {
        let purchase = api.kind == Some(crate::catalog::Kind::Purchase);
        let pay = purchase && api.name.starts_with("PayOrders");
        let renew = purchase && api.name == "RenewalResources";
        if !(pay || renew || api.name == "CancelResourcesSubscription") {
            return Ok(None);
        }
        let customer = who.customer.id.as_str();
        self.ledger
            .ready()
            .await
            .map_err(|e| in_huawei_terms(crate::ledger::purchase::refusal(&e, customer)))?;
        let currency = self
            .ledger
            .precheck(customer)
            .await
            .map_err(in_huawei_terms)?;
        let body = body_json(call);
        let (order, official, order_id, resource_ids) = if pay {
            let Some(order_id) = body.get("order_id").and_then(Value::as_str) else {
                // BSS refuses it (CBC.0100) without charging anything.
                return Ok(None);
            };
            let (order, official) = self.order_to_pay(side, who, order_id).await?;
            (order, official, Some(order_id.to_owned()), Vec::new())
        } else if renew && body.get("is_auto_pay").and_then(Value::as_i64) == Some(1) {
            let (order, official) = self.renewal_to_pay(side, who, &body).await?;
            let resource_ids = body
                .get("resource_ids")
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            (order, official, None, resource_ids)
        } else {
            return Ok(None);
        };
        let amount = match self.pricing.for_group(who.customer.group.as_deref()) {
            Some(module) => {
                let priced = module
                    .quote_metered(&order, &self.metrics)
                    .map_err(|e| e.to_error(module.label()))?;
                if let Admission::Deny { rule, message } = priced.admission {
                    return Err(Error::customer(
                        StatusCode::BAD_REQUEST,
                        "CBC.18000016",
                        format!("{message} (partner rule: {rule})"),
                        "pricing_denied",
                    ));
                }
                priced.quote.total
            }
            None => order.lines.iter().map(|l| l.official_trade).sum(),
        };
        let micros = |d: Decimal| {
            Micros::from_decimal(d).map_err(|e| Error::internal(format!("amount {d}: {e}")))
        };
        let now = now_ms();
        let forward_ms = i64::try_from(side.upstream.timeout.as_millis()).unwrap_or(i64::MAX);
        let expiry_ms =
            i64::try_from(self.ledger.settings().hold_expiry.as_millis()).unwrap_or(i64::MAX);
        let hold = NewHold {
            id: uuid::Uuid::new_v4().to_string(),
            customer: customer.to_owned(),
            amount: micros(amount)?,
            currency: if order.currency.is_empty() {
                currency
            } else {
                order.currency.clone()
            },
            client_token: None,
            fingerprint: tollgate_sign::sha256_hex(
                format!("{} {}?{}\n", call.method, call.path, call.raw_query)
                    .as_bytes()
                    .iter()
                    .chain(call.body.iter())
                    .copied()
                    .collect::<Vec<u8>>()
                    .as_slice(),
            ),
            request_id: ctx.request_id.clone(),
            action: api.name.to_owned(),
            product: PRODUCT.to_owned(),
            official: Some(micros(official)?),
            provider: Provider::Huawei,
            // What the reconciler asks BSS if the answer is lost.
            provider_ref: Some(
                HuaweiRef {
                    domain_id: who.domain_id.clone(),
                    order_id: order_id.clone(),
                    resource_ids,
                }
                .to_json(),
            ),
            replay_key: Some(crate::ledger::types::replay_key(
                Provider::Huawei,
                call.access_key_id(),
                &call.authorization.signature,
            )),
            now,
            forward_deadline: now.saturating_add(forward_ms),
            expires_at: now.saturating_add(expiry_ms),
        };
        let hold_id = hold.id.clone();
        match self.ledger.store().reserve(hold).await {
            Ok(Reserved::New(_)) => Ok(Some(HwTicket {
                hold_id,
                customer: customer.to_owned(),
                order_id,
            })),
            // Holds without a client token are never matched to another.
            Ok(Reserved::Existing(h)) => Err(Error::internal(format!(
                "hold {} unexpectedly exists",
                h.id
            ))),
            Err(e) => Err(in_huawei_terms(crate::ledger::purchase::refusal(
                &e, customer,
            ))),
        }
    }

    /// Commit, release or leave unknown (see the module docs). Never fails.
    pub(super) async fn huawei_settle(
        &self,
        ctx: &RequestCtx,
        side: &HuaweiSide,
        who: &HuaweiWho,
        ticket: &HwTicket,
        answer: &Result<Answer, Error>,
    ) {
        let store = self.ledger.store();
        let now = now_ms();
        let result = match answer {
            Ok(a) if a.status.is_success() && !error_in_body(a) => {
                let order_id = ticket.order_id.clone().or_else(|| {
                    serde_json::from_slice::<Value>(&a.body).ok().and_then(|v| {
                        v.get("order_ids")
                            .and_then(Value::as_array)
                            .and_then(|ids| ids.first())
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                });
                match order_id {
                    Some(id) => {
                        let text = String::from_utf8_lossy(&a.body).into_owned();
                        store
                            .commit(&ticket.hold_id, Some(&id), Some(&text), now)
                            .await
                            .map(|_| "committed")
                    }
                    // A renewal that renewed nothing (every resource failed).
                    None => store
                        .release(&ticket.hold_id, "nothing was ordered", false, now)
                        .await
                        .map(|()| "released"),
                }
            }
            Ok(_) => store
                .release(&ticket.hold_id, "the provider refused", false, now)
                .await
                .map(|()| "released"),
            Err(e) if e.retryable => store
                .release(&ticket.hold_id, "the provider was not reached", false, now)
                .await
                .map(|()| "released"),
            Err(_) => match self.paid_status(side, who, ticket).await {
                // The payment was made: charge it.
                Some(5) => store
                    .commit(&ticket.hold_id, ticket.order_id.as_deref(), None, now)
                    .await
                    .map(|_| "committed"),
                // Still unpaid (or cancelled): nothing was charged.
                Some(4 | 6) => store
                    .release(&ticket.hold_id, "the order was not paid", false, now)
                    .await
                    .map(|()| "released"),
                _ => store
                    .mark_unknown(&ticket.hold_id, "no answer from the provider", now)
                    .await
                    .map(|()| "unknown"),
            },
        };
        match result {
            Ok(outcome) => tracing::info!(
                request_id = %ctx.request_id,
                customer = %ticket.customer,
                hold = %ticket.hold_id,
                outcome,
                "huawei hold settled"
            ),
            Err(e) => tracing::error!(
                request_id = %ctx.request_id,
                hold = %ticket.hold_id,
                error = %e,
                "huawei hold could not be settled; left to the reconciler"
            ),
        }
    }

    /// After a payment whose answer was lost: the paid order's status as
    /// BSS now reports it (5 completed, 6 pending payment, 4 cancelled), so
    /// the hold is settled by fact rather than left unknown. `None` for
    /// renewals (their order id is in the lost answer) or when BSS cannot
    /// be asked either.
    async fn paid_status(
        &self,
        side: &HuaweiSide,
        who: &HuaweiWho,
        ticket: &HwTicket,
    ) -> Option<i64> {
        let order_id = ticket.order_id.as_deref()?;
        let path = format!(
            "/v2/orders/customer-orders/details/{}",
            tollgate_sign::encode::percent_encode(order_id)
        );
        let v = self
            .ask_huawei(side, who, Method::GET, &path, "", None)
            .await
            .ok()?;
        v.get("order_info")?.get("status")?.as_i64()
    }

    /// Asks BSS (with the held credential) and returns the JSON answer;
    /// a BSS error (any status, or `error_code` inside 200) is the error.
    async fn ask_huawei(
        &self,
        side: &HuaweiSide,
        who: &HuaweiWho,
        method: Method,
        path: &str,
        query: &str,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        let key = side.held(&who.customer.id).ok_or_else(|| {
            Error::internal(format!(
                "no Huawei credential is held for customer {}",
                who.customer.id
            ))
        })?;
        let body = body
            .map(|b| serde_json::to_vec(&b).unwrap_or_default())
            .unwrap_or_default();
        let req = signed_request(
            &OutboundCall {
                method,
                raw_path: path,
                raw_query: query,
                domain_id: Some(&who.domain_id),
                extra_headers: Vec::new(),
                content_type: (!body.is_empty()).then_some("application/json;charset=UTF-8"),
                body: body.into(),
            },
            &side.upstream.scheme,
            &side.upstream.authority,
            key,
            &format_sdk_date(time::OffsetDateTime::now_utc()),
        );
        let answer = self
            .forwarder
            .send(req, side.upstream.timeout)
            .await
            .map_err(super::huawei_upstream_error)?;
        let v: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        if !answer.status.is_success() || v.get("error_code").is_some_and(|c| !c.is_null()) {
            return Err(provider_error(answer.status, &v));
        }
        Ok(v)
    }

    /// The pricing order of a pending order, from its details (and its
    /// provider price after discount).
    async fn order_to_pay(
        &self,
        side: &HuaweiSide,
        who: &HuaweiWho,
        order_id: &str,
    ) -> Result<(Order, Decimal), Error> {
        let path = format!(
            "/v2/orders/customer-orders/details/{}",
            tollgate_sign::encode::percent_encode(order_id)
        );
        let v = self
            .ask_huawei(side, who, Method::GET, &path, "", None)
            .await?;
        let unreadable = || {
            Error::pricing(
                StatusCode::BAD_GATEWAY,
                "CBC.0999",
                "The order's price could not be read; nothing was paid.",
                "pricing_official_unreadable",
                true,
            )
        };
        let info = v.get("order_info").ok_or_else(unreadable)?;
        let f = info
            .get("measure_id")
            .and_then(Value::as_i64)
            .map_or(Some(Decimal::ONE), measure_factor)
            .ok_or_else(unreadable)?;
        let trade = info
            .get("amount_after_discount")
            .and_then(decimal)
            .ok_or_else(unreadable)?
            * f;
        let official = info
            .get("official_amount")
            .and_then(decimal)
            .map_or(trade, |d| d * f);
        let service = info
            .get("service_type_code")
            .and_then(Value::as_str)
            .unwrap_or("");
        let first_line = v
            .get("order_line_items")
            .and_then(Value::as_array)
            .and_then(|l| l.first());
        let (count, unit) = match (
            first_line
                .and_then(|l| l.get("period_type"))
                .and_then(Value::as_i64),
            first_line
                .and_then(|l| l.get("period_num"))
                .and_then(Value::as_u64),
        ) {
            (Some(3), Some(n)) => (u32::try_from(n).unwrap_or(1), PeriodUnit::Year),
            (Some(0), Some(n)) => (u32::try_from(n).unwrap_or(1), PeriodUnit::Day),
            (_, Some(n)) => (u32::try_from(n).unwrap_or(1), PeriodUnit::Month),
            _ => (1, PeriodUnit::Month),
        };
        let kind = match info.get("order_type").and_then(Value::as_i64) {
            Some(2) => OrderKind::Renewal,
            _ => OrderKind::New,
        };
        let order = Order {
            action: "PayOrders".to_owned(),
            intent: Intent::Purchase,
            kind,
            customer: customer_info(who),
            currency: info
                .get("currency")
                .and_then(Value::as_str)
                .unwrap_or("CNY")
                .to_owned(),
            lines: vec![LineItem {
                id: order_id.to_owned(),
                product: service.rsplit('.').next().unwrap_or(service).to_owned(),
                sku: first_line
                    .and_then(|l| l.get("product_id"))
                    .and_then(Value::as_str)
                    .unwrap_or("order")
                    .to_owned(),
                config: vec![("order_id".to_owned(), order_id.to_owned())],
                region: String::new(),
                quantity: 1,
                period_count: count,
                period_unit: unit,
                charge_type: ChargeType::Subscription,
                official: official.max(trade),
                official_trade: trade,
            }],
        };
        Ok((order, trade))
    }

    /// The pricing order of an auto-paid renewal, from BSS's renewal rating.
    async fn renewal_to_pay(
        &self,
        side: &HuaweiSide,
        who: &HuaweiWho,
        body: &Value,
    ) -> Result<(Order, Decimal), Error> {
        let ask = json!({
            "resource_ids": body.get("resource_ids").cloned().unwrap_or(Value::Null),
            "period_type": body.get("period_type").cloned().unwrap_or(Value::Null),
            "period_num": body.get("period_num").cloned().unwrap_or(Value::Null),
        });
        let v = self
            .ask_huawei(
                side,
                who,
                Method::POST,
                "/v2/bills/ratings/period-resources/renew-rate",
                "",
                Some(ask.clone()),
            )
            .await?;
        let mut order =
            hwpricing::order_from_rating(PricedAnswer::Renew, &ask, &v, customer_info(who))?;
        order.intent = Intent::Purchase;
        order.action = "RenewalResources".to_owned();
        let trade = order.lines.iter().map(|l| l.official_trade).sum();
        Ok((order, trade))
    }
}
