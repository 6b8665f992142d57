//! The in-place path against the `Value` path: same order, same answer.

use rust_decimal::Decimal;
use serde_json::Value;

use super::BssAnswer;
use crate::pricing::order::{self, BssRequest};
use crate::pricing::{BundleLine, CustomerInfo, Intent, Order, Quote, QuoteLine, rewrite};

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

const PARAMS: [(&str, &str); 8] = [
    ("ProductCode", "oss"),
    ("ServicePeriodQuantity", "12"),
    ("ServicePeriodUnit", "Month"),
    ("Region", "cn-hangzhou"),
    ("ModuleList.1.ModuleCode", "PackageCode"),
    ("ModuleList.1.Config", "PackageCode:standard_500G"),
    ("ModuleList.2.ModuleCode", "Storage"),
    ("ModuleList.2.Config", "Storage:100"),
];

fn request(payg: bool) -> BssRequest<'static> {
    BssRequest {
        params: &PARAMS,
        payg,
        customer: CustomerInfo {
            id: "acme".into(),
            uid: "2000000000000001".into(),
            group: "enterprise".into(),
            tags: Vec::new(),
        },
        intent: Intent::Quote,
        action: "GetSubscriptionPrice",
    }
}

/// A partner quote for `order`: list = official + 10 %, a discount on the
/// first line, and (when `bundles`) two bundle lines, one discounted, with
/// texts that need escaping.
fn quote_for(order: &Order, bundles: bool) -> Quote {
    let mut lines = Vec::new();
    for (i, l) in order.lines.iter().enumerate() {
        let list = (l.official * d("1.1")).round_dp(2);
        let discount = if i == 0 { d("1.25") } else { Decimal::ZERO };
        lines.push(QuoteLine {
            id: l.id.clone(),
            official: l.official,
            list,
            discount,
            price: list - discount,
            rule: if i == 0 {
                "acme \"contract\""
            } else {
                "markup"
            }
            .into(),
        });
    }
    let bundles = if bundles {
        vec![
            BundleLine {
                id: "TG-OSS-SUPPORT".into(),
                attached_to: None,
                description: "support".into(),
                quantity: 1,
                list: d("24.00"),
                discount: Decimal::ZERO,
                price: d("24.00"),
                rule: "support".into(),
            },
            BundleLine {
                id: "TG-\u{e9}\\x".into(),
                attached_to: None,
                description: "backup".into(),
                quantity: 3,
                list: d("9"),
                discount: d("0.5"),
                price: d("8.5"),
                rule: "backup-promo".into(),
            },
        ]
    } else {
        Vec::new()
    };
    // The host's own totals (lines and bundles).
    Quote::new("test@1".into(), order.currency.clone(), lines, bundles)
}

/// Both paths on `answer`: the orders and the rewritten answers must be
/// the same (the texts compared after parsing, key order included).
fn same_as_value_path(answer: &str, payg: bool, bundles: bool) {
    let req = request(payg);
    let mut whole: Value = serde_json::from_str(answer).expect("json");
    let read = BssAnswer::read(answer.as_bytes()).expect("the in-place path takes it");
    assert!(!read.failed());
    let data = whole.get_mut("Data").expect("Data");
    let slow_order = order::order_from_bss(&req, data);
    let fast_order = read.order(&req);
    assert_eq!(
        format!("{fast_order:?}"),
        format!("{slow_order:?}"),
        "orders differ for {answer}"
    );
    let Ok(o) = fast_order else { return };
    let quote = quote_for(&o, bundles);
    rewrite::rewrite_bss(data, &o, &quote, payg);
    let fast: Value = serde_json::from_slice(&read.rewrite(&o, &quote, payg))
        .unwrap_or_else(|e| panic!("the in-place answer is JSON ({e}) for {answer}"));
    assert_eq!(
        serde_json::to_string(&fast).expect("text"),
        serde_json::to_string(&whole).expect("text"),
        "answers differ for {answer}"
    );
}

const ANSWER: &str = r#"{"Code":"Success","Message":"Successful!","RequestId":"5E9B","Success":true,"Data":{"Currency":"CNY","OriginalPrice":108,"DiscountPrice":16.2,"TradePrice":91.8,"Quantity":1,"ModuleDetails":{"ModuleDetail":[{"ModuleCode":"PackageCode","OriginalCost":108,"InvoiceDiscount":16.2,"CostAfterDiscount":91.8,"UnitPrice":9}]},"PromotionDetails":{"PromotionDetail":[{"PromotionId":1021199213,"PromotionName":"annual-15off","PromotionDesc":"15% off"}]}}}"#;

#[test]
fn the_provider_answer_is_rewritten_as_the_value_path_does() {
    for bundles in [false, true] {
        for payg in [false, true] {
            same_as_value_path(ANSWER, payg, bundles);
        }
    }
}

#[test]
fn untouched_text_is_kept_byte_for_byte() {
    let read = BssAnswer::read(ANSWER.as_bytes()).expect("read");
    let o = read.order(&request(false)).expect("order");
    let out = String::from_utf8(read.rewrite(&o, &quote_for(&o, false), false)).expect("utf8");
    assert!(
        out.starts_with(
            r#"{"Code":"Success","Message":"Successful!","RequestId":"5E9B","Success":true,"Data":{"Currency":"CNY","OriginalPrice":118.8,"#
        ),
        "{out}"
    );
    assert!(
        out.contains(r#""CostAfterDiscount":117.55,"UnitPrice":9.9}]}"#),
        "{out}"
    );
}

#[test]
fn every_shape_the_provider_may_send_gives_the_same_answer() {
    let shapes = [
        // Whitespace everywhere, unknown fields, unicode escapes kept.
        "{ \"Success\" : true ,\n \"Data\" : {\n \"Currency\" : \"CNY\" , \"Note\":\"caf\\u00e9\",\n \"ModuleDetails\" : { \"ModuleDetail\" : [ { \"ModuleCode\" : \"PackageCode\" , \"OriginalCost\" : 108 , \"CostAfterDiscount\" : 91.8 , \"Extra\" : [1,2,{\"a\":null}] } ] } , \"OriginalPrice\" : 108 } }",
        // No totals, no promotions, no InvoiceDiscount, no UnitPrice: appended.
        r#"{"Data":{"Currency":"CNY","ModuleDetails":{"ModuleDetail":[{"ModuleCode":"PackageCode","OriginalCost":"108.00","CostAfterDiscount":"91.80"}]}}}"#,
        // A null UnitPrice is a UnitPrice that is there.
        r#"{"Data":{"Currency":"CNY","ModuleDetails":{"ModuleDetail":[{"ModuleCode":"PackageCode","OriginalCost":108,"CostAfterDiscount":91.8,"UnitPrice":null,"InvoiceDiscount":null}]},"PromotionDetails":null}}"#,
        // Two lines, one code repeated, scientific notation, amounts at scale.
        r#"{"Data":{"ModuleDetails":{"ModuleDetail":[{"ModuleCode":"PackageCode","OriginalCost":1.08e2,"CostAfterDiscount":91.80,"UnitPrice":9.000},{"ModuleCode":"Storage","OriginalCost":0,"CostAfterDiscount":0,"UnitPrice":0.0001},{"ModuleCode":"Storage","OriginalCost":12.5,"CostAfterDiscount":12.5}]},"Currency":"USD","TradePrice":1}}"#,
        // Empty list: bundles go into it without a leading comma.
        r#"{"Data":{"Currency":"CNY","ModuleDetails":{"ModuleDetail":[ ]},"PromotionDetails":{}}}"#,
        // Data with members only after ModuleDetails; escaped module code.
        r#"{"Success":true,"Data":{"ModuleDetails":{"ModuleDetail":[{"ModuleCode":"Pack\"age\\Code","OriginalCost":5,"CostAfterDiscount":5}]},"Currency":"CNY"}}"#,
    ];
    for shape in shapes {
        for bundles in [false, true] {
            for payg in [false, true] {
                same_as_value_path(shape, payg, bundles);
            }
        }
    }
}

#[test]
fn broken_answers_give_the_value_path_errors() {
    // Each is read in place, and its order fails as the Value path's does.
    let shapes = [
        r#"{"Data":{"ModuleDetails":{"ModuleDetail":[]}}}"#,
        r#"{"Data":{"Currency":"CNY"}}"#,
        r#"{"Data":{"Currency":"CNY","ModuleDetails":null}}"#,
        r#"{"Data":{"Currency":"CNY","ModuleDetails":{"ModuleDetail":null}}}"#,
        r#"{"Data":{"Currency":"CNY","ModuleDetails":{"ModuleDetail":[{"OriginalCost":1,"CostAfterDiscount":1}]}}}"#,
        r#"{"Data":{"Currency":"CNY","ModuleDetails":{"ModuleDetail":[{"ModuleCode":"A","OriginalCost":-1,"CostAfterDiscount":1}]}}}"#,
        r#"{"Data":{"Currency":"CNY","ModuleDetails":{"ModuleDetail":[{"ModuleCode":"A","OriginalCost":"x","CostAfterDiscount":1}]}}}"#,
        r#"{"Data":{"Currency":"CNY","ModuleDetails":{"ModuleDetail":[{"ModuleCode":"A","OriginalCost":true,"CostAfterDiscount":1}]}}}"#,
        r#"{"Data":{"Currency":"CNY","ModuleDetails":{"ModuleDetail":[{"ModuleCode":"A","OriginalCost":1}]}}}"#,
    ];
    for shape in shapes {
        let read = BssAnswer::read(shape.as_bytes()).expect("read");
        let whole: Value = serde_json::from_str(shape).expect("json");
        let slow = order::order_from_bss(&request(false), &whole["Data"]).expect_err("broken");
        let fast = read.order(&request(false)).expect_err("broken");
        assert_eq!(fast, slow, "{shape}");
    }
}

#[test]
fn unusual_answers_are_left_to_the_value_path() {
    for shape in [
        "not json",
        "[1,2]",
        r#"[true,{"Currency":"CNY"}]"#,
        r#"{"Data":[1]}"#,
        r#"{"Data":"text"}"#,
        r#"{"Data":{"Currency":1}}"#,
        r#"{"Data":{"Currency":"CNY","Currency":"USD"}}"#,
        r#"{"Data":{"Currency":"CNY"},"Data":{}}"#,
        r#"{"Data":{"Currency":"CNY","ModuleDetails":[]}}"#,
        r#"{"Data":{"Currency":"CNY","ModuleDetails":{"ModuleDetail":{"ModuleCode":"A"}}}}"#,
        r#"{"Data":{"Currency":"CNY","ModuleDetails":{"ModuleDetail":[["A",1,1]]}}}"#,
        r#"{"Data":{"Currency":"CNY","ModuleDetails":{"ModuleDetail":[{"ModuleCode":7}]}}}"#,
        r#"{"Data":{"Currency":"CNY","ModuleDetails":{"ModuleDetail":[{"ModuleCode":"A","ModuleCode":"B"}]}}}"#,
    ] {
        assert!(BssAnswer::read(shape.as_bytes()).is_none(), "{shape}");
    }
    assert!(BssAnswer::read(b"{\"Data\":{\"Currency\":\"\xff\"}}").is_none());
}

#[test]
fn a_refusal_passes_through() {
    let refused = r#"{"Code":"InvalidParameter","Success":false,"Data":{"Currency":"CNY"}}"#;
    assert!(BssAnswer::read(refused.as_bytes()).expect("read").failed());
    assert!(!BssAnswer::read(ANSWER.as_bytes()).expect("read").failed());
}
