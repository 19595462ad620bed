//! Bulk exports allowed through a mesh's log: `ribat mesh approve --export` and `ribat mesh
//! allow-export`.
//!
//! In a mesh, every custodian answers reads under the `export` role only within what two
//! administrators allowed through the log — so many distinct persons for one recipient,
//! until a time — whichever gateway node asks, and without an end user's token (the
//! allowance is the authority). A gateway node's export desk still files, approves and runs
//! the export as in one node; without the log's allowance its run is refused by the
//! custodians, so a node whose desk is forged or owned cannot read the fund in bulk.

use crate::bail;
use crate::error::Result;
use crate::mesh::{Proposed, propose};
pub use ribat_mesh::command::ExportStatement;
use ribat_mesh::command::kind;
use ribat_mesh::{Approval, Command};
use std::path::Path;

/// What administrators sign to allow export `id`: `persons` distinct persons read for
/// `recipient` until `until` (RFC 3339, e.g. `2026-12-08T18:00:00Z`).
pub fn statement(
    id: &str,
    recipient: &str,
    purpose: &str,
    persons: u64,
    until: &str,
) -> Result<ExportStatement> {
    if !(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())) {
        bail!("--export `{id}`: an export id is 16 hex digits, as the export desk filed it");
    }
    if recipient.is_empty() || purpose.is_empty() {
        bail!("--recipient and --purpose: as the export desk filed them");
    }
    if persons == 0 {
        bail!("--persons: how many persons the export reads, at least one");
    }
    let at = crate::mesh::time_ahead(
        "--until",
        until,
        7,
        "an export is allowed for a week at most; allow it again later",
    )?;
    Ok(ExportStatement {
        id: id.to_lowercase(),
        recipient: recipient.to_owned(),
        purpose: purpose.to_owned(),
        persons,
        until_ms: u64::try_from(at).unwrap_or(0).saturating_mul(1000),
    })
}

/// One administrator's approval of an export, made offline with their key.
pub fn approve(key: &Path, admin: &str, statement: &ExportStatement) -> Result<Approval> {
    crate::mesh::approve_as(key, admin, kind::EXPORT, statement)
}

/// Proposes the allowance with administrators' approvals (two distinct ones, neither the
/// recipient, or every node refuses it).
pub fn allow(dir: &Path, statement: ExportStatement, approvals: Vec<Approval>) -> Result<Proposed> {
    propose(
        dir,
        &Command::AllowExport {
            statement,
            approvals,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_statement_says_what_is_wrong_with_its_terms() {
        let soon = (time::OffsetDateTime::now_utc() + time::Duration::hours(2))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let s = statement("0123456789ABCDEF", "partner.y", "partner-export", 40, &soon).unwrap();
        assert_eq!(s.id, "0123456789abcdef");
        assert!(s.until_ms > 0);
        for (args, why) in [
            (("12", "partner.y", "p", 40, soon.as_str()), "16 hex digits"),
            (
                ("0123456789abcdef", "", "p", 40, soon.as_str()),
                "--recipient",
            ),
            (
                ("0123456789abcdef", "partner.y", "p", 0, soon.as_str()),
                "--persons",
            ),
            (
                ("0123456789abcdef", "partner.y", "p", 1, "tomorrow"),
                "RFC 3339",
            ),
            (
                (
                    "0123456789abcdef",
                    "partner.y",
                    "p",
                    1,
                    "2020-01-01T00:00:00Z",
                ),
                "has passed",
            ),
            (
                (
                    "0123456789abcdef",
                    "partner.y",
                    "p",
                    1,
                    "2999-01-01T00:00:00Z",
                ),
                "a week at most",
            ),
        ] {
            let e = statement(args.0, args.1, args.2, args.3, args.4)
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{e}");
        }
    }
}
