//! What each inbound event type does here. Every handler ends by recording the event in the
//! inbox in the transaction of its last effect, and answers the row it recorded (none:
//! another delivery of the same event recorded it first, so this one changed nothing).
//!
//! - `user.deleted`: the user's pending orders are canceled (their checkouts closed first) and
//!   their other pending payments canceled; succeeded payments are never touched. Each of
//!   these moves only from `pending`, so a second delivery finds nothing left to move.
//! - `order.created` (from an external order service): the order is created here from the
//!   event's items, with the sender's order id as its `reference`, in the inbox row's
//!   transaction: exactly once.
//! - `wallet.insufficient_funds`, `wallet.balance_changed`, `user.upgraded`: billing acts
//!   (pause, charge failed invoices again, change plan; see `billing::inbound`).
//! - `subscription.usage_exceeded`: checked and recorded (`recorded`) for usage billing.
//! - any other type: recorded as `ignored`.

use std::sync::OnceLock;

use async_trait::async_trait;
use sea_orm::DatabaseTransaction;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use shared::FieldError;
use shared::api::{CreateOrderIn, OrderItemIn, OrderOut};

use super::entities::inbox;
use super::envelope::InboundEvent;
use super::service::{Door, Inbox, InboxError, Outcome, entry};
use super::store;
use crate::accounts;
use crate::billing::{self, model::BillingError};
use crate::orders::model::OrderError;
use crate::orders::service::{self as orders, CloseError};
use crate::payments::model::PaymentError;
use crate::platform::{Actor, BeforeCommit, Fault};

/// The row this call recorded, if it was this one.
type Recorded = Option<inbox::Model>;

/// What usage events are kept as until usage billing acts on them.
const FOR_BILLING: &str = "recorded for usage billing, which acts on it";

pub async fn handle(
    inbox: &Inbox,
    event: &InboundEvent,
    door: Door,
) -> Result<Recorded, InboxError> {
    let (outcome, detail) = match event.event_type.as_str() {
        "user.deleted" => return user_deleted(inbox, event, door).await,
        "order.created" => return order_created(inbox, event, door).await,
        "wallet.insufficient_funds" => {
            let UserData {
                user_id: NonEmpty(user_id),
            } = data(event)?;
            let n = billing::inbound::insufficient_funds(&inbox.billing, &user_id)
                .await
                .map_err(billing_error)?;
            let detail = format!("paused {n} subscription{} of user {user_id}", plural(n));
            (Outcome::Applied, detail)
        }
        "user.upgraded" => {
            let UpgradedData {
                user_id: NonEmpty(user_id),
                plan_code: NonEmpty(plan_code),
            } = data(event)?;
            let n = billing::inbound::user_upgraded(&inbox.billing, &user_id, &plan_code)
                .await
                .map_err(billing_error)?;
            let detail = format!(
                "moved {n} subscription{} of user {user_id} to plan {plan_code}",
                plural(n)
            );
            (Outcome::Applied, detail)
        }
        "wallet.balance_changed" => {
            let BalanceData {
                user_id: NonEmpty(user_id),
                currency: NonEmpty(currency),
                ..
            } = data(event)?;
            let n = billing::inbound::balance_changed(&inbox.billing, &user_id, &currency)
                .await
                .map_err(billing_error)?;
            let detail = format!(
                "charging {n} failed invoice{} of user {user_id} again",
                plural(n)
            );
            (Outcome::Applied, detail)
        }
        "subscription.usage_exceeded" => for_billing::<SubscriptionData>(event)?,
        _ => {
            metrics::counter!("inbox_unknown_types_total").increment(1);
            (Outcome::Ignored, "no handler for this type".to_owned())
        }
    };
    record_alone(inbox, event, door, outcome, detail).await
}

#[derive(Deserialize)]
struct UserData {
    user_id: NonEmpty,
}

#[derive(Deserialize)]
struct UpgradedData {
    user_id: NonEmpty,
    plan_code: NonEmpty,
}

#[derive(Deserialize)]
struct BalanceData {
    user_id: NonEmpty,
    currency: NonEmpty,
    /// Checked (an integer of minor units); a top-up of any size triggers the retry.
    #[allow(dead_code)]
    balance: i64,
}

#[derive(Deserialize)]
#[allow(dead_code)] // checked, kept for billing
struct SubscriptionData {
    subscription_id: NonEmpty,
}

#[derive(Deserialize)]
struct OrderCreatedData {
    order_id: NonEmpty,
    user_id: NonEmpty,
    currency: String,
    items: Vec<OrderItemIn>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    discount: Option<i64>,
    #[serde(default)]
    shipping: Option<i64>,
    #[serde(default)]
    shipping_address: Option<shared::orders::Address>,
    #[serde(default)]
    billing_address: Option<shared::orders::Address>,
}

/// A string with something in it.
#[derive(Deserialize)]
#[serde(try_from = "String")]
struct NonEmpty(String);

impl TryFrom<String> for NonEmpty {
    type Error = &'static str;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        if s.trim().is_empty() || s.chars().count() > 255 {
            Err("must be a string of 1 to 255 characters")
        } else {
            Ok(NonEmpty(s.trim().to_owned()))
        }
    }
}

/// The event's `data` as `T`, or a 422's field error.
fn data<T: DeserializeOwned>(event: &InboundEvent) -> Result<T, InboxError> {
    T::deserialize(&event.data).map_err(|e| {
        InboxError::Invalid(vec![FieldError::new(
            "data",
            format!("does not fit {}: {e}", event.event_type),
        )])
    })
}

/// Billing's events: their data checked, kept for billing.
fn for_billing<T: DeserializeOwned>(event: &InboundEvent) -> Result<(Outcome, String), InboxError> {
    data::<T>(event)?;
    Ok((Outcome::Recorded, FOR_BILLING.to_owned()))
}

/// Records the event, handled with `outcome`, in a transaction of its own.
async fn record_alone(
    inbox: &Inbox,
    event: &InboundEvent,
    door: Door,
    outcome: Outcome,
    detail: String,
) -> Result<Recorded, InboxError> {
    let row = entry(event, door, outcome, detail, inbox.core.now());
    let txn = inbox.core.begin().await?;
    let recorded = store::record(&txn, &row).await?;
    inbox.core.commit(txn).await?;
    Ok(recorded.then_some(row))
}

async fn user_deleted(
    inbox: &Inbox,
    event: &InboundEvent,
    door: Door,
) -> Result<Recorded, InboxError> {
    let UserData {
        user_id: NonEmpty(user_id),
    } = data(event)?;
    // First, so that no order is made for the user from now on; then what is pending goes.
    let txn = inbox.core.begin().await?;
    accounts::store::mark_deleted(&txn, &user_id, &event.id, inbox.core.now()).await?;
    inbox.core.commit(txn).await?;
    let orders = orders::cancel_pending_of_user(&inbox.core, &inbox.payments, &user_id)
        .await
        .map_err(|e| match e {
            CloseError::Order(e) => order_error(e),
            CloseError::Checkouts(e) => payment_error(e),
        })?;
    let payments = inbox
        .payments
        .cancel_pending_of_user(&user_id)
        .await
        .map_err(payment_error)?;
    let subscriptions = billing::inbound::user_deleted(&inbox.billing, &user_id)
        .await
        .map_err(billing_error)?;
    let detail = format!(
        "canceled {orders} pending order{}, {payments} other pending payment{} and \
         {subscriptions} subscription{} of user {user_id}",
        plural(orders),
        plural(payments),
        plural(subscriptions)
    );
    record_alone(inbox, event, door, Outcome::Applied, detail).await
}

async fn order_created(
    inbox: &Inbox,
    event: &InboundEvent,
    door: Door,
) -> Result<Recorded, InboxError> {
    let order: OrderCreatedData = data(event)?;
    let input = CreateOrderIn {
        user_id: Some(order.user_id.0),
        items: order.items,
        currency: order.currency,
        reference: Some(order.order_id.0),
        metadata: order.metadata,
        discount: order.discount,
        shipping: order.shipping,
        shipping_address: order.shipping_address,
        billing_address: order.billing_address,
    };
    let then = RecordWith {
        event,
        door,
        at: inbox.core.now(),
        recorded: OnceLock::new(),
    };
    // Another service's order: trusted, as its caller would be through the API.
    let service = Actor {
        user_id: event.source.clone(),
        roles: vec![shared::internal::Role::Service],
    };
    let created = orders::create_order(
        &inbox.core,
        inbox.accounts.as_ref(),
        inbox.order_ttl,
        &service,
        input,
        &then,
    )
    .await;
    match created {
        Ok(_) => Ok(then.recorded.into_inner()),
        // Another delivery recorded the event between our look and our commit: its order
        // stands, ours was rolled back.
        Err(OrderError::Fault(Fault::Superseded)) => Ok(None),
        Err(OrderError::Invalid(errors)) => Err(InboxError::Invalid(
            errors
                .into_iter()
                .map(|e| FieldError::new(format!("data.{}", e.field), e.message))
                .collect(),
        )),
        Err(e) => Err(order_error(e)),
    }
}

/// Records the event in the order's transaction; a row already there rolls the order back.
struct RecordWith<'a> {
    event: &'a InboundEvent,
    door: Door,
    at: chrono::DateTime<chrono::Utc>,
    /// The row, once recorded.
    recorded: OnceLock<inbox::Model>,
}

#[async_trait]
impl BeforeCommit<OrderOut> for RecordWith<'_> {
    async fn before_commit(
        &self,
        txn: &DatabaseTransaction,
        order: &OrderOut,
    ) -> Result<(), Fault> {
        let detail = format!("created order {}", order.id);
        let row = entry(self.event, self.door, Outcome::Applied, detail, self.at);
        if !store::record(txn, &row).await? {
            return Err(Fault::Superseded);
        }
        // A transaction's before-commit work runs once.
        let _ = self.recorded.set(row);
        Ok(())
    }
}

fn order_error(e: OrderError) -> InboxError {
    match e {
        OrderError::Fault(f) => InboxError::Fault(f),
        OrderError::Invalid(errors) => InboxError::Invalid(errors),
        OrderError::Unavailable(why) => InboxError::Unavailable(why),
        other => InboxError::Fault(Fault::Internal(anyhow::anyhow!(other.to_string()))),
    }
}

fn billing_error(e: BillingError) -> InboxError {
    match e {
        BillingError::Fault(f) => InboxError::Fault(f),
        BillingError::Invalid(errors) => InboxError::Invalid(errors),
        other => InboxError::Fault(Fault::Internal(anyhow::anyhow!(other.to_string()))),
    }
}

fn payment_error(e: PaymentError) -> InboxError {
    match e {
        PaymentError::Fault(f) => InboxError::Fault(f),
        PaymentError::Provider(e) => InboxError::Unavailable(format!("payment provider: {e}")),
        other => InboxError::Fault(Fault::Internal(anyhow::anyhow!(other.to_string()))),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
