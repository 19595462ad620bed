//! Store errors.

use thiserror::Error;

/// What can go wrong in a store.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database refused an operation.
    #[error("database error in {operation}: {source}")]
    Database {
        /// What was being done.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: rusqlite::Error,
    },
    /// PostgreSQL refused an operation.
    #[error("PostgreSQL error in {operation}: {}", pg_reason(source))]
    Postgres {
        /// What was being done.
        operation: &'static str,
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },
    /// The database file cannot be opened or created.
    #[error("cannot open the store at {path}: {source}")]
    Open {
        /// Path of the database.
        path: String,
        /// The driver's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value does not have the expected shape (the file was altered or is from
    /// another program).
    #[error("corrupt value in {what} of {table}/{record_id}")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// Table.
        table: String,
        /// Record.
        record_id: String,
    },
    /// A write would be invalid.
    #[error("refused write of {table}/{record_id}: {reason}")]
    InvalidWrite {
        /// Table.
        table: String,
        /// Record.
        record_id: String,
        /// Why.
        reason: &'static str,
    },
    /// A lock protecting the connection was poisoned by a panic in another thread.
    #[error("the store's connection lock was poisoned; restart the process")]
    Poisoned,
}

/// The server's own words when there are some (the driver alone says only "db error").
fn pg_reason(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} (SQLSTATE {})", d.message(), d.code().code()),
        None => e.to_string(),
    }
}
