//! Money is an integer count of the currency's minor unit (`1999` USD cents is $19.99), with an
//! ISO 4217 currency written in lower case. No floats anywhere.

use std::fmt;

use iso_currency::Flag;

/// The largest amount accepted anywhere (an item price, an order total, a payment): eleven
/// digits of minor units. Bounding it keeps every sum of a bounded number of bounded lines far
/// from `i64::MAX`, and matches what card providers accept.
pub const MAX_AMOUNT: i64 = 99_999_999_999;

/// The highest tax rate, in basis points: 100 %.
pub const MAX_TAX_RATE_BPS: i64 = 10_000;

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

    /// Parses a currency money can be paid in: an ISO 4217 code that is neither a fund code
    /// (`bov`, `usn`…), nor a special one (`xau` and the other metals, `xdr`, the bond-market
    /// units, `xts` for testing, `xxx` for "no currency"), nor one that has been replaced
    /// (`hrk`). The error says why, for a field message.
    pub fn accept(code: &str) -> Result<Currency, String> {
        let currency = Self::parse(code)
            .ok_or_else(|| "must be an ISO 4217 currency code such as usd".to_owned())?;
        if let Some(flag) = currency.0.flags().first() {
            return Err(match flag {
                Flag::Fund => format!(
                    "{} is a fund code, not a currency payments are made in",
                    currency.code()
                ),
                Flag::Special => format!(
                    "{} is not a currency payments are made in (a precious metal, a unit of \
                     account, the testing code or \"no currency\")",
                    currency.code()
                ),
                Flag::Superseded(by) => format!(
                    "{} is no longer in use; it was replaced by {}",
                    currency.code(),
                    by.code().to_ascii_lowercase()
                ),
            });
        }
        Ok(currency)
    }

    pub fn code(&self) -> String {
        self.0.code().to_ascii_lowercase()
    }

    /// Digits after the decimal point (2 for USD, 0 for JPY, 3 for KWD). Some funds and
    /// precious metals have none defined; they are shown like zero-decimal currencies.
    pub fn exponent(&self) -> u32 {
        self.0.exponent().map(u32::from).unwrap_or(0)
    }

    /// Formats minor units for people: `1999` USD is `19.99 USD`, `123456789` USD is
    /// `1,234,567.89 USD`. Digits are grouped as the currency's users write them: by thousands
    /// with commas, the Swiss franc with apostrophes, and the Indian rupee in lakhs and crores
    /// (`12,34,567.89 INR`). The decimal point is a point: the page is in English.
    pub fn format(&self, minor: i64) -> String {
        let exp = self.exponent();
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        let code = self.0.code();
        let unit = 10u64.pow(exp);
        let whole = self.group(abs / unit);
        if exp == 0 {
            return format!("{sign}{whole} {code}");
        }
        format!(
            "{sign}{whole}.{:0width$} {code}",
            abs % unit,
            width = exp as usize
        )
    }

    /// The digits of `whole` with the currency's group separators.
    fn group(&self, whole: u64) -> String {
        let digits = whole.to_string();
        let (separator, indian) = match self.0 {
            iso_currency::Currency::CHF => ('\'', false),
            iso_currency::Currency::INR => (',', true),
            _ => (',', false),
        };
        let len = digits.len();
        let mut out = String::with_capacity(len + len / 2);
        for (i, digit) in digits.chars().enumerate() {
            // Digits still to write, this one included.
            let left = len - i;
            let boundary = match indian {
                true => left == 3 || (left > 3 && (left - 3).is_multiple_of(2)),
                false => left.is_multiple_of(3),
            };
            if boundary && i > 0 {
                out.push(separator);
            }
            out.push(digit);
        }
        out
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
        assert_eq!(jpy.format(1999), "1,999 JPY");
        assert_eq!(kwd.format(1999), "1.999 KWD");
    }

    #[test]
    fn groups_digits_as_each_currency_does() {
        let usd = Currency::parse("usd").unwrap();
        assert_eq!(usd.format(123_456_789), "1,234,567.89 USD");
        assert_eq!(usd.format(99_999), "999.99 USD");
        assert_eq!(usd.format(100_000), "1,000.00 USD");
        assert_eq!(usd.format(-100_000), "-1,000.00 USD");
        assert_eq!(
            Currency::parse("jpy").unwrap().format(1_234_567),
            "1,234,567 JPY"
        );
        assert_eq!(
            Currency::parse("chf").unwrap().format(123_456_789),
            "1'234'567.89 CHF"
        );
        let inr = Currency::parse("inr").unwrap();
        assert_eq!(inr.format(123_456_789), "12,34,567.89 INR");
        assert_eq!(inr.format(99_999_999_999), "99,99,99,999.99 INR");
        assert_eq!(inr.format(100_000), "1,000.00 INR");
        assert_eq!(inr.format(99_900), "999.00 INR");
    }

    #[test]
    fn only_money_is_accepted() {
        for code in ["usd", "EUR", "jpy", "xaf", "xof", "xcd", "xpf", "kwd"] {
            assert!(Currency::accept(code).is_ok(), "{code}");
        }
        for code in [
            "xxx", "xts", "xau", "xag", "xpd", "xpt", "xdr", "xba", "xbb", "xbc", "xbd", "xsu",
            "xua", "bov", "che", "chw", "clf", "cou", "mxv", "usn", "uyi", "uyw", "hrk",
        ] {
            let refusal = Currency::accept(code).unwrap_err();
            assert!(refusal.contains(code), "{code}: {refusal}");
        }
        assert_eq!(
            Currency::accept("zzz").unwrap_err(),
            "must be an ISO 4217 currency code such as usd"
        );
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
