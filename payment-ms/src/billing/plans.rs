//! Plans: created and archived by a trusted caller, listed by anyone authenticated. A version
//! is never edited: the same `code` again makes the next version, and the subscriptions on an
//! older one keep it.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::Deserialize;
use shared::billing::{PlanIn, PlanOut};
use shared::money::{Currency, MAX_AMOUNT};
use shared::{FieldError, ids};

use super::entities::plans;
use super::model::{BillingError, PlanId, PlanStatus, plan_out};
use super::periods::{Interval, MAX_INTERVAL_COUNT};
use crate::platform::db::is_unique_violation;
use crate::platform::pagination::{Page, PageRequest};
use crate::platform::{Actor, Core, validate};

const MAX_TRIAL_DAYS: i64 = 730;

fn is_code(code: &str) -> bool {
    let bytes = code.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes[0].is_ascii_alphanumeric()
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-')
        })
}

/// Validates a plan; every error names its field.
fn validate(input: &PlanIn) -> Result<(Currency, Interval, i32, i32), Vec<FieldError>> {
    let mut errors = Vec::new();
    if !is_code(&input.code) {
        errors.push(FieldError::new(
            "code",
            "must be 1 to 64 lower-case letters, digits, `_`, `.` or `-`, starting with a letter or digit",
        ));
    }
    validate::text(&mut errors, "name", &input.name, 255);
    if let Some(tier) = &input.tier {
        validate::text(&mut errors, "tier", tier, 64);
    }
    validate::metadata(&mut errors, &input.metadata);
    let currency = Currency::accept(&input.currency)
        .map_err(|refusal| errors.push(FieldError::new("currency", refusal)))
        .ok();
    let interval = Interval::parse(&input.interval);
    if interval.is_none() {
        errors.push(FieldError::new(
            "interval",
            shared::problem::one_of(shared::billing::INTERVALS),
        ));
    }
    let count = input.interval_count.unwrap_or(1);
    let max_count = interval
        .and_then(|i| MAX_INTERVAL_COUNT.iter().find(|(unit, _)| *unit == i))
        .map_or(1, |(_, max)| i64::from(*max));
    if !(1..=max_count).contains(&count) {
        errors.push(FieldError::new(
            "interval_count",
            format!("must be between 1 and {max_count} for this interval (at most 3 years)"),
        ));
    }
    if !(0..=MAX_AMOUNT).contains(&input.amount) {
        errors.push(FieldError::new(
            "amount",
            format!("must be between 0 and {MAX_AMOUNT} minor units"),
        ));
    }
    let trial = input.trial_days.unwrap_or(0);
    if !(0..=MAX_TRIAL_DAYS).contains(&trial) {
        errors.push(FieldError::new(
            "trial_days",
            format!("must be between 0 and {MAX_TRIAL_DAYS}"),
        ));
    }
    match (currency, interval, errors.is_empty()) {
        (Some(currency), Some(interval), true) => {
            Ok((currency, interval, count as i32, trial as i32))
        }
        _ => Err(errors),
    }
}

/// Creates the plan, or the next version of the plan with this code.
pub async fn create_plan(
    core: &Core,
    actor: &Actor,
    input: PlanIn,
) -> Result<PlanOut, BillingError> {
    if !actor.is_trusted() {
        return Err(BillingError::Forbidden(
            "Creating a plan needs the service or admin role".to_owned(),
        ));
    }
    let (currency, interval, interval_count, trial_days) =
        validate(&input).map_err(BillingError::Invalid)?;
    // Two versions of one code created at once: the unique (code, version) index lets one
    // win; the other takes the next number.
    for _ in 0..3 {
        let latest = plans::Entity::find()
            .filter(plans::Column::Code.eq(&input.code))
            .order_by_desc(plans::Column::Version)
            .limit(1)
            .one(&core.db)
            .await?;
        let plan = plans::Model {
            id: ids::new_id(ids::PLAN),
            code: input.code.clone(),
            version: latest.map_or(1, |p| p.version + 1),
            name: input.name.trim().to_owned(),
            tier: input.tier.clone(),
            currency: currency.code(),
            interval: interval.as_str().to_owned(),
            interval_count,
            amount: input.amount,
            trial_days,
            status: PlanStatus::Active,
            metadata: input
                .metadata
                .clone()
                .unwrap_or_else(|| serde_json::json!({})),
            created_at: core.now(),
            archived_at: None,
        };
        match plans::Entity::insert(plan.clone().into_active_model())
            .exec_without_returning(&core.db)
            .await
        {
            Ok(_) => return Ok(plan_out(plan)),
            Err(e) if is_unique_violation(&e) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(BillingError::Conflict(
        "plan_version_conflict",
        "Versions of this plan are being created at the same time; try again".to_owned(),
    ))
}

/// A plan by id, whatever its status.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<plans::Model>, BillingError> {
    Ok(plans::Entity::find_by_id(id).one(db).await?)
}

/// What a subscriber names: a plan id (that version, if active) or a code (its newest active
/// version).
pub async fn resolve<C: ConnectionTrait>(
    db: &C,
    field: &str,
    plan: &str,
) -> Result<plans::Model, BillingError> {
    let found = if let Some(id) = PlanId::parse(plan) {
        plans::Entity::find_by_id(id.as_str()).one(db).await?
    } else {
        plans::Entity::find()
            .filter(plans::Column::Code.eq(plan))
            .filter(plans::Column::Status.eq(PlanStatus::Active))
            .order_by_desc(plans::Column::Version)
            .limit(1)
            .one(db)
            .await?
    };
    match found {
        Some(p) if p.status == PlanStatus::Active => Ok(p),
        Some(_) => Err(BillingError::invalid(field, "this plan is archived")),
        None => Err(BillingError::invalid(field, "no such plan")),
    }
}

pub async fn get_plan(core: &Core, id: &str) -> Result<PlanOut, BillingError> {
    let id = PlanId::parse(id).ok_or_else(|| BillingError::NotFound(format!("plan {id}")))?;
    find(&core.db, id.as_str())
        .await?
        .map(plan_out)
        .ok_or_else(|| BillingError::NotFound(format!("plan {id}")))
}

#[derive(Debug, Deserialize)]
pub struct ListPlansQuery {
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    pub code: Option<String>,
    /// `active` (default) or `archived` (trusted callers only).
    pub status: Option<String>,
}

pub async fn list_plans(
    core: &Core,
    actor: &Actor,
    query: ListPlansQuery,
) -> Result<Page<PlanOut>, BillingError> {
    let mut errors = Vec::new();
    validate::query_text(&mut errors, "code", query.code.as_deref());
    let status = match query.status.as_deref() {
        None | Some("active") => PlanStatus::Active,
        Some("archived") if actor.is_trusted() => PlanStatus::Archived,
        Some("archived") => {
            errors.push(FieldError::new(
                "status",
                "archived plans are listed for the service and admin roles",
            ));
            PlanStatus::Archived
        }
        Some(_) => {
            errors.push(FieldError::new(
                "status",
                shared::problem::one_of(["active", "archived"]),
            ));
            PlanStatus::Active
        }
    };
    validate::finish(errors).map_err(BillingError::Invalid)?;
    let page = PageRequest::parse(query.limit, query.cursor.as_deref(), ids::PLAN)
        .map_err(BillingError::Invalid)?;
    let mut select = plans::Entity::find().filter(plans::Column::Status.eq(status));
    if let Some(code) = &query.code {
        select = select.filter(plans::Column::Code.eq(code.as_str()));
    }
    let rows = page.fetch(select, plans::Column::Id, &core.db).await?;
    Ok(page.page(rows, |p| &p.id, plan_out))
}

/// Archives a plan version: no new subscription may take it; those on it go on.
pub async fn archive_plan(core: &Core, actor: &Actor, id: &str) -> Result<PlanOut, BillingError> {
    if !actor.is_trusted() {
        return Err(BillingError::Forbidden(
            "Archiving a plan needs the service or admin role".to_owned(),
        ));
    }
    let id = PlanId::parse(id).ok_or_else(|| BillingError::NotFound(format!("plan {id}")))?;
    let plan = find(&core.db, id.as_str())
        .await?
        .ok_or_else(|| BillingError::NotFound(format!("plan {id}")))?;
    if plan.status == PlanStatus::Archived {
        return Ok(plan_out(plan));
    }
    let mut active = plan.into_active_model();
    active.status = sea_orm::Set(PlanStatus::Archived);
    active.archived_at = sea_orm::Set(Some(core.now()));
    Ok(plan_out(active.update(&core.db).await?))
}
