//! The Alibaba request path: customer and frontend calls reach the cloud
//! signed by the partner, as the right customer, and answers come back.

use http::Method;
use tollgate::aliyun::outbound::{Freshness, OutboundCall, SigningKey};
use tollgate::config::OutboundScheme;

use crate::support::*;

#[tokio::test]
async fn a_customer_call_reaches_the_cloud_as_the_partner_for_that_customer() {
    let stack = Stack::start();
    let reply = stack
        .acme()
        .call("GetSubscriptionPrice", BSS, PRICE)
        .await
        .expect("call");
    assert_eq!(reply.status, 200, "{:?}", reply.json);
    assert_eq!(reply.json["Success"], true);
    assert!(
        reply.json["Data"]["TradePrice"].is_number(),
        "{:?}",
        reply.json
    );
    assert!(reply.tollgate_request_id.is_some());

    let seen = stack.recorded().await;
    assert_eq!(seen.len(), 1);
    let r = &seen[0];
    assert_eq!(r.action, "GetSubscriptionPrice");
    assert_eq!(
        r.access_key_id, PARTNER_AK,
        "the cloud sees only the partner's key"
    );
    assert_eq!(r.owner_id.as_deref(), Some(ACME_UID));
    assert_eq!(r.scheme, "rpc");
    assert!(r.signature_valid);
    // Business parameters arrive unchanged; the customer's key does not arrive at all.
    for (k, v) in PRICE {
        assert!(
            r.params.iter().any(|(pk, pv)| pk == k && pv == v),
            "missing {k}={v} in {:?}",
            r.params
        );
    }
    assert!(!r.params.iter().any(|(_, v)| v == ACME_AK));
}

#[tokio::test]
async fn v3_signed_calls_are_verified_and_re_signed() {
    let stack = Stack::start();
    let v3 = stack.client(ACME_AK, "acme.secret", OutboundScheme::V3);
    let bss = v3.call("QueryOrders", BSS, &[]).await.expect("bss");
    assert_eq!(bss.status, 200, "{:?}", bss.json);
    let ecs = v3
        .call(
            "DescribePrice",
            ECS,
            &[
                ("RegionId", "cn-hangzhou"),
                ("InstanceType", "ecs.g6.large"),
            ],
        )
        .await
        .expect("ecs");
    assert_eq!(ecs.status, 200, "{:?}", ecs.json);
    assert!(
        ecs.json["PriceInfo"]["Price"]["TradePrice"].is_number(),
        "{:?}",
        ecs.json
    );

    let seen = stack.recorded().await;
    assert_eq!(seen.len(), 2);
    // The BSS upstream is configured for RPC signing, ECS for V3.
    assert_eq!(
        (seen[0].scheme.as_str(), seen[1].scheme.as_str()),
        ("rpc", "v3")
    );
    assert!(
        seen.iter()
            .all(|r| r.access_key_id == PARTNER_AK && r.owner_id.as_deref() == Some(ACME_UID))
    );
}

#[tokio::test]
async fn a_purchase_and_the_order_listing_belong_to_the_customer() {
    let stack = Stack::start();
    let acme = stack.acme();
    let bought = acme
        .call(
            "CreateInstance",
            BSS,
            &with(BUY, &[("ClientToken", "e2e-buy-1")]),
        )
        .await
        .expect("buy");
    assert_eq!(bought.status, 200, "{:?}", bought.json);
    let order_id = bought.json["Data"]["OrderId"]
        .as_str()
        .expect("OrderId")
        .to_owned();

    let orders = acme.call("QueryOrders", BSS, &[]).await.expect("orders");
    let list = orders.json["Data"]["OrderList"]["Order"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        list.iter().any(|o| o["OrderId"] == order_id.as_str()),
        "{:?}",
        orders.json
    );

    // Another customer (through the shop frontend) does not see acme's order.
    let theirs = stack
        .shop()
        .call("QueryOrders", BSS, &[("OwnerId", GLOBEX_UID)])
        .await
        .expect("orders");
    let list = theirs.json["Data"]["OrderList"]["Order"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !list.iter().any(|o| o["OrderId"] == order_id.as_str()),
        "{:?}",
        theirs.json
    );
}

#[tokio::test]
async fn a_frontend_acts_for_the_customer_it_names() {
    let stack = Stack::start();
    let shop = stack.shop();
    let r = shop
        .call(
            "GetSubscriptionPrice",
            BSS,
            &with(PRICE, &[("OwnerId", GLOBEX_UID)]),
        )
        .await
        .expect("call");
    assert_eq!(r.status, 200, "{:?}", r.json);
    let seen = stack.recorded().await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].access_key_id, PARTNER_AK);
    assert_eq!(seen[0].owner_id.as_deref(), Some(GLOBEX_UID));
}

#[tokio::test]
async fn get_with_query_and_post_with_form_body_both_work() {
    let stack = Stack::start();
    let key = secret("acme.secret");
    let authority = stack.gateway.addr.to_string();
    let client = stack.acme();
    let get = OutboundCall {
        method: Method::GET,
        action: "QueryOrders".into(),
        version: BSS.into(),
        query: vec![("PageSize".into(), "5".into())],
        form: vec![],
    }
    .sign(
        OutboundScheme::Rpc,
        &authority,
        SigningKey {
            access_key_id: ACME_AK,
            secret: &key,
        },
        &Freshness::now(),
    );
    assert_eq!(client.send(get).await.expect("get").status, 200);
    let post = OutboundCall {
        method: Method::POST,
        action: "GetSubscriptionPrice".into(),
        version: BSS.into(),
        query: vec![],
        form: PRICE
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
    .sign(
        OutboundScheme::Rpc,
        &authority,
        SigningKey {
            access_key_id: ACME_AK,
            secret: &key,
        },
        &Freshness::now(),
    );
    let r = client.send(post).await.expect("post");
    assert_eq!(r.status, 200, "{:?}", r.json);
    let seen = stack.recorded().await;
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1]
            .params
            .iter()
            .any(|(k, v)| k == "ModuleList.1.Config" && v == "PackageCode:standard_500G")
    );
}

#[tokio::test]
async fn provider_errors_pass_through_in_the_providers_format() {
    let stack = Stack::start();
    // Missing ProductCode: the cloud refuses it, the gateway passes its answer on.
    let r = stack
        .acme()
        .call(
            "GetSubscriptionPrice",
            BSS,
            &[("SubscriptionType", "Subscription")],
        )
        .await
        .expect("call");
    assert_eq!(r.status, 400, "{:?}", r.json);
    assert!(r.code().starts_with("Missing"), "{:?}", r.json);
    assert_eq!(
        stack.recorded().await.len(),
        1,
        "the call did reach the cloud"
    );
}
