//! Statement conditions: `{ "<Operator>": { "<key>": ["v1", "v2"] } }`,
//! compiled at load (values parsed and type-checked against the key), then
//! evaluated per request without allocating.
//!
//! Logic (huawei-iam-policy.md §3 `condition_holds`): several operators →
//! AND; several keys under one operator → AND; several values for one key →
//! OR (for a negated operator, "matches none of the values"). A key missing
//! from the request makes a plain operator false and an `…IfExists`
//! operator true.
//!
//! Operators: the Huawei 1.1 family (`StringEquals`, `StringStartWith`,
//! `StringEndWith` as in the official examples, plus their `Not` and
//! `IgnoreCase` forms and `StringLike`), `Date*`, `Bool`, `IpAddress` /
//! `NotIpAddress`; any of them with the `IfExists` suffix. `Number*`
//! operators are recognised but refused: Tollgate supplies no numeric key,
//! so such a condition could never hold.
//!
//! Keys Tollgate supplies (anything else is refused at load — Huawei's
//! `g:MFAPresent`, `g:ProjectName`, service keys like `obs:prefix` have no
//! meaning at a billing gateway):
//!
//! | key | type | value |
//! |---|---|---|
//! | `g:UserName` | string | the customer's id (`acme`) |
//! | `g:UserId` | string | the customer's cloud account id (Alibaba UID) |
//! | `g:ServiceName` | string | the service of the code being checked (`bss`, `bssapi`, `ecs`) |
//! | `g:CurrentTime` | date | the gateway's clock (UTC) |
//! | `g:SourceIp` | ip | the TCP peer address of the call |
//! | `tollgate:CustomerGroup` | string | the customer's group; missing when none |
//! | `tollgate:Region` | string | the region the call names (`RegionId`/`Region`); missing when none |
//! | `tollgate:Frontend` | bool | `true` when a partner frontend key acts for the customer |
//! | `tollgate:Kind` | string | the API's kind: `read`, `price`, `purchase`, `modify`, `bill`, `budget` |
//!
//! Key names compare case-insensitively; operator names exactly.

use std::fmt;
use std::net::IpAddr;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::catalog::Kind;

/// What a request brings to condition evaluation. Borrowed: building one
/// allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The customer's id (`g:UserName`).
    pub customer_id: &'a str,
    /// The customer's cloud account id (`g:UserId`).
    pub customer_uid: &'a str,
    /// The customer's group (`tollgate:CustomerGroup`).
    pub group: Option<&'a str>,
    /// The region the call names (`tollgate:Region`).
    pub region: Option<&'a str>,
    /// The TCP peer (`g:SourceIp`).
    pub source_ip: Option<IpAddr>,
    /// Now (`g:CurrentTime`).
    pub now: OffsetDateTime,
    /// A frontend key acts for the customer (`tollgate:Frontend`).
    pub frontend: bool,
    /// The API's kind (`tollgate:Kind`); `None` for an unlisted API.
    pub kind: Option<Kind>,
}

/// The type of a condition key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Compared with `String*`.
    String,
    /// Compared with `Date*` (ISO 8601 / RFC 3339 values).
    Date,
    /// Compared with `Bool` (`true` / `false`).
    Bool,
    /// Compared with `IpAddress` / `NotIpAddress` (addresses or CIDR ranges).
    Ip,
}

impl KeyType {
    fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Date => "date",
            Self::Bool => "bool",
            Self::Ip => "ip",
        }
    }
}

/// A key Tollgate supplies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `g:UserName`.
    UserName,
    /// `g:UserId`.
    UserId,
    /// `g:ServiceName`.
    ServiceName,
    /// `g:CurrentTime`.
    CurrentTime,
    /// `g:SourceIp`.
    SourceIp,
    /// `tollgate:CustomerGroup`.
    CustomerGroup,
    /// `tollgate:Region`.
    Region,
    /// `tollgate:Frontend`.
    Frontend,
    /// `tollgate:Kind`.
    Kind,
}

/// Every supplied key: name, key, type.
pub const KEYS: [(&str, Key, KeyType); 9] = [
    ("g:UserName", Key::UserName, KeyType::String),
    ("g:UserId", Key::UserId, KeyType::String),
    ("g:ServiceName", Key::ServiceName, KeyType::String),
    ("g:CurrentTime", Key::CurrentTime, KeyType::Date),
    ("g:SourceIp", Key::SourceIp, KeyType::Ip),
    (
        "tollgate:CustomerGroup",
        Key::CustomerGroup,
        KeyType::String,
    ),
    ("tollgate:Region", Key::Region, KeyType::String),
    ("tollgate:Frontend", Key::Frontend, KeyType::Bool),
    ("tollgate:Kind", Key::Kind, KeyType::String),
];

impl Key {
    /// The key named `name` (case-insensitive) and its type.
    pub fn parse(name: &str) -> Option<(Self, KeyType)> {
        KEYS.iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, k, t)| (k, t))
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        KEYS.iter()
            .find(|(_, k, _)| *k == self)
            .map_or("", |(n, _, _)| n)
    }
}

/// A key's value in one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A string key.
    Str(&'a str),
    /// A date key.
    Date(OffsetDateTime),
    /// A bool key.
    Bool(bool),
    /// An ip key.
    Ip(IpAddr),
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => f.write_str(s),
            Self::Date(d) => match d.format(&Rfc3339) {
                Ok(s) => f.write_str(&s),
                Err(_) => write!(f, "{d}"),
            },
            Self::Bool(b) => write!(f, "{b}"),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// The value of `key` in `ctx`, checking permission code service `service`.
pub fn value<'a>(key: Key, ctx: &RequestContext<'a>, service: &'a str) -> Option<Value<'a>> {
    match key {
        Key::UserName => Some(Value::Str(ctx.customer_id)),
        Key::UserId => Some(Value::Str(ctx.customer_uid)),
        Key::ServiceName => Some(Value::Str(service)),
        Key::CurrentTime => Some(Value::Date(ctx.now)),
        Key::SourceIp => ctx.source_ip.map(Value::Ip),
        Key::CustomerGroup => ctx.group.map(Value::Str),
        Key::Region => ctx.region.map(Value::Str),
        Key::Frontend => Some(Value::Bool(ctx.frontend)),
        Key::Kind => ctx.kind.map(|k| Value::Str(k.as_str())),
    }
}

/// The string comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StrOp {
    Equals,
    EqualsIgnoreCase,
    /// `*` and `?` wildcards, case-sensitive.
    Like,
    StartWith,
    StartWithIgnoreCase,
    EndWith,
    EndWithIgnoreCase,
}

/// The date comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateOp {
    Equals,
    LessThan,
    LessThanEquals,
    GreaterThan,
    GreaterThanEquals,
}

/// A parsed operator name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    Str(StrOp),
    Date(DateOp),
    Bool,
    Ip,
}

impl Test {
    fn key_type(self) -> KeyType {
        match self {
            Self::Str(_) => KeyType::String,
            Self::Date(_) => KeyType::Date,
            Self::Bool => KeyType::Bool,
            Self::Ip => KeyType::Ip,
        }
    }
}

/// Parses an operator name into (test, negated, if_exists).
fn parse_operator(name: &str) -> Result<(Test, bool, bool), String> {
    let (base, if_exists) = match name.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let (test, negated) = match base {
        "StringEquals" => (Test::Str(StrOp::Equals), false),
        "StringNotEquals" => (Test::Str(StrOp::Equals), true),
        "StringEqualsIgnoreCase" => (Test::Str(StrOp::EqualsIgnoreCase), false),
        "StringNotEqualsIgnoreCase" => (Test::Str(StrOp::EqualsIgnoreCase), true),
        "StringLike" => (Test::Str(StrOp::Like), false),
        "StringNotLike" => (Test::Str(StrOp::Like), true),
        "StringStartWith" => (Test::Str(StrOp::StartWith), false),
        "StringNotStartWith" => (Test::Str(StrOp::StartWith), true),
        "StringStartWithIgnoreCase" => (Test::Str(StrOp::StartWithIgnoreCase), false),
        "StringNotStartWithIgnoreCase" => (Test::Str(StrOp::StartWithIgnoreCase), true),
        "StringEndWith" => (Test::Str(StrOp::EndWith), false),
        "StringNotEndWith" => (Test::Str(StrOp::EndWith), true),
        "StringEndWithIgnoreCase" => (Test::Str(StrOp::EndWithIgnoreCase), false),
        "StringNotEndWithIgnoreCase" => (Test::Str(StrOp::EndWithIgnoreCase), true),
        "DateEquals" => (Test::Date(DateOp::Equals), false),
        "DateNotEquals" => (Test::Date(DateOp::Equals), true),
        "DateLessThan" => (Test::Date(DateOp::LessThan), false),
        "DateLessThanEquals" => (Test::Date(DateOp::LessThanEquals), false),
        "DateGreaterThan" => (Test::Date(DateOp::GreaterThan), false),
        "DateGreaterThanEquals" => (Test::Date(DateOp::GreaterThanEquals), false),
        "Bool" => (Test::Bool, false),
        "IpAddress" => (Test::Ip, false),
        "NotIpAddress" => (Test::Ip, true),
        n if n.starts_with("Number") => {
            return Err(format!(
                "`{name}`: Tollgate supplies no numeric condition key, so this condition could never hold"
            ));
        }
        _ => {
            return Err(format!(
                "unknown condition operator `{name}` (String*, Date*, Bool, IpAddress, NotIpAddress, each optionally with IfExists)"
            ));
        }
    };
    Ok((test, negated, if_exists))
}

/// An IP range (a single address is a full-length prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `203.0.113.0/24`, `2001:db8::/32` or a single address.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or CIDR range"))?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0..={max}"))?,
        };
        Ok(Self { addr, prefix })
    }

    /// Whether `ip` is inside the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = usize::from(bits / 8);
    let rest = bits % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// Compiled values.
#[derive(Debug, Clone, PartialEq)]
enum Values {
    Str(Box<[Box<str>]>),
    Date(Box<[OffsetDateTime]>),
    Bool(Box<[bool]>),
    Ip(Box<[IpNet]>),
}

/// One compiled condition: an operator applied to one key.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    operator: Box<str>,
    key: Key,
    test: Test,
    negated: bool,
    if_exists: bool,
    values: Values,
    /// The values as written, for explanations.
    written: Box<[Box<str>]>,
}

/// Why a condition is refused at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionError {
    /// Which part is wrong: the operator, the key, or value `n`.
    pub at: ConditionPart,
    /// Why.
    pub message: String,
}

/// The part of a condition an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionPart {
    /// The operator name.
    Operator,
    /// The key name.
    Key,
    /// The value at this index.
    Value(usize),
}

impl Condition {
    /// Compiles `operator: { key: values }`.
    pub fn compile(operator: &str, key: &str, values: &[String]) -> Result<Self, ConditionError> {
        let err = |at, message: String| ConditionError { at, message };
        let (test, negated, if_exists) =
            parse_operator(operator).map_err(|m| err(ConditionPart::Operator, m))?;
        let (k, ty) = Key::parse(key).ok_or_else(|| {
            let known: Vec<&str> = KEYS.iter().map(|(n, _, _)| *n).collect();
            err(
                ConditionPart::Key,
                format!(
                    "Tollgate does not supply the condition key `{key}` (it supplies: {})",
                    known.join(", ")
                ),
            )
        })?;
        if test.key_type() != ty {
            return Err(err(
                ConditionPart::Operator,
                format!(
                    "`{operator}` compares {} values; `{}` is a {} key",
                    test.key_type().as_str(),
                    k.name(),
                    ty.as_str()
                ),
            ));
        }
        if values.is_empty() {
            return Err(err(
                ConditionPart::Key,
                "a condition needs at least one value".into(),
            ));
        }
        let compiled = match test {
            Test::Str(_) => Values::Str(values.iter().map(|v| v.as_str().into()).collect()),
            Test::Date(_) => Values::Date(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        OffsetDateTime::parse(v, &Rfc3339).map_err(|_| {
                            err(
                                ConditionPart::Value(i),
                                format!("`{v}` is not an ISO 8601 time like 2012-11-11T23:59:59Z"),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Test::Bool => Values::Bool(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v.to_ascii_lowercase().as_str() {
                        "true" => Ok(true),
                        "false" => Ok(false),
                        _ => Err(err(
                            ConditionPart::Value(i),
                            format!("`{v}` is not `true` or `false`"),
                        )),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Test::Ip => Values::Ip(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| IpNet::parse(v).map_err(|m| err(ConditionPart::Value(i), m)))
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Self {
            operator: operator.into(),
            key: k,
            test,
            negated,
            if_exists,
            values: compiled,
            written: values.iter().map(|v| v.as_str().into()).collect(),
        })
    }

    /// The operator as written.
    pub fn operator(&self) -> &str {
        &self.operator
    }

    /// The key.
    pub fn key(&self) -> Key {
        self.key
    }

    /// The values as written.
    pub fn values(&self) -> &[Box<str>] {
        &self.written
    }

    /// Whether the condition holds for `ctx`, checking a code of `service`.
    pub fn holds(&self, ctx: &RequestContext<'_>, service: &str) -> bool {
        match value(self.key, ctx, service) {
            None => self.if_exists,
            Some(v) => self.any_matches(v) != self.negated,
        }
    }

    fn any_matches(&self, v: Value<'_>) -> bool {
        match (&self.values, v) {
            (Values::Str(vals), Value::Str(s)) => {
                let Test::Str(op) = self.test else {
                    return false;
                };
                vals.iter().any(|w| str_test(op, s, w))
            }
            (Values::Date(vals), Value::Date(now)) => {
                let Test::Date(op) = self.test else {
                    return false;
                };
                vals.iter().any(|w| match op {
                    DateOp::Equals => now == *w,
                    DateOp::LessThan => now < *w,
                    DateOp::LessThanEquals => now <= *w,
                    DateOp::GreaterThan => now > *w,
                    DateOp::GreaterThanEquals => now >= *w,
                })
            }
            (Values::Bool(vals), Value::Bool(b)) => vals.contains(&b),
            (Values::Ip(vals), Value::Ip(ip)) => vals.iter().any(|n| n.contains(ip)),
            // Types are checked at compile time; a mismatch cannot match.
            _ => false,
        }
    }
}

fn str_test(op: StrOp, s: &str, w: &str) -> bool {
    let (sb, wb) = (s.as_bytes(), w.as_bytes());
    match op {
        StrOp::Equals => s == w,
        StrOp::EqualsIgnoreCase => s.eq_ignore_ascii_case(w),
        StrOp::Like => like(wb, sb),
        StrOp::StartWith => s.starts_with(w),
        StrOp::StartWithIgnoreCase => {
            sb.len() >= wb.len() && sb[..wb.len()].eq_ignore_ascii_case(wb)
        }
        StrOp::EndWith => s.ends_with(w),
        StrOp::EndWithIgnoreCase => {
            sb.len() >= wb.len() && sb[sb.len() - wb.len()..].eq_ignore_ascii_case(wb)
        }
    }
}

/// `StringLike`: `*` any run, `?` any one byte; case-sensitive.
fn like(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
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

    fn ctx() -> RequestContext<'static> {
        RequestContext {
            customer_id: "ops-1",
            customer_uid: "2000000000000001",
            group: Some("enterprise"),
            region: Some("cn-hangzhou"),
            source_ip: Some("203.0.113.7".parse().expect("ip")),
            now: time::macros::datetime!(2026-05-01 08:30:00 UTC),
            frontend: false,
            kind: Some(Kind::Purchase),
        }
    }

    fn holds(op: &str, key: &str, values: &[&str]) -> bool {
        let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        Condition::compile(op, key, &values)
            .unwrap_or_else(|e| panic!("{op} {key}: {}", e.message))
            .holds(&ctx(), "bss")
    }

    fn refused(op: &str, key: &str, values: &[&str]) -> ConditionError {
        let values: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        Condition::compile(op, key, &values).expect_err("refused")
    }

    #[test]
    fn string_operators() {
        assert!(holds("StringStartWith", "g:UserName", &["ops"]));
        assert!(!holds("StringStartWith", "g:UserName", &["dev"]));
        assert!(
            holds("StringStartWith", "g:UserName", &["dev", "ops"]),
            "values OR"
        );
        assert!(holds("StringNotStartWith", "g:UserName", &["dev", "qa"]));
        assert!(
            !holds("StringNotStartWith", "g:UserName", &["dev", "ops"]),
            "matches one"
        );
        assert!(holds("StringEquals", "g:UserName", &["ops-1"]));
        assert!(!holds("StringEquals", "g:UserName", &["OPS-1"]));
        assert!(holds("StringEqualsIgnoreCase", "g:UserName", &["OPS-1"]));
        assert!(holds("StringNotEquals", "g:UserName", &["dev-1"]));
        assert!(holds("StringEndWith", "g:UserName", &["-1"]));
        assert!(holds(
            "StringEndWithIgnoreCase",
            "tollgate:Region",
            &["HANGZHOU"]
        ));
        assert!(holds(
            "StringStartWithIgnoreCase",
            "tollgate:Region",
            &["CN-"]
        ));
        assert!(holds("StringLike", "tollgate:Region", &["cn-*"]));
        assert!(holds("StringLike", "g:UserName", &["ops-?"]));
        assert!(!holds("StringLike", "g:UserName", &["OPS-?"]));
        assert!(holds("StringNotLike", "tollgate:Region", &["us-*"]));
        assert!(holds(
            "StringEquals",
            "tollgate:CustomerGroup",
            &["enterprise"]
        ));
        assert!(holds("StringEquals", "g:ServiceName", &["bss"]));
        assert!(holds("StringEquals", "tollgate:Kind", &["purchase"]));
        assert!(holds("StringEquals", "g:UserId", &["2000000000000001"]));
        // Key names are case-insensitive.
        assert!(holds("StringEquals", "G:USERNAME", &["ops-1"]));
    }

    #[test]
    fn date_bool_and_ip_operators() {
        assert!(holds(
            "DateLessThan",
            "g:CurrentTime",
            &["2026-12-31T23:59:59Z"]
        ));
        assert!(!holds(
            "DateGreaterThan",
            "g:CurrentTime",
            &["2026-12-31T23:59:59Z"]
        ));
        assert!(holds(
            "DateGreaterThanEquals",
            "g:CurrentTime",
            &["2026-05-01T08:30:00Z"]
        ));
        assert!(holds(
            "DateLessThanEquals",
            "g:CurrentTime",
            &["2026-05-01T16:30:00+08:00"]
        ));
        assert!(holds(
            "DateEquals",
            "g:CurrentTime",
            &["2026-05-01T08:30:00Z"]
        ));
        assert!(holds(
            "DateNotEquals",
            "g:CurrentTime",
            &["2026-05-01T08:30:01Z"]
        ));
        assert!(holds("Bool", "tollgate:Frontend", &["false"]));
        assert!(!holds("Bool", "tollgate:Frontend", &["TRUE"]));
        assert!(holds("IpAddress", "g:SourceIp", &["203.0.113.0/24"]));
        assert!(holds(
            "IpAddress",
            "g:SourceIp",
            &["10.0.0.0/8", "203.0.113.7"]
        ));
        assert!(!holds("IpAddress", "g:SourceIp", &["203.0.112.0/24"]));
        assert!(holds("NotIpAddress", "g:SourceIp", &["10.0.0.0/8"]));
        assert!(holds("IpAddress", "g:SourceIp", &["0.0.0.0/0"]));
        assert!(
            !holds("IpAddress", "g:SourceIp", &["::/0"]),
            "families differ"
        );
    }

    #[test]
    fn missing_keys_and_if_exists() {
        let mut c = ctx();
        c.region = None;
        c.group = None;
        let cond =
            |op: &str, key: &str| Condition::compile(op, key, &["x".to_owned()]).expect("compiles");
        // Plain operators (negated too) are false on a missing key.
        assert!(!cond("StringEquals", "tollgate:Region").holds(&c, "bss"));
        assert!(!cond("StringNotEquals", "tollgate:Region").holds(&c, "bss"));
        // IfExists: true when missing, a normal test when present.
        assert!(cond("StringEqualsIfExists", "tollgate:Region").holds(&c, "bss"));
        assert!(cond("StringNotEqualsIfExists", "tollgate:CustomerGroup").holds(&c, "bss"));
        assert!(!cond("StringEqualsIfExists", "g:UserName").holds(&c, "bss"));
        // The reference's own example operator.
        assert!(
            Condition::compile("StringEndWithIfExists", "g:UserName", &["-1".into()])
                .expect("compiles")
                .holds(&c, "bss")
        );
        let mut no_ip = ctx();
        no_ip.source_ip = None;
        assert!(
            !Condition::compile("NotIpAddress", "g:SourceIp", &["10.0.0.0/8".into()])
                .expect("compiles")
                .holds(&no_ip, "bss")
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_ranges() {
        let net = IpNet::parse("192.0.2.0/25").expect("net");
        assert!(net.contains("::ffff:192.0.2.5".parse().expect("mapped")));
        assert!(!net.contains("192.0.2.200".parse().expect("ip")));
        let v6 = IpNet::parse("2001:db8::/33").expect("v6");
        assert!(v6.contains("2001:db8:7fff::1".parse().expect("ip")));
        assert!(!v6.contains("2001:db8:8000::1".parse().expect("ip")));
    }

    #[test]
    fn bad_conditions_are_refused_with_the_part() {
        let e = refused("StringBeginsWith", "g:UserName", &["x"]);
        assert_eq!(e.at, ConditionPart::Operator);
        assert!(
            e.message.contains("unknown condition operator"),
            "{}",
            e.message
        );
        let e = refused("NumberGreaterThan", "g:MFAAge", &["1"]);
        assert!(
            e.message.contains("no numeric condition key"),
            "{}",
            e.message
        );
        let e = refused("Bool", "g:MFAPresent", &["true"]);
        assert_eq!(e.at, ConditionPart::Key);
        assert!(e.message.contains("does not supply"), "{}", e.message);
        let e = refused("DateLessThan", "g:UserName", &["2026-01-01T00:00:00Z"]);
        assert!(e.message.contains("compares date values"), "{}", e.message);
        let e = refused(
            "DateLessThan",
            "g:CurrentTime",
            &["2026-01-01T00:00:00Z", "tomorrow"],
        );
        assert_eq!(e.at, ConditionPart::Value(1));
        let e = refused("IpAddress", "g:SourceIp", &["10.0.0.0/33"]);
        assert_eq!(e.at, ConditionPart::Value(0));
        let e = refused("Bool", "tollgate:Frontend", &["yes"]);
        assert_eq!(e.at, ConditionPart::Value(0));
        let e = refused("StringEquals", "g:UserName", &[]);
        assert!(e.message.contains("at least one value"), "{}", e.message);
    }
}
