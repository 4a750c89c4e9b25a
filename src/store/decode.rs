//! Row decoding and migrations without sqlx's procedural macros.
//!
//! `#[derive(sqlx::FromRow)]` and `sqlx::migrate!` live in `sqlx-macros`, which compiles a second,
//! host-side copy of sqlx with both drivers and a bundled SQLite for the build alone. Decoding a
//! row by column name and embedding the migration files need none of that: `from_row!` writes the
//! same `FromRow` impls for each backend's row type, and [`migrator`] builds the same `Migrator`
//! (same versions, descriptions and checksums) from files embedded with `include_str!`.

use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

/// `FromRow` for both backends' rows, each field read from the column of its name; a field listed
/// after `flatten` is a row struct of its own decoded from the same row.
macro_rules! from_row {
    ($row:ident { $($field:ident),* $(,)? } $(flatten { $($inner:ident),* $(,)? })?) => {
        $crate::store::decode::from_row!(@for sqlx::sqlite::SqliteRow, $row { $($field),* } $({ $($inner),* })?);
        $crate::store::decode::from_row!(@for sqlx::postgres::PgRow, $row { $($field),* } $({ $($inner),* })?);
    };
    (@for $backend:ty, $row:ident { $($field:ident),* } $({ $($inner:ident),* })?) => {
        impl<'r> sqlx::FromRow<'r, $backend> for $row {
            fn from_row(row: &'r $backend) -> sqlx::Result<Self> {
                use sqlx::Row as _;
                Ok(Self {
                    $($field: row.try_get(stringify!($field))?,)*
                    $($($inner: sqlx::FromRow::from_row(row)?,)*)?
                })
            }
        }
    };
}
pub(crate) use from_row;

/// One backend's migrations, in order: `(file name, contents)`.
type Files = &'static [(&'static str, &'static str)];

/// Both backends' migrations, embedded: the two directories hold files of the same names.
macro_rules! embed {
    ($($file:literal),* $(,)?) => {
        pub(crate) const SQLITE: Files =
            &[$(($file, include_str!(concat!("../../migrations/sqlite/", $file)))),*];
        pub(crate) const POSTGRES: Files =
            &[$(($file, include_str!(concat!("../../migrations/postgres/", $file)))),*];
    };
}

embed!(
    "0001_initial.sql",
    "0002_access.sql",
    "0003_reliability.sql",
    "0004_lag.sql",
    "0005_key_scopes.sql",
    "0006_programs.sql",
    "0007_auth_param.sql",
    "0008_insights.sql",
    "0009_auto_disable.sql",
    "0010_failing.sql",
    "0011_alerts.sql",
    "0012_retention.sql",
    "0013_replay_jobs.sql",
    "0014_custom_headers.sql",
    "0015_ordering.sql",
    "0016_lease_index.sql",
    "0017_webhook_names.sql",
    "0018_event_index_ordered.sql",
    "0019_attempts_by_event_time.sql",
    "0020_pending_by_webhook.sql",
    "0021_hot_tables_without_foreign_keys.sql",
    "0022_all_moved.sql",
    "0023_attempts_newest_last.sql",
    "0024_switched_on_at.sql",
    "0025_no_index_by_delivery.sql",
    "0026_webhooks_list_in_index_order.sql",
    "0027_events_by_member.sql",
    "0028_member_backfill.sql",
    "0029_no_statistics_for_payloads.sql",
    "0030_in_flight_by_lease_only.sql",
);

/// The migrator for one backend's files, as `sqlx::migrate!` would build it: the version is the
/// number before the first `_`, the description the rest without `.sql` and with spaces for `_`,
/// and a file starting `-- no-transaction` runs outside a transaction.
pub(crate) fn migrator(files: Files) -> Migrator {
    let migrations = files
        .iter()
        .map(|(name, sql)| {
            let (version, rest) = name
                .split_once('_')
                .expect("migration file names are NNNN_name.sql");
            Migration::new(
                version
                    .parse()
                    .expect("migration file names start with a number"),
                Cow::Owned(rest.trim_end_matches(".sql").replace('_', " ")),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                sql.starts_with("-- no-transaction"),
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded migrations are exactly what sqlx's own resolver (the one `sqlx::migrate!`
    /// runs at build time) makes of each directory: every file, in order, with the same version,
    /// description, checksum and transaction mode. A file added to a directory but not listed
    /// above fails here; so would a change in how descriptions or checksums are derived, which
    /// would make databases migrated by an earlier Herald refuse to open.
    #[test]
    fn embedded_migrations_match_the_directories() {
        for (dir, files) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dir);
            let mut resolved = sqlx::migrate::resolve_blocking(&path).unwrap();
            resolved.sort_by_key(|(m, _)| m.version);
            let ours = migrator(files);
            let ours: Vec<_> = ours
                .iter()
                .map(|m| {
                    (
                        m.version,
                        m.description.to_string(),
                        m.checksum.to_vec(),
                        m.no_tx,
                    )
                })
                .collect();
            let theirs: Vec<_> = resolved
                .iter()
                .map(|(m, _)| {
                    (
                        m.version,
                        m.description.to_string(),
                        m.checksum.to_vec(),
                        m.no_tx,
                    )
                })
                .collect();
            assert_eq!(ours, theirs, "migrations/{dir}");
            assert!(resolved
                .iter()
                .all(|(m, _)| m.migration_type == MigrationType::Simple));
        }
    }
}
