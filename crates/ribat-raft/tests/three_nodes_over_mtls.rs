//! Three Raft nodes on loopback, each behind its own mTLS listener with a node certificate
//! from the deployment's CA: a restriction signed by one node reaches all three; a release
//! signed by one administrator is refused by every state machine; the leader dies, the two
//! left elect another and apply the genuine two-person release; a certificate that is not a
//! node's cannot speak Raft.
//!
//! Real TLS, real sockets, real files; the nodes share one test process (the mesh's
//! process-level tests come with `ribat node`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use openraft::{Config, impls::BasicNode};
use ribat_detect::response::{Action, Target};
use ribat_identity::ca::{Ca, CertKind};
use ribat_identity::tls::{ServerTls, TlsFiles, client_config};
use ribat_mesh::command::{Approval, Command, ReleaseStatement, Restriction, kind};
use ribat_mesh::{Admin, Applied, Genesis, KeyPair, Member};
use ribat_net::listener::TlsStats;
use ribat_raft::log_store::LogStore;
use ribat_raft::network::MeshNetwork;
use ribat_raft::{MeshRaft, MeshStateMachine, Outcome};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

struct Node {
    raft: MeshRaft,
    sm: MeshStateMachine,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    addr: String,
}

fn genesis() -> Genesis {
    Genesis {
        members: (1..=3u8)
            .map(|i| Member {
                name: format!("node-{i}"),
                key: KeyPair::from_seed(&[i; 32]).public(),
                cert: None,
            })
            .collect(),
        admins: ["sec.amina", "sec.youssef"]
            .iter()
            .zip(11u8..)
            .map(|(n, s)| Admin {
                name: (*n).into(),
                key: KeyPair::from_seed(&[s; 32]).public(),
            })
            .collect(),
        threshold: 2,
        seats: Default::default(),
        granted: Vec::new(),
        attestation: Default::default(),
        custodians: Default::default(),
    }
}

fn write_cert(ca: &Ca, dir: &Path, name: &str, role: &str, server: bool) {
    let kind = if server {
        CertKind::Server {
            hosts: vec!["127.0.0.1".into()],
        }
    } else {
        CertKind::Client
    };
    let issued = ca.issue(name, role, "mesh", &kind, 1).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("cert.pem"), &issued.cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), issued.key_pem.as_bytes()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.cert_pem().unwrap()).unwrap();
}

async fn start(ca: &Ca, root: &Path, id: u64) -> Node {
    let dir = root.join(format!("node-{id}"));
    write_cert(ca, &dir, &format!("node-{id}"), "node", true);
    let files = TlsFiles::in_dir(&dir, &ca.dir().join("crl.pem"));
    let server_tls = Arc::new(ServerTls::new(files).unwrap());
    let client_tls = client_config(
        &std::fs::read_to_string(dir.join("ca.pem")).unwrap(),
        Some((
            &std::fs::read_to_string(dir.join("cert.pem")).unwrap(),
            &std::fs::read_to_string(dir.join("key.pem")).unwrap(),
        )),
        true,
    )
    .unwrap();
    let log = LogStore::open(&dir.join("raft-log.sqlite")).unwrap();
    let sm = MeshStateMachine::open(&dir.join("raft-state.sqlite"), &genesis()).unwrap();
    let config = Arc::new(
        Config {
            heartbeat_interval: 100,
            election_timeout_min: 500,
            election_timeout_max: 1000,
            ..Default::default()
        }
        .validate()
        .unwrap(),
    );
    let raft = MeshRaft::new(id, config, MeshNetwork::new(client_tls), log, sm.clone())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(ribat_net::listener::serve(
        listener,
        server_tls,
        ribat_raft::serve::router(raft.clone(), sm.clone()),
        Arc::new(TlsStats::default()),
    ));
    Node {
        raft,
        sm,
        server,
        addr,
    }
}

/// The leader the live nodes agree on (ids start at 1).
async fn leader_among(nodes: &[Node], live: &[u64]) -> u64 {
    for _ in 0..100 {
        for id in live {
            if let Some(l) = nodes[(*id - 1) as usize].raft.current_leader().await
                && live.contains(&l)
            {
                return l;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no leader elected among the live nodes");
}

fn restriction() -> Restriction {
    Restriction {
        id: "node-1/0001".into(),
        rule: "enumeration".into(),
        target: Target::Identity("partner.broker-y".into()),
        action: Action::Quarantine,
        until_ms: u64::MAX,
        evidence: "ab".repeat(32),
    }
}

fn release(signers: &[(&str, u8)]) -> Command {
    let statement = ReleaseStatement {
        id: restriction().id,
        reason: "the broker's contract was checked".into(),
    };
    let approvals = signers
        .iter()
        .map(|(name, seed)| Approval {
            admin: (*name).into(),
            sig: KeyPair::from_seed(&[*seed; 32])
                .sign(kind::RELEASE, &statement)
                .unwrap(),
        })
        .collect();
    Command::Release {
        statement,
        approvals,
    }
}

async fn until_applied(nodes: &[&Node], check: impl Fn(&MeshStateMachine) -> bool, what: &str) {
    for _ in 0..100 {
        if nodes.iter().all(|n| check(&n.sm)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not every node applied: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restriction_reaches_every_node_a_lone_release_is_refused_and_the_mesh_outlives_its_leader()
 {
    let root = tempfile::tempdir().unwrap();
    let ca = Ca::init(&root.path().join("ca"), "ribat.test").unwrap();
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(start(&ca, root.path(), id).await);
    }
    let members: BTreeMap<u64, BasicNode> = nodes
        .iter()
        .zip(1..)
        .map(|(n, id)| (id, BasicNode::new(n.addr.clone())))
        .collect();
    nodes[0].raft.initialize(members).await.unwrap();
    let all: Vec<&Node> = nodes.iter().collect();
    let leader = leader_among(&nodes, &[1, 2, 3]).await;
    let lead = &nodes[(leader - 1) as usize];

    // Node 1's detectors fired: it signs the quarantine; Raft carries it to all three.
    let r = restriction();
    let sig = KeyPair::from_seed(&[1; 32])
        .sign(kind::RESTRICT, &r)
        .unwrap();
    let w = lead
        .raft
        .client_write(Command::Restrict {
            restriction: r.clone(),
            by: "node-1".into(),
            sig,
        })
        .await
        .unwrap();
    assert_eq!(
        w.data,
        Outcome::Applied(Applied::Restricted { id: r.id.clone() })
    );
    until_applied(
        &all,
        |sm| sm.read(|s| s.in_force(0).count() == 1).unwrap(),
        "the quarantine",
    )
    .await;

    // One administrator alone: committed, and refused by every state machine.
    let w = lead
        .raft
        .client_write(release(&[("sec.amina", 11)]))
        .await
        .unwrap();
    assert!(matches!(w.data, Outcome::Rejected(_)), "{:?}", w.data);
    let applied = w.log_id.index;
    for n in &nodes {
        n.raft
            .wait(Some(Duration::from_secs(5)))
            .applied_index_at_least(Some(applied), "the lone release")
            .await
            .unwrap();
        assert_eq!(n.sm.read(|s| s.in_force(0).count()).unwrap(), 1);
    }

    // The leader dies; the two left elect another and apply the genuine release.
    let dead = (leader - 1) as usize;
    nodes[dead].raft.shutdown().await.unwrap();
    nodes[dead].server.abort();
    let live: Vec<&Node> = nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != dead)
        .map(|(_, n)| n)
        .collect();
    let live_ids: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    // As any client of a fresh leader: on a busy host its lease can lapse before the first
    // write (`ForwardToLeader`), and the write goes to whoever leads then.
    let mut tries = 0;
    let (w, lead) = loop {
        let new_leader = leader_among(&nodes, &live_ids).await;
        assert_ne!(new_leader, leader);
        let lead = &nodes[(new_leader - 1) as usize];
        match lead
            .raft
            .client_write(release(&[("sec.amina", 11), ("sec.youssef", 12)]))
            .await
        {
            Ok(w) => break (w, lead),
            Err(openraft::error::RaftError::APIError(
                openraft::error::ClientWriteError::ForwardToLeader(_),
            )) if tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("the release was not written: {e}"),
        }
    };
    assert_eq!(
        w.data,
        Outcome::Applied(Applied::Released { id: r.id.clone() })
    );
    until_applied(
        &live,
        |sm| sm.read(|s| s.in_force(0).count() == 0).unwrap(),
        "the release",
    )
    .await;

    // A clerk's certificate from the same CA reaches the listener but not Raft.
    let clerk = root.path().join("clerk");
    write_cert(&ca, &clerk, "clerk.1", "clerk", false);
    let tls = client_config(
        &std::fs::read_to_string(clerk.join("ca.pem")).unwrap(),
        Some((
            &std::fs::read_to_string(clerk.join("cert.pem")).unwrap(),
            &std::fs::read_to_string(clerk.join("key.pem")).unwrap(),
        )),
        true,
    )
    .unwrap();
    let mut c = ribat_net::client::Connection::open(tls, &lead.addr, "127.0.0.1", true)
        .await
        .unwrap();
    let r = c
        .send("POST", ribat_raft::serve::VOTE, None, Some(b"{}".to_vec()))
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{:?}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("not-a-node"));

    for (i, n) in nodes.iter().enumerate() {
        if i != dead {
            n.raft.shutdown().await.unwrap();
            n.server.abort();
        }
    }
}
