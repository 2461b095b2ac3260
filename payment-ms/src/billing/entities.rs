//! The SeaORM entities of billing's tables (the schema lives in the `migrations` crate).

pub mod plans {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "plans")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub code: String,
        pub version: i32,
        pub name: String,
        pub tier: Option<String>,
        pub currency: String,
        pub interval: String,
        pub interval_count: i32,
        pub amount: i64,
        pub trial_days: i32,
        pub status: crate::billing::model::PlanStatus,
        pub metadata: Json,
        pub created_at: DateTimeUtc,
        pub archived_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod subscriptions {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "subscriptions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub plan_id: String,
        pub status: crate::billing::model::SubscriptionStatus,
        pub time_zone: String,
        pub billing_anchor: DateTimeUtc,
        pub current_period_start: DateTimeUtc,
        pub current_period_end: DateTimeUtc,
        pub trial_end: Option<DateTimeUtc>,
        pub cancel_at_period_end: bool,
        pub cancellation_reason: Option<String>,
        pub canceled_at: Option<DateTimeUtc>,
        pub ended_at: Option<DateTimeUtc>,
        pub pending_plan_id: Option<String>,
        pub paused_at: Option<DateTimeUtc>,
        pub payment_method: Option<String>,
        pub test_clock_id: Option<String>,
        pub metadata: Json,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        /// Written only by `totals::record_mrr`.
        pub mrr: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod invoices {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "invoices")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub number: Option<String>,
        pub subscription_id: Option<String>,
        pub user_id: String,
        pub status: crate::billing::model::InvoiceStatus,
        pub currency: String,
        pub total: i64,
        pub amount_paid: i64,
        pub billing_reason: String,
        pub period_start: DateTimeUtc,
        pub period_end: DateTimeUtc,
        pub order_id: Option<String>,
        pub attempt_count: i32,
        pub next_attempt_at: Option<DateTimeUtc>,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub finalize_at: DateTimeUtc,
        pub finalized_at: Option<DateTimeUtc>,
        pub paid_at: Option<DateTimeUtc>,
        pub voided_at: Option<DateTimeUtc>,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod invoice_lines {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "invoice_lines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub invoice_id: String,
        pub position: i32,
        pub kind: String,
        pub description: String,
        pub plan_id: Option<String>,
        pub quantity: i32,
        pub unit_amount: i64,
        pub amount: i64,
        pub period_start: DateTimeUtc,
        pub period_end: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod billed_periods {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billed_periods")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub subscription_id: String,
        pub period_start: DateTimeUtc,
        pub period_end: DateTimeUtc,
        pub kind: String,
        pub invoice_id: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod billing_jobs {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "billing_jobs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub kind: String,
        pub subject_id: String,
        pub due_at: DateTimeUtc,
        pub test_clock_id: Option<String>,
        pub status: String,
        pub attempts: i32,
        pub lease_until: Option<DateTimeUtc>,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub done_at: Option<DateTimeUtc>,
        /// A charge job's payment, chosen before the provider is called and kept for its reruns.
        pub payment_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod test_clocks {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "test_clocks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub frozen_time: DateTimeUtc,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
