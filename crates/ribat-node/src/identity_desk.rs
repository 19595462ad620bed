//! The console's identity desk over this node's CA (the embedded shape): requests in
//! `HOME/identity/console-requests.json`, issued on a second administrator's approval into
//! `HOME/identity/issued/NAME` (as `ribat identity add` does), revocations on one
//! administrator's word with who and why appended to `HOME/identity/revocations.jsonl`.

use crate::home::Home;
use ribat_gateway::identity_desk::{
    IdentityDesk, IdentityDeskError, IssueRequest, IssuedTo, MAX_DAYS,
};
use std::path::PathBuf;
use std::sync::Mutex;

/// Issued requests kept in the list after the pending ones.
const ISSUED_KEPT: usize = 50;
/// Roles whose certificates serve TLS: issued with their hosts on the command line, and
/// never revoked from a page this node serves with them.
const SERVER_ROLES: &[&str] = &["gateway", "custodian"];
/// The node's own roles: `service` opens the service keys (the blind index, the leak
/// digests), `export` reads under a recipient's name once two administrators approved an
/// export. Nobody is issued one from a page.
const INTERNAL_ROLES: &[&str] = &["service", "export"];

/// The desk over `home`'s CA.
pub struct NodeIdentities {
    home: Home,
    // One operation at a time: an approval and a revocation arriving together both count.
    lock: Mutex<()>,
}

impl NodeIdentities {
    /// A desk over the CA in `home`.
    pub fn new(home: Home) -> Self {
        Self {
            home,
            lock: Mutex::new(()),
        }
    }

    fn requests_file(&self) -> PathBuf {
        crate::identity::dir(&self.home).join("console-requests.json")
    }

    fn load(&self) -> Result<Vec<IssueRequest>, IdentityDeskError> {
        let p = self.requests_file();
        match std::fs::read(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| failed(format!("{} is damaged: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(failed(format!("cannot read {}: {e}", p.display()))),
        }
    }

    fn save(&self, all: &[IssueRequest]) -> Result<(), IdentityDeskError> {
        let json = serde_json::to_vec_pretty(all).map_err(failed)?;
        let p = self.requests_file();
        ribat_identity::ca::write_file(&p, &json, true)
            .map_err(|e| failed(format!("cannot write {}: {e}", p.display())))
    }

    fn locked<T>(
        &self,
        f: impl FnOnce() -> Result<T, IdentityDeskError>,
    ) -> Result<T, IdentityDeskError> {
        let _one = self
            .lock
            .lock()
            .map_err(|_| failed("the identity desk failed earlier"))?;
        f()
    }
}

fn failed(e: impl std::fmt::Display) -> IdentityDeskError {
    IdentityDeskError::Failed(e.to_string())
}

fn invalid(field: &'static str, why: impl Into<String>) -> IdentityDeskError {
    IdentityDeskError::Invalid {
        field,
        why: why.into(),
    }
}

fn now_s() -> i64 {
    ribat_clock::now_utc().unix_timestamp()
}

/// Names, roles and institutions: letters, digits, `.`, `-`, `_` (they become a directory,
/// a certificate's subject and a policy's key).
fn check(field: &'static str, value: &str) -> Result<(), IdentityDeskError> {
    ribat_identity::ca::check_name(value).map_err(|e| invalid(field, e.to_string()))
}

impl IdentityDesk for NodeIdentities {
    fn requests(&self) -> Result<Vec<IssueRequest>, IdentityDeskError> {
        self.locked(|| {
            let mut all = self.load()?;
            all.reverse();
            Ok(all)
        })
    }

    fn request(
        &self,
        by: &str,
        name: &str,
        role: &str,
        institution: &str,
        days: u32,
    ) -> Result<IssueRequest, IdentityDeskError> {
        check("name", name)?;
        check("role", role)?;
        check("institution", institution)?;
        if SERVER_ROLES.contains(&role) {
            return Err(invalid(
                "role",
                format!(
                    "a `{role}` certificate serves TLS: issue it with `ribat identity add --host …` on this node"
                ),
            ));
        }
        if INTERNAL_ROLES.contains(&role) {
            return Err(invalid(
                "role",
                format!(
                    "`{role}` is the node's own role (it opens service keys or runs approved exports); it is issued to nobody"
                ),
            ));
        }
        if days == 0 || days > MAX_DAYS {
            return Err(invalid("days", format!("from 1 to {MAX_DAYS} days")));
        }
        self.locked(|| {
            let register = crate::identity::open_ca(&self.home)
                .and_then(|ca| Ok(ca.register()?))
                .map_err(|e| failed(e.chain()))?;
            // A certificate's validity is the system's time's (TLS checks it so).
            let real_s = i64::try_from(ribat_clock::real_ms() / 1000).unwrap_or(i64::MAX);
            if register
                .iter()
                .any(|e| e.name == name && e.revoked_at.is_none() && e.not_after > real_s)
            {
                return Err(invalid(
                    "name",
                    format!("`{name}` holds a valid certificate; revoke it first, or choose another name"),
                ));
            }
            let mut all = self.load()?;
            if all.iter().any(|r| r.name == name && r.issued.is_none()) {
                return Err(invalid(
                    "name",
                    format!("a request for `{name}` already waits for a second administrator"),
                ));
            }
            let id = hex::encode(
                ribat_crypto::secret::SecretBytes::<8>::random()
                    .map_err(failed)?
                    .expose(),
            );
            let r = IssueRequest {
                id,
                name: name.to_owned(),
                role: role.to_owned(),
                institution: institution.to_owned(),
                days,
                requested_by: by.to_owned(),
                requested_at: now_s(),
                issued: None,
            };
            all.push(r.clone());
            // Pending ones stay; of the issued, the latest few (the file is oldest first).
            let issued = all.iter().filter(|r| r.issued.is_some()).count();
            let mut to_drop = issued.saturating_sub(ISSUED_KEPT);
            all.retain(|r| {
                let dropped = to_drop > 0 && r.issued.is_some();
                to_drop -= usize::from(dropped);
                !dropped
            });
            self.save(&all)?;
            Ok(r)
        })
    }

    fn approve(&self, id: &str, by: &str) -> Result<IssueRequest, IdentityDeskError> {
        self.locked(|| {
            let mut all = self.load()?;
            let Some(r) = all.iter_mut().find(|r| r.id == id) else {
                return Err(IdentityDeskError::Refused(format!(
                    "no request {id} on this node"
                )));
            };
            if r.issued.is_some() {
                return Err(IdentityDeskError::Refused(format!(
                    "`{}` is already issued",
                    r.name
                )));
            }
            if r.requested_by == by {
                return Err(IdentityDeskError::Refused(format!(
                    "{by} asked for `{}`; a second administrator must approve it",
                    r.name
                )));
            }
            let ca = crate::identity::open_ca(&self.home).map_err(|e| failed(e.chain()))?;
            let issued = ca
                .issue(
                    &r.name,
                    &r.role,
                    &r.institution,
                    &ribat_identity::ca::CertKind::Client,
                    r.days,
                )
                .map_err(failed)?;
            let dir = crate::identity::issued_dir(&self.home, &r.name);
            crate::identity::write_issued(&ca, &issued, &dir).map_err(|e| failed(e.chain()))?;
            if ribat_policy::REVIEWED_ROLES.contains(&r.role.as_str()) {
                ca.review(&r.name, now_s() + crate::reviews::DEFAULT_PERIOD_S)
                    .map_err(failed)?;
            }
            r.issued = Some(IssuedTo {
                approved_by: by.to_owned(),
                serial: issued.entry.serial.clone(),
                dir: dir.display().to_string(),
                at: now_s(),
            });
            let done = r.clone();
            self.save(&all)?;
            Ok(done)
        })
    }

    fn revoke(&self, name: &str, by: &str, reason: &str) -> Result<usize, IdentityDeskError> {
        check("name", name)?;
        let reason = reason.trim();
        if reason.is_empty() || reason.len() > 500 {
            return Err(invalid("reason", "say why, in at most 500 characters"));
        }
        if name == by {
            return Err(invalid(
                "name",
                "you cannot revoke your own certificate from the console you are using; another administrator can, or `ribat identity revoke` on this node",
            ));
        }
        self.locked(|| {
            let ca = crate::identity::open_ca(&self.home).map_err(|e| failed(e.chain()))?;
            let register = ca.register().map_err(failed)?;
            if register
                .iter()
                .any(|e| e.name == name && SERVER_ROLES.contains(&e.role.as_str()))
            {
                return Err(invalid(
                    "name",
                    format!("`{name}` is a server of this deployment; revoking it from its own page would cut the page off: use `ribat identity revoke --name {name}`"),
                ));
            }
            if !register
                .iter()
                .any(|e| e.name == name && e.revoked_at.is_none())
            {
                return Err(invalid(
                    "name",
                    format!("no unrevoked certificate named `{name}` in the register"),
                ));
            }
            // Who and why first: a revocation nobody can account for is worse than one
            // that failed and is tried again. (Only one that can happen is journalled.)
            let line = serde_json::json!({
                "name": name, "by": by, "reason": reason, "at": now_s(),
            });
            let journal = crate::identity::dir(&self.home).join("revocations.jsonl");
            append_line(&journal, &line.to_string())
                .map_err(|e| failed(format!("cannot write {}: {e}", journal.display())))?;
            ca.revoke(name).map_err(|e| invalid("name", e.to_string()))
        })
    }
}

/// Appends one line and syncs it.
fn append_line(path: &std::path::Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(format!("{line}\n").as_bytes())?;
    f.sync_data()
}
