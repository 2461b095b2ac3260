//! The rules of the API's input that the OpenAPI document states and payment-ms enforces, each
//! defined once: the document's `pattern` is the very expression the service matches, so a
//! client generated from the document sends what the service accepts, and nothing else.

use std::sync::OnceLock;

use regex::Regex;
use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, Ref, RefOr, SchemaFormat};

/// A name, a reference, a reason: not blank, and no control character (C0, DEL, C1) nor line
/// or paragraph separator.
pub const TEXT: &str = r"^[^\x00-\x1F\x7F-\x9F\u2028\u2029]*[^\s\x00-\x1F\x7F-\x9F\u2028\u2029][^\x00-\x1F\x7F-\x9F\u2028\u2029]*$";

/// A string inside `metadata`: tab and line breaks allowed, other control characters not.
pub const METADATA_TEXT: &str = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\u2028\u2029]*$";

/// A key of `metadata`: no control character.
pub const METADATA_KEY: &str = r"^[^\x00-\x1F\x7F-\x9F\u2028\u2029]*$";

/// An http(s) URL as this API takes it: a host name (whose last label starts with a letter)
/// or a dotted IPv4 address, an optional port, then printable ASCII; no credentials, no
/// spaces, no IPv6 literal.
pub const URL: &str = concat!(
    r"^https?://",
    r"(?:(?:[A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*\.?",
    r"|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))",
    r"(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}|0))?",
    r"(?:[/?#][\x21-\x7E]*)?$"
);

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// An `Idempotency-Key`, or a provider's payment method id: 1 to 255 visible ASCII characters.
pub const TOKEN: &str = r"^[\x21-\x7E]{1,255}$";

fn compiled(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|e| unreachable!("{pattern}: {e}")))
}

/// Whether `value` is a [`TEXT`].
pub fn is_text(value: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    compiled(&RE, TEXT).is_match(value)
}

pub fn is_metadata_text(value: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    compiled(&RE, METADATA_TEXT).is_match(value)
}

pub fn is_metadata_key(value: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    compiled(&RE, METADATA_KEY).is_match(value)
}

/// Whether `value` has the form of a [`URL`] (a URL parser must still accept it).
pub fn is_url(value: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    value.len() <= MAX_URL_LEN && compiled(&RE, URL).is_match(value)
}

pub fn is_token(value: &str) -> bool {
    static RE: OnceLock<Regex> = OnceLock::new();
    compiled(&RE, TOKEN).is_match(value)
}

/// The pattern of an id of one type: `^ord_[0-9a-f]{32}$`.
pub fn id_pattern(prefix: &str) -> String {
    format!("^{prefix}_[0-9a-f]{{32}}$")
}

/// Every currency code `money::Currency::accept` takes, in any case, as one pattern:
/// `^(?:[Aa][Ee][Dd]|…)$`.
pub fn currency_pattern() -> &'static str {
    static PATTERN: OnceLock<String> = OnceLock::new();
    PATTERN.get_or_init(|| {
        let codes: Vec<String> = payable_codes()
            .map(|code| {
                code.chars()
                    .map(|c| format!("[{}{}]", c.to_ascii_uppercase(), c))
                    .collect()
            })
            .collect();
        format!("^(?:{})$", codes.join("|"))
    })
}

/// The ISO 4217 codes payments are made in, lower case.
fn payable_codes() -> impl Iterator<Item = String> {
    use iso_currency::IntoEnumIterator;
    iso_currency::Currency::iter()
        .map(|c| c.code().to_ascii_lowercase())
        .filter(|code| crate::money::Currency::accept(code).is_ok())
}

/// The currencies payments are made in, lower case only (the keys of a price list: one
/// spelling per currency).
pub fn lower_currency_pattern() -> &'static str {
    static PATTERN: OnceLock<String> = OnceLock::new();
    PATTERN.get_or_init(|| format!("^(?:{})$", payable_codes().collect::<Vec<_>>().join("|")))
}

/// A price list: unit prices in minor units by lower-case currency, 1 to `max` of them.
pub fn prices(max: usize) -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Object))
        .property_names(Some(string(lower_currency_pattern())))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Integer))
                .format(Some(utoipa::openapi::schema::SchemaFormat::KnownFormat(
                    utoipa::openapi::schema::KnownFormat::Int64,
                )))
                .minimum(Some(0))
                .maximum(Some(crate::money::MAX_AMOUNT)),
        ))
        .min_properties(Some(1))
        .max_properties(Some(max))
        .examples([serde_json::json!({"usd": 2500, "eur": 2300})])
        .into()
}

/// A string matching `pattern`.
pub fn string(pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .pattern(Some(pattern))
}

pub fn or_null(schema: impl Into<RefOr<Schema>>) -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(schema)
            .item(ObjectBuilder::new().schema_type(SchemaType::new(Type::Null)))
            .build(),
    )
}

/// A [`TEXT`] of 1 to `max` characters.
pub fn text(max: usize) -> ObjectBuilder {
    string(TEXT).min_length(Some(1)).max_length(Some(max))
}

pub fn text_255() -> Schema {
    text(255).into()
}

pub fn text_255_or_null() -> Schema {
    or_null(text(255))
}

pub fn text_500_or_null() -> Schema {
    or_null(text(500))
}

/// ISO 3166-1 alpha-2 country codes (249, as the iso-codes package lists them).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN \
     BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ \
     DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL \
     GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM \
     JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME \
     MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP \
     NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD \
     SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO \
     TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// Whether `code` is an ISO 3166-1 alpha-2 country code, in any case.
pub fn is_country(code: &str) -> bool {
    code.len() == 2 && COUNTRIES.split(' ').any(|c| c.eq_ignore_ascii_case(code))
}

/// A country code, any case.
pub fn country() -> Schema {
    static PATTERN: OnceLock<String> = OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        let codes: Vec<String> = COUNTRIES
            .split(' ')
            .map(|code| {
                code.chars()
                    .map(|c| format!("[{}{}]", c, c.to_ascii_lowercase()))
                    .collect()
            })
            .collect();
        format!("^(?:{})$", codes.join("|"))
    });
    string(pattern)
        .min_length(Some(2))
        .max_length(Some(2))
        .into()
}

pub fn url() -> Schema {
    string(URL)
        .max_length(Some(MAX_URL_LEN))
        .examples([serde_json::json!("https://shop.example/paid")])
        .into()
}

pub fn url_or_null() -> Schema {
    or_null(url())
}

pub fn token() -> Schema {
    string(TOKEN)
        .min_length(Some(1))
        .max_length(Some(255))
        .into()
}

pub fn token_or_null() -> Schema {
    or_null(token())
}

pub fn currency() -> Schema {
    string(currency_pattern())
        .min_length(Some(3))
        .max_length(Some(3))
        .description(Some(
            "An ISO 4217 code payments are made in, any case (`usd`, `EUR`): not a fund code, \
             a precious metal, a unit of account, `xts` or `xxx`",
        ))
        .examples([serde_json::json!("usd")])
        .into()
}

pub fn event_id() -> Schema {
    string(&id_pattern(crate::ids::EVENT))
        .examples([serde_json::json!("evt_019a8e0c5b7e7c3a9d1f2b4c6e8a0b1c")])
        .into()
}

/// The name of the component [`metadata_value`] is registered under.
pub const METADATA_VALUE: &str = "MetadataValue";

/// `metadata`: a JSON object whose keys and strings hold no control characters (its strings
/// may hold tabs and line breaks), at most 8 KiB of JSON (which no schema can say).
pub fn metadata() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::Object))
        .property_names(Some(string(METADATA_KEY)))
        .additional_properties(Some(Ref::from_schema_name(METADATA_VALUE)))
        .description(Some(
            "Your data, returned as given: a JSON object of at most 8 KiB; no control \
             characters in its keys, nor in its strings but tab and line breaks",
        ))
}

pub fn metadata_or_null() -> Schema {
    or_null(metadata())
}

/// Any JSON value inside `metadata`, recursively.
pub fn metadata_value() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(string(METADATA_TEXT))
            .item(ObjectBuilder::new().schema_type(SchemaType::new(Type::Number)))
            .item(ObjectBuilder::new().schema_type(SchemaType::new(Type::Boolean)))
            .item(ObjectBuilder::new().schema_type(SchemaType::new(Type::Null)))
            .item(ArrayBuilder::new().items(Ref::from_schema_name(METADATA_VALUE)))
            .item(
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::Object))
                    .property_names(Some(string(METADATA_KEY)))
                    .additional_properties(Some(Ref::from_schema_name(METADATA_VALUE))),
            )
            .build(),
    )
}

/// A date-time (RFC 3339).
pub fn date_time() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_not_blank_and_has_no_control_characters() {
        for good in ["T-shirt", " padded ", "Café", "日本", "a\u{200d}b"] {
            assert!(is_text(good), "{good:?}");
        }
        for bad in [
            "",
            "   ",
            "a\nb",
            "nul\0",
            "\u{1b}[2J",
            "a\u{85}",
            "a\u{2028}",
            "\t",
        ] {
            assert!(!is_text(bad), "{bad:?}");
        }
    }

    #[test]
    fn urls_are_the_ones_every_parser_takes() {
        for good in [
            "https://shop.example/paid?step=done",
            "http://127.0.0.1:9000/hooks",
            "https://a/",
            "https://x.example.:443",
            "http://localhost:65535/#frag",
        ] {
            assert!(is_url(good), "{good}");
            assert!(url::Url::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "ftp://shop.example/",
            "HTTPS://shop.example/",
            "https://user:pw@shop.example/",
            "https://[::1]/",
            "https://shop.example/a b",
            "https://exa\nmple.com/",
            "https://10.0.0.256/",
            "https://01.2.3.4/",
            "https://example.123/",
            "https://shop.example:65536/",
            "https://café.example/",
            "https:///path",
        ] {
            assert!(!is_url(bad), "{bad}");
        }
    }

    #[test]
    fn the_currency_pattern_is_what_money_accepts() {
        let re = Regex::new(currency_pattern()).unwrap();
        for code in ["usd", "USD", "Eur", "jpy", "xof", "kwd"] {
            assert!(re.is_match(code), "{code}");
        }
        for code in ["xxx", "XAU", "bov", "hrk", "zzz", "us", "usdd", ""] {
            assert!(!re.is_match(code), "{code}");
        }
    }

    #[test]
    fn metadata_strings_may_break_lines() {
        assert!(is_metadata_text("two\nlines\tand\r\n"));
        assert!(!is_metadata_text("nul\0"));
        assert!(is_metadata_key(""));
        assert!(!is_metadata_key("a\nb"));
        assert!(is_token("key-1_!~"));
        assert!(!is_token("has space"));
        assert!(!is_token(""));
        assert!(!is_token(&"k".repeat(256)));
    }
}
