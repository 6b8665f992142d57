//! Typed reads of a call's business parameters, refusing in Alibaba's codes:
//! `Missing{Name}` for an absent required parameter, `Invalid{Name}` for a
//! value of the wrong type or outside its enum.
//!
//! Flattened lists (`ModuleList.N.Field`, `Parameter.N.Code`, `DataDisk.N.Size`)
//! are read by [`Params::list`]: N is a decimal index from 1 without leading
//! zeros, and the indices must be consecutive (1, 2, 3, ...). A gap or a bad
//! index is refused as `Invalid{List}` rather than silently skipped, so a
//! caller that drops an entry on the way learns it.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::aliyun::AliyunCall;
use crate::error::Error;

/// One entry of a flattened list: its fields by name.
pub type Entry<'a> = BTreeMap<&'a str, &'a str>;

/// The business parameters of one call.
#[derive(Debug, Clone, Copy)]
pub struct Params<'a> {
    call: &'a AliyunCall,
}

impl<'a> Params<'a> {
    /// Wraps a parsed call.
    pub fn new(call: &'a AliyunCall) -> Self {
        Self { call }
    }

    /// A parameter's value; an empty value counts as absent (the SDKs never
    /// send an empty value for a parameter they mean to set).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.call.param(name).filter(|v| !v.is_empty())
    }

    /// Whether the parameter was sent at all (even empty).
    pub fn present(&self, name: &str) -> bool {
        self.call.param(name).is_some()
    }

    /// A required parameter, or `Missing{Name}`.
    pub fn required(&self, name: &str) -> Result<&'a str, Error> {
        self.get(name).ok_or_else(|| Error::missing(name))
    }

    /// An optional number (`int32`, `int64`, ...), or `Invalid{Name}`.
    pub fn number<T: FromStr>(&self, name: &str) -> Result<Option<T>, Error> {
        self.get(name)
            .map(|v| {
                v.parse::<T>().map_err(|_| {
                    Error::invalid(name, format_args!("\"{v}\" is not a valid integer"))
                })
            })
            .transpose()
    }

    /// An optional integer within `range`, else `Invalid{Name}`.
    pub fn int_in(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<Option<u32>, Error> {
        match self.number::<u32>(name)? {
            Some(n) if !range.contains(&n) => Err(Error::invalid(
                name,
                format_args!("{n} is out of range {}-{}", range.start(), range.end()),
            )),
            other => Ok(other),
        }
    }

    /// An optional boolean (`true`/`false`, any case).
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, Error> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(Error::invalid(
                name,
                format_args!("\"{v}\" is not a boolean"),
            )),
        }
    }

    /// An optional decimal amount (no exponent, no float), or `Invalid{Name}`.
    pub fn decimal(&self, name: &str) -> Result<Option<Decimal>, Error> {
        self.get(name)
            .map(|v| {
                Decimal::from_str_exact(v).map_err(|_| {
                    Error::invalid(name, format_args!("\"{v}\" is not a decimal amount"))
                })
            })
            .transpose()
    }

    /// An optional value that must be one of `allowed` (exact case).
    pub fn one_of(&self, name: &str, allowed: &[&str]) -> Result<Option<&'a str>, Error> {
        match self.get(name) {
            Some(v) if !allowed.contains(&v) => Err(not_one_of(name, v, allowed)),
            other => Ok(other),
        }
    }

    /// A required value that must be one of `allowed`.
    pub fn required_one_of(&self, name: &str, allowed: &[&str]) -> Result<&'a str, Error> {
        self.one_of(name, allowed)?
            .ok_or_else(|| Error::missing(name))
    }

    /// A flattened list `prefix.N.Field`, at most `max` entries, in index
    /// order. Absent: an empty list.
    pub fn list(&self, prefix: &str, max: usize) -> Result<Vec<Entry<'a>>, Error> {
        let mut by_index: BTreeMap<u32, Entry<'a>> = BTreeMap::new();
        for (name, value) in self.call.params() {
            let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
                continue;
            };
            let (index, field) = rest.split_once('.').unwrap_or((rest, ""));
            let n = parse_index(index).ok_or_else(|| {
                Error::invalid(
                    prefix,
                    format_args!("\"{name}\" has no valid index (1, 2, ...)"),
                )
            })?;
            if field.is_empty() {
                return Err(Error::invalid(
                    prefix,
                    format_args!("\"{name}\" names no field"),
                ));
            }
            by_index.entry(n).or_default().insert(field, value);
        }
        if by_index.len() > max {
            return Err(Error::invalid(
                prefix,
                format_args!("at most {max} entries are allowed"),
            ));
        }
        let mut out = Vec::with_capacity(by_index.len());
        for (expected, (n, entry)) in (1u32..).zip(by_index) {
            if n != expected {
                return Err(Error::invalid(
                    prefix,
                    format_args!(
                        "indices must be consecutive from 1: {prefix}.{expected} is missing"
                    ),
                ));
            }
            out.push(entry);
        }
        Ok(out)
    }
}

/// `Invalid{Name}` for a value outside an enum.
pub fn not_one_of(name: &str, value: &str, allowed: &[&str]) -> Error {
    Error::invalid(
        name,
        format_args!("\"{value}\" is not one of {}", allowed.join(", ")),
    )
}

/// A list field that must be present: `Missing{Prefix}.{N}.{Field}`.
pub fn entry_field<'a>(
    entry: &Entry<'a>,
    prefix: &str,
    n: usize,
    field: &str,
) -> Result<&'a str, Error> {
    entry
        .get(field)
        .copied()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::missing(&format!("{prefix}.{}.{field}", n + 1)))
}

fn parse_index(s: &str) -> Option<u32> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Splits a BSS module `Config` (`AA:aa,BB:bb`) into `(property, value)`
/// pairs; refuses an entry without `:` (`InvalidConfigCode`).
pub fn split_config<'a>(module: &str, config: &'a str) -> Result<Vec<(&'a str, &'a str)>, Error> {
    config
        .split(',')
        .filter(|part| !part.trim().is_empty())
        .map(|part| {
            part.split_once(':').map(|(k, v)| (k.trim(), v.trim())).ok_or_else(|| {
                Error::customer(
                    http::StatusCode::BAD_REQUEST,
                    "InvalidConfigCode",
                    format!("The config of module \"{module}\" is not valid: \"{part}\" is not PROPERTY:VALUE."),
                    "invalid_parameter",
                )
            })
        })
        .collect()
}
