//! Bulk reads by allowance: reads under one role (in a mesh, `export`) answered only within
//! what was allowed to each identity — so many distinct records, until a time — and
//! refused otherwise, whoever asks. The allowances come from outside the custodian (a
//! mesh's log, where two administrators sign each); this hook only counts.
//!
//! The count lives in memory: a custodian that restarts counts afresh for allowances still
//! running. Allowances are short (an export is read once, within hours), which bounds what
//! that gives a gateway that asks again after a restart.

use crate::guard::PolicyHook;
use crate::request::PartialRequest;
use ribat_policy::Role;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

/// One allowance.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Allowed {
    id: String,
    records: u64,
    until: u64,
}

#[derive(Debug, Default)]
struct Book {
    allowed: BTreeMap<String, Vec<Allowed>>,
    read: BTreeMap<String, BTreeSet<String>>,
}

/// The allowances of one role, and what was read under them.
#[derive(Debug)]
pub struct Allowances {
    role: Role,
    book: Mutex<Book>,
}

impl Allowances {
    /// No allowance yet: every read under `role` is refused.
    pub fn new(role: Role) -> Self {
        Self {
            role,
            book: Mutex::new(Book::default()),
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        match self.book.lock() {
            Ok(b) => b,
            Err(p) => p.into_inner(),
        }
    }

    /// Lets `identity` read `records` more distinct records until `until` (Unix seconds),
    /// under allowance `id` (given twice, it counts once).
    pub fn allow(&self, id: &str, identity: &str, records: u64, until: u64) {
        let mut b = self.book();
        let list = b.allowed.entry(identity.to_owned()).or_default();
        if !list.iter().any(|a| a.id == id) {
            list.push(Allowed {
                id: id.to_owned(),
                records,
                until,
            });
        }
    }

    /// Whether `identity` holds an allowance running at `now` (Unix seconds).
    pub fn holds(&self, identity: &str, now: u64) -> bool {
        self.book()
            .allowed
            .get(identity)
            .is_some_and(|l| l.iter().any(|a| a.until > now))
    }

    /// The role it counts.
    pub fn role(&self) -> &Role {
        &self.role
    }
}

impl PolicyHook for Allowances {
    fn name(&self) -> &str {
        "allowance"
    }

    fn check(&self, req: &PartialRequest, now: u64) -> Result<(), String> {
        if req.requester.role != self.role {
            return Ok(());
        }
        let who = &req.requester.identity;
        let mut b = self.book();
        let allowed: u64 = b
            .allowed
            .get(who)
            .map(|l| l.iter().filter(|a| a.until > now).map(|a| a.records).sum())
            .unwrap_or(0);
        if allowed == 0 {
            return Err(format!(
                "no {} allowance for `{who}` is running: two administrators allow each one through the mesh's log (`ribat mesh approve --export`, `ribat mesh allow-export`)",
                self.role
            ));
        }
        let read = b.read.entry(who.clone()).or_default();
        let fresh: BTreeSet<&String> = req
            .record_ids
            .iter()
            .filter(|r| !read.contains(*r))
            .collect();
        if read.len() as u64 + fresh.len() as u64 > allowed {
            return Err(format!(
                "`{who}` may read {allowed} distinct records under its running allowances; {} read, {} more asked",
                read.len(),
                fresh.len()
            ));
        }
        let fresh: Vec<String> = fresh.into_iter().cloned().collect();
        read.extend(fresh);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Requester;
    use ribat_policy::{Class, Purpose, Table};

    fn req(role: Role, who: &str, ids: &[&str]) -> PartialRequest {
        PartialRequest {
            set: None,
            epoch: None,
            request_id: "r".into(),
            requester: Requester {
                identity: who.into(),
                role,
            },
            purpose: Purpose::PARTNER_EXPORT,
            table: Table::Persons,
            class: Class::IDENTITY,
            record_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            token: None,
            asked: None,
        }
    }

    #[test]
    fn an_identity_reads_as_many_distinct_records_as_allowed_while_allowed_and_no_more() {
        let a = Allowances::new(Role::EXPORT);
        let x = "export/partner.y";
        // Other roles pass; this role without an allowance does not.
        assert!(
            a.check(&req(Role::constant("clerk"), "c", &["p1"]), 10)
                .is_ok()
        );
        let e = a.check(&req(Role::EXPORT, x, &["p1"]), 10).unwrap_err();
        assert!(e.contains("no export allowance"), "{e}");
        a.allow("e1", x, 3, 100);
        a.allow("e1", x, 3, 100);
        assert!(a.holds(x, 10) && !a.holds(x, 100) && !a.holds("export/other", 10));
        assert!(a.check(&req(Role::EXPORT, x, &["p1", "p2"]), 10).is_ok());
        // The same record again costs nothing; a fourth distinct one is beyond three.
        assert!(a.check(&req(Role::EXPORT, x, &["p2", "p3"]), 10).is_ok());
        let e = a.check(&req(Role::EXPORT, x, &["p4"]), 10).unwrap_err();
        assert!(e.contains("may read 3 distinct records"), "{e}");
        assert!(a.check(&req(Role::EXPORT, x, &["p1"]), 10).is_ok());
        // A second allowance adds to the first; once both end, nothing is read.
        a.allow("e2", x, 1, 50);
        assert!(a.check(&req(Role::EXPORT, x, &["p4"]), 10).is_ok());
        assert!(a.check(&req(Role::EXPORT, x, &["p5"]), 10).is_err());
        assert!(a.check(&req(Role::EXPORT, x, &["p1"]), 100).is_err());
        // Another identity counts on its own.
        assert!(
            a.check(&req(Role::EXPORT, "export/z", &["p1"]), 10)
                .is_err()
        );
    }
}
