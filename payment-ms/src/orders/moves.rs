//! Staff moving an order on (fulfillment, `requires_action`, a cancel) through the transition
//! table, and the history every move leaves.

use shared::FieldError;
use shared::api::OrderOut;
use shared::orders::{OrderHistoryOut, OrderTransitionIn};

use super::lifecycle::{By, actor_label};
use super::model::{OrderError, OrderId, OrderStatus};
use super::service::{Checkouts, CloseError, close_order, find_visible};
use super::store::{self, Transition};
use crate::platform::{Actor, Core, validate as check};

/// Moves an order on, as staff (a service or an admin): fulfillment (`processing`, `shipped`
/// with a carrier and tracking number, `delivered`, `completed`), `requires_action` with a
/// reason, back to `processing` once resolved, or `canceled` before payment. The transition
/// table decides; a move it does not have is a 409 naming where the order is.
pub async fn transition_order<C: Checkouts>(
    core: &Core,
    checkouts: &C,
    actor: &Actor,
    order_id: &OrderId,
    input: OrderTransitionIn,
) -> Result<OrderOut, CloseError<C::Error>> {
    let mut errors = Vec::new();
    let to = OrderStatus::parse(&input.status)
        .filter(|s| shared::orders::TRANSITION_TARGETS.contains(&s.as_str()));
    if to.is_none() {
        errors.push(FieldError::new(
            "status",
            shared::problem::one_of(shared::orders::TRANSITION_TARGETS),
        ));
    }
    for (field, value, max) in [
        ("reason", &input.reason, 500),
        ("carrier", &input.carrier, 255),
        ("tracking_number", &input.tracking_number, 255),
    ] {
        if let Some(value) = value {
            check::text(&mut errors, field, value, max);
        }
    }
    let shipment = match (&input.carrier, &input.tracking_number) {
        (Some(carrier), Some(tracking)) => Some((carrier.trim(), tracking.trim())),
        _ => None,
    };
    if to == Some(OrderStatus::Shipped) && shipment.is_none() {
        errors.push(FieldError::new(
            "tracking_number",
            "a shipment needs both carrier and tracking_number",
        ));
    }
    if to == Some(OrderStatus::RequiresAction) && input.reason.is_none() {
        errors.push(FieldError::new(
            "reason",
            "say what needs a person's action",
        ));
    }
    // No target is one of the errors.
    let (Some(to), true) = (to, errors.is_empty()) else {
        return Err(OrderError::Invalid(errors).into());
    };
    if !actor.is_trusted() {
        return Err(OrderError::Forbidden(
            "Moving an order on needs the service or admin role; an owner cancels with \
             POST /orders/{id}/cancel"
                .to_owned(),
        )
        .into());
    }
    let order = find_visible(core, actor, order_id).await?;
    let label = actor_label(Some(actor));
    let transition = Transition {
        to,
        by: By::Staff,
        actor: &label,
        reason: input.reason.as_deref().map(str::trim),
        shipment: shipment.filter(|_| to == OrderStatus::Shipped),
    };
    let refused = |from: OrderStatus| {
        let sources = super::lifecycle::sources(to, By::Staff);
        OrderError::NotMovable(format!(
            "The order is {from}; it can become {to} only from {}",
            sources
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    };
    if !super::lifecycle::allowed(order.status, to, By::Staff) {
        return Err(refused(order.status).into());
    }
    let (current, moved) = if to == OrderStatus::Canceled {
        close_order(core, checkouts, &order, transition).await?
    } else {
        let txn = core.begin().await?;
        let moved =
            store::move_order(&txn, &core.outbox, &order.id, transition, core.now()).await?;
        core.commit(txn).await?;
        moved
    };
    if !moved {
        return Err(refused(current.status).into());
    }
    Ok(store::load_out(&core.db, current).await?)
}

/// An order's history, oldest first: its creation, then each move (who, from, to, why, when).
pub async fn order_history(
    core: &Core,
    actor: &Actor,
    order_id: &OrderId,
) -> Result<Vec<OrderHistoryOut>, OrderError> {
    let order = find_visible(core, actor, order_id).await?;
    Ok(store::history_of(&core.db, &order.id)
        .await?
        .into_iter()
        .map(|row| OrderHistoryOut {
            from: row.from_status,
            to: row.to_status,
            actor: row.actor,
            reason: row.reason,
            at: row.at,
        })
        .collect())
}
