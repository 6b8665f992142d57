//! The request path's budget phases: **reserve** (before forwarding a
//! purchase) and **settle** (after), plus the one place that decides what
//! a purchase costs ([`purchase_amount`]).
//!
//! * Only calls the catalog classifies as `purchase` are held. A `DryRun`
//!   is not a purchase. Reseller quota APIs (kind `budget`) are refused to
//!   customers: budgets are the partner's, managed through the admin API.
//! * Idempotency on the client's `ClientToken` (per customer): a retry with
//!   the same token never holds twice. What the retry gets:
//!   - the first purchase committed → the provider's original success
//!     answer is replayed (nothing is forwarded, nothing charged again);
//!   - still in flight or its outcome is being reconciled → refused with
//!     `LastTokenProcessing` (retryable): wait and retry;
//!   - different business parameters under the same token →
//!     `IdempotentParameterMismatch` (the providers' own answer);
//!   - the first one was released (clear failure) or expired → a new hold
//!     and a new attempt (the provider dedupes on the same token too).
//! * Settle: a success answer with the order id commits; an error answer
//!   from the provider or a connect failure (the provider never saw the
//!   call) releases; a timeout, a reset, or a success answer without the
//!   expected order id marks the hold unknown for the reconciler. If the
//!   ledger itself cannot be written at settle time, the hold stays `held`
//!   and the reconciler takes it over after its forward deadline — the
//!   customer still gets the provider's answer.

use std::collections::HashMap;
use std::str::FromStr as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::money::Micros;
use super::types::{HoldState, LedgerError, NewHold, Reserved};
use super::{Ledger, now_ms};
use crate::aliyun::AliyunCall;
use crate::aliyun::provider::{AskError, InstanceModules};
use crate::auth::Authenticated;
use crate::catalog::Kind;
use crate::error::Error;
use crate::metrics::LedgerLabels;
use crate::proxy::RequestCtx;
use crate::upstream::Answer;

/// How long after the forward timeout a `held` hold is presumed orphaned
/// (its request cannot still be running). 2 s covers the time between the
/// timeout firing and the settle write (one database statement).
pub const FORWARD_MARGIN: Duration = Duration::from_secs(2);
/// Largest provider answer kept for replaying to a retried purchase. 16 KiB:
/// order answers are a few hundred bytes; a bigger one is replayed as a
/// minimal answer carrying the order id.
pub const MAX_REPLAY_BYTES: usize = 16 * 1024;
/// How long the product pricing-module lists are cached. 10 minutes: they
/// are catalogue data that changes with product launches, not per request.
pub const MODULE_CACHE_TTL: Duration = Duration::from_secs(600);

/// BssOpenApi's `Version`.
const BSS: &str = "2017-12-14";

/// What the request path does after the reserve phase.
#[derive(Debug)]
pub enum Reservation {
    /// Not a purchase (or a dry run): forward as is.
    Pass,
    /// A hold was made: forward, then [`Ledger::settle`] it.
    Hold(Ticket),
    /// A retry of a committed purchase: answer this, forward nothing.
    Replay {
        /// The answer body (the provider's original answer).
        body: Bytes,
        /// Its content type.
        content_type: &'static str,
    },
}

/// A hold being forwarded.
#[derive(Debug, Clone)]
pub struct Ticket {
    /// Hold id.
    pub hold_id: String,
    /// Customer id.
    pub customer: String,
    /// Action (decides where the order id is in the answer).
    pub action: String,
    /// Amount held.
    pub amount: Micros,
    /// Pay-as-you-go: success carries no order id and still commits.
    pub payg: bool,
}

/// Where and as whom the official price is asked (the partner key, the
/// purchase's upstream, the customer's UID).
pub type PriceSource<'a> = crate::aliyun::provider::Provider<'a>;

/// What a purchase costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    /// Amount to hold.
    pub amount: Micros,
    /// Its currency; `None` for a purchase that costs nothing up front
    /// (pay-as-you-go), held in the budget's own currency.
    pub currency: Option<String>,
    /// The provider's price of the order (matched by the reconciler).
    pub official: Option<Micros>,
    /// Product code.
    pub product: String,
    /// Pay-as-you-go: the amount is the first hours' charge, and a success
    /// answer carries no order id (nothing is ordered up front).
    pub payg: bool,
}

/// A product's pricing modules: (module code, its properties).
type Modules = Vec<(String, Vec<String>)>;

/// Cached pricing modules: product → (fetched, modules).
#[derive(Debug, Default)]
pub struct ModuleCache {
    map: Mutex<HashMap<String, (Instant, Modules)>>,
}

impl ModuleCache {
    fn get(&self, product: &str) -> Option<Vec<(String, Vec<String>)>> {
        let map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(product)
            .filter(|(at, _)| at.elapsed() < MODULE_CACHE_TTL)
            .map(|(_, m)| m.clone())
    }

    fn put(&self, product: &str, modules: Vec<(String, Vec<String>)>) {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.insert(product.to_owned(), (Instant::now(), modules));
    }
}

// ------------------------------------------------------------ the amount

/// THE amount of a purchase — the one place that decides what is held:
/// * a dry run is not a purchase (`Ok(None)`);
/// * pay-as-you-go (BSS `SubscriptionType=PayAsYouGo`, ECS `PostPaid`)
///   charges nothing at the provider at creation, but commits the reseller
///   to usage: `payg_hours` hours at the partner's rate are held (the
///   pricing module's quote is the hourly rate) and charged when the
///   purchase succeeds ([`Price::payg`]). Without a partner quote the rate
///   is unknown, so the purchase is refused (a call whose price cannot be
///   determined never leaves unheld), unless `payg_hours` is 0;
/// * a partner quote (`ctx.quote`, set by the pricing phase when a pricing
///   module is configured): its `total` in its currency — what the
///   customer is charged, bundles included;
/// * otherwise the provider's official price, asked from its own price API
///   with the partner's key: `GetSubscriptionPrice` for BSS
///   `CreateInstance`/`RenewInstance`, `DescribePrice` for ECS `RunInstances`.
pub async fn purchase_amount(
    ctx: &RequestCtx,
    call: &AliyunCall,
    src: &PriceSource<'_>,
    cache: &ModuleCache,
    payg_hours: u32,
) -> Result<Option<Price>, Error> {
    if is_dry_run(call) {
        return Ok(None);
    }
    let product = match call.action.as_str() {
        "RunInstances" => "ecs",
        _ => param(call, "ProductCode").ok_or_else(|| Error::missing("ProductCode"))?,
    };
    let payg = is_pay_as_you_go(call);
    if payg && payg_hours == 0 {
        return Ok(Some(zero(product)));
    }
    if let Some(quote) = &ctx.quote {
        let total = if payg {
            quote.total * rust_decimal::Decimal::from(payg_hours)
        } else {
            quote.total
        };
        let amount = Micros::from_amount(total).map_err(|e| {
            let mut err = Error::internal(format!(
                "the partner price {total} cannot be held: {e}; nothing was bought"
            ));
            err.origin = crate::error::Origin::Pricing;
            err
        })?;
        return Ok(Some(Price {
            amount,
            currency: Some(quote.currency.clone()),
            // The quote carries the partner's price, not the provider's
            // trade price: the reconciler matches without the amount.
            official: None,
            product: product.to_owned(),
            payg,
        }));
    }
    if payg {
        return Err(unpriced(&format!(
            "{} pay-as-you-go (its hourly rate needs a pricing module)",
            call.action
        )));
    }
    official_price(call, src, cache).await
}

/// `RunInstances` with `DryRun=true`: validation only, nothing is bought.
pub fn is_dry_run(call: &AliyunCall) -> bool {
    call.action == "RunInstances"
        && param(call, "DryRun").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A purchase that charges nothing when it is made.
fn is_pay_as_you_go(call: &AliyunCall) -> bool {
    match call.action.as_str() {
        "RunInstances" => param(call, "InstanceChargeType") != Some("PrePaid"),
        "CreateInstance" | "ModifyInstance" => {
            param(call, "SubscriptionType") != Some("Subscription")
        }
        _ => false,
    }
}

fn zero(product: &str) -> Price {
    Price {
        amount: Micros::ZERO,
        currency: None,
        official: Some(Micros::ZERO),
        product: product.to_owned(),
        payg: true,
    }
}

fn param<'a>(call: &'a AliyunCall, name: &str) -> Option<&'a str> {
    call.param(name).filter(|v| !v.is_empty())
}

/// The provider's price of the purchase `call`.
pub async fn official_price(
    call: &AliyunCall,
    src: &PriceSource<'_>,
    cache: &ModuleCache,
) -> Result<Option<Price>, Error> {
    match call.action.as_str() {
        "RunInstances" => {
            if param(call, "DryRun").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                return Ok(None);
            }
            if param(call, "InstanceChargeType") != Some("PrePaid") {
                // Pay-as-you-go: nothing is charged at creation (bills later).
                return Ok(Some(zero("ecs")));
            }
            run_instances_price(call, src).await.map(Some)
        }
        "CreateInstance" => {
            let product =
                param(call, "ProductCode").ok_or_else(|| Error::missing("ProductCode"))?;
            if param(call, "SubscriptionType") != Some("Subscription") {
                return Ok(Some(zero(product)));
            }
            create_instance_price(call, product, src, cache)
                .await
                .map(Some)
        }
        "RenewInstance" => {
            let product =
                param(call, "ProductCode").ok_or_else(|| Error::missing("ProductCode"))?;
            renew_instance_price(call, product, src).await.map(Some)
        }
        other => Err(unpriced(other)),
    }
}

pub(crate) fn unpriced(action: &str) -> Error {
    let mut e = Error::customer(
        StatusCode::FORBIDDEN,
        "Forbidden.Unpriced",
        format!(
            "Tollgate cannot price {action} yet, so it cannot hold it against the budget; nothing was bought."
        ),
        "budget_unpriced",
    );
    e.origin = crate::error::Origin::Pricing;
    e
}

fn price_failure(what: &str) -> Error {
    let mut e = Error::upstream(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        format!(
            "The price of this purchase could not be determined ({what}); nothing was bought. Retry later."
        ),
        "price_unavailable",
        true,
    );
    e.origin = crate::error::Origin::Pricing;
    e
}

/// One signed call to the provider; the JSON answer or the provider's error.
async fn ask(
    src: &PriceSource<'_>,
    action: &str,
    version: &str,
    params: Vec<(String, String)>,
) -> Result<Value, Error> {
    src.ask(action, version, params)
        .await
        .map_err(|e| ask_failure(action, e))
}

/// What a failed price lookup means for the purchase.
fn ask_failure(action: &str, e: AskError) -> Error {
    match e {
        AskError::Transport(e) => price_failure(&format!("{action}: {}", e.code)),
        AskError::NotJson => {
            price_failure(&format!("{action} answered something that is not JSON"))
        }
        AskError::Refused { status, code, .. } if status.is_server_error() => {
            price_failure(&format!("{action}: {code}"))
        }
        // The provider refused the price query for the purchase's own
        // parameters: the purchase would be refused the same way.
        AskError::Refused {
            status,
            code,
            message,
        } => Error::customer(status, code, message, "price_refused"),
    }
}

/// A JSON price (number or string) as exact money.
fn money(v: Option<&Value>, what: &str) -> Result<Micros, Error> {
    let text = match v {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return Err(price_failure(&format!("no {what} in the answer"))),
    };
    let d = Decimal::from_str(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| price_failure(&format!("{what} \"{text}\" is not a decimal")))?;
    Micros::from_amount(d).map_err(|e| price_failure(&format!("{what}: {e}")))
}

fn currency(v: Option<&Value>) -> Result<String, Error> {
    v.and_then(Value::as_str)
        .ok_or_else(|| price_failure("no Currency in the answer"))
        .and_then(|c| super::money::check_currency(c).map_err(|e| price_failure(&e)))
}

async fn run_instances_price(call: &AliyunCall, src: &PriceSource<'_>) -> Result<Price, Error> {
    // DescribePrice takes the configuration parameters of RunInstances
    // under the same names; the period is expressed as PriceUnit + Period.
    const SAME: &[&str] = &[
        "RegionId",
        "ZoneId",
        "InstanceType",
        "ImageId",
        "Platform",
        "IoOptimized",
        "InstanceNetworkType",
        "InternetChargeType",
        "InternetMaxBandwidthOut",
        "Amount",
        "SystemDisk.Category",
        "SystemDisk.Size",
        "SystemDisk.PerformanceLevel",
    ];
    let mut params: Vec<(String, String)> = vec![("ResourceType".into(), "instance".into())];
    for (k, v) in call.params() {
        if SAME.contains(&k) || (k.starts_with("DataDisk.") && !k.ends_with(".DiskName")) {
            params.push((k.to_owned(), v.to_owned()));
        }
    }
    let period: u32 = param(call, "Period")
        .ok_or_else(|| Error::missing("Period"))?
        .parse()
        .map_err(|_| Error::invalid("Period", "it must be a whole number"))?;
    let (unit, n) = match param(call, "PeriodUnit").unwrap_or("Month") {
        "Week" => ("Week", period),
        _ if period > 9 && period.is_multiple_of(12) => ("Year", period / 12),
        _ => ("Month", period),
    };
    params.push(("PriceUnit".into(), unit.into()));
    params.push(("Period".into(), n.to_string()));
    let body = ask(src, "DescribePrice", &call.version, params).await?;
    let price = body.pointer("/PriceInfo/Price");
    let amount = money(price.and_then(|p| p.get("TradePrice")), "TradePrice")?;
    Ok(Price {
        amount,
        currency: Some(currency(price.and_then(|p| p.get("Currency")))?),
        official: Some(amount),
        product: "ecs".into(),
        payg: false,
    })
}

/// The product's pricing modules and their properties (cached).
async fn modules(
    product: &str,
    src: &PriceSource<'_>,
    cache: &ModuleCache,
) -> Result<Vec<(String, Vec<String>)>, Error> {
    if let Some(m) = cache.get(product) {
        return Ok(m);
    }
    let body = ask(
        src,
        "DescribePricingModule",
        BSS,
        vec![
            ("ProductCode".into(), product.into()),
            ("SubscriptionType".into(), "Subscription".into()),
        ],
    )
    .await?;
    let list = body
        .pointer("/Data/ModuleList/Module")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    for m in list {
        let Some(code) = m.get("ModuleCode").and_then(Value::as_str) else {
            continue;
        };
        let props = m
            .pointer("/ConfigList/ConfigList")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        out.push((code.to_owned(), props));
    }
    cache.put(product, out.clone());
    Ok(out)
}

/// `ModuleList.N.*` for the modules fully configured by `props`.
fn module_list(
    modules: &[(String, Vec<String>)],
    props: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut n = 0;
    for (code, needs) in modules {
        let values: Option<Vec<String>> = needs
            .iter()
            .map(|p| {
                props
                    .iter()
                    .find(|(k, _)| k == p)
                    .map(|(_, v)| format!("{p}:{v}"))
            })
            .collect();
        if let Some(values) = values.filter(|v| !v.is_empty()) {
            n += 1;
            out.push((format!("ModuleList.{n}.ModuleCode"), code.clone()));
            out.push((format!("ModuleList.{n}.Config"), values.join(",")));
        }
    }
    out
}

fn subscription_price(body: &Value, product: &str) -> Result<Price, Error> {
    let amount = money(body.pointer("/Data/TradePrice"), "TradePrice")?;
    Ok(Price {
        amount,
        currency: Some(currency(body.pointer("/Data/Currency"))?),
        official: Some(amount),
        product: product.to_owned(),
        payg: false,
    })
}

async fn create_instance_price(
    call: &AliyunCall,
    product: &str,
    src: &PriceSource<'_>,
    cache: &ModuleCache,
) -> Result<Price, Error> {
    // `Parameter.N.Code/Value` → properties.
    let mut props = Vec::new();
    for n in 1..=100 {
        let Some(code) = param(call, &format!("Parameter.{n}.Code")) else {
            break;
        };
        let value = call.param(&format!("Parameter.{n}.Value")).unwrap_or("");
        props.push((code.to_owned(), value.to_owned()));
    }
    let modules = modules(product, src, cache).await?;
    let mut params: Vec<(String, String)> = vec![
        ("ProductCode".into(), product.into()),
        ("SubscriptionType".into(), "Subscription".into()),
        ("OrderType".into(), "NewOrder".into()),
        (
            "ServicePeriodQuantity".into(),
            param(call, "Period").unwrap_or("12").into(),
        ),
        ("ServicePeriodUnit".into(), "Month".into()),
        ("Quantity".into(), "1".into()),
    ];
    if let Some(t) = param(call, "ProductType") {
        params.push(("ProductType".into(), t.into()));
    }
    if let Some((_, region)) = props.iter().find(|(k, _)| k == "Region") {
        params.push(("Region".into(), region.clone()));
    }
    params.extend(module_list(&modules, &props));
    let body = ask(src, "GetSubscriptionPrice", BSS, params).await?;
    subscription_price(&body, product)
}

/// A renewal is priced from the instance's original configuration: the
/// instance's creation time (`QueryAvailableInstances`) → its `New` order
/// (`QueryOrders` around that time, `GetOrderDetail` naming the instance)
/// → its modules → `GetSubscriptionPrice` with `OrderType=Renewal`.
async fn renew_instance_price(
    call: &AliyunCall,
    product: &str,
    src: &PriceSource<'_>,
) -> Result<Price, Error> {
    let instance = param(call, "InstanceId").ok_or_else(|| Error::missing("InstanceId"))?;
    let months = param(call, "RenewPeriod").ok_or_else(|| Error::missing("RenewPeriod"))?;
    let (modules, region) = match src
        .instance_modules(product, instance)
        .await
        .map_err(|e| ask_failure("QueryAvailableInstances", e))?
    {
        InstanceModules::Found { modules, region } => (modules, region),
        InstanceModules::NoInstance => {
            return Err(Error::invalid(
                "InstanceId",
                format_args!("instance \"{instance}\" of product \"{product}\" is not found"),
            ));
        }
        InstanceModules::NoOrder => {
            return Err(price_failure(&format!(
                "the order that created instance {instance} was not found"
            )));
        }
    };
    let mut params: Vec<(String, String)> = vec![
        ("ProductCode".into(), product.into()),
        ("SubscriptionType".into(), "Subscription".into()),
        ("OrderType".into(), "Renewal".into()),
        ("InstanceId".into(), instance.into()),
        ("ServicePeriodQuantity".into(), months.into()),
        ("ServicePeriodUnit".into(), "Month".into()),
    ];
    if let Some(region) = region {
        params.push(("Region".into(), region));
    }
    for (n, (code, props)) in modules.iter().enumerate() {
        let config: Vec<String> = props.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        params.push((format!("ModuleList.{}.ModuleCode", n + 1), code.clone()));
        params.push((format!("ModuleList.{}.Config", n + 1), config.join(",")));
    }
    let body = ask(src, "GetSubscriptionPrice", BSS, params).await?;
    subscription_price(&body, product)
}

/// Whether `action` is one of the read-only calls the gateway makes to
/// price a purchase (demo and tests tell them apart from the purchase).
pub fn is_price_lookup(action: &str) -> bool {
    matches!(
        action,
        "DescribePricingModule"
            | "GetSubscriptionPrice"
            | "DescribePrice"
            | "QueryAvailableInstances"
            | "QueryOrders"
            | "GetOrderDetail"
    )
}

// ----------------------------------------------------------- fingerprint

/// SHA-256 of the action and its sorted business parameters.
pub fn fingerprint(call: &AliyunCall) -> String {
    let mut pairs: Vec<(&str, &str)> = call
        .params()
        .filter(|(k, _)| !crate::aliyun::is_call_or_owner_param(k))
        .collect();
    pairs.sort_unstable();
    let mut h = Sha256::new();
    h.update(call.action.as_bytes());
    for (k, v) in pairs {
        h.update(b"\n");
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.as_bytes());
    }
    hex::encode(h.finalize())
}

// ------------------------------------------------------------- refusals

/// A ledger refusal in the provider's format.
///
/// Codes: `InvalidAccountStatus.NotEnoughBalance` (403) is the code ECS
/// `RunInstances` documents for "your account does not have enough
/// balance" — the condition SDK users already handle for a purchase that
/// cannot be paid; a missing budget is that condition too (nothing to pay
/// with). A frozen or hosted budget is `InvalidAccountStatus.Frozen` (403),
/// in the same family, the message naming the state. HTTP 403 as the
/// reference gives for business refusals of a purchase the caller may not
/// make now.
pub fn refusal(e: &LedgerError, customer: &str) -> Error {
    match e {
        LedgerError::NoBudget(_) => Error::customer(
            StatusCode::FORBIDDEN,
            "InvalidAccountStatus.NotEnoughBalance",
            format!(
                "No budget has been granted to customer \"{customer}\": purchases are refused until the partner sets one. Nothing was bought."
            ),
            "budget_none",
        ),
        LedgerError::NotBuying { status, .. } => Error::customer(
            StatusCode::FORBIDDEN,
            "InvalidAccountStatus.Frozen",
            format!(
                "The budget of customer \"{customer}\" is {}: purchases are refused (reads still work). Nothing was bought.",
                status.as_str()
            ),
            "budget_frozen",
        ),
        LedgerError::Insufficient {
            available,
            needed,
            currency,
        } => Error::customer(
            StatusCode::FORBIDDEN,
            "InvalidAccountStatus.NotEnoughBalance",
            format!(
                "Insufficient budget: available {available} {currency}, this purchase needs {needed} {currency}. Nothing was bought."
            ),
            "budget_insufficient",
        ),
        // The same signed call already made a hold (before a restart, or
        // on another replica): a replay, whatever the in-memory cache
        // remembers.
        LedgerError::Replayed => Error::customer(
            StatusCode::BAD_REQUEST,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
            "nonce_replay",
        ),
        LedgerError::Currency { budget, amount } => Error::customer(
            StatusCode::FORBIDDEN,
            "InvalidAccountStatus.CurrencyMismatch",
            format!(
                "The budget is in {budget} but this purchase is priced in {amount}. Nothing was bought."
            ),
            "budget_currency",
        ),
        other => {
            tracing::error!(error = %other, "ledger unavailable");
            let mut e = Error::internal(
                "The budget ledger is unavailable, so no purchase can be held; nothing was bought. Retry later.",
            );
            e.status = StatusCode::SERVICE_UNAVAILABLE;
            e.code = "ServiceUnavailable".into();
            e.reason = "ledger_unavailable";
            e
        }
    }
}

fn not_applicable() -> Error {
    // What BSS answers a caller that is not a reseller (reference §3.3).
    Error::customer(
        StatusCode::BAD_REQUEST,
        "NotApplicable",
        "This API is not applicable for caller. Budgets are granted by the partner (Tollgate admin API).",
        "budget_api",
    )
}

// --------------------------------------------------------------- phases

fn replay_body(action: &str, order_id: Option<&str>, request_id: &str) -> Bytes {
    let body = if action == "RunInstances" {
        json!({ "RequestId": request_id, "OrderId": order_id })
    } else {
        json!({
            "RequestId": request_id,
            "Code": "Success",
            "Message": "Successful!",
            "Success": true,
            "Data": { "OrderId": order_id },
        })
    };
    Bytes::from(body.to_string())
}

/// Where the order id of a success answer is.
enum Parsed {
    Order(String),
    NoOrder,
    Failed(String),
    Unclear,
}

fn xml_tag<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].trim())
}

fn parse_order(action: &str, body: &[u8], amount: Micros) -> Parsed {
    let text = String::from_utf8_lossy(body);
    let (success, order) = match serde_json::from_slice::<Value>(body) {
        Ok(v) => {
            let success = v.get("Success").and_then(Value::as_bool);
            let order = if action == "RunInstances" {
                v.get("OrderId")
            } else {
                v.pointer("/Data/OrderId")
            };
            let order = match order {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            (success, order)
        }
        Err(_) => (
            xml_tag(&text, "Success").map(|s| s == "true"),
            xml_tag(&text, "OrderId").map(str::to_owned),
        ),
    };
    if success == Some(false) {
        return Parsed::Failed("the provider answered Success=false".into());
    }
    match order {
        Some(id) if !id.is_empty() => Parsed::Order(id),
        // Pay-as-you-go ECS makes no order; nothing was held.
        _ if action == "RunInstances" && amount == Micros::ZERO => Parsed::NoOrder,
        _ => Parsed::Unclear,
    }
}

impl Ledger {
    fn count(&self, op: &'static str, outcome: &'static str) {
        self.metrics
            .ledger_operations
            .get_or_create(&LedgerLabels { op, outcome })
            .inc();
    }

    /// The budget gate, before anything about a purchase goes to the
    /// provider (even a price query): the partner's quota APIs are refused
    /// to customers; a purchase by a customer without a budget (after the
    /// default one, if configured) or with a frozen budget is refused.
    pub async fn gate(
        &self,
        call: &AliyunCall,
        who: &Authenticated,
        kind: Option<Kind>,
    ) -> Result<(), Error> {
        match kind {
            Some(Kind::Budget) => Err(not_applicable()),
            Some(Kind::Purchase) if !is_dry_run(call) => {
                let customer = who.customer.id.as_str();
                self.ready().await.map_err(|e| refusal(&e, customer))?;
                self.precheck(customer).await.map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// The reserve phase. `kind` is the catalog's classification of the call.
    pub async fn reserve(
        &self,
        ctx: &RequestCtx,
        call: &AliyunCall,
        who: &Authenticated,
        kind: Option<Kind>,
        src: PriceSource<'_>,
    ) -> Result<Reservation, Error> {
        match kind {
            Some(Kind::Budget) => return Err(not_applicable()),
            Some(Kind::Purchase) => {}
            _ => return Ok(Reservation::Pass),
        }
        let customer = who.customer.id.as_str();
        self.ready().await.map_err(|e| refusal(&e, customer))?;
        let token = param(call, "ClientToken");
        let fp = fingerprint(call);
        if let Some(t) = token
            && let Some(existing) = self
                .store
                .hold_by_token(customer, t)
                .await
                .map_err(|e| refusal(&e, customer))?
        {
            return self.retried(&existing, &fp, &ctx.request_id);
        }
        let Some(price) =
            purchase_amount(ctx, call, &src, &self.prices, self.settings.payg_hold_hours).await?
        else {
            return Ok(Reservation::Pass);
        };
        let now = now_ms();
        let currency = match price.currency.clone() {
            Some(c) => c,
            // Zero-amount (pay-as-you-go) holds are in the budget's currency.
            None => self.precheck(customer).await?,
        };
        let forward_ms =
            i64::try_from((src.upstream.timeout + FORWARD_MARGIN).as_millis()).unwrap_or(i64::MAX);
        let expiry_ms = i64::try_from(self.settings.hold_expiry.as_millis()).unwrap_or(i64::MAX);
        let hold = NewHold {
            id: uuid::Uuid::new_v4().to_string(),
            customer: customer.to_owned(),
            amount: price.amount,
            currency,
            client_token: token.map(str::to_owned),
            fingerprint: fp.clone(),
            request_id: ctx.request_id.clone(),
            action: call.action.clone(),
            product: price.product.clone(),
            official: price.official,
            provider: super::Provider::Alibaba,
            provider_ref: None,
            replay_key: Some(super::types::replay_key(
                super::Provider::Alibaba,
                call.access_key_id(),
                call.nonce(),
            )),
            now,
            forward_deadline: now.saturating_add(forward_ms),
            expires_at: now.saturating_add(expiry_ms),
        };
        let mut result = self.store.reserve(hold.clone()).await;
        if matches!(result, Err(LedgerError::NoBudget(_)))
            && self.grant_default(customer, now).await
        {
            result = self.store.reserve(hold.clone()).await;
        }
        match result {
            Ok(Reserved::New(after)) => {
                self.count("reserve", "ok");
                tracing::info!(
                    request_id = %ctx.request_id,
                    customer,
                    hold = %hold.id,
                    amount = %hold.amount,
                    currency = %hold.currency,
                    available = %after.available(),
                    "budget held"
                );
                Ok(Reservation::Hold(Ticket {
                    hold_id: hold.id,
                    customer: customer.to_owned(),
                    action: call.action.clone(),
                    amount: hold.amount,
                    payg: price.payg,
                }))
            }
            Ok(Reserved::Existing(existing)) => self.retried(&existing, &fp, &ctx.request_id),
            Err(e) => {
                self.count(
                    "reserve",
                    if matches!(e, LedgerError::Db(_)) {
                        "error"
                    } else {
                        "refused"
                    },
                );
                Err(refusal(&e, customer))
            }
        }
    }

    /// Refuses a customer without a budget (after granting the default
    /// one, if configured) or with a frozen one; returns the budget's
    /// currency (for zero-amount, pay-as-you-go holds).
    pub(crate) async fn precheck(&self, customer: &str) -> Result<String, Error> {
        let mut found = self
            .store
            .budget(customer)
            .await
            .map_err(|e| refusal(&e, customer))?;
        if found.is_none() && self.grant_default(customer, now_ms()).await {
            found = self
                .store
                .budget(customer)
                .await
                .map_err(|e| refusal(&e, customer))?;
        }
        match found {
            None => {
                self.count("reserve", "refused");
                Err(refusal(
                    &LedgerError::NoBudget(customer.to_owned()),
                    customer,
                ))
            }
            Some(b) if !b.status.can_buy() => {
                self.count("reserve", "refused");
                Err(refusal(
                    &LedgerError::NotBuying {
                        customer: b.customer,
                        status: b.status,
                    },
                    customer,
                ))
            }
            Some(b) => Ok(b.currency),
        }
    }

    /// Gives `customer` the configured default budget; `true` if one exists now.
    async fn grant_default(&self, customer: &str, now: i64) -> bool {
        let Some((limit, currency)) = &self.default_budget() else {
            return false;
        };
        let biz = format!("default-budget:{customer}");
        match self
            .store
            .create_budget(customer, currency, *limit, Some(&biz), now)
            .await
        {
            Ok(_) => {
                tracing::info!(customer, limit = %limit, currency = %currency, "ledger: default budget granted");
                true
            }
            Err(LedgerError::Exists(_)) => true,
            Err(e) => {
                tracing::warn!(customer, error = %e, "ledger: granting the default budget failed");
                false
            }
        }
    }

    /// A purchase whose token already has a hold.
    fn retried(
        &self,
        existing: &super::Hold,
        fp: &str,
        request_id: &str,
    ) -> Result<Reservation, Error> {
        self.count("reserve", "retry");
        if existing.fingerprint != fp {
            return Err(Error::customer(
                StatusCode::BAD_REQUEST,
                "IdempotentParameterMismatch",
                "The ClientToken was already used for a purchase with different parameters.",
                "token_mismatch",
            ));
        }
        match existing.state {
            HoldState::Committed => {
                tracing::info!(
                    request_id,
                    hold = %existing.id,
                    order = existing.order_id.as_deref().unwrap_or(""),
                    "retried purchase: the committed answer is replayed"
                );
                let (body, content_type) = match &existing.answer {
                    Some(a) if a.trim_start().starts_with('<') => {
                        (Bytes::from(a.clone()), "text/xml;charset=utf-8")
                    }
                    Some(a) => (Bytes::from(a.clone()), "application/json;charset=utf-8"),
                    None => (
                        replay_body(&existing.action, existing.order_id.as_deref(), request_id),
                        "application/json;charset=utf-8",
                    ),
                };
                Ok(Reservation::Replay { body, content_type })
            }
            _ => {
                let mut e = Error::customer(
                    StatusCode::BAD_REQUEST,
                    "LastTokenProcessing",
                    format!(
                        "The purchase with this ClientToken is still being settled ({}); retry with the same ClientToken later.",
                        if existing.state == HoldState::Held {
                            "in progress"
                        } else {
                            "its outcome is being confirmed with the provider"
                        }
                    ),
                    "token_in_progress",
                );
                e.retryable = true;
                Err(e)
            }
        }
    }

    /// The settle phase: never fails the request (the provider's answer goes
    /// back to the customer either way); what cannot be written now is left
    /// to the reconciler.
    ///
    /// `shown`: the answer body the customer gets when it differs from the
    /// provider's (re-priced by the pricing phase); it is what a retry of
    /// this purchase is replayed, so a replay never shows the provider's price.
    pub async fn settle(
        &self,
        ctx: &RequestCtx,
        ticket: &Ticket,
        answer: &Result<Answer, Error>,
        shown: Option<&Bytes>,
    ) {
        enum Step {
            Commit(Option<String>, Option<String>),
            Release(String),
            Unknown(String),
        }
        let step = match answer {
            Ok(a) if a.status.is_success() => {
                let replay = shown.unwrap_or(&a.body);
                let keep = (replay.len() <= MAX_REPLAY_BYTES)
                    .then(|| String::from_utf8_lossy(replay).into_owned());
                // A pay-as-you-go success names no order: nothing was
                // ordered up front, and the held first hours are charged.
                let expect = if ticket.payg {
                    Micros::ZERO
                } else {
                    ticket.amount
                };
                match parse_order(&ticket.action, &a.body, expect) {
                    Parsed::Order(id) => Step::Commit(Some(id), keep),
                    Parsed::NoOrder => Step::Commit(None, keep),
                    Parsed::Failed(why) => Step::Release(why),
                    Parsed::Unclear => Step::Unknown("a success answer without an order id".into()),
                }
            }
            Ok(a) => Step::Release(format!("the provider refused (HTTP {})", a.status.as_u16())),
            Err(e) if e.retryable => {
                Step::Release(format!("the provider was not reached ({})", e.code))
            }
            Err(e) => Step::Unknown(format!("outcome unknown ({})", e.reason)),
        };
        let now = now_ms();
        let (op, result) = match &step {
            Step::Commit(order, answer) => (
                "commit",
                self.store
                    .commit(&ticket.hold_id, order.as_deref(), answer.as_deref(), now)
                    .await
                    .map(|_| ()),
            ),
            Step::Release(why) => (
                "release",
                self.store.release(&ticket.hold_id, why, false, now).await,
            ),
            Step::Unknown(why) => (
                "unknown",
                self.store.mark_unknown(&ticket.hold_id, why, now).await,
            ),
        };
        match result {
            Ok(()) => {
                self.count(op, "ok");
                tracing::info!(request_id = %ctx.request_id, customer = %ticket.customer, hold = %ticket.hold_id, op, "budget hold settled");
            }
            Err(e) => {
                self.count(op, "error");
                tracing::error!(
                    request_id = %ctx.request_id,
                    customer = %ticket.customer,
                    hold = %ticket.hold_id,
                    op,
                    error = %e,
                    "settling the hold failed: left to the reconciler"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_ids_are_found_where_each_api_puts_them() {
        let m = Micros(1);
        let bss = br#"{"RequestId":"r","Code":"Success","Success":true,"Data":{"OrderId":"2100","InstanceId":"i"}}"#;
        assert!(matches!(parse_order("CreateInstance", bss, m), Parsed::Order(id) if id == "2100"));
        let ecs = br#"{"RequestId":"r","OrderId":"2101","TradePrice":1.5}"#;
        assert!(matches!(parse_order("RunInstances", ecs, m), Parsed::Order(id) if id == "2101"));
        let payg = br#"{"RequestId":"r","TradePrice":0.3,"InstanceIdSets":{}}"#;
        assert!(matches!(
            parse_order("RunInstances", payg, Micros::ZERO),
            Parsed::NoOrder
        ));
        assert!(matches!(
            parse_order("RunInstances", payg, m),
            Parsed::Unclear
        ));
        let failed = br#"{"RequestId":"r","Code":"-1","Success":false}"#;
        assert!(matches!(
            parse_order("CreateInstance", failed, m),
            Parsed::Failed(_)
        ));
        let xml = b"<CreateInstanceResponse><Success>true</Success><Data><OrderId>2102</OrderId></Data></CreateInstanceResponse>";
        assert!(matches!(parse_order("CreateInstance", xml, m), Parsed::Order(id) if id == "2102"));
        assert!(matches!(
            parse_order("CreateInstance", b"garbage", m),
            Parsed::Unclear
        ));
    }

    #[test]
    fn module_lists_use_only_fully_configured_modules() {
        let modules = vec![
            ("PackageCode".to_owned(), vec!["PackageCode".to_owned()]),
            (
                "Disk".to_owned(),
                vec!["DiskType".to_owned(), "DiskSize".to_owned()],
            ),
        ];
        let props = vec![
            ("PackageCode".to_owned(), "standard_500G".to_owned()),
            ("DiskType".to_owned(), "ssd".to_owned()),
            ("Region".to_owned(), "cn-hangzhou".to_owned()),
        ];
        assert_eq!(
            module_list(&modules, &props),
            vec![
                (
                    "ModuleList.1.ModuleCode".to_owned(),
                    "PackageCode".to_owned()
                ),
                (
                    "ModuleList.1.Config".to_owned(),
                    "PackageCode:standard_500G".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn prices_parse_exactly_from_numbers_and_strings() {
        let v: Value = serde_json::from_str(r#"{"a":3712.8,"b":"0.125","c":1e2}"#).unwrap();
        assert_eq!(money(v.get("a"), "a").unwrap(), Micros(3_712_800_000));
        assert_eq!(money(v.get("b"), "b").unwrap(), Micros(125_000));
        assert_eq!(money(v.get("c"), "c").unwrap(), Micros(100_000_000));
        assert!(money(v.get("zz"), "zz").is_err());
    }
}
