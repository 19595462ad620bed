//! The mesh shape: `ribat mesh init` writes one directory per node to carry to its host,
//! `ribat node --dir` runs one node, `ribat mesh status` asks every member where it stands.
//!
//! A node directory holds:
//!
//! | file | what |
//! |---|---|
//! | `mesh.json` | this node's id and name, where it listens, every member (address, node key), the administrators' keys, the threshold |
//! | `node.key` | the node's Ed25519 signing key (owner-only) |
//! | `cert.pem`, `key.pem`, `ca.pem`, `crl.pem` | its node certificate (role `node`), its TLS key (owner-only), the deployment's CA and revocation list |
//! | `raft-log.sqlite`, `raft-state.sqlite` | the Raft log and the security state's snapshots |
//!
//! Today a node runs the replicated security state only: custodians, gateways and
//! detectors on mesh nodes come next.

use crate::error::{Context, Result};
use crate::{bail, ensure};
use ribat_identity::ca::{Ca, CertKind, write_file};
use ribat_identity::tls::{ServerTls, TlsFiles, client_config};
use ribat_mesh::{Admin, Genesis, KeyPair, Member, PublicKey};
use ribat_net::listener::TlsStats;
use ribat_raft::log_store::LogStore;
use ribat_raft::network::MeshNetwork;
use ribat_raft::serve::{NodeStatus, PROPOSE, Proposed, STATUS};
use ribat_raft::{MeshRaft, MeshStateMachine};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// A node's description of the mesh.
pub const MESH_FILE: &str = "mesh.json";
/// The node's signing key.
pub const NODE_KEY: &str = "node.key";
/// `mesh.json`'s format.
pub const MESH_FORMAT: &str = "ribat-mesh/v1";

/// One member as every node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Raft id (1…N).
    pub id: u64,
    /// Its name (`node-ID`), as in its certificate.
    pub name: String,
    /// Where it listens (`HOST:PORT`).
    pub addr: String,
    /// Its node key.
    pub key: PublicKey,
}

/// `mesh.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeshFile {
    /// Always [`MESH_FORMAT`].
    pub format: String,
    /// This node's id.
    pub id: u64,
    /// Every member, this one included.
    pub peers: Vec<Peer>,
    /// The security administrators.
    pub admins: Vec<Admin>,
    /// Members whose signatures put a decision in force mesh-wide.
    pub threshold: usize,
}

impl MeshFile {
    /// Reads `DIR/mesh.json`, saying what is wrong with it.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MESH_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {}: is {} a node directory made by `ribat mesh init`?",
                path.display(),
                dir.display()
            )
        })?;
        let m: Self = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid mesh file", path.display()))?;
        ensure!(
            m.format == MESH_FORMAT,
            "{}: format `{}`, expected `{MESH_FORMAT}`",
            path.display(),
            m.format
        );
        ensure!(
            m.peers.iter().any(|p| p.id == m.id),
            "{}: this node's id {} is not among its peers",
            path.display(),
            m.id
        );
        ensure!(
            (1..=m.peers.len()).contains(&m.threshold),
            "{}: threshold {} with {} members",
            path.display(),
            m.threshold,
            m.peers.len()
        );
        Ok(m)
    }

    /// This node.
    pub fn me(&self) -> Result<&Peer> {
        self.peers
            .iter()
            .find(|p| p.id == self.id)
            .ok_or_else(|| crate::err!("node {} is not among its peers", self.id))
    }

    /// Where the security state starts.
    pub fn genesis(&self) -> Genesis {
        Genesis {
            members: self
                .peers
                .iter()
                .map(|p| Member {
                    name: p.name.clone(),
                    key: p.key,
                })
                .collect(),
            admins: self.admins.clone(),
            threshold: self.threshold,
        }
    }
}

/// What `ribat mesh init` is asked for.
#[derive(Debug, Clone)]
pub struct InitSpec {
    /// Where the node directories go (must not exist, or be empty).
    pub out: PathBuf,
    /// Each node's address, `HOST:PORT`; their number is the mesh's size.
    pub addrs: Vec<String>,
    /// Distinct members whose signatures make a decision mesh-wide.
    pub threshold: usize,
    /// The security administrators (at least two: a release needs two).
    pub admins: Vec<String>,
}

fn random_seed() -> Result<Zeroizing<[u8; 32]>> {
    let s = ribat_crypto::secret::SecretBytes::<32>::random()?;
    Ok(Zeroizing::new(*s.expose()))
}

fn write_seed(path: &Path, seed: &[u8; 32]) -> Result<()> {
    let hexed = Zeroizing::new(hex::encode(seed));
    write_file(path, hexed.as_bytes(), true)?;
    Ok(())
}

/// Reads a key seed as `mesh init` writes it (hex, owner-only).
pub fn read_seed(path: &Path) -> Result<KeyPair> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    let raw = Zeroizing::new(
        hex::decode(text.trim())
            .map_err(|e| crate::err!("{}: not a hex key: {e}", path.display()))?,
    );
    let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
        raw.as_slice()
            .try_into()
            .map_err(|_| crate::err!("{}: a key is 32 bytes", path.display()))?,
    );
    Ok(KeyPair::from_seed(&seed))
}

/// Writes one directory per node (and the CA and the administrators' keys beside them);
/// returns the node directories.
pub fn init(spec: &InitSpec) -> Result<Vec<PathBuf>> {
    let n = spec.addrs.len();
    ensure!(n >= 1, "a mesh has at least one node (--nodes)");
    ensure!(
        (1..=n).contains(&spec.threshold),
        "--threshold {} with {n} nodes: between 1 and {n}",
        spec.threshold
    );
    ensure!(
        spec.admins.len() >= 2,
        "at least two security administrators (--admins a,b): every release needs two"
    );
    for a in &spec.admins {
        ribat_identity::ca::check_name(a)?;
    }
    for a in &spec.addrs {
        ensure!(
            a.rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()),
            "node address `{a}`: expected HOST:PORT"
        );
    }
    if spec.out.exists() && std::fs::read_dir(&spec.out)?.next().is_some() {
        bail!(
            "{} is not empty: a mesh ceremony writes fresh directories",
            spec.out.display()
        );
    }
    std::fs::create_dir_all(&spec.out)?;
    let ca = Ca::init(&spec.out.join("ca"), "ribat.mesh")?;
    let admins_dir = spec.out.join("admins");
    std::fs::create_dir_all(&admins_dir)?;
    let mut admins = Vec::new();
    for name in &spec.admins {
        let seed = random_seed()?;
        write_seed(&admins_dir.join(format!("{name}.key")), &seed)?;
        admins.push(Admin {
            name: name.clone(),
            key: KeyPair::from_seed(&seed).public(),
        });
    }
    let mut seeds = Vec::new();
    let mut peers = Vec::new();
    for (i, addr) in spec.addrs.iter().enumerate() {
        let id = i as u64 + 1;
        let seed = random_seed()?;
        peers.push(Peer {
            id,
            name: format!("node-{id}"),
            addr: addr.clone(),
            key: KeyPair::from_seed(&seed).public(),
        });
        seeds.push(seed);
    }
    let mut dirs = Vec::new();
    for (p, seed) in peers.iter().zip(&seeds) {
        let dir = spec.out.join(&p.name);
        std::fs::create_dir_all(&dir)?;
        crate::home::restrict(&dir)?;
        let host = p.addr.rsplit_once(':').map_or("", |(h, _)| h).to_owned();
        let issued = ca.issue(
            &p.name,
            "node",
            "mesh",
            &CertKind::Server { hosts: vec![host] },
            365,
        )?;
        write_file(&dir.join("cert.pem"), issued.cert_pem.as_bytes(), false)?;
        write_file(&dir.join("key.pem"), issued.key_pem.as_bytes(), true)?;
        write_file(&dir.join("ca.pem"), ca.cert_pem()?.as_bytes(), false)?;
        std::fs::copy(ca.dir().join(ribat_identity::ca::CRL), dir.join("crl.pem"))?;
        write_seed(&dir.join(NODE_KEY), seed)?;
        let file = MeshFile {
            format: MESH_FORMAT.into(),
            id: p.id,
            peers: peers.clone(),
            admins: admins.clone(),
            threshold: spec.threshold,
        };
        write_file(
            &dir.join(MESH_FILE),
            serde_json::to_string_pretty(&file)?.as_bytes(),
            false,
        )?;
        dirs.push(dir);
    }
    Ok(dirs)
}

fn raft_config() -> Result<Arc<ribat_raft::openraft::Config>> {
    // Elections well above a TLS round trip on a loaded host; heartbeats below half of them.
    let c = ribat_raft::openraft::Config {
        cluster_name: "ribat".into(),
        heartbeat_interval: 150,
        election_timeout_min: 750,
        election_timeout_max: 1500,
        ..Default::default()
    }
    .validate()
    .map_err(|e| crate::err!("raft settings: {e}"))?;
    Ok(Arc::new(c))
}

fn client_tls(dir: &Path) -> Result<Arc<ribat_net::client::ClientConfig>> {
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .with_context(|| format!("cannot read {}", dir.join(f).display()))
    };
    let key = Zeroizing::new(read("key.pem")?);
    Ok(client_config(
        &read("ca.pem")?,
        Some((&read("cert.pem")?, &key)),
        true,
    )?)
}

/// Runs the node in `dir` until it is stopped. The first node starts the mesh when its log
/// is empty; the others wait to be reached.
pub fn run(dir: &Path) -> Result<()> {
    let mesh = MeshFile::read(dir)?;
    let me = mesh.me()?.clone();
    // The key is read now, so that a missing or malformed key stops the node at once.
    let _key = read_seed(&dir.join(NODE_KEY))?;
    let files = TlsFiles::in_dir(dir, &dir.join("crl.pem"));
    let server_tls = Arc::new(ServerTls::new(files).context("node TLS")?);
    let tls = client_tls(dir)?;
    let rt = crate::serve::runtime()?;
    rt.block_on(async move {
        let log = LogStore::open(&dir.join("raft-log.sqlite"))?;
        let sm = MeshStateMachine::open(&dir.join("raft-state.sqlite"), &mesh.genesis())?;
        let raft = MeshRaft::new(
            me.id,
            raft_config()?,
            MeshNetwork::new(tls),
            log,
            sm.clone(),
        )
        .await
        .map_err(|e| crate::err!("raft: {e}"))?;
        let listener = tokio::net::TcpListener::bind(&me.addr)
            .await
            .with_context(|| format!("cannot listen on {}", me.addr))?;
        let server = tokio::spawn(ribat_net::listener::serve(
            listener,
            server_tls,
            ribat_raft::serve::router(raft.clone(), sm.clone()),
            Arc::new(TlsStats::default()),
        ));
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| crate::err!("raft: {e}"))?;
        if me.id == 1 && !initialized {
            let members: BTreeMap<u64, ribat_raft::openraft::impls::BasicNode> = mesh
                .peers
                .iter()
                .map(|p| {
                    (
                        p.id,
                        ribat_raft::openraft::impls::BasicNode::new(p.addr.clone()),
                    )
                })
                .collect();
            raft.initialize(members)
                .await
                .map_err(|e| crate::err!("cannot start the mesh: {e}"))?;
        }
        println!(
            "{} listening on https://{} (mesh of {}, threshold {})",
            me.name,
            me.addr,
            mesh.peers.len(),
            mesh.threshold
        );
        std::io::stdout().flush()?;
        tokio::select! {
            r = server => {
                r.map_err(|e| crate::err!("the listener stopped: {e}"))??;
            }
            _ = tokio::signal::ctrl_c() => {}
        }
        raft.shutdown()
            .await
            .map_err(|e| crate::err!("raft: {e}"))?;
        Ok(())
    })
}

/// The node directories under `out`, in id order (`node-1`, `node-2`, …).
pub fn node_dirs(out: &Path) -> Vec<PathBuf> {
    (1..)
        .map(|i| out.join(format!("node-{i}")))
        .take_while(|d| d.join(MESH_FILE).exists())
        .collect()
}

/// `ribat mesh up`: every node of the mesh in `spec.out` (made first when it is not there)
/// as a child process of `program` (`ribat node --dir …`, output in each directory's
/// `node.log`), until Ctrl-C; a node that stops is reported and the others are stopped.
pub fn up(program: &Path, spec: &InitSpec) -> Result<()> {
    let mut dirs = node_dirs(&spec.out);
    if dirs.is_empty() {
        dirs = init(spec)?;
        println!(
            "made a mesh of {} nodes in {}",
            dirs.len(),
            spec.out.display()
        );
    }
    let mut children = Vec::new();
    for d in &dirs {
        let log = std::fs::File::create(d.join("node.log"))?;
        let child = std::process::Command::new(program)
            .arg("node")
            .arg("--dir")
            .arg(d)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start the node in {}", d.display()))?;
        children.push(Stopped(child));
    }
    let start = std::time::Instant::now();
    let members = loop {
        let members = status(&dirs[0])?;
        if majority_leader(&members).is_some() {
            break members;
        }
        if start.elapsed() > Duration::from_secs(30) {
            print!("{}", render(&members));
            bail!("no leader within 30 s; see each node's node.log");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    print!("{}", render(&members));
    println!("mesh up: {} nodes; Ctrl-C stops them", dirs.len());
    std::io::stdout().flush()?;
    let rt = crate::serve::runtime()?;
    rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = tick.tick() => {
                    for (c, d) in children.iter_mut().zip(&dirs) {
                        if let Ok(Some(st)) = c.0.try_wait() {
                            bail!("the node in {} stopped ({st}); see its node.log", d.display());
                        }
                    }
                }
            }
        }
    })
}

/// A child node process, stopped when dropped.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One member's answer, or why there is none.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberStatus {
    /// The member.
    pub name: String,
    /// Where it listens.
    pub addr: String,
    /// Its answer.
    pub status: Option<NodeStatus>,
    /// Why it did not answer.
    pub error: Option<String>,
}

/// Asks every member (with this node's certificate) where it stands.
pub fn status(dir: &Path) -> Result<Vec<MemberStatus>> {
    let mesh = MeshFile::read(dir)?;
    let tls = client_tls(dir)?;
    let rt = crate::serve::runtime()?;
    Ok(rt.block_on(async move {
        let mut out = Vec::new();
        for p in &mesh.peers {
            let host = p.addr.rsplit_once(':').map_or("", |(h, _)| h);
            let asked = tokio::time::timeout(Duration::from_secs(3), async {
                let mut c = ribat_net::client::Connection::open(tls.clone(), &p.addr, host, true)
                    .await
                    .map_err(|e| e.to_string())?;
                let r = c
                    .send("GET", STATUS, None, None)
                    .await
                    .map_err(|e| e.to_string())?;
                if r.status != 200 {
                    return Err(format!(
                        "answered {}: {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    ));
                }
                serde_json::from_slice::<NodeStatus>(&r.body).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|_| Err("no answer within 3 s".into()));
            let (status, error) = match asked {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            };
            out.push(MemberStatus {
                name: p.name.clone(),
                addr: p.addr.clone(),
                status,
                error,
            });
        }
        out
    }))
}

/// The leader a majority of the members name, if any.
pub fn majority_leader(members: &[MemberStatus]) -> Option<u64> {
    let mut named = BTreeMap::<u64, usize>::new();
    for l in members
        .iter()
        .filter_map(|m| m.status.as_ref().and_then(|s| s.leader))
    {
        *named.entry(l).or_default() += 1;
    }
    named
        .into_iter()
        .find(|(_, n)| n * 2 > members.len())
        .map(|(l, _)| l)
}

/// The members as a table, one line each.
pub fn render(members: &[MemberStatus]) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{:<8} {:<22} {:<10} {:>6} {:>5} {:>8} {:>8} {:>5} {:>8}\n",
        "member", "address", "state", "leader", "term", "log", "applied", "lag", "in force"
    );
    let or_dash = |v: Option<u64>| v.map_or("-".into(), |i| i.to_string());
    // The leader knows how far behind each member is: its log against what each acknowledged.
    let leader = members
        .iter()
        .filter_map(|m| m.status.as_ref())
        .find(|s| !s.matched.is_empty());
    let lag = |id: u64| {
        leader.and_then(|l| {
            let matched = l.matched.get(&id)?.unwrap_or(0);
            Some(l.last_log_index?.saturating_sub(matched))
        })
    };
    for m in members {
        let _ = match (&m.status, &m.error) {
            (Some(s), _) => writeln!(
                out,
                "{:<8} {:<22} {:<10} {:>6} {:>5} {:>8} {:>8} {:>5} {:>8}",
                m.name,
                m.addr,
                s.state,
                s.leader.map_or("-".into(), |l| format!("node-{l}")),
                s.term,
                or_dash(s.last_log_index),
                or_dash(s.last_applied_index),
                or_dash(lag(s.id)),
                s.in_force
            ),
            (None, e) => writeln!(
                out,
                "{:<8} {:<22} unreachable: {}",
                m.name,
                m.addr,
                e.as_deref().unwrap_or("no answer")
            ),
        };
    }
    out
}

/// Proposes `command` to the mesh through its leader (found by asking the members) with
/// this node's certificate; returns what it became once committed and applied.
pub fn propose(dir: &Path, command: &ribat_mesh::Command) -> Result<Proposed> {
    let body = serde_json::to_vec(command)?;
    let tls = client_tls(dir)?;
    for attempt in 0..3 {
        let members = status(dir)?;
        let leader = members
            .iter()
            .filter_map(|m| m.status.as_ref().and_then(|s| s.leader))
            .next()
            .and_then(|l| {
                members
                    .iter()
                    .find(|m| m.status.as_ref().is_some_and(|s| s.id == l))
            });
        let Some(leader) = leader else {
            if attempt < 2 {
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            bail!(
                "no member knows a leader: is a majority of the mesh running? (`ribat mesh status`)"
            );
        };
        let addr = leader.addr.clone();
        let rt = crate::serve::runtime()?;
        let tls = tls.clone();
        let body = body.clone();
        let r = rt.block_on(async move {
            let host = addr.rsplit_once(':').map_or("", |(h, _)| h).to_owned();
            let mut c = ribat_net::client::Connection::open(tls, &addr, &host, true)
                .await
                .map_err(|e| crate::err!("cannot reach the leader at {addr}: {e}"))?;
            c.send("POST", PROPOSE, None, Some(body))
                .await
                .map_err(|e| crate::err!("the leader at {addr}: {e}"))
        })?;
        match r.status {
            200 => return Ok(serde_json::from_slice(&r.body)?),
            409 if attempt < 2 => {
                std::thread::sleep(Duration::from_millis(500));
            }
            _ => bail!(
                "the mesh refused the proposal ({}): {}",
                r.status,
                r.json()["detail"].as_str().unwrap_or("no detail")
            ),
        }
    }
    bail!("the leader kept changing; try again")
}

/// What a committed proposal became, in a line; an error when every node refused it.
pub fn describe(p: &Proposed) -> Result<String> {
    match &p.outcome {
        ribat_raft::Outcome::Applied(a) => Ok(format!("committed at index {}: {a:?}", p.index)),
        ribat_raft::Outcome::Rejected(r) => {
            bail!(
                "committed at index {} and refused by every node: {r}",
                p.index
            )
        }
        ribat_raft::Outcome::Raft => Ok(format!("committed at index {}", p.index)),
    }
}

/// A restriction this node decides and signs with its node key.
pub fn restrict(
    dir: &Path,
    target: ribat_detect::response::Target,
    action: ribat_detect::response::Action,
    minutes: u64,
    rule: &str,
    reason: &str,
) -> Result<(String, Proposed)> {
    let mesh = MeshFile::read(dir)?;
    let me = mesh.me()?.clone();
    let key = read_seed(&dir.join(NODE_KEY))?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let nonce = ribat_crypto::secret::SecretBytes::<4>::random()?;
    let id = format!("{}/{now_ms:x}-{}", me.name, hex::encode(nonce.expose()));
    let evidence = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(reason.as_bytes()))
    };
    let restriction = ribat_mesh::Restriction {
        id: id.clone(),
        rule: rule.to_owned(),
        target,
        action,
        until_ms: now_ms.saturating_add(minutes.saturating_mul(60_000)),
        evidence,
    };
    let sig = key.sign(ribat_mesh::command::kind::RESTRICT, &restriction)?;
    let proposed = propose(
        dir,
        &ribat_mesh::Command::Restrict {
            restriction,
            by: me.name,
            sig,
        },
    )?;
    Ok((id, proposed))
}

/// One administrator's approval of a release, made offline with their key.
pub fn approve_release(
    key: &Path,
    admin: &str,
    id: &str,
    reason: &str,
) -> Result<ribat_mesh::Approval> {
    let kp = read_seed(key)?;
    let statement = ribat_mesh::command::ReleaseStatement {
        id: id.to_owned(),
        reason: reason.to_owned(),
    };
    Ok(ribat_mesh::Approval {
        admin: admin.to_owned(),
        sig: kp.sign(ribat_mesh::command::kind::RELEASE, &statement)?,
    })
}

/// Proposes a release carrying administrators' approvals (each checked by every node).
pub fn release(
    dir: &Path,
    id: &str,
    reason: &str,
    approvals: Vec<ribat_mesh::Approval>,
) -> Result<Proposed> {
    propose(
        dir,
        &ribat_mesh::Command::Release {
            statement: ribat_mesh::command::ReleaseStatement {
                id: id.to_owned(),
                reason: reason.to_owned(),
            },
            approvals,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(out: &Path) -> InitSpec {
        InitSpec {
            out: out.to_owned(),
            addrs: vec![
                "127.0.0.1:17601".into(),
                "127.0.0.1:17602".into(),
                "127.0.0.1:17603".into(),
            ],
            threshold: 2,
            admins: vec!["sec.amina".into(), "sec.youssef".into()],
        }
    }

    #[test]
    fn the_ceremony_writes_one_directory_per_node_that_reads_back() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("mesh");
        let dirs = init(&spec(&out)).unwrap();
        assert_eq!(dirs.len(), 3);
        for (i, dir) in dirs.iter().enumerate() {
            let m = MeshFile::read(dir).unwrap();
            assert_eq!(m.id, i as u64 + 1);
            assert_eq!(m.genesis().members.len(), 3);
            let key = read_seed(&dir.join(NODE_KEY)).unwrap();
            assert_eq!(key.public(), m.me().unwrap().key);
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(NODE_KEY))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "node.key is readable by others");
        }
        assert!(out.join("admins/sec.amina.key").exists());
        // A second ceremony never writes over the first.
        let e = init(&spec(&out)).unwrap_err();
        assert!(e.to_string().contains("is not empty"), "{e}");
    }

    #[test]
    fn a_leader_counts_only_when_a_majority_names_it() {
        let m = |leader: Option<u64>| MemberStatus {
            name: "n".into(),
            addr: "a".into(),
            status: leader.map(|l| NodeStatus {
                id: 1,
                state: "Follower".into(),
                leader: Some(l),
                term: 1,
                last_log_index: None,
                last_applied_index: None,
                voters: vec![],
                in_force: 0,
                matched: BTreeMap::new(),
            }),
            error: leader.is_none().then(|| "refused".to_owned()),
        };
        assert_eq!(majority_leader(&[m(Some(2)), m(Some(2)), m(None)]), Some(2));
        assert_eq!(majority_leader(&[m(Some(2)), m(None), m(None)]), None);
        assert_eq!(majority_leader(&[m(Some(1)), m(Some(2)), m(Some(3))]), None);
        assert!(render(&[m(Some(2)), m(None)]).contains("unreachable: refused"));
    }

    #[test]
    fn a_ceremony_that_cannot_work_is_refused_before_writing() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spec(&d.path().join("a"));
        s.threshold = 4;
        assert!(init(&s).unwrap_err().to_string().contains("--threshold 4"));
        let mut s = spec(&d.path().join("b"));
        s.admins.truncate(1);
        assert!(
            init(&s)
                .unwrap_err()
                .to_string()
                .contains("two security administrators")
        );
        let mut s = spec(&d.path().join("c"));
        s.addrs[1] = "localhost".into();
        assert!(init(&s).unwrap_err().to_string().contains("HOST:PORT"));
        assert!(!d.path().join("a").exists() && !d.path().join("b").exists());
    }
}
