//! The node's leak desk as the gateway sees it: dumps the security team uploads from the
//! console, scanned by the node in the background (`ribat leak scan`'s work), and the
//! two-administrator step that opens the data-protection authority's notification list.
//!
//! Must never: hold a dump's rows in the gateway (they are streamed to the node's disk),
//! show a leaked value (the report names classes, counts, record-free identities of
//! readers), keep the notification list at rest, or make it before two distinct security administrators
//! approved it.

use serde::{Deserialize, Serialize};

/// Largest dump taken in one upload (a whole fund's register is about 250 MB; a dump of
/// every field of it several times that).
pub const MAX_DUMP: u64 = 4 * 1024 * 1024 * 1024;

/// Where one uploaded dump stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeakPhase {
    /// On disk, waiting for the scanner.
    Queued,
    /// Being scanned.
    Scanning,
    /// Scanned: the report is there (the dump itself is deleted).
    Done,
    /// The scan failed (why in `error`); upload it again.
    Failed,
}

/// One uploaded dump: what was sent, where its scan stands, its report once scanned and
/// the notification step. Never a row's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakState {
    /// Scan id (16 hex digits, in upload order).
    pub id: String,
    /// The file's name as uploaded (letters, digits, `._-` only; others replaced).
    pub file: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Who uploaded it.
    pub by: String,
    /// When (Unix seconds).
    pub uploaded_at: i64,
    /// Where it stands.
    pub phase: LeakPhase,
    /// Rows classified so far.
    pub rows_done: u64,
    /// The report, once scanned.
    pub report: Option<LeakReport>,
    /// Why the scan failed.
    pub error: Option<String>,
    /// Security administrators who approved writing the notification list, in order.
    pub approvals: Vec<String>,
    /// The notification list, once written.
    pub notification: Option<Notification>,
}

/// What a scan found, as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakReport {
    /// One sentence for the top of the page.
    pub headline: String,
    /// Rows read.
    pub rows: u64,
    /// Rows by class (`genuine-current`, `genuine-older`, `altered`, `fabricated`,
    /// `honey`, `canary`, `unmatched`), every class present even at zero.
    pub classes: Vec<(String, u64)>,
    /// Real persons of the fund the dump names by genuine or altered rows: whom the
    /// notification list would name.
    pub affected_persons: u64,
    /// Altered rows by field.
    pub altered_fields: Vec<(String, u64)>,
    /// Lines skipped (unreadable, not a row), with the reasons counted.
    pub skipped: Vec<(String, u64)>,
    /// Files refused whole, with why.
    pub refused: Vec<(String, String)>,
    /// Honey records in the dump, with who ever asked for them.
    pub honey: Vec<(String, Vec<String>)>,
    /// Export canaries in the dump: the recipient they name, rows.
    pub canaries: Vec<(String, u64)>,
    /// Identities whose reads cover the leaked persons, most likely first.
    pub candidates: Vec<LeakCandidate>,
    /// The latest month in the dump, and in the vault for those persons.
    pub latest_period_in_dump: Option<String>,
    /// See `latest_period_in_dump`.
    pub latest_period_in_vault: Option<String>,
    /// Seconds the scan took.
    pub seconds: f64,
}

/// An identity whose reads cover the leaked persons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeakCandidate {
    /// Who.
    pub identity: String,
    /// Its role.
    pub role: String,
    /// Leaked persons it read.
    pub covered: u64,
    /// Leaked persons in all.
    pub of: u64,
    /// log10 of the chance that reads as wide as its own cover this many by chance.
    pub chance_log10: f64,
    /// Its first and last read of them (ms).
    pub first_ms: u64,
    /// See `first_ms`.
    pub last_ms: u64,
}

/// The notification list of a scan, once two administrators approved it. The list itself
/// is made through the custodians at each fetch and kept nowhere on the node (I4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Persons it names.
    pub persons: u64,
    /// When the second administrator approved it (Unix seconds).
    pub approved_at: i64,
    /// Each fetch: who, when (Unix seconds); recorded before anything is decrypted.
    pub fetched: Vec<(String, i64)>,
}

/// Why a leak operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum LeakDeskError {
    /// No such scan.
    #[error("{0}")]
    NotFound(String),
    /// Not now or not by this caller (not scanned yet, the same administrator twice).
    #[error("{0}")]
    Refused(String),
    /// The node failed (disk, store, custodians).
    #[error("{0}")]
    Failed(String),
}

/// The node's side: where dumps are kept, the background scans, the notification list.
pub trait LeakDesk: Send + Sync {
    /// A new scan id and the path its dump is written to (not yet queued).
    fn place(&self) -> Result<(String, std::path::PathBuf), LeakDeskError>;
    /// Queues the dump written at `place`'s path (complete and synced) for scanning.
    fn queue(
        &self,
        id: &str,
        file: &str,
        bytes: u64,
        sha256: &str,
        by: &str,
    ) -> Result<LeakState, LeakDeskError>;
    /// Where a scan stands.
    fn state(&self, id: &str) -> Result<LeakState, LeakDeskError>;
    /// Every scan, newest first.
    fn list(&self) -> Result<Vec<LeakState>, LeakDeskError>;
    /// `admin`'s approval of the notification list; the second distinct administrator's
    /// makes it fetchable.
    fn approve_notification(&self, id: &str, admin: &str) -> Result<LeakState, LeakDeskError>;
    /// The notification list (CSV), fetched by `who` (recorded first): each person's
    /// identity decrypted by the custodians under purpose `breach-notification`, every read
    /// audited.
    fn fetch_notification(&self, id: &str, who: &str) -> Result<Vec<u8>, LeakDeskError>;
}

/// A dump's name as kept: letters, digits and `._-`, at most 64 bytes; anything else
/// becomes `_` (the name is shown on pages and never used as a path).
pub fn clean_file_name(name: &str) -> String {
    let cleaned: String = name
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        "dump".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_name_is_kept_without_paths_or_markup() {
        assert_eq!(clean_file_name("cnss-2025.csv"), "cnss-2025.csv");
        assert_eq!(clean_file_name("C:\\Users\\x\\dump 1.csv"), "dump_1.csv");
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("<script>.csv"), "_script_.csv");
        assert_eq!(clean_file_name(".."), "dump");
        assert_eq!(clean_file_name(""), "dump");
        assert_eq!(clean_file_name(&"a".repeat(100)).len(), 64);
    }
}
