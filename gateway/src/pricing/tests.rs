//! Unit tests of the pricing host with real components built from source
//! (`scripts/build-guests`, which `scripts/test` runs before `cargo test`):
//! the reference module, the promotion module and the misbehaving fixture.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use super::*;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// A guest built by `scripts/build-guests` (`name` as cargo names it).
pub(crate) fn guest(name: &str) -> Vec<u8> {
    let path = target_dir().join(format!("wasm32-wasip2/release/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. The pricing guests are built from source before the tests: run scripts/build-guests (scripts/test does).",
            path.display()
        )
    })
}

fn policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

fn engine() -> Arc<PricingEngine> {
    static ENGINE: OnceLock<Arc<PricingEngine>> = OnceLock::new();
    Arc::clone(ENGINE.get_or_init(|| PricingEngine::new().expect("engine")))
}

fn reference() -> LoadedModule {
    let config = convert::config_json(&policies().join("pricing/reference.toml")).expect("config");
    engine()
        .load(&guest("tollgate_guest_pricing"), config, "reference")
        .expect("reference module loads")
}

/// The misbehaving fixture in `mode`, with its quote cache off: these
/// tests are about what the module does on every call.
fn misbehave(mode: &str) -> LoadedModule {
    misbehave_cached(mode).without_quote_cache()
}

fn misbehave_cached(mode: &str) -> LoadedModule {
    engine()
        .load(&guest("tollgate_guest_misbehave"), mode.to_owned(), mode)
        .expect("fixture loads")
}

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

fn customer(id: &str, group: &str) -> CustomerInfo {
    CustomerInfo {
        id: id.into(),
        uid: "2000000000000001".into(),
        group: group.into(),
        tags: Vec::new(),
    }
}

fn line(id: &str, product: &str, sku: &str, official: &str, quantity: u32) -> LineItem {
    LineItem {
        id: id.into(),
        product: product.into(),
        sku: sku.into(),
        config: Vec::new(),
        region: "cn-hangzhou".into(),
        quantity,
        period_count: 12,
        period_unit: PeriodUnit::Month,
        charge_type: ChargeType::Subscription,
        official: d(official),
        official_trade: d(official) * d("0.85"),
    }
}

fn order(who: CustomerInfo, intent: Intent, lines: Vec<LineItem>) -> Order {
    Order {
        action: "GetSubscriptionPrice".into(),
        intent,
        kind: OrderKind::New,
        customer: who,
        currency: "CNY".into(),
        lines,
    }
}

// ------------------------------------------------------------ reference

#[test]
fn reference_module_describes_itself_and_names_the_header() {
    let m = reference();
    assert_eq!(m.info().name, "reference-pricing");
    assert_eq!(m.label(), format!("reference-pricing@{}", m.info().version));
    let header = m.header().to_str().expect("ascii");
    assert!(header.starts_with("reference-pricing@"), "{header}");
    assert!(
        header.contains(&format!("sha256:{}", &m.hash()[..12])),
        "{header}"
    );
}

#[test]
fn no_std_modules_import_nothing_and_prepare_their_configuration_once() {
    // The reference and promotion modules are no_std: no WASI imports (one
    // core instance per call). Their configuration is parsed once, at load,
    // into a compact form smaller than the JSON text.
    let r = reference();
    assert!(r.wasi_imports().is_empty(), "{:?}", r.wasi_imports());
    assert!(!r.prepared().is_empty());
    assert!(
        r.prepared().len() < r.config_text().len(),
        "prepared {} bytes, config {} bytes",
        r.prepared().len(),
        r.config_text().len()
    );
    let promo = engine()
        .load(
            &guest("tollgate_guest_promotion"),
            r#"{"name":"a","percent_off":"10"}"#.into(),
            "promotion",
        )
        .expect("loads");
    assert!(promo.wasi_imports().is_empty());
    // A std module (the fixture) still loads: its WASI imports are linked
    // to traps, and named.
    let std_module = misbehave("ok");
    assert!(
        std_module
            .wasi_imports()
            .iter()
            .any(|i| i.starts_with("wasi:")),
        "{:?}",
        std_module.wasi_imports()
    );
    assert_eq!(std_module.prepared(), b"ok");
}

#[test]
fn a_failing_prepare_refuses_the_module() {
    let err = engine()
        .load(
            &guest("tollgate_guest_misbehave"),
            "bad-prepare".to_owned(),
            "fixture",
        )
        .expect_err("refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("prepare failed") && text.contains("asked to fail prepare"),
        "{text}"
    );
}

#[test]
fn a_customer_override_prices_with_a_discount_and_adds_the_bundle() {
    // acme's OSS contract (-8 %) beats the OSS rule (+5 %) and the global
    // markup; the support plan bundle is 2.00 per month for 12 months.
    let o = order(
        customer("acme", "enterprise"),
        Intent::Quote,
        vec![line("PackageCode", "oss", "PackageCode", "108", 1)],
    );
    let p = reference().quote(&o).expect("priced");
    let l = &p.quote.lines[0];
    assert_eq!(
        (l.list, l.discount, l.price),
        (d("108"), d("8.64"), d("99.36"))
    );
    assert_eq!(l.rule, "acme-oss-contract");
    assert_eq!(p.quote.bundles.len(), 1);
    let b = &p.quote.bundles[0];
    assert_eq!(b.id, "TG-OSS-SUPPORT");
    assert_eq!(b.attached_to.as_deref(), Some("PackageCode"));
    assert_eq!(b.price, d("24.00"));
    assert_eq!(p.quote.list_total, d("132.00"));
    assert_eq!(p.quote.discount_total, d("8.64"));
    assert_eq!(p.quote.total, d("123.36"));
    assert_eq!(p.quote.total, p.quote.list_total - p.quote.discount_total);
    assert_eq!(
        p.admission,
        Admission::Allow,
        "admit is not asked for quotes"
    );
}

#[test]
fn the_most_specific_scope_wins() {
    let m = reference();
    // globex is a startup: the group discount (-10 %) beats the OSS product
    // markup (+5 %); another enterprise customer gets the product rule.
    let oss = || vec![line("PackageCode", "oss", "PackageCode", "100", 1)];
    let startup = m
        .quote(&order(customer("globex", "startup"), Intent::Quote, oss()))
        .expect("priced");
    assert_eq!(startup.quote.lines[0].rule, "startup-discount");
    assert_eq!(startup.quote.lines[0].price, d("90.00"));
    let other = m
        .quote(&order(
            customer("hooli", "enterprise"),
            Intent::Quote,
            oss(),
        ))
        .expect("priced");
    assert_eq!(other.quote.lines[0].rule, "oss-storage");
    assert_eq!(other.quote.lines[0].price, d("105.00"));
    // No product rule for RDS: the global markup.
    let rds = m
        .quote(&order(
            customer("hooli", "enterprise"),
            Intent::Quote,
            vec![line("DBInstanceClass", "rds", "DBInstanceClass", "100", 1)],
        ))
        .expect("priced");
    assert_eq!(rds.quote.lines[0].rule, "global-markup");
    assert_eq!(rds.quote.lines[0].list, d("110.00"));
}

#[test]
fn graduated_tiers_price_each_instance_at_its_tier() {
    // 15 instances for 1500: 10 at +12 % (1000 -> 1120), 5 at +8 % (500 -> 540).
    let o = order(
        customer("hooli", "enterprise"),
        Intent::Quote,
        vec![line("instanceType", "ecs", "instanceType", "1500", 15)],
    );
    let p = reference().quote(&o).expect("priced");
    assert_eq!(p.quote.lines[0].list, d("1660.00"));
    assert_eq!(p.quote.lines[0].rule, "ecs-instances");
    // Managed operations: 30.00 × 15 instances × 12 months.
    assert_eq!(p.quote.bundles[0].id, "TG-MANAGED-OPS");
    assert_eq!(p.quote.bundles[0].price, d("5400.00"));
}

#[test]
fn sku_config_and_region_scope_with_a_fixed_fee() {
    let mut l = line("instanceType", "ecs", "instanceType", "100", 2);
    l.config = vec![("InstanceType".into(), "ecs.g5.xlarge".into())];
    l.region = "cn-shanghai".into();
    let p = reference()
        .quote(&order(
            customer("hooli", "enterprise"),
            Intent::Quote,
            vec![l],
        ))
        .expect("priced");
    // +15 % and 2.00 per instance.
    assert_eq!(p.quote.lines[0].rule, "g5-shanghai");
    assert_eq!(p.quote.lines[0].list, d("119.00"));
}

#[test]
fn admit_refuses_a_region_a_sku_a_count_and_an_amount() {
    let m = reference();
    let purchase = |who: CustomerInfo, l: LineItem| m.quote(&order(who, Intent::Purchase, vec![l]));
    let ok = purchase(
        customer("acme", "enterprise"),
        line("PackageCode", "oss", "PackageCode", "108", 1),
    )
    .expect("priced");
    assert_eq!(ok.admission, Admission::Allow);

    let mut beijing = line("PackageCode", "oss", "PackageCode", "108", 1);
    beijing.region = "cn-beijing".into();
    let denied = purchase(customer("acme", "enterprise"), beijing).expect("priced");
    let Admission::Deny { rule, message } = denied.admission else {
        panic!("cn-beijing must be refused");
    };
    assert_eq!(rule, "allowed-regions");
    assert!(message.contains("cn-beijing"), "{message}");

    let mut g5 = line("instanceType", "ecs", "instanceType", "100", 1);
    g5.config = vec![("InstanceType".into(), "ecs.g5.xlarge".into())];
    let denied = purchase(customer("globex", "startup"), g5.clone()).expect("priced");
    assert!(
        matches!(&denied.admission, Admission::Deny { rule, .. } if rule == "no-large-instances-for-startups")
    );
    // The same SKU is fine for an enterprise customer.
    let allowed = purchase(customer("acme", "enterprise"), g5).expect("priced");
    assert_eq!(allowed.admission, Admission::Allow);

    let many = purchase(
        customer("acme", "enterprise"),
        line("instanceType", "ecs", "instanceType", "100", 21),
    )
    .expect("priced");
    assert!(
        matches!(&many.admission, Admission::Deny { rule, .. } if rule == "instances-per-order")
    );

    let big = purchase(
        customer("acme", "enterprise"),
        line("DBInstanceClass", "rds", "DBInstanceClass", "60000", 1),
    )
    .expect("priced");
    let Admission::Deny { rule, message } = big.admission else {
        panic!("above the order cap");
    };
    assert_eq!(rule, "order-cap");
    assert!(message.contains("account manager"), "{message}");
}

#[test]
fn a_bad_configuration_fails_the_self_check_and_the_module_is_not_loaded() {
    let err = engine()
        .load(
            &guest("tollgate_guest_pricing"),
            r#"{"rule":[{"name":"x","percnt":"5"}]}"#.to_owned(),
            "typo",
        )
        .expect_err("a typo is refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("self-check failed") && text.contains("percnt"),
        "{text}"
    );

    let err = engine()
        .load(
            &guest("tollgate_guest_misbehave"),
            "bad-self-check".to_owned(),
            "fixture",
        )
        .expect_err("refused");
    assert!(format!("{err:#}").contains("asked to fail its self-check"));

    let err = engine()
        .load(b"not wasm", "{}".to_owned(), "garbage")
        .expect_err("not a component");
    assert!(format!("{err:#}").contains("not a valid WebAssembly component"));
}

#[test]
fn compiled_components_are_cached_by_content() {
    let bytes = guest("tollgate_guest_promotion");
    let e = PricingEngine::new().expect("engine");
    assert!(!e.is_cached(&bytes));
    let first = Instant::now();
    e.load(&bytes, r#"{"name":"a","percent_off":"10"}"#.into(), "p")
        .expect("loads");
    let compile = first.elapsed();
    assert!(e.is_cached(&bytes));
    let again = Instant::now();
    let m = e
        .load(&bytes, r#"{"name":"b","percent_off":"20"}"#.into(), "p")
        .expect("loads");
    assert!(
        again.elapsed() < compile,
        "a cached load ({:?}) is faster than compiling ({compile:?})",
        again.elapsed()
    );
    // Same module, new configuration: the configuration is data.
    let p = m
        .quote(&order(
            customer("acme", "enterprise"),
            Intent::Quote,
            vec![line("PackageCode", "oss", "PackageCode", "100", 1)],
        ))
        .expect("priced");
    assert_eq!(p.quote.lines[0].discount, d("20.00"));
    assert_eq!(p.quote.lines[0].rule, "b");
}

#[test]
fn swapping_modules_changes_the_answer() {
    let o = order(
        customer("acme", "enterprise"),
        Intent::Quote,
        vec![line("PackageCode", "oss", "PackageCode", "108", 1)],
    );
    let before = reference().quote(&o).expect("priced").quote;
    let promo = engine()
        .load_files(
            &policies().join("pricing/promotion.wasm"),
            Some(&policies().join("pricing/promotion.toml")),
        )
        .unwrap_or_else(|_| {
            engine()
                .load(
                    &guest("tollgate_guest_promotion"),
                    convert::config_json(&policies().join("pricing/promotion.toml")).expect("cfg"),
                    "promotion",
                )
                .expect("promotion loads")
        });
    let after = promo.quote(&o).expect("priced").quote;
    assert_eq!(before.total, d("123.36"));
    // spring-sale: 30 % off 108, no bundle.
    assert_eq!(after.total, d("75.60"));
    assert_eq!(after.lines[0].rule, "spring-sale");
    assert!(
        after.module.starts_with("promotion@0.2.0"),
        "{}",
        after.module
    );
}

// ----------------------------------------------------------- isolation

#[test]
fn every_call_gets_a_fresh_instance() {
    let m = misbehave("counter");
    let o = order(
        customer("acme", "enterprise"),
        Intent::Quote,
        vec![line("a", "oss", "PackageCode", "1", 1)],
    );
    for _ in 0..3 {
        let p = m.quote(&o).expect("priced");
        assert_eq!(p.quote.lines[0].rule, "call-1", "no state survives a call");
    }
}

/// Each misbehaviour fails its own call, with its kind, while well-behaved
/// calls on other threads keep succeeding; the engine works afterwards.
#[test]
fn misbehaving_modules_fail_cleanly_while_good_calls_succeed() {
    let cases: &[(&str, FailureKind, &str)] = &[
        ("loop", FailureKind::Deadline, "deadline"),
        ("memory", FailureKind::Memory, "memory"),
        ("trap", FailureKind::Trap, "trapped"),
        ("bad-decimal", FailureKind::InvalidOutput, "12,50"),
        ("negative", FailureKind::InvalidOutput, "-5.00"),
        ("wrong-currency", FailureKind::InvalidOutput, "XXX"),
        ("missing-line", FailureKind::InvalidOutput, "priced once"),
        ("wasi", FailureKind::Trap, "WASI"),
        ("huge", FailureKind::InvalidOutput, "bytes long"),
    ];
    let good = Arc::new(reference());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let good_calls: Vec<_> = (0..2)
        .map(|_| {
            let good = Arc::clone(&good);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let o = order(
                    customer("acme", "enterprise"),
                    Intent::Purchase,
                    vec![line("PackageCode", "oss", "PackageCode", "108", 1)],
                );
                let mut n = 0;
                let mut starved = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 10 {
                    match good.quote(&o) {
                        Ok(p) => {
                            assert_eq!(p.quote.total, d("123.36"));
                            n += 1;
                        }
                        // The deadline is wall-clock (limits::DEADLINE_TICKS):
                        // a good call descheduled past it on a starved test
                        // machine fails by the deadline, as documented. Any
                        // other failure would be the bad modules leaking into
                        // good calls, which this test exists to catch.
                        Err(e) if e.kind == FailureKind::Deadline && starved < 20 => {
                            starved += 1;
                        }
                        Err(e) => panic!("a good call failed: {e}"),
                    }
                }
                n
            })
        })
        .collect();
    // The misbehaving calls run one after another on a third thread, so the
    // machine is busy but not oversubscribed (the deadline is wall-clock:
    // see limits::DEADLINE_TICKS).
    let bad = std::thread::spawn(move || {
        cases
            .iter()
            .map(|&(mode, kind, needle)| {
                let m = misbehave(mode);
                let o = order(
                    customer("acme", "enterprise"),
                    Intent::Purchase,
                    vec![line("PackageCode", "oss", "PackageCode", "108", 1)],
                );
                let started = Instant::now();
                let err = m.quote(&o).expect_err(mode);
                (mode, kind, needle, err, started.elapsed())
            })
            .collect::<Vec<_>>()
    });
    for (mode, kind, needle, err, took) in bad.join().expect("no panic in the host") {
        assert_eq!(err.kind, kind, "{mode}: {err}");
        assert!(err.message.contains(needle), "{mode}: {err}");
        assert!(took < Duration::from_secs(5), "{mode} took {took:?}");
        // The customer-facing error is a provider-format Pricing failure.
        let e = err.to_error("misbehave@0.0.1");
        assert_eq!(e.origin, crate::error::Origin::Pricing);
        assert_eq!(e.code, "PricingModuleError");
        assert!(e.status.is_server_error());
        assert!(e.message.len() < 1024, "{mode}: message bounded");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in good_calls {
        assert!(h.join().expect("good thread") >= 10);
    }
    // And the engine still serves.
    let o = order(
        customer("acme", "enterprise"),
        Intent::Quote,
        vec![line("PackageCode", "oss", "PackageCode", "108", 1)],
    );
    assert_eq!(good.quote(&o).expect("priced").quote.total, d("123.36"));
}

#[test]
fn the_deadline_stops_a_loop_quickly() {
    let m = misbehave("loop");
    let o = order(
        customer("acme", "enterprise"),
        Intent::Quote,
        vec![line("a", "oss", "PackageCode", "1", 1)],
    );
    let started = Instant::now();
    let err = m.quote(&o).expect_err("interrupted");
    let took = started.elapsed();
    assert_eq!(err.kind, FailureKind::Deadline);
    let deadline = limits::EPOCH_TICK * u32::try_from(limits::DEADLINE_TICKS).expect("small");
    assert!(took >= deadline - limits::EPOCH_TICK, "{took:?}");
    assert!(took < deadline * 4, "{took:?}");
}

#[test]
fn failures_are_counted_in_metrics() {
    let metrics = crate::metrics::Metrics::new();
    let o = order(
        customer("acme", "enterprise"),
        Intent::Quote,
        vec![line("a", "oss", "PackageCode", "1", 1)],
    );
    misbehave("trap")
        .quote_metered(&o, &metrics)
        .expect_err("trap");
    misbehave("ok").quote_metered(&o, &metrics).expect("ok");
    let text = metrics.encode();
    assert!(
        text.contains(r#"tollgate_pricing_failures_total{module="misbehave@0.0.1",kind="trap"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"tollgate_pricing_calls_total{module="misbehave@0.0.1",outcome="ok"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("tollgate_pricing_call_duration_seconds_count 2"),
        "{text}"
    );
}

#[test]
fn a_component_without_the_pricing_world_is_refused() {
    // An empty component (magic, version 0x0d, layer 1) compiles and links
    // but exports nothing.
    let err = engine()
        .load(b"\0asm\x0d\0\x01\0", "{}".into(), "empty")
        .expect_err("an empty component exports nothing");
    assert!(format!("{err:#}").contains("does not export"), "{err:#}");
}

// ------------------------------------------------------------- convert

#[test]
fn amounts_must_be_plain_non_negative_decimals() {
    assert_eq!(convert::parse_amount("3712.8").expect("ok"), d("3712.8"));
    assert_eq!(convert::parse_amount("0").expect("ok"), Decimal::ZERO);
    for bad in [
        "",
        "-1",
        "+1",
        "1e3",
        "1.",
        ".5",
        " 1",
        "1 ",
        "1,5",
        "NaN",
        "0x10",
        "1.12345678901",
        "١",
    ] {
        assert!(
            convert::parse_amount(bad).is_err(),
            "{bad:?} must be refused"
        );
    }
}

#[test]
fn toml_configs_become_json_and_floats_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "name = \"x\"\npercent_off = \"12.5\"\n[a]\nn = 3\n").expect("w");
    let json = convert::config_json(&good).expect("converted");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["percent_off"], "12.5");
    assert_eq!(v["a"]["n"], 3);
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[rule]\npercent = 12.5\n").expect("w");
    let err = format!("{:#}", convert::config_json(&bad).expect_err("float"));
    assert!(
        err.contains("rule.percent") && err.contains("strings"),
        "{err}"
    );
}

// -------------------------------------------------------- order, rewrite

#[test]
fn a_bss_answer_is_rewritten_with_bundle_lines_and_consistent_totals() {
    let answer = r#"{"Currency":"CNY","OriginalPrice":108,"DiscountPrice":16.2,"TradePrice":91.8,"Quantity":1,
        "ModuleDetails":{"ModuleDetail":[{"ModuleCode":"PackageCode","OriginalCost":108,"InvoiceDiscount":16.2,"CostAfterDiscount":91.8,"UnitPrice":9}]},
        "PromotionDetails":{"PromotionDetail":[{"PromotionId":1021199213,"PromotionName":"annual-15off","PromotionDesc":"x"}]}}"#;
    let mut data: serde_json::Value = serde_json::from_str(answer).expect("json");
    let params = [
        ("ProductCode", "oss"),
        ("ServicePeriodQuantity", "12"),
        ("ServicePeriodUnit", "Month"),
        ("Region", "cn-hangzhou"),
        ("ModuleList.1.ModuleCode", "PackageCode"),
        ("ModuleList.1.Config", "PackageCode:standard_500G"),
    ];
    let req = order::BssRequest {
        params: &params,
        payg: false,
        customer: customer("acme", "enterprise"),
        intent: Intent::Quote,
        action: "GetSubscriptionPrice",
    };
    let o = order::order_from_bss(&req, &data).expect("order");
    assert_eq!(o.lines[0].official, d("108"));
    assert_eq!(o.lines[0].official_trade, d("91.8"));
    assert_eq!(
        o.lines[0].config,
        vec![("PackageCode".into(), "standard_500G".into())]
    );
    assert_eq!(
        (o.lines[0].period_count, o.lines[0].period_unit),
        (12, PeriodUnit::Month)
    );
    let p = reference().quote(&o).expect("priced");
    rewrite::rewrite_bss(&mut data, &o, &p.quote, false);
    let text = serde_json::to_string(&data).expect("json");
    // Exact decimals as JSON numbers, no float artefacts.
    assert!(text.contains(r#""OriginalPrice":132"#), "{text}");
    assert!(text.contains(r#""DiscountPrice":8.64"#), "{text}");
    assert!(text.contains(r#""TradePrice":123.36"#), "{text}");
    let details = data["ModuleDetails"]["ModuleDetail"]
        .as_array()
        .expect("array");
    assert_eq!(details.len(), 2);
    assert_eq!(details[0]["CostAfterDiscount"].to_string(), "99.36");
    assert_eq!(
        details[0]["UnitPrice"].to_string(),
        "9",
        "108 list / 12 months"
    );
    assert_eq!(details[1]["ModuleCode"], "TG-OSS-SUPPORT");
    assert_eq!(details[1]["CostAfterDiscount"].to_string(), "24");
    assert_eq!(details[1]["UnitPrice"].to_string(), "2");
    // The provider's promotion is replaced by the partner rule that discounted.
    let promos = data["PromotionDetails"]["PromotionDetail"]
        .as_array()
        .expect("array");
    assert_eq!(promos.len(), 1);
    assert_eq!(promos[0]["PromotionName"], "acme-oss-contract");
    assert!(promos[0]["PromotionId"].is_u64());
}

#[test]
fn an_ecs_answer_is_rewritten_in_its_own_shape() {
    let answer = r#"{"Price":{"Currency":"CNY","OriginalPrice":0.41,"DiscountPrice":0,"TradePrice":0.41,"ReservedInstanceHourPrice":0.3,
        "DetailInfos":{"DetailInfo":[
          {"Resource":"instanceType","OriginalPrice":0.39,"DiscountPrice":0,"TradePrice":0.39,"SubRules":{"Rule":[]}},
          {"Resource":"systemDisk","OriginalPrice":0.02,"DiscountPrice":0,"TradePrice":0.02,"SubRules":{"Rule":[]}},
          {"Resource":"bandwidth","OriginalPrice":0,"DiscountPrice":0,"TradePrice":0,"SubRules":{"Rule":[]}}]}},
        "Rules":{"Rule":[]},"RelatedPrice":{"MarketplaceImagePrice":{"Currency":"CNY","OriginalPrice":0,"DiscountPrice":0,"TradePrice":0}}}"#;
    let mut info: serde_json::Value = serde_json::from_str(answer).expect("json");
    let params = [
        ("RegionId", "cn-hangzhou"),
        ("InstanceType", "ecs.g6.large"),
    ];
    let req = order::EcsRequest {
        params: &params,
        customer: customer("acme", "enterprise"),
        intent: Intent::Quote,
        action: "DescribePrice",
    };
    let o = order::order_from_ecs(&req, &info["Price"]).expect("order");
    assert_eq!(o.lines.len(), 3);
    assert_eq!(o.lines[0].charge_type, ChargeType::PayAsYouGo);
    assert_eq!(
        o.lines[0].config,
        vec![("InstanceType".into(), "ecs.g6.large".into())]
    );
    let p = reference().quote(&o).expect("priced");
    rewrite::rewrite_ecs(&mut info, &p.quote);
    let price = &info["Price"];
    // instanceType +12 % (0.4368 -> 0.44), disk +10 % (0.022 -> 0.02),
    // bandwidth 0, managed operations 0.05 per hour.
    assert_eq!(price["TradePrice"].to_string(), "0.51");
    assert_eq!(price["OriginalPrice"].to_string(), "0.51");
    assert_eq!(price["DiscountPrice"].to_string(), "0");
    assert!(price.get("ReservedInstanceHourPrice").is_none());
    let details = price["DetailInfos"]["DetailInfo"]
        .as_array()
        .expect("array");
    assert_eq!(details.len(), 4);
    assert_eq!(details[0]["TradePrice"].to_string(), "0.44");
    assert_eq!(details[3]["Resource"], "TG-MANAGED-OPS");
    assert_eq!(details[3]["TradePrice"].to_string(), "0.05");
}

#[test]
fn run_instances_periods_become_describe_price_units() {
    let p = order::describe_price_params(&[
        ("InstanceChargeType", "PrePaid"),
        ("RegionId", "cn-hangzhou"),
        ("InstanceType", "ecs.g6.large"),
        ("Period", "24"),
        ("Amount", "3"),
        ("SystemDisk.Category", "cloud_essd"),
        ("ImageId", "ubuntu"),
        ("ClientToken", "t"),
    ])
    .expect("params");
    let get = |k: &str| p.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.as_str());
    assert_eq!(get("PriceUnit"), Some("Year"));
    assert_eq!(get("Period"), Some("2"));
    assert_eq!(get("Amount"), Some("3"));
    assert_eq!(get("SystemDisk.Category"), Some("cloud_essd"));
    assert_eq!(
        get("ClientToken"),
        None,
        "purchase-only parameters stay out"
    );
    let weekly = order::describe_price_params(&[
        ("InstanceChargeType", "PrePaid"),
        ("PeriodUnit", "Week"),
        ("Period", "2"),
    ])
    .expect("params");
    assert!(weekly.contains(&("PriceUnit".into(), "Week".into())));
    let hourly = order::describe_price_params(&[("Period", "3")]).expect("params");
    assert!(hourly.contains(&("PriceUnit".into(), "Hour".into())));
    assert!(hourly.contains(&("Period".into(), "1".into())));
}

#[test]
fn purchases_find_the_modules_their_parameters_configure() {
    let defs = vec![
        order::ModuleDef {
            code: "PackageCode".into(),
            config: vec!["PackageCode".into()],
            price_type: "Month".into(),
        },
        order::ModuleDef {
            code: "Storage".into(),
            config: vec!["Storage".into()],
            price_type: "Hour".into(),
        },
    ];
    let props = order::parameters(&[
        ("Parameter.2.Code", "Region"),
        ("Parameter.2.Value", "cn-hangzhou"),
        ("Parameter.1.Code", "PackageCode"),
        ("Parameter.1.Value", "standard_500G"),
    ]);
    assert_eq!(
        props,
        vec![("PackageCode", "standard_500G"), ("Region", "cn-hangzhou")]
    );
    let modules = order::configured_modules(&defs, &props);
    assert_eq!(
        modules,
        vec![(
            "PackageCode".into(),
            "PackageCode:standard_500G".into(),
            "Month".into()
        )]
    );
    let params = order::bss_price_params(
        "oss",
        true,
        "NewOrder",
        12,
        Some("cn-hangzhou"),
        None,
        &modules,
    );
    assert!(params.contains(&("ServicePeriodQuantity".into(), "12".into())));
    assert!(params.contains(&(
        "ModuleList.1.Config".into(),
        "PackageCode:standard_500G".into()
    )));
}

#[test]
fn the_memory_cap_stops_a_memory_bomb() {
    let m = misbehave("memory");
    let o = order(
        customer("acme", "enterprise"),
        Intent::Quote,
        vec![line("a", "oss", "PackageCode", "1", 1)],
    );
    let started = Instant::now();
    let err = m.quote(&o).expect_err("stopped");
    assert_eq!(
        err.kind,
        FailureKind::Memory,
        "{err} after {:?}",
        started.elapsed()
    );
    assert!(err.message.contains("32 MiB"), "{err}");
}

#[test]
fn a_module_counts_in_the_registry_it_is_given() {
    // The module keeps its counters resolved for one registry; another
    // registry (a test's, or after a restart of the metrics) must still get
    // its own counts, never the first one's.
    let m = misbehave("ok");
    let o = order(
        customer("acme", "enterprise"),
        Intent::Quote,
        vec![line("a", "oss", "PackageCode", "1", 1)],
    );
    let first = crate::metrics::Metrics::new();
    let second = crate::metrics::Metrics::new();
    m.quote_metered(&o, &first).expect("ok");
    m.quote_metered(&o, &second).expect("ok");
    m.quote_metered(&o, &second).expect("ok");
    let ok =
        |n| format!(r#"tollgate_pricing_calls_total{{module="misbehave@0.0.1",outcome="ok"}} {n}"#);
    assert!(first.encode().contains(&ok(1)), "{}", first.encode());
    assert!(second.encode().contains(&ok(2)), "{}", second.encode());
}

// ---------------------------------------------------------- quote cache

#[test]
fn identical_orders_are_answered_from_the_quote_cache() {
    let m = reference();
    assert!(m.caches_quotes());
    let metrics = crate::metrics::Metrics::new();
    let o = order(
        customer("acme", "enterprise"),
        Intent::Quote,
        vec![line("a", "ecs", "InstanceType", "100", 2)],
    );
    let first = m.quote_metered(&o, &metrics).expect("priced");
    assert_eq!(m.cached_quotes(), 1);
    let second = m.quote_metered(&o, &metrics).expect("priced");
    assert_eq!(first, second, "the cached answer is the module's answer");
    assert_eq!(
        m.quote_uncached(&o).expect("priced"),
        first,
        "and the module still gives it"
    );
    let text = metrics.encode();
    assert!(
        text.contains(
            r#"tollgate_pricing_quote_cache_hits_total{module="reference-pricing@0.1.0"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"tollgate_pricing_calls_total{module="reference-pricing@0.1.0",outcome="ok"} 2"#
        ),
        "{text}"
    );
    // Another customer's identical order is its own entry, priced by the
    // module for that customer (a different group, a different price).
    let mut other = o.clone();
    other.customer = customer("globex", "startup");
    let theirs = m.quote(&other).expect("priced");
    assert_eq!(m.cached_quotes(), 2);
    assert_eq!(theirs, m.quote_uncached(&other).expect("priced"));
}

#[test]
fn the_cache_key_covers_the_customer_the_lines_and_amount_scales() {
    let base = order(
        customer("acme", "enterprise"),
        Intent::Quote,
        vec![line("a", "ecs", "InstanceType", "1.0", 1)],
    );
    let k = quote_cache::key(&base);
    assert_eq!(k, quote_cache::key(&base.clone()));
    let mut variants = Vec::new();
    let mut v = base.clone();
    v.customer.id = "globex".into();
    variants.push(v);
    let mut v = base.clone();
    v.customer.tags = vec!["vip".into()];
    variants.push(v);
    let mut v = base.clone();
    v.intent = Intent::Purchase;
    variants.push(v);
    let mut v = base.clone();
    v.lines[0].official = d("1.00");
    variants.push(v);
    let mut v = base.clone();
    v.lines[0].config = vec![("InstanceType".into(), "ecs.g6.large".into())];
    variants.push(v);
    let mut v = base.clone();
    v.lines[0].quantity = 2;
    variants.push(v);
    // Length prefixes: moving a byte between adjacent texts changes the key.
    let mut v = base.clone();
    v.customer.id = "acm".into();
    v.customer.uid = format!("e{}", v.customer.uid);
    variants.push(v);
    for v in &variants {
        assert_ne!(quote_cache::key(v), k, "{v:?}");
    }
}

#[test]
fn failures_are_never_remembered() {
    let m = misbehave_cached("trap");
    assert!(m.caches_quotes());
    let o = order(
        customer("acme", "enterprise"),
        Intent::Quote,
        vec![line("a", "oss", "PackageCode", "1", 1)],
    );
    for _ in 0..2 {
        let e = m.quote(&o).expect_err("trap");
        assert_eq!(e.kind, FailureKind::Trap);
    }
    assert_eq!(m.cached_quotes(), 0);
    let off = reference().without_quote_cache();
    assert!(!off.caches_quotes());
    off.quote(&o).expect("priced");
    assert_eq!(off.cached_quotes(), 0);
}
