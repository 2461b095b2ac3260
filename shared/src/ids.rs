//! Resource ids: a short type prefix and a UUIDv7 in hex (`ord_0192…`).
//!
//! UUIDv7 starts with a millisecond timestamp, so ids of one type sort by creation time. The
//! lists page on that order (`WHERE id < cursor ORDER BY id DESC`) without a second column.

use uuid::Uuid;

pub const ORDER: &str = "ord";
pub const ORDER_ITEM: &str = "oli";
pub const PAYMENT: &str = "pay";
pub const REFUND: &str = "rfd";
pub const EVENT: &str = "evt";
pub const MOCK_SESSION: &str = "mcs";
pub const PARTNER: &str = "ptn";
pub const DELIVERY: &str = "dlv";
pub const DELIVERY_ATTEMPT: &str = "att";
pub const INBOX: &str = "inb";
pub const DEAD_LETTER: &str = "dlq";
pub const PLAN: &str = "plan";
pub const SUBSCRIPTION: &str = "sub";
pub const INVOICE: &str = "inv";
pub const INVOICE_LINE: &str = "inl";
pub const BILLED_PERIOD: &str = "bpd";
pub const BILLING_JOB: &str = "bjb";
pub const TEST_CLOCK: &str = "clk";
pub const MRR_CHANGE: &str = "mrr";
pub const STOCK_RESERVATION: &str = "rsv";
pub const ORDER_HISTORY: &str = "osh";

/// A new id of the given type, e.g. `new_id(ids::ORDER)`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

/// The id of the given type that belongs to `from` (an id of another type): the same unique
/// part under another prefix, so whatever reruns the work `from` names finds the same id.
/// `None` when `from` has no `_`.
pub fn derived(prefix: &str, from: &str) -> Option<String> {
    let (_, unique) = from.split_once('_')?;
    Some(format!("{prefix}_{unique}"))
}

/// Whether `id` has the shape of an id of this type. Lookups of ids that cannot exist answer
/// 404 without touching the database, and cursors cannot smuggle arbitrary strings into SQL
/// comparisons.
pub fn is_valid(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| {
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_id_keeps_the_unique_part_of_its_source() {
        let job = new_id(BILLING_JOB);
        let payment = derived(PAYMENT, &job).unwrap_or_default();
        assert!(is_valid(PAYMENT, &payment), "{payment}");
        assert_eq!(payment[4..], job[4..]);
        assert_eq!(derived(PAYMENT, &job), Some(payment));
        assert_ne!(
            derived(PAYMENT, &new_id(BILLING_JOB)),
            derived(PAYMENT, &job)
        );
        assert_eq!(derived(PAYMENT, "nounderscore"), None);
    }

    #[test]
    fn ids_have_their_prefix_and_sort_by_creation() {
        let a = new_id(ORDER);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id(ORDER);
        assert!(is_valid(ORDER, &a), "{a}");
        assert!(!is_valid(PAYMENT, &a));
        assert!(a < b, "{a} should sort before {b}");
    }

    #[test]
    fn malformed_ids_are_not_valid() {
        for bad in ["", "ord", "ord_", "ord_xyz", "ord_0192ABCDEF", "pay_0192"] {
            assert!(!is_valid(ORDER, bad), "{bad}");
        }
    }
}
