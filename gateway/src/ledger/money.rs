//! Exact money for the ledger: `rust_decimal` in Rust, a signed 64-bit count
//! of micro-units (10⁻⁶ of the currency) in the database.
//!
//! Why micro-units in a `BIGINT` rather than a `NUMERIC`/`TEXT` column:
//! * both backends compare and add 64-bit integers exactly and natively, so
//!   the atomic budget check (`limit - consumed - held >= amount`) is one
//!   SQL statement with the same meaning on SQLite and PostgreSQL (SQLite
//!   has no exact decimal type; its `NUMERIC` affinity would use floats);
//! * 10⁻⁶ is finer than anything the providers charge (Alibaba bills to
//!   the cent, Huawei rates truncate to 6 decimals, `money.md` §1.2/§2.2),
//!   and 2⁶³ micro-units is 9.2 trillion yuan, far above any budget.
//!
//! Conversions never round: an amount with more than 6 decimals, a negative
//! amount where one is not allowed, or one that does not fit is refused.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// Decimal places kept by the ledger (micro-units).
pub const SCALE: u32 = 6;
/// Micro-units per unit of currency.
const UNIT: i64 = 1_000_000;

/// Why an amount cannot be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a decimal number.
    #[error("\"{0}\" is not a decimal amount")]
    Syntax(String),
    /// More decimals than the ledger keeps (never rounded silently).
    #[error("{0} has more than {SCALE} decimal places")]
    Scale(Decimal),
    /// Negative where only non-negative amounts make sense.
    #[error("{0} is negative")]
    Negative(Decimal),
    /// Does not fit the ledger's 64-bit micro-unit range.
    #[error("{0} is too large")]
    Overflow(Decimal),
}

/// An exact amount of money in micro-units. Signed, because balances can go
/// below zero when an operator lowers a limit under what is already spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Micros(pub i64);

impl Micros {
    /// Zero.
    pub const ZERO: Self = Self(0);

    /// Converts a decimal exactly, refusing excess scale and overflow.
    pub fn from_decimal(d: Decimal) -> Result<Self, MoneyError> {
        let normalized = d.normalize();
        if normalized.scale() > SCALE {
            return Err(MoneyError::Scale(d));
        }
        let scaled = normalized
            .checked_mul(Decimal::from(UNIT))
            .ok_or(MoneyError::Overflow(d))?;
        // `scaled` is integral now (scale ≤ 6 times 10⁶).
        let mantissa = scaled.normalize();
        if mantissa.scale() != 0 {
            return Err(MoneyError::Scale(d));
        }
        i64::try_from(mantissa.mantissa())
            .map(Self)
            .map_err(|_| MoneyError::Overflow(d))
    }

    /// A non-negative decimal (a price, a limit, an adjustment).
    pub fn from_amount(d: Decimal) -> Result<Self, MoneyError> {
        if d.is_sign_negative() && !d.is_zero() {
            return Err(MoneyError::Negative(d));
        }
        Self::from_decimal(d)
    }

    /// Parses a decimal string such as `"300.00"` (the providers' and the
    /// admin API's format); surrounding whitespace is ignored.
    pub fn parse_amount(s: &str) -> Result<Self, MoneyError> {
        let t = s.trim();
        // Plain decimal notation only (`"1e3"` is refused): what the
        // providers and the admin API write.
        let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
        if digits.is_empty()
            || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            || digits.bytes().filter(|b| *b == b'.').count() > 1
        {
            return Err(MoneyError::Syntax(s.to_owned()));
        }
        let d = Decimal::from_str(t).map_err(|_| MoneyError::Syntax(s.to_owned()))?;
        Self::from_amount(d)
    }

    /// The exact decimal value.
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, SCALE).normalize()
    }

    /// The amount as the providers write it: at least two decimals, no
    /// trailing zeros beyond them (`"300.00"`, `"0.125"`).
    pub fn to_money_string(self) -> String {
        let mut d = self.to_decimal();
        if d.scale() < 2 {
            d.rescale(2);
        }
        d.to_string()
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    /// `self - other`, or `None` on overflow.
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self)
    }
}

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_money_string())
    }
}

/// A currency code as the providers spell it (`CNY`, `USD`, `JPY`): three
/// ASCII capital letters. Anything else is refused so that a typo never
/// becomes a second, empty budget currency.
pub fn check_currency(code: &str) -> Result<String, String> {
    let c = code.trim();
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(c.to_owned())
    } else {
        Err(format!(
            "\"{code}\" is not a currency code (three capital letters, e.g. CNY)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    #[test]
    fn converts_exactly_both_ways() {
        for s in ["0", "0.01", "300.00", "3712.8", "0.000001", "9000000000000"] {
            let m = Micros::from_amount(d(s)).expect(s);
            assert_eq!(m.to_decimal(), d(s).normalize(), "{s}");
        }
        assert_eq!(Micros::parse_amount("10.00").unwrap(), Micros(10_000_000));
        assert_eq!(Micros::parse_amount(" 0.5 ").unwrap(), Micros(500_000));
    }

    #[test]
    fn refuses_instead_of_rounding() {
        assert_eq!(
            Micros::parse_amount("0.0000001"),
            Err(MoneyError::Scale(d("0.0000001")))
        );
        // Trailing zeros beyond the scale are not excess precision.
        assert_eq!(
            Micros::parse_amount("1.500000000").unwrap(),
            Micros(1_500_000)
        );
        assert!(matches!(
            Micros::parse_amount("-1"),
            Err(MoneyError::Negative(_))
        ));
        assert!(matches!(
            Micros::parse_amount("10000000000000"),
            Err(MoneyError::Overflow(_))
        ));
        assert!(matches!(
            Micros::parse_amount("1e3"),
            Err(MoneyError::Syntax(_))
        ));
        assert!(matches!(
            Micros::parse_amount("NaN"),
            Err(MoneyError::Syntax(_))
        ));
    }

    #[test]
    fn prints_like_the_providers() {
        assert_eq!(Micros(300_000_000).to_money_string(), "300.00");
        assert_eq!(Micros(125_000).to_money_string(), "0.125");
        assert_eq!(Micros(-5_000_000).to_money_string(), "-5.00");
        assert_eq!(Micros::ZERO.to_money_string(), "0.00");
    }

    #[test]
    fn currency_codes_are_strict() {
        assert_eq!(check_currency("CNY").unwrap(), "CNY");
        assert!(check_currency("cny").is_err());
        assert!(check_currency("YUAN").is_err());
    }
}
