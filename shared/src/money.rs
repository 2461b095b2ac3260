//! Money is an integer count of the currency's minor unit (`1999` USD cents is $19.99), with an
//! ISO 4217 currency written in lower case. No floats anywhere.

use std::fmt;

/// The largest amount accepted anywhere (an item price, an order total, a payment): eleven
/// digits of minor units. Bounding it keeps every sum of a bounded number of bounded lines far
/// from `i64::MAX`, and matches what card providers accept.
pub const MAX_AMOUNT: i64 = 99_999_999_999;

/// A known ISO 4217 currency, lower case (`usd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Parses `usd` or `USD`; `None` for anything that is not an ISO 4217 code.
    pub fn parse(code: &str) -> Option<Currency> {
        if code.len() != 3 {
            return None;
        }
        iso_currency::Currency::from_code(&code.to_ascii_uppercase()).map(Currency)
    }

    pub fn code(&self) -> String {
        self.0.code().to_ascii_lowercase()
    }

    /// Digits after the decimal point (2 for USD, 0 for JPY, 3 for KWD). Some funds and
    /// precious metals have none defined; they are shown like zero-decimal currencies.
    pub fn exponent(&self) -> u32 {
        self.0.exponent().map(u32::from).unwrap_or(0)
    }

    /// Formats minor units for people: `1999` USD is `19.99 USD`.
    pub fn format(&self, minor: i64) -> String {
        let exp = self.exponent();
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        let code = self.0.code();
        if exp == 0 {
            return format!("{sign}{abs} {code}");
        }
        let unit = 10u64.pow(exp);
        format!(
            "{sign}{}.{:0width$} {code}",
            abs / unit,
            abs % unit,
            width = exp as usize
        )
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code())
    }
}

/// `quantity × unit_price`, or `None` when it would exceed [`MAX_AMOUNT`].
pub fn line_total(quantity: i64, unit_price: i64) -> Option<i64> {
    quantity
        .checked_mul(unit_price)
        .filter(|t| (0..=MAX_AMOUNT).contains(t))
}

/// The sum of amounts, or `None` when it would exceed [`MAX_AMOUNT`].
pub fn sum(amounts: impl IntoIterator<Item = i64>) -> Option<i64> {
    amounts
        .into_iter()
        .try_fold(0i64, |acc, a| acc.checked_add(a))
        .filter(|t| (0..=MAX_AMOUNT).contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currencies_are_iso_codes_in_lower_case() {
        assert_eq!(Currency::parse("usd").map(|c| c.code()), Some("usd".into()));
        assert_eq!(Currency::parse("EUR").map(|c| c.code()), Some("eur".into()));
        assert!(Currency::parse("xyz").is_none());
        assert!(Currency::parse("us").is_none());
        assert!(Currency::parse("dollars").is_none());
    }

    #[test]
    fn formats_by_exponent() {
        let usd = Currency::parse("usd").unwrap();
        let jpy = Currency::parse("jpy").unwrap();
        let kwd = Currency::parse("kwd").unwrap();
        assert_eq!(usd.format(1999), "19.99 USD");
        assert_eq!(usd.format(5), "0.05 USD");
        assert_eq!(jpy.format(1999), "1999 JPY");
        assert_eq!(kwd.format(1999), "1.999 KWD");
    }

    #[test]
    fn sums_are_exact_and_bounded() {
        assert_eq!(line_total(3, 1999), Some(5997));
        assert_eq!(sum([5997, 3]), Some(6000));
        assert_eq!(line_total(i64::MAX, 2), None);
        assert_eq!(line_total(1_000_000, MAX_AMOUNT), None);
        assert_eq!(sum([MAX_AMOUNT, 1]), None);
        assert_eq!(sum([i64::MAX, i64::MAX]), None);
    }
}
