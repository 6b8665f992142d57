//! Where a value sits in a JSON text: `Statement[2].Action[3]` → byte
//! offset, so a validation error (found after parsing, on the typed model)
//! can still name the line and column. `serde_json` reports positions only
//! for syntax and shape errors; this scanner covers the semantic ones.
//!
//! The text is known to be valid JSON (it parsed), so the scanner is small:
//! it skips values it does not descend into and never builds them.

/// One step of a path into a JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// The value of this member of an object.
    Member(&'a str),
    /// The member name itself (last step only): points at the key.
    Name(&'a str),
    /// This element of an array.
    Index(usize),
}

/// Byte offset of the value (or key) at `path`, if present.
pub fn locate(text: &str, path: &[Step<'_>]) -> Option<usize> {
    let b = text.as_bytes();
    let mut i = ws(b, 0);
    for (n, step) in path.iter().enumerate() {
        match *step {
            Step::Member(want) | Step::Name(want) => {
                if b.get(i) != Some(&b'{') {
                    return None;
                }
                i = ws(b, i + 1);
                loop {
                    if b.get(i) == Some(&b'}') {
                        return None;
                    }
                    let key_at = i;
                    let end = skip_string(b, i)?;
                    let found = key_eq(&text[key_at..end], want);
                    i = ws(b, end);
                    if b.get(i) != Some(&b':') {
                        return None;
                    }
                    i = ws(b, i + 1);
                    if found {
                        if matches!(step, Step::Name(_)) {
                            return (n + 1 == path.len()).then_some(key_at);
                        }
                        break;
                    }
                    i = ws(b, skip_value(b, i)?);
                    match b.get(i) {
                        Some(b',') => i = ws(b, i + 1),
                        _ => return None,
                    }
                }
            }
            Step::Index(k) => {
                if b.get(i) != Some(&b'[') {
                    return None;
                }
                i = ws(b, i + 1);
                for _ in 0..k {
                    if b.get(i) == Some(&b']') {
                        return None;
                    }
                    i = ws(b, skip_value(b, i)?);
                    match b.get(i) {
                        Some(b',') => i = ws(b, i + 1),
                        _ => return None,
                    }
                }
                if b.get(i) == Some(&b']') {
                    return None;
                }
            }
        }
    }
    Some(i)
}

/// Whether the raw JSON string literal `raw` (with quotes) decodes to `want`.
fn key_eq(raw: &str, want: &str) -> bool {
    if raw.contains('\\') {
        serde_json::from_str::<String>(raw).is_ok_and(|k| k == want)
    } else {
        raw.len() >= 2 && &raw[1..raw.len() - 1] == want
    }
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// `i` at an opening quote; returns the index after the closing quote.
fn skip_string(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// `i` at a value; returns the index just after it.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match b.get(i)? {
        b'"' => skip_string(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = skip_string(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']') && !b[j].is_ascii_whitespace()
            {
                j += 1;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::line_column;

    const DOC: &str = r#"{
  "Version": "1.1",
  "Statement": [
    {"Effect": "Allow", "Action": ["bss:order:view", "x\"y", {"n": [1, 2]}, "bad"]},
    {
      "Effect": "Deny",
      "Action": ["BSS:order:pay"],
      "Condition": {"StringStartWith": {"g:UserName": ["intern-"]}}
    }
  ]
}"#;

    fn at(path: &[Step<'_>]) -> Option<(usize, usize)> {
        locate(DOC, path).map(|o| line_column(DOC, o))
    }

    #[test]
    fn finds_values_and_keys() {
        use Step::*;
        assert_eq!(at(&[Member("Version")]), Some((2, 14)));
        assert_eq!(
            at(&[Member("Statement"), Index(0), Member("Action"), Index(0)]),
            Some((4, 36))
        );
        // Skips escaped quotes and nested containers.
        assert_eq!(
            at(&[Member("Statement"), Index(0), Member("Action"), Index(3)]),
            Some((4, 77))
        );
        assert_eq!(
            at(&[Member("Statement"), Index(1), Member("Action"), Index(0)]),
            Some((7, 18))
        );
        assert_eq!(
            at(&[
                Member("Statement"),
                Index(1),
                Member("Condition"),
                Name("StringStartWith")
            ]),
            Some((8, 21))
        );
        assert_eq!(
            at(&[
                Member("Statement"),
                Index(1),
                Member("Condition"),
                Member("StringStartWith"),
                Member("g:UserName"),
                Index(0)
            ]),
            Some((8, 56))
        );
    }

    #[test]
    fn absent_paths_are_none() {
        use Step::*;
        assert_eq!(at(&[Member("Nope")]), None);
        assert_eq!(at(&[Member("Statement"), Index(2)]), None);
        assert_eq!(at(&[Member("Version"), Index(0)]), None);
        assert_eq!(at(&[Name("Version"), Index(0)]), None);
    }
}
