//! The SeaORM entities of this context's tables (the schema lives in the `migrations` crate).

pub mod events {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub event_type: String,
        pub subject_id: String,
        pub data: Json,
        pub created_at: DateTimeUtc,
        /// 1, 2, … per subject: a consumer ignores an update older than one it has.
        pub sequence: i64,
        /// The inbound event that caused it, when one did.
        pub causation_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod event_publications {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_publications")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub event_id: String,
        /// `pending` or `published`.
        pub status: String,
        pub attempts: i32,
        /// When it is due (again): a claim moves it past the claim's lease.
        pub next_attempt_at: DateTimeUtc,
        pub last_error: Option<String>,
        pub stream_sequence: Option<i64>,
        pub created_at: DateTimeUtc,
        pub published_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
