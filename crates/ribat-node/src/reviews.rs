//! Third parties' access reviews, in every shape: a partner's or batch system's certificate
//! carries a review date; a week before it the gateway raises a `review-due` finding once a
//! day, and from it on the gateway refuses the certificate (`certificate-review-lapsed`)
//! until a security administrator re-certifies it to a later date. In a mesh the dates
//! travel in the replicated identity register ([`crate::grants`]); on one node they sit in
//! the CA's register (`identity add --review-by`, `identity recertify`), read here.
//!
//! Essential roles are kept past their date: a role the detection rules list as essential
//! (`essential-roles`: by default the pension batch, among the fund's own) is not suspended
//! when its review lapses — pensions must be paid — and its finding goes on every day
//! until someone re-certifies it.

use crate::error::Result;
use crate::home::Home;
use ribat_custodian::clock::Clock;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How long before its review date a third party's access raises a finding.
pub const NOTICE_S: i64 = 7 * 86_400;
/// A third party's review date when `identity add` is given none.
pub const DEFAULT_PERIOD_S: i64 = 90 * 86_400;

/// A certificate whose review is due (a week away or past).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// Its holder.
    pub identity: String,
    /// Its role.
    pub role: String,
    /// Its serial.
    pub serial: String,
    /// The review date, Unix seconds.
    pub due_s: i64,
}

impl Due {
    /// The finding's event, as the gateway's detectors and the SIEM take it.
    pub fn event(&self, time_ms: u64, component: &str) -> ribat_detect::Event {
        ribat_detect::Event {
            time_ms,
            component: component.to_owned(),
            kind: ribat_detect::Kind::ReviewDue {
                identity: self.identity.clone(),
                role: self.role.clone(),
                serial: self.serial.clone(),
                due_s: self.due_s,
            },
        }
    }

    /// The node log's line.
    pub fn line(&self, how: &str) -> String {
        format!(
            "finding: review due — the access of {} ({}, serial {}) lapses at {} unless a security administrator re-certifies it ({how})",
            self.identity,
            self.role,
            self.serial,
            ribat_custodian::error_utc(u64::try_from(self.due_s).unwrap_or(0))
        )
    }
}

/// Says each due review once a day: what is due now among `(identity, role, serial,
/// review date)` and was not said in the last day.
#[derive(Debug, Default)]
pub struct Notices {
    said: BTreeMap<(String, i64), i64>,
}

impl Notices {
    /// The reviews to raise now, at `now_s`.
    pub fn due<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (&'a str, &'a str, &'a str, i64)>,
        now_s: i64,
    ) -> Vec<Due> {
        let mut out = Vec::new();
        for (identity, role, serial, due_s) in entries {
            if due_s - now_s > NOTICE_S {
                continue;
            }
            let key = (serial.to_owned(), due_s);
            if self.said.get(&key).is_some_and(|t| now_s - t < 86_400) {
                continue;
            }
            self.said.insert(key, now_s);
            out.push(Due {
                identity: identity.to_owned(),
                role: role.to_owned(),
                serial: serial.to_owned(),
                due_s,
            });
        }
        out
    }
}

/// The roles kept past their review date: the rules' essential roles, from the start-up
/// rules file and then from each version of the rules the mesh's log puts in force.
#[derive(Debug)]
pub struct Essential {
    start_up: std::collections::BTreeSet<String>,
    in_force: Mutex<Option<(u64, std::collections::BTreeSet<String>)>>,
}

impl Essential {
    /// The essential roles of the rules file at `path` (the default rules' when it cannot
    /// be read: the node names that file in its attestation, and peers judge it).
    pub fn from_rules_file(path: &std::path::Path) -> Self {
        let rules = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| ribat_detect::Rules::from_json(&t).ok())
            .unwrap_or_default();
        Self {
            start_up: rules.essential_roles,
            in_force: Mutex::new(None),
        }
    }

    /// Whether `role` is essential by the rules in force (`version` and `document`, when
    /// the log put some in force; else the start-up file's).
    pub fn contains(&self, role: &str, in_force: Option<(u64, &str)>) -> bool {
        let Some((version, document)) = in_force else {
            return self.start_up.contains(role);
        };
        let Ok(mut c) = self.in_force.lock() else {
            return false;
        };
        if c.as_ref().is_none_or(|(v, _)| *v != version) {
            let roles = ribat_detect::Rules::from_json(document)
                .map(|r| r.essential_roles)
                .unwrap_or_default();
            *c = Some((version, roles));
        }
        c.as_ref().is_some_and(|(_, roles)| roles.contains(role))
    }
}

/// The CA's register on a node, re-read when the file changes: the review dates of its
/// third parties, by serial.
pub struct Register {
    path: PathBuf,
    cache: Mutex<(
        Option<std::time::SystemTime>,
        Vec<ribat_identity::ca::RegisterEntry>,
    )>,
}

impl Register {
    /// The register in `home`'s identity directory.
    pub fn of(home: &Home) -> Self {
        Self {
            path: crate::identity::dir(home).join(ribat_identity::ca::REGISTER),
            cache: Mutex::new((None, Vec::new())),
        }
    }

    /// Its entries now (the last good read when the file cannot be read).
    pub fn entries(&self) -> Vec<ribat_identity::ca::RegisterEntry> {
        self.read(<[_]>::to_vec)
    }

    /// The role of the certificate with `serial` when it is a third party's whose review
    /// date is past. On every request of a gateway: looks in place, copies nothing.
    pub fn lapsed(&self, serial: &str, now_s: i64) -> Option<String> {
        self.read(|entries| {
            entries
                .iter()
                .find(|e| e.serial == serial && e.review_by.is_some_and(|d| d <= now_s))
                .map(|e| e.role.clone())
        })
    }

    /// `f` over the entries, re-read first when the file changed.
    fn read<T>(&self, f: impl FnOnce(&[ribat_identity::ca::RegisterEntry]) -> T) -> T {
        let stamp = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let Ok(mut c) = self.cache.lock() else {
            return f(&[]);
        };
        if c.0 != stamp || stamp.is_none() {
            match std::fs::read_to_string(&self.path)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
            {
                Some(e) => *c = (stamp, e),
                None => eprintln!(
                    "warning: cannot read the register {}; keeping the last one read",
                    self.path.display()
                ),
            }
        }
        f(&c.1)
    }
}

/// On one node (`ribat serve`, the simulator): the gateway also refuses a third party's
/// certificate past its review date, by `clock`, unless its role is essential by the
/// node's rules.
pub fn vet_on_node(
    home: &Home,
    tls: &ribat_identity::tls::ServerTls,
    clock: Arc<dyn Clock>,
) -> Result<Arc<Register>> {
    let register = Arc::new(Register::of(home));
    let essential = Essential::from_rules_file(&home.root().join(crate::serve::RULES_FILE));
    let r = register.clone();
    tls.also_vetted_by(Arc::new(move |c: &ribat_identity::tls::CertRef<'_>| {
        let now = i64::try_from(clock.now()).unwrap_or(i64::MAX);
        r.lapsed(c.serial, now)
            .filter(|role| !essential.contains(role, None))
            .map(|_| ribat_identity::tls::Refused::Lapsed)
    }))?;
    Ok(register)
}

/// Raises on `watch` the reviews due in the node's register now (by the watch's clock),
/// once a day each; returns them.
pub fn raise_due(
    register: &Register,
    notices: &mut Notices,
    watch: &ribat_gateway::watch::Watch,
    component: &str,
) -> Vec<Due> {
    let now_ms = watch.clock().now_ms();
    let entries = register.entries();
    let live = entries
        .iter()
        .filter(|e| e.revoked_at.is_none())
        .filter_map(|e| {
            Some((
                e.name.as_str(),
                e.role.as_str(),
                e.serial.as_str(),
                e.review_by?,
            ))
        });
    let now_s = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
    let due = notices.due(live, now_s);
    for d in &due {
        eprintln!("{}", d.line("`ribat identity recertify`"));
        watch.observe(&d.event(now_ms, component));
    }
    due
}

/// `identity recertify`: the third party `name`'s access goes on until `review_by`.
pub fn recertify(home: &Home, name: &str, review_by: i64) -> Result<()> {
    let n = crate::identity::open_ca(home)?.review(name, review_by)?;
    println!(
        "re-certified {n} certificate(s) of `{name}` until {}",
        ribat_custodian::error_utc(u64::try_from(review_by).unwrap_or(0))
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_is_due_a_week_ahead_and_said_once_a_day() {
        let mut n = Notices::default();
        let day = 86_400;
        let entries = |due: i64| vec![("partner.x", "partner", "0a", due)];
        assert!(
            n.due(entries(100 * day), 92 * day).is_empty(),
            "eight days ahead"
        );
        let first = n.due(entries(100 * day), 93 * day);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].due_s, 100 * day);
        assert!(
            n.due(entries(100 * day), 93 * day + 3_600).is_empty(),
            "again within the day"
        );
        assert_eq!(n.due(entries(100 * day), 94 * day).len(), 1, "the next day");
        // Re-certified to a later date: quiet until that one is a week away.
        assert!(n.due(entries(200 * day), 95 * day).is_empty());
    }

    #[test]
    fn essential_roles_come_from_the_rules_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rules.json");
        // No file: the default rules', where the pension batch is essential.
        let e = Essential::from_rules_file(&file);
        assert!(e.contains("pension-batch", None));
        assert!(!e.contains("partner", None));
        // Rules put in force through the log decide from their version on.
        let rules = ribat_detect::Rules {
            essential_roles: ["partner".to_owned()].into(),
            ..Default::default()
        };
        let doc = serde_json::to_string(&rules).unwrap();
        assert!(e.contains("partner", Some((2, &doc))));
        assert!(!e.contains("pension-batch", Some((2, &doc))));
        // A document that does not parse makes nobody essential.
        assert!(!e.contains("pension-batch", Some((3, "{"))));
    }
}
