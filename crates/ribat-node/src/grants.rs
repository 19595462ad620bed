//! The mesh's identity register: `ribat mesh approve --grant`, `mesh grant` and
//! `mesh identities`.
//!
//! In a mesh, the CA's key makes a certificate but does not let it in: every gateway and
//! custodian refuses a certificate (and a token bound to one) until two security
//! administrators have granted that very certificate (its thumbprint) through the log. So
//! whoever takes the CA's key alone, or a clerk who issues themselves a supervisor's
//! certificate, holds a certificate that no node answers.

use crate::bail;
use crate::error::{Context, Result};
use crate::mesh::{Proposed, propose, registration};
use ribat_mesh::command::{GrantStatement, kind};
use ribat_mesh::{Approval, Command};
use std::path::{Path, PathBuf};

pub use ribat_raft::serve::Identity;

/// The register entry of the certificate in `cert` (a `cert.pem`, or the directory
/// `identity add` wrote it into).
pub fn registration_of(cert: &Path) -> Result<ribat_mesh::Registration> {
    let file = if cert.is_dir() {
        cert.join("cert.pem")
    } else {
        cert.to_owned()
    };
    let pem = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read the certificate {}", file.display()))?;
    let der = ribat_identity::tls::certs_from_pem(&pem, &file.display().to_string())?;
    let first = der
        .first()
        .with_context(|| format!("{}: no certificate", file.display()))?;
    let entry = ribat_identity::ca::RegisterEntry::of_certificate(first.as_ref())
        .with_context(|| format!("{} is not a certificate of this deployment", file.display()))?;
    if entry.role == "node" {
        bail!(
            "{}: `{}` is a node certificate; nodes come in as members (`ribat mesh add-node`), not by grant",
            file.display(),
            entry.name
        );
    }
    Ok(registration(&entry))
}

/// Parses a review date (RFC 3339) into Unix seconds; it must be ahead, within a year.
pub fn review_date(text: &str) -> Result<i64> {
    crate::mesh::time_ahead(
        "--review-by",
        text,
        366,
        "a third party's access is reviewed within a year",
    )
}

/// What administrators sign to let the certificates in `certs` act in the mesh; the
/// third parties' among them (partners, batch systems) lapse at `review_by` unless
/// re-certified, and are refused without one.
pub fn statement(
    certs: &[PathBuf],
    reason: &str,
    review_by: Option<i64>,
) -> Result<GrantStatement> {
    if certs.is_empty() {
        bail!("--grant / --cert: at least one certificate to grant");
    }
    if reason.trim().is_empty() {
        bail!("--reason: why these certificates are let in (a ticket, a contract)");
    }
    let mut certificates = Vec::new();
    for c in certs {
        let mut r = registration_of(c)?;
        if ribat_mesh::command::REVIEWED_ROLES.contains(&r.role.as_str()) {
            r.review_by = Some(review_by.with_context(|| {
                format!(
                    "`{}` is a {} certificate, a third party's: give --review-by, the date its access lapses unless re-certified",
                    r.name, r.role
                )
            })?);
        }
        certificates.push(r);
    }
    Ok(GrantStatement {
        certificates,
        reason: reason.to_owned(),
    })
}

/// One administrator's approval of a grant, made offline with their key.
pub fn approve(key: &Path, admin: &str, statement: &GrantStatement) -> Result<Approval> {
    crate::mesh::approve_as(key, admin, kind::GRANT, statement)
}

/// Proposes a grant with administrators' approvals (two distinct ones, neither a holder, or
/// every node refuses it).
pub fn grant(dir: &Path, statement: GrantStatement, approvals: Vec<Approval>) -> Result<Proposed> {
    propose(
        dir,
        &Command::Grant {
            statement,
            approvals,
        },
    )
}

/// For a mesh on one machine whose ceremony's `admins/` directory is still beside the node
/// directories (`mesh up`, the demo, the simulation and the bench): grants `certs` with the
/// first two administrators' keys found there, through `via`. On real hosts each
/// administrator signs with their own key (`mesh approve --grant`).
pub fn grant_by_ceremony_admins(
    out: &Path,
    via: &Path,
    certs: &[PathBuf],
    reason: &str,
) -> Result<Proposed> {
    // Third parties come back for review in 90 days.
    let review = ribat_clock::now_utc() + time::Duration::days(90);
    grant_by_ceremony_admins_until(out, via, certs, reason, review.unix_timestamp())
}

/// Same, the third parties among `certs` to be reviewed by `review_by` (Unix seconds).
pub fn grant_by_ceremony_admins_until(
    out: &Path,
    via: &Path,
    certs: &[PathBuf],
    reason: &str,
    review_by: i64,
) -> Result<Proposed> {
    let st = statement(certs, reason, Some(review_by))?;
    let admins = crate::mesh::MeshFile::read(via)?.admins;
    let mut approvals = Vec::new();
    for a in admins.iter().take(2) {
        let key = out.join("admins").join(format!("{}.key", a.name));
        approvals.push(approve(&key, &a.name, &st).with_context(|| {
            format!(
                "administrator {}'s key is not in {}/admins (on real hosts, each administrator runs `ribat mesh approve --grant`)",
                a.name,
                out.display()
            )
        })?);
    }
    grant(via, st, approvals)
}

/// One administrator re-certifies the third party's certificate with serial `serial`
/// until `review_by` (after reviewing its access), through the node in `dir`.
pub fn recertify(
    dir: &Path,
    key: &Path,
    admin: &str,
    serial: &str,
    review_by: i64,
    reason: &str,
) -> Result<Proposed> {
    let serial = serial.trim().to_ascii_lowercase();
    if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "--serial `{serial}`: a certificate serial in hex, as `ribat mesh identities` shows it"
        );
    }
    if reason.trim().is_empty() {
        bail!("--reason: what was reviewed (a contract, a ticket)");
    }
    let statement = ribat_mesh::command::RecertifyStatement {
        serial,
        review_by,
        reason: reason.to_owned(),
    };
    let approval = crate::mesh::approve_as(key, admin, kind::RECERTIFY, &statement)?;
    propose(
        dir,
        &Command::Recertify {
            statement,
            approvals: vec![approval],
        },
    )
}

/// The identity register as the node in `dir` holds it.
pub fn list(dir: &Path) -> Result<Vec<Identity>> {
    crate::mesh::ask_own_node(dir, ribat_raft::serve::IDENTITIES)
}

/// The register as a table.
pub fn render(identities: &[Identity]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<28} {:<14} {:<20} {:<34} {:<8} {:<12} GRANTED BY",
        "NAME", "ROLE", "INSTITUTION", "SERIAL", "STATE", "REVIEW BY"
    );
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for i in identities {
        let r = &i.registration;
        let state = match (i.revoked, r.not_after <= now, r.review_by) {
            (true, _, _) => "revoked",
            (false, true, _) => "expired",
            (false, false, Some(due)) if due <= now => "lapsed",
            (false, false, Some(due)) if due - now <= crate::reviews::NOTICE_S => "due",
            _ => "granted",
        };
        let review = r.review_by.map_or("-".to_owned(), |d| {
            ribat_custodian::error_utc(u64::try_from(d).unwrap_or(0))
                .chars()
                .take(10)
                .collect()
        });
        let _ = writeln!(
            out,
            "{:<28} {:<14} {:<20} {:<34} {:<8} {:<12} {}",
            r.name,
            r.role,
            r.institution,
            r.serial,
            state,
            review,
            i.granted_by.join("+")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_names_its_certificates_and_refuses_node_ones_and_no_reason() {
        let d = tempfile::tempdir().unwrap();
        let ca = ribat_identity::Ca::init(d.path(), "test").unwrap();
        let write = |name: &str, role: &str| {
            let issued = ca
                .issue(
                    name,
                    role,
                    "agency-1",
                    &ribat_identity::CertKind::Client,
                    30,
                )
                .unwrap();
            let dir = d.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("cert.pem"), &issued.cert_pem).unwrap();
            (dir, issued.entry)
        };
        let (clerk, entry) = write("clerk.amal", "clerk");
        let st = statement(std::slice::from_ref(&clerk), "ticket 12", None).unwrap();
        assert_eq!(st.certificates, vec![registration(&entry)]);
        let (node, _) = write("node-9", "node");
        let e = statement(&[clerk.clone(), node], "ticket 12", None).unwrap_err();
        assert!(e.to_string().contains("node certificate"), "{e}");
        let e = statement(std::slice::from_ref(&clerk), " ", None).unwrap_err();
        assert!(e.to_string().contains("--reason"), "{e}");
        let (partner, _) = write("partner.delta", "partner");
        let e = statement(std::slice::from_ref(&partner), "ticket 12", None).unwrap_err();
        assert!(e.to_string().contains("--review-by"), "{e}");
        let st = statement(&[partner, clerk.clone()], "ticket 12", Some(99)).unwrap();
        assert_eq!(st.certificates[0].review_by, Some(99));
        assert_eq!(st.certificates[1].review_by, None, "staff are not reviewed");
        let e = statement(&[], "ticket 12", None).unwrap_err();
        assert!(e.to_string().contains("at least one"), "{e}");
        std::fs::write(clerk.join("cert.pem"), "garbage").unwrap();
        assert!(statement(&[clerk], "ticket 12", None).is_err());
    }
}
