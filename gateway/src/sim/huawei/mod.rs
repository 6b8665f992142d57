//! The simulated Huawei Cloud BSS (customer APIs, huawei-bss.md), served by
//! the same `tollgate sim` process as the Alibaba cloud: calls whose path
//! starts with `/v1.0/`, `/v2/`, `/v3/` or `/v4/` come here.
//!
//! One call goes through, in order (APIG's, then BSS's order):
//! 1. parse ([`HuaweiCall::parse`]): missing/malformed `Authorization` or
//!    `X-Sdk-Date` → `APIG.0301` 401;
//! 2. route ([`route`]): a path no API is published at → `APIG.0101` 404;
//! 3. authenticate: `X-Sdk-Date` within 15 minutes, a known AK (each
//!    customer account's keys, from `[[huawei.account]]`), the signature
//!    (recomputed with the call's own signed headers), `X-Domain-Id` (when
//!    sent) naming the key's own account → else `APIG.0301` 401;
//! 4. record, faults (shared with the Alibaba side, by operation name);
//! 5. the operation (`ratings`, `orders`, `bills`): JSON body checks
//!    (`CBC.0100` 400), state change, answer. Business errors carry CBC
//!    codes with their statuses, some inside HTTP 200 (`CBC.30050009`
//!    for a renewal quote of unknown resources; per-item failures in
//!    `fail_resource_infos` / `error_details`); success without output is
//!    `204 No Content`.

mod bills;
mod orders;
pub mod prices;
mod ratings;
mod state;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Response, StatusCode, header};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::Body;
use crate::catalog::{PathPattern, normalise};
use crate::error::Error;
use crate::huawei::call::{APIG_NO_API, HuaweiCall, auth_failed};
use crate::huawei::envelope;
use crate::secret::{SecretRef, SecretString};

pub use prices::HuaweiPrices;
use state::State;

/// `[huawei]` of the sim's config.
///
/// ```toml
/// [huawei]
/// prices = "sim-huawei-prices.toml"
/// [[huawei.account]]
/// domain_id = "0a7c3b2f3d80d4a20f7ac004cbde0001"
/// name = "acme"
/// access_key_id = "HWACMEPARTNERAK0001"      # a key of this account
/// secret_file = "secrets/huawei/acme.sk"
/// balance = "10000.00"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HuaweiSimConfig {
    /// The price file (relative to the config's folder).
    pub prices: PathBuf,
    /// The customer accounts and their AK/SKs.
    #[serde(rename = "account", default)]
    pub accounts: Vec<AccountConfig>,
}

/// One Huawei customer account (domain) and one AK/SK of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The account (domain) id, 32 hex digits.
    pub domain_id: String,
    /// The account name (login).
    pub name: String,
    /// The AK.
    pub access_key_id: String,
    /// The SK, by reference.
    #[serde(flatten)]
    pub secret: SecretRef,
    /// Opening cash balance (decimal string).
    #[serde(deserialize_with = "prices::decimal_text")]
    pub balance: Decimal,
}

/// A loaded account.
#[derive(Debug, Clone)]
pub struct Account {
    /// Domain id.
    pub domain_id: String,
    /// Name.
    pub name: String,
    /// AK.
    pub access_key_id: String,
    secret: SecretString,
    /// Opening balance.
    pub balance: Decimal,
}

/// The loaded `[huawei]` section.
#[derive(Debug, Clone)]
pub struct Loaded {
    accounts: Vec<Account>,
    prices: HuaweiPrices,
}

impl HuaweiSimConfig {
    /// Loads the secrets and the price file.
    pub fn load(&self, base_dir: &Path) -> anyhow::Result<Loaded> {
        let mut accounts = Vec::with_capacity(self.accounts.len());
        let mut aks = std::collections::HashSet::new();
        for a in &self.accounts {
            if a.domain_id.is_empty() || !a.domain_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                bail!("huawei account {}: domain_id must be alphanumeric", a.name);
            }
            if !aks.insert(a.access_key_id.as_str()) {
                bail!("huawei access_key_id {} is listed twice", a.access_key_id);
            }
            accounts.push(Account {
                domain_id: a.domain_id.clone(),
                name: a.name.clone(),
                access_key_id: a.access_key_id.clone(),
                secret: a
                    .secret
                    .load(base_dir, &format!("sim huawei account {}", a.name))?,
                balance: a.balance,
            });
        }
        let file = if self.prices.is_absolute() {
            self.prices.clone()
        } else {
            base_dir.join(&self.prices)
        };
        let prices = HuaweiPrices::load(&file).context("loading the Huawei price file")?;
        Ok(Loaded { accounts, prices })
    }
}

/// An operation's answer.
#[derive(Debug)]
pub enum Reply {
    /// 200 with this JSON (including business errors BSS answers with 200).
    Json(Value),
    /// 204, no body.
    NoContent,
}

/// What an operation sees.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The call.
    pub call: &'a HuaweiCall,
    /// The JSON body (`Null` when empty).
    pub body: Value,
    /// Path placeholders (`order_id`, `resource_id`).
    pub path_params: Vec<(String, String)>,
    /// Prices.
    pub prices: &'a HuaweiPrices,
    /// The authenticated account.
    pub account: &'a Account,
    /// All state (locked for the call).
    pub state: &'a mut State,
    /// Arrival time.
    pub now: OffsetDateTime,
}

type OpFn = fn(&mut Ctx<'_>) -> Result<Reply, Error>;

/// The published APIs: every row of the seed's permission table plus the
/// measurement-unit list the rating answers refer to.
const ROUTES: &[(&str, &str, &str, OpFn)] = &[
    (
        "POST",
        "/v2/bills/ratings/on-demand-resources",
        "ListOnDemandResourceRatings",
        ratings::on_demand,
    ),
    (
        "POST",
        "/v2/bills/ratings/period-resources/subscribe-rate",
        "ListRateOnPeriodDetail",
        ratings::period,
    ),
    (
        "POST",
        "/v2/bills/ratings/period-resources/renew-rate",
        "ListRenewRateOnPeriod",
        ratings::renew,
    ),
    (
        "GET",
        "/v2/accounts/customer-accounts/balances",
        "ShowCustomerAccountBalances",
        bills::balances,
    ),
    (
        "GET",
        "/v2/promotions/benefits/coupons",
        "ListSubCustomerCoupons",
        bills::coupons,
    ),
    (
        "GET",
        "/v2/orders/customer-orders",
        "ListCustomerOrders",
        orders::list,
    ),
    (
        "GET",
        "/v2/orders/customer-orders/details/{order_id}",
        "ShowCustomerOrderDetails",
        orders::detail,
    ),
    (
        "PUT",
        "/v2/orders/customer-orders/cancel",
        "CancelCustomerOrder",
        orders::cancel,
    ),
    (
        "POST",
        "/v2/orders/customer-orders/pay",
        "PayOrders",
        orders::pay,
    ),
    (
        "GET",
        "/v2/orders/customer-orders/order-discounts",
        "ListOrderDiscounts",
        orders::discounts,
    ),
    (
        "POST",
        "/v3/orders/customer-orders/pay",
        "PayOrders",
        orders::pay,
    ),
    (
        "GET",
        "/v2/orders/customer-orders/refund-orders",
        "ShowRefundOrderDetails",
        orders::refund_orders,
    ),
    (
        "POST",
        "/v2/orders/suscriptions/resources/query",
        "ListPayPerUseCustomerResources",
        orders::resources,
    ),
    (
        "POST",
        "/v2/orders/subscriptions/resources/renew",
        "RenewalResources",
        orders::renew,
    ),
    (
        "POST",
        "/v2/orders/subscriptions/resources/unsubscribe",
        "CancelResourcesSubscription",
        orders::unsubscribe,
    ),
    (
        "POST",
        "/v2/orders/subscriptions/resources/autorenew/{resource_id}",
        "AutoRenewalResources",
        orders::autorenew_on,
    ),
    (
        "DELETE",
        "/v2/orders/subscriptions/resources/autorenew/{resource_id}",
        "CancelAutoRenewalResources",
        orders::autorenew_off,
    ),
    (
        "POST",
        "/v2/orders/subscriptions/resources/to-on-demand",
        "UpdatePeriodToOnDemand",
        orders::to_on_demand,
    ),
    (
        "POST",
        "/v3/payments/free-resources/query",
        "ListFreeResourceInfos",
        bills::free_resources,
    ),
    (
        "GET",
        "/v2/bills/customer-bills/free-resources-usage-records",
        "ListFreeResourcesUsageRecords",
        bills::free_usage_records,
    ),
    (
        "POST",
        "/v2/payments/free-resources/usages/details/query",
        "ListFreeResourceUsages",
        bills::free_usages,
    ),
    (
        "POST",
        "/v2/bills/customer-bills/res-records/query",
        "ListCustomerselfResourceRecordDetails",
        bills::res_records,
    ),
    (
        "GET",
        "/v1.0/{domain_id}/customer/account-mgr/bill/monthly-sum",
        "ShowCustomerMonthlySum",
        bills::monthly_sum,
    ),
    (
        "GET",
        "/v2/bills/customer-bills/monthly-sum",
        "ShowCustomerMonthlySum",
        bills::monthly_sum,
    ),
    (
        "GET",
        "/v2/bills/customer-bills/res-fee-records",
        "ListCustomerselfResourceRecords",
        bills::fee_records,
    ),
    (
        "POST",
        "/v4/costs/cost-analysed-bills/query",
        "ListCosts",
        bills::costs,
    ),
    (
        "POST",
        "/v2/enterprises/enterprise-projects/authority",
        "CreateEnterpriseProjectAuth",
        bills::enterprise_auth,
    ),
    (
        "GET",
        "/v1.0/{domain_id}/payments/intl-invoices",
        "ListIntlInvoices",
        bills::intl_invoices,
    ),
    (
        "GET",
        "/v2/bases/measurements",
        "ListMeasureUnits",
        bills::measure_units,
    ),
];

/// A routed call: the operation's name, its function, the path placeholders.
type Routed = (&'static str, OpFn, Vec<(String, String)>);

/// The operation serving `method` + `path`, with its placeholders.
pub fn route(method: &Method, path: &str) -> Option<Routed> {
    let segments = normalise(path)?;
    ROUTES.iter().find_map(|(m, pattern, name, op)| {
        if *m != method.as_str() {
            return None;
        }
        let pat = PathPattern::parse(pattern).ok()?;
        pat.matches(&segments).then(|| {
            let params = pat
                .params(&segments)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            (*name, *op, params)
        })
    })
}

/// The Huawei half of the sim.
#[derive(Debug)]
pub struct HuaweiSim {
    accounts: Vec<Account>,
    prices: HuaweiPrices,
    state: Mutex<State>,
}

/// What [`HuaweiSim::authenticate`] resolved.
#[derive(Debug)]
pub struct Accepted {
    /// The parsed call.
    pub call: HuaweiCall,
    /// Its operation name.
    pub operation: &'static str,
    op: OpFn,
    path_params: Vec<(String, String)>,
    account: usize,
}

impl Accepted {
    /// The account (domain) id the call acts on.
    pub fn domain_id<'a>(&self, sim: &'a HuaweiSim) -> &'a str {
        &sim.accounts[self.account].domain_id
    }
}

impl HuaweiSim {
    /// A sim over loaded accounts and prices.
    pub fn new(loaded: Loaded) -> Self {
        Self {
            accounts: loaded.accounts,
            prices: loaded.prices,
            state: Mutex::new(State::default()),
        }
    }

    /// Steps 1–3: parse, route, authenticate.
    pub fn authenticate(
        &self,
        parts: &http::request::Parts,
        body: Bytes,
        now: OffsetDateTime,
    ) -> Result<Accepted, Error> {
        let call = HuaweiCall::parse(parts, body)?;
        let Some((operation, op, path_params)) = route(&call.method, &call.path) else {
            return Err(Error::customer(
                StatusCode::NOT_FOUND,
                APIG_NO_API,
                "The API does not exist or has not been published in the environment",
                "routing",
            ));
        };
        call.check_date(now)?;
        let Some(account) = self
            .accounts
            .iter()
            .position(|a| a.access_key_id == call.access_key_id())
        else {
            return Err(auth_failed("the access key does not exist"));
        };
        use crate::secret::ExposeSecret as _;
        call.verify(self.accounts[account].secret.expose_secret())?;
        if let Some(domain) = call.header("x-domain-id")
            && domain != self.accounts[account].domain_id
        {
            return Err(auth_failed(
                "X-Domain-Id does not match the access key's account",
            ));
        }
        if call.header("x-security-token").is_some() {
            // Only permanent AK/SKs are issued in the sim.
            return Err(auth_failed("the security token is invalid"));
        }
        Ok(Accepted {
            call,
            operation,
            op,
            path_params,
            account,
        })
    }

    /// Step 5: runs the operation.
    pub fn run(&self, accepted: &Accepted, now: OffsetDateTime) -> Result<Reply, Error> {
        let body = if accepted.call.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&accepted.call.body)
                .map_err(|_| cbc_param("the request body is not valid JSON"))?
        };
        let mut state = crate::sim::lock(&self.state);
        let mut ctx = Ctx {
            call: &accepted.call,
            body,
            path_params: accepted.path_params.clone(),
            prices: &self.prices,
            account: &self.accounts[accepted.account],
            state: &mut state,
            now,
        };
        (accepted.op)(&mut ctx)
    }
}

/// Renders an operation's result.
pub fn render(result: Result<Reply, Error>, request_id: &str) -> Response<Body> {
    match result {
        Err(e) => error_response(&e, request_id),
        Ok(Reply::Json(v)) => json_response(StatusCode::OK, &v, request_id),
        Ok(Reply::NoContent) => {
            let mut r = Response::new(Body::new(Bytes::new()));
            *r.status_mut() = StatusCode::NO_CONTENT;
            if let Ok(v) = http::HeaderValue::from_str(request_id) {
                r.headers_mut().insert(envelope::REQUEST_ID_HEADER, v);
            }
            r
        }
    }
}

/// An error answer in Huawei's envelope.
pub fn error_response(err: &Error, request_id: &str) -> Response<Body> {
    envelope::error_response(err, request_id)
}

fn json_response(status: StatusCode, v: &Value, request_id: &str) -> Response<Body> {
    let mut r = Response::new(Body::new(Bytes::from(
        serde_json::to_vec(v).unwrap_or_default(),
    )));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        r.headers_mut().insert(envelope::REQUEST_ID_HEADER, v);
    }
    r
}

// ------------------------------------------------------------ helpers

/// `CBC.0100` 400: a parameter is missing or malformed.
pub fn cbc_param(why: impl std::fmt::Display) -> Error {
    Error::customer(
        StatusCode::BAD_REQUEST,
        "CBC.0100",
        format!("Parameter error: {why}."),
        "invalid_parameter",
    )
}

/// A CBC business error with its status.
pub fn cbc(status: StatusCode, code: &'static str, msg: impl Into<String>) -> Error {
    Error::customer(status, code, msg, "business")
}

/// A business error BSS answers inside HTTP 200.
pub fn error_in_200(code: &str, msg: &str) -> Reply {
    Reply::Json(json!({ "error_code": code, "error_msg": msg }))
}

/// An exact JSON number for `d` (the serde_json build keeps its digits).
pub fn num(d: Decimal) -> Value {
    d.normalize()
        .to_string()
        .parse::<serde_json::Number>()
        .map_or(Value::Null, Value::Number)
}

/// `d` as a 2-decimal string (the string-amount APIs).
pub fn money_str(d: Decimal) -> String {
    format!("{:.2}", d.round_dp(2))
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(fmt).unwrap_or_default()
}

/// The `YYYY-MM` bill cycle of `t` (BSS bills in UTC+8).
pub fn cycle_of(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC));
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

impl Ctx<'_> {
    /// The caller's account state.
    pub fn acct(&mut self) -> &mut state::Account {
        self.state
            .account(&self.account.domain_id, self.account.balance, self.prices)
    }

    /// A required body field.
    pub fn field(&self, name: &str) -> Result<&Value, Error> {
        self.body
            .get(name)
            .filter(|v| !v.is_null())
            .ok_or_else(|| cbc_param(format_args!("{name} is required")))
    }

    /// An optional body string.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }

    /// A required body string.
    pub fn required_str(&self, name: &str) -> Result<&str, Error> {
        self.field(name)?
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| cbc_param(format_args!("{name} must be a non-empty string")))
    }

    /// A required integer field.
    pub fn required_int(&self, name: &str) -> Result<i64, Error> {
        self.field(name)?
            .as_i64()
            .ok_or_else(|| cbc_param(format_args!("{name} must be an integer")))
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.call.query_param(name)
    }

    /// An integer query parameter within `lo..=hi` (`default` when absent).
    pub fn query_int(&self, name: &str, default: i64, lo: i64, hi: i64) -> Result<i64, Error> {
        match self.query(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| cbc_param(format_args!("{name} must be an integer in {lo}..{hi}"))),
        }
    }

    /// A path placeholder.
    pub fn path_param(&self, name: &str) -> &str {
        self.path_params
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// `resource_ids` (required, 1..=`max`).
    pub fn resource_ids(&self, max: usize) -> Result<Vec<String>, Error> {
        let ids = self
            .field("resource_ids")?
            .as_array()
            .ok_or_else(|| cbc_param("resource_ids must be an array"))?;
        if ids.is_empty() || ids.len() > max {
            return Err(cbc_param(format_args!(
                "resource_ids must hold 1 to {max} ids"
            )));
        }
        ids.iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| cbc_param("resource_ids must hold strings"))
            })
            .collect()
    }
}

/// Checks the `[huawei]` section has at least one account.
pub fn validate(cfg: &HuaweiSimConfig) -> anyhow::Result<()> {
    if cfg.accounts.is_empty() {
        bail!("[huawei] has no [[huawei.account]]");
    }
    Ok(())
}
