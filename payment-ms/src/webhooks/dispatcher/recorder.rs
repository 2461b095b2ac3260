//! Recording attempts: the attempts that finished while the previous batch was being written
//! are recorded together, in one transaction (the deliveries' new states, the attempt log, and
//! what follows for their partners).
//!
//! Recording must never fail for what a partner answered: excerpts and error texts are
//! sanitized before they get here. And should a batch fail anyway, each attempt is recorded
//! alone, then without its excerpt; a delivery whose outcome still cannot be recorded is
//! claimed again when its lease runs out, which [`super::MAX_UNRECORDED`] bounds.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseBackend, EntityTrait, QueryFilter};
use tokio::sync::mpsc;

use super::super::partners::disable;
use super::WriteGate;
use super::queue::{self, AttemptRow, Claimed, Outcome};
use super::schedule::{self, Effect, Health};
use super::sender::Answer;
use crate::AppState;
use crate::platform::db::{after, begin_write};
use crate::platform::http::error::Result;
use crate::webhooks::entities::partners;

/// The most attempts recorded in one transaction (9 bound values each). Larger batches were
/// measured slower on PostgreSQL: with 128 sends in flight, batches of up to 256 gave about
/// 2,200 deliveries/s where 128 gave 4,000 to 5,000 (docs/BENCHMARKS.md).
pub const RECORD_BATCH: usize = 128;

/// An attempt made, waiting to be recorded.
pub struct Sent {
    pub claimed: Claimed,
    pub partner: Arc<partners::Model>,
    pub started_at: DateTime<Utc>,
    pub latency_ms: i32,
    pub answer: Answer,
}

impl Sent {
    /// The same attempt without what the partner answered beyond its status: what is left to
    /// record when the full record cannot be written.
    fn stripped(&self) -> Sent {
        let answer = match &self.answer {
            Answer::Answered {
                status,
                retry_after,
                ..
            } => Answer::Answered {
                status: *status,
                excerpt: String::new(),
                retry_after: *retry_after,
            },
            Answer::Failed(_) => {
                Answer::failed("the attempt failed; its error could not be recorded")
            }
        };
        Sent {
            claimed: self.claimed.clone(),
            partner: self.partner.clone(),
            started_at: self.started_at,
            latency_ms: self.latency_ms,
            answer,
        }
    }
}

/// What one partner's attempts in a batch said of its health, in order.
struct Tally<'a> {
    partner: &'a partners::Model,
    answered: bool,
    /// Attempts that struggled since its last answer (or in all, without one).
    struggling: i32,
}

/// Records attempts as they finish: whatever finished while the last batch was written is
/// the next batch.
pub async fn record_all(state: AppState, writes: WriteGate, mut sent: mpsc::Receiver<Sent>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while sent.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let _gate = writes.enter().await;
        if let Err(e) = record(&state, &batch).await {
            tracing::warn!(error = %e, attempts = batch.len(), "delivery attempts not recorded");
            for one in &batch {
                record_one(&state, one).await;
            }
        }
        batch.clear();
    }
}

/// One attempt alone, then stripped of the partner's answer if it must be.
async fn record_one(state: &AppState, sent: &Sent) {
    let Err(e) = record(state, std::slice::from_ref(sent)).await else {
        return;
    };
    tracing::warn!(error = %e, delivery_id = %sent.claimed.id, "delivery attempt not recorded; recording it without the answer");
    if let Err(e) = record(state, &[sent.stripped()]).await {
        tracing::error!(error = %e, delivery_id = %sent.claimed.id, "delivery attempt not recorded; it will be sent again when its lease runs out");
    }
}

/// A batch of attempts and what follows from them, in one transaction.
pub async fn record(state: &AppState, batch: &[Sent]) -> Result<()> {
    let config = &state.config.webhooks;
    let at = state.core.now();
    let plans: Vec<schedule::Plan> = batch
        .iter()
        .map(|sent| {
            let round = sent.claimed.attempts + 1 - sent.claimed.round_start;
            schedule::plan(config, &sent.answer, round, at)
        })
        .collect();
    let outcomes: Vec<Outcome> = batch
        .iter()
        .zip(&plans)
        .map(|(sent, plan)| Outcome {
            claimed: &sent.claimed,
            attempt: sent.claimed.attempts + 1,
            status: plan.effect.status(),
            status_code: plan.status_code,
            last_error: plan.last_error.clone(),
            next_attempt_at: plan.next_attempt_at,
            completed_at: (plan.effect != Effect::Retry).then_some(at),
        })
        .collect();
    let backend = state.core.db.get_database_backend();
    let txn = begin_write(&state.core.db).await?;
    if backend == DatabaseBackend::Postgres {
        // Each delivery by its primary key: the planner would otherwise scan the table and
        // hash it against the batch when its statistics lag behind a burst of events.
        txn.execute_unprepared(
            "SELECT set_config('enable_hashjoin', 'off', true), \
             set_config('enable_mergejoin', 'off', true)",
        )
        .await?;
    }
    // The deliveries first: an outcome applies only if its delivery was still where it was
    // claimed (not canceled, recovered or recorded by another worker meanwhile).
    let applied =
        queue::returned_ids(&txn, queue::update_deliveries(backend, &outcomes, at)).await?;
    let (recorded, late): (Vec<usize>, Vec<usize>) =
        (0..batch.len()).partition(|&i| applied.contains(&batch[i].claimed.id));
    // An attempt whose delivery was canceled (its partner disabled) while it was in flight
    // still reached the partner: it goes in the attempt log, and the delivery counts it,
    // though it stays where it was moved. One that another worker recorded first (its lease
    // ran out) is left to that worker's record.
    let late: Vec<usize> = if late.is_empty() {
        late
    } else {
        let late_outcomes: Vec<&Outcome> = late.iter().map(|&i| &outcomes[i]).collect();
        let counted = queue::returned_ids(
            &txn,
            queue::count_late_attempts(backend, &late_outcomes, at),
        )
        .await?;
        late.into_iter()
            .filter(|&i| counted.contains(&batch[i].claimed.id))
            .collect()
    };
    let logged: Vec<usize> = recorded.iter().chain(&late).copied().collect();
    if !logged.is_empty() {
        let rows: Vec<AttemptRow> = logged
            .iter()
            .map(|&i| attempt_row(&batch[i], &outcomes[i]))
            .collect();
        txn.execute_raw(queue::insert_attempts(backend, &rows))
            .await?;
    }
    follow_up_partners(state, &txn, batch, &plans, &recorded, at).await?;
    // A `partner.disabled` recorded here is an event to deliver: the outbox wakes the
    // dispatcher for it, and only for it (not after every batch, which would send it claiming
    // for nothing).
    state.core.commit(txn).await?;
    for &i in &logged {
        let (sent, outcome) = (&batch[i], &outcomes[i]);
        metrics::counter!("webhook_attempts_total", "outcome" => plans[i].effect.label())
            .increment(1);
        metrics::histogram!("webhook_attempt_duration_seconds")
            .record(f64::from(sent.latency_ms) / 1000.0);
        tracing::info!(
            delivery_id = %sent.claimed.id, event_id = %sent.claimed.event_id,
            partner_id = %sent.partner.id, attempt = outcome.attempt,
            status = outcome.status_code, latency_ms = sent.latency_ms,
            error = outcome.last_error.as_deref(), "webhook attempt"
        );
    }
    let skipped = batch.len() - logged.len();
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "attempts not recorded: another worker recorded the same attempts first"
        );
    }
    Ok(())
}

fn attempt_row<'a>(sent: &'a Sent, outcome: &Outcome) -> AttemptRow<'a> {
    let (excerpt, error) = match &sent.answer {
        Answer::Answered { excerpt, .. } => (Some(excerpt.as_str()), None),
        Answer::Failed(error) => (None, Some(error.as_str())),
    };
    AttemptRow {
        delivery_id: &sent.claimed.id,
        attempt: outcome.attempt,
        started_at: sent.started_at,
        latency_ms: sent.latency_ms,
        status_code: outcome.status_code,
        excerpt,
        error,
    }
}

/// What the recorded attempts mean for their partners, in the order they came: a success
/// clears the failures counted before it; an event lost past the schedule counts one, and
/// enough disable the partner; a 410 disables it at once. And attempts that struggled (no
/// answer, 5xx, 429) in a row back the partner off.
async fn follow_up_partners(
    state: &AppState,
    txn: &sea_orm::DatabaseTransaction,
    batch: &[Sent],
    plans: &[schedule::Plan],
    recorded: &[usize],
    at: DateTime<Utc>,
) -> Result<()> {
    let config = &state.config.webhooks;
    let mut failing: HashMap<&str, bool> = HashMap::new();
    let mut tallies: Vec<Tally> = Vec::new();
    for &i in recorded {
        let partner = &*batch[i].partner;
        let t = match tallies.iter().position(|t| t.partner.id == partner.id) {
            Some(t) => t,
            None => {
                tallies.push(Tally {
                    partner,
                    answered: false,
                    struggling: 0,
                });
                tallies.len() - 1
            }
        };
        let tally = &mut tallies[t];
        match schedule::health(&batch[i].answer) {
            Health::Up => {
                tally.answered = true;
                tally.struggling = 0;
            }
            Health::Struggling => tally.struggling += 1,
            Health::Neutral => {}
        }
        let failing = failing
            .entry(partner.id.as_str())
            .or_insert(partner.consecutive_failures != 0);
        let disable_reason = match plans[i].effect {
            Effect::Succeeded if *failing => {
                partners::Entity::update_many()
                    .col_expr(partners::Column::ConsecutiveFailures, 0.into())
                    .filter(partners::Column::Id.eq(&partner.id))
                    .exec(txn)
                    .await?;
                *failing = false;
                None
            }
            Effect::Gone => Some(format!("{} answered 410 Gone", partner.url)),
            Effect::Exhausted => {
                partners::Entity::update_many()
                    .col_expr(
                        partners::Column::ConsecutiveFailures,
                        sea_orm::sea_query::Expr::col(partners::Column::ConsecutiveFailures).add(1),
                    )
                    .filter(partners::Column::Id.eq(&partner.id))
                    .exec(txn)
                    .await?;
                *failing = true;
                let failures = partners::Entity::find_by_id(&partner.id)
                    .one(txn)
                    .await?
                    .map_or(0, |p| p.consecutive_failures);
                (u32::try_from(failures).unwrap_or(0) >= config.disable_after).then(|| {
                    format!("{failures} events in a row failed past the whole retry schedule")
                })
            }
            Effect::Succeeded | Effect::Retry => None,
        };
        if let Some(reason) = disable_reason.as_deref() {
            disable(&state.core.outbox, txn, partner, reason, at).await?;
        }
    }
    for tally in tallies {
        let partner = tally.partner;
        let (failing, backoff) = if tally.answered {
            // An answer: the count starts again from what struggled after it.
            let was_failing = partner.failing_attempts != 0 || partner.backoff_until.is_some();
            if !was_failing && tally.struggling == 0 {
                continue;
            }
            let backoff = schedule::backoff(config, tally.struggling);
            let until = backoff.map(|d| after(at, d));
            queue::set_health(txn, &partner.id, tally.struggling, until).await?;
            (tally.struggling, backoff)
        } else if tally.struggling > 0 {
            let failing = queue::add_failing(txn, &partner.id, tally.struggling).await?;
            let backoff = schedule::backoff(config, failing);
            if let Some(d) = backoff {
                queue::set_health(txn, &partner.id, failing, Some(after(at, d))).await?;
            }
            (failing, backoff)
        } else {
            continue;
        };
        if let Some(backoff) = backoff {
            metrics::counter!("webhook_partner_backoffs_total").increment(1);
            tracing::warn!(
                partner_id = %partner.id, failing_attempts = failing, ?backoff,
                "partner backed off: its attempts keep failing"
            );
        }
    }
    Ok(())
}
