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
