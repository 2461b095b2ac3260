//! Readable numbers people can read out on the phone (`INV-2027-000042`, `ORD-2027-000042`):
//! gapless and unique per scope, from a counter row incremented in the transaction that uses
//! the number. The row stays locked until that transaction ends, so numbers are given in commit
//! order and a rolled-back transaction gives its number back.

use chrono::{DateTime, Datelike, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, Statement};

use super::db::numbered;

/// The next number of `scope` in the counter table `table` (`scope` text key, `last_value`).
pub async fn next_number(
    txn: &DatabaseTransaction,
    table: &'static str,
    scope: &str,
) -> Result<i64, DbErr> {
    next_numbers(txn, table, scope, 1).await
}

/// The first of the next `count` numbers of `scope` (a batch's, taken with one update; the
/// others follow it): `count` at least 1.
pub async fn next_numbers(
    txn: &DatabaseTransaction,
    table: &'static str,
    scope: &str,
    count: usize,
) -> Result<i64, DbErr> {
    let count = i64::try_from(count.max(1))
        .map_err(|_| DbErr::Custom(format!("{count} numbers of {scope} at once")))?;
    let backend = txn.get_database_backend();
    // One statement: the counter made at its first use, or moved on (one wait for its lock).
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            numbered(
                backend,
                &format!(
                    "INSERT INTO {table} (scope, last_value) VALUES ($1, $2) \
                     ON CONFLICT (scope) DO UPDATE SET last_value = {table}.last_value + \
                     excluded.last_value RETURNING last_value"
                ),
            ),
            [scope.into(), count.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("{table} {scope}")))?;
    let last: i64 = row.try_get("", "last_value")?;
    Ok(last - count + 1)
}

/// The next `count` numbers of `scope`, formatted ([`format_number`]), with one update.
pub async fn next_formatted(
    txn: &DatabaseTransaction,
    table: &'static str,
    scope: &str,
    count: usize,
) -> Result<Vec<String>, DbErr> {
    let first = next_numbers(txn, table, scope, count).await?;
    Ok((first..)
        .take(count)
        .map(|n| format_number(scope, n))
        .collect())
}

/// The scope of a number: `PREFIX-2027` per calendar year (UTC), or `PREFIX` alone.
pub fn number_scope(prefix: &str, per_year: bool, at: DateTime<Utc>) -> String {
    if per_year {
        format!("{prefix}-{}", at.year())
    } else {
        prefix.to_owned()
    }
}

/// `PREFIX-2027-000042`: the scope and the number, six digits at least.
pub fn format_number(scope: &str, n: i64) -> String {
    format!("{scope}-{n:06}")
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn numbers_read_as_their_scope_and_six_digits() {
        let at = Utc.with_ymd_and_hms(2027, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(
            format_number(&number_scope("INV", true, at), 42),
            "INV-2027-000042"
        );
        assert_eq!(
            format_number(&number_scope("ORD", false, at), 1_234_567),
            "ORD-1234567"
        );
    }
}
