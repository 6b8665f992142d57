use std::path::{Path, PathBuf};

use http::Method;

use super::*;

fn policies_catalog() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/catalog")
}

fn shipped() -> Catalog {
    Catalog::load(&policies_catalog()).unwrap_or_else(|d| panic!("{d}"))
}

fn codes_of(c: &Catalog, e: &Entry) -> Vec<String> {
    e.permissions
        .iter()
        .map(|id| c.code(*id).as_str().to_owned())
        .collect()
}

/// The seed's permission table (huawei-bss.md §2), written out again here
/// independently of `huawei.toml`: row, method, a concrete request path,
/// the SDK operation, and the codes that grant it (seed 004's `new|old`).
#[rustfmt::skip]
const SEED_TABLE: [(u32, &str, &str, &str, &[&str]); 27] = [
    (1, "POST", "/v2/bills/ratings/on-demand-resources", "ListOnDemandResourceRatings", &["bss:discount:view"]),
    (2, "POST", "/v2/bills/ratings/period-resources/subscribe-rate", "ListRateOnPeriodDetail", &["bss:discount:view"]),
    (3, "POST", "/v2/bills/ratings/period-resources/renew-rate", "ListRenewRateOnPeriod", &["bss:discount:view"]),
    (4, "GET", "/v2/accounts/customer-accounts/balances", "ShowCustomerAccountBalances", &["bss:balance:view"]),
    (5, "GET", "/v2/promotions/benefits/coupons", "ListSubCustomerCoupons", &["bss:coupon:view"]),
    (6, "GET", "/v2/orders/customer-orders", "ListCustomerOrders", &["bss:order:view"]),
    (7, "GET", "/v2/orders/customer-orders/details/CS2405010830ABCDE", "ShowCustomerOrderDetails", &["bss:order:view"]),
    (8, "PUT", "/v2/orders/customer-orders/cancel", "CancelCustomerOrder", &["bss:order:update"]),
    (9, "POST", "/v2/orders/customer-orders/pay", "PayOrders (v2)", &["bss:order:pay"]),
    (10, "GET", "/v2/orders/customer-orders/order-discounts", "ListOrderDiscounts", &["bss:discount:view"]),
    (11, "POST", "/v3/orders/customer-orders/pay", "PayOrders", &["bss:order:pay"]),
    (12, "GET", "/v2/orders/customer-orders/refund-orders", "ShowRefundOrderDetails", &["bss:order:view"]),
    (13, "POST", "/v2/orders/suscriptions/resources/query", "ListPayPerUseCustomerResources", &["bss:renewal:view", "bss:order:view"]),
    (14, "POST", "/v2/orders/subscriptions/resources/renew", "RenewalResources", &["bss:renewal:update"]),
    (15, "POST", "/v2/orders/subscriptions/resources/unsubscribe", "CancelResourcesSubscription", &["bss:unsubscribe:update", "bss:order:update"]),
    (16, "POST", "/v2/orders/subscriptions/resources/autorenew/2f39a7b6-0d0c-4d1e-9c3b-1234567890ab", "AutoRenewalResources", &["bss:renewal:update"]),
    (17, "DELETE", "/v2/orders/subscriptions/resources/autorenew/2f39a7b6-0d0c-4d1e-9c3b-1234567890ab", "CancelAutoRenewalResources", &["bss:renewal:update"]),
    (18, "POST", "/v2/orders/subscriptions/resources/to-on-demand", "UpdatePeriodToOnDemand", &["bss:renewal:update"]),
    (19, "POST", "/v3/payments/free-resources/query", "ListFreeResourceInfos", &["bss:bill:view"]),
    (20, "GET", "/v2/bills/customer-bills/free-resources-usage-records", "ListFreeResourcesUsageRecords", &["bss:bill:view", "bss:billDetail:view"]),
    (21, "POST", "/v2/payments/free-resources/usages/details/query", "ListFreeResourceUsages", &["bss:bill:view"]),
    (22, "POST", "/v2/bills/customer-bills/res-records/query", "ListCustomerselfResourceRecordDetails", &["bss:billDetail:view"]),
    (23, "GET", "/v1.0/0a7c3b2f3d80d4a20f7ac004cbdeaf1b/customer/account-mgr/bill/monthly-sum", "ShowCustomerMonthlySum (v1.0)", &["bss:bill:view"]),
    (24, "GET", "/v2/bills/customer-bills/res-fee-records", "ListCustomerselfResourceRecords", &["bss:bill:view"]),
    (25, "POST", "/v4/costs/cost-analysed-bills/query", "ListCosts", &["bss:costanalysis:view"]),
    (26, "POST", "/v2/enterprises/enterprise-projects/authority", "CreateEnterpriseProjectAuth", &["bss:enterpriseProjectFunction:update"]),
    (27, "GET", "/v1.0/0a7c3b2f3d80d4a20f7ac004cbdeaf1b/payments/intl-invoices", "ListIntlInvoices (v1.0)", &["bss:invoice:update"]),
];

#[test]
fn the_sdks_other_paths_need_their_rows_permission() {
    let c = shipped();
    // Today's SDK reads the monthly sums of row 23 on a v2 path: it must
    // need bss:bill:view like the row's v1.0 path, never be "unlisted".
    let v2 = c
        .huawei_route(&Method::GET, "/v2/bills/customer-bills/monthly-sum")
        .expect("the v2 monthly-sum path is routed");
    assert_eq!(v2.route.as_ref().map(|r| r.row), Some(23));
    let v1 = c
        .huawei_route(
            &Method::GET,
            "/v1.0/0a7c3b2f3d80d4a20f7ac004cbdeaf1b/customer/account-mgr/bill/monthly-sum",
        )
        .expect("v1.0");
    assert_eq!(codes_of(&c, v2), codes_of(&c, v1));
    // Listings still show one entry per row.
    assert_eq!(c.huawei_entries().count(), 27);
}

#[test]
fn every_row_of_the_huawei_permission_table_routes_to_its_codes() {
    let c = shipped();
    assert_eq!(c.huawei_entries().count(), 27);
    for (row, method, path, operation, codes) in SEED_TABLE {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let e = c
            .huawei_route(&method, path)
            .unwrap_or_else(|| panic!("row {row}: {method} {path} is not routed"));
        let route = e.route.as_ref().expect("huawei entries have routes");
        assert_eq!(route.row, row, "{method} {path}");
        assert_eq!(e.name, operation, "row {row}");
        assert_eq!(e.provider, Provider::Huawei);
        assert_eq!(codes_of(&c, e), codes.to_vec(), "row {row}");
        // A query string is not part of the path the caller passes, but a
        // trailing slash (the SDK's canonical form) is tolerated.
        let with_slash = format!("{path}/");
        assert_eq!(
            c.huawei_route(&method, &with_slash)
                .and_then(|e| e.route.as_ref())
                .map(|r| r.row),
            Some(row)
        );
    }
}

#[test]
fn huawei_routes_need_the_right_method_and_shape() {
    let c = shipped();
    // Same path, other method: unlisted.
    assert!(
        c.huawei_route(&Method::POST, "/v2/orders/customer-orders")
            .is_none()
    );
    // Rows 16 and 17 share a path and differ by method.
    let path = "/v2/orders/subscriptions/resources/autorenew/r-1";
    let rows: Vec<u32> = [Method::POST, Method::DELETE]
        .iter()
        .filter_map(|m| c.huawei_route(m, path)?.route.as_ref().map(|r| r.row))
        .collect();
    assert_eq!(rows, vec![16, 17]);
    assert!(matches!(
        c.huawei(&Method::GET, "/v2/bases/measurements"),
        HuaweiClass::Unlisted
    ));
    assert!(matches!(
        c.huawei(&Method::GET, "/v2/bases/../orders/customer-orders"),
        HuaweiClass::Malformed
    ));
    // The details row needs its id segment.
    assert!(
        c.huawei_route(&Method::GET, "/v2/orders/customer-orders/details")
            .is_none()
    );
}

/// The action names a sim module's `route` function matches.
fn sim_actions(source: &str) -> Vec<String> {
    let start = source.find("pub fn route(").expect("route fn");
    let body = &source[start..];
    let end = body.find("_ => return None").expect("route fallback");
    body[..end]
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let rest = l.strip_prefix('"')?;
            let (name, tail) = rest.split_once('"')?;
            tail.trim_start().starts_with("=>").then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn every_action_the_simulated_cloud_serves_is_catalogued_and_nothing_else() {
    let c = shipped();
    let served: Vec<(&str, Vec<String>)> = vec![
        (
            crate::sim::BSS_VERSION,
            [
                sim_actions(include_str!("../sim/bss.rs")),
                sim_actions(include_str!("../sim/reseller.rs")),
            ]
            .concat(),
        ),
        (
            crate::sim::ECS_VERSION,
            sim_actions(include_str!("../sim/ecs.rs")),
        ),
    ];
    let mut total = 0;
    for (version, actions) in &served {
        assert!(
            actions.len() >= 3,
            "parsed the sim's route table: {actions:?}"
        );
        for a in actions {
            total += 1;
            match c.aliyun(version, a) {
                AliyunClass::Listed(e) => {
                    assert_eq!(&e.name, a);
                    assert!(!e.permissions.is_empty());
                }
                other => panic!("{version} {a} is served by the sim but not catalogued: {other:?}"),
            }
        }
    }
    // And the catalog lists nothing the cloud does not serve.
    let listed = c
        .entries()
        .iter()
        .filter(|e| e.provider == Provider::Aliyun)
        .count();
    assert_eq!(listed, total, "catalogued actions no upstream serves");
}

#[test]
fn alibaba_classification_and_labels() {
    let c = shipped();
    let AliyunClass::Listed(e) = c.aliyun("2017-12-14", "QueryOrders") else {
        panic!("QueryOrders is listed");
    };
    assert_eq!(e.kind, Kind::Read);
    assert_eq!(codes_of(&c, e), vec!["bssapi:QueryOrders"]);
    // Case cannot dodge the permission.
    assert!(matches!(
        c.aliyun("2017-12-14", "queryorders"),
        AliyunClass::Listed(_)
    ));
    let AliyunClass::Listed(price) = c.aliyun("2017-12-14", "GetSubscriptionPrice") else {
        panic!("listed");
    };
    assert_eq!(
        codes_of(&c, price),
        vec!["bssapi:GetSubscriptionPrice", "bss:DescribePrice"]
    );
    assert!(matches!(
        c.aliyun("2017-12-14", "DescribeRegions"),
        AliyunClass::Unlisted(p) if p.ram_code == "bssapi"
    ));
    // An ECS action sent with BSS's Version is not BSS's.
    assert!(matches!(
        c.aliyun("2017-12-14", "RunInstances"),
        AliyunClass::Unlisted(_)
    ));
    assert!(matches!(
        c.aliyun("2099-01-01", "QueryOrders"),
        AliyunClass::UnknownProduct
    ));
    assert_eq!(c.aliyun_label("QUERYORDERS"), Some("QueryOrders"));
    assert_eq!(c.aliyun_label("DescribePrice"), Some("DescribePrice"));
    assert_eq!(c.aliyun_label("MadeUpAction"), None);
    assert_eq!(
        c.aliyun_by_name("DescribePrice", None)
            .map(|e| e.product.as_str()),
        Some("ecs")
    );
    assert!(
        c.aliyun_by_name("DescribePrice", Some("2017-12-14"))
            .is_none()
    );
}

#[test]
fn codes_are_shared_across_entries_and_found_by_the_case_rules() {
    let c = shipped();
    let view = c.find_code("bss:order:view").expect("catalogued");
    assert_eq!(c.find_code("bss:ORDER:View"), Some(view));
    assert_eq!(c.find_code("bss:order:vieww"), None);
    let rows: std::collections::BTreeSet<u32> = c
        .entries()
        .iter()
        .filter(|e| e.permissions.contains(&view))
        .filter_map(|e| e.route.as_ref().map(|r| r.row))
        .collect();
    // Rows 6, 7, 12 and (as the old alternative) 13, each with all its
    // routes (the SDKs' other paths).
    assert_eq!(rows.into_iter().collect::<Vec<_>>(), [6, 7, 12, 13]);
}

#[test]
fn the_built_in_catalog_is_the_shipped_one() {
    let built_in = Catalog::builtin().unwrap_or_else(|d| panic!("{d}"));
    let files = shipped();
    assert_eq!(built_in.codes(), files.codes());
    assert_eq!(built_in.entries().len(), files.entries().len());
}

fn problems(aliyun: &str, huawei: &str) -> Vec<String> {
    match Catalog::from_texts((Path::new("a.toml"), aliyun), (Path::new("h.toml"), huawei)) {
        Ok(_) => Vec::new(),
        Err(d) => d.0.iter().map(ToString::to_string).collect(),
    }
}

const PRODUCT: &str =
    "[[product]]\nname = \"bssopenapi\"\nversion = \"2017-12-14\"\nram_code = \"bssapi\"\n";

#[test]
fn catalog_errors_name_file_line_and_column() {
    let bad = format!(
        "{PRODUCT}\n[[action]]\nproduct = \"bssopenapi\"\naction = \"QueryOrders\"\nkind = \"read\"\npermission = \"BSSAPI:QueryOrders\"\n"
    );
    let p = problems(&bad, "");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("a.toml:10:14: error: action[0].permission: `BSSAPI:QueryOrders`: the service `BSSAPI` must be lower case"),
        "{p:?}"
    );

    let p = problems(
        &format!(
            "{PRODUCT}\n[[action]]\nproduct = \"rds\"\naction = \"X\"\nkind = \"read\"\npermission = \"rds:X\"\n"
        ),
        "",
    );
    assert!(
        p[0].contains("a.toml:7:11") && p[0].contains("unknown product `rds`"),
        "{p:?}"
    );

    // An unknown kind is a shape error, still placed.
    let p = problems(
        &format!(
            "{PRODUCT}\n[[action]]\nproduct = \"bssopenapi\"\naction = \"X\"\nkind = \"spend\"\npermission = \"bssapi:X\"\n"
        ),
        "",
    );
    assert!(
        p[0].starts_with("a.toml:9:8: error:") && p[0].contains("spend"),
        "{p:?}"
    );

    let dup = format!(
        "{PRODUCT}\n[[action]]\nproduct = \"bssopenapi\"\naction = \"QueryOrders\"\nkind = \"read\"\npermission = \"bssapi:QueryOrders\"\n\n[[action]]\nproduct = \"bssopenapi\"\naction = \"queryorders\"\nkind = \"read\"\npermission = \"bssapi:QueryOrders\"\n"
    );
    let p = problems(&dup, "");
    assert!(
        p[0].contains("a.toml:14:10") && p[0].contains("listed twice"),
        "{p:?}"
    );

    // A 3-part code in the Alibaba file, a 2-part one in the Huawei file.
    let p = problems(
        &format!(
            "{PRODUCT}\n[[action]]\nproduct = \"bssopenapi\"\naction = \"X\"\nkind = \"read\"\npermission = \"bss:order:view\"\n"
        ),
        "[[api]]\nrow = 1\noperation = \"X\"\nmethod = \"GET\"\npath = \"/v2/x\"\nkind = \"read\"\npermission = \"bss:View\"\n",
    );
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].contains("Alibaba RAM actions are `service:ActionName`"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("h.toml:7:14") && p[1].contains("Huawei codes"),
        "{p:?}"
    );
}

#[test]
fn huawei_route_errors_are_placed() {
    let api = |row: u32, method: &str, path: &str| {
        format!(
            "[[api]]\nrow = {row}\noperation = \"X\"\nmethod = \"{method}\"\npath = \"{path}\"\nkind = \"read\"\npermission = \"bss:order:view\"\n\n"
        )
    };
    let p = problems("", &api(1, "FETCH", "/v2/x"));
    assert!(
        p[0].starts_with("h.toml:4:10") && p[0].contains("not one of GET"),
        "{p:?}"
    );
    let p = problems("", &api(1, "GET", "/v2/x/**"));
    assert!(
        p[0].starts_with("h.toml:5:8") && p[0].contains("not allowed"),
        "{p:?}"
    );
    let two = format!(
        "{}{}",
        api(1, "GET", "/v2/a/{id}"),
        api(2, "GET", "/v2/a/list")
    );
    let p = problems("", &two);
    assert!(
        p[0].starts_with("h.toml:13:8") && p[0].contains("overlaps row 1"),
        "{p:?}"
    );
    let twice = format!("{}{}", api(3, "GET", "/v2/a"), api(3, "GET", "/v2/b"));
    let p = problems("", &twice);
    assert!(
        p[0].starts_with("h.toml:10:7") && p[0].contains("row 3 is listed twice"),
        "{p:?}"
    );
    // Unknown fields are refused (a typo is not silently ignored).
    let p = problems("", "[[api]]\nrow = 1\nrows = 2\n");
    assert!(
        p[0].contains("h.toml:3:1") && p[0].contains("unknown field"),
        "{p:?}"
    );
}
