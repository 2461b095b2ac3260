//! The SeaORM entities of this context's tables (the schema lives in the `migrations` crate).

pub mod payments {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "payments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub order_id: String,
        pub user_id: String,
        pub provider: String,
        pub provider_reference: Option<String>,
        pub checkout_url: Option<String>,
        pub status: crate::payments::model::PaymentStatus,
        pub amount: i64,
        pub amount_refunded: i64,
        pub currency: String,
        pub success_url: String,
        pub cancel_url: String,
        pub metadata: Json,
        pub failure_reason: Option<String>,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        pub provider_payment_reference: Option<String>,
        pub next_action: Option<Json>,
        /// When it succeeded (revenue is counted by this time).
        pub succeeded_at: Option<DateTimeUtc>,
    }

    /// The order a payment pays.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "crate::orders::entities::orders::Entity",
            from = "Column::OrderId",
            to = "crate::orders::entities::orders::Column::Id"
        )]
        Order,
    }

    impl ActiveModelBehavior for ActiveModel {}
}
