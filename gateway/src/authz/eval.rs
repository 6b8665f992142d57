//! The decision (huawei-iam-policy.md §3): explicit deny wins; otherwise
//! allow only if a statement allows; otherwise deny (implicitly).
//!
//! For a call, the policies are those attached to the customer and to the
//! customer's group (customer's first). A call may name several permission
//! codes (`A|B`): any explicitly denied code refuses it, any allowed code
//! grants it. A statement applies when one of its actions matches the code
//! and all its conditions hold.
//!
//! Evaluation allocates nothing: it walks the precomputed per-principal
//! index (see `set.rs`) and borrows the deciding statement from the set.

use std::path::Path;

use super::condition::RequestContext;
use super::set::{CodeIndex, PolicySet, StmtId};
use crate::catalog::{Catalog, CodeId};

/// What the decision was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A statement allows it and no statement denies it.
    Allow,
    /// A Deny statement applies (deny wins over any allow).
    Deny,
    /// No statement allows it.
    ImplicitDeny,
    /// The API has no permission code; the operator's `unlisted` rule
    /// decided (the seed's rule: allowed).
    NotListed,
    /// No upstream serves such a call (e.g. a Huawei path with `..`):
    /// refused whatever the policies say.
    Unserved,
}

/// The statement that decided, borrowed from the policy set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementRef<'a> {
    /// The policy's file.
    pub file: &'a Path,
    /// The policy's name.
    pub policy: &'a str,
    /// The statement's index in the policy (0-based, as in `Statement[i]`).
    pub statement_index: usize,
    /// The statement's line in the file.
    pub line: usize,
}

impl std::fmt::Display for StatementRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{} Statement[{}] (policy `{}`)",
            self.file.display(),
            self.line,
            self.statement_index,
            self.policy
        )
    }
}

/// A decision and what decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision<'a> {
    /// What was decided.
    pub effect: Verdict,
    /// Whether the call may proceed.
    pub allowed: bool,
    /// The deciding statement (Allow / Deny).
    pub by: Option<StatementRef<'a>>,
    /// The permission code concerned: the one allowed or denied, or for an
    /// implicit deny the first code the API requires.
    pub code: Option<CodeId>,
}

impl Decision<'_> {
    /// The decision for an API with no permission code.
    pub fn not_listed(allowed: bool) -> Self {
        Self {
            effect: Verdict::NotListed,
            allowed,
            by: None,
            code: None,
        }
    }

    /// The decision for a call no upstream serves.
    pub fn unserved() -> Self {
        Self {
            effect: Verdict::Unserved,
            allowed: false,
            by: None,
            code: None,
        }
    }

    /// The metric label (`tollgate_authz_decisions_total{effect}`).
    pub fn label(&self) -> &'static str {
        match (self.effect, self.allowed) {
            (Verdict::Allow, _) => "allow",
            (Verdict::Deny, _) => "deny",
            (Verdict::ImplicitDeny, _) => "implicit_deny",
            (Verdict::NotListed, true) => "not_listed_allow",
            (Verdict::NotListed, false) => "not_listed_deny",
            (Verdict::Unserved, _) => "unserved",
        }
    }
}

fn reference(set: &PolicySet, id: StmtId) -> StatementRef<'_> {
    let (policy, statement) = set.statement(id);
    StatementRef {
        file: &policy.file,
        policy: &policy.name,
        statement_index: usize::from(id.statement),
        line: statement.line,
    }
}

/// The first statement of `list` that applies.
fn first_applying(
    set: &PolicySet,
    list: &[StmtId],
    ctx: &RequestContext<'_>,
    service: &str,
) -> Option<StmtId> {
    list.iter().copied().find(|&s| {
        // Unconditional statements come first in each list and need no look.
        !s.conditional || set.statement(s).1.applies(ctx, service)
    })
}

/// Decides a call needing any one of `codes` (never empty for a listed
/// API), for the customer and group in `ctx`.
pub fn evaluate<'a>(
    set: &'a PolicySet,
    catalog: &Catalog,
    codes: &[CodeId],
    ctx: &RequestContext<'_>,
) -> Decision<'a> {
    let principals = [
        set.customer(ctx.customer_id),
        ctx.group.and_then(|g| set.group(g)),
    ];
    let scan = |pick: fn(&CodeIndex) -> &[StmtId]| {
        codes.iter().find_map(|&code| {
            let service = catalog.code(code).service();
            principals.iter().flatten().find_map(|p| {
                let ix = p.for_code(code)?;
                first_applying(set, pick(ix), ctx, service).map(|s| (s, code))
            })
        })
    };
    if let Some((s, code)) = scan(|ix| &ix.deny) {
        return Decision {
            effect: Verdict::Deny,
            allowed: false,
            by: Some(reference(set, s)),
            code: Some(code),
        };
    }
    if let Some((s, code)) = scan(|ix| &ix.allow) {
        return Decision {
            effect: Verdict::Allow,
            allowed: true,
            by: Some(reference(set, s)),
            code: Some(code),
        };
    }
    Decision {
        effect: Verdict::ImplicitDeny,
        allowed: false,
        by: None,
        code: codes.first().copied(),
    }
}
