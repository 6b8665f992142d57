//! Permission codes: the names policies grant.
//!
//! Two forms share one namespace, told apart by their number of segments:
//! * Huawei IAM 1.1: `service:resource-type:operation` (`bss:order:view`);
//! * Alibaba RAM: `service:ActionName` (`bssapi:QueryOrders`,
//!   `bss:DescribePrice`, `ecs:RunInstances`).
//!
//! Case rules (huawei-iam-policy.md §2, "Action string rules"): the service
//! is lower case only; every later segment is case-insensitive. RAM treats
//! action names case-insensitively too ("in most cases"), so one rule serves
//! both: `bss:billDetail:view` and `bss:billdetail:view` are the same code.

use std::fmt;

/// The most segments a code (or pattern) has: `service:type:operation`.
pub const MAX_SEGMENTS: usize = 3;

/// Why a code or pattern is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Empty string.
    #[error("empty action")]
    Empty,
    /// Not 2 or 3 `:`-separated segments.
    #[error(
        "expected `service:ActionName` (Alibaba RAM) or `service:resource-type:operation` (Huawei IAM), got {0} segment(s)"
    )]
    Segments(usize),
    /// A segment is empty (`bss::view`).
    #[error("segment {0} is empty")]
    EmptySegment(usize),
    /// Upper case in the service (`BSS:order:view`).
    #[error("the service `{0}` must be lower case (Huawei IAM rejects upper-case service names)")]
    ServiceCase(String),
    /// A character outside the allowed set.
    #[error("character {0:?} is not allowed in an action (letters, digits, `-`, `_`{1})")]
    Character(char, &'static str),
}

/// Checks the syntax shared by codes and patterns; `wildcards` allows `*`.
/// Returns the segments.
pub(crate) fn split(text: &str, wildcards: bool) -> Result<Vec<&str>, CodeError> {
    if text.is_empty() {
        return Err(CodeError::Empty);
    }
    let segments: Vec<&str> = text.split(':').collect();
    if !(2..=MAX_SEGMENTS).contains(&segments.len()) {
        return Err(CodeError::Segments(segments.len()));
    }
    let extra = if wildcards { ", `*`" } else { "" };
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            return Err(CodeError::EmptySegment(i + 1));
        }
        for c in seg.chars() {
            let ok = c.is_ascii_alphanumeric() || c == '-' || c == '_' || (wildcards && c == '*');
            if !ok {
                return Err(CodeError::Character(c, extra));
            }
        }
    }
    let service = segments[0];
    if service.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(CodeError::ServiceCase(service.to_owned()));
    }
    Ok(segments)
}

/// A catalogued permission code, ready to be matched without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    text: Box<str>,
    /// Lower-case segments (`["bss", "billdetail", "view"]`).
    lower: Box<[Box<str>]>,
}

impl Code {
    /// Parses a code as written in a catalog file (no wildcards).
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        let segments = split(text, false)?;
        Ok(Self {
            text: text.into(),
            lower: segments
                .iter()
                .map(|s| s.to_ascii_lowercase().into_boxed_str())
                .collect(),
        })
    }

    /// The code as the catalog writes it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The service segment (`bss`, `bssapi`, `ecs`).
    pub fn service(&self) -> &str {
        &self.lower[0]
    }

    /// The lower-case segments.
    pub fn segments(&self) -> &[Box<str>] {
        &self.lower
    }

    /// Whether `other` names the same code (case rules applied).
    pub fn same_as(&self, other: &Self) -> bool {
        self.lower == other.lower
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Index of a code in its catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeId(pub(crate) u16);

impl CodeId {
    /// The position in [`super::Catalog::codes`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Parses `A|B|…`: alternatives, any one of which grants the API (seed 004
/// writes code migrations as `new|old`).
pub fn parse_alternatives(text: &str) -> Result<Vec<Code>, CodeError> {
    text.split('|').map(|c| Code::parse(c.trim())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse_and_case_folds_after_the_service() {
        let h = Code::parse("bss:billDetail:view").expect("huawei");
        assert_eq!(h.service(), "bss");
        assert_eq!(h.as_str(), "bss:billDetail:view");
        assert!(h.same_as(&Code::parse("bss:BILLDETAIL:View").expect("case")));
        let a = Code::parse("bssapi:QueryOrders").expect("ram");
        assert_eq!(a.segments().len(), 2);
        assert!(!a.same_as(&Code::parse("bssapi:QueryOrder").expect("other")));
    }

    #[test]
    fn malformed_codes_are_refused_with_a_reason() {
        assert_eq!(Code::parse(""), Err(CodeError::Empty));
        assert_eq!(Code::parse("bss"), Err(CodeError::Segments(1)));
        assert_eq!(Code::parse("a:b:c:d"), Err(CodeError::Segments(4)));
        assert_eq!(Code::parse("bss::view"), Err(CodeError::EmptySegment(2)));
        assert_eq!(
            Code::parse("BSS:order:view"),
            Err(CodeError::ServiceCase("BSS".into()))
        );
        assert_eq!(
            Code::parse("bss:order:*"),
            Err(CodeError::Character('*', ""))
        );
        assert_eq!(
            Code::parse("bss:order view"),
            Err(CodeError::Character(' ', ""))
        );
        // Patterns may use `*`, nothing else.
        assert!(split("bss:*:view", true).is_ok());
        assert_eq!(
            split("bss:?:view", true),
            Err(CodeError::Character('?', ", `*`"))
        );
    }

    #[test]
    fn alternatives_split_on_the_bar() {
        let alts = parse_alternatives("bss:renewal:view|bss:order:view").expect("two");
        assert_eq!(alts.len(), 2);
        assert_eq!(alts[1].as_str(), "bss:order:view");
        assert!(parse_alternatives("bss:renewal:view|").is_err());
    }
}
