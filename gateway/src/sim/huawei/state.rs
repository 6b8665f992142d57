//! What the simulated Huawei BSS remembers, per customer account (domain):
//! balances, yearly/monthly orders and resources. Every account starts with
//! the same demo history (one paid ECS year, one unpaid EVS month), so tests
//! and the demo see the same answers on every run.

use std::collections::HashMap;

use rust_decimal::Decimal;
use time::{Duration, OffsetDateTime};

use super::prices::{Amounts, Basis, HuaweiPrices};

/// Order status codes (huawei-bss.md §6.1).
pub mod status {
    /// Cancelled.
    pub const CANCELLED: i32 = 4;
    /// Completed.
    pub const COMPLETED: i32 = 5;
    /// Pending payment.
    pub const PENDING_PAYMENT: i32 = 6;
}

/// Order type codes.
pub mod order_type {
    /// New purchase.
    pub const NEW: i32 = 1;
    /// Renewal.
    pub const RENEW: i32 = 2;
    /// Unsubscribe.
    pub const UNSUBSCRIBE: i32 = 4;
}

/// Resource status codes (§7.1).
pub mod resource_status {
    /// In use.
    pub const IN_USE: i32 = 2;
    /// Closed (unsubscribed).
    pub const CLOSED: i32 = 3;
}

/// One yearly/monthly order.
#[derive(Debug, Clone)]
pub struct Order {
    /// `CS...`.
    pub id: String,
    /// §6.1 `order_type`.
    pub order_type: i32,
    /// §6.1 `status`.
    pub status: i32,
    /// `hws.service.type.ec2`.
    pub service_type_code: String,
    /// List, discount and after-discount amounts (negative for refunds).
    pub amounts: Amounts,
    /// `create_time`.
    pub create_time: OffsetDateTime,
    /// `payment_time`.
    pub payment_time: Option<OffsetDateTime>,
    /// The product ids of its line items.
    pub product_id: String,
    /// `product_spec_desc` of its line.
    pub spec_desc: String,
    /// Period of its line: (`period_type` 2 month / 3 year, `period_num`).
    pub period: Option<(i32, u32)>,
    /// Resources the order creates or renews (renewed on payment).
    pub resource_ids: Vec<String>,
}

/// One yearly/monthly resource.
#[derive(Debug, Clone)]
pub struct Resource {
    /// Resource id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `cn-north-4`.
    pub region: String,
    /// Service type.
    pub service_type_code: String,
    /// Resource type.
    pub resource_type_code: String,
    /// Spec.
    pub spec: String,
    /// Linear size (GB), when the SKU is linear.
    pub size: u32,
    /// BSS product id.
    pub product_id: String,
    /// §7.1 status.
    pub status: i32,
    /// `effective_time`.
    pub effective_time: OffsetDateTime,
    /// `expire_time`.
    pub expire_time: OffsetDateTime,
    /// Auto-renew enabled (`expire_policy` 3) and how many times (0 = unlimited).
    pub auto_renew: Option<u32>,
    /// The order that created it.
    pub order_id: String,
}

/// One customer account.
#[derive(Debug, Clone)]
pub struct Account {
    /// Cash balance (account type 1).
    pub cash: Decimal,
    /// Credit line (account type 2).
    pub credit: Decimal,
    /// Orders, oldest first.
    pub orders: Vec<Order>,
    /// Resources.
    pub resources: Vec<Resource>,
}

/// All accounts.
#[derive(Debug, Default)]
pub struct State {
    accounts: HashMap<String, Account>,
    seq: u64,
}

/// The fixed time the demo history starts at (2026-01-05 08:30:00 UTC).
fn epoch() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_767_601_800).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Adds `months` calendar months (day clamped to 28 to stay simple and valid).
pub fn add_months(t: OffsetDateTime, months: u32) -> OffsetDateTime {
    let total = i64::from(t.year()) * 12 + i64::from(u8::from(t.month()) - 1) + i64::from(months);
    let year = i32::try_from(total.div_euclid(12)).unwrap_or(t.year());
    let month = u8::try_from(total.rem_euclid(12) + 1).unwrap_or(1);
    let month = time::Month::try_from(month).unwrap_or(time::Month::January);
    let day = t.day().min(28);
    time::Date::from_calendar_date(year, month, day)
        .map(|d| d.with_time(t.time()).assume_utc())
        .unwrap_or(t)
}

impl State {
    /// The account of `domain_id`, created with the demo history on first use.
    pub fn account(
        &mut self,
        domain_id: &str,
        opening: Decimal,
        prices: &HuaweiPrices,
    ) -> &mut Account {
        if !self.accounts.contains_key(domain_id) {
            let seeded = self.seed(domain_id, opening, prices);
            self.accounts.insert(domain_id.to_owned(), seeded);
        }
        self.accounts
            .get_mut(domain_id)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// A fresh order id, `CS` + date + sequence (unique across accounts).
    pub fn next_order_id(&mut self, now: OffsetDateTime) -> String {
        self.seq += 1;
        format!(
            "CS{:02}{:02}{:02}{:02}{:02}{:05}",
            now.year() % 100,
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            self.seq
        )
    }

    fn seed(&mut self, domain_id: &str, opening: Decimal, prices: &HuaweiPrices) -> Account {
        let t0 = epoch();
        let short: String = domain_id.chars().take(8).collect();
        let ecs_id = format!("{short}-0d0c-4d1e-9c3b-00000000ec51");
        let evs_id = format!("{short}-0d0c-4d1e-9c3b-00000000e751");
        let mut orders = Vec::new();
        let mut resources = Vec::new();
        let ecs = prices.sku(
            "hws.service.type.ec2",
            "hws.resource.type.vm",
            "c6.large.2.linux",
        );
        if let Some(sku) = ecs {
            let id = self.next_order_id(t0);
            let amounts = sku.price(Basis::Year, Decimal::ONE, 1, 1, 2);
            orders.push(Order {
                id: id.clone(),
                order_type: order_type::NEW,
                status: status::COMPLETED,
                service_type_code: sku.cloud_service_type.clone(),
                amounts,
                create_time: t0,
                payment_time: Some(t0 + Duration::minutes(1)),
                product_id: sku.product_id.clone(),
                spec_desc: sku.spec_desc.clone(),
                period: Some((3, 1)),
                resource_ids: vec![ecs_id.clone()],
            });
            resources.push(Resource {
                id: ecs_id,
                name: "ecs-demo".to_owned(),
                region: "cn-north-4".to_owned(),
                service_type_code: sku.cloud_service_type.clone(),
                resource_type_code: sku.resource_type.clone(),
                spec: sku.resource_spec.clone(),
                size: 1,
                product_id: sku.product_id.clone(),
                status: resource_status::IN_USE,
                effective_time: t0 + Duration::minutes(1),
                expire_time: add_months(t0, 12),
                auto_renew: None,
                order_id: id,
            });
        }
        let evs = prices.sku("hws.service.type.ebs", "hws.resource.type.volume", "SAS");
        if let Some(sku) = evs {
            let id = self.next_order_id(t0 + Duration::days(1));
            orders.push(Order {
                id: id.clone(),
                order_type: order_type::NEW,
                status: status::PENDING_PAYMENT,
                service_type_code: sku.cloud_service_type.clone(),
                amounts: sku.price(Basis::Month, Decimal::ONE, 1, 100, 2),
                create_time: t0 + Duration::days(1),
                payment_time: None,
                product_id: sku.product_id.clone(),
                spec_desc: sku.spec_desc.clone(),
                period: Some((2, 1)),
                resource_ids: vec![evs_id],
            });
        }
        Account {
            cash: opening,
            credit: Decimal::ZERO,
            orders,
            resources,
        }
    }
}

impl Account {
    /// The order `id` (order ids compare case-insensitively, as BSS does).
    pub fn order_mut(&mut self, id: &str) -> Option<&mut Order> {
        self.orders
            .iter_mut()
            .find(|o| o.id.eq_ignore_ascii_case(id))
    }

    /// The resource `id`.
    pub fn resource_mut(&mut self, id: &str) -> Option<&mut Resource> {
        self.resources.iter_mut().find(|r| r.id == id)
    }
}
