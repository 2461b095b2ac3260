//! Connecting to SQLite or PostgreSQL, and the few helpers every write path shares.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseBackend, DatabaseConnection,
    DatabaseTransaction, DbErr, RuntimeErr, SqlErr, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait, Value,
};

/// A pooled connection used more recently than this is handed out without a ping.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Opens the pool. SQLite runs in WAL mode (readers never wait for the writer) with a busy
/// timeout, so concurrent writers queue instead of failing.
///
/// A connection is pinged before it is handed out only when it has been idle for a second or
/// more: pinging on every acquire (the default) added a round trip to the database for each
/// statement outside a transaction and each transaction, a fifth of a checkout's messages to
/// PostgreSQL. A connection the server dropped is discarded when it is found broken, as after
/// a ping.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    Database::connect(options).await
}

/// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: the write lock is
/// taken up front, so a transaction never reads a snapshot that another writer then
/// invalidates (which SQLite reports as an error instead of waiting).
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    crate::events::outbox::forget_uncommitted();
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Begins a transaction that writes many rows found by their keys (a bill run's batch: a few
/// statements of hundreds of ids each, `… WHERE id IN (…)`). On PostgreSQL its statements are
/// planned with sequential scans off. A table that grows faster than it is analyzed (a bill
/// run's orders, jobs and invoices) looks small to the planner, which then reads the whole table
/// for each statement, testing every row against the hundreds of ids; a connection keeps such a
/// plan for the statement from then on, so each batch cost more than the one before. (Planning
/// each statement afresh instead, `plan_cache_mode = force_custom_plan`, still chose the scan
/// on tables of 10,000 and 20,000 rows, and measured slower than this.)
pub async fn begin_batch(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let txn = begin_write(db).await?;
    if db.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute_unprepared("SET LOCAL enable_seqscan = off")
            .await?;
    }
    Ok(txn)
}

pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Whether `err` says the database cannot answer now rather than that the request or our code
/// is wrong: no connection (refused, dropped, the pool out of time), the server shutting down
/// or starting, too many connections, a read-only standby after a failover, a serialization
/// failure or deadlock, SQLite busy. Such a request may succeed if retried later; it is
/// answered 503, and a bug stays a 500.
pub fn is_transient(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            is_transient_sqlx(e)
        }
        _ => false,
    }
}

fn is_transient_sqlx(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match err {
        Error::Io(_)
        | Error::Tls(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        Error::Database(db) => db.code().is_some_and(|code| {
            let code = code.as_ref();
            // PostgreSQL: connection exceptions (08…), too many connections, the server
            // shutting down or starting, a read-only transaction on a standby, a
            // serialization failure or deadlock, a lock or statement timeout.
            code.starts_with("08")
                || matches!(
                    code,
                    "53300" | "57P01" | "57P02" | "57P03" | "25006" | "40001" | "40P01"
                        | "55P03" | "57014"
                )
                // SQLite: SQLITE_BUSY and SQLITE_LOCKED, with their extended codes.
                || code.parse::<i32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6))
        }),
        _ => false,
    }
}

/// Whether PostgreSQL is reachable, as seen by requests: once a request meets a transient
/// error, a probe opens a connection of its own (outside the pool, so a pool that is merely
/// busy does not count as down). While that fails, the database is *down*: requests that need
/// it are answered 503 at once instead of each waiting out the pool's acquire timeout, and the
/// probe tries again every [`PROBE_EVERY`] until a connection succeeds.
///
/// SQLite is a file beside the process: it has no outage of this kind, and no probe.
#[derive(Clone)]
pub struct Outage {
    inner: std::sync::Arc<OutageInner>,
}

struct OutageInner {
    /// The PostgreSQL URL; `None` for SQLite.
    url: Option<secrecy::SecretString>,
    down: std::sync::atomic::AtomicBool,
    probing: std::sync::atomic::AtomicBool,
}

/// How long a probe's connection attempt may take, and the pause between attempts.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);

impl Outage {
    pub fn new(database_url: &str) -> Outage {
        let url = database_url
            .starts_with("postgres")
            .then(|| secrecy::SecretString::from(database_url));
        Outage {
            inner: std::sync::Arc::new(OutageInner {
                url,
                down: Default::default(),
                probing: Default::default(),
            }),
        }
    }

    pub fn is_down(&self) -> bool {
        self.inner.down.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A request met a transient error: check the database, unless a check is running.
    pub fn suspect(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.url.is_none() || self.inner.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let reachable = this.probe().await;
                let was_down = this.inner.down.swap(!reachable, Ordering::AcqRel);
                match (was_down, reachable) {
                    (false, false) => {
                        tracing::error!(
                            "the database is unreachable; answering 503 until it is back"
                        )
                    }
                    (true, true) => tracing::warn!("the database is reachable again"),
                    _ => {}
                }
                if reachable {
                    break;
                }
                tokio::time::sleep(PROBE_EVERY).await;
            }
            this.inner.probing.store(false, Ordering::Release);
        });
    }

    /// One connection, opened and closed, within [`PROBE_EVERY`].
    async fn probe(&self) -> bool {
        use sea_orm::sqlx::{ConnectOptions as _, Connection as _};
        use secrecy::ExposeSecret;
        let Some(url) = &self.inner.url else {
            return true;
        };
        let Ok(options) = url
            .expose_secret()
            .parse::<sea_orm::sqlx::postgres::PgConnectOptions>()
        else {
            return true;
        };
        match tokio::time::timeout(PROBE_EVERY, options.connect()).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                true
            }
            _ => false,
        }
    }
}

/// `now + ttl`, saturating instead of overflowing on absurd configured durations.
pub fn after(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A statement written with PostgreSQL's numbered parameters (`$1`, used more than once
/// where needed) for `backend`: SQLite's are `?1`.
pub fn numbered(backend: DatabaseBackend, sql: &str) -> String {
    match backend {
        DatabaseBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    }
}

/// Runs a statement written with numbered parameters (see [`numbered`]) on `db`'s backend.
/// Answers how many rows it changed.
pub async fn execute<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let statement = Statement::from_sql_and_values(backend, numbered(backend, sql), values);
    Ok(db.execute_raw(statement).await?.rows_affected())
}

/// Updates many rows of `table`, each with values of its own, with a statement per few hundred:
/// `UPDATE table SET <set> FROM (VALUES (…), …) AS v WHERE table.id = v.column1`. `set`
/// reads each row's values as `v.column2`, `v.column3`… and the values all rows share as `$1`,
/// `$2`… (`shared`); PostgreSQL and SQLite both name a `VALUES` list's columns `column1`….
/// Answers how many rows changed.
pub async fn update_each<C: ConnectionTrait>(
    db: &C,
    table: &str,
    set: &str,
    shared: &[Value],
    rows: &[Vec<Value>],
) -> Result<u64, DbErr> {
    let mut changed = 0;
    for chunk in rows.chunks(500) {
        let mut values: Vec<Value> = shared.to_vec();
        let mut tuples = Vec::with_capacity(chunk.len());
        for row in chunk {
            let first = values.len() + 1;
            let marks: Vec<String> = (first..first + row.len())
                .map(|n| format!("${n}"))
                .collect();
            tuples.push(format!("({})", marks.join(", ")));
            values.extend(row.iter().cloned());
        }
        let sql = format!(
            "UPDATE {table} SET {set} FROM (VALUES {}) AS v WHERE {table}.id = v.column1",
            tuples.join(", ")
        );
        changed += execute(db, &sql, values).await?;
    }
    Ok(changed)
}

/// The rows of `E` whose `column` is one of `keys` (locked, with `lock`), each key looked up
/// through the column's index whatever the planner's statistics say. On PostgreSQL an `IN` list
/// of a few hundred keys on a column never analyzed (no autovacuum yet, or none at all) is
/// planned as a scan of the whole table, so each key is joined laterally instead, its subquery
/// fenced with `OFFSET 0` so that no plan (a generic one cached while the table was small, say)
/// flattens it back into a hash join over the whole table; SQLite uses the index for `IN`. Keys are looked up, and rows locked, in the keys' sorted order.
pub async fn find_each<E, C>(
    db: &C,
    column: E::Column,
    keys: &[&str],
    lock: bool,
) -> Result<Vec<E::Model>, DbErr>
where
    E: sea_orm::EntityTrait,
    C: ConnectionTrait,
{
    use sea_orm::{ColumnTrait, IdenStatic, QueryFilter, QuerySelect};
    let mut keys: Vec<&str> = keys.to_vec();
    keys.sort_unstable();
    keys.dedup();
    let backend = db.get_database_backend();
    let mut found = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(500) {
        if backend != DatabaseBackend::Postgres {
            let mut select = E::find().filter(column.is_in(chunk.iter().copied()));
            if lock {
                select = select.lock_exclusive();
            }
            found.extend(select.all(db).await?);
            continue;
        }
        let marks: Vec<String> = (1..=chunk.len()).map(|n| format!("(${n})")).collect();
        let sql = format!(
            "SELECT t.* FROM (VALUES {}) AS v(k) CROSS JOIN LATERAL \
             (SELECT * FROM \"{}\" WHERE \"{}\" = v.k OFFSET 0{}) AS t",
            marks.join(", "),
            E::default().table_name(),
            column.as_str(),
            if lock { " FOR UPDATE" } else { "" },
        );
        let values: Vec<Value> = chunk.iter().map(|k| (*k).into()).collect();
        found.extend(
            E::find()
                .from_raw_sql(Statement::from_sql_and_values(backend, sql, values))
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// How many rows one key of a table of totals is spread over on PostgreSQL (one on SQLite,
/// which writes one transaction at a time anyway); see [`add_totals`].
pub const TOTAL_SHARDS: u32 = 64;

/// The UTC day of `at`, as the running totals' `day` columns hold it (`2027-01-31`).
pub fn utc_day(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// Adds amounts to a table of running totals (`revenue_days`, `mrr_days`,
/// `subscription_counts`), one statement: each move is its key's values (the columns `keys`)
/// and the amounts it adds (the columns `sums`). Moves of one key are added up first, and the
/// rows are written in key order, so two transactions never lock totals in opposite orders.
///
/// Each PostgreSQL connection adds to a row of its own per key (the `shard` column: its
/// backend's pid modulo [`TOTAL_SHARDS`]): transactions adding to the same total wait for
/// each other's commit only when their connections share that remainder. Readers add a key's
/// rows up.
pub async fn add_totals<C: ConnectionTrait, const K: usize, const S: usize>(
    db: &C,
    table: &str,
    keys: [&str; K],
    sums: [&str; S],
    moves: impl IntoIterator<Item = ([String; K], [i64; S])>,
) -> Result<(), DbErr> {
    let mut totals: std::collections::BTreeMap<[String; K], [i64; S]> = Default::default();
    for (key, amounts) in moves {
        let total = totals.entry(key).or_insert([0; S]);
        for (total, amount) in total.iter_mut().zip(amounts) {
            *total = total.saturating_add(amount);
        }
    }
    totals.retain(|_, amounts| amounts.iter().any(|a| *a != 0));
    if totals.is_empty() {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let shard = match backend {
        DatabaseBackend::Postgres => format!("pg_backend_pid() % {TOTAL_SHARDS}"),
        _ => "0".to_owned(),
    };
    let mut values: Vec<Value> = Vec::with_capacity(totals.len() * (K + S));
    let mut tuples = Vec::with_capacity(totals.len());
    for (key, amounts) in totals {
        let at = values.len();
        let place = |i: usize| format!("${}", at + i + 1);
        let mut cells: Vec<String> = (0..K).map(place).collect();
        cells.push(shard.clone());
        cells.extend((K..K + S).map(place));
        tuples.push(format!("({})", cells.join(", ")));
        values.extend(key.into_iter().map(Value::from));
        values.extend(amounts.into_iter().map(Value::from));
    }
    let added: Vec<String> = sums
        .iter()
        .map(|c| format!("{c} = {table}.{c} + excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO {table} ({}, shard, {}) VALUES {} ON CONFLICT ({}, shard) DO UPDATE SET {}",
        keys.join(", "),
        sums.join(", "),
        tuples.join(", "),
        keys.join(", "),
        added.join(", ")
    );
    execute(db, &sql, values).await?;
    Ok(())
}
