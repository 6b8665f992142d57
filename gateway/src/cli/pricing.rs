//! `tollgate pricing`: tools for pricing-module authors.
//!
//! * `tollgate pricing test --module M.wasm --config C.toml --input Q.json`
//!   loads the module exactly as the gateway does (same engine, limits and
//!   checks), prices the order in `Q.json` and prints the partner quote.
//! * `tollgate pricing check --module M.wasm --config C.toml --tests DIR`
//!   runs the module's self-check and every golden test in `DIR/*.json`
//!   (an input order and the expected output); exits non-zero on a mismatch.
//!
//! The input format (also the `order` of a golden file):
//!
//! ```json
//! {"action": "GetSubscriptionPrice", "intent": "quote", "kind": "new",
//!  "customer": {"id": "acme", "uid": "2000000000000001", "group": "enterprise", "tags": []},
//!  "currency": "CNY",
//!  "lines": [{"id": "PackageCode", "product": "oss", "sku": "PackageCode",
//!             "config": {"PackageCode": "standard_500G"}, "region": "cn-hangzhou",
//!             "quantity": 1, "period": {"count": 12, "unit": "month"},
//!             "charge_type": "subscription", "official": "108", "official_trade": "91.8"}]}
//! ```
//!
//! A golden file is `{"description": "...", "order": {...}, "expect": {...}}`
//! where `expect` holds any part of the printed output: amounts compare as
//! decimals (`"99.36"` equals `"99.360"`), everything else exactly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::pricing::{
    Admission, ChargeType, CustomerInfo, Intent, LineItem, LoadedModule, Order, OrderKind,
    PeriodUnit, Priced, PricingEngine, convert,
};

/// `tollgate pricing` options.
#[derive(Debug, clap::Args)]
pub struct PricingArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PricingCommand,
}

/// The module to load.
#[derive(Debug, Clone, clap::Args)]
pub struct ModuleArgs {
    /// The pricing module (a `wasm32-wasip2` component).
    #[arg(long, default_value = "policies/pricing/reference.wasm")]
    pub module: PathBuf,
    /// Its configuration (`.toml` or `.json`); absent: `{}`.
    #[arg(long, default_value = "policies/pricing/reference.toml")]
    pub config: Option<PathBuf>,
}

/// `tollgate pricing` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PricingCommand {
    /// Price one order and print the partner quote (JSON).
    Test {
        /// Module and configuration.
        #[command(flatten)]
        module: ModuleArgs,
        /// The order (or a golden test file: its `order` is used).
        #[arg(long)]
        input: PathBuf,
    },
    /// Self-check the module and run its golden tests.
    Check {
        /// Module and configuration.
        #[command(flatten)]
        module: ModuleArgs,
        /// Folder of golden tests (`*.json`: input `order` and `expect`ed output).
        #[arg(long, default_value = "policies/pricing/tests")]
        tests: PathBuf,
    },
}

/// Runs a `tollgate pricing` subcommand; the text to print.
pub fn run(args: &PricingArgs) -> anyhow::Result<String> {
    match &args.command {
        PricingCommand::Test { module, input } => {
            let m = load(module)?;
            let text = std::fs::read_to_string(input)
                .with_context(|| format!("reading {}", input.display()))?;
            let v: Value =
                serde_json::from_str(&text).with_context(|| format!("in {}", input.display()))?;
            let order = order_from_json(v.get("order").unwrap_or(&v))
                .with_context(|| format!("in {}", input.display()))?;
            let out = output(&m, &m.quote(&order).map_err(|e| anyhow::anyhow!("{e}"))?);
            Ok(format!("{}\n", serde_json::to_string_pretty(&out)?))
        }
        PricingCommand::Check { module, tests } => {
            let (report, failed) = check(module, tests)?;
            if failed > 0 {
                bail!("{report}{failed} golden test(s) failed");
            }
            Ok(report)
        }
    }
}

fn load(args: &ModuleArgs) -> anyhow::Result<LoadedModule> {
    let engine: Arc<PricingEngine> = PricingEngine::new()?;
    engine.load_files(&args.module, args.config.as_deref())
}

/// Loads the module and runs every golden test: (report, failures).
pub fn check(args: &ModuleArgs, tests: &Path) -> anyhow::Result<(String, usize)> {
    let m = load(args)?;
    let mut report = format!(
        "module {} (sha256 {}): self-check ok\n",
        m.label(),
        &m.hash()[..12]
    );
    if !m.wasi_imports().is_empty() {
        report.push_str(&format!(
            "note: the module imports {} WASI functions (linked to traps; each slows instantiation a little): {}\n",
            m.wasi_imports().len(),
            m.wasi_imports().join(", ")
        ));
    }
    let results = run_golden(&m, tests)?;
    let mut failed = 0;
    for (f, result) in &results {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        match result {
            Ok(description) => report.push_str(&format!("ok    {name}: {description}\n")),
            Err(e) => {
                failed += 1;
                report.push_str(&format!("FAIL  {name}: {e:#}\n"));
            }
        }
    }
    report.push_str(&format!(
        "{} passed, {failed} failed\n",
        results.len() - failed
    ));
    Ok((report, failed))
}

/// Runs every golden file (`*.json`, in name order) of `tests` against a
/// loaded module: each file with its description or why it failed. Also
/// used by a policy reload, which refuses a module that fails any.
pub fn run_golden(
    m: &LoadedModule,
    tests: &Path,
) -> anyhow::Result<Vec<(PathBuf, anyhow::Result<String>)>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(tests)
        .with_context(|| format!("reading {}", tests.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no golden tests (*.json) in {}", tests.display());
    }
    Ok(files
        .into_iter()
        .map(|f| {
            let result = golden(m, &f);
            (f, result)
        })
        .collect())
}

fn golden(m: &LoadedModule, path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let v: Value = serde_json::from_str(&text).context("not JSON")?;
    let description = v
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let order = order_from_json(v.get("order").context("no `order`")?)?;
    let expect = v.get("expect").context("no `expect`")?;
    let got = match m.quote(&order) {
        Ok(p) => output(m, &p),
        Err(e) => json!({ "error": { "kind": e.kind.as_str(), "message": e.message } }),
    };
    compare(expect, &got, "")?;
    Ok(description)
}

/// `expect` must be a sub-tree of `got`; amount strings compare as decimals.
fn compare(expect: &Value, got: &Value, at: &str) -> anyhow::Result<()> {
    match (expect, got) {
        (Value::Object(e), Value::Object(g)) => {
            for (k, ev) in e {
                let gv = g
                    .get(k)
                    .with_context(|| format!("{at}.{k}: missing in the output"))?;
                compare(ev, gv, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(g)) => {
            if e.len() != g.len() {
                bail!("{at}: expected {} entries, got {}: {got}", e.len(), g.len());
            }
            for (i, (ev, gv)) in e.iter().zip(g).enumerate() {
                compare(ev, gv, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        (Value::String(e), Value::String(g)) => {
            let same = match (e.parse::<Decimal>(), g.parse::<Decimal>()) {
                (Ok(a), Ok(b)) => a == b,
                _ => e == g,
            };
            if same {
                Ok(())
            } else {
                bail!("{at}: expected {e:?}, got {g:?}")
            }
        }
        _ if expect == got => Ok(()),
        _ => bail!("{at}: expected {expect}, got {got}"),
    }
}

/// The quote as printed: amounts as decimal strings.
fn output(m: &LoadedModule, p: &Priced) -> Value {
    let q = &p.quote;
    let lines: Vec<Value> = q
        .lines
        .iter()
        .map(|l| {
            json!({
                "id": l.id, "official": l.official.to_string(), "list": l.list.to_string(),
                "discount": l.discount.to_string(), "price": l.price.to_string(), "rule": l.rule,
            })
        })
        .collect();
    let bundles: Vec<Value> = q
        .bundles
        .iter()
        .map(|b| {
            json!({
                "id": b.id, "attached_to": b.attached_to, "description": b.description,
                "quantity": b.quantity, "list": b.list.to_string(),
                "discount": b.discount.to_string(), "price": b.price.to_string(), "rule": b.rule,
            })
        })
        .collect();
    let admission = match &p.admission {
        Admission::Allow => json!({ "allow": true }),
        Admission::Deny { rule, message } => {
            json!({ "deny": { "rule": rule, "message": message } })
        }
    };
    json!({
        "module": m.label(),
        "sha256": m.hash(),
        "currency": q.currency,
        "lines": lines,
        "bundles": bundles,
        "list_total": q.list_total.to_string(),
        "discount_total": q.discount_total.to_string(),
        "total": q.total.to_string(),
        "admission": admission,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonOrder {
    #[serde(default = "default_action")]
    action: String,
    #[serde(default = "default_intent")]
    intent: String,
    #[serde(default = "default_kind")]
    kind: String,
    customer: JsonCustomer,
    currency: String,
    lines: Vec<JsonLine>,
}

fn default_action() -> String {
    "GetSubscriptionPrice".to_owned()
}
fn default_intent() -> String {
    "quote".to_owned()
}
fn default_kind() -> String {
    "new".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonCustomer {
    id: String,
    #[serde(default)]
    uid: String,
    #[serde(default)]
    group: String,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonPeriod {
    count: u32,
    unit: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLine {
    id: String,
    product: String,
    sku: String,
    #[serde(default)]
    config: BTreeMap<String, String>,
    #[serde(default)]
    region: String,
    #[serde(default = "one")]
    quantity: u32,
    period: JsonPeriod,
    charge_type: String,
    official: String,
    official_trade: Option<String>,
}

fn one() -> u32 {
    1
}

/// Reads an order in the input format (module docs).
pub fn order_from_json(v: &Value) -> anyhow::Result<Order> {
    let o: JsonOrder = serde_json::from_value(v.clone()).context("not an order")?;
    let intent = match o.intent.as_str() {
        "quote" => Intent::Quote,
        "purchase" => Intent::Purchase,
        other => bail!("intent \"{other}\" is not quote or purchase"),
    };
    let kind = match o.kind.as_str() {
        "new" => OrderKind::New,
        "renewal" => OrderKind::Renewal,
        "upgrade" => OrderKind::Upgrade,
        "downgrade" => OrderKind::Downgrade,
        other => bail!("kind \"{other}\" is not new, renewal, upgrade or downgrade"),
    };
    let mut lines = Vec::with_capacity(o.lines.len());
    for l in o.lines {
        let mut unit = l.period.unit.clone();
        if let Some(first) = unit.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        let period_unit = PeriodUnit::parse(&unit)
            .with_context(|| format!("line {}: period unit \"{}\"", l.id, l.period.unit))?;
        let charge_type = match l.charge_type.as_str() {
            "subscription" => ChargeType::Subscription,
            "pay-as-you-go" => ChargeType::PayAsYouGo,
            other => bail!("line {}: charge_type \"{other}\"", l.id),
        };
        let official = convert::parse_amount(&l.official)
            .map_err(|e| anyhow::anyhow!("line {}: official: {e}", l.id))?;
        let official_trade = match &l.official_trade {
            Some(t) => convert::parse_amount(t)
                .map_err(|e| anyhow::anyhow!("line {}: official_trade: {e}", l.id))?,
            None => official,
        };
        lines.push(LineItem {
            id: l.id,
            product: l.product,
            sku: l.sku,
            config: l.config.into_iter().collect(),
            region: l.region,
            quantity: l.quantity,
            period_count: l.period.count,
            period_unit,
            charge_type,
            official,
            official_trade,
        });
    }
    Ok(Order {
        action: o.action,
        intent,
        kind,
        customer: CustomerInfo {
            id: o.customer.id,
            uid: o.customer.uid,
            group: o.customer.group,
            tags: o.customer.tags,
        },
        currency: o.currency,
        lines,
    })
}

/// Makes sure the example policy set's modules exist and are not older
/// than their sources (the demo's first run on a fresh clone): runs
/// `scripts/build-guests` when needed. `policies` is the policy folder of
/// a source checkout.
pub fn ensure_example_modules(policies: &Path) -> anyhow::Result<()> {
    let repo = policies.join("..");
    let script = repo.join("scripts/build-guests");
    let wasm = policies.join("pricing/reference.wasm");
    let built = std::fs::metadata(&wasm).and_then(|m| m.modified()).ok();
    let sources = ["guest-pricing", "wit"];
    let newest = sources
        .iter()
        .filter_map(|s| newest_mtime(&repo.join(s)))
        .max();
    let stale = match (built, newest) {
        (None, _) => true,
        (Some(b), Some(n)) => n > b,
        (Some(_), None) => false,
    };
    if !stale {
        return Ok(());
    }
    if !script.exists() {
        bail!(
            "{} is missing and this is not a source checkout: build the pricing modules (scripts/build-guests) first",
            wasm.display()
        );
    }
    eprintln!("building the pricing modules (scripts/build-guests) ...");
    let status = std::process::Command::new("bash")
        .arg(&script)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!("scripts/build-guests failed ({status})");
    }
    Ok(())
}

fn newest_mtime(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "target")
        .filter_map(|e| newest_mtime(&e.path()))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policies() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
    }

    fn reference_args() -> ModuleArgs {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
        ModuleArgs {
            module: target.join("wasm32-wasip2/release/tollgate_guest_pricing.wasm"),
            config: Some(policies().join("pricing/reference.toml")),
        }
    }

    #[test]
    fn the_example_golden_tests_pass() {
        let (report, failed) =
            check(&reference_args(), &policies().join("pricing/tests")).expect("check runs");
        assert_eq!(failed, 0, "{report}");
        assert!(report.contains("self-check ok"), "{report}");
        assert!(
            report.lines().filter(|l| l.starts_with("ok ")).count() >= 4,
            "{report}"
        );
    }

    #[test]
    fn a_wrong_expectation_is_reported_with_its_path() {
        let dir = tempfile::tempdir().expect("tmp");
        let golden = std::fs::read_to_string(policies().join("pricing/tests/acme-oss-quote.json"))
            .expect("golden");
        std::fs::write(
            dir.path().join("wrong.json"),
            golden.replace("\"total\": \"123.36\"", "\"total\": \"123.37\""),
        )
        .expect("w");
        let (report, failed) = check(&reference_args(), dir.path()).expect("runs");
        assert_eq!(failed, 1, "{report}");
        assert!(
            report.contains(".total: expected \"123.37\", got \"123.36\""),
            "{report}"
        );
    }

    #[test]
    fn test_prints_the_quote() {
        let out = run(&PricingArgs {
            command: PricingCommand::Test {
                module: reference_args(),
                input: policies().join("pricing/tests/acme-oss-quote.json"),
            },
        })
        .expect("priced");
        let v: Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["total"], "123.36");
        assert_eq!(v["bundles"][0]["id"], "TG-OSS-SUPPORT");
        assert_eq!(v["lines"][0]["rule"], "acme-oss-contract");
    }
}
