//! Admin endpoints for budgets, modelled on Alibaba's six reseller quota
//! APIs (`alibaba-bss.md` §8). Amounts are decimal strings in the
//! currency's unit, as in the reference (`"300.00"`); numbers are refused
//! so that no amount ever passes through a float.
//!
//! | endpoint | reference API |
//! |---|---|
//! | `GET /v1/budgets` | (list) |
//! | `POST /v1/budgets/{customer}` | `CreateResellerUserQuota` |
//! | `PUT /v1/budgets/{customer}/quota` | `SetResellerUserQuota` |
//! | `GET /v1/budgets/{customer}` | `QueryResellerAvailableQuota` (+ the whole budget) |
//! | `POST /v1/budgets/{customer}/consumption` | `ChangeResellerConsumeAmount` |
//! | `PUT /v1/budgets/{customer}/status` | `SetResellerUserStatus` |
//! | `PUT /v1/budgets/{customer}/alarm-thresholds` | `SetResellerUserAlarmThreshold` |
//! | `GET /v1/budgets/{customer}/holds` | (holds, newest first) |
//! | `GET /v1/budgets/{customer}/entries` | (the entry log, paged by id) |
//! | `GET /v1/budgets/{customer}/verify` | (recompute balances from the log) |
//!
//! Every change takes effect at once for the next purchase: purchases read
//! the budget row in the same atomic statement that holds.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AdminError, AdminRequest, AdminResult};
use crate::ledger::money::check_currency;
use crate::ledger::types::MAX_THRESHOLDS;
use crate::ledger::{
    AdjustType, Budget, Entry, Hold, Ledger, LedgerError, Micros, Status, Threshold, now_ms,
};

/// Most rows one list call returns. 1000: a page stays well under the admin
/// body limits; `after` pages through the rest.
pub const MAX_PAGE: i64 = 1_000;

fn status_json(s: Status) -> &'static str {
    s.as_str()
}

/// A budget as the admin API shows it.
pub fn budget_json(b: &Budget) -> Value {
    let thresholds: Vec<Value> = b
        .thresholds
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut v = threshold_json(*t);
            v["level"] = json!(t.level(b.limit).to_money_string());
            v["fired"] = json!(b.alarm_fired & (1_i64 << i) != 0);
            v
        })
        .collect();
    json!({
        "customer": b.customer,
        "currency": b.currency,
        "limit": b.limit.to_money_string(),
        "consumed": b.consumed.to_money_string(),
        "held": b.held.to_money_string(),
        "available": b.available().to_money_string(),
        "status": status_json(b.status),
        "alarm_thresholds": thresholds,
        "created_at_ms": b.created_at,
        "updated_at_ms": b.updated_at,
    })
}

fn threshold_json(t: Threshold) -> Value {
    match t {
        Threshold::Amount { micros } => json!({
            "threshold_type": 0,
            "threshold_amount": Micros(micros).to_money_string(),
        }),
        Threshold::Ratio {
            numerator,
            denominator,
        } => json!({
            "threshold_type": 1,
            "numerator": numerator,
            "denominator": denominator,
        }),
    }
}

fn hold_json(h: &Hold) -> Value {
    json!({
        "id": h.id,
        "state": h.state.as_str(),
        "amount": h.amount.to_money_string(),
        "currency": h.currency,
        "client_token": h.client_token,
        "request_id": h.request_id,
        "action": h.action,
        "product": h.product,
        "provider": h.provider.as_str(),
        "official_amount": h.official.map(Micros::to_money_string),
        "order_id": h.order_id,
        "reason": h.reason,
        "created_at_ms": h.created_at,
        "expires_at_ms": h.expires_at,
        "unknown_at_ms": h.unknown_at,
        "settled_at_ms": h.settled_at,
    })
}

fn entry_json(e: &Entry) -> Value {
    json!({
        "id": e.id,
        "at_ms": e.at,
        "kind": e.kind,
        "amount": e.amount.to_money_string(),
        "limit_delta": e.limit_delta.to_money_string(),
        "consumed_delta": e.consumed_delta.to_money_string(),
        "held_delta": e.held_delta.to_money_string(),
        "limit_after": e.limit_after.to_money_string(),
        "consumed_after": e.consumed_after.to_money_string(),
        "held_after": e.held_after.to_money_string(),
        "hold_id": e.hold_id,
        "order_id": e.order_id,
        "out_biz_id": e.out_biz_id,
        "detail": e.detail,
    })
}

fn ledger_error(e: LedgerError) -> AdminError {
    match e {
        LedgerError::NoBudget(c) => AdminError::not_found(format!("customer {c} has no budget")),
        LedgerError::Exists(c) => AdminError {
            status: StatusCode::CONFLICT,
            code: "BudgetExists",
            message: format!(
                "customer {c} already has a budget (Alibaba -303); use PUT .../quota to change it"
            ),
        },
        LedgerError::OutBizConflict(id) => AdminError {
            status: StatusCode::CONFLICT,
            code: "OutBizIdConflict",
            message: format!("out_biz_id {id} was already used for a different change"),
        },
        LedgerError::QuotaNegative(c) => AdminError {
            status: StatusCode::CONFLICT,
            code: "QuotaNegative",
            message: format!(
                "the available quota of {c} is below zero: raise the limit first (Alibaba -116)"
            ),
        },
        LedgerError::Currency { budget, amount } => {
            AdminError::bad_request(format!("the budget is in {budget}, not {amount}"))
        }
        LedgerError::Invalid(m) => AdminError::bad_request(m),
        other => {
            tracing::error!(error = %other, "admin budget operation failed");
            AdminError::internal(other.to_string())
        }
    }
}

fn amount(v: &Value, field: &str) -> Result<Micros, AdminError> {
    match v {
        Value::String(s) => {
            Micros::parse_amount(s).map_err(|e| AdminError::bad_request(format!("{field}: {e}")))
        }
        Value::Null => Err(AdminError::bad_request(format!("{field} is required"))),
        _ => Err(AdminError::bad_request(format!(
            "{field} must be a decimal string such as \"300.00\" (amounts never travel as JSON numbers)"
        ))),
    }
}

fn currency(s: &str) -> Result<String, AdminError> {
    check_currency(s).map_err(AdminError::bad_request)
}

fn non_empty(v: Option<String>, field: &str) -> Result<Option<String>, AdminError> {
    match v {
        Some(s) if s.trim().is_empty() || s.len() > 128 => Err(AdminError::bad_request(format!(
            "{field} must be 1-128 characters"
        ))),
        other => Ok(other),
    }
}

async fn ready(ledger: &Ledger) -> Result<(), AdminError> {
    ledger.ready().await.map(|_| ()).map_err(ledger_error)
}

fn known(ledger: &Ledger, customer: &str) -> Result<(), AdminError> {
    if ledger.knows(customer) {
        Ok(())
    } else {
        Err(AdminError::not_found(format!(
            "no customer \"{customer}\" in the customers file"
        )))
    }
}

/// `GET /v1/budgets`.
pub async fn list(ledger: &Ledger) -> AdminResult {
    ready(ledger).await?;
    let mut out = Vec::new();
    for c in ledger.store().customers().await.map_err(ledger_error)? {
        if let Some(b) = ledger.store().budget(&c).await.map_err(ledger_error)? {
            out.push(budget_json(&b));
        }
    }
    Ok((StatusCode::OK, json!({ "budgets": out })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    amount: Value,
    currency: String,
    #[serde(default)]
    out_biz_id: Option<String>,
}

/// `POST /v1/budgets/{customer}` (`CreateResellerUserQuota`).
pub async fn create(ledger: &Ledger, customer: &str, req: &AdminRequest) -> AdminResult {
    known(ledger, customer)?;
    let body: CreateBody = req.json()?;
    let limit = amount(&body.amount, "amount")?;
    let cur = currency(&body.currency)?;
    let biz = non_empty(body.out_biz_id, "out_biz_id")?;
    ready(ledger).await?;
    let b = ledger
        .store()
        .create_budget(customer, &cur, limit, biz.as_deref(), now_ms())
        .await
        .map_err(ledger_error)?;
    tracing::info!(customer, limit = %limit, currency = %cur, "admin: budget created");
    Ok((StatusCode::CREATED, budget_json(&b)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    amount: Value,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    out_biz_id: Option<String>,
}

/// `PUT /v1/budgets/{customer}/quota` (`SetResellerUserQuota`).
pub async fn set_quota(ledger: &Ledger, customer: &str, req: &AdminRequest) -> AdminResult {
    let body: QuotaBody = req.json()?;
    let limit = amount(&body.amount, "amount")?;
    let cur = body.currency.as_deref().map(currency).transpose()?;
    let biz = non_empty(body.out_biz_id, "out_biz_id")?;
    ready(ledger).await?;
    let b = ledger
        .store()
        .set_limit(customer, limit, cur.as_deref(), biz.as_deref(), now_ms())
        .await
        .map_err(ledger_error)?;
    tracing::info!(customer, limit = %limit, "admin: budget limit set");
    Ok((StatusCode::OK, budget_json(&b)))
}

/// `GET /v1/budgets/{customer}` (`QueryResellerAvailableQuota` and more).
pub async fn get(ledger: &Ledger, customer: &str) -> AdminResult {
    ready(ledger).await?;
    let b = ledger
        .store()
        .budget(customer)
        .await
        .map_err(ledger_error)?
        .ok_or_else(|| AdminError::not_found(format!("customer {customer} has no budget")))?;
    Ok((StatusCode::OK, budget_json(&b)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsumptionBody {
    adjust_type: String,
    amount: Value,
    currency: String,
    out_biz_id: String,
    /// Accepted for fidelity with the reference (`quota_amount_adjust`).
    #[serde(default)]
    business_type: Option<String>,
    /// The caller's system name (kept in the entry's detail).
    #[serde(default)]
    source: Option<String>,
}

/// `POST /v1/budgets/{customer}/consumption` (`ChangeResellerConsumeAmount`).
pub async fn change_consumption(
    ledger: &Ledger,
    customer: &str,
    req: &AdminRequest,
) -> AdminResult {
    let body: ConsumptionBody = req.json()?;
    let adjust = AdjustType::parse(&body.adjust_type).ok_or_else(|| {
        AdminError::bad_request("adjust_type must be \"increase\" or \"decrease\"")
    })?;
    let value = amount(&body.amount, "amount")?;
    let cur = currency(&body.currency)?;
    let biz = non_empty(Some(body.out_biz_id), "out_biz_id")?.unwrap_or_default();
    let _ = (&body.business_type, &body.source);
    ready(ledger).await?;
    let b = ledger
        .store()
        .adjust_consumed(customer, adjust, value, &cur, &biz, now_ms())
        .await
        .map_err(ledger_error)?;
    tracing::info!(customer, adjust = body.adjust_type, amount = %value, out_biz_id = %biz, "admin: consumption changed");
    let mut v = budget_json(&b);
    // Like the reference's `Data`: the consumption after the change.
    v["data"] = json!(b.consumed.to_money_string());
    Ok((StatusCode::OK, v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: String,
    /// Accepted for fidelity (`FREEZE` / `TRUSTEESHIP`).
    #[serde(default)]
    business_type: Option<String>,
}

/// `PUT /v1/budgets/{customer}/status` (`SetResellerUserStatus`).
pub async fn set_status(ledger: &Ledger, customer: &str, req: &AdminRequest) -> AdminResult {
    let body: StatusBody = req.json()?;
    let _ = &body.business_type;
    let status = Status::parse(&body.status).ok_or_else(|| {
        AdminError::bad_request(
            "status must be normal, frozen or trusteeship (or Alibaba's Thaw, Freeze, Trusteeship, TrusteeshipCancel)",
        )
    })?;
    ready(ledger).await?;
    let b = ledger
        .store()
        .set_status(customer, status, now_ms())
        .await
        .map_err(ledger_error)?;
    tracing::info!(
        customer,
        status = status.as_str(),
        "admin: budget status set"
    );
    Ok((StatusCode::OK, budget_json(&b)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdBody {
    #[serde(alias = "thresholdType")]
    threshold_type: u8,
    #[serde(default, alias = "thresholdAmount")]
    threshold_amount: Option<Value>,
    #[serde(default)]
    numerator: Option<u32>,
    #[serde(default)]
    denominator: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdsBody {
    #[serde(default)]
    alarm_type: Option<String>,
    #[serde(alias = "alarm_thresholds")]
    thresholds: Vec<ThresholdBody>,
}

/// `PUT /v1/budgets/{customer}/alarm-thresholds`
/// (`SetResellerUserAlarmThreshold`, `AlarmType=quota_low_balance`).
pub async fn set_thresholds(ledger: &Ledger, customer: &str, req: &AdminRequest) -> AdminResult {
    let body: ThresholdsBody = req.json()?;
    if let Some(t) = &body.alarm_type
        && t != "quota_low_balance"
    {
        return Err(AdminError::bad_request(
            "alarm_type must be quota_low_balance (the only type the reference defines)",
        ));
    }
    if body.thresholds.len() > MAX_THRESHOLDS {
        return Err(AdminError::bad_request(format!(
            "at most {MAX_THRESHOLDS} thresholds"
        )));
    }
    let mut thresholds = Vec::with_capacity(body.thresholds.len());
    for (i, t) in body.thresholds.iter().enumerate() {
        thresholds.push(match t.threshold_type {
            0 => {
                let v = t.threshold_amount.clone().unwrap_or(Value::Null);
                Threshold::Amount {
                    micros: amount(&v, &format!("thresholds[{i}].threshold_amount"))?.0,
                }
            }
            1 => match (t.numerator, t.denominator) {
                (Some(n), Some(d)) if d > 0 => Threshold::Ratio {
                    numerator: n,
                    denominator: d,
                },
                _ => {
                    return Err(AdminError::bad_request(format!(
                        "thresholds[{i}]: a percentage threshold needs numerator and a positive denominator"
                    )));
                }
            },
            other => {
                return Err(AdminError::bad_request(format!(
                    "thresholds[{i}].threshold_type {other}: 0 (amount) or 1 (percentage)"
                )));
            }
        });
    }
    ready(ledger).await?;
    let b = ledger
        .store()
        .set_thresholds(customer, thresholds, now_ms())
        .await
        .map_err(ledger_error)?;
    Ok((StatusCode::OK, budget_json(&b)))
}

fn limit_param(req: &AdminRequest) -> Result<i64, AdminError> {
    match req.query("limit") {
        None => Ok(100),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| AdminError::bad_request(format!("limit must be 1-{MAX_PAGE}"))),
    }
}

/// `GET /v1/budgets/{customer}/holds?state=open|all&limit=N`.
pub async fn holds(ledger: &Ledger, customer: &str, req: &AdminRequest) -> AdminResult {
    let open_only = match req.query("state").unwrap_or("all") {
        "open" => true,
        "all" => false,
        _ => return Err(AdminError::bad_request("state must be open or all")),
    };
    let limit = limit_param(req)?;
    ready(ledger).await?;
    let holds = ledger
        .store()
        .holds(customer, open_only, limit)
        .await
        .map_err(ledger_error)?;
    Ok((
        StatusCode::OK,
        json!({ "customer": customer, "holds": holds.iter().map(hold_json).collect::<Vec<_>>() }),
    ))
}

/// `GET /v1/budgets/{customer}/entries?after=ID&limit=N` (oldest first).
pub async fn entries(ledger: &Ledger, customer: &str, req: &AdminRequest) -> AdminResult {
    let after = match req.query("after") {
        None => 0,
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| AdminError::bad_request("after must be an entry id"))?,
    };
    let limit = limit_param(req)?;
    ready(ledger).await?;
    let entries = ledger
        .store()
        .entries(customer, after, limit)
        .await
        .map_err(ledger_error)?;
    let next = entries.last().map(|e| e.id);
    Ok((
        StatusCode::OK,
        json!({
            "customer": customer,
            "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
            "next_after": next,
        }),
    ))
}

/// `GET /v1/budgets/{customer}/verify`: recomputes the balances from the
/// entry log and the holds.
pub async fn verify(ledger: &Ledger, customer: &str) -> AdminResult {
    ready(ledger).await?;
    let r = ledger
        .store()
        .recompute(customer)
        .await
        .map_err(ledger_error)?;
    let checked = crate::ledger::check_consistency(ledger.store(), customer).await;
    Ok((
        StatusCode::OK,
        json!({
            "customer": customer,
            "consistent": checked.is_ok(),
            "problem": checked.err(),
            "recomputed": {
                "limit": r.limit.to_money_string(),
                "consumed": r.consumed.to_money_string(),
                "held": r.held.to_money_string(),
                "open_holds": r.open_holds.to_money_string(),
                "committed_holds": r.committed_holds.to_money_string(),
                "adjustments": r.adjustments.to_money_string(),
            },
        }),
    ))
}

#[cfg(test)]
mod openapi_tests {
    use std::collections::BTreeSet;

    /// The router's source: its match arms are the routes.
    const ROUTER: &str = include_str!("mod.rs");
    /// The OpenAPI document.
    const DOC: &str = include_str!("../../../docs/admin-openapi.json");

    /// `(METHOD, /path/{}/...)` from the `AdminApi::route` match arms
    /// (`(&Method::GET, ["v1", "budgets", c]) => ...`).
    fn router_routes() -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for line in ROUTER.lines().map(str::trim) {
            let Some(rest) = line.strip_prefix("(&Method::") else {
                continue;
            };
            let method = rest.split(',').next().unwrap_or("").trim().to_owned();
            let (Some(open), Some(close)) = (rest.find('['), rest.find(']')) else {
                continue;
            };
            let path: String = rest[open + 1..close]
                .split(',')
                .map(str::trim)
                .map(
                    |seg| match seg.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                        Some(literal) => format!("/{literal}"),
                        None => "/{}".to_owned(),
                    },
                )
                .collect();
            out.insert((method, path));
        }
        out
    }

    fn documented_routes() -> BTreeSet<(String, String)> {
        let doc: serde_json::Value =
            serde_json::from_str(DOC).expect("the OpenAPI document is JSON");
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let generic: String = path
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.starts_with('{') {
                        "/{}".to_owned()
                    } else {
                        format!("/{s}")
                    }
                })
                .collect();
            for method in ["get", "post", "put", "delete", "patch"] {
                if item.get(method).is_some() {
                    out.insert((method.to_ascii_uppercase(), generic.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_admin_route_is_documented_and_every_documented_route_exists() {
        let routes = router_routes();
        assert!(
            routes.contains(&("GET".into(), "/v1/status".into())),
            "{routes:?}"
        );
        assert!(routes.len() >= 11, "{routes:?}");
        let documented = documented_routes();
        let missing: Vec<_> = routes.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&routes).collect();
        assert!(
            missing.is_empty(),
            "routes missing from docs/admin-openapi.json: {missing:?}"
        );
        assert!(
            extra.is_empty(),
            "documented routes the router does not serve: {extra:?}"
        );
    }
}
