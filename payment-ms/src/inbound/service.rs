//! Inbound provider webhooks (`POST /providers/{provider}/webhook`): public, authenticated by
//! the provider's signature instead of the internal token.
//!
//! A verified event is a trigger: the payment it names is refreshed from the provider (or its
//! refunds reconciled), through the same conditional updates as verify. So whichever of the
//! webhook and the buyer's verify comes first records the change and its events, once; a late,
//! repeated or out-of-order event cannot move a payment backwards. An event is claimed before it
//! is handled: a copy arriving while the first is handled is answered 409 (the provider retries
//! it later) rather than asking the provider a second time, and a replay of a handled event is
//! answered 200 without doing anything. A claim whose handler died is taken over after
//! [`CLAIM_TIMEOUT`]; one whose handling failed is given up, so the provider's retry is handled
//! in full.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, Set};
use serde::Serialize;

use super::entities::provider_events;
use crate::payments::entities::payments;
use crate::payments::model::{PaymentError, PaymentStatus};
use crate::payments::service::Payments;
use crate::platform::{Core, Fault};
use crate::providers::{InboundError, Providers, Subject};
use crate::refunds::model::RefundError;
use crate::refunds::service::Refunds;

/// Inbound provider webhooks, with what handling them needs.
#[derive(Clone)]
pub struct Inbound {
    pub core: Core,
    pub providers: Providers,
    pub payments: Payments,
    pub refunds: Refunds,
}

/// Why a provider's webhook was not taken.
#[derive(Debug, thiserror::Error)]
pub enum InboundFailure {
    #[error("no provider {0}")]
    UnknownProvider(String),
    /// The provider refused it as its own (signature, body, or no webhooks configured).
    #[error(transparent)]
    Refused(InboundError),
    /// A copy of the event is being handled.
    #[error("a copy of this event is being handled")]
    InProgress,
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Refund(#[from] RefundError),
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<DbErr> for InboundFailure {
    fn from(e: DbErr) -> Self {
        InboundFailure::Fault(e.into())
    }
}

type Result<T, E = InboundFailure> = std::result::Result<T, E>;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Receipt {
    pub received: bool,
    /// The event was handled before; nothing was done.
    pub duplicate: bool,
}

impl Inbound {
    pub async fn receive(
        &self,
        provider_name: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Receipt> {
        let provider = self
            .providers
            .get(provider_name)
            .ok_or_else(|| InboundFailure::UnknownProvider(provider_name.to_owned()))?;
        let event = provider
            .parse_webhook(headers, body, self.core.now())
            .map_err(|e| {
                if let InboundError::Signature(reason) = &e {
                    tracing::warn!(provider = provider_name, %reason, "refused a provider webhook");
                }
                InboundFailure::Refused(e)
            })?;
        let claimed_at = match self
            .claim(provider_name, &event.id, &event.event_type)
            .await?
        {
            Claim::Taken(at) => at,
            Claim::Handled => {
                return Ok(Receipt {
                    received: true,
                    duplicate: true,
                });
            }
            Claim::InProgress => {
                return Err(InboundFailure::InProgress);
            }
        };
        if let Err(e) = self.handle(provider_name, &event).await {
            // Given up, so the provider's retry is handled in full.
            let released = our_claim(
                provider_events::Entity::delete_many(),
                provider_name,
                &event.id,
                claimed_at,
            )
            .filter(provider_events::Column::State.eq(HANDLING))
            .exec(&self.core.db)
            .await;
            if let Err(release) = released {
                tracing::warn!(error = %release, event_id = %event.id, "could not release a provider event's claim; it is taken over later");
            }
            return Err(e);
        }
        our_claim(
            provider_events::Entity::update_many(),
            provider_name,
            &event.id,
            claimed_at,
        )
        .col_expr(provider_events::Column::State, HANDLED.into())
        .exec(&self.core.db)
        .await?;
        tracing::info!(provider = provider_name, event_id = %event.id, event_type = %event.event_type,
            "provider webhook handled");
        Ok(Receipt {
            received: true,
            duplicate: false,
        })
    }

    /// Claims an event for handling: the first request inserts its row, and a later one finds it
    /// handled, in progress, or abandoned (then takes it over).
    async fn claim(&self, provider_name: &str, event_id: &str, event_type: &str) -> Result<Claim> {
        let at = self.core.now();
        let inserted = provider_events::Entity::insert(provider_events::ActiveModel {
            provider: Set(provider_name.to_owned()),
            event_id: Set(event_id.to_owned()),
            event_type: Set(event_type.chars().take(100).collect()),
            received_at: Set(at),
            state: Set(HANDLING.to_owned()),
        })
        .on_conflict(
            OnConflict::columns([
                provider_events::Column::Provider,
                provider_events::Column::EventId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&self.core.db)
        .await?;
        if inserted == 1 {
            return Ok(Claim::Taken(at));
        }
        let Some(existing) =
            provider_events::Entity::find_by_id((provider_name.to_owned(), event_id.to_owned()))
                .one(&self.core.db)
                .await?
        else {
            // Its handling failed and was given up just now: the sender's retry comes later.
            return Ok(Claim::InProgress);
        };
        if existing.state == HANDLED {
            return Ok(Claim::Handled);
        }
        if crate::platform::db::after(existing.received_at, CLAIM_TIMEOUT) > at {
            return Ok(Claim::InProgress);
        }
        let taken = our_claim(
            provider_events::Entity::update_many(),
            provider_name,
            event_id,
            existing.received_at,
        )
        .col_expr(provider_events::Column::ReceivedAt, at.into())
        .filter(provider_events::Column::State.eq(HANDLING))
        .exec(&self.core.db)
        .await?;
        Ok(if taken.rows_affected == 1 {
            Claim::Taken(at)
        } else {
            Claim::InProgress
        })
    }

    /// What a verified event asks for: the payment it names refreshed from the provider, or its
    /// refunds reconciled.
    async fn handle(
        &self,
        provider_name: &str,
        event: &crate::providers::InboundEvent,
    ) -> Result<()> {
        match &event.subject {
            None => {}
            Some(Subject::Payment {
                payment_id,
                reference,
            }) => {
                if let Some(payment) = self
                    .find(provider_name, payment_id.as_deref(), reference)
                    .await?
                {
                    if payment.status == PaymentStatus::Pending {
                        self.payments.refresh(&payment, self.core.now()).await?;
                    }
                } else {
                    tracing::info!(event_id = %event.id, %reference, "provider event for no payment of ours");
                }
            }
            Some(Subject::Refunds {
                payment_id,
                payment_reference,
            }) => {
                if let Some(payment) = self
                    .find(provider_name, payment_id.as_deref(), payment_reference)
                    .await?
                {
                    self.refunds.sync(&payment, self.core.now()).await?;
                }
            }
        }
        Ok(())
    }

    /// Our payment named by an event: by our id (from the metadata we gave the provider), or by
    /// the provider's references.
    async fn find(
        &self,
        provider_name: &str,
        payment_id: Option<&str>,
        reference: &str,
    ) -> Result<Option<payments::Model>> {
        let by_reference = Condition::any()
            .add(payments::Column::ProviderReference.eq(reference))
            .add(payments::Column::ProviderPaymentReference.eq(reference));
        let mut condition = Condition::any().add(by_reference);
        if let Some(id) = payment_id.filter(|id| shared::ids::is_valid(shared::ids::PAYMENT, id)) {
            condition = condition.add(payments::Column::Id.eq(id));
        }
        Ok(payments::Entity::find()
            .filter(payments::Column::Provider.eq(provider_name))
            .filter(condition)
            .one(&self.core.db)
            .await?)
    }
}

const HANDLING: &str = "handling";
const HANDLED: &str = "handled";

/// How long a claim on an event protects it; then its handler is taken to have died.
pub const CLAIM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

enum Claim {
    /// Ours to handle; the claim's time.
    Taken(DateTime<Utc>),
    Handled,
    InProgress,
}

/// `query` narrowed to the row of `event_id` as claimed at `at` (a claim taken over since is
/// another's).
fn our_claim<Q: QueryFilter>(query: Q, provider: &str, event_id: &str, at: DateTime<Utc>) -> Q {
    query
        .filter(provider_events::Column::Provider.eq(provider))
        .filter(provider_events::Column::EventId.eq(event_id))
        .filter(provider_events::Column::ReceivedAt.eq(at))
}

/// Providers stop retrying an event after days (Stripe: 3); its id need not be kept longer.
pub async fn forget_old_events(
    db: &sea_orm::DatabaseConnection,
    at: DateTime<Utc>,
) -> Result<(), sea_orm::DbErr> {
    provider_events::Entity::delete_many()
        .filter(provider_events::Column::ReceivedAt.lt(at - chrono::Duration::days(30)))
        .exec(db)
        .await?;
    Ok(())
}
