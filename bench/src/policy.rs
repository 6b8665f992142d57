//! `tollgate-bench policy`: permission decision latency on a large policy
//! set, in process (no network: the decision is what is measured).
//!
//! The set is generated like an operator's would grow: per statement a mix
//! of exact codes and wildcards over both providers' codes (`bssapi:Query*`,
//! `bss:*:view`, `ecs:Describe*`, `bss:order:pay`, …). About 10% are Deny
//! statements: on sensitive codes (budget administration, purchases, pay),
//! a few unconditional, or broad guards (`*`, `bssapi:*`) — all these
//! conditional on things that rarely hold for the
//! measured calls (outside office IP ranges, unlisted regions, intern
//! names, a far-future date), so deny lists are scanned to the end — the
//! expensive case. Half the Allow statements are conditional (IP ranges,
//! regions, name prefixes, groups), and the request contexts vary so that
//! some of those fail too. Every policy is attached to the measured customer (half to
//! the customer, half to its group): the worst case, every statement is a
//! candidate. Calls cycle through every catalogued API (Alibaba actions and
//! the 27 Huawei rows) and a few request contexts, through the same entry
//! points the request path uses (`decide_aliyun` / `decide_huawei`, which
//! classify with the catalog and then evaluate).
//!
//! Prints p50/p99/p99.9/max per decision and decisions/s on one thread, for
//! each configuration, then one JSON line (`{"bench":"policy",...}`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use serde_json::json;
use tollgate::authz::{Authz, RequestContext, Verdict};
use tollgate::catalog::{Catalog, Provider};
use tollgate::config::{CustomerConfig, CustomersFile};

/// The issue's target for the median decision.
const TARGET_P50_NS: u64 = 2_000;

/// Arguments of `tollgate-bench policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// The example policy folder (its `catalog/` is used).
    #[arg(long, default_value = "policies")]
    policy_dir: PathBuf,
    /// Policies in the generated set (default: two runs, 100 and 125).
    #[arg(long)]
    count: Option<usize>,
    /// Statements per policy (Huawei's limit is 8).
    #[arg(long, default_value_t = 8)]
    statements: usize,
    /// Decisions measured per configuration.
    #[arg(long, default_value_t = 2_000_000)]
    decisions: usize,
    /// Seed of the generator (the same seed, the same set).
    #[arg(long, default_value_t = 0x7011_6a7e)]
    seed: u64,
}

/// xorshift64: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap_or(1)).unwrap_or(0)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

const WILDCARDS: [&str; 12] = [
    "bssapi:Query*",
    "bssapi:Get*",
    "bssapi:*Order*",
    "bssapi:*Instance*",
    "bss:*:view",
    "bss:order:*",
    "bss:*:update",
    "bss:bill*:view",
    "ecs:Describe*",
    "bss:Describe*",
    "bssapi:*",
    "bss:*:*",
];

const ALLOW_CONDITIONS: [&str; 5] = [
    r#""StringStartWith": {"g:UserName": ["bench", "ops-"]}"#,
    r#""IpAddress": {"g:SourceIp": ["10.0.0.0/8", "203.0.113.0/24"]}"#,
    r#""DateLessThan": {"g:CurrentTime": ["2099-01-01T00:00:00Z"]}"#,
    r#""StringEqualsIfExists": {"tollgate:Region": ["cn-hangzhou", "cn-shanghai", "cn-beijing"]}"#,
    r#""StringEquals": {"tollgate:CustomerGroup": ["load", "enterprise"]}"#,
];

/// Broad patterns a conditional guard denies.
const BROAD: [&str; 4] = ["*", "bssapi:*", "bss:*:*", "ecs:*"];

/// Codes a partner restricts.
const SENSITIVE: [&str; 10] = [
    "bssapi:SetResellerUserQuota",
    "bss:SetResellerUserQuota",
    "bssapi:ChangeResellerConsumeAmount",
    "bssapi:CreateInstance",
    "bssapi:RenewInstance",
    "ecs:RunInstances",
    "bssapi:CancelOrder",
    "bss:order:pay",
    "bss:renewal:update",
    "bss:unsubscribe:update",
];

/// Deny conditions that rarely hold for the measured calls, so deny lists
/// are scanned to the end: the expensive case.
const DENY_CONDITIONS: [&str; 5] = [
    r#""NotIpAddress": {"g:SourceIp": ["10.0.0.0/8", "203.0.113.0/24", "192.0.2.0/24"]}"#,
    r#""StringNotEquals": {"tollgate:Region": ["cn-hangzhou", "cn-shanghai", "cn-beijing"]}"#,
    r#""DateGreaterThan": {"g:CurrentTime": ["2099-01-01T00:00:00Z"]}"#,
    r#""StringStartWith": {"g:UserName": ["intern-", "trial-"]}"#,
    r#""StringEquals": {"tollgate:Kind": ["budget"]}"#,
];

/// One generated policy document.
fn policy(rng: &mut Rng, codes: &[&str], statements: usize) -> String {
    let mut out = Vec::with_capacity(statements);
    for _ in 0..statements {
        let deny = rng.chance(10);
        // A third of the denies are broad guards ("nothing from outside
        // the office"): always conditional, and in every code's list.
        let broad = deny && rng.chance(33);
        let n = 1 + rng.below(5);
        let actions: Vec<String> = (0..n)
            .map(|_| {
                let a = if broad {
                    rng.pick(&BROAD)
                } else if deny {
                    rng.pick(&SENSITIVE)
                } else if rng.chance(40) {
                    rng.pick(&WILDCARDS)
                } else {
                    rng.pick(codes)
                };
                format!("\"{a}\"")
            })
            .collect();
        let condition = if broad || (deny && rng.chance(90)) {
            format!(r#", "Condition": {{{}}}"#, rng.pick(&DENY_CONDITIONS))
        } else if !deny && rng.chance(50) {
            format!(r#", "Condition": {{{}}}"#, rng.pick(&ALLOW_CONDITIONS))
        } else {
            String::new()
        };
        out.push(format!(
            r#"{{"Effect": "{}", "Action": [{}]{condition}}}"#,
            if deny { "Deny" } else { "Allow" },
            actions.join(", ")
        ));
    }
    format!(
        r#"{{"Version": "1.1", "Statement": [{}]}}"#,
        out.join(",\n")
    )
}

/// A generated set: `(authz, statements in it)`.
fn generate(
    catalog: &Catalog,
    count: usize,
    statements: usize,
    seed: u64,
) -> anyhow::Result<(Authz, usize)> {
    let mut rng = Rng(seed | 1);
    let codes: Vec<&str> = catalog.codes().iter().map(|c| c.as_str()).collect();
    let sources: Vec<(PathBuf, String)> = (0..count)
        .map(|i| {
            (
                PathBuf::from(format!("gen/p{i:03}.json")),
                policy(&mut rng, &codes, statements),
            )
        })
        .collect();
    let mut attach = String::from("unlisted = \"allow\"\n");
    for i in 0..count {
        let target = if i % 2 == 0 {
            "customers = [\"bench\"]"
        } else {
            "groups = [\"load\"]"
        };
        attach.push_str(&format!("[[attach]]\npolicy = \"p{i:03}\"\n{target}\n"));
    }
    let customers = CustomersFile {
        customers: vec![CustomerConfig {
            id: "bench".into(),
            name: "Bench".into(),
            aliyun_uid: "2999999999999999".into(),
            group: Some("load".into()),
            tags: Vec::new(),
            huawei_domain_id: None,
        }],
        keys: Vec::new(),
        huawei_keys: Vec::new(),
    };
    let authz = Authz::from_sources(
        catalog.clone(),
        &sources,
        (Path::new("gen/attachments.toml"), &attach),
        &customers,
    )
    .map_err(|d| anyhow::anyhow!("the generated set does not validate: {d}"))?;
    Ok((authz, count * statements))
}

/// A call to decide.
enum Call {
    Aliyun(String, String),
    Huawei(http::Method, String),
}

fn calls(catalog: &Catalog) -> Vec<Call> {
    let mut out = Vec::new();
    for e in catalog.entries() {
        match (e.provider, &e.route) {
            (Provider::Aliyun, _) => {
                if let Some(p) = catalog.products().iter().find(|p| p.name == e.product) {
                    out.push(Call::Aliyun(p.version.clone(), e.name.clone()));
                }
            }
            (Provider::Huawei, Some(r)) => {
                // A concrete path: placeholders become ids.
                let path: Vec<String> = r
                    .path
                    .as_str()
                    .split('/')
                    .map(|s| {
                        if s.starts_with('{') {
                            "a1b2c3d4".to_owned()
                        } else {
                            s.to_owned()
                        }
                    })
                    .collect();
                out.push(Call::Huawei(r.method.clone(), path.join("/")));
            }
            (Provider::Huawei, None) => {}
        }
    }
    out
}

struct Run {
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
    per_sec: f64,
    verdicts: [usize; 5],
}

fn measure(authz: &Authz, calls: &[Call], decisions: usize) -> anyhow::Result<Run> {
    let customer = authz.customer("bench").context("bench customer")?;
    // Mostly compliant callers (office addresses, allowed or no region),
    // one in eight outside: the guards rarely fire, so deny lists are
    // walked to the end.
    let peers: [std::net::IpAddr; 8] = [
        "203.0.113.7".parse()?,
        "10.1.2.3".parse()?,
        "203.0.113.99".parse()?,
        "10.20.30.40".parse()?,
        "203.0.113.12".parse()?,
        "10.9.8.7".parse()?,
        "203.0.113.200".parse()?,
        "198.51.100.9".parse()?,
    ];
    let regions = [
        Some("cn-hangzhou"),
        None,
        Some("cn-shanghai"),
        Some("cn-beijing"),
        None,
        Some("cn-hangzhou"),
        None,
        Some("us-west-1"),
    ];
    let now = time::OffsetDateTime::now_utc();
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)?;
    let mut verdicts = [0usize; 5];
    let warmup = decisions / 10;
    let mut measured = std::time::Duration::ZERO;
    for i in 0..(warmup + decisions) {
        let call = &calls[i % calls.len()];
        let ctx = RequestContext {
            customer_id: &customer.id,
            customer_uid: &customer.aliyun_uid,
            group: customer.group.as_deref(),
            region: regions[(i / calls.len()) % regions.len()],
            source_ip: Some(peers[(i / 7) % peers.len()]),
            now,
            frontend: i % 5 == 0,
            kind: None,
        };
        let t = Instant::now();
        let d = match call {
            Call::Aliyun(v, a) => authz.decide_aliyun(v, a, ctx),
            Call::Huawei(m, p) => authz.decide_huawei(m, p, ctx),
        };
        let took = t.elapsed();
        let effect = std::hint::black_box(d).effect;
        if i >= warmup {
            measured += took;
            hist.record(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1))?;
            verdicts[match effect {
                Verdict::Allow => 0,
                Verdict::Deny => 1,
                Verdict::ImplicitDeny => 2,
                Verdict::NotListed => 3,
                Verdict::Unserved => 4,
            }] += 1;
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let per_sec = decisions as f64 / measured.as_secs_f64().max(1e-9);
    Ok(Run {
        p50: hist.value_at_quantile(0.50),
        p99: hist.value_at_quantile(0.99),
        p999: hist.value_at_quantile(0.999),
        max: hist.max(),
        per_sec,
        verdicts,
    })
}

/// `ns` as microseconds with two decimals.
fn us(ns: u64) -> String {
    format!("{}.{:02}", ns / 1000, (ns % 1000) / 10)
}

/// Runs the bench.
pub fn run(args: &PolicyArgs) -> anyhow::Result<ExitCode> {
    let catalog =
        Catalog::load(&args.policy_dir.join("catalog")).map_err(|d| anyhow::anyhow!("{d}"))?;
    let calls = calls(&catalog);
    let configs: Vec<usize> = match args.count {
        Some(n) => vec![n],
        None => vec![100, 125],
    };
    println!(
        "Permission decisions: {} catalogued calls cycled, {} decisions per configuration, one thread.\n",
        calls.len(),
        args.decisions
    );
    println!(
        "{:>8} {:>10} {:>9} {:>9} {:>9} {:>9} {:>12}   verdicts (allow/deny/implicit/unlisted)",
        "policies", "statements", "p50 µs", "p99 µs", "p99.9 µs", "max µs", "decisions/s"
    );
    let mut results = Vec::new();
    let mut met = true;
    for count in configs {
        let load_start = Instant::now();
        let (authz, statements) = generate(&catalog, count, args.statements, args.seed)?;
        let load_ms = load_start.elapsed().as_millis();
        let r = measure(&authz, &calls, args.decisions)?;
        println!(
            "{count:>8} {statements:>10} {:>9} {:>9} {:>9} {:>9} {:>12.0}   {}/{}/{}/{}  (compiled in {load_ms} ms)",
            us(r.p50),
            us(r.p99),
            us(r.p999),
            us(r.max),
            r.per_sec,
            r.verdicts[0],
            r.verdicts[1],
            r.verdicts[2],
            r.verdicts[3],
        );
        met &= r.p50 <= TARGET_P50_NS;
        results.push(json!({
            "policies": count,
            "statements": statements,
            "p50_ns": r.p50,
            "p99_ns": r.p99,
            "p999_ns": r.p999,
            "max_ns": r.max,
            "decisions_per_sec": r.per_sec.round(),
            "verdicts": {"allow": r.verdicts[0], "deny": r.verdicts[1], "implicit_deny": r.verdicts[2], "not_listed": r.verdicts[3]},
            "compile_ms": load_ms,
        }));
    }
    println!(
        "\ntarget: p50 <= {} µs (Cedar's published median: 4-11 µs): {}",
        us(TARGET_P50_NS),
        if met { "met" } else { "NOT met" }
    );
    println!(
        "{}",
        json!({"bench": "policy", "target_p50_ns": TARGET_P50_NS, "met": met, "runs": results})
    );
    Ok(if met {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
