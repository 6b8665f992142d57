use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::snapshot::{self, Built, Sources};
use super::{Outcome, Reloader, Trigger};
use crate::config::{CustomersFile, ServeConfig};
use crate::proxy::Runtime;

fn repo_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// A copy of the example policy set (without pricing: these tests need no
/// built module) in a temporary folder.
fn policy_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = repo_policies();
    for sub in ["catalog", "permissions", "secrets", "secrets/huawei"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        for e in std::fs::read_dir(src.join(sub)).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_file() {
                std::fs::copy(&p, dir.path().join(sub).join(p.file_name().expect("name")))
                    .expect("copy");
            }
        }
    }
    std::fs::copy(
        src.join("customers.toml"),
        dir.path().join("customers.toml"),
    )
    .expect("copy");
    let config = std::fs::read_to_string(src.join("tollgate.toml")).expect("config");
    let config = strip_pricing(&config);
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, config).expect("write");
    (dir, path)
}

fn strip_pricing(config: &str) -> String {
    config
        .replace("[pricing]\n", "")
        .replace("module = \"pricing/reference.wasm\"\n", "")
        .replace("config = \"pricing/reference.toml\"\n", "")
        .replace("tests = \"pricing/tests\"\n", "")
}

fn runtime(config: &Path) -> Arc<Runtime> {
    let cfg = ServeConfig::load(config).expect("config");
    let customers = CustomersFile::load(&cfg.customers_path()).expect("customers");
    Arc::new(Runtime::new(&cfg, &customers).expect("runtime"))
}

fn version_of(config: &Path) -> String {
    let cfg = ServeConfig::load(config).expect("config");
    let customers = CustomersFile::load(&cfg.customers_path()).expect("customers");
    Sources::collect(Some(config), &cfg, &customers).version()
}

#[test]
fn the_version_is_the_content_wherever_the_files_are() {
    let (_a, config_a) = policy_copy();
    let (_b, config_b) = policy_copy();
    let v = version_of(&config_a);
    assert_eq!(v.len(), snapshot::VERSION_HEX_DIGITS);
    assert_eq!(v, version_of(&config_b), "same files, same version");
    // One byte in one policy file changes it.
    let orders = config_b.with_file_name("permissions").join("orders.json");
    let text = std::fs::read_to_string(&orders).expect("orders");
    std::fs::write(&orders, text.replacen("Allow", "Deny", 1)).expect("write");
    assert_ne!(v, version_of(&config_b));
    // So does a new file in a watched folder, and a changed secret.
    let (_c, config_c) = policy_copy();
    std::fs::write(
        config_c.with_file_name("secrets").join("acme.secret"),
        "rotated",
    )
    .expect("w");
    assert_ne!(v, version_of(&config_c));
}

#[test]
fn the_watch_set_names_sources_not_neighbours() {
    let (_d, config) = policy_copy();
    let cfg = ServeConfig::load(&config).expect("config");
    let customers = CustomersFile::load(&cfg.customers_path()).expect("customers");
    let set = Sources::collect(Some(&config), &cfg, &customers).watch_set();
    let base = config.parent().expect("dir");
    assert!(set.matters(&config));
    assert!(set.matters(&base.join("customers.toml")));
    assert!(set.matters(&base.join("secrets/acme.secret")));
    assert!(
        set.matters(&base.join("permissions/new-policy.json")),
        "a new policy file"
    );
    assert!(
        !set.matters(&base.join("permissions/.orders.json.swp")),
        "editor swap file"
    );
    assert!(
        !set.matters(&base.join("tollgate-ledger.sqlite-wal")),
        "the ledger next to the config"
    );
    assert!(
        !set.matters(&base.join("secrets/unrelated.txt")),
        "not a referenced secret"
    );
    assert!(set.folders.contains(&base.join("permissions")));
}

#[test]
fn a_malformed_policy_file_is_refused_with_its_position() {
    let (_d, config) = policy_copy();
    let rt = runtime(&config);
    let orders = config.with_file_name("permissions").join("orders.json");
    std::fs::write(
        &orders,
        "{\n  \"Version\": \"1.1\",\n  \"Statement\": [ oops ]\n}\n",
    )
    .expect("w");
    let Built::Refused(version, errors) = snapshot::build(&config, &rt, None) else {
        panic!("a malformed policy file must be refused");
    };
    assert!(version.is_some(), "the refused files still have a version");
    let e = errors
        .iter()
        .find(|e| e.file.ends_with("orders.json"))
        .unwrap_or_else(|| panic!("orders.json named: {errors:?}"));
    assert_eq!((e.line, e.column.is_some()), (Some(3), true), "{e}");
}

#[test]
fn a_config_syntax_error_is_placed_at_its_line_and_column() {
    let (_d, config) = policy_copy();
    let rt = runtime(&config);
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("{text}\n[server\nlisten = 1\n")).expect("w");
    let Built::Refused(_, errors) = snapshot::build(&config, &rt, None) else {
        panic!("refused");
    };
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].file.ends_with("tollgate.toml"));
    assert_eq!(
        errors[0].line,
        Some(text.lines().count() + 2),
        "{}",
        errors[0]
    );
    // An unknown field too (deny_unknown_fields), with its position.
    std::fs::write(&config, text.replace("host_id", "hostid")).expect("w");
    let Built::Refused(_, errors) = snapshot::build(&config, &rt, None) else {
        panic!("refused");
    };
    assert!(errors[0].message.contains("hostid"), "{}", errors[0]);
    assert!(errors[0].line.is_some(), "{}", errors[0]);
}

#[test]
fn a_missing_module_is_refused_naming_the_module() {
    let (_d, config) = policy_copy();
    let rt = runtime(&config);
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        format!("{text}\n[pricing]\nmodule = \"pricing/none.wasm\"\n"),
    )
    .expect("w");
    let Built::Refused(_, errors) = snapshot::build(&config, &rt, None) else {
        panic!("refused");
    };
    assert!(
        errors[0].file.ends_with("pricing/none.wasm"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[0].path, "[pricing]");
}

#[test]
fn a_restart_is_required_only_for_what_cannot_change_live() {
    let base = Path::new(".");
    let cfg = |extra: &str| {
        ServeConfig::from_toml(
            &format!(
                "customers_file = \"c.toml\"\n[partner.aliyun]\naccess_key_id = \"K\"\nsecret_file = \"s\"\n[[upstream]]\nproduct = \"p\"\nversion = \"v\"\nurl = \"http://127.0.0.1:1\"\n{extra}"
            ),
            base,
        )
        .expect("config")
    };
    let a =
        cfg("[ledger]\n[[ledger.budget]]\ncustomer = \"a\"\nlimit = \"1\"\ncurrency = \"CNY\"\n");
    let budgets =
        cfg("[ledger]\n[[ledger.budget]]\ncustomer = \"b\"\nlimit = \"2\"\ncurrency = \"CNY\"\n");
    assert!(
        snapshot::restart_required(&a, &budgets).is_empty(),
        "budgets are live"
    );
    let server = cfg("[server]\nlisten = \"127.0.0.1:9999\"\n");
    assert_eq!(snapshot::restart_required(&a, &server), vec!["server"]);
    let store = cfg("[ledger]\npath = \"elsewhere.sqlite\"\n");
    assert_eq!(
        snapshot::restart_required(&a, &store),
        vec!["ledger (store, timings, webhooks)"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_refuses_keeps_and_rolls_back() {
    let (_d, config) = policy_copy();
    let cfg = ServeConfig::load(&config).expect("config");
    let rt = runtime(&config);
    let r = Reloader::start(&config, &cfg, Arc::clone(&rt)).expect("start");
    let v1 = r.current().version().to_owned();

    // Same files: a no-op that says so.
    let a = r.reload(Trigger::Admin).await;
    assert_eq!(
        (a.outcome, a.version.as_deref()),
        (Outcome::Unchanged, Some(v1.as_str()))
    );

    // A new customer with a budget: applied, and the ledger knows them.
    let customers = config.with_file_name("customers.toml");
    let mut text = std::fs::read_to_string(&customers).expect("customers");
    text.push_str(
        "\n[[customer]]\nid = \"newco\"\naliyun_uid = \"2000000000000099\"\ngroup = \"startup\"\n",
    );
    std::fs::write(&customers, text).expect("w");
    let mut conf = std::fs::read_to_string(&config).expect("config");
    conf.push_str(
        "\n[[ledger.budget]]\ncustomer = \"newco\"\nlimit = \"10.00\"\ncurrency = \"CNY\"\n",
    );
    std::fs::write(&config, &conf).expect("w");
    let a = r.reload(Trigger::Signal).await;
    assert_eq!(a.outcome, Outcome::Applied, "{a:?}");
    let v2 = r.current().version().to_owned();
    assert_ne!(v1, v2);
    assert_eq!(a.version.as_deref(), Some(v2.as_str()));
    assert_eq!(
        rt.ledger().uid("newco").as_deref(),
        Some("2000000000000099")
    );
    let budget = rt
        .ledger()
        .store()
        .budget("newco")
        .await
        .expect("db")
        .expect("budget");
    assert_eq!(budget.limit.to_string(), "10.00");

    // A broken file: refused, the running version stays.
    let held = r.current();
    std::fs::write(
        config.with_file_name("permissions").join("orders.json"),
        "{",
    )
    .expect("w");
    let a = r.reload(Trigger::FileChange).await;
    assert_eq!(a.outcome, Outcome::Refused);
    assert!(!a.errors.is_empty());
    assert_eq!(r.current().version(), v2);
    assert!(Arc::ptr_eq(&held, &r.current()), "the very same snapshot");

    // Rollback: v1 again; and rollback of the rollback: v2.
    let a = r.rollback().await.expect("a previous version");
    assert_eq!(
        (a.outcome, a.version.as_deref()),
        (Outcome::RolledBack, Some(v1.as_str()))
    );
    assert_eq!(r.current().version(), v1);
    assert_eq!(
        r.rollback().await.expect("previous").version.as_deref(),
        Some(v2.as_str())
    );

    let status = r.status();
    assert_eq!(status["version"], v2.as_str());
    assert_eq!(status["previous"], v1.as_str());
    let outcomes: Vec<&str> = status["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(
        outcomes,
        [
            "rolled_back",
            "rolled_back",
            "refused",
            "applied",
            "unchanged",
            "applied"
        ]
    );
    let metrics = rt.metrics().encode();
    assert!(
        metrics.contains("tollgate_policy_reloads_total{outcome=\"refused\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "tollgate_policy_version_info{{version=\"{v2}\"}} 1"
    )));
    assert!(
        !metrics.contains(&format!("version=\"{v1}\"")),
        "only the active version"
    );
}

/// `[pricing]` naming the repository's built modules (scripts/build-guests).
fn pricing_section(assign: &str) -> String {
    let p = repo_policies().canonicalize().expect("policies");
    let wasm = |name: &str| {
        let path = p.join(format!("pricing/{name}.wasm"));
        assert!(
            path.exists(),
            "{}: run scripts/build-guests",
            path.display()
        );
        path.display().to_string()
    };
    format!(
        "\n[pricing]\nmodule = \"{}\"\nconfig = \"{}\"\ntests = \"{}\"\n{}",
        wasm("reference"),
        p.join("pricing/reference.toml").display(),
        p.join("pricing/tests").display(),
        assign
            .replace("PROMOTION", &wasm("promotion"))
            .replace("POLICIES", &p.display().to_string()),
    )
}

#[test]
fn customer_groups_get_their_assigned_module_and_its_golden_tests_run() {
    let (_d, config) = policy_copy();
    let rt = runtime(&config);
    let base = std::fs::read_to_string(&config).expect("config");
    let assign = "[[pricing.assign]]\ngroup = \"startup\"\nmodule = \"PROMOTION\"\nconfig = \"POLICIES/pricing/promotion.toml\"\ntests = \"POLICIES/pricing/promotion-tests\"\n";
    std::fs::write(&config, format!("{base}{}", pricing_section(assign))).expect("w");
    let Built::Ready(c) = snapshot::build(&config, &rt, None) else {
        panic!("the example modules with their golden tests load");
    };
    let modules = c.gateway.pricing_modules();
    assert_eq!(modules.len(), 2);
    let label = |g: Option<&str>| modules.for_group(g).expect("module").label().to_owned();
    assert!(label(Some("startup")).starts_with("promotion@"));
    assert!(label(Some("enterprise")).starts_with("reference-pricing@"));
    assert!(label(None).starts_with("reference-pricing@"));

    // Built again with the same module files: the verified modules are
    // reused (not loaded and tested again); a changed config is not.
    let Built::Ready(again) = snapshot::build(&config, &rt, None) else {
        panic!("ready");
    };
    let same = |a: &snapshot::Candidate, b: &snapshot::Candidate, g: Option<&str>| {
        Arc::ptr_eq(
            a.gateway.pricing_modules().for_group(g).expect("module"),
            b.gateway.pricing_modules().for_group(g).expect("module"),
        )
    };
    assert!(same(&c, &again, None) && same(&c, &again, Some("startup")));

    // The reference module's golden tests do not hold for the promotion:
    // every failing file is named, and nothing is swapped.
    let wrong_tests = assign.replace("pricing/promotion-tests", "pricing/tests");
    std::fs::write(&config, format!("{base}{}", pricing_section(&wrong_tests))).expect("w");
    let Built::Refused(_, errors) = snapshot::build(&config, &rt, None) else {
        panic!("golden failures refuse the snapshot");
    };
    assert!(
        errors
            .iter()
            .any(|e| e.file.ends_with("acme-oss-quote.json")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .all(|e| e.path.contains("startup") && e.message.contains("golden test failed")),
        "{errors:?}"
    );

    // Two assignments for one group are refused.
    let twice = format!("{assign}{assign}");
    std::fs::write(&config, format!("{base}{}", pricing_section(&twice))).expect("w");
    let Built::Refused(_, errors) = snapshot::build(&config, &rt, None) else {
        panic!("refused");
    };
    assert!(
        errors.iter().any(|e| e.message.contains("distinct")),
        "{errors:?}"
    );
}
