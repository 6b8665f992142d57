//! ECS (`2014-05-26`) actions (reference `alibaba-ecs-pricing.md` §1–§2).
//! Successful answers carry no `Code`/`Success`: just `RequestId` and the
//! payload. Prices come from product `ecs` of the price list: modules
//! `InstanceType`, `SystemDisk`, `DataDisk` and `InternetMaxBandwidthOut`.
//!
//! Pricing rules: `PriceUnit=Hour` is the pay-as-you-go price per hour
//! (never discounted); `Week`/`Month`/`Year` is the subscription total for
//! `Period` units and `Amount` instances, with the official discount when the
//! term is 12 months or more. Several data disks make one `dataDisk` line.

use http::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::params::Params;
use super::prices::{Basis, DiscountRule, Product, Quote, json_number};
use super::state::{EcsDetails, Instance, ModuleConfig, Order, add_months};
use super::{ActionFn, Ctx, Reply};
use crate::error::Error;

const DISK_CATEGORIES: [&str; 7] = [
    "cloud",
    "cloud_efficiency",
    "cloud_ssd",
    "ephemeral_ssd",
    "cloud_essd",
    "cloud_auto",
    "cloud_essd_entry",
];
const DEFAULT_DISK: &str = "cloud_efficiency";
const DEFAULT_SYSTEM_DISK_GB: &str = "40";
/// ECS shows times to the minute.
const NEVER_EXPIRES: &str = "2099-12-31T15:59Z";

/// The ECS action named `action`, if the sim has it.
pub fn route(action: &str) -> Option<ActionFn> {
    Some(match action {
        "DescribePrice" => describe_price,
        "RunInstances" => run_instances,
        "DescribeInstances" => describe_instances,
        _ => return None,
    })
}

fn ecs(fields: Value) -> Reply {
    match fields {
        Value::Object(map) => Reply::Ecs(map),
        _ => Reply::Ecs(Map::new()),
    }
}

/// One priced ECS component: `(Resource, module config, unit price)`.
type Component = (&'static str, ModuleConfig, Decimal);

fn component(
    product: &Product,
    module: &str,
    resource: &'static str,
    basis: Basis,
    props: Vec<(&str, String)>,
) -> Result<Component, Error> {
    let m = product.module("ecs", module)?;
    let unit = m.unit_price("ecs", module, basis, |k| {
        props
            .iter()
            .find(|(pk, _)| *pk == k)
            .map(|(_, v)| v.as_str())
    })?;
    let config = ModuleConfig {
        code: module.to_owned(),
        name: m.name.clone(),
        props: props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    };
    Ok((resource, config, unit))
}

fn disk_category<'a>(p: &Params<'a>, name: &str) -> Result<&'a str, Error> {
    Ok(p.one_of(name, &DISK_CATEGORIES)?.unwrap_or(DEFAULT_DISK))
}

/// The components of an instance purchase (instance type, system disk,
/// data disks, bandwidth), priced for `basis`.
fn instance_components(
    ctx: &Ctx<'_>,
    product: &Product,
    basis: Basis,
) -> Result<Vec<Component>, Error> {
    let p = &ctx.p;
    let instance_type = p.required("InstanceType")?;
    let types = product.module("ecs", "InstanceType")?;
    if !types.price.contains_key(instance_type) {
        return Err(Error::customer(
            StatusCode::BAD_REQUEST,
            "InvalidInstanceType.ValueNotSupported",
            format!(
                "The specified InstanceType \"{instance_type}\" does not exist or beyond the permitted range."
            ),
            "invalid_parameter",
        ));
    }
    let io = match p.one_of("IoOptimized", &["none", "optimized"])? {
        Some("none") => "none",
        _ => "IoOptimized",
    };
    let windows = p
        .get("Platform")
        .is_some_and(|v| v.eq_ignore_ascii_case("windows"))
        || p.get("ImageId")
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("win"));
    let os = if windows { "windows" } else { "linux" };
    let mut out = vec![component(
        product,
        "InstanceType",
        "instanceType",
        basis,
        vec![
            ("InstanceType", instance_type.to_owned()),
            ("IoOptimized", io.to_owned()),
            ("ImageOs", os.to_owned()),
        ],
    )?];
    let sys_size = p
        .int_in("SystemDisk.Size", 20..=2048)?
        .map_or(DEFAULT_SYSTEM_DISK_GB.to_owned(), |n| n.to_string());
    out.push(component(
        product,
        "SystemDisk",
        "systemDisk",
        basis,
        vec![
            (
                "SystemDisk.Category",
                disk_category(p, "SystemDisk.Category")?.to_owned(),
            ),
            ("SystemDisk.Size", sys_size),
        ],
    )?);
    out.extend(data_disks(p, product, basis)?);
    let charge = p
        .one_of("InternetChargeType", &["PayByBandwidth", "PayByTraffic"])?
        .unwrap_or("PayByTraffic");
    let bandwidth = p.int_in("InternetMaxBandwidthOut", 0..=100)?.unwrap_or(0);
    // Pay-by-traffic bandwidth is billed later by usage: 0 at purchase.
    let mbps = if charge == "PayByBandwidth" {
        bandwidth
    } else {
        0
    };
    out.push(component(
        product,
        "InternetMaxBandwidthOut",
        "bandwidth",
        basis,
        vec![("InternetMaxBandwidthOut", mbps.to_string())],
    )?);
    Ok(out)
}

fn data_disks(p: &Params<'_>, product: &Product, basis: Basis) -> Result<Vec<Component>, Error> {
    let disks = p.list("DataDisk", 16)?;
    let mut out = Vec::with_capacity(disks.len());
    for (n, disk) in disks.iter().enumerate() {
        let category = disk.get("Category").copied().unwrap_or(DEFAULT_DISK);
        if !DISK_CATEGORIES.contains(&category) {
            return Err(super::params::not_one_of(
                &format!("DataDisk.{}.Category", n + 1),
                category,
                &DISK_CATEGORIES,
            ));
        }
        let size = super::params::entry_field(disk, "DataDisk", n, "Size")?;
        if !size.parse::<u32>().is_ok_and(|s| (20..=32768).contains(&s)) {
            return Err(Error::invalid(
                &format!("DataDisk.{}.Size", n + 1),
                format_args!("{size} is not 20-32768 GiB"),
            ));
        }
        out.push(component(
            product,
            "DataDisk",
            "dataDisk",
            basis,
            vec![
                ("DataDisk.Category", category.to_owned()),
                ("DataDisk.Size", size.to_owned()),
            ],
        )?);
    }
    Ok(out)
}

/// Sums components into quote items, one per `Resource` (data disks merge).
fn items(components: &[Component]) -> Vec<(String, Decimal)> {
    let mut out: Vec<(String, Decimal)> = Vec::new();
    for (resource, _, unit) in components {
        match out.iter_mut().find(|(r, _)| r == resource) {
            Some((_, sum)) => *sum += *unit,
            None => out.push(((*resource).to_owned(), *unit)),
        }
    }
    out
}

fn rule_json(rule: &DiscountRule) -> Value {
    json!({ "RuleId": rule.promotion_id, "Description": rule.promotion_desc })
}

fn price_info(quote: &Quote, currency: &str) -> Value {
    let rules: Vec<Value> = quote.promotion.iter().map(rule_json).collect();
    let details: Vec<Value> = quote
        .lines
        .iter()
        .map(|l| {
            let sub: Vec<Value> = if l.discount.is_zero() {
                Vec::new()
            } else {
                rules.clone()
            };
            json!({
                "Resource": l.label,
                "OriginalPrice": json_number(l.original),
                "DiscountPrice": json_number(l.discount),
                "TradePrice": json_number(l.trade),
                "SubRules": { "Rule": sub },
            })
        })
        .collect();
    json!({
        "Price": {
            "Currency": currency,
            "OriginalPrice": json_number(quote.original),
            "DiscountPrice": json_number(quote.discount),
            "TradePrice": json_number(quote.trade),
            "DetailInfos": { "DetailInfo": details },
        },
        "Rules": { "Rule": rules },
        "RelatedPrice": { "MarketplaceImagePrice": {
            "Currency": currency, "OriginalPrice": 0, "DiscountPrice": 0, "TradePrice": 0,
        } },
    })
}

/// Months in `period` units of `basis` (for the discount rule); weeks never qualify.
fn months_of(basis: Basis, period: u32) -> u32 {
    match basis {
        Basis::Month => period,
        Basis::Year => period * 12,
        _ => 0,
    }
}

fn describe_price(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    ctx.owner()?;
    let p = &ctx.p;
    p.required("RegionId")?;
    let resource = p
        .one_of(
            "ResourceType",
            &[
                "instance",
                "disk",
                "diskperformance",
                "bandwidth",
                "ddh",
                "ElasticityAssurance",
                "CapacityReservation",
            ],
        )?
        .unwrap_or("instance");
    let unit = p
        .one_of("PriceUnit", &["Hour", "Week", "Month", "Year"])?
        .unwrap_or("Hour");
    let basis = Basis::parse(unit).unwrap_or(Basis::Hour);
    let period = p.number::<u32>("Period")?.unwrap_or(1);
    let allowed = match basis {
        Basis::Week => 1..=4,
        Basis::Month => 1..=9,
        Basis::Year => 1..=5,
        _ => 1..=1,
    };
    if !allowed.contains(&period) {
        return Err(Error::invalid(
            "Period",
            format_args!(
                "{period} is out of range {}-{} for PriceUnit {unit}",
                allowed.start(),
                allowed.end()
            ),
        ));
    }
    let amount = p.int_in("Amount", 1..=1000)?.unwrap_or(1);
    let spot = p
        .one_of(
            "SpotStrategy",
            &["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"],
        )?
        .unwrap_or("NoSpot");
    if spot != "NoSpot" && basis != Basis::Hour {
        return Err(Error::invalid(
            "SpotStrategy",
            "spot prices are per hour only (PriceUnit=Hour, Period=1)",
        ));
    }
    p.one_of("InstanceNetworkType", &["vpc", "classic"])?;
    p.one_of("Platform", &["Windows", "Linux"])?;
    let product = ctx.prices.product("ecs")?;
    let components = match resource {
        "instance" => instance_components(ctx, product, basis)?,
        // Disks and bandwidth are quoted pay-as-you-go per hour only.
        "disk" => {
            if p.list("DataDisk", 16)?.is_empty() {
                return Err(Error::missing("DataDisk.1.Category"));
            }
            data_disks(p, product, Basis::Hour)?
        }
        "bandwidth" => {
            let mbps = p.int_in("InternetMaxBandwidthOut", 0..=100)?.unwrap_or(0);
            vec![component(
                product,
                "InternetMaxBandwidthOut",
                "bandwidth",
                Basis::Hour,
                vec![("InternetMaxBandwidthOut", mbps.to_string())],
            )?]
        }
        other => {
            return Err(Error::invalid(
                "ResourceType",
                format_args!("\"{other}\" is not priced by the simulator"),
            ));
        }
    };
    let hourly = resource != "instance" || basis == Basis::Hour;
    let quote = if hourly {
        Quote::new(items(&components), 1, amount, None)
    } else {
        Quote::new(
            items(&components),
            period,
            amount,
            ctx.prices.discount_for_months(months_of(basis, period)),
        )
    };
    Ok(ecs(
        json!({ "PriceInfo": price_info(&quote, &ctx.prices.currency) }),
    ))
}

fn run_instances(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.owner()?;
    let p = &ctx.p;
    let region = p.required("RegionId")?;
    p.required("InstanceType")?;
    let image = p.required("ImageId")?;
    let charge = p
        .one_of("InstanceChargeType", &["PrePaid", "PostPaid"])?
        .unwrap_or("PostPaid");
    let prepaid = charge == "PrePaid";
    let period_unit = p
        .one_of("PeriodUnit", &["Month", "Week"])?
        .unwrap_or("Month");
    let period = p.number::<u32>("Period")?;
    let basis = if !prepaid {
        Basis::Hour
    } else if period_unit == "Week" {
        Basis::Week
    } else {
        Basis::Month
    };
    let period = if prepaid {
        let n = period.ok_or_else(|| Error::missing("Period"))?;
        let ok = match basis {
            Basis::Week => (1..=4).contains(&n),
            _ => matches!(n, 1..=9 | 12 | 24 | 36 | 48 | 60),
        };
        if !ok {
            return Err(Error::invalid(
                "Period",
                format_args!("{n} is not a valid {period_unit} period"),
            ));
        }
        n
    } else {
        1
    };
    p.boolean("AutoRenew")?;
    p.number::<u32>("AutoRenewPeriod")?;
    let auto_pay = p.boolean("AutoPay")?.unwrap_or(true);
    let amount = p.int_in("Amount", 1..=100)?.unwrap_or(1);
    if let Some(min) = p.int_in("MinAmount", 1..=100)?
        && min > amount
    {
        return Err(Error::invalid("MinAmount", "it must not exceed Amount"));
    }
    let spot = p
        .one_of(
            "SpotStrategy",
            &["NoSpot", "SpotWithPriceLimit", "SpotAsPriceGo"],
        )?
        .unwrap_or("NoSpot");
    if prepaid && spot != "NoSpot" {
        return Err(Error::invalid(
            "SpotStrategy",
            "spot instances are PostPaid only",
        ));
    }
    let token = p.get("ClientToken");
    if let Some(t) = token
        && (t.len() > 64 || !t.is_ascii())
    {
        return Err(Error::invalid("ClientToken", "at most 64 ASCII characters"));
    }
    let product = ctx.prices.product("ecs")?;
    let components = instance_components(ctx, product, basis)?;
    let quote = if prepaid {
        Quote::new(
            items(&components),
            period,
            amount,
            ctx.prices.discount_for_months(months_of(basis, period)),
        )
    } else {
        Quote::new(items(&components), 1, amount, None)
    };
    if p.boolean("DryRun")?.unwrap_or(false) {
        return Err(Error::customer(
            StatusCode::BAD_REQUEST,
            "DryRunOperation",
            "Request validation has been passed with DryRun flag set.",
            "dry_run",
        ));
    }

    let mut st = ctx.state();
    let key = (
        "RunInstances".to_owned(),
        token.unwrap_or_default().to_owned(),
    );
    if token.is_some()
        && let Some(prev) = st.account(&owner).tokens.get(&key)
    {
        return Ok(ecs(prev.clone()));
    }
    let ids: Vec<String> = (0..amount)
        .map(|_| st.next_instance_id(&product.instance_prefix))
        .collect();
    let end = match (prepaid, basis) {
        (false, _) => None,
        (true, Basis::Week) => Some(ctx.now + i64::from(period) * 7 * 86_400),
        (true, _) => Some(add_months(ctx.now, period)),
    };
    let paid = !prepaid || auto_pay;
    let modules: Vec<ModuleConfig> = components.iter().map(|(_, mc, _)| mc.clone()).collect();
    let order_id = prepaid.then(|| {
        let id = st.next_order_id();
        st.account(&owner).orders.push(Order {
            id: id.clone(),
            order_type: "New",
            payment_status: if paid { "Paid" } else { "Unpaid" },
            create_time: ctx.now,
            payment_time: paid.then_some(ctx.now),
            product_code: "ecs".to_owned(),
            product_type: product.product_type.clone(),
            subscription_type: "Subscription",
            region: region.to_owned(),
            quantity: amount,
            instance_ids: ids.clone(),
            modules: modules.clone(),
            gross: quote.original,
            pretax: quote.trade,
            usage_start: ctx.now,
            usage_end: end,
        });
        id
    });
    let zone = p
        .get("ZoneId")
        .map_or_else(|| format!("{region}-h"), str::to_owned);
    let internet = p
        .get("InternetChargeType")
        .unwrap_or("PayByTraffic")
        .to_owned();
    let bandwidth = p.number::<u32>("InternetMaxBandwidthOut")?.unwrap_or(0);
    let renew = if p.boolean("AutoRenew")?.unwrap_or(false) {
        "AutoRenewal"
    } else {
        "ManualRenewal"
    };
    let instance_type = p.get("InstanceType").unwrap_or_default();
    for id in &ids {
        let instance = Instance {
            id: id.clone(),
            product_code: "ecs".to_owned(),
            product_type: product.product_type.clone(),
            subscription_type: if prepaid {
                "Subscription"
            } else {
                "PayAsYouGo"
            },
            region: region.to_owned(),
            status: if paid { "Running" } else { "Pending" },
            create_time: ctx.now,
            end_time: end,
            renew_status: renew.to_owned(),
            renew_period: 0,
            modules: modules.clone(),
            ecs: Some(EcsDetails {
                instance_type: instance_type.to_owned(),
                image_id: image.to_owned(),
                zone_id: zone.clone(),
                instance_name: p.get("InstanceName").unwrap_or(id).to_owned(),
                charge_type: if prepaid { "PrePaid" } else { "PostPaid" },
                internet_charge_type: internet.clone(),
                bandwidth_out: bandwidth,
            }),
        };
        st.account(&owner).instances.push(instance);
    }
    let mut payload = Map::new();
    if let Some(order_id) = order_id {
        payload.insert("OrderId".into(), Value::String(order_id));
    }
    payload.insert("TradePrice".into(), json_number(quote.trade));
    payload.insert("InstanceIdSets".into(), json!({ "InstanceIdSet": ids }));
    let payload = Value::Object(payload);
    if token.is_some() {
        st.account(&owner).tokens.insert(key, payload.clone());
    }
    Ok(ecs(payload))
}

/// ECS's minute-precision time (`2017-12-10T04:04Z`).
fn ecs_time(secs: i64) -> String {
    let full = super::state::fmt_time(secs);
    match full.get(..16) {
        Some(minutes) => format!("{minutes}Z"),
        None => full,
    }
}

fn describe_instances(ctx: &Ctx<'_>) -> Result<Reply, Error> {
    let owner = ctx.owner()?;
    let p = &ctx.p;
    let region = p.required("RegionId")?;
    let ids: Option<Vec<String>> = match p.get("InstanceIds") {
        None => None,
        Some(text) => {
            let ids: Vec<String> = serde_json::from_str(text).map_err(|_| {
                Error::invalid("InstanceIds", "it must be a JSON array of instance ids")
            })?;
            if ids.len() > 100 {
                return Err(Error::invalid("InstanceIds", "at most 100 ids are allowed"));
            }
            Some(ids)
        }
    };
    let status = p.one_of(
        "Status",
        &["Pending", "Running", "Starting", "Stopping", "Stopped"],
    )?;
    let charge = p.one_of("InstanceChargeType", &["PrePaid", "PostPaid"])?;
    let page = p.int_in("PageNumber", 1..=u32::MAX)?.unwrap_or(1);
    let size = p.int_in("PageSize", 1..=100)?.unwrap_or(10);

    let st = ctx.state();
    let empty = Vec::new();
    let instances = st.account_ref(&owner).map_or(&empty, |a| &a.instances);
    let matching: Vec<(&Instance, &EcsDetails)> = instances
        .iter()
        .filter_map(|i| i.ecs.as_ref().map(|e| (i, e)))
        .filter(|(i, _)| i.region == region)
        .filter(|(i, _)| ids.as_ref().is_none_or(|ids| ids.contains(&i.id)))
        .filter(|(i, _)| status.is_none_or(|s| i.status == s))
        .filter(|(_, e)| charge.is_none_or(|c| e.charge_type == c))
        .collect();
    let total = matching.len();
    let skip = usize::try_from(u64::from(page - 1) * u64::from(size)).unwrap_or(usize::MAX);
    let list: Vec<Value> = matching
        .into_iter()
        .skip(skip)
        .take(size as usize)
        .map(|(i, e)| {
            json!({
                "InstanceId": i.id,
                "InstanceName": e.instance_name,
                "RegionId": i.region,
                "ZoneId": e.zone_id,
                "InstanceType": e.instance_type,
                "ImageId": e.image_id,
                "Status": i.status,
                "InstanceChargeType": e.charge_type,
                "InternetChargeType": e.internet_charge_type,
                "InternetMaxBandwidthOut": e.bandwidth_out,
                "CreationTime": ecs_time(i.create_time),
                "ExpiredTime": i.end_time.map_or_else(|| NEVER_EXPIRES.to_owned(), ecs_time),
                "OSType": if e.image_id.to_ascii_lowercase().starts_with("win") { "windows" } else { "linux" },
            })
        })
        .collect();
    Ok(ecs(json!({
        "TotalCount": total,
        "PageNumber": page,
        "PageSize": size,
        "Instances": { "Instance": list },
    })))
}
