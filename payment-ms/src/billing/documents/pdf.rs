//! The invoice as a PDF: A4, the base-14 Helvetica (nothing embedded, every reader has it) in
//! the Windows-1252 encoding, laid out here line by line; long invoices flow onto more pages
//! with the table's heading repeated.
//!
//! Text outside Windows-1252 (which covers Western European languages) is shown as `?`: the
//! base fonts have no other glyphs. The HTML page shows every script.

use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str, TextStr};

use super::Sheet;

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 50.0;
const RIGHT: f32 = WIDTH - MARGIN;
/// Where a description must stop, leaving room for the amount column.
const DESCRIPTION_WIDTH: f32 = 340.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// The PDF's bytes.
pub fn render(sheet: &Sheet) -> Vec<u8> {
    let mut layout = Layout::new();
    layout.text(BOLD, 20.0, MARGIN, &sheet.title);
    if let Some(stamp) = sheet.stamp {
        let w = width(&win_ansi(stamp), 14.0) * 1.1;
        layout.gray_text(BOLD, 14.0, RIGHT - w, stamp);
    }
    layout.advance(28.0);
    for line in &sheet.issuer {
        layout.text(REGULAR, 10.0, MARGIN, line);
        layout.advance(13.0);
    }
    layout.advance(8.0);
    for (label, value) in &sheet.facts {
        layout.text(BOLD, 9.0, MARGIN, label);
        layout.text(REGULAR, 9.0, MARGIN + 120.0, value);
        layout.advance(13.0);
    }
    layout.advance(16.0);
    layout.table_heading();
    for line in &sheet.lines {
        let wrapped = wrap(&line.description, 10.0, DESCRIPTION_WIDTH);
        let height = 13.0 * wrapped.len() as f32 + 18.0;
        if layout.room() < height {
            layout.new_page();
            layout.table_heading();
        }
        layout.right_text(REGULAR, 10.0, RIGHT, &line.amount);
        for part in &wrapped {
            layout.text(REGULAR, 10.0, MARGIN, part);
            layout.advance(13.0);
        }
        layout.gray_text(REGULAR, 8.0, MARGIN, &line.detail);
        layout.advance(8.0);
        layout.rule(0.5);
        layout.advance(14.0);
    }
    if layout.room() < 16.0 * sheet.totals.len() as f32 + 40.0 {
        layout.new_page();
    }
    layout.advance(4.0);
    for (label, amount) in &sheet.totals {
        layout.text(BOLD, 10.0, RIGHT - 220.0, label);
        layout.right_text(REGULAR, 10.0, RIGHT, amount);
        layout.advance(16.0);
    }
    layout.advance(14.0);
    layout.gray_text(REGULAR, 8.0, MARGIN, &sheet.note);
    layout.finish(&sheet.title)
}

/// Pages being written, and where the next line goes on the current one.
struct Layout {
    done: Vec<Content>,
    current: Content,
    /// The baseline of the next line, from the page's bottom.
    y: f32,
}

impl Layout {
    fn new() -> Layout {
        Layout {
            done: Vec::new(),
            current: Content::new(),
            y: HEIGHT - MARGIN - 14.0,
        }
    }

    fn page(&mut self) -> &mut Content {
        &mut self.current
    }

    fn new_page(&mut self) {
        self.done
            .push(std::mem::replace(&mut self.current, Content::new()));
        self.y = HEIGHT - MARGIN - 14.0;
    }

    /// Space left above the bottom margin.
    fn room(&self) -> f32 {
        self.y - MARGIN
    }

    fn advance(&mut self, by: f32) {
        self.y -= by;
        if self.y < MARGIN {
            self.new_page();
        }
    }

    fn text(&mut self, font: Name<'static>, size: f32, x: f32, text: &str) {
        let y = self.y;
        let bytes = win_ansi(text);
        let page = self.page();
        page.begin_text();
        page.set_font(font, size);
        page.next_line(x, y);
        page.show(Str(&bytes));
        page.end_text();
    }

    fn gray_text(&mut self, font: Name<'static>, size: f32, x: f32, text: &str) {
        self.page().set_fill_gray(0.4);
        self.text(font, size, x, text);
        self.page().set_fill_gray(0.0);
    }

    /// Text ending at `right`.
    fn right_text(&mut self, font: Name<'static>, size: f32, right: f32, text: &str) {
        let w = width(&win_ansi(text), size);
        self.text(font, size, right - w, text);
    }

    /// A line across the page, just under the current baseline.
    fn rule(&mut self, thickness: f32) {
        let y = self.y;
        let page = self.page();
        page.set_line_width(thickness);
        page.set_stroke_gray(0.75);
        page.move_to(MARGIN, y);
        page.line_to(RIGHT, y);
        page.stroke();
    }

    fn table_heading(&mut self) {
        self.text(BOLD, 10.0, MARGIN, "Description");
        self.text(BOLD, 10.0, RIGHT - 42.0, "Amount");
        self.advance(6.0);
        self.rule(1.0);
        self.advance(16.0);
    }

    fn finish(mut self, title: &str) -> Vec<u8> {
        self.done.push(self.current);
        let pages = self.done;
        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let regular = Ref::new(3);
        let bold = Ref::new(4);
        let info = Ref::new(5);
        let first_page = 6;
        let count = pages.len();
        let page_ref = |i: usize| Ref::new(first_page + 2 * i as i32);
        let content_ref = |i: usize| Ref::new(first_page + 2 * i as i32 + 1);
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids((0..count).map(page_ref))
            .count(count as i32);
        for (font, name) in [(regular, "Helvetica"), (bold, "Helvetica-Bold")] {
            pdf.type1_font(font)
                .base_font(Name(name.as_bytes()))
                .encoding_predefined(Name(b"WinAnsiEncoding"));
        }
        pdf.document_info(info)
            .title(TextStr(title))
            .producer(TextStr("payment-ms"));
        for (i, mut content) in pages.into_iter().enumerate() {
            // Each page says whose it is and where it stands.
            let footer = win_ansi(&format!("{title} \u{b7} page {} of {count}", i + 1));
            content.set_fill_gray(0.4);
            content.begin_text();
            content.set_font(REGULAR, 8.0);
            content.next_line(MARGIN, MARGIN - 20.0);
            content.show(Str(&footer));
            content.end_text();
            let mut page = pdf.page(page_ref(i));
            page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
            page.parent(tree);
            page.contents(content_ref(i));
            let mut resources = page.resources();
            let mut fonts = resources.fonts();
            fonts.pair(REGULAR, regular);
            fonts.pair(BOLD, bold);
            fonts.finish();
            resources.finish();
            page.finish();
            pdf.stream(content_ref(i), &content.finish());
        }
        pdf.finish()
    }
}

/// `text` in Windows-1252, the base fonts' encoding here; what it lacks becomes `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' | '\u{a0}'..='\u{ff}' => c as u8,
            '€' => 0x80,
            '‚' => 0x82,
            '„' => 0x84,
            '…' => 0x85,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            '™' => 0x99,
            _ => b'?',
        })
        .collect()
}

/// Helvetica's advance widths (thousandths of the size) of the printable ASCII characters.
const ASCII_WIDTHS: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // ' '../
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0..?
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // @..O
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // P.._
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // `..o
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // p..~
];

/// The width of Windows-1252 `bytes` in Helvetica at `size`; the characters beyond ASCII are
/// counted as a digit's width, near enough for wrapping.
fn width(bytes: &[u8], size: f32) -> f32 {
    let thousandths: u32 = bytes
        .iter()
        .map(|&b| match b {
            b' '..=b'~' => u32::from(ASCII_WIDTHS[usize::from(b - b' ')]),
            0x97 => 1000,
            _ => 556,
        })
        .sum();
    thousandths as f32 * size / 1000.0
}

/// `text` cut into lines no wider than `max` at `size`, at spaces where it can be, else
/// within a word.
fn wrap(text: &str, size: f32, max: f32) -> Vec<String> {
    let fits = |s: &str| width(&win_ansi(s), size) <= max;
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_owned()
        } else {
            format!("{line} {word}")
        };
        if fits(&candidate) {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        for c in word.chars() {
            line.push(c);
            if !fits(&line) {
                line.pop();
                lines.push(std::mem::take(&mut line));
                line.push(c);
            }
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::documents::tests::invoice;

    /// The text a PDF shows, from its uncompressed content streams: each `(…) Tj`, unescaped.
    fn shown(pdf: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < pdf.len() {
            if pdf[i] == b'(' {
                // A literal string: balanced parentheses inside are left unescaped.
                let mut s = Vec::new();
                let mut j = i + 1;
                let mut depth = 0;
                while j < pdf.len() && (pdf[j] != b')' || depth > 0) {
                    match pdf[j] {
                        b'\\' => j += 1,
                        b'(' => depth += 1,
                        b')' => depth -= 1,
                        _ => {}
                    }
                    s.push(pdf[j]);
                    j += 1;
                }
                if pdf[j + 1..].starts_with(b" Tj") {
                    out.push(s);
                }
                i = j;
            } else if pdf[i] == b'<' && pdf.get(i + 1) != Some(&b'<') {
                // A hex string (non-ASCII text).
                let end = i + pdf[i..].iter().position(|&b| b == b'>').unwrap();
                let hex = std::str::from_utf8(&pdf[i + 1..end]).unwrap_or("");
                let bytes = hex::decode(hex).unwrap_or_default();
                if pdf[end + 1..].starts_with(b" Tj") {
                    out.push(bytes);
                }
                i = end;
            }
            i += 1;
        }
        out
    }

    #[test]
    fn the_pdf_shows_every_part_of_the_sheet() {
        let sheet = Sheet::of(&invoice(), Some("Europe/Paris"), &["Acme SAS".into()]);
        let pdf = render(&sheet);
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.ends_with(b"%%EOF") || pdf.ends_with(b"%%EOF\n"));
        let text = shown(&pdf);
        let has = |s: &[u8]| text.iter().any(|t| t == s);
        assert!(has(b"Invoice INV-2027-000042"));
        assert!(has(b"PAID"));
        assert!(has(b"Acme SAS"));
        assert!(has(b"1,244.58 EUR"));
        assert!(has(b"-10.00 EUR"));
        assert!(has(b"0.00 EUR"));
        // Parentheses and backslashes survive; ü and the dash are Windows-1252 bytes.
        assert!(
            text.iter()
                .any(|t| t == b"Unused time on Basic (basic) \x97 with (brackets) \\ and \xfc"),
            "{:?}",
            text.iter()
                .map(|t| String::from_utf8_lossy(t))
                .collect::<Vec<_>>()
        );
        assert!(has(b"1 Feb 2027 \x96 1 Mar 2027"));
    }

    #[test]
    fn a_long_invoice_flows_onto_more_pages() {
        let mut long = invoice();
        let line = long.lines[1].clone();
        long.lines = vec![line; 120];
        let pdf = render(&Sheet::of(&long, None, &[]));
        let pages = pdf.windows(9).filter(|w| w == b"/MediaBox").count();
        assert_eq!(pages, 7);
        let text = shown(&pdf);
        let descriptions = text
            .iter()
            .filter(|t| t.as_slice() == b"Remaining time on Pro (pro)")
            .count();
        assert_eq!(descriptions, 120);
        assert!(
            text.iter()
                .any(|t| t == b"Invoice INV-2027-000042 \xb7 page 7 of 7")
        );
    }

    #[test]
    fn text_is_wrapped_within_the_column() {
        let long = "word ".repeat(80);
        let lines = wrap(&long, 10.0, DESCRIPTION_WIDTH);
        assert!(lines.len() > 3);
        assert!(
            lines
                .iter()
                .all(|l| width(&win_ansi(l), 10.0) <= DESCRIPTION_WIDTH)
        );
        let unbroken = "x".repeat(300);
        let lines = wrap(&unbroken, 10.0, DESCRIPTION_WIDTH);
        assert_eq!(lines.concat(), unbroken);
        assert_eq!(wrap("", 10.0, DESCRIPTION_WIDTH), vec![String::new()]);
        assert_eq!(win_ansi("€ 漢"), vec![0x80, b' ', b'?']);
    }
}
