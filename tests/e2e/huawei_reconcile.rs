//! Huawei holds whose answer was lost are settled by the reconciler asking
//! Huawei BSS (with the credential the partner holds for the customer):
//! the sim applies a payment or an auto-paid renewal and then loses its
//! answer (`drop_answer_next` / `hang_answer_next`), the gateway's
//! immediate status query fails too (`fail_next` on
//! `ShowCustomerOrderDetails`), the hold stays unknown while BSS cannot be
//! asked, and once it can, a payment that happened is committed with its
//! order and amount, and one that did not is released.

use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::huawei::{Hw, dec};
use crate::support::*;

/// Reconcile 0.5 s after an unknown outcome; Huawei calls time out after
/// 1.5 s (so a hung payment is given up quickly).
fn stack() -> Stack {
    Stack::start_tuned("reconcile_grace_ms = 500", "timeout_ms = 1500")
}

async fn holds(stack: &Stack) -> Vec<Value> {
    let (_, v) = admin(
        stack,
        Method::GET,
        "/v1/budgets/acme/holds?state=all",
        Value::Null,
    )
    .await;
    v["holds"].as_array().cloned().unwrap_or_default()
}

/// The newest hold, once `pred` holds for it (within 15 s).
async fn hold_when(stack: &Stack, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let hs = holds(stack).await;
        if let Some(h) = hs.first()
            && pred(h)
        {
            return h.clone();
        }
        assert!(Instant::now() < deadline, "{what}: {hs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn budget(stack: &Stack) -> (Decimal, Decimal) {
    let (_, b) = admin(stack, Method::GET, "/v1/budgets/acme", Value::Null).await;
    (dec(&b["consumed"]), dec(&b["held"]))
}

async fn pending_order(acme: &Hw) -> String {
    let r = acme
        .call(Method::GET, "/v2/orders/customer-orders?status=6", None)
        .await;
    r.body["order_infos"][0]["order_id"]
        .as_str()
        .expect("a pending order")
        .to_owned()
}

async fn order_status(acme: &Hw, id: &str) -> i64 {
    let r = acme
        .call(
            Method::GET,
            &format!("/v2/orders/customer-orders/details/{id}"),
            None,
        )
        .await;
    r.body["order_info"]["status"].as_i64().expect("status")
}

/// Pays `order` while the sim loses the answer (`fault`: `hang_next` — not
/// paid — or `hang_answer_next` — paid), and makes the gateway's immediate
/// status query fail: the hold is left unknown for the reconciler.
async fn pay_losing_answer_and_status(stack: &Stack, order: &str, fault: &str) {
    stack
        .set_faults(json!({ fault: 1, "only_action": "PayOrders" }))
        .await;
    let payer = Hw::acme(stack);
    let pay = json!({"order_id": order, "use_coupon": "NO", "use_discount": "NO"});
    let paying = tokio::spawn(async move {
        payer
            .call(Method::POST, "/v3/orders/customer-orders/pay", Some(pay))
            .await
    });
    // Once the sim took the payment's fault (the gateway now waits for its
    // 1.5 s timeout), every status query fails.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let f: Value =
            serde_json::from_str(&http_get(stack.sim.addr, "/_sim/faults").await).expect("json");
        if f[fault] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the payment never reached BSS");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stack
        .set_faults(json!({"fail_next": 1000, "only_action": "ShowCustomerOrderDetails"}))
        .await;
    let r = paying.await.expect("pay");
    assert_eq!(
        (r.status.is_server_error(), r.body["error_code"].as_str()),
        (true, Some("CBC.0999")),
        "{}",
        r.body
    );
    let h = hold_when(stack, "the hold is unknown", |h| h["state"] == "unknown").await;
    assert_eq!(
        (h["provider"].as_str(), h["amount"].as_str()),
        (Some("huawei"), Some("35.00")),
        "{h}"
    );
    // BSS cannot be asked: the reconciler defers, well past the grace period.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let h = &holds(stack).await[0];
    assert_eq!(h["state"], "unknown", "{h}");
    assert_eq!(
        budget(stack).await,
        (Decimal::ZERO, "35".parse().expect("d"))
    );
}

#[tokio::test]
async fn a_payment_whose_answer_and_status_were_lost_is_committed_by_the_reconciler() {
    let stack = stack();
    let acme = Hw::acme(&stack);
    let order = pending_order(&acme).await;
    pay_losing_answer_and_status(&stack, &order, "hang_answer_next").await;
    // BSS did take the money.
    stack.set_faults(json!({})).await;
    assert_eq!(order_status(&acme, &order).await, 5);
    let h = hold_when(&stack, "the reconciler commits the hold", |h| {
        h["state"] != "unknown"
    })
    .await;
    assert_eq!(
        (h["state"].as_str(), h["order_id"].as_str()),
        (Some("committed"), Some(order.as_str())),
        "{h}"
    );
    assert_eq!(
        budget(&stack).await,
        ("35".parse().expect("d"), Decimal::ZERO)
    );
}

#[tokio::test]
async fn a_payment_that_never_happened_is_released_by_the_reconciler() {
    let stack = stack();
    let acme = Hw::acme(&stack);
    let order = pending_order(&acme).await;
    pay_losing_answer_and_status(&stack, &order, "hang_next").await;
    stack.set_faults(json!({})).await;
    assert_eq!(
        order_status(&acme, &order).await,
        6,
        "still pending payment"
    );
    let h = hold_when(&stack, "the reconciler releases the hold", |h| {
        h["state"] != "unknown"
    })
    .await;
    assert_eq!(
        (h["state"].as_str(), h["reason"].as_str()),
        (Some("released"), Some("the order was not paid")),
        "{h}"
    );
    assert_eq!(budget(&stack).await, (Decimal::ZERO, Decimal::ZERO));
}

#[tokio::test]
async fn a_lost_auto_paid_renewal_is_matched_to_its_renewal_order() {
    let stack = stack();
    let acme = Hw::acme(&stack);
    let r = acme
        .call(
            Method::POST,
            "/v2/orders/suscriptions/resources/query",
            Some(json!({})),
        )
        .await;
    let ecs = r.body["data"][0]["resource_id"]
        .as_str()
        .expect("ecs")
        .to_owned();
    let renew = json!({"resource_ids": [ecs], "period_type": 2, "period_num": 1, "is_auto_pay": 1});
    // BSS renews (and charges), then the connection breaks.
    stack
        .set_faults(json!({"drop_answer_next": 1, "only_action": "RenewalResources"}))
        .await;
    let r = acme
        .call(
            Method::POST,
            "/v2/orders/subscriptions/resources/renew",
            Some(renew.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    let r = acme
        .call(
            Method::GET,
            "/v2/orders/customer-orders?order_type=2&status=5",
            None,
        )
        .await;
    let renewal = r.body["order_infos"][0]["order_id"]
        .as_str()
        .expect("the renewal order BSS made")
        .to_owned();
    let h = hold_when(&stack, "the reconciler commits the renewal", |h| {
        h["state"] != "unknown" && h["state"] != "held"
    })
    .await;
    assert_eq!(
        (
            h["state"].as_str(),
            h["order_id"].as_str(),
            h["amount"].as_str()
        ),
        (Some("committed"), Some(renewal.as_str()), Some("78.48")),
        "{h}"
    );
    assert_eq!(
        budget(&stack).await,
        ("78.48".parse().expect("d"), Decimal::ZERO)
    );

    // The same renewal again, lost before BSS ran it: no new order, and the
    // first renewal's order (in the window, same price) is already taken,
    // so the hold is released.
    stack
        .set_faults(json!({"drop_next": 1, "only_action": "RenewalResources"}))
        .await;
    let later = Hw {
        date: Some(time::OffsetDateTime::now_utc() + time::Duration::seconds(1)),
        ..Hw::acme(&stack)
    };
    let r = later
        .call(
            Method::POST,
            "/v2/orders/subscriptions/resources/renew",
            Some(renew),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    let h = hold_when(&stack, "the reconciler releases the second renewal", |h| {
        h["state"] != "unknown" && h["state"] != "held"
    })
    .await;
    assert_eq!(
        (h["state"].as_str(), h["reason"].as_str()),
        (Some("released"), Some("no renewal order at the provider")),
        "{h}"
    );
    assert_eq!(
        budget(&stack).await,
        ("78.48".parse().expect("d"), Decimal::ZERO)
    );
}
