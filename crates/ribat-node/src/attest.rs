//! This node's side of attestation ([`ribat_mesh::attest`] says what a statement proves and
//! what it cannot): it measures itself, signs the statement with its node key and proposes
//! it through the log at start and at every interval; and it judges every member's latest
//! statement by its own clock, so that its custodian stops answering the gateway of a
//! member that is cut off and its gateway stops asking that member's custodian.

use crate::error::{Context, Result};
pub use ribat_mesh::attest::{AllowReleaseStatement, RetireStatement};
use ribat_mesh::attest::{Attestation, Judging, Measurement, Release, Verdict};
use ribat_raft::MeshStateMachine;
pub use ribat_raft::serve::Attestations;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// The `Cargo.lock` this binary was built from.
const LOCK: &[u8] = include_bytes!("../../../Cargo.lock");

/// The dependencies a statement names the versions of: consensus, TLS, the curve and the
/// signatures the vault rests on, the runtime, the stores.
const KEY_DEPENDENCIES: &[&str] = &[
    "openraft",
    "rustls",
    "curve25519-dalek",
    "ed25519-dalek",
    "tokio",
    "rusqlite",
    "tokio-postgres",
];

/// The document the gateway decides by (and the ceremony wrote).
pub const POLICY: &str = "policy";
/// The document the custodian decides by.
pub const CUSTODIAN_POLICY: &str = "custodian-policy";
/// The detection rules.
pub const RULES: &str = "rules";

/// Hex SHA-256 of `bytes`.
pub fn digest_bytes(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Hex SHA-256 of a file, read in pieces (an executable is tens of megabytes).
pub fn digest_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("cannot read {} to digest it", path.display()))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// This build's version.
pub fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Hex SHA-256 of the `Cargo.lock` compiled in.
pub fn lock_digest() -> String {
    digest_bytes(LOCK)
}

/// The build this process runs: the executable the kernel started (`/proc/self/exe`, the
/// running file even if another was since put at its path).
pub fn this_release() -> Result<Release> {
    let exe = Path::new("/proc/self/exe");
    let path = if exe.exists() {
        exe.to_owned()
    } else {
        std::env::current_exe().context("cannot find this executable")?
    };
    Ok(Release {
        version: version().to_owned(),
        binary: digest_file(&path)?,
        lock: lock_digest(),
    })
}

/// A build on disk, as administrators allow it: its executable digested, with the
/// `Cargo.lock` it was built from (this build's when not given) and its version (this
/// build's when not given).
pub fn release_of(binary: &Path, lock: Option<&Path>, version: Option<&str>) -> Result<Release> {
    let lock = match lock {
        Some(p) => digest_file(p)?,
        None => lock_digest(),
    };
    Ok(Release {
        version: version.unwrap_or(self::version()).to_owned(),
        binary: digest_file(binary)?,
        lock,
    })
}

/// The key dependencies' versions, from the compiled-in `Cargo.lock`.
pub fn key_dependencies() -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(LOCK);
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for block in text.split("[[package]]") {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                let v = l.strip_prefix(key)?.trim_start().strip_prefix('=')?;
                Some(v.trim().trim_matches('"').to_owned())
            })
        };
        if let (Some(name), Some(v)) = (field("name"), field("version"))
            && KEY_DEPENDENCIES.contains(&name.as_str())
        {
            found.entry(name).or_default().push(v);
        }
    }
    found.into_iter().map(|(k, v)| (k, v.join(", "))).collect()
}

/// The kernel release this node runs on.
fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// The documents this node's parts decide and detect by, by name, as they carry them:
/// their start-up files' digests, then the digest of each version the log put in force
/// once the part carried it out.
#[derive(Debug, Default)]
pub struct Documents(Mutex<BTreeMap<String, String>>);

impl Documents {
    /// Part `name` now acts on the document with this digest.
    pub fn set(&self, name: &str, digest: String) {
        if let Ok(mut d) = self.0.lock() {
            d.insert(name.to_owned(), digest);
        }
    }

    /// Part `name` acts on the file at `path` (its digest; an unreadable file is reported
    /// as the digest of nothing, which no ceremony put in force).
    pub fn set_file(&self, name: &str, path: &Path) {
        let digest = digest_file(path).unwrap_or_else(|_| digest_bytes(b""));
        self.set(name, digest);
    }

    fn snapshot(&self) -> BTreeMap<String, String> {
        self.0.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

/// How this node judges every member now, refreshed by [`judge_members`].
#[derive(Debug, Default)]
pub struct Verdicts(RwLock<BTreeMap<String, Verdict>>);

impl Verdicts {
    /// Every member's verdict, by name.
    pub fn all(&self) -> BTreeMap<String, Verdict> {
        self.0.read().map(|v| v.clone()).unwrap_or_default()
    }

    /// Why member `node` is cut off, if it is. A judgement that cannot be read cuts off.
    pub fn cut_off(&self, node: &str) -> Option<String> {
        let Ok(v) = self.0.read() else {
            return Some("this node cannot read its own judgement of the members".into());
        };
        match v.get(node) {
            Some(Verdict::Isolated { why, .. }) => Some(format!("{node} is isolated: {why}")),
            _ => None,
        }
    }

    fn set(&self, all: BTreeMap<String, Verdict>) {
        if let Ok(mut v) = self.0.write() {
            *v = all;
        }
    }
}

/// The member a gateway certificate belongs to (`gateway.node-2` runs on `node-2`).
pub fn node_of_gateway(cert_name: &str) -> Option<&str> {
    cert_name.strip_prefix("gateway.")
}

/// What a node needs to attest.
pub struct Attester {
    /// The security state (what is in force).
    pub sm: MeshStateMachine,
    /// Its Raft member (to propose through).
    pub raft: ribat_raft::MeshRaft,
    /// Its client TLS (to reach the leader).
    pub tls: Arc<ribat_net::client::ClientConfig>,
    /// Its node key.
    pub key: Arc<ribat_mesh::KeyPair>,
    /// Its name.
    pub me: String,
    /// What it measured once at start (the executable cannot change under a running
    /// process).
    pub fixed: Measurement,
    /// What its parts act on now.
    pub documents: Arc<Documents>,
    /// How often.
    pub every: Duration,
}

/// Measures what does not change while the process runs.
pub fn measure_once(dir: &Path, started_ms: u64) -> Result<Measurement> {
    Ok(Measurement {
        release: this_release()?,
        documents: BTreeMap::new(),
        config: digest_file(&dir.join(crate::mesh::MESH_FILE))?,
        deps: key_dependencies(),
        kernel: kernel(),
        started_ms,
    })
}

/// Whether every document a part acts on is the version the log put in force (a part
/// that has not carried a new version yet would report a file the log replaced).
fn carried_all(sm: &MeshStateMachine, docs: &BTreeMap<String, String>) -> bool {
    sm.read(|st| {
        docs.iter().all(|(name, digest)| {
            let in_force = match name.as_str() {
                RULES => st.rules(),
                _ => st.policy(),
            };
            in_force.is_none_or(|p| p.digest == *digest)
        })
    })
    .unwrap_or(false)
}

/// At start, at every interval, and whenever a part moves to another document: signs what
/// this node runs and proposes it to the mesh.
pub async fn attest(a: Attester) {
    let mut last: Option<(u64, BTreeMap<String, String>, std::time::Instant)> = None;
    let mut said_first = false;
    loop {
        let docs = a.documents.snapshot();
        let due = match &last {
            None => true,
            Some((_, sent, when)) => *sent != docs || when.elapsed() >= a.every,
        };
        if !due || !carried_all(&a.sm, &docs) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        let at_ms = ribat_clock::real_ms().max(last.as_ref().map_or(0, |l| l.0 + 1));
        let attestation = Attestation {
            node: a.me.clone(),
            at_ms,
            measurement: Measurement {
                documents: docs.clone(),
                ..a.fixed.clone()
            },
        };
        let sig = match a.key.sign(ribat_mesh::command::kind::ATTEST, &attestation) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("warning: cannot sign this node's attestation: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let command = ribat_mesh::Command::Attest { attestation, sig };
        match crate::mesh::propose_from_node(&a.raft, a.tls.clone(), command).await {
            Ok(p) => {
                if let ribat_raft::Outcome::Rejected(e) = &p.outcome {
                    eprintln!("warning: the mesh did not take this node's attestation: {e}");
                } else if !said_first || last.as_ref().is_some_and(|l| l.1 != docs) {
                    eprintln!(
                        "attested: {} (Cargo.lock {}), documents {}",
                        a.fixed.release,
                        ribat_mesh::attest::short(&a.fixed.release.lock),
                        docs.iter()
                            .map(|(n, d)| format!("{n} {}", ribat_mesh::attest::short(d)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    said_first = true;
                }
                last = Some((at_ms, docs, std::time::Instant::now()));
            }
            Err(e) => {
                eprintln!("warning: this node's attestation did not reach the mesh: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The grace period for a retired build: the rules in force through the log, else the
/// node's start-up rules.
fn grace_ms(sm: &MeshStateMachine, start_up: u64, cache: &mut Option<(u64, u64)>) -> u64 {
    let in_force = sm
        .read(|st| st.rules().map(|r| (r.version, r.document.clone())))
        .ok()
        .flatten();
    match in_force {
        None => start_up,
        Some((version, _)) if cache.is_some_and(|c| c.0 == version) => {
            cache.map_or(start_up, |c| c.1)
        }
        Some((version, document)) => {
            let g = ribat_detect::Rules::from_json(&document)
                .map_or(start_up, |r| r.patch_drift.grace_secs.saturating_mul(1000));
            *cache = Some((version, g));
            g
        }
    }
}

/// Every 500 ms: judges every member's latest statement by this node's clock, keeps the
/// verdicts for the node's parts, and says in the node's log when one changes.
pub async fn judge_members(sm: MeshStateMachine, verdicts: Arc<Verdicts>, start_up_grace_ms: u64) {
    let mut known_since: BTreeMap<String, u64> = BTreeMap::new();
    let mut said: BTreeMap<String, String> = BTreeMap::new();
    let mut cache = None;
    loop {
        let now_ms = ribat_clock::real_ms();
        let grace_ms = grace_ms(&sm, start_up_grace_ms, &mut cache);
        let judged = sm.read(|st| {
            st.members()
                .map(|m| {
                    let since = *known_since.entry(m.to_owned()).or_insert(now_ms);
                    let at = Judging {
                        now_ms,
                        known_since_ms: since,
                        grace_ms,
                    };
                    (m.to_owned(), st.judge(m, at))
                })
                .collect::<BTreeMap<_, _>>()
        });
        match judged {
            Ok(all) => {
                for (node, v) in &all {
                    let line = headline(v);
                    let before = said.insert(node.clone(), line.clone());
                    if before.as_ref() != Some(&line) && worth_saying(before.as_deref(), v) {
                        eprintln!("attestation: {node} {v}");
                    }
                }
                verdicts.set(all);
            }
            Err(e) => {
                eprintln!("warning: cannot read the security state to judge attestations: {e}");
                verdicts.set(BTreeMap::new());
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What a verdict says, without the times that change at every statement: a change of
/// this is worth a line in the log and an event.
pub fn headline(v: &Verdict) -> String {
    match v {
        Verdict::Attested { release, .. } => format!("attested {release}"),
        Verdict::Drifting {
            release, advisory, ..
        } => format!("drifting {release} {advisory}"),
        Verdict::Awaiting => "awaiting".into(),
        Verdict::Isolated { why, .. } => match why {
            ribat_mesh::attest::Why::Stale { .. } => "isolated: stale".into(),
            ribat_mesh::attest::Why::Ahead { .. } => "isolated: ahead".into(),
            other => format!("isolated: {other}"),
        },
    }
}

/// Whether a verdict that changed from `before` is news: a member cut off or drifting
/// always is, one attested again after that too; awaiting a first statement, or being
/// attested from the start, is not.
fn worth_saying(before: Option<&str>, now: &Verdict) -> bool {
    match now {
        Verdict::Awaiting => false,
        Verdict::Attested { .. } => {
            before.is_some_and(|b| b.starts_with("isolated") || b.starts_with("drifting"))
        }
        Verdict::Drifting { .. } | Verdict::Isolated { .. } => true,
    }
}

/// The custodian each member holds now, by name (it changes with a resharing).
pub type CustodianOf = Arc<dyn Fn() -> BTreeMap<String, u32> + Send + Sync>;

/// On a gateway node, every 500 ms: stops asking the custodian of every member that is cut
/// off, asks it again once it attests within the allowed set, and raises an event (the
/// gateway's stream, OCSF) each time a member's verdict changes.
pub async fn route_around(
    verdicts: Arc<Verdicts>,
    app: Arc<ribat_gateway::api::App>,
    custodian_of: CustodianOf,
    component: String,
) {
    let mut said: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let custodian_of = custodian_of();
        for (node, v) in verdicts.all() {
            if let Some(c) = custodian_of.get(&node) {
                match verdicts.cut_off(&node) {
                    Some(why) => app.vault.reader.cut_off(*c, why),
                    None => app.vault.reader.ask_again(*c),
                }
            }
            let line = headline(&v);
            let before = said.insert(node.clone(), line.clone());
            if before.as_ref() != Some(&line) && worth_saying(before.as_deref(), &v) {
                let (w, component) = (app.watch.clone(), component.clone());
                let event = ribat_detect::Event {
                    time_ms: w.clock().now_ms(),
                    component,
                    kind: ribat_detect::Kind::NodeAttestation {
                        node: node.clone(),
                        isolated: v.is_isolated(),
                        verdict: v.to_string(),
                    },
                };
                let _ = tokio::task::spawn_blocking(move || w.observe(&event)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What administrators sign to allow the build at `binary` (built from `lock`, this
/// build's lock when not given; `version`, this build's when not given).
pub fn allow_statement(
    binary: &Path,
    lock: Option<&Path>,
    version: Option<&str>,
    reason: &str,
) -> Result<AllowReleaseStatement> {
    crate::ensure!(
        !reason.trim().is_empty(),
        "--reason: why this build may run (a change ticket, the release notes)"
    );
    Ok(AllowReleaseStatement {
        release: release_of(binary, lock, version)?,
        reason: reason.to_owned(),
    })
}

/// What administrators sign to retire a build: `build` is its executable or its hex
/// SHA-256 (as `mesh drift` shows it), `retired_at` the RFC 3339 time both sign.
pub fn retire_statement(build: &str, advisory: &str, retired_at: &str) -> Result<RetireStatement> {
    let binary = if ribat_mesh::attest::is_digest(build) {
        build.to_owned()
    } else {
        let path = Path::new(build);
        crate::ensure!(
            path.is_file(),
            "--retire-build `{build}`: neither a build's executable nor its hex SHA-256 (64 lowercase hex digits, as `ribat mesh drift` shows)"
        );
        digest_file(path)?
    };
    crate::ensure!(
        !advisory.trim().is_empty(),
        "--advisory: the advisory the build is retired for (CVE, RUSTSEC, the fund's own)"
    );
    let at = crate::mesh::parse_time("--retired-at", retired_at)?;
    Ok(RetireStatement {
        binary,
        advisory: advisory.to_owned(),
        at_ms: u64::try_from(at).unwrap_or(0).saturating_mul(1000),
    })
}

/// One administrator's approval of a build's allowance.
pub fn approve_allow(
    key: &Path,
    admin: &str,
    statement: &AllowReleaseStatement,
) -> Result<ribat_mesh::Approval> {
    crate::mesh::approve_as(
        key,
        admin,
        ribat_mesh::command::kind::ALLOW_RELEASE,
        statement,
    )
}

/// One administrator's approval of a build's retirement.
pub fn approve_retire(
    key: &Path,
    admin: &str,
    statement: &RetireStatement,
) -> Result<ribat_mesh::Approval> {
    crate::mesh::approve_as(
        key,
        admin,
        ribat_mesh::command::kind::RETIRE_RELEASE,
        statement,
    )
}

/// Proposes a build's allowance with its approvals.
pub fn allow_build(
    dir: &Path,
    statement: AllowReleaseStatement,
    approvals: Vec<ribat_mesh::Approval>,
) -> Result<crate::mesh::Proposed> {
    crate::mesh::propose(
        dir,
        &ribat_mesh::Command::AllowRelease {
            statement,
            approvals,
        },
    )
}

/// Proposes a build's retirement with its approvals.
pub fn retire_build(
    dir: &Path,
    statement: RetireStatement,
    approvals: Vec<ribat_mesh::Approval>,
) -> Result<crate::mesh::Proposed> {
    crate::mesh::propose(
        dir,
        &ribat_mesh::Command::RetireRelease {
            statement,
            approvals,
        },
    )
}

/// Patch drift as the node in `dir` sees it (`ribat mesh drift`).
pub fn drift(dir: &Path) -> Result<Attestations> {
    crate::mesh::ask_own_node(dir, ribat_raft::serve::ATTESTATIONS)
}

/// The members on a build that is retired or not allowed, or cut off for any reason.
pub fn off_course(a: &Attestations) -> Vec<&str> {
    a.verdicts
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Drifting { .. } | Verdict::Isolated { .. }))
        .map(|(n, _)| n.as_str())
        .collect()
}

/// Patch drift as a table: each member's build and verdict, then the allowed set.
pub fn render_drift(a: &Attestations, now_ms: u64) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:<10} {:<13} {:<13} {:<22} {:>8}  verdict",
        "member", "version", "binary", "Cargo.lock", "kernel", "attested"
    );
    let short = ribat_mesh::attest::short;
    for (node, v) in &a.verdicts {
        let latest = a.latest.get(node);
        let m = latest.map(|l| &l.measurement);
        let verdict = match v {
            Verdict::Drifting { isolate_at_ms, .. } => format!(
                "{v}; isolated in {} unless it moves to an allowed build",
                human_ms(isolate_at_ms.saturating_sub(now_ms))
            ),
            other => other.to_string(),
        };
        let _ = writeln!(
            out,
            "{:<8} {:<10} {:<13} {:<13} {:<22} {:>8}  {verdict}",
            node,
            m.map_or("-", |m| m.release.version.as_str()),
            m.map_or("-", |m| short(&m.release.binary)),
            m.map_or("-", |m| short(&m.release.lock)),
            m.map_or("-", |m| m.kernel.as_str()),
            latest.map_or("never".into(), |l| format!(
                "{} ago",
                human_ms(now_ms.saturating_sub(l.at_ms))
            )),
        );
    }
    let _ = writeln!(out, "\nallowed builds:");
    for al in &a.allowed {
        let by = al.by.iter().cloned().collect::<Vec<_>>().join(" and ");
        let state = match &al.retired {
            Some(r) => format!(
                "RETIRED for {} by {}",
                r.advisory,
                r.by.iter().cloned().collect::<Vec<_>>().join(" and ")
            ),
            None => "allowed".into(),
        };
        let on: Vec<&str> = a
            .latest
            .iter()
            .filter(|(_, l)| l.measurement.release.binary == al.release.binary)
            .map(|(n, _)| n.as_str())
            .collect();
        let _ = writeln!(
            out,
            "  {} (binary {}, Cargo.lock {}) by {by}: {state}; running on {}",
            al.release.version,
            al.release.binary,
            short(&al.release.lock),
            if on.is_empty() {
                "no member".into()
            } else {
                on.join(", ")
            }
        );
    }
    out
}

/// `1.2 s`, `3 min`, `2 h`, `5 d`.
fn human_ms(ms: u64) -> String {
    match ms {
        0..10_000 => format!("{:.1} s", ms as f64 / 1000.0),
        10_000..120_000 => format!("{} s", ms / 1000),
        120_000..7_200_000 => format!("{} min", ms / 60_000),
        7_200_000..172_800_000 => format!("{} h", ms / 3_600_000),
        _ => format!("{} d", ms / 86_400_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statement_names_the_key_dependencies_from_the_lock_compiled_in() {
        let deps = key_dependencies();
        for name in [
            "openraft",
            "rustls",
            "curve25519-dalek",
            "ed25519-dalek",
            "tokio",
        ] {
            let v = deps
                .get(name)
                .unwrap_or_else(|| panic!("{name} missing: {deps:?}"));
            assert!(
                v.chars().next().is_some_and(|c| c.is_ascii_digit()),
                "{name} {v}"
            );
        }
        assert_eq!(lock_digest().len(), 64);
    }

    #[test]
    fn a_build_on_disk_is_its_executables_digest_with_the_lock_it_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("ribat");
        std::fs::write(&exe, b"an executable").unwrap();
        let r = release_of(&exe, None, None).unwrap();
        assert_eq!(r.binary, digest_bytes(b"an executable"));
        assert_eq!(r.lock, lock_digest());
        assert_eq!(r.version, version());
        let lock = dir.path().join("Cargo.lock");
        std::fs::write(&lock, b"# another lock").unwrap();
        let r = release_of(&exe, Some(&lock), Some("0.2.0")).unwrap();
        assert_eq!(
            (r.lock.as_str(), r.version.as_str()),
            (digest_bytes(b"# another lock").as_str(), "0.2.0")
        );
        let e = release_of(&dir.path().join("missing"), None, None).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
    }

    #[test]
    fn only_an_isolated_member_is_cut_off_and_a_gateway_is_known_by_its_node() {
        let v = Verdicts::default();
        v.set(BTreeMap::from([
            ("node-1".to_owned(), Verdict::Awaiting),
            (
                "node-2".to_owned(),
                Verdict::Isolated {
                    why: ribat_mesh::attest::Why::Missing,
                    release: None,
                },
            ),
        ]));
        assert_eq!(v.cut_off("node-1"), None);
        assert_eq!(v.cut_off("node-9"), None);
        assert_eq!(
            v.cut_off("node-2").as_deref(),
            Some("node-2 is isolated: it has not attested")
        );
        assert_eq!(node_of_gateway("gateway.node-2"), Some("node-2"));
        assert_eq!(node_of_gateway("clerk-1"), None);
    }
}
