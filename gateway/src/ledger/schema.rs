//! Versioned schema migrations, one list per SQL dialect.
//!
//! * Each migration has a version (1, 2, ...), a name and one SQL file per
//!   dialect (`schema/sqlite_NNNN_name.sql`, `schema/postgres_NNNN_name.sql`);
//!   both lists always have the same versions and names, and the tables have
//!   the same columns (checked by a test).
//! * At startup the store creates `schema_version` if needed, reads the
//!   highest applied version and applies the missing ones in order, each in
//!   the same transaction as its `schema_version` row — so a crash mid-way
//!   leaves the previous version, never half of one. Running it again
//!   changes nothing.
//! * A database newer than this build (a version we do not know) is refused:
//!   an old binary must not write into a schema it does not understand.
//! * On PostgreSQL the migration transaction first takes an advisory lock, so
//!   replicas starting together migrate one after the other.

/// One schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Version number (1-based, consecutive).
    pub version: i64,
    /// Short name.
    pub name: &'static str,
    /// The SQL (several statements).
    pub sql: &'static str,
}

/// SQLite migrations.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("schema/sqlite_0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "hold_provider",
        sql: include_str!("schema/sqlite_0002_hold_provider.sql"),
    },
    Migration {
        version: 3,
        name: "hold_replay_key",
        sql: include_str!("schema/sqlite_0003_hold_replay_key.sql"),
    },
];

/// PostgreSQL migrations.
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("schema/postgres_0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "hold_provider",
        sql: include_str!("schema/postgres_0002_hold_provider.sql"),
    },
    Migration {
        version: 3,
        name: "hold_replay_key",
        sql: include_str!("schema/postgres_0003_hold_replay_key.sql"),
    },
];

/// The `schema_version` table (same text on both dialects).
pub const VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (
    version     BIGINT NOT NULL PRIMARY KEY,
    name        TEXT   NOT NULL,
    applied_at  BIGINT NOT NULL
)";

/// The newest version this build knows.
pub fn latest() -> i64 {
    SQLITE.last().map_or(0, |m| m.version)
}

/// Refuses a database whose schema is newer than this build.
pub fn check_not_newer(current: i64) -> Result<(), String> {
    if current > latest() {
        Err(format!(
            "the ledger database has schema version {current}, newer than this build's {}: refusing to use it",
            latest()
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `table -> [columns]` of a schema file, read from its CREATE TABLEs
    /// and `ALTER TABLE .. ADD COLUMN`s (one entry per added column).
    fn shape(sql: &str) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        let mut current: Option<(String, Vec<String>)> = None;
        for line in sql.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("ALTER TABLE ") {
                let mut words = rest.split_whitespace();
                let table = words.next().unwrap_or("").to_owned();
                if let (Some("ADD"), Some("COLUMN"), Some(col)) =
                    (words.next(), words.next(), words.next())
                {
                    out.push((table, vec![col.to_owned()]));
                }
            } else if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
                let name = rest.split_whitespace().next().unwrap_or("").to_owned();
                current = Some((name, Vec::new()));
            } else if line.starts_with(");") {
                out.extend(current.take());
            } else if let Some((_, cols)) = current.as_mut()
                && let Some(col) = line.split_whitespace().next()
                && col.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            {
                cols.push(col.to_owned());
            }
        }
        out
    }

    fn indexes(sql: &str) -> Vec<String> {
        sql.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("CREATE UNIQUE INDEX") || l.starts_with("CREATE INDEX"))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn both_dialects_have_the_same_versions_tables_columns_and_indexes() {
        assert_eq!(SQLITE.len(), POSTGRES.len());
        for (s, p) in SQLITE.iter().zip(POSTGRES) {
            assert_eq!((s.version, s.name), (p.version, p.name));
            let (ss, ps) = (shape(s.sql), shape(p.sql));
            assert!(!ss.is_empty());
            assert_eq!(ss, ps, "migration {} differs in shape", s.version);
            assert_eq!(indexes(s.sql), indexes(p.sql));
            // Data changes too: the same statements on both dialects.
            let updates = |sql: &str| -> Vec<String> {
                sql.lines()
                    .filter(|l| l.starts_with("UPDATE "))
                    .map(str::to_owned)
                    .collect()
            };
            assert_eq!(updates(s.sql), updates(p.sql));
        }
        for (i, m) in SQLITE.iter().enumerate() {
            assert_eq!(m.version, i64::try_from(i).unwrap() + 1, "consecutive");
        }
    }

    #[test]
    fn a_newer_database_is_refused() {
        assert!(check_not_newer(latest()).is_ok());
        assert!(check_not_newer(latest() + 1).is_err());
    }

    #[test]
    fn the_tables_are_the_ones_the_code_uses() {
        let tables: Vec<String> = shape(SQLITE[0].sql).into_iter().map(|t| t.0).collect();
        assert_eq!(tables, ["budgets", "holds", "entries", "alarm_outbox"]);
    }
}
