//! Who could have leaked these persons: the identities whose reads cover them, and how
//! likely an innocent identity with as many reads would cover them by chance.

use crate::mac_hash::MacSet;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// One read of one person, from the audit log.
#[derive(Debug, Clone)]
pub struct Access<'a> {
    /// Who read.
    pub identity: &'a str,
    /// Its role.
    pub role: &'a str,
    /// The person's record id.
    pub subject: &'a str,
    /// When, ms since the epoch.
    pub time_ms: u64,
}

/// An identity whose reads cover leaked persons.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    /// The identity.
    pub identity: String,
    /// Its role.
    pub role: String,
    /// Leaked persons it read.
    pub covered: u64,
    /// Leaked persons in all.
    pub of: u64,
    /// Distinct persons it read in all.
    pub read_in_all: u64,
    /// log10 of an upper bound on the chance that an identity reading as many persons
    /// at random covers this many leaked ones (−30 means one in 10³⁰).
    pub chance_log10: f64,
    /// First read of a leaked person, ms.
    pub first_ms: u64,
    /// Last read of a leaked person, ms.
    pub last_ms: u64,
}

#[derive(Default)]
struct Tally {
    role: String,
    all: HashSet<u64>,
    covered: HashSet<u64>,
    first: u64,
    last: u64,
}

/// Coverage less likely than this by chance (log10) names a source.
pub const SIGNIFICANT_LOG10: f64 = -6.0;

/// Tallies reads, then ranks identities by how unlikely their coverage is by chance.
pub struct Attribution<'a> {
    // Record ids (MAC outputs), borrowed from the verdicts: millions are not copied.
    leaked: MacSet<&'a str>,
    tallies: HashMap<String, Tally>,
    hasher: std::collections::hash_map::RandomState,
}

impl<'a> Attribution<'a> {
    /// Attribution of these leaked persons (record ids; the same id twice counts once).
    pub fn new(leaked: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            leaked: leaked.into_iter().collect(),
            tallies: HashMap::new(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Counts one successful read.
    pub fn read(&mut self, a: &Access<'_>) {
        use std::hash::BuildHasher;
        let k = self.hasher.hash_one(a.subject);
        let t = self.tallies.entry(a.identity.to_owned()).or_default();
        if t.role.is_empty() {
            a.role.clone_into(&mut t.role);
        }
        t.all.insert(k);
        if self.leaked.contains(a.subject) {
            t.covered.insert(k);
            t.first = if t.first == 0 {
                a.time_ms
            } else {
                t.first.min(a.time_ms)
            };
            t.last = t.last.max(a.time_ms);
        }
    }

    /// The identities whose coverage of the leaked persons chance does not explain (or the
    /// five least explained), most damning first. `persons` is the number of persons in the vault.
    pub fn candidates(&self, persons: u64) -> Vec<Candidate> {
        let n = self.leaked.len() as u64;
        let mut out: Vec<Candidate> = self
            .tallies
            .iter()
            .filter(|(_, t)| !t.covered.is_empty())
            .map(|(id, t)| {
                let c = t.covered.len() as u64;
                let p = (t.all.len() as f64 / persons.max(1) as f64).min(1.0);
                Candidate {
                    identity: id.clone(),
                    role: t.role.clone(),
                    covered: c,
                    of: n,
                    read_in_all: t.all.len() as u64,
                    chance_log10: tail_log10(n, c, p),
                    first_ms: t.first,
                    last_ms: t.last,
                }
            })
            .collect();
        out.sort_by(|a, b| {
            a.chance_log10
                .total_cmp(&b.chance_log10)
                .then(b.covered.cmp(&a.covered))
                .then(a.identity.cmp(&b.identity))
        });
        // Identities whose coverage luck cannot explain (one in a million); otherwise the
        // five best, for the analyst to weigh.
        let significant: Vec<Candidate> = out
            .iter()
            .filter(|c| c.chance_log10 <= SIGNIFICANT_LOG10)
            .cloned()
            .collect();
        if significant.is_empty() {
            out.truncate(5);
            out
        } else {
            significant
        }
    }
}

/// log10 of an upper bound on P(X ≥ c) for X ~ Binomial(n, p): the first term of the
/// tail divided by (1 − r), r the ratio of successive terms at c (they only shrink after
/// it). 0 when the coverage is not unlikely (c at or below the mean).
pub fn tail_log10(n: u64, c: u64, p: f64) -> f64 {
    if c == 0 || p >= 1.0 {
        return 0.0;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    let (nf, cf) = (n as f64, c as f64);
    if cf <= nf * p {
        return 0.0;
    }
    let mut ln_binom = 0.0;
    for i in 1..=c {
        ln_binom += ((n - c + i) as f64).ln() - (i as f64).ln();
    }
    let ln_term = ln_binom + cf * p.ln() + (nf - cf) * (1.0 - p).ln();
    let r = (nf - cf) / (cf + 1.0) * p / (1.0 - p);
    let ln_tail = ln_term - (1.0 - r).ln();
    (ln_tail / std::f64::consts::LN_10).min(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_bound_is_sane() {
        // Covering all 20 of 20 leaked persons having read 10% of the fund: 1e-20.
        assert!((tail_log10(20, 20, 0.1) + 20.0).abs() < 1e-6);
        // Covering 2 of 20 having read 10%: the mean, not unlikely.
        assert_eq!(tail_log10(20, 2, 0.1), 0.0);
        // 15 of 20 at 10%: far less likely than 5 of 20.
        assert!(tail_log10(20, 15, 0.1) < tail_log10(20, 5, 0.1));
        assert!(tail_log10(20, 5, 0.1) < 0.0);
    }

    #[test]
    fn the_reader_of_every_leaked_person_comes_first() {
        let leaked: Vec<String> = (0..30).map(|i| format!("p-{i}")).collect();
        let mut a = Attribution::new(leaked.iter().map(String::as_str));
        let subjects: Vec<String> = (0..1000).map(|i| format!("p-{i}")).collect();
        for s in &subjects[..30] {
            a.read(&Access {
                identity: "partner.x",
                role: "partner",
                subject: s,
                time_ms: 5,
            });
        }
        // A busy clerk read 400 persons, 12 of them leaked.
        for s in subjects.iter().skip(18).take(400) {
            a.read(&Access {
                identity: "clerk.busy",
                role: "clerk",
                subject: s,
                time_ms: 9,
            });
        }
        let c = a.candidates(1000);
        assert_eq!(c[0].identity, "partner.x");
        assert_eq!((c[0].covered, c[0].of), (30, 30));
        assert!(c[0].chance_log10 < -40.0, "{}", c[0].chance_log10);
        assert!(
            c.iter().all(|x| x.identity != "clerk.busy"),
            "12 of 30 having read 40% of the fund is what chance gives"
        );
    }
}
