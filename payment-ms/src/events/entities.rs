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
        /// The flow it belongs to: the request id of the API call, or the inbound event's
        /// correlation id (its own id when it has none).
        pub correlation_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
