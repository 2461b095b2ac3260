//! Text that may reach a log line, a header or a database: what it must not contain.

/// A control character (C0, DEL, C1) or the Unicode line or paragraph separator: what would
/// start a line of its own in a log or a header, or what PostgreSQL cannot store (NUL).
pub fn is_control(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// Whether `value` holds any [`is_control`] character.
pub fn has_control(value: &str) -> bool {
    value.chars().any(is_control)
}

/// `value` with every [`is_control`] character written as an escape (`\n`, `\u{0}`), so it
/// stays on one line wherever it is printed.
pub fn escape_control(value: &str) -> std::borrow::Cow<'_, str> {
    if !has_control(value) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_control(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_would_break_a_line() {
        assert_eq!(escape_control("plain café"), "plain café");
        assert_eq!(escape_control("a\nb\r\tc"), "a\\nb\\r\\tc");
        assert_eq!(escape_control("nul\0 esc\u{1b}"), "nul\\u{0} esc\\u{1b}");
        assert_eq!(escape_control("ls\u{2028}"), "ls\\u{2028}");
        assert!(has_control("\u{85}"));
        assert!(!has_control("\u{200d}"));
    }
}
