//! Action patterns (`bss:*:view`, `bssapi:Query*`, `*`), compiled once at
//! load, matched against catalogued permission codes without allocating.
//!
//! Rules (huawei-iam-policy.md §3 `action_matches`, extended to Alibaba's
//! two-part RAM actions):
//! 1. A pattern of exactly `*` matches every code.
//! 2. Otherwise pattern and code must have the same number of segments:
//!    `svc:Action` patterns match only Alibaba RAM actions,
//!    `svc:type:op` patterns only Huawei codes (`bss:*` does not match
//!    `bss:order:view`, and `*:*:*` matches no `bssapi:` action).
//! 3. The service is lower case only (an upper-case service is refused at
//!    load); `*` as the whole service matches any service.
//! 4. Every later segment is an ASCII case-insensitive glob: `*` matches any
//!    run of characters, including none; there are no other metacharacters.

use std::fmt;

use crate::catalog::{Code, CodeError, code};

/// One segment of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Glob {
    /// `*`: anything.
    Any,
    /// No `*`: equal (after lower-casing).
    Exact(Box<str>),
    /// Contains `*`: a lower-cased glob.
    Wild(Box<str>),
}

impl Glob {
    fn compile(segment: &str) -> Self {
        if segment == "*" {
            Self::Any
        } else if segment.contains('*') {
            Self::Wild(segment.to_ascii_lowercase().into())
        } else {
            Self::Exact(segment.to_ascii_lowercase().into())
        }
    }

    /// `text` is already lower case (codes store lower-case segments).
    fn matches(&self, text: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(s) => **s == *text,
            Self::Wild(g) => glob(g.as_bytes(), text.as_bytes()),
        }
    }
}

/// A compiled action pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionPattern {
    text: Box<str>,
    /// Empty for the lone `*`.
    segments: Box<[Glob]>,
}

impl ActionPattern {
    /// Compiles a pattern, refusing malformed ones (see the module rules).
    pub fn parse(text: &str) -> Result<Self, CodeError> {
        if text == "*" {
            return Ok(Self {
                text: text.into(),
                segments: Box::new([]),
            });
        }
        let segments = code::split(text, true)?;
        Ok(Self {
            text: text.into(),
            segments: segments.iter().map(|s| Glob::compile(s)).collect(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this pattern matches `code`.
    pub fn matches(&self, code: &Code) -> bool {
        if self.segments.is_empty() {
            return true;
        }
        let segs = code.segments();
        segs.len() == self.segments.len()
            && self
                .segments
                .iter()
                .zip(segs.iter())
                .all(|(g, s)| g.matches(s))
    }
}

impl fmt::Display for ActionPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `*`-only glob over bytes (the pattern is lower case, so is the text).
/// Iterative with one backtrack point: linear in practice, never recursive.
pub(crate) fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, code: &str) -> bool {
        ActionPattern::parse(pattern)
            .expect("pattern")
            .matches(&Code::parse(code).expect("code"))
    }

    #[test]
    fn the_reference_forms_match() {
        // huawei-iam-policy.md §2: official forms.
        assert!(m("bss:*:view", "bss:bill:view"));
        assert!(!m("bss:*:view", "bss:order:update"));
        assert!(m("bss:*:*", "bss:order:pay"));
        assert!(m("*:*:*", "bss:order:view"));
        assert!(m("bss:order:*", "bss:order:update"));
        assert!(m("vpc:*:get*", "vpc:subnets:getDetail"));
        assert!(m("*", "bss:order:view"));
        assert!(m("*", "bssapi:QueryOrders"));
    }

    #[test]
    fn case_rules() {
        // Type and operation are case-insensitive, both ways.
        assert!(m("bss:Order:VIEW", "bss:order:view"));
        assert!(m("bss:billdetail:view", "bss:billDetail:view"));
        assert!(m("bssapi:queryorders", "bssapi:QueryOrders"));
        assert!(m("bssapi:Query*", "bssapi:QueryOrders"));
        // An upper-case service is refused, not silently unmatched.
        assert_eq!(
            ActionPattern::parse("BSS:order:view"),
            Err(CodeError::ServiceCase("BSS".into()))
        );
    }

    #[test]
    fn segment_counts_keep_the_two_forms_apart() {
        assert!(!m("bss:*", "bss:order:view"));
        assert!(m("bss:*", "bss:DescribePrice"));
        assert!(!m("*:*:*", "bssapi:QueryOrders"));
        assert!(m("*:*", "ecs:RunInstances"));
        assert!(!m("bssapi:*", "ecs:RunInstances"));
    }

    #[test]
    fn globs_match_runs_anywhere() {
        assert!(m("bssapi:*Reseller*", "bssapi:SetResellerUserQuota"));
        assert!(m("bssapi:*Reseller*", "bssapi:QueryResellerAvailableQuota"));
        assert!(!m("bssapi:*Reseller*", "bssapi:QueryOrders"));
        assert!(m("bssapi:Get*Price", "bssapi:GetPayAsYouGoPrice"));
        assert!(!m("bssapi:Get*Price", "bssapi:GetOrderDetail"));
        assert!(m("bssapi:**Orders", "bssapi:QueryOrders"));
        assert!(m("bss:*der:view", "bss:order:view"));
        assert!(glob(b"a*b*c", b"aXbYbZc"));
        assert!(!glob(b"a*b*c", b"aXbYbZ"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"a", b""));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "",
            "bss",
            "bss:",
            ":order:view",
            "bss:order:view:x",
            "bss:or der:view",
            "bss:?:view",
        ] {
            assert!(ActionPattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
