//! `tollgate budget ...`: the operator's command line over the admin API's
//! budget endpoints (see `docs/admin-openapi.json`).
//!
//! The admin token is a secret: it is read from an environment variable
//! (`--token-env`) or a file (`--token-file`), never taken as a plain
//! argument (arguments are visible to every user in the process list).
//! Answers are printed as pretty JSON; a refusal exits non-zero with the
//! API's code and message.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};

use crate::Body;
use crate::secret::{ExposeSecret as _, SecretRef};

/// How long one admin call may take. 30 s: admin calls are single
/// statements; anything slower means the gateway is unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// `tollgate budget` options.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("token").required(true).args(["token_env", "token_file"])))]
pub struct BudgetArgs {
    /// The admin API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub admin: String,
    /// Environment variable holding the admin token.
    #[arg(long)]
    pub token_env: Option<String>,
    /// File holding the admin token.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: BudgetCommand,
}

/// The budget subcommands (modelled on the reseller quota APIs).
#[derive(Debug, clap::Subcommand)]
pub enum BudgetCommand {
    /// Every budget.
    List,
    /// One budget: limit, consumed, held, available, status, thresholds.
    Show {
        /// Customer id.
        customer: String,
    },
    /// Create a budget (CreateResellerUserQuota).
    Create {
        /// Customer id.
        customer: String,
        /// Credit limit, a decimal string such as 5000.00.
        #[arg(long)]
        amount: String,
        /// Currency code.
        #[arg(long, default_value = "CNY")]
        currency: String,
        /// Business id making the call idempotent.
        #[arg(long)]
        out_biz_id: Option<String>,
    },
    /// Set the credit limit (SetResellerUserQuota).
    SetQuota {
        /// Customer id.
        customer: String,
        /// New limit.
        amount: String,
        /// Business id making the call idempotent.
        #[arg(long)]
        out_biz_id: Option<String>,
    },
    /// Change the consumed amount (ChangeResellerConsumeAmount).
    Consume {
        /// Customer id.
        customer: String,
        /// `increase` or `decrease`.
        adjust_type: String,
        /// Amount.
        amount: String,
        /// Business id (required: it makes the change idempotent).
        #[arg(long)]
        out_biz_id: String,
        /// Currency (default: the budget's).
        #[arg(long)]
        currency: Option<String>,
    },
    /// Set the status (SetResellerUserStatus): normal, frozen, trusteeship
    /// (or Thaw, Freeze, Trusteeship, TrusteeshipCancel).
    SetStatus {
        /// Customer id.
        customer: String,
        /// New status.
        status: String,
    },
    /// Replace the alarm thresholds (SetResellerUserAlarmThreshold).
    Thresholds {
        /// Customer id.
        customer: String,
        /// A share of the limit, `N/D` (e.g. `30/100`); repeatable.
        #[arg(long)]
        ratio: Vec<String>,
        /// An absolute amount; repeatable.
        #[arg(long)]
        amount: Vec<String>,
    },
    /// The customer's holds, newest first.
    Holds {
        /// Customer id.
        customer: String,
        /// Only open (held / unknown) holds.
        #[arg(long)]
        open: bool,
        /// Most rows.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// The customer's ledger entries, oldest first.
    Entries {
        /// Customer id.
        customer: String,
        /// Only entries after this id.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Most rows.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Recompute the customer's balances from the entry log.
    Verify {
        /// Customer id.
        customer: String,
    },
}

fn path_segment(s: &str) -> String {
    tollgate_sign::encode::percent_encode(s)
}

/// Runs the command; returns what to print.
pub async fn run(args: &BudgetArgs) -> anyhow::Result<String> {
    let token = SecretRef {
        secret_env: args.token_env.clone(),
        secret_file: args.token_file.clone(),
    }
    .load(&std::env::current_dir().unwrap_or_default(), "admin token")?;
    let base = args.admin.trim_end_matches('/');
    if !base.starts_with("http://") {
        bail!("--admin must be an http:// URL (got {base})");
    }
    let call = |method: Method, path: String, body: Value| {
        let token = token.expose_secret().to_owned();
        async move { admin_call(base, method, &path, body, &token).await }
    };
    let c = |s: &str| path_segment(s);
    let out = match &args.command {
        BudgetCommand::List => call(Method::GET, "/v1/budgets".into(), Value::Null).await?,
        BudgetCommand::Show { customer } => {
            call(
                Method::GET,
                format!("/v1/budgets/{}", c(customer)),
                Value::Null,
            )
            .await?
        }
        BudgetCommand::Create {
            customer,
            amount,
            currency,
            out_biz_id,
        } => {
            call(
                Method::POST,
                format!("/v1/budgets/{}", c(customer)),
                json!({"amount": amount, "currency": currency, "out_biz_id": out_biz_id}),
            )
            .await?
        }
        BudgetCommand::SetQuota {
            customer,
            amount,
            out_biz_id,
        } => {
            call(
                Method::PUT,
                format!("/v1/budgets/{}/quota", c(customer)),
                json!({"amount": amount, "out_biz_id": out_biz_id}),
            )
            .await?
        }
        BudgetCommand::Consume {
            customer,
            adjust_type,
            amount,
            out_biz_id,
            currency,
        } => {
            let currency = match currency {
                Some(cur) => cur.clone(),
                None => call(
                    Method::GET,
                    format!("/v1/budgets/{}", c(customer)),
                    Value::Null,
                )
                .await?["currency"]
                    .as_str()
                    .unwrap_or("CNY")
                    .to_owned(),
            };
            call(
                Method::POST,
                format!("/v1/budgets/{}/consumption", c(customer)),
                json!({"adjust_type": adjust_type, "amount": amount, "currency": currency, "out_biz_id": out_biz_id}),
            )
            .await?
        }
        BudgetCommand::SetStatus { customer, status } => {
            call(
                Method::PUT,
                format!("/v1/budgets/{}/status", c(customer)),
                json!({ "status": status }),
            )
            .await?
        }
        BudgetCommand::Thresholds {
            customer,
            ratio,
            amount,
        } => {
            let mut thresholds = Vec::new();
            for r in ratio {
                let (n, d) = r
                    .split_once('/')
                    .and_then(|(n, d)| {
                        Some((n.trim().parse::<u32>().ok()?, d.trim().parse::<u32>().ok()?))
                    })
                    .with_context(|| format!("--ratio {r}: expected N/D, e.g. 30/100"))?;
                thresholds.push(json!({"threshold_type": 1, "numerator": n, "denominator": d}));
            }
            for a in amount {
                thresholds.push(json!({"threshold_type": 0, "threshold_amount": a}));
            }
            call(
                Method::PUT,
                format!("/v1/budgets/{}/alarm-thresholds", c(customer)),
                json!({"alarm_type": "quota_low_balance", "thresholds": thresholds}),
            )
            .await?
        }
        BudgetCommand::Holds {
            customer,
            open,
            limit,
        } => {
            let state = if *open { "open" } else { "all" };
            call(
                Method::GET,
                format!(
                    "/v1/budgets/{}/holds?state={state}&limit={limit}",
                    c(customer)
                ),
                Value::Null,
            )
            .await?
        }
        BudgetCommand::Entries {
            customer,
            after,
            limit,
        } => {
            call(
                Method::GET,
                format!(
                    "/v1/budgets/{}/entries?after={after}&limit={limit}",
                    c(customer)
                ),
                Value::Null,
            )
            .await?
        }
        BudgetCommand::Verify { customer } => {
            call(
                Method::GET,
                format!("/v1/budgets/{}/verify", c(customer)),
                Value::Null,
            )
            .await?
        }
    };
    Ok(format!("{}\n", serde_json::to_string_pretty(&out)?))
}

async fn admin_call(
    base: &str,
    method: Method,
    path: &str,
    body: Value,
    token: &str,
) -> anyhow::Result<Value> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Body>();
    let body = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    let req = http::Request::builder()
        .method(method.clone())
        .uri(format!("{base}{path}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::new(body))
        .context("building the admin request")?;
    let resp = tokio::time::timeout(CALL_TIMEOUT, client.request(req))
        .await
        .context("the admin API did not answer in time")?
        .with_context(|| format!("cannot reach the admin API at {base}"))?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "admin API: {} {} {}: {}",
            status.as_u16(),
            method,
            path,
            value.get("error").map_or_else(
                || String::from_utf8_lossy(&bytes).into_owned(),
                |e| format!(
                    "{}: {}",
                    e["code"].as_str().unwrap_or(""),
                    e["message"].as_str().unwrap_or("")
                )
            )
        );
    }
    Ok(value)
}
