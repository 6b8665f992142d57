//! Each action's happy path (the reference's field names and shapes, the
//! price arithmetic) and its refusals; plus the pure helpers.

use rust_decimal::Decimal;
use serde_json::Value;

use super::bss::check_bucket_path;
use super::prices::{PriceTable, json_number, money_string, round2};
use super::reseller::check_thresholds;
use super::tests::{CUSTOMER, CUSTOMER2, Call, TestSim};

fn dec(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

/// A JSON number's exact text as a decimal (no float on the way).
#[track_caller]
fn num(v: &Value) -> Decimal {
    match v {
        Value::Number(n) => dec(&n.to_string()),
        other => panic!("not a number: {other}"),
    }
}

const G6_LARGE: &str = "InstanceType:ecs.g6.large,IoOptimized:IoOptimized,ImageOs:linux";

fn sub_price() -> Call {
    Call::bss("GetSubscriptionPrice")
        .owner(CUSTOMER)
        .p("ProductCode", "ecs")
        .p("SubscriptionType", "Subscription")
        .p("OrderType", "NewOrder")
        .p("ModuleList.1.ModuleCode", "InstanceType")
        .p("ModuleList.1.Config", G6_LARGE)
}

// ------------------------------------------------------------------ prices

#[tokio::test]
async fn subscription_price_is_discounted_and_consistent() {
    let t = TestSim::start().await;
    let a = t
        .send(
            &sub_price()
                .p("ModuleList.2.ModuleCode", "SystemDisk")
                .p(
                    "ModuleList.2.Config",
                    "SystemDisk.Category:cloud_essd,SystemDisk.Size:40",
                )
                .p("ServicePeriodUnit", "Year")
                .p("ServicePeriodQuantity", "1")
                .p("Quantity", "2"),
        )
        .await
        .ok();
    assert_eq!(a.code(), "Success");
    assert_eq!(a.json["Success"], true);
    let d = a.data();
    assert_eq!(d["Currency"], "CNY");
    assert_eq!(d["Quantity"], 2);
    // 201 x 12 x 2 = 4824 (-15 % = 723.60) and 1.50 x 40 x 12 x 2 = 1440 (-216).
    assert_eq!(num(&d["OriginalPrice"]), dec("6264"));
    assert_eq!(num(&d["DiscountPrice"]), dec("939.6"));
    assert_eq!(num(&d["TradePrice"]), dec("5324.4"));
    assert!(
        a.text.contains("\"TradePrice\":5324.4,"),
        "exact number text: {}",
        a.text
    );
    let lines = d["ModuleDetails"]["ModuleDetail"]
        .as_array()
        .expect("ModuleDetail[]");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["ModuleCode"], "InstanceType");
    assert_eq!(num(&lines[0]["UnitPrice"]), dec("201"));
    assert_eq!(num(&lines[0]["InvoiceDiscount"]), dec("723.6"));
    let sum = |f: &str| lines.iter().map(|l| num(&l[f])).sum::<Decimal>();
    assert_eq!(sum("OriginalCost"), num(&d["OriginalPrice"]));
    assert_eq!(sum("InvoiceDiscount"), num(&d["DiscountPrice"]));
    assert_eq!(sum("CostAfterDiscount"), num(&d["TradePrice"]));
    let promos = d["PromotionDetails"]["PromotionDetail"]
        .as_array()
        .expect("PromotionDetail[]");
    assert_eq!(promos[0]["PromotionName"], "annual-15off");
    assert!(promos[0]["PromotionId"].is_i64());
}

#[tokio::test]
async fn short_subscriptions_are_not_discounted() {
    let t = TestSim::start().await;
    let a = t
        .send(&sub_price().p("ServicePeriodQuantity", "3"))
        .await
        .ok();
    let d = a.data();
    assert_eq!(num(&d["OriginalPrice"]), dec("603"));
    assert_eq!(num(&d["DiscountPrice"]), Decimal::ZERO);
    assert_eq!(num(&d["TradePrice"]), dec("603"));
    assert_eq!(
        d["PromotionDetails"]["PromotionDetail"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn price_requests_are_validated() {
    let t = TestSim::start().await;
    let no_modules = Call::bss("GetSubscriptionPrice")
        .p("ProductCode", "ecs")
        .p("SubscriptionType", "Subscription")
        .p("OrderType", "NewOrder");
    let cases = [
        (no_modules, "MissingModuleList"),
        (sub_price().p("ProductCode", "nosuch"), "InvalidProductCode"),
        (
            sub_price().p("ModuleList.1.ModuleCode", "Gpu"),
            "InvalidModuleCode",
        ),
        (
            sub_price().p("ModuleList.1.Config", "InstanceType:ecs.g6.large"),
            "InvalidConfigCode",
        ),
        (
            sub_price().p(
                "ModuleList.1.Config",
                G6_LARGE.replace("g6.large", "x9.huge").as_str(),
            ),
            "InvalidConfigCode",
        ),
        (
            sub_price().p("ModuleList.1.Config", "garbage"),
            "InvalidConfigCode",
        ),
        (sub_price().p("OrderType", "Buy"), "InvalidOrderType"),
        (
            sub_price().p("SubscriptionType", "PayAsYouGo"),
            "InvalidSubscriptionType",
        ),
        (
            sub_price().p("ServicePeriodUnit", "Day"),
            "InvalidServicePeriodUnit",
        ),
        (sub_price().p("Quantity", "two"), "InvalidQuantity"),
        (sub_price().p("OrderType", "Upgrade"), "MissingInstanceId"),
        (
            sub_price().p("ModuleList.3.ModuleCode", "SystemDisk"),
            "InvalidModuleList",
        ),
        (
            sub_price().p("ModuleList.01.ModuleCode", "SystemDisk"),
            "InvalidModuleList",
        ),
        (
            sub_price().p(
                "ModuleList.2.Config",
                "SystemDisk.Category:cloud,SystemDisk.Size:40",
            ),
            "MissingModuleList.2.ModuleCode",
        ),
        (sub_price().p("ProductCode", ""), "MissingProductCode"),
    ];
    for (call, code) in &cases {
        t.send(call).await.refused(400, code);
    }
}

#[tokio::test]
async fn pay_as_you_go_price_is_per_module() {
    let t = TestSim::start().await;
    let call = Call::bss("GetPayAsYouGoPrice")
        .owner(CUSTOMER)
        .p("ProductCode", "ecs")
        .p("SubscriptionType", "PayAsYouGo")
        .p("ModuleList.1.ModuleCode", "InstanceType")
        .p(
            "ModuleList.1.Config",
            "InstanceType:ecs.g5.xlarge,IoOptimized:IoOptimized,ImageOs:linux",
        )
        .p("ModuleList.1.PriceType", "Hour")
        .p("ModuleList.2.ModuleCode", "SystemDisk")
        .p(
            "ModuleList.2.Config",
            "SystemDisk.Category:cloud_efficiency,SystemDisk.Size:40",
        )
        .p("ModuleList.2.PriceType", "Hour");
    let a = t.send(&call).await.ok();
    let d = a.data();
    assert!(
        d.get("TradePrice").is_none(),
        "no top-level total: {}",
        a.text
    );
    let lines = d["ModuleDetails"]["ModuleDetail"]
        .as_array()
        .expect("lines");
    assert_eq!(num(&lines[0]["OriginalCost"]), dec("1.77"));
    assert_eq!(num(&lines[0]["CostAfterDiscount"]), dec("1.77"));
    assert_eq!(num(&lines[0]["InvoiceDiscount"]), Decimal::ZERO);
    assert_eq!(num(&lines[1]["OriginalCost"]), dec("0.02"));
    assert_eq!(
        d["PromotionDetails"]["PromotionDetail"],
        serde_json::json!([])
    );

    let usage = Call::bss("GetPayAsYouGoPrice")
        .p("ProductCode", "oss")
        .p("SubscriptionType", "PayAsYouGo")
        .p("ModuleList.1.ModuleCode", "InternetTraffic")
        .p("ModuleList.1.Config", "InternetTraffic:100")
        .p("ModuleList.1.PriceType", "Usage");
    let a = t.send(&usage).await.ok();
    assert_eq!(
        num(&a.data()["ModuleDetails"]["ModuleDetail"][0]["OriginalCost"]),
        dec("50")
    );

    t.send(&call.clone().p("ModuleList.1.PriceType", "Fortnight"))
        .await
        .refused(400, "InvalidPriceType");
    let mut no_type = call.clone().p("ModuleList.2.PriceType", "");
    no_type.nonce = uuid::Uuid::new_v4().to_string();
    t.send(&no_type)
        .await
        .refused(400, "MissingModuleList.2.PriceType");
    // The storage package is sold by subscription only.
    let package = Call::bss("GetPayAsYouGoPrice")
        .p("ProductCode", "oss")
        .p("SubscriptionType", "PayAsYouGo")
        .p("ModuleList.1.ModuleCode", "PackageCode")
        .p("ModuleList.1.Config", "PackageCode:standard_40G")
        .p("ModuleList.1.PriceType", "Hour");
    t.send(&package).await.refused(400, "InvalidModuleCode");
}

#[tokio::test]
async fn product_list_and_pricing_modules_have_the_reference_shape() {
    let t = TestSim::start().await;
    let a = t
        .send(
            &Call::bss("QueryProductList")
                .p("PageNum", "1")
                .p("PageSize", "50"),
        )
        .await
        .ok();
    let d = a.data();
    let products = d["ProductList"]["Product"].as_array().expect("Product[]");
    assert_eq!(d["TotalCount"].as_u64(), Some(products.len() as u64));
    for code in ["ecs", "rds", "oss", "cdn", "slb"] {
        assert!(
            products.iter().any(|p| p["ProductCode"] == code),
            "{code} listed"
        );
    }
    assert!(
        products
            .iter()
            .any(|p| p["ProductCode"] == "cdn" && p["SubscriptionType"] == "PayAsYouGo")
    );
    assert!(
        !products
            .iter()
            .any(|p| p["ProductCode"] == "cdn" && p["SubscriptionType"] == "Subscription")
    );
    t.send(&Call::bss("QueryProductList"))
        .await
        .refused(400, "MissingPageNum");

    let a = t
        .send(
            &Call::bss("DescribePricingModule")
                .p("ProductCode", "ecs")
                .p("SubscriptionType", "Subscription"),
        )
        .await
        .ok();
    let modules = a.data()["ModuleList"]["Module"]
        .as_array()
        .expect("Module[]")
        .clone();
    let it = modules
        .iter()
        .find(|m| m["ModuleCode"] == "InstanceType")
        .expect("InstanceType module");
    assert_eq!(it["PriceType"], "Month");
    assert_eq!(it["Currency"], "CNY");
    assert_eq!(
        it["ConfigList"]["ConfigList"],
        serde_json::json!(["InstanceType", "IoOptimized", "ImageOs"])
    );
    let attrs = a.data()["AttributeList"]["Attribute"]
        .as_array()
        .expect("Attribute[]")
        .clone();
    let types = attrs
        .iter()
        .find(|a| a["Code"] == "InstanceType")
        .expect("InstanceType attribute");
    let values = types["Values"]["AttributeValue"]
        .as_array()
        .expect("AttributeValue[]");
    for t in [
        "ecs.g6.large",
        "ecs.g6.xlarge",
        "ecs.c6.large",
        "ecs.g5.xlarge",
    ] {
        assert!(
            values
                .iter()
                .any(|v| v["Value"] == t && v["Type"] == "single_string"),
            "{t}"
        );
    }
    let size = attrs
        .iter()
        .find(|a| a["Code"] == "SystemDisk.Size")
        .expect("size attribute");
    assert_eq!(size["Unit"], "GB");
    assert_eq!(size["Values"]["AttributeValue"][0]["Type"], "range_float");

    let payg = t
        .send(
            &Call::bss("DescribePricingModule")
                .p("ProductCode", "cdn")
                .p("SubscriptionType", "PayAsYouGo"),
        )
        .await
        .ok();
    assert_eq!(payg.data()["ModuleList"]["Module"][0]["PriceType"], "Usage");
    t.send(
        &Call::bss("DescribePricingModule")
            .p("ProductCode", "ecs")
            .p("SubscriptionType", "Monthly"),
    )
    .await
    .refused(400, "InvalidSubscriptionType");
    t.send(&Call::bss("DescribePricingModule").p("SubscriptionType", "Subscription"))
        .await
        .refused(400, "MissingProductCode");
}

// --------------------------------------------------------------- instances

fn oss_package(owner: &str, token: Option<&str>) -> Call {
    let call = Call::bss("CreateInstance")
        .owner(owner)
        .p("ProductCode", "oss")
        .p("SubscriptionType", "Subscription")
        .p("Period", "12")
        .p("Parameter.1.Code", "PackageCode")
        .p("Parameter.1.Value", "standard_500G")
        .p("Parameter.2.Code", "Region")
        .p("Parameter.2.Value", "cn-shanghai");
    match token {
        Some(t) => call.p("ClientToken", t),
        None => call,
    }
}

fn orders(owner: &str) -> Call {
    Call::bss("QueryOrders").owner(owner)
}

#[tokio::test]
async fn create_instance_orders_are_paid_priced_and_idempotent() {
    let t = TestSim::start().await;
    let first = t.send(&oss_package(CUSTOMER, Some("tok-1"))).await.ok();
    assert_eq!(first.code(), "Success");
    let order_id = first.data()["OrderId"]
        .as_str()
        .expect("OrderId string")
        .to_owned();
    let instance_id = first.data()["InstanceId"]
        .as_str()
        .expect("InstanceId")
        .to_owned();
    assert!(order_id.bytes().all(|b| b.is_ascii_digit()));
    assert!(instance_id.starts_with("OSSBAG-cn-"));

    let again = t.send(&oss_package(CUSTOMER, Some("tok-1"))).await.ok();
    assert_eq!(again.data(), first.data(), "same token, same answer");
    let other = t.send(&oss_package(CUSTOMER2, Some("tok-1"))).await.ok();
    assert_ne!(
        other.data()["OrderId"],
        first.data()["OrderId"],
        "tokens are per owner"
    );
    let next = t.send(&oss_package(CUSTOMER, None)).await.ok();
    let next_id: u64 = next.data()["OrderId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("numeric id");
    assert!(
        next_id > order_id.parse::<u64>().expect("numeric"),
        "ids increase"
    );

    let list = t.send(&orders(CUSTOMER)).await.ok();
    let d = list.data();
    assert_eq!(
        d["TotalCount"], 2,
        "the retried call made no second order: {}",
        list.text
    );
    let o = &d["OrderList"]["Order"][1];
    assert_eq!(o["OrderId"], order_id.as_str());
    assert_eq!(o["OrderType"], "New");
    assert_eq!(o["PaymentStatus"], "Paid");
    assert_eq!(o["SubscriptionType"], "Subscription");
    // 9.00 x 12 = 108.00, 15 % off.
    assert_eq!(o["PretaxGrossAmount"], "108.00");
    assert_eq!(o["PretaxAmount"], "91.80");
    assert_eq!(o["AfterTaxAmount"], "91.80");
    assert_eq!(o["Tax"], "0.00");
    assert_eq!(o["Currency"], "CNY");

    let inst = t
        .send(
            &Call::bss("QueryAvailableInstances")
                .owner(CUSTOMER)
                .p("ProductCode", "oss"),
        )
        .await
        .ok();
    let list = inst.data()["InstanceList"]
        .as_array()
        .expect("InstanceList[] without wrapper");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["InstanceID"], instance_id.as_str());
    assert_eq!(list[0]["Region"], "cn-shanghai");
    assert_eq!(list[0]["Status"], "Normal");
    assert_eq!(list[0]["OwnerId"].as_u64(), Some(2_000_000_000_000_001));
    assert!(
        list[0]["EndTime"]
            .as_str()
            .is_some_and(|e| e.ends_with('Z'))
    );
    let by_id = t
        .send(
            &Call::bss("QueryAvailableInstances")
                .owner(CUSTOMER)
                .p("InstanceIDs", &instance_id),
        )
        .await
        .ok();
    assert_eq!(by_id.data()["TotalCount"], 1);
    t.send(&Call::bss("QueryAvailableInstances").p("Region", "cn-hangzhou"))
        .await
        .refused(400, "MissingProductCode");
}

#[tokio::test]
async fn create_instance_refusals() {
    let t = TestSim::start().await;
    let base = || oss_package(CUSTOMER, None);
    let ecs = base().p("ProductCode", "ecs");
    let cases = [
        (ecs, "InvalidProductCode"),
        (base().p("Period", "5"), "InvalidPeriod"),
        (base().p("Period", ""), "MissingPeriod"),
        (
            base().p("SubscriptionType", "Forever"),
            "InvalidSubscriptionType",
        ),
        (
            base().p("RenewalStatus", "AutoRenewal"),
            "MissingRenewPeriod",
        ),
        (base().p("Parameter.1.Code", "Colour"), "InvalidParameter"),
        (
            base().p("Parameter.1.Value", "standard_9P"),
            "InvalidConfigCode",
        ),
        (base().p("Logistics", "not json"), "InvalidLogistics"),
    ];
    for (call, code) in &cases {
        t.send(call).await.refused(400, code);
    }
    let none = Call::bss("CreateInstance")
        .p("ProductCode", "oss")
        .p("SubscriptionType", "PayAsYouGo");
    t.send(&none).await.refused(400, "MissingParameter");
}

#[tokio::test]
async fn order_detail_uses_the_lower_case_wrappers() {
    let t = TestSim::start().await;
    let created = t.send(&oss_package(CUSTOMER, None)).await.ok();
    let order_id = created.data()["OrderId"].as_str().expect("id").to_owned();
    let instance_id = created.data()["InstanceId"]
        .as_str()
        .expect("id")
        .to_owned();
    let a = t
        .send(
            &Call::bss("GetOrderDetail")
                .owner(CUSTOMER)
                .p("OrderId", &order_id),
        )
        .await
        .ok();
    let o = &a.data()["OrderList"]["Order"][0];
    assert_eq!(o["OrderId"], order_id.as_str());
    assert_eq!(o["OrderSubType"], "ProductSubOrder");
    let ids: Vec<String> =
        serde_json::from_str(o["InstanceIDs"].as_str().expect("a string")).expect("JSON inside");
    assert_eq!(ids, vec![instance_id]);
    assert_eq!(o["Quantity"], "1");
    assert_eq!(o["PretaxAmount"], "91.80");
    let bill = &o["BillModuleConfig"]["billModuleConfig"][0];
    assert_eq!(bill["Code"], "PackageCode");
    assert_eq!(
        bill["BillModuleProperties"]["billModuleProperties"][0]["Value"],
        "standard_500G"
    );
    let orig = &o["OriginalModuleConfig"]["originalModuleConfig"][0];
    assert_eq!(
        orig["ModuleProperties"]["moduleProperties"][0]["Code"],
        "PackageCode"
    );

    // Another customer cannot read it.
    t.send(
        &Call::bss("GetOrderDetail")
            .owner(CUSTOMER2)
            .p("OrderId", &order_id),
    )
    .await
    .refused(400, "InvalidParameter");
    t.send(&Call::bss("GetOrderDetail").owner(CUSTOMER))
        .await
        .refused(400, "MissingOrderId");
}

#[tokio::test]
async fn renew_and_modify_make_their_own_orders() {
    let t = TestSim::start().await;
    let created = t.send(&oss_package(CUSTOMER, None)).await.ok();
    let id = created.data()["InstanceId"]
        .as_str()
        .expect("id")
        .to_owned();
    let list = || {
        Call::bss("QueryAvailableInstances")
            .owner(CUSTOMER)
            .p("InstanceIDs", &id)
    };
    let end_before = t.send(&list()).await.ok().data()["InstanceList"][0]["EndTime"].clone();

    let renew = Call::bss("RenewInstance")
        .owner(CUSTOMER)
        .p("ProductCode", "oss")
        .p("InstanceId", &id);
    let r = t
        .send(&renew.clone().p("RenewPeriod", "1").p("ClientToken", "r1"))
        .await
        .ok();
    assert!(r.data()["OrderId"].is_string());
    let again = t
        .send(&renew.clone().p("RenewPeriod", "1").p("ClientToken", "r1"))
        .await
        .ok();
    assert_eq!(again.data(), r.data());
    let end_after = t.send(&list()).await.ok().data()["InstanceList"][0]["EndTime"].clone();
    assert_ne!(end_before, end_after, "renewal extends the end time");
    t.send(&renew.clone().p("RenewPeriod", "10"))
        .await
        .refused(400, "InvalidRenewPeriod");
    t.send(&renew.clone())
        .await
        .refused(400, "MissingRenewPeriod");
    t.send(&renew.clone().p("RenewPeriod", "1").p("InstanceId", "nope"))
        .await
        .refused(400, "InvalidInstanceId");

    let modify = Call::bss("ModifyInstance")
        .owner(CUSTOMER)
        .p("ProductCode", "oss")
        .p("SubscriptionType", "Subscription")
        .p("ModifyType", "Upgrade")
        .p("InstanceId", &id)
        .p("Parameter.1.Code", "PackageCode")
        .p("Parameter.1.Value", "standard_1T");
    let m = t.send(&modify).await.ok();
    assert_eq!(m.data()["HostId"], "cn");
    let m_id = m.data()["OrderId"].as_str().expect("id").to_owned();
    t.send(&modify.clone().p("ModifyType", "Sideways"))
        .await
        .refused(400, "InvalidModifyType");

    let all = t.send(&orders(CUSTOMER)).await.ok();
    let list = all.data()["OrderList"]["Order"]
        .as_array()
        .expect("orders")
        .clone();
    assert_eq!(list.len(), 3);
    let kinds: Vec<&str> = list
        .iter()
        .filter_map(|o| o["OrderType"].as_str())
        .collect();
    assert_eq!(kinds, ["Upgrade", "Renew", "New"], "newest first");
    let renew_order = &list[1];
    assert_eq!(renew_order["PretaxAmount"], "9.00");
    let upgrade = list
        .iter()
        .find(|o| o["OrderId"] == m_id.as_str())
        .expect("upgrade order");
    // (18.00 - 9.00) a month for the 13 remaining months, 15 % off: 117.00 - 17.55.
    assert_eq!(upgrade["PretaxGrossAmount"], "117.00");
    assert_eq!(upgrade["PretaxAmount"], "99.45");
}

#[tokio::test]
async fn query_orders_windows_filters_and_pages() {
    let t = TestSim::start().await;
    for _ in 0..3 {
        t.send(&oss_package(CUSTOMER, None)).await.ok();
    }
    let page = t
        .send(&orders(CUSTOMER).p("PageSize", "2").p("PageNum", "2"))
        .await
        .ok();
    assert_eq!(page.data()["TotalCount"], 3);
    assert_eq!(
        page.data()["OrderList"]["Order"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(page.data()["HostName"], "cn");
    let past = t
        .send(
            &orders(CUSTOMER)
                .p("CreateTimeStart", "2020-01-01T00:00:00Z")
                .p("CreateTimeEnd", "2020-01-02T00:00:00Z"),
        )
        .await
        .ok();
    assert_eq!(past.data()["TotalCount"], 0);
    let wide = t
        .send(&orders(CUSTOMER).p("CreateTimeStart", "2020-01-01T00:00:00Z"))
        .await
        .ok();
    assert_eq!(wide.data()["TotalCount"], 3);
    let unpaid = t
        .send(&orders(CUSTOMER).p("PaymentStatus", "Unpaid"))
        .await
        .ok();
    assert_eq!(unpaid.data()["TotalCount"], 0);
    t.send(&orders(CUSTOMER).p("PaymentStatus", "Lost"))
        .await
        .refused(400, "InvalidPaymentStatus");
    t.send(&orders(CUSTOMER).p("CreateTimeStart", "yesterday"))
        .await
        .refused(400, "InvalidCreateTimeStart");
    let other = t.send(&orders(CUSTOMER2)).await.ok();
    assert_eq!(other.data()["TotalCount"], 0);
}

// --------------------------------------------------------------------- ECS

fn run(prepaid: bool) -> Call {
    let call = Call::ecs("RunInstances")
        .owner(CUSTOMER)
        .p("InstanceType", "ecs.g6.large")
        .p("ImageId", "aliyun_3_x64_20G_alibase_20240819.vhd");
    if prepaid {
        call.p("InstanceChargeType", "PrePaid")
            .p("Period", "1")
            .p("PeriodUnit", "Month")
    } else {
        call
    }
}

#[tokio::test]
async fn describe_price_has_the_ecs_shape() {
    let t = TestSim::start().await;
    let call = Call::ecs("DescribePrice")
        .owner(CUSTOMER)
        .p("InstanceType", "ecs.g6.large");
    let hourly = t.send(&call).await.ok();
    assert!(
        hourly.json.get("Code").is_none() && hourly.json.get("Success").is_none(),
        "{}",
        hourly.text
    );
    assert!(hourly.json["RequestId"].is_string());
    let price = &hourly.json["PriceInfo"]["Price"];
    // 0.39 + 40 GB x 0.0005 = 0.02 + 0 bandwidth.
    assert_eq!(num(&price["TradePrice"]), dec("0.41"));
    assert_eq!(
        hourly.json["PriceInfo"]["Rules"]["Rule"],
        serde_json::json!([])
    );

    let yearly = t
        .send(
            &call
                .clone()
                .p("PriceUnit", "Year")
                .p("Period", "1")
                .p("Amount", "2")
                .p("DataDisk.1.Category", "cloud_essd")
                .p("DataDisk.1.Size", "100")
                .p("DataDisk.2.Size", "100")
                .p("InternetChargeType", "PayByBandwidth")
                .p("InternetMaxBandwidthOut", "5"),
        )
        .await
        .ok();
    let price = &yearly.json["PriceInfo"]["Price"];
    let details = price["DetailInfos"]["DetailInfo"]
        .as_array()
        .expect("DetailInfo[]");
    let resources: Vec<&str> = details
        .iter()
        .filter_map(|d| d["Resource"].as_str())
        .collect();
    assert_eq!(
        resources,
        ["instanceType", "systemDisk", "dataDisk", "bandwidth"]
    );
    // instanceType: 201 x 12 x 2 = 4824, 15 % off.
    assert_eq!(num(&details[0]["OriginalPrice"]), dec("4824"));
    assert_eq!(num(&details[0]["DiscountPrice"]), dec("723.6"));
    // dataDisk: (1.50 + 0.35) x 100 x 12 x 2 = 4440.
    assert_eq!(num(&details[2]["OriginalPrice"]), dec("4440"));
    for f in ["OriginalPrice", "DiscountPrice", "TradePrice"] {
        assert_eq!(
            details.iter().map(|d| num(&d[f])).sum::<Decimal>(),
            num(&price[f]),
            "{f}"
        );
    }
    assert_eq!(
        num(&price["OriginalPrice"]) - num(&price["DiscountPrice"]),
        num(&price["TradePrice"])
    );
    let rule = &yearly.json["PriceInfo"]["Rules"]["Rule"][0];
    assert!(rule["RuleId"].is_i64() && rule["Description"].is_string());
    assert_eq!(details[0]["SubRules"]["Rule"][0]["RuleId"], rule["RuleId"]);

    let bad = [
        (
            call.clone().p("InstanceType", "ecs.x1.tiny"),
            "InvalidInstanceType.ValueNotSupported",
        ),
        (
            call.clone().p("PriceUnit", "Month").p("Period", "10"),
            "InvalidPeriod",
        ),
        (call.clone().p("PriceUnit", "Decade"), "InvalidPriceUnit"),
        (call.clone().p("RegionId", ""), "MissingRegionId"),
        (
            call.clone()
                .p("DataDisk.1.Category", "floppy")
                .p("DataDisk.1.Size", "40"),
            "InvalidDataDisk.1.Category",
        ),
        (call.clone().p("DataDisk.2.Size", "40"), "InvalidDataDisk"),
        (
            call.clone().p("DataDisk.1.Category", "cloud"),
            "MissingDataDisk.1.Size",
        ),
        (call.clone().p("ResourceType", "ddh"), "InvalidResourceType"),
    ];
    for (mut c, code) in bad {
        c.nonce = uuid::Uuid::new_v4().to_string();
        t.send(&c).await.refused(400, code);
    }
}

#[tokio::test]
async fn run_instances_orders_and_idempotency() {
    let t = TestSim::start().await;
    let payg = t.send(&run(false).p("Amount", "2")).await.ok();
    assert!(
        payg.json.get("OrderId").is_none(),
        "PostPaid has no order: {}",
        payg.text
    );
    assert_eq!(
        payg.json["InstanceIdSets"]["InstanceIdSet"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(num(&payg.json["TradePrice"]), dec("0.82"));

    let call = run(true).p("Period", "12").p("ClientToken", "run-1");
    let pre = t.send(&call).await.ok();
    let order_id = pre.json["OrderId"].as_str().expect("OrderId").to_owned();
    // (201 + 40 x 0.35) x 12 = 2580, 15 % off each line: 2193.
    assert_eq!(num(&pre.json["TradePrice"]), dec("2193"));
    let mut retry = call.clone();
    retry.nonce = uuid::Uuid::new_v4().to_string();
    let again = t.send(&retry).await.ok();
    assert_eq!(again.json["OrderId"], order_id.as_str());
    assert_eq!(again.json["InstanceIdSets"], pre.json["InstanceIdSets"]);

    let listed = t
        .send(&Call::ecs("DescribeInstances").owner(CUSTOMER))
        .await
        .ok();
    assert!(listed.json.get("Code").is_none());
    assert_eq!(listed.json["TotalCount"], 3);
    let inst = &listed.json["Instances"]["Instance"][2];
    assert_eq!(inst["InstanceChargeType"], "PrePaid");
    assert_eq!(inst["Status"], "Running");
    assert_eq!(inst["InstanceType"], "ecs.g6.large");
    assert!(
        inst["InstanceId"]
            .as_str()
            .is_some_and(|i| i.starts_with("i-"))
    );
    let other = t
        .send(&Call::ecs("DescribeInstances").owner(CUSTOMER2))
        .await
        .ok();
    assert_eq!(other.json["TotalCount"], 0);
    let some = t
        .send(
            &Call::ecs("DescribeInstances")
                .owner(CUSTOMER)
                .p("InstanceIds", &format!("[{}]", inst["InstanceId"])),
        )
        .await
        .ok();
    assert_eq!(some.json["TotalCount"], 1);

    let order = t
        .send(
            &Call::bss("GetOrderDetail")
                .owner(CUSTOMER)
                .p("OrderId", &order_id),
        )
        .await
        .ok();
    assert_eq!(
        order.data()["OrderList"]["Order"][0]["PretaxAmount"],
        "2193.00"
    );
    assert_eq!(order.data()["OrderList"]["Order"][0]["ProductCode"], "ecs");

    let bad = [
        (run(true).p("Period", "10"), "InvalidPeriod"),
        (run(true).p("Period", ""), "MissingPeriod"),
        (run(false).p("ImageId", ""), "MissingImageId"),
        (
            run(false).p("InstanceChargeType", "Free"),
            "InvalidInstanceChargeType",
        ),
        (run(false).p("Amount", "101"), "InvalidAmount"),
        (run(false).p("DryRun", "true"), "DryRunOperation"),
    ];
    for (c, code) in &bad {
        t.send(c).await.refused(400, code);
    }
}

#[tokio::test]
async fn only_unpaid_orders_can_be_cancelled() {
    let t = TestSim::start().await;
    let unpaid = t.send(&run(true).p("AutoPay", "false")).await.ok();
    let order_id = unpaid.json["OrderId"].as_str().expect("OrderId").to_owned();
    let pending = t
        .send(
            &Call::ecs("DescribeInstances")
                .owner(CUSTOMER)
                .p("Status", "Pending"),
        )
        .await
        .ok();
    assert_eq!(pending.json["TotalCount"], 1);
    let listed = t
        .send(&orders(CUSTOMER).p("PaymentStatus", "Unpaid"))
        .await
        .ok();
    assert_eq!(
        listed.data()["OrderList"]["Order"][0]["OrderId"],
        order_id.as_str()
    );

    let cancel = |id: &str| Call::bss("CancelOrder").owner(CUSTOMER).p("OrderId", id);
    let a = t.send(&cancel(&order_id)).await.ok();
    assert_eq!(a.data()["HostId"], "cn");
    let cancelled = t
        .send(&orders(CUSTOMER).p("PaymentStatus", "Cancelled"))
        .await
        .ok();
    assert_eq!(cancelled.data()["TotalCount"], 1);
    let pending = t
        .send(&Call::ecs("DescribeInstances").owner(CUSTOMER))
        .await
        .ok();
    assert_eq!(pending.json["TotalCount"], 0, "the unpaid instance is gone");
    t.send(&cancel(&order_id))
        .await
        .refused(400, "InvalidParameter");

    let paid = t.send(&oss_package(CUSTOMER, None)).await.ok();
    t.send(&cancel(paid.data()["OrderId"].as_str().expect("id")))
        .await
        .refused(400, "InvalidParameter");
    t.send(&cancel("999"))
        .await
        .refused(400, "InvalidParameter");
}

// ------------------------------------------------------------------- bills

#[test]
fn bucket_path_rules() {
    let long_ok = "x".repeat(254);
    let long_bad = "x".repeat(255);
    let long_cjk = "账".repeat(254);
    let good = [
        "bills",
        "a/b/c",
        "账单/2024",
        "a..b",
        "..a/b",
        "a/b/",
        "a\\b",
        "a/./b",
        long_ok.as_str(),
        long_cjk.as_str(),
    ];
    let bad = [
        "",
        "/bills",
        "\\bills",
        "a//b",
        "a/b//",
        "a/../b",
        "..",
        "a/..",
        "bills😀",
        "☀/x",
        "a\u{FFFD}b",
        long_bad.as_str(),
    ];
    for p in good {
        assert_eq!(check_bucket_path(p), Ok(()), "{p:?}");
    }
    for p in bad {
        assert!(check_bucket_path(p).is_err(), "{p:?} accepted");
    }
}

#[tokio::test]
async fn bill_subscriptions_validate_and_are_stored() {
    let t = TestSim::start().await;
    let sub = || {
        Call::bss("SubscribeBillToOSS")
            .p("SubscribeBucket", "partner-bills")
            .p("SubscribeType", "InstanceDetailMonthly")
            .p("BucketOwnerId", CUSTOMER)
            .p("BeginBillingCycle", "2024-03")
    };
    let a = t.send(&sub().p("BucketPath", "tollgate/2024")).await.ok();
    assert_eq!(a.code(), "Success");
    assert_eq!(a.json["Success"], true);
    assert!(a.json.get("Data").is_none(), "no Data: {}", a.text);

    for bad in ["/x", "a//b", "a/../b", "bills😀", ""] {
        let e = t.send(&sub().p("BucketPath", bad)).await;
        e.refused(400, "InvalidBucketPath");
        assert!(
            e.json["Message"]
                .as_str()
                .unwrap_or_default()
                .contains("BucketPath")
        );
    }
    let cases = [
        (
            sub().p("SubscribeType", "Everything"),
            "InvalidSubscribeType",
        ),
        (sub().p("SubscribeBucket", ""), "MissingSubscribeBucket"),
        (
            sub().p("BeginBillingCycle", "2024-13"),
            "InvalidBeginBillingCycle",
        ),
        (
            sub().p("MultAccountRelSubscribe", "XX"),
            "InvalidMultAccountRelSubscribe",
        ),
        (sub().p("BucketOwnerId", "me"), "InvalidBucketOwnerId"),
    ];
    for (call, code) in &cases {
        t.send(call).await.refused(400, code);
    }

    let q = t.send(&Call::bss("QueryBillToOSSSubscription")).await.ok();
    let item = &q.data()["Items"]["Item"][0];
    assert_eq!(item["SubscribeType"], "InstanceDetailMonthly");
    assert_eq!(item["BucketPath"], "tollgate/2024");
    assert_eq!(item["SubscribeBucket"], "partner-bills");

    t.send(&Call::bss("UnsubscribeBillToOSS"))
        .await
        .refused(400, "MissingSubscribeType");
    let u = t
        .send(&Call::bss("UnsubscribeBillToOSS").p("SubscribeType", "InstanceDetailMonthly"))
        .await
        .ok();
    assert!(u.json.get("Data").is_none());
    let q = t.send(&Call::bss("QueryBillToOSSSubscription")).await.ok();
    assert_eq!(q.data()["Items"]["Item"], serde_json::json!([]));
}

// ---------------------------------------------------------------- reseller

fn quota(action: &str) -> Call {
    Call::bss(action).owner(CUSTOMER)
}

fn consume(adjust: &str, amount: &str, out_biz_id: &str) -> Call {
    quota("ChangeResellerConsumeAmount")
        .p("AdjustType", adjust)
        .p("Amount", amount)
        .p("Currency", "CNY")
        .p("BusinessType", "quota_amount_adjust")
        .p("Source", "tollgate")
        .p("OutBizId", out_biz_id)
}

#[tokio::test]
async fn the_quota_ledger_follows_the_reseller_apis() {
    let t = TestSim::start().await;
    let create = quota("CreateResellerUserQuota")
        .p("Amount", "1000")
        .p("Currency", "CNY");
    let a = t.send(&create).await.ok();
    assert_eq!(a.code(), "200");
    assert_eq!(a.data(), &Value::Bool(true));
    let mut again = create.clone();
    again.nonce = uuid::Uuid::new_v4().to_string();
    let dup = t.send(&again).await;
    dup.refused(400, "-303");

    let available = || quota("QueryResellerAvailableQuota");
    assert_eq!(t.send(&available()).await.ok().data(), "1000.00");

    let c = t.send(&consume("increase", "300", "biz-1")).await.ok();
    assert_eq!(c.code(), "200");
    assert_eq!(c.data(), "300.00");
    // Same OutBizId: answered again, not applied twice.
    assert_eq!(
        t.send(&consume("increase", "300", "biz-1"))
            .await
            .ok()
            .data(),
        "300.00"
    );
    assert_eq!(
        t.send(&consume("decrease", "50.5", "biz-2"))
            .await
            .ok()
            .data(),
        "249.50"
    );
    assert_eq!(
        t.send(&available().p("ItemCodes", r#"["CREDIT_QUOTA_BOOK_ITEM"]"#))
            .await
            .ok()
            .data(),
        "750.50"
    );

    t.send(&quota("SetResellerUserQuota").p("Amount", "100"))
        .await
        .ok();
    assert_eq!(t.send(&available()).await.ok().data(), "-149.50");

    let status = |s: &str| {
        quota("SetResellerUserStatus")
            .p("BusinessType", "FREEZE")
            .p("Status", s)
    };
    let thaw = t.send(&status("Thaw")).await.ok();
    assert_eq!(thaw.code(), "-116");
    assert_eq!(thaw.json["Success"], false);
    let frozen = t.send(&status("Freeze")).await.ok();
    assert_eq!(frozen.data(), &Value::Bool(true));
    t.send(&status("Melt")).await.refused(400, "InvalidStatus");

    let alarm = quota("SetResellerUserAlarmThreshold").p("AlarmType", "quota_low_balance");
    let ok = t
        .send(&alarm.clone().p(
            "AlarmThresholds",
            r#"[{"denominator":100,"numerator":30,"thresholdType":1}]"#,
        ))
        .await
        .ok();
    assert_eq!(ok.data(), &Value::Bool(true));
    let mut bad = alarm
        .clone()
        .p("AlarmThresholds", r#"[{"thresholdType":2}]"#);
    bad.nonce = uuid::Uuid::new_v4().to_string();
    t.send(&bad).await.refused(400, "InvalidAlarmThresholds");

    let refusals = [
        (consume("sideways", "1", "x"), "InvalidAdjustType"),
        (consume("increase", "-1", "x"), "InvalidAmount"),
        (consume("increase", "1e3", "x"), "InvalidAmount"),
        (consume("increase", "1", ""), "MissingOutBizId"),
        (
            consume("increase", "1", "x").p("Currency", "USD"),
            "InvalidCurrency",
        ),
        (
            consume("increase", "1", "x").p("ExtendMap", "[]"),
            "InvalidExtendMap",
        ),
        (
            quota("CreateResellerUserQuota")
                .p("Amount", "1")
                .p("Currency", "EUR"),
            "InvalidCurrency",
        ),
        (available().p("ItemCodes", "CREDIT"), "InvalidItemCodes"),
        (quota("SetResellerUserQuota"), "MissingAmount"),
        (
            quota("SetResellerUserAlarmThreshold").p("AlarmType", "other"),
            "InvalidAlarmType",
        ),
    ];
    for (call, code) in &refusals {
        t.send(call).await.refused(400, code);
    }
    // Another customer's ledger is separate.
    let other = t
        .send(&Call::bss("QueryResellerAvailableQuota").owner(CUSTOMER2))
        .await
        .ok();
    assert_eq!(other.data(), "0.00");
}

// ------------------------------------------------------------------ helpers

#[test]
fn money_helpers_round_half_up_and_never_use_floats() {
    assert_eq!(round2(dec("0.005")), dec("0.01"));
    assert_eq!(round2(dec("0.0049")), dec("0.00"));
    assert_eq!(round2(dec("2.675")), dec("2.68"), "a float would say 2.67");
    assert_eq!(money_string(dec("300")), "300.00");
    assert_eq!(money_string(dec("91.8")), "91.80");
    assert_eq!(json_number(dec("3712.80")).to_string(), "3712.8");
    assert_eq!(json_number(dec("900.00")).to_string(), "900");
    assert_eq!(json_number(dec("0.000165")).to_string(), "0.000165");
}

#[test]
fn the_price_file_refuses_floats_and_bad_tables() {
    let ok = r#"
[discount]
min_months = 12
rate = "0.15"
promotion_id = 1
promotion_name = "p"
promotion_desc = "d"
[product.x]
name = "X"
type = "x"
instance_prefix = "x-"
[product.x.module.M]
name = "M"
config = ["Size"]
per = "Size"
price.default = { hour = "0.10" }
"#;
    let table = PriceTable::from_toml(ok).expect("good table");
    assert_eq!(table.currency, "CNY");
    for bad in [
        ok.replace(r#"hour = "0.10""#, "hour = 0.10"),
        ok.replace(r#"rate = "0.15""#, r#"rate = "1.5""#),
        ok.replace(r#"per = "Size""#, r#"per = "Weight""#),
        ok.replace("price.default", "price.big"),
        ok.replace(r#"hour = "0.10""#, r#"hour = "-1""#),
        ok.replace("instance_prefix", "prefix"),
    ] {
        assert!(PriceTable::from_toml(&bad).is_err(), "accepted:\n{bad}");
    }
    PriceTable::load(&super::tests::policies().join("sim-prices.toml"))
        .expect("the shipped price file loads");
}

#[test]
fn alarm_thresholds_are_checked() {
    assert!(check_thresholds(r#"[{"thresholdType":0,"thresholdAmount":100.5}]"#).is_ok());
    assert!(check_thresholds(r#"[{"denominator":100,"numerator":30,"thresholdType":1}]"#).is_ok());
    assert!(check_thresholds("[]").is_ok());
    for bad in [
        "{}",
        "nope",
        r#"[{"thresholdType":0}]"#,
        r#"[{"thresholdType":0,"thresholdAmount":-1}]"#,
        r#"[{"thresholdType":1,"numerator":3,"denominator":0}]"#,
        r#"[{"thresholdType":1,"numerator":300,"denominator":100}]"#,
        r#"[1]"#,
    ] {
        assert!(check_thresholds(bad).is_err(), "{bad} accepted");
    }
}
