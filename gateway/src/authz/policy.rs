//! Policy documents in Huawei IAM 1.1 syntax (huawei-iam-policy.md §2),
//! used for both providers:
//!
//! ```json
//! {
//!   "Version": "1.1",
//!   "Statement": [
//!     {"Effect": "Allow", "Action": ["bss:order:view", "bssapi:QueryOrders"]},
//!     {"Effect": "Deny", "Action": ["bss:order:pay"],
//!      "Condition": {"StringStartWith": {"g:UserName": ["intern-"]}}}
//!   ]
//! }
//! ```
//!
//! Parsing compiles everything evaluation needs (patterns, condition values)
//! and validates: syntax and shape (unknown fields are errors, so a
//! `NotAction` or a typo is never silently ignored), `Version` `1.1`, the
//! reference's limits, malformed actions, actions naming no catalogued
//! permission code, `Resource` other than `*`, bad conditions. Each problem
//! carries the file, line and column, and the statement/action index.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use super::condition::{Condition, ConditionPart};
use super::matcher::ActionPattern;
use super::position::{Step, locate};
use crate::catalog::Catalog;
use crate::diagnostic::Diagnostic;

/// The only policy language version accepted: custom policies are `1.1`.
pub const VERSION: &str = "1.1";
/// Most statements in one policy (Huawei's limit for custom policies).
pub const MAX_STATEMENTS: usize = 8;
/// Most actions in one policy, all statements together (Huawei's limit; the
/// per-statement limit of 100 follows from it).
pub const MAX_ACTIONS: usize = 100;
/// Most conditions (operator-key pairs) in one policy (Huawei's limit).
pub const MAX_CONDITIONS: usize = 10;
/// Largest policy file read. 64 KiB: a policy at every limit above, with
/// long action names, is well under 16 KiB; a bigger file is not a policy.
pub const MAX_POLICY_FILE_BYTES: u64 = 64 << 10;

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Effect {
    /// Grants the actions (unless a Deny matches).
    Allow,
    /// Refuses the actions, whatever allows them.
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so `{:<5}` aligns explanations.
        f.pad(match self {
            Self::Allow => "Allow",
            Self::Deny => "Deny",
        })
    }
}

/// A JSON object read in document order, refusing duplicate keys (serde's
/// maps would keep the last silently; a duplicated condition operator must
/// not vanish).
#[derive(Debug)]
struct Ordered<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, V)> = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    if out.iter().any(|(e, _)| *e == k) {
                        return Err(serde::de::Error::custom(format!("duplicate key `{k}`")));
                    }
                    let v = map.next_value()?;
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V2(std::marker::PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(rename = "Version")]
    version: String,
    #[serde(rename = "Statement")]
    statement: Vec<RawStatement>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatement {
    #[serde(rename = "Effect")]
    effect: Effect,
    #[serde(rename = "Action")]
    action: Vec<String>,
    #[serde(rename = "Resource", default)]
    resource: Option<Vec<String>>,
    #[serde(rename = "Condition", default)]
    condition: Option<Ordered<Ordered<Vec<String>>>>,
}

/// One compiled statement.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Allow or Deny.
    pub effect: Effect,
    /// The action patterns (OR).
    pub actions: Vec<ActionPattern>,
    /// The conditions (AND); empty: always applies.
    pub conditions: Vec<Condition>,
    /// 1-based line of the statement in its file, for explanations.
    pub line: usize,
}

impl Statement {
    /// Whether every condition holds.
    pub fn applies(&self, ctx: &super::condition::RequestContext<'_>, service: &str) -> bool {
        self.conditions.iter().all(|c| c.holds(ctx, service))
    }
}

/// One compiled policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Its name: the file name without `.json`.
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// The statements, in document order.
    pub statements: Vec<Statement>,
}

/// Collects problems for one file.
struct Check<'a> {
    file: &'a Path,
    text: &'a str,
    problems: Vec<Diagnostic>,
}

impl Check<'_> {
    fn at(&mut self, steps: &[Step<'_>], path: String, message: String) {
        let d = Diagnostic::error(self.file, path, message);
        self.problems.push(match locate(self.text, steps) {
            Some(offset) => d.at_offset(self.text, offset),
            None => d,
        });
    }

    fn warn(&mut self, steps: &[Step<'_>], path: String, message: String) {
        let d = Diagnostic::warning(self.file, path, message);
        self.problems.push(match locate(self.text, steps) {
            Some(offset) => d.at_offset(self.text, offset),
            None => d,
        });
    }
}

/// Parses and validates one policy document. `Err` holds every error found
/// (and the warnings); `Ok` holds the policy and its warnings.
pub fn parse(
    file: &Path,
    name: &str,
    text: &str,
    catalog: &Catalog,
) -> Result<(Policy, Vec<Diagnostic>), Vec<Diagnostic>> {
    let raw: RawPolicy = serde_json::from_str(text).map_err(|e| {
        vec![
            Diagnostic::error(file, "", syntax_message(&e)).at(Some((e.line(), e.column().max(1)))),
        ]
    })?;
    let mut c = Check {
        file,
        text,
        problems: Vec::new(),
    };
    use Step::{Index, Member, Name};
    if raw.version != VERSION {
        c.at(
            &[Member("Version")],
            "Version".into(),
            format!(
                "`{}`: custom policies are Version \"{VERSION}\" (1.0 roles and 5.0 identity policies are not supported)",
                raw.version
            ),
        );
    }
    if raw.statement.is_empty() {
        c.at(
            &[Member("Statement")],
            "Statement".into(),
            "a policy needs at least one statement".into(),
        );
    }
    if raw.statement.len() > MAX_STATEMENTS {
        c.at(
            &[Member("Statement"), Index(MAX_STATEMENTS)],
            format!("Statement[{MAX_STATEMENTS}]"),
            format!(
                "{} statements: a policy holds at most {MAX_STATEMENTS}; split it into several policies",
                raw.statement.len()
            ),
        );
    }
    let mut statements = Vec::with_capacity(raw.statement.len());
    let (mut actions_seen, mut conditions_seen) = (0usize, 0usize);
    for (si, st) in raw.statement.iter().enumerate() {
        let sp = format!("Statement[{si}]");
        if st.action.is_empty() {
            c.at(
                &[Member("Statement"), Index(si), Member("Action")],
                format!("{sp}.Action"),
                "a statement needs at least one action".into(),
            );
        }
        let mut actions = Vec::with_capacity(st.action.len());
        for (ai, a) in st.action.iter().enumerate() {
            let steps = [Member("Statement"), Index(si), Member("Action"), Index(ai)];
            let ap = format!("{sp}.Action[{ai}]");
            actions_seen += 1;
            if actions_seen == MAX_ACTIONS + 1 {
                c.at(
                    &steps,
                    ap.clone(),
                    format!(
                        "a policy holds at most {MAX_ACTIONS} actions (all statements together)"
                    ),
                );
            }
            let pattern = match ActionPattern::parse(a) {
                Ok(p) => p,
                Err(e) => {
                    c.at(&steps, ap, format!("`{a}`: {e}"));
                    continue;
                }
            };
            if !catalog.codes().iter().any(|code| pattern.matches(code)) {
                c.at(
                    &steps,
                    ap,
                    format!(
                        "`{a}` matches no permission code in the catalog (unknown code or typo; the catalog lists e.g. `bss:order:view`, `bssapi:QueryOrders`)"
                    ),
                );
                continue;
            }
            if actions.iter().any(|p: &ActionPattern| p.as_str() == a) {
                c.warn(
                    &steps,
                    ap,
                    format!("`{a}` is listed twice in this statement"),
                );
            }
            actions.push(pattern);
        }
        if let Some(resources) = &st.resource {
            for (ri, r) in resources.iter().enumerate() {
                if r != "*" {
                    c.at(
                        &[Member("Statement"), Index(si), Member("Resource"), Index(ri)],
                        format!("{sp}.Resource[{ri}]"),
                        format!(
                            "`{r}`: only \"*\" is accepted (BSS has no resource-level authorization; Tollgate authorizes API calls)"
                        ),
                    );
                }
            }
        }
        let mut conditions = Vec::new();
        for (op, keys) in st.condition.iter().flat_map(|o| o.0.iter()) {
            if keys.0.is_empty() {
                c.at(
                    &[
                        Member("Statement"),
                        Index(si),
                        Member("Condition"),
                        Name(op),
                    ],
                    format!("{sp}.Condition.{op}"),
                    "an operator needs at least one key".into(),
                );
            }
            for (key, values) in &keys.0 {
                conditions_seen += 1;
                let cp = format!("{sp}.Condition.{op}.{key}");
                if conditions_seen == MAX_CONDITIONS + 1 {
                    c.at(
                        &[Member("Statement"), Index(si), Member("Condition"), Member(op), Name(key)],
                        cp.clone(),
                        format!("a policy holds at most {MAX_CONDITIONS} conditions (operator-key pairs)"),
                    );
                }
                match Condition::compile(op, key, values) {
                    Ok(cond) => conditions.push(cond),
                    Err(e) => {
                        let base = [Member("Statement"), Index(si), Member("Condition")];
                        let steps: Vec<Step<'_>> = match e.at {
                            ConditionPart::Operator => [&base[..], &[Name(op)]].concat(),
                            ConditionPart::Key => [&base[..], &[Member(op), Name(key)]].concat(),
                            ConditionPart::Value(i) => {
                                [&base[..], &[Member(op), Member(key), Index(i)]].concat()
                            }
                        };
                        c.at(&steps, cp, e.message);
                    }
                }
            }
        }
        let line = locate(text, &[Member("Statement"), Index(si)])
            .map_or(0, |o| crate::diagnostic::line_column(text, o).0);
        statements.push(Statement {
            effect: st.effect,
            actions,
            conditions,
            line,
        });
    }
    if c.problems.iter().any(Diagnostic::is_error) {
        return Err(c.problems);
    }
    Ok((
        Policy {
            name: name.to_owned(),
            file: file.to_path_buf(),
            statements,
        },
        c.problems,
    ))
}

/// serde_json's message without its trailing " at line L column C" (the
/// diagnostic carries the position itself).
fn syntax_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}
