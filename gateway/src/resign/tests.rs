use super::*;
use crate::aliyun::AliyunCall;
use crate::aliyun::outbound::OutboundCall;
use bytes::Bytes;
use http_body_util::BodyExt as _;

const CUSTOMER: SigningKey<'static> = SigningKey {
    access_key_id: "TGCUSTOMERKEY",
    secret: "customer-secret",
};
const PARTNER: SigningKey<'static> = SigningKey {
    access_key_id: "TGPARTNERKEY",
    secret: "partner-secret",
};

async fn parse(req: http::Request<crate::Body>) -> AliyunCall {
    let (parts, body) = req.into_parts();
    let body: Bytes = body.collect().await.expect("body").to_bytes();
    AliyunCall::parse(&parts, body).expect("parses")
}

fn customer_call(scheme: OutboundScheme, extra: &[(&str, &str)]) -> http::Request<crate::Body> {
    let mut query: Vec<(String, String)> = vec![("ProductCode".into(), "rds".into())];
    query.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    OutboundCall {
        method: http::Method::POST,
        action: "GetSubscriptionPrice".into(),
        version: "2017-12-14".into(),
        query,
        form: vec![("ModuleList.1.Config".into(), "a:b c".into())],
    }
    .sign(scheme, "gateway.local:8080", CUSTOMER, &Freshness::now())
}

#[tokio::test]
async fn customer_credentials_never_reach_the_provider() {
    for inbound in [OutboundScheme::Rpc, OutboundScheme::V3] {
        for outbound in [OutboundScheme::Rpc, OutboundScheme::V3] {
            let call = parse(customer_call(inbound, &[("SecurityToken", "sts-token")])).await;
            call.verify(CUSTOMER.secret)
                .expect("customer signature valid");
            let out = resign(
                &call,
                "2000000000000001",
                outbound,
                "sim.local:9000",
                PARTNER,
                &Freshness::now(),
            );
            let text = format!("{:?} {:?}", out.uri(), out.headers());
            assert!(!text.contains("TGCUSTOMERKEY"), "{text}");
            assert!(!text.contains("sts-token"), "{text}");
            let up = parse(out).await;
            assert_eq!(up.access_key_id(), "TGPARTNERKEY");
            assert_eq!(up.param("OwnerId"), Some("2000000000000001"));
            assert_eq!(up.param("ProductCode"), Some("rds"));
            assert_eq!(
                up.param("ModuleList.1.Config"),
                Some("a:b c"),
                "form body kept, spaces intact"
            );
            assert_eq!(up.action, "GetSubscriptionPrice");
            up.verify(PARTNER.secret).expect("partner signature valid");
            assert!(up.verify(CUSTOMER.secret).is_err());
        }
    }
}

#[tokio::test]
async fn caller_owner_fields_are_replaced_not_forwarded() {
    let call = parse(customer_call(
        OutboundScheme::Rpc,
        &[("OwnerId", "999"), ("ResourceOwnerId", "999")],
    ))
    .await;
    let out = outbound_parts(&call, "2000000000000001");
    let owners: Vec<_> = out
        .query
        .iter()
        .filter(|(k, _)| OWNER_PARAMS.contains(k))
        .collect();
    assert_eq!(owners, vec![&("OwnerId", "2000000000000001")]);
}
