//! Helpers shared by the authz test modules: a policy set from inline JSON,
//! attached to test customers, and a fixed request context.

use std::path::{Path, PathBuf};

use http::Method;

use super::{Authz, Decision, RequestContext, Verdict};
use crate::catalog::Catalog;
use crate::config::CustomersFile;

/// Test customers: `ops-1` (group ops), `dev-1` (group dev), `intern-1`
/// (group dev), `solo` (no group).
pub const CUSTOMERS: &str = r#"
[[customer]]
id = "ops-1"
aliyun_uid = "3000000000000001"
group = "ops"

[[customer]]
id = "dev-1"
aliyun_uid = "3000000000000002"
group = "dev"

[[customer]]
id = "intern-1"
aliyun_uid = "3000000000000003"
group = "dev"

[[customer]]
id = "solo"
aliyun_uid = "3000000000000004"
"#;

/// The customers file above.
pub fn customers() -> CustomersFile {
    toml::from_str(CUSTOMERS).expect("test customers")
}

/// The shipped catalog.
pub fn catalog() -> Catalog {
    Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/catalog"))
        .unwrap_or_else(|d| panic!("{d}"))
}

/// Policies `p0`, `p1`, … (the JSON texts) attached to every test
/// customer, with `unlisted` as given.
pub fn attached_to_all(policies: &[&str], unlisted: &str) -> Authz {
    let mut attach = format!("unlisted = \"{unlisted}\"\n");
    for i in 0..policies.len() {
        attach.push_str(&format!(
            "[[attach]]\npolicy = \"p{i}\"\ncustomers = [\"ops-1\", \"dev-1\", \"intern-1\", \"solo\"]\n"
        ));
    }
    build(policies, &attach)
}

/// Policies `p0`, `p1`, … with an explicit attachments text.
pub fn build(policies: &[&str], attachments: &str) -> Authz {
    try_build(policies, attachments).unwrap_or_else(|d| panic!("{d}"))
}

/// Like [`build`], returning the problems.
pub fn try_build(
    policies: &[&str],
    attachments: &str,
) -> Result<Authz, crate::diagnostic::Diagnostics> {
    let sources: Vec<(PathBuf, String)> = policies
        .iter()
        .enumerate()
        .map(|(i, text)| (PathBuf::from(format!("perm/p{i}.json")), (*text).to_owned()))
        .collect();
    Authz::from_sources(
        catalog(),
        &sources,
        (Path::new("perm/attachments.toml"), attachments),
        &customers(),
    )
}

/// A one-statement policy.
pub fn policy(effect: &str, actions: &[&str]) -> String {
    let actions: Vec<String> = actions.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"{{"Version": "1.1", "Statement": [{{"Effect": "{effect}", "Action": [{}]}}]}}"#,
        actions.join(", ")
    )
}

/// A one-statement policy with a condition object (JSON text).
pub fn conditional(effect: &str, actions: &[&str], condition: &str) -> String {
    let actions: Vec<String> = actions.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        r#"{{"Version": "1.1", "Statement": [{{"Effect": "{effect}", "Action": [{}], "Condition": {condition}}}]}}"#,
        actions.join(", ")
    )
}

/// The context of a call by `customer` at 2026-05-01 08:30 UTC from
/// 203.0.113.7, own key, no region.
pub fn ctx<'a>(authz: &'a Authz, customer: &str) -> RequestContext<'a> {
    let c = authz.customer(customer).expect("test customer");
    RequestContext {
        customer_id: &c.id,
        customer_uid: &c.aliyun_uid,
        group: c.group.as_deref(),
        region: None,
        source_ip: Some("203.0.113.7".parse().expect("ip")),
        now: time::macros::datetime!(2026-05-01 08:30:00 UTC),
        frontend: false,
        kind: None,
    }
}

/// A call to decide.
#[derive(Debug, Clone, Copy)]
pub enum Call<'a> {
    /// Permission codes (`A|B` as several).
    Codes(&'a [&'a str]),
    /// A BSS (2017-12-14) action.
    Bss(&'a str),
    /// An ECS (2014-05-26) action.
    Ecs(&'a str),
    /// A Huawei method + path.
    Huawei(&'a str, &'a str),
}

/// Decides `call` for `ctx`.
pub fn decide<'a>(authz: &'a Authz, call: Call<'_>, ctx: RequestContext<'_>) -> Decision<'a> {
    match call {
        Call::Codes(codes) => {
            let ids: Vec<_> = codes
                .iter()
                .map(|c| {
                    authz
                        .catalog()
                        .find_code(c)
                        .unwrap_or_else(|| panic!("{c} is catalogued"))
                })
                .collect();
            authz.decide_codes(&ids, &ctx).expect("checks on")
        }
        Call::Bss(a) => authz.decide_aliyun("2017-12-14", a, ctx),
        Call::Ecs(a) => authz.decide_aliyun("2014-05-26", a, ctx),
        Call::Huawei(m, p) => {
            let m = Method::from_bytes(m.as_bytes()).expect("method");
            authz.decide_huawei(&m, p, ctx)
        }
    }
}

/// Asserts the verdict and, when given, the deciding `(policy, statement)`.
#[track_caller]
pub fn expect(d: &Decision<'_>, effect: Verdict, by: Option<(&str, usize)>) {
    assert_eq!(d.effect, effect, "{d:?}");
    let got = d.by.map(|b| (b.policy, b.statement_index));
    assert_eq!(got, by, "deciding statement of {d:?}");
    // A NotListed decision's `allowed` follows the operator's rule; callers
    // assert it themselves.
    if effect != Verdict::NotListed {
        assert_eq!(d.allowed, effect == Verdict::Allow, "{d:?}");
    }
}
