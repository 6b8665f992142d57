//! BssOpenApi (`2017-12-14`) product, price, instance, order and bill-export
//! actions (reference `alibaba-bss.md` §4–§6). The reseller quota actions are
//! in [`super::reseller`].
//!
//! Simplifications, documented because a test might meet them:
//! * `CreateInstance` / `ModifyInstance` / `RenewInstance` auto-pay (as the
//!   real ones do); pay-as-you-go orders are for `0.00` (charges come later).
//! * `ModifyInstance` charges the monthly price difference of the changed
//!   modules for the remaining months (at least one); a `Downgrade` makes a
//!   `Refund` order of `0.00`.
//! * `ClientToken`: the same token from the same owner for the same action
//!   answers the first `Data` again and creates nothing.

use std::collections::BTreeMap;

use http::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::params::{Entry, entry_field, not_one_of, split_config};
use super::prices::{Basis, Module, Product, Quote, json_number, money_string};
use super::state::{
    BillSubscription, Instance, ModuleConfig, Order, State, add_months, fmt_time, months_between,
};
use super::{ActionFn, Ctx, Reply};
use crate::aliyun::parse_timestamp;
use crate::error::Error;

/// `HostId` / `HostName` of the China site.
const HOST: &str = "cn";
const DEFAULT_REGION: &str = "cn-hangzhou";
const SUBSCRIPTION_TYPES: [&str; 2] = ["Subscription", "PayAsYouGo"];
/// `SubscribeBillToOSS` bill types.
const BILL_TYPES: [&str; 6] = [
    "BillingItemDetailForBillingPeriod",
    "InstanceDetailForBillingPeriod",
    "BillingItemDetailMonthly",
    "InstanceDetailMonthly",
    "SplitItemDetailDaily",
    "MonthBill",
];

/// The BSS action named `action`, if the sim has it.
pub fn route(action: &str) -> Option<ActionFn> {
    Some(match action {
        "QueryProductList" => query_product_list,
        "DescribePricingModule" => describe_pricing_module,
        "GetSubscriptionPrice" => get_subscription_price,
        "GetPayAsYouGoPrice" => get_pay_as_you_go_price,
        "CreateInstance" => create_instance,
        "QueryAvailableInstances" => query_available_instances,
        "ModifyInstance" => modify_instance,
        "RenewInstance" => renew_instance,
        "QueryOrders" => query_orders,
        "GetOrderDetail" => get_order_detail,
        "CancelOrder" => cancel_order,
        "SubscribeBillToOSS" => subscribe_bill_to_oss,
        "UnsubscribeBillToOSS" => unsubscribe_bill_to_oss,
        "QueryBillToOSSSubscription" => query_bill_to_oss_subscription,
        _ => return None,
    })
}

// ---------------------------------------------------------------- products

fn page(ctx: &Ctx<'_>, max_size: u32) -> Result<(u32, u32), Error> {
    let num = ctx.p.int_in("PageNum", 1..=u32::MAX)?.unwrap_or(1);
    let size = ctx.p.int_in("PageSize", 1..=max_size)?.unwrap_or(20);
    Ok((num, size))
}

fn paged<T>(items: Vec<T>, num: u32, size: u32) -> Vec<T> {
    let skip = usize::try_from(u64::from(num - 1) * u64::from(size)).unwrap_or(usize::MAX);
    items.into_iter().skip(skip).take(size as usize).collect()
}

fn query_product_list(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    ctx.owner()?;
    ctx.p.required("PageNum")?;
    let (num, size) = page(ctx, 100)?;
    ctx.p.boolean("QueryTotalCount")?;
    let mut all = Vec::new();
    for (code, product) in &ctx.prices.products {
        for (subscription, kind, label) in [
            (true, "Subscription", "Subscription"),
            (false, "PayAsYouGo", "Pay-as-you-go"),
        ] {
            if product.sells(subscription) {
                all.push(json!({
                    "ProductCode": code,
                    "ProductType": product.product_type,
                    "ProductName": format!("{} ({label})", product.name),
                    "SubscriptionType": kind,
                }));
            }
        }
    }
    let total = all.len();
    Ok(Reply::success(json!({
        "PageNum": num,
        "PageSize": size,
        "TotalCount": total,
        "ProductList": { "Product": paged(all, num, size) },
    })))
}

fn describe_pricing_module(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    ctx.owner()?;
    let code = ctx.p.required("ProductCode")?;
    let kind = ctx
        .p
        .required_one_of("SubscriptionType", &SUBSCRIPTION_TYPES)?;
    let product = ctx.prices.product(code)?;
    let subscription = kind == "Subscription";
    let mut modules = Vec::new();
    let mut attributes: BTreeMap<&str, Value> = BTreeMap::new();
    for (mcode, m) in product.module.iter().filter(|(_, m)| m.sells(subscription)) {
        let price_type = if subscription {
            Basis::Month
        } else {
            m.payg_basis()
        };
        modules.push(json!({
            "ModuleCode": mcode,
            "ModuleName": m.name,
            "PriceType": price_type.to_string(),
            "Currency": ctx.prices.currency,
            "ConfigList": { "ConfigList": m.config },
        }));
        for prop in &m.config {
            attributes
                .entry(prop)
                .or_insert_with(|| attribute(m, prop, subscription));
        }
    }
    Ok(Reply::success(json!({
        "ModuleList": { "Module": modules },
        "AttributeList": { "Attribute": attributes.into_values().collect::<Vec<_>>() },
    })))
}

fn attribute(m: &Module, prop: &str, subscription: bool) -> Value {
    let single = |v: &str| json!({ "Type": "single_string", "Value": v, "Name": v, "Remark": "" });
    let (unit, values): (&str, Vec<Value>) = if m.per.as_deref() == Some(prop) {
        (
            &m.unit,
            vec![
                json!({ "Type": "range_float", "Value": "0-100000", "Name": prop, "Remark": "step 1" }),
            ],
        )
    } else if m.key.as_deref() == Some(prop) {
        let rows = m
            .price
            .iter()
            .filter(|(_, r)| {
                if subscription {
                    r.month.is_some()
                } else {
                    r.hour.is_some() || r.usage.is_some()
                }
            })
            .map(|(k, _)| single(k))
            .collect();
        ("", rows)
    } else {
        (
            "",
            m.values
                .get(prop)
                .map(|vs| vs.iter().map(|v| single(v)).collect())
                .unwrap_or_default(),
        )
    };
    json!({ "Code": prop, "Name": prop, "Unit": unit, "Values": { "AttributeValue": values } })
}

// ------------------------------------------------------------------ prices

/// Prices `ModuleList.N` entries: `(ModuleCode, unit price)` per entry.
fn price_module_list(
    product_code: &str,
    product: &Product,
    entries: &[Entry<'_>],
    basis_of: impl Fn(&Entry<'_>, usize) -> Result<Basis, Error>,
) -> Result<Vec<(String, Decimal)>, Error> {
    if entries.is_empty() {
        return Err(Error::missing("ModuleList"));
    }
    let mut items = Vec::with_capacity(entries.len());
    for (n, entry) in entries.iter().enumerate() {
        let code = entry_field(entry, "ModuleList", n, "ModuleCode")?;
        let config = entry_field(entry, "ModuleList", n, "Config")?;
        let module = product.module(product_code, code)?;
        let pairs = split_config(code, config)?;
        let basis = basis_of(entry, n)?;
        let unit = module.unit_price(product_code, code, basis, |k| lookup(&pairs, k))?;
        items.push((code.to_owned(), unit));
    }
    Ok(items)
}

fn lookup<'v>(pairs: &[(&str, &'v str)], key: &str) -> Option<&'v str> {
    pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn get_subscription_price(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    ctx.owner()?;
    let p = &ctx.p;
    let code = p.required("ProductCode")?;
    p.required_one_of("SubscriptionType", &["Subscription"])?;
    let order_type = p.required_one_of("OrderType", &["NewOrder", "Renewal", "Upgrade"])?;
    let unit = p
        .one_of("ServicePeriodUnit", &["Year", "Month"])?
        .unwrap_or("Month");
    let periods = p.int_in("ServicePeriodQuantity", 1..=120)?.unwrap_or(1);
    let quantity = p.int_in("Quantity", 1..=1000)?.unwrap_or(1);
    if order_type == "Upgrade" {
        p.required("InstanceId")?;
    }
    let product = ctx.prices.product(code)?;
    let entries = p.list("ModuleList", 50)?;
    let items = price_module_list(code, product, &entries, |entry, n| {
        if let Some(status) = entry.get("ModuleStatus")
            && !["1", "2"].contains(status)
        {
            return Err(not_one_of(
                &format!("ModuleList.{}.ModuleStatus", n + 1),
                status,
                &["1", "2"],
            ));
        }
        Ok(Basis::Month)
    })?;
    let months = if unit == "Year" {
        periods * 12
    } else {
        periods
    };
    let quote = Quote::new(
        items,
        months,
        quantity,
        ctx.prices.discount_for_months(months),
    );
    Ok(Reply::success(json!({
        "Currency": ctx.prices.currency,
        "OriginalPrice": json_number(quote.original),
        "DiscountPrice": json_number(quote.discount),
        "TradePrice": json_number(quote.trade),
        "Quantity": quantity,
        "ModuleDetails": quote.module_details(),
        "PromotionDetails": quote.promotion_details(),
    })))
}

fn get_pay_as_you_go_price(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    ctx.owner()?;
    let p = &ctx.p;
    let code = p.required("ProductCode")?;
    p.required_one_of("SubscriptionType", &["PayAsYouGo"])?;
    let product = ctx.prices.product(code)?;
    let entries = p.list("ModuleList", 50)?;
    const PRICE_TYPES: [&str; 4] = ["Hour", "Usage", "Month", "Year"];
    let items = price_module_list(code, product, &entries, |entry, n| {
        let pt = entry_field(entry, "ModuleList", n, "PriceType")?;
        Basis::parse(pt)
            .filter(|_| PRICE_TYPES.contains(&pt))
            .ok_or_else(|| not_one_of("PriceType", pt, &PRICE_TYPES))
    })?;
    let quote = Quote::new(items, 1, 1, None);
    Ok(Reply::success(json!({
        "Currency": ctx.prices.currency,
        "ModuleDetails": quote.module_details(),
        "PromotionDetails": quote.promotion_details(),
    })))
}

// --------------------------------------------------------------- instances

/// `Parameter.N.Code` / `.Value` as `(code, value)` pairs (at least one).
fn parameter_list<'a>(ctx: &Ctx<'a>) -> Result<Vec<(&'a str, &'a str)>, Error> {
    let entries = ctx.p.list("Parameter", 100)?;
    if entries.is_empty() {
        return Err(Error::missing("Parameter"));
    }
    entries
        .iter()
        .enumerate()
        .map(|(n, e)| {
            Ok((
                entry_field(e, "Parameter", n, "Code")?,
                e.get("Value").copied().unwrap_or(""),
            ))
        })
        .collect()
}

/// The product's modules fully configured by `params`, priced for `basis`
/// (subscription: Month; pay-as-you-go: the module's own basis).
fn modules_from_parameters(
    product_code: &str,
    product: &Product,
    params: &[(&str, &str)],
    subscription: bool,
) -> Result<Vec<(ModuleConfig, Decimal)>, Error> {
    let mut out = Vec::new();
    for (mcode, m) in &product.module {
        if !m.sells(subscription) || !m.config.iter().all(|c| lookup(params, c).is_some()) {
            continue;
        }
        let basis = if subscription {
            Basis::Month
        } else {
            m.payg_basis()
        };
        let unit = m.unit_price(product_code, mcode, basis, |k| lookup(params, k))?;
        let props = m
            .config
            .iter()
            .map(|c| (c.clone(), lookup(params, c).unwrap_or_default().to_owned()))
            .collect();
        out.push((
            ModuleConfig {
                code: mcode.clone(),
                name: m.name.clone(),
                props,
            },
            unit,
        ));
    }
    if out.is_empty() {
        let needs: Vec<String> = product
            .module
            .iter()
            .map(|(c, m)| format!("{c} needs {}", m.config.join("+")))
            .collect();
        return Err(Error::customer(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            format!(
                "No pricing module of product \"{product_code}\" is fully configured by Parameter ({}).",
                needs.join("; ")
            ),
            "invalid_parameter",
        ));
    }
    Ok(out)
}

fn not_for_ecs_rds(code: &str) -> Result<(), Error> {
    if matches!(code, "ecs" | "rds") {
        return Err(Error::invalid(
            "ProductCode",
            format_args!(
                "\"{code}\" is bought with its own API (RunInstances / CreateDBInstance), not BSS"
            ),
        ));
    }
    Ok(())
}

/// The answer stored for a `ClientToken`, if this owner already used it.
fn replay(st: &mut State, owner: &str, action: &str, token: Option<&str>) -> Option<Value> {
    let token = token?;
    st.account(owner)
        .tokens
        .get(&(action.to_owned(), token.to_owned()))
        .cloned()
}

fn remember(st: &mut State, owner: &str, action: &str, token: Option<&str>, data: &Value) {
    if let Some(token) = token {
        st.account(owner)
            .tokens
            .insert((action.to_owned(), token.to_owned()), data.clone());
    }
}

fn find_instance<'s>(
    st: &'s mut State,
    owner: &str,
    id: &str,
    product: &str,
) -> Result<&'s mut Instance, Error> {
    st.account(owner)
        .instances
        .iter_mut()
        .find(|i| i.id == id && i.product_code == product && i.status != "Pending")
        .ok_or_else(|| {
            Error::invalid(
                "InstanceId",
                format_args!("instance \"{id}\" of product \"{product}\" is not found"),
            )
        })
}

/// A paid order, as the auto-paying BSS APIs make them.
struct NewOrder<'a> {
    order_type: &'static str,
    product_code: &'a str,
    product_type: &'a str,
    subscription_type: &'static str,
    region: String,
    instance_id: String,
    modules: Vec<ModuleConfig>,
    quote: Option<Quote>,
    usage: (i64, Option<i64>),
}

fn place_paid_order(st: &mut State, owner: &str, now: i64, o: NewOrder<'_>) -> String {
    let id = st.next_order_id();
    let (gross, pretax) = o
        .quote
        .as_ref()
        .map_or((Decimal::ZERO, Decimal::ZERO), |q| (q.original, q.trade));
    st.account(owner).orders.push(Order {
        id: id.clone(),
        order_type: o.order_type,
        payment_status: "Paid",
        create_time: now,
        payment_time: Some(now),
        product_code: o.product_code.to_owned(),
        product_type: o.product_type.to_owned(),
        subscription_type: o.subscription_type,
        region: o.region,
        quantity: 1,
        instance_ids: vec![o.instance_id],
        modules: o.modules,
        gross,
        pretax,
        usage_start: o.usage.0,
        usage_end: o.usage.1,
    });
    id
}

fn subscription_type(s: &str) -> &'static str {
    if s == "Subscription" {
        "Subscription"
    } else {
        "PayAsYouGo"
    }
}

fn create_instance(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.owner()?;
    let p = &ctx.p;
    let code = p.required("ProductCode")?;
    not_for_ecs_rds(code)?;
    let product = ctx.prices.product(code)?;
    let product_type = p.get("ProductType").unwrap_or(&product.product_type);
    let kind = subscription_type(p.required_one_of("SubscriptionType", &SUBSCRIPTION_TYPES)?);
    let subscription = kind == "Subscription";
    let period = p.number::<u32>("Period")?;
    let months = match (subscription, period) {
        (true, None) => return Err(Error::missing("Period")),
        (true, Some(m)) if m == 0 || m % 12 != 0 => {
            return Err(Error::invalid(
                "Period",
                format_args!("{m} is not a positive multiple of 12 months"),
            ));
        }
        (true, Some(m)) => Some(m),
        (false, _) => None,
    };
    p.int_in("PricingCycle", 1..=3)?;
    let renewal = p
        .one_of("RenewalStatus", &["AutoRenewal", "ManualRenewal"])?
        .unwrap_or("ManualRenewal");
    let renew_period = p.number::<u32>("RenewPeriod")?;
    if renewal == "AutoRenewal" && renew_period.is_none() {
        return Err(Error::missing("RenewPeriod"));
    }
    if let Some(logistics) = p.get("Logistics")
        && !serde_json::from_str::<Value>(logistics).is_ok_and(|v| v.is_object())
    {
        return Err(Error::invalid("Logistics", "it must be a JSON object"));
    }
    let params = parameter_list(ctx)?;
    let modules = modules_from_parameters(code, product, &params, subscription)?;
    let region = lookup(&params, "Region")
        .or(p.get("Region"))
        .unwrap_or(DEFAULT_REGION)
        .to_owned();
    let token = p.get("ClientToken");

    let mut st = ctx.state();
    if let Some(data) = replay(&mut st, &owner, "CreateInstance", token) {
        return Ok(Reply::success(data));
    }
    let quote = months.map(|m| {
        let items = modules
            .iter()
            .map(|(mc, unit)| (mc.code.clone(), *unit))
            .collect();
        Quote::new(items, m, 1, ctx.prices.discount_for_months(m))
    });
    let end = months.map(|m| add_months(ctx.now, m));
    let instance_id = st.next_instance_id(&product.instance_prefix);
    let module_configs: Vec<ModuleConfig> = modules.into_iter().map(|(mc, _)| mc).collect();
    let order_id = place_paid_order(
        &mut st,
        &owner,
        ctx.now,
        NewOrder {
            order_type: "New",
            product_code: code,
            product_type,
            subscription_type: kind,
            region: region.clone(),
            instance_id: instance_id.clone(),
            modules: module_configs.clone(),
            quote,
            usage: (ctx.now, end),
        },
    );
    st.account(&owner).instances.push(Instance {
        id: instance_id.clone(),
        product_code: code.to_owned(),
        product_type: product_type.to_owned(),
        subscription_type: kind,
        region,
        status: "Normal",
        create_time: ctx.now,
        end_time: end,
        renew_status: renewal.to_owned(),
        renew_period: renew_period.unwrap_or(0),
        modules: module_configs,
        ecs: None,
    });
    let data = json!({ "OrderId": order_id, "InstanceId": instance_id });
    remember(&mut st, &owner, "CreateInstance", token, &data);
    Ok(Reply::success(data))
}

fn modify_instance(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.owner()?;
    let p = &ctx.p;
    let code = p.required("ProductCode")?;
    not_for_ecs_rds(code)?;
    let product = ctx.prices.product(code)?;
    let kind = subscription_type(p.required_one_of("SubscriptionType", &SUBSCRIPTION_TYPES)?);
    let modify = p.required_one_of("ModifyType", &["Upgrade", "Downgrade"])?;
    let instance_id = p.get("InstanceId");
    let params = parameter_list(ctx)?;
    let token = p.get("ClientToken");

    let mut st = ctx.state();
    if let Some(data) = replay(&mut st, &owner, "ModifyInstance", token) {
        return Ok(Reply::success(data));
    }
    let subscription = kind == "Subscription";
    // Old configuration overlaid with the changed attributes.
    let (old, remaining, region, product_type) = match instance_id {
        Some(id) => {
            let inst = find_instance(&mut st, &owner, id, code)?;
            let remaining = inst.end_time.map(|end| months_between(ctx.now, end));
            (
                inst.modules.clone(),
                remaining,
                inst.region.clone(),
                inst.product_type.clone(),
            )
        }
        None => (
            Vec::new(),
            None,
            DEFAULT_REGION.to_owned(),
            product.product_type.clone(),
        ),
    };
    let mut merged: Vec<(&str, &str)> = old
        .iter()
        .flat_map(|m| m.props.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    for (k, v) in &params {
        merged.retain(|(mk, _)| mk != k);
        merged.push((k, v));
    }
    let new_modules = modules_from_parameters(code, product, &merged, subscription)?;
    let quote = if modify == "Upgrade" && subscription {
        let months = remaining.unwrap_or(1);
        let mut items = Vec::new();
        for (mc, new_unit) in &new_modules {
            let old_unit = match old.iter().find(|o| o.code == mc.code) {
                Some(o) => {
                    let m = product.module(code, &o.code)?;
                    let props: Vec<(&str, &str)> = o
                        .props
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    m.unit_price(code, &o.code, Basis::Month, |k| lookup(&props, k))?
                }
                None => Decimal::ZERO,
            };
            items.push((mc.code.clone(), (*new_unit - old_unit).max(Decimal::ZERO)));
        }
        Some(Quote::new(
            items,
            months,
            1,
            ctx.prices.discount_for_months(months),
        ))
    } else {
        None
    };
    let module_configs: Vec<ModuleConfig> = new_modules.into_iter().map(|(mc, _)| mc).collect();
    if let Some(id) = instance_id {
        find_instance(&mut st, &owner, id, code)?.modules = module_configs.clone();
    }
    let order_id = place_paid_order(
        &mut st,
        &owner,
        ctx.now,
        NewOrder {
            order_type: if modify == "Upgrade" {
                "Upgrade"
            } else {
                "Refund"
            },
            product_code: code,
            product_type: &product_type,
            subscription_type: kind,
            region,
            instance_id: instance_id.unwrap_or_default().to_owned(),
            modules: module_configs,
            quote,
            usage: (ctx.now, remaining.map(|m| add_months(ctx.now, m))),
        },
    );
    let data = json!({ "OrderId": order_id, "HostId": HOST });
    remember(&mut st, &owner, "ModifyInstance", token, &data);
    Ok(Reply::success(data))
}

fn renew_instance(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.owner()?;
    let p = &ctx.p;
    let code = p.required("ProductCode")?;
    not_for_ecs_rds(code)?;
    let product = ctx.prices.product(code)?;
    let id = p.required("InstanceId")?;
    let months = p
        .number::<u32>("RenewPeriod")?
        .ok_or_else(|| Error::missing("RenewPeriod"))?;
    if !matches!(months, 1..=9 | 12 | 24 | 36) {
        return Err(Error::invalid(
            "RenewPeriod",
            format_args!("{months} is not one of 1-9, 12, 24, 36 (months)"),
        ));
    }
    let token = p.get("ClientToken");

    let mut st = ctx.state();
    if let Some(data) = replay(&mut st, &owner, "RenewInstance", token) {
        return Ok(Reply::success(data));
    }
    let inst = find_instance(&mut st, &owner, id, code)?;
    let Some(end) = inst.end_time else {
        return Err(Error::invalid(
            "InstanceId",
            format_args!("instance \"{id}\" is pay-as-you-go and is not renewed"),
        ));
    };
    let mut items = Vec::new();
    for mc in &inst.modules {
        let m = product.module(code, &mc.code)?;
        let props: Vec<(&str, &str)> = mc
            .props
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        items.push((
            mc.code.clone(),
            m.unit_price(code, &mc.code, Basis::Month, |k| lookup(&props, k))?,
        ));
    }
    let quote = Quote::new(items, months, 1, ctx.prices.discount_for_months(months));
    let new_end = add_months(end.max(ctx.now), months);
    inst.end_time = Some(new_end);
    let (region, product_type, modules) = (
        inst.region.clone(),
        inst.product_type.clone(),
        inst.modules.clone(),
    );
    let order_id = place_paid_order(
        &mut st,
        &owner,
        ctx.now,
        NewOrder {
            order_type: "Renew",
            product_code: code,
            product_type: &product_type,
            subscription_type: "Subscription",
            region,
            instance_id: id.to_owned(),
            modules,
            quote: Some(quote),
            usage: (end, Some(new_end)),
        },
    );
    let data = json!({ "OrderId": order_id });
    remember(&mut st, &owner, "RenewInstance", token, &data);
    Ok(Reply::success(data))
}

fn time_param(ctx: &Ctx<'_>, name: &str) -> Result<Option<i64>, Error> {
    ctx.p
        .get(name)
        .map(|v| {
            parse_timestamp(v)
                .map(|t| t.unix_timestamp())
                .ok_or_else(|| {
                    Error::invalid(name, format_args!("\"{v}\" is not yyyy-MM-ddTHH:mm:ssZ"))
                })
        })
        .transpose()
}

fn within(t: i64, start: Option<i64>, end: Option<i64>) -> bool {
    start.is_none_or(|s| t >= s) && end.is_none_or(|e| t <= e)
}

fn query_available_instances(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.owner()?;
    let p = &ctx.p;
    let code = p.get("ProductCode");
    let product_type = p.get("ProductType");
    if p.get("Region").is_some() && code.is_none() {
        return Err(Error::missing("ProductCode"));
    }
    let region = p.get("Region");
    let kind = p.one_of("SubscriptionType", &SUBSCRIPTION_TYPES)?;
    let renew = p.one_of(
        "RenewStatus",
        &["AutoRenewal", "ManualRenewal", "NotRenewal"],
    )?;
    let ids: Option<Vec<&str>> = p
        .get("InstanceIDs")
        .map(|s| s.split(',').map(str::trim).collect());
    if ids.as_ref().is_some_and(|ids| ids.len() > 100) {
        return Err(Error::invalid("InstanceIDs", "at most 100 ids are allowed"));
    }
    let (cs, ce) = (
        time_param(ctx, "CreateTimeStart")?,
        time_param(ctx, "CreateTimeEnd")?,
    );
    let (es, ee) = (
        time_param(ctx, "EndTimeStart")?,
        time_param(ctx, "EndTimeEnd")?,
    );
    let (num, size) = page(ctx, 300)?;

    let st = ctx.state();
    let empty = Vec::new();
    let instances = st.account_ref(&owner).map_or(&empty, |a| &a.instances);
    let matching: Vec<&Instance> = instances
        .iter()
        .filter(|i| i.status != "Pending")
        .filter(|i| code.is_none_or(|c| i.product_code == c))
        .filter(|i| product_type.is_none_or(|t| i.product_type == t))
        .filter(|i| region.is_none_or(|r| i.region == r))
        .filter(|i| kind.is_none_or(|k| i.subscription_type == k))
        .filter(|i| renew.is_none_or(|r| i.renew_status == r))
        .filter(|i| ids.as_ref().is_none_or(|ids| ids.contains(&i.id.as_str())))
        .filter(|i| within(i.create_time, cs, ce))
        .filter(|i| (es.is_none() && ee.is_none()) || i.end_time.is_some_and(|e| within(e, es, ee)))
        .collect();
    let total = matching.len();
    let seller = uid_number(&ctx.partner.uid);
    let list: Vec<Value> = paged(matching, num, size)
        .into_iter()
        .map(|i| {
            json!({
                "InstanceID": i.id,
                "OwnerId": uid_number(&owner),
                "ProductCode": i.product_code,
                "ProductType": i.product_type,
                "SubscriptionType": i.subscription_type,
                "Region": i.region,
                "Status": i.status,
                "SubStatus": "Normal",
                "CreateTime": fmt_time(i.create_time),
                "EndTime": i.end_time.map(fmt_time).unwrap_or_default(),
                "StopTime": "",
                "ReleaseTime": "",
                "ExpectedReleaseTime": "",
                "RenewStatus": i.renew_status,
                "RenewalDuration": i.renew_period,
                "RenewalDurationUnit": "M",
                "Seller": ctx.partner.uid,
                "SellerId": seller,
            })
        })
        .collect();
    Ok(Reply::success(
        json!({ "PageNum": num, "PageSize": size, "TotalCount": total, "InstanceList": list }),
    ))
}

/// A UID as the JSON number the real answers carry (`"OwnerId":325352345`).
fn uid_number(uid: &str) -> Value {
    uid.parse::<serde_json::Number>()
        .map_or_else(|_| Value::String(uid.to_owned()), Value::Number)
}

// ------------------------------------------------------------------ orders

fn order_fields(o: &Order, currency: &str) -> Map<String, Value> {
    let amount = money_string(o.pretax);
    let v = json!({
        "OrderId": o.id,
        "RelatedOrderId": "",
        "OrderType": o.order_type,
        "PaymentStatus": o.payment_status,
        "CreateTime": fmt_time(o.create_time),
        "PaymentTime": o.payment_time.map(fmt_time).unwrap_or_default(),
        "ProductCode": o.product_code,
        "ProductType": o.product_type,
        "CommodityCode": o.product_code,
        "SubscriptionType": o.subscription_type,
        "Currency": currency,
        "PaymentCurrency": currency,
        "PretaxGrossAmount": money_string(o.gross),
        "PretaxAmount": amount,
        "PretaxAmountLocal": amount,
        "Tax": "0.00",
        "AfterTaxAmount": amount,
    });
    match v {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn query_orders(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.owner()?;
    let p = &ctx.p;
    let start = time_param(ctx, "CreateTimeStart")?;
    let end = time_param(ctx, "CreateTimeEnd")?;
    // Without a window the real API lists the last hour only.
    let end = end.unwrap_or(ctx.now);
    let start = start.unwrap_or(end - 3600);
    let code = p.get("ProductCode");
    let product_type = p.get("ProductType");
    let kind = p.one_of("SubscriptionType", &SUBSCRIPTION_TYPES)?;
    let order_type = p.one_of("OrderType", &["New", "Renew", "Upgrade", "Refund"])?;
    let status = p.one_of("PaymentStatus", &["Unpaid", "Paid", "Cancelled"])?;
    let (num, size) = page(ctx, 100)?;

    let st = ctx.state();
    let empty = Vec::new();
    let orders = st.account_ref(&owner).map_or(&empty, |a| &a.orders);
    // Newest first.
    let matching: Vec<&Order> = orders
        .iter()
        .rev()
        .filter(|o| within(o.create_time, Some(start), Some(end)))
        .filter(|o| code.is_none_or(|c| o.product_code == c))
        .filter(|o| product_type.is_none_or(|t| o.product_type == t))
        .filter(|o| kind.is_none_or(|k| o.subscription_type == k))
        .filter(|o| order_type.is_none_or(|t| o.order_type == t))
        .filter(|o| status.is_none_or(|s| o.payment_status == s))
        .collect();
    let total = matching.len();
    let list: Vec<Value> = paged(matching, num, size)
        .into_iter()
        .map(|o| Value::Object(order_fields(o, &ctx.prices.currency)))
        .collect();
    Ok(Reply::success(json!({
        "HostName": HOST,
        "PageNum": num,
        "PageSize": size,
        "TotalCount": total,
        "OrderList": { "Order": list },
    })))
}

fn order_not_found(id: &str) -> Error {
    Error::customer(
        StatusCode::BAD_REQUEST,
        "InvalidParameter",
        format!("The specified order \"{id}\" does not exist."),
        "invalid_parameter",
    )
}

fn get_order_detail(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.owner()?;
    let id = ctx.p.required("OrderId")?;
    let st = ctx.state();
    let order = st
        .account_ref(&owner)
        .and_then(|a| a.orders.iter().find(|o| o.id == id))
        .ok_or_else(|| order_not_found(id))?;
    let mut fields = order_fields(order, &ctx.prices.currency);
    let config: Vec<String> = order
        .modules
        .iter()
        .flat_map(|m| m.props.iter().map(|(k, v)| format!("{k}:{v}")))
        .collect();
    let bill_modules: Vec<Value> = order
        .modules
        .iter()
        .map(|m| {
            let props: Vec<Value> = m
                .props
                .iter()
                .map(|(k, v)| json!({ "AttrApiCode": k, "ModuleApiCode": m.code, "Value": v }))
                .collect();
            json!({
                "Code": m.code,
                "ApiCode": m.code,
                "Name": m.name,
                "BillModuleProperties": { "billModuleProperties": props },
            })
        })
        .collect();
    let original_modules: Vec<Value> = order
        .modules
        .iter()
        .map(|m| {
            let props: Vec<Value> =
                m.props.iter().map(|(k, v)| json!({ "Code": k, "Name": k, "Value": v })).collect();
            json!({ "Code": m.code, "Name": m.name, "ModuleProperties": { "moduleProperties": props } })
        })
        .collect();
    let extra = json!({
        "SubOrderId": format!("{}01", order.id),
        "OrderSubType": "ProductSubOrder",
        "InstanceIDs": serde_json::to_string(&order.instance_ids).unwrap_or_default(),
        "Region": order.region,
        "Quantity": order.quantity.to_string(),
        "Config": config.join(";"),
        "OriginalConfig": config.join(";"),
        "Operator": "",
        "UsageStartTime": fmt_time(order.usage_start),
        "UsageEndTime": order.usage_end.map(fmt_time).unwrap_or_default(),
        "ExtendInfos": {},
        "BillModuleConfig": { "billModuleConfig": bill_modules },
        "OriginalModuleConfig": { "originalModuleConfig": original_modules },
    });
    if let Value::Object(extra) = extra {
        fields.extend(extra);
    }
    Ok(Reply::success(json!({
        "HostName": HOST,
        "PageNum": 1,
        "PageSize": 20,
        "TotalCount": 1,
        "OrderList": { "Order": [Value::Object(fields)] },
    })))
}

fn cancel_order(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.owner()?;
    let id = ctx.p.required("OrderId")?;
    let mut st = ctx.state();
    let account = st.account(&owner);
    let order = account
        .orders
        .iter_mut()
        .find(|o| o.id == id)
        .ok_or_else(|| order_not_found(id))?;
    if order.payment_status != "Unpaid" {
        return Err(Error::customer(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            format!(
                "The order \"{id}\" is {}: only an unpaid order can be cancelled.",
                order.payment_status
            ),
            "invalid_parameter",
        ));
    }
    order.payment_status = "Cancelled";
    let ids = order.instance_ids.clone();
    // The instances of an unpaid order were never started.
    account
        .instances
        .retain(|i| !(i.status == "Pending" && ids.contains(&i.id)));
    Ok(Reply::success(json!({ "HostId": HOST })))
}

// -------------------------------------------------------------------- bills

/// Checks `BucketPath` by the documented rules (reference §6.1): UTF-8 only
/// and no emoji; must not start with `/` or `\`; no `//` anywhere; no segment
/// exactly `..`; 1 to 254 characters. A byte sequence that was not UTF-8
/// arrives decoded as U+FFFD and is refused as such.
pub fn check_bucket_path(path: &str) -> Result<(), &'static str> {
    let len = path.chars().count();
    if len == 0 || len > 254 {
        return Err("its length must be 1 to 254 characters");
    }
    if path.contains('\u{FFFD}') {
        return Err("it must be valid UTF-8");
    }
    if path.chars().any(is_emoji) {
        return Err("it must not contain emoji");
    }
    if path.starts_with('/') || path.starts_with('\\') {
        return Err("it must not start with / or \\");
    }
    if path.contains("//") {
        return Err("it must not contain consecutive slashes (//)");
    }
    if path.split('/').any(|segment| segment == "..") {
        return Err("no directory may be named ..");
    }
    Ok(())
}

/// Emoji and the characters that build them (joiner, variation selector,
/// keycap, tags), by Unicode block.
fn is_emoji(c: char) -> bool {
    matches!(u32::from(c),
        0x1F000..=0x1FAFF   // mahjong .. symbols & pictographs extended-A (incl. flags, emoticons)
        | 0x2600..=0x27BF   // miscellaneous symbols, dingbats
        | 0x2B00..=0x2BFF   // arrows & stars (⭐, ⬛)
        | 0x2300..=0x23FF   // technical (⌚, ⏰)
        | 0x200D | 0xFE0F | 0x20E3
        | 0xE0020..=0xE007F)
}

fn subscribe_bill_to_oss(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.owner()?;
    let p = &ctx.p;
    let bucket = p.required("SubscribeBucket")?;
    let kind = p
        .one_of("SubscribeType", &BILL_TYPES)?
        .unwrap_or(BILL_TYPES[0]);
    let relation = p
        .one_of("MultAccountRelSubscribe", &["MA", "ACP1"])?
        .unwrap_or("MA");
    let bucket_owner = p.number::<u64>("BucketOwnerId")?;
    let cycle = p.get("BeginBillingCycle");
    if let Some(c) = cycle
        && !is_billing_cycle(c)
    {
        return Err(Error::invalid(
            "BeginBillingCycle",
            format_args!("\"{c}\" is not YYYY-MM"),
        ));
    }
    let path = if p.present("BucketPath") {
        ctx.call.param("BucketPath").unwrap_or_default()
    } else {
        ""
    };
    if p.present("BucketPath") {
        check_bucket_path(path).map_err(|why| Error::invalid("BucketPath", why))?;
    }
    let rows = p.number::<i32>("RowLimitPerFile")?;
    if rows.is_some_and(|r| r <= 0) {
        return Err(Error::invalid("RowLimitPerFile", "it must be positive"));
    }
    p.boolean("UsingSsl")?;
    ctx.state().account(&owner).subscriptions.insert(
        (kind.to_owned(), relation.to_owned()),
        BillSubscription {
            bucket: bucket.to_owned(),
            bucket_path: path.to_owned(),
            bucket_owner_id: bucket_owner.map(|b| b.to_string()),
            begin_billing_cycle: cycle.map(str::to_owned),
            row_limit_per_file: rows,
            subscribed_at: ctx.now,
        },
    );
    Ok(Reply::Bss {
        code: "Success",
        data: None,
    })
}

fn is_billing_cycle(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)
        && matches!(s[5..].parse::<u8>(), Ok(1..=12))
}

fn unsubscribe_bill_to_oss(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.owner()?;
    let kind = ctx.p.required_one_of("SubscribeType", &BILL_TYPES)?;
    let relation = ctx
        .p
        .one_of("MultAccountRelSubscribe", &["MA", "ACP1"])?
        .unwrap_or("MA");
    ctx.state()
        .account(&owner)
        .subscriptions
        .remove(&(kind.to_owned(), relation.to_owned()));
    Ok(Reply::Bss {
        code: "Success",
        data: None,
    })
}

fn query_bill_to_oss_subscription(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.owner()?;
    let st = ctx.state();
    let items: Vec<Value> = st
        .account_ref(&owner)
        .map(|a| {
            a.subscriptions
                .iter()
                .map(|((kind, _), s)| {
                    json!({
                        "SubscribeType": kind,
                        "SubscribeBucket": s.bucket,
                        "BucketPath": s.bucket_path,
                        "BucketOwnerId": s.bucket_owner_id.as_deref().map_or(Value::Null, uid_number),
                        "RowLimitPerFile": s.row_limit_per_file,
                        "SubscribeLanguage": "en",
                        "SubscribeTime": fmt_time(s.subscribed_at).replace('T', " ").trim_end_matches('Z').to_owned(),
                        "BeginBillingCycle": s.begin_billing_cycle,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Reply::success(json!({
        "AccountID": owner,
        "AccountName": owner,
        "Items": { "Item": items },
    })))
}
