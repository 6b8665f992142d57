//! Permission codes end to end: a customer's policies decide, refusals come
//! back in the provider's format, nothing refused reaches the cloud, and
//! `policy explain` names the deciding statement (CLI and admin API).

use std::path::Path;
use std::process::Command;

use tollgate::config::OutboundScheme;

use crate::support::*;

const INITECH_AK: &str = "TGINITECHDEMOKEY1";
const GLOBEX_AK: &str = "TGGLOBEXDEMOKEY01";

#[tokio::test]
async fn a_customer_without_order_view_gets_alibabas_access_denied_and_nothing_reaches_the_cloud() {
    let stack = Stack::start();
    for scheme in [OutboundScheme::Rpc, OutboundScheme::V3] {
        let initech = stack.client(INITECH_AK, "initech.secret", scheme);
        let r = initech.call("QueryOrders", BSS, &[]).await.expect("call");
        assert_eq!(r.status, 403, "{:?}", r.json);
        assert_eq!(r.code(), "Forbidden.RAM", "{:?}", r.json);
        assert!(r.json["RequestId"].is_string());
        assert_eq!(r.json["HostId"], "tollgate.test");
        let message = r.json["Message"].as_str().unwrap_or_default();
        assert!(message.contains("bssapi:QueryOrders"), "{message}");
        let detail = &r.json["AccessDeniedDetail"];
        assert_eq!(detail["AuthAction"], "bssapi:QueryOrders", "{detail}");
        assert_eq!(detail["NoPermissionType"], "ImplicitDeny");
        assert_eq!(detail["AuthPrincipalOwnerId"], INITECH_UID);
        assert_eq!(detail["AuthPrincipalDisplayName"], "initech");
    }
    assert!(
        stack.recorded().await.is_empty(),
        "a refused call never reaches the cloud"
    );

    // What initech was granted still works, as initech.
    let initech = stack.client(INITECH_AK, "initech.secret", OutboundScheme::Rpc);
    let ok = initech
        .call("GetSubscriptionPrice", BSS, PRICE)
        .await
        .expect("call");
    assert_eq!(ok.status, 200, "{:?}", ok.json);
    let seen = stack.recorded().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].action, "GetSubscriptionPrice");
    assert_eq!(seen[0].owner_id.as_deref(), Some(INITECH_UID));

    let m = metrics_text(stack.admin, &stack.admin_token).await;
    assert!(
        m.contains(r#"tollgate_authz_decisions_total{effect="implicit_deny"} 2"#),
        "{m}"
    );
    assert!(
        m.contains(r#"tollgate_authz_decisions_total{effect="allow"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"tollgate_refusals_total{reason="permission"} 2"#),
        "{m}"
    );
}

#[tokio::test]
async fn an_explicit_deny_beats_full_access_and_says_so() {
    let stack = Stack::start();
    // acme (group enterprise) has full access, and no-reseller-admin.
    let r = stack
        .acme()
        .call(
            "SetResellerUserQuota",
            BSS,
            &[("Amount", "1000000"), ("Currency", "CNY")],
        )
        .await
        .expect("call");
    assert_eq!(r.status, 403, "{:?}", r.json);
    assert_eq!(r.code(), "Forbidden.RAM");
    assert_eq!(
        r.json["AccessDeniedDetail"]["NoPermissionType"],
        "ExplicitDeny"
    );
    assert_eq!(
        r.json["AccessDeniedDetail"]["AuthAction"],
        "bssapi:SetResellerUserQuota"
    );
    assert!(stack.recorded().await.is_empty());
    // Unlisted APIs follow the seed's rule: no check, forwarded (the sim
    // itself does not know the action).
    let r = stack
        .acme()
        .call("DescribeRegions", BSS, &[])
        .await
        .expect("call");
    assert_eq!(r.code(), "InvalidAction.NotFound", "{:?}", r.json);
}

#[tokio::test]
async fn a_purchase_condition_allows_the_frontend_but_not_the_customers_own_key() {
    let stack = Stack::start();
    // orders.json: globex's purchase statement holds only for frontend keys.
    let own = stack.client(GLOBEX_AK, "globex.secret", OutboundScheme::Rpc);
    let r = own.call("CreateInstance", BSS, BUY).await.expect("call");
    assert_eq!(r.status, 403, "{:?}", r.json);
    assert_eq!(r.code(), "Forbidden.RAM");
    assert_eq!(
        r.json["AccessDeniedDetail"]["AuthAction"],
        "bssapi:CreateInstance"
    );
    // Through the shop frontend the permission check passes (what happens
    // next, e.g. the budget, is not the permission layer's business).
    let r = stack
        .shop()
        .call(
            "CreateInstance",
            BSS,
            &with(BUY, &[("OwnerId", GLOBEX_UID)]),
        )
        .await
        .expect("call");
    assert_ne!(r.code(), "Forbidden.RAM", "{:?}", r.json);
    let m = metrics_text(stack.admin, &stack.admin_token).await;
    assert!(
        m.contains(r#"tollgate_authz_decisions_total{effect="implicit_deny"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"tollgate_authz_decisions_total{effect="allow"} 1"#),
        "{m}"
    );
}

#[tokio::test]
async fn the_admin_api_explains_a_decision() {
    let stack = Stack::start();
    let (status, v) = admin(
        &stack,
        http::Method::GET,
        "/v1/policy/explain?customer=initech&action=QueryOrders",
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["effect"], "implicit_deny");
    assert_eq!(v["allowed"], false);
    assert_eq!(v["requires"][0], "bssapi:QueryOrders");
    let (status, v) = admin(
        &stack,
        http::Method::GET,
        "/v1/policy/explain?customer=acme&action=SetResellerUserQuota",
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["effect"], "deny");
    assert_eq!(v["decided_by"]["policy"], "no-reseller-admin");
    assert_eq!(v["decided_by"]["statement_index"], 0);
    assert!(
        v["decided_by"]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("no-reseller-admin.json")),
        "{v}"
    );
    let (status, v) = admin(
        &stack,
        http::Method::GET,
        "/v1/policy/explain?customer=nobody&action=QueryOrders",
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(status, 404, "{v}");
    let (status, _) = admin(
        &stack,
        http::Method::GET,
        "/v1/policy/explain?customer=acme",
        serde_json::Value::Null,
    )
    .await;
    assert_eq!(status, 400);
}

fn tollgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .output()
        .expect("run tollgate")
}

#[test]
fn policy_explain_on_the_command_line_names_the_deciding_statement() {
    let config = policies().join("tollgate.toml");
    let config = config.to_str().expect("utf8");
    let out = tollgate(&[
        "policy",
        "explain",
        "--config",
        config,
        "--customer",
        "globex",
        "--action",
        "QueryOrders",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("decision   ALLOW"), "{text}");
    assert!(
        text.contains("permissions/orders.json:4 Statement[0] (Allow in policy `orders`)"),
        "{text}"
    );

    let out = tollgate(&[
        "policy",
        "explain",
        "--config",
        config,
        "--customer",
        "initech",
        "--action",
        "QueryOrders",
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DENY (implicit)"), "{text}");
    assert!(text.contains("requires   bssapi:QueryOrders"), "{text}");
    assert!(text.contains("price-and-catalog"), "{text}");

    // Huawei calls are explained against the same policies.
    let out = tollgate(&[
        "policy",
        "explain",
        "--config",
        config,
        "--customer",
        "acme",
        "--action",
        "GET /v2/orders/customer-orders",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ListCustomerOrders, row 6") && text.contains("ALLOW"),
        "{text}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from)
        .expect("read dir")
        .map(|e| e.expect("entry"))
    {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

#[test]
fn policy_check_refuses_a_broken_set_with_positions() {
    let out = tollgate(&[
        "policy",
        "check",
        "--config",
        policies().join("tollgate.toml").to_str().expect("utf8"),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: 4 policies"));

    let dir = tempfile::tempdir().expect("tempdir");
    copy_dir(&policies(), dir.path());
    std::fs::write(
        dir.path().join("permissions/orders.json"),
        "{\n  \"Version\": \"1.1\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": [\"bssapi:QueryOrdres\"]}\n  ]\n}\n",
    )
    .expect("write");
    let config = dir.path().join("tollgate.toml");
    let out = tollgate(&[
        "policy",
        "check",
        "--config",
        config.to_str().expect("utf8"),
    ]);
    assert!(!out.status.success(), "a broken set is refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("permissions/orders.json:4:36: error: Statement[0].Action[0]: `bssapi:QueryOrdres` matches no permission code"),
        "{err}"
    );
    // And the gateway refuses to start on it.
    let out = tollgate(&[
        "serve",
        "--config",
        config.to_str().expect("utf8"),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("orders.json:4:36"),
        "{out:?}"
    );
}
