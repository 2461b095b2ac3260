//! The mock provider: a hosted checkout page served by payment-ms itself, with Pay and Decline
//! buttons, so the whole redirect flow runs without a real provider. Its state lives in the
//! `mock_sessions` table, as a real provider's would live on its side, so any replica can
//! answer for it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use url::Url;

use super::{
    CheckoutRequest, CloseReason, PaymentProvider, ProviderCheckout, ProviderError, ProviderStatus,
};
use crate::db::now;
use crate::entities::{mock_sessions, payments};

pub const NAME: &str = "mock";

/// What the buyer did on the hosted page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuyerAction {
    Pay,
    Decline,
}

mod status {
    pub const OPEN: &str = "open";
    pub const PAID: &str = "paid";
    pub const DECLINED: &str = "declined";
    pub const CANCELED: &str = "canceled";
    pub const EXPIRED: &str = "expired";
}

pub const DECLINE_REASON: &str = "card_declined: the buyer pressed Decline on the mock checkout";

pub struct MockProvider {
    db: DatabaseConnection,
    public_base_url: Url,
}

impl MockProvider {
    pub fn new(db: DatabaseConnection, public_base_url: Url) -> Self {
        Self {
            db,
            public_base_url,
        }
    }

    fn to_status(session: &mock_sessions::Model) -> ProviderStatus {
        match session.status.as_str() {
            status::PAID => ProviderStatus::Succeeded,
            status::DECLINED => ProviderStatus::Failed {
                reason: DECLINE_REASON.to_owned(),
            },
            status::CANCELED => ProviderStatus::Canceled,
            status::EXPIRED => ProviderStatus::Expired,
            _ => ProviderStatus::Pending,
        }
    }

    async fn session(&self, payment_id: &str) -> Result<mock_sessions::Model, ProviderError> {
        mock_sessions::Entity::find()
            .filter(mock_sessions::Column::PaymentId.eq(payment_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| ProviderError::Unavailable(format!("no mock session for {payment_id}")))
    }

    /// Moves an open session to `to`; false when it was no longer open.
    async fn transition(&self, payment_id: &str, to: &str) -> Result<bool, ProviderError> {
        let res = mock_sessions::Entity::update_many()
            .col_expr(mock_sessions::Column::Status, to.into())
            .col_expr(mock_sessions::Column::UpdatedAt, now().into())
            .filter(mock_sessions::Column::PaymentId.eq(payment_id))
            .filter(mock_sessions::Column::Status.eq(status::OPEN))
            .exec(&self.db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// The buyer pressed Pay or Decline. Refused (false) unless the session is open and the
    /// payment has not reached its expiry time.
    pub async fn act(
        &self,
        payment: &payments::Model,
        action: BuyerAction,
        at: DateTime<Utc>,
    ) -> Result<bool, ProviderError> {
        if at >= payment.expires_at {
            return Ok(false);
        }
        let to = match action {
            BuyerAction::Pay => status::PAID,
            BuyerAction::Decline => status::DECLINED,
        };
        self.transition(&payment.id, to).await
    }
}

#[async_trait]
impl PaymentProvider for MockProvider {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn start_checkout(
        &self,
        request: &CheckoutRequest<'_>,
    ) -> Result<ProviderCheckout, ProviderError> {
        let at = now();
        let session = mock_sessions::ActiveModel {
            id: Set(shared::ids::new_id(shared::ids::MOCK_SESSION)),
            payment_id: Set(request.payment_id.to_owned()),
            status: Set(status::OPEN.to_owned()),
            amount: Set(request.amount),
            currency: Set(request.currency.to_owned()),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&self.db)
        .await?;
        let checkout_url = self
            .public_base_url
            .join(&format!("checkout/{}", request.payment_id))
            .map_err(|e| ProviderError::Unavailable(format!("bad PUBLIC_BASE_URL: {e}")))?;
        Ok(ProviderCheckout {
            reference: session.id,
            checkout_url: checkout_url.into(),
        })
    }

    async fn fetch_status(
        &self,
        payment: &payments::Model,
    ) -> Result<ProviderStatus, ProviderError> {
        Ok(Self::to_status(&self.session(&payment.id).await?))
    }

    async fn close(
        &self,
        payment: &payments::Model,
        reason: CloseReason,
    ) -> Result<ProviderStatus, ProviderError> {
        let to = match reason {
            CloseReason::Canceled => status::CANCELED,
            CloseReason::Expired => status::EXPIRED,
        };
        self.transition(&payment.id, to).await?;
        self.fetch_status(payment).await
    }
}
