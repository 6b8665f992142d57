//! The reseller quota ledger APIs (reference `alibaba-bss.md` §8): a credit
//! quota and a consumption per end customer, available = quota −
//! consumption. All require `OwnerId` (an end customer of the caller) and
//! answer the `Code:"200"` flavour of the envelope; amounts are strings.
//!
//! Only `CreateResellerUserQuota` opens a ledger (again: `-303`); the other
//! actions work on an opened ledger and open an empty CNY one (quota 0) when
//! there is none, since the real service's answer there is undocumented.

use http::StatusCode;
use rust_decimal::Decimal;
use serde_json::Value;

use super::prices::money_string;
use super::state::Ledger;
use super::{ActionFn, Ctx, Reply};
use crate::error::Error;

const CURRENCIES: [&str; 3] = ["CNY", "USD", "JPY"];

/// The reseller action named `action`, if the sim has it.
pub fn route(action: &str) -> Option<ActionFn> {
    Some(match action {
        "CreateResellerUserQuota" => create_reseller_user_quota,
        "SetResellerUserQuota" => set_reseller_user_quota,
        "QueryResellerAvailableQuota" => query_reseller_available_quota,
        "ChangeResellerConsumeAmount" => change_reseller_consume_amount,
        "SetResellerUserStatus" => set_reseller_user_status,
        "SetResellerUserAlarmThreshold" => set_reseller_user_alarm_threshold,
        _ => return None,
    })
}

fn ok(data: Value) -> Reply {
    Reply::Bss {
        code: "200",
        data: Some(data),
    }
}

/// A required, non-negative yuan amount.
fn amount(ctx: &Ctx<'_>) -> Result<Decimal, Error> {
    let amount = ctx
        .p
        .decimal("Amount")?
        .ok_or_else(|| Error::missing("Amount"))?;
    if amount.is_sign_negative() {
        return Err(Error::invalid("Amount", "it must not be negative"));
    }
    Ok(amount)
}

fn ledger<'s>(st: &'s mut super::state::State, owner: &str) -> &'s mut Ledger {
    st.account(owner)
        .ledger
        .get_or_insert_with(|| Ledger::new("CNY", Decimal::ZERO))
}

fn create_reseller_user_quota(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.customer()?;
    let amount = amount(ctx)?;
    let currency = ctx.p.required_one_of("Currency", &CURRENCIES)?;
    let mut st = ctx.state();
    let account = st.account(&owner);
    if account.ledger.is_some() {
        return Err(Error::customer(
            StatusCode::BAD_REQUEST,
            "-303",
            "Record is exists already",
            "conflict",
        ));
    }
    account.ledger = Some(Ledger::new(currency, amount));
    Ok(ok(Value::Bool(true)))
}

fn set_reseller_user_quota(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.customer()?;
    let amount = amount(ctx)?;
    // Documented as "you do not need to set" (example `N/A`): any value.
    let _ = ctx.p.get("Currency");
    ledger(&mut ctx.state(), &owner).quota = amount;
    Ok(ok(Value::Bool(true)))
}

fn query_reseller_available_quota(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.customer()?;
    if let Some(codes) = ctx.p.get("ItemCodes") {
        let valid = serde_json::from_str::<Vec<String>>(codes).is_ok_and(|items| {
            items
                .iter()
                .all(|i| i == "CREDIT_QUOTA_BOOK_ITEM" || i == "CREDIT_CONSUME_BOOK_ITEM")
        });
        if !valid {
            return Err(Error::invalid(
                "ItemCodes",
                "it must be a JSON array of CREDIT_QUOTA_BOOK_ITEM / CREDIT_CONSUME_BOOK_ITEM",
            ));
        }
    }
    let st = ctx.state();
    let available = st
        .account_ref(&owner)
        .and_then(|a| a.ledger.as_ref())
        .map_or(Decimal::ZERO, Ledger::available);
    Ok(ok(Value::String(money_string(available))))
}

fn change_reseller_consume_amount(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.customer()?;
    let p = &ctx.p;
    let adjust = p.required_one_of("AdjustType", &["increase", "decrease"])?;
    let amount = amount(ctx)?;
    let currency = p.required_one_of("Currency", &CURRENCIES)?;
    p.required_one_of(
        "BusinessType",
        &["quota_amount_adjust", "FREEZE", "TRUSTEESHIP"],
    )?;
    p.required("Source")?;
    let out_biz_id = p.required("OutBizId")?;
    if let Some(extend) = p.get("ExtendMap")
        && !serde_json::from_str::<Value>(extend).is_ok_and(|v| v.is_object())
    {
        return Err(Error::invalid("ExtendMap", "it must be a JSON object"));
    }
    let mut st = ctx.state();
    let ledger = ledger(&mut st, &owner);
    if ledger.currency != currency {
        return Err(Error::invalid(
            "Currency",
            format_args!("the ledger is kept in {}", ledger.currency),
        ));
    }
    // Idempotent on OutBizId: a retry answers what the first call did.
    if let Some(after) = ledger.applied.get(out_biz_id) {
        return Ok(ok(Value::String(money_string(*after))));
    }
    if adjust == "increase" {
        ledger.consumption += amount;
    } else {
        ledger.consumption -= amount;
    }
    let after = ledger.consumption;
    ledger.applied.insert(out_biz_id.to_owned(), after);
    Ok(ok(Value::String(money_string(after))))
}

fn set_reseller_user_status(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.customer()?;
    let p = &ctx.p;
    p.required_one_of("BusinessType", &["FREEZE", "TRUSTEESHIP"])?;
    let status = p.required_one_of(
        "Status",
        &["Freeze", "Thaw", "Trusteeship", "TrusteeshipCancel"],
    )?;
    p.one_of("StopMode", &["0", "1"])?;
    let mut st = ctx.state();
    let ledger = ledger(&mut st, &owner);
    if status == "Thaw" && ledger.available() < Decimal::ZERO {
        // Documented with HTTP 200: check `Success`, not only the status.
        return Ok(Reply::BssFailure {
            code: "-116",
            message: "Fail to modify Enduser status, Quota is less than 0.",
        });
    }
    ledger.status = status.to_owned();
    Ok(ok(Value::Bool(true)))
}

fn set_reseller_user_alarm_threshold(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.customer()?;
    ctx.p.required_one_of("AlarmType", &["quota_low_balance"])?;
    let thresholds = match ctx.p.get("AlarmThresholds") {
        None => None,
        Some(text) => {
            Some(check_thresholds(text).map_err(|why| Error::invalid("AlarmThresholds", why))?)
        }
    };
    ledger(&mut ctx.state(), &owner).alarm_thresholds = thresholds;
    Ok(ok(Value::Bool(true)))
}

/// Validates an `AlarmThresholds` JSON array string: each element has
/// `thresholdType` 0 (by amount: `thresholdAmount` ≥ 0) or 1 (by percentage:
/// integers `numerator` / `denominator`, 0 ≤ numerator ≤ denominator, denominator > 0).
pub fn check_thresholds(text: &str) -> Result<Value, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("it is not JSON ({e})"))?;
    let items = value.as_array().ok_or("it must be a JSON array")?;
    for (i, item) in items.iter().enumerate() {
        let at = |why: &str| format!("element {i}: {why}");
        let obj = item.as_object().ok_or_else(|| at("not an object"))?;
        match obj.get("thresholdType").and_then(Value::as_u64) {
            Some(0) => {
                let amount = obj
                    .get("thresholdAmount")
                    .and_then(|v| match v {
                        Value::Number(n) => Decimal::from_str_exact(&n.to_string()).ok(),
                        Value::String(s) => Decimal::from_str_exact(s).ok(),
                        _ => None,
                    })
                    .ok_or_else(|| at("thresholdType 0 needs a numeric thresholdAmount"))?;
                if amount.is_sign_negative() {
                    return Err(at("thresholdAmount must not be negative"));
                }
            }
            Some(1) => {
                let num = obj.get("numerator").and_then(Value::as_u64);
                let den = obj.get("denominator").and_then(Value::as_u64);
                match (num, den) {
                    (Some(n), Some(d)) if d > 0 && n <= d => {}
                    _ => {
                        return Err(at(
                            "thresholdType 1 needs integers 0 <= numerator <= denominator, denominator > 0",
                        ));
                    }
                }
            }
            _ => return Err(at("thresholdType must be 0 (amount) or 1 (percentage)")),
        }
    }
    Ok(value)
}
