//! Invoice documents: the invoice as a person reads it, as a printable HTML page
//! (`GET /invoices/{id}/html`) and as a PDF (`GET /invoices/{id}/pdf`), rendered here in Rust
//! (no browser at run time).
//!
//! One [`Sheet`] says what the document shows, already formatted (dates in the subscription's
//! time zone, amounts in the currency's minor-unit exponent); [`html`] and [`pdf`] lay it out.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::EntityTrait;
use shared::billing::InvoiceOut;
use shared::money::Currency;

use super::entities::subscriptions;
use super::invoices::queries::find_visible;
use super::model::BillingError;
use super::{Billing, store};
use crate::platform::Actor;

pub mod html;
pub mod pdf;

/// What an invoice document shows, formatted for people.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    /// `Invoice INV-2027-000042`, or `Draft invoice` before a number is given.
    pub title: String,
    /// A word across the page when the invoice is not simply open: `PAID`, `DRAFT`, `VOID`,
    /// `UNCOLLECTIBLE`.
    pub stamp: Option<&'static str>,
    /// Who issues it (`BILLING_ISSUER`), a line each.
    pub issuer: Vec<String>,
    /// Label and value: number, status, dates, who is billed.
    pub facts: Vec<(&'static str, String)>,
    pub lines: Vec<SheetLine>,
    /// Label and amount: total, paid, due.
    pub totals: Vec<(&'static str, String)>,
    /// Says in which time zone the dates are.
    pub note: String,
    /// The file's name, without extension: the number, else the id.
    pub file_name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SheetLine {
    pub description: String,
    /// The line's period, and its quantity and unit price when more than one.
    pub detail: String,
    pub amount: String,
}

impl Sheet {
    /// The sheet of `invoice`, its dates shown in `zone` (the subscription's; UTC when it has
    /// none or it is unknown).
    pub fn of(invoice: &InvoiceOut, zone: Option<&str>, issuer: &[String]) -> Sheet {
        let tz: Tz = zone.and_then(|z| z.parse().ok()).unwrap_or(Tz::UTC);
        let day = |at: DateTime<Utc>| at.with_timezone(&tz).format("%-d %b %Y").to_string();
        let span = |from: DateTime<Utc>, to: DateTime<Utc>| format!("{} – {}", day(from), day(to));
        let currency = Currency::parse(&invoice.currency);
        let money = |minor: i64| match currency {
            Some(c) => c.format(minor),
            None => format!("{minor} {}", invoice.currency.to_ascii_uppercase()),
        };
        let mut facts = vec![(
            "Invoice number",
            invoice
                .number
                .clone()
                .unwrap_or_else(|| "none yet (draft)".to_owned()),
        )];
        facts.push(("Status", invoice.status.replace('_', " ")));
        if let Some(at) = invoice.finalized_at {
            facts.push(("Issued", day(at)));
        }
        facts.push(("Billed to", invoice.user_id.clone()));
        if let Some(sub) = &invoice.subscription_id {
            facts.push(("Subscription", sub.clone()));
        }
        facts.push((
            "Billing period",
            span(invoice.period_start, invoice.period_end),
        ));
        if let Some(at) = invoice.paid_at {
            facts.push(("Paid on", day(at)));
        }
        if let Some(at) = invoice.voided_at {
            facts.push(("Ended on", day(at)));
        }
        if invoice.status == "open"
            && let Some(at) = invoice.next_payment_attempt
        {
            facts.push(("Next payment attempt", day(at)));
        }
        facts.push(("Invoice id", invoice.id.clone()));
        let lines = invoice
            .lines
            .iter()
            .map(|l| {
                let mut detail = span(l.period_start, l.period_end);
                if l.quantity != 1 {
                    detail.push_str(&format!(" · {} × {}", l.quantity, money(l.unit_amount)));
                }
                SheetLine {
                    description: l.description.clone(),
                    detail,
                    amount: money(l.amount),
                }
            })
            .collect();
        let totals = vec![
            ("Total", money(invoice.total)),
            ("Amount paid", money(invoice.amount_paid)),
            ("Amount due", money(invoice.amount_due)),
        ];
        let stamp = match invoice.status.as_str() {
            "paid" => Some("PAID"),
            "draft" => Some("DRAFT"),
            "void" => Some("VOID"),
            "uncollectible" => Some("UNCOLLECTIBLE"),
            _ => None,
        };
        Sheet {
            title: match &invoice.number {
                Some(n) => format!("Invoice {n}"),
                None => "Draft invoice".to_owned(),
            },
            stamp,
            issuer: issuer.to_vec(),
            facts,
            lines,
            totals,
            note: format!("Dates in the {} time zone.", tz.name()),
            file_name: invoice.number.clone().unwrap_or_else(|| invoice.id.clone()),
        }
    }
}

/// The sheet of an invoice the actor may see (its owner, or a service or admin).
pub async fn invoice_sheet(
    billing: &Billing,
    actor: &Actor,
    id: &str,
) -> Result<Sheet, BillingError> {
    let db = &billing.core.db;
    let invoice = find_visible(db, actor, id).await?;
    let zone = match &invoice.subscription_id {
        Some(sub) => subscriptions::Entity::find_by_id(sub.as_str())
            .one(db)
            .await?
            .map(|s| s.time_zone),
        None => None,
    };
    let out = store::invoice_with_lines(db, invoice).await?;
    Ok(Sheet::of(&out, zone.as_deref(), &billing.config.issuer))
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::TimeZone;
    use shared::billing::InvoiceLineOut;

    use super::*;

    /// A paid two-line invoice in euros, on a subscription in Paris.
    pub fn invoice() -> InvoiceOut {
        let at = |m, d, h| Utc.with_ymd_and_hms(2027, m, d, h, 0, 0).unwrap();
        InvoiceOut {
            id: "inv_0123".into(),
            number: Some("INV-2027-000042".into()),
            subscription_id: Some("sub_0456".into()),
            user_id: "alice".into(),
            status: "paid".into(),
            currency: "eur".into(),
            total: 123_458,
            amount_paid: 123_458,
            amount_due: 0,
            billing_reason: "subscription_update".into(),
            period_start: at(1, 31, 23),
            period_end: at(2, 28, 23),
            lines: vec![
                InvoiceLineOut {
                    kind: "proration_credit".into(),
                    description: "Unused time on Basic (basic) — with (brackets) \\ and ü".into(),
                    plan_id: None,
                    quantity: 1,
                    unit_amount: -1_000,
                    amount: -1_000,
                    period_start: at(1, 31, 23),
                    period_end: at(2, 28, 23),
                },
                InvoiceLineOut {
                    kind: "proration_charge".into(),
                    description: "Remaining time on Pro (pro)".into(),
                    plan_id: None,
                    quantity: 3,
                    unit_amount: 41_486,
                    amount: 124_458,
                    period_start: at(1, 31, 23),
                    period_end: at(2, 28, 23),
                },
            ],
            order_id: None,
            attempt_count: 1,
            next_payment_attempt: None,
            created_at: at(2, 1, 9),
            finalized_at: Some(at(2, 1, 10)),
            paid_at: Some(at(2, 1, 11)),
            voided_at: None,
        }
    }

    #[test]
    fn dates_are_shown_in_the_subscriptions_zone_and_amounts_in_its_currency() {
        let sheet = Sheet::of(&invoice(), Some("Europe/Paris"), &["Acme SAS".into()]);
        assert_eq!(sheet.title, "Invoice INV-2027-000042");
        assert_eq!(sheet.stamp, Some("PAID"));
        assert_eq!(sheet.file_name, "INV-2027-000042");
        // 23:00 UTC on 31 January is 1 February in Paris.
        assert!(
            sheet
                .facts
                .contains(&("Billing period", "1 Feb 2027 – 1 Mar 2027".into()))
        );
        assert_eq!(sheet.lines[0].amount, "-10.00 EUR");
        assert_eq!(sheet.lines[1].amount, "1,244.58 EUR");
        assert_eq!(
            sheet.lines[1].detail,
            "1 Feb 2027 – 1 Mar 2027 · 3 × 414.86 EUR"
        );
        assert_eq!(sheet.totals[0], ("Total", "1,234.58 EUR".into()));
        assert_eq!(sheet.totals[2], ("Amount due", "0.00 EUR".into()));
        assert_eq!(sheet.note, "Dates in the Europe/Paris time zone.");
        // Without a zone, UTC.
        let utc = Sheet::of(&invoice(), None, &[]);
        assert!(
            utc.facts
                .contains(&("Billing period", "31 Jan 2027 – 28 Feb 2027".into()))
        );
    }

    #[test]
    fn a_draft_has_no_number_yet() {
        let mut draft = invoice();
        draft.number = None;
        draft.status = "draft".into();
        draft.finalized_at = None;
        draft.paid_at = None;
        let sheet = Sheet::of(&draft, None, &[]);
        assert_eq!(sheet.title, "Draft invoice");
        assert_eq!(sheet.stamp, Some("DRAFT"));
        assert_eq!(sheet.file_name, "inv_0123");
        assert!(!sheet.facts.iter().any(|(label, _)| *label == "Issued"));
    }
}
