//! Huawei REST path patterns (`/v2/orders/customer-orders/details/{order_id}`)
//! and how a request path is matched against them.
//!
//! Matching errs toward *matching*: a listed API needs a permission, an
//! unlisted one (by the seed's rule) may not, so a path that could reach a
//! listed API must never slip through as unlisted. Hence the request path is
//! normalised before comparison: percent-escapes decoded, empty segments
//! (`//`) and a trailing `/` ignored, literals compared ASCII
//! case-insensitively; `.` and `..` segments make the path match nothing
//! (the caller refuses such a path outright; see [`normalise`]).

use std::borrow::Cow;
use std::fmt;

/// One segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Must equal the request segment (ASCII case-insensitively).
    Literal(Box<str>),
    /// `{name}`: any one non-empty segment.
    Param(Box<str>),
}

/// A compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    text: Box<str>,
    segments: Box<[Segment]>,
}

/// Why a pattern is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not starting with `/`.
    #[error("a path pattern starts with `/`")]
    NotAbsolute,
    /// `//` or a trailing `/`.
    #[error("empty segment {0} (no `//`, no trailing `/`)")]
    EmptySegment(usize),
    /// `{` without `}` or a bad placeholder name.
    #[error(
        "segment {0}: a placeholder is `{{name}}` with a lower-case name (letters, digits, `_`)"
    )]
    Placeholder(usize),
    /// A character outside the allowed set.
    #[error("segment {0}: character {1:?} is not allowed (letters, digits, `-`, `_`, `.`)")]
    Character(usize, char),
}

impl PathPattern {
    /// Parses `/v2/orders/customer-orders/details/{order_id}`.
    pub fn parse(text: &str) -> Result<Self, PathError> {
        let rest = text.strip_prefix('/').ok_or(PathError::NotAbsolute)?;
        let mut segments = Vec::new();
        for (i, seg) in rest.split('/').enumerate() {
            let n = i + 1;
            if seg.is_empty() {
                return Err(PathError::EmptySegment(n));
            }
            if let Some(inner) = seg.strip_prefix('{') {
                let name = inner.strip_suffix('}').ok_or(PathError::Placeholder(n))?;
                let ok = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !ok {
                    return Err(PathError::Placeholder(n));
                }
                segments.push(Segment::Param(name.into()));
            } else {
                if let Some(c) = seg
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                {
                    return Err(if matches!(c, '{' | '}') {
                        PathError::Placeholder(n)
                    } else {
                        PathError::Character(n, c)
                    });
                }
                segments.push(Segment::Literal(seg.into()));
            }
        }
        Ok(Self {
            text: text.into(),
            segments: segments.into(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the normalised request path `segments` matches.
    pub fn matches(&self, segments: &[Cow<'_, str>]) -> bool {
        segments.len() == self.segments.len()
            && self.segments.iter().zip(segments).all(|(p, s)| match p {
                Segment::Literal(l) => l.eq_ignore_ascii_case(s),
                Segment::Param(_) => true,
            })
    }

    /// The value each placeholder took in a matching request path.
    pub fn params<'a>(&self, segments: &'a [Cow<'a, str>]) -> Vec<(&str, &'a str)> {
        self.segments
            .iter()
            .zip(segments)
            .filter_map(|(p, s)| match p {
                Segment::Param(name) => Some((&**name, &**s)),
                Segment::Literal(_) => None,
            })
            .collect()
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A request path (no query) split into decoded segments; `None` when it
/// holds a `.` or `..` segment, which no API has and which a proxy or the
/// provider could resolve into a different, listed path.
pub fn normalise(path: &str) -> Option<Vec<Cow<'_, str>>> {
    let mut out = Vec::new();
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let seg = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        if seg == "." || seg == ".." || seg.contains('/') {
            return None;
        }
        out.push(seg);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, path: &str) -> bool {
        let p = PathPattern::parse(pattern).expect("pattern");
        normalise(path).is_some_and(|segs| p.matches(&segs))
    }

    #[test]
    fn literals_and_placeholders() {
        let p = "/v2/orders/customer-orders/details/{order_id}";
        assert!(matches(
            p,
            "/v2/orders/customer-orders/details/CS2405010830ABCDE"
        ));
        assert!(!matches(p, "/v2/orders/customer-orders/details"));
        assert!(!matches(p, "/v2/orders/customer-orders/details/a/b"));
        assert!(!matches(p, "/v2/orders/customer-orders"));
        let pat = PathPattern::parse(p).expect("pattern");
        let segs = normalise("/v2/orders/customer-orders/details/X1").expect("path");
        assert_eq!(pat.params(&segs), vec![("order_id", "X1")]);
    }

    #[test]
    fn evasions_still_match_the_listed_api() {
        let p = "/v2/orders/customer-orders";
        assert!(matches(p, "/v2/orders/customer-orders/"));
        assert!(matches(p, "//v2//orders/customer-orders"));
        assert!(matches(p, "/v2/orders/customer%2Dorders"));
        assert!(matches(p, "/V2/Orders/Customer-Orders"));
        // Dot segments are never an API: refused as a whole.
        assert!(normalise("/v2/orders/x/../customer-orders").is_none());
        assert!(normalise("/v2/./orders").is_none());
        // An encoded slash cannot smuggle a segment boundary.
        assert!(normalise("/v2/orders%2Fcustomer-orders").is_none());
    }

    #[test]
    fn malformed_patterns_are_refused() {
        assert_eq!(PathPattern::parse("v2/x"), Err(PathError::NotAbsolute));
        assert_eq!(
            PathPattern::parse("/v2//x"),
            Err(PathError::EmptySegment(2))
        );
        assert_eq!(
            PathPattern::parse("/v2/x/"),
            Err(PathError::EmptySegment(3))
        );
        assert_eq!(
            PathPattern::parse("/v2/{Id}"),
            Err(PathError::Placeholder(2))
        );
        assert_eq!(
            PathPattern::parse("/v2/{id"),
            Err(PathError::Placeholder(2))
        );
        assert_eq!(
            PathPattern::parse("/v2/**"),
            Err(PathError::Character(2, '*'))
        );
        assert!(PathPattern::parse("/v1.0/{domain_id}/payments/intl-invoices").is_ok());
    }
}
