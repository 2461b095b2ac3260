//! Bill-run benchmark: N subscriptions whose period ends at the same moment, each with a saved
//! payment method at the mock provider. payment-ms starts and the clock runs until every one
//! of them has a paid invoice for its new period: renewed (a draft), finalized (numbered, an
//! order), charged (a payment, succeeded), paid. Run through `bench/billing.sh` (see
//! docs/BENCHMARKS.md).

use std::time::{Duration, Instant};

use payment_ms::billing::entities::invoices;
use payment_ms::billing::figures::FiguresQuery;
use payment_ms::billing::model::InvoiceStatus;
use payment_ms::platform::Actor;
use payment_ms::{Application, Config};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use shared::config::Env;
use shared::internal::Role;
use tokio_util::sync::CancellationToken;

/// The allocator of the payment-ms binary, so the bill run costs here what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    subscriptions: usize,
    database_url: String,
    concurrency: usize,
}

fn args() -> Args {
    let mut args = Args {
        subscriptions: 20_000,
        database_url: "postgres://postgres@127.0.0.1:5432/billing_bench".to_owned(),
        concurrency: 8,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--subscriptions" => args.subscriptions = value.parse().unwrap_or(args.subscriptions),
            "--database-url" => args.database_url = value,
            "--concurrency" => args.concurrency = value.parse().unwrap_or(args.concurrency),
            other => eprintln!("ignoring unknown flag {other}"),
        }
    }
    args
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args();
    let concurrency = args.concurrency.to_string();
    let env = Env::from_pairs([
        ("APP_PROFILE", "dev"),
        ("DATABASE_URL", args.database_url.as_str()),
        ("DATABASE_MAX_CONNECTIONS", "20"),
        ("PAYMENT_MS_ADDR", "127.0.0.1:0"),
        ("WEBHOOK_ENABLED", "false"),
        ("EXPIRY_SWEEP_INTERVAL", "1h"),
        ("BILLING_FINALIZE_GRACE", "0s"),
        ("BILLING_POLL_INTERVAL", "20ms"),
        ("BILLING_CONCURRENCY", concurrency.as_str()),
    ]);
    let config = Config::from_source(&env)?;
    let app = Application::build(config).await?;
    let state = app.state().clone();
    let db = &state.core.db;

    let admin = Actor {
        user_id: "bench".to_owned(),
        roles: vec![Role::Admin],
    };
    let plan = payment_ms::billing::plans::create_plan(
        &state.core,
        &admin,
        serde_json::from_value(serde_json::json!({"code": "daily", "name": "Daily",
            "currency": "usd", "interval": "day", "amount": 199}))?,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;

    // Every period ends now; their renewals are due now.
    let n = args.subscriptions;
    let prepared = Instant::now();
    testkit::billing::due_now(db, &plan.id, n, Some("pm_mock_ok")).await?;
    println!(
        "prepared {n} subscriptions due at once in {:.1} s; billing concurrency {}",
        prepared.elapsed().as_secs_f64(),
        args.concurrency
    );

    let stop = CancellationToken::new();
    let started = Instant::now();
    let service = tokio::spawn(app.run_until(stop.clone()));
    let count_paid = || {
        invoices::Entity::find()
            .filter(invoices::Column::Status.eq(InvoiceStatus::Paid))
            .count(db)
    };
    // Watched through the revenue figure (the day's running total, which the transaction that
    // pays an invoice adds its payment to): a read of a few rows, where counting the paid
    // invoices is a scan of them all that would slow what it watches. The invoices are counted
    // once it says all are paid.
    let succeeded = || async {
        let revenue =
            payment_ms::billing::figures::revenue(&state.core, &admin, FiguresQuery::default())
                .await
                .map_err(|e| anyhow::anyhow!("revenue: {e}"))?;
        let n: i64 = revenue.data.iter().map(|r| r.payments).sum();
        anyhow::Ok(usize::try_from(n).unwrap_or(0))
    };
    let (mut paid, mut last_report) = (0u64, Instant::now());
    while started.elapsed() < Duration::from_secs(3600) {
        let payments = succeeded().await?;
        if payments >= n {
            paid = count_paid().await?;
            if paid as usize >= n {
                break;
            }
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            println!(
                "  {payments} paid after {:.0} s",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "bill run: {paid} invoices created, finalized, charged and paid in {secs:.1} s = {:.0} invoices/s",
        paid as f64 / secs
    );

    // The figures over this data, as an admin asks for them (the handlers' own functions).
    let figures = |name: &'static str| {
        let state = state.clone();
        let admin = admin.clone();
        async move {
            let mut times = Vec::new();
            for _ in 0..21 {
                let query = FiguresQuery::default();
                let started = Instant::now();
                let ok = match name {
                    "revenue" => payment_ms::billing::figures::revenue(&state.core, &admin, query)
                        .await
                        .map(|r| r.data.len()),
                    "mrr" => payment_ms::billing::figures::mrr_figures(&state.core, &admin, query)
                        .await
                        .map(|m| m.mrr.len()),
                    _ => payment_ms::billing::figures::subscription_figures(
                        &state.core,
                        &admin,
                        query,
                    )
                    .await
                    .map(|f| f.by_status.len()),
                };
                times.push(started.elapsed());
                ok.map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            }
            times.sort();
            anyhow::Ok((times[times.len() / 2], times[times.len() - 1]))
        }
    };
    for name in ["revenue", "mrr", "subscriptions"] {
        let (median, max) = figures(name).await?;
        println!(
            "stats/{name} over {n} subscriptions: median {:.1} ms, max {:.1} ms (21 calls)",
            median.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    // What the figures say of this data: each subscription active, paying and paid once.
    let query = FiguresQuery::default;
    let figures = payment_ms::billing::figures::subscription_figures(&state.core, &admin, query())
        .await
        .map_err(|e| anyhow::anyhow!("subscriptions: {e}"))?;
    let active: i64 = figures
        .by_status
        .iter()
        .filter(|s| s.status == "active")
        .map(|s| s.count)
        .sum();
    let revenue = payment_ms::billing::figures::revenue(&state.core, &admin, query())
        .await
        .map_err(|e| anyhow::anyhow!("revenue: {e}"))?;
    let payments: i64 = revenue.data.iter().map(|r| r.payments).sum();
    let mrr = payment_ms::billing::figures::mrr_figures(&state.core, &admin, query())
        .await
        .map_err(|e| anyhow::anyhow!("mrr: {e}"))?;
    let paying: i64 = mrr.mrr.iter().map(|m| m.subscriptions).sum();
    let expected = i64::try_from(n)?;
    anyhow::ensure!(
        (active, payments, paying) == (expected, expected, expected),
        "the figures do not count what was billed: {active} active, {payments} payments, \
         {paying} paying, for {n} subscriptions"
    );
    println!("figures: {active} active, {payments} payments, {paying} paying subscriptions");
    stop.cancel();
    service.await??;
    Ok(())
}
