//! Hot reload under load (issue 6): a real `tollgate serve` in front of a
//! real `tollgate sim`, hundreds of concurrent keep-alive clients buying
//! prices, while the policy files are rewritten: 100 reloads alternating
//! the reference and promotion modules, with broken modules and a
//! malformed permission file in between.
//!
//! Asserted: no failed request; every answer priced by the module of the
//! version its `x-tollgate-policy-version` header names; a refused version
//! never serves; every reload accounted for in the admin status. Printed:
//! requests served, failures, reload latency (file written → first answer
//! served by the new version) p50/max.

// Latencies are measurements printed as floating point; no money here.
#![allow(clippy::float_arithmetic)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate::client::AliyunClient;
use tollgate::config::OutboundScheme;

use crate::support::*;

/// Concurrent clients, each with its own keep-alive connection pool.
const CLIENTS: usize = 200;
/// Pause between two calls of one client: 200 clients then offer about
/// 200 calls/s, well within what a debug build serves on two busy cores.
/// A saturated gateway on a CPU-starved machine (this test under parallel
/// compiles) fails the odd pricing call preempted past its 50 ms sandbox
/// deadline (`PricingModuleError`, deadline); this test is about reloads,
/// so it keeps the gateway out of saturation.
const THINK: Duration = Duration::from_millis(1_000);
/// Good reloads (alternating modules).
const RELOADS: usize = 100;
/// A bad interlude (broken module, then malformed policy) every this many.
const BAD_EVERY: usize = 10;

const REFERENCE_PRICE: &str = "123.36";
const PROMOTION_PRICE: &str = "75.6";

/// The policy set the test rewrites: a copy in a temporary folder.
struct PolicySet {
    dir: tempfile::TempDir,
    sim: SocketAddr,
}

impl PolicySet {
    fn new(sim: SocketAddr) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = policies();
        for sub in [
            "catalog",
            "permissions",
            "pricing/tests",
            "pricing/promotion-tests",
        ] {
            copy_dir(&src.join(sub), &dir.path().join(sub));
        }
        for f in [
            "reference.wasm",
            "reference.toml",
            "promotion.wasm",
            "promotion.toml",
        ] {
            let from = src.join("pricing").join(f);
            assert!(
                from.exists(),
                "{}: run scripts/build-guests",
                from.display()
            );
            std::fs::copy(&from, dir.path().join("pricing").join(f)).expect("copy");
        }
        std::fs::write(
            dir.path().join("pricing/broken.wasm"),
            b"\0asm garbage, not a component",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("pricing/bad-self-check.json"),
            "\"bad-self-check\"",
        )
        .expect("write");
        std::fs::write(dir.path().join("admin.token"), "reload-test-admin-token").expect("token");
        Self { dir, sim }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("tollgate.toml")
    }

    /// The gateway config with `pricing` as its `[pricing]` section; `edit`
    /// is a comment that makes each edit a distinct version.
    fn config(&self, pricing: &str, edit: usize) -> String {
        let tail = format!(
            "# edit {edit}\n[authz]\ncatalog_dir = \"catalog\"\npermissions_dir = \"permissions\"\n\
             [ledger]\n[[ledger.budget]]\ncustomer = \"acme\"\nlimit = \"100000.00\"\ncurrency = \"CNY\"\n\
             [pricing]\n{pricing}\n"
        );
        gateway_config(self.sim, "", &tail)
    }

    /// Writes the way editors and deployment tools do: a new file renamed
    /// over the old one.
    fn write(&self, rel: &str, text: &str) {
        let path = self.dir.path().join(rel);
        let tmp = path.with_file_name(format!(
            ".{}.tmp",
            path.file_name().expect("name").to_string_lossy()
        ));
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
    }
}

fn module_section(name: &str) -> String {
    match name {
        "reference" => "module = \"pricing/reference.wasm\"\nconfig = \"pricing/reference.toml\"\ntests = \"pricing/tests\"".into(),
        "promotion" => "module = \"pricing/promotion.wasm\"\nconfig = \"pricing/promotion.toml\"\ntests = \"pricing/promotion-tests\"".into(),
        "garbage" => "module = \"pricing/broken.wasm\"".into(),
        "bad-self-check" => format!(
            "module = \"{}\"\nconfig = \"pricing/bad-self-check.json\"",
            misbehave_fixture().display()
        ),
        other => panic!("unknown module {other}"),
    }
}

fn misbehave_fixture() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("wasm32-wasip2/release/tollgate_guest_misbehave.wasm");
    assert!(
        path.exists(),
        "{}: run scripts/build-guests",
        path.display()
    );
    path
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let p = e.expect("entry").path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
        }
    }
}

struct Admin {
    addr: SocketAddr,
}

impl Admin {
    async fn call(&self, method: http::Method, path: &str) -> (u16, Value) {
        let (status, body) = http_request(
            self.addr,
            method,
            path,
            Some("reload-test-admin-token"),
            String::new(),
        )
        .await;
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    async fn status(&self) -> Value {
        self.call(http::Method::GET, "/v1/policy/status").await.1
    }

    /// Waits until more than `before` reloads were attempted; the newest.
    async fn next_attempt(&self, before: u64) -> (u64, Value) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.status().await;
            let total = attempts(&s);
            if total > before {
                return (total, s["history"][0].clone());
            }
            assert!(
                Instant::now() < deadline,
                "no reload after a file change: {s}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

fn attempts(status: &Value) -> u64 {
    status["reloads"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// What the clients saw, per version: first answer, prices and counts.
#[derive(Default)]
struct Seen {
    first: HashMap<String, Instant>,
    prices: HashMap<String, HashMap<String, u64>>,
}

fn start_gateway(set: &PolicySet) -> (Proc, Admin) {
    let gateway = Proc::start(&[
        "serve",
        "--config",
        set.config_path().to_str().expect("utf8"),
    ]);
    let admin = Admin {
        addr: gateway.ready_addr("admin").expect("admin listener"),
    };
    (gateway, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_reloads_under_load_fail_no_request() {
    let sim = start_sim();
    let set = PolicySet::new(sim.addr);
    let mut edit = 0;
    set.write(
        "tollgate.toml",
        &set.config(&module_section("promotion"), edit),
    );
    let (gateway, admin) = start_gateway(&set);
    // Both modules compiled once before the load starts (the first compile
    // of a new module is a one-off; reloads then find it in the cache).
    edit += 1;
    let mut good_text = set.config(&module_section("reference"), edit);
    set.write("tollgate.toml", &good_text);
    let (_, a) = admin.next_attempt(1).await;
    assert_eq!(a["outcome"], "applied", "{a}");
    let initial = a["version"].as_str().expect("version").to_owned();
    let mut module_of: HashMap<String, &str> = HashMap::from([(initial, "reference")]);

    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let served = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for n in 0..CLIENTS {
        let client = AliyunClient::new(
            &gateway.addr.to_string(),
            ACME_AK,
            &secret("acme.secret"),
            OutboundScheme::Rpc,
        );
        let (stop, seen, failures, served) =
            (stop.clone(), seen.clone(), failures.clone(), served.clone());
        clients.push(tokio::spawn(async move {
            // Spread the clients over one think time.
            tokio::time::sleep(THINK * n as u32 / CLIENTS as u32).await;
            while !stop.load(Ordering::Relaxed) {
                match client.call("GetSubscriptionPrice", BSS, PRICE).await {
                    Ok(r) if r.status == 200 => {
                        let at = Instant::now();
                        served.fetch_add(1, Ordering::Relaxed);
                        let version = r.policy_version.clone().unwrap_or_default();
                        let price = r.json["Data"]["TradePrice"].to_string();
                        let mut s = seen.lock().expect("seen");
                        s.first.entry(version.clone()).or_insert(at);
                        *s.prices
                            .entry(version)
                            .or_default()
                            .entry(price)
                            .or_default() += 1;
                    }
                    Ok(r) => failures
                        .lock()
                        .expect("failures")
                        .push(format!("{} {}", r.status, r.json)),
                    Err(e) => failures.lock().expect("failures").push(format!("{e:#}")),
                }
                tokio::time::sleep(THINK).await;
            }
        }));
    }
    // Every client is up before the first reload.
    while served.load(Ordering::Relaxed) < CLIENTS as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let mut total = attempts(&admin.status().await);
    let mut refused_versions = HashSet::new();
    let (mut refused, mut unchanged) = (0, 0);
    let mut latencies = Vec::new();
    let mut builds = Vec::new();
    let load_started = Instant::now();
    for i in 0..RELOADS {
        let module = if i.is_multiple_of(2) {
            "promotion"
        } else {
            "reference"
        };
        edit += 1;
        good_text = set.config(&module_section(module), edit);
        let written = Instant::now();
        set.write("tollgate.toml", &good_text);
        let (t, a) = admin.next_attempt(total).await;
        total = t;
        assert_eq!(a["outcome"], "applied", "reload {i}: {a}");
        assert_eq!(a["trigger"], "file_change", "{a}");
        let version = a["version"].as_str().expect("version").to_owned();
        builds.push(a["duration_ms"].as_f64().unwrap_or(0.0));
        module_of.insert(version.clone(), module);
        // The first answer served by the new version.
        let deadline = Instant::now() + Duration::from_secs(20);
        let first = loop {
            if let Some(at) = seen.lock().expect("seen").first.get(&version) {
                break *at;
            }
            assert!(Instant::now() < deadline, "version {version} never served");
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        latencies.push(first.saturating_duration_since(written));

        if i % BAD_EVERY == BAD_EVERY / 2 {
            // A module that is not a component, or one that fails its own
            // self-check: refused, the running version stays.
            let bad = if (i / BAD_EVERY).is_multiple_of(2) {
                "garbage"
            } else {
                "bad-self-check"
            };
            set.write("tollgate.toml", &set.config(&module_section(bad), edit));
            let (t, a) = admin.next_attempt(total).await;
            total = t;
            assert_eq!(a["outcome"], "refused", "{a}");
            assert_eq!(a["previous"], version.as_str(), "{a}");
            let errors = a["errors"].to_string();
            let named = if bad == "garbage" {
                "broken.wasm"
            } else {
                "tollgate_guest_misbehave.wasm"
            };
            assert!(errors.contains(named), "{errors}");
            if bad == "bad-self-check" {
                assert!(errors.contains("self-check"), "{errors}");
            }
            refused_versions.insert(a["version"].as_str().expect("hash").to_owned());
            refused += 1;
            // Back to the running files: unchanged, said so.
            set.write("tollgate.toml", &good_text);
            let (t, a) = admin.next_attempt(total).await;
            total = t;
            assert_eq!(a["outcome"], "unchanged", "{a}");
            unchanged += 1;

            // A malformed permission file: refused with its position.
            let orders = std::fs::read_to_string(set.dir.path().join("permissions/orders.json"))
                .expect("orders");
            set.write(
                "permissions/orders.json",
                "{\n  \"Version\": \"1.1\",\n  \"Statement\": [ oops ]\n}\n",
            );
            let (t, a) = admin.next_attempt(total).await;
            total = t;
            assert_eq!(a["outcome"], "refused", "{a}");
            let e = a["errors"]
                .as_array()
                .and_then(|e| {
                    e.iter().find(|e| {
                        e["file"]
                            .as_str()
                            .is_some_and(|f| f.ends_with("orders.json"))
                    })
                })
                .unwrap_or_else(|| panic!("orders.json named: {a}"));
            assert_eq!(e["line"], 3, "{e}");
            assert!(e["column"].as_u64().is_some(), "{e}");
            refused_versions.insert(a["version"].as_str().expect("hash").to_owned());
            refused += 1;
            set.write("permissions/orders.json", &orders);
            let (t, a) = admin.next_attempt(total).await;
            total = t;
            assert_eq!(a["outcome"], "unchanged", "{a}");
            unchanged += 1;
        }
    }
    let load_time = load_started.elapsed();
    // Let the last version serve a moment, then stop the clients.
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.expect("client task");
    }

    let failures = failures.lock().expect("failures").clone();
    let seen = std::mem::take(&mut *seen.lock().expect("seen"));
    let served = served.load(Ordering::Relaxed);
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    builds.sort_by(f64::total_cmp);
    // Written to the process's stderr directly (not through the test
    // harness's capture), so the figures are in every test log.
    let figures = format!(
        "reload under load: {CLIENTS} clients, {served} requests served in {:.1} s, {} failed; \
         {RELOADS} reloads applied, {refused} refused, {unchanged} unchanged; \
         file written -> first answer on the new version: p50 {:.1} ms, max {:.1} ms \
         (build and checks: p50 {:.1} ms, max {:.1} ms); {} versions served",
        load_time.as_secs_f64(),
        failures.len(),
        p50.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3,
        builds[builds.len() / 2],
        builds[builds.len() - 1],
        seen.prices.len(),
    );
    {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "{figures}");
    }
    assert!(
        failures.is_empty(),
        "{} failed requests, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    for (version, prices) in &seen.prices {
        assert!(
            !refused_versions.contains(version),
            "refused version {version} served"
        );
        let module = module_of
            .get(version)
            .unwrap_or_else(|| panic!("answers named an unknown version {version:?}"));
        let expected = if *module == "reference" {
            REFERENCE_PRICE
        } else {
            PROMOTION_PRICE
        };
        let wrong: Vec<_> = prices.keys().filter(|p| *p != expected).collect();
        assert!(
            wrong.is_empty(),
            "version {version} ({module}) answered {wrong:?}, expected {expected}"
        );
    }
    // Every reload accounted for.
    let status = admin.status().await;
    // The start, the warm-up, the reloads.
    assert_eq!(
        status["reloads"]["applied"],
        (RELOADS + 2) as u64,
        "{}",
        status["reloads"]
    );
    assert_eq!(
        status["reloads"]["refused"], refused,
        "{}",
        status["reloads"]
    );
    assert!(
        status["reloads"]["unchanged"].as_u64().unwrap_or(0) >= unchanged,
        "{}",
        status["reloads"]
    );
    let metrics = metrics_text(admin.addr, "reload-test-admin-token").await;
    assert!(
        metrics.contains(&format!(
            "tollgate_policy_reloads_total{{outcome=\"refused\"}} {refused}"
        )),
        "{metrics}"
    );
    drop(sim);
}

#[tokio::test]
async fn sighup_admin_reload_rollback_and_the_replay_cache_survives() {
    let sim = start_sim();
    let set = PolicySet::new(sim.addr);
    set.write(
        "tollgate.toml",
        &set.config(&module_section("reference"), 0),
    );
    let (gateway, admin) = start_gateway(&set);
    let v1 = admin.status().await["version"]
        .as_str()
        .expect("v")
        .to_owned();
    let acme = AliyunClient::new(
        &gateway.addr.to_string(),
        ACME_AK,
        &secret("acme.secret"),
        OutboundScheme::Rpc,
    );
    // One signed call, sent now and replayed after a reload.
    let fresh = tollgate::aliyun::outbound::Freshness::now();
    let signed = || acme.request_with(http::Method::POST, "QueryOrders", BSS, &[], &fresh);
    let first = acme.send(signed()).await.expect("call");
    assert_eq!(first.status, 200, "{}", first.json);
    assert_eq!(first.policy_version.as_deref(), Some(v1.as_str()));

    // SIGHUP on unchanged files: a no-op that says so.
    let before = attempts(&admin.status().await);
    let kill = std::process::Command::new("kill")
        .args(["-HUP", &gateway.pid().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let (_, a) = admin.next_attempt(before).await;
    assert_eq!(
        (a["outcome"].as_str(), a["trigger"].as_str()),
        (Some("unchanged"), Some("signal")),
        "{a}"
    );

    // The promotion module, applied by the watcher (or the admin call,
    // whichever comes first: the other is then unchanged).
    set.write(
        "tollgate.toml",
        &set.config(&module_section("promotion"), 1),
    );
    let (status, a) = admin.call(http::Method::POST, "/v1/policy/reload").await;
    assert_eq!(status, 200, "{a}");
    let v2 = admin.status().await["version"]
        .as_str()
        .expect("v")
        .to_owned();
    assert_ne!(v1, v2);
    let priced = acme
        .call("GetSubscriptionPrice", BSS, PRICE)
        .await
        .expect("call");
    assert_eq!(
        priced.json["Data"]["TradePrice"].to_string(),
        PROMOTION_PRICE
    );
    assert_eq!(priced.policy_version.as_deref(), Some(v2.as_str()));

    // The replay cache outlived the reload: the same signed call is a
    // replay, refused, and the refusal names the version too.
    let replay = acme.send(signed()).await.expect("call");
    assert_eq!(replay.code(), "SignatureNonceUsed", "{}", replay.json);
    assert_eq!(replay.policy_version.as_deref(), Some(v2.as_str()));

    // The admin reload of a broken set: 422 with file, line, column.
    set.write(
        "permissions/orders.json",
        "{\n  \"Version\": \"1.1\",\n  \"Statement\": [ oops ]\n}\n",
    );
    let (status, a) = admin.call(http::Method::POST, "/v1/policy/reload").await;
    assert_eq!(status, 422, "{a}");
    assert_eq!(a["outcome"], "refused");
    assert!(
        a["errors"][0]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("orders.json")),
        "{a}"
    );
    assert_eq!(a["errors"][0]["line"], 3, "{a}");
    assert_eq!(admin.status().await["version"], v2.as_str());

    // Rollback: the previous good version serves again.
    let (status, a) = admin.call(http::Method::POST, "/v1/policy/rollback").await;
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        (a["outcome"].as_str(), a["version"].as_str()),
        (Some("rolled_back"), Some(v1.as_str()))
    );
    let priced = acme
        .call("GetSubscriptionPrice", BSS, PRICE)
        .await
        .expect("call");
    assert_eq!(
        priced.json["Data"]["TradePrice"].to_string(),
        REFERENCE_PRICE
    );
    assert_eq!(priced.policy_version.as_deref(), Some(v1.as_str()));
    let health = http_request(
        gateway.addr,
        http::Method::GET,
        "/healthz",
        None,
        String::new(),
    )
    .await;
    assert_eq!(health.0, 200);
    let status = admin.status().await;
    assert_eq!(status["previous"], v2.as_str(), "{status}");
    drop(sim);
}
