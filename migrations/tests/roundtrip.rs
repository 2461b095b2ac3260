//! The schema applies, rolls back and applies again on both databases, and replicas starting
//! together do not trip over each other.

use migrations::{Migrator, MigratorTrait};
use sea_orm_migration::MigrationStatus;
use sea_orm_migration::sea_orm::{ConnectionTrait, Database};

async fn statuses(url: &str) -> Vec<MigrationStatus> {
    let db = Database::connect(url).await.unwrap();
    Migrator::get_migration_with_status(&db)
        .await
        .unwrap()
        .iter()
        .map(|m| m.status())
        .collect()
}

async fn roundtrip(url: &str) {
    migrations::migrate_up(url).await.unwrap();
    let applied = statuses(url).await;
    assert_eq!(applied.len(), Migrator::migrations().len());
    assert!(applied.iter().all(|s| *s == MigrationStatus::Applied));

    let db = Database::connect(url).await.unwrap();
    Migrator::down(&db, None).await.unwrap();
    assert!(
        statuses(url)
            .await
            .iter()
            .all(|s| *s == MigrationStatus::Pending)
    );
    // The tables are really gone.
    assert!(
        db.execute_unprepared("SELECT 1 FROM payments")
            .await
            .is_err()
    );

    migrations::migrate_up(url).await.unwrap();
    assert!(
        statuses(url)
            .await
            .iter()
            .all(|s| *s == MigrationStatus::Applied)
    );
    db.execute_unprepared("SELECT id, status, amount FROM payments")
        .await
        .unwrap();
}

#[tokio::test]
async fn sqlite_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    roundtrip(&format!("sqlite://{}/m.db?mode=rwc", dir.path().display())).await;
}

/// A fresh PostgreSQL database on the server at `TEST_DATABASE_URL` (its admin URL, the
/// database's name, its URL). The tests that need it are ignored when built without the
/// variable; run all the same, they fail rather than pass without having run.
async fn postgres_db() -> (String, String, String) {
    let admin_url = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("TEST_DATABASE_URL is not set: this test needs PostgreSQL"),
    };
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    (admin_url, name, url.into())
}

async fn drop_db(admin_url: &str, name: &str) {
    let admin = Database::connect(admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}

#[tokio::test]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: build and run the tests with TEST_DATABASE_URL set (scripts/test does)"
)]
async fn postgres_roundtrip() {
    let (admin, name, url) = postgres_db().await;
    roundtrip(&url).await;
    drop_db(&admin, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "needs PostgreSQL: build and run the tests with TEST_DATABASE_URL set (scripts/test does)"
)]
async fn replicas_starting_together_migrate_once() {
    let (admin, name, url) = postgres_db().await;
    let (a, b, c) = tokio::join!(
        migrations::migrate_up(&url),
        migrations::migrate_up(&url),
        migrations::migrate_up(&url)
    );
    a.unwrap();
    b.unwrap();
    c.unwrap();
    assert!(
        statuses(&url)
            .await
            .iter()
            .all(|s| *s == MigrationStatus::Applied)
    );
    drop_db(&admin, &name).await;
}
