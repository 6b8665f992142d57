//! The policy set: every policy of the permissions folder, compiled, with
//! its attachments resolved into a per-principal index.
//!
//! The index is what keeps a decision in the low microseconds with
//! thousands of statements: at load, every statement attached to a
//! customer or group is matched once against every catalogued permission
//! code, so a request only visits the statements that can apply to its
//! code(s), and never matches a pattern. Within each list, unconditional
//! statements come first: the first one decides without looking further.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::attach::{self, ATTACHMENTS_FILE, Unlisted};
use super::policy::{self, Effect, MAX_POLICY_FILE_BYTES, Policy, Statement};
use crate::catalog::{Catalog, CodeId};
use crate::config::CustomersFile;
use crate::diagnostic::{Diagnostic, Diagnostics};

/// A statement's place in the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StmtId {
    /// Index of the policy in [`PolicySet::policies`].
    pub policy: u32,
    /// Index of the statement in its policy (< [`policy::MAX_STATEMENTS`]).
    pub statement: u16,
    /// Whether it has conditions (unconditional ones are listed first).
    pub conditional: bool,
}

/// The statements that can apply to one permission code.
#[derive(Debug, Clone, Default)]
pub struct CodeIndex {
    /// Deny statements matching the code.
    pub deny: Box<[StmtId]>,
    /// Allow statements matching the code.
    pub allow: Box<[StmtId]>,
}

/// A customer or a group: its attached policies and their index.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Attached policies, in attachment order.
    pub policies: Vec<u32>,
    /// By [`CodeId`].
    pub index: Box<[CodeIndex]>,
}

/// The compiled, indexed policy set.
#[derive(Debug, Clone)]
pub struct PolicySet {
    policies: Vec<Policy>,
    customers: HashMap<String, Principal>,
    groups: HashMap<String, Principal>,
    unlisted: Unlisted,
    attachments_file: PathBuf,
}

impl PolicySet {
    /// Reads every `*.json` policy and `attachments.toml` from `dir`.
    /// `Ok` carries the warnings; a set with any error is never built.
    pub fn load(
        dir: &Path,
        catalog: &Catalog,
        customers: &CustomersFile,
    ) -> Result<(Self, Vec<Diagnostic>), Diagnostics> {
        let mut problems = Vec::new();
        let mut sources = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Diagnostics(vec![Diagnostic::error(
                dir,
                "",
                format!("cannot read the folder: {e}"),
            )])
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            match read_capped(&path, MAX_POLICY_FILE_BYTES) {
                Ok(text) => sources.push((path, text)),
                Err(d) => problems.push(d),
            }
        }
        let attachments = dir.join(ATTACHMENTS_FILE);
        let attach_text = match read_capped(&attachments, MAX_POLICY_FILE_BYTES) {
            Ok(t) => t,
            Err(d) => {
                problems.push(d);
                return Err(Diagnostics(problems));
            }
        };
        match Self::from_sources(&sources, (&attachments, &attach_text), catalog, customers) {
            Ok((set, warnings)) if problems.is_empty() => Ok((set, warnings)),
            Ok((_, warnings)) => {
                problems.extend(warnings);
                Err(Diagnostics(problems))
            }
            Err(d) => {
                problems.extend(d.0);
                Err(Diagnostics(problems))
            }
        }
    }

    /// Builds a set from policy texts `(path, text)` (named by file stem) and
    /// the attachments text.
    pub fn from_sources(
        sources: &[(PathBuf, String)],
        (attach_file, attach_text): (&Path, &str),
        catalog: &Catalog,
        customers: &CustomersFile,
    ) -> Result<(Self, Vec<Diagnostic>), Diagnostics> {
        let mut problems = Vec::new();
        let mut policies = Vec::with_capacity(sources.len());
        for (path, text) in sources {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match policy::parse(path, &name, text, catalog) {
                Ok((p, warnings)) => {
                    policies.push(p);
                    problems.extend(warnings);
                }
                Err(d) => problems.extend(d),
            }
        }
        if problems.iter().any(Diagnostic::is_error) {
            return Err(Diagnostics(problems));
        }
        let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
        let attachments = match attach::parse(attach_file, attach_text, &names, customers) {
            Ok((a, warnings)) => {
                problems.extend(warnings);
                a
            }
            Err(d) => {
                problems.extend(d);
                return Err(Diagnostics(problems));
            }
        };
        let build = |list: &[(String, Vec<usize>)]| {
            list.iter()
                .map(|(who, ps)| (who.clone(), index(&policies, ps, catalog)))
                .collect::<HashMap<_, _>>()
        };
        let set = Self {
            customers: build(&attachments.customers),
            groups: build(&attachments.groups),
            unlisted: attachments.unlisted,
            attachments_file: attach_file.to_path_buf(),
            policies,
        };
        Ok((set, problems))
    }

    /// The policies, in file-name order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// One statement.
    pub fn statement(&self, id: StmtId) -> (&Policy, &Statement) {
        let p = &self.policies[id.policy as usize];
        (p, &p.statements[usize::from(id.statement)])
    }

    /// The customer's own attachments, if any.
    pub fn customer(&self, id: &str) -> Option<&Principal> {
        self.customers.get(id)
    }

    /// The group's attachments, if any.
    pub fn group(&self, name: &str) -> Option<&Principal> {
        self.groups.get(name)
    }

    /// The rule for APIs without a permission code.
    pub fn unlisted(&self) -> Unlisted {
        self.unlisted
    }

    /// The attachments file.
    pub fn attachments_file(&self) -> &Path {
        &self.attachments_file
    }
}

fn read_capped(path: &Path, max: u64) -> Result<String, Diagnostic> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > max => {
            return Err(Diagnostic::error(
                path,
                "",
                format!("larger than {max} bytes: not a policy file"),
            ));
        }
        Ok(_) => {}
        Err(e) => return Err(Diagnostic::error(path, "", format!("cannot read: {e}"))),
    }
    std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::error(path, "", format!("cannot read: {e}")))
}

/// Matches every statement of `attached` against every code once.
fn index(policies: &[Policy], attached: &[usize], catalog: &Catalog) -> Principal {
    let codes = catalog.codes();
    let mut deny: Vec<Vec<StmtId>> = vec![Vec::new(); codes.len()];
    let mut allow: Vec<Vec<StmtId>> = vec![Vec::new(); codes.len()];
    for &pi in attached {
        for (si, st) in policies[pi].statements.iter().enumerate() {
            let id = StmtId {
                policy: u32::try_from(pi).unwrap_or(u32::MAX),
                statement: u16::try_from(si).unwrap_or(u16::MAX),
                conditional: !st.conditions.is_empty(),
            };
            for (ci, code) in codes.iter().enumerate() {
                if st.actions.iter().any(|a| a.matches(code)) {
                    match st.effect {
                        Effect::Deny => deny[ci].push(id),
                        Effect::Allow => allow[ci].push(id),
                    }
                }
            }
        }
    }
    let finish = |mut v: Vec<StmtId>| {
        // Stable: unconditional first, otherwise attachment/document order.
        v.sort_by_key(|s| s.conditional);
        v.into_boxed_slice()
    };
    Principal {
        policies: attached
            .iter()
            .map(|&p| u32::try_from(p).unwrap_or(u32::MAX))
            .collect(),
        index: deny
            .into_iter()
            .zip(allow)
            .map(|(d, a)| CodeIndex {
                deny: finish(d),
                allow: finish(a),
            })
            .collect(),
    }
}

impl Principal {
    /// The statements that can apply to `code`.
    pub fn for_code(&self, code: CodeId) -> Option<&CodeIndex> {
        self.index.get(code.index())
    }
}
