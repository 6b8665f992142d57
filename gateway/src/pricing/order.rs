//! Orders for the pricing module, built from what the provider said.
//!
//! * Price queries (`GetSubscriptionPrice`, `GetPayAsYouGoPrice`, ECS
//!   `DescribePrice`): one line-item per `ModuleDetail` / `DetailInfo` of the
//!   provider's answer, with the configuration the request gave for it.
//! * Purchases: the official price comes from the provider's own price API,
//!   asked by the gateway with the partner's key before anything is bought:
//!   `CreateInstance` → `DescribePricingModule` (which properties make which
//!   module) + `GetSubscriptionPrice` / `GetPayAsYouGoPrice`;
//!   `ModifyInstance` → the same with `OrderType=Upgrade` for the modules the
//!   change fully names; `RenewInstance` → the instance's configuration
//!   from its last order (`QueryOrders` + `GetOrderDetail`), then
//!   `GetSubscriptionPrice` with `OrderType=Renewal`; `RunInstances` → ECS
//!   `DescribePrice` with the same configuration (`PrePaid`: the term;
//!   `PostPaid`: the hourly rate, so quota rules apply and the answer's
//!   `TradePrice` is the partner's).
//!
//! Amounts are read from the JSON text (serde_json `arbitrary_precision`),
//! never through a float.

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde_json::Value;

use super::{ChargeType, CustomerInfo, Intent, LineItem, Order, OrderKind, PeriodUnit};

/// BSS OpenAPI version.
pub const BSS_VERSION: &str = "2017-12-14";
/// ECS version.
pub const ECS_VERSION: &str = "2014-05-26";

/// The provider's price APIs whose answers are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceApi {
    /// BSS `GetSubscriptionPrice`.
    Subscription,
    /// BSS `GetPayAsYouGoPrice`.
    PayAsYouGo,
    /// ECS `DescribePrice`.
    EcsDescribePrice,
}

/// The purchases priced before they are forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purchase {
    /// BSS `CreateInstance`.
    Create,
    /// BSS `ModifyInstance`.
    Modify,
    /// BSS `RenewInstance`.
    Renew,
    /// ECS `RunInstances` (`PrePaid`: the term; `PostPaid`: the hourly rate).
    RunInstances,
}

/// What pricing does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Rewrite the provider's price answer.
    Query(PriceApi),
    /// Price (and admit) before forwarding.
    Purchase(Purchase),
}

/// The pricing flow of a call, if it has one. A `DryRun` is not priced
/// (nothing is bought). Pay-as-you-go `RunInstances` is priced at its
/// hourly rate: nothing is charged at creation, but quota rules apply and
/// the answer's `TradePrice` must be the partner's.
pub fn flow<'a>(
    action: &str,
    version: &str,
    param: impl Fn(&str) -> Option<&'a str>,
) -> Option<Flow> {
    Some(match (version, action) {
        (BSS_VERSION, "GetSubscriptionPrice") => Flow::Query(PriceApi::Subscription),
        (BSS_VERSION, "GetPayAsYouGoPrice") => Flow::Query(PriceApi::PayAsYouGo),
        (ECS_VERSION, "DescribePrice") => Flow::Query(PriceApi::EcsDescribePrice),
        (BSS_VERSION, "CreateInstance") => Flow::Purchase(Purchase::Create),
        (BSS_VERSION, "ModifyInstance") => Flow::Purchase(Purchase::Modify),
        (BSS_VERSION, "RenewInstance") => Flow::Purchase(Purchase::Renew),
        (ECS_VERSION, "RunInstances")
            if !param("DryRun").is_some_and(|v| v.eq_ignore_ascii_case("true")) =>
        {
            Flow::Purchase(Purchase::RunInstances)
        }
        _ => return None,
    })
}

/// A JSON number (or numeric string) as an exact decimal, refusing
/// negatives and non-numbers.
pub fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => decimal_text(n.as_str()),
        Value::String(s) => decimal_text(s),
        _ => None,
    }
}

/// The text of a JSON number (or of a numeric string's content) as an
/// exact decimal, refusing negatives.
pub fn decimal_text(text: &str) -> Option<Decimal> {
    let d = Decimal::from_str_exact(text)
        .or_else(|_| Decimal::from_scientific(text))
        .ok()?;
    (!d.is_sign_negative()).then_some(d)
}

fn field<'v>(v: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// An amount that must be there, or what is wrong with it.
fn amount(value: Option<Decimal>, at: &str, key: &str) -> Result<Decimal, String> {
    value.ok_or_else(|| format!("{at}.{key} is not a non-negative amount"))
}

/// Splits BSS `Config` text `AA:aa,BB:bb`.
pub fn split_config(config: &str) -> Vec<(String, String)> {
    config
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|kv| match kv.split_once(':') {
            Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
            None => (kv.trim().to_owned(), String::new()),
        })
        .collect()
}

/// `ModuleList.N.<field>` entries of a request, in N order.
pub fn module_list<'a>(
    params: &[(&'a str, &'a str)],
) -> Vec<(u32, &'a str, &'a str, Option<&'a str>)> {
    let mut out: Vec<(u32, &str, &str, Option<&str>)> = Vec::new();
    for (k, _) in params {
        let Some(rest) = k.strip_prefix("ModuleList.") else {
            continue;
        };
        let Some((n, f)) = rest.split_once('.') else {
            continue;
        };
        let Ok(n) = n.parse::<u32>() else { continue };
        if f != "ModuleCode" || out.iter().any(|e| e.0 == n) {
            continue;
        }
        // `ModuleList.{n}.{name}`, compared piecewise (not one key string
        // built per comparison: this runs on every priced request).
        let index = n.to_string();
        let get = |name: &str| {
            params
                .iter()
                .find(|(pk, _)| {
                    pk.strip_prefix("ModuleList.")
                        .and_then(|r| r.split_once('.'))
                        .is_some_and(|(i, f)| i == index && f == name)
                })
                .map(|(_, v)| *v)
        };
        out.push((
            n,
            get("ModuleCode").unwrap_or_default(),
            get("Config").unwrap_or_default(),
            get("PriceType"),
        ));
    }
    out.sort_by_key(|e| e.0);
    out
}

fn unique_id(ids: &mut Vec<String>, base: &str) -> String {
    let mut id = base.to_owned();
    let mut n = 1;
    while ids.contains(&id) {
        n += 1;
        id = format!("{base}#{n}");
    }
    ids.push(id.clone());
    id
}

fn get<'a>(params: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
}

fn number(params: &[(&str, &str)], name: &str, default: u32) -> Result<u32, String> {
    match get(params, name) {
        None | Some("") => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name} \"{v}\" is not a whole number")),
    }
}

/// What a BSS price answer is about, from the request that asked.
#[derive(Debug, Clone)]
pub struct BssRequest<'a> {
    /// The request's parameters.
    pub params: &'a [(&'a str, &'a str)],
    /// `true` for `GetPayAsYouGoPrice`.
    pub payg: bool,
    /// Who.
    pub customer: CustomerInfo,
    /// Quote or purchase.
    pub intent: Intent,
    /// The action the customer called.
    pub action: &'a str,
}

/// What an order needs of one BSS `ModuleDetail` (read from a parsed
/// answer by [`order_from_bss`], or in place by `pricing::splice`).
#[derive(Debug, Clone, Default)]
pub struct BssDetail<'a> {
    /// `ModuleCode`, if it is a string.
    pub code: Option<Cow<'a, str>>,
    /// `OriginalCost`, if it is a non-negative amount.
    pub original_cost: Option<Decimal>,
    /// `CostAfterDiscount`, if it is a non-negative amount.
    pub cost_after_discount: Option<Decimal>,
}

impl<'a> BssDetail<'a> {
    /// The fields of a parsed `ModuleDetail`.
    pub fn of(detail: &'a Value) -> Self {
        Self {
            code: detail
                .get("ModuleCode")
                .and_then(Value::as_str)
                .map(Cow::Borrowed),
            original_cost: detail.get("OriginalCost").and_then(decimal),
            cost_after_discount: detail.get("CostAfterDiscount").and_then(decimal),
        }
    }
}

/// The order for a BSS price answer's `Data`.
pub fn order_from_bss(req: &BssRequest<'_>, data: &Value) -> Result<Order, String> {
    let details: Option<Vec<BssDetail<'_>>> = field(data, &["ModuleDetails", "ModuleDetail"])
        .and_then(Value::as_array)
        .map(|list| list.iter().map(BssDetail::of).collect());
    order_from_bss_details(
        req,
        data.get("Currency").and_then(Value::as_str),
        details.as_deref(),
    )
}

/// The order for a BSS price answer, from its `Data.Currency` and its
/// `Data.ModuleDetails.ModuleDetail` list (`None`: not there, or not a
/// string / a list).
pub fn order_from_bss_details(
    req: &BssRequest<'_>,
    currency: Option<&str>,
    details: Option<&[BssDetail<'_>]>,
) -> Result<Order, String> {
    let p = req.params;
    let currency = currency.ok_or("Data.Currency is missing")?.to_owned();
    let details = details.ok_or("Data.ModuleDetails.ModuleDetail is missing")?;
    let requested = module_list(p);
    let product = get(p, "ProductCode").unwrap_or_default().to_owned();
    let region = get(p, "Region").unwrap_or_default().to_owned();
    let (quantity, count, unit) = if req.payg {
        (1, 1, PeriodUnit::Hour)
    } else {
        let unit = match get(p, "ServicePeriodUnit") {
            Some("Year") => PeriodUnit::Year,
            _ => PeriodUnit::Month,
        };
        (
            number(p, "Quantity", 1)?.max(1),
            number(p, "ServicePeriodQuantity", 1)?.max(1),
            unit,
        )
    };
    let kind = match get(p, "OrderType") {
        Some("Renewal") => OrderKind::Renewal,
        Some("Upgrade") => OrderKind::Upgrade,
        _ => OrderKind::New,
    };
    let mut ids = Vec::new();
    let mut used = vec![false; requested.len()];
    let mut lines = Vec::with_capacity(details.len());
    for (i, d) in details.iter().enumerate() {
        let at = format!("ModuleDetail[{i}]");
        let code: &str = d
            .code
            .as_deref()
            .ok_or_else(|| format!("{at}.ModuleCode is missing"))?;
        // The k-th detail with a code belongs to the k-th requested module
        // with that code.
        let asked = requested
            .iter()
            .enumerate()
            .find(|(j, m)| !used[*j] && m.1 == code)
            .map(|(j, m)| {
                used[j] = true;
                m
            });
        let (count, unit) = match (req.payg, asked) {
            (true, Some(m)) => (
                1,
                m.3.and_then(PeriodUnit::parse).unwrap_or(PeriodUnit::Hour),
            ),
            _ => (count, unit),
        };
        lines.push(LineItem {
            id: unique_id(&mut ids, code),
            product: product.clone(),
            sku: code.to_owned(),
            config: asked.map(|m| split_config(m.2)).unwrap_or_default(),
            region: region.clone(),
            quantity,
            period_count: count,
            period_unit: unit,
            charge_type: if req.payg {
                ChargeType::PayAsYouGo
            } else {
                ChargeType::Subscription
            },
            official: amount(d.original_cost, &at, "OriginalCost")?,
            official_trade: amount(d.cost_after_discount, &at, "CostAfterDiscount")?,
        });
    }
    Ok(Order {
        action: req.action.to_owned(),
        intent: req.intent,
        kind,
        customer: req.customer.clone(),
        currency,
        lines,
    })
}

/// The ECS `Resource` names and which request parameters configure them.
fn ecs_config(resource: &str, params: &[(&str, &str)]) -> Vec<(String, String)> {
    let keep = |k: &str| match resource {
        "instanceType" => matches!(k, "InstanceType" | "IoOptimized" | "Platform" | "ImageId"),
        "systemDisk" => k.starts_with("SystemDisk."),
        "dataDisk" => k.starts_with("DataDisk."),
        "bandwidth" => matches!(k, "InternetChargeType" | "InternetMaxBandwidthOut"),
        _ => false,
    };
    params
        .iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// What an ECS `DescribePrice` answer is about.
#[derive(Debug, Clone)]
pub struct EcsRequest<'a> {
    /// The `DescribePrice` parameters (as asked by the customer or built
    /// by the gateway from a `RunInstances`).
    pub params: &'a [(&'a str, &'a str)],
    /// Who.
    pub customer: CustomerInfo,
    /// Quote or purchase.
    pub intent: Intent,
    /// The action the customer called.
    pub action: &'a str,
}

/// The order for an ECS `DescribePrice` answer (its `PriceInfo.Price`).
pub fn order_from_ecs(req: &EcsRequest<'_>, price: &Value) -> Result<Order, String> {
    let p = req.params;
    let currency = price
        .get("Currency")
        .and_then(Value::as_str)
        .ok_or("PriceInfo.Price.Currency is missing")?
        .to_owned();
    let details = field(price, &["DetailInfos", "DetailInfo"])
        .and_then(Value::as_array)
        .ok_or("PriceInfo.Price.DetailInfos.DetailInfo is missing")?;
    let unit = get(p, "PriceUnit")
        .and_then(PeriodUnit::parse)
        .unwrap_or(PeriodUnit::Hour);
    let charge = if unit == PeriodUnit::Hour {
        ChargeType::PayAsYouGo
    } else {
        ChargeType::Subscription
    };
    let period = number(p, "Period", 1)?.max(1);
    let quantity = number(p, "Amount", 1)?.max(1);
    let region = get(p, "RegionId").unwrap_or_default().to_owned();
    let mut ids = Vec::new();
    let mut lines = Vec::with_capacity(details.len());
    for (i, d) in details.iter().enumerate() {
        let at = format!("DetailInfo[{i}]");
        let resource = d
            .get("Resource")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}.Resource is missing"))?;
        lines.push(LineItem {
            id: unique_id(&mut ids, resource),
            product: "ecs".to_owned(),
            sku: resource.to_owned(),
            config: ecs_config(resource, p),
            region: region.clone(),
            quantity,
            period_count: period,
            period_unit: unit,
            charge_type: charge,
            official: amount(
                d.get("OriginalPrice").and_then(decimal),
                &at,
                "OriginalPrice",
            )?,
            official_trade: amount(d.get("TradePrice").and_then(decimal), &at, "TradePrice")?,
        });
    }
    Ok(Order {
        action: req.action.to_owned(),
        intent: req.intent,
        kind: OrderKind::New,
        customer: req.customer.clone(),
        currency,
        lines,
    })
}

/// A pricing module of a product, from `DescribePricingModule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleDef {
    /// `ModuleCode`.
    pub code: String,
    /// The property ids its `Config` needs (`ConfigList`).
    pub config: Vec<String>,
    /// `PriceType` (`Hour`, `Month`, `Usage`, ...).
    pub price_type: String,
}

/// Reads `DescribePricingModule`'s `Data.ModuleList.Module[]`.
pub fn module_defs(data: &Value) -> Result<Vec<ModuleDef>, String> {
    let modules = field(data, &["ModuleList", "Module"])
        .and_then(Value::as_array)
        .ok_or("Data.ModuleList.Module is missing")?;
    modules
        .iter()
        .map(|m| {
            let code = m
                .get("ModuleCode")
                .and_then(Value::as_str)
                .ok_or("ModuleCode is missing")?;
            let config = field(m, &["ConfigList", "ConfigList"])
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Ok(ModuleDef {
                code: code.to_owned(),
                config,
                price_type: m
                    .get("PriceType")
                    .and_then(Value::as_str)
                    .unwrap_or("Month")
                    .to_owned(),
            })
        })
        .collect()
}

/// `Parameter.N.Code` / `.Value` pairs of a BSS purchase.
pub fn parameters<'a>(params: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut ns: Vec<u32> = params
        .iter()
        .filter_map(|(k, _)| {
            k.strip_prefix("Parameter.")?
                .strip_suffix(".Code")?
                .parse()
                .ok()
        })
        .collect();
    ns.sort_unstable();
    ns.dedup();
    ns.iter()
        .filter_map(|n| {
            let code = get(params, &format!("Parameter.{n}.Code"))?;
            let value = get(params, &format!("Parameter.{n}.Value")).unwrap_or_default();
            Some((code, value))
        })
        .collect()
}

/// The `ModuleList` entries for the modules fully configured by `props`
/// (as the provider prices a purchase): `(code, "AA:aa,BB:bb", price type)`.
pub fn configured_modules(
    defs: &[ModuleDef],
    props: &[(&str, &str)],
) -> Vec<(String, String, String)> {
    defs.iter()
        .filter(|d| {
            !d.config.is_empty()
                && d.config
                    .iter()
                    .all(|c| props.iter().any(|(k, v)| k == c && !v.is_empty()))
        })
        .map(|d| {
            let config: Vec<String> = d
                .config
                .iter()
                .filter_map(|c| {
                    props
                        .iter()
                        .rev()
                        .find(|(k, _)| k == c)
                        .map(|(k, v)| format!("{k}:{v}"))
                })
                .collect();
            (d.code.clone(), config.join(","), d.price_type.clone())
        })
        .collect()
}

/// The `GetSubscriptionPrice` / `GetPayAsYouGoPrice` parameters for a BSS
/// purchase of `modules`.
pub fn bss_price_params(
    product: &str,
    subscription: bool,
    order_type: &str,
    months: u32,
    region: Option<&str>,
    instance_id: Option<&str>,
    modules: &[(String, String, String)],
) -> Vec<(String, String)> {
    let mut out = vec![("ProductCode".to_owned(), product.to_owned())];
    if subscription {
        out.push(("SubscriptionType".into(), "Subscription".into()));
        out.push(("OrderType".into(), order_type.into()));
        out.push(("ServicePeriodQuantity".into(), months.max(1).to_string()));
        out.push(("ServicePeriodUnit".into(), "Month".into()));
        out.push(("Quantity".into(), "1".into()));
    } else {
        out.push(("SubscriptionType".into(), "PayAsYouGo".into()));
    }
    if let Some(r) = region {
        out.push(("Region".into(), r.to_owned()));
    }
    if let Some(id) = instance_id {
        out.push(("InstanceId".into(), id.to_owned()));
    }
    for (i, (code, config, price_type)) in modules.iter().enumerate() {
        let n = i + 1;
        out.push((format!("ModuleList.{n}.ModuleCode"), code.clone()));
        out.push((format!("ModuleList.{n}.Config"), config.clone()));
        if subscription {
            if order_type == "Upgrade" {
                out.push((format!("ModuleList.{n}.ModuleStatus"), "2".into()));
            }
        } else {
            out.push((format!("ModuleList.{n}.PriceType"), price_type.clone()));
        }
    }
    out
}

/// The ECS `DescribePrice` parameters that price a `RunInstances`: the same
/// configuration; `PrePaid`: `Period` in `PeriodUnit` (months of 12 or more
/// become years, as `DescribePrice` takes months 1-9 only); `PostPaid`: one
/// hour.
pub fn describe_price_params(params: &[(&str, &str)]) -> Result<Vec<(String, String)>, String> {
    const COPY: [&str; 11] = [
        "RegionId",
        "ZoneId",
        "InstanceType",
        "ImageId",
        "IoOptimized",
        "InstanceNetworkType",
        "InternetChargeType",
        "InternetMaxBandwidthOut",
        "Amount",
        "SpotStrategy",
        "Platform",
    ];
    let mut out: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| {
            COPY.contains(k) || k.starts_with("SystemDisk.") || k.starts_with("DataDisk.")
        })
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    out.push(("ResourceType".into(), "instance".into()));
    let period = number(params, "Period", 1)?.max(1);
    let prepaid = get(params, "InstanceChargeType") == Some("PrePaid");
    let (unit, period) = match get(params, "PeriodUnit").unwrap_or("Month") {
        _ if !prepaid => ("Hour", 1),
        "Week" => ("Week", period),
        _ if period >= 12 && period % 12 == 0 => ("Year", period / 12),
        _ => ("Month", period),
    };
    out.push(("PriceUnit".into(), unit.into()));
    out.push(("Period".into(), period.to_string()));
    Ok(out)
}

/// From a `QueryOrders` answer: the newest order id for `instance_id`.
pub fn order_for_instance(data: &Value, instance_id: &str) -> Option<String> {
    field(data, &["OrderList", "Order"])
        .and_then(Value::as_array)?
        .iter()
        .find(|o| {
            o.get("InstanceIDs")
                .and_then(Value::as_str)
                .is_some_and(|ids| {
                    ids.contains(&format!("\"{instance_id}\"")) || ids == instance_id
                })
        })
        .and_then(|o| o.get("OrderId"))
        .and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}
