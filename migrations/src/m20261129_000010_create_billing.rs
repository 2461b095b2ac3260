use sea_orm_migration::{prelude::*, schema::*};

/// Billing: plans, subscriptions, invoices and the jobs that move them.
///
/// - `plans`: versioned by `(code, version)`; a version never changes once created (a change
///   is a new version), only its `status` (active → archived).
/// - `subscriptions`: a user's subscription to one plan version, its periods derived from
///   `billing_anchor` in `time_zone`, and what is pending (a plan at period end, a cancel).
/// - `invoices` and `invoice_lines`: amounts in minor units, signed on lines (a proration
///   credit is negative); `number` is given at finalization from `invoice_counters` (one row
///   per scope, incremented in the finalizing transaction: gapless) and is unique.
/// - `billed_periods`: one row per (subscription, period, kind) billed, inserted with the
///   invoice: a period is never billed twice, whoever runs the job and however often.
/// - `billing_jobs`: what is due when (renewals, finalization, charges, expiries), unique by
///   `(kind, subject_id, due_at)`, claimed under a lease.
/// - `test_clocks`: admin clocks subscriptions can be attached to and advanced.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Plans::Table)
                    .if_not_exists()
                    .col(string_len(Plans::Id, 40).primary_key())
                    .col(string_len(Plans::Code, 64))
                    .col(integer(Plans::Version))
                    .col(string_len(Plans::Name, 255))
                    .col(string_len_null(Plans::Tier, 64))
                    .col(string_len(Plans::Currency, 3))
                    .col(string_len(Plans::Interval, 8))
                    .col(integer(Plans::IntervalCount))
                    .col(big_integer(Plans::Amount))
                    .col(integer(Plans::TrialDays))
                    .col(string_len(Plans::Status, 16))
                    .col(json_binary(Plans::Metadata))
                    .col(timestamp_with_time_zone(Plans::CreatedAt))
                    .col(timestamp_with_time_zone_null(Plans::ArchivedAt))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "idx_plans_code_version",
            Plans::Table,
            &[Plans::Code.into_iden(), Plans::Version.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Subscriptions::Table)
                    .if_not_exists()
                    .col(string_len(Subscriptions::Id, 40).primary_key())
                    .col(string_len(Subscriptions::UserId, 255))
                    .col(string_len(Subscriptions::PlanId, 40))
                    .col(string_len(Subscriptions::Status, 24))
                    .col(string_len(Subscriptions::TimeZone, 64))
                    .col(timestamp_with_time_zone(Subscriptions::BillingAnchor))
                    .col(timestamp_with_time_zone(Subscriptions::CurrentPeriodStart))
                    .col(timestamp_with_time_zone(Subscriptions::CurrentPeriodEnd))
                    .col(timestamp_with_time_zone_null(Subscriptions::TrialEnd))
                    .col(boolean(Subscriptions::CancelAtPeriodEnd).default(false))
                    .col(text_null(Subscriptions::CancellationReason))
                    .col(timestamp_with_time_zone_null(Subscriptions::CanceledAt))
                    .col(timestamp_with_time_zone_null(Subscriptions::EndedAt))
                    .col(string_len_null(Subscriptions::PendingPlanId, 40))
                    .col(timestamp_with_time_zone_null(Subscriptions::PausedAt))
                    .col(string_len_null(Subscriptions::PaymentMethod, 255))
                    .col(string_len_null(Subscriptions::TestClockId, 40))
                    .col(json_binary(Subscriptions::Metadata))
                    .col(timestamp_with_time_zone(Subscriptions::CreatedAt))
                    .col(timestamp_with_time_zone(Subscriptions::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_subscriptions_user_id",
            Subscriptions::Table,
            &[
                Subscriptions::UserId.into_iden(),
                Subscriptions::Id.into_iden(),
            ],
        )
        .await?;
        index(
            manager,
            "idx_subscriptions_status_plan",
            Subscriptions::Table,
            &[
                Subscriptions::Status.into_iden(),
                Subscriptions::PlanId.into_iden(),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(Invoices::Table)
                    .if_not_exists()
                    .col(string_len(Invoices::Id, 40).primary_key())
                    .col(string_len_null(Invoices::Number, 64))
                    .col(string_len_null(Invoices::SubscriptionId, 40))
                    .col(string_len(Invoices::UserId, 255))
                    .col(string_len(Invoices::Status, 24))
                    .col(string_len(Invoices::Currency, 3))
                    .col(big_integer(Invoices::Total))
                    .col(big_integer(Invoices::AmountPaid).default(0))
                    .col(string_len(Invoices::BillingReason, 32))
                    .col(timestamp_with_time_zone(Invoices::PeriodStart))
                    .col(timestamp_with_time_zone(Invoices::PeriodEnd))
                    .col(string_len_null(Invoices::OrderId, 40))
                    .col(integer(Invoices::AttemptCount).default(0))
                    .col(timestamp_with_time_zone_null(Invoices::NextAttemptAt))
                    .col(text_null(Invoices::LastError))
                    .col(timestamp_with_time_zone(Invoices::CreatedAt))
                    .col(timestamp_with_time_zone(Invoices::FinalizeAt))
                    .col(timestamp_with_time_zone_null(Invoices::FinalizedAt))
                    .col(timestamp_with_time_zone_null(Invoices::PaidAt))
                    .col(timestamp_with_time_zone_null(Invoices::VoidedAt))
                    .col(timestamp_with_time_zone(Invoices::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "idx_invoices_number",
            Invoices::Table,
            &[Invoices::Number.into_iden()],
        )
        .await?;
        index(
            manager,
            "idx_invoices_subscription_id",
            Invoices::Table,
            &[
                Invoices::SubscriptionId.into_iden(),
                Invoices::Id.into_iden(),
            ],
        )
        .await?;
        index(
            manager,
            "idx_invoices_user_id",
            Invoices::Table,
            &[Invoices::UserId.into_iden(), Invoices::Id.into_iden()],
        )
        .await?;
        index(
            manager,
            "idx_invoices_order_id",
            Invoices::Table,
            &[Invoices::OrderId.into_iden()],
        )
        .await?;
        index(
            manager,
            "idx_invoices_status_paid_at",
            Invoices::Table,
            &[Invoices::Status.into_iden(), Invoices::PaidAt.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(InvoiceLines::Table)
                    .if_not_exists()
                    .col(string_len(InvoiceLines::Id, 40).primary_key())
                    .col(string_len(InvoiceLines::InvoiceId, 40))
                    .col(integer(InvoiceLines::Position))
                    .col(string_len(InvoiceLines::Kind, 24))
                    .col(string_len(InvoiceLines::Description, 255))
                    .col(string_len_null(InvoiceLines::PlanId, 40))
                    .col(integer(InvoiceLines::Quantity))
                    .col(big_integer(InvoiceLines::UnitAmount))
                    .col(big_integer(InvoiceLines::Amount))
                    .col(timestamp_with_time_zone(InvoiceLines::PeriodStart))
                    .col(timestamp_with_time_zone(InvoiceLines::PeriodEnd))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_invoice_lines_invoice_id",
            InvoiceLines::Table,
            &[
                InvoiceLines::InvoiceId.into_iden(),
                InvoiceLines::Position.into_iden(),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(InvoiceCounters::Table)
                    .if_not_exists()
                    .col(string_len(InvoiceCounters::Scope, 64).primary_key())
                    .col(big_integer(InvoiceCounters::LastValue))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(BilledPeriods::Table)
                    .if_not_exists()
                    .col(string_len(BilledPeriods::Id, 40).primary_key())
                    .col(string_len(BilledPeriods::SubscriptionId, 40))
                    .col(timestamp_with_time_zone(BilledPeriods::PeriodStart))
                    .col(timestamp_with_time_zone(BilledPeriods::PeriodEnd))
                    .col(string_len(BilledPeriods::Kind, 24))
                    .col(string_len(BilledPeriods::InvoiceId, 40))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "idx_billed_periods_once",
            BilledPeriods::Table,
            &[
                BilledPeriods::SubscriptionId.into_iden(),
                BilledPeriods::PeriodStart.into_iden(),
                BilledPeriods::PeriodEnd.into_iden(),
                BilledPeriods::Kind.into_iden(),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(BillingJobs::Table)
                    .if_not_exists()
                    .col(string_len(BillingJobs::Id, 40).primary_key())
                    .col(string_len(BillingJobs::Kind, 24))
                    .col(string_len(BillingJobs::SubjectId, 40))
                    .col(timestamp_with_time_zone(BillingJobs::DueAt))
                    .col(string_len_null(BillingJobs::TestClockId, 40))
                    .col(string_len(BillingJobs::Status, 16))
                    .col(integer(BillingJobs::Attempts).default(0))
                    .col(timestamp_with_time_zone_null(BillingJobs::LeaseUntil))
                    .col(text_null(BillingJobs::LastError))
                    .col(timestamp_with_time_zone(BillingJobs::CreatedAt))
                    .col(timestamp_with_time_zone_null(BillingJobs::DoneAt))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "idx_billing_jobs_once",
            BillingJobs::Table,
            &[
                BillingJobs::Kind.into_iden(),
                BillingJobs::SubjectId.into_iden(),
                BillingJobs::DueAt.into_iden(),
            ],
        )
        .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX IF NOT EXISTS idx_billing_jobs_pending_due \
                 ON billing_jobs (due_at, id) WHERE status = 'pending'",
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TestClocks::Table)
                    .if_not_exists()
                    .col(string_len(TestClocks::Id, 40).primary_key())
                    .col(string_len(TestClocks::Name, 255))
                    .col(timestamp_with_time_zone(TestClocks::FrozenTime))
                    .col(timestamp_with_time_zone(TestClocks::CreatedAt))
                    .col(timestamp_with_time_zone(TestClocks::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            TestClocks::Table.into_iden(),
            BillingJobs::Table.into_iden(),
            BilledPeriods::Table.into_iden(),
            InvoiceCounters::Table.into_iden(),
            InvoiceLines::Table.into_iden(),
            Invoices::Table.into_iden(),
            Subscriptions::Table.into_iden(),
            Plans::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

async fn index<T: IntoIden>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    columns: &[DynIden],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(column.clone());
    }
    manager.create_index(index.to_owned()).await
}

async fn unique<T: IntoIden>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: T,
    columns: &[DynIden],
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table).unique();
    for column in columns {
        index.col(column.clone());
    }
    manager.create_index(index.to_owned()).await
}

#[derive(DeriveIden)]
enum Plans {
    Table,
    Id,
    Code,
    Version,
    Name,
    Tier,
    Currency,
    Interval,
    IntervalCount,
    Amount,
    TrialDays,
    Status,
    Metadata,
    CreatedAt,
    ArchivedAt,
}

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    Id,
    UserId,
    PlanId,
    Status,
    TimeZone,
    BillingAnchor,
    CurrentPeriodStart,
    CurrentPeriodEnd,
    TrialEnd,
    CancelAtPeriodEnd,
    CancellationReason,
    CanceledAt,
    EndedAt,
    PendingPlanId,
    PausedAt,
    PaymentMethod,
    TestClockId,
    Metadata,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Invoices {
    Table,
    Id,
    Number,
    SubscriptionId,
    UserId,
    Status,
    Currency,
    Total,
    AmountPaid,
    BillingReason,
    PeriodStart,
    PeriodEnd,
    OrderId,
    AttemptCount,
    NextAttemptAt,
    LastError,
    CreatedAt,
    FinalizeAt,
    FinalizedAt,
    PaidAt,
    VoidedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum InvoiceLines {
    Table,
    Id,
    InvoiceId,
    Position,
    Kind,
    Description,
    PlanId,
    Quantity,
    UnitAmount,
    Amount,
    PeriodStart,
    PeriodEnd,
}

#[derive(DeriveIden)]
enum InvoiceCounters {
    Table,
    Scope,
    LastValue,
}

#[derive(DeriveIden)]
enum BilledPeriods {
    Table,
    Id,
    SubscriptionId,
    PeriodStart,
    PeriodEnd,
    Kind,
    InvoiceId,
}

#[derive(DeriveIden)]
enum BillingJobs {
    Table,
    Id,
    Kind,
    SubjectId,
    DueAt,
    TestClockId,
    Status,
    Attempts,
    LeaseUntil,
    LastError,
    CreatedAt,
    DoneAt,
}

#[derive(DeriveIden)]
enum TestClocks {
    Table,
    Id,
    Name,
    FrozenTime,
    CreatedAt,
    UpdatedAt,
}
