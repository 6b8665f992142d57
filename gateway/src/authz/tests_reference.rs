//! Every example and test vector of huawei-iam-policy.md, as written there.

use super::Verdict;
use super::testkit::*;

/// §3 "Test vectors": policies → request → expected, row by row.
#[test]
fn vector_01_no_policy_denies_implicitly() {
    let a = attached_to_all(&[], "allow");
    let d = decide(&a, Call::Codes(&["bss:order:view"]), ctx(&a, "ops-1"));
    expect(&d, Verdict::ImplicitDeny, None);
}

#[test]
fn vector_02_allow_the_code() {
    let a = attached_to_all(&[&policy("Allow", &["bss:order:view"])], "allow");
    let d = decide(&a, Call::Codes(&["bss:order:view"]), ctx(&a, "ops-1"));
    expect(&d, Verdict::Allow, Some(("p0", 0)));
}

#[test]
fn vector_03_allow_one_code_is_not_another() {
    let a = attached_to_all(&[&policy("Allow", &["bss:order:view"])], "allow");
    let d = decide(&a, Call::Codes(&["bss:order:pay"]), ctx(&a, "ops-1"));
    expect(&d, Verdict::ImplicitDeny, None);
}

#[test]
fn vector_04_type_wildcard_allows_every_view() {
    let a = attached_to_all(&[&policy("Allow", &["bss:*:view"])], "allow");
    let d = decide(&a, Call::Codes(&["bss:bill:view"]), ctx(&a, "ops-1"));
    expect(&d, Verdict::Allow, Some(("p0", 0)));
}

#[test]
fn vector_05_type_wildcard_keeps_the_operation() {
    let a = attached_to_all(&[&policy("Allow", &["bss:*:view"])], "allow");
    let d = decide(&a, Call::Codes(&["bss:order:update"]), ctx(&a, "ops-1"));
    expect(&d, Verdict::ImplicitDeny, None);
}

#[test]
fn vector_06_type_and_operation_are_case_insensitive() {
    let a = attached_to_all(&[&policy("Allow", &["bss:Order:VIEW"])], "allow");
    let d = decide(&a, Call::Codes(&["bss:order:view"]), ctx(&a, "ops-1"));
    expect(&d, Verdict::Allow, Some(("p0", 0)));
}

#[test]
fn vector_07_an_upper_case_service_rejects_the_policy() {
    let problems = try_build(
        &[&policy("Allow", &["BSS:order:view"])],
        "[[attach]]\npolicy = \"p0\"\ncustomers = [\"ops-1\"]\n",
    )
    .expect_err("rejected at load");
    let text = problems.to_string();
    assert!(
        text.contains("perm/p0.json:1:") && text.contains("the service `BSS` must be lower case"),
        "{text}"
    );
}

#[test]
fn vector_08_deny_wins_over_allow_everything() {
    let both = r#"{"Version": "1.1", "Statement": [
        {"Effect": "Allow", "Action": ["*:*:*"]},
        {"Effect": "Deny", "Action": ["bss:*:*"]}
    ]}"#;
    let a = attached_to_all(&[both], "allow");
    let d = decide(&a, Call::Codes(&["bss:order:view"]), ctx(&a, "ops-1"));
    expect(&d, Verdict::Deny, Some(("p0", 1)));
}

#[test]
fn vector_09_deny_in_another_policy_wins() {
    let a = attached_to_all(
        &[
            &policy("Allow", &["bss:*:*"]),
            &policy("Deny", &["bss:order:pay"]),
        ],
        "allow",
    );
    let d = decide(&a, Call::Codes(&["bss:order:pay"]), ctx(&a, "ops-1"));
    expect(&d, Verdict::Deny, Some(("p1", 0)));
}

#[test]
fn vector_10_a_deny_only_policy_grants_nothing() {
    let a = attached_to_all(&[&policy("Deny", &["bss:order:pay"])], "allow");
    let d = decide(&a, Call::Codes(&["bss:order:view"]), ctx(&a, "ops-1"));
    expect(&d, Verdict::ImplicitDeny, None);
}

const OPS_ONLY: &str = r#"{"StringStartWith": {"g:UserName": ["ops"]}}"#;

#[test]
fn vector_11_condition_holds_for_ops() {
    let a = attached_to_all(
        &[&conditional("Allow", &["bss:order:*"], OPS_ONLY)],
        "allow",
    );
    let d = decide(&a, Call::Codes(&["bss:order:update"]), ctx(&a, "ops-1"));
    expect(&d, Verdict::Allow, Some(("p0", 0)));
}

#[test]
fn vector_12_condition_fails_for_dev() {
    let a = attached_to_all(
        &[&conditional("Allow", &["bss:order:*"], OPS_ONLY)],
        "allow",
    );
    let d = decide(&a, Call::Codes(&["bss:order:update"]), ctx(&a, "dev-1"));
    expect(&d, Verdict::ImplicitDeny, None);
}

#[test]
fn vector_13_either_alternative_grants_the_api() {
    // ListPayPerUseCustomerResources requires bss:renewal:view|bss:order:view.
    let a = attached_to_all(&[&policy("Allow", &["bss:renewal:view"])], "allow");
    let d = decide(
        &a,
        Call::Huawei("POST", "/v2/orders/suscriptions/resources/query"),
        ctx(&a, "ops-1"),
    );
    expect(&d, Verdict::Allow, Some(("p0", 0)));
    // The old code alone grants it too.
    let old = attached_to_all(&[&policy("Allow", &["bss:order:view"])], "allow");
    let d = decide(
        &old,
        Call::Huawei("POST", "/v2/orders/suscriptions/resources/query"),
        ctx(&old, "ops-1"),
    );
    expect(&d, Verdict::Allow, Some(("p0", 0)));
}

/// §3 "Permission alternatives": deny if any listed code is explicitly denied.
#[test]
fn a_deny_on_either_alternative_refuses_the_api() {
    let a = attached_to_all(
        &[
            &policy("Allow", &["bss:renewal:view"]),
            &policy("Deny", &["bss:order:view"]),
        ],
        "allow",
    );
    let d = decide(
        &a,
        Call::Huawei("POST", "/v2/orders/suscriptions/resources/query"),
        ctx(&a, "ops-1"),
    );
    expect(&d, Verdict::Deny, Some(("p1", 0)));
    assert_eq!(
        d.code.map(|c| a.catalog().code(c).as_str()),
        Some("bss:order:view")
    );
}

/// §2: the syntax example (view permissions; pay denied to interns).
const SECTION_2_EXAMPLE: &str = r#"{
  "Version": "1.1",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["bss:order:view", "bss:bill:view", "bss:discount:view"]
    },
    {
      "Effect": "Deny",
      "Action": ["bss:order:pay"],
      "Condition": { "StringStartWith": { "g:UserName": ["intern-"] } }
    }
  ]
}"#;

#[test]
fn the_syntax_example_allows_views_and_denies_pay_to_interns() {
    let a = attached_to_all(&[SECTION_2_EXAMPLE], "allow");
    for code in ["bss:order:view", "bss:bill:view", "bss:discount:view"] {
        let d = decide(&a, Call::Codes(&[code]), ctx(&a, "intern-1"));
        expect(&d, Verdict::Allow, Some(("p0", 0)));
    }
    let d = decide(&a, Call::Codes(&["bss:order:pay"]), ctx(&a, "intern-1"));
    expect(&d, Verdict::Deny, Some(("p0", 1)));
    // Not an intern: the Deny does not apply, but nothing allows pay either.
    let d = decide(&a, Call::Codes(&["bss:order:pay"]), ctx(&a, "ops-1"));
    expect(&d, Verdict::ImplicitDeny, None);
    // Through the catalog: PayOrders (rows 9 and 11).
    let d = decide(
        &a,
        Call::Huawei("POST", "/v3/orders/customer-orders/pay"),
        ctx(&a, "intern-1"),
    );
    expect(&d, Verdict::Deny, Some(("p0", 1)));
}

/// §2 "Action string rules": the official wildcard forms.
#[test]
fn the_official_wildcard_forms() {
    let a = attached_to_all(&[&policy("Allow", &["bss:*:*"])], "allow");
    for code in [
        "bss:order:pay",
        "bss:enterpriseProjectFunction:update",
        "bss:invoice:update",
    ] {
        expect(
            &decide(&a, Call::Codes(&[code]), ctx(&a, "ops-1")),
            Verdict::Allow,
            Some(("p0", 0)),
        );
    }
    // `bss:*:*` is Huawei's; Alibaba's `bss:DescribePrice` has two segments.
    expect(
        &decide(&a, Call::Codes(&["bss:DescribePrice"]), ctx(&a, "ops-1")),
        Verdict::ImplicitDeny,
        None,
    );
    let star = attached_to_all(&[&policy("Allow", &["*"])], "allow");
    for code in ["bss:order:pay", "bssapi:QueryOrders", "ecs:RunInstances"] {
        expect(
            &decide(&star, Call::Codes(&[code]), ctx(&star, "ops-1")),
            Verdict::Allow,
            Some(("p0", 0)),
        );
    }
}

/// §2: the documented example condition `StringEndWithIfExists` and the
/// official OBS example: refused at load here, with the reasons (OBS codes
/// are not in a billing gateway's catalog; `g:MFAPresent` is not supplied;
/// Resource URNs are not authorized).
#[test]
fn the_obs_example_is_refused_with_every_reason() {
    let obs = r#"{ "Version": "1.1", "Statement": [ { "Effect": "Allow",
      "Action": [ "obs:bucket:ListAllMyBuckets", "obs:bucket:HeadBucket" ],
      "Condition": { "StringEndWithIfExists": { "g:UserName": [ "specialCharacter" ] },
                     "Bool": { "g:MFAPresent": [ "true" ] } },
      "Resource": [ "obs:*:*:bucket:*" ] } ] }"#;
    let problems = try_build(&[obs], "").expect_err("refused");
    let text = problems.to_string();
    assert!(
        text.contains("Statement[0].Action[0]") && text.contains("matches no permission code"),
        "{text}"
    );
    assert!(text.contains("Statement[0].Action[1]"), "{text}");
    assert!(text.contains("Statement[0].Resource[0]"), "{text}");
    assert!(
        text.contains("Condition.Bool.g:MFAPresent") && text.contains("does not supply"),
        "{text}"
    );
    // The IfExists condition itself is fine.
    assert!(!text.contains("StringEndWithIfExists"), "{text}");
    assert_eq!(problems.error_count(), 4, "{text}");
}
