//! The SeaORM entities of this context's tables (the schema lives in the `migrations` crate).

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
