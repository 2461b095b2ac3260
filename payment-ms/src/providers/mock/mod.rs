//! The mock provider: a hosted checkout page served by payment-ms itself, with Pay and Decline
//! buttons, so the whole redirect flow runs without a real provider. Its state lives in the
//! `mock_sessions` table, as a real provider's would live on its side, so any replica can
//! answer for it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};
use url::Url;

use super::{
    CheckoutRequest, CloseReason, PaymentProvider, PaymentRef, ProviderCheckout, ProviderError,
    ProviderRefund, ProviderState, ProviderStatus, RefundRequest, RefundStatus,
};
use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::Clock;
use crate::platform::db::{begin_write, find_each};
use crate::{providers::mock::entities::mock_refunds, providers::mock::entities::mock_sessions};

pub const NAME: &str = "mock";

/// What the buyer did on the hosted page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuyerAction {
    Pay,
    Decline,
}

pub mod entities;
pub mod page;

mod status {
    pub const OPEN: &str = "open";
    pub const PAID: &str = "paid";
    pub const DECLINED: &str = "declined";
    pub const CANCELED: &str = "canceled";
    pub const EXPIRED: &str = "expired";
}

pub const DECLINE_REASON: &str = "card_declined: the buyer pressed Decline on the mock checkout";
/// The mock's saved payment method that always pays.
pub const SAVED_OK: &str = "pm_mock_ok";
/// The mock's saved payment method that is always declined.
pub const SAVED_DECLINED: &str = "pm_mock_declined";
pub const SAVED_DECLINE_REASON: &str = "card_declined: the saved payment method was declined";

pub struct MockProvider {
    db: DatabaseConnection,
    public_base_url: Url,
    clock: Arc<dyn Clock>,
}

impl MockProvider {
    pub fn new(db: DatabaseConnection, public_base_url: Url, clock: Arc<dyn Clock>) -> Self {
        Self {
            db,
            public_base_url,
            clock,
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
            .col_expr(mock_sessions::Column::UpdatedAt, self.clock.now().into())
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
        payment: PaymentRef<'_>,
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
        self.transition(payment.id, to).await
    }
}

impl MockProvider {
    /// Starts `requests`' checkouts: each one's answer, or an error of them all (the database).
    async fn start_all(
        &self,
        requests: &[CheckoutRequest<'_>],
    ) -> Result<Vec<Result<ProviderCheckout, ProviderError>>, ProviderError> {
        // The same payment again (a rerun after a crash): as Stripe with the same idempotency
        // key, the session made the first time, as it stands; nothing is charged twice.
        let mut made: HashMap<String, mock_sessions::Model> = HashMap::new();
        let ids: Vec<&str> = requests.iter().map(|r| r.payment_id).collect();
        let column = mock_sessions::Column::PaymentId;
        let found = find_each::<mock_sessions::Entity, _>(&self.db, column, &ids, false).await?;
        made.extend(found.into_iter().map(|s| (s.payment_id.clone(), s)));
        let at = self.clock.now();
        let mut answers = Vec::with_capacity(requests.len());
        let mut new = Vec::new();
        for request in requests {
            // Two saved payment methods, as Stripe's test cards: one that pays, one declined.
            let (session_status, state) = match request.payment_method {
                None => (status::OPEN, ProviderStatus::Pending),
                Some(SAVED_OK) => (status::PAID, ProviderStatus::Succeeded),
                Some(SAVED_DECLINED) => (
                    status::DECLINED,
                    ProviderStatus::Failed {
                        reason: SAVED_DECLINE_REASON.to_owned(),
                    },
                ),
                Some(_) => {
                    answers.push(Err(ProviderError::Rejected {
                        code: "resource_missing".to_owned(),
                        message: format!(
                            "the mock provider's saved payment methods are {SAVED_OK} and {SAVED_DECLINED}"
                        ),
                    }));
                    continue;
                }
            };
            let checkout_url = self
                .public_base_url
                .join(&format!("checkout/{}", request.payment_id))
                .map_err(|e| ProviderError::Unavailable(format!("bad PUBLIC_BASE_URL: {e}")))?;
            let checkout_url = (request.payment_method.is_none()).then(|| checkout_url.into());
            if let Some(made) = made.get(request.payment_id) {
                answers.push(Ok(ProviderCheckout {
                    state: Self::to_status(made).into(),
                    reference: Some(made.id.clone()),
                    checkout_url,
                }));
                continue;
            }
            let session = mock_sessions::Model {
                id: shared::ids::new_id(shared::ids::MOCK_SESSION),
                payment_id: request.payment_id.to_owned(),
                status: session_status.to_owned(),
                amount: request.amount,
                currency: request.currency.to_owned(),
                amount_refunded: 0,
                created_at: at,
                updated_at: at,
            };
            answers.push(Ok(ProviderCheckout {
                reference: Some(session.id.clone()),
                checkout_url,
                state: state.into(),
            }));
            new.push(session);
        }
        for chunk in new.chunks(500) {
            mock_sessions::Entity::insert_many(
                chunk
                    .iter()
                    .cloned()
                    .map(sea_orm::IntoActiveModel::into_active_model),
            )
            .exec_without_returning(&self.db)
            .await?;
        }
        Ok(answers)
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
        self.start_checkouts(std::slice::from_ref(request))
            .await
            .pop()
            .unwrap_or_else(|| Err(ProviderError::Unavailable("no checkout started".to_owned())))
    }

    /// One read of the sessions made already and one insert of the new ones, whatever their
    /// number.
    async fn start_checkouts(
        &self,
        requests: &[CheckoutRequest<'_>],
    ) -> Vec<Result<ProviderCheckout, ProviderError>> {
        match self.start_all(requests).await {
            Ok(started) => started,
            Err(e) => {
                let why = e.to_string();
                let failed = || Err(ProviderError::Unavailable(why.clone()));
                requests.iter().map(|_| failed()).collect()
            }
        }
    }

    async fn fetch_status(&self, payment: PaymentRef<'_>) -> Result<ProviderState, ProviderError> {
        Ok(Self::to_status(&self.session(payment.id).await?).into())
    }

    async fn close(
        &self,
        payment: PaymentRef<'_>,
        reason: CloseReason,
    ) -> Result<ProviderState, ProviderError> {
        let to = match reason {
            CloseReason::Canceled => status::CANCELED,
            CloseReason::Expired => status::EXPIRED,
        };
        self.transition(payment.id, to).await?;
        self.fetch_status(payment).await
    }

    /// Refunds from the session's paid amount, as a real provider would: never more than was
    /// paid, and once per refund id.
    async fn refund(&self, request: &RefundRequest<'_>) -> Result<ProviderRefund, ProviderError> {
        let payment_id = request.payment.id;
        let txn = begin_write(&self.db).await?;
        let inserted = mock_refunds::Entity::insert(mock_refunds::ActiveModel {
            id: Set(request.refund_id.to_owned()),
            payment_id: Set(payment_id.to_owned()),
            amount: Set(request.amount),
            created_at: Set(self.clock.now()),
        })
        .on_conflict(
            OnConflict::column(mock_refunds::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 1 {
            let res = mock_sessions::Entity::update_many()
                .col_expr(
                    mock_sessions::Column::AmountRefunded,
                    Expr::col(mock_sessions::Column::AmountRefunded).add(request.amount),
                )
                .col_expr(mock_sessions::Column::UpdatedAt, self.clock.now().into())
                .filter(mock_sessions::Column::PaymentId.eq(payment_id))
                .filter(mock_sessions::Column::Status.eq(status::PAID))
                .filter(
                    Expr::col(mock_sessions::Column::AmountRefunded)
                        .add(request.amount)
                        .lte(Expr::col(mock_sessions::Column::Amount)),
                )
                .exec(&txn)
                .await?;
            if res.rows_affected != 1 {
                return Err(ProviderError::Rejected {
                    code: "amount_too_large".to_owned(),
                    message: format!(
                        "payment {payment_id} is not paid, or has less than {} left to refund",
                        request.amount
                    ),
                });
            }
        }
        let refund = mock_refunds::Entity::find_by_id(request.refund_id)
            .one(&txn)
            .await?
            .ok_or_else(|| ProviderError::Unavailable("mock refund vanished".to_owned()))?;
        txn.commit().await?;
        Ok(Self::to_refund(refund))
    }

    async fn list_refunds(
        &self,
        payment: PaymentRef<'_>,
    ) -> Result<Vec<ProviderRefund>, ProviderError> {
        Ok(mock_refunds::Entity::find()
            .filter(mock_refunds::Column::PaymentId.eq(payment.id))
            .order_by_asc(mock_refunds::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(Self::to_refund)
            .collect())
    }
}

impl MockProvider {
    fn to_refund(refund: mock_refunds::Model) -> ProviderRefund {
        ProviderRefund {
            reference: format!("mock_{}", refund.id),
            amount: refund.amount,
            status: RefundStatus::Succeeded,
            refund_id: Some(refund.id),
        }
    }
}
