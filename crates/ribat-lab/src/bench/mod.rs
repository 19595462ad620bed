//! `ribat bench …`: each figure beside a baseline measured in the same run, on the same
//! machine, so that the ratio means something on any machine.
//!
//! | bench | baseline |
//! |---|---|
//! | `crypto` | the same fields under AES-256-GCM-SIV with one fixed key |
//! | `audit` | one fsync per entry of the same bytes on the same disk |
//! | `import` | the same files parsed the same way and inserted in clear into SQLite |
//! | `api` | the same reads from PostgreSQL with fields encrypted by pgcrypto |
//! | `leak` | parsing the same dump alone |
//! | `mesh` | the embedded node serving the same fund to the same clients |
//! | `rotate` | the same readers on the same node before the rotation |

pub mod api;
pub mod audit;
pub mod crypto;
pub mod import;
pub mod leak;
pub mod mesh;
pub mod node;
pub mod reads;
pub mod rotate;

/// What a benchmark with a database baseline fails with: the node's errors, or the
/// baseline database's own.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The node.
    #[error(transparent)]
    Node(#[from] ribat_node::NodeError),
    /// A file.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The plaintext SQLite baseline.
    #[error("baseline SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The pgcrypto baseline.
    #[error("baseline PostgreSQL: {0}")]
    Postgres(#[from] postgres::Error),
    /// A register the baseline parses.
    #[error(transparent)]
    Csv(#[from] ribat_import::csv_files::CsvError),
    /// The generated fund's files.
    #[error(transparent)]
    Files(#[from] ribat_sim::files::FilesError),
    /// Key material.
    #[error(transparent)]
    Crypto(#[from] ribat_crypto::CryptoError),
    /// The sealed import.
    #[error(transparent)]
    Import(#[from] ribat_import::importer::ImportError),
    /// The figures' JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A task of the async runtime.
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// An identity's certificate or key.
    #[error(transparent)]
    Identity(#[from] ribat_identity::IdentityError),
}
