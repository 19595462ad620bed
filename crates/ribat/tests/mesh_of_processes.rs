//! The mesh as real processes on loopback: `ribat mesh init` writes three node directories,
//! three `ribat node` processes elect a leader over mTLS, the leader is killed with SIGKILL
//! and the two left elect another, the killed node comes back from its directory and
//! catches up, and `ribat mesh status` says all of it (exit 1 when no majority agrees).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ribat(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ribat"))
        .args(args)
        .output()
        .unwrap()
}

/// A node process, killed with SIGKILL when dropped; its output is in `DIR/node.log`, shown
/// when the test fails.
struct NodeProcess(Child, Option<PathBuf>);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        if std::thread::panicking()
            && let Some(log) = &self.1
        {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            eprintln!("--- {} ---\n{text}", log.display());
        }
    }
}

fn start(dir: &Path) -> NodeProcess {
    let log = dir.join("node.log");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    NodeProcess(
        Command::new(env!("CARGO_BIN_EXE_ribat"))
            .args(["node", "--dir"])
            .arg(dir)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
        Some(log),
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `ribat mesh init` of three nodes on free loopback ports, administrators sec.amina and
/// sec.youssef; the node directories.
fn three_node_mesh(out: &Path) -> Vec<PathBuf> {
    let addrs: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let o = ribat(&[
        "mesh",
        "init",
        "--nodes",
        "3",
        "--threshold",
        "2",
        "--out",
        out.to_str().unwrap(),
        "--addrs",
        &addrs.join(","),
        "--admins",
        "sec.amina,sec.youssef",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (1..=3).map(|i| out.join(format!("node-{i}"))).collect()
}

/// `ribat mesh status --json` from `dir`: each member's leader, state and applied index.
fn status(dir: &Path) -> Vec<serde_json::Value> {
    let o = ribat(&["mesh", "status", "--json", "--dir", dir.to_str().unwrap()]);
    serde_json::from_slice(&o.stdout).unwrap_or_default()
}

/// Waits until every member in `live` answers and all name the same leader among `live`.
fn agreed_leader(dir: &Path, live: &[u64]) -> (u64, Vec<serde_json::Value>) {
    let start = Instant::now();
    loop {
        let s = status(dir);
        let leaders: Vec<Option<u64>> = live
            .iter()
            .map(|id| {
                s.get((*id - 1) as usize)
                    .and_then(|m| m["status"]["leader"].as_u64())
            })
            .collect();
        if let Some(Some(l)) = leaders.first()
            && leaders.iter().all(|x| *x == Some(*l))
            && live.contains(l)
        {
            return (*l, s);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no agreed leader among {live:?}: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_mesh_of_three_processes_outlives_its_leader_and_takes_it_back() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = three_node_mesh(&out);
    let mut nodes: Vec<Option<NodeProcess>> = dirs.iter().map(|d| Some(start(d))).collect();

    let (leader, s) = agreed_leader(&dirs[1], &[1, 2, 3]);
    for m in &s {
        assert!(m["error"].is_null(), "{m}");
    }
    // The leader reports what each member acknowledged; the others report nothing of it.
    let lead = &s[(leader - 1) as usize]["status"];
    assert_eq!(
        lead["matched"].as_object().map(|m| m.len()),
        Some(3),
        "{lead}"
    );
    let o = ribat(&["mesh", "status", "--dir", dirs[0].to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("lag"));

    // SIGKILL: no goodbye, no flush beyond what was acknowledged.
    nodes[(leader - 1) as usize] = None;
    let live: Vec<u64> = (1..=3).filter(|i| *i != leader).collect();
    let asker = &dirs[(live[0] - 1) as usize];
    let (second, s) = agreed_leader(asker, &live);
    assert_ne!(second, leader);
    assert!(
        s[(leader - 1) as usize]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{s:?}"
    );

    // The killed node comes back from its directory, follows the new leader and catches up.
    nodes[(leader - 1) as usize] = Some(start(&dirs[(leader - 1) as usize]));
    let start_wait = Instant::now();
    loop {
        let s = status(asker);
        let back = &s[(leader - 1) as usize]["status"];
        let lead = &s[(second - 1) as usize]["status"];
        if back["leader"].as_u64() == Some(second)
            && back["state"] == "Follower"
            && back["last_applied_index"] == lead["last_applied_index"]
        {
            break;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(30),
            "the restarted node did not catch up: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // With every node gone, status says so and fails.
    nodes.clear();
    let o = ribat(&["mesh", "status", "--dir", asker.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no leader agreed by a majority"), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("unreachable"));
}

#[test]
fn a_node_started_without_its_directory_says_what_is_missing() {
    let d = tempfile::tempdir().unwrap();
    let o = ribat(&["node", "--dir", d.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("a node directory made by `ribat mesh init`"),
        "{err}"
    );
    let o = ribat(&[
        "mesh",
        "init",
        "--nodes",
        "3",
        "--threshold",
        "4",
        "--out",
        d.path().join("m").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--threshold 4 with 3 nodes"));
}

fn in_force_everywhere(dir: &Path, want: u64) {
    let start = Instant::now();
    loop {
        let s = status(dir);
        if s.len() == 3
            && s.iter()
                .all(|m| m["status"]["in_force"].as_u64() == Some(want))
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not {want} in force on every node: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_restriction_proposed_from_any_node_binds_all_and_only_two_administrators_lift_it() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = three_node_mesh(&out);
    let nodes: Vec<NodeProcess> = dirs.iter().map(|d| start(d)).collect();
    agreed_leader(&dirs[0], &[1, 2, 3]);
    let dir = |i: usize| dirs[i].to_str().unwrap().to_owned();

    // Node 3 decides (whoever leads); every node enforces once it is committed.
    let o = ribat(&[
        "mesh",
        "restrict",
        "--dir",
        &dir(2),
        "--identity",
        "partner.broker-y",
        "--reason",
        "cnss-bulk from the broker's certificate",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("restriction "))
        .unwrap()
        .to_owned();
    assert!(id.starts_with("node-3/"), "{id}");
    in_force_everywhere(&dirs[0], 1);

    // I6: every node killed with SIGKILL at once; restarted from their directories, each
    // holds the committed restriction again (from its own log and snapshot on disk).
    drop(nodes);
    let _nodes: Vec<NodeProcess> = dirs.iter().map(|d| start(d)).collect();
    agreed_leader(&dirs[0], &[1, 2, 3]);
    in_force_everywhere(&dirs[0], 1);

    let approve = |who: &str| {
        let o = ribat(&[
            "mesh",
            "approve",
            "--key",
            out.join(format!("admins/{who}.key")).to_str().unwrap(),
            "--as",
            who,
            "--id",
            &id,
            "--reason",
            "the broker's contract was checked",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    };
    let (a1, a2) = (approve("sec.amina"), approve("sec.youssef"));
    let release = |approvals: &[&str]| {
        let mut args = vec![
            "mesh".to_owned(),
            "release".into(),
            "--dir".into(),
            dir(1),
            "--id".into(),
            id.clone(),
            "--reason".into(),
            "the broker's contract was checked".into(),
        ];
        for a in approvals {
            args.push("--approval".into());
            args.push((*a).into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ribat(&args)
    };
    // One administrator twice is still one.
    let o = release(&[&a1, &a1]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("1 distinct administrator signature(s) where 2 are needed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    in_force_everywhere(&dirs[0], 1);
    let o = release(&[&a1, &a2]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Released"));
    in_force_everywhere(&dirs[2], 0);
}

#[test]
fn mesh_up_runs_every_node_and_stops_them_all_when_one_dies() {
    use std::io::BufRead;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("mesh");
    let addrs: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let mut up = NodeProcess(
        Command::new(env!("CARGO_BIN_EXE_ribat"))
            .args(["mesh", "up", "--dir", dir.to_str().unwrap(), "--addrs"])
            .arg(addrs.join(","))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        None,
    );
    let mut lines = std::io::BufReader::new(up.0.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("mesh up: 3 nodes"));
    assert!(ready.is_some(), "mesh up never said it was up");
    let node2 = dir.join("node-2");
    let (_, s) = agreed_leader(&node2, &[1, 2, 3]);
    assert_eq!(s.len(), 3);

    // One node dies: `mesh up` says which and stops the others.
    let killed = Command::new("pkill")
        .args(["-9", "-f"])
        .arg(format!("node --dir {}", node2.display()))
        .status()
        .unwrap();
    assert!(killed.success());
    let status = up.0.wait().unwrap();
    assert!(!status.success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut up.0.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("node-2") && err.contains("stopped"), "{err}");
    let o = ribat(&[
        "mesh",
        "status",
        "--dir",
        dir.join("node-1").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "the other nodes still run");
}

#[test]
fn a_node_certified_by_another_ca_cannot_speak_to_the_mesh() {
    let d = tempfile::tempdir().unwrap();
    let dirs = three_node_mesh(&d.path().join("ours"));
    let _nodes: Vec<NodeProcess> = dirs.iter().map(|d| start(d)).collect();
    agreed_leader(&dirs[0], &[1, 2, 3]);
    // Another ceremony's node, handed our mesh's addresses: same names, same role, another
    // CA. The handshake fails both ways; it learns nothing and changes nothing.
    let theirs = three_node_mesh(&d.path().join("theirs"));
    std::fs::copy(dirs[0].join("mesh.json"), theirs[0].join("mesh.json")).unwrap();
    let o = ribat(&[
        "mesh",
        "status",
        "--json",
        "--dir",
        theirs[0].to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let s: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    for m in &s {
        let e = m["error"].as_str().unwrap_or_default();
        assert!(m["status"].is_null() && e.contains("TLS"), "{m}");
    }
    let (_, s) = agreed_leader(&dirs[0], &[1, 2, 3]);
    assert!(s.iter().all(|m| m["error"].is_null()));
}
