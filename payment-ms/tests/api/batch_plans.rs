//! A bill run's batch writes rows found by hundreds of ids per statement. On PostgreSQL a table
//! that grows faster than it is analyzed (autovacuum off, or not yet come round) looked small to
//! the planner, which then read the whole table for each such statement: each batch cost more
//! than the one before. In a batch's transaction ([`begin_batch`]) they go through the index.
//! And what the batch writes most, events, is stored as `json`, not parsed into `jsonb`.

use chrono::Utc;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryTrait,
    Statement,
};

use payment_ms::billing::entities::billing_jobs;
use payment_ms::platform::db::{begin_batch, begin_write};
use testkit::helpers::{Backend, TestApp, TestDb};

const JOBS: usize = 20_000;
const IDS: usize = 250;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: build and run the tests with TEST_DATABASE_URL set (scripts/test does)"
)]
async fn a_batch_finds_its_rows_through_the_index_on_a_table_never_analyzed() {
    let app = TestApp::spawn_on(TestDb::create(Backend::Postgres).await, |_| {}, |_| {}).await;
    // Kept from autovacuum (on where this runs with it on), so it is never analyzed here.
    app.db
        .execute_unprepared("ALTER TABLE billing_jobs SET (autovacuum_enabled = false)")
        .await
        .expect("autovacuum off");
    app.db
        .execute_unprepared(&format!(
            "INSERT INTO billing_jobs (id, kind, subject_id, due_at, status, attempts, created_at) \
             SELECT 'job_' || lpad(n::text, 32, '0'), 'renew', 'sub_' || n, now(), 'pending', 0, \
             now() FROM generate_series(1, {JOBS}) AS n"
        ))
        .await
        .expect("jobs");
    let analyzed: Option<i64> = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT CAST(reltuples AS BIGINT) AS n FROM pg_class WHERE relname = 'billing_jobs'",
        ))
        .await
        .expect("pg_class")
        .and_then(|row| row.try_get("", "n").ok());
    assert_eq!(analyzed, Some(-1), "the table must not have been analyzed");

    // What a batch marks done: a few hundred jobs by their ids, as `jobs_done` writes it.
    let ids: Vec<String> = (1..=IDS).map(|n| format!("job_{:032}", n * 37)).collect();
    let update = billing_jobs::Entity::update_many()
        .col_expr(billing_jobs::Column::Status, "done".into())
        .col_expr(billing_jobs::Column::DoneAt, Some(Utc::now()).into())
        .filter(billing_jobs::Column::Id.is_in(ids.iter().map(String::as_str)))
        .build(app.db.get_database_backend());

    let plan = |txn: DatabaseTransaction| {
        let statement = Statement::from_sql_and_values(
            update.db_backend,
            format!("EXPLAIN {}", update.sql),
            update.values.clone().map(|v| v.0).unwrap_or_default(),
        );
        async move {
            let rows = txn.query_all_raw(statement).await.expect("explain");
            txn.rollback().await.expect("rollback");
            rows.iter()
                .filter_map(|row| row.try_get_by_index::<String>(0).ok())
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let plain = plan(begin_write(&app.db).await.expect("begin")).await;
    let batch = plan(begin_batch(&app.db).await.expect("begin")).await;
    // Outside a batch the planner, taking the table for a small one, reads all of it.
    assert!(plain.contains("Seq Scan on billing_jobs"), "{plain}");
    assert!(!batch.contains("Seq Scan"), "{batch}");
    assert!(batch.contains("billing_jobs_pkey"), "{batch}");
}

/// An event's payload is stored as `json` (checked, kept as written), not parsed into `jsonb`:
/// a bill run writes nine per invoice, and `jsonb`'s parsing was a tenth of the machine's time
/// (docs/BENCHMARKS.md). What is stored is still the order as the API shows it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: build and run the tests with TEST_DATABASE_URL set (scripts/test does)"
)]
async fn an_events_payload_is_stored_as_json_text() {
    let app = TestApp::spawn_on(TestDb::create(Backend::Postgres).await, |_| {}, |_| {}).await;
    let order = app.create_order("user_json").await;
    let id = order["id"].as_str().expect("an order id");
    let row = app
        .db
        .query_one_raw(Statement::from_sql_and_values(
            app.db.get_database_backend(),
            "SELECT CAST(pg_typeof(data) AS TEXT) AS kind, CAST(data AS TEXT) AS text \
             FROM events WHERE subject_id = $1 AND event_type = 'order.created'",
            [id.into()],
        ))
        .await
        .expect("the event")
        .expect("order.created recorded");
    let kind: String = row.try_get("", "kind").expect("kind");
    let text: String = row.try_get("", "text").expect("text");
    assert_eq!(kind, "json");
    let data: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(data, order);
}
