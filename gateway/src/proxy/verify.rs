//! After a purchase: does what the provider says it charged match what the
//! gateway priced (and so held)?
//!
//! The request path prices one parsed order and forwards exactly it
//! (`aliyun::strict`, `aliyun::purchase`), so the two should always agree.
//! This is the independent check that they did: the provider's own figure
//! for the order is compared with the official trade price the partner
//! price was computed from.
//!
//! * ECS `RunInstances` (PrePaid) answers its `TradePrice`: compared at
//!   once, before the answer is re-priced for the customer.
//! * BSS `CreateInstance` / `RenewInstance` answer only an order id: the
//!   order's `PretaxAmount` is asked (`GetOrderDetail`, partner key, as the
//!   customer) in a task of its own, after the customer has the answer.
//!
//! A mismatch is an alarm: an error log naming the request, the hold's
//! order and both amounts, and `tollgate_purchase_checks_total{outcome=
//! "mismatch"}` (alert on any increase). Upgrades are not compared: the
//! provider pro-rates them to the instance's remaining term, which a price
//! quote cannot know.

use rust_decimal::Decimal;
use serde_json::Value;

use crate::metrics::{Metrics, OutcomeLabels};

/// What the gateway priced a purchase from: the provider's official trade
/// price (after the provider's discounts) of exactly the forwarded order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priced {
    /// The official trade total.
    pub trade: Decimal,
    /// Its currency.
    pub currency: String,
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The provider charged what was priced.
    Match,
    /// It did not.
    Mismatch {
        /// What was priced.
        priced: Decimal,
        /// What the provider reports.
        charged: Decimal,
    },
    /// The provider's figure could not be read or asked.
    Unavailable(String),
}

impl Check {
    fn label(&self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::Mismatch { .. } => "mismatch",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// Compares the provider's figure (a JSON number or numeric string) with
/// what was priced. Amounts compare as exact decimals (`1.50` = `1.5`).
pub fn compare(priced: &Priced, charged: Option<&Value>) -> Check {
    let Some(charged) = charged.and_then(crate::pricing::order::decimal) else {
        return Check::Unavailable("the provider's amount is missing or not a number".into());
    };
    if charged == priced.trade {
        Check::Match
    } else {
        Check::Mismatch {
            priced: priced.trade,
            charged,
        }
    }
}

/// The `RunInstances` answer's own `TradePrice`.
pub fn run_instances_answer(priced: &Priced, body: &[u8]) -> Check {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => compare(priced, v.get("TradePrice")),
        Err(_) => Check::Unavailable("the answer is not JSON".into()),
    }
}

/// A BSS `GetOrderDetail` answer's `PretaxAmount` (what was charged).
pub fn order_detail(priced: &Priced, detail: &Value) -> Check {
    compare(
        priced,
        detail.pointer("/Data/OrderList/Order/0/PretaxAmount"),
    )
}

/// Counts and, on a mismatch, raises the alarm.
pub fn record(metrics: &Metrics, check: &Check, request_id: &str, action: &str, order: &str) {
    metrics
        .purchase_checks
        .get_or_create(&OutcomeLabels {
            outcome: check.label(),
        })
        .inc();
    match check {
        Check::Match => {}
        Check::Mismatch { priced, charged } => tracing::error!(
            request_id,
            action,
            order,
            %priced,
            %charged,
            "ALARM: the provider charged another amount than the gateway priced and held"
        ),
        Check::Unavailable(why) => tracing::warn!(
            request_id,
            action,
            order,
            why = why.as_str(),
            "the purchase could not be compared with what the provider charged"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn priced(trade: &str) -> Priced {
        Priced {
            trade: trade.parse().expect("decimal"),
            currency: "CNY".into(),
        }
    }

    #[test]
    fn amounts_compare_exactly() {
        let p = priced("91.80");
        assert_eq!(compare(&p, Some(&serde_json::json!(91.8))), Check::Match);
        assert_eq!(compare(&p, Some(&serde_json::json!("91.80"))), Check::Match);
        assert_eq!(
            compare(&p, Some(&serde_json::json!("201.60"))),
            Check::Mismatch {
                priced: "91.80".parse().expect("d"),
                charged: "201.60".parse().expect("d"),
            }
        );
        assert!(matches!(compare(&p, None), Check::Unavailable(_)));
        assert!(matches!(
            compare(&p, Some(&serde_json::json!("n/a"))),
            Check::Unavailable(_)
        ));
    }

    #[test]
    fn the_providers_figures_are_read_where_they_are() {
        let p = priced("541.04");
        assert_eq!(
            run_instances_answer(
                &p,
                br#"{"RequestId":"r","OrderId":"1","TradePrice":541.04}"#
            ),
            Check::Match
        );
        let detail = serde_json::json!({"Data":{"OrderList":{"Order":[{"OrderId":"1","PretaxAmount":"541.04"}]}}});
        assert_eq!(order_detail(&p, &detail), Check::Match);
        let other = serde_json::json!({"Data":{"OrderList":{"Order":[{"OrderId":"1","PretaxAmount":"1082.08"}]}}});
        assert!(matches!(order_detail(&p, &other), Check::Mismatch { .. }));
    }
}
