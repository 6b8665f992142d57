use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;

use super::*;
use crate::aliyun::outbound::{Freshness, OutboundCall, SigningKey};
use crate::config::OutboundScheme;

fn customer(id: &str, uid: &str) -> Arc<Customer> {
    Arc::new(Customer {
        id: id.into(),
        name: id.into(),
        aliyun_uid: uid.into(),
        group: None,
        tags: Vec::new(),
    })
}

fn table() -> KeyTable {
    let acme = customer("acme", "2000000000000001");
    let globex = customer("globex", "2000000000000002");
    let mut t = KeyTable::default();
    t.insert("ACME", "acme-secret", Principal::Customer(acme.clone()));
    t.insert("GLOBEX", "globex-secret", Principal::Customer(globex));
    t.insert(
        "FRONT",
        "front-secret",
        Principal::Frontend {
            acts_for: vec![acme],
        },
    );
    t
}

async fn call(key: (&str, &str), params: &[(&str, &str)], fresh: &Freshness) -> AliyunCall {
    let req = OutboundCall {
        method: http::Method::POST,
        action: "QueryOrders".into(),
        version: "2017-12-14".into(),
        query: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        form: Vec::new(),
    }
    .sign(
        OutboundScheme::Rpc,
        "gw:1",
        SigningKey {
            access_key_id: key.0,
            secret: key.1,
        },
        fresh,
    );
    let (parts, body) = req.into_parts();
    let body: Bytes = body.collect().await.expect("body").to_bytes();
    AliyunCall::parse(&parts, body).expect("parses")
}

fn auth() -> Authenticator {
    Authenticator::new(Duration::from_secs(900), 10_000)
}

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

async fn code_of(a: &Authenticator, key: (&str, &str), params: &[(&str, &str)]) -> String {
    let c = call(key, params, &Freshness::now()).await;
    match a.authenticate(&c, &table(), now()) {
        Ok(_) => "ok".into(),
        Err(e) => e.code.into_owned(),
    }
}

#[tokio::test]
async fn owner_rules_table() {
    let a = auth();
    // (key id, secret), extra parameters, expected code.
    type Case<'a> = ((&'a str, &'a str), &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        (("ACME", "acme-secret"), &[], "ok"),
        (
            ("ACME", "acme-secret"),
            &[("OwnerId", "2000000000000001")],
            "ok",
        ),
        (
            ("ACME", "acme-secret"),
            &[("OwnerId", "2000000000000002")],
            "InvalidOwner",
        ),
        (
            ("ACME", "acme-secret"),
            &[("OwnerAccount", "someone")],
            "InvalidOwner",
        ),
        (
            ("ACME", "acme-secret"),
            &[("ResourceOwnerAccount", "someone")],
            "InvalidOwner",
        ),
        (
            ("ACME", "acme-secret"),
            &[("ResourceOwnerId", "2000000000000002")],
            "InvalidOwner",
        ),
        (
            ("FRONT", "front-secret"),
            &[("OwnerId", "2000000000000001")],
            "ok",
        ),
        (
            ("FRONT", "front-secret"),
            &[("OwnerId", "2000000000000002")],
            "InvalidOwner",
        ),
        (("FRONT", "front-secret"), &[], "MissingOwnerId"),
        (("ACME", "wrong-secret"), &[], "SignatureDoesNotMatch"),
        (("NOBODY", "x"), &[], "InvalidAccessKeyId.NotFound"),
    ];
    for (key, params, want) in cases {
        assert_eq!(&code_of(&a, *key, params).await, want, "{key:?} {params:?}");
    }
}

#[tokio::test]
async fn the_authenticated_customer_is_the_keys_or_the_named_one() {
    let a = auth();
    let c = call(
        ("FRONT", "front-secret"),
        &[("OwnerId", "2000000000000001")],
        &Freshness::now(),
    )
    .await;
    let who = a.authenticate(&c, &table(), now()).expect("ok");
    assert_eq!(who.customer.id, "acme");
    assert_eq!(who.frontend.as_deref(), Some("FRONT"));
}

#[tokio::test]
async fn replays_and_stale_timestamps_are_refused() {
    let a = auth();
    let fresh = Freshness::now();
    let c = call(("ACME", "acme-secret"), &[], &fresh).await;
    a.authenticate(&c, &table(), now()).expect("first time ok");
    let again = a.authenticate(&c, &table(), now()).expect_err("replay");
    assert_eq!(again.code, "SignatureNonceUsed");

    let old = Freshness {
        timestamp: crate::aliyun::format_timestamp(now() - time::Duration::minutes(16)),
        nonce: "n-old".into(),
    };
    let c = call(("ACME", "acme-secret"), &[], &old).await;
    assert_eq!(
        a.authenticate(&c, &table(), now()).expect_err("stale").code,
        "InvalidTimeStamp.Expired"
    );

    let future = Freshness {
        timestamp: crate::aliyun::format_timestamp(now() + time::Duration::minutes(16)),
        nonce: "n-future".into(),
    };
    let c = call(("ACME", "acme-secret"), &[], &future).await;
    assert_eq!(
        a.authenticate(&c, &table(), now())
            .expect_err("future")
            .code,
        "InvalidTimeStamp.Expired"
    );

    let bad = Freshness {
        timestamp: "23/11/2026".into(),
        nonce: "n-bad".into(),
    };
    let c = call(("ACME", "acme-secret"), &[], &bad).await;
    assert_eq!(
        a.authenticate(&c, &table(), now())
            .expect_err("format")
            .code,
        "InvalidTimeStamp.Format"
    );
}

#[tokio::test]
async fn a_forged_call_does_not_burn_the_nonce() {
    let a = auth();
    let fresh = Freshness::now();
    let forged = call(("ACME", "guessed"), &[], &fresh).await;
    assert_eq!(
        a.authenticate(&forged, &table(), now())
            .expect_err("forged")
            .code,
        "SignatureDoesNotMatch"
    );
    let genuine = call(("ACME", "acme-secret"), &[], &fresh).await;
    a.authenticate(&genuine, &table(), now())
        .expect("the genuine call with the same nonce still passes");
}

#[tokio::test]
async fn refusals_never_carry_a_secret() {
    let a = auth();
    let c = call(("ACME", "wrong-secret"), &[], &Freshness::now()).await;
    let e = a.authenticate(&c, &table(), now()).expect_err("forged");
    let text = format!("{e} {e:?}");
    assert!(
        !text.contains("acme-secret") && !text.contains("wrong-secret"),
        "{text}"
    );
}
