//! Validation on load: every refusal names the file, the line and column,
//! and the statement/action; a set with an error never loads.

use super::testkit::*;
use super::*;

const ATTACH_P0: &str = "[[attach]]\npolicy = \"p0\"\ncustomers = [\"ops-1\"]\n";

/// The problems for one policy text (attached to ops-1), as strings.
fn problems(policy: &str) -> Vec<String> {
    match try_build(&[policy], ATTACH_P0) {
        Ok(_) => Vec::new(),
        Err(d) => {
            d.0.iter()
                .filter(|d| d.is_error())
                .map(ToString::to_string)
                .collect()
        }
    }
}

#[track_caller]
fn one(policy: &str, starts: &str, contains: &str) {
    let p = problems(policy);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].starts_with(starts), "want prefix {starts:?}: {p:#?}");
    assert!(p[0].contains(contains), "want {contains:?}: {p:#?}");
}

#[test]
fn syntax_and_shape_errors_carry_serdes_position() {
    one(
        "{\n  \"Version\": \"1.1\",\n  \"Statement\": [\n    {\"Effect\": \"Allow\", \"Action\": [\"bss:order:view\",]}\n  ]\n}",
        "perm/p0.json:4:53: error: ",
        "trailing comma",
    );
    one(
        "{\"Version\": \"1.1\",\n \"Statement\": [{\"Effect\": \"allow\", \"Action\": [\"bss:order:view\"]}]}",
        "perm/p0.json:2:",
        "unknown variant `allow`, expected `Allow` or `Deny`",
    );
    // NotAction (IAM 5.0) and Sid are not 1.1: refused, never ignored.
    one(
        "{\"Version\": \"1.1\", \"Statement\": [{\"Effect\": \"Allow\", \"NotAction\": [\"bss:order:pay\"]}]}",
        "perm/p0.json:1:",
        "unknown field `NotAction`",
    );
    one(
        "{\"Version\": \"1.1\", \"Statement\": [{\"Effect\": \"Deny\", \"Action\": [\"bss:order:pay\"],\n \"Condition\": {\"StringEquals\": {\"g:UserName\": [\"a\"]}, \"StringEquals\": {\"g:UserName\": [\"b\"]}}}]}",
        "perm/p0.json:2:",
        "duplicate key `StringEquals`",
    );
    one(
        "{\"Version\": \"1.1\", \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"bss:order:view\"}]}",
        "perm/p0.json:1:",
        "expected a sequence",
    );
}

#[test]
fn version_and_statement_count() {
    one(
        "{\n \"Version\": \"1.0\",\n \"Statement\": [{\"Effect\": \"Allow\", \"Action\": [\"bss:order:view\"]}]}",
        "perm/p0.json:2:13: error: Version: `1.0`: custom policies are Version \"1.1\"",
        "",
    );
    let statement = "  {\"Effect\": \"Allow\", \"Action\": [\"bss:order:view\"]}";
    let nine = [statement; 9].join(",\n");
    one(
        &format!("{{\"Version\": \"1.1\", \"Statement\": [\n{nine}\n]}}"),
        "perm/p0.json:10:3: error: Statement[8]: 9 statements: a policy holds at most 8",
        "",
    );
    let eight = [statement; 8].join(",\n");
    assert!(
        problems(&format!(
            "{{\"Version\": \"1.1\", \"Statement\": [\n{eight}\n]}}"
        ))
        .is_empty()
    );
    one(
        "{\"Version\": \"1.1\", \"Statement\": []}",
        "perm/p0.json:1:33: error: Statement: a policy needs at least one statement",
        "",
    );
}

#[test]
fn the_action_limit_counts_the_whole_policy() {
    // 60 + 41 actions in two statements: the 101st is refused, where it is.
    let codes: Vec<String> = std::iter::repeat_n("\"bss:order:view\"", 60)
        .map(String::from)
        .collect();
    let first = codes.join(", ");
    let second = codes[..41].join(", ");
    let text = format!(
        "{{\"Version\": \"1.1\", \"Statement\": [\n{{\"Effect\": \"Allow\", \"Action\": [{first}]}},\n{{\"Effect\": \"Allow\", \"Action\": [{second}]}}]}}"
    );
    let p = problems(&text);
    let limit: Vec<&String> = p
        .iter()
        .filter(|s| s.contains("at most 100 actions"))
        .collect();
    assert_eq!(limit.len(), 1, "{p:#?}");
    // Statement[1].Action[40] is the 101st; 0-based column of its quote.
    let col = "{\"Effect\": \"Allow\", \"Action\": [".len() + 40 * "\"bss:order:view\", ".len() + 1;
    assert!(
        limit[0].starts_with(&format!(
            "perm/p0.json:3:{col}: error: Statement[1].Action[40]"
        )),
        "{limit:#?}"
    );
}

#[test]
fn malformed_and_unknown_actions_are_placed() {
    let text = "{\"Version\": \"1.1\", \"Statement\": [\n  {\"Effect\": \"Allow\",\n   \"Action\": [\"bss:order:view\", \"bss::view\", \"bss:order view\", \"bss:odrer:view\", \"bss:order:view:x\", \"ecs:Delete*\"]}\n]}";
    let p = problems(text);
    assert_eq!(p.len(), 5, "{p:#?}");
    assert!(
        p[0].starts_with(
            "perm/p0.json:3:33: error: Statement[0].Action[1]: `bss::view`: segment 2 is empty"
        ),
        "{p:#?}"
    );
    assert!(
        p[1].starts_with("perm/p0.json:3:46: error: Statement[0].Action[2]")
            && p[1].contains("not allowed"),
        "{p:#?}"
    );
    assert!(
        p[2].starts_with("perm/p0.json:3:64: error: Statement[0].Action[3]: `bss:odrer:view` matches no permission code"),
        "{p:#?}"
    );
    assert!(
        p[3].contains("Statement[0].Action[4]") && p[3].contains("4 segment(s)"),
        "{p:#?}"
    );
    assert!(
        p[4].contains("Statement[0].Action[5]")
            && p[4].contains("`ecs:Delete*` matches no permission code"),
        "{p:#?}"
    );
}

#[test]
fn conditions_and_resources_are_placed() {
    let text = r#"{"Version": "1.1", "Statement": [
  {"Effect": "Deny", "Action": ["bss:order:pay"], "Resource": ["*", "bss:*:*:order:*"],
   "Condition": {
     "StringBeginsWith": {"g:UserName": ["x"]},
     "DateLessThan": {"g:CurrentTime": ["2026-01-01T00:00:00Z", "soon"]},
     "StringEquals": {"obs:prefix": ["a"]}
   }}
]}"#;
    let p = problems(text);
    assert_eq!(p.len(), 4, "{p:#?}");
    assert!(
        p[0].starts_with(
            "perm/p0.json:2:69: error: Statement[0].Resource[1]: `bss:*:*:order:*`: only \"*\""
        ),
        "{p:#?}"
    );
    assert!(p[1].starts_with("perm/p0.json:4:6: error: Statement[0].Condition.StringBeginsWith.g:UserName: unknown condition operator"), "{p:#?}");
    assert!(
        p[2].starts_with(
            "perm/p0.json:5:65: error: Statement[0].Condition.DateLessThan.g:CurrentTime: `soon`"
        ),
        "{p:#?}"
    );
    assert!(p[3].starts_with("perm/p0.json:6:23: error: Statement[0].Condition.StringEquals.obs:prefix: Tollgate does not supply"), "{p:#?}");
}

#[test]
fn the_condition_limit() {
    let keys = |n: usize| -> String {
        (0..n)
            .map(|i| {
                format!(
                    "\"{}\": {{\"g:UserName\": [\"u{i}\"]}}",
                    [
                        "StringNotEquals",
                        "StringNotLike",
                        "StringNotStartWith",
                        "StringNotEndWith",
                        "StringNotEqualsIgnoreCase",
                        "StringNotStartWithIgnoreCase",
                        "StringNotEndWithIgnoreCase",
                        "StringNotEqualsIfExists",
                        "StringNotLikeIfExists",
                        "StringNotStartWithIfExists",
                        "StringNotEndWithIfExists"
                    ][i]
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let doc = |n| {
        format!(
            "{{\"Version\": \"1.1\", \"Statement\": [{{\"Effect\": \"Deny\", \"Action\": [\"bss:order:pay\"], \"Condition\": {{{}}}}}]}}",
            keys(n)
        )
    };
    assert!(problems(&doc(10)).is_empty(), "{:#?}", problems(&doc(10)));
    let p = problems(&doc(11));
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(
        p[0].contains(
            "Condition.StringNotEndWithIfExists.g:UserName: a policy holds at most 10 conditions"
        ),
        "{p:#?}"
    );
}

#[test]
fn every_broken_file_is_reported_and_nothing_loads() {
    let good = policy("Allow", &["bss:order:view"]);
    let bad1 = policy("Allow", &["bss:order:veiw"]);
    let bad2 = "{\"Version\": 1.1}";
    let d = try_build(&[&good, &bad1, bad2], "").expect_err("refused");
    let text = d.to_string();
    assert!(
        text.starts_with("2 errors in the permission files"),
        "{text}"
    );
    assert!(
        text.contains("perm/p1.json:1:") && text.contains("perm/p2.json:1:"),
        "{text}"
    );
}

#[test]
fn attachment_errors_are_placed() {
    let p0 = policy("Allow", &["bss:order:view"]);
    let text = "unlisted = \"allow\"\n[[attach]]\npolicy = \"p9\"\ncustomers = [\"ops-1\"]\n\n[[attach]]\npolicy = \"p0\"\ncustomers = [\"ops-1\", \"nobody\"]\n\n[[attach]]\npolicy = \"p0\"\n";
    let d = try_build(&[&p0], text).expect_err("refused");
    let s: Vec<String> =
        d.0.iter()
            .filter(|d| d.is_error())
            .map(ToString::to_string)
            .collect();
    assert_eq!(s.len(), 3, "{s:#?}");
    assert!(
        s[0].starts_with("perm/attachments.toml:3:10: error: attach[0].policy: no policy `p9`"),
        "{s:#?}"
    );
    assert!(
        s[1].starts_with(
            "perm/attachments.toml:8:23: error: attach[1].customers[1]: unknown customer `nobody`"
        ),
        "{s:#?}"
    );
    assert!(
        s[2].starts_with(
            "perm/attachments.toml:11:10: error: attach[2]: attaches the policy to nobody"
        ),
        "{s:#?}"
    );

    let d = try_build(&[&p0], "unlisted = \"maybe\"\n").expect_err("refused");
    assert!(
        d.to_string().contains("attachments.toml:1:12") && d.to_string().contains("maybe"),
        "{d}"
    );
}

#[test]
fn attachment_warnings_do_not_refuse() {
    let p0 = policy("Allow", &["bss:order:view"]);
    let p1 = policy("Allow", &["bss:bill:view"]);
    let a = build(
        &[&p0, &p1],
        "[[attach]]\npolicy = \"p0\"\ngroups = [\"ops\", \"finance\"]\n",
    );
    let w: Vec<String> = a.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(
        w[0].contains("3:") && w[0].contains("no customer is in group `finance` yet"),
        "{w:#?}"
    );
    assert!(w[1].contains("policy `p1` is attached to nobody"), "{w:#?}");
}

#[test]
fn a_folder_with_a_bad_policy_never_becomes_active() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
    let perms = dir.path().join("permissions");
    std::fs::create_dir(&perms).expect("mkdir");
    std::fs::write(perms.join("ok.json"), policy("Allow", &["bss:order:view"])).expect("write");
    std::fs::write(
        perms.join("attachments.toml"),
        "[[attach]]\npolicy = \"ok\"\ncustomers = [\"ops-1\"]\n",
    )
    .expect("write");
    let cfg = AuthzConfig {
        catalog_dir: root.join("catalog"),
        permissions_dir: perms.clone(),
    };
    Authz::load(&cfg, dir.path(), &customers()).unwrap_or_else(|d| panic!("{d}"));
    // A second policy with an error: the whole folder is refused.
    std::fs::write(
        perms.join("broken.json"),
        policy("Allow", &["bss:order:*", "BSS:x:y"]),
    )
    .expect("write");
    let err = Authz::load(&cfg, dir.path(), &customers()).expect_err("refused");
    assert!(err.to_string().contains("broken.json:1:"), "{err}");
    // An oversized file is refused before it is parsed.
    std::fs::write(perms.join("broken.json"), " ".repeat(70_000)).expect("write");
    let err = Authz::load(&cfg, dir.path(), &customers()).expect_err("refused");
    assert!(err.to_string().contains("larger than 65536 bytes"), "{err}");
    // A missing attachments file is an error, not an empty set.
    std::fs::remove_file(perms.join("broken.json")).expect("rm");
    std::fs::remove_file(perms.join("attachments.toml")).expect("rm");
    let err = Authz::load(&cfg, dir.path(), &customers()).expect_err("refused");
    assert!(
        err.to_string()
            .contains("attachments.toml: error: cannot read"),
        "{err}"
    );
}
