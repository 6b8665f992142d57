use super::*;
use crate::ledger::types::HoldState;

fn hold(created: i64, official: Option<i64>) -> Hold {
    Hold {
        id: "h".into(),
        customer: "acme".into(),
        amount: Micros(1),
        currency: "CNY".into(),
        client_token: None,
        fingerprint: String::new(),
        request_id: String::new(),
        action: "RenewalResources".into(),
        product: "huawei-bss".into(),
        official: official.map(Micros),
        provider: Provider::Huawei,
        provider_ref: None,
        state: HoldState::Unknown,
        order_id: None,
        answer: None,
        reason: None,
        created_at: created,
        forward_deadline: created + 30_000,
        expires_at: created + 900_000,
        unknown_at: Some(created),
        settled_at: None,
    }
}

fn order(id: &str, status: i64, order_type: i64, created: i64, amount: i64) -> HuaweiOrder {
    HuaweiOrder {
        id: id.into(),
        status,
        order_type,
        created_ms: created,
        amount: Some(Micros(amount)),
    }
}

#[test]
fn a_renewal_matches_a_completed_renewal_order_of_its_window_and_price() {
    let t = 1_000_000_000;
    let orders = vec![
        order("before", COMPLETED, RENEWAL, t - 2 * SKEW_MS, 5),
        order("unpaid", PENDING_PAYMENT, RENEWAL, t, 5),
        order("new", COMPLETED, 1, t, 5),
        order("dearer", COMPLETED, RENEWAL, t, 7),
        order("after", COMPLETED, RENEWAL, t + 30_000 + 2 * SKEW_MS, 5),
        order("it", COMPLETED, RENEWAL, t + 10, 5),
    ];
    let h = hold(t, Some(5));
    let mut taken = HashSet::new();
    assert_eq!(
        renewal_match(&h, &orders, &taken).map(|o| o.id.as_str()),
        Some("it")
    );
    assert!(!renewal_in_progress(&h, &orders, &taken));
    taken.insert("it".to_owned());
    assert_eq!(renewal_match(&h, &orders, &taken), None);
    // One still processing at BSS: wait for it, do not release.
    let processing = [order("slow", 3, RENEWAL, t + 10, 5)];
    assert_eq!(renewal_match(&h, &processing, &taken), None);
    assert!(renewal_in_progress(&h, &processing, &taken));
}

#[test]
fn the_reference_round_trips_and_omits_what_it_lacks() {
    let pay = HuaweiRef {
        domain_id: "d".into(),
        order_id: Some("CS1".into()),
        resource_ids: Vec::new(),
    };
    assert_eq!(pay.to_json(), r#"{"domain_id":"d","order_id":"CS1"}"#);
    assert_eq!(HuaweiRef::parse(&pay.to_json()), Some(pay));
    let renew = HuaweiRef {
        domain_id: "d".into(),
        order_id: None,
        resource_ids: vec!["r1".into(), "r2".into()],
    };
    assert_eq!(HuaweiRef::parse(&renew.to_json()), Some(renew));
    assert_eq!(HuaweiRef::parse("not json"), None);
}

#[test]
fn orders_read_bss_fields_and_amounts_in_yuan() {
    let o = order_of(&serde_json::json!({
        "order_id": "CS2405011002XYZ12",
        "status": 5,
        "order_type": 2,
        "create_time": "2024-05-01T10:02:00Z",
        "amount_after_discount": 941.76,
        "measure_id": 1,
    }));
    assert_eq!(
        o,
        HuaweiOrder {
            id: "CS2405011002XYZ12".into(),
            status: 5,
            order_type: 2,
            created_ms: 1_714_557_720_000,
            amount: Some(Micros(941_760_000)),
        }
    );
}
