//! Yearly/monthly orders and resources (huawei-bss.md §6, §7): list,
//! detail, cancel, pay, discounts, refund orders; resource query, renew,
//! unsubscribe, auto-renew on/off, to-on-demand.

use http::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::prices::{Amounts, Basis};
use super::state::{Order, Resource, add_months, order_type, resource_status, status};
use super::{Ctx, Reply, cbc, cbc_param, num, utc};
use crate::error::Error;

/// Largest `limit` of the listing APIs (BSS: 100).
const MAX_LIMIT: i64 = 100;

fn order_json(o: &Order, service_name: &str, customer_id: &str) -> Value {
    let discounts = if o.amounts.discount.is_zero() {
        json!([])
    } else {
        json!([{ "discount_type": "607", "discount_amount": num(o.amounts.discount) }])
    };
    json!({
        "order_id": o.id,
        "customer_id": customer_id,
        "service_type_code": o.service_type_code,
        "service_type_name": service_name,
        "source_type": 1,
        "status": o.status,
        "order_type": o.order_type,
        "amount_after_discount": num(o.amounts.amount),
        "official_amount": num(o.amounts.official),
        "measure_id": 1,
        "currency": "CNY",
        "create_time": utc(o.create_time),
        "payment_time": o.payment_time.map(utc),
        "amount_info": {
            "discounts": discounts,
            "flexipurchase_coupon_amount": 0,
            "coupon_amount": 0,
            "stored_card_amount": 0,
        },
        "enterprise_projects": [{ "id": "0", "name": "default" }],
    })
}

/// `GET /v2/orders/customer-orders` (§6.1).
pub fn list(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let limit = ctx.query_int("limit", 10, 1, MAX_LIMIT)?;
    let offset = ctx.query_int("offset", 0, 0, i64::from(i32::MAX))?;
    let want_status = match ctx.query("status") {
        None => None,
        Some(s) => Some(
            s.parse::<i32>()
                .map_err(|_| cbc_param("status must be an integer"))?,
        ),
    };
    let want_type = match ctx.query("order_type") {
        None => None,
        Some(s) => Some(
            s.parse::<i32>()
                .map_err(|_| cbc_param("order_type must be a numeric string"))?,
        ),
    };
    let want_id = ctx.query("order_id").map(str::to_owned);
    let want_service = ctx.query("service_type_code").map(str::to_owned);
    let newest_first = match ctx.query("order_by") {
        None | Some("-createTime") => true,
        Some("createTime") => false,
        Some(_) => return Err(cbc_param("order_by must be createTime or -createTime")),
    };
    let domain = ctx.account.domain_id.clone();
    let prices = ctx.prices;
    let acct = ctx.acct();
    let mut rows: Vec<&Order> = acct
        .orders
        .iter()
        .filter(|o| want_status.is_none_or(|s| o.status == s))
        .filter(|o| want_type.is_none_or(|t| o.order_type == t))
        .filter(|o| {
            want_id
                .as_deref()
                .is_none_or(|id| o.id.eq_ignore_ascii_case(id))
        })
        .filter(|o| {
            want_service
                .as_deref()
                .is_none_or(|s| o.service_type_code == s)
        })
        .collect();
    if newest_first {
        rows.reverse();
    }
    let total = rows.len();
    let page: Vec<Value> = rows
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(10))
        .map(|o| order_json(o, prices.service_name(&o.service_type_code), &domain))
        .collect();
    Ok(Reply::Json(
        json!({ "total_count": total, "order_infos": page }),
    ))
}

/// The reference lists no dedicated code for a short balance, so the sim
/// answers the generic "parameter invalid" with a message saying why.
fn insufficient_balance() -> Error {
    cbc(
        StatusCode::BAD_REQUEST,
        "CBC.0101",
        "Parameter invalid: the account balance is insufficient to pay the order.",
    )
}

fn invalid_order() -> Error {
    cbc(
        StatusCode::BAD_REQUEST,
        "CBC.30000010",
        "Invalid order. The order may not exist.",
    )
}

/// `GET /v2/orders/customer-orders/details/{order_id}` (§6.2).
pub fn detail(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let id = ctx.path_param("order_id").to_owned();
    let domain = ctx.account.domain_id.clone();
    let user = ctx.account.name.clone();
    let prices = ctx.prices;
    let acct = ctx.acct();
    let o = acct.order_mut(&id).ok_or_else(invalid_order)?.clone();
    let mut info = order_json(&o, prices.service_name(&o.service_type_code), &domain);
    info["user_name"] = json!(user);
    info["pending_payment_end_time"] = if o.status == status::PENDING_PAYMENT {
        json!(utc(o.create_time + time::Duration::days(15)))
    } else {
        Value::Null
    };
    let (period_type, period_num) = o.period.unwrap_or((2, 1));
    let line = json!({
        "order_line_item_id": format!("{}-000001", o.id),
        "service_type_code": o.service_type_code,
        "service_type_name": prices.service_name(&o.service_type_code),
        "product_id": o.product_id,
        "product_spec_desc": o.spec_desc,
        "period_type": period_type,
        "period_num": if o.order_type == order_type::UNSUBSCRIBE { Value::Null } else { json!(period_num) },
        "subscription_num": 1,
        "amount_after_discount": num(o.amounts.amount),
        "official_amount": num(o.amounts.official),
        "currency": "CNY",
        "category_code": o.service_type_code,
        "base_product_info": { "product_id": o.product_id, "product_spec_desc": o.spec_desc },
        "order_id": o.id,
    });
    Ok(Reply::Json(json!({
        "total_count": 1,
        "order_info": info,
        "order_line_items": [line],
    })))
}

/// `PUT /v2/orders/customer-orders/cancel` (§6.3): only pending payment.
pub fn cancel(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let id = ctx.required_str("order_id")?.to_owned();
    if id.len() > 64 {
        return Err(cbc(
            StatusCode::BAD_REQUEST,
            "CBC.0101",
            "Parameter invalid: order_id.",
        ));
    }
    let acct = ctx.acct();
    let o = acct.order_mut(&id).ok_or_else(invalid_order)?;
    if o.status != status::PENDING_PAYMENT {
        return Err(cbc(
            StatusCode::BAD_REQUEST,
            "CBC.99005010",
            "The order status does not allow this operation.",
        ));
    }
    o.status = status::CANCELLED;
    Ok(Reply::NoContent)
}

/// `POST /v3/orders/customer-orders/pay` (and the v2 form) (§6.4): pays a
/// pending order from the cash balance; renewals extend their resources.
pub fn pay(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let id = ctx.required_str("order_id")?.to_owned();
    for (flag, list) in [
        ("use_coupon", "coupon_infos"),
        ("use_discount", "discount_infos"),
    ] {
        match ctx.required_str(flag)? {
            "YES" => {
                if ctx
                    .body
                    .get(list)
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
                {
                    return Err(cbc_param(format_args!(
                        "{list} is required when {flag} is YES"
                    )));
                }
            }
            "NO" => {
                if ctx.body.get(list).is_some_and(|v| !v.is_null()) {
                    return Err(cbc_param(format_args!(
                        "{list} must be absent when {flag} is NO"
                    )));
                }
            }
            _ => return Err(cbc_param(format_args!("{flag} must be YES or NO"))),
        }
    }
    let now = ctx.now;
    let acct = ctx.acct();
    let o = acct.order_mut(&id).ok_or_else(invalid_order)?;
    if o.status != status::PENDING_PAYMENT {
        return Err(invalid_order());
    }
    let amount = o.amounts.amount;
    let period = o.period;
    let renewed = (o.order_type == order_type::RENEW).then(|| o.resource_ids.clone());
    if acct.cash < amount {
        return Err(insufficient_balance());
    }
    acct.cash -= amount;
    if let Some(o) = acct.order_mut(&id) {
        o.status = status::COMPLETED;
        o.payment_time = Some(now);
    }
    if let (Some(ids), Some((period_type, n))) = (renewed, period) {
        let months = if period_type == 3 { n * 12 } else { n };
        for rid in ids {
            if let Some(r) = acct.resource_mut(&rid) {
                r.expire_time = add_months(r.expire_time, months);
            }
        }
    }
    Ok(Reply::NoContent)
}

/// `GET /v2/orders/customer-orders/order-discounts?order_id=` (§6.5).
pub fn discounts(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let id = ctx
        .query("order_id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| cbc_param("order_id is required"))?
        .to_owned();
    let acct = ctx.acct();
    let o = acct.order_mut(&id).ok_or_else(invalid_order)?;
    let discounts = if o.amounts.discount.is_zero() {
        json!([])
    } else {
        json!([{
            "discount_id": "CBF0000000000607",
            "discount_value": "0.9",
            "discount_type": 3,
            "orders": [{
                "order_id": o.id,
                "order_line_items": [{
                    "order_line_item_ids": [format!("{}-000001", o.id)],
                    "discount_mode": 0,
                    "discount_amount": num(o.amounts.discount),
                    "discount_ratio": "0.9",
                }],
            }],
        }])
    };
    Ok(Reply::Json(json!({ "discounts": discounts })))
}

/// `GET /v2/orders/customer-orders/refund-orders?order_id=` (§6.5): the
/// refund lines of an unsubscribe order (`measure_id` is a string here).
pub fn refund_orders(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let id = ctx
        .query("order_id")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| cbc_param("order_id is required"))?
        .to_owned();
    let domain = ctx.account.domain_id.clone();
    let acct = ctx.acct();
    let o = acct.order_mut(&id).ok_or_else(invalid_order)?.clone();
    if o.order_type != order_type::UNSUBSCRIBE {
        return Err(cbc(
            StatusCode::BAD_REQUEST,
            "CBC.99005026",
            "The order is not a downgrade or unsubscribe order.",
        ));
    }
    let infos: Vec<Value> = o
        .resource_ids
        .iter()
        .enumerate()
        .map(|(i, rid)| {
            json!({
                "id": format!("{}-R{}", o.id, i + 1),
                "amount": num(o.amounts.amount),
                "measure_id": "1",
                "customer_id": domain,
                "resource_type_code": "hws.resource.type.vm",
                "service_type_code": o.service_type_code,
                "region_code": "cn-north-4",
                "base_order_id": o.id,
                "resource_id": rid,
            })
        })
        .collect();
    Ok(Reply::Json(
        json!({ "total_count": infos.len(), "refund_infos": infos }),
    ))
}

fn resource_json(r: &Resource, spec_desc: &str, service_name: &str) -> Value {
    json!({
        "id": r.id.replace('-', ""),
        "resource_id": r.id,
        "resource_name": r.name,
        "region_code": r.region,
        "service_type_code": r.service_type_code,
        "service_type_name": service_name,
        "resource_type_code": r.resource_type_code,
        "resource_spec_code": r.spec,
        "project_id": "c4c24000000000000000000000599c2",
        "product_id": r.product_id,
        "parent_resource_id": null,
        "is_main_resource": 1,
        "status": r.status,
        "effective_time": utc(r.effective_time),
        "expire_time": utc(r.expire_time),
        "expire_policy": if r.auto_renew.is_some() { 3 } else { 0 },
        "product_spec_desc": spec_desc,
        "spec_size": if r.size > 1 { json!(r.size) } else { Value::Null },
        "spec_size_measure_id": if r.size > 1 { json!(17) } else { Value::Null },
        "update_time": utc(r.effective_time),
        "enterprise_project": { "id": "0", "name": "default" },
    })
}

/// `POST /v2/orders/suscriptions/resources/query` (§7.1).
pub fn resources(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let body = if ctx.body.is_null() {
        json!({})
    } else {
        ctx.body.clone()
    };
    let ids: Option<Vec<String>> = body.get("resource_ids").and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    });
    if ids.as_ref().is_some_and(|i| i.len() > 50) {
        return Err(cbc_param("resource_ids holds at most 50 ids"));
    }
    if body.get("service_type_code").and_then(Value::as_str) == Some("") {
        return Err(cbc_param("service_type_code must not be empty"));
    }
    let statuses: Option<Vec<i64>> = body
        .get("status_list")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_i64).collect());
    let order_id = body
        .get("order_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let offset = body.get("offset").and_then(Value::as_u64).unwrap_or(0);
    let limit = body.get("limit").and_then(Value::as_u64).unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(cbc_param("limit must be 1 to 100"));
    }
    let prices = ctx.prices;
    let acct = ctx.acct();
    let rows: Vec<&Resource> = acct
        .resources
        .iter()
        .filter(|r| ids.as_ref().is_none_or(|i| i.contains(&r.id)))
        .filter(|r| {
            statuses
                .as_ref()
                .is_none_or(|s| s.contains(&i64::from(r.status)))
        })
        .filter(|r| order_id.as_deref().is_none_or(|o| r.order_id == o))
        .collect();
    let total = rows.len();
    let data: Vec<Value> = rows
        .into_iter()
        .skip(usize::try_from(offset).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(10))
        .map(|r| {
            let sku = prices.by_product_id(&r.product_id);
            resource_json(
                r,
                sku.map_or("", |s| s.spec_desc.as_str()),
                prices.service_name(&r.service_type_code),
            )
        })
        .collect();
    Ok(Reply::Json(json!({ "total_count": total, "data": data })))
}

fn period_months(ctx: &Ctx<'_>) -> Result<(i32, u32, Basis), Error> {
    let period_type = ctx.required_int("period_type")?;
    let period_num = ctx.required_int("period_num")?;
    match (period_type, period_num) {
        (2, 1..=11) => Ok((2, u32::try_from(period_num).unwrap_or(1), Basis::Month)),
        (3, 1..=3) => Ok((3, u32::try_from(period_num).unwrap_or(1), Basis::Year)),
        _ => Err(cbc_param(
            "period_type/period_num: 1-11 months (2) or 1-3 years (3)",
        )),
    }
}

fn fail(id: &str, code: &str, msg: &str) -> Value {
    json!({ "resource_id": id, "error_code": code, "error_msg": msg })
}

/// `POST /v2/orders/subscriptions/resources/renew` (§7.2): one renewal
/// order per call for the known resources (paid at once when
/// `is_auto_pay` is 1); unknown ones are reported in `fail_resource_infos`
/// inside the 200 answer.
pub fn renew(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let ids = ctx.resource_ids(10)?;
    let (period_type, n, basis) = period_months(ctx)?;
    let auto_pay = match ctx.body.get("is_auto_pay") {
        None | Some(Value::Null) => false,
        Some(v) => match v.as_i64() {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(cbc_param("is_auto_pay must be 0 or 1")),
        },
    };
    let now = ctx.now;
    let order_id = ctx.state.next_order_id(now);
    let prices = ctx.prices;
    let acct = ctx.acct();
    let mut total = Amounts::ZERO;
    let mut renewed = Vec::new();
    let mut failed = Vec::new();
    let mut service = String::new();
    let mut product = (String::new(), String::new());
    for id in &ids {
        let Some(r) = acct.resources.iter().find(|r| &r.id == id) else {
            failed.push(fail(
                id,
                "CBC.30050009",
                "The resource has expired and been deleted, or does not exist.",
            ));
            continue;
        };
        if r.status != resource_status::IN_USE {
            failed.push(fail(id, "CBC.30050013", "The product cannot be renewed."));
            continue;
        }
        if acct
            .orders
            .iter()
            .any(|o| o.status == status::PENDING_PAYMENT && o.resource_ids.contains(id))
        {
            failed.push(fail(
                id,
                "CBC.30050010",
                "The resource is in an unpaid order.",
            ));
            continue;
        }
        let Some(sku) = prices.by_product_id(&r.product_id) else {
            failed.push(fail(id, "CBC.3006", "Unsupported cloud service type."));
            continue;
        };
        total = total.plus(sku.price(basis, Decimal::from(n), 1, r.size, 2));
        service.clone_from(&r.service_type_code);
        product = (sku.product_id.clone(), sku.spec_desc.clone());
        renewed.push(id.clone());
    }
    if renewed.is_empty() {
        return Ok(Reply::Json(
            json!({ "order_ids": [], "fail_resource_infos": failed }),
        ));
    }
    if auto_pay && acct.cash < total.amount {
        return Err(insufficient_balance());
    }
    let mut order = Order {
        id: order_id.clone(),
        order_type: order_type::RENEW,
        status: status::PENDING_PAYMENT,
        service_type_code: service,
        amounts: total,
        create_time: now,
        payment_time: None,
        product_id: product.0,
        spec_desc: product.1,
        period: Some((period_type, n)),
        resource_ids: renewed.clone(),
    };
    if auto_pay {
        acct.cash -= total.amount;
        order.status = status::COMPLETED;
        order.payment_time = Some(now);
        let months = if period_type == 3 { n * 12 } else { n };
        for rid in &renewed {
            if let Some(r) = acct.resource_mut(rid) {
                r.expire_time = add_months(r.expire_time, months);
            }
        }
    }
    acct.orders.push(order);
    Ok(Reply::Json(
        json!({ "order_ids": [order_id], "fail_resource_infos": failed }),
    ))
}

/// `POST /v2/orders/subscriptions/resources/unsubscribe` (§7.3): closes the
/// resources and refunds the unused part (the sim refunds the order's
/// after-discount amount pro rata over the remaining days, to the cent).
pub fn unsubscribe(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let ids = ctx.resource_ids(10)?;
    match ctx.required_int("unsubscribe_type")? {
        1 | 2 => {}
        _ => return Err(cbc_param("unsubscribe_type must be 1 or 2")),
    }
    if let Some(r) = ctx
        .body
        .get("unsubscribe_reason_type")
        .filter(|v| !v.is_null())
        && !r.as_i64().is_some_and(|n| (1..=5).contains(&n))
    {
        return Err(cbc_param("unsubscribe_reason_type must be 1 to 5"));
    }
    let now = ctx.now;
    let order_id = ctx.state.next_order_id(now);
    let acct = ctx.acct();
    let mut refund = Decimal::ZERO;
    let mut closed = Vec::new();
    let mut failed = Vec::new();
    let mut service = String::new();
    for id in &ids {
        let paid = acct
            .resources
            .iter()
            .find(|r| &r.id == id && r.status == resource_status::IN_USE)
            .map(|r| {
                (
                    r.order_id.clone(),
                    r.effective_time,
                    r.expire_time,
                    r.service_type_code.clone(),
                )
            });
        let Some((origin, start, end, svc)) = paid else {
            failed.push(fail(
                id,
                "CBC.30050009",
                "The resource has expired and been deleted, or does not exist.",
            ));
            continue;
        };
        let paid_amount = acct
            .orders
            .iter()
            .find(|o| o.id == origin)
            .map_or(Decimal::ZERO, |o| o.amounts.amount);
        let whole = (end - start).whole_seconds().max(1);
        let left = (end - now).whole_seconds().clamp(0, whole);
        refund += (paid_amount * Decimal::from(left) / Decimal::from(whole)).round_dp(2);
        if let Some(r) = acct.resource_mut(id) {
            r.status = resource_status::CLOSED;
            r.auto_renew = None;
        }
        service = svc;
        closed.push(id.clone());
    }
    if closed.is_empty() {
        return Err(cbc(
            StatusCode::BAD_REQUEST,
            "CBC.30050009",
            "The resource has expired and been deleted, or does not exist.",
        ));
    }
    acct.cash += refund;
    acct.orders.push(Order {
        id: order_id.clone(),
        order_type: order_type::UNSUBSCRIBE,
        status: status::COMPLETED,
        service_type_code: service,
        amounts: Amounts {
            official: -refund,
            discount: Decimal::ZERO,
            amount: -refund,
        },
        create_time: now,
        payment_time: Some(now),
        product_id: String::new(),
        spec_desc: String::new(),
        period: None,
        resource_ids: closed,
    });
    Ok(Reply::Json(
        json!({ "order_ids": [order_id], "fail_resource_infos": failed }),
    ))
}

fn no_resource() -> Error {
    cbc(
        StatusCode::BAD_REQUEST,
        "CBC.99003012",
        "The resource ID does not exist.",
    )
}

/// `POST .../autorenew/{resource_id}` (§7.4): 204.
pub fn autorenew_on(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let id = ctx.path_param("resource_id").to_owned();
    let times = match ctx.body.get("auto_renew_times") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .filter(|n| *n <= 99)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| cbc_param("auto_renew_times must be 0 to 99"))?,
    };
    let acct = ctx.acct();
    let r = acct.resource_mut(&id).ok_or_else(no_resource)?;
    if r.status != resource_status::IN_USE {
        return Err(cbc(
            StatusCode::BAD_REQUEST,
            "CBC.99003602",
            "An expired or frozen resource cannot be set to auto-renew.",
        ));
    }
    r.auto_renew = Some(times);
    Ok(Reply::NoContent)
}

/// `DELETE .../autorenew/{resource_id}` (§7.4): 204.
pub fn autorenew_off(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let id = ctx.path_param("resource_id").to_owned();
    let acct = ctx.acct();
    let r = acct.resource_mut(&id).ok_or_else(no_resource)?;
    if r.auto_renew.is_none() {
        return Err(cbc(
            StatusCode::BAD_REQUEST,
            "CBC.99003605",
            "Auto-renewal has already been cancelled.",
        ));
    }
    r.auto_renew = None;
    Ok(Reply::NoContent)
}

/// `POST .../to-on-demand` (§7.5): 200 with `error_details` for failures only.
pub fn to_on_demand(ctx: &mut Ctx<'_>) -> Result<Reply, Error> {
    let ids = ctx.resource_ids(100)?;
    match ctx.required_str("operation")? {
        "SET_UP" | "CANCEL" => {}
        _ => return Err(cbc_param("operation must be SET_UP or CANCEL")),
    }
    let acct = ctx.acct();
    let details: Vec<Value> = ids
        .iter()
        .filter(|id| {
            !acct
                .resources
                .iter()
                .any(|r| &r.id == *id && r.status == resource_status::IN_USE)
        })
        .map(|id| {
            json!({
                "error_code": "CBC.30050009",
                "error_msg": "The resource has expired and been deleted, or does not exist.",
                "id": id,
            })
        })
        .collect();
    Ok(Reply::Json(json!({ "error_details": details })))
}
