//! The SeaORM entities of this context's tables (the schema lives in the `migrations` crate).

pub mod refunds {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refunds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub payment_id: String,
        pub order_id: String,
        pub provider: String,
        pub provider_reference: Option<String>,
        pub amount: i64,
        pub currency: String,
        pub status: crate::refunds::model::RefundState,
        pub reason: Option<String>,
        pub failure_reason: Option<String>,
        pub idempotency_key: Option<String>,
        pub requested_by: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
    }

    /// The payment a refund gives back.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "crate::payments::entities::payments::Entity",
            from = "Column::PaymentId",
            to = "crate::payments::entities::payments::Column::Id"
        )]
        Payment,
    }

    impl Related<crate::payments::entities::payments::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Payment.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}
