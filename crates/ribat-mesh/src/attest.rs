//! What a node says it runs (its attestation), the releases two administrators allow, and
//! how every node judges another by them.
//!
//! A node signs, at start and at a fixed interval, a [`Measurement`]: the SHA-256 of its
//! own executable, the digest of the `Cargo.lock` it was built from, the digests of the
//! policy and rules its parts decide and detect by, of its configuration, its key
//! dependencies' versions, its kernel and when it started. The statement travels through
//! the log like any entry; each node judges every member's latest one with its own clock
//! ([`judge`]) against the **allowed set** in the replicated state: the releases two
//! administrators allowed (and not retired past their grace period), and the documents the
//! ceremony or the log put in force. A member whose statement is missing, stale, or outside
//! that set is isolated: custodians stop answering it, gateways stop asking it.
//!
//! What this proves, without a TPM: drift, misconfiguration, a forgotten upgrade, a rules
//! file edited by hand, a binary swapped by someone who cannot also take the node's key.
//! What it cannot: a root attacker on the host signs whatever measurement they like with
//! the node's key. Their lie is signed and kept in the log, evidence afterwards.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A build of Ribat: what two administrators allow nodes to run.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Release {
    /// Its version, as the binary says (`ribat --version`).
    pub version: String,
    /// Hex SHA-256 of the executable.
    pub binary: String,
    /// Hex SHA-256 of the `Cargo.lock` it was built from (compiled in).
    pub lock: String,
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (binary {})", self.version, short(&self.binary))
    }
}

/// The first 12 hex digits of a digest, for people.
pub fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}

/// What a node runs, as it measured itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measurement {
    /// Its build.
    pub release: Release,
    /// Hex SHA-256 of each document its parts decide or detect by: `policy` (the gateway's
    /// and the ceremony's), `custodian-policy` (its custodian's), `rules`.
    pub documents: BTreeMap<String, String>,
    /// Hex SHA-256 of its `mesh.json` (shown, not judged: each node's differs).
    pub config: String,
    /// Versions of its key dependencies (from the compiled-in `Cargo.lock`).
    pub deps: BTreeMap<String, String>,
    /// The kernel it runs on (`/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// When its process started, ms since the epoch.
    pub started_ms: u64,
}

/// A node's signed statement of what it runs, at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The member.
    pub node: String,
    /// When it measured, ms since the epoch by its clock: strictly increasing per node, so
    /// that an old statement cannot be replayed.
    pub at_ms: u64,
    /// What it runs.
    pub measurement: Measurement,
}

/// Largest attestation the state takes (a member cannot bloat every node's state).
pub const MAX_ATTESTATION_BYTES: usize = 8 << 10;

/// The statement two administrators sign to allow a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowReleaseStatement {
    /// The build.
    pub release: Release,
    /// Why (a change ticket, the release notes).
    pub reason: String,
}

/// The statement two administrators sign to retire a release: nodes still on it are
/// listed as drifting, and isolated once the rules' grace period has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetireStatement {
    /// Hex SHA-256 of the retired executable.
    pub binary: String,
    /// Why: an advisory's id (CVE, RUSTSEC, the fund's own).
    pub advisory: String,
    /// When the administrators retired it, ms since the epoch (signed by them: the grace
    /// period counts from here, by each node's clock).
    pub at_ms: u64,
}

/// A release in the allowed set, and who allowed (and perhaps retired) it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowed {
    /// The build.
    pub release: Release,
    /// Who allowed it ([`crate::state::CEREMONY`] for the ceremony's).
    pub by: BTreeSet<String>,
    /// Its retirement, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<Retired>,
}

/// A release's retirement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retired {
    /// The advisory.
    pub advisory: String,
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// Who retired it.
    pub by: BTreeSet<String>,
}

/// What the ceremony puts in the allowed set, and how often nodes attest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestGenesis {
    /// How often each node attests, ms.
    pub every_ms: u64,
    /// The releases allowed from the start (the ceremony's own build).
    pub releases: Vec<Release>,
    /// Digests of the policies the ceremony wrote (the gateway's and the custodians').
    pub policy: BTreeSet<String>,
    /// Digest of the rules the ceremony wrote.
    pub rules: BTreeSet<String>,
}

/// Missed intervals after which a statement is stale.
pub const STALE_AFTER: u64 = 3;
/// How far ahead of the judging node's clock a statement may claim to be.
pub const AHEAD_MS: u64 = 30_000;

/// Why a member is isolated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "kebab-case")]
pub enum Why {
    /// It never attested since this node knew it.
    Missing,
    /// Its latest statement is older than [`STALE_AFTER`] intervals.
    Stale {
        /// When it was made.
        at_ms: u64,
        /// How old it was when judged, ms.
        age_ms: u64,
    },
    /// Its latest statement claims a time ahead of this node's clock.
    Ahead {
        /// The time it claims.
        at_ms: u64,
    },
    /// It runs a build that is not in the allowed set.
    UnknownRelease {
        /// What it runs.
        release: Release,
    },
    /// It runs a retired build past the grace period.
    Retired {
        /// What it runs.
        release: Release,
        /// The retirement's advisory.
        advisory: String,
    },
    /// A document it decides or detects by is none the ceremony or the log put in force.
    Document {
        /// Which (`policy`, `custodian-policy`, `rules`).
        name: String,
        /// Its digest.
        digest: String,
    },
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => write!(f, "it has not attested"),
            Self::Stale { age_ms, .. } => write!(
                f,
                "its last attestation is stale ({:.1} s old: down, cut off, or no longer attesting)",
                *age_ms as f64 / 1000.0
            ),
            Self::Ahead { at_ms } => {
                write!(
                    f,
                    "its attestation claims a time ahead of this clock ({at_ms} ms)"
                )
            }
            Self::UnknownRelease { release } => write!(
                f,
                "it runs {release} (Cargo.lock {}), not in the allowed set",
                short(&release.lock)
            ),
            Self::Retired { release, advisory } => write!(
                f,
                "it runs {release}, retired for {advisory}, past the grace period"
            ),
            Self::Document { name, digest } => write!(
                f,
                "its {name} ({}) is none the ceremony or the log put in force",
                short(digest)
            ),
        }
    }
}

/// How a node judges a member now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum Verdict {
    /// On an allowed build, deciding by documents in force, recently.
    Attested {
        /// What it runs.
        release: Release,
        /// When it last attested.
        at_ms: u64,
    },
    /// On a retired build, within the grace period: a finding, not yet isolated.
    Drifting {
        /// What it runs.
        release: Release,
        /// The retirement's advisory.
        advisory: String,
        /// When it is isolated unless it moves to an allowed build.
        isolate_at_ms: u64,
        /// When it last attested.
        at_ms: u64,
    },
    /// Not attested yet, within the first intervals since this node knew it.
    Awaiting,
    /// Cut off: its custodian is not asked, its gateway not answered.
    Isolated {
        /// Why.
        why: Why,
        /// Its latest statement's build, if it made one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        release: Option<Release>,
    },
}

impl Verdict {
    /// Whether the member is cut off.
    pub fn is_isolated(&self) -> bool {
        matches!(self, Self::Isolated { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Attested { release, .. } => write!(f, "attested: {release}"),
            Self::Drifting {
                release, advisory, ..
            } => write!(f, "drifting: {release}, retired for {advisory}"),
            Self::Awaiting => write!(f, "awaiting its first attestation"),
            Self::Isolated { why, .. } => write!(f, "isolated: {why}"),
        }
    }
}

/// The allowed set, as the replicated state holds it.
pub struct AllowedSet<'a> {
    /// Releases, by binary digest.
    pub releases: &'a BTreeMap<String, Allowed>,
    /// Policy digests put in force (by the ceremony or the log).
    pub policy: &'a BTreeSet<String>,
    /// Rules digests put in force.
    pub rules: &'a BTreeSet<String>,
    /// How often members attest, ms.
    pub every_ms: u64,
}

/// The judging node's circumstances: its clock and what it knows.
#[derive(Debug, Clone, Copy)]
pub struct Judging {
    /// Now, by the judging node's clock (ms since the epoch).
    pub now_ms: u64,
    /// Since when it has known the member (its own start, or the member's addition).
    pub known_since_ms: u64,
    /// The rules' grace period for a retired build, ms.
    pub grace_ms: u64,
}

/// Judges a member's latest statement against the allowed set. Fails closed: anything
/// not positively in the set isolates.
pub fn judge(latest: Option<&Attestation>, set: &AllowedSet<'_>, at: Judging) -> Verdict {
    let window = set.every_ms.saturating_mul(STALE_AFTER);
    let Some(a) = latest else {
        if at.now_ms >= at.known_since_ms.saturating_add(window) {
            return Verdict::Isolated {
                why: Why::Missing,
                release: None,
            };
        }
        return Verdict::Awaiting;
    };
    let release = &a.measurement.release;
    let isolated = |why: Why| Verdict::Isolated {
        why,
        release: Some(release.clone()),
    };
    if a.at_ms > at.now_ms.saturating_add(AHEAD_MS.max(set.every_ms)) {
        return isolated(Why::Ahead { at_ms: a.at_ms });
    }
    if at.now_ms > a.at_ms.saturating_add(window) {
        return isolated(Why::Stale {
            at_ms: a.at_ms,
            age_ms: at.now_ms - a.at_ms,
        });
    }
    let allowed = match set.releases.get(&release.binary) {
        Some(al) if al.release == *release => al,
        _ => {
            return isolated(Why::UnknownRelease {
                release: release.clone(),
            });
        }
    };
    for (name, digest) in &a.measurement.documents {
        let put_in_force = match name.as_str() {
            "rules" => set.rules,
            _ => set.policy,
        };
        if !put_in_force.contains(digest) {
            return isolated(Why::Document {
                name: name.clone(),
                digest: digest.clone(),
            });
        }
    }
    match &allowed.retired {
        None => Verdict::Attested {
            release: release.clone(),
            at_ms: a.at_ms,
        },
        Some(r) => {
            let isolate_at_ms = r.at_ms.saturating_add(at.grace_ms);
            if at.now_ms >= isolate_at_ms {
                isolated(Why::Retired {
                    release: release.clone(),
                    advisory: r.advisory.clone(),
                })
            } else {
                Verdict::Drifting {
                    release: release.clone(),
                    advisory: r.advisory.clone(),
                    isolate_at_ms,
                    at_ms: a.at_ms,
                }
            }
        }
    }
}

/// Whether `s` is a hex SHA-256.
pub fn is_digest(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(v: &str, b: char) -> Release {
        Release {
            version: v.into(),
            binary: b.to_string().repeat(64),
            lock: "1".repeat(64),
        }
    }

    fn attestation(at_ms: u64, r: &Release, rules: &str) -> Attestation {
        Attestation {
            node: "node-2".into(),
            at_ms,
            measurement: Measurement {
                release: r.clone(),
                documents: BTreeMap::from([
                    ("policy".into(), "p".repeat(64)),
                    ("rules".into(), rules.into()),
                ]),
                config: "c".repeat(64),
                deps: BTreeMap::new(),
                kernel: "6.1".into(),
                started_ms: 0,
            },
        }
    }

    struct Set {
        releases: BTreeMap<String, Allowed>,
        policy: BTreeSet<String>,
        rules: BTreeSet<String>,
    }

    impl Set {
        fn new(rs: &[&Release]) -> Self {
            Self {
                releases: rs
                    .iter()
                    .map(|r| {
                        let a = Allowed {
                            release: (*r).clone(),
                            by: BTreeSet::new(),
                            retired: None,
                        };
                        (r.binary.clone(), a)
                    })
                    .collect(),
                policy: BTreeSet::from(["p".repeat(64)]),
                rules: BTreeSet::from(["r".repeat(64)]),
            }
        }
        fn view(&self) -> AllowedSet<'_> {
            AllowedSet {
                releases: &self.releases,
                policy: &self.policy,
                rules: &self.rules,
                every_ms: 1_000,
            }
        }
    }

    fn at(now_ms: u64) -> Judging {
        Judging {
            now_ms,
            known_since_ms: 10_000,
            grace_ms: 5_000,
        }
    }

    #[test]
    fn a_member_on_an_allowed_build_with_documents_in_force_is_attested_while_fresh() {
        let r = release("0.1.0", 'a');
        let set = Set::new(&[&r]);
        let a = attestation(20_000, &r, &"r".repeat(64));
        let v = judge(Some(&a), &set.view(), at(22_000));
        assert_eq!(
            v,
            Verdict::Attested {
                release: r.clone(),
                at_ms: 20_000
            }
        );
        // Three missed intervals: stale.
        let v = judge(Some(&a), &set.view(), at(23_001));
        assert_eq!(
            v.to_string(),
            "isolated: its last attestation is stale (3.0 s old: down, cut off, or no longer attesting)"
        );
        assert!(v.is_isolated());
        // A statement from the future is no fresher for it.
        let v = judge(
            Some(&attestation(60_000, &r, &"r".repeat(64))),
            &set.view(),
            at(22_000),
        );
        assert!(
            matches!(
                v,
                Verdict::Isolated {
                    why: Why::Ahead { .. },
                    ..
                }
            ),
            "{v}"
        );
    }

    #[test]
    fn a_member_never_heard_from_is_awaited_for_three_intervals_then_isolated() {
        let r = release("0.1.0", 'a');
        let set = Set::new(&[&r]);
        assert_eq!(judge(None, &set.view(), at(12_999)), Verdict::Awaiting);
        let v = judge(None, &set.view(), at(13_000));
        assert_eq!(
            v,
            Verdict::Isolated {
                why: Why::Missing,
                release: None
            }
        );
    }

    #[test]
    fn another_binary_or_another_lock_or_an_edited_rules_file_isolates() {
        let r = release("0.1.0", 'a');
        let set = Set::new(&[&r]);
        let rebuilt = release("0.1.0", 'b');
        let v = judge(
            Some(&attestation(20_000, &rebuilt, &"r".repeat(64))),
            &set.view(),
            at(20_500),
        );
        assert!(v.to_string().contains("not in the allowed set"), "{v}");
        let mut relocked = r.clone();
        relocked.lock = "2".repeat(64);
        let v = judge(
            Some(&attestation(20_000, &relocked, &"r".repeat(64))),
            &set.view(),
            at(20_500),
        );
        assert!(
            matches!(
                v,
                Verdict::Isolated {
                    why: Why::UnknownRelease { .. },
                    ..
                }
            ),
            "{v}"
        );
        let v = judge(
            Some(&attestation(20_000, &r, &"e".repeat(64))),
            &set.view(),
            at(20_500),
        );
        assert_eq!(
            v.to_string(),
            "isolated: its rules (eeeeeeeeeeee) is none the ceremony or the log put in force"
        );
    }

    #[test]
    fn a_retired_build_drifts_for_the_grace_period_then_isolates() {
        let (old, new) = (release("0.1.0", 'a'), release("0.1.1", 'b'));
        let mut set = Set::new(&[&old, &new]);
        if let Some(a) = set.releases.get_mut(&old.binary) {
            a.retired = Some(Retired {
                advisory: "RUSTSEC-2026-0001".into(),
                at_ms: 20_000,
                by: BTreeSet::new(),
            });
        }
        let on_old = attestation(24_000, &old, &"r".repeat(64));
        let v = judge(Some(&on_old), &set.view(), at(24_500));
        assert_eq!(
            v,
            Verdict::Drifting {
                release: old.clone(),
                advisory: "RUSTSEC-2026-0001".into(),
                isolate_at_ms: 25_000,
                at_ms: 24_000
            }
        );
        assert!(!v.is_isolated());
        let v = judge(Some(&on_old), &set.view(), at(25_000));
        assert!(
            matches!(
                v,
                Verdict::Isolated {
                    why: Why::Retired { .. },
                    ..
                }
            ),
            "{v}"
        );
        // The node that moved on is attested.
        let on_new = attestation(24_900, &new, &"r".repeat(64));
        assert!(matches!(
            judge(Some(&on_new), &set.view(), at(25_000)),
            Verdict::Attested { .. }
        ));
    }

    #[test]
    fn digests_are_lowercase_hex_of_sha256_length() {
        assert!(is_digest(&"0a".repeat(32)));
        assert!(!is_digest(&"0A".repeat(32)));
        assert!(!is_digest("abc"));
        assert!(!is_digest(&"zz".repeat(32)));
    }
}
