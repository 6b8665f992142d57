use bytes::Bytes;
use http::Method;

use super::*;
use crate::huawei::call::format_sdk_date;
use crate::huawei::outbound::{OutboundCall, signed_request};

const CUSTOMERS: &str = r#"
[[customer]]
id = "acme"
aliyun_uid = "2000000000000001"
huawei_domain_id = "0a7c3b2f3d80d4a20f7ac004cbde0001"
[[customer]]
id = "globex"
aliyun_uid = "2000000000000002"
huawei_domain_id = "0a7c3b2f3d80d4a20f7ac004cbde0002"
[[huawei_key]]
access_key_id = "TGHWACME"
customer = "acme"
secret_file = "acme.sk"
[[huawei_key]]
access_key_id = "TGHWOFF"
customer = "acme"
enabled = false
secret_file = "acme.sk"
"#;

fn side(held_globex: bool) -> anyhow::Result<HuaweiSide> {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("acme.sk"), "acme-issued-secret\n").expect("write");
    std::fs::write(dir.path().join("held.sk"), "held-secret\n").expect("write");
    let mut text = "url = \"http://127.0.0.1:9000\"\n[[customer]]\ncustomer = \"acme\"\naccess_key_id = \"HWHELD\"\nsecret_file = \"held.sk\"\n".to_owned();
    if held_globex {
        text.push_str("[[customer]]\ncustomer = \"globex\"\naccess_key_id = \"HWHELD2\"\nsecret_file = \"held.sk\"\n");
    }
    let cfg: HuaweiPartnerConfig = toml::from_str(&text).expect("partner");
    let customers: CustomersFile = toml::from_str(CUSTOMERS).expect("customers");
    HuaweiSide::load(&cfg, dir.path(), &customers, dir.path())
}

fn call(ak: &str, secret: &str, domain: Option<&str>, token: bool) -> HuaweiCall {
    let mut extra = Vec::new();
    if token {
        extra.push(("x-security-token".to_owned(), "sts".to_owned()));
    }
    let req = signed_request(
        &OutboundCall {
            method: Method::GET,
            raw_path: "/v2/orders/customer-orders",
            raw_query: "",
            domain_id: domain,
            extra_headers: extra,
            content_type: None,
            body: Bytes::new(),
        },
        "http",
        "127.0.0.1:8080",
        HuaweiKey {
            access_key_id: ak,
            secret,
        },
        &format_sdk_date(OffsetDateTime::now_utc()),
    );
    HuaweiCall::parse(&req.into_parts().0, Bytes::new()).expect("parse")
}

#[test]
fn an_issued_key_acts_as_its_customer_and_the_held_key_signs_out() {
    let side = side(true).expect("loads");
    let now = OffsetDateTime::now_utc();
    let who = side
        .authenticate(
            &call(
                "TGHWACME",
                "acme-issued-secret",
                Some("0a7c3b2f3d80d4a20f7ac004cbde0001"),
                false,
            ),
            now,
        )
        .expect("authenticated");
    assert_eq!(who.customer.id, "acme");
    assert_eq!(who.domain_id, "0a7c3b2f3d80d4a20f7ac004cbde0001");
    // Without X-Domain-Id (an SDK with basic credentials) the key decides.
    assert!(
        side.authenticate(&call("TGHWACME", "acme-issued-secret", None, false), now)
            .is_ok()
    );
    let held = side.held("acme").expect("held");
    assert_eq!(held.access_key_id, "HWHELD");
    assert_eq!(held.secret, "held-secret");
    assert!(
        !format!("{side:?}").contains("held-secret"),
        "secrets are redacted"
    );
}

#[test]
fn disabled_keys_foreign_domains_and_tokens_are_apig_0301() {
    let side = side(true).expect("loads");
    let now = OffsetDateTime::now_utc();
    for c in [
        call("TGHWOFF", "acme-issued-secret", None, false),
        call(
            "TGHWACME",
            "acme-issued-secret",
            Some("0a7c3b2f3d80d4a20f7ac004cbde0002"),
            false,
        ),
        call("TGHWACME", "acme-issued-secret", None, true),
        call("TGHWACME", "wrong", None, false),
        call("TGHWNOBODY", "acme-issued-secret", None, false),
    ] {
        let err = side.authenticate(&c, now).expect_err("refused");
        assert_eq!(err.code, "APIG.0301");
        assert_eq!(err.status, http::StatusCode::UNAUTHORIZED);
        assert!(!err.message.contains("acme-issued-secret"));
    }
}

#[test]
fn a_key_without_a_held_credential_stops_the_start() {
    // acme has keys and a held credential; a key for a customer without one
    // would be a call that can never be signed out.
    let customers = CUSTOMERS.replace(
        "[[huawei_key]]\naccess_key_id = \"TGHWOFF\"\ncustomer = \"acme\"",
        "[[huawei_key]]\naccess_key_id = \"TGHWOFF\"\ncustomer = \"globex\"",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("acme.sk"), "s\n").expect("write");
    std::fs::write(dir.path().join("held.sk"), "h\n").expect("write");
    let cfg: HuaweiPartnerConfig = toml::from_str(
        "url = \"http://127.0.0.1:9000\"\n[[customer]]\ncustomer = \"acme\"\naccess_key_id = \"HWHELD\"\nsecret_file = \"held.sk\"\n",
    )
    .expect("partner");
    let customers: CustomersFile = toml::from_str(&customers).expect("customers");
    let err = HuaweiSide::load(&cfg, dir.path(), &customers, dir.path()).expect_err("refused");
    assert!(
        format!("{err:#}").contains("holds no Huawei credential"),
        "{err:#}"
    );
    assert!(side(true).is_ok());
}

#[test]
fn an_unsigned_or_mismatched_payload_is_refused() {
    let side = side(true).expect("loads");
    let now = OffsetDateTime::now_utc();
    let body = Bytes::from_static(b"{\"order_id\":\"CS1\"}");
    let sign = |content_sha: &str| {
        let req = signed_request(
            &OutboundCall {
                method: Method::POST,
                raw_path: "/v3/orders/customer-orders/pay",
                raw_query: "",
                domain_id: None,
                extra_headers: vec![("x-sdk-content-sha256".to_owned(), content_sha.to_owned())],
                content_type: Some("application/json"),
                body: body.clone(),
            },
            "http",
            "127.0.0.1:8080",
            HuaweiKey {
                access_key_id: "TGHWACME",
                secret: "acme-issued-secret",
            },
            &format_sdk_date(now),
        );
        HuaweiCall::parse(&req.into_parts().0, body.clone()).expect("parse")
    };
    // Correctly signed, but the body is not covered: a swapped body would pass.
    let err = side
        .authenticate(&sign("UNSIGNED-PAYLOAD"), now)
        .expect_err("unsigned");
    assert_eq!(err.code, "APIG.0301");
    assert!(side.authenticate(&sign(&"0".repeat(64)), now).is_err());
    side.authenticate(&sign(&tollgate_sign::sha256_hex(&body)), now)
        .expect("the real hash is fine");
}

#[test]
fn a_reloaded_side_remembers_the_signatures_its_predecessor_accepted() {
    // A policy reload builds a new side; sharing the runtime's replay memory
    // (`with_replays`) is what keeps a captured payment from being replayed
    // against the new version.
    let replays = HuaweiSide::new_replays();
    let old = side(true).expect("loads").with_replays(replays.clone());
    let new = side(true).expect("loads").with_replays(replays);
    let unshared = side(true).expect("loads");
    let now = OffsetDateTime::now_utc();
    let paid = call(
        "TGHWACME",
        "acme-issued-secret",
        Some("0a7c3b2f3d80d4a20f7ac004cbde0001"),
        false,
    );
    old.once(&paid, now).expect("first time accepted");
    let err = new.once(&paid, now).expect_err("a replay after the reload");
    assert_eq!(err.code, "CBC.99008040", "{err:?}");
    // Without sharing, a new side would have let it through: the test above
    // depends on the shared memory, not on chance.
    unshared
        .once(&paid, now)
        .expect("an unshared side has never seen it");
}
