//! HTML pages served to people (the mock provider's checkout, an invoice): locked down the
//! same way. They cannot be framed by another site, load nothing but their own inline style
//! (allowed by its hash in the content security policy), and are never cached.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use html_escape::encode_text as text;
use sha2::{Digest, Sha256};

/// A whole page: `title` as its title and heading, `style` inline, `body` (already escaped
/// HTML) under the heading. `form_actions`: the origins its forms may lead to (through their
/// redirects), besides its own.
pub fn locked_page(
    status: StatusCode,
    title: &str,
    style: &str,
    body: &str,
    form_actions: &[String],
) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style></head><body><h1>{title}</h1>{body}</body></html>"#,
        title = text(title)
    );
    let mut form_action = String::from("'self'");
    for origin in form_actions {
        form_action.push(' ');
        form_action.push_str(origin);
    }
    let csp = format!(
        "default-src 'none'; style-src '{}'; img-src 'self'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'",
        style_hash(style)
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(csp) = HeaderValue::try_from(csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `sha256-…` of a style sheet, as a CSP source.
fn style_hash(style: &str) -> String {
    let digest = Sha256::digest(style.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_the_pages_own_style_and_nothing_else() {
        let style = "body{margin:0}";
        let response = locked_page(StatusCode::OK, "<T>", style, "<p>x</p>", &[]);
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains(&format!("style-src '{}'", style_hash(style))));
        assert!(csp.starts_with("default-src 'none';"));
        assert!(csp.contains("form-action 'self';"));
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    }
}
