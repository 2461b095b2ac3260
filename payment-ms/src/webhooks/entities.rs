//! The SeaORM entities of this context's tables (the schema lives in the `migrations` crate).

pub mod partners {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "partners")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub url: String,
        /// A JSON array of filters: `*`, `order.*`, or an exact type.
        pub event_types: Json,
        pub active: bool,
        /// Configured from the environment (the n8n hook), not through the API.
        pub builtin: bool,
        pub secret: String,
        pub previous_secret: Option<String>,
        pub previous_secret_expires_at: Option<DateTimeUtc>,
        /// Events in a row whose delivery ran past the whole retry schedule.
        pub consecutive_failures: i32,
        pub disabled_reason: Option<String>,
        /// Attempts in a row that got no answer, a 5xx or a 429.
        pub failing_attempts: i32,
        /// While set and in the future, the partner's deliveries are not claimed.
        pub backoff_until: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod deliveries {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deliveries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub event_id: String,
        pub partner_id: String,
        pub status: String,
        pub attempts: i32,
        /// `attempts` when the current round of the retry schedule began (a recovery starts a new
        /// round without renumbering the attempts already recorded).
        pub round_start: i32,
        pub next_attempt_at: DateTimeUtc,
        /// A worker's claim: nobody else sends this delivery before then.
        pub locked_until: Option<DateTimeUtc>,
        pub last_status_code: Option<i32>,
        pub last_error: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub completed_at: Option<DateTimeUtc>,
        /// Claims since the last recorded outcome: a delivery sent again and again without its
        /// outcome being recorded is stopped (the dispatcher's `MAX_UNRECORDED`).
        pub unrecorded_claims: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod delivery_attempts {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "delivery_attempts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub delivery_id: String,
        pub attempt: i32,
        pub started_at: DateTimeUtc,
        pub latency_ms: i32,
        pub status_code: Option<i32>,
        pub response_excerpt: Option<String>,
        pub error: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
