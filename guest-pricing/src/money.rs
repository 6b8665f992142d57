//! Exact decimal amounts: parsing the host's strings, rounding, formatting.
//! No float ever touches an amount.

use alloc::format;
use alloc::string::{String, ToString as _};

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Most decimal places an amount may carry across the boundary (the host
/// refuses more; Alibaba prices have at most 10).
pub const MAX_SCALE: u32 = 10;

/// Parses a WIT `money.amount`: ASCII digits, an optional `.` and fraction,
/// at most [`MAX_SCALE`] decimals, no sign or exponent.
pub fn parse_amount(s: &str) -> Result<Decimal, String> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) || (s.contains('.') && frac.is_empty()) {
        return Err(format!("\"{s}\" is not a plain non-negative decimal"));
    }
    if frac.len() > MAX_SCALE as usize {
        return Err(format!("\"{s}\" has more than {MAX_SCALE} decimal places"));
    }
    Decimal::from_str_exact(s).map_err(|e| format!("\"{s}\": {e}"))
}

/// Parses a configuration decimal that may be signed (percentages).
pub fn parse_signed(s: &str) -> Result<Decimal, String> {
    match s.strip_prefix('-') {
        Some(rest) => parse_amount(rest).map(|d| -d),
        None => parse_amount(s.strip_prefix('+').unwrap_or(s)),
    }
}

/// Formats an amount for the host: plain decimal, no exponent, no sign.
pub fn format_amount(d: Decimal) -> String {
    d.to_string()
}

/// How a line is rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoundingMode {
    /// 0.005 -> 0.01 (Alibaba's rounding of detail lines; the default).
    HalfUp,
    /// Banker's rounding: 0.005 -> 0.00, 0.015 -> 0.02.
    HalfEven,
    /// Towards zero (truncate).
    Down,
    /// Away from zero.
    Up,
}

/// Rounding mode and scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rounding {
    /// The mode.
    pub mode: RoundingMode,
    /// Decimal places kept.
    pub scale: u32,
}

impl Default for Rounding {
    fn default() -> Self {
        Self {
            mode: RoundingMode::HalfUp,
            scale: 2,
        }
    }
}

impl Rounding {
    /// Rounds `d` once, as configured.
    pub fn apply(self, d: Decimal) -> Decimal {
        let strategy = match self.mode {
            RoundingMode::HalfUp => RoundingStrategy::MidpointAwayFromZero,
            RoundingMode::HalfEven => RoundingStrategy::MidpointNearestEven,
            RoundingMode::Down => RoundingStrategy::ToZero,
            RoundingMode::Up => RoundingStrategy::AwayFromZero,
        };
        // Shown at the configured scale: 108 becomes "108.00".
        let mut r = d.round_dp_with_strategy(self.scale, strategy);
        r.rescale(self.scale);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_strict() {
        assert_eq!(parse_amount("900").unwrap(), Decimal::from(900));
        assert_eq!(parse_amount("0.0825").unwrap().to_string(), "0.0825");
        for bad in [
            "",
            "-1",
            "1e3",
            " 1",
            "1.",
            ".5",
            "1,000",
            "0.12345678901",
            "NaN",
        ] {
            assert!(parse_amount(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_signed("-5").unwrap(), Decimal::from(-5));
        assert_eq!(parse_signed("+12.5").unwrap().to_string(), "12.5");
    }

    #[test]
    fn half_up_to_two_places_by_default() {
        let r = Rounding::default();
        assert_eq!(r.apply(Decimal::new(12345, 3)).to_string(), "12.35");
        assert_eq!(r.apply(Decimal::new(12344, 3)).to_string(), "12.34");
        let even = Rounding {
            mode: RoundingMode::HalfEven,
            scale: 2,
        };
        assert_eq!(even.apply(Decimal::new(12345, 3)).to_string(), "12.34");
    }
}
