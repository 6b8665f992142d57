//! Step: authorize. Which APIs each customer was granted, decided against
//! IAM 1.1-style policies before anything reaches the cloud.
//!
//! | module | job |
//! |---|---|
//! | `policy` | the policy document model (serde), validation with file + position |
//! | `position` | JSON path → line/column for validation errors |
//! | `matcher` | action patterns (wildcards, case rules), compiled once |
//! | `condition` | condition operators, the context keys Tollgate supplies |
//! | `attach` | `attachments.toml`: policies → customers and groups; the unlisted-API rule |
//! | `set` | the compiled policy set and its per-principal index |
//! | `eval` | the decision and the statement that decided it |
//! | `explain` | `policy explain`: the decision with every statement considered |
//!
//! Classification (the catalog) comes first: a listed API needs one of its
//! permission codes; an unlisted API follows the operator's `unlisted` rule
//! (the seed's default: allowed); a call no upstream serves is refused
//! whatever the policies say. A refusal is an [`Error`] rendered in the
//! provider's own format: Alibaba `Forbidden.RAM` (403) with
//! `AccessDeniedDetail`, Huawei `CBC.0151` (403).

pub mod attach;
pub mod condition;
pub mod eval;
pub mod explain;
pub mod matcher;
pub mod policy;
pub mod position;
pub mod set;

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_reference;
#[cfg(test)]
mod tests_validation;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;

pub use attach::Unlisted;
pub use condition::RequestContext;
pub use eval::{Decision, StatementRef, Verdict};
pub use set::PolicySet;

use crate::aliyun::AliyunCall;
use crate::auth::{Authenticated, Customer};
use crate::catalog::{AliyunClass, Catalog, CodeId, Entry, HuaweiClass, Provider};
use crate::config::{CustomersFile, ServeConfig};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::error::{AccessDenied, Error};
use crate::metrics::{AuthzLabels, Metrics};

/// `[authz]` in the gateway config. Without it, permission checks are off
/// (every authenticated call proceeds) and a warning says so at start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzConfig {
    /// Folder with `aliyun.toml` and `huawei.toml` (relative to the config file).
    pub catalog_dir: PathBuf,
    /// Folder with the policy documents (`*.json`) and `attachments.toml`.
    pub permissions_dir: PathBuf,
}

/// How a call was classified, for the refusal message.
#[derive(Debug, Clone, Copy)]
enum Class<'a> {
    Listed(&'a Entry),
    /// Unlisted; the RAM code names it (`bssapi:<Action>`) when known.
    Unlisted(Option<&'a str>),
    Unserved,
}

/// The permission layer: catalog, policies, customers.
#[derive(Debug)]
pub struct Authz {
    catalog: Catalog,
    policies: Option<PolicySet>,
    customers: HashMap<String, Arc<Customer>>,
    warnings: Vec<Diagnostic>,
}

fn customer_table(file: &CustomersFile) -> HashMap<String, Arc<Customer>> {
    file.customers
        .iter()
        .map(|c| (c.id.clone(), Arc::new(Customer::from_config(c))))
        .collect()
}

impl Authz {
    /// Checks off: the catalog still classifies calls (metric labels).
    pub fn disabled(catalog: Catalog, customers: &CustomersFile) -> Self {
        Self {
            catalog,
            policies: None,
            customers: customer_table(customers),
            warnings: Vec::new(),
        }
    }

    /// Loads catalog and policies; any error refuses the whole set.
    pub fn load(
        cfg: &AuthzConfig,
        base_dir: &Path,
        customers: &CustomersFile,
    ) -> Result<Self, Diagnostics> {
        let catalog = Catalog::load(&base_dir.join(&cfg.catalog_dir))?;
        let (policies, warnings) =
            PolicySet::load(&base_dir.join(&cfg.permissions_dir), &catalog, customers)?;
        Ok(Self {
            catalog,
            policies: Some(policies),
            customers: customer_table(customers),
            warnings,
        })
    }

    /// Builds from texts: policies `(path, text)` (named by file stem) and
    /// the attachments file (tests, benches, tools that generate policies).
    pub fn from_sources(
        catalog: Catalog,
        policies: &[(PathBuf, String)],
        attachments: (&Path, &str),
        customers: &CustomersFile,
    ) -> Result<Self, Diagnostics> {
        let (set, warnings) = PolicySet::from_sources(policies, attachments, &catalog, customers)?;
        Ok(Self {
            catalog,
            policies: Some(set),
            customers: customer_table(customers),
            warnings,
        })
    }

    /// What `tollgate serve` builds from its config: `[authz]` loaded, or
    /// the built-in catalog with checks off when the section is absent.
    pub fn from_config(cfg: &ServeConfig, customers: &CustomersFile) -> anyhow::Result<Self> {
        let authz = match &cfg.authz {
            Some(a) => Self::load(a, &cfg.base_dir, customers)?,
            None => {
                tracing::warn!(
                    "no [authz] section: permission checks are OFF, every authenticated call proceeds"
                );
                Self::disabled(Catalog::builtin()?, customers)
            }
        };
        for w in &authz.warnings {
            tracing::warn!(%w, "permission files");
        }
        Ok(authz)
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The policy set; `None` when checks are off.
    pub fn policies(&self) -> Option<&PolicySet> {
        self.policies.as_ref()
    }

    /// Warnings found while loading.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// A customer by id.
    pub fn customer(&self, id: &str) -> Option<&Arc<Customer>> {
        self.customers.get(id)
    }

    fn classify_aliyun(&self, version: &str, action: &str) -> Class<'_> {
        match self.catalog.aliyun(version, action) {
            AliyunClass::Listed(e) => Class::Listed(e),
            AliyunClass::Unlisted(p) => Class::Unlisted(Some(&p.ram_code)),
            AliyunClass::UnknownProduct => Class::Unlisted(None),
        }
    }

    fn classify_huawei(&self, method: &http::Method, path: &str) -> Class<'_> {
        match self.catalog.huawei(method, path) {
            HuaweiClass::Listed(e) => Class::Listed(e),
            HuaweiClass::Unlisted => Class::Unlisted(None),
            HuaweiClass::Malformed => Class::Unserved,
        }
    }

    fn decide(&self, class: Class<'_>, mut ctx: RequestContext<'_>) -> Decision<'_> {
        let Some(set) = &self.policies else {
            return Decision {
                effect: Verdict::Allow,
                allowed: true,
                by: None,
                code: None,
            };
        };
        match class {
            Class::Listed(entry) => {
                ctx.kind = Some(entry.kind);
                eval::evaluate(set, &self.catalog, &entry.permissions, &ctx)
            }
            Class::Unlisted(_) => Decision::not_listed(set.unlisted() == Unlisted::Allow),
            Class::Unserved => Decision::unserved(),
        }
    }

    /// Decides codes directly (tests, benches, `explain --action <code>`).
    pub fn decide_codes(&self, codes: &[CodeId], ctx: &RequestContext<'_>) -> Option<Decision<'_>> {
        let set = self.policies.as_ref()?;
        Some(eval::evaluate(set, &self.catalog, codes, ctx))
    }

    /// Decides an Alibaba call (`ctx.kind` is filled from the catalog).
    /// With checks off every call is allowed (`Allow`, no deciding statement).
    pub fn decide_aliyun(
        &self,
        version: &str,
        action: &str,
        ctx: RequestContext<'_>,
    ) -> Decision<'_> {
        self.decide(self.classify_aliyun(version, action), ctx)
    }

    /// Decides a Huawei call by method and path (no query string).
    pub fn decide_huawei(
        &self,
        method: &http::Method,
        path: &str,
        ctx: RequestContext<'_>,
    ) -> Decision<'_> {
        self.decide(self.classify_huawei(method, path), ctx)
    }

    /// The request-path check for an authenticated Alibaba call: counts the
    /// decision, logs the deciding statement, and refuses in Alibaba's
    /// format. Does nothing when checks are off.
    pub fn check_aliyun(
        &self,
        call: &AliyunCall,
        who: &Authenticated,
        peer: SocketAddr,
        metrics: &Metrics,
        request_id: &str,
    ) -> Result<(), Error> {
        if self.policies.is_none() {
            return Ok(());
        }
        let region = call.param("RegionId").or_else(|| call.param("Region"));
        let ctx = context(&who.customer, who.frontend.is_some(), peer, region);
        let class = self.classify_aliyun(&call.version, &call.action);
        let decision = self.decide(class, ctx);
        self.record(
            &decision,
            metrics,
            request_id,
            ctx.customer_id,
            &call.action,
        );
        if decision.allowed {
            return Ok(());
        }
        let missing = match class {
            Class::Unlisted(Some(ram)) => format!("{ram}:{}", call.action),
            _ => self.missing(class, &decision),
        };
        Err(self.refusal(Provider::Aliyun, &decision, &missing, &ctx))
    }

    /// The same check for a Huawei call (method + path, no query string;
    /// `ctx` from [`context`]); refusals are `CBC.0151` / 403. For the
    /// Huawei provider to call.
    pub fn check_huawei(
        &self,
        method: &http::Method,
        path: &str,
        ctx: RequestContext<'_>,
        metrics: &Metrics,
        request_id: &str,
    ) -> Result<(), Error> {
        if self.policies.is_none() {
            return Ok(());
        }
        let class = self.classify_huawei(method, path);
        let decision = self.decide(class, ctx);
        self.record(&decision, metrics, request_id, ctx.customer_id, path);
        if decision.allowed {
            return Ok(());
        }
        let missing = match class {
            Class::Unlisted(_) | Class::Unserved => format!("{method} {path}"),
            Class::Listed(_) => self.missing(class, &decision),
        };
        Err(self.refusal(Provider::Huawei, &decision, &missing, &ctx))
    }

    fn record(
        &self,
        d: &Decision<'_>,
        metrics: &Metrics,
        request_id: &str,
        customer: &str,
        what: &str,
    ) {
        metrics
            .authz_decisions
            .get_or_create(&AuthzLabels { effect: d.label() })
            .inc();
        let code = d.code.map_or("", |c| self.catalog.code(c).as_str());
        match d.by {
            Some(by) => tracing::debug!(
                request_id,
                customer,
                call = what,
                code,
                effect = d.label(),
                file = %by.file.display(),
                policy = by.policy,
                statement = by.statement_index,
                "authorized"
            ),
            None => tracing::debug!(
                request_id,
                customer,
                call = what,
                code,
                effect = d.label(),
                "authorized"
            ),
        }
    }

    /// The permission(s) a refused listed call lacks, `A (or B)`.
    fn missing(&self, class: Class<'_>, d: &Decision<'_>) -> String {
        let Class::Listed(entry) = class else {
            return String::new();
        };
        if d.effect == Verdict::Deny {
            return d
                .code
                .map_or_else(String::new, |c| self.catalog.code(c).to_string());
        }
        let mut codes = entry
            .permissions
            .iter()
            .map(|c| self.catalog.code(*c).as_str());
        let first = codes.next().unwrap_or_default().to_owned();
        let rest: Vec<&str> = codes.collect();
        if rest.is_empty() {
            first
        } else {
            format!("{first} (or {})", rest.join(", or "))
        }
    }

    /// The refusal for a decision that did not allow, in `provider`'s format.
    pub fn refusal(
        &self,
        provider: Provider,
        d: &Decision<'_>,
        missing: &str,
        ctx: &RequestContext<'_>,
    ) -> Error {
        let why = match d.effect {
            Verdict::Deny => "it is explicitly denied by a policy",
            Verdict::NotListed => "the partner allows only APIs with a permission code",
            Verdict::Unserved => "no service answers such a request",
            Verdict::ImplicitDeny | Verdict::Allow => "no policy allows it",
        };
        // The missing action's first code names the detail (alternatives
        // are in the message).
        let action = missing.split(' ').next().unwrap_or(missing).to_owned();
        match provider {
            Provider::Aliyun => Error::customer(
                StatusCode::FORBIDDEN,
                "Forbidden.RAM",
                format!("You are not authorized to do this action. Action: {missing}: {why}."),
                "permission",
            )
            .with_denied(AccessDenied {
                action,
                explicit: d.effect == Verdict::Deny,
                principal_uid: ctx.customer_uid.to_owned(),
                principal_name: ctx.customer_id.to_owned(),
            }),
            Provider::Huawei => Error::customer(
                crate::huawei::envelope::ACCESS_DENIED_STATUS,
                crate::huawei::envelope::ACCESS_DENIED,
                format!("Access denied ({missing}): {why}."),
                "permission",
            ),
        }
    }
}

/// The request context for a customer's call.
pub fn context<'a>(
    customer: &'a Customer,
    frontend: bool,
    peer: SocketAddr,
    region: Option<&'a str>,
) -> RequestContext<'a> {
    RequestContext {
        customer_id: &customer.id,
        customer_uid: &customer.aliyun_uid,
        group: customer.group.as_deref(),
        region,
        source_ip: Some(peer.ip()),
        now: time::OffsetDateTime::now_utc(),
        frontend,
        kind: None,
    }
}
