//! The delivery log, for admins: a partner's or an event's deliveries and their attempts;
//! resending an event; recovering failures.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use shared::api::{AttemptOut, DeliveryOut, RecoverIn, RecoverOut, ResendIn};
use shared::{FieldError, ids};

use super::entities::{deliveries, delivery_attempts};
use super::fan_out::new_delivery;
use super::partners::{DeliveryId, ListQuery, PartnerId, Partners, Result, WebhookError, find};
use super::status;
use crate::events::entities::events;
use crate::platform::BeforeCommit;
use crate::platform::pagination::{Page, PageRequest};
use crate::platform::validate;

/// The public view of a delivery, with its event's type.
fn delivery_out(d: deliveries::Model, event_type: String) -> DeliveryOut {
    DeliveryOut {
        event_type,
        next_attempt_at: (d.status == status::PENDING).then_some(d.next_attempt_at),
        id: d.id,
        event_id: d.event_id,
        partner_id: d.partner_id,
        status: d.status,
        attempts: d.attempts,
        last_status_code: d.last_status_code,
        last_error: d.last_error,
        created_at: d.created_at,
        updated_at: d.updated_at,
        completed_at: d.completed_at,
        attempt_log: None,
    }
}

fn check_status(status: &Option<String>) -> Result<()> {
    match status {
        Some(s) if !status::ALL.contains(&s.as_str()) => {
            Err(WebhookError::Invalid(vec![FieldError::new(
                "status",
                format!("must be one of {}", status::ALL.join(", ")),
            )]))
        }
        _ => Ok(()),
    }
}

/// The type of one event.
async fn event_type_of(db: &DatabaseConnection, event_id: &str) -> Result<String> {
    Ok(events::Entity::find_by_id(event_id)
        .one(db)
        .await?
        .map(|e| e.event_type)
        .unwrap_or_default())
}

impl Partners {
    /// Deliveries, newest first: of one partner, of one event, or both.
    pub async fn list_deliveries(
        &self,
        partner_id: Option<&PartnerId>,
        query: ListQuery,
    ) -> Result<Page<DeliveryOut>> {
        if let Some(id) = partner_id {
            find(&self.core.db, id).await?;
        }
        check_status(&query.status)?;
        let mut errors = Vec::new();
        validate::query_id(
            &mut errors,
            "event_id",
            ids::EVENT,
            query.event_id.as_deref(),
        );
        validate::finish(errors).map_err(WebhookError::Invalid)?;
        let page = PageRequest::parse(query.limit, query.cursor.as_deref(), ids::DELIVERY)
            .map_err(WebhookError::Invalid)?;
        let mut select = deliveries::Entity::find();
        if let Some(id) = partner_id {
            select = select.filter(deliveries::Column::PartnerId.eq(id.as_str()));
        }
        if let Some(event_id) = &query.event_id {
            select = select.filter(deliveries::Column::EventId.eq(event_id));
        }
        if let Some(status) = &query.status {
            select = select.filter(deliveries::Column::Status.eq(status));
        }
        let rows = page
            .fetch(select, deliveries::Column::Id, &self.core.db)
            .await?;
        let event_ids: HashSet<&str> = rows.iter().map(|d| d.event_id.as_str()).collect();
        let types: HashMap<String, String> = if event_ids.is_empty() {
            HashMap::new()
        } else {
            events::Entity::find()
                .select_only()
                .column(events::Column::Id)
                .column(events::Column::EventType)
                .filter(events::Column::Id.is_in(event_ids))
                .into_tuple::<(String, String)>()
                .all(&self.core.db)
                .await?
                .into_iter()
                .collect()
        };
        Ok(page.page(
            rows,
            |d| &d.id,
            |d| {
                let event_type = types.get(&d.event_id).cloned().unwrap_or_default();
                delivery_out(d, event_type)
            },
        ))
    }

    /// One delivery with every attempt.
    pub async fn get_delivery(
        &self,
        partner_id: &PartnerId,
        delivery_id: &DeliveryId,
    ) -> Result<DeliveryOut> {
        let not_found = || WebhookError::NotFound(format!("delivery {delivery_id}"));
        let delivery_id = delivery_id.as_str();
        let delivery = deliveries::Entity::find_by_id(delivery_id)
            .one(&self.core.db)
            .await?
            .filter(|d| d.partner_id == partner_id.as_str())
            .ok_or_else(not_found)?;
        let attempts = delivery_attempts::Entity::find()
            .filter(delivery_attempts::Column::DeliveryId.eq(delivery_id))
            .order_by_asc(delivery_attempts::Column::Attempt)
            .all(&self.core.db)
            .await?;
        let event_type = event_type_of(&self.core.db, &delivery.event_id).await?;
        let mut out = delivery_out(delivery, event_type);
        out.attempt_log = Some(
            attempts
                .into_iter()
                .map(|a| AttemptOut {
                    attempt: a.attempt,
                    started_at: a.started_at,
                    latency_ms: a.latency_ms,
                    status_code: a.status_code,
                    response_excerpt: a.response_excerpt,
                    error: a.error,
                })
                .collect(),
        );
        Ok(out)
    }

    /// Sends one event to one partner again, as a new delivery with its own schedule.
    pub async fn resend(
        &self,
        partner_id: &PartnerId,
        input: ResendIn,
        then: &dyn BeforeCommit<DeliveryOut>,
    ) -> Result<DeliveryOut> {
        let partner = find(&self.core.db, partner_id).await?;
        if !partner.active {
            return Err(WebhookError::Disabled(
                "Enable the partner before resending to it",
            ));
        }
        if !ids::is_valid(ids::EVENT, &input.event_id) {
            return Err(WebhookError::Invalid(vec![FieldError::new(
                "event_id",
                "must be an event id: evt_ followed by 32 hex digits",
            )]));
        }
        let event = events::Entity::find_by_id(&input.event_id)
            .one(&self.core.db)
            .await?
            .ok_or_else(|| WebhookError::NotFound(format!("event {}", input.event_id)))?;
        let txn = self.core.begin().await?;
        let delivery = new_delivery(&input.event_id, partner_id.as_str(), self.core.now())
            .insert(&txn)
            .await?;
        let out = delivery_out(delivery, event.event_type);
        then.before_commit(&txn, &out).await?;
        txn.commit().await?;
        self.due.notify_one();
        Ok(out)
    }

    /// Puts every failed or canceled delivery of a partner since a time back in the queue, each
    /// with a fresh round of the retry schedule.
    pub async fn recover(&self, partner_id: &PartnerId, input: RecoverIn) -> Result<RecoverOut> {
        let partner = find(&self.core.db, partner_id).await?;
        if !partner.active {
            return Err(WebhookError::Disabled(
                "Enable the partner before recovering its deliveries",
            ));
        }
        let at = self.core.now();
        let txn = self.core.begin().await?;
        let res = deliveries::Entity::update_many()
            .col_expr(deliveries::Column::Status, status::PENDING.into())
            .col_expr(
                deliveries::Column::RoundStart,
                sea_orm::sea_query::Expr::col(deliveries::Column::Attempts),
            )
            .col_expr(deliveries::Column::NextAttemptAt, at.into())
            .col_expr(
                deliveries::Column::LockedUntil,
                Option::<DateTime<Utc>>::None.into(),
            )
            .col_expr(
                deliveries::Column::CompletedAt,
                Option::<DateTime<Utc>>::None.into(),
            )
            .col_expr(deliveries::Column::UnrecordedClaims, 0.into())
            .col_expr(deliveries::Column::UpdatedAt, at.into())
            .filter(deliveries::Column::PartnerId.eq(partner_id.as_str()))
            .filter(deliveries::Column::Status.is_in([status::FAILED, status::CANCELED]))
            .filter(deliveries::Column::CreatedAt.gte(input.since))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.due.notify_one();
        Ok(RecoverOut {
            recovered: res.rows_affected,
        })
    }
}
