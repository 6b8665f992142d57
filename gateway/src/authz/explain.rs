//! `tollgate policy explain` (and `GET /v1/policy/explain`): the decision
//! for one customer and one call, the statement that decided it (file,
//! line, index), and every attached statement with why it did or did not
//! apply — like OPA's explain or Cedar's diagnostics.
//!
//! The decision shown is the request path's own ([`super::eval::evaluate`]);
//! the per-statement trace is computed beside it for reading.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;
use time::OffsetDateTime;

use super::condition::{self, RequestContext};
use super::eval::{Decision, Verdict};
use super::policy::Effect;
use super::{Authz, Class, Unlisted};
use crate::catalog::{CodeId, Kind, Provider};

/// What to explain.
#[derive(Debug, Clone, Default)]
pub struct Query<'a> {
    /// The customer's id.
    pub customer: &'a str,
    /// `QueryOrders` (Alibaba action), `bssapi:QueryOrders` or
    /// `bss:order:view` (permission codes, `A|B` allowed), or
    /// `GET /v2/orders/customer-orders` (Huawei call).
    pub action: &'a str,
    /// The RPC `Version`, to pick one product for an Alibaba action.
    pub version: Option<&'a str>,
    /// `g:SourceIp` (none by default: IP conditions see a missing key).
    pub source_ip: Option<IpAddr>,
    /// `tollgate:Region`.
    pub region: Option<&'a str>,
    /// `tollgate:Frontend`.
    pub frontend: bool,
    /// `g:CurrentTime` (now by default).
    pub at: Option<OffsetDateTime>,
}

/// The statement that decided.
#[derive(Debug, Clone, Serialize)]
pub struct Decider {
    /// The policy file.
    pub file: String,
    /// The policy name.
    pub policy: String,
    /// `Statement[i]`.
    pub statement_index: usize,
    /// Its line.
    pub line: usize,
    /// Allow or Deny.
    pub effect: Effect,
}

/// One condition, evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct ConditionTrace {
    /// The operator as written.
    pub operator: String,
    /// The key.
    pub key: String,
    /// The key's value in this request (`None`: missing).
    pub request_value: Option<String>,
    /// The policy's values.
    pub values: Vec<String>,
    /// Whether it holds.
    pub holds: bool,
}

/// One statement, evaluated.
#[derive(Debug, Clone, Serialize)]
pub struct StatementTrace {
    /// `Statement[i]`.
    pub index: usize,
    /// Its line.
    pub line: usize,
    /// Allow or Deny.
    pub effect: Effect,
    /// `pattern → code` for each action that matches a required code.
    pub matched: Vec<String>,
    /// Its conditions.
    pub conditions: Vec<ConditionTrace>,
    /// Whether it applies (an action matches and every condition holds).
    pub applies: bool,
}

/// One attached policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyTrace {
    /// The policy name.
    pub name: String,
    /// Its file.
    pub file: String,
    /// `customer acme` or `group enterprise`.
    pub attached_to: String,
    /// Its statements.
    pub statements: Vec<StatementTrace>,
}

/// The explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The customer.
    pub customer: String,
    /// The customer's group.
    pub group: Option<String>,
    /// What was asked, resolved (`aliyun QueryOrders (bssopenapi 2017-12-14)`).
    pub call: String,
    /// Provider, when the call names one.
    pub provider: Option<Provider>,
    /// The API's kind, when catalogued.
    pub kind: Option<Kind>,
    /// Where the catalog lists it.
    pub catalog_entry: Option<String>,
    /// The permission codes it requires (any one grants it).
    pub requires: Vec<String>,
    /// The decision.
    pub effect: Verdict,
    /// Whether the call would proceed.
    pub allowed: bool,
    /// The code allowed/denied (or first required, for an implicit deny).
    pub code: Option<String>,
    /// The deciding statement.
    pub decided_by: Option<Decider>,
    /// One sentence.
    pub reason: String,
    /// Every attached policy, customer's first, then the group's.
    pub policies: Vec<PolicyTrace>,
}

impl Authz {
    /// Explains the decision for `q`. `Err`: unknown customer or code.
    pub fn explain(&self, q: &Query<'_>) -> Result<Explanation, String> {
        let customer = self
            .customer(q.customer)
            .ok_or_else(|| format!("unknown customer `{}`", q.customer))?;
        let mut ctx = RequestContext {
            customer_id: &customer.id,
            customer_uid: &customer.aliyun_uid,
            group: customer.group.as_deref(),
            region: q.region,
            source_ip: q.source_ip,
            now: q.at.unwrap_or_else(OffsetDateTime::now_utc),
            frontend: q.frontend,
            kind: None,
        };
        let (call, provider, class, codes) = self.resolve(q)?;
        let entry = match class {
            Some(Class::Listed(e)) => Some(e),
            _ => None,
        };
        ctx.kind = entry.map(|e| e.kind);
        let mut out = Explanation {
            customer: customer.id.clone(),
            group: customer.group.clone(),
            call,
            provider,
            kind: ctx.kind,
            catalog_entry: entry.map(|e| e.source.clone()),
            requires: codes
                .iter()
                .map(|c| self.catalog.code(*c).to_string())
                .collect(),
            effect: Verdict::Allow,
            allowed: true,
            code: None,
            decided_by: None,
            reason: String::new(),
            policies: Vec::new(),
        };
        let Some(set) = &self.policies else {
            out.reason =
                "permission checks are off (no [authz] section): every authenticated call proceeds"
                    .into();
            return Ok(out);
        };
        let decision: Decision<'_> = match class {
            Some(c) => self.decide(c, ctx),
            None => super::eval::evaluate(set, &self.catalog, &codes, &ctx),
        };
        out.effect = decision.effect;
        out.allowed = decision.allowed;
        out.code = decision.code.map(|c| self.catalog.code(c).to_string());
        out.decided_by = decision.by.map(|by| Decider {
            file: by.file.display().to_string(),
            policy: by.policy.to_owned(),
            statement_index: by.statement_index,
            line: by.line,
            effect: if decision.effect == Verdict::Deny {
                Effect::Deny
            } else {
                Effect::Allow
            },
        });
        let code = out.code.clone().unwrap_or_default();
        out.reason = match decision.effect {
            Verdict::Allow => format!("{code} is allowed and nothing denies it"),
            Verdict::Deny => format!("{code} is explicitly denied (deny wins over any allow)"),
            Verdict::ImplicitDeny => {
                format!("no attached statement allows {}", out.requires.join(" or "))
            }
            Verdict::NotListed => match set.unlisted() {
                Unlisted::Allow => {
                    "the API has no permission code (seed rule: no fine-grained check)".into()
                }
                Unlisted::Deny => {
                    "the API has no permission code and attachments.toml says unlisted = \"deny\""
                        .into()
                }
            },
            Verdict::Unserved => "no upstream serves such a call".into(),
        };
        let mut attached: Vec<(String, u32)> = Vec::new();
        if let Some(p) = set.customer(&customer.id) {
            attached.extend(
                p.policies
                    .iter()
                    .map(|&i| (format!("customer {}", customer.id), i)),
            );
        }
        if let Some(g) = customer.group.as_deref()
            && let Some(p) = set.group(g)
        {
            attached.extend(p.policies.iter().map(|&i| (format!("group {g}"), i)));
        }
        for (via, pi) in attached {
            let policy = &set.policies()[pi as usize];
            let statements = policy
                .statements
                .iter()
                .enumerate()
                .map(|(si, st)| {
                    let matched: Vec<(String, CodeId)> = codes
                        .iter()
                        .flat_map(|&c| {
                            st.actions
                                .iter()
                                .filter(move |a| a.matches(self.catalog.code(c)))
                                .map(move |a| (format!("{a} → {}", self.catalog.code(c)), c))
                        })
                        .collect();
                    let service = matched
                        .first()
                        .map(|(_, c)| *c)
                        .or_else(|| codes.first().copied())
                        .map_or("", |c| self.catalog.code(c).service());
                    let conditions: Vec<ConditionTrace> = st
                        .conditions
                        .iter()
                        .map(|c| ConditionTrace {
                            operator: c.operator().to_owned(),
                            key: c.key().name().to_owned(),
                            request_value: condition::value(c.key(), &ctx, service)
                                .map(|v| v.to_string()),
                            values: c.values().iter().map(ToString::to_string).collect(),
                            holds: c.holds(&ctx, service),
                        })
                        .collect();
                    StatementTrace {
                        index: si,
                        line: st.line,
                        effect: st.effect,
                        applies: !matched.is_empty() && conditions.iter().all(|c| c.holds),
                        matched: matched.into_iter().map(|(m, _)| m).collect(),
                        conditions,
                    }
                })
                .collect();
            out.policies.push(PolicyTrace {
                name: policy.name.clone(),
                file: policy.file.display().to_string(),
                attached_to: via,
                statements,
            });
        }
        Ok(out)
    }

    /// Resolves the query's action: the call's description, provider,
    /// classification (`None` for bare permission codes) and codes.
    #[allow(clippy::type_complexity)]
    fn resolve<'a>(
        &'a self,
        q: &Query<'_>,
    ) -> Result<(String, Option<Provider>, Option<Class<'a>>, Vec<CodeId>), String> {
        let action = q.action.trim();
        if let Some((method, path)) = action.split_once(' ')
            && let Ok(method) = http::Method::from_bytes(method.as_bytes())
        {
            let path = path.trim();
            let class = self.classify_huawei(&method, path);
            let (desc, codes) = match class {
                Class::Listed(e) => (
                    format!(
                        "huawei {method} {path} ({}, row {})",
                        e.name,
                        e.route.as_ref().map_or(0, |r| r.row)
                    ),
                    e.permissions.to_vec(),
                ),
                _ => (
                    format!("huawei {method} {path} (not in the permission table)"),
                    Vec::new(),
                ),
            };
            return Ok((desc, Some(Provider::Huawei), Some(class), codes));
        }
        if action.contains(':') {
            let codes = action
                .split('|')
                .map(|c| {
                    self.catalog.find_code(c.trim()).ok_or_else(|| {
                        format!("`{}` is not a permission code in the catalog", c.trim())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            return Ok((format!("permission {action}"), None, None, codes));
        }
        if let Some(e) = self.catalog.aliyun_by_name(action, q.version) {
            let version = self
                .catalog
                .products()
                .iter()
                .find(|p| p.name == e.product)
                .map_or("", |p| p.version.as_str());
            return Ok((
                format!("aliyun {} ({} {version})", e.name, e.product),
                Some(Provider::Aliyun),
                Some(Class::Listed(e)),
                e.permissions.to_vec(),
            ));
        }
        let ram = q
            .version
            .and_then(|v| self.catalog.products().iter().find(|p| p.version == v))
            .map(|p| p.ram_code.as_str());
        Ok((
            format!("aliyun {action} (not in the catalog)"),
            Some(Provider::Aliyun),
            Some(Class::Unlisted(ram)),
            Vec::new(),
        ))
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = self
            .group
            .as_deref()
            .map_or_else(String::new, |g| format!(" (group {g})"));
        writeln!(f, "customer   {}{group}", self.customer)?;
        write!(f, "call       {}", self.call)?;
        if let Some(k) = self.kind {
            write!(f, ", kind {}", k.as_str())?;
        }
        writeln!(f)?;
        if let Some(src) = &self.catalog_entry {
            writeln!(f, "catalog    {src}")?;
        }
        if !self.requires.is_empty() {
            writeln!(f, "requires   {}", self.requires.join(" | "))?;
        }
        let verdict = match self.effect {
            Verdict::Allow => "ALLOW",
            Verdict::Deny => "DENY (explicit)",
            Verdict::ImplicitDeny => "DENY (implicit)",
            Verdict::NotListed if self.allowed => "ALLOW (not listed)",
            Verdict::NotListed => "DENY (not listed)",
            Verdict::Unserved => "DENY (unserved)",
        };
        writeln!(f, "decision   {verdict}: {}", self.reason)?;
        if let Some(d) = &self.decided_by {
            writeln!(
                f,
                "decided by {}:{} Statement[{}] ({} in policy `{}`)",
                d.file, d.line, d.statement_index, d.effect, d.policy
            )?;
        }
        if self.policies.is_empty() {
            return write!(f, "policies   none attached to this customer or its group");
        }
        write!(f, "policies   (customer's first, then the group's)")?;
        for p in &self.policies {
            write!(f, "\n  {} — {} ({})", p.name, p.file, p.attached_to)?;
            for s in &p.statements {
                let state = if s.applies {
                    "applies"
                } else if s.matched.is_empty() {
                    "no action matches"
                } else {
                    "a condition does not hold"
                };
                write!(
                    f,
                    "\n    Statement[{}] line {:<4} {:<5} {state}",
                    s.index, s.line, s.effect
                )?;
                for m in &s.matched {
                    write!(f, "\n      matches   {m}")?;
                }
                for c in &s.conditions {
                    write!(
                        f,
                        "\n      condition {} {} {:?} — request: {} → {}",
                        c.operator,
                        c.key,
                        c.values,
                        c.request_value.as_deref().unwrap_or("(missing)"),
                        if c.holds { "holds" } else { "does not hold" }
                    )?;
                }
            }
        }
        Ok(())
    }
}
