use bytes::Bytes;

use super::*;

fn call(action: &str, version: &str, params: &[(&str, &str)]) -> AliyunCall {
    let mut query: Vec<(String, String)> = vec![
        ("Action".into(), action.into()),
        ("Version".into(), version.into()),
        ("AccessKeyId".into(), "K".into()),
        ("Signature".into(), "s".into()),
        ("SignatureMethod".into(), "HMAC-SHA1".into()),
        ("SignatureVersion".into(), "1.0".into()),
        ("SignatureNonce".into(), "n".into()),
        ("Timestamp".into(), "2026-01-01T00:00:00Z".into()),
    ];
    query.extend(params.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    let qs: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&query)
        .finish();
    let req = http::Request::get(format!("/?{qs}"))
        .header("host", "gw")
        .body(())
        .expect("request");
    let (parts, ()) = req.into_parts();
    AliyunCall::parse(&parts, Bytes::new()).expect("parses")
}

const BUY: &[(&str, &str)] = &[
    ("ProductCode", "oss"),
    ("SubscriptionType", "Subscription"),
    ("Period", "12"),
    ("Parameter.1.Code", "PackageCode"),
    ("Parameter.1.Value", "standard_40G"),
    ("Parameter.2.Code", "Region"),
    ("Parameter.2.Value", "cn-hangzhou"),
];

fn buy(extra: &[(&'static str, &'static str)]) -> AliyunCall {
    let mut p = BUY.to_vec();
    p.extend_from_slice(extra);
    call("CreateInstance", BSS, &p)
}

fn refused(c: &AliyunCall) -> Error {
    check(c).expect_err("refused")
}

#[test]
fn an_ordinary_purchase_passes() {
    check(&buy(&[("ClientToken", "t")])).expect("plain purchase");
    check(&call(
        "RunInstances",
        ECS,
        &[
            ("RegionId", "cn-hangzhou"),
            ("InstanceType", "ecs.g6.large"),
            ("InstanceChargeType", "PrePaid"),
            ("Period", "1"),
            ("PeriodUnit", "Month"),
            ("Amount", "2"),
            ("DataDisk.1.Size", "40"),
            ("DataDisk.1.Category", "cloud_essd"),
            ("DataDisk.2.Size", "100"),
            ("Tag.1.Key", "env"),
            ("Tag.1.Value", "prod"),
            ("NetworkInterface.1.SecurityGroupIds.1", "sg-1"),
            ("NetworkInterface.1.SecurityGroupIds.2", "sg-2"),
        ],
    ))
    .expect("plain RunInstances");
    // Actions that move no money are not this module's business.
    check(&call("QueryOrders", BSS, &[("Whatever", "x")])).expect("not a purchase");
}

#[test]
fn the_same_property_twice_is_refused() {
    // The region rule bypass: Region under two indexes.
    let e = refused(&buy(&[
        ("Parameter.3.Code", "Region"),
        ("Parameter.3.Value", "ap-southeast-1"),
    ]));
    assert_eq!(e.code, "InvalidParameter.Duplicate", "{}", e.message);
    // Re-cased codes are the same code.
    let e = refused(&buy(&[
        ("Parameter.3.Code", "packagecode"),
        ("Parameter.3.Value", "standard_1T"),
    ]));
    assert_eq!(e.code, "InvalidParameter.Duplicate");
}

#[test]
fn list_indexes_must_be_one_to_n() {
    for bad in [
        &[("Parameter.4.Code", "X"), ("Parameter.4.Value", "y")][..],
        &[("Parameter.0.Code", "X"), ("Parameter.0.Value", "y")][..],
        &[("Parameter.03.Code", "X"), ("Parameter.03.Value", "y")][..],
        &[("Parameter.101.Code", "X"), ("Parameter.101.Value", "y")][..],
        &[("Parameter.3.Code", "X")][..],
        &[("Parameter.3.Value", "X")][..],
        &[("Parameter.3.Price", "0")][..],
    ] {
        let e = refused(&buy(bad));
        assert!(
            matches!(e.reason, "purchase_parameters" | "missing_parameter"),
            "{bad:?}: {}",
            e.message
        );
    }
    let e = refused(&call(
        "RunInstances",
        ECS,
        &[("InstanceType", "ecs.g6.large"), ("DataDisk.2.Size", "40")],
    ));
    assert!(e.message.contains("DataDisk.1"), "{}", e.message);
    let e = refused(&call(
        "RunInstances",
        ECS,
        &[("NetworkInterface.1.SecurityGroupIds.2", "sg")],
    ));
    assert!(e.message.contains("SecurityGroupIds"), "{}", e.message);
}

#[test]
fn unknown_parameters_and_values_are_refused() {
    let e = refused(&buy(&[("Quantity", "100")]));
    assert_eq!(e.code, "InvalidParameter.Unknown");
    let e = refused(&call(
        "RunInstances",
        ECS,
        &[("InstanceType", "ecs.g6.large"), ("Bandwidth", "100")],
    ));
    assert_eq!(e.code, "InvalidParameter.Unknown");
    // Enumerations are exact: lower case is another value.
    let mut lower = BUY.to_vec();
    lower[1] = ("SubscriptionType", "subscription");
    let e = refused(&call("CreateInstance", BSS, &lower));
    assert!(e.message.contains("SubscriptionType"), "{}", e.message);
    for (name, value) in [
        ("InstanceChargeType", "prepaid"),
        ("PeriodUnit", "Year"),
        ("Amount", "0"),
        ("Amount", "101"),
        ("Amount", "+2"),
        ("Amount", "02"),
        ("Period", "1.5"),
        ("DryRun", "TRUE"),
    ] {
        let e = refused(&call("RunInstances", ECS, &[(name, value)]));
        assert!(e.message.contains(name), "{name}={value}: {}", e.message);
    }
}

#[test]
fn required_parameters_are_required() {
    let e = refused(&call(
        "ModifyInstance",
        BSS,
        &[
            ("ProductCode", "oss"),
            ("SubscriptionType", "Subscription"),
            ("InstanceId", "i-1"),
        ],
    ));
    assert_eq!(e.code, "MissingModifyType");
    let e = refused(&call("CreateInstance", BSS, &[("ProductCode", "oss")]));
    assert_eq!(e.code, "MissingSubscriptionType");
}
