//! Partner pricing through real processes: the gateway runs the pricing
//! module named in its `[pricing]` section (built from source by
//! `scripts/build-guests`, which `scripts/test` runs first).

use std::path::{Path, PathBuf};

use tollgate::config::OutboundScheme;

use crate::support::*;

/// A module of the example policy set (`policies/pricing/NAME.wasm`).
fn module(name: &str) -> PathBuf {
    let path = policies().join(format!("pricing/{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: the pricing modules are built from source by scripts/build-guests (scripts/test runs it)",
        path.display()
    );
    path
}

/// The misbehaving test fixture.
fn fixture() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("wasm32-wasip2/release/tollgate_guest_misbehave.wasm");
    assert!(
        path.exists(),
        "{}: run scripts/build-guests",
        path.display()
    );
    path
}

fn reference_stack() -> Stack {
    Stack::start_priced(
        &module("reference"),
        &policies().join("pricing/reference.toml"),
    )
}

fn num(v: &serde_json::Value) -> String {
    v.to_string()
}

#[tokio::test]
async fn price_queries_show_partner_prices_and_bundle_lines() {
    let stack = reference_stack();

    // BSS subscription: the official 108 (91.80 after the cloud's own
    // discount) becomes acme's contract price 99.36, plus the partner's
    // support plan (24.00) as an extra ModuleDetail in the totals.
    let reply = stack
        .acme()
        .call("GetSubscriptionPrice", BSS, PRICE)
        .await
        .expect("call");
    assert_eq!(reply.status, 200, "{}", reply.json);
    let data = &reply.json["Data"];
    assert_eq!(num(&data["OriginalPrice"]), "132");
    assert_eq!(num(&data["DiscountPrice"]), "8.64");
    assert_eq!(num(&data["TradePrice"]), "123.36");
    assert_eq!(data["Currency"], "CNY");
    let details = data["ModuleDetails"]["ModuleDetail"]
        .as_array()
        .expect("details");
    assert_eq!(details.len(), 2, "{data}");
    assert_eq!(num(&details[0]["CostAfterDiscount"]), "99.36");
    assert_eq!(details[1]["ModuleCode"], "TG-OSS-SUPPORT");
    assert_eq!(num(&details[1]["CostAfterDiscount"]), "24");
    assert_eq!(
        data["PromotionDetails"]["PromotionDetail"][0]["PromotionName"],
        "acme-oss-contract"
    );
    let header = reply.pricing_module.as_deref().expect("pricing header");
    assert!(
        header.starts_with("reference-pricing@0.1.0 sha256:"),
        "{header}"
    );

    // ECS DescribePrice (V3-signed), one month: instance +12 %, disk +10 %,
    // managed operations 30.00 per instance-month as an extra DetailInfo.
    let v3 = stack.client(ACME_AK, "acme.secret", OutboundScheme::V3);
    let ecs = v3
        .call(
            "DescribePrice",
            ECS,
            &[
                ("RegionId", "cn-hangzhou"),
                ("InstanceType", "ecs.g6.large"),
                ("PriceUnit", "Month"),
                ("Period", "1"),
            ],
        )
        .await
        .expect("ecs");
    assert_eq!(ecs.status, 200, "{}", ecs.json);
    let price = &ecs.json["PriceInfo"]["Price"];
    let details = price["DetailInfos"]["DetailInfo"]
        .as_array()
        .expect("details");
    assert_eq!(num(&details[0]["TradePrice"]), "225.12", "201 + 12 %");
    assert_eq!(num(&details[1]["TradePrice"]), "15.4", "14 + 10 %");
    assert_eq!(details[3]["Resource"], "TG-MANAGED-OPS");
    assert_eq!(num(&price["TradePrice"]), "270.52");
    assert_eq!(num(&price["OriginalPrice"]), "270.52");
    assert_eq!(num(&price["DiscountPrice"]), "0");
    assert!(ecs.pricing_module.is_some());

    // Pay-as-you-go: per-module rates, no total (as the provider answers).
    let payg = stack
        .acme()
        .call(
            "GetPayAsYouGoPrice",
            BSS,
            &[
                ("ProductCode", "oss"),
                ("SubscriptionType", "PayAsYouGo"),
                ("Region", "cn-hangzhou"),
                ("ModuleList.1.ModuleCode", "Storage"),
                ("ModuleList.1.Config", "Storage:1000"),
                ("ModuleList.1.PriceType", "Hour"),
            ],
        )
        .await
        .expect("payg");
    assert_eq!(payg.status, 200, "{}", payg.json);
    let d = &payg.json["Data"];
    assert!(d.get("TradePrice").is_none(), "{d}");
    let m = &d["ModuleDetails"]["ModuleDetail"][0];
    // Official 0.165 per hour -> rounded line 0.17; acme's OSS contract -8 %.
    assert_eq!(num(&m["OriginalCost"]), "0.17");
    assert_eq!(num(&m["InvoiceDiscount"]), "0.01");
    assert_eq!(num(&m["CostAfterDiscount"]), "0.16");

    // The cloud saw each query once, as the partner for acme.
    let seen = stack.recorded().await;
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen.iter()
            .all(|r| r.access_key_id == PARTNER_AK && r.owner_id.as_deref() == Some(ACME_UID))
    );
}

#[tokio::test]
async fn purchases_are_priced_and_admitted_before_they_are_forwarded() {
    let stack = reference_stack();
    let buy = with(BUY, &[("ClientToken", "pricing-e2e-buy-1")]);
    let reply = stack
        .acme()
        .call("CreateInstance", BSS, &buy)
        .await
        .expect("buy");
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert!(reply.json["Data"]["OrderId"].is_string());
    assert!(
        reply
            .pricing_module
            .as_deref()
            .is_some_and(|h| h.starts_with("reference-pricing@")),
        "a priced purchase names its module"
    );
    let seen = stack.recorded().await;
    let actions: Vec<&str> = seen.iter().map(|r| r.action.as_str()).collect();
    let buys = actions.iter().filter(|a| **a == "CreateInstance").count();
    assert_eq!(buys, 1, "{actions:?}");
    // The official price was asked first (with the purchase's own
    // configuration), then the purchase went through.
    let quote_pos = actions
        .iter()
        .position(|a| *a == "GetSubscriptionPrice")
        .expect("official price asked");
    assert!(
        quote_pos
            < actions
                .iter()
                .position(|a| *a == "CreateInstance")
                .expect("bought")
    );
    let asked = &seen[quote_pos];
    assert!(
        asked
            .params
            .iter()
            .any(|(k, v)| k == "ModuleList.1.Config" && v == "PackageCode:standard_500G"),
        "{asked:?}"
    );

    // ECS RunInstances PrePaid: the answer's TradePrice is the partner's
    // (2 × (201 + 12 %) + 2 × (14 + 10 %) + 2 × 30.00 managed), never the
    // provider's.
    let run = stack
        .acme()
        .call(
            "RunInstances",
            ECS,
            &[
                ("RegionId", "cn-hangzhou"),
                ("InstanceType", "ecs.g6.large"),
                ("ImageId", "ubuntu_22_04_x64"),
                ("InstanceChargeType", "PrePaid"),
                ("Period", "1"),
                ("PeriodUnit", "Month"),
                ("Amount", "2"),
                ("ClientToken", "pricing-e2e-run-1"),
            ],
        )
        .await
        .expect("run");
    assert_eq!(run.status, 200, "{}", run.json);
    assert_eq!(num(&run.json["TradePrice"]), "541.04", "{}", run.json);

    let metrics = metrics_text(stack.admin, &stack.admin_token).await;
    assert!(
        metrics.contains(
            r#"tollgate_pricing_calls_total{module="reference-pricing@0.1.0",outcome="ok"} 2"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn admit_refuses_an_order_and_the_purchase_never_reaches_the_cloud() {
    let stack = reference_stack();
    let buy = [
        ("ProductCode", "oss"),
        ("SubscriptionType", "Subscription"),
        ("Period", "12"),
        ("Parameter.1.Code", "PackageCode"),
        ("Parameter.1.Value", "standard_500G"),
        ("Parameter.2.Code", "Region"),
        ("Parameter.2.Value", "cn-beijing"),
        ("ClientToken", "pricing-e2e-denied"),
    ];
    let reply = stack
        .acme()
        .call("CreateInstance", BSS, &buy)
        .await
        .expect("buy");
    assert_eq!(reply.status, 403, "{}", reply.json);
    assert_eq!(reply.code(), "Forbidden.PartnerQuota");
    let message = reply.json["Message"].as_str().unwrap_or_default();
    assert!(
        message.contains("cn-beijing") && message.contains("allowed-regions"),
        "{message}"
    );
    assert!(reply.json["RequestId"].is_string(), "provider-format error");
    let seen = stack.recorded().await;
    assert!(
        seen.iter().all(|r| r.action != "CreateInstance"),
        "only read-only price lookups reached the cloud: {:?}",
        seen.iter().map(|r| &r.action).collect::<Vec<_>>()
    );
    let metrics = metrics_text(stack.admin, &stack.admin_token).await;
    assert!(metrics.contains(r#"outcome="denied"} 1"#), "{metrics}");
}

#[tokio::test]
async fn swapping_the_module_file_changes_the_next_answer() {
    // The gateway reads `active.wasm` / `active.toml`; the operator swaps
    // the files. This test restarts the gateway (a cold start must pick up
    // the new files); swapping live, under load, is `reload.rs`.
    let dir = tempfile::tempdir().expect("tmp");
    let wasm = dir.path().join("active.wasm");
    let config = dir.path().join("active.toml");
    std::fs::copy(module("reference"), &wasm).expect("copy");
    std::fs::copy(policies().join("pricing/reference.toml"), &config).expect("copy");
    let mut stack = Stack::start_priced(&wasm, &config);
    let before = stack
        .acme()
        .call("GetSubscriptionPrice", BSS, PRICE)
        .await
        .expect("call");
    assert_eq!(num(&before.json["Data"]["TradePrice"]), "123.36");
    assert!(
        before
            .pricing_module
            .as_deref()
            .is_some_and(|h| h.starts_with("reference-pricing@"))
    );

    std::fs::copy(module("promotion"), &wasm).expect("swap module");
    std::fs::copy(policies().join("pricing/promotion.toml"), &config).expect("swap config");
    stack.restart_gateway();
    let after = stack
        .acme()
        .call("GetSubscriptionPrice", BSS, PRICE)
        .await
        .expect("call");
    assert_eq!(after.status, 200, "{}", after.json);
    // spring-sale: 30 % off the list price 108, no bundle.
    assert_eq!(num(&after.json["Data"]["TradePrice"]), "75.6");
    assert_eq!(num(&after.json["Data"]["DiscountPrice"]), "32.4");
    assert!(
        after
            .pricing_module
            .as_deref()
            .is_some_and(|h| h.starts_with("promotion@0.2.0")),
        "{:?}",
        after.pricing_module
    );
}

#[tokio::test]
async fn a_failing_module_fails_closed_and_the_gateway_keeps_serving() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("trap.json");
    std::fs::write(&config, "\"trap\"").expect("write");
    let stack = Stack::start_priced(&fixture(), &config);

    // A price query is not answered with official prices.
    let price = stack
        .acme()
        .call("GetSubscriptionPrice", BSS, PRICE)
        .await
        .expect("call");
    assert_eq!(price.status, 500, "{}", price.json);
    assert_eq!(price.code(), "PricingModuleError");
    assert!(
        price.json["Data"].is_null(),
        "no price leaks: {}",
        price.json
    );

    // A purchase is refused and never forwarded.
    let buy = with(BUY, &[("ClientToken", "pricing-e2e-trap")]);
    let reply = stack
        .acme()
        .call("CreateInstance", BSS, &buy)
        .await
        .expect("buy");
    assert_eq!(reply.status, 500, "{}", reply.json);
    assert_eq!(reply.code(), "PricingModuleError");
    let message = reply.json["Message"].as_str().unwrap_or_default();
    assert!(
        message.contains("trap") && message.contains("Nothing was ordered"),
        "{message}"
    );
    assert!(
        stack
            .recorded()
            .await
            .iter()
            .all(|r| r.action != "CreateInstance")
    );

    // Calls that need no pricing still work, and the failures are counted.
    let orders = stack.acme().call("QueryOrders", BSS, &[]).await.expect("q");
    assert_eq!(orders.status, 200, "{}", orders.json);
    let metrics = metrics_text(stack.admin, &stack.admin_token).await;
    assert!(
        metrics
            .contains(r#"tollgate_pricing_failures_total{module="misbehave@0.0.1",kind="trap"} 2"#),
        "{metrics}"
    );
}

/// A renewal is priced from the order that created the instance (instance →
/// orders → order detail), on the official-price path (ledger, no pricing
/// module) and on the partner-price path (pricing module) alike; an unknown
/// instance is refused and nothing is bought.
#[tokio::test]
async fn a_renewal_is_priced_from_the_order_that_created_the_instance() {
    for (path, stack) in [("official", Stack::start()), ("partner", reference_stack())] {
        let acme = stack.acme();
        let bought = acme
            .call(
                "CreateInstance",
                BSS,
                &with(BUY, &[("ClientToken", "renew-base")]),
            )
            .await
            .expect("buy");
        assert_eq!(bought.status, 200, "{path}: {:?}", bought.json);
        let instance = bought.json["Data"]["InstanceId"]
            .as_str()
            .expect("InstanceId")
            .to_owned();

        let renew = |id: &str, token: &str| {
            vec![
                ("ProductCode".to_owned(), "oss".to_owned()),
                ("InstanceId".to_owned(), id.to_owned()),
                ("RenewPeriod".to_owned(), "12".to_owned()),
                ("ClientToken".to_owned(), token.to_owned()),
            ]
        };
        let params = renew(&instance, "renew-1");
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let renewed = acme
            .call("RenewInstance", BSS, &params)
            .await
            .expect("renew");
        assert_eq!(renewed.status, 200, "{path}: {:?}", renewed.json);
        assert!(
            renewed.json["Data"]["OrderId"].is_string(),
            "{path}: {:?}",
            renewed.json
        );

        let seen = stack.recorded().await;
        let renewal_price = seen.iter().find(|r| {
            r.action == "GetSubscriptionPrice"
                && r.params
                    .iter()
                    .any(|(k, v)| k == "OrderType" && v == "Renewal")
        });
        assert!(
            renewal_price.is_some_and(|r| r
                .params
                .iter()
                .any(|(k, v)| k == "ModuleList.1.Config" && v == "PackageCode:standard_500G")),
            "{path}: the renewal was priced with the instance's own modules: {seen:?}"
        );
        assert_eq!(
            seen.iter().filter(|r| r.action == "RenewInstance").count(),
            1,
            "{path}"
        );

        let params = renew("OSSBAG-cn-does-not-exist", "renew-2");
        let params: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let refused = acme
            .call("RenewInstance", BSS, &params)
            .await
            .expect("renew unknown");
        assert_eq!(refused.status, 400, "{path}: {:?}", refused.json);
        assert_eq!(
            refused.code(),
            "InvalidInstanceId",
            "{path}: {:?}",
            refused.json
        );
        let seen = stack.recorded().await;
        assert_eq!(
            seen.iter().filter(|r| r.action == "RenewInstance").count(),
            1,
            "{path}: nothing was bought for the unknown instance"
        );
    }
}
