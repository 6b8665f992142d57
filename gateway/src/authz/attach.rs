//! `attachments.toml`: which policies apply to which customers and groups,
//! and the operator's rule for APIs without a permission code.
//!
//! ```toml
//! unlisted = "allow"        # seed default; "deny" refuses unlisted APIs
//!
//! [[attach]]
//! policy = "full-access"    # policies/permissions/full-access.json
//! groups = ["enterprise"]
//! customers = ["acme"]
//! ```

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::config::CustomersFile;
use crate::diagnostic::Diagnostic;

/// The attachments file name inside the permissions folder.
pub const ATTACHMENTS_FILE: &str = "attachments.toml";

/// What happens to an API absent from the catalog's permission tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unlisted {
    /// The seed's rule: no fine-grained check; any authenticated customer
    /// may call it.
    #[default]
    Allow,
    /// Refuse it (for operators who want an allow-list).
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    unlisted: Unlisted,
    #[serde(default, rename = "attach")]
    attach: Vec<RawAttach>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttach {
    policy: Spanned<String>,
    #[serde(default)]
    customers: Vec<Spanned<String>>,
    #[serde(default)]
    groups: Vec<Spanned<String>>,
}

/// The parsed attachments, by policy index.
#[derive(Debug, Clone, Default)]
pub struct Attachments {
    /// The unlisted-API rule.
    pub unlisted: Unlisted,
    /// `(customer id, policy indices in file order)`.
    pub customers: Vec<(String, Vec<usize>)>,
    /// `(group, policy indices in file order)`.
    pub groups: Vec<(String, Vec<usize>)>,
}

fn push(list: &mut Vec<(String, Vec<usize>)>, who: &str, policy: usize) -> bool {
    match list.iter_mut().find(|(w, _)| w == who) {
        Some((_, ps)) if ps.contains(&policy) => false,
        Some((_, ps)) => {
            ps.push(policy);
            true
        }
        None => {
            list.push((who.to_owned(), vec![policy]));
            true
        }
    }
}

/// Parses and checks the file against the policy names and the customers.
/// `Ok` carries warnings; `Err` every problem.
pub fn parse(
    file: &Path,
    text: &str,
    policies: &[&str],
    customers: &CustomersFile,
) -> Result<(Attachments, Vec<Diagnostic>), Vec<Diagnostic>> {
    let raw: RawFile =
        toml::from_str(text).map_err(|e| vec![crate::catalog::toml_error(file, text, &e)])?;
    let mut problems = Vec::new();
    let mut out = Attachments {
        unlisted: raw.unlisted,
        ..Attachments::default()
    };
    let groups: HashSet<&str> = customers
        .customers
        .iter()
        .filter_map(|c| c.group.as_deref())
        .collect();
    let mut used = vec![false; policies.len()];
    for (i, a) in raw.attach.iter().enumerate() {
        let path = format!("attach[{i}]");
        let place = |d: Diagnostic, at: usize| d.at_offset(text, at);
        let Some(pi) = policies
            .iter()
            .position(|p| *p == a.policy.get_ref().as_str())
        else {
            problems.push(place(
                Diagnostic::error(
                    file,
                    format!("{path}.policy"),
                    format!(
                        "no policy `{}` (expected {}.json next to this file)",
                        a.policy.get_ref(),
                        a.policy.get_ref()
                    ),
                ),
                a.policy.span().start,
            ));
            continue;
        };
        used[pi] = true;
        if a.customers.is_empty() && a.groups.is_empty() {
            problems.push(place(
                Diagnostic::error(
                    file,
                    path.clone(),
                    "attaches the policy to nobody (give `customers` and/or `groups`)",
                ),
                a.policy.span().start,
            ));
        }
        for (ci, c) in a.customers.iter().enumerate() {
            let id = c.get_ref();
            if !customers.customers.iter().any(|k| k.id == *id) {
                problems.push(place(
                    Diagnostic::error(
                        file,
                        format!("{path}.customers[{ci}]"),
                        format!("unknown customer `{id}` (not in the customers file)"),
                    ),
                    c.span().start,
                ));
            } else if !push(&mut out.customers, id, pi) {
                problems.push(place(
                    Diagnostic::warning(
                        file,
                        format!("{path}.customers[{ci}]"),
                        format!("`{}` is already attached to customer `{id}`", policies[pi]),
                    ),
                    c.span().start,
                ));
            }
        }
        for (gi, g) in a.groups.iter().enumerate() {
            let name = g.get_ref();
            if name.is_empty() {
                problems.push(place(
                    Diagnostic::error(file, format!("{path}.groups[{gi}]"), "empty group name"),
                    g.span().start,
                ));
                continue;
            }
            if !groups.contains(name.as_str()) {
                problems.push(place(
                    Diagnostic::warning(
                        file,
                        format!("{path}.groups[{gi}]"),
                        format!("no customer is in group `{name}` yet"),
                    ),
                    g.span().start,
                ));
            }
            if !push(&mut out.groups, name, pi) {
                problems.push(place(
                    Diagnostic::warning(
                        file,
                        format!("{path}.groups[{gi}]"),
                        format!("`{}` is already attached to group `{name}`", policies[pi]),
                    ),
                    g.span().start,
                ));
            }
        }
    }
    for (pi, used) in used.iter().enumerate() {
        if !used {
            problems.push(Diagnostic::warning(
                file,
                "",
                format!("policy `{}` is attached to nobody", policies[pi]),
            ));
        }
    }
    if problems.iter().any(Diagnostic::is_error) {
        return Err(problems);
    }
    Ok((out, problems))
}
