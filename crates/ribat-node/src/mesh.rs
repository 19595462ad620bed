//! The mesh shape: `ribat mesh init` writes one directory per node to carry to its host,
//! `ribat node --dir` runs one node, `ribat mesh status` asks every member where it stands.
//!
//! A node directory is also a node HOME (every `ribat --home DIR …` command works in it,
//! reading through the mesh's custodians over mTLS) and holds:
//!
//! | file | what |
//! |---|---|
//! | `mesh.json` | this node's id and name, where it listens (and its gateway, if it runs one), every member (address, node key, the custodian it holds), the administrators' keys, the threshold, the shared store, the identity service's nodes |
//! | `node.key` | the node's Ed25519 signing key (owner-only) |
//! | `cert.pem`, `key.pem`, `ca.pem`, `crl.pem` | its node certificate (role `node`), its TLS key (owner-only), the deployment's CA and revocation list |
//! | `custodians/custodian-<i>/` | the one custodian it holds, its shares sealed under that custodian's passphrase |
//! | `group.json`, `policy.json`, `rules.json` | the public group keys, the policy, the detectors' rules |
//! | `identity/` | the CA certificate, the revocation list and the token-verifying key; on a gateway node also the gateway's certificate; on a node of the identity service the token-signing key (never the CA's key) |
//! | `raft-log.sqlite`, `raft-state.sqlite` | the Raft log and the security state's snapshots |
//!
//! Beside the node directories the ceremony leaves `deployment/` (the CA with its key, the
//! administrators' identity register; a HOME without custodians, where `ribat identity add`
//! issues certificates and, on one host, the shared SQLite store) and `admins/` (the
//! administrators' signing keys): both belong offline.

use crate::error::{Context, Result};
use crate::home::{Home, StoreSpec};
use crate::passphrases::Source;
use crate::{bail, ensure};
use ribat_crypto::passphrase::KdfParams;
use ribat_detect::response::{Action, Target};
use ribat_identity::ca::{Ca, CertKind, write_file};
use ribat_identity::tls::{ServerTls, TlsFiles, client_config};
use ribat_mesh::{Admin, Genesis, KeyPair, Member, PublicKey};
use ribat_net::listener::TlsStats;
use ribat_raft::log_store::LogStore;
use ribat_raft::network::MeshNetwork;
pub use ribat_raft::serve::Proposed;
use ribat_raft::serve::{NodeStatus, PROPOSE, STATUS};
use ribat_raft::{MeshRaft, MeshStateMachine};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

pub use ribat_mesh::Approval;
pub use ribat_mesh::command::MembershipStatement;

/// A node's description of the mesh.
pub const MESH_FILE: &str = "mesh.json";
/// The node's signing key.
pub const NODE_KEY: &str = "node.key";
/// `mesh.json`'s format (v3: the ceremony's allowed set of builds and documents, and the
/// attestation interval; v2 added the ceremony's gateway certificates).
pub const MESH_FORMAT: &str = "ribat-mesh/v3";

/// How often a node attests unless `mesh init --attest-every` says otherwise.
pub const ATTEST_EVERY: Duration = Duration::from_secs(60);

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
    /// The custodian it holds (served on its address to gateways), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custodian: Option<u32>,
    /// The key its custodian's witness cosigns audit checkpoints with (pinned by every
    /// gateway of the mesh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<String>,
    /// On a gateway node: the key its audit log signs checkpoints with (every custodian
    /// witnesses that log, and only the logs named here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_log: Option<String>,
    /// SHA-256 of its node certificate, base64url: the one node certificate the mesh
    /// answers in its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
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
    /// Where this node's gateway listens for clients, when it runs one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The records' store as `--store` takes it (`sqlite:PATH` for nodes on one host,
    /// `postgres:…` across hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// The PostgreSQL schema, when the store is PostgreSQL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_schema: Option<String>,
    /// This node, when it joins after the ceremony (`ribat mesh prepare-node`): it is not
    /// among `peers` (the ceremony's members, every node's genesis), starts no mesh of its
    /// own, and waits until two administrators add it through the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined: Option<Peer>,
    /// The certificates the ceremony issued to act in the mesh (its gateways'): in the
    /// identity register from the start. Every other certificate acts once two
    /// administrators grant it through the log.
    #[serde(default)]
    pub granted: Vec<ribat_mesh::Registration>,
    /// What the ceremony allowed nodes to run (its own build) and decide by (the documents
    /// it wrote), and how often nodes attest.
    pub attestation: ribat_mesh::attest::AttestGenesis,
    /// The nodes of the identity service, the only ones that hold the token key: gateways
    /// elsewhere forward their clients' signed token requests there. Empty in a mesh made
    /// before the identity service, whose gateway nodes each hold the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_service: Vec<u64>,
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
            "{}: format `{}`, expected `{MESH_FORMAT}` (a mesh made by an older ribat: make it again with `ribat mesh init`)",
            path.display(),
            m.format
        );
        ensure!(
            m.peers.iter().any(|p| p.id == m.id) || m.joined.as_ref().is_some_and(|j| j.id == m.id),
            "{}: this node's id {} is not among its peers",
            path.display(),
            m.id
        );
        if let Some(j) = &m.joined {
            ensure!(
                !m.peers.iter().any(|p| p.id == j.id || p.name == j.name),
                "{}: the joining node {} (raft id {}) is also a founding peer",
                path.display(),
                j.name,
                j.id
            );
        }
        if let Some(p) = m
            .peers
            .iter()
            .chain(m.joined.iter())
            .find(|p| p.cert.is_none())
        {
            bail!(
                "{}: {} has no node certificate thumbprint (a mesh made by an older ribat: make it again with `ribat mesh init`)",
                path.display(),
                p.name
            );
        }
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
            .chain(self.joined.iter())
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
                    cert: p.cert.clone(),
                })
                .collect(),
            admins: self.admins.clone(),
            threshold: self.threshold,
            seats: self
                .peers
                .iter()
                .map(|p| {
                    let seat = ribat_mesh::Seat {
                        raft_id: p.id,
                        addr: p.addr.clone(),
                    };
                    (p.name.clone(), seat)
                })
                .collect(),
            granted: self.granted.clone(),
            attestation: self.attestation.clone(),
            custodians: self
                .peers
                .iter()
                .filter_map(|p| Some((p.custodian?, p.name.clone())))
                .collect(),
        }
    }

    /// The members that hold a custodian: (custodian index, address).
    pub fn custodians(&self) -> Vec<(u32, String)> {
        self.peers
            .iter()
            .filter_map(|p| p.custodian.map(|c| (c, p.addr.clone())))
            .collect()
    }

    /// The custodians' witness keys, by custodian index.
    pub fn witness_keys(&self) -> Result<Vec<(u32, ribat_audit::VerifierKey)>> {
        self.peers
            .iter()
            .filter_map(|p| Some((p.custodian?, p.witness.as_deref()?)))
            .map(|(c, text)| {
                let key = ribat_audit::VerifierKey::parse(text)
                    .map_err(|e| crate::err!("mesh.json: custodian {c}'s witness key: {e}"))?;
                Ok((c, key))
            })
            .collect()
    }

    /// The gateway nodes' audit log keys.
    pub fn audit_logs(&self) -> Result<Vec<ribat_audit::VerifierKey>> {
        self.peers
            .iter()
            .filter_map(|p| Some((&p.name, p.audit_log.as_deref()?)))
            .map(|(name, text)| {
                ribat_audit::VerifierKey::parse(text)
                    .map_err(|e| crate::err!("mesh.json: {name}'s audit log key: {e}"))
            })
            .collect()
    }
}

/// The name a node's audit log carries in its entries and origin: the mesh member's name
/// on a mesh node, the embedded node's otherwise.
pub fn audit_node(home: &Home) -> Result<String> {
    if is_node(home) {
        Ok(MeshFile::read(home.root())?.me()?.name.clone())
    } else {
        Ok(crate::embedded::NODE.to_owned())
    }
}

/// The host part of `HOST:PORT` (what a peer's certificate names).
pub fn host_of(addr: &str) -> &str {
    addr.rsplit_once(':').map_or("", |(h, _)| h)
}

/// One request to a member over mTLS with this node's certificate, answered within
/// `within`; what failed, in words, otherwise.
pub(crate) async fn call_peer(
    tls: &Arc<ribat_net::client::ClientConfig>,
    addr: &str,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
    within: Duration,
) -> std::result::Result<ribat_net::client::Response, String> {
    tokio::time::timeout(within, async {
        let mut c = ribat_net::client::Connection::open(tls.clone(), addr, host_of(addr), true)
            .await
            .map_err(|e| e.to_string())?;
        c.send(method, path, None, body)
            .await
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {} ms", within.as_millis())))
}

/// Asks the node in `dir` itself (with its own certificate) for `route` and reads its JSON
/// answer: what `mesh identities` and `mesh drift` show.
pub(crate) fn ask_own_node<T: serde::de::DeserializeOwned>(dir: &Path, route: &str) -> Result<T> {
    let me = MeshFile::read(dir)?;
    let addr = me.me()?.addr.clone();
    let tls = client_tls(dir)?;
    let rt = crate::serve::runtime()?;
    let r = rt
        .block_on(call_peer(
            &tls,
            &addr,
            "GET",
            route,
            None,
            Duration::from_secs(5),
        ))
        .map_err(|e| crate::err!("the node at {addr} (is it running?): {e}"))?;
    ensure!(
        r.status == 200,
        "the node at {addr} answered {}: {}",
        r.status,
        r.json()["detail"].as_str().unwrap_or("no detail")
    );
    Ok(serde_json::from_slice(&r.body)?)
}

/// The custodian set this node last put in force (where each custodian's node sits), and
/// the witness keys new custodians published; nothing (so `mesh.json`'s custodians) before
/// any resharing.
pub(crate) fn custodians_on_disk(
    home: &Home,
) -> Result<(Vec<crate::serve::RemoteSpec>, BTreeMap<u32, String>)> {
    let (set, remotes) = crate::reshare::in_force(
        home,
        ribat_mesh::custodians::CustodianSet::default(),
        &BTreeMap::new(),
    )?;
    Ok((remotes, set.witnesses))
}

/// Whether `home` is a mesh node's directory.
pub fn is_node(home: &Home) -> bool {
    home.root().join(MESH_FILE).exists()
}

/// In a mesh node's directory, the records are where `mesh.json` says unless `--store`
/// named another place.
pub fn adopt_store(home: Home) -> Result<Home> {
    if !is_node(&home) || home.store() != &StoreSpec::Sqlite {
        return Ok(home);
    }
    let m = MeshFile::read(home.root())?;
    match m.store {
        Some(s) => {
            let spec = StoreSpec::parse(&s, m.store_schema.as_deref().unwrap_or("ribat"))?;
            Ok(home.with_store(spec))
        }
        None => Ok(home),
    }
}

/// What `ribat mesh init` is asked for.
#[derive(Debug, Clone)]
pub struct InitSpec {
    /// Where the node directories go (must not exist, or be empty).
    pub out: PathBuf,
    /// Each node's address, `HOST:PORT`; their number is the mesh's size.
    pub addrs: Vec<String>,
    /// Distinct members whose signatures make a decision mesh-wide, and custodians whose
    /// answers open a record.
    pub threshold: usize,
    /// The security administrators (at least two: a release needs two).
    pub admins: Vec<String>,
    /// Nodes that run a gateway, and where each listens for clients.
    pub gateways: Vec<(u64, String)>,
    /// The custodians' passphrases: custodian `i` (on node `i`) seals its shares under the
    /// `i`-th.
    pub passphrases: Source,
    /// Where the records are kept: the default SQLite store goes in OUT/deployment, shared
    /// by nodes on this host; nodes on several hosts share PostgreSQL.
    pub store: StoreSpec,
    /// What sealing a custodian's shares under its passphrase costs.
    pub kdf: KdfParams,
    /// How often each node attests what it runs.
    pub attest_every: Duration,
    /// The nodes that hold the token key and issue tokens (the identity service). Empty:
    /// every node without a gateway, and gateway nodes besides when those are fewer than
    /// `n − t + 1` (token requests survive as many nodes down as reads).
    pub token_service: Vec<u64>,
}

/// The identity service's nodes for `spec`: those given; else every node without a
/// gateway, and, when they are fewer than `n − t + 1`, gateway nodes from node 1 on until
/// they are that many — so that token requests, like reads, go on while any `n − t` nodes
/// are down.
fn token_nodes(spec: &InitSpec) -> Vec<u64> {
    if !spec.token_service.is_empty() {
        return spec.token_service.clone();
    }
    let n = spec.addrs.len();
    let wanted = n.saturating_sub(spec.threshold) + 1;
    let has_gateway = |id: &u64| spec.gateways.iter().any(|(g, _)| g == id);
    let mut nodes: Vec<u64> = (1..=n as u64).filter(|id| !has_gateway(id)).collect();
    for id in (1..=n as u64).filter(has_gateway) {
        if nodes.len() >= wanted {
            break;
        }
        nodes.push(id);
    }
    nodes.sort_unstable();
    nodes
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

/// The deployment's HOME beside the node directories.
pub fn deployment_home(out: &Path) -> Home {
    Home::at(out.join("deployment"))
}

fn check_spec(spec: &InitSpec) -> Result<()> {
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
    let is_addr = |a: &str| {
        a.rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
    };
    for (i, a) in spec.addrs.iter().enumerate() {
        ensure!(is_addr(a), "node address `{a}`: expected HOST:PORT");
        ensure!(
            !spec.addrs[..i].contains(a),
            "node address `{a}` is given twice: each node listens on its own"
        );
    }
    for (k, id) in spec.token_service.iter().enumerate() {
        ensure!(
            (1..=n as u64).contains(id),
            "--token-service {id}: there is no node {id} in a mesh of {n}"
        );
        ensure!(
            !spec.token_service[..k].contains(id),
            "--token-service {id}: given twice"
        );
    }
    for (k, (id, a)) in spec.gateways.iter().enumerate() {
        ensure!(
            (1..=n as u64).contains(id),
            "--gateway {id}={a}: there is no node {id} in a mesh of {n}"
        );
        ensure!(is_addr(a), "--gateway {id}={a}: expected ID=HOST:PORT");
        ensure!(
            !spec.addrs.contains(a),
            "--gateway {id}={a}: that address is a node's mesh address"
        );
        if let Some((other, _)) = spec.gateways[..k].iter().find(|(o, b)| o == id || b == a) {
            bail!(
                "--gateway {id}={a}: node {other} already has a gateway there, or node {id} one already; one gateway per node, each on its own address"
            );
        }
    }
    // Only the passphrases `mesh up` made for this ceremony may be there already.
    if spec.out.exists()
        && std::fs::read_dir(&spec.out)?
            .any(|e| e.map_or(true, |e| e.file_name() != PASSPHRASES_DIR))
    {
        bail!(
            "{} is not empty: a mesh ceremony writes fresh directories",
            spec.out.display()
        );
    }
    Ok(())
}

/// The store as node `name` reaches it, and its schema: on PostgreSQL, under a role of its
/// own (made now, by the ceremony's owner connection), so that the database tells the nodes
/// apart and none of them can alter the schema.
fn node_store(store: &StoreSpec, name: &str) -> Result<(String, Option<String>)> {
    let StoreSpec::Postgres { conninfo, schema } = store else {
        return Ok((store.to_arg(), None));
    };
    ensure!(
        !conninfo.contains("://"),
        "--store postgres:{conninfo}: a mesh needs the key=value form (host=… dbname=…), to give each node its own user"
    );
    let role = format!("{schema}_{}", name.replace('-', "_"));
    ribat_store::PostgresStore::grant_node_role(conninfo, schema, &role)?;
    Ok((
        format!("postgres:{conninfo} user={role}"),
        Some(schema.clone()),
    ))
}

/// Copies `name` from directory `from` to directory `to`.
fn copy_into(from: &Path, to: &Path, name: &str) -> Result<()> {
    std::fs::copy(from.join(name), to.join(name)).with_context(|| {
        format!(
            "cannot copy {} into {}",
            from.join(name).display(),
            to.display()
        )
    })?;
    Ok(())
}

/// A node certificate for member `name` listening at `addr`.
fn node_cert(ca: &Ca, name: &str, addr: &str) -> Result<ribat_identity::Issued> {
    Ok(ca.issue(
        name,
        "node",
        "mesh",
        &CertKind::Server {
            hosts: vec![host_of(addr).to_owned()],
        },
        365,
    )?)
}

/// What every node's directory holds from the ceremony's CA and deployment, whether it is a
/// founding node or joins later: its node certificate for `addr`'s host and TLS key, the
/// CA and its revocation list, its node signing key (from `seed`), the group, policy and
/// rules, and the identity files a node checks tokens with.
fn node_dir(
    ca: &Ca,
    deployment: &Home,
    dir: &Path,
    issued: &ribat_identity::Issued,
    seed: &[u8; 32],
) -> Result<Home> {
    use ribat_identity::ca::{CA_CERT, CRL, TOKEN_PUB};
    let node = Home::at(dir.to_owned());
    node.create()?;
    let ca_dir = crate::identity::dir(deployment);
    write_file(&dir.join("cert.pem"), issued.cert_pem.as_bytes(), false)?;
    write_file(&dir.join("key.pem"), issued.key_pem.as_bytes(), true)?;
    write_file(&dir.join("ca.pem"), ca.cert_pem()?.as_bytes(), false)?;
    std::fs::copy(ca_dir.join(CRL), dir.join("crl.pem"))?;
    write_seed(&dir.join(NODE_KEY), seed)?;
    for f in ["group.json", "policy.json", crate::serve::RULES_FILE] {
        copy_into(deployment.root(), dir, f)?;
    }
    let id_dir = crate::identity::dir(&node);
    std::fs::create_dir_all(&id_dir)?;
    for f in [CA_CERT, CRL, TOKEN_PUB] {
        copy_into(&ca_dir, &id_dir, f)?;
    }
    Ok(node)
}

/// Writes one directory per node (and, beside them, the deployment's HOME with the CA and
/// the administrators' keys); returns the node directories.
///
/// The key ceremony deals one custodian's shares to each node and forgets the class keys
/// (as `ribat keys init` does); the deployment's HOME keeps no share.
pub fn init(spec: &InitSpec) -> Result<Vec<PathBuf>> {
    check_spec(spec)?;
    std::fs::create_dir_all(&spec.out)?;
    let store = match &spec.store {
        StoreSpec::Sqlite => {
            let file = std::path::absolute(deployment_home(&spec.out).store_file())
                .context("cannot make the store's path absolute")?;
            StoreSpec::SqliteAt(file)
        }
        other => other.clone(),
    };
    let deployment = deployment_home(&spec.out).with_store(store.clone());
    deployment.create()?;
    let ca = Ca::init(
        &crate::identity::dir(&deployment),
        crate::embedded::DEPLOYMENT,
    )?;
    crate::ceremony::init_quiet(
        &deployment,
        spec.threshold,
        spec.addrs.len(),
        &ribat_import::records::SEALED_CLASSES,
        &spec.passphrases,
        spec.kdf,
    )?;
    let admins_dir = spec.out.join("admins");
    std::fs::create_dir_all(&admins_dir)?;
    crate::home::restrict(&admins_dir)?;
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
        let name = format!("node-{id}");
        // Each custodian's witness key, read once with its passphrase, for the gateways to
        // pin; each gateway's audit log key, made now, for the custodians to witness.
        let custodian = u32::try_from(id)?;
        let witness = {
            let pass = spec.passphrases.get(id as usize, false)?;
            let c = ribat_custodian::LocalCustodian::open(
                &deployment.custodian_dir(id as usize),
                &pass,
                crate::embedded::open_store(&deployment)?,
                Arc::new(ribat_custodian::clock::SystemClock),
            )?;
            c.witness_key(crate::embedded::DEPLOYMENT)?.to_string()
        };
        let audit_log = match spec.gateways.iter().any(|(g, _)| *g == id) {
            true => {
                let audit_dir = spec.out.join(&name).join("audit");
                let origin = ribat_gateway::node_log::origin(crate::embedded::DEPLOYMENT, &name);
                Some(
                    ribat_gateway::node_log::log_key(&audit_dir, &origin)?
                        .verifier()
                        .to_string(),
                )
            }
            false => None,
        };
        // Its node certificate now: every node's genesis names each member's.
        let issued = node_cert(&ca, &name, addr)?;
        peers.push(Peer {
            id,
            name,
            addr: addr.clone(),
            key: KeyPair::from_seed(&seed).public(),
            custodian: Some(custodian),
            witness: Some(witness),
            audit_log,
            cert: Some(issued.entry.thumbprint.clone()),
        });
        seeds.push((seed, issued));
    }
    let ca_dir = crate::identity::dir(&deployment);
    // The gateways' certificates first: every node's genesis lists them as granted.
    let mut gateway_certs = BTreeMap::new();
    for (id, addr) in &spec.gateways {
        let name = format!("gateway.node-{id}");
        let gw = ca.issue(
            &name,
            "gateway",
            "mesh",
            &CertKind::Server {
                hosts: vec![host_of(addr).to_owned()],
            },
            365,
        )?;
        gateway_certs.insert(*id, gw);
    }
    let granted: Vec<ribat_mesh::Registration> = gateway_certs
        .values()
        .map(|gw| registration(&gw.entry))
        .collect();
    // The allowed set starts with the ceremony's own build and the documents it wrote.
    let mut attestation = ribat_mesh::attest::AttestGenesis {
        every_ms: u64::try_from(spec.attest_every.as_millis()).unwrap_or(u64::MAX),
        releases: vec![crate::attest::this_release()?],
        policy: BTreeSet::from([crate::attest::digest_file(
            &deployment.root().join("policy.json"),
        )?]),
        rules: BTreeSet::from([crate::attest::digest_file(
            &deployment.root().join(crate::serve::RULES_FILE),
        )?]),
    };
    for p in &peers {
        let index = p.custodian.map_or(0, |c| c as usize);
        attestation.policy.insert(crate::attest::digest_file(
            &deployment
                .custodian_dir(index)
                .join(ribat_custodian::keystore::POLICY_FILE),
        )?);
    }
    let token_service = token_nodes(spec);
    let beside: Vec<String> = token_service
        .iter()
        .filter(|id| spec.gateways.iter().any(|(g, _)| g == *id))
        .map(|id| format!("node-{id}"))
        .collect();
    if !beside.is_empty() {
        eprintln!(
            "note: {} run a gateway and hold the token key too (the identity service needs {} nodes to go on while {} are down): whoever takes such a process can mint tokens, though not the users' signatures the custodians require; give --token-service nodes without a gateway to keep them apart",
            beside.join(", "),
            spec.addrs.len().saturating_sub(spec.threshold) + 1,
            spec.addrs.len().saturating_sub(spec.threshold)
        );
    }
    let mut dirs = Vec::new();
    for (p, (seed, issued)) in peers.iter().zip(&seeds) {
        let dir = spec.out.join(&p.name);
        let node = node_dir(&ca, &deployment, &dir, issued, seed)?;
        // Its custodian moves here: the deployment's HOME keeps no share.
        let index = p.custodian.map_or(0, |c| c as usize);
        std::fs::rename(deployment.custodian_dir(index), node.custodian_dir(index))
            .with_context(|| format!("cannot move custodian {index} into {}", dir.display()))?;
        let id_dir = crate::identity::dir(&node);
        use ribat_identity::ca::{REGISTER, TOKEN_KEY};
        let gateway = spec
            .gateways
            .iter()
            .find(|(id, _)| *id == p.id)
            .map(|(_, a)| a.clone());
        // Only the identity service's nodes sign tokens; gateways elsewhere hold the public
        // key and forward. Nobody issues certificates: the CA's key stays in the
        // deployment's HOME.
        if token_service.contains(&p.id) {
            copy_into(&ca_dir, &id_dir, TOKEN_KEY)?;
        }
        if let Some(gw) = gateway_certs.get(&p.id) {
            copy_into(&ca_dir, &id_dir, REGISTER)?;
            let gw_dir = crate::identity::issued_dir(&node, crate::identity::GATEWAY_NAME);
            std::fs::create_dir_all(&gw_dir)?;
            crate::home::restrict(&gw_dir)?;
            write_file(&gw_dir.join("cert.pem"), gw.cert_pem.as_bytes(), false)?;
            write_file(&gw_dir.join("key.pem"), gw.key_pem.as_bytes(), true)?;
            write_file(&gw_dir.join("ca.pem"), ca.cert_pem()?.as_bytes(), false)?;
        }
        let (node_store, store_schema) = node_store(&store, &p.name)?;
        let file = MeshFile {
            format: MESH_FORMAT.into(),
            id: p.id,
            peers: peers.clone(),
            admins: admins.clone(),
            threshold: spec.threshold,
            gateway,
            store: Some(node_store),
            store_schema,
            joined: None,
            granted: granted.clone(),
            attestation: attestation.clone(),
            token_service: token_service.clone(),
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

pub(crate) fn client_tls(dir: &Path) -> Result<Arc<ribat_net::client::ClientConfig>> {
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

/// The custodians whose shares are in `home` (indexes, from `custodians/custodian-<i>`).
pub fn held_custodians(home: &Home) -> Result<Vec<u32>> {
    let root = home.root().join("custodians");
    let mut held = Vec::new();
    let entries = match std::fs::read_dir(&root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(held),
        Err(e) => return Err(crate::err!("cannot list {}: {e}", root.display())),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        match name
            .strip_prefix("custodian-")
            .and_then(|i| i.parse::<u32>().ok())
        {
            // A custodian that left the set in force keeps its directory (its policy and
            // its served log, the record of what it did) but no share.
            Some(_) if !ribat_custodian::keystore::holds_shares(&entry.path()) => {}
            Some(i) => held.push(i),
            None => bail!(
                "{}: `{name}` is not a custodian's directory (custodian-<i>)",
                root.display()
            ),
        }
    }
    held.sort_unstable();
    Ok(held)
}

/// The one custodian a node may hold: none, or `expected` (the one the custodian set in
/// force gives it; `mesh.json`'s before any resharing). A node never holds two custodians'
/// shares (whoever owns it would hold two of the `t` needed).
fn own_custodian(home: &Home, me: &Peer, expected: Option<u32>) -> Result<Option<u32>> {
    let held = held_custodians(home)?;
    match held.as_slice() {
        [] => Ok(None),
        [one] if expected == Some(*one) => Ok(Some(*one)),
        [one] => bail!(
            "{} holds custodian {one}'s shares but the custodian set in force gives {} {}: refusing to start",
            home.root().display(),
            me.name,
            expected.map_or("no custodian".to_owned(), |c| format!("custodian {c}"))
        ),
        many => bail!(
            "{} holds the shares of {} custodians ({}): a node holds at most one, or whoever owns it holds {} of the shares a read needs; move all but custodian {} to their own nodes",
            home.root().display(),
            many.len(),
            many.iter()
                .map(|i| format!("custodian-{i}"))
                .collect::<Vec<_>>()
                .join(", "),
            many.len(),
            expected.map_or("-".to_owned(), |c| c.to_string())
        ),
    }
}

/// Dates this node's security state by the lab clock in `file` (`ribat node --lab-clock`):
/// the system's time plus the offset the file holds, moved forward by a simulator. Only in
/// a lab: every address of the mesh must be on loopback, so a node a fund runs on its own
/// host cannot be told to let tokens, quotas and quarantines run out early.
pub fn follow_lab_clock(mesh: &MeshFile, file: &Path) -> Result<()> {
    let addrs = mesh
        .peers
        .iter()
        .chain(mesh.joined.iter())
        .map(|p| p.addr.as_str())
        .chain(mesh.gateway.as_deref());
    for addr in addrs {
        let loopback = addr
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        if !loopback {
            bail!(
                "--lab-clock: `{addr}` is not a loopback address; a lab clock is for meshes on one machine (`ribat mesh up`, `ribat simulate --mesh`), never for nodes on their own hosts"
            );
        }
    }
    ribat_clock::follow(file).map_err(|e| crate::err!("--lab-clock: {e}"))?;
    eprintln!(
        "warning: lab clock: this node dates tokens, quotas, decisions and reviews by the system's time plus the offset in {} (now {} ms); for simulations only",
        file.display(),
        ribat_clock::lab_offset_ms().unwrap_or(0)
    );
    Ok(())
}

/// Now by the node's clock (a lab's, when it follows one): what security state is dated by.
fn now_s() -> i64 {
    ribat_clock::now_utc().unix_timestamp()
}

/// Same, ms.
pub(crate) fn now_ms() -> u64 {
    ribat_clock::now_ms()
}

/// A part of this node that refuses whom the security state restricts.
trait Carrier: Send + Sync {
    /// Restricts `target` by `action` until `until_ms` (restriction `id`): a quarantine
    /// refuses an identity; a step-up (a supervisor's co-signature of each request), a
    /// throttle and a role's essential-services fallback are for gateways only.
    fn impose(&self, id: &str, target: &Target, action: Action, until_ms: u64) -> Result<()>;
    /// Serves `target` again as restriction `id` did not: it was released by the
    /// administrators `by`.
    fn lift(&self, id: &str, target: &Target, action: Action, by: &[String]) -> Result<()>;
    /// Decides by `policy` (version `version`, put in force by two administrators).
    fn set_policy(&self, version: u64, policy: ribat_custodian::policy::Policy) -> Result<()>;
    /// Detects by `rules` (put in force by two administrators), merged with the policy it
    /// decides by, as at start.
    fn set_rules(&self, rules: ribat_detect::Rules) -> Result<()>;
    /// Answers `identity`'s bulk reads for `persons` more distinct persons until
    /// `until_ms` (export `id`, allowed by two administrators). Only custodians count.
    fn allow_export(
        &self,
        _id: &str,
        _identity: &str,
        _persons: u64,
        _until_ms: u64,
    ) -> Result<()> {
        Ok(())
    }
}

/// What each part of the node carried out: (policy version, rules version), by part.
type CarriedBook = Arc<std::sync::Mutex<BTreeMap<String, (u64, u64)>>>;

/// The node's custodian: durably, in its own log.
struct CustodianCarrier {
    custodian: Arc<ribat_custodian::LocalCustodian>,
    /// Its detectors (a gateway certificate asking for what no gateway audited, …).
    watch: Arc<ribat_gateway::watch::Watch>,
    /// Restrictions it carried out, for the node to endorse.
    imposed: Arc<std::sync::Mutex<BTreeSet<String>>>,
    /// The bulk reads allowed through the log (a hook of its guard).
    allowances: Arc<ribat_custodian::allowance::Allowances>,
}

impl Carrier for CustodianCarrier {
    fn impose(&self, id: &str, target: &Target, action: Action, until_ms: u64) -> Result<()> {
        // Step-ups, throttles and fallbacks are the gateways' to carry out; the node
        // endorses them all the same (a restriction is always safe to sign).
        if let (Target::Identity(identity), Action::Quarantine) = (target, action) {
            self.custodian
                .impose(identity, until_ms / 1000, &format!("mesh restriction {id}"))?;
        }
        if let Ok(mut i) = self.imposed.lock() {
            i.insert(id.to_owned());
        }
        Ok(())
    }

    fn lift(&self, id: &str, target: &Target, action: Action, by: &[String]) -> Result<()> {
        let (Target::Identity(identity), Action::Quarantine) = (target, action) else {
            return Ok(());
        };
        Ok(self.custodian.lift(
            identity,
            &format!("mesh restriction {id} released by {}", by.join(" and ")),
        )?)
    }

    fn set_policy(&self, _: u64, policy: ribat_custodian::policy::Policy) -> Result<()> {
        Ok(self.custodian.set_policy(policy)?)
    }

    fn set_rules(&self, rules: ribat_detect::Rules) -> Result<()> {
        self.watch
            .set_rules(rules.with_policy(&self.custodian.policy()?));
        Ok(())
    }

    fn allow_export(&self, id: &str, identity: &str, persons: u64, until_ms: u64) -> Result<()> {
        self.allowances
            .allow(id, identity, persons, until_ms / 1000);
        Ok(())
    }
}

/// The node's gateway: its gate stops the identity before any custodian is asked; a
/// release lifts what the gate learnt and, for a decision this node's own detectors took,
/// the decision itself.
struct GatewayCarrier {
    app: Arc<ribat_gateway::api::App>,
    me: String,
}

impl Carrier for GatewayCarrier {
    fn impose(&self, id: &str, target: &Target, action: Action, until_ms: u64) -> Result<()> {
        match (target, action) {
            (Target::Identity(identity), Action::Quarantine) => {
                self.app.gate.note_quarantine(identity, until_ms / 1000)
            }
            _ => self
                .app
                .watch
                .hold_elsewhere(id, target.clone(), action, until_ms),
        }
        Ok(())
    }

    fn lift(&self, id: &str, target: &Target, action: Action, by: &[String]) -> Result<()> {
        match (target, action) {
            (Target::Identity(identity), Action::Quarantine) => {
                self.app.gate.forget_quarantine(identity)
            }
            _ => self.app.watch.lift_elsewhere(id),
        }
        if let Some(decision) = id
            .strip_prefix(&self.me)
            .and_then(|rest| rest.strip_prefix('/'))
        {
            self.app.watch.released_elsewhere(decision, by.to_vec());
        }
        Ok(())
    }

    fn set_policy(&self, _: u64, policy: ribat_custodian::policy::Policy) -> Result<()> {
        self.app.gate.set_policy(policy);
        Ok(())
    }

    fn set_rules(&self, rules: ribat_detect::Rules) -> Result<()> {
        self.app
            .watch
            .set_rules(rules.with_policy(&self.app.gate.policy()));
        Ok(())
    }
}

/// How long a custodian answers after it last confirmed with the leader that it carried
/// out the security state: above the election that follows a leader's crash, so that
/// losing a leader does not stop reads; a node paused or cut off for longer refuses until
/// it has applied what it missed. That election can take two rounds: the first candidate
/// (after 0.75–1.5 s) is refused by the other follower while its lease of the dead leader
/// lasts, and the next round comes up to 1.5 s later — `bench mesh` saw reads through the
/// two live nodes fail 2.85 s after the kill when this was 3 s.
pub const FRESH_FOR_MS: u64 = 5_000;

/// Where this node stands against the mesh's security state.
#[derive(Debug, Default)]
struct Freshness {
    /// When it last confirmed with the leader that it carried out everything committed
    /// (ms since the epoch).
    synced_ms: std::sync::atomic::AtomicU64,
    /// The Raft index through which its custodian carried out what it owes.
    enforced_index: std::sync::atomic::AtomicU64,
}

impl Freshness {
    /// Whether the custodian may answer now, or why not.
    fn ready(&self, me: &str) -> std::result::Result<(), String> {
        use std::sync::atomic::Ordering;
        let synced = self.synced_ms.load(Ordering::Acquire);
        let age = ribat_clock::real_ms().saturating_sub(synced);
        if synced > 0 && age <= FRESH_FOR_MS {
            return Ok(());
        }
        let since = match synced {
            0 => "since it started".to_owned(),
            _ => format!("for {age} ms"),
        };
        Err(format!(
            "{me} has not confirmed the mesh's security state with its leader {since} (starting, cut off, paused, or catching up); it answers again once it has applied what it missed"
        ))
    }
}

/// How far behind its leader a learner may be and still be made a voter: promoting one
/// further behind would stall commits until it caught up.
const PROMOTE_WITHIN: u64 = 16;

/// On the leader, every 500 ms: makes Raft's voters the members the security state seats.
/// Raft cannot tell who may vote; two administrators can, through the log: a member they
/// add is taken on as a learner and made a voter once it has caught up, a member they
/// remove is taken out of Raft. Every other node does nothing here.
async fn keep_membership(raft: MeshRaft, sm: MeshStateMachine) {
    use ribat_raft::openraft::async_runtime::WatchReceiver;
    use ribat_raft::openraft::impls::BasicNode;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let m = raft.metrics().borrow_watched().clone();
        if m.current_leader != Some(m.id) {
            continue;
        }
        let seats: BTreeMap<u64, String> = match sm.read(|st| {
            st.seats()
                .values()
                .map(|s| (s.raft_id, s.addr.clone()))
                .collect()
        }) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("warning: cannot read the security state: {e}");
                continue;
            }
        };
        let membership = m.membership_config.membership();
        // An empty seating is a state from before seats were kept: nothing to match.
        if seats.is_empty() || membership.get_joint_config().len() > 1 {
            continue;
        }
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let want: BTreeSet<u64> = seats.keys().copied().collect();
        if voters == want {
            continue;
        }
        let mut ready = true;
        for (id, addr) in seats.iter().filter(|(id, _)| !voters.contains(id)) {
            if membership.get_node(id).is_none() {
                eprintln!("membership: taking on raft id {id} at {addr} as a learner");
                if let Err(e) = raft
                    .add_learner(*id, BasicNode::new(addr.clone()), false)
                    .await
                {
                    eprintln!("warning: cannot take on raft id {id}: {e}");
                }
                ready = false;
                continue;
            }
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(id).copied().flatten())
                .map(|l| l.index);
            let last = m.last_log_index.unwrap_or(0);
            if matched.is_none_or(|i| i + PROMOTE_WITHIN < last) {
                ready = false;
            }
        }
        if !ready {
            continue;
        }
        eprintln!("membership: voters {voters:?} -> {want:?}, as two administrators decided");
        if let Err(e) = raft.change_membership(want, false).await {
            eprintln!("warning: the membership change did not commit: {e}");
        }
    }
}

/// Where Raft member `id` listens, as the membership this node holds says (the ceremony's
/// members and those two administrators added since).
fn member_addr(raft: &MeshRaft, id: u64) -> Option<String> {
    use ribat_raft::openraft::async_runtime::WatchReceiver;
    let m = raft.metrics().borrow_watched().membership_config.clone();
    m.get_node(&id).map(|n| n.addr.clone())
}

/// The index a node must have applied before it serves: its own, its leadership confirmed
/// by a quorum, when it leads; else the leader's, asked over mTLS.
async fn read_index(
    raft: &MeshRaft,
    tls: &Arc<ribat_net::client::ClientConfig>,
) -> std::result::Result<u64, String> {
    use ribat_raft::openraft::async_runtime::WatchReceiver;
    let (id, leader) = {
        let m = raft.metrics().borrow_watched().clone();
        (m.id, m.current_leader)
    };
    match leader {
        None => Err("no leader known".into()),
        Some(l) if l == id => raft
            .ensure_linearizable(ribat_raft::openraft::ReadPolicy::ReadIndex)
            .await
            .map(|r| r.index())
            .map_err(|e| e.to_string()),
        Some(l) => {
            let addr = member_addr(raft, l).ok_or_else(|| format!("leader {l} is not a member"))?;
            let asked = call_peer(
                tls,
                &addr,
                "GET",
                ribat_raft::serve::READ_INDEX,
                None,
                Duration::from_secs(1),
            )
            .await
            .map_err(|e| format!("the leader at {addr}: {e}"))?;
            if asked.status != 200 {
                return Err(format!("the leader at {addr} answered {}", asked.status));
            }
            serde_json::from_slice::<ribat_raft::serve::ReadIndex>(&asked.body)
                .map(|r| r.index)
                .map_err(|e| e.to_string())
        }
    }
}

/// Every 200 ms, asks the leader up to where the state is committed and, once this node's
/// custodian carried out the state through there, marks the node fresh.
async fn keep_fresh(
    raft: MeshRaft,
    tls: Arc<ribat_net::client::ClientConfig>,
    fresh: Arc<Freshness>,
) {
    use std::sync::atomic::Ordering;
    // Said once per change, not every 200 ms.
    let mut stale = true;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let asked_at = ribat_clock::real_ms();
        let index = match read_index(&raft, &tls).await {
            Ok(i) => i,
            Err(e) => {
                if !stale
                    && ribat_clock::real_ms()
                        .saturating_sub(fresh.synced_ms.load(Ordering::Acquire))
                        > FRESH_FOR_MS
                {
                    stale = true;
                    eprintln!("custodian paused: cannot confirm the security state ({e})");
                }
                continue;
            }
        };
        for _ in 0..20 {
            if fresh.enforced_index.load(Ordering::Acquire) >= index {
                fresh.synced_ms.fetch_max(asked_at, Ordering::AcqRel);
                if std::mem::take(&mut stale) {
                    eprintln!(
                        "custodian answering: security state carried out through index {index}"
                    );
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Keeps `carrier` refusing exactly whom the security state restricts: every 100 ms, the
/// acts owed ([`ribat_mesh::enforce`]) are carried out; with `progress`, records the Raft
/// index through which they were.
async fn enforce_state(
    sm: MeshStateMachine,
    carrier: Arc<dyn Carrier>,
    what: String,
    progress: Option<(MeshRaft, Arc<Freshness>)>,
    carried: CarriedBook,
    (documents, policy_doc): (Arc<crate::attest::Documents>, &'static str),
) {
    use ribat_mesh::enforce::{Act, Enforcement};
    use ribat_raft::openraft::async_runtime::WatchReceiver;
    let mut done = Enforcement::default();
    let note = |f: &dyn Fn(&mut (u64, u64))| {
        if let Ok(mut c) = carried.lock() {
            f(c.entry(what.clone()).or_default());
        }
    };
    note(&|_| {});
    loop {
        // Read before the state: the state read next holds at least this much.
        let applied = progress.as_ref().map(|(raft, _)| {
            raft.metrics()
                .borrow_watched()
                .last_applied
                .as_ref()
                .map_or(0, |l| l.index)
        });
        let mut all_done = true;
        let owed = match sm.read(|st| done.owed(st, now_ms())) {
            Ok(o) => o,
            Err(e) => {
                all_done = false;
                eprintln!("warning: cannot read the security state: {e}");
                Vec::new()
            }
        };
        for act in owed {
            let (c, a) = (carrier.clone(), act.clone());
            let r = tokio::task::spawn_blocking(move || match &a {
                Act::Impose {
                    id,
                    target,
                    action,
                    until_ms,
                } => c.impose(id, target, *action, *until_ms),
                Act::Lift {
                    id,
                    target,
                    action,
                    by,
                } => c.lift(id, target, *action, by),
                // A document two administrators signed that this build cannot read: the
                // act stays owed, so the custodian stops answering (it cannot confirm it
                // carried out the state) rather than decide by an older policy.
                Act::SetPolicy { version, document } => {
                    let policy = ribat_custodian::policy::Policy::from_json(document)
                        .map_err(|e| crate::err!("policy version {version}: {e}"))?;
                    c.set_policy(*version, policy)
                }
                Act::SetRules { version, document } => {
                    let rules = ribat_detect::Rules::from_json(document)
                        .map_err(|e| crate::err!("rules version {version}: {e}"))?;
                    c.set_rules(rules)
                }
                Act::AllowExport {
                    id,
                    identity,
                    persons,
                    until_ms,
                } => c.allow_export(id, identity, *persons, *until_ms),
            })
            .await;
            match r {
                Ok(Ok(())) => {
                    match &act {
                        Act::SetPolicy { version, document } => {
                            documents
                                .set(policy_doc, crate::attest::digest_bytes(document.as_bytes()));
                            note(&|c| c.0 = c.0.max(*version));
                            eprintln!("{what} decides by policy version {version}")
                        }
                        Act::SetRules { version, document } => {
                            documents.set(
                                crate::attest::RULES,
                                crate::attest::digest_bytes(document.as_bytes()),
                            );
                            note(&|c| c.1 = c.1.max(*version));
                            eprintln!("{what} detects by rules version {version}")
                        }
                        other => eprintln!("{what} enforced: {other:?}"),
                    }
                    done.done(&act);
                }
                Ok(Err(e)) => {
                    all_done = false;
                    eprintln!("warning: {what} could not carry out {act:?}: {e}");
                }
                Err(e) => {
                    all_done = false;
                    eprintln!("warning: {what} could not carry out {act:?}: {e}");
                }
            }
        }
        if let (Some((_, fresh)), Some(applied), true) = (&progress, applied, all_done) {
            fresh
                .enforced_index
                .fetch_max(applied, std::sync::atomic::Ordering::AcqRel);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a node needs to endorse the restrictions its custodian carried out.
struct Endorser {
    sm: MeshStateMachine,
    raft: MeshRaft,
    tls: Arc<ribat_net::client::ClientConfig>,
    key: Arc<KeyPair>,
    me: String,
    imposed: Arc<std::sync::Mutex<BTreeSet<String>>>,
}

/// Every 200 ms, signs with the node key each restriction this node's custodian carried out
/// and has not yet signed, and proposes the endorsement: a restriction is mesh-wide once
/// `t` members signed it, the deciding one included.
async fn endorse(e: Endorser) {
    let mut done: BTreeSet<String> = BTreeSet::new();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let owed: Vec<String> = e
            .imposed
            .lock()
            .map(|i| i.difference(&done).cloned().collect())
            .unwrap_or_default();
        for id in owed {
            let held = match e.sm.read(|st| st.restriction(&id).cloned()) {
                Ok(Some(h)) => h,
                _ => continue,
            };
            if held.signers.contains(&e.me) || held.released_by.is_some() {
                done.insert(id);
                continue;
            }
            let sig = match e
                .key
                .sign(ribat_mesh::command::kind::RESTRICT, &held.restriction)
            {
                Ok(s) => s,
                Err(err) => {
                    eprintln!("warning: cannot sign an endorsement of {id}: {err}");
                    continue;
                }
            };
            let command = ribat_mesh::Command::Endorse {
                id: id.clone(),
                by: e.me.clone(),
                sig,
            };
            match propose_from_node(&e.raft, e.tls.clone(), command).await {
                Ok(p) => {
                    eprintln!("endorsed {id} (committed at index {})", p.index);
                    done.insert(id);
                }
                Err(err) => {
                    eprintln!("warning: the endorsement of {id} did not reach the mesh: {err}")
                }
            }
        }
    }
}

/// Proposes a command to the mesh from inside a node: to its own Raft when it leads, else
/// to the leader it knows, over mTLS with the node's certificate.
pub(crate) async fn propose_from_node(
    raft: &MeshRaft,
    tls: Arc<ribat_net::client::ClientConfig>,
    command: ribat_mesh::Command,
) -> Result<Proposed> {
    use ribat_raft::openraft::error::{ClientWriteError, RaftError};
    for _ in 0..20 {
        match raft.client_write(command.clone()).await {
            Ok(w) => {
                return Ok(Proposed {
                    index: w.log_id.index,
                    outcome: w.data,
                });
            }
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                let Some(addr) = f.leader_id.and_then(|l| member_addr(raft, l)) else {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                };
                let body = serde_json::to_vec(&command)?;
                let sent = call_peer(
                    &tls,
                    &addr,
                    "POST",
                    PROPOSE,
                    Some(body),
                    Duration::from_secs(5),
                )
                .await;
                match sent {
                    Ok(r) if r.status == 200 => return Ok(serde_json::from_slice(&r.body)?),
                    Ok(r) if r.status == 409 => {}
                    Ok(r) => bail!(
                        "the leader at {addr} refused the proposal ({}): {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    ),
                    Err(e) => eprintln!("warning: cannot reach the leader at {addr}: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => bail!("the mesh cannot take the proposal: {e}"),
        }
    }
    bail!("no leader took the proposal within 5 s")
}

/// Carries a gateway's decisions to the mesh: each restriction this node's detectors decide
/// that travels ([`ribat_mesh::enforce::carried`]: an identity's quarantine, step-up or
/// throttle, a role's essential-services fallback) is signed with the node key and
/// proposed, so that every node carries it out once it is committed (the gateway has
/// already enforced it here, and handed a quarantine to each custodian directly).
struct ToMesh {
    raft: MeshRaft,
    me: String,
    key: Arc<KeyPair>,
    tls: Arc<ribat_net::client::ClientConfig>,
    rt: tokio::runtime::Handle,
}

impl ribat_gateway::watch::Enforcer for ToMesh {
    fn name(&self) -> String {
        format!("mesh via {}", self.me)
    }

    fn enforce(&self, d: &ribat_detect::Decision) -> Result<bool, String> {
        if !ribat_mesh::enforce::carried(&d.target, d.action) || !d.enforces() {
            return Ok(false);
        }
        let evidence = {
            use sha2::Digest;
            let mut h = sha2::Sha256::new();
            for e in &d.evidence {
                h.update(e.as_bytes());
                h.update([0]);
            }
            hex::encode(h.finalize())
        };
        let restriction = ribat_mesh::Restriction {
            id: format!("{}/{}", self.me, d.id),
            rule: d.rule.clone(),
            target: d.target.clone(),
            action: d.action,
            until_ms: d.until_ms,
            evidence,
        };
        let sig = self
            .key
            .sign(ribat_mesh::command::kind::RESTRICT, &restriction)
            .map_err(|e| e.to_string())?;
        let command = ribat_mesh::Command::Restrict {
            restriction,
            by: self.me.clone(),
            sig,
        };
        let (raft, tls) = (self.raft.clone(), self.tls.clone());
        // Proposed in the background: the detector's thread never waits on a quorum.
        self.rt.spawn(async move {
            match propose_from_node(&raft, tls, command).await {
                Ok(p) => eprintln!("mesh: restriction proposed, committed at index {}", p.index),
                Err(e) => eprintln!("warning: the restriction did not reach the mesh: {e}"),
            }
        });
        Ok(true)
    }

    fn release(&self, _: &ribat_detect::Decision) -> Result<(), String> {
        // A committed restriction is lifted through the mesh only, by a release carrying
        // two administrators' signed approvals (`ribat mesh approve`, `mesh release`).
        Ok(())
    }
}

/// What the security state says of a certificate: revoked, not in the identity register,
/// or (a node certificate) not the one a current member holds. A state that cannot be
/// read refuses all.
fn vetted_in(
    sm: &MeshStateMachine,
    essential: Arc<crate::reviews::Essential>,
) -> ribat_identity::tls::VettedBy {
    use ribat_identity::tls::Refused;
    use ribat_mesh::Standing;
    let sm = sm.clone();
    Arc::new(move |c: &ribat_identity::tls::CertRef<'_>| {
        let standing = sm.read(|st| match c.role {
            "node" if st.is_revoked(c.serial) => Some(Refused::Revoked),
            "node" if st.is_member_cert(c.thumbprint) => None,
            "node" => Some(Refused::NotAMember),
            _ => match st.standing(c.serial, c.thumbprint, now_s()) {
                Standing::Granted => None,
                Standing::NotGranted => Some(Refused::NotGranted),
                Standing::Revoked => Some(Refused::Revoked),
                // An essential role (the pension batch) is kept past its review date;
                // its finding goes on every day.
                Standing::Lapsed
                    if essential
                        .contains(c.role, st.rules().map(|r| (r.version, r.document.as_str()))) =>
                {
                    None
                }
                Standing::Lapsed => Some(Refused::Lapsed),
            },
        });
        standing.unwrap_or(Some(Refused::Revoked))
    })
}

/// Raises a `review-due` finding (the gateway's event stream and the node's log) once a day
/// for each third party's certificate whose review date is a week away or past, until it
/// is re-certified or revoked.
async fn review_findings(
    sm: MeshStateMachine,
    watch: Arc<ribat_gateway::watch::Watch>,
    component: String,
) {
    let mut notices = crate::reviews::Notices::default();
    loop {
        let now = now_s();
        let due = sm
            .read(|st| {
                let live = st
                    .granted()
                    .filter(|g| !st.is_revoked(&g.registration.serial))
                    .filter_map(|g| {
                        let r = &g.registration;
                        Some((
                            r.name.as_str(),
                            r.role.as_str(),
                            r.serial.as_str(),
                            r.review_by?,
                        ))
                    });
                notices.due(live, now)
            })
            .unwrap_or_default();
        for d in due {
            eprintln!("{}", d.line("`ribat mesh recertify`"));
            let (w, component) = (watch.clone(), component.clone());
            let _ = tokio::task::spawn_blocking(move || {
                w.observe(&d.event(w.clock().now_ms(), &component))
            })
            .await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Keeps the node's `identity/register.json` equal to the replicated identity register
/// (granted certificates, revoked ones marked), for what reads that file on this node: the
/// export desk's recipients, the leak report's administrators. The ceremony's copy would
/// otherwise stay as it was on the day it was made.
async fn mirror_register(sm: MeshStateMachine, path: PathBuf) {
    let mut written: Option<Vec<ribat_identity::ca::RegisterEntry>> = None;
    // The state's applied index when the file last matched it: nothing to look at until
    // another entry is applied.
    let mut matched_at: Option<u64> = None;
    let mut revoked_at: BTreeMap<String, i64> = BTreeMap::new();
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let read = sm.read(|st| {
            if matched_at == Some(st.applied()) {
                return None;
            }
            let entries = st
                .granted()
                .map(|g| {
                    let r = &g.registration;
                    ribat_identity::ca::RegisterEntry {
                        name: r.name.clone(),
                        role: r.role.clone(),
                        institution: r.institution.clone(),
                        serial: r.serial.clone(),
                        not_after: r.not_after,
                        thumbprint: r.thumbprint.clone(),
                        revoked_at: st
                            .is_revoked(&r.serial)
                            .then(|| *revoked_at.entry(r.serial.clone()).or_insert(now)),
                        review_by: r.review_by,
                    }
                })
                .collect::<Vec<_>>();
            Some((st.applied(), entries))
        });
        let Ok(Some((applied, entries))) = read else {
            continue;
        };
        if written.as_ref() == Some(&entries) {
            matched_at = Some(applied);
            continue;
        }
        let (p, e) = (path.clone(), entries.clone());
        let saved = tokio::task::spawn_blocking(move || {
            let text = serde_json::to_vec_pretty(&e).map_err(|e| e.to_string())?;
            write_file(&p, &text, false).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        match saved {
            Ok(()) => {
                written = Some(entries);
                matched_at = Some(applied);
            }
            Err(e) => eprintln!("warning: cannot mirror the identity register: {e}"),
        }
    }
}

/// A register entry as the mesh's identity register holds it.
pub fn registration(e: &ribat_identity::ca::RegisterEntry) -> ribat_mesh::Registration {
    ribat_mesh::Registration {
        name: e.name.clone(),
        role: e.role.clone(),
        institution: e.institution.clone(),
        serial: e.serial.clone(),
        thumbprint: e.thumbprint.clone(),
        not_after: e.not_after,
        review_by: None,
    }
}

/// What a gateway part attests and judges with, and what a resharing moves it to.
struct Attesting {
    documents: Arc<crate::attest::Documents>,
    verdicts: Arc<crate::attest::Verdicts>,
    /// The roles kept past their review date.
    essential: Arc<crate::reviews::Essential>,
    /// What a resharing switches (the gateway's reader among them).
    switches: Arc<crate::reshare::Switches>,
}

/// The grace period for a retired build in the node's start-up rules (the default's when
/// they cannot be read: the node's attestation names that file, and peers judge it).
fn start_up_grace_ms(dir: &Path) -> u64 {
    let rules = std::fs::read_to_string(dir.join(crate::serve::RULES_FILE))
        .ok()
        .and_then(|t| ribat_detect::Rules::from_json(&t).ok())
        .unwrap_or_default();
    rules.patch_drift.grace_secs.saturating_mul(1000)
}

/// Starts this node's gateway once `t` custodians of the mesh answer (they start with it),
/// then serves clients on `addr` until the process stops.
async fn run_gateway(
    home: Home,
    addr: String,
    to_mesh: Arc<ToMesh>,
    sm: MeshStateMachine,
    carried: CarriedBook,
    outputs: ribat_gateway::watch::Outputs,
    attesting: Attesting,
) -> Result<()> {
    let switches = attesting.switches.clone();
    let started = std::time::Instant::now();
    // The custodians of the set in force, where their nodes sit: as the state says, or as
    // this node remembers a later set (its state is its last snapshot until the log after
    // it is applied again).
    let (set, seats) = sm.read(|st| (st.custodians().set.clone(), st.seats().clone()))?;
    let (set, remotes) = crate::reshare::in_force(&home, set, &seats)?;
    let o = crate::serve::ServeOptions {
        published_witnesses: set.witnesses.clone(),
        remotes,
        deadline: Duration::from_secs(2),
        outputs,
        // Every custodian learns what was audited from the entries it cosigns.
        audited_by_log: true,
        // Every custodian checks what the user signed; an unsigned read would be refused
        // by all of them.
        signed_requests: true,
    };
    let rt = tokio::runtime::Handle::current();
    let assembled = loop {
        let (h, o, rt) = (home.clone(), o.clone(), rt.clone());
        let r = tokio::task::spawn_blocking(move || {
            crate::serve::assemble(
                &h,
                &Source::Env,
                &o,
                &rt,
                Arc::new(ribat_custodian::clock::SystemClock),
            )
        })
        .await
        .map_err(|e| crate::err!("gateway start: {e}"))?;
        match r {
            Ok(a) => break a,
            Err(e) if started.elapsed() < Duration::from_secs(120) => {
                eprintln!("gateway: waiting for the mesh's custodians ({})", e.chain());
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(e),
        }
    };
    let me = to_mesh.me.clone();
    attesting
        .documents
        .set_file(crate::attest::POLICY, &home.root().join("policy.json"));
    attesting.documents.set_file(
        crate::attest::RULES,
        &home.root().join(crate::serve::RULES_FILE),
    );
    assembled
        .tls
        .also_vetted_by(vetted_in(&sm, attesting.essential.clone()))?;
    assembled.app.watch.carried_by_mesh_member(&me);
    let _ = assembled
        .app
        .mesh
        .set(Arc::new(crate::mesh_view::ConsoleView::new(
            home.root().to_owned(),
            me.clone(),
        )));
    assembled.app.watch.add_enforcer(to_mesh);
    // What the mesh restricts, this gateway refuses before asking any custodian; what it
    // releases, this gateway lifts.
    let sm_for_reviews = sm.clone();
    let carrier = tokio::spawn(enforce_state(
        sm,
        Arc::new(GatewayCarrier {
            app: assembled.app.clone(),
            me: me.clone(),
        }),
        format!("gateway.{me}"),
        None,
        carried,
        (attesting.documents.clone(), crate::attest::POLICY),
    ));
    if let Some(template) = assembled.remotes.first() {
        let g = crate::reshare::Gateway {
            app: assembled.app.clone(),
            template: template.clone(),
            mesh: MeshFile::read(home.root())?,
            origin: ribat_gateway::node_log::origin(
                crate::embedded::DEPLOYMENT,
                &audit_node(&home)?,
            ),
            node: assembled.node.clone(),
        };
        // A resharing that finished while the gateway was starting.
        let (set, seats) =
            sm_for_reviews.read(|st| (st.custodians().set.clone(), st.seats().clone()))?;
        if assembled.app.vault.reader.group().set < set.number {
            let group = crate::reshare::group_of(&crate::reshare::base_group(&home)?, &set)?;
            crate::reshare::move_reader(&g, group, &set, &seats)?;
        }
        let _ = switches.gateway.set(g);
    }
    let custodian_of: crate::attest::CustodianOf = {
        let sm = sm_for_reviews.clone();
        Arc::new(move || {
            sm.read(|st| {
                st.custodians()
                    .set
                    .holders
                    .iter()
                    .map(|(i, n)| (n.clone(), *i))
                    .collect()
            })
            .unwrap_or_default()
        })
    };
    let routing = tokio::spawn(crate::attest::route_around(
        attesting.verdicts.clone(),
        assembled.app.clone(),
        custodian_of,
        format!("gateway.{me}"),
    ));
    let reviews = tokio::spawn(review_findings(
        sm_for_reviews,
        assembled.app.watch.clone(),
        format!("gateway.{me}"),
    ));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (the gateway)"))?;
    println!(
        "gateway listening on https://{} (mTLS; reads through the mesh's custodians)",
        listener.local_addr()?
    );
    std::io::stdout().flush()?;
    let _ = std::fs::write(
        home.root().join(crate::serve::GATEWAY_ADDR_FILE),
        format!("{addr}\n"),
    );
    // Checkpoints cosigned by the other nodes' custodians over the network: a gateway node
    // cannot rewrite what it served without t custodians noticing the fork.
    let checkpoints = crate::serve::spawn_checkpoints(assembled.node.clone(), CHECKPOINT_EVERY);
    let served = ribat_net::listener::serve(
        listener,
        assembled.tls,
        ribat_gateway::api::router(assembled.app),
        assembled.stats,
    )
    .await;
    checkpoints.abort();
    carrier.abort();
    reviews.abort();
    routing.abort();
    served?;
    Ok(())
}

/// How often a mesh gateway checkpoints its audit log when it grew.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// Runs the node in `dir` until it is stopped: its Raft member, its custodian (if it holds
/// one; `passphrases` opens it) on the same mTLS address, and its gateway (if it runs one).
/// The first node starts the mesh when its log is empty; the others wait to be reached.
pub fn run(
    dir: &Path,
    passphrases: &Source,
    outputs: ribat_gateway::watch::Outputs,
    lab_clock: Option<&Path>,
) -> Result<()> {
    let mesh = MeshFile::read(dir)?;
    let me = mesh.me()?.clone();
    if let Some(file) = lab_clock {
        follow_lab_clock(&mesh, file)?;
    }
    // The key is read now, so that a missing or malformed key stops the node at once.
    let key = Arc::new(read_seed(&dir.join(NODE_KEY))?);
    let home = adopt_store(Home::at(dir.to_owned()))?;
    let files = TlsFiles::in_dir(dir, &dir.join("crl.pem"));
    let server_tls = Arc::new(ServerTls::new(files).context("node TLS")?);
    let tls = client_tls(dir)?;
    let fresh = Arc::new(Freshness::default());
    let started_ms = ribat_clock::real_ms();
    // What the node's parts act on, for its statements; how it judges every member's.
    let documents = Arc::new(crate::attest::Documents::default());
    let verdicts = Arc::new(crate::attest::Verdicts::default());
    let essential = Arc::new(crate::reviews::Essential::from_rules_file(
        &dir.join(crate::serve::RULES_FILE),
    ));
    let rt = crate::serve::runtime()?;
    rt.block_on(async move {
        let log = LogStore::open(&dir.join("raft-log.sqlite"))?;
        let sm = MeshStateMachine::open(&dir.join("raft-state.sqlite"), &mesh.genesis())?;
        // The custodian this node holds is the one the set in force gives it (the
        // ceremony's is in mesh.json; a resharing may have changed it since).
        let (set, seats) = sm.read(|st| (st.custodians().set.clone(), st.seats().clone()))?;
        let (set, _) = crate::reshare::in_force(&home, set, &seats)?;
        crate::reshare::settle(&home, &me.name, &set)?;
        let expected = match set.holders.is_empty() {
            true => me.custodian,
            false => set.index_of(&me.name),
        };
        let own = own_custodian(&home, &me, expected)?;
        let raft = MeshRaft::new(
            me.id,
            raft_config()?,
            MeshNetwork::new(tls.clone()),
            log,
            sm.clone(),
        )
        .await
        .map_err(|e| crate::err!("raft: {e}"))?;
        let waiting: Option<ribat_raft::serve::Waiting> = own.map(|_| {
            let (fresh, me) = (fresh.clone(), me.name.clone());
            Arc::new(move || fresh.ready(&me).err()) as ribat_raft::serve::Waiting
        });
        // Certificates revoked through the log, or never granted through it, are refused at
        // every request, as if the revocation list named them (the node's own listener, its
        // custodian's token check).
        server_tls.also_vetted_by(vetted_in(&sm, essential.clone()))?;
        let carried: CarriedBook = Arc::default();
        let report: ribat_raft::serve::Carried = {
            let c = carried.clone();
            Arc::new(move || c.lock().map(|m| m.clone()).unwrap_or_default())
        };
        let judged: ribat_raft::serve::Judged = {
            let v = verdicts.clone();
            Arc::new(move || v.all())
        };
        let mut router = ribat_raft::serve::router_with(
            raft.clone(),
            sm.clone(),
            ribat_raft::serve::Reports {
                waiting,
                carried: Some(report),
                judged: Some(judged),
            },
        );
        let mut tasks = Vec::new();
        let slot = Arc::new(ribat_custodian::serve::Slot::default());
        let parts = Arc::new(CustodianParts {
            home: home.clone(),
            passphrases: passphrases.clone(),
            audit_logs: mesh.audit_logs()?,
            server_tls: server_tls.clone(),
            fresh: fresh.clone(),
            me: me.name.clone(),
            verdicts: verdicts.clone(),
            documents: documents.clone(),
            sm: sm.clone(),
            raft: raft.clone(),
            tls: tls.clone(),
            key: key.clone(),
            carried: carried.clone(),
            slot: slot.clone(),
            started: std::sync::Mutex::new(None),
        });
        let switches = Arc::new(crate::reshare::Switches {
            custodian: std::sync::Mutex::new(None),
            slot: slot.clone(),
            start: {
                let parts = parts.clone();
                Box::new(move |index| parts.start(index))
            },
            gateway: std::sync::OnceLock::new(),
        });
        if let Some(index) = own {
            // Off the async threads: opening a custodian may open a PostgreSQL store,
            // whose client runs a runtime of its own.
            let sw = switches.clone();
            let c = tokio::task::spawn_blocking(move || (sw.start)(index))
                .await
                .map_err(|e| crate::err!("starting custodian {index}: {e}"))??;
            *switches
                .custodian
                .lock()
                .map_err(|_| crate::err!("custodian lock poisoned"))? = Some(c);
        }
        // Every node can come to hold a custodian (a resharing), so every node answers on
        // the custodian's routes: "holds no custodian" until it does.
        router = router.merge(ribat_custodian::serve::router_in(slot.clone()));
        let inbox = Arc::new(crate::reshare::Inbox::default());
        router = router.merge(subshare_route(sm.clone(), me.name.clone(), inbox.clone()));
        if mesh.token_service.contains(&me.id) {
            let issuer = crate::identity::token_issuer(&home).context("this node is the mesh's identity service (token_service in mesh.json) but holds no token key")?;
            let service = ribat_identity::service::TokenService::new(
                issuer,
                crate::embedded::DEPLOYMENT,
            );
            let watched: crate::token_service::Watched =
                parts.started.lock().ok().and_then(|s| s.clone()).map(|(w, name)| {
                    (w as Arc<dyn ribat_custodian::serve::Observer>, name)
                });
            router = router.merge(crate::token_service::router(
                Arc::new(service),
                server_tls.clone(),
                watched,
            ));
        }
        tasks.push(tokio::spawn(crate::reshare::run(crate::reshare::Resharer {
            sm: sm.clone(),
            raft: raft.clone(),
            tls: tls.clone(),
            key: key.clone(),
            me: me.name.clone(),
            home: home.clone(),
            passphrases: passphrases.clone(),
            inbox,
            switches: switches.clone(),
            in_force: set.number,
        })));
        let listener = tokio::net::TcpListener::bind(&me.addr)
            .await
            .with_context(|| format!("cannot listen on {}", me.addr))?;
        // Its custodian's detectors hear of the handshakes this listener refuses.
        let stats = Arc::new(TlsStats::default());
        if let Some((watch, name)) = parts.started.lock().ok().and_then(|s| s.clone()) {
            crate::serve::hear_refused_handshakes(&stats, &watch, &name);
        }
        let server = tokio::spawn(ribat_net::listener::serve(
            listener, server_tls, router, stats,
        ));
        tasks.push(tokio::spawn(keep_membership(raft.clone(), sm.clone())));
        tasks.push(tokio::spawn(crate::attest::judge_members(
            sm.clone(),
            verdicts.clone(),
            start_up_grace_ms(dir),
        )));
        {
            // The executable is digested once, off the async threads: it cannot change
            // under a running process.
            let d = dir.to_owned();
            let fixed = tokio::task::spawn_blocking(move || {
                crate::attest::measure_once(&d, started_ms)
            })
            .await
            .map_err(|e| crate::err!("measuring this node: {e}"))??;
            tasks.push(tokio::spawn(crate::attest::attest(crate::attest::Attester {
                sm: sm.clone(),
                raft: raft.clone(),
                tls: tls.clone(),
                key: key.clone(),
                me: me.name.clone(),
                fixed,
                documents: documents.clone(),
                every: Duration::from_millis(mesh.attestation.every_ms.max(100)),
            })));
        }
        tasks.push(tokio::spawn(mirror_register(
            sm.clone(),
            crate::identity::dir(&home).join(ribat_identity::ca::REGISTER),
        )));
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| crate::err!("raft: {e}"))?;
        // Every founding member starts the mesh from the same membership (mesh.json's) when
        // its log is empty: openraft's voting makes that safe, and any majority can form the
        // mesh without waiting for node 1. A founding member that lost its log after the
        // membership changed cannot take the mesh back with the old one: its log is behind
        // every member's, so none votes for it. A node that joins later starts nothing: it
        // waits for the leader to add it once two administrators did.
        if !initialized && mesh.joined.is_none() {
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
            if let Err(e) = raft.initialize(members).await {
                // Another member's initialization reached this node first.
                eprintln!("note: {e}");
            }
        }
        println!(
            "{} listening on https://{} (mesh of {}, threshold {}{})",
            me.name,
            me.addr,
            mesh.peers.len(),
            mesh.threshold,
            own.map_or(String::new(), |c| format!(
                ", custodian {c} of set {}",
                set.number
            ))
        );
        std::io::stdout().flush()?;
        let gateway = match mesh.gateway.clone() {
            Some(addr) => {
                let to_mesh = Arc::new(ToMesh {
                    raft: raft.clone(),
                    me: me.name.clone(),
                    key: key.clone(),
                    tls: tls.clone(),
                    rt: tokio::runtime::Handle::current(),
                });
                tokio::spawn(run_gateway(
                    home.clone(),
                    addr,
                    to_mesh,
                    sm.clone(),
                    carried.clone(),
                    outputs,
                    Attesting {
                        documents: documents.clone(),
                        verdicts: verdicts.clone(),
                        essential: essential.clone(),
                        switches: switches.clone(),
                    },
                ))
            }
            None => {
                if outputs.ocsf.is_some() || outputs.syslog.is_some() {
                    eprintln!(
                        "note: this node runs no gateway, so --ocsf and --syslog have nothing to write"
                    );
                }
                tokio::spawn(std::future::pending())
            }
        };
        tokio::select! {
            r = server => {
                r.map_err(|e| crate::err!("the listener stopped: {e}"))??;
            }
            r = gateway => {
                r.map_err(|e| crate::err!("the gateway stopped: {e}"))??;
            }
            r = crate::serve::stop_signal() => r?,
        }
        for t in tasks {
            t.abort();
        }
        parts.abort();
        raft.shutdown()
            .await
            .map_err(|e| crate::err!("raft: {e}"))?;
        Ok(())
    })
}

/// Where a dealer's node hands this node its sub-shares (node certificates of members only,
/// and only the node that holds the dealer: [`crate::reshare::accept`]).
fn subshare_route(
    sm: MeshStateMachine,
    me: String,
    inbox: Arc<crate::reshare::Inbox>,
) -> axum::Router {
    use axum::extract::Extension;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let handler =
        move |Extension(caller): Extension<ribat_net::Caller>,
              axum::Json(w): axum::Json<ribat_custodian::reshare::WireSubShares>| {
            let (sm, me, inbox) = (sm.clone(), me.clone(), inbox.clone());
            async move {
                if caller.peer.role != "node" {
                    return (
                        StatusCode::FORBIDDEN,
                        "sub-shares come from a member's node certificate only",
                    )
                        .into_response();
                }
                let taken = sm.read(|st| {
                    if !st.is_member(&caller.peer.name) {
                        return Err(format!("{} is not a member", caller.peer.name));
                    }
                    crate::reshare::accept(st.custodians(), &me, &caller.peer.name, w, &inbox)
                });
                match taken {
                    Ok(Ok(())) => StatusCode::OK.into_response(),
                    Ok(Err(why)) => (StatusCode::CONFLICT, why).into_response(),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                }
            }
        };
    axum::Router::new().route(crate::reshare::SUBSHARES, axum::routing::post(handler))
}

/// What starting a custodian on a running node needs (at start, or when a resharing gives
/// the node one).
struct CustodianParts {
    home: Home,
    passphrases: Source,
    audit_logs: Vec<ribat_audit::VerifierKey>,
    server_tls: Arc<ServerTls>,
    fresh: Arc<Freshness>,
    me: String,
    verdicts: Arc<crate::attest::Verdicts>,
    documents: Arc<crate::attest::Documents>,
    sm: MeshStateMachine,
    raft: MeshRaft,
    tls: Arc<ribat_net::client::ClientConfig>,
    key: Arc<KeyPair>,
    carried: CarriedBook,
    slot: Arc<ribat_custodian::serve::Slot>,
    /// The custodian's detectors and name, and its tasks, once started.
    #[allow(clippy::type_complexity)]
    started: std::sync::Mutex<Option<(Arc<ribat_gateway::watch::Watch>, String)>>,
}

impl CustodianParts {
    fn abort(&self) {
        self.slot.clear();
    }

    /// Opens custodian `index` of this node's directory, serves it on the node's address,
    /// and starts what carries the security state to it. Runs inside the node's runtime.
    fn start(&self, index: u32) -> Result<Arc<ribat_custodian::LocalCustodian>> {
        let home = &self.home;
        let dir = home.custodian_dir(index as usize);
        self.documents.set_file(
            crate::attest::CUSTODIAN_POLICY,
            &dir.join(ribat_custodian::keystore::POLICY_FILE),
        );
        self.documents.set_file(
            crate::attest::RULES,
            &home.root().join(crate::serve::RULES_FILE),
        );
        let pass = self.passphrases.get(index as usize, false)?;
        let c = Arc::new(ribat_custodian::LocalCustodian::open(
            &dir,
            &pass,
            crate::embedded::open_store(home)?,
            Arc::new(ribat_custodian::clock::SystemClock),
        )?);
        drop(pass);
        let name = format!("custodian-{index}");
        // It witnesses the audit log of every gateway node the ceremony named, and no
        // other log.
        let mut witnesses = BTreeMap::new();
        for log in &self.audit_logs {
            let origin = log.name().to_owned();
            witnesses.insert(origin, c.witness(crate::embedded::DEPLOYMENT, log.clone())?);
        }
        // Bulk reads (exports) only within what two administrators allowed through the
        // log, whichever gateway asks.
        let allowances = Arc::new(ribat_custodian::allowance::Allowances::new(
            ribat_policy::Role::EXPORT,
        ));
        c.add_hook(allowances.clone())?;
        let (service, watch) = crate::serve::custodian_service(
            home,
            &dir,
            &name,
            c.clone(),
            self.server_tls.clone(),
            witnesses,
            Some(crate::serve::InMesh {
                ready: {
                    let (fresh, me, verdicts) =
                        (self.fresh.clone(), self.me.clone(), self.verdicts.clone());
                    Arc::new(move || {
                        fresh.ready(&me)?;
                        // An honest node cut off stops answering of its own accord (a
                        // dishonest one is not asked: gateways route around it).
                        match verdicts.cut_off(&me) {
                            Some(why) => Err(format!(
                                "{why}; this node answers no one until it attests within the allowed set"
                            )),
                            None => Ok(()),
                        }
                    })
                },
                allowances: allowances.clone(),
                cut_off: {
                    let verdicts = self.verdicts.clone();
                    Arc::new(move |cert: &str| {
                        let node = crate::attest::node_of_gateway(cert)?;
                        verdicts
                            .cut_off(node)
                            .map(|why| format!("{cert} is refused: {why}"))
                    })
                },
                rotation_job: {
                    let sm = self.sm.clone();
                    Arc::new(move |cert: &str| {
                        let node = crate::attest::node_of_gateway(cert);
                        sm.read(|st| {
                            st.custodians()
                                .set
                                .resealing
                                .as_ref()
                                .is_some_and(|r| Some(r.job.as_str()) == node)
                        })
                        .unwrap_or(false)
                    })
                },
            }),
            // A mesh's custodians answer a user's read only with the request the user
            // signed.
            true,
        )?;
        let imposed = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
        tokio::spawn(crate::serve::spawn_ticker(watch.clone(), name.clone()));
        tokio::spawn(enforce_state(
            self.sm.clone(),
            Arc::new(CustodianCarrier {
                custodian: c.clone(),
                watch: watch.clone(),
                imposed: imposed.clone(),
                allowances,
            }),
            name.clone(),
            Some((self.raft.clone(), self.fresh.clone())),
            self.carried.clone(),
            (self.documents.clone(), crate::attest::CUSTODIAN_POLICY),
        ));
        tokio::spawn(endorse(Endorser {
            sm: self.sm.clone(),
            raft: self.raft.clone(),
            tls: self.tls.clone(),
            key: self.key.clone(),
            me: self.me.clone(),
            imposed,
        }));
        tokio::spawn(keep_fresh(
            self.raft.clone(),
            self.tls.clone(),
            self.fresh.clone(),
        ));
        if let Ok(mut s) = self.started.lock() {
            *s = Some((watch, name));
        }
        self.slot.put(service);
        Ok(c)
    }
}

/// Where `mesh up` keeps the passphrases it made up for the custodians of a mesh on one
/// machine.
pub const PASSPHRASES_DIR: &str = "passphrases";

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
/// Files in `import` are imported through the first gateway node first.
pub fn up(program: &Path, spec: &InitSpec, import: &[PathBuf]) -> Result<()> {
    let mut dirs = node_dirs(&spec.out);
    let pass_dir = spec.out.join(PASSPHRASES_DIR);
    if dirs.is_empty() {
        check_spec(spec)?;
        if pass_dir.exists() && std::fs::read_dir(&pass_dir)?.next().is_some() {
            bail!("{} already holds passphrases", pass_dir.display());
        }
        crate::passphrases::random_files(&pass_dir, spec.addrs.len())?;
        let spec = InitSpec {
            passphrases: Source::Dir(pass_dir.clone()),
            ..spec.clone()
        };
        dirs = init(&spec)?;
        println!(
            "made a mesh of {} nodes in {} (custodians' passphrases in {}, owner-only)",
            dirs.len(),
            spec.out.display(),
            pass_dir.display()
        );
    }
    ensure!(
        pass_dir.is_dir(),
        "{} is missing: `mesh up` starts a mesh it made itself (its custodians' passphrases are kept there); start nodes made by `mesh init` with `ribat node --dir DIR`",
        pass_dir.display()
    );
    let spawn = |d: &Path| NodeChild::start(program, d, &pass_dir);
    // A gateway node's process holds its audit log: files to import go in through that
    // node's directory before its process starts, the other nodes' custodians answering.
    let importer = match import {
        [] => None,
        _ => Some(
            dirs.iter()
                .position(|d| MeshFile::read(d).is_ok_and(|m| m.gateway.is_some()))
                .context("no node of this mesh runs a gateway to import through")?,
        ),
    };
    let mut children: Vec<Option<NodeChild>> = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        children.push(match importer == Some(i) {
            true => None,
            false => Some(spawn(d)?),
        });
    }
    if let Some(i) = importer {
        let home = adopt_store(Home::at(dirs[i].clone()))?;
        let opts = crate::import::ImportOptions {
            inputs: import.to_vec(),
            honey: None,
            public_figures: None,
            report: None,
            threads: std::thread::available_parallelism().map_or(2, usize::from),
        };
        let started = std::time::Instant::now();
        loop {
            match crate::import::run(&home, &Source::Dir(pass_dir.clone()), &opts) {
                Ok(_) => break,
                Err(e) if started.elapsed() < Duration::from_secs(60) => {
                    eprintln!("import: waiting for the custodians ({})", e.chain());
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
        children[i] = Some(spawn(&dirs[i])?);
    }
    let mut children: Vec<NodeChild> = children.into_iter().flatten().collect();
    let members = wait_ready(&dirs[0], Duration::from_secs(60))?;
    let rt = crate::serve::runtime()?;
    // Watched before the mesh says it is up: whoever stops it right then stops its nodes.
    let stop = {
        let _in = rt.enter();
        crate::serve::StopSignal::watch()?
    };
    print!("{}", render(&members));
    println!(
        "  a client: `ribat --home {} identity add --name N --role R --institution I`, then two administrators grant it (keys in {}): `ribat mesh approve --grant CERT --reason R` each, `ribat mesh grant --dir {} --cert CERT --reason R --approval … --approval …`",
        deployment_home(&spec.out).root().display(),
        spec.out.join("admins").display(),
        dirs[0].display()
    );
    // Last: whoever waits for this line may stop reading here.
    println!("mesh up: {} nodes; Ctrl-C stops them", dirs.len());
    std::io::stdout().flush()?;
    rt.block_on(async {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let stop = stop.wait();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                // Ctrl-C or SIGTERM (a service manager, `timeout`): the children stop
                // with it (dropped), never left running on their own.
                r = &mut stop => return r,
                _ = tick.tick() => {
                    for (c, d) in children.iter_mut().zip(&dirs) {
                        if let Some(st) = c.exited() {
                            bail!("the node in {} stopped ({st}); see its node.log", d.display());
                        }
                    }
                }
            }
        }
    })
}

/// A node process started by this one (`mesh up`, the demo, a benchmark): `program node
/// --dir DIR --passphrases dir:PASSES`, its output in `DIR/node.log`; killed when dropped.
pub struct NodeChild(std::process::Child);

impl NodeChild {
    /// Starts the node in `dir`, its custodian's passphrase read from the files in `passes`.
    pub fn start(program: &Path, dir: &Path, passes: &Path) -> Result<Self> {
        Self::start_in_lab(program, dir, passes, None)
    }

    /// Same, its security state dated by the lab clock in `lab_clock` when given
    /// (`ribat node --lab-clock`, for simulations).
    pub fn start_in_lab(
        program: &Path,
        dir: &Path,
        passes: &Path,
        lab_clock: Option<&Path>,
    ) -> Result<Self> {
        let log = std::fs::File::create(dir.join("node.log"))?;
        let mut command = std::process::Command::new(program);
        command
            .arg("node")
            .arg("--dir")
            .arg(dir)
            .arg("--passphrases")
            .arg(format!("dir:{}", passes.display()));
        if let Some(file) = lab_clock {
            command.arg("--lab-clock").arg(file);
        }
        let child = command
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start the node in {}", dir.display()))?;
        Ok(Self(child))
    }

    /// How it ended, if it did.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.try_wait().ok().flatten()
    }
}

impl Drop for NodeChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until a majority names one leader and every member answers it, its custodian
/// answering (it confirmed the security state); the members as they then stand.
pub fn wait_ready(dir: &Path, within: Duration) -> Result<Vec<MemberStatus>> {
    let started = std::time::Instant::now();
    loop {
        let members = status(dir)?;
        let leader = majority_leader(&members);
        let all = members.iter().filter(|m| !m.removed).all(|m| {
            m.status
                .as_ref()
                .is_some_and(|s| s.leader == leader && s.waiting.is_none())
        });
        if leader.is_some() && all {
            return Ok(members);
        }
        if started.elapsed() > within {
            print!("{}", render(&members));
            bail!(
                "the mesh was not ready within {} s; see each node's node.log",
                within.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
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
    /// The custodian it holds (in the set in force; the ceremony's before any resharing).
    #[serde(default)]
    pub custodian: Option<u32>,
    /// Whether it runs a gateway (its audit log key is in the mesh's description).
    #[serde(default)]
    pub gateway: bool,
    /// Whether it is a node of the identity service (holds the token key).
    #[serde(default)]
    pub identity_service: bool,
    /// Whether two administrators removed it (or never added it): the members' security
    /// state seats it no more.
    #[serde(default)]
    pub removed: bool,
}

/// Asks every member (with this node's certificate) where it stands: the founding members,
/// this node, and every member the answers seat (those two administrators added since).
pub fn status(dir: &Path) -> Result<Vec<MemberStatus>> {
    let mesh = MeshFile::read(dir)?;
    let tls = client_tls(dir)?;
    let rt = crate::serve::runtime()?;
    let ask = |addr: String| {
        let tls = tls.clone();
        async move {
            call_peer(&tls, &addr, "GET", STATUS, None, Duration::from_secs(3))
                .await
                .and_then(|r| match r.status {
                    200 => serde_json::from_slice::<NodeStatus>(&r.body).map_err(|e| e.to_string()),
                    s => Err(format!(
                        "answered {s}: {}",
                        r.json()["detail"].as_str().map_or_else(
                            || String::from_utf8_lossy(&r.body).into_owned(),
                            str::to_owned
                        )
                    )),
                })
        }
    };
    Ok(rt.block_on(async move {
        let mut out: Vec<MemberStatus> = Vec::new();
        for p in mesh.peers.iter().chain(mesh.joined.iter()) {
            let (status, error) = match ask(p.addr.clone()).await {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            };
            out.push(MemberStatus {
                name: p.name.clone(),
                addr: p.addr.clone(),
                status,
                error,
                custodian: p.custodian,
                gateway: p.audit_log.is_some(),
                identity_service: mesh.token_service.contains(&p.id),
                removed: false,
            });
        }
        // The seats of the most advanced answer: who the members are now.
        let seats = out
            .iter()
            .filter_map(|m| m.status.as_ref())
            .max_by_key(|s| s.last_applied_index)
            .map(|s| s.seats.clone())
            .unwrap_or_default();
        for (name, seat) in &seats {
            if out.iter().any(|m| &m.name == name) {
                continue;
            }
            let (status, error) = match ask(seat.addr.clone()).await {
                Ok(s) => (Some(s), None),
                Err(e) => (None, Some(e)),
            };
            out.push(MemberStatus {
                name: name.clone(),
                addr: seat.addr.clone(),
                status,
                error,
                custodian: None,
                gateway: false,
                identity_service: false,
                removed: false,
            });
        }
        if !seats.is_empty() {
            for m in &mut out {
                m.removed = !seats.contains_key(&m.name);
            }
        }
        // Who holds which custodian: the set in force, as the most advanced answer has it
        // (a resharing may have moved custodians since the ceremony wrote mesh.json).
        let holders = out
            .iter()
            .filter_map(|m| m.status.as_ref())
            .max_by_key(|s| s.last_applied_index)
            .map(|s| s.holders.clone())
            .unwrap_or_default();
        if !holders.is_empty() {
            for m in &mut out {
                m.custodian = holders.iter().find(|(_, n)| **n == m.name).map(|(i, _)| *i);
            }
        }
        out
    }))
}

/// The leader a majority of the members name, if any.
pub fn majority_leader(members: &[MemberStatus]) -> Option<u64> {
    let current: Vec<&MemberStatus> = members.iter().filter(|m| !m.removed).collect();
    let mut named = BTreeMap::<u64, usize>::new();
    for l in current
        .iter()
        .filter_map(|m| m.status.as_ref().and_then(|s| s.leader))
    {
        *named.entry(l).or_default() += 1;
    }
    named
        .into_iter()
        .find(|(_, n)| n * 2 > current.len())
        .map(|(l, _)| l)
}

/// The members as a table, one line each.
pub fn render(members: &[MemberStatus]) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{:<8} {:<22} {:<10} {:>6} {:>5} {:>8} {:>8} {:>5} {:>8} {:>13}  {}\n",
        "member",
        "address",
        "state",
        "leader",
        "term",
        "log",
        "applied",
        "lag",
        "contact",
        "in force/wide",
        "holds"
    );
    let holds = |m: &MemberStatus| {
        let mut h: Vec<String> = m
            .custodian
            .map(|c| format!("custodian {c}"))
            .into_iter()
            .collect();
        if m.gateway {
            h.push("gateway".into());
        }
        if m.identity_service {
            h.push("identity service".into());
        }
        if m.removed {
            h.push("NOT A MEMBER (removed or never added)".into());
        }
        h.join(", ")
    };
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
    // And when each member last acknowledged it.
    let contact = |id: u64| match leader {
        Some(l) if l.id == id => "leader".to_owned(),
        Some(l) => l
            .contact_ms
            .get(&id)
            .copied()
            .flatten()
            .map_or("-".into(), |ms| format!("{ms} ms")),
        None => "-".into(),
    };
    for m in members {
        let _ = match (&m.status, &m.error) {
            (Some(s), _) => writeln!(
                out,
                "{:<8} {:<22} {:<10} {:>6} {:>5} {:>8} {:>8} {:>5} {:>8} {:>13}  {}",
                m.name,
                m.addr,
                s.state,
                s.leader.map_or("-".into(), |l| format!("node-{l}")),
                s.term,
                or_dash(s.last_log_index),
                or_dash(s.last_applied_index),
                or_dash(lag(s.id)),
                contact(s.id),
                format!("{}/{}", s.in_force, s.mesh_wide),
                match (&s.waiting, s.lab_clock_ms) {
                    (Some(_), _) => format!("{} (not answering yet: catching up)", holds(m)),
                    (None, Some(ms)) =>
                        format!("{}; LAB CLOCK {:+.1} h", holds(m), ms as f64 / 3_600_000.0),
                    (None, None) => holds(m),
                }
            ),
            (None, e) => writeln!(
                out,
                "{:<8} {:<22} unreachable ({}): {}",
                m.name,
                m.addr,
                holds(m),
                e.as_deref().unwrap_or("no answer")
            ),
        };
    }
    if let Some(s) = members
        .iter()
        .filter_map(|m| m.status.as_ref())
        .max_by_key(|s| s.last_applied_index)
        .filter(|s| s.custodian_set > 0)
    {
        let _ = writeln!(
            out,
            "custodian set {} in force, key epoch {}{}{}",
            s.custodian_set,
            s.key_epoch.max(1),
            s.resealing
                .as_ref()
                .map_or(String::new(), |(from, job)| format!(
                    "; records re-sealed from epoch {from} by {job}"
                )),
            s.resharing_to.map_or(String::new(), |n| format!(
                "; resharing to set {n} under way (`ribat mesh custodians`)"
            ))
        );
    }
    let _ = write!(out, "{}", render_attestation(members));
    out
}

/// Each member's attestation as its peers judge it (a member's word on itself only when
/// no peer answered): what it runs, or why it is cut off.
fn render_attestation(members: &[MemberStatus]) -> String {
    use std::fmt::Write as _;
    let judges: Vec<&NodeStatus> = members
        .iter()
        .filter_map(|m| m.status.as_ref())
        .filter(|s| !s.attestation.is_empty())
        .collect();
    let mut out = String::new();
    if judges.is_empty() {
        return out;
    }
    out.push_str("attestation (as a peer judges it):\n");
    for m in members {
        let own = m.status.as_ref().map(|s| s.id);
        let view = judges
            .iter()
            .find(|s| Some(s.id) != own && s.attestation.contains_key(&m.name))
            .or_else(|| judges.iter().find(|s| s.attestation.contains_key(&m.name)));
        if let Some(s) = view {
            let _ = writeln!(
                out,
                "  {:<8} {} (by node-{})",
                m.name, s.attestation[&m.name], s.id
            );
        }
    }
    out
}

/// Proposes `command` to the mesh through its leader (found by asking the members) with
/// this node's certificate; returns what it became once committed and applied.
pub fn propose(dir: &Path, command: &ribat_mesh::Command) -> Result<Proposed> {
    let body = serde_json::to_vec(command)?;
    let tls = client_tls(dir)?;
    // An election under load can take a few seconds: ask again for up to ten.
    const ATTEMPTS: usize = 10;
    for attempt in 0..ATTEMPTS {
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
            if attempt + 1 < ATTEMPTS {
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            bail!(
                "no member knows a leader: is a majority of the mesh running? (`ribat mesh status`)"
            );
        };
        let addr = leader.addr.clone();
        let rt = crate::serve::runtime()?;
        let body = body.clone();
        let r = rt
            .block_on(call_peer(
                &tls,
                &addr,
                "POST",
                PROPOSE,
                Some(body),
                Duration::from_secs(10),
            ))
            .map_err(|e| crate::err!("the leader at {addr}: {e}"))?;
        match r.status {
            200 => return Ok(serde_json::from_slice(&r.body)?),
            409 if attempt + 1 < ATTEMPTS => {
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
        ribat_raft::Outcome::Applied(ribat_mesh::Applied::Custodians(
            ribat_mesh::custodians::Step::Started(set),
        )) => Ok(format!(
            "committed at index {}: resharing to custodian set {set} under way (`ribat mesh custodians` follows it)",
            p.index
        )),
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

/// One administrator revokes a certificate through the log: signed with their key, proposed
/// through the node in `dir`; every node refuses the certificate and its tokens once
/// committed.
pub fn revoke(dir: &Path, key: &Path, admin: &str, serial: &str, reason: &str) -> Result<Proposed> {
    let serial = serial.trim().to_ascii_lowercase();
    ensure!(
        !serial.is_empty() && serial.chars().all(|c| c.is_ascii_hexdigit()),
        "--serial `{serial}`: a certificate serial in hex, as `ribat identity list` shows it"
    );
    let statement = ribat_mesh::command::RevokeStatement {
        serial,
        reason: reason.to_owned(),
    };
    let approval = approve_as(key, admin, ribat_mesh::command::kind::REVOKE, &statement)?;
    propose(
        dir,
        &ribat_mesh::Command::Revoke {
            statement,
            approvals: vec![approval],
        },
    )
}

/// One administrator's approval of a release, made offline with their key.
pub fn approve_release(
    key: &Path,
    admin: &str,
    id: &str,
    reason: &str,
) -> Result<ribat_mesh::Approval> {
    let statement = ribat_mesh::command::ReleaseStatement {
        id: id.to_owned(),
        reason: reason.to_owned(),
    };
    approve_as(key, admin, ribat_mesh::command::kind::RELEASE, &statement)
}

/// A time given on the command line in RFC 3339 (`2027-03-31T00:00:00Z`), in Unix seconds.
pub fn parse_time(flag: &str, text: &str) -> Result<i64> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|e| {
            crate::err!("{flag} `{text}`: a time in RFC 3339, e.g. 2027-03-31T00:00:00Z ({e})")
        })
}

/// Same, for a time that must be ahead of now by at most `days` days (`beyond` says why).
pub fn time_ahead(flag: &str, text: &str, days: i64, beyond: &str) -> Result<i64> {
    let at = parse_time(flag, text)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    ensure!(at > now, "{flag} `{text}` has passed already");
    ensure!(at - now <= days * 86_400, "{flag} `{text}`: {beyond}");
    Ok(at)
}

/// One administrator's approval of `statement`, signed as `kind` offline with the key in
/// `key` (a statement signed as one kind never passes for another).
pub fn approve_as<T: Serialize>(
    key: &Path,
    admin: &str,
    kind: &str,
    statement: &T,
) -> Result<ribat_mesh::Approval> {
    let kp = read_seed(key)?;
    Ok(ribat_mesh::Approval {
        admin: admin.to_owned(),
        sig: kp.sign(kind, statement)?,
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

/// `ribat mesh prepare-node`: on the host that keeps the ceremony's CA (`out/deployment`),
/// writes the directory of a node that will join the mesh at `addr`: a node certificate and
/// key, a node signing key, the founding members and administrators (from `out/node-1`),
/// and itself as `joined`. It holds no custodian (custodians move by resharing) and runs no
/// gateway. It takes part only once two administrators add it (`ribat mesh add-node`).
pub fn prepare_node(
    out: &Path,
    addr: &str,
    id: Option<u64>,
    store: Option<StoreSpec>,
) -> Result<PathBuf> {
    ensure!(
        addr.rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()),
        "--addr `{addr}`: expected HOST:PORT"
    );
    let dirs = node_dirs(out);
    let first = dirs.first().ok_or_else(|| {
        crate::err!(
            "{} holds no node-1/mesh.json: prepare a node in the directory `ribat mesh init --out` made",
            out.display()
        )
    })?;
    let template = MeshFile::read(first)?;
    // Every node directory made here so far (founding or prepared), so that no id or
    // address is given twice from this host; the mesh refuses a reused id in any case.
    let mut known: Vec<Peer> = template.peers.clone();
    for d in &dirs {
        if let Some(j) = MeshFile::read(d)?.joined {
            known.push(j);
        }
    }
    let id = id.unwrap_or_else(|| known.iter().map(|p| p.id).max().unwrap_or(0) + 1);
    if let Some(p) = known.iter().find(|p| p.id == id || p.addr == addr) {
        bail!(
            "{} (raft id {}) is already at {}: a joining node needs an id and an address of its own",
            p.name,
            p.id,
            p.addr
        );
    }
    let name = format!("node-{id}");
    let dir = out.join(&name);
    ensure!(!dir.exists(), "{} exists already", dir.display());
    let deployment = deployment_home(out);
    let ca_dir = crate::identity::dir(&deployment);
    let ca = Ca::open(&ca_dir, crate::embedded::DEPLOYMENT).with_context(|| {
        format!(
            "{} is where the ceremony's CA lives: prepare a node on the host that keeps it",
            deployment.root().display()
        )
    })?;
    let seed = random_seed()?;
    let issued = node_cert(&ca, &name, addr)?;
    node_dir(&ca, &deployment, &dir, &issued, &seed)?;
    let (store, store_schema) = match &store {
        // A PostgreSQL role of its own is the operator's to give, in the connection string.
        Some(StoreSpec::Postgres { schema, .. }) => {
            (store.as_ref().map(StoreSpec::to_arg), Some(schema.clone()))
        }
        Some(s) => (Some(s.to_arg()), None),
        None => (None, None),
    };
    let file = MeshFile {
        id,
        gateway: None,
        // It runs no gateway; without a store it holds no custodian and never touches the
        // records.
        store,
        store_schema,
        joined: Some(Peer {
            id,
            name,
            addr: addr.to_owned(),
            key: KeyPair::from_seed(&seed).public(),
            custodian: None,
            witness: None,
            audit_log: None,
            cert: Some(issued.entry.thumbprint.clone()),
        }),
        ..template
    };
    write_file(
        &dir.join(MESH_FILE),
        serde_json::to_string_pretty(&file)?.as_bytes(),
        false,
    )?;
    Ok(dir)
}

/// What administrators sign to add the node prepared in `dir`: its name, key and seat,
/// read from its `mesh.json`.
pub fn joining(dir: &Path) -> Result<ribat_mesh::command::MembershipStatement> {
    let m = MeshFile::read(dir)?;
    let j = m.joined.ok_or_else(|| {
        crate::err!(
            "{} is a founding member's directory, not one made by `ribat mesh prepare-node`",
            dir.display()
        )
    })?;
    Ok(ribat_mesh::command::MembershipStatement::Add {
        member: Member {
            name: j.name,
            key: j.key,
            cert: j.cert,
        },
        seat: ribat_mesh::Seat {
            raft_id: j.id,
            addr: j.addr,
        },
    })
}

/// One administrator's approval of a membership change, made offline with their key.
pub fn approve_membership(
    key: &Path,
    admin: &str,
    statement: &ribat_mesh::command::MembershipStatement,
) -> Result<ribat_mesh::Approval> {
    approve_as(key, admin, ribat_mesh::command::kind::MEMBERSHIP, statement)
}

/// A document two administrators put in force through the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    /// The access policy (`policy.json`): gateways and custodians decide by it.
    Policy,
    /// The detection rules (`rules.json`): gateways' and custodians' detectors run on them.
    Rules,
}

impl Document {
    fn kind(self) -> &'static str {
        match self {
            Self::Policy => ribat_mesh::command::kind::POLICY,
            Self::Rules => ribat_mesh::command::kind::RULES,
        }
    }

    /// Reads `text` as every node will, so that a document no node could apply is refused
    /// before anybody signs it.
    fn check(self, text: &str) -> std::result::Result<(), String> {
        match self {
            Self::Policy => ribat_custodian::policy::Policy::from_json(text).map(|_| ()),
            Self::Rules => ribat_detect::Rules::from_json(text).map(|_| ()),
        }
    }
}

/// The statement that puts `file` in force as version `version` of `doc`.
pub fn document_statement(
    doc: Document,
    file: &Path,
    version: u64,
) -> Result<ribat_mesh::command::PolicyStatement> {
    ensure!(
        version >= 1,
        "--version: 1 or above, above the one in force"
    );
    let document =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    doc.check(&document)
        .map_err(|e| crate::err!("{}: {e}", file.display()))?;
    Ok(ribat_mesh::command::PolicyStatement::new(version, document))
}

/// One administrator's approval of a policy or rules statement, made offline with their
/// key (signed as what it is, so it never passes for the other).
pub fn approve_document(
    doc: Document,
    key: &Path,
    admin: &str,
    statement: &ribat_mesh::command::PolicyStatement,
) -> Result<ribat_mesh::Approval> {
    approve_as(key, admin, doc.kind(), statement)
}

/// Proposes a policy or rules with administrators' approvals; once committed every node's
/// gateway and custodian decide (or detect) by it.
pub fn put_in_force(
    doc: Document,
    dir: &Path,
    statement: ribat_mesh::command::PolicyStatement,
    approvals: Vec<ribat_mesh::Approval>,
) -> Result<Proposed> {
    let command = match doc {
        Document::Policy => ribat_mesh::Command::SetPolicy {
            statement,
            approvals,
        },
        Document::Rules => ribat_mesh::Command::SetRules {
            statement,
            approvals,
        },
    };
    propose(dir, &command)
}

/// Proposes a membership change with administrators' approvals (two distinct ones, or every
/// node refuses it); once committed, the leader makes Raft's voters match.
pub fn change_membership(
    dir: &Path,
    statement: ribat_mesh::command::MembershipStatement,
    approvals: Vec<ribat_mesh::Approval>,
) -> Result<Proposed> {
    propose(
        dir,
        &ribat_mesh::Command::Membership {
            statement,
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
            gateways: vec![(1, "127.0.0.1:17701".into())],
            passphrases: Source::Dir(out.with_extension("passes")),
            store: StoreSpec::Sqlite,
            kdf: KdfParams::insecure_for_tests(),
            attest_every: ATTEST_EVERY,
            token_service: vec![],
        }
    }

    #[test]
    fn a_lab_clock_is_refused_unless_every_address_of_the_mesh_is_on_loopback() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("mesh");
        crate::passphrases::random_files(&out.with_extension("passes"), 3).unwrap();
        let dirs = init(&spec(&out)).unwrap();
        let file = d.path().join("lab-clock");
        ribat_clock::write_offset(&file, 86_400_000).unwrap();
        let loopback = MeshFile::read(&dirs[0]).unwrap();
        let mut peer_away = loopback.clone();
        peer_away.peers[1].addr = "10.0.0.2:7000".into();
        let mut named = loopback.clone();
        named.peers[2].addr = "node3.fund.example:7000".into();
        let mut gateway_away = loopback;
        gateway_away.gateway = Some("0.0.0.0:8443".into());
        for (m, addr) in [
            (peer_away, "10.0.0.2:7000"),
            (named, "node3.fund.example:7000"),
            (gateway_away, "0.0.0.0:8443"),
        ] {
            let e = follow_lab_clock(&m, &file).unwrap_err().to_string();
            assert!(e.contains(addr) && e.contains("not a loopback"), "{e}");
        }
        // None of them followed it.
        assert_eq!(ribat_clock::lab_offset_ms(), None);
    }

    #[test]
    fn the_token_key_goes_to_the_nodes_named_else_to_those_without_a_gateway() {
        let d = tempfile::tempdir().unwrap();
        let base = spec(d.path());
        assert_eq!(token_nodes(&base), vec![2, 3]);
        let every = InitSpec {
            gateways: (1..=3)
                .map(|i| (i, format!("127.0.0.1:{}", 17700 + i)))
                .collect(),
            ..base.clone()
        };
        assert_eq!(
            token_nodes(&every),
            vec![1, 2],
            "beside gateways only to survive n - t nodes down"
        );
        let two = InitSpec {
            gateways: vec![(1, "127.0.0.1:17701".into()), (2, "127.0.0.1:17702".into())],
            ..base.clone()
        };
        assert_eq!(token_nodes(&two), vec![1, 3]);
        let all_needed = InitSpec {
            threshold: 1,
            ..two.clone()
        };
        assert_eq!(token_nodes(&all_needed), vec![1, 2, 3]);
        let named = InitSpec {
            token_service: vec![3],
            ..base.clone()
        };
        assert_eq!(token_nodes(&named), vec![3]);
        for (bad, why) in [(vec![4], "no node 4"), (vec![2, 2], "given twice")] {
            let e = check_spec(&InitSpec {
                token_service: bad,
                ..base.clone()
            })
            .unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
    }

    #[test]
    fn the_ceremony_writes_one_directory_per_node_that_reads_back() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("mesh");
        crate::passphrases::random_files(&out.with_extension("passes"), 3).unwrap();
        let dirs = init(&spec(&out)).unwrap();
        assert_eq!(dirs.len(), 3);
        let first = MeshFile::read(&dirs[0]).unwrap();
        for (i, dir) in dirs.iter().enumerate() {
            let m = MeshFile::read(dir).unwrap();
            assert_eq!(m.id, i as u64 + 1);
            assert_eq!(m.genesis().members.len(), 3);
            assert_eq!(m.peers, first.peers, "every node knows the same members");
            // One custodian each, its own; the gateway only where asked, with its log key
            // pinned for the witnesses.
            let home = Home::at(dir.clone());
            assert_eq!(held_custodians(&home).unwrap(), vec![i as u32 + 1]);
            assert_eq!(m.me().unwrap().custodian, Some(i as u32 + 1));
            assert_eq!(m.gateway.is_some(), i == 0);
            assert_eq!(m.me().unwrap().audit_log.is_some(), i == 0);
            assert_eq!(m.witness_keys().unwrap().len(), 3);
            assert_eq!(m.audit_logs().unwrap().len(), 1);
            let id = crate::identity::dir(&home);
            assert!(id.join(ribat_identity::ca::TOKEN_PUB).exists());
            assert!(
                !id.join(ribat_identity::ca::CA_KEY).exists(),
                "no node holds the CA's key"
            );
            assert_eq!(
                id.join(ribat_identity::ca::TOKEN_KEY).exists(),
                i != 0,
                "only the identity service's nodes sign tokens, not the gateway's"
            );
            assert_eq!(m.token_service, vec![2, 3]);
            let store = adopt_store(home).unwrap();
            assert_eq!(
                store.store_file(),
                std::path::absolute(out.join("deployment/store.sqlite")).unwrap()
            );
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
        let deployment = deployment_home(&out);
        assert!(
            held_custodians(&deployment).unwrap().is_empty(),
            "the dealer keeps no share"
        );
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
                learners: vec![],
                seats: BTreeMap::new(),
                in_force: 0,
                mesh_wide: 0,
                matched: BTreeMap::new(),
                contact_ms: BTreeMap::new(),
                policy: None,
                rules: None,
                waiting: Some("catching up".into()),
                carried: BTreeMap::new(),
                attestation: BTreeMap::new(),
                custodian_set: 1,
                holders: BTreeMap::new(),
                resharing_to: None,
                key_epoch: 1,
                resealing: None,
                lab_clock_ms: None,
            }),
            error: leader.is_none().then(|| "refused".to_owned()),
            custodian: Some(2),
            gateway: true,
            identity_service: false,
            removed: false,
        };
        assert_eq!(majority_leader(&[m(Some(2)), m(Some(2)), m(None)]), Some(2));
        // A removed member's answer and silence count for nothing: two of the three
        // current members name node 2.
        let gone = MemberStatus {
            removed: true,
            ..m(None)
        };
        let four = [m(Some(2)), m(Some(2)), m(None), gone.clone()];
        assert_eq!(majority_leader(&four), Some(2));
        assert!(render(&[gone]).contains("NOT A MEMBER"));
        assert_eq!(majority_leader(&[m(Some(2)), m(None), m(None)]), None);
        assert_eq!(majority_leader(&[m(Some(1)), m(Some(2)), m(Some(3))]), None);
        let table = render(&[m(Some(2)), m(None)]);
        assert!(
            table.contains("unreachable (custodian 2, gateway): refused"),
            "{table}"
        );
        assert!(
            table
                .lines()
                .nth(1)
                .unwrap()
                .ends_with("custodian 2, gateway (not answering yet: catching up)")
        );
        let tokens = MemberStatus {
            gateway: false,
            identity_service: true,
            ..m(None)
        };
        assert!(
            render(&[tokens]).contains("(custodian 2, identity service)"),
            "a node of the identity service says so"
        );
    }

    #[test]
    fn a_ceremony_that_cannot_work_is_refused_before_writing() {
        let d = tempfile::tempdir().unwrap();
        let mut s = spec(&d.path().join("a"));
        s.threshold = 4;
        assert!(init(&s).unwrap_err().to_string().contains("--threshold 4"));
        let mut s = spec(&d.path().join("g"));
        s.gateways = vec![(1, "127.0.0.1:17701".into()), (2, "127.0.0.1:17701".into())];
        let e = init(&s).unwrap_err().to_string();
        assert!(e.contains("one gateway per node"), "{e}");
        let mut s = spec(&d.path().join("n"));
        s.addrs[2] = s.addrs[0].clone();
        let e = init(&s).unwrap_err().to_string();
        assert!(e.contains("is given twice"), "{e}");
        assert!(!d.path().join("g").exists() && !d.path().join("n").exists());
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
