//! The security state machine against random sequences of entries — honest proposals,
//! forgeries a malicious leader might slip in, releases with too few or the wrong
//! administrators, revocations — applied by replicas that crash and restart from snapshots
//! at random points. No sockets, no clock: what Raft would feed, in the order it would.
//!
//! Checked after every sequence:
//! - every replica holds the same bytes, however often it restarted (determinism);
//! - a restriction once applied is never lost;
//! - nothing is released without two genuine administrators other than the target;
//! - a revoked certificate stays revoked, and is never let in again;
//! - a certificate acts only once two genuine administrators other than its holder granted it;
//! - an export is allowed only by two genuine administrators other than its recipient;
//! - a forged or unknown signature never changes anything.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use proptest::prelude::*;
use ribat_detect::response::{Action, Target};
use ribat_mesh::command::{
    Approval, Command, ExportStatement, GrantStatement, ReleaseStatement, Restriction,
    RevokeStatement, kind,
};
use ribat_mesh::{Admin, Applied, Genesis, KeyPair, Member, Registration, SecurityState, Standing};
use std::collections::{BTreeMap, BTreeSet};

const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
const ADMINS: [&str; 3] = ["sec.amina", "sec.youssef", "sec.hind"];
/// Index 3 in either list: somebody the state does not know.
const OUTSIDER: usize = 3;

struct Keys {
    nodes: Vec<KeyPair>,
    admins: Vec<KeyPair>,
}

fn keys() -> Keys {
    let seed = |k: u8| KeyPair::from_seed(&[k; 32]);
    Keys {
        nodes: (1..=4).map(seed).collect(),
        admins: (11..=14).map(seed).collect(),
    }
}

fn genesis(k: &Keys) -> Genesis {
    Genesis {
        members: NODES
            .iter()
            .zip(&k.nodes)
            .map(|(n, kp)| Member {
                name: (*n).into(),
                key: kp.public(),
                cert: None,
            })
            .collect(),
        admins: ADMINS
            .iter()
            .zip(&k.admins)
            .map(|(n, kp)| Admin {
                name: (*n).into(),
                key: kp.public(),
            })
            .collect(),
        threshold: 2,
        seats: Default::default(),
        granted: Vec::new(),
        attestation: Default::default(),
        custodians: Default::default(),
    }
}

fn node_name(i: usize) -> String {
    NODES.get(i).map_or("node-x".into(), |n| (*n).into())
}

fn admin_name(i: usize) -> String {
    ADMINS.get(i).map_or("sec.stranger".into(), |n| (*n).into())
}

/// Targets: two clerks, and one administrator (who must never release their own).
fn target(t: usize) -> Target {
    match t {
        0 => Target::Identity("clerk.1".into()),
        1 => Target::Identity("clerk.2".into()),
        _ => Target::Identity(ADMINS[0].into()),
    }
}

fn restriction(id: usize, t: usize, variant: bool) -> Restriction {
    Restriction {
        id: format!("d-{id}"),
        rule: "enumeration".into(),
        target: target(t),
        action: if variant {
            Action::StepUp
        } else {
            Action::Quarantine
        },
        until_ms: u64::MAX,
        evidence: "00".repeat(32),
    }
}

#[derive(Debug, Clone)]
enum Op {
    Restrict {
        node: usize,
        id: usize,
        target: usize,
        variant: bool,
        forged: bool,
    },
    Endorse {
        node: usize,
        id: usize,
        forged: bool,
    },
    Release {
        id: usize,
        admins: Vec<usize>,
        forged: bool,
    },
    Revoke {
        serial: usize,
        admin: usize,
        forged: bool,
    },
    /// `holder` 3 is an administrator asking for their own certificate.
    Grant {
        serial: usize,
        holder: usize,
        admins: Vec<usize>,
        forged: bool,
    },
    /// `recipient` 3 is an administrator.
    AllowExport {
        id: usize,
        recipient: usize,
        admins: Vec<usize>,
        forged: bool,
    },
    /// The replica under test crashes and restarts from its last snapshot.
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, 0..5usize, 0..3usize, any::<bool>(), prop::bool::weighted(0.2)).prop_map(
            |(node, id, target, variant, forged)| Op::Restrict { node, id, target, variant, forged }
        ),
        3 => (0..4usize, 0..5usize, prop::bool::weighted(0.2))
            .prop_map(|(node, id, forged)| Op::Endorse { node, id, forged }),
        4 => (0..5usize, prop::collection::vec(0..4usize, 0..4), prop::bool::weighted(0.2))
            .prop_map(|(id, admins, forged)| Op::Release { id, admins, forged }),
        2 => (0..3usize, 0..4usize, prop::bool::weighted(0.2))
            .prop_map(|(serial, admin, forged)| Op::Revoke { serial, admin, forged }),
        3 => (0..3usize, 0..4usize, prop::collection::vec(0..4usize, 0..4), prop::bool::weighted(0.2))
            .prop_map(|(serial, holder, admins, forged)| Op::Grant { serial, holder, admins, forged }),
        2 => (0..3usize, 0..4usize, prop::collection::vec(0..4usize, 0..4), prop::bool::weighted(0.2))
            .prop_map(|(id, recipient, admins, forged)| Op::AllowExport { id, recipient, admins, forged }),
        1 => Just(Op::Crash),
    ]
}

/// What the test knows about each entry it built: whether some signature on it is forged
/// or made by somebody the state does not know (then it must be refused), and the distinct
/// genuine administrators on a release.
struct Built {
    command: Option<Command>,
    forged: bool,
    genuine_admins: BTreeSet<String>,
}

fn serial(i: usize) -> String {
    format!("{i:02x}")
}

fn thumbprint(serial: &str) -> String {
    format!("thumb-{serial}")
}

fn holder(h: usize) -> String {
    match h {
        3 => ADMINS[0].into(),
        _ => format!("clerk.{h}"),
    }
}

/// Administrators' approvals of `statement` signed as `kind`; the first is forged (signed
/// by an outsider's key) when `forged`. Returns them with the genuine signers.
fn approvals<T: serde::Serialize>(
    k: &Keys,
    kind: &str,
    statement: &T,
    admins: &[usize],
    forged: bool,
) -> (Vec<Approval>, BTreeSet<String>) {
    let mut genuine = BTreeSet::new();
    let approvals = admins
        .iter()
        .enumerate()
        .map(|(j, a)| {
            let fake = forged && j == 0;
            let kp = if fake {
                &k.admins[OUTSIDER]
            } else {
                &k.admins[*a]
            };
            if !fake && *a != OUTSIDER {
                genuine.insert(admin_name(*a));
            }
            Approval {
                admin: admin_name(*a),
                sig: kp.sign(kind, statement).unwrap(),
            }
        })
        .collect();
    (approvals, genuine)
}

fn build(k: &Keys, first: &BTreeMap<usize, Restriction>, op: &Op) -> Built {
    // A leader that cannot sign as a member signs with its own key instead.
    let forge = |i: usize, forged: bool| {
        if forged {
            &k.nodes[OUTSIDER]
        } else {
            &k.nodes[i]
        }
    };
    match op {
        Op::Restrict {
            node,
            id,
            target,
            variant,
            forged,
        } => {
            let r = restriction(*id, *target, *variant);
            let sig = forge(*node, *forged).sign(kind::RESTRICT, &r).unwrap();
            Built {
                command: Some(Command::Restrict {
                    restriction: r,
                    by: node_name(*node),
                    sig,
                }),
                forged: *forged || *node == OUTSIDER,
                genuine_admins: BTreeSet::new(),
            }
        }
        Op::Endorse { node, id, forged } => {
            // An endorser signs the decision as it was first logged.
            let r = first
                .get(id)
                .cloned()
                .unwrap_or_else(|| restriction(*id, 0, false));
            let sig = forge(*node, *forged).sign(kind::RESTRICT, &r).unwrap();
            Built {
                command: Some(Command::Endorse {
                    id: r.id.clone(),
                    by: node_name(*node),
                    sig,
                }),
                forged: *forged || *node == OUTSIDER,
                genuine_admins: BTreeSet::new(),
            }
        }
        Op::Release { id, admins, forged } => {
            let statement = ReleaseStatement {
                id: format!("d-{id}"),
                reason: "reviewed: a false positive".into(),
            };
            let (approvals, genuine) = approvals(k, kind::RELEASE, &statement, admins, *forged);
            Built {
                command: Some(Command::Release {
                    statement,
                    approvals,
                }),
                forged: (*forged && !admins.is_empty()) || admins.contains(&OUTSIDER),
                genuine_admins: genuine,
            }
        }
        Op::Grant {
            serial: n,
            holder: h,
            admins,
            forged,
        } => {
            let s = serial(*n);
            let statement = GrantStatement {
                certificates: vec![Registration {
                    name: holder(*h),
                    role: "clerk".into(),
                    institution: "agency-1".into(),
                    thumbprint: thumbprint(&s),
                    serial: s,
                    not_after: 2_000_000_000,
                    review_by: None,
                }],
                reason: "new counter clerk".into(),
            };
            let (approvals, genuine) = approvals(k, kind::GRANT, &statement, admins, *forged);
            Built {
                command: Some(Command::Grant {
                    statement,
                    approvals,
                }),
                forged: (*forged && !admins.is_empty()) || admins.contains(&OUTSIDER),
                genuine_admins: genuine,
            }
        }
        Op::Revoke {
            serial,
            admin,
            forged,
        } => {
            let statement = RevokeStatement {
                serial: self::serial(*serial),
                reason: "laptop stolen".into(),
            };
            let kp = if *forged {
                &k.admins[OUTSIDER]
            } else {
                &k.admins[*admin]
            };
            Built {
                command: Some(Command::Revoke {
                    statement: statement.clone(),
                    approvals: vec![Approval {
                        admin: admin_name(*admin),
                        sig: kp.sign(kind::REVOKE, &statement).unwrap(),
                    }],
                }),
                forged: *forged || *admin == OUTSIDER,
                genuine_admins: BTreeSet::new(),
            }
        }
        Op::AllowExport {
            id,
            recipient,
            admins,
            forged,
        } => {
            let statement = ExportStatement {
                id: format!("{id:016x}"),
                recipient: holder(*recipient),
                purpose: "partner-export".into(),
                persons: 40,
                until_ms: u64::MAX,
            };
            let (approvals, genuine) = approvals(k, kind::EXPORT, &statement, admins, *forged);
            Built {
                command: Some(Command::AllowExport {
                    statement,
                    approvals,
                }),
                forged: (*forged && !admins.is_empty()) || admins.contains(&OUTSIDER),
                genuine_admins: genuine,
            }
        }
        Op::Crash => Built {
            command: None,
            forged: false,
            genuine_admins: BTreeSet::new(),
        },
    }
}

fn check(ops: &[Op]) {
    let k = keys();
    let g = genesis(&k);
    let mut steady = SecurityState::new(&g);
    let mut crashing = SecurityState::new(&g);
    let mut saved = crashing.snapshot().unwrap();
    let mut log: Vec<Command> = Vec::new();
    let mut first: BTreeMap<usize, Restriction> = BTreeMap::new();
    let mut restricted: BTreeSet<String> = BTreeSet::new();
    let mut revoked: BTreeSet<String> = BTreeSet::new();
    // Serials some grant with two genuine administrators, neither the holder, let in.
    let mut justly_granted: BTreeSet<String> = BTreeSet::new();
    let mut justly_allowed: BTreeSet<String> = BTreeSet::new();
    for op in ops {
        let b = build(&k, &first, op);
        let Some(c) = b.command else {
            // Crash: everything since the last snapshot is replayed from the log, as Raft
            // does for a node that restarts.
            let at = SecurityState::restore(&saved).unwrap();
            let replay_from = at.applied() as usize;
            crashing = at;
            for c in &log[replay_from..] {
                let _ = crashing.apply(c);
            }
            saved = crashing.snapshot().unwrap();
            continue;
        };
        let got = steady.apply(&c);
        assert_eq!(crashing.apply(&c), got, "replicas disagree on {c:?}");
        if b.forged {
            assert!(got.is_err(), "a forged entry was applied: {c:?} -> {got:?}");
        }
        match (&got, &c) {
            (Ok(Applied::Restricted { id }), Command::Restrict { restriction, .. }) => {
                restricted.insert(id.clone());
                if let Some(n) = id.strip_prefix("d-").and_then(|n| n.parse().ok()) {
                    first.insert(n, restriction.clone());
                }
            }
            (Ok(Applied::Released { id }), Command::Release { .. }) => {
                let target = steady.restriction(id).unwrap().restriction.target.clone();
                let mut genuine = b.genuine_admins.clone();
                if let Target::Identity(t) = &target {
                    assert!(!genuine.contains(t), "{t} released their own decision");
                    genuine.remove(t);
                }
                assert!(genuine.len() >= 2, "released with {genuine:?}: {c:?}");
            }
            (Ok(Applied::Revoked { serial }), _) => {
                revoked.insert(serial.clone());
            }
            (Ok(Applied::Granted { serials }), Command::Grant { statement, .. }) => {
                for cert in &statement.certificates {
                    assert!(
                        !b.genuine_admins.contains(&cert.name),
                        "{} granted their own certificate",
                        cert.name
                    );
                    assert!(!revoked.contains(&cert.serial), "a revoked serial let in");
                }
                assert!(
                    b.genuine_admins.len() >= 2,
                    "granted with {:?}: {c:?}",
                    b.genuine_admins
                );
                justly_granted.extend(serials.iter().cloned());
            }
            (Ok(Applied::ExportAllowed { id }), Command::AllowExport { statement, .. }) => {
                assert!(
                    !b.genuine_admins.contains(&statement.recipient),
                    "{} allowed their own export",
                    statement.recipient
                );
                assert!(
                    b.genuine_admins.len() >= 2,
                    "export {id} allowed with {:?}",
                    b.genuine_admins
                );
                justly_allowed.insert(id.clone());
            }
            _ => {}
        }
        log.push(c);
    }
    // Determinism: the replica that crashed holds the same bytes as the one that did not,
    // and so does one that starts from a snapshot taken halfway and replays the rest.
    assert_eq!(crashing.snapshot().unwrap(), steady.snapshot().unwrap());
    let mut late = SecurityState::new(&g);
    let half = log.len() / 2;
    for c in &log[..half] {
        let _ = late.apply(c);
    }
    let mut late = SecurityState::restore(&late.snapshot().unwrap()).unwrap();
    for c in &log[half..] {
        let _ = late.apply(c);
    }
    assert_eq!(late.snapshot().unwrap(), steady.snapshot().unwrap());
    // Nothing applied is lost; nothing revoked comes back.
    for id in &restricted {
        assert!(steady.restriction(id).is_some(), "{id} lost");
    }
    for s in &revoked {
        assert!(steady.is_revoked(s), "{s} un-revoked");
    }
    for e in steady.exports() {
        assert!(
            justly_allowed.contains(&e.id),
            "export {} allowed unjustly",
            e.id
        );
    }
    // A certificate acts only if justly granted and never revoked.
    for n in 0..3 {
        let s = serial(n);
        let standing = steady.standing(&s, &thumbprint(&s), 0);
        if revoked.contains(&s) {
            assert_eq!(standing, Standing::Revoked, "{s}");
        } else if standing == Standing::Granted {
            assert!(justly_granted.contains(&s), "{s} acts without a just grant");
        }
        assert_ne!(
            steady.standing(&s, "another certificate", 0),
            Standing::Granted
        );
    }
    assert_eq!(steady.applied(), log.len() as u64);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn random_sequences_with_forgeries_and_crashes_keep_every_invariant(
        ops in prop::collection::vec(op(), 1..50)
    ) {
        check(&ops);
    }
}

/// A sequence written out: the attack of 2025 on node A's gateway, a forged release slipped
/// in by a leader, then the genuine two-person release.
#[test]
fn the_quarantine_survives_a_forged_release_and_falls_to_two_administrators() {
    let ops = [
        Op::Restrict {
            node: 0,
            id: 1,
            target: 0,
            variant: false,
            forged: false,
        },
        Op::Endorse {
            node: 1,
            id: 1,
            forged: false,
        },
        Op::Release {
            id: 1,
            admins: vec![0, 1],
            forged: true,
        },
        Op::Crash,
        Op::Release {
            id: 1,
            admins: vec![0],
            forged: false,
        },
        Op::Release {
            id: 1,
            admins: vec![0, 0],
            forged: false,
        },
        Op::Release {
            id: 1,
            admins: vec![0, 2],
            forged: false,
        },
    ];
    check(&ops);
    let k = keys();
    let mut s = SecurityState::new(&genesis(&k));
    let mut first = BTreeMap::new();
    let mut outcomes = Vec::new();
    for op in &ops {
        if let Some(c) = build(&k, &first, op).command {
            let got = s.apply(&c);
            if let (Ok(Applied::Restricted { .. }), Command::Restrict { restriction, .. }) =
                (&got, &c)
            {
                first.insert(1, restriction.clone());
            }
            outcomes.push(got.map_err(|e| e.to_string()));
        }
    }
    assert_eq!(
        outcomes[1],
        Ok(Applied::Endorsed {
            id: "d-1".into(),
            signers: 2,
            mesh_wide: true
        })
    );
    assert!(
        outcomes[2]
            .as_ref()
            .unwrap_err()
            .contains("does not verify")
    );
    assert!(
        outcomes[3]
            .as_ref()
            .unwrap_err()
            .contains("1 distinct administrator")
    );
    assert!(
        outcomes[4]
            .as_ref()
            .unwrap_err()
            .contains("1 distinct administrator")
    );
    assert_eq!(outcomes[5], Ok(Applied::Released { id: "d-1".into() }));
    assert_eq!(s.in_force(0).count(), 0);
}
