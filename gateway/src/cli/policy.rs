//! `tollgate policy check` and `tollgate policy explain`: the permission
//! files as the gateway would load them, without starting it (no secrets
//! are read).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::authz::{Authz, explain};
use crate::config::{CustomersFile, ServeConfig};

/// `tollgate policy …`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: PolicyCommand,
}

/// The policy subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate the catalog and the policy set; print every problem with its
    /// file and position; exit non-zero if any is an error.
    Check {
        /// The gateway config naming the folders (`[authz]`).
        #[arg(long, default_value = "policies/tollgate.toml")]
        config: PathBuf,
    },
    /// The decision for one customer and one call, and the statement that
    /// decided it.
    Explain(ExplainArgs),
}

/// `tollgate policy explain` options.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The gateway config naming the folders (`[authz]`).
    #[arg(long, default_value = "policies/tollgate.toml")]
    pub config: PathBuf,
    /// The customer's id (`acme`).
    #[arg(long)]
    pub customer: String,
    /// An Alibaba action (`QueryOrders`), a permission code
    /// (`bssapi:QueryOrders`, `bss:order:view`, `A|B`) or a Huawei call
    /// (`"GET /v2/orders/customer-orders"`).
    #[arg(long)]
    pub action: String,
    /// The RPC `Version`, when an action name exists in several products.
    #[arg(long)]
    pub version: Option<String>,
    /// `g:SourceIp` for IP conditions.
    #[arg(long)]
    pub source_ip: Option<IpAddr>,
    /// `tollgate:Region` for region conditions.
    #[arg(long)]
    pub region: Option<String>,
    /// Explain as if a partner frontend key called (`tollgate:Frontend`).
    #[arg(long)]
    pub frontend: bool,
    /// `g:CurrentTime` (RFC 3339, e.g. `2026-05-01T08:30:00Z`); now by default.
    #[arg(long)]
    pub at: Option<String>,
    /// Print JSON (the admin API's shape) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Loads the config's customers and permission files. `Ok(None)`: the
/// config has no `[authz]` section.
fn load(config: &Path) -> anyhow::Result<(ServeConfig, Option<Authz>)> {
    let cfg = ServeConfig::load(config)?;
    let customers = CustomersFile::load(&cfg.customers_path())?;
    let authz = match &cfg.authz {
        Some(a) => Some(Authz::load(a, &cfg.base_dir, &customers)?),
        None => None,
    };
    Ok((cfg, authz))
}

/// Runs a policy subcommand; returns what to print on stdout.
pub fn run(args: &PolicyArgs) -> anyhow::Result<String> {
    match &args.command {
        PolicyCommand::Check { config } => check(config),
        PolicyCommand::Explain(e) => explain_cmd(e),
    }
}

fn check(config: &Path) -> anyhow::Result<String> {
    let (_, authz) = load(config)?;
    let Some(authz) = authz else {
        return Ok(format!(
            "{}: no [authz] section: permission checks are off\n",
            config.display()
        ));
    };
    let mut out = String::new();
    for w in authz.warnings() {
        out.push_str(&format!("{w}\n"));
    }
    let catalog = authz.catalog();
    let set = authz
        .policies()
        .context("[authz] loaded without policies")?;
    let statements: usize = set.policies().iter().map(|p| p.statements.len()).sum();
    let aliyun = catalog
        .entries()
        .iter()
        .filter(|e| e.provider == crate::catalog::Provider::Aliyun)
        .count();
    out.push_str(&format!(
        "ok: {} policies, {statements} statements, attached by {}; catalog: {aliyun} Alibaba actions, {} Huawei APIs, {} permission codes; unlisted APIs: {}\n",
        set.policies().len(),
        set.attachments_file().display(),
        catalog.huawei_entries().count(),
        catalog.codes().len(),
        match set.unlisted() {
            crate::authz::Unlisted::Allow => "allow",
            crate::authz::Unlisted::Deny => "deny",
        }
    ));
    Ok(out)
}

fn explain_cmd(e: &ExplainArgs) -> anyhow::Result<String> {
    let (_, authz) = load(&e.config)?;
    let authz = match authz {
        Some(a) => a,
        None => {
            // Checks are off; still explain (it says so) with the built-in catalog.
            let cfg = ServeConfig::load(&e.config)?;
            let customers = CustomersFile::load(&cfg.customers_path())?;
            Authz::disabled(crate::catalog::Catalog::builtin()?, &customers)
        }
    };
    let at =
        e.at.as_deref()
            .map(|t| OffsetDateTime::parse(t, &Rfc3339))
            .transpose()
            .context("--at: expected RFC 3339, e.g. 2026-05-01T08:30:00Z")?;
    let q = explain::Query {
        customer: &e.customer,
        action: &e.action,
        version: e.version.as_deref(),
        source_ip: e.source_ip,
        region: e.region.as_deref(),
        frontend: e.frontend,
        at,
    };
    let x = authz.explain(&q).map_err(anyhow::Error::msg)?;
    if e.json {
        Ok(format!("{}\n", serde_json::to_string_pretty(&x)?))
    } else {
        Ok(format!("{x}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_config() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/tollgate.toml")
    }

    #[test]
    fn check_passes_on_the_example_set() {
        let out = check(&example_config()).expect("valid");
        assert!(out.starts_with("ok: 4 policies"), "{out}");
        assert!(out.contains("27 Huawei APIs"), "{out}");
    }

    #[test]
    fn explain_names_the_deciding_statement() {
        let args = ExplainArgs {
            config: example_config(),
            customer: "globex".into(),
            action: "QueryOrders".into(),
            version: None,
            source_ip: None,
            region: None,
            frontend: false,
            at: None,
            json: false,
        };
        let out = explain_cmd(&args).expect("explains");
        assert!(out.contains("decision   ALLOW"), "{out}");
        assert!(
            out.contains("orders.json:4 Statement[0] (Allow in policy `orders`)"),
            "{out}"
        );
        let out = explain_cmd(&ExplainArgs {
            customer: "initech".into(),
            json: true,
            ..args
        })
        .expect("explains");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        assert_eq!(v["effect"], "implicit_deny");
        assert_eq!(v["requires"][0], "bssapi:QueryOrders");
    }
}
