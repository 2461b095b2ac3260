use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// Running totals the billing figures read, so that each figure reads a few rows per day (or
/// per status and plan) instead of every payment, change or subscription:
///
/// - `revenue_days`: what succeeded payments took in and settled refunds gave back, per UTC
///   day and currency; added to by the transaction that settles a payment or a refund.
/// - `mrr_days`: the MRR changes (`subscription_mrr`) per world (a test clock's id, or `''`
///   for the real one), UTC day, currency and kind: their sum and count.
/// - `subscription_counts`: subscriptions per world, status and plan; moved by the
///   transaction that saves a subscription's new status or plan.
///
/// Each connection adds to a row of its own per key (`shard`), so concurrent transactions
/// rarely wait for one another on a total; the figures add the shards up. Each starts from
/// the rows already there (revenue by the days the revenue figure counted them until now: a
/// payment's `succeeded_at`, a settled refund's `updated_at`).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let text = |c: Totals, len: u32| ColumnDef::new(c).string_len(len).not_null().to_owned();
        let number = |c: Totals| ColumnDef::new(c).big_integer().not_null().to_owned();
        let tables = [
            (
                Totals::RevenueDays,
                vec![text(Totals::Day, 10), text(Totals::Currency, 3)],
                vec![Totals::Gross, Totals::Refunded, Totals::Payments],
            ),
            (
                Totals::MrrDays,
                vec![
                    text(Totals::World, 40),
                    text(Totals::Day, 10),
                    text(Totals::Currency, 3),
                    text(Totals::Kind, 16),
                ],
                vec![Totals::Delta, Totals::Changes],
            ),
            (
                Totals::SubscriptionCounts,
                vec![
                    text(Totals::World, 40),
                    text(Totals::Status, 32),
                    text(Totals::PlanId, 40),
                ],
                vec![Totals::Subscriptions],
            ),
        ];
        for (table, mut keys, sums) in tables {
            let mut create = Table::create();
            create.table(table).if_not_exists();
            let mut primary = Index::create();
            for key in &mut keys {
                primary.col(key.get_column_name());
                create.col(key);
            }
            create.col(ColumnDef::new(Totals::Shard).integer().not_null());
            primary.col(Totals::Shard);
            for sum in sums {
                create.col(number(sum));
            }
            create.primary_key(&mut primary);
            manager.create_table(create.to_owned()).await?;
        }

        let day = |column: &str| match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')")
            }
            _ => format!("strftime('%Y-%m-%d', {column})"),
        };
        let db = manager.get_connection();
        db.execute_unprepared(&format!(
            "INSERT INTO revenue_days (day, currency, shard, gross, refunded, payments) \
             SELECT day, currency, 0, SUM(gross), SUM(refunded), SUM(n) \
             FROM (SELECT {} AS day, currency, amount AS gross, 0 AS refunded, 1 AS n \
                     FROM payments WHERE succeeded_at IS NOT NULL \
                   UNION ALL \
                   SELECT {} AS day, currency, 0 AS gross, amount AS refunded, 0 AS n \
                     FROM refunds WHERE status = 'succeeded') AS moves \
             GROUP BY day, currency",
            day("succeeded_at"),
            day("updated_at"),
        ))
        .await?;
        db.execute_unprepared(&format!(
            "INSERT INTO mrr_days (world, day, currency, kind, shard, delta, changes) \
             SELECT COALESCE(test_clock_id, ''), {}, currency, kind, 0, SUM(delta), COUNT(*) \
             FROM subscription_mrr GROUP BY COALESCE(test_clock_id, ''), {0}, currency, kind",
            day("at"),
        ))
        .await?;
        db.execute_unprepared(
            "INSERT INTO subscription_counts (world, status, plan_id, shard, subscriptions) \
             SELECT COALESCE(test_clock_id, ''), status, plan_id, 0, COUNT(*) \
             FROM subscriptions GROUP BY COALESCE(test_clock_id, ''), status, plan_id",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Totals::SubscriptionCounts,
            Totals::MrrDays,
            Totals::RevenueDays,
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Totals {
    RevenueDays,
    MrrDays,
    SubscriptionCounts,
    World,
    Day,
    Currency,
    Kind,
    Status,
    PlanId,
    Shard,
    Gross,
    Refunded,
    Payments,
    Delta,
    Changes,
    Subscriptions,
}
