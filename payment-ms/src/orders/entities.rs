//! The SeaORM entities of this context's tables (the schema lives in the `migrations` crate).

pub mod orders {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "orders")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub user_id: String,
        pub status: crate::orders::lifecycle::OrderStatus,
        pub currency: String,
        pub total_amount: i64,
        pub reference: Option<String>,
        pub metadata: Json,
        pub created_at: DateTimeUtc,
        pub updated_at: DateTimeUtc,
        pub expires_at: DateTimeUtc,
        /// `ORD-2027-000042`: gapless per year; none on orders made before numbers.
        pub number: Option<String>,
        pub subtotal_amount: i64,
        pub discount_amount: i64,
        pub shipping_amount: i64,
        pub tax_amount: i64,
        pub shipping_address: Option<Json>,
        pub billing_address: Option<Json>,
        pub carrier: Option<String>,
        pub tracking_number: Option<String>,
        /// The reason given for the latest move.
        pub status_reason: Option<String>,
        /// Bumped by each edit of the lines, discount or shipping: a checkout that priced an
        /// earlier revision does not open.
        pub revision: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(has_many = "super::order_items::Entity")]
        Items,
    }

    impl Related<super::order_items::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Items.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod order_items {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "order_items")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub order_id: String,
        pub position: i32,
        pub sku: String,
        pub name: String,
        pub quantity: i64,
        pub unit_price: i64,
        pub line_total: i64,
        pub discount_amount: i64,
        pub tax_rate_bps: i32,
        pub tax_amount: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::orders::Entity",
            from = "Column::OrderId",
            to = "super::orders::Column::Id"
        )]
        Order,
    }

    impl Related<super::orders::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Order.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod order_status_history {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "order_status_history")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub order_id: String,
        pub from_status: Option<String>,
        pub to_status: String,
        pub actor: String,
        pub reason: Option<String>,
        pub at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
