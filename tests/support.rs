//! Test support shared by the root crate's integration tests: fresh databases on both backends.

#![allow(dead_code)]

use herald::store::{self, Store};
use std::sync::Arc;

/// A fresh SQLite file in a temporary directory (kept alive by the returned guard).
pub async fn sqlite_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("herald.db").display()
    );
    let store = store::connect(&url).await.expect("open sqlite");
    (store, dir)
}

/// The PostgreSQL server tests may use, from `HERALD_TEST_POSTGRES_URL`.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("HERALD_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// A fresh, empty database on the test server, named uniquely for this test. `None` (with a loud
/// note on stderr) when no server is configured.
pub async fn postgres_url(test: &str) -> Option<String> {
    let Some(admin) = postgres_admin_url() else {
        eprintln!("SKIPPED {test} on PostgreSQL: HERALD_TEST_POSTGRES_URL is not set");
        return None;
    };
    let name = format!("herald_t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("connect to HERALD_TEST_POSTGRES_URL");
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    let mut url = url::Url::parse(&admin).expect("postgres url");
    url.set_path(&name);
    Some(url.to_string())
}

pub async fn postgres_store(test: &str) -> Option<Arc<dyn Store>> {
    let url = postgres_url(test).await?;
    Some(store::connect(&url).await.expect("open postgres"))
}

/// Declares each listed `async fn(Arc<dyn Store>)` as a test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _dir) = $crate::support::sqlite_store().await;
                    super::$name(store).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(store) = $crate::support::postgres_store(stringify!($name)).await {
                        super::$name(store).await;
                    }
                }
            )+
        }
    };
}
