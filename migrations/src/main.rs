//! `migrations up|down|status`: manage the payment-ms schema without starting the service.

use anyhow::Context;
use clap::{Parser, Subcommand};
use migrations::{Migrator, MigratorTrait};
use sea_orm_migration::sea_orm::Database;

#[derive(Parser)]
#[command(
    name = "migrations",
    about = "Apply, roll back or list the payment-ms migrations"
)]
struct Cli {
    /// The database, e.g. `sqlite://payments.db?mode=rwc` or `postgres://user@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://payments.db?mode=rwc"
    )]
    database_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (all by default).
    Up {
        #[arg(long)]
        steps: Option<u32>,
    },
    /// Roll back applied migrations (the last one by default).
    Down {
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List every migration and whether it is applied.
    Status,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Up { steps: None } => migrations::migrate_up(&cli.database_url)
            .await
            .context("applying migrations")?,
        Command::Up { steps } => {
            let db = Database::connect(&cli.database_url).await?;
            Migrator::up(&db, steps)
                .await
                .context("applying migrations")?;
        }
        Command::Down { steps } => {
            let db = Database::connect(&cli.database_url).await?;
            Migrator::down(&db, Some(steps))
                .await
                .context("rolling back migrations")?;
        }
        Command::Status => {}
    }
    let db = Database::connect(&cli.database_url).await?;
    for m in Migrator::get_migration_with_status(&db).await? {
        println!("{:<8} {}", m.status().to_string(), m.name());
    }
    Ok(())
}
