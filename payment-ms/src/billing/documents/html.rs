//! The invoice as a printable HTML page: one sheet of A4 when printed, readable on a phone.

use html_escape::encode_text as text;

use super::Sheet;

/// The page's only style, allowed by its hash (see `platform::http::page`).
pub const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#111;\
max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.4}\
h1{font-size:1.6rem;margin:0 0 .5rem}\
.stamp{display:inline-block;border:2px solid #777;color:#777;padding:.1rem .6rem;\
font-weight:700;letter-spacing:.1em;margin-bottom:1rem}\
.issuer{margin:0 0 1rem;color:#333}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:0 0 1.5rem}\
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}\
table{width:100%;border-collapse:collapse}\
th,td{text-align:left;padding:.45rem .25rem;border-bottom:1px solid #ddd;vertical-align:top}\
.n{text-align:right;white-space:nowrap}\
.detail{display:block;color:#666;font-size:.85rem}\
tfoot th{border-bottom:none}tfoot tr:last-child th{border-top:2px solid #111}\
.note{color:#666;font-size:.85rem;margin-top:1.5rem}\
@media print{body{margin:0;max-width:none}@page{size:A4;margin:18mm}}";

/// The page's body, below its heading (the sheet's title, written by the page frame).
pub fn body(sheet: &Sheet) -> String {
    let mut out = String::with_capacity(2048);
    if let Some(stamp) = sheet.stamp {
        out.push_str(&format!("<div class=\"stamp\">{}</div>", text(stamp)));
    }
    if !sheet.issuer.is_empty() {
        let issuer: Vec<String> = sheet.issuer.iter().map(|l| text(l).into_owned()).collect();
        out.push_str(&format!("<p class=\"issuer\">{}</p>", issuer.join("<br>")));
    }
    out.push_str("<dl>");
    for (label, value) in &sheet.facts {
        out.push_str(&format!("<dt>{}</dt><dd>{}</dd>", text(label), text(value)));
    }
    out.push_str("</dl><table><thead><tr><th>Description</th><th class=\"n\">Amount</th></tr></thead><tbody>");
    for line in &sheet.lines {
        out.push_str(&format!(
            "<tr><td>{}<span class=\"detail\">{}</span></td><td class=\"n\">{}</td></tr>",
            text(&line.description),
            text(&line.detail),
            text(&line.amount)
        ));
    }
    out.push_str("</tbody><tfoot>");
    for (label, amount) in &sheet.totals {
        out.push_str(&format!(
            "<tr><th>{}</th><th class=\"n\">{}</th></tr>",
            text(label),
            text(amount)
        ));
    }
    out.push_str(&format!(
        "</tfoot></table><p class=\"note\">{}</p>",
        text(&sheet.note)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::documents::tests::invoice;

    #[test]
    fn everything_the_sheet_says_is_on_the_page_escaped() {
        let mut inv = invoice();
        inv.lines[1].description = "<script>alert(1)</script> & Pro".into();
        let sheet = Sheet::of(&inv, Some("Europe/Paris"), &["Acme <SAS>".into()]);
        let html = body(&sheet);
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Pro"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("Acme &lt;SAS&gt;"));
        assert!(html.contains("<div class=\"stamp\">PAID</div>"));
        assert!(html.contains("<dt>Invoice number</dt><dd>INV-2027-000042</dd>"));
        assert!(html.contains("<td class=\"n\">1,244.58 EUR</td>"));
        assert!(html.contains("<th>Amount due</th><th class=\"n\">0.00 EUR</th>"));
    }
}
