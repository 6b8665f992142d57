//! The simulated cloud's memory: per account (UID) orders, instances,
//! idempotency tokens, the reseller quota ledger and bill subscriptions.
//!
//! Everything lives behind one `std::sync::Mutex` held only inside a
//! synchronous action (never across an await), so actions are atomic with
//! respect to each other and the lock is never contended for long.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde_json::Value;
use time::OffsetDateTime;

/// The first order id; ids then increase by one, as strings.
const FIRST_ORDER_ID: u64 = 210_000_000_000_001;

/// Everything the simulator remembers.
#[derive(Debug)]
pub struct State {
    next_order: u64,
    next_instance: u64,
    accounts: HashMap<String, Account>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            next_order: FIRST_ORDER_ID,
            next_instance: 1,
            accounts: HashMap::new(),
        }
    }
}

/// One account's data.
#[derive(Debug, Default)]
pub struct Account {
    /// Orders, oldest first.
    pub orders: Vec<Order>,
    /// Instances, oldest first.
    pub instances: Vec<Instance>,
    /// `(Action, ClientToken)` → the `Data` / payload answered the first time.
    pub tokens: HashMap<(String, String), Value>,
    /// The reseller quota ledger, once created.
    pub ledger: Option<Ledger>,
    /// Bill subscriptions by `(SubscribeType, MultAccountRelSubscribe)`.
    pub subscriptions: BTreeMap<(String, String), BillSubscription>,
}

/// One module's configuration as ordered (for `GetOrderDetail`).
#[derive(Debug, Clone)]
pub struct ModuleConfig {
    /// `ModuleCode`.
    pub code: String,
    /// `ModuleName`.
    pub name: String,
    /// `(property, value)` pairs.
    pub props: Vec<(String, String)>,
}

/// An order.
#[derive(Debug, Clone)]
pub struct Order {
    /// `OrderId`.
    pub id: String,
    /// `New`, `Renew`, `Upgrade`, `Refund`.
    pub order_type: &'static str,
    /// `Paid`, `Unpaid`, `Cancelled`.
    pub payment_status: &'static str,
    /// Unix seconds.
    pub create_time: i64,
    /// Unix seconds, once paid.
    pub payment_time: Option<i64>,
    /// `ProductCode`.
    pub product_code: String,
    /// `ProductType`.
    pub product_type: String,
    /// `Subscription` / `PayAsYouGo`.
    pub subscription_type: &'static str,
    /// Region id.
    pub region: String,
    /// Number of instances.
    pub quantity: u32,
    /// Instances the order is for.
    pub instance_ids: Vec<String>,
    /// Module configurations.
    pub modules: Vec<ModuleConfig>,
    /// List price (`PretaxGrossAmount`).
    pub gross: Decimal,
    /// Price charged (`PretaxAmount`, `AfterTaxAmount`).
    pub pretax: Decimal,
    /// Service period, unix seconds.
    pub usage_start: i64,
    /// Service end, unix seconds (pay-as-you-go: none).
    pub usage_end: Option<i64>,
}

/// ECS-only instance details (for `DescribeInstances`).
#[derive(Debug, Clone)]
pub struct EcsDetails {
    /// `InstanceType`.
    pub instance_type: String,
    /// `ImageId`.
    pub image_id: String,
    /// `ZoneId`.
    pub zone_id: String,
    /// `InstanceName`.
    pub instance_name: String,
    /// `PrePaid` / `PostPaid`.
    pub charge_type: &'static str,
    /// `PayByBandwidth` / `PayByTraffic`.
    pub internet_charge_type: String,
    /// Mbit/s.
    pub bandwidth_out: u32,
}

/// An instance.
#[derive(Debug, Clone)]
pub struct Instance {
    /// `InstanceID`.
    pub id: String,
    /// `ProductCode`.
    pub product_code: String,
    /// `ProductType`.
    pub product_type: String,
    /// `Subscription` / `PayAsYouGo`.
    pub subscription_type: &'static str,
    /// Region id.
    pub region: String,
    /// `Normal` (BSS) / `Running` (ECS); `Pending` while its order is unpaid.
    pub status: &'static str,
    /// Unix seconds.
    pub create_time: i64,
    /// Unix seconds (pay-as-you-go: none).
    pub end_time: Option<i64>,
    /// `AutoRenewal`, `ManualRenewal`, `NotRenewal`.
    pub renew_status: String,
    /// Renewal duration in months when auto-renewing.
    pub renew_period: u32,
    /// The modules it was bought with (renewals are priced from these).
    pub modules: Vec<ModuleConfig>,
    /// ECS details.
    pub ecs: Option<EcsDetails>,
}

/// The reseller quota ledger of one end customer (reference §8).
#[derive(Debug, Clone)]
pub struct Ledger {
    /// `CNY`, `USD`, `JPY`.
    pub currency: String,
    /// Credit quota (`CREDIT_QUOTA_BOOK_ITEM`).
    pub quota: Decimal,
    /// Consumption (`CREDIT_CONSUME_BOOK_ITEM`).
    pub consumption: Decimal,
    /// `Thaw`, `Freeze`, `Trusteeship`, `TrusteeshipCancel`.
    pub status: String,
    /// The last `AlarmThresholds` set, parsed.
    pub alarm_thresholds: Option<Value>,
    /// `OutBizId` → consumption after that change (idempotency).
    pub applied: HashMap<String, Decimal>,
}

impl Ledger {
    /// A fresh ledger.
    pub fn new(currency: &str, quota: Decimal) -> Self {
        Self {
            currency: currency.to_owned(),
            quota,
            consumption: Decimal::ZERO,
            status: "Thaw".to_owned(),
            alarm_thresholds: None,
            applied: HashMap::new(),
        }
    }

    /// Available quota: quota − consumption.
    pub fn available(&self) -> Decimal {
        self.quota - self.consumption
    }
}

/// A `SubscribeBillToOSS` subscription.
#[derive(Debug, Clone)]
pub struct BillSubscription {
    /// `SubscribeBucket`.
    pub bucket: String,
    /// `BucketPath` (may be empty).
    pub bucket_path: String,
    /// `BucketOwnerId`.
    pub bucket_owner_id: Option<String>,
    /// `BeginBillingCycle`.
    pub begin_billing_cycle: Option<String>,
    /// `RowLimitPerFile`.
    pub row_limit_per_file: Option<i32>,
    /// When subscribed, unix seconds.
    pub subscribed_at: i64,
}

impl State {
    /// The account for `uid`, created empty on first use.
    pub fn account(&mut self, uid: &str) -> &mut Account {
        self.accounts.entry(uid.to_owned()).or_default()
    }

    /// The account for `uid`, if it ever did anything.
    pub fn account_ref(&self, uid: &str) -> Option<&Account> {
        self.accounts.get(uid)
    }

    /// The next order id.
    pub fn next_order_id(&mut self) -> String {
        let id = self.next_order;
        self.next_order += 1;
        id.to_string()
    }

    /// The next instance id with `prefix` (e.g. `i-sim000000000001`).
    pub fn next_instance_id(&mut self, prefix: &str) -> String {
        let n = self.next_instance;
        self.next_instance += 1;
        format!("{prefix}sim{n:012}")
    }
}

/// Formats unix seconds as Alibaba's `yyyy-MM-ddTHH:mm:ssZ`.
pub fn fmt_time(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .map(crate::aliyun::format_timestamp)
        .unwrap_or_default()
}

/// `secs` plus `months` calendar months (the day clamped to the month's end).
pub fn add_months(secs: i64, months: u32) -> i64 {
    let Ok(t) = OffsetDateTime::from_unix_timestamp(secs) else {
        return secs;
    };
    let total = i64::from(t.year()) * 12 + i64::from(u8::from(t.month())) - 1 + i64::from(months);
    let (Ok(year), Ok(month0)) = (
        i32::try_from(total.div_euclid(12)),
        u8::try_from(total.rem_euclid(12)),
    ) else {
        return secs;
    };
    let Ok(month) = time::Month::try_from(month0 + 1) else {
        return secs;
    };
    let day = t.day().min(month.length(year));
    time::Date::from_calendar_date(year, month, day)
        .map(|d| t.replace_date(d).unix_timestamp())
        .unwrap_or(secs)
}

/// Months from `now` to `end`, rounded up, at least 1 (remaining term of a
/// subscription, for pricing an upgrade).
pub fn months_between(now: i64, end: i64) -> u32 {
    let mut months = 1;
    while months < 1200 && add_months(now, months) < end {
        months += 1;
    }
    months
}
