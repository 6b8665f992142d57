use super::*;

fn customer() -> CustomerInfo {
    CustomerInfo {
        id: "acme".into(),
        uid: "0a7c3b2f3d80d4a20f7ac004cbde0001".into(),
        group: "enterprise".into(),
        tags: vec![],
    }
}

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

/// A quote as a module would give it: 10 % on the list price.
fn markup(order: &Order) -> Quote {
    let lines = order
        .lines
        .iter()
        .map(|l| {
            let list = (l.official * d("1.1")).round_dp(2);
            QuoteLine {
                id: l.id.clone(),
                official: l.official,
                list,
                discount: Decimal::ZERO,
                price: list,
                rule: "global-markup".into(),
            }
        })
        .collect();
    Quote::new(
        "test@1 sha256:0".into(),
        order.currency.clone(),
        lines,
        vec![],
    )
}

#[test]
fn on_demand_amounts_are_normalised_by_measure_id() {
    // Amounts in fen (measure_id 3): 78 fen = 0.78 yuan.
    let answer = json!({"amount": 70.2, "discount_amount": 7.8, "official_website_amount": 78, "measure_id": 3,
        "currency": "CNY", "product_rating_results": [
            {"id": "1", "product_id": "p", "amount": 70.2, "discount_amount": 7.8, "official_website_amount": 78, "measure_id": 3}]});
    let request = json!({"product_infos": [{"id": "1", "cloud_service_type": "hws.service.type.ec2",
        "resource_type": "hws.resource.type.vm", "resource_spec": "c6.large.2.linux", "region": "cn-north-4",
        "usage_value": 1, "subscription_num": 1}]});
    let order =
        order_from_rating(PricedAnswer::OnDemand, &request, &answer, customer()).expect("order");
    assert_eq!(order.lines[0].official, d("0.78"));
    assert_eq!(order.lines[0].official_trade, d("0.702"));
    assert_eq!(order.lines[0].product, "ec2");
    assert_eq!(order.lines[0].charge_type, ChargeType::PayAsYouGo);
    let quote = markup(&order);
    let mut answer = answer;
    rewrite(PricedAnswer::OnDemand, &mut answer, &quote).expect("rewrite");
    // 0.86 yuan written back in fen.
    assert_eq!(
        answer["product_rating_results"][0]["amount"].to_string(),
        "86"
    );
    assert_eq!(answer["amount"].to_string(), "86");
    assert_eq!(answer["measure_id"], 3);
    assert_eq!(answer["discount_amount"].to_string(), "0");
}

#[test]
fn period_rating_uses_the_best_offer_as_the_partner_cost_and_lists_one_offer() {
    let answer = json!({"currency": "CNY",
        "official_website_rating_result": {"official_website_amount": 1046.4, "measure_id": 1,
            "product_rating_results": [{"id": "1", "product_id": "p", "official_website_amount": 1046.4, "measure_id": 1}]},
        "optional_discount_rating_results": [
            {"discount_id": "A", "best_offer": 0, "amount": 1000, "official_website_amount": 1046.4, "discount_amount": 46.4, "measure_id": 1,
             "product_rating_results": [{"id": "1", "amount": 1000, "measure_id": 1}]},
            {"discount_id": "B", "best_offer": 1, "amount": 941.76, "official_website_amount": 1046.4, "discount_amount": 104.64, "measure_id": 1,
             "product_rating_results": [{"id": "1", "amount": 941.76, "measure_id": 1}]}]});
    let request = json!({"product_infos": [{"id": "1", "cloud_service_type": "hws.service.type.ec2",
        "resource_type": "hws.resource.type.vm", "period_type": 3, "period_num": 1, "subscription_num": 1}]});
    let order =
        order_from_rating(PricedAnswer::Period, &request, &answer, customer()).expect("order");
    assert_eq!(order.lines[0].official_trade, d("941.76"));
    assert_eq!(order.lines[0].period_unit, PeriodUnit::Year);
    let mut quote = markup(&order);
    // A partner discount this time: list 1151.04, 5 % off.
    quote.lines[0].discount = d("57.55");
    quote.lines[0].price = quote.lines[0].list - d("57.55");
    let quote = Quote::new(quote.module, quote.currency, quote.lines, vec![]);
    let mut answer = answer;
    rewrite(PricedAnswer::Period, &mut answer, &quote).expect("rewrite");
    let offers = answer["optional_discount_rating_results"]
        .as_array()
        .expect("offers");
    assert_eq!(offers.len(), 1);
    assert_eq!(offers[0]["amount"].to_string(), "1093.49");
    assert_eq!(offers[0]["best_offer"], 1);
    assert_eq!(
        answer["official_website_rating_result"]["official_website_amount"].to_string(),
        "1151.04"
    );
}

#[test]
fn renewal_amounts_stay_strings_and_split_the_list_price_exactly() {
    let answer = json!({"currency": "CNY",
        "renew_inquiry_results": [{"resource_id": "a", "amount": "78.48"}, {"resource_id": "b", "amount": "35.00"}],
        "official_website_rating_result": {"official_website_amount": "122.20", "measure_id": 1},
        "optional_discount_rating_results": [], "fail_resource_infos": []});
    let request = json!({"resource_ids": ["a", "b"], "period_type": 2, "period_num": 1});
    let order =
        order_from_rating(PricedAnswer::Renew, &request, &answer, customer()).expect("order");
    let official: Decimal = order.lines.iter().map(|l| l.official).sum();
    assert_eq!(official, d("122.20"));
    assert_eq!(order.kind, OrderKind::Renewal);
    let quote = markup(&order);
    let mut answer = answer;
    rewrite(PricedAnswer::Renew, &mut answer, &quote).expect("rewrite");
    assert!(answer["renew_inquiry_results"][0]["amount"].is_string());
    assert_eq!(
        answer["official_website_rating_result"]["official_website_amount"],
        "134.42"
    );
}

#[test]
fn unknown_units_and_missing_amounts_are_unreadable() {
    let answer = json!({"measure_id": 9, "product_rating_results": [{"id": "1", "amount": 1, "official_website_amount": 1}]});
    assert!(order_from_rating(PricedAnswer::OnDemand, &json!({}), &answer, customer()).is_err());
    let answer = json!({"measure_id": 1, "product_rating_results": [{"id": "1"}]});
    assert!(order_from_rating(PricedAnswer::OnDemand, &json!({}), &answer, customer()).is_err());
}

#[test]
fn order_listings_show_partner_prices_and_keep_refunds_negative() {
    let answer = json!({"total_count": 2, "order_infos": [
        {"order_id": "CS1", "service_type_code": "hws.service.type.ec2", "amount_after_discount": 941.76,
         "official_amount": 1046.4, "measure_id": 1,
         "amount_info": {"discounts": [{"discount_type": "607", "discount_amount": 104.64}]}},
        {"order_id": "CS2", "service_type_code": "hws.service.type.ec2", "amount_after_discount": -100,
         "official_amount": -100, "measure_id": 1}]});
    let order =
        order_from_rating(PricedAnswer::Orders, &json!(null), &answer, customer()).expect("order");
    assert_eq!(order.lines.len(), 2);
    assert_eq!(order.lines[0].official, d("1046.4"));
    assert_eq!(order.lines[1].official_trade, d("100"));
    let quote = markup(&order);
    let mut answer = answer;
    rewrite(PricedAnswer::Orders, &mut answer, &quote).expect("rewrite");
    assert_eq!(
        answer["order_infos"][0]["amount_after_discount"].to_string(),
        "1151.04"
    );
    assert_eq!(
        answer["order_infos"][0]["amount_info"]["discounts"],
        json!([])
    );
    assert_eq!(
        answer["order_infos"][1]["amount_after_discount"].to_string(),
        "-110"
    );
}

#[test]
fn order_details_price_the_order_and_its_lines() {
    let answer = json!({"total_count": 1,
        "order_info": {"order_id": "CS1", "amount_after_discount": 35, "official_amount": 35, "measure_id": 1},
        "order_line_items": [{"order_id": "CS1", "amount_after_discount": 35, "official_amount": 35, "period_type": 2, "period_num": 1}]});
    let order = order_from_rating(PricedAnswer::OrderDetail, &json!(null), &answer, customer())
        .expect("order");
    assert_eq!(order.lines.len(), 2);
    let quote = markup(&order);
    let mut answer = answer;
    rewrite(PricedAnswer::OrderDetail, &mut answer, &quote).expect("rewrite");
    assert_eq!(
        answer["order_info"]["amount_after_discount"].to_string(),
        "38.5"
    );
    assert_eq!(
        answer["order_line_items"][0]["amount_after_discount"].to_string(),
        "38.5"
    );
}
