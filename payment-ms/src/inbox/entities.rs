//! The SeaORM entities of this context's tables (the schema lives in the `migrations` crate).

pub mod inbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "inbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub source: String,
        pub message_id: String,
        pub event_type: String,
        /// `nats` or `http`: the door it came through first.
        pub door: String,
        /// `applied`, `recorded` or `ignored`.
        pub outcome: String,
        /// What the handler did, in a sentence.
        pub detail: String,
        pub envelope: Json,
        pub received_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod dead_letters {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "dead_letters")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub source: Option<String>,
        pub message_id: Option<String>,
        pub event_type: Option<String>,
        pub door: String,
        pub nats_subject: Option<String>,
        /// The message as it arrived (UTF-8; other bytes replaced).
        pub body: String,
        pub error: String,
        pub deliveries: i32,
        /// `dead` until replayed, then `replayed`.
        pub status: String,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
