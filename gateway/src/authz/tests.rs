//! The evaluation table: wildcards, deny-wins, alternatives, conditions,
//! groups, unlisted and unserved calls; the refusal shapes; `explain`; and
//! the indexed evaluation checked against a naive one.

use std::net::SocketAddr;
use std::sync::Arc;

use http::StatusCode;

use super::testkit::*;
use super::*;
use crate::auth::Authenticated;
use crate::metrics::Metrics;

type Row<'a> = (
    &'a str,
    Call<'a>,
    &'a str,
    Verdict,
    Option<(&'a str, usize)>,
);

/// Runs rows against one policy set.
#[track_caller]
fn table(a: &Authz, rows: &[Row<'_>]) {
    for (name, call, customer, effect, by) in rows {
        let d = decide(a, *call, ctx(a, customer));
        assert_eq!(d.effect, *effect, "{name}: {d:?}");
        assert_eq!(
            d.by.map(|b| (b.policy, b.statement_index)),
            *by,
            "{name}: deciding statement"
        );
    }
}

#[test]
fn wildcards_and_the_two_action_forms() {
    let a = attached_to_all(
        &[
            &policy("Allow", &["bssapi:Query*", "bss:*:view"]),
            &policy("Allow", &["ecs:Describe*"]),
        ],
        "allow",
    );
    use Verdict::*;
    table(
        &a,
        &[
            (
                "prefix glob",
                Call::Bss("QueryOrders"),
                "ops-1",
                Allow,
                Some(("p0", 0)),
            ),
            (
                "prefix glob, other api",
                Call::Bss("QueryAvailableInstances"),
                "ops-1",
                Allow,
                Some(("p0", 0)),
            ),
            (
                "glob does not reach Get*",
                Call::Bss("GetOrderDetail"),
                "ops-1",
                ImplicitDeny,
                None,
            ),
            (
                "ecs describe",
                Call::Ecs("DescribeInstances"),
                "ops-1",
                Allow,
                Some(("p1", 0)),
            ),
            (
                "ecs describe price",
                Call::Ecs("DescribePrice"),
                "ops-1",
                Allow,
                Some(("p1", 0)),
            ),
            (
                "ecs purchase",
                Call::Ecs("RunInstances"),
                "ops-1",
                ImplicitDeny,
                None,
            ),
            (
                "huawei view",
                Call::Huawei("GET", "/v2/orders/customer-orders"),
                "ops-1",
                Allow,
                Some(("p0", 0)),
            ),
            (
                "huawei update",
                Call::Huawei("PUT", "/v2/orders/customer-orders/cancel"),
                "ops-1",
                ImplicitDeny,
                None,
            ),
            // `bss:*:view` does not reach the 2-part `bss:DescribePrice`.
            (
                "3-part pattern, 2-part code",
                Call::Codes(&["bss:DescribePrice"]),
                "ops-1",
                ImplicitDeny,
                None,
            ),
            // Case of the request's action name does not matter.
            (
                "case-insensitive action",
                Call::Bss("QUERYORDERS"),
                "ops-1",
                Allow,
                Some(("p0", 0)),
            ),
        ],
    );
}

#[test]
fn alibaba_alternatives_bss_and_bssapi() {
    let legacy = attached_to_all(&[&policy("Allow", &["bss:DescribePrice"])], "allow");
    use Verdict::*;
    table(
        &legacy,
        &[
            (
                "legacy bss: name grants subscription price",
                Call::Bss("GetSubscriptionPrice"),
                "ops-1",
                Allow,
                Some(("p0", 0)),
            ),
            (
                "and pay-as-you-go price",
                Call::Bss("GetPayAsYouGoPrice"),
                "ops-1",
                Allow,
                Some(("p0", 0)),
            ),
            (
                "not ECS's DescribePrice",
                Call::Ecs("DescribePrice"),
                "ops-1",
                ImplicitDeny,
                None,
            ),
        ],
    );
    let denied = attached_to_all(
        &[
            &policy("Allow", &["bssapi:GetSubscriptionPrice"]),
            &policy("Deny", &["bss:DescribePrice"]),
        ],
        "allow",
    );
    let d = decide(
        &denied,
        Call::Bss("GetSubscriptionPrice"),
        ctx(&denied, "ops-1"),
    );
    expect(&d, Deny, Some(("p1", 0)));
    assert_eq!(
        d.code.map(|c| denied.catalog().code(c).as_str()),
        Some("bss:DescribePrice")
    );
}

#[test]
fn deny_wins_across_policies_customers_and_groups() {
    // p0 allows everything to the customer; p1 denies purchases to the group.
    let a = build(
        &[
            &policy("Allow", &["*"]),
            &policy("Deny", &["bssapi:CreateInstance", "bss:order:pay"]),
        ],
        r#"
[[attach]]
policy = "p0"
customers = ["dev-1", "ops-1"]
[[attach]]
policy = "p1"
groups = ["dev"]
"#,
    );
    use Verdict::*;
    table(
        &a,
        &[
            (
                "group deny beats customer allow",
                Call::Bss("CreateInstance"),
                "dev-1",
                Deny,
                Some(("p1", 0)),
            ),
            (
                "other group unaffected",
                Call::Bss("CreateInstance"),
                "ops-1",
                Allow,
                Some(("p0", 0)),
            ),
            (
                "deny is per code",
                Call::Bss("QueryOrders"),
                "dev-1",
                Allow,
                Some(("p0", 0)),
            ),
            (
                "huawei pay denied to the group",
                Call::Huawei("POST", "/v2/orders/customer-orders/pay"),
                "dev-1",
                Deny,
                Some(("p1", 0)),
            ),
            (
                "no attachments at all",
                Call::Bss("QueryOrders"),
                "solo",
                ImplicitDeny,
                None,
            ),
            (
                "group attachments reach members",
                Call::Bss("CreateInstance"),
                "intern-1",
                Deny,
                Some(("p1", 0)),
            ),
            (
                "a deny grants nothing",
                Call::Bss("QueryOrders"),
                "intern-1",
                ImplicitDeny,
                None,
            ),
        ],
    );
}

#[test]
fn conditions_on_every_supplied_key() {
    let office = conditional(
        "Allow",
        &["bssapi:QueryOrders"],
        r#"{"IpAddress": {"g:SourceIp": ["203.0.113.0/24"]}}"#,
    );
    let window = conditional(
        "Allow",
        &["bssapi:GetOrderDetail"],
        r#"{"DateGreaterThanEquals": {"g:CurrentTime": ["2026-01-01T00:00:00Z"]},
            "DateLessThan": {"g:CurrentTime": ["2026-05-01T08:00:00Z"]}}"#,
    );
    let shop_only = conditional(
        "Deny",
        &["bssapi:CreateInstance"],
        r#"{"Bool": {"tollgate:Frontend": ["false"]}}"#,
    );
    let buy = policy("Allow", &["bssapi:CreateInstance", "ecs:RunInstances"]);
    let regions = conditional(
        "Deny",
        &["ecs:RunInstances"],
        r#"{"StringNotEqualsIfExists": {"tollgate:Region": ["cn-hangzhou", "cn-shanghai"]}}"#,
    );
    let purchases_by_kind = conditional(
        "Deny",
        &["*"],
        r#"{"StringEquals": {"tollgate:Kind": ["purchase"], "tollgate:CustomerGroup": ["dev"]}}"#,
    );
    let a = attached_to_all(
        &[
            &office,
            &window,
            &shop_only,
            &buy,
            &regions,
            &purchases_by_kind,
        ],
        "allow",
    );
    let at = |customer: &'static str| ctx(&a, customer);

    // IP: inside the range, outside it, unknown.
    let mut c = at("ops-1");
    expect(
        &decide(&a, Call::Bss("QueryOrders"), c),
        Verdict::Allow,
        Some(("p0", 0)),
    );
    c.source_ip = Some("198.51.100.1".parse().expect("ip"));
    expect(
        &decide(&a, Call::Bss("QueryOrders"), c),
        Verdict::ImplicitDeny,
        None,
    );
    c.source_ip = None;
    expect(
        &decide(&a, Call::Bss("QueryOrders"), c),
        Verdict::ImplicitDeny,
        None,
    );

    // Time: after the window closed (the fixed clock is 08:30).
    let mut c = at("ops-1");
    expect(
        &decide(&a, Call::Bss("GetOrderDetail"), c),
        Verdict::ImplicitDeny,
        None,
    );
    c.now = time::macros::datetime!(2026-04-30 12:00:00 UTC);
    expect(
        &decide(&a, Call::Bss("GetOrderDetail"), c),
        Verdict::Allow,
        Some(("p1", 0)),
    );

    // Frontend: own key denied, the shop frontend allowed.
    let mut c = at("ops-1");
    expect(
        &decide(&a, Call::Bss("CreateInstance"), c),
        Verdict::Deny,
        Some(("p2", 0)),
    );
    c.frontend = true;
    expect(
        &decide(&a, Call::Bss("CreateInstance"), c),
        Verdict::Allow,
        Some(("p3", 0)),
    );

    // Region, with IfExists: the Deny applies to an unlisted region and to a
    // call naming none (a missing key makes `…IfExists` true).
    let mut c = at("ops-1");
    c.region = Some("us-west-1");
    expect(
        &decide(&a, Call::Ecs("RunInstances"), c),
        Verdict::Deny,
        Some(("p4", 0)),
    );
    c.region = Some("cn-shanghai");
    expect(
        &decide(&a, Call::Ecs("RunInstances"), c),
        Verdict::Allow,
        Some(("p3", 0)),
    );
    c.region = None;
    expect(
        &decide(&a, Call::Ecs("RunInstances"), c),
        Verdict::Deny,
        Some(("p4", 0)),
    );

    // Kind and group together (keys under one operator AND): purchases are
    // denied to group dev, only purchases, only dev.
    let mut c = at("dev-1");
    c.frontend = true;
    c.region = Some("cn-hangzhou");
    expect(
        &decide(&a, Call::Ecs("RunInstances"), c),
        Verdict::Deny,
        Some(("p5", 0)),
    );
    expect(
        &decide(&a, Call::Bss("QueryOrders"), at("dev-1")),
        Verdict::Allow,
        Some(("p0", 0)),
    );
    let mut c = at("ops-1");
    c.region = Some("cn-hangzhou");
    expect(
        &decide(&a, Call::Ecs("RunInstances"), c),
        Verdict::Allow,
        Some(("p3", 0)),
    );
}

#[test]
fn service_name_condition_sees_the_code_checked() {
    // Deny every bssapi: action unless via the frontend; bss:* stays allowed.
    let a = attached_to_all(
        &[
            &policy("Allow", &["*"]),
            &conditional(
                "Deny",
                &["*"],
                r#"{"StringEquals": {"g:ServiceName": ["bssapi"]}, "Bool": {"tollgate:Frontend": ["false"]}}"#,
            ),
        ],
        "allow",
    );
    let c = ctx(&a, "ops-1");
    expect(
        &decide(&a, Call::Bss("QueryOrders"), c),
        Verdict::Deny,
        Some(("p1", 0)),
    );
    // GetSubscriptionPrice: bssapi: code denied → the whole call is refused.
    expect(
        &decide(&a, Call::Bss("GetSubscriptionPrice"), c),
        Verdict::Deny,
        Some(("p1", 0)),
    );
    expect(
        &decide(&a, Call::Ecs("DescribePrice"), c),
        Verdict::Allow,
        Some(("p0", 0)),
    );
    expect(
        &decide(&a, Call::Huawei("GET", "/v2/orders/customer-orders"), c),
        Verdict::Allow,
        Some(("p0", 0)),
    );
}

#[test]
fn an_unconditional_statement_decides_before_conditional_ones() {
    // p0 Statement[0]: conditional deny that does not hold; Statement[1]:
    // unconditional allow; p1: unconditional deny of another code.
    let p0 = r#"{"Version": "1.1", "Statement": [
        {"Effect": "Deny", "Action": ["bssapi:QueryOrders"],
         "Condition": {"StringEquals": {"g:UserName": ["someone-else"]}}},
        {"Effect": "Allow", "Action": ["bssapi:*"]}
    ]}"#;
    let a = attached_to_all(&[p0, &policy("Deny", &["bssapi:CancelOrder"])], "allow");
    let c = ctx(&a, "ops-1");
    expect(
        &decide(&a, Call::Bss("QueryOrders"), c),
        Verdict::Allow,
        Some(("p0", 1)),
    );
    expect(
        &decide(&a, Call::Bss("CancelOrder"), c),
        Verdict::Deny,
        Some(("p1", 0)),
    );
    let by = decide(&a, Call::Bss("QueryOrders"), c)
        .by
        .expect("statement");
    assert_eq!(by.file, std::path::Path::new("perm/p0.json"));
    assert_eq!(by.line, 4, "the statement's line in its file");
}

#[test]
fn unlisted_apis_follow_the_operators_rule_and_unserved_ones_are_refused() {
    let allow_all = policy("Allow", &["*"]);
    let seed = attached_to_all(&[&allow_all], "allow");
    let d = decide(&seed, Call::Bss("DescribeRegions"), ctx(&seed, "solo"));
    expect(&d, Verdict::NotListed, None);
    assert!(d.allowed, "seed rule: no fine-grained check");
    let d = decide(
        &seed,
        Call::Huawei("GET", "/v2/bases/measurements"),
        ctx(&seed, "solo"),
    );
    expect(&d, Verdict::NotListed, None);
    assert!(d.allowed);
    // A product the catalog does not know is unlisted too.
    let d = seed.decide_aliyun("2013-05-28", "DescribeDBInstances", ctx(&seed, "solo"));
    assert!(d.allowed && d.effect == Verdict::NotListed);

    let strict = attached_to_all(&[&allow_all], "deny");
    let d = decide(&strict, Call::Bss("DescribeRegions"), ctx(&strict, "ops-1"));
    expect(&d, Verdict::NotListed, None);
    assert!(!d.allowed, "operator chose deny");
    assert_eq!(d.label(), "not_listed_deny");

    // A path no API can have is refused even under `*`.
    let d = decide(
        &seed,
        Call::Huawei("GET", "/v2/orders/x/../customer-orders"),
        ctx(&seed, "ops-1"),
    );
    expect(&d, Verdict::Unserved, None);
    // And a listed path written oddly is still checked as the listed API.
    let none = attached_to_all(&[], "allow");
    let d = decide(
        &none,
        Call::Huawei("GET", "//v2/orders/customer%2Dorders/"),
        ctx(&none, "ops-1"),
    );
    expect(&d, Verdict::ImplicitDeny, None);
}

#[test]
fn labels_are_bounded() {
    let a = attached_to_all(
        &[
            &policy("Allow", &["bssapi:QueryOrders"]),
            &policy("Deny", &["bssapi:CancelOrder"]),
        ],
        "allow",
    );
    let c = ctx(&a, "ops-1");
    assert_eq!(decide(&a, Call::Bss("QueryOrders"), c).label(), "allow");
    assert_eq!(decide(&a, Call::Bss("CancelOrder"), c).label(), "deny");
    assert_eq!(
        decide(&a, Call::Bss("GetOrderDetail"), c).label(),
        "implicit_deny"
    );
    assert_eq!(
        decide(&a, Call::Bss("DescribeRegions"), c).label(),
        "not_listed_allow"
    );
    assert_eq!(Decision::unserved().label(), "unserved");
}

fn unsigned_call(action: &str, extra: &str) -> crate::aliyun::AliyunCall {
    let uri = format!(
        "/?Action={action}&Version=2017-12-14&AccessKeyId=AK&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&SignatureNonce=n1&Timestamp=2026-05-01T08:30:00Z&Signature=x{extra}"
    );
    let (parts, ()) = http::Request::get(uri)
        .header("host", "tollgate.test")
        .body(())
        .expect("request")
        .into_parts();
    crate::aliyun::AliyunCall::parse(&parts, bytes::Bytes::new()).expect("parses")
}

#[test]
fn the_request_path_check_refuses_in_alibabas_format_and_counts() {
    let a = attached_to_all(
        &[&conditional(
            "Allow",
            &["bssapi:GetSubscriptionPrice"],
            r#"{"StringEquals": {"tollgate:Region": ["cn-hangzhou"]}}"#,
        )],
        "allow",
    );
    let metrics = Metrics::new();
    let who = Authenticated {
        access_key_id: "AK".into(),
        customer: Arc::clone(a.customer("dev-1").expect("customer")),
        frontend: None,
    };
    let peer: SocketAddr = "203.0.113.7:5000".parse().expect("peer");
    let err = a
        .check_aliyun(
            &unsigned_call("QueryOrders", ""),
            &who,
            peer,
            &metrics,
            "REQ",
        )
        .expect_err("no policy allows QueryOrders");
    assert_eq!(err.status, StatusCode::FORBIDDEN);
    assert_eq!(err.code, "Forbidden.RAM");
    assert!(
        err.message.contains("bssapi:QueryOrders"),
        "{}",
        err.message
    );
    assert_eq!(err.reason, "permission");
    let denied = err.denied.as_deref().expect("detail");
    assert_eq!(denied.action, "bssapi:QueryOrders");
    assert!(!denied.explicit);
    assert_eq!(denied.principal_uid, "3000000000000002");
    assert_eq!(denied.principal_name, "dev-1");

    // The region comes from the call.
    let err = a
        .check_aliyun(
            &unsigned_call("GetSubscriptionPrice", "&Region=cn-beijing"),
            &who,
            peer,
            &metrics,
            "REQ",
        )
        .expect_err("wrong region");
    // Alternatives are named in the message, the first one in the detail.
    assert!(
        err.message
            .contains("bssapi:GetSubscriptionPrice (or bss:DescribePrice)"),
        "{}",
        err.message
    );
    assert_eq!(
        err.denied.as_deref().map(|d| d.action.as_str()),
        Some("bssapi:GetSubscriptionPrice")
    );
    a.check_aliyun(
        &unsigned_call("GetSubscriptionPrice", "&Region=cn-hangzhou"),
        &who,
        peer,
        &metrics,
        "REQ",
    )
    .expect("allowed in cn-hangzhou");
    // Unlisted: allowed by the seed rule, and counted as such.
    a.check_aliyun(
        &unsigned_call("DescribeRegions", ""),
        &who,
        peer,
        &metrics,
        "REQ",
    )
    .expect("unlisted");

    let m = metrics.encode();
    assert!(
        m.contains(r#"tollgate_authz_decisions_total{effect="implicit_deny"} 2"#),
        "{m}"
    );
    assert!(
        m.contains(r#"tollgate_authz_decisions_total{effect="allow"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"tollgate_authz_decisions_total{effect="not_listed_allow"} 1"#),
        "{m}"
    );

    // Unlisted under "deny": named with the product's RAM code.
    let strict = attached_to_all(&[], "deny");
    let err = strict
        .check_aliyun(
            &unsigned_call("DescribeRegions", ""),
            &who,
            peer,
            &metrics,
            "REQ",
        )
        .expect_err("unlisted refused");
    assert_eq!(
        err.denied.as_deref().map(|d| d.action.as_str()),
        Some("bssapi:DescribeRegions")
    );
}

#[test]
fn an_explicit_deny_says_so() {
    let a = attached_to_all(
        &[
            &policy("Allow", &["*"]),
            &policy("Deny", &["bssapi:CancelOrder"]),
        ],
        "allow",
    );
    let who = Authenticated {
        access_key_id: "AK".into(),
        customer: Arc::clone(a.customer("ops-1").expect("customer")),
        frontend: None,
    };
    let err = a
        .check_aliyun(
            &unsigned_call("CancelOrder", ""),
            &who,
            "127.0.0.1:1".parse().expect("peer"),
            &Metrics::new(),
            "REQ",
        )
        .expect_err("denied");
    assert!(err.message.contains("explicitly denied"), "{}", err.message);
    assert!(err.denied.as_deref().is_some_and(|d| d.explicit));
}

#[test]
fn huawei_refusals_are_cbc_0151_with_403() {
    let a = attached_to_all(&[&policy("Allow", &["bss:bill:view"])], "allow");
    let metrics = Metrics::new();
    let customer = a.customer("ops-1").expect("customer");
    let peer: SocketAddr = "203.0.113.7:5000".parse().expect("peer");
    let c = context(customer, false, peer, None);
    let err = a
        .check_huawei(
            &http::Method::GET,
            "/v2/orders/customer-orders",
            c,
            &metrics,
            "REQ",
        )
        .expect_err("no order:view");
    assert_eq!(err.status, StatusCode::FORBIDDEN);
    assert_eq!(err.code, "CBC.0151");
    assert!(err.message.contains("bss:order:view"), "{}", err.message);
    let body = crate::huawei::envelope::error_body(&err, "req");
    assert_eq!(body["error_code"], "CBC.0151");
    assert!(
        body["error_msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("Access denied"))
    );
    a.check_huawei(
        &http::Method::GET,
        "/v2/bills/customer-bills/res-fee-records",
        c,
        &metrics,
        "REQ",
    )
    .expect("bill:view granted");
    let err = a
        .check_huawei(
            &http::Method::GET,
            "/v2/../v2/bills/customer-bills/res-fee-records",
            c,
            &metrics,
            "REQ",
        )
        .expect_err("unserved");
    assert_eq!(err.code, "CBC.0151");
}

#[test]
fn checks_are_off_without_policies() {
    let catalog = catalog();
    let a = Authz::disabled(catalog, &customers());
    let who = Authenticated {
        access_key_id: "AK".into(),
        customer: Arc::clone(a.customer("solo").expect("customer")),
        frontend: None,
    };
    let metrics = Metrics::new();
    a.check_aliyun(
        &unsigned_call("QueryOrders", ""),
        &who,
        "127.0.0.1:1".parse().expect("peer"),
        &metrics,
        "R",
    )
    .expect("off");
    assert!(
        !metrics.encode().contains("authz_decisions_total{"),
        "nothing counted"
    );
    let e = a
        .explain(&explain::Query {
            customer: "solo",
            action: "QueryOrders",
            ..Default::default()
        })
        .expect("explains");
    assert!(e.allowed && e.reason.contains("off"), "{e}");
}

#[test]
fn explain_names_the_deciding_statement_and_every_other() {
    let a = attached_to_all(
        &[
            &conditional(
                "Allow",
                &["bssapi:Query*"],
                r#"{"StringStartWith": {"g:UserName": ["ops"]}}"#,
            ),
            &policy("Deny", &["bssapi:CancelOrder"]),
        ],
        "allow",
    );
    let q = |customer, action| explain::Query {
        customer,
        action,
        ..Default::default()
    };
    let e = a.explain(&q("ops-1", "QueryOrders")).expect("explains");
    assert!(e.allowed);
    assert_eq!(e.effect, Verdict::Allow);
    assert_eq!(e.requires, vec!["bssapi:QueryOrders"]);
    let by = e.decided_by.as_ref().expect("decider");
    assert_eq!(
        (by.policy.as_str(), by.statement_index, by.file.as_str()),
        ("p0", 0, "perm/p0.json")
    );
    assert_eq!(e.policies.len(), 2);
    let s0 = &e.policies[0].statements[0];
    assert!(s0.applies);
    assert_eq!(s0.matched, vec!["bssapi:Query* → bssapi:QueryOrders"]);
    assert_eq!(s0.conditions[0].request_value.as_deref(), Some("ops-1"));
    assert!(e.policies[1].statements[0].matched.is_empty());
    let text = e.to_string();
    assert!(
        text.contains("decided by perm/p0.json:1 Statement[0] (Allow in policy `p0`)"),
        "{text}"
    );

    let e = a.explain(&q("dev-1", "QueryOrders")).expect("explains");
    assert_eq!(e.effect, Verdict::ImplicitDeny);
    assert!(e.decided_by.is_none());
    assert!(!e.policies[0].statements[0].applies);
    assert!(e.to_string().contains("a condition does not hold"), "{e}");

    // A permission code, a Huawei call, an unlisted action.
    let e = a
        .explain(&q("ops-1", "bssapi:CancelOrder"))
        .expect("explains");
    assert_eq!(e.effect, Verdict::Deny);
    assert_eq!(e.decided_by.as_ref().map(|d| d.policy.as_str()), Some("p1"));
    let e = a
        .explain(&q("ops-1", "GET /v2/orders/customer-orders"))
        .expect("explains");
    assert_eq!(e.provider, Some(crate::catalog::Provider::Huawei));
    assert!(e.call.contains("ListCustomerOrders, row 6"), "{}", e.call);
    assert_eq!(e.effect, Verdict::ImplicitDeny);
    let e = a.explain(&q("ops-1", "DescribeRegions")).expect("explains");
    assert_eq!(e.effect, Verdict::NotListed);
    assert!(e.allowed);

    // Errors name the problem.
    assert!(
        a.explain(&q("nobody", "QueryOrders"))
            .expect_err("customer")
            .contains("unknown customer")
    );
    assert!(
        a.explain(&q("ops-1", "bss:order:vieww"))
            .expect_err("code")
            .contains("not a permission code")
    );
    // JSON for the admin API.
    let json = serde_json::to_value(a.explain(&q("ops-1", "QueryOrders")).expect("explains"))
        .expect("json");
    assert_eq!(json["effect"], "allow");
    assert_eq!(json["decided_by"]["statement_index"], 0);
}

/// A naive evaluator written straight from huawei-iam-policy.md §3 (every
/// attached statement, every pattern, no index), against the indexed one on
/// generated policy sets.
#[test]
fn the_index_decides_like_the_naive_algorithm() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % u64::try_from(n).unwrap_or(1)).unwrap_or(0)
    };
    let patterns = [
        "*",
        "bssapi:*",
        "bssapi:Query*",
        "bssapi:*Order*",
        "bss:*",
        "bss:DescribePrice",
        "ecs:*",
        "ecs:Describe*",
        "bss:*:view",
        "bss:order:*",
        "bss:*:*",
        "*:*:*",
        "bssapi:QueryOrders",
        "bss:order:view",
        "bss:renewal:update",
        "bssapi:CreateInstance",
    ];
    let conditions = [
        "",
        r#", "Condition": {"StringStartWith": {"g:UserName": ["ops"]}}"#,
        r#", "Condition": {"StringEquals": {"tollgate:CustomerGroup": ["dev"]}}"#,
        r#", "Condition": {"Bool": {"tollgate:Frontend": ["true"]}}"#,
        r#", "Condition": {"IpAddress": {"g:SourceIp": ["203.0.113.0/24"]}}"#,
    ];
    for round in 0..20 {
        let mut texts = Vec::new();
        for _ in 0..(2 + next(5)) {
            let mut statements = Vec::new();
            for _ in 0..(1 + next(4)) {
                let effect = if next(4) == 0 { "Deny" } else { "Allow" };
                let acts: Vec<String> = (0..(1 + next(3)))
                    .map(|_| format!("\"{}\"", patterns[next(patterns.len())]))
                    .collect();
                statements.push(format!(
                    r#"{{"Effect": "{effect}", "Action": [{}]{}}}"#,
                    acts.join(", "),
                    conditions[next(conditions.len())]
                ));
            }
            texts.push(format!(
                r#"{{"Version": "1.1", "Statement": [{}]}}"#,
                statements.join(", ")
            ));
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut attach = String::new();
        for i in 0..refs.len() {
            let target = match next(3) {
                0 => "customers = [\"ops-1\", \"dev-1\"]",
                1 => "groups = [\"dev\"]",
                _ => "groups = [\"ops\"]\ncustomers = [\"intern-1\"]",
            };
            attach.push_str(&format!("[[attach]]\npolicy = \"p{i}\"\n{target}\n"));
        }
        let a = build(&refs, &attach);
        let set = a.policies().expect("set");
        for customer in ["ops-1", "dev-1", "intern-1", "solo"] {
            for frontend in [false, true] {
                let mut c = ctx(&a, customer);
                c.frontend = frontend;
                for entry in a.catalog().entries() {
                    let got = eval::evaluate(set, a.catalog(), &entry.permissions, &c);
                    let want = naive(&a, &entry.permissions, &c);
                    assert_eq!(
                        got.effect, want,
                        "round {round}, {customer}, {}",
                        entry.name
                    );
                    if let Some(by) = got.by {
                        // The reported statement really applies.
                        let p = set
                            .policies()
                            .iter()
                            .find(|p| p.name == by.policy)
                            .expect("policy");
                        let st = &p.statements[by.statement_index];
                        let code = a.catalog().code(got.code.expect("code"));
                        assert!(st.actions.iter().any(|x| x.matches(code)));
                        assert!(st.applies(&c, code.service()));
                    }
                }
            }
        }
    }
}

fn naive(a: &Authz, codes: &[crate::catalog::CodeId], c: &RequestContext<'_>) -> Verdict {
    let set = a.policies().expect("set");
    let mut attached: Vec<u32> = Vec::new();
    if let Some(p) = set.customer(c.customer_id) {
        attached.extend(&p.policies);
    }
    if let Some(p) = c.group.and_then(|g| set.group(g)) {
        attached.extend(&p.policies);
    }
    let applies = |effect: policy::Effect| {
        attached.iter().any(|&pi| {
            set.policies()[pi as usize].statements.iter().any(|st| {
                st.effect == effect
                    && codes.iter().any(|&code| {
                        let code = a.catalog().code(code);
                        st.actions.iter().any(|x| x.matches(code))
                            && st.conditions.iter().all(|k| k.holds(c, code.service()))
                    })
            })
        })
    };
    if applies(policy::Effect::Deny) {
        Verdict::Deny
    } else if applies(policy::Effect::Allow) {
        Verdict::Allow
    } else {
        Verdict::ImplicitDeny
    }
}

#[test]
fn the_example_policy_set_loads_and_does_what_the_demo_needs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let customers =
        crate::config::CustomersFile::load(&root.join("customers.toml")).expect("customers");
    let cfg = AuthzConfig {
        catalog_dir: "catalog".into(),
        permissions_dir: "permissions".into(),
    };
    let a = Authz::load(&cfg, &root, &customers).unwrap_or_else(|d| panic!("{d}"));
    assert!(a.warnings().is_empty(), "{:?}", a.warnings());
    let decide_as = |customer: &str, frontend: bool, version: &str, action: &str| {
        let c = a.customer(customer).expect("customer");
        let mut ctx = context(c, frontend, "127.0.0.1:1".parse().expect("peer"), None);
        ctx.now = time::OffsetDateTime::now_utc();
        a.decide_aliyun(version, action, ctx).allowed
    };
    let bss = "2017-12-14";
    // The demo's calls.
    for action in ["GetSubscriptionPrice", "CreateInstance", "QueryOrders"] {
        assert!(decide_as("acme", false, bss, action), "acme {action}");
    }
    assert!(decide_as("acme", false, "2014-05-26", "DescribePrice"));
    assert!(decide_as("acme", true, bss, "GetSubscriptionPrice"));
    assert!(decide_as("globex", true, bss, "CreateInstance"));
    assert!(decide_as("globex", true, bss, "QueryOrders"));
    assert!(decide_as("globex", false, bss, "GetSubscriptionPrice"));
    // Globex buys only through the shop.
    assert!(!decide_as("globex", false, bss, "CreateInstance"));
    // Initech: prices yes, orders no.
    assert!(decide_as("initech", false, bss, "GetSubscriptionPrice"));
    assert!(!decide_as("initech", false, bss, "QueryOrders"));
    // Nobody administers the reseller ledger, full access or not.
    for customer in ["acme", "globex", "initech"] {
        assert!(
            !decide_as(customer, false, bss, "SetResellerUserQuota"),
            "{customer}"
        );
    }
}
