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
