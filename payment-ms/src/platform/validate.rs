//! Checks of the text the API accepts. Each pushes a [`FieldError`] naming its field, so one
//! answer lists every bad field.
//!
//! No text may carry control characters (NUL, a newline, an escape…) or the Unicode line and
//! paragraph separators: PostgreSQL cannot store NUL, and a line break in a value that reaches a
//! log, a header or a provider's form would start a line of its own there. The one exception is
//! documented on `metadata`: its string values may hold tabs and line breaks.

use serde_json::Value;
use shared::FieldError;

pub use shared::rules::MAX_URL_LEN;
/// The largest `metadata` object, as JSON.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

const NO_CONTROL: &str = "must not contain control characters (such as a newline or NUL)";

use shared::text::{has_control, is_control};

/// A provider's saved payment method id (`pm_…`): 1 to 255 printable ASCII characters, as
/// [`shared::rules::TOKEN`] says.
pub fn payment_method(errors: &mut Vec<FieldError>, value: &str) {
    if !(1..=255).contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_graphic()) {
        errors.push(FieldError::new(
            "payment_method",
            "must be a provider's payment method id, such as pm_…",
        ));
    }
}

/// A non-empty string of at most `max` characters, without control characters: a
/// [`shared::rules::TEXT`], as the API document says.
pub fn text(errors: &mut Vec<FieldError>, field: &str, value: &str, max: usize) {
    if !shared::rules::is_text(value) {
        let message = if has_control(value) {
            NO_CONTROL
        } else {
            "must not be empty"
        };
        errors.push(FieldError::new(field, message));
    } else if value.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
}

/// An absolute http(s) URL with a host, of at most [`MAX_URL_LEN`] characters, written as
/// it will be used: no control characters or spaces (a URL parser would silently drop a tab
/// or newline, and the address kept would not be the one checked).
pub fn url(errors: &mut Vec<FieldError>, field: &str, value: &str) {
    if has_control(value) || value.contains(' ') {
        errors.push(FieldError::new(
            field,
            "must not contain spaces or control characters",
        ));
        return;
    }
    if url::Url::parse(value).is_ok_and(|u| !u.username().is_empty() || u.password().is_some()) {
        errors.push(FieldError::new(
            field,
            "must not contain credentials (user:password@)",
        ));
        return;
    }
    let ok = shared::rules::is_url(value)
        && url::Url::parse(value)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if !ok {
        errors.push(FieldError::new(
            field,
            format!(
                "must be an absolute http(s) URL with a host name or IPv4 address and no \
                 credentials, in printable ASCII, of at most {MAX_URL_LEN} characters"
            ),
        ));
    }
}

/// `metadata`: a JSON object of at most [`MAX_METADATA_BYTES`]; no control characters in its
/// keys, nor in its string values besides tab, line feed and carriage return.
pub fn metadata(errors: &mut Vec<FieldError>, metadata: &Option<Value>) {
    let Some(value) = metadata else {
        return;
    };
    let Value::Object(map) = value else {
        errors.push(FieldError::new("metadata", "must be a JSON object"));
        return;
    };
    if serde_json::to_vec(map).map_or(usize::MAX, |v| v.len()) > MAX_METADATA_BYTES {
        errors.push(FieldError::new(
            "metadata",
            format!("must be at most {MAX_METADATA_BYTES} bytes of JSON"),
        ));
        return;
    }
    json_text(errors, "metadata", value);
}

/// Walks a JSON value, naming the first bad key or string at each place (`metadata.note`,
/// `metadata.lines[2]`).
fn json_text(errors: &mut Vec<FieldError>, path: &str, value: &Value) {
    match value {
        Value::String(s) if !shared::rules::is_metadata_text(s) => {
            errors.push(FieldError::new(
                path,
                "must not contain control characters other than tab and line breaks",
            ));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                json_text(errors, &format!("{path}[{i}]"), item);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let shown: String = key.chars().filter(|c| !is_control(*c)).collect();
                let field = format!("{path}.{shown}");
                if !shared::rules::is_metadata_key(key) {
                    errors.push(FieldError::new(field, format!("the key {NO_CONTROL}")));
                } else {
                    json_text(errors, &field, item);
                }
            }
        }
        _ => {}
    }
}

/// An optional query parameter that names something (a user id, an event id): when present,
/// at most 255 characters and no control characters.
pub fn query_text(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>) {
    if let Some(value) = value {
        text(errors, field, value, 255);
    }
}

/// An optional query parameter that filters by a resource id: when present, an id of that
/// type (`ord_` and 32 hex digits).
pub fn query_id(errors: &mut Vec<FieldError>, field: &str, prefix: &str, value: Option<&str>) {
    if value.is_some_and(|id| !shared::ids::is_valid(prefix, id)) {
        errors.push(FieldError::new(
            field,
            format!("must be an id of the form {prefix}_ followed by 32 hex digits"),
        ));
    }
}

/// `Ok` when no check failed, else the failed checks.
pub fn finish(errors: Vec<FieldError>) -> Result<(), Vec<FieldError>> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(check: impl FnOnce(&mut Vec<FieldError>)) -> Vec<String> {
        let mut errors = Vec::new();
        check(&mut errors);
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn text_refuses_control_characters() {
        for bad in [
            "a\0b",
            "a\nb",
            "a\rb",
            "\u{1b}[31m",
            "a\u{7f}",
            "a\u{85}",
            "a\u{2028}",
        ] {
            assert_eq!(fields(|e| text(e, "name", bad, 255)), ["name"], "{bad:?}");
        }
        for good in ["T-shirt", "Café crème", "日本語", "a\u{200d}b"] {
            assert!(
                fields(|e| text(e, "name", good, 255)).is_empty(),
                "{good:?}"
            );
        }
    }

    #[test]
    fn urls_are_taken_as_written() {
        assert_eq!(fields(|e| url(e, "u", "https://exa\nmple.com/")), ["u"]);
        assert_eq!(fields(|e| url(e, "u", "https://example.com/a b")), ["u"]);
        assert_eq!(fields(|e| url(e, "u", "\thttps://example.com/")), ["u"]);
        assert!(fields(|e| url(e, "u", "https://example.com/a%20b?x=1")).is_empty());
    }

    #[test]
    fn metadata_names_the_bad_key_or_value() {
        let check = |v: Value| fields(|e| metadata(e, &Some(v)));
        assert!(check(json!({"note": "two\nlines\tand a tab", "n": 1})).is_empty());
        assert_eq!(check(json!({"note": "nul\u{0}"})), ["metadata.note"]);
        assert_eq!(
            check(json!({"a": {"b": ["ok", "esc\u{1b}"]}})),
            ["metadata.a.b[1]"]
        );
        assert_eq!(check(json!({"k\ney": 1})), ["metadata.key"]);
        assert_eq!(check(json!([1])), ["metadata"]);
    }
}
