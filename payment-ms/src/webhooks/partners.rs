//! The partner registry and the delivery log, for admins: register, list, update, delete,
//! rotate a secret; list deliveries and their attempts; resend an event; recover failures.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect, Set,
};
use serde::Deserialize;
use shared::signing::WebhookSecret;
use shared::{FieldError, ids};
use tokio::sync::Notify;

pub use shared::api::{
    AttemptOut, DeliveryOut, PartnerIn, PartnerOut, PartnerPatch, PartnerWithSecret, RecoverIn,
    RecoverOut, ResendIn, RotateIn,
};

use super::ssrf::Guard;
use super::{is_valid_filter, status};
use crate::config::{MAX_SECRET_GRACE, WebhookConfig};
use crate::events::{Event, Outbox};
use crate::platform::db::after;
use crate::platform::pagination::{Page, PageRequest};
use crate::platform::{BeforeCommit, Core, Fault, validate};
use crate::{
    webhooks::entities::deliveries, webhooks::entities::delivery_attempts,
    webhooks::entities::partners,
};

crate::platform::typed_id!(
    /// A partner's id.
    PartnerId,
    ids::PARTNER
);

crate::platform::typed_id!(
    /// A delivery's id.
    DeliveryId,
    ids::DELIVERY
);

/// The most filters a partner's `event_types` may hold.
const MAX_FILTERS: usize = 100;

/// The key of the PostgreSQL advisory lock that creations of partners take in turn.
const PARTNER_CREATION_LOCK: i64 = 0x7061_7274_6e65_7273; // "partners"

/// The id of the built-in partner configured by `N8N_WEBHOOK_URL`.
pub const N8N_PARTNER_ID: &str = "ptn_00000000000000000000000000000000";

/// The partner registry and its delivery log, with what they need: the platform, the SSRF
/// guard, the webhook settings, and the dispatcher's wake-up.
#[derive(Clone)]
pub struct Partners {
    pub core: Core,
    pub guard: Guard,
    pub config: Arc<WebhookConfig>,
    /// Wakes the dispatcher when deliveries are queued outside the outbox (resend, recover).
    pub due: Arc<Notify>,
}

/// Why a partner or delivery use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// What was not found: `partner …`, `delivery …`, `event …`.
    #[error("{0} not found")]
    NotFound(String),
    /// The partner is configured by N8N_WEBHOOK_URL, not through the API.
    #[error("the partner is built in")]
    Builtin,
    #[error("{0} partners are registered, the most allowed")]
    LimitReached(u64),
    /// The partner is disabled; the detail says what to enable it for.
    #[error("{0}")]
    Disabled(&'static str),
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<DbErr> for WebhookError {
    fn from(e: DbErr) -> Self {
        WebhookError::Fault(e.into())
    }
}

pub(super) type Result<T, E = WebhookError> = std::result::Result<T, E>;

impl From<partners::Model> for PartnerOut {
    fn from(p: partners::Model) -> Self {
        PartnerOut {
            id: p.id,
            name: p.name,
            url: p.url,
            event_types: p.event_types,
            active: p.active,
            builtin: p.builtin,
            disabled_reason: p.disabled_reason,
            consecutive_failures: p.consecutive_failures,
            failing_attempts: p.failing_attempts,
            backoff_until: p.backoff_until,
            previous_secret_expires_at: p.previous_secret_expires_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// The URL's shape, then where it leads (the SSRF guard, after DNS).
async fn check_partner_url(guard: &Guard, errors: &mut Vec<FieldError>, url: &str) {
    let before = errors.len();
    validate::url(errors, "url", url);
    if errors.len() > before {
        return;
    }
    // (A password in the URL, which every admin would see and logs would keep, is refused
    // there: a partner authenticates our requests by their signature.)
    let Ok(parsed) = url::Url::parse(url) else {
        return;
    };
    if let Err(refusal) = guard.check_url(&parsed).await {
        errors.push(FieldError::new("url", refusal.to_string()));
    }
}

fn check_filters(errors: &mut Vec<FieldError>, filters: &[String]) {
    if filters.is_empty() {
        errors.push(FieldError::new(
            "event_types",
            "must name at least one type, or \"*\"",
        ));
    } else if filters.len() > MAX_FILTERS {
        errors.push(FieldError::new(
            "event_types",
            format!("must name at most {MAX_FILTERS} filters"),
        ));
    }
    for (i, f) in filters.iter().enumerate() {
        if !is_valid_filter(f) {
            errors.push(FieldError::new(
                format!("event_types[{i}]"),
                "must be \"*\", a family such as \"order.*\", or an event type",
            ));
        }
    }
}

/// A new partner's row: active, with a new secret and a clean record.
pub fn new_partner(
    name: &str,
    url: &str,
    filters: &[String],
    at: DateTime<Utc>,
) -> partners::Model {
    partners::Model {
        id: ids::new_id(ids::PARTNER),
        name: name.to_owned(),
        url: url.to_owned(),
        event_types: serde_json::json!(filters),
        active: true,
        builtin: false,
        secret: WebhookSecret::generate(),
        previous_secret: None,
        previous_secret_expires_at: None,
        consecutive_failures: 0,
        disabled_reason: None,
        failing_attempts: 0,
        backoff_until: None,
        created_at: at,
        updated_at: at,
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub status: Option<String>,
    pub event_id: Option<String>,
}

pub(super) async fn find(db: &DatabaseConnection, id: &PartnerId) -> Result<partners::Model> {
    let not_found = || WebhookError::NotFound(format!("partner {id}"));
    partners::Entity::find_by_id(id.as_str())
        .one(db)
        .await?
        .ok_or_else(not_found)
}

fn not_builtin(partner: &partners::Model) -> Result<()> {
    if partner.builtin {
        return Err(WebhookError::Builtin);
    }
    Ok(())
}

impl Partners {
    pub async fn create_partner(
        &self,
        input: PartnerIn,
        then: &dyn BeforeCommit<PartnerWithSecret>,
    ) -> Result<PartnerWithSecret> {
        let filters = input.event_types.unwrap_or_else(|| vec!["*".to_owned()]);
        let mut errors = Vec::new();
        validate::text(&mut errors, "name", &input.name, 255);
        check_filters(&mut errors, &filters);
        check_partner_url(&self.guard, &mut errors, &input.url).await;
        if !errors.is_empty() {
            return Err(WebhookError::Invalid(errors));
        }
        let mut partner = new_partner(input.name.trim(), &input.url, &filters, self.core.now());
        partner.active = input.active.unwrap_or(true);
        let secret = partner.secret.clone();
        let txn = self.core.begin().await?;
        // Counted under a lock that creations take in turn (SQLite's write lock is one already),
        // so two creations at once cannot both pass the limit.
        if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            txn.execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({PARTNER_CREATION_LOCK})"
            ))
            .await?;
        }
        let max = self.config.max_partners;
        if partners::Entity::find().count(&txn).await? >= max {
            return Err(WebhookError::LimitReached(max));
        }
        partners::ActiveModel::from(partner.clone())
            .insert(&txn)
            .await?;
        let out = PartnerWithSecret {
            partner: partner.into(),
            secret,
        };
        then.before_commit(&txn, &out).await?;
        txn.commit().await?;
        Ok(out)
    }

    pub async fn get_partner(&self, id: &PartnerId) -> Result<PartnerOut> {
        Ok(find(&self.core.db, id).await?.into())
    }

    pub async fn list_partners(&self, query: ListQuery) -> Result<Page<PartnerOut>> {
        let page = PageRequest::parse(query.limit, query.cursor.as_deref(), ids::PARTNER)
            .map_err(WebhookError::Invalid)?;
        let select = partners::Entity::find();
        let rows = page
            .fetch(select, partners::Column::Id, &self.core.db)
            .await?;
        Ok(page.page(rows, |p| &p.id, PartnerOut::from))
    }

    pub async fn update_partner(&self, id: &PartnerId, patch: PartnerPatch) -> Result<PartnerOut> {
        let partner = find(&self.core.db, id).await?;
        not_builtin(&partner)?;
        let mut errors = Vec::new();
        if let Some(name) = &patch.name {
            validate::text(&mut errors, "name", name, 255);
        }
        if let Some(filters) = &patch.event_types {
            check_filters(&mut errors, filters);
        }
        if let Some(url) = &patch.url {
            check_partner_url(&self.guard, &mut errors, url).await;
        }
        if !errors.is_empty() {
            return Err(WebhookError::Invalid(errors));
        }
        let mut model = partners::ActiveModel::from(partner);
        if let Some(name) = patch.name {
            model.name = Set(name.trim().to_owned());
        }
        if let Some(url) = patch.url {
            model.url = Set(url);
        }
        if let Some(filters) = patch.event_types {
            model.event_types = Set(serde_json::json!(filters));
        }
        if let Some(active) = patch.active {
            model.active = Set(active);
            if active {
                // Turning a partner back on forgets why it was off.
                model.disabled_reason = Set(None);
                model.consecutive_failures = Set(0);
                model.failing_attempts = Set(0);
                model.backoff_until = Set(None);
            } else {
                model.disabled_reason = Set(Some("disabled by an admin".to_owned()));
            }
        }
        model.updated_at = Set(self.core.now());
        Ok(model.update(&self.core.db).await?.into())
    }

    pub async fn delete_partner(&self, id: &PartnerId) -> Result<()> {
        let partner = find(&self.core.db, id).await?;
        let id = id.as_str();
        not_builtin(&partner)?;
        let txn = self.core.begin().await?;
        // Attempts go with their deliveries (ON DELETE CASCADE), deliveries with their partner.
        let ids: Vec<String> = deliveries::Entity::find()
            .filter(deliveries::Column::PartnerId.eq(id))
            .select_only()
            .column(deliveries::Column::Id)
            .into_tuple()
            .all(&txn)
            .await?;
        for chunk in ids.chunks(500) {
            delivery_attempts::Entity::delete_many()
                .filter(delivery_attempts::Column::DeliveryId.is_in(chunk.to_vec()))
                .exec(&txn)
                .await?;
        }
        deliveries::Entity::delete_many()
            .filter(deliveries::Column::PartnerId.eq(id))
            .exec(&txn)
            .await?;
        partners::Entity::delete_by_id(id).exec(&txn).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Issues a new secret. Until the grace period ends, both sign every request, so a partner can
    /// switch without missing an event.
    pub async fn rotate_secret(
        &self,
        id: &PartnerId,
        input: RotateIn,
    ) -> Result<PartnerWithSecret> {
        let partner = find(&self.core.db, id).await?;
        not_builtin(&partner)?;
        let grace = match input.grace_seconds.map(std::time::Duration::from_secs) {
            Some(grace) if grace > MAX_SECRET_GRACE => {
                return Err(WebhookError::Invalid(vec![FieldError::new(
                    "grace_seconds",
                    format!("must be at most {} (7 days)", MAX_SECRET_GRACE.as_secs()),
                )]));
            }
            Some(grace) => grace,
            None => self.config.secret_grace,
        };
        let at = self.core.now();
        let secret = WebhookSecret::generate();
        let mut model = partners::ActiveModel::from(partner.clone());
        model.previous_secret = Set(Some(partner.secret));
        model.previous_secret_expires_at = Set(Some(after(at, grace)));
        model.secret = Set(secret.clone());
        model.updated_at = Set(at);
        let updated = model.update(&self.core.db).await?;
        Ok(PartnerWithSecret {
            partner: updated.into(),
            secret,
        })
    }
}

/// The secrets that sign a request at `at`: the current one, and the previous one during its
/// grace period.
pub fn signing_secrets(partner: &partners::Model, at: DateTime<Utc>) -> Vec<WebhookSecret> {
    let previous = partner.previous_secret.as_deref().filter(|_| {
        partner
            .previous_secret_expires_at
            .is_some_and(|until| at < until)
    });
    [Some(partner.secret.as_str()), previous]
        .into_iter()
        .flatten()
        .filter_map(|s| WebhookSecret::parse(s).ok())
        .collect()
}

/// Turns a partner off and records `partner.disabled`, in the caller's transaction.
pub async fn disable(
    outbox: &Outbox,
    txn: &sea_orm::DatabaseTransaction,
    partner: &partners::Model,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let res = partners::Entity::update_many()
        .col_expr(partners::Column::Active, false.into())
        .col_expr(
            partners::Column::DisabledReason,
            Some(reason.to_owned()).into(),
        )
        .col_expr(partners::Column::UpdatedAt, at.into())
        .filter(partners::Column::Id.eq(&partner.id))
        .filter(partners::Column::Active.eq(true))
        .exec(txn)
        .await?;
    if res.rows_affected == 0 {
        return Ok(());
    }
    // What was waiting for it will not be sent; `recover` brings it back.
    deliveries::Entity::update_many()
        .col_expr(deliveries::Column::Status, status::CANCELED.into())
        .col_expr(
            deliveries::Column::LastError,
            Some("the partner was disabled".to_owned()).into(),
        )
        .col_expr(
            deliveries::Column::LockedUntil,
            Option::<DateTime<Utc>>::None.into(),
        )
        .col_expr(deliveries::Column::UpdatedAt, at.into())
        .filter(deliveries::Column::PartnerId.eq(&partner.id))
        .filter(deliveries::Column::Status.eq(status::PENDING))
        .exec(txn)
        .await?;
    let current = partners::Entity::find_by_id(&partner.id)
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("partner {}", partner.id)))?;
    tracing::warn!(partner_id = %partner.id, reason, "partner disabled");
    let out = PartnerOut::from(current);
    outbox.record(txn, Event::PartnerDisabled(&out), at).await?;
    Ok(())
}

impl Partners {
    /// Makes the `N8N_WEBHOOK_URL` partner match the configuration at start.
    pub async fn sync_n8n(&self) -> Result<(), DbErr> {
        use secrecy::ExposeSecret;
        let at = self.core.now();
        let existing = partners::Entity::find_by_id(N8N_PARTNER_ID)
            .one(&self.core.db)
            .await?;
        match (&self.config.n8n, existing) {
            (Some(hook), existing) => {
                let model = partners::ActiveModel {
                    id: Set(N8N_PARTNER_ID.to_owned()),
                    name: Set("n8n".to_owned()),
                    url: Set(hook.url.to_string()),
                    event_types: Set(serde_json::json!(["*"])),
                    active: Set(true),
                    builtin: Set(true),
                    secret: Set(hook.secret.expose_secret().to_owned()),
                    previous_secret: Set(None),
                    previous_secret_expires_at: Set(None),
                    consecutive_failures: Set(0),
                    disabled_reason: Set(None),
                    failing_attempts: Set(0),
                    backoff_until: Set(None),
                    created_at: Set(existing.as_ref().map_or(at, |e| e.created_at)),
                    updated_at: Set(at),
                };
                if existing.is_some() {
                    model.update(&self.core.db).await?;
                } else {
                    model.insert(&self.core.db).await?;
                }
                if let Err(refusal) = self.guard.check_url(&hook.url).await {
                    tracing::warn!(%refusal, "N8N_WEBHOOK_URL is refused by the SSRF guard; allow it with WEBHOOK_ALLOWED_CIDRS");
                }
            }
            (None, Some(existing)) if existing.active => {
                let mut model = partners::ActiveModel::from(existing);
                model.active = Set(false);
                model.disabled_reason = Set(Some("N8N_WEBHOOK_URL is not set".to_owned()));
                model.updated_at = Set(at);
                model.update(&self.core.db).await?;
            }
            (None, _) => {}
        }
        Ok(())
    }
}
