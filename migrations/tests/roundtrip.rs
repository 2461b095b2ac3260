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

/// A fresh PostgreSQL database, or `None` outside CI without `TEST_DATABASE_URL`.
async fn postgres_db() -> Option<(String, String, String)> {
    let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set TEST_DATABASE_URL"
        );
        return None;
    };
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let admin = Database::connect(&admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&format!("/{name}"));
    Some((admin_url, name, url.into()))
}

async fn drop_db(admin_url: &str, name: &str) {
    let admin = Database::connect(admin_url).await.unwrap();
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}

#[tokio::test]
async fn postgres_roundtrip() {
    let Some((admin, name, url)) = postgres_db().await else {
        return;
    };
    roundtrip(&url).await;
    drop_db(&admin, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let Some((admin, name, url)) = postgres_db().await else {
        return;
    };
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
