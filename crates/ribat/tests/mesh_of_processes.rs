//! The mesh as real processes on loopback: `ribat mesh init` writes three node directories,
//! three `ribat node` processes elect a leader over mTLS, the leader is killed with SIGKILL
//! and the two left elect another, the killed node comes back from its directory and
//! catches up, and `ribat mesh status` says all of it (exit 1 when no majority agrees).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The custodians' passphrases, as every node and ceremony of these tests reads them.
const PASSES: [(&str, &str); 3] = [
    (
        "RIBAT_CUSTODIAN_1_PASSPHRASE",
        "node one's custodian passphrase",
    ),
    (
        "RIBAT_CUSTODIAN_2_PASSPHRASE",
        "node two's custodian passphrase",
    ),
    (
        "RIBAT_CUSTODIAN_3_PASSPHRASE",
        "node three's custodian passphrase",
    ),
];

fn ribat_cmd(args: &[&str]) -> Command {
    program_cmd(Path::new(env!("CARGO_BIN_EXE_ribat")), args)
}

/// `program` (a ribat build) with `args` and the custodians' passphrases.
fn program_cmd(program: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args).env_remove("RIBAT_HOME");
    for (k, v) in PASSES {
        c.env(k, v);
    }
    c
}

fn ribat(args: &[&str]) -> std::process::Output {
    ribat_cmd(args).output().unwrap()
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
    start_with(dir, &[])
}

/// `ribat node` for `dir` with `extra` arguments, its output in `dir/node.log`.
fn start_with(dir: &Path, extra: &[&str]) -> NodeProcess {
    start_as(Path::new(env!("CARGO_BIN_EXE_ribat")), dir, extra)
}

/// Same, with the ribat build at `program`.
fn start_as(program: &Path, dir: &Path, extra: &[&str]) -> NodeProcess {
    let log = dir.join("node.log");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    NodeProcess(
        program_cmd(program, &["node", "--passphrases", "env", "--dir"])
            .arg(dir)
            .args(extra)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
        Some(log),
    )
}

/// A free address on this test's own loopback address, never one handed out before in this
/// process. Each test process listens on its own 127.x.y.1 (from its pid): clients' ephemeral
/// ports and every other test's `127.0.0.1:0` listeners live on 127.0.0.1, so a port found
/// free here stays free until the node binds it (CI once lost a run to another test taking
/// the port a node had been given on 127.0.0.1).
fn free_addr() -> String {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let pid = std::process::id();
    let host = format!("127.{}.{}.1", 1 + pid % 250, (pid / 250) % 250);
    loop {
        let port = std::net::TcpListener::bind((host.as_str(), 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return format!("{host}:{port}");
        }
    }
}

/// `ribat mesh init` of three nodes on free loopback ports, administrators sec.amina and
/// sec.youssef; the node directories.
fn three_node_mesh(out: &Path) -> Vec<PathBuf> {
    mesh_with_gateways(out, &[1])
}

/// Same, with a gateway on each node of `gateways`.
fn mesh_with_gateways(out: &Path, gateways: &[u64]) -> Vec<PathBuf> {
    mesh_made_with(out, gateways, &[])
}

/// Same, `mesh init` given `extra` arguments besides.
fn mesh_made_with(out: &Path, gateways: &[u64], extra: &[&str]) -> Vec<PathBuf> {
    let addrs: Vec<String> = (0..3).map(|_| free_addr()).collect();
    let mut args: Vec<String> = gateways
        .iter()
        .flat_map(|g| ["--gateway".to_owned(), format!("{g}={}", free_addr())])
        .collect();
    args.extend(["--passphrases".to_owned(), "env".to_owned()]);
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let mut o = ribat_cmd(&[
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
    let o = o.args(&args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (1..=3).map(|i| out.join(format!("node-{i}"))).collect()
}

/// `ribat mesh approve WHAT` signed with `key_of`'s key, as `who`.
fn approve_with(key_of: &str, out: &Path, who: &str, what: &[&str]) -> std::process::Output {
    let key = out.join(format!("admins/{key_of}.key"));
    let mut args = vec![
        "mesh",
        "approve",
        "--key",
        key.to_str().unwrap(),
        "--as",
        who,
    ];
    args.extend_from_slice(what);
    ribat(&args)
}

/// Same, signed with `key_of`'s key as `who`, which must succeed: the approval's line.
fn approval_with_key_of(out: &Path, key_of: &str, who: &str, what: &[&str]) -> String {
    let o = approve_with(key_of, out, who, what);
    assert!(o.status.success(), "{}", common::text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// Administrator `who`'s approval of `what`, signed with their own key.
fn approval(out: &Path, who: &str, what: &[&str]) -> String {
    approval_with_key_of(out, who, who, what)
}

/// `ribat mesh revoke` through the node in `dir`, signed by administrator `admin` alone.
fn revoke(out: &Path, dir: &Path, admin: &str, serial: &str, reason: &str) -> std::process::Output {
    let key = out.join(format!("admins/{admin}.key"));
    ribat(&[
        "mesh",
        "revoke",
        "--dir",
        dir.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--as",
        admin,
        "--serial",
        serial,
        "--reason",
        reason,
    ])
}

/// `ribat mesh status --json` from `dir`: each member's leader, state and applied index.
fn status(dir: &Path) -> Vec<serde_json::Value> {
    let o = ribat(&["mesh", "status", "--json", "--dir", dir.to_str().unwrap()]);
    serde_json::from_slice(&o.stdout).unwrap_or_default()
}

/// Waits until every member in `live` answers, all name the same leader among `live`, and
/// each one's custodian answers (it confirmed the security state with that leader).
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
        // Agreed, and every live node's custodian answering (it confirmed the state).
        let serving = live.iter().all(|id| {
            s.get((*id - 1) as usize)
                .is_some_and(|m| m["status"]["waiting"].is_null())
        });
        if let Some(Some(l)) = leaders.first()
            && leaders.iter().all(|x| *x == Some(*l))
            && live.contains(l)
            && serving
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
    // And when each other member last acknowledged it: within a few heartbeats.
    for id in (1..=3u64).filter(|i| *i != leader) {
        let ms = lead["contact_ms"][id.to_string()].as_u64();
        assert!(ms.is_some_and(|ms| ms < 3_000), "node {id}: {lead}");
    }
    let o = ribat(&["mesh", "status", "--dir", dirs[0].to_str().unwrap()]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("lag") && table.contains("contact"),
        "{table}"
    );

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
    every_member_says(dir, "in_force", want);
}

/// Waits until each of the three members reports `field` = `want` in its status.
fn every_member_says(dir: &Path, field: &str, want: u64) {
    let start = Instant::now();
    loop {
        let s = status(dir);
        if s.len() == 3 && s.iter().all(|m| m["status"][field].as_u64() == Some(want)) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not {field} = {want} on every node: {s:?}"
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
        approval(
            &out,
            who,
            &["--id", &id, "--reason", "the broker's contract was checked"],
        )
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
    // A second approval forged in sec.youssef's name with sec.amina's key: committed, and
    // refused by every node's state machine (whoever carried it, the leader included).
    let forged = approval_with_key_of(
        &out,
        "sec.amina",
        "sec.youssef",
        &["--id", &id, "--reason", "the broker's contract was checked"],
    );
    let o = release(&[&a1, &forged]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("the signature of `sec.youssef` does not verify"),
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
    let addrs: Vec<String> = (0..3).map(|_| free_addr()).collect();
    let src = d.path().join("source");
    generate(&src, 30, 3, 1, 5);
    let gw = free_addr();
    let mut up = NodeProcess(
        Command::new(env!("CARGO_BIN_EXE_ribat"))
            .args(["mesh", "up", "--dir", dir.to_str().unwrap(), "--addrs"])
            .arg(addrs.join(","))
            .arg("--gateway")
            .arg(format!("1={gw}"))
            .arg("--import")
            .arg(format!(
                "{},{}",
                src.join("persons.csv").display(),
                src.join("employers.csv").display()
            ))
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

    // What it imported is read through node 1's gateway, which it made and started.
    let deployment = dir.join("deployment");
    issue(&deployment, "clerk.amal", "clerk", "agency-casa-anfa");
    let clerk = Clerk::new(
        dir.join("node-1/ca.pem"),
        deployment.join("identity/issued/clerk.amal"),
    );
    assert_eq!(gateway_addr(&dir.join("node-1")), gw);
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 5));
    let r = clerk.read(&gw, &fund.persons[3].cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["fields"]["cin"], fund.persons[3].cin.as_str());

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
    // A client that trusts our CA but shows another CA's certificate (the node above gave
    // up on our certificates first, so our nodes never saw its own): each node refuses the
    // handshake, and its custodian's detectors hear of it — five from one address within
    // the minute are an alert (never a cut: the address may be shared).
    let stranger = d.path().join("stranger");
    {
        let other = ribat_identity::ca::Ca::init(&stranger.join("ca"), "ribat.elsewhere").unwrap();
        let s = other
            .issue(
                "node-2",
                "node",
                "mesh",
                &ribat_identity::ca::CertKind::Client,
                30,
            )
            .unwrap();
        std::fs::write(stranger.join("cert.pem"), &s.cert_pem).unwrap();
        std::fs::write(stranger.join("key.pem"), s.key_pem.as_bytes()).unwrap();
    }
    let mesh: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dirs[0].join("mesh.json")).unwrap()).unwrap();
    for peer in mesh["peers"].as_array().unwrap() {
        let addr = peer["addr"].as_str().unwrap();
        for _ in 0..5 {
            let r = common::api::call(
                addr,
                common::api::config(&dirs[0].join("ca.pem"), Some(&stranger)),
                "GET",
                "/mesh/status",
                None,
                None,
            );
            assert!(r.is_err(), "{r:?}");
        }
    }
    for (i, dir) in dirs.iter().enumerate() {
        let decisions = dir.join(format!("custodians/custodian-{}/decisions", i + 1));
        poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
            let held: Vec<PathBuf> = files_holding(&decisions, &["auth-failures"])
                .into_iter()
                .filter(|f| {
                    // The decision log's journal: JSON records between binary framing.
                    let t =
                        String::from_utf8_lossy(&std::fs::read(f).unwrap_or_default()).into_owned();
                    t.contains("address 127.0.0.1") && t.contains("tls-unknown-ca")
                })
                .collect();
            match held.is_empty() {
                false => Ok(()),
                true => Err(format!(
                    "no auth-failures alert on 127.0.0.1 in {}",
                    decisions.display()
                )),
            }
        });
    }
    let (_, s) = agreed_leader(&dirs[0], &[1, 2, 3]);
    assert!(s.iter().all(|m| m["error"].is_null()));
}

#[test]
fn a_node_certificate_minted_with_the_ca_key_in_a_members_name_is_refused_by_every_member() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = three_node_mesh(&out);
    let _nodes: Vec<NodeProcess> = dirs.iter().map(|d| start(d)).collect();
    agreed_leader(&dirs[0], &[1, 2, 3]);
    // Whoever holds the CA's key mints a second node certificate named node-2 (its own
    // copy of the CA, without the register that would refuse the name).
    let thief = d.path().join("thief");
    std::fs::create_dir_all(thief.join("identity")).unwrap();
    for e in std::fs::read_dir(out.join("deployment/identity")).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), thief.join("identity").join(e.file_name())).unwrap();
        }
    }
    std::fs::write(thief.join("identity/register.json"), "[]").unwrap();
    let minted = d.path().join("minted");
    let o = ribat(&[
        "--home",
        thief.to_str().unwrap(),
        "identity",
        "add",
        "--name",
        "node-2",
        "--role",
        "node",
        "--institution",
        "mesh",
        "--host",
        "127.0.0.1",
        "--out",
        minted.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    // A directory like node-2's, with the minted certificate: every member refuses it.
    let fake = d.path().join("fake-node-2");
    std::fs::create_dir_all(&fake).unwrap();
    for f in ["mesh.json", "node.key", "ca.pem", "crl.pem"] {
        std::fs::copy(dirs[1].join(f), fake.join(f)).unwrap();
    }
    for f in ["cert.pem", "key.pem"] {
        std::fs::copy(minted.join(f), fake.join(f)).unwrap();
    }
    let o = ribat(&["mesh", "status", "--json", "--dir", fake.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    let s: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s.len(), 3);
    for m in &s {
        let e = m["error"].as_str().unwrap_or_default();
        assert!(
            m["status"].is_null() && e.contains("not a member of this mesh"),
            "{m}"
        );
    }
    // The genuine node-2 still speaks.
    let (_, s) = agreed_leader(&dirs[1], &[1, 2, 3]);
    assert!(s.iter().all(|m| m["error"].is_null()));
}

/// Waits for the gateway of the node in `dir` to say where it listens (in its node.log).
fn gateway_addr(dir: &Path) -> String {
    let start = Instant::now();
    loop {
        let log = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
        if let Some(addr) = log
            .lines()
            .find_map(|l| l.strip_prefix("gateway listening on https://"))
            .and_then(|s| s.split_whitespace().next())
        {
            return addr.to_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the gateway in {} did not start:\n{log}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Imports the generated fund in `src` through the node directory `dir` (its own process not
/// running), once the other nodes' custodians answer.
fn import_through(dir: &Path, src: &Path) {
    let started = Instant::now();
    loop {
        let o = ribat(&[
            "--home",
            dir.to_str().unwrap(),
            "import",
            src.join("persons.csv").to_str().unwrap(),
            src.join("employers.csv").to_str().unwrap(),
        ]);
        if o.status.success() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{}",
            common::text(&o)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Nodes 2 and 3 started, a generated fund (persons, employers, months, seed) imported
/// through node 1's directory while their custodians answer, then node 1 started and a
/// leader agreed by all three, each custodian answering.
fn running_with_fund(
    tmp: &Path,
    dirs: &[PathBuf],
    fund: (u32, u32, u32, u64),
) -> Vec<Option<NodeProcess>> {
    running_with_fund_and(tmp, dirs, fund, &[])
}

/// Same, node 1 started with `node1` arguments besides.
fn running_with_fund_and(
    tmp: &Path,
    dirs: &[PathBuf],
    (persons, employers, months, seed): (u32, u32, u32, u64),
    node1: &[&str],
) -> Vec<Option<NodeProcess>> {
    let mut nodes: Vec<Option<NodeProcess>> =
        vec![None, Some(start(&dirs[1])), Some(start(&dirs[2]))];
    let src = tmp.join("source");
    generate(&src, persons, employers, months, seed);
    import_through(&dirs[0], &src);
    nodes[0] = Some(start_with(&dirs[0], node1));
    agreed_leader(&dirs[0], &[1, 2, 3]);
    nodes
}

/// `ribat sim generate` of a fund into `src`.
fn generate(src: &Path, persons: u32, employers: u32, months: u32, seed: u64) {
    let (p, e, m, s) = (
        persons.to_string(),
        employers.to_string(),
        months.to_string(),
        seed.to_string(),
    );
    let o = ribat(&[
        "sim",
        "generate",
        "--persons",
        &p,
        "--employers",
        &e,
        "--months",
        &m,
        "--seed",
        &s,
        "--out",
        src.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
}

/// Issues an identity where the CA's key is kept (the mesh's deployment HOME) and has two
/// administrators grant it through the log (a running mesh beside `deployment`); its files'
/// directory and its certificate's serial.
fn issue(deployment: &Path, name: &str, role: &str, institution: &str) -> (PathBuf, String) {
    let (who, serial) = issue_only(deployment, name, role, institution);
    grant(deployment.parent().unwrap(), &[&who]);
    (who, serial)
}

/// `mesh approve --grant` by the mesh's first two administrators, then `mesh grant` through
/// node 1, which must succeed; returns once every node of the mesh in `out` holds the grant.
fn grant(out: &Path, who: &[&Path]) {
    let review = in_days(30);
    let mut what: Vec<&str> = who
        .iter()
        .flat_map(|w| ["--grant", w.to_str().unwrap()])
        .collect();
    what.extend(["--reason", "ticket 7", "--review-by", &review]);
    let node1 = out.join("node-1");
    let mesh: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(node1.join("mesh.json")).unwrap()).unwrap();
    let admin = |i: usize| mesh["admins"][i]["name"].as_str().unwrap().to_owned();
    let (a1, a2) = (
        approval(out, &admin(0), &what),
        approval(out, &admin(1), &what),
    );
    let mut args = vec![
        "mesh",
        "grant",
        "--dir",
        node1.to_str().unwrap(),
        "--reason",
        "ticket 7",
        "--review-by",
        &review,
        "--approval",
        &a1,
        "--approval",
        &a2,
    ];
    args.extend(who.iter().flat_map(|w| ["--cert", w.to_str().unwrap()]));
    let o = ribat(&args);
    assert!(o.status.success(), "{}", common::text(&o));
    let names: Vec<String> = who
        .iter()
        .map(|w| w.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for dir in (1..)
        .map(|i| out.join(format!("node-{i}")))
        .take_while(|d| d.join("mesh.json").exists())
    {
        poll_until(
            Duration::from_secs(20),
            Duration::from_millis(100),
            || match names.iter().all(|n| granted_in(&dir, n)) {
                true => Ok(()),
                false => Err(format!(
                    "{} never held the grant of {names:?}",
                    dir.display()
                )),
            },
        );
    }
}

/// Every file under `dir` whose text holds one of `values` (none must: I4).
fn files_holding(dir: &Path, values: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let text =
                    String::from_utf8_lossy(&std::fs::read(&path).unwrap_or_default()).into_owned();
                if values.iter().any(|v| text.contains(v)) {
                    found.push(path);
                }
            }
        }
    }
    found
}

/// Asks `f` every `every` until it answers `Ok`, for at most `within`; past that, fails
/// with its last `Err` (what was awaited, and what was seen).
fn poll_until<T>(within: Duration, every: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) => assert!(started.elapsed() < within, "{e}"),
        }
        std::thread::sleep(every);
    }
}

/// Now plus `days` days, RFC 3339.
fn in_days(days: i64) -> String {
    in_seconds(days * 86_400)
}

use common::in_seconds;

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Whether the node in `dir` holds `name`'s certificate as granted and not revoked.
fn granted_in(dir: &Path, name: &str) -> bool {
    let o = ribat(&[
        "mesh",
        "identities",
        "--json",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap_or_default();
    listed
        .iter()
        .any(|i| i["name"] == name && i["revoked"] == false)
}

/// Issues an identity where the CA's key is kept, and nothing more: no node answers it yet.
fn issue_only(deployment: &Path, name: &str, role: &str, institution: &str) -> (PathBuf, String) {
    let o = ribat(&[
        "--home",
        deployment.to_str().unwrap(),
        "identity",
        "add",
        "--name",
        name,
        "--role",
        role,
        "--institution",
        institution,
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let serial = String::from_utf8_lossy(&o.stdout)
        .split("serial ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_default()
        .trim()
        .to_owned();
    (deployment.join("identity/issued").join(name), serial)
}

/// A clerk's reads through a mesh gateway.
struct Clerk {
    cfg: common::api::Client,
    ca: PathBuf,
    who: PathBuf,
}

impl Clerk {
    /// A clerk `name` of `institution`, issued where the CA's key is kept beside the mesh's
    /// node directories `dirs` (in `out`) and granted by two administrators.
    fn granted(out: &Path, dirs: &[PathBuf], name: &str, institution: &str) -> Self {
        let (who, _) = issue(&out.join("deployment"), name, "clerk", institution);
        Self::new(dirs[0].join("ca.pem"), who)
    }

    /// The holder of the identity files in `who`, trusting the CA in `ca`.
    fn new(ca: PathBuf, who: PathBuf) -> Self {
        Self {
            cfg: common::api::config(&ca, Some(&who)),
            ca,
            who,
        }
    }

    /// A read with a fresh token; the token request's answer when it gets none.
    fn read(&self, gateway: &str, cnss: &str) -> ribat_net::client::Response {
        let r =
            common::api::call(gateway, self.cfg.clone(), "POST", "/v1/token", None, None).unwrap();
        match r.status {
            200 => self.read_with(gateway, cnss, r.json()["token"].as_str().unwrap()),
            _ => r,
        }
    }

    /// A token from `gateway`.
    fn token(&self, gateway: &str) -> String {
        common::api::token(gateway, &self.ca, &self.who)
    }

    /// A read with a token the clerk already holds.
    fn read_with(&self, gateway: &str, cnss: &str, token: &str) -> ribat_net::client::Response {
        common::api::call(
            gateway,
            self.cfg.clone(),
            "GET",
            &format!("/v1/persons/{cnss}?purpose=counter-service"),
            Some(token),
            None,
        )
        .unwrap()
    }
}

fn custodians_in(dir: &Path) -> Vec<String> {
    let mut held: Vec<String> = std::fs::read_dir(dir.join("custodians"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    held.sort();
    held
}

#[test]
fn reads_go_on_while_any_two_of_three_custodians_answer_and_are_refused_clearly_below() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    // A2 ends here: each node holds its own custodian's shares and no other's, and the
    // ceremony's own directory keeps none.
    for (i, dir) in dirs.iter().enumerate() {
        assert_eq!(custodians_in(dir), vec![format!("custodian-{}", i + 1)]);
    }
    assert!(custodians_in(&out.join("deployment")).is_empty());

    // A fund imported through node 1's directory while custodians 2 and 3 answer (node 1's
    // own process, not yet started, would hold its audit log).
    let mut nodes: Vec<Option<NodeProcess>> =
        vec![None, Some(start(&dirs[1])), Some(start(&dirs[2]))];
    let src = d.path().join("source");
    generate(&src, 40, 4, 1, 11);
    import_through(&dirs[0], &src);
    // A honey list cannot reach networked custodians yet: refused, saying so.
    let o = ribat(&[
        "--home",
        dirs[0].to_str().unwrap(),
        "import",
        src.join("persons.csv").to_str().unwrap(),
        "--honey",
        src.join("ribat-only/honey.csv").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("not built for the mesh yet, so nothing was imported"),
        "{}",
        common::text(&o)
    );
    nodes[0] = Some(start(&dirs[0]));
    agreed_leader(&dirs[0], &[1, 2, 3]);
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));

    // A clerk, issued where the CA's key is kept.
    let deployment = out.join("deployment");
    issue(&deployment, "clerk.amal", "clerk", "agency-casa-anfa");
    let clerk = Clerk::new(
        dirs[0].join("ca.pem"),
        deployment.join("identity/issued/clerk.amal"),
    );
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(40, 4, 1, 11));
    let cnss: Vec<&str> = fund.persons.iter().map(|p| p.cnss.as_str()).collect();
    let ok_read = |gw: &str, c: &str| {
        let r = clerk.read(gw, c);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let person = fund.persons.iter().find(|p| p.cnss == c).unwrap();
        assert_eq!(r.json()["fields"]["cin"], person.cin.as_str());
    };
    ok_read(&gw1, cnss[0]);
    ok_read(&gw2, cnss[1]);
    // Each gateway's audit log is cosigned over the network by the other nodes' custodians.
    for dir in &dirs[..2] {
        let started = Instant::now();
        loop {
            let note = std::fs::read_to_string(dir.join("audit/checkpoint")).unwrap_or_default();
            let cosigners: Vec<&str> = note
                .lines()
                .filter_map(|l| l.strip_prefix("— custodian-"))
                .collect();
            if cosigners.len() >= 2 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no checkpoint cosigned by two custodians in {}: {note}",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    // Any n − t = 1 node killed with SIGKILL: reads go on through a gateway still up.
    nodes[2] = None;
    ok_read(&gw1, cnss[2]);
    ok_read(&gw2, cnss[3]);
    nodes[2] = Some(start(&dirs[2]));
    nodes[0] = None;
    let back = Instant::now();
    loop {
        let r = clerk.read(&gw2, cnss[4]);
        if r.status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "node 3 came back but reads through node 2 did not resume: {}",
            String::from_utf8_lossy(&r.body)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    ok_read(&gw2, cnss[5]);

    // Two of three down: refused, saying why, with no plaintext. (The clerk signed in
    // before: with nodes 1 and 3 down, the identity service is down too.)
    let token = clerk.token(&gw2);
    nodes[2] = None;
    let r = clerk.read_with(&gw2, cnss[6], &token);
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(common::api::problem(&r), "custodians-unavailable");
    assert!(!String::from_utf8_lossy(&r.body).contains(&fund.persons[6].surname));

    // Back from its directory: reads resume.
    nodes[2] = Some(start(&dirs[2]));
    let back = Instant::now();
    loop {
        let r = clerk.read(&gw2, cnss[6]);
        if r.status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "reads did not resume: {}",
            String::from_utf8_lossy(&r.body)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_node_directory_holding_two_custodians_refuses_to_start() {
    let d = tempfile::tempdir().unwrap();
    let dirs = three_node_mesh(&d.path().join("mesh"));
    // Someone copies custodian 2's directory onto node 1.
    let from = dirs[1].join("custodians/custodian-2");
    let to = dirs[0].join("custodians/custodian-2");
    std::fs::create_dir_all(&to).unwrap();
    for f in std::fs::read_dir(&from).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_file() {
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
    }
    let o = ribat(&[
        "node",
        "--passphrases",
        "env",
        "--dir",
        dirs[0].to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("holds the shares of 2 custodians (custodian-1, custodian-2)")
            && err.contains("a node holds at most one"),
        "{err}"
    );
    // And a node given another node's custodian instead of its own.
    std::fs::remove_dir_all(dirs[0].join("custodians/custodian-1")).unwrap();
    let o = ribat(&[
        "node",
        "--passphrases",
        "env",
        "--dir",
        dirs[0].to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(
            "holds custodian 2's shares but the custodian set in force gives node-1 custodian 1"
        ),
        "{err}"
    );
}

/// The custodian log entries of the custodian in node directory `dir` about `identity`.
fn custodian_acts(dir: &Path, index: usize, identity: &str) -> Vec<(String, String)> {
    ribat_custodian::served_log::ServedLog::read(&dir.join(format!("custodians/custodian-{index}")))
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.identity == identity && (e.outcome == "quarantined" || e.outcome == "released")
        })
        .map(|e| (e.outcome, e.reason.unwrap_or_default()))
        .collect()
}

#[test]
fn the_2025_attack_on_one_gateway_binds_every_node_even_one_down_through_it_and_two_administrators_lift_it()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let mut nodes = running_with_fund(d.path(), &dirs, (200, 8, 1, 41));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let deployment = out.join("deployment");
    issue(&deployment, "partner.scraper", "partner", "insurer-x");
    let who = deployment.join("identity/issued/partner.scraper");
    let ca = dirs[0].join("ca.pem");
    let cfg = common::api::config(&ca, Some(&who));
    let read = |gw: &str, cnss: &str| {
        let token = common::api::token(gw, &ca, &who);
        common::api::call(
            gw,
            cfg.clone(),
            "GET",
            &format!("/v1/persons/{cnss}?purpose=partner-verification"),
            Some(&token),
            None,
        )
        .unwrap()
    };
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(200, 8, 1, 41));
    let spread: Vec<&str> = fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .step_by(8)
        .map(|p| p.cnss.as_str())
        .collect();

    // Node 3 is down (SIGKILL) when the partner's certificate scrapes the register
    // through node 1's gateway: no direct word from that gateway can reach it.
    nodes[2] = None;
    let mut exposed = 0;
    let mut refused = None;
    for c in &spread[..20] {
        let r = read(&gw1, c);
        if r.status == 200 {
            assert!(refused.is_none(), "served after a refusal");
            exposed += 1;
        } else {
            refused.get_or_insert_with(|| common::api::problem(&r));
        }
    }
    assert_eq!(refused.as_deref(), Some("quarantined"));
    assert!(exposed <= 9, "{exposed} records exposed");

    // Back from its directory, node 3's custodian imposes the quarantine from the mesh's
    // log (signed by node 1), durably in its own log.
    nodes[2] = Some(start(&dirs[2]));
    let started = Instant::now();
    let id = loop {
        let acts = custodian_acts(&dirs[2], 3, "partner.scraper");
        if let Some(id) = acts
            .iter()
            .find(|(o, _)| o == "quarantined")
            .and_then(|(_, why)| why.strip_prefix("mesh restriction "))
        {
            break id.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "node 3 never enforced the mesh's restriction: {acts:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(id.starts_with("node-1/"), "{id}");
    in_force_everywhere(&dirs[0], 1);
    // The other nodes endorse it once their custodians carried it out: signed by t = 2
    // members (node 1 and an endorser), it is mesh-wide on every node.
    every_member_says(&dirs[0], "mesh_wide", 1);
    // Node 2's gateway never saw the attack; its custodians refuse the partner anyway.
    let r = read(&gw2, spread[21]);
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(common::api::problem(&r), "quarantined");

    // Two administrators' signed approvals release it through the mesh; every custodian
    // lifts it, node 3's included, and node 2's gateway serves the partner again.
    let approve = |admin: &str| {
        approval(
            &out,
            admin,
            &["--id", &id, "--reason", "insurer-x's integration was fixed"],
        )
    };
    let (a1, a2) = (approve("sec.amina"), approve("sec.youssef"));
    let o = ribat(&[
        "mesh",
        "release",
        "--dir",
        dirs[1].to_str().unwrap(),
        "--id",
        &id,
        "--reason",
        "insurer-x's integration was fixed",
        "--approval",
        &a1,
        "--approval",
        &a2,
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    in_force_everywhere(&dirs[0], 0);
    for (i, dir) in dirs.iter().enumerate() {
        let started = Instant::now();
        while !custodian_acts(dir, i + 1, "partner.scraper")
            .iter()
            .any(|(o, _)| o == "released")
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never lifted on node {}",
                i + 1
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Each gateway lifts what it held once it applied the release (node 1's own decision
    // included, by the same signatures): a bounded wait, as every node applies the
    // committed release on its own.
    for (gw, c) in [(&gw2, spread[22]), (&gw1, spread[23])] {
        let started = Instant::now();
        loop {
            let r = read(gw, c);
            if r.status == 200 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the gateway at {gw} still refuses: {}",
                String::from_utf8_lossy(&r.body)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn mesh_up_stopped_by_sigterm_leaves_no_node_running() {
    use std::io::BufRead;
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("mesh");
    let addrs: Vec<String> = (0..3).map(|_| free_addr()).collect();
    let mut up = NodeProcess(
        Command::new(env!("CARGO_BIN_EXE_ribat"))
            .args(["mesh", "up", "--dir", dir.to_str().unwrap(), "--addrs"])
            .arg(addrs.join(","))
            .arg("--gateway")
            .arg(format!("1={}", free_addr()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        None,
    );
    let ready = std::io::BufReader::new(up.0.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("mesh up: 3 nodes"));
    assert!(ready.is_some(), "mesh up never said it was up");
    let pattern = format!("node --dir {}", dir.display());
    let running = || {
        Command::new("pgrep")
            .args(["-f", &pattern])
            .output()
            .unwrap()
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count()
    };
    assert_eq!(running(), 3);
    let term = Command::new("kill")
        .args(["-TERM", &up.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = up.0.wait().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(running(), 0, "nodes left running after mesh up stopped");
}

fn signal(p: &NodeProcess, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &p.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig}");
}

#[test]
fn a_node_paused_through_a_restriction_carries_it_out_before_it_answers_again_and_lifts_it_only_once_released()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let nodes = running_with_fund(d.path(), &dirs, (30, 3, 1, 9));
    let gw2 = gateway_addr(&dirs[1]);
    let deployment = out.join("deployment");
    issue(&deployment, "partner.x", "partner", "insurer-x");
    let ca = dirs[0].join("ca.pem");
    let token = common::api::token(&gw2, &ca, &deployment.join("identity/issued/partner.x"));
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 9));
    // The record's id in the vault, as the gateway names it to the partner.
    let record = {
        let who = deployment.join("identity/issued/partner.x");
        let r = common::api::call(
            &gw2,
            common::api::config(&ca, Some(&who)),
            "GET",
            &format!(
                "/v1/persons/{}?purpose=partner-verification",
                fund.persons[2].cnss
            ),
            Some(&token),
            None,
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["record_id"].as_str().unwrap().to_owned()
    };
    // Custodian 3 asked directly with node 2's gateway certificate and the partner's token:
    // exactly what any gateway forwards for this partner.
    let gateway_cert = dirs[1].join("identity/issued/gateway.embedded");
    let node3 = Direct::every(&dirs, &ca, &gateway_cert).remove(2);
    let calls = std::cell::Cell::new(0);
    let partner = common::api::signer(&deployment.join("identity/issued/partner.x"));
    let ask = || {
        calls.set(calls.get() + 1);
        let signed = ribat_custodian::request::Asked::signed_by(
            &partner,
            "GET",
            &format!(
                "/v1/persons/{}?purpose=partner-verification",
                fund.persons[2].cnss
            ),
            b"",
            &token,
        )
        .unwrap();
        let r = node3.ask_as_signed(
            &format!("direct-{}", calls.get()),
            ("partner.x", "partner"),
            "partner-verification",
            std::slice::from_ref(&record),
            Some(&token),
            Some(signed),
        );
        let v = r.json();
        let why = v["denial"]["denial"]
            .as_str()
            .or(v["error"].as_str())
            .unwrap_or("")
            .to_owned();
        // Whom a quarantine refuses: the partner, or the gateway asking.
        let why = match v["denial"]["identity"].as_str() {
            Some(who) => format!("{why} {who}"),
            None => why,
        };
        (r.status, why)
    };
    let eventually = |want: u16, within: Duration| {
        let started = Instant::now();
        loop {
            let (status, why) = ask();
            if status == want {
                return why;
            }
            assert!(
                started.elapsed() < within,
                "never {want}: last {status} {why}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // These direct requests are audited by no gateway: custodian 3's disagreement detector
    // would rightly stop answering node 2's gateway certificate after its grace. Two
    // administrators set that rule to alert only, through the log, for this test.
    rules_in_force(&out, &dirs[0], 1, |r| {
        r["disagreement"]["mode"] = "shadow".into()
    });
    // Committed is not yet carried out: custodian 3's detectors must run on them before it
    // is asked (and paused), or its first tick after the pause could judge by the old ones.
    carried_out(&dirs[0], 3, "custodian-3", (0, 1));
    eventually(200, Duration::from_secs(15));

    // Paused through the restriction (longer than a node may go without confirming).
    signal(nodes[2].as_ref().unwrap(), "-STOP");
    let o = ribat(&[
        "mesh",
        "restrict",
        "--dir",
        dirs[0].to_str().unwrap(),
        "--identity",
        "partner.x",
        "--reason",
        "seen scraping through node 1",
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let id = String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("restriction "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    std::thread::sleep(Duration::from_millis(ribat_node::mesh::FRESH_FOR_MS + 500));
    signal(nodes[2].as_ref().unwrap(), "-CONT");
    // From its first answer on, custodian 3 never serves the partner: unavailable while it
    // catches up, then quarantined.
    let started = Instant::now();
    let mut unavailable = 0;
    loop {
        let (status, why) = ask();
        assert_ne!(
            status, 200,
            "custodian 3 served a restricted identity after its pause"
        );
        if status == 503 {
            assert!(
                why.contains("has not confirmed the mesh's security state"),
                "{why}"
            );
            unavailable += 1;
        }
        if status == 403 && why == "quarantined partner.x" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{status} {why}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("custodian 3 said it was catching up {unavailable} times before refusing");

    // Paused again through the release: it lifts only once it applied the committed release.
    signal(nodes[2].as_ref().unwrap(), "-STOP");
    let approve = |admin: &str| {
        approval(
            &out,
            admin,
            &["--id", &id, "--reason", "checked with insurer-x"],
        )
    };
    let (a1, a2) = (approve("sec.amina"), approve("sec.youssef"));
    let o = ribat(&[
        "mesh",
        "release",
        "--dir",
        dirs[0].to_str().unwrap(),
        "--id",
        &id,
        "--reason",
        "checked with insurer-x",
        "--approval",
        &a1,
        "--approval",
        &a2,
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    signal(nodes[2].as_ref().unwrap(), "-CONT");
    let started = Instant::now();
    loop {
        let (status, why) = ask();
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never 200 after the release: last {status} {why}; custodian 3's log about partner.x: {:?}",
            custodian_acts(&dirs[2], 3, "partner.x")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let acts = custodian_acts(&dirs[2], 3, "partner.x");
    assert_eq!(
        acts.iter().map(|(o, _)| o.as_str()).collect::<Vec<_>>(),
        ["quarantined", "released"],
        "{acts:?}"
    );
}

/// `ribat mesh init` of `n` nodes with a gateway on each of `gateways`, the custodians'
/// passphrases in owner-only files under `passes`; the node directories.
fn mesh_of(out: &Path, n: usize, gateways: &[u64], passes: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(passes).unwrap();
    std::fs::set_permissions(passes, std::fs::Permissions::from_mode(0o700)).unwrap();
    for i in 1..=n {
        let f = passes.join(format!("custodian-{i}.pass"));
        std::fs::write(&f, format!("custodian {i} of a mesh of {n}")).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let addrs: Vec<String> = (0..n).map(|_| free_addr()).collect();
    let mut c = ribat_cmd(&["mesh", "init", "--out", out.to_str().unwrap()]);
    c.args([
        "--nodes",
        &n.to_string(),
        "--threshold",
        &(n / 2 + 1).to_string(),
    ])
    .args(["--addrs", &addrs.join(",")])
    .args(["--admins", "sec.amina,sec.youssef"])
    .arg("--passphrases")
    .arg(format!("dir:{}", passes.display()));
    for g in gateways {
        c.arg("--gateway").arg(format!("{g}={}", free_addr()));
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    (1..=n).map(|i| out.join(format!("node-{i}"))).collect()
}

/// A node started with its custodian's passphrase read from `passes`.
fn start_from(dir: &Path, passes: &Path) -> NodeProcess {
    let log = dir.join("node.log");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .unwrap();
    NodeProcess(
        ribat_cmd(&["node", "--dir", dir.to_str().unwrap(), "--passphrases"])
            .arg(format!("dir:{}", passes.display()))
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap(),
        Some(log),
    )
}

#[test]
fn a_mesh_of_five_reads_on_with_any_two_nodes_killed_the_leader_among_them() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let passes = d.path().join("passes");
    let dirs = mesh_of(&out, 5, &[1, 2, 3], &passes);
    let mut nodes: Vec<Option<NodeProcess>> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| (i > 0).then(|| start_from(d, &passes)))
        .collect();
    let src = d.path().join("source");
    generate(&src, 30, 3, 1, 13);
    import_through(&dirs[0], &src);
    nodes[0] = Some(start_from(&dirs[0], &passes));
    let (leader, _) = agreed_leader(&dirs[0], &[1, 2, 3, 4, 5]);
    let deployment = out.join("deployment");
    issue(&deployment, "clerk.amal", "clerk", "agency-casa-anfa");
    let clerk = Clerk::new(
        dirs[0].join("ca.pem"),
        deployment.join("identity/issued/clerk.amal"),
    );
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 13));
    // Two nodes killed with SIGKILL: the leader and another that is not the gateway read
    // through; n − t = 2 of 5.
    let gateway = (1..=3u64).find(|g| *g != leader).unwrap();
    let other = (1..=5u64).find(|i| *i != leader && *i != gateway).unwrap();
    let gw = gateway_addr(&dirs[(gateway - 1) as usize]);
    let r = clerk.read(&gw, &fund.persons[0].cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    nodes[(leader - 1) as usize] = None;
    nodes[(other - 1) as usize] = None;
    // Reads go on (a new leader is elected among the three left well within the time a
    // custodian keeps answering without a fresh word from one).
    for p in &fund.persons[1..6] {
        let r = clerk.read(&gw, &p.cnss);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["fields"]["cin"], p.cin.as_str());
    }
    let live: Vec<u64> = (1..=5u64).filter(|i| *i != leader && *i != other).collect();
    agreed_leader(&dirs[(gateway - 1) as usize], &live);
    // A third one down: two custodians answer where three are needed.
    let third = live.iter().copied().find(|i| *i != gateway).unwrap();
    nodes[(third - 1) as usize] = None;
    let r = clerk.read(&gw, &fund.persons[7].cnss);
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(common::api::problem(&r), "custodians-unavailable");
}

#[test]
fn a_certificate_revoked_through_the_log_is_refused_by_every_gateway_and_custodian() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let _nodes = running_with_fund(d.path(), &dirs, (30, 3, 1, 17));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let deployment = out.join("deployment");
    let clerk = |name: &str| {
        let (who, serial) = issue(&deployment, name, "clerk", "agency-casa-anfa");
        assert!(!serial.is_empty(), "no serial printed for {name}");
        (Clerk::new(dirs[0].join("ca.pem"), who), serial)
    };
    let (amal, serial) = clerk("clerk.amal");
    let (omar, _) = clerk("clerk.omar");
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 17));
    let cnss = |i: usize| fund.persons[i].cnss.clone();
    assert_eq!(amal.read(&gw1, &cnss(0)).status, 200);
    // A token minted before the revocation, and the record's id, for the direct call below.
    let token = common::api::token(&gw2, &amal.ca, &amal.who);
    let record = {
        let r = common::api::call(
            &gw2,
            amal.cfg.clone(),
            "GET",
            &format!("/v1/persons/{}?purpose=counter-service", cnss(1)),
            Some(&token),
            None,
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["record_id"].as_str().unwrap().to_owned()
    };

    // One administrator revokes the clerk's certificate through the log (its laptop was
    // stolen); no revocation list is copied anywhere.
    let o = revoke(&out, &dirs[2], "sec.amina", &serial, "laptop stolen");
    assert!(o.status.success(), "{}", common::text(&o));
    // Every gateway refuses the certificate at its next request.
    for gw in [&gw1, &gw2] {
        let started = Instant::now();
        loop {
            let r = common::api::call(
                gw,
                amal.cfg.clone(),
                "GET",
                &format!("/v1/persons/{}?purpose=counter-service", cnss(2)),
                Some(&token),
                None,
            );
            if let Ok(r) = &r
                && r.status != 200
            {
                // The custodians may learn it a moment before this gateway does: their
                // refusal (no plaintext either) comes back through it until it knows.
                if common::api::problem(r) == "certificate-revoked" {
                    break;
                }
                assert!(
                    String::from_utf8_lossy(&r.body).contains("has been revoked"),
                    "{}",
                    String::from_utf8_lossy(&r.body)
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{gw} still serves a revoked certificate"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // A gateway's certificate forwarding the clerk's earlier token to each custodian
    // directly (a compromised gateway): every custodian refuses it.
    let gateway_cert = dirs[1].join("identity/issued/gateway.embedded");
    for (i, c) in Direct::every(&dirs, &amal.ca, &gateway_cert)
        .iter()
        .enumerate()
    {
        let r = c.ask(
            &format!("direct-{i}"),
            ("clerk.amal", "clerk"),
            "counter-service",
            std::slice::from_ref(&record),
            Some(&token),
        );
        refused_with(&r, 401, "revoked", &format!("custodian {}", i + 1));
    }
    // Everyone else goes on.
    assert_eq!(omar.read(&gw2, &cnss(3)).status, 200);
}

#[test]
fn a_certificate_the_ca_issued_acts_only_once_two_administrators_grant_it_through_the_log() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let _nodes = running_with_fund(d.path(), &dirs, (30, 3, 1, 37));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let deployment = out.join("deployment");
    let ca = dirs[0].join("ca.pem");
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 37));
    let cnss = |i: usize| fund.persons[i].cnss.clone();
    // Whoever holds the CA's key makes a clerk's certificate: the CLI says what it still
    // needs, and every gateway refuses it before any token.
    let o = ribat(&[
        "--home",
        deployment.to_str().unwrap(),
        "identity",
        "add",
        "--name",
        "clerk.amal",
        "--role",
        "clerk",
        "--institution",
        "agency-casa-anfa",
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("mesh approve --key KEY --as NAME --grant"),
        "{}",
        common::text(&o)
    );
    let who = deployment.join("identity/issued/clerk.amal");
    let cfg = common::api::config(&ca, Some(&who));
    for gw in [&gw1, &gw2] {
        let r = common::api::call(gw, cfg.clone(), "POST", "/v1/token", None, None).unwrap();
        assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(common::api::problem(&r), "certificate-not-granted");
        assert!(
            r.json()["detail"]
                .as_str()
                .unwrap()
                .contains("two security administrators grant it"),
            "{}",
            r.json()
        );
    }
    // A gateway that mints a token for it anyway (the token key is on every gateway node)
    // and forwards it: every custodian refuses a token bound to a certificate never granted.
    let o = ribat(&[
        "--home",
        deployment.to_str().unwrap(),
        "token",
        "issue",
        "--cert",
        who.join("cert.pem").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let minted = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let (omar_dir, _) = issue(&deployment, "clerk.omar", "clerk", "agency-casa-anfa");
    let omar = Clerk::new(ca.clone(), omar_dir.clone());
    let record = {
        let r = omar.read(&gw2, &cnss(1));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["record_id"].as_str().unwrap().to_owned()
    };
    let gateway_cert = dirs[1].join("identity/issued/gateway.embedded");
    for (i, c) in Direct::every(&dirs, &ca, &gateway_cert).iter().enumerate() {
        let r = c.ask(
            &format!("minted-{i}"),
            ("clerk.amal", "clerk"),
            "counter-service",
            std::slice::from_ref(&record),
            Some(&minted),
        );
        let who = format!("custodian {}", i + 1);
        refused_with(&r, 401, "never granted by two administrators", &who);
    }
    // One administrator is not a grant, nor one administrator twice, nor an approval of
    // another certificate passed off for this one: every node refuses the entry.
    let what = |w: &Path| {
        vec![
            "--grant".to_owned(),
            w.to_str().unwrap().to_owned(),
            "--reason".to_owned(),
            "ticket 9".to_owned(),
        ]
    };
    let amal_what = what(&who);
    let a1 = approval(&out, "sec.amina", &strs(&amal_what));
    let other = approval(&out, "sec.youssef", &strs(&what(&omar_dir)));
    for (approvals, why) in [
        (
            vec![&a1],
            "1 distinct administrator signature(s) where 2 are needed",
        ),
        (
            vec![&a1, &a1],
            "1 distinct administrator signature(s) where 2 are needed",
        ),
        (
            vec![&a1, &other],
            "the signature of `sec.youssef` does not verify",
        ),
    ] {
        let mut args = vec![
            "mesh",
            "grant",
            "--dir",
            dirs[2].to_str().unwrap(),
            "--cert",
            who.to_str().unwrap(),
            "--reason",
            "ticket 9",
        ];
        for a in &approvals {
            args.extend(["--approval", a.as_str()]);
        }
        let o = ribat(&args);
        assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
        assert!(common::text(&o).contains(why), "{}", common::text(&o));
    }
    assert!(!granted_in(&dirs[0], "clerk.amal"));
    // Two administrators: every gateway answers it.
    grant(&out, &[&who]);
    let amal = Clerk::new(ca.clone(), who.clone());
    for (gw, i) in [(&gw1, 2), (&gw2, 3)] {
        let r = amal.read(gw, &cnss(i));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    // The register as every node holds it: who granted what; the ceremony's gateways.
    let o = ribat(&[
        "mesh",
        "identities",
        "--json",
        "--dir",
        dirs[1].to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let entry = |name: &str| listed.iter().find(|i| i["name"] == name).cloned();
    let amal_entry = entry("clerk.amal").unwrap();
    assert_eq!(
        amal_entry["granted_by"],
        serde_json::json!(["sec.amina", "sec.youssef"])
    );
    let serial = amal_entry["serial"].as_str().unwrap().to_owned();
    for g in ["gateway.node-1", "gateway.node-2"] {
        assert_eq!(
            entry(g).unwrap()["granted_by"],
            serde_json::json!(["ceremony"])
        );
    }
    // Revoked, it is refused again, and no grant lets it back in.
    let o = revoke(&out, &dirs[0], "sec.youssef", &serial, "left the agency");
    assert!(o.status.success(), "{}", common::text(&o));
    let a1 = approval(&out, "sec.amina", &strs(&amal_what));
    let a2 = approval(&out, "sec.youssef", &strs(&amal_what));
    let o = ribat(&[
        "mesh",
        "grant",
        "--dir",
        dirs[0].to_str().unwrap(),
        "--cert",
        who.to_str().unwrap(),
        "--reason",
        "ticket 9",
        "--approval",
        &a1,
        "--approval",
        &a2,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("was revoked, for good"),
        "{}",
        common::text(&o)
    );
    let o = ribat(&["mesh", "identities", "--dir", dirs[2].to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.starts_with("clerk.amal") && l.contains(" revoked ")),
        "{}",
        common::text(&o)
    );
    poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let r = common::api::call(&gw1, amal.cfg.clone(), "POST", "/v1/token", None, None);
        match r {
            Ok(r) if common::api::problem(&r) == "certificate-revoked" => Ok(()),
            _ => Err("still served".to_owned()),
        }
    });
    assert_eq!(omar.read(&gw1, &cnss(5)).status, 200);
}

#[test]
fn the_monthly_intake_goes_into_a_running_mesh_through_a_gateway_and_a_node_killed_after_acknowledging_imports_it_when_back()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let mut nodes = running_with_fund(d.path(), &dirs, (20, 2, 1, 51));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let deployment = out.join("deployment");
    let ca = dirs[0].join("ca.pem");
    let (sender, _) = issue(&deployment, "intake.cnss", "intake", "cnss-intake");
    let (clerk_dir, _) = issue(&deployment, "clerk.amal", "clerk", "agency-casa-anfa");
    let clerk = Clerk::new(ca.clone(), clerk_dir);
    // The month's files, sent to node 1's gateway while all three nodes run: employers,
    // persons, then the e-BDS files, each once the one before is imported.
    let src = d.path().join("month");
    generate(&src, 60, 4, 2, 52);
    let o = ribat(&[
        "import",
        "--gateway",
        &gw1,
        "--identity",
        sender.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        said.contains("employers.csv: 4 records stored, 0 already stored, 0 line(s) refused"),
        "{said}"
    );
    assert!(
        said.contains("persons.csv: 60 records stored, 0 already stored, 0 line(s) refused"),
        "{said}"
    );
    let declared: u64 = said
        .lines()
        .filter(|l| l.contains("/ebds/DS_"))
        .map(|l| {
            assert!(l.contains(", 0 line(s) refused"), "{l}");
            l.split(": ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(60, 4, 2, 52));
    assert_eq!(declared, fund.declarations.len() as u64, "{said}");
    // Imported, the files are gone from node 1's disk: no person's number or CIN stays
    // there in plaintext (I4).
    let values: Vec<&str> = fund
        .persons
        .iter()
        .flat_map(|p| [p.cnss.as_str(), p.cin.as_str()])
        .collect();
    let intake = dirs[0].join("intake");
    assert_eq!(files_holding(&intake, &values), Vec::<PathBuf>::new());
    // Read through the other node's gateway, its custodians on every node.
    let p = fund
        .persons
        .iter()
        .find(|p| !p.honey && !p.sensitive)
        .unwrap();
    let r = clerk.read(&gw2, &p.cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["fields"]["surname"], p.surname.as_str());
    // Sent again: nothing is stored twice.
    let o = ribat(&[
        "import",
        "--gateway",
        &gw2,
        "--identity",
        sender.to_str().unwrap(),
        src.join("persons.csv").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("persons.csv: 0 records stored, 60 already stored"),
        "{}",
        common::text(&o)
    );
    // Only the intake role sends, and only files the importer knows.
    let clerk_token = common::api::token(&gw1, &ca, &clerk.who);
    let sender_token = common::api::token(&gw1, &ca, &sender);
    let sender_cfg = common::api::config(&ca, Some(&sender));
    for (cfg, token, path, status, problem) in [
        (
            clerk.cfg.clone(),
            &clerk_token,
            "/v1/intake?purpose=register-intake&file=persons.csv",
            403,
            "purpose-not-allowed",
        ),
        (
            sender_cfg.clone(),
            &sender_token,
            "/v1/intake?purpose=register-intake&file=notes.txt",
            400,
            "bad-file-name",
        ),
        (
            sender_cfg.clone(),
            &sender_token,
            "/v1/intake?file=persons.csv",
            400,
            "purpose-required",
        ),
    ] {
        let r = common::api::call(
            &gw1,
            cfg,
            "POST",
            path,
            Some(token),
            Some(serde_json::json!("cnss,cin")),
        )
        .unwrap();
        assert_eq!(
            r.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(common::api::problem(&r), problem, "{path}");
    }
    // Node 1 killed after it acknowledged a file and began importing it (the state a crash
    // leaves): started again, it imports that file before anything else.
    nodes[0] = None;
    let late = d.path().join("late");
    generate(&late, 30, 2, 1, 53);
    let id = "00000000000a0001";
    let kept = dirs[0].join("intake").join(id);
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::copy(late.join("persons.csv"), kept.join("persons.csv")).unwrap();
    std::fs::write(
        dirs[0].join("intake").join(format!("{id}.json")),
        serde_json::to_vec(&serde_json::json!({
            "id": id, "file": "persons.csv", "bytes": 1, "sha256": "00", "by": "intake.cnss",
            "state": "importing", "done": 12, "total": 31, "stored": 0, "already": 0,
            "rejected": 0, "rejects": []
        }))
        .unwrap(),
    )
    .unwrap();
    nodes[0] = Some(start(&dirs[0]));
    agreed_leader(&dirs[0], &[1, 2, 3]);
    let state = poll_until(Duration::from_secs(60), Duration::from_millis(300), || {
        // Its gateway listens only once the custodians answer again: asked until it does.
        let token =
            match common::api::call(&gw1, sender_cfg.clone(), "POST", "/v1/token", None, None) {
                Ok(r) if r.status == 200 => r.json()["token"].as_str().unwrap().to_owned(),
                other => {
                    return Err(format!(
                        "node-1's gateway gives no token yet: {:?}",
                        other.map(|r| r.status)
                    ));
                }
            };
        let r = common::api::call(
            &gw1,
            sender_cfg.clone(),
            "GET",
            &format!("/v1/intake/{id}"),
            Some(&token),
            None,
        );
        match r {
            Ok(r) if r.status == 200 && r.json()["state"] == "done" => Ok(r.json()),
            other => Err(format!(
                "intake {id} never finished after the restart: {:?}",
                other.map(|r| r.json())
            )),
        }
    });
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 2, 1, 53));
    assert_eq!(
        state["stored"].as_u64().unwrap(),
        fund.persons.len() as u64,
        "{state}"
    );
    let values: Vec<&str> = fund
        .persons
        .iter()
        .flat_map(|p| [p.cnss.as_str(), p.cin.as_str()])
        .collect();
    assert_eq!(files_holding(&intake, &values), Vec::<PathBuf>::new());
    let p = fund
        .persons
        .iter()
        .find(|p| !p.honey && !p.sensitive)
        .unwrap();
    let r = clerk.read(&gw2, &p.cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn in_a_mesh_an_export_is_read_only_within_what_two_administrators_allowed_through_the_log() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1]);
    let _nodes = running_with_fund(d.path(), &dirs, (60, 4, 1, 61));
    let gw = gateway_addr(&dirs[0]);
    let deployment = out.join("deployment");
    let ca = dirs[0].join("ca.pem");
    let mut who = std::collections::BTreeMap::new();
    for (name, role) in [
        ("sec.karim", "security"),
        ("sec.hind", "security"),
        ("partner.delta", "partner"),
        ("clerk.amal", "clerk"),
    ] {
        who.insert(name, issue(&deployment, name, role, "x").0);
    }
    let call = |name: &str, method: &str, path: &str, body: Option<serde_json::Value>| {
        let token = common::api::token(&gw, &ca, &who[name]);
        common::api::call(
            &gw,
            common::api::config(&ca, Some(&who[name])),
            method,
            path,
            Some(&token),
            body,
        )
        .unwrap()
    };
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(60, 4, 1, 61));
    let ordinary: Vec<&ribat_sim::Person> = fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .collect();
    let numbers: Vec<String> = ordinary.iter().take(20).map(|p| p.cnss.clone()).collect();
    // Filed and approved at node 1's export desk by two security officers, as in one node.
    let r = call(
        "sec.karim",
        "POST",
        "/v1/exports",
        Some(
            serde_json::json!({"recipient": "partner.delta", "purpose": "partner-export", "cnss": numbers}),
        ),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_owned();
    for officer in ["sec.karim", "sec.hind"] {
        let r = call(
            officer,
            "POST",
            &format!("/v1/exports/{id}/approve"),
            Some(serde_json::json!({})),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    // The desk's approvals are the node's own word: without the log's allowance every
    // custodian refuses the bulk read, and nothing is written.
    let run = || {
        call(
            "sec.karim",
            "POST",
            &format!("/v1/exports/{id}/run"),
            Some(serde_json::json!({})),
        )
    };
    let r = run();
    assert_ne!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        String::from_utf8_lossy(&r.body).contains("custodians refused"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // Two administrators allow it through the log (one is not enough).
    let until = (time::OffsetDateTime::now_utc() + time::Duration::hours(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let terms = [
        "--export",
        id.as_str(),
        "--recipient",
        "partner.delta",
        "--purpose",
        "partner-export",
        "--persons",
        "20",
        "--until",
        until.as_str(),
    ];
    let (a1, a2) = (
        approval(&out, "sec.amina", &terms),
        approval(&out, "sec.youssef", &terms),
    );
    let allow = |approvals: &[&str]| {
        let mut args = vec!["mesh", "allow-export", "--dir", dirs[1].to_str().unwrap()];
        args.extend_from_slice(&terms);
        for a in approvals {
            args.extend(["--approval", a]);
        }
        ribat(&args)
    };
    let o = allow(&[&a1]);
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("where 2 are needed"),
        "{}",
        common::text(&o)
    );
    let o = allow(&[&a1, &a2]);
    assert!(o.status.success(), "{}", common::text(&o));
    let ran = poll_until(Duration::from_secs(15), Duration::from_millis(200), || {
        let r = run();
        match r.status {
            200 => Ok(r.json()),
            _ => Err(String::from_utf8_lossy(&r.body).into_owned()),
        }
    });
    assert!(
        ran["rows"].as_u64().unwrap() > 20,
        "20 persons and canaries: {ran}"
    );
    let r = call(
        "partner.delta",
        "GET",
        &format!("/v1/exports/{id}/file"),
        None,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Holding node 1's gateway certificate, somebody asks each custodian for 21 persons
    // under the export's name (a custodian the run did not ask has counted fewer than 20,
    // so the ask is past the allowance however many it answered): refused. Another
    // recipient, never allowed, needs an end user's token like any read.
    let other = call(
        "clerk.amal",
        "GET",
        &format!("/v1/persons/{}?purpose=counter-service", ordinary[30].cnss),
        None,
    );
    assert_eq!(
        other.status,
        200,
        "{}",
        String::from_utf8_lossy(&other.body)
    );
    let record = other.json()["record_id"].as_str().unwrap().to_owned();
    let gateway_cert = dirs[0].join("identity/issued/gateway.embedded");
    let persons: Vec<String> = (0..21)
        .map(|n| match n {
            0 => record.clone(),
            _ => format!("{record}-{n}"),
        })
        .collect();
    for (i, c) in Direct::every(&dirs, &ca, &gateway_cert).iter().enumerate() {
        let who = format!("custodian {}", i + 1);
        let r = c.ask(
            &format!("bulk-{i}"),
            ("export/partner.delta", "export"),
            "partner-export",
            &persons,
            None,
        );
        refused_with(&r, 403, "may read 20 distinct records", &who);
        let r = c.ask(
            &format!("bulk-other-{i}"),
            ("export/partner.other", "export"),
            "partner-export",
            &persons,
            None,
        );
        refused_with(&r, 401, "no end-user token", &who);
    }
}

#[test]
fn a_third_partys_access_lapses_at_its_review_date_with_a_finding_before_and_one_administrator_recertifies_it()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1]);
    let ocsf = d.path().join("node-1.ocsf.jsonl");
    let _nodes = running_with_fund_and(
        d.path(),
        &dirs,
        (30, 3, 1, 71),
        &["--ocsf", ocsf.to_str().unwrap()],
    );
    let gw = gateway_addr(&dirs[0]);
    let deployment = out.join("deployment");
    let (who, _) = issue_only(&deployment, "partner.insurer-z", "partner", "insurer-z");
    // Without a review date, a partner's certificate is not granted.
    let what = |review: Option<&str>| {
        let mut w = vec![
            "--grant".to_owned(),
            who.to_str().unwrap().to_owned(),
            "--reason".to_owned(),
            "contract 2026-114".to_owned(),
        ];
        if let Some(r) = review {
            w.extend(["--review-by".to_owned(), r.to_owned()]);
        }
        w
    };
    let o = approve_with("sec.amina", &out, "sec.amina", &strs(&what(None)));
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("--review-by"),
        "{}",
        common::text(&o)
    );
    // Granted until a review 12 s from now: the finding comes at once (within a week).
    let review = in_seconds(12);
    let signed = what(Some(&review));
    let (a1, a2) = (
        approval(&out, "sec.amina", &strs(&signed)),
        approval(&out, "sec.youssef", &strs(&signed)),
    );
    let o = ribat(&[
        "mesh",
        "grant",
        "--dir",
        dirs[0].to_str().unwrap(),
        "--cert",
        who.to_str().unwrap(),
        "--reason",
        "contract 2026-114",
        "--review-by",
        &review,
        "--approval",
        &a1,
        "--approval",
        &a2,
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let partner = Clerk::new(dirs[0].join("ca.pem"), who.clone());
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 71));
    let p = fund
        .persons
        .iter()
        .find(|p| !p.honey && !p.sensitive)
        .unwrap();
    let path = format!("/v1/persons/{}?purpose=partner-verification", p.cnss);
    let read = || {
        common::api::call(&gw, partner.cfg.clone(), "POST", "/v1/token", None, None)
            .map(|r| {
                let problem = match r.status {
                    200 => String::new(),
                    _ => common::api::problem(&r),
                };
                (r.status, problem)
            })
            .unwrap()
    };
    poll_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || match read() {
            (200, _) => Ok(()),
            other => Err(format!("never granted: {other:?}")),
        },
    );
    let r = common::api::call(
        &gw,
        partner.cfg.clone(),
        "GET",
        &path,
        Some(&common::api::token(&gw, &partner.ca, &partner.who)),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let o = ribat(&["mesh", "identities", "--dir", dirs[0].to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.starts_with("partner.insurer-z") && l.contains(" due ")),
        "{}",
        common::text(&o)
    );
    let log = dirs[0].join("node.log");
    poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        match text.contains("finding: review due — the access of partner.insurer-z") {
            true => Ok(()),
            false => Err("no finding in node-1's log".to_owned()),
        }
    });
    // And in its OCSF stream, for the SIEM.
    let finding = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let text = std::fs::read_to_string(&ocsf).unwrap_or_default();
        match text.lines().find(|l| l.contains("review-due")) {
            Some(l) => Ok(serde_json::from_str::<serde_json::Value>(l).unwrap()),
            None => Err(format!("no review-due in {text}")),
        }
    });
    assert_eq!(
        finding["actor"]["user"]["name"], "partner.insurer-z",
        "{finding}"
    );
    // Past its date: refused by the gateway, before any token.
    poll_until(
        Duration::from_secs(20),
        Duration::from_millis(250),
        || match read() {
            (403, p) if p == "certificate-review-lapsed" => Ok(()),
            other => Err(format!("not lapsed: {other:?}")),
        },
    );
    // One administrator re-certifies it after the review: it reads again.
    let serial = {
        let o = ribat(&[
            "mesh",
            "identities",
            "--json",
            "--dir",
            dirs[0].to_str().unwrap(),
        ]);
        let l: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
        l.iter().find(|i| i["name"] == "partner.insurer-z").unwrap()["serial"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let next = in_days(90);
    let o = ribat(&[
        "mesh",
        "recertify",
        "--dir",
        dirs[1].to_str().unwrap(),
        "--key",
        out.join("admins/sec.youssef.key").to_str().unwrap(),
        "--as",
        "sec.youssef",
        "--serial",
        &serial,
        "--review-by",
        &next,
        "--reason",
        "contract renewed",
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    poll_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || match read() {
            (200, _) => Ok(()),
            other => Err(format!("still lapsed after recertify: {other:?}")),
        },
    );
}

/// `ribat --home HOME simulate --scenario S --mesh 3 EXTRA…`.
fn simulate_mesh(home: &Path, scenario: &str, extra: &[&str]) -> std::process::Output {
    let home = home.to_str().unwrap();
    let mut args = vec![
        "--home",
        home,
        "simulate",
        "--scenario",
        scenario,
        "--mesh",
        "3",
    ];
    args.extend_from_slice(extra);
    ribat(&args)
}

#[test]
fn the_2025_attack_simulated_against_three_node_processes_is_refused_everywhere_and_honest_readers_go_on()
 {
    let d = tempfile::tempdir().unwrap();
    let o = simulate_mesh(d.path(), "cnss-bulk", &["--persons", "2000", "--json"]);
    assert!(o.status.success(), "{}", common::text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["nodes"], 3, "{r}");
    let exposed = r["records_exposed"].as_u64().unwrap();
    assert!(exposed > 0 && exposed <= 25, "{r}");
    assert_eq!(r["legit_failures"], 0, "{r}");
    assert!(r["legit_requests"].as_u64().unwrap() > 0, "{r}");
    // Every node's gateway and custodian refused the attacker (how fast is the bench's
    // and the release build's to say: `simulate --mesh` in the README).
    let nodes = r["per_node"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{r}");
    for n in nodes {
        for part in ["gateway_s", "custodian_s"] {
            assert!(n[part].as_f64().is_some(), "{part} of {}: {r}", n["node"]);
        }
    }
    // Its node processes are gone with it.
    let left = Command::new("pgrep")
        .args(["-f", &format!("node --dir {}", d.path().display())])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn the_honey_enumeration_and_snooping_attacks_simulated_against_three_node_processes_are_held_by_every_node()
 {
    for scenario in ["honey", "enumeration", "insider-snooping"] {
        let d = tempfile::tempdir().unwrap();
        let o = simulate_mesh(d.path(), scenario, &["--persons", "2000", "--json"]);
        assert!(o.status.success(), "{scenario}: {}", common::text(&o));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["scenario"], scenario, "{r}");
        // The embedded run's bounds: a honey record comes among the first 25 reads, a walk
        // is seen at its seventh lookup, a snoop at its first public figure.
        let most = if scenario == "honey" { 25 } else { 10 };
        assert!(r["records_exposed"].as_u64().unwrap() <= most, "{r}");
        assert_eq!(r["legit_failures"], 0, "{r}");
        assert!(r["legit_requests"].as_u64().unwrap() > 0, "{r}");
        // Quarantines are carried out by every node's gateway and custodian; a step-up (the
        // snoop) by every node's gateway, though only node 1's detectors saw it.
        let parts: &[&str] = if scenario == "insider-snooping" {
            &["gateway_s"]
        } else {
            &["gateway_s", "custodian_s"]
        };
        for n in r["per_node"].as_array().unwrap() {
            for part in parts {
                assert!(
                    n[part].as_f64().is_some(),
                    "{scenario} {part} of {}: {r}",
                    n["node"]
                );
            }
        }
        assert_eq!(
            r["hostile_refused_everywhere"], r["hostile_identities"],
            "{r}"
        );
    }
}

#[test]
fn scenarios_that_span_days_are_refused_with_mesh_and_say_where_they_run() {
    let d = tempfile::tempdir().unwrap();
    for (scenario, says) in [
        ("legit-week", "spans days"),
        ("low-and-slow", "spans days"),
        ("partner-review", "spans days"),
        ("compromised-gateway", "without --mesh"),
    ] {
        let o = simulate_mesh(d.path(), scenario, &[]);
        assert!(!o.status.success(), "{scenario}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(says), "{scenario}: {err}");
    }
    // Nothing was started or written for them.
    assert!(!d.path().join("simulate-mesh").exists());
}

/// A node's custodian asked directly, as a gateway holding the certificate in `cert` would
/// forward a request: the way a stolen gateway certificate is used.
struct Direct {
    addr: String,
    cfg: common::api::Client,
}

impl Direct {
    /// Every node's custodian in `dirs`, asked with `cert` (trusting `ca`).
    fn every(dirs: &[PathBuf], ca: &Path, cert: &Path) -> Vec<Self> {
        dirs.iter()
            .enumerate()
            .map(|(i, dir)| {
                let mesh: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(dir.join("mesh.json")).unwrap())
                        .unwrap();
                Self {
                    addr: mesh["peers"][i]["addr"].as_str().unwrap().to_owned(),
                    cfg: common::api::config(ca, Some(cert)),
                }
            })
            .collect()
    }

    /// A partial decryption of `records`' identity class for `(identity, role)`.
    fn ask(
        &self,
        request_id: &str,
        who: (&str, &str),
        purpose: &str,
        records: &[String],
        token: Option<&str>,
    ) -> ribat_net::client::Response {
        self.ask_as_signed(request_id, who, purpose, records, token, None)
    }

    /// Same, with the request the user signed (as a gateway forwards a user's read).
    fn ask_as_signed(
        &self,
        request_id: &str,
        (identity, role): (&str, &str),
        purpose: &str,
        records: &[String],
        token: Option<&str>,
        asked: Option<ribat_custodian::request::Asked>,
    ) -> ribat_net::client::Response {
        let mut body = serde_json::json!({
            "request_id": request_id,
            "requester": {"identity": identity, "role": role},
            "purpose": purpose,
            "table": "persons",
            "class": "identity",
            "record_ids": records,
        });
        if let Some(t) = token {
            body["token"] = t.into();
        }
        if let Some(a) = asked {
            body["asked"] = serde_json::to_value(a).unwrap();
        }
        common::api::call(
            &self.addr,
            self.cfg.clone(),
            "POST",
            "/v1/partial",
            None,
            Some(body),
        )
        .unwrap()
    }
}

/// The custodian refused with `status`, its reason naming `words`.
fn refused_with(r: &ribat_net::client::Response, status: u16, words: &str, who: &str) {
    assert_eq!(r.status, status, "{who}: {}", r.json());
    assert!(
        r.json()["denial"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains(words),
        "{who}: {}",
        r.json()
    );
}

/// The test cluster's connection string (from `.ci/run`), or `None` when the caller chose
/// to skip PostgreSQL (`RIBAT_SKIP_PG=1`).
fn pg_conninfo() -> Option<String> {
    match std::env::var("RIBAT_TEST_PG") {
        Ok(c) => Some(c),
        Err(_) if std::env::var("RIBAT_SKIP_PG").is_ok_and(|v| v == "1") => None,
        Err(_) => panic!(
            "RIBAT_TEST_PG is not set: run the tests through .ci/run, or set RIBAT_SKIP_PG=1"
        ),
    }
}

fn pg_tool(tool: &str) -> String {
    std::env::var("RIBAT_PG_BIN").map_or(tool.to_owned(), |b| format!("{b}/{tool}"))
}

#[test]
fn i4_a_mesh_on_postgresql_gives_each_node_its_own_role_and_its_dump_holds_nothing_readable() {
    let Some(conninfo) = pg_conninfo() else {
        return;
    };
    let schema = format!("mesh_{}", std::process::id());
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let addrs: Vec<String> = (0..3).map(|_| free_addr()).collect();
    let store = format!("postgres:{conninfo}");
    let o = ribat_cmd(&["--store", &store, "--store-schema", &schema, "mesh", "init"])
        .args(["--out", out.to_str().unwrap(), "--addrs", &addrs.join(",")])
        .args(["--admins", "sec.amina,sec.youssef", "--passphrases", "env"])
        .arg("--gateway")
        .arg(format!("1={}", free_addr()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let dirs: Vec<PathBuf> = (1..=3).map(|i| out.join(format!("node-{i}"))).collect();
    // Each node reaches the database as a role of its own.
    for (i, dir) in dirs.iter().enumerate() {
        let mesh: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("mesh.json")).unwrap()).unwrap();
        let role = format!("{schema}_node_{}", i + 1);
        assert!(
            mesh["store"]
                .as_str()
                .unwrap()
                .ends_with(&format!("user={role}")),
            "{mesh}"
        );
        assert_eq!(mesh["store_schema"], schema.as_str());
    }
    let _nodes = running_with_fund(d.path(), &dirs, (60, 4, 2, 21));
    let gw = gateway_addr(&dirs[0]);
    let deployment = out.join("deployment");
    issue(&deployment, "clerk.amal", "clerk", "agency-casa-anfa");
    let clerk = Clerk::new(
        dirs[0].join("ca.pem"),
        deployment.join("identity/issued/clerk.amal"),
    );
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(60, 4, 2, 21));
    let p = fund.persons.iter().find(|p| !p.honey).unwrap();
    let r = clerk.read(&gw, &p.cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["fields"]["cin"], p.cin.as_str());

    // A node's role reads and writes rows, and may not drop, truncate or alter the schema.
    let as_node = |sql: &str| {
        std::process::Command::new(pg_tool("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(format!("{conninfo} user={schema}_node_2"))
            .args(["-c", sql])
            .output()
            .unwrap()
    };
    let o = as_node(&format!("SELECT count(*) FROM {schema}.sealed"));
    assert!(o.status.success(), "{}", common::text(&o));
    for (sql, says) in [
        (format!("DROP TABLE {schema}.sealed"), "must be owner"),
        (format!("TRUNCATE {schema}.records"), "permission denied"),
        (
            format!("ALTER TABLE {schema}.records ADD COLUMN x int"),
            "must be owner",
        ),
        (
            format!("CREATE TABLE {schema}.mine (x int)"),
            "permission denied",
        ),
    ] {
        let o = as_node(&sql);
        assert!(!o.status.success(), "{sql} was allowed");
        assert!(
            common::text(&o).contains(says),
            "{sql}: {}",
            common::text(&o)
        );
    }

    // I4: the whole schema, as its owner dumps it, holds no personal value in clear.
    let dump = std::process::Command::new(pg_tool("pg_dump"))
        .args(["-d", &conninfo, "-n", &schema, "--no-owner"])
        .output()
        .unwrap();
    assert!(dump.status.success(), "{}", common::text(&dump));
    let needles = common::needles(&fund);
    let ac = aho_corasick::AhoCorasick::new(&needles).unwrap();
    let decoded = common::decode_bytea(&dump.stdout);
    if let Some(m) = ac.find(&decoded) {
        panic!(
            "pg_dump holds `{}` in clear",
            needles[m.pattern().as_usize()]
        );
    }
    assert!(
        ac.find(format!("\n{}\n", p.cin).as_bytes()).is_some(),
        "the search can fail"
    );
}

/// Waits until each member in `ids` (asked from `dir`) holds exactly `want` as Raft voters
/// and has applied as far as the leader; the last status.
fn voters_everywhere(dir: &Path, ids: &[u64], want: &[u64]) -> Vec<serde_json::Value> {
    let start = Instant::now();
    loop {
        let s = status(dir);
        let of = |id: u64| s.iter().find(|m| m["status"]["id"].as_u64() == Some(id));
        let applied: Vec<Option<u64>> = ids
            .iter()
            .map(|id| of(*id).and_then(|m| m["status"]["last_applied_index"].as_u64()))
            .collect();
        let agreed = ids.iter().all(|id| {
            of(*id).is_some_and(|m| {
                let v: Vec<u64> = m["status"]["voters"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_u64()).collect())
                    .unwrap_or_default();
                v == want
            })
        }) && applied.windows(2).all(|w| w[0] == w[1] && w[0].is_some());
        if agreed {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "members {ids:?} never held voters {want:?}: {s:#?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn a_node_joins_and_leaves_only_by_two_administrators_and_one_never_added_takes_no_part() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[]);
    let mut nodes: Vec<Option<NodeProcess>> = dirs.iter().map(|d| Some(start(d))).collect();
    agreed_leader(&dirs[0], &[1, 2, 3]);
    let prepare = || {
        let addr = free_addr();
        let o = ribat(&[
            "mesh",
            "prepare-node",
            "--out",
            out.to_str().unwrap(),
            "--addr",
            &addr,
        ]);
        assert!(o.status.success(), "{}", common::text(&o));
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let dir = text
            .lines()
            .find_map(|l| l.strip_prefix("node directory: "))
            .unwrap()
            .to_owned();
        PathBuf::from(dir)
    };
    let n4 = prepare();
    let n5 = prepare();
    assert_eq!(n4, out.join("node-4"));
    assert_eq!(n5, out.join("node-5"));
    let _p4 = start(&n4);
    let _p5 = start(&n5);
    let approve = |who: &str, what: &[&str]| approval(&out, who, what);
    let change = |verb: &str, via: &Path, node: &str, approvals: &[&str]| {
        let mut args = vec!["mesh", verb, "--dir", via.to_str().unwrap(), "--node", node];
        for a in approvals {
            args.extend(["--approval", a]);
        }
        ribat(&args)
    };
    let add4 = ["--add-node", n4.to_str().unwrap()];
    // One administrator is not enough: every node refuses the entry.
    let amina = approve("sec.amina", &add4);
    let o = change("add-node", &dirs[0], n4.to_str().unwrap(), &[&amina]);
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("1 distinct administrator signature(s) where 2 are needed"),
        "{}",
        common::text(&o)
    );
    // Nor is one administrator signing twice, as both.
    let forged = amina.replace("sec.amina", "sec.youssef");
    let o = change(
        "add-node",
        &dirs[0],
        n4.to_str().unwrap(),
        &[&amina, &forged],
    );
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("the signature of `sec.youssef` does not verify"),
        "{}",
        common::text(&o)
    );
    // Until it is added, node-4's requests are refused by every member.
    let s = status(&n4);
    for m in &s[..3] {
        let e = m["error"].as_str().unwrap_or_default();
        assert!(e.contains("not a member of this mesh"), "{m}");
    }
    let youssef = approve("sec.youssef", &add4);
    let o = change(
        "add-node",
        &dirs[0],
        n4.to_str().unwrap(),
        &[&amina, &youssef],
    );
    assert!(o.status.success(), "{}", common::text(&o));
    // The leader takes node-4 on and makes it a voter; every member agrees.
    voters_everywhere(&dirs[0], &[1, 2, 3, 4], &[1, 2, 3, 4]);
    // node-5, prepared from the same CA with a valid node certificate but never added,
    // takes no part: every member refuses it, and no membership names it.
    let s = status(&n5);
    for m in s.iter().filter(|m| m["name"] != "node-5") {
        let e = m["error"].as_str().unwrap_or_default();
        assert!(e.contains("not a member of this mesh"), "{m}");
    }
    let o = ribat(&["mesh", "status", "--dir", n5.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", common::text(&o));
    // node-2 leaves by two administrators: its signatures count no more, every member
    // refuses it, and the leader takes it out of Raft.
    let remove2 = ["--remove-node", "node-2"];
    let o = change(
        "remove-node",
        &dirs[0],
        "node-2",
        &[
            &approve("sec.amina", &remove2),
            &approve("sec.youssef", &remove2),
        ],
    );
    assert!(o.status.success(), "{}", common::text(&o));
    let s = voters_everywhere(&dirs[0], &[1, 3, 4], &[1, 3, 4]);
    let two = s.iter().find(|m| m["name"] == "node-2").unwrap();
    assert_eq!(two["removed"], true, "{two}");
    let s = status(&dirs[1]);
    let e = s[0]["error"].as_str().unwrap_or_default();
    assert!(e.contains("`node-2` is not a member"), "{s:?}");
    // node-4 votes: with node-2 gone and node-3 killed, node-4 and node-1 are a majority of
    // the voters {1, 3, 4}, and they still elect and commit.
    nodes[1] = None;
    nodes[2] = None;
    agreed_leader(&dirs[0], &[1, 4]);
    let o = ribat(&[
        "mesh",
        "restrict",
        "--dir",
        dirs[0].to_str().unwrap(),
        "--identity",
        "clerk.amal",
        "--reason",
        "committed by a founding member and the one two administrators added",
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
}

/// The serial of `name`'s certificate, from the ceremony's identity register.
fn serial_of(deployment: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(deployment.join("identity/register.json")).unwrap();
    let register: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    register
        .iter()
        .find(|e| e["name"] == name)
        .and_then(|e| e["serial"].as_str())
        .unwrap()
        .to_owned()
}

#[test]
fn a_revoked_node_is_refused_by_every_member_its_custodian_stops_answering_and_two_administrators_remove_it()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[]);
    let _nodes: Vec<NodeProcess> = dirs.iter().map(|d| start(d)).collect();
    agreed_leader(&dirs[0], &[1, 2, 3]);
    let serial = serial_of(&out.join("deployment"), "node-3");
    let o = revoke(
        &out,
        &dirs[0],
        "sec.amina",
        &serial,
        "node-3's host is owned",
    );
    assert!(o.status.success(), "{}", common::text(&o));
    // node-3 can no longer confirm the security state with anyone: its custodian stops
    // answering (it says so in its status), and its own requests are refused.
    let start_wait = Instant::now();
    loop {
        let s = status(&dirs[0]);
        if s[2]["status"]["waiting"].is_string() {
            break;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(15),
            "node-3's custodian still answers: {:?}",
            s[2]
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let s = status(&dirs[2]);
    for m in &s[..2] {
        let e = m["error"].as_str().unwrap_or_default();
        assert!(e.contains("revoked"), "{m}");
    }
    // The two others still form the mesh and, by two administrators, take node-3 out.
    let approve = |who: &str| approval(&out, who, &["--remove-node", "node-3"]);
    let (a, b) = (approve("sec.amina"), approve("sec.youssef"));
    let o = ribat(&[
        "mesh",
        "remove-node",
        "--dir",
        dirs[0].to_str().unwrap(),
        "--node",
        "node-3",
        "--approval",
        &a,
        "--approval",
        &b,
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    voters_everywhere(&dirs[0], &[1, 2], &[1, 2]);
}

#[test]
fn a_policy_travels_through_the_log_by_two_administrators_and_every_gateway_and_custodian_decides_by_it()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let _nodes = running_with_fund(d.path(), &dirs, (30, 3, 1, 19));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let clerk = Clerk::granted(&out, &dirs, "clerk.amal", "agency-casa-anfa");
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 19));
    let cnss = |i: usize| fund.persons[i].cnss.clone();
    assert_eq!(clerk.read(&gw1, &cnss(0)).status, 200);
    assert_eq!(clerk.read(&gw2, &cnss(1)).status, 200);
    // Version 1: the counters no longer read at all (the clerk role is gone).
    let mut policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dirs[0].join("policy.json")).unwrap())
            .unwrap();
    policy["roles"].as_object_mut().unwrap().remove("clerk");
    let file = d.path().join("policy-v1.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
    let approve = |who: &str, f: &Path| {
        approval(
            &out,
            who,
            &["--policy", f.to_str().unwrap(), "--version", "1"],
        )
    };
    let set = |f: &Path, approvals: &[&str]| {
        let mut args = vec![
            "mesh",
            "set-policy",
            "--dir",
            dirs[2].to_str().unwrap(),
            "--file",
            f.to_str().unwrap(),
            "--version",
            "1",
        ];
        for a in approvals {
            args.extend(["--approval", a]);
        }
        ribat(&args)
    };
    let amina = approve("sec.amina", &file);
    let o = set(&file, &[&amina]);
    assert!(
        !o.status.success(),
        "one administrator put a policy in force"
    );
    assert!(
        common::text(&o).contains("where 2 are needed"),
        "{}",
        common::text(&o)
    );
    // Approvals of one file do not carry another (its text is what they signed).
    let youssef = approve("sec.youssef", &file);
    let other = d.path().join("policy-other.json");
    let mut changed = policy.clone();
    changed["roles"].as_object_mut().unwrap().remove("partner");
    std::fs::write(&other, serde_json::to_vec_pretty(&changed).unwrap()).unwrap();
    let o = set(&other, &[&amina, &youssef]);
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("does not verify"),
        "{}",
        common::text(&o)
    );
    assert_eq!(clerk.read(&gw1, &cnss(2)).status, 200);
    // A file no node could read is refused before anything is signed.
    let broken = d.path().join("policy-broken.json");
    std::fs::write(&broken, b"{\"roles\": 3}").unwrap();
    let o = approve_with(
        "sec.amina",
        &out,
        "sec.amina",
        &["--policy", broken.to_str().unwrap(), "--version", "1"],
    );
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("policy-broken.json"),
        "{}",
        common::text(&o)
    );
    let o = set(&file, &[&amina, &youssef]);
    assert!(o.status.success(), "{}", common::text(&o));
    // Every gateway refuses the clerk by the new policy, and every custodian decides by it
    // (and keeps it in its directory for its next start).
    let started = Instant::now();
    loop {
        let (a, b) = (clerk.read(&gw1, &cnss(3)), clerk.read(&gw2, &cnss(4)));
        if a.status == 403 && b.status == 403 {
            assert_eq!(common::api::problem(&a), "role-unknown");
            assert_eq!(common::api::problem(&b), "role-unknown");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the clerk still reads: {} {}",
            a.status,
            b.status
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (i, dir) in dirs.iter().enumerate() {
        let kept = dir.join(format!("custodians/custodian-{}/policy.json", i + 1));
        let started = Instant::now();
        loop {
            let p: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&kept).unwrap()).unwrap();
            if p["roles"].get("clerk").is_none() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "custodian {} still decides by the old policy",
                i + 1
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for m in status(&dirs[0]) {
        assert_eq!(m["status"]["policy"][0], 1, "{m}");
    }
    for i in 1..=3 {
        carried_out(&dirs[0], i, &format!("custodian-{i}"), (1, 0));
    }
    for i in 1..=2 {
        carried_out(&dirs[0], i, &format!("gateway.node-{i}"), (1, 0));
    }
    // The same version again is stale.
    let o = set(&file, &[&amina, &youssef]);
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("version 1 is not above 1, the one in force"),
        "{}",
        common::text(&o)
    );
}

/// Waits until node `id` (asked from `dir`) says its `part` carried out `want` (policy
/// version, rules version): committed is not yet carried out.
fn carried_out(dir: &Path, id: usize, part: &str, want: (u64, u64)) {
    let started = Instant::now();
    loop {
        let s = status(dir);
        let got = &s[id - 1]["status"]["carried"][part];
        if got[0] == want.0 && got[1] == want.1 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "node-{id}'s {part} carried out {got}, not {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Two administrators put `dir`'s rules, edited by `edit`, in force as `version` through
/// the log; returns once every member detects by them.
fn rules_in_force(out: &Path, dir: &Path, version: u64, edit: impl Fn(&mut serde_json::Value)) {
    let mut rules: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("rules.json")).unwrap()).unwrap();
    edit(&mut rules);
    let file = out.join(format!("rules-v{version}.json"));
    std::fs::write(&file, serde_json::to_vec_pretty(&rules).unwrap()).unwrap();
    let v = version.to_string();
    let approvals: Vec<String> = ["sec.amina", "sec.youssef"]
        .iter()
        .map(|who| {
            approval(
                out,
                who,
                &["--rules", file.to_str().unwrap(), "--version", &v],
            )
        })
        .collect();
    let o = ribat(&[
        "mesh",
        "set-rules",
        "--dir",
        dir.to_str().unwrap(),
        "--file",
        file.to_str().unwrap(),
        "--version",
        &v,
        "--approval",
        &approvals[0],
        "--approval",
        &approvals[1],
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let started = Instant::now();
    while status(dir)
        .iter()
        .any(|m| m["status"]["rules"][0] != version)
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "rules not in force"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A partner's reads of `persons` through `gateway` until one is refused; the statuses.
fn partner_reads(gateway: &str, partner: &Clerk, persons: &[String]) -> Vec<u16> {
    let token = common::api::token(gateway, &partner.ca, &partner.who);
    let mut statuses = Vec::new();
    for cnss in persons {
        let r = common::api::call(
            gateway,
            partner.cfg.clone(),
            "GET",
            &format!("/v1/persons/{cnss}?purpose=partner-verification"),
            Some(&token),
            None,
        )
        .unwrap();
        statuses.push(r.status);
        if r.status != 200 {
            assert_eq!(
                common::api::problem(&r),
                "quarantined",
                "{}",
                String::from_utf8_lossy(&r.body)
            );
            break;
        }
    }
    statuses
}

#[test]
fn detection_rules_travel_through_the_log_by_two_administrators_and_every_gateway_detects_by_them()
{
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let _nodes = running_with_fund(d.path(), &dirs, (40, 3, 1, 23));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let deployment = out.join("deployment");
    let partner = |name: &str| {
        let (who, _) = issue(&deployment, name, "partner", "insurer-atlas");
        Clerk::new(dirs[0].join("ca.pem"), who)
    };
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(40, 3, 1, 23));
    let ordered: Vec<String> = fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .take(12)
        .map(|p| p.cnss.clone())
        .collect();
    assert_eq!(ordered.len(), 12);
    // From both ends in turn: no walk through the number space (another rule's business).
    let persons: Vec<String> = (0..6)
        .flat_map(|i| [ordered[i].clone(), ordered[11 - i].clone()])
        .collect();
    // By the ceremony's rules, a partner reading 9 persons within 10 s is quarantined.
    let reads = partner_reads(&gw1, &partner("partner.before"), &persons);
    assert_eq!(reads.last(), Some(&403), "{reads:?}");
    let decided = ribat(&["--home", dirs[0].to_str().unwrap(), "decisions", "list"]);
    assert!(
        common::text(&decided).contains("velocity"),
        "{}",
        common::text(&decided)
    );
    // Version 1: the velocity rule off (say, while a partner's yearly reconciliation runs).
    let mut rules: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dirs[0].join("rules.json")).unwrap())
            .unwrap();
    rules["velocity"]["mode"] = "off".into();
    let file = d.path().join("rules-v1.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&rules).unwrap()).unwrap();
    let approve = |who: &str, what: &str| {
        approval(&out, who, &[what, file.to_str().unwrap(), "--version", "1"])
    };
    let set = |approvals: &[&str]| {
        let mut args = vec![
            "mesh",
            "set-rules",
            "--dir",
            dirs[1].to_str().unwrap(),
            "--file",
            file.to_str().unwrap(),
            "--version",
            "1",
        ];
        for a in approvals {
            args.extend(["--approval", a]);
        }
        ribat(&args)
    };
    // Rules are not a policy: nobody is asked to sign them as one.
    let o = approve_with(
        "sec.amina",
        &out,
        "sec.amina",
        &["--policy", file.to_str().unwrap(), "--version", "1"],
    );
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("rules-v1.json"),
        "{}",
        common::text(&o)
    );
    let (ra, rb) = (
        approve("sec.amina", "--rules"),
        approve("sec.youssef", "--rules"),
    );
    let o = set(&[&ra]);
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("where 2 are needed"),
        "{}",
        common::text(&o)
    );
    let o = set(&[&ra, &rb]);
    assert!(o.status.success(), "{}", common::text(&o));
    let started = Instant::now();
    while status(&dirs[0])
        .iter()
        .any(|m| m["status"]["rules"][0] != 1)
    {
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every gateway now detects by them (once it says it carried them out): a partner reads
    // the twelve on either gateway.
    for i in 1..=2 {
        carried_out(&dirs[0], i, &format!("gateway.node-{i}"), (0, 1));
    }
    for (gw, name, dir) in [
        (&gw1, "partner.after-1", &dirs[0]),
        (&gw2, "partner.after-2", &dirs[1]),
    ] {
        let reads = partner_reads(gw, &partner(name), &persons);
        let decided = ribat(&["--home", dir.to_str().unwrap(), "decisions", "list"]);
        assert_eq!(
            reads,
            vec![200; 12],
            "{name} on {gw}; its node decided:\n{}",
            common::text(&decided)
        );
    }
}

/// A partner's read through `gateway` with a fresh token.
fn partner_read(gateway: &str, partner: &Clerk, cnss: &str) -> ribat_net::client::Response {
    let token = partner.token(gateway);
    common::api::call(
        gateway,
        partner.cfg.clone(),
        "GET",
        &format!("/v1/persons/{cnss}?purpose=partner-verification"),
        Some(&token),
        None,
    )
    .unwrap()
}

/// The id in the mesh of the decision node `dir`'s own detectors took by `action`.
fn mesh_id_of(dir: &Path, node: &str, action: &str) -> String {
    let o = ribat(&[
        "--home",
        dir.to_str().unwrap(),
        "decisions",
        "list",
        "--json",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let row = rows
        .iter()
        .find(|r| {
            let a = &r["decision"]["action"];
            a == action || a.get(action).is_some() // `{"throttle": {"per_minute": 2}}`
        })
        .unwrap_or_else(|| panic!("no {action} decision on {node}: {rows:?}"));
    format!("{node}/{}", row["decision"]["id"].as_str().unwrap())
}

#[test]
fn a_throttle_and_a_roles_essential_services_fallback_decided_on_one_node_hold_at_every_gateway_until_two_administrators_release_them()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let _nodes = running_with_fund(d.path(), &dirs, (40, 3, 1, 23));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let deployment = out.join("deployment");
    let names = [
        "partner.a",
        "partner.b",
        "partner.c",
        "partner.d",
        "partner.e",
    ];
    let issued: Vec<PathBuf> = names
        .iter()
        .chain(&["partner.t"])
        .map(|n| issue_only(&deployment, n, "partner", "insurer-atlas").0)
        .collect();
    grant(
        &out,
        &issued.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
    );
    let partners: Vec<Clerk> = issued
        .iter()
        .map(|w| Clerk::new(dirs[0].join("ca.pem"), w.clone()))
        .collect();
    let clerk = Clerk::granted(&out, &dirs, "clerk.counter", "agence-fes");
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(40, 3, 1, 23));
    let ordered: Vec<String> = fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .take(12)
        .map(|p| p.cnss.clone())
        .collect();
    // From both ends in turn: no walk through the number space (another rule's business).
    let persons: Vec<String> = (0..6)
        .flat_map(|i| [ordered[i].clone(), ordered[11 - i].clone()])
        .collect();

    // Rules version 1: the partners' role surges past 6 distinct persons in ten minutes.
    rules_in_force(&out, &dirs[0], 1, |r| {
        r["role-surge"]["limits"]["partner"] = 6.into();
    });
    // Four partners read two persons each on node 1's gateway, none above its own
    // history: the role stands out, no identity does, and node 1 falls back to essential
    // services from the seventh person on.
    let mut statuses = Vec::new();
    'reads: for (i, p) in partners[..4].iter().enumerate() {
        for cnss in &persons[2 * i..2 * i + 2] {
            let r = partner_read(&gw1, p, cnss);
            statuses.push(r.status);
            if r.status != 200 {
                assert_eq!(common::api::problem(&r), "essential-only", "{statuses:?}");
                break 'reads;
            }
        }
    }
    assert!(
        statuses.len() >= 7 && statuses[..6] == [200; 6],
        "{statuses:?}"
    );
    let fallback = mesh_id_of(&dirs[0], "node-1", "essential");
    in_force_everywhere(&dirs[0], 1);
    // Node 2's gateway saw none of it: a fifth partner is refused there all the same,
    // naming node 1's decision; a clerk at a counter (an essential role) is served.
    let r = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let r = partner_read(&gw2, &partners[4], &persons[8]);
        match r.status {
            503 => Ok(r),
            s => Err(format!("node 2's gateway answered {s}, not 503")),
        }
    });
    assert_eq!(common::api::problem(&r), "essential-only");
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains(&fallback), "{detail}");
    let r = clerk.read(&gw2, &persons[9]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // Two administrators release it through the mesh: both gateways serve partners again
    // (node 1's own decision lifted by the same signatures).
    let why = "a partner's yearly reconciliation, announced";
    let (a1, a2) = (
        approval(&out, "sec.amina", &["--id", &fallback, "--reason", why]),
        approval(&out, "sec.youssef", &["--id", &fallback, "--reason", why]),
    );
    let o = ribat(&[
        "mesh",
        "release",
        "--dir",
        dirs[1].to_str().unwrap(),
        "--id",
        &fallback,
        "--reason",
        why,
        "--approval",
        &a1,
        "--approval",
        &a2,
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    in_force_everywhere(&dirs[0], 0);
    let served_again = |gw: &str, p: &Clerk| {
        poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
            let r = partner_read(gw, p, &persons[0]);
            match r.status {
                200 => Ok(()),
                s => Err(format!(
                    "{gw} still answers {s}: {}",
                    String::from_utf8_lossy(&r.body)
                )),
            }
        })
    };
    served_again(&gw2, &partners[4]);

    // Rules version 2: the role's limit back (at 6 node 1 would still see the role
    // surging, and now single out whichever partner reads there next), and a partner
    // reading too fast is throttled to two requests a minute rather than quarantined.
    rules_in_force(&out, &dirs[0], 2, |r| {
        r["role-surge"]["limits"]["partner"] = 300.into();
        r["velocity"]["action"] = serde_json::json!({"throttle": {"per_minute": 2}});
    });
    served_again(&gw1, &partners[1]);
    let t = &partners[5];
    let mut statuses = Vec::new();
    for cnss in &persons {
        let r = partner_read(&gw1, t, cnss);
        statuses.push(r.status);
        if r.status != 200 {
            assert_eq!(common::api::problem(&r), "throttled", "{statuses:?}");
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let throttle = mesh_id_of(&dirs[0], "node-1", "throttle");
    // Node 2's gateway throttles the partner by node 1's decision, never having seen it
    // read more than one person: at most two reads a minute there too.
    let r = poll_until(Duration::from_secs(10), Duration::from_millis(300), || {
        let r = partner_read(&gw2, t, &persons[0]);
        match r.status {
            429 => Ok(r),
            s => Err(format!("node 2's gateway answered {s}, not 429")),
        }
    });
    assert_eq!(common::api::problem(&r), "throttled");
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains(&throttle), "{detail}");
    let r = partner_read(&gw2, t, &persons[1]);
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    let r = partner_read(&gw2, &partners[4], &persons[1]);
    assert_eq!(r.status, 200, "only the throttled partner is slowed down");
}

#[test]
fn a_custodian_counts_as_audited_only_the_entries_it_cosigned_and_a_gateways_word_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1]);
    let _nodes = running_with_fund(d.path(), &dirs, (30, 3, 1, 29));
    let gw = gateway_addr(&dirs[0]);
    let clerk = Clerk::granted(&out, &dirs, "clerk.amal", "agency-casa-anfa");
    let who = clerk.who.clone();
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 29));
    let cnss = |i: usize| fund.persons[i].cnss.clone();
    let first = clerk.read(&gw, &cnss(0));
    assert_eq!(first.status, 200);
    let record = first.json()["record_id"].as_str().unwrap().to_owned();
    // Past the custodians' grace (5 s) and a checkpoint (every 2 s): had the entries the
    // witnesses cosigned not counted as audited, every custodian would now refuse node 1's
    // gateway as one whose answers nobody audited.
    std::thread::sleep(Duration::from_secs(8));
    for i in 1..4 {
        let r = clerk.read(&gw, &cnss(i));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    // Somebody holding node 1's gateway certificate goes to custodian 2 directly.
    let custodian2 = Direct::every(
        &dirs,
        &dirs[0].join("ca.pem"),
        &dirs[0].join("identity/issued/gateway.embedded"),
    )
    .remove(1);
    // Its word that something was audited counts for nothing.
    let r = common::api::call(
        &custodian2.addr,
        custodian2.cfg.clone(),
        "POST",
        "/v1/audited",
        None,
        Some(serde_json::json!({"request_ids": ["stolen-1"]})),
    )
    .unwrap();
    assert_eq!(r.status, 409, "{:?}", r.json());
    assert_eq!(common::api::problem(&r), "audited-by-log");
    // A partial decryption it asks for in the clerk's name, with a read the clerk signed
    // within the minute (it passed through that gateway), is answered — the custodian
    // cannot know yet — but never appears in a log the custodian cosigns, so once the grace
    // has passed the custodian stops answering that certificate.
    let token = common::api::token(&gw, &clerk.ca, &who);
    let clerk_key = common::api::signer(&who);
    let ask = |n: usize| {
        let signed = ribat_custodian::request::Asked::signed_by(
            &clerk_key,
            "GET",
            &format!("/v1/persons/{}?purpose=counter-service", cnss(0)),
            b"",
            &token,
        )
        .unwrap();
        custodian2.ask_as_signed(
            &format!("stolen-{n}"),
            ("clerk.amal", "clerk"),
            "counter-service",
            std::slice::from_ref(&record),
            Some(&token),
            Some(signed),
        )
    };
    assert_eq!(ask(1).status, 200);
    let started = Instant::now();
    let mut n = 2;
    loop {
        let r = ask(n);
        if r.status == 403 {
            let why = r.json().to_string();
            assert!(why.contains("gateway.node-1"), "{why}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "custodian 2 still answers the stolen certificate: {}",
            r.json()
        );
        n += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    // The two other custodians still answer node 1's gateway: honest reads go on.
    let r = clerk.read(&gw, &cnss(5));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// What a compromised gateway holds: its certificate, a clerk's fresh token and the read the
/// clerk just signed. With them each custodian answers that one read (the same answer it
/// gave the first time) and nothing else: not another person's record, not without the
/// clerk's signature, not a signature moved to another person's number, not a read the
/// gateway signs itself in the clerk's name, not a signature from more than a minute ago.
/// Five such refusals within a minute and every custodian holds that gateway; reads go on
/// through another node's gateway.
#[test]
fn a_compromised_gateway_with_a_clerks_token_and_signed_read_opens_no_other_record_and_is_cut_off()
{
    use ribat_custodian::request::Asked;
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let _nodes = running_with_fund(d.path(), &dirs, (30, 3, 1, 57));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let clerk = Clerk::granted(&out, &dirs, "clerk.salma", "agency-rabat");
    let who = clerk.who.clone();
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 57));
    let path = |i: usize| {
        format!(
            "/v1/persons/{}?purpose=counter-service",
            fund.persons[i].cnss
        )
    };
    let record = |i: usize| {
        let r = clerk.read(&gw1, &fund.persons[i].cnss);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["record_id"].as_str().unwrap().to_owned()
    };
    let (a, b) = (record(0), record(1));
    // A mesh's gateway takes no read its sender did not sign.
    let token = common::api::token(&gw1, &clerk.ca, &who);
    let r = common::api::call(
        &gw1,
        clerk.cfg.unsigned(),
        "GET",
        &path(2),
        Some(&token),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.json());
    assert_eq!(common::api::problem(&r), "bad-signature");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("must be signed by its sender"),
        "{}",
        r.json()
    );
    let gateway_cert = dirs[0].join("identity/issued/gateway.embedded");
    let clerk_key = common::api::signer(&who);
    let gateway_key = common::api::signer(&gateway_cert);
    let signed_a = || Asked::signed_by(&clerk_key, "GET", &path(0), b"", &token).unwrap();
    let clerk_id = ("clerk.salma", "clerk");
    for (i, c) in Direct::every(&dirs, &clerk.ca, &gateway_cert)
        .iter()
        .enumerate()
    {
        let who = format!("custodian {}", i + 1);
        let ask = |n: &str, records: &[String], asked: Option<Asked>| {
            c.ask_as_signed(
                &format!("{n}-{i}"),
                clerk_id,
                "counter-service",
                records,
                Some(&token),
                asked,
            )
        };
        // The read the clerk signed, for its record: answered.
        let r = ask("replayed", std::slice::from_ref(&a), Some(signed_a()));
        assert_eq!(r.status, 200, "{who}: {}", r.json());
        // Another record under it, alone or beside the one signed for.
        let r = ask("other", std::slice::from_ref(&b), Some(signed_a()));
        refused_with(&r, 401, "not named by the user's signed request", &who);
        let r = ask("both", &[a.clone(), b.clone()], Some(signed_a()));
        refused_with(&r, 401, "1 of the 2 records asked are not named", &who);
        // The token without a signed read.
        let r = ask("unsigned", std::slice::from_ref(&b), None);
        refused_with(&r, 401, "none came with the read", &who);
        // The clerk's signature moved to the other person's number.
        let moved = Asked {
            target: path(1),
            ..signed_a()
        };
        let r = ask("moved", std::slice::from_ref(&b), Some(moved));
        refused_with(&r, 401, "does not verify", &who);
        // A read the gateway signs itself in the clerk's name (its own key, its own
        // certificate, which chains to the CA as well).
        let own = Asked::signed_by(&gateway_key, "GET", &path(1), b"", &token).unwrap();
        let r = ask("invented", std::slice::from_ref(&b), Some(own));
        refused_with(
            &r,
            401,
            "not the one the token of `clerk.salma` is bound to",
            &who,
        );
        // The clerk's read as signed more than a minute ago: its window is over (a read
        // replayed later carries its old time, which its signature covers).
        let old = {
            use ribat_identity::signed::{Covered, digest};
            let then = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                - 90;
            let signature = clerk_key
                .sign(
                    &Covered {
                        method: "GET",
                        target: &path(0),
                        body_digest: &digest(b""),
                        token: Some(&token),
                    },
                    then,
                )
                .unwrap();
            Asked {
                signature: signature.header(),
                ..signed_a()
            }
        };
        let r = ask("late", std::slice::from_ref(&a), Some(old));
        refused_with(&r, 401, "a signature is good for 60 s", &who);
    }
    // Each custodian saw node 1's gateway fail six times within a minute: from the next
    // request on it holds that certificate, even for the read the clerk signed. (At once,
    // not after a wait: the answers nobody audited would cut the gateway off too, later.)
    for (i, c) in Direct::every(&dirs, &clerk.ca, &gateway_cert)
        .iter()
        .enumerate()
    {
        let r = c.ask_as_signed(
            &format!("after-{i}"),
            clerk_id,
            "counter-service",
            std::slice::from_ref(&a),
            Some(&token),
            Some(signed_a()),
        );
        assert_eq!(
            r.status,
            403,
            "custodian {} still answers: {}",
            i + 1,
            r.json()
        );
        assert!(
            r.json().to_string().contains("gateway.node-1"),
            "{}",
            r.json()
        );
    }
    // The clerk reads on through node 2's gateway.
    let r = clerk.read(&gw2, &fund.persons[3].cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn the_leader_killed_in_the_middle_of_an_attack_the_quarantine_still_reaches_every_live_node() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2, 3]);
    let mut nodes = running_with_fund(d.path(), &dirs, (200, 8, 1, 43));
    let (leader, _) = agreed_leader(&dirs[0], &[1, 2, 3]);
    // The attacked gateway is on a node that does not lead; the third node neither leads
    // nor sees the attack.
    let attacked = (1..=3u64).find(|i| *i != leader).unwrap();
    let third = (1..=3u64).find(|i| *i != leader && *i != attacked).unwrap();
    let dir = |i: u64| dirs[(i - 1) as usize].clone();
    let gw = gateway_addr(&dir(attacked));
    let deployment = out.join("deployment");
    let (who, _) = issue(&deployment, "partner.scraper", "partner", "insurer-x");
    let ca = dirs[0].join("ca.pem");
    let cfg = common::api::config(&ca, Some(&who));
    let read = |gw: &str, cnss: &str| {
        let token = common::api::token(gw, &ca, &who);
        common::api::call(
            gw,
            cfg.clone(),
            "GET",
            &format!("/v1/persons/{cnss}?purpose=partner-verification"),
            Some(&token),
            None,
        )
        .unwrap()
    };
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(200, 8, 1, 43));
    let spread: Vec<&str> = fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .step_by(8)
        .map(|p| p.cnss.as_str())
        .collect();
    let mut exposed = 0;
    let mut refused = None;
    for (k, c) in spread[..20].iter().enumerate() {
        if k == 3 {
            // SIGKILL to the leader, three reads into the attack.
            nodes[(leader - 1) as usize] = None;
        }
        let r = read(&gw, c);
        if r.status == 200 {
            assert!(refused.is_none(), "served after a refusal");
            exposed += 1;
        } else {
            refused.get_or_insert_with(|| common::api::problem(&r));
        }
    }
    assert_eq!(refused.as_deref(), Some("quarantined"));
    assert!(exposed <= 9, "{exposed} records exposed");
    // The two live nodes elect a new leader, commit the attacked gateway's restriction,
    // and the third node's custodian carries it out from the log (its reason names the
    // mesh's restriction, not only the attacked gateway's direct word).
    let started = Instant::now();
    loop {
        let acts = custodian_acts(&dir(third), third as usize, "partner.scraper");
        if acts.iter().any(|(o, why)| {
            o == "quarantined" && why.starts_with(&format!("mesh restriction node-{attacked}/"))
        }) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "node-{third} never carried out the mesh's restriction: {acts:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // On both live nodes it is in force and mesh-wide (the attacked node decided, the
    // third endorsed: t = 2), and the third node's gateway refuses the partner too.
    let started = Instant::now();
    loop {
        let s = status(&dir(attacked));
        let live: Vec<&serde_json::Value> = [attacked, third]
            .iter()
            .map(|i| &s[(*i - 1) as usize])
            .collect();
        if live
            .iter()
            .all(|m| m["status"]["in_force"] == 1 && m["status"]["mesh_wide"] == 1)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not in force mesh-wide on both live nodes: {live:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = read(&gateway_addr(&dir(third)), spread[21]);
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(common::api::problem(&r), "quarantined");
}

/// Network namespaces this test made: three nodes' and a switch joining them (and the
/// test's own namespace) on one bridge; deleted when dropped.
struct Lan {
    prefix: String,
    nodes: usize,
}

/// The nodes' network: `10.213.77.0/24`, node N at `.N`, the test at `.100`.
const LAN: &str = "10.213.77";

fn ip(args: &[&str]) -> std::process::Output {
    Command::new("ip").args(args).output().unwrap()
}

fn must(args: &[&str]) {
    let o = ip(args);
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        common::text(&o)
    );
}

impl Lan {
    /// The namespaces, or `None` (said on stderr) where this process may not make them.
    fn new(nodes: usize) -> Option<Self> {
        let prefix = format!("rb{}", std::process::id() % 100_000);
        let probe = ip(&["netns", "add", &format!("{prefix}sw")]);
        if !probe.status.success() {
            eprintln!(
                "SKIPPED: cannot create network namespaces here ({}); .ci/run runs as root",
                common::text(&probe).trim()
            );
            return None;
        }
        let lan = Self { prefix, nodes };
        let sw = lan.ns("sw");
        must(&["-n", &sw, "link", "add", "br0", "type", "bridge"]);
        must(&["-n", &sw, "link", "set", "br0", "up"]);
        for i in 1..=nodes {
            let ns = lan.ns(&format!("n{i}"));
            must(&["netns", "add", &ns]);
            let (inner, outer) = (format!("{}v{i}", lan.prefix), format!("{}b{i}", lan.prefix));
            must(&[
                "link", "add", &inner, "netns", &ns, "type", "veth", "peer", "name", &outer,
                "netns", &sw,
            ]);
            must(&["-n", &sw, "link", "set", &outer, "master", "br0", "up"]);
            must(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{LAN}.{i}/24"),
                "dev",
                &inner,
            ]);
            must(&["-n", &ns, "link", "set", &inner, "up"]);
            must(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        // The test itself reaches the gateway from its own namespace.
        let (host, outer) = (format!("{}h", lan.prefix), format!("{}bh", lan.prefix));
        must(&[
            "link", "add", &host, "type", "veth", "peer", "name", &outer, "netns", &sw,
        ]);
        must(&["-n", &sw, "link", "set", &outer, "master", "br0", "up"]);
        must(&["addr", "add", &format!("{LAN}.100/24"), "dev", &host]);
        must(&["link", "set", &host, "up"]);
        Some(lan)
    }

    fn ns(&self, what: &str) -> String {
        format!("{}{what}", self.prefix)
    }

    /// Cuts node `i` off from every other (its port on the switch down), or joins it back.
    fn cut(&self, i: usize, off: bool) {
        let port = format!("{}b{i}", self.prefix);
        must(&[
            "-n",
            &self.ns("sw"),
            "link",
            "set",
            &port,
            if off { "down" } else { "up" },
        ]);
    }

    /// `ribat ARGS` run inside node `i`'s namespace.
    fn ribat(&self, i: usize, args: &[&str]) -> std::process::Output {
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.ns(&format!("n{i}")),
            env!("CARGO_BIN_EXE_ribat"),
        ])
        .args(args)
        .env_remove("RIBAT_HOME");
        for (k, v) in PASSES {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// Node `i`'s process in its namespace (killed when dropped).
    fn start(&self, i: usize, dir: &Path) -> NodeProcess {
        let log = dir.join("node.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut c = Command::new("ip");
        c.args([
            "netns",
            "exec",
            &self.ns(&format!("n{i}")),
            env!("CARGO_BIN_EXE_ribat"),
        ])
        .args(["node", "--passphrases", "env", "--dir"])
        .arg(dir)
        .env_remove("RIBAT_HOME")
        .stdout(out.try_clone().unwrap())
        .stderr(out);
        for (k, v) in PASSES {
            c.env(k, v);
        }
        NodeProcess(c.spawn().unwrap(), Some(log))
    }

    /// `mesh status --json` as node `i` sees it.
    fn status(&self, i: usize, dir: &Path) -> Vec<serde_json::Value> {
        let o = self.ribat(
            i,
            &["mesh", "status", "--json", "--dir", dir.to_str().unwrap()],
        );
        serde_json::from_slice(&o.stdout).unwrap_or_default()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &format!("{}h", self.prefix)]);
        for i in 1..=self.nodes {
            let _ = ip(&["netns", "del", &self.ns(&format!("n{i}"))]);
        }
        let _ = ip(&["netns", "del", &self.ns("sw")]);
    }
}

/// A read of `cnss` by the holder of `who` through the gateway at `addr` (a LAN address,
/// which its certificate names).
fn read_over_lan(addr: &str, ca: &Path, who: &Path, cnss: &str) -> ribat_net::client::Response {
    let host = addr.rsplit_once(':').unwrap().0.to_owned();
    let cfg = common::api::config(ca, Some(who));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = ribat_net::client::Connection::open(cfg.tls.clone(), addr, &host, false)
            .await
            .unwrap()
            .signing(cfg.signer.clone().unwrap());
        let t = c.send("POST", "/v1/token", None, None).await.unwrap();
        assert_eq!(t.status, 200, "{}", String::from_utf8_lossy(&t.body));
        let token = t.json()["token"].as_str().unwrap().to_owned();
        c.send(
            "GET",
            &format!("/v1/persons/{cnss}?purpose=counter-service"),
            Some(&token),
            None,
        )
        .await
        .unwrap()
    })
}

#[test]
fn a_node_cut_off_by_a_partition_stops_answering_while_the_majority_reads_and_decides_and_catches_up_when_joined_back()
 {
    let Some(lan) = Lan::new(3) else { return };
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let addrs: Vec<String> = (1..=3).map(|i| format!("{LAN}.{i}:7601")).collect();
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
        "--gateway",
        &format!("1={LAN}.1:7701"),
        "--admins",
        "sec.amina,sec.youssef",
        "--passphrases",
        "env",
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let dirs: Vec<PathBuf> = (1..=3).map(|i| out.join(format!("node-{i}"))).collect();
    let mut nodes: Vec<Option<NodeProcess>> = vec![
        None,
        Some(lan.start(2, &dirs[1])),
        Some(lan.start(3, &dirs[2])),
    ];
    let src = d.path().join("source");
    generate(&src, 30, 3, 1, 31);
    import_through(&dirs[0], &src);
    nodes[0] = Some(lan.start(1, &dirs[0]));
    let agreed = |seen_by: usize, live: &[usize]| {
        let started = Instant::now();
        loop {
            let s = lan.status(seen_by, &dirs[seen_by - 1]);
            let ok = live.iter().all(|i| {
                s.get(i - 1).is_some_and(|m| {
                    m["status"]["waiting"].is_null() && m["status"]["leader"].is_u64()
                })
            });
            if ok {
                return s;
            }
            assert!(
                started.elapsed() < Duration::from_secs(40),
                "{live:?} never all served, as node-{seen_by} sees it: {s:?}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    agreed(1, &[1, 2, 3]);
    let (who, _) = issue(
        &out.join("deployment"),
        "clerk.amal",
        "clerk",
        "agency-casa-anfa",
    );
    let ca = dirs[0].join("ca.pem");
    let gw = format!("{LAN}.1:7701");
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 31));
    let cnss = |i: usize| fund.persons[i].cnss.clone();
    let started = Instant::now();
    while read_over_lan(&gw, &ca, &who, &cnss(0)).status != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the gateway never served"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // Node 3 cut off from the others (and from the test).
    lan.cut(3, true);
    // The majority goes on: reads through node 1's gateway (custodians 1 and 2), and a
    // restriction committed by the two of them.
    let r = read_over_lan(&gw, &ca, &who, &cnss(1));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let o = lan.ribat(
        1,
        &[
            "mesh",
            "restrict",
            "--dir",
            dirs[0].to_str().unwrap(),
            "--identity",
            "partner.during-the-cut",
            "--reason",
            "decided while node 3 was cut off",
        ],
    );
    assert!(o.status.success(), "{}", common::text(&o));
    // Node 3, alone, cannot confirm the security state: its custodian stops answering and
    // says why (as node 3 itself reports it).
    let started = Instant::now();
    loop {
        let s = lan.status(3, &dirs[2]);
        let me = s.get(2).map(|m| m["status"].clone()).unwrap_or_default();
        if me["waiting"].is_string() {
            assert_eq!(
                me["in_force"], 0,
                "node 3 cannot know of the restriction yet"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "node 3's custodian still answers, cut off: {me}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let s = lan.status(3, &dirs[2]);
    assert!(
        s[0]["error"].is_string() && s[1]["error"].is_string(),
        "{s:?}"
    );

    // Joined back: node 3 applies what it missed before its custodian answers again.
    lan.cut(3, false);
    let s = agreed(1, &[1, 2, 3]);
    for m in &s {
        assert_eq!(m["status"]["in_force"], 1, "{m}");
    }
    let r = read_over_lan(&gw, &ca, &who, &cnss(2));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

/// How the members other than `node` that answer judge its attestation, each as `verdict`
/// or `verdict/why` (e.g. `isolated/unknown-release`).
fn judged(dir: &Path, node: &str) -> Vec<String> {
    status(dir)
        .iter()
        .filter(|m| m["name"] != node)
        .filter_map(|m| {
            let v = &m["status"]["attestation"][node];
            let verdict = v["verdict"].as_str()?;
            Some(match v["why"]["why"].as_str() {
                Some(why) => format!("{verdict}/{why}"),
                None => verdict.to_owned(),
            })
        })
        .collect()
}

/// Waits until both other members of a mesh of three judge `node` as `want`.
fn judged_by_peers(dir: &Path, node: &str, want: &str, within: Duration) {
    poll_until(within, Duration::from_millis(200), || {
        let j = judged(dir, node);
        match j.len() == 2 && j.iter().all(|v| v == want) {
            true => Ok(()),
            false => Err(format!(
                "{node} judged {j:?} by its peers, awaited `{want}` by both"
            )),
        }
    });
}

/// The partial decryptions custodian `index` in `dir` served for `identity`.
fn served_to(dir: &Path, index: usize, identity: &str) -> usize {
    ribat_custodian::served_log::ServedLog::read(&dir.join(format!("custodians/custodian-{index}")))
        .unwrap()
        .into_iter()
        .filter(|e| e.identity == identity && e.outcome == "served")
        .count()
}

/// How many times the gateway of the node in `dir` started listening (its log).
fn gateway_starts(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("node.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("gateway listening on https://"))
        .count()
}

/// This ribat with one constant changed: the first letter of `ribat demo`'s help text,
/// in place — the same code and size, another executable, as a rebuild with one changed
/// constant would be (a real rebuild in a test would take minutes).
fn another_build(at: &Path) -> PathBuf {
    let path = at.join("ribat-rebuilt");
    let mut bytes = std::fs::read(env!("CARGO_BIN_EXE_ribat")).unwrap();
    let needle = b"Generate a small fund, seal it in a fresh embedded node";
    let found: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "the help text to change is in the binary once"
    );
    bytes[found[0]] = b'g';
    std::fs::write(&path, &bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn a_node_on_another_build_or_with_edited_rules_is_cut_off_until_it_attests_within_the_allowed_set()
{
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    // Nodes attest every second; gateways on nodes 1 and 3.
    let dirs = mesh_made_with(&out, &[1, 3], &["--attest-every", "1"]);
    let ocsf = d.path().join("node-1-ocsf.jsonl");
    let mut nodes = running_with_fund_and(
        d.path(),
        &dirs,
        (20, 2, 1, 5),
        &["--ocsf", ocsf.to_str().unwrap()],
    );
    for node in ["node-1", "node-2", "node-3"] {
        judged_by_peers(&dirs[0], node, "attested", Duration::from_secs(20));
    }
    let (gw1, gw3) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[2]));
    issue(
        &out.join("deployment"),
        "clerk.nadia",
        "clerk",
        "agency-fes",
    );
    let clerk = Clerk::new(
        dirs[0].join("ca.pem"),
        out.join("deployment/identity/issued/clerk.nadia"),
    );
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(20, 2, 1, 5));
    let cnss: Vec<&str> = fund.persons.iter().map(|p| p.cnss.as_str()).collect();
    let ok_read = |gw: &str, c: &str| {
        let r = clerk.read(gw, c);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    };
    ok_read(&gw1, cnss[0]);
    ok_read(&gw3, cnss[1]);

    // Node 3 restarted on another build (one constant changed): isolated as soon as it
    // attests, named in status.
    let rebuilt = another_build(d.path());
    nodes[2] = None;
    nodes[2] = Some(start_as(&rebuilt, &dirs[2], &[]));
    judged_by_peers(
        &dirs[0],
        "node-3",
        "isolated/unknown-release",
        Duration::from_secs(30),
    );
    let o = ribat(&["mesh", "status", "--dir", dirs[0].to_str().unwrap()]);
    let said = common::text(&o);
    let digest = sha256_hex(&rebuilt);
    assert!(
        said.contains(&format!(
            "node-3   isolated: it runs 0.1.0 (binary {})",
            &digest[..12]
        )) && said.contains("not in the allowed set"),
        "{said}"
    );
    // Node 1's gateway reads on through custodians 1 and 2 and never asks custodian 3.
    let before = served_to(&dirs[2], 3, "clerk.nadia");
    for c in &cnss[2..6] {
        ok_read(&gw1, c);
    }
    assert_eq!(served_to(&dirs[2], 3, "clerk.nadia"), before);
    // Its custodian, asked directly with node 1's gateway certificate, answers no one.
    let token = common::api::token(
        &gw1,
        &dirs[0].join("ca.pem"),
        &out.join("deployment/identity/issued/clerk.nadia"),
    );
    let record = {
        let r = clerk.read(&gw1, cnss[6]);
        r.json()["record_id"].as_str().unwrap().to_owned()
    };
    let gateway1 = dirs[0].join("identity/issued/gateway.embedded");
    let direct = Direct::every(&dirs, &dirs[0].join("ca.pem"), &gateway1);
    let r = direct[2].ask(
        "direct-to-isolated",
        ("clerk.nadia", "clerk"),
        "counter-service",
        std::slice::from_ref(&record),
        Some(&token),
    );
    assert_eq!(r.status, 503, "{}", r.json());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or_default()
            .contains("node-3 is isolated"),
        "{}",
        r.json()
    );
    // Its gateway is refused by custodians 1 and 2: no read through node 3, saying why.
    let r = clerk.read(&gw3, cnss[7]);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 503, "{body}");
    assert!(
        body.contains("gateway.node-3 is refused: node-3 is isolated"),
        "{body}"
    );
    assert!(!body.contains(&fund.persons[7].surname), "{body}");
    // The SIEM heard it from node 1's gateway.
    poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let lines = std::fs::read_to_string(&ocsf).unwrap_or_default();
        match lines.lines().any(|l| {
            l.contains("node-attestation: node-3 isolated") && l.contains("\"status_id\":2")
        }) {
            true => Ok(()),
            false => Err("no node-attestation event for node 3 in node 1's OCSF file".into()),
        }
    });

    // Back on the allowed build: answered again once it has attested again.
    let started_before = gateway_starts(&dirs[2]);
    nodes[2] = None;
    nodes[2] = Some(start(&dirs[2]));
    judged_by_peers(&dirs[0], "node-3", "attested", Duration::from_secs(30));
    // Its gateway starts once the custodians answer it again (it waits for them).
    poll_until(
        Duration::from_secs(60),
        Duration::from_millis(200),
        || match gateway_starts(&dirs[2]) > started_before {
            true => Ok(()),
            false => Err("node 3's gateway did not start again".to_owned()),
        },
    );
    poll_until(Duration::from_secs(60), Duration::from_millis(300), || {
        let r = clerk.read(&gw3, cnss[7]);
        match r.status {
            200 => Ok(()),
            s => Err(format!(
                "node 3 attested again but its gateway still fails ({s}): {}",
                String::from_utf8_lossy(&r.body)
            )),
        }
    });

    // Node 2's rules edited by hand (a detector put in shadow mode): isolated, reads go
    // on through custodians 1 and 3; the ceremony's rules back, attested again.
    let rules = dirs[1].join("rules.json");
    let original = std::fs::read_to_string(&rules).unwrap();
    let mut edited: serde_json::Value = serde_json::from_str(&original).unwrap();
    edited["velocity"]["mode"] = "shadow".into();
    nodes[1] = None;
    std::fs::write(&rules, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
    nodes[1] = Some(start(&dirs[1]));
    judged_by_peers(
        &dirs[0],
        "node-2",
        "isolated/document",
        Duration::from_secs(30),
    );
    let said = common::text(&ribat(&[
        "mesh",
        "status",
        "--dir",
        dirs[0].to_str().unwrap(),
    ]));
    assert!(said.contains("node-2   isolated: its rules ("), "{said}");
    ok_read(&gw1, cnss[8]);
    nodes[1] = None;
    std::fs::write(&rules, &original).unwrap();
    nodes[1] = Some(start(&dirs[1]));
    judged_by_peers(&dirs[0], "node-2", "attested", Duration::from_secs(30));
}

/// Two administrators' approvals of `what` (`mesh approve` arguments) and the proposal
/// `mesh COMMAND` with `args` through the node in `dir` carrying both, which must succeed.
fn by_two_admins(out: &Path, what: &[&str], command: &str, dir: &Path, args: &[&str]) {
    let approvals: Vec<String> = ["sec.amina", "sec.youssef"]
        .iter()
        .map(|who| approval(out, who, what))
        .collect();
    let mut all = vec!["mesh", command, "--dir", dir.to_str().unwrap()];
    all.extend_from_slice(args);
    for a in &approvals {
        all.extend(["--approval", a]);
    }
    let o = ribat(&all);
    assert!(o.status.success(), "{}", common::text(&o));
}

/// `mesh drift` from `dir`: its exit code and output.
fn drift(dir: &Path) -> (Option<i32>, String) {
    let o = ribat(&["mesh", "drift", "--dir", dir.to_str().unwrap()]);
    (o.status.code(), common::text(&o))
}

#[test]
fn a_retired_build_is_listed_on_every_node_still_running_it_and_cut_off_only_after_the_rules_grace()
{
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_made_with(&out, &[1], &["--attest-every", "1"]);
    let ocsf = d.path().join("node-1-ocsf.jsonl");
    let mut nodes = running_with_fund_and(
        d.path(),
        &dirs,
        (20, 2, 1, 6),
        &["--ocsf", ocsf.to_str().unwrap()],
    );
    let (code, said) = drift(&dirs[0]);
    assert_eq!(code, Some(0), "{said}");
    // A new build, allowed by two administrators, rolled out to nodes 1 and 2.
    let fixed = another_build(d.path());
    let fixed_path = fixed.to_str().unwrap();
    by_two_admins(
        &out,
        &[
            "--allow-build",
            fixed_path,
            "--reason",
            "CHG-2031 advisory fix",
        ],
        "allow-build",
        &dirs[0],
        &["--binary", fixed_path, "--reason", "CHG-2031 advisory fix"],
    );
    let node1_args = ["--ocsf", ocsf.to_str().unwrap()];
    for (i, args) in [&node1_args[..], &[]].into_iter().enumerate() {
        nodes[i] = None;
        nodes[i] = Some(start_as(&fixed, &dirs[i], args));
    }
    judged_by_peers(&dirs[2], "node-1", "attested", Duration::from_secs(30));
    judged_by_peers(&dirs[2], "node-2", "attested", Duration::from_secs(30));
    // The old build retired for an advisory: node 3, still on it, drifts (a week's grace by
    // the rules) and is still answered.
    let old = sha256_hex(Path::new(env!("CARGO_BIN_EXE_ribat")));
    let now = in_seconds(0);
    let retire = [
        "--advisory",
        "RUSTSEC-2026-0104",
        "--retired-at",
        now.as_str(),
    ];
    let mut what = vec!["--retire-build", old.as_str()];
    what.extend(retire);
    let mut args = vec!["--build", old.as_str()];
    args.extend(retire);
    by_two_admins(&out, &what, "retire-build", &dirs[0], &args);
    judged_by_peers(&dirs[0], "node-3", "drifting", Duration::from_secs(10));
    let (code, said) = drift(&dirs[0]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("drifting: 0.1.0 (binary")
            && said.contains("retired for RUSTSEC-2026-0104; isolated in 6 d"),
        "{said}"
    );
    assert!(
        said.contains(&format!("binary {old}"))
            && said.contains(
                "RETIRED for RUSTSEC-2026-0104 by sec.amina and sec.youssef; running on node-3"
            ),
        "{said}"
    );
    assert!(
        said.contains("1 member(s) drifting or cut off: node-3"),
        "{said}"
    );
    let gw = gateway_addr(&dirs[0]);
    issue(
        &out.join("deployment"),
        "clerk.ilyas",
        "clerk",
        "agency-oujda",
    );
    let clerk = Clerk::new(
        dirs[0].join("ca.pem"),
        out.join("deployment/identity/issued/clerk.ilyas"),
    );
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(20, 2, 1, 6));
    let before = served_to(&dirs[2], 3, "clerk.ilyas");
    // Custodian 2 set aside for the moment (its node restarting would do the same): the
    // read needs custodian 3, which still answers while it drifts.
    nodes[1] = None;
    let r = clerk.read(&gw, &fund.persons[0].cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(served_to(&dirs[2], 3, "clerk.ilyas"), before + 1);
    nodes[1] = Some(start_as(&fixed, &dirs[1], &[]));
    judged_by_peers(&dirs[2], "node-2", "attested", Duration::from_secs(30));
    // The finding reached the SIEM.
    poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let lines = std::fs::read_to_string(&ocsf).unwrap_or_default();
        match lines
            .lines()
            .any(|l| l.contains("node-attestation: node-3 drifting"))
        {
            true => Ok(()),
            false => Err("no drift finding for node 3 in node 1's OCSF file".into()),
        }
    });
    // Rules with a grace of 5 s: past it, node 3 is cut off; reads go on without it.
    rules_in_force(&out, &dirs[0], 1, |r| {
        r["patch-drift"]["grace-secs"] = 5.into();
    });
    judged_by_peers(
        &dirs[0],
        "node-3",
        "isolated/retired",
        Duration::from_secs(20),
    );
    let before = served_to(&dirs[2], 3, "clerk.ilyas");
    for p in &fund.persons[1..4] {
        let r = clerk.read(&gw, &p.cnss);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(served_to(&dirs[2], 3, "clerk.ilyas"), before);
    // Upgraded, it is answered again.
    nodes[2] = None;
    nodes[2] = Some(start_as(&fixed, &dirs[2], &[]));
    judged_by_peers(&dirs[0], "node-3", "attested", Duration::from_secs(30));
    let (code, said) = drift(&dirs[0]);
    assert_eq!(code, Some(0), "{said}");
}

/// A mesh of three on one SQLite store with node-1's gateway, a fund imported, and node-4
/// prepared on the same store, started and added by two administrators; node-4's own
/// passphrase for custodian 2 is written now or (`pass_now` false) left to the test.
struct Joined {
    out: PathBuf,
    passes: PathBuf,
    dirs: Vec<PathBuf>,
    nodes: Vec<Option<NodeProcess>>,
    n4: PathBuf,
    pass4: PathBuf,
    p4: Option<NodeProcess>,
}

fn mesh_and_node_4(d: &Path, pass_now: bool) -> Joined {
    use std::os::unix::fs::PermissionsExt;
    let out = d.join("mesh");
    let passes = d.join("passes");
    let dirs = mesh_of(&out, 3, &[1], &passes);
    let mut nodes: Vec<Option<NodeProcess>> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| (i > 0).then(|| start_from(d, &passes)))
        .collect();
    let src = d.join("source");
    generate(&src, 20, 2, 1, 17);
    import_through(&dirs[0], &src);
    nodes[0] = Some(start_from(&dirs[0], &passes));
    agreed_leader(&dirs[0], &[1, 2, 3]);
    let mesh_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("mesh.json")).unwrap()).unwrap();
    let store = mesh_json["store"].as_str().unwrap().to_owned();
    let addr4 = free_addr();
    let o = ribat(&[
        "mesh",
        "prepare-node",
        "--out",
        out.to_str().unwrap(),
        "--addr",
        &addr4,
        "--store",
        &store,
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let n4 = out.join("node-4");
    let passes4 = d.join("passes-node-4");
    std::fs::create_dir_all(&passes4).unwrap();
    std::fs::set_permissions(&passes4, std::fs::Permissions::from_mode(0o700)).unwrap();
    let pass4 = passes4.join("custodian-2.pass");
    if pass_now {
        write_pass_4(&pass4);
    }
    let p4 = Some(start_from(&n4, &passes4));
    let add4 = ["--add-node", n4.to_str().unwrap()];
    let (a, b) = (
        approval(&out, "sec.amina", &add4),
        approval(&out, "sec.youssef", &add4),
    );
    let o = ribat(&[
        "mesh",
        "add-node",
        "--dir",
        dirs[0].to_str().unwrap(),
        "--node",
        n4.to_str().unwrap(),
        "--approval",
        &a,
        "--approval",
        &b,
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    voters_everywhere(&dirs[0], &[1, 2, 3, 4], &[1, 2, 3, 4]);
    Joined {
        out,
        passes,
        dirs,
        nodes,
        n4,
        pass4,
        p4,
    }
}

fn write_pass_4(pass4: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(pass4, "node-4's own passphrase, never node-2's").unwrap();
    std::fs::set_permissions(pass4, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// `mesh reshare --remove custodian-2 --add node-4`, refused with one administrator's
/// approval, proposed with two.
fn reshare_2_to_node_4(d: &Path, out: &Path, via: &Path) {
    let statement = d.join("reshare-2.json");
    let o = ribat(&[
        "mesh",
        "reshare",
        "--dir",
        via.to_str().unwrap(),
        "--remove",
        "custodian-2",
        "--add",
        "node-4",
        "--reason",
        "node-2's host was taken",
        "--out",
        statement.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(
        common::text(&o).contains(
            "custodian set 1 → 2: 2 of 3 (1=node-1, 2=node-4, 3=node-3), dealt by custodians [1, 3]"
        ),
        "{}",
        common::text(&o)
    );
    let what = ["--reshare", statement.to_str().unwrap()];
    let amina = approval(out, "sec.amina", &what);
    let propose = |approvals: &[&str]| {
        let mut args = vec![
            "mesh",
            "reshare",
            "--dir",
            via.to_str().unwrap(),
            "--statement",
            statement.to_str().unwrap(),
        ];
        for a in approvals {
            args.extend(["--approval", a]);
        }
        ribat(&args)
    };
    let o = propose(&[&amina]);
    assert!(
        !o.status.success(),
        "one administrator: {}",
        common::text(&o)
    );
    assert!(
        common::text(&o).contains("where 2 are needed"),
        "{}",
        common::text(&o)
    );
    let youssef = approval(out, "sec.youssef", &what);
    let o = propose(&[&amina, &youssef]);
    assert!(o.status.success(), "{}", common::text(&o));
}

/// What `mesh custodians --json` says through the node in `dir`.
fn custodian_set(dir: &Path) -> Result<serde_json::Value, String> {
    let o = ribat(&[
        "mesh",
        "custodians",
        "--dir",
        dir.to_str().unwrap(),
        "--json",
    ]);
    serde_json::from_slice(&o.stdout)
        .map_err(|e| format!("{}: {e} {}", dir.display(), common::text(&o)))
}

/// Waits until every node of `dirs` and `n4` holds custodian set `number` in force.
fn set_in_force_everywhere(dirs: &[PathBuf], n4: &Path, number: u64) {
    poll_until(Duration::from_secs(60), Duration::from_millis(300), || {
        for dir in dirs.iter().map(PathBuf::as_path).chain([n4]) {
            let c = custodian_set(dir)?;
            if c["set"]["number"] != number {
                return Err(format!("{} holds {c}", dir.display()));
            }
        }
        Ok(())
    });
}

#[test]
fn a_dealer_killed_in_the_middle_of_a_resharing_sends_the_same_sub_shares_when_back() {
    let d = tempfile::tempdir().unwrap();
    // node-4 starts without its passphrase: it cannot seal its new shares, and says so.
    let mut w = mesh_and_node_4(d.path(), false);
    // node-2, whose custodian leaves, is down for the whole resharing.
    w.nodes[1] = None;
    reshare_2_to_node_4(d.path(), &w.out, &w.dirs[0]);
    poll_until(Duration::from_secs(30), Duration::from_millis(300), || {
        let c = custodian_set(&w.dirs[0])?;
        let r = &c["resharing"];
        match (
            r["dealt"].as_object().map(|m| m.len()),
            r["received"].as_array().map(Vec::len),
        ) {
            (Some(2), Some(2)) => Ok(()),
            _ => Err(format!("{c}")),
        }
    });
    poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let log = std::fs::read_to_string(w.n4.join("node.log")).unwrap_or_default();
        match log.contains("custodian-2.pass") {
            true => Ok(()),
            false => Err(format!("node-4 never said what it lacks: {log}")),
        }
    });
    let o = ribat(&["mesh", "custodians", "--dir", w.dirs[0].to_str().unwrap()]);
    assert!(
        common::text(&o).contains("2 of 2 dealers dealt, 2 of 3 new custodians ready"),
        "{}",
        common::text(&o)
    );
    // Dealer node-3 and node-4 killed with SIGKILL: node-4 forgets every sub-share it was
    // sent, node-3 its dealing in memory. node-3 back; node-4 back with its passphrase.
    w.nodes[2] = None;
    w.p4 = None;
    let kept = w.dirs[2].join("custodians/custodian-3/reshare-dealing.json");
    assert!(kept.exists(), "node-3 kept no dealing");
    w.nodes[2] = Some(start_from(&w.dirs[2], &w.passes));
    write_pass_4(&w.pass4);
    let passes4 = w.pass4.parent().unwrap().to_owned();
    w.p4 = Some(start_from(&w.n4, &passes4));
    // Only the very sub-shares node-3's logged commitments are for can make node-4's share.
    set_in_force_everywhere(&w.dirs[..1], &w.n4, 2);
    set_in_force_everywhere(&w.dirs[2..], &w.n4, 2);
    // node-2 back: its state on disk is a snapshot from before set 2, so it learns of set
    // 2 as it applies the log again (answering no one meanwhile: it has not caught up),
    // and then erases its shares.
    let shares2 = w.dirs[1].join("custodians/custodian-2/custodian.json");
    assert!(shares2.exists());
    w.nodes[1] = Some(start_from(&w.dirs[1], &w.passes));
    set_in_force_everywhere(&w.dirs, &w.n4, 2);
    poll_until(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || match shares2.exists() {
            true => Err("node-2 kept custodian 2's shares past set 2".to_owned()),
            false => Ok(()),
        },
    );
    let log2 = std::fs::read_to_string(w.dirs[1].join("node.log")).unwrap();
    assert!(log2.contains("node-2 is not in custodian set 2"), "{log2}");
    poll_until(
        Duration::from_secs(10),
        Duration::from_millis(200),
        || match kept.exists() {
            true => Err("the dealing outlived the resharing".to_owned()),
            false => Ok(()),
        },
    );
    let log3 = std::fs::read_to_string(w.dirs[2].join("node.log")).unwrap();
    assert_eq!(log3.matches("custodian 3 dealt set 2").count(), 1, "{log3}");
    // Reads through the new set, custodian 2 on node-4 among them.
    let deployment = w.out.join("deployment");
    issue(&deployment, "clerk.amal", "clerk", "agency-casa-anfa");
    let clerk = Clerk::new(
        w.dirs[0].join("ca.pem"),
        deployment.join("identity/issued/clerk.amal"),
    );
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(20, 2, 1, 17));
    let gw = gateway_addr(&w.dirs[0]);
    w.nodes[2] = None;
    let r = clerk.read(&gw, &fund.persons[0].cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["fields"]["cin"], fund.persons[0].cin.as_str());
}

/// Unseals the shares in a custodian directory with the passphrase in `pass_file`.
/// A clerk reading `persons` (CNSS, expected CIN) in turn through the gateway at `gw`, every
/// `every`, until told to stop: how many reads answered right, and the others.
struct ReadingAllAlong {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<String>, Clerk)>,
}

impl ReadingAllAlong {
    fn start(clerk: Clerk, gw: String, persons: Vec<(String, String)>, every: Duration) -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut ok, mut failed) = (0usize, Vec::new());
            let mut k = 0;
            while !flag.load(Ordering::Relaxed) {
                let (cnss, cin) = &persons[k % persons.len()];
                k += 1;
                let r = clerk.read(&gw, cnss);
                if r.status == 200 && r.json()["fields"]["cin"] == cin.as_str() {
                    ok += 1;
                } else {
                    failed.push(format!(
                        "{}: {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    ));
                }
                std::thread::sleep(every);
            }
            (ok, failed, clerk)
        });
        Self { stop, thread }
    }

    /// Stops; (reads answered right, the others, the clerk).
    fn stop(self) -> (usize, Vec<String>, Clerk) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn unseal(custodian_dir: &Path, pass_file: &Path) -> ribat_custodian::keystore::CustodianKeys {
    let pass = ribat_crypto::secret::Passphrase::new(std::fs::read_to_string(pass_file).unwrap());
    ribat_custodian::keystore::load(custodian_dir, &pass).unwrap()
}

/// The public key of what two custodians' shares of `class` give together by Lagrange
/// interpolation at 0: the class's group key when they are two shares of one sharing.
fn key_of_two(
    a: &ribat_custodian::keystore::CustodianKeys,
    b: &ribat_custodian::keystore::CustodianKeys,
    class: &str,
) -> ribat_crypto::RistrettoPoint {
    // Σ λ_i·(s_i·G) = (Σ λ_i·s_i)·G: the point of the key they rebuild, without the key.
    let l = ribat_crypto::combine::lagrange_at_zero(&[a.index, b.index]).unwrap();
    l[0] * a.shares[class].public() + l[1] * b.shares[class].public()
}

#[test]
fn a_custodian_replaced_by_resharing_leaves_its_stolen_share_worthless_and_reads_never_stop() {
    let d = tempfile::tempdir().unwrap();
    let Joined {
        out,
        passes,
        dirs,
        mut nodes,
        n4,
        pass4,
        p4: _p4,
    } = mesh_and_node_4(d.path(), true);

    // What an intruder on node-2's host took before: its custodian's directory, and the
    // passphrase. And what the other custodians held then.
    let stolen = d.path().join("stolen-custodian-2");
    std::fs::create_dir_all(&stolen).unwrap();
    for f in ["custodian.json", "group.json"] {
        std::fs::copy(
            dirs[1].join("custodians/custodian-2").join(f),
            stolen.join(f),
        )
        .unwrap();
    }
    let stolen_keys = unseal(&stolen, &passes.join("custodian-2.pass"));
    let old_sealed: Vec<String> = [(0usize, 1), (2, 3)]
        .iter()
        .map(|(k, i)| {
            let text = std::fs::read_to_string(
                dirs[*k].join(format!("custodians/custodian-{i}/custodian.json")),
            )
            .unwrap();
            text[text.len() / 2..text.len() / 2 + 48].to_owned()
        })
        .collect();

    // A clerk reads through node-1's gateway all along.
    let deployment = out.join("deployment");
    issue(&deployment, "clerk.amal", "clerk", "agency-casa-anfa");
    let clerk = Clerk::new(
        dirs[0].join("ca.pem"),
        deployment.join("identity/issued/clerk.amal"),
    );
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(20, 2, 1, 17));
    let gw = gateway_addr(&dirs[0]);
    let persons: Vec<(String, String)> = fund.persons[..4]
        .iter()
        .map(|p| (p.cnss.clone(), p.cin.clone()))
        .collect();
    let reader = ReadingAllAlong::start(clerk, gw.clone(), persons, Duration::from_millis(150));
    std::thread::sleep(Duration::from_secs(1));

    // The statement, two administrators' approvals, the proposal.
    reshare_2_to_node_4(d.path(), &out, &dirs[0]);

    // Every node puts set 2 in force.
    set_in_force_everywhere(&dirs, &n4, 2);
    poll_until(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || match dirs[1]
            .join("custodians/custodian-2/custodian.json")
            .exists()
        {
            true => Err("node-2 still holds custodian 2's shares".to_owned()),
            false => Ok(()),
        },
    );
    // node-1's audit log pins the key node-4's custodian published through the log, beside
    // the ceremony's, and its checkpoints are cosigned by custodian 2 again — node-4's, as
    // node-2's answers no one.
    poll_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let trust = std::fs::read_to_string(dirs[0].join("audit/trust")).unwrap();
        match trust.matches("witness custodian-2.").count() {
            2 => Ok(()),
            _ => Err(format!(
                "old and new custodian 2 are not both pinned: {trust}"
            )),
        }
    });
    let cosigners = |note: &str| -> Vec<String> {
        note.lines()
            .filter_map(|l| l.strip_prefix("— custodian-"))
            .map(|l| l.chars().take(1).collect())
            .collect()
    };
    let size_of = |note: &str| -> u64 {
        note.lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .unwrap_or(0)
    };
    let at_switch =
        size_of(&std::fs::read_to_string(dirs[0].join("audit/checkpoint")).unwrap_or_default());
    poll_until(Duration::from_secs(30), Duration::from_millis(300), || {
        let note = std::fs::read_to_string(dirs[0].join("audit/checkpoint")).unwrap_or_default();
        match size_of(&note) > at_switch && cosigners(&note).contains(&"2".to_owned()) {
            true => Ok(()),
            false => Err(format!(
                "no checkpoint past {at_switch} cosigned by custodian 2: {note}"
            )),
        }
    });
    // `mesh status` says who holds which custodian now.
    let members = status(&dirs[0]);
    let holds = |name: &str| {
        members
            .iter()
            .find(|m| m["name"] == name)
            .map(|m| m["custodian"].clone())
            .unwrap()
    };
    assert_eq!(
        (holds("node-1"), holds("node-2"), holds("node-4")),
        (1.into(), serde_json::Value::Null, 2.into()),
        "{members:#?}"
    );
    let o = ribat(&["mesh", "status", "--dir", dirs[0].to_str().unwrap()]);
    assert!(
        common::text(&o).contains("custodian set 2 in force"),
        "{}",
        common::text(&o)
    );
    // Reads went on all along, and go on after.
    std::thread::sleep(Duration::from_secs(1));
    let (ok, failed, clerk) = reader.stop();
    assert!(ok > 10, "only {ok} reads answered");
    assert!(
        failed.is_empty(),
        "reads refused during the resharing: {failed:#?}"
    );
    // (Few distinct persons in all: more, with this small fund's close numbers, and the
    // enumeration detector rightly quarantines the clerk.)
    for p in &fund.persons[4..6] {
        let r = clerk.read(&gw, &p.cnss);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["fields"]["cin"], p.cin.as_str());
    }
    // node-2 holds nothing any more: stopped, reads go on through the new set. node-4
    // restarted (its state on disk is an older snapshot) holds custodian 2 at once.
    nodes[1] = None;
    drop(_p4);
    let _p4 = start_from(&n4, pass4.parent().unwrap());
    poll_until(Duration::from_secs(20), Duration::from_millis(200), || {
        let log = std::fs::read_to_string(n4.join("node.log")).unwrap_or_default();
        match log.contains("(mesh of 3, threshold 2, custodian 2 of set 2)") {
            true => Ok(()),
            false => Err(format!(
                "node-4 did not start as custodian 2 of set 2: {log}"
            )),
        }
    });

    // The old share is worthless with any new one; two new shares make the group key.
    let new1 = unseal(
        &dirs[0].join("custodians/custodian-1"),
        &passes.join("custodian-1.pass"),
    );
    let new3 = unseal(
        &dirs[2].join("custodians/custodian-3"),
        &passes.join("custodian-3.pass"),
    );
    let new2 = unseal(&n4.join("custodians/custodian-2"), &pass4);
    assert_eq!((new1.set, new2.set, new3.set), (2, 2, 2));
    for class in stolen_keys.shares.keys() {
        let y = stolen_keys.group.class(class).unwrap().group_key;
        assert_eq!(key_of_two(&new1, &new3, class), y);
        assert_eq!(key_of_two(&new2, &new3, class), y);
        assert_eq!(key_of_two(&new1, &new2, class), y);
        for new in [&new1, &new3] {
            assert_ne!(
                key_of_two(&stolen_keys, new, class),
                y,
                "the stolen share with custodian {}'s new one rebuilt the `{class}` key",
                new.index
            );
        }
    }
    // No old share is left in the remaining custodians' directories, nor in node-2's.
    for dir in [&dirs[0], &dirs[1], &dirs[2]] {
        let left = files_holding(
            dir,
            &old_sealed.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert!(left.is_empty(), "old sealed shares left in {left:?}");
    }
    assert!(
        !dirs[1]
            .join("custodians/custodian-2/custodian.json")
            .exists()
    );
    // The records were not touched: the import of new records needs no change either
    // (their group keys are the same), and node-2's custodian answers no one.
    let r = clerk.read(&gw, &fund.persons[1].cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["fields"]["cin"], fund.persons[1].cin.as_str());
    // Stopped, node-1's audit log verifies whole: every checkpoint, before and after the
    // resharing, against the keys its trust file pins.
    nodes[0] = None;
    let o = ribat(&["audit", "verify", dirs[0].join("audit").to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::text(&o));
    // node-1's directory, used offline, asks the custodians of the set it last put in
    // force (its state on disk may be an older snapshot): it remembers where they are.
    let remembered: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("custodian-set.json")).unwrap())
            .unwrap();
    let n4_addr =
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(n4.join("mesh.json")).unwrap())
            .unwrap()["joined"]["addr"]
            .clone();
    assert_eq!(remembered["set"]["number"], 2, "{remembered}");
    assert_eq!(remembered["addrs"]["2"], n4_addr, "{remembered}");
}

/// Where node-1's log says its re-sealing job is: (done, total) of the last progress line.
fn resealed_so_far(dir: &Path) -> Option<(u64, u64)> {
    let log = std::fs::read_to_string(dir.join("node.log")).unwrap_or_default();
    log.lines().rev().find_map(|l| {
        let rest = l.split(": re-sealed ").nth(1)?;
        let (done, total) = rest.split_once(" of ")?;
        Some((done.parse().ok()?, total.trim().parse().ok()?))
    })
}

#[test]
fn a_key_rotation_across_the_mesh_reseals_every_record_while_reads_go_on_and_the_old_shares_open_nothing_after()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let passes = d.path().join("passes");
    // Gateways on node-1 (which runs the job and is killed in the middle of it) and node-2
    // (which the clerk reads through all along).
    let dirs = mesh_of(&out, 3, &[1, 2], &passes);
    let mut nodes: Vec<Option<NodeProcess>> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| (i > 0).then(|| start_from(d, &passes)))
        .collect();
    let src = d.path().join("source");
    generate(&src, 1500, 60, 1, 23);
    import_through(&dirs[0], &src);
    nodes[0] = Some(start_from(&dirs[0], &passes));
    agreed_leader(&dirs[0], &[1, 2, 3]);

    // The shares that may have leaked: custodians 1 and 2 of epoch 1, with passphrases.
    let stolen: Vec<_> = [1usize, 2]
        .iter()
        .map(|i| {
            unseal(
                &dirs[i - 1].join(format!("custodians/custodian-{i}")),
                &passes.join(format!("custodian-{i}.pass")),
            )
        })
        .collect();
    let old_y = stolen[0].group.class("identity").unwrap().group_key;
    assert_eq!(key_of_two(&stolen[0], &stolen[1], "identity"), old_y);

    let deployment = out.join("deployment");
    issue(&deployment, "clerk.amal", "clerk", "agency-casa-anfa");
    let clerk = Clerk::new(
        dirs[1].join("ca.pem"),
        deployment.join("identity/issued/clerk.amal"),
    );
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(1500, 60, 1, 23));
    let gw2 = gateway_addr(&dirs[1]);
    let persons: Vec<(String, String)> = fund
        .persons
        .iter()
        .filter(|p| !p.honey)
        .take(4)
        .map(|p| (p.cnss.clone(), p.cin.clone()))
        .collect();
    let reader = ReadingAllAlong::start(clerk, gw2.clone(), persons, Duration::from_millis(200));

    // Two administrators start the rotation; node-1 will re-seal.
    let statement = d.path().join("rotate.json");
    let o = ribat(&[
        "mesh",
        "reshare",
        "--dir",
        dirs[1].to_str().unwrap(),
        "--rotate",
        "node-1",
        "--reason",
        "two custodians' shares may have leaked",
        "--out",
        statement.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let file = statement.to_str().unwrap();
    by_two_admins(
        &out,
        &["--reshare", file],
        "reshare",
        &dirs[1],
        &["--statement", file],
    );

    // Every custodian contributes, every node puts the new epoch in force, and node-1's job
    // starts; it is killed with SIGKILL in the middle and started again.
    poll_until(Duration::from_secs(60), Duration::from_millis(300), || {
        for dir in &dirs {
            let c = custodian_set(dir)?;
            if c["set"]["epoch"] != 2 {
                return Err(format!("{} holds {c}", dir.display()));
            }
        }
        Ok(())
    });
    let (at_kill, total) =
        poll_until(
            Duration::from_secs(60),
            Duration::from_millis(20),
            || match resealed_so_far(&dirs[0]) {
                Some((done, total)) if done > 0 && done < total => Ok((done, total)),
                Some((done, total)) if done == total && total > 0 => {
                    Err("the job finished before it could be killed: make the fund larger".into())
                }
                other => Err(format!("no progress yet: {other:?}")),
            },
        );
    eprintln!("killing node-1 at {at_kill} of {total} re-sealed");
    nodes[0] = None; // SIGKILL
    let c = custodian_set(&dirs[1]).unwrap();
    assert_eq!(c["set"]["resealing"]["job"], "node-1", "{c}");
    // Another gateway cannot use the rotation's purpose (it could mint itself a token for
    // it): custodians take it from the job node's gateway only.
    let gateway2 = dirs[1].join("identity/issued/gateway.embedded");
    let ca = dirs[1].join("ca.pem");
    for (i, direct) in Direct::every(&dirs, &ca, &gateway2)
        .iter()
        .enumerate()
        .skip(1)
    {
        let r = direct.ask(
            &format!("rotation-by-another-{i}"),
            ("rotation.node-2", "rotation"),
            "key-rotation",
            &["p-any".to_owned()],
            None,
        );
        assert_eq!(r.status, 403, "custodian {}: {}", i + 1, r.json());
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap_or_default()
                .contains("may not re-seal records"),
            "custodian {}: {}",
            i + 1,
            r.json()
        );
    }
    let log_before = std::fs::read_to_string(dirs[0].join("node.log")).unwrap();
    nodes[0] = Some(start_from(&dirs[0], &passes));
    // Resumed: it finishes, the log says every record is re-sealed, every node drops the
    // previous epoch's shares.
    poll_until(Duration::from_secs(120), Duration::from_millis(300), || {
        for dir in &dirs {
            let c = custodian_set(dir)?;
            if !c["set"]["resealing"].is_null() {
                return Err(format!("{} still re-sealing: {c}", dir.display()));
            }
        }
        Ok(())
    });
    let log = std::fs::read_to_string(dirs[0].join("node.log")).unwrap();
    let after_restart = &log[log_before.len().min(log.len())..];
    let (_, resumed_total) = after_restart
        .lines()
        .find_map(|l| {
            let rest = l.split(": re-sealed ").nth(1)?;
            let (done, total) = rest.split_once(" of ")?;
            Some((done.parse::<u64>().ok()?, total.trim().parse::<u64>().ok()?))
        })
        .expect("no progress after the restart");
    eprintln!("resumed with {resumed_total} left");
    assert!(
        resumed_total < total && resumed_total + at_kill >= total.saturating_sub(300),
        "resumed with {resumed_total} of {total} left after {at_kill} were done"
    );
    poll_until(Duration::from_secs(30), Duration::from_millis(300), || {
        for (k, dir) in dirs.iter().enumerate() {
            let g = std::fs::read_to_string(
                dir.join(format!("custodians/custodian-{}/group.json", k + 1)),
            )
            .unwrap_or_default();
            if g.contains("previous") || g.is_empty() {
                return Err(format!(
                    "custodian {} still holds the previous epoch",
                    k + 1
                ));
            }
        }
        Ok(())
    });
    let o = ribat(&["mesh", "status", "--dir", dirs[1].to_str().unwrap()]);
    assert!(
        common::text(&o).contains("custodian set 2 in force, key epoch 2"),
        "{}",
        common::text(&o)
    );

    // Reads went on through node-2's gateway all along, and a sample of others read now.
    let (ok, failed, clerk) = reader.stop();
    assert!(ok > 10, "only {ok} reads answered");
    assert!(
        failed.is_empty(),
        "reads refused during the rotation: {failed:#?}"
    );
    for p in fund.persons.iter().filter(|p| !p.honey).skip(700).take(3) {
        let r = clerk.read(&gw2, &p.cnss);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["fields"]["cin"], p.cin.as_str());
    }

    // Nothing is left under epoch 1 in the store; the new shares make a new key; the
    // leaked ones rebuild only the old key, which opens nothing now.
    let mesh_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("mesh.json")).unwrap()).unwrap();
    let spec = ribat_node::StoreSpec::parse(
        mesh_json["store"].as_str().unwrap(),
        mesh_json["store_schema"].as_str().unwrap_or("ribat"),
    )
    .unwrap();
    let store = ribat_node::embedded::open_store(
        &ribat_node::home::Home::at(dirs[0].clone()).with_store(spec),
    )
    .unwrap();
    assert_eq!(store.count_sealed_under(1).unwrap(), 0);
    assert!(store.count_sealed_under(2).unwrap() >= total);
    let new: Vec<_> = (1..=3usize)
        .map(|i| {
            unseal(
                &dirs[i - 1].join(format!("custodians/custodian-{i}")),
                &passes.join(format!("custodian-{i}.pass")),
            )
        })
        .collect();
    for k in &new {
        assert_eq!((k.epoch, k.previous.is_none()), (2, true));
    }
    let new_y = new[0].group.class("identity").unwrap().group_key;
    assert_ne!(new_y, old_y);
    assert_eq!(key_of_two(&new[0], &new[2], "identity"), new_y);
    assert_ne!(key_of_two(&stolen[0], &new[2], "identity"), new_y);
}

#[test]
fn only_the_identity_service_holds_the_token_key_and_a_gateway_gets_a_token_only_for_what_its_user_signed()
 {
    use base64ct::{Base64UrlUnpadded, Encoding};
    use ribat_identity::signed::{Covered, digest};
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    // One gateway, on node 1: nodes 2 and 3 are the identity service.
    let dirs = mesh_with_gateways(&out, &[1]);
    let token_key = |i: usize| dirs[i].join("identity/token.key").exists();
    assert!(!token_key(0), "the gateway's node holds no token key");
    assert!(token_key(1) && token_key(2));
    let mut nodes = running_with_fund(d.path(), &dirs, (30, 3, 1, 61));
    // `mesh status` says who holds it.
    let members = status(&dirs[0]);
    let service: Vec<bool> = members
        .iter()
        .map(|m| m["identity_service"].as_bool().unwrap())
        .collect();
    assert_eq!(service, [false, true, true], "{members:?}");
    let gw = gateway_addr(&dirs[0]);
    let clerk = Clerk::granted(&out, &dirs, "clerk.salma", "agency-rabat");
    let who = clerk.who.clone();
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 61));
    // The clerk's signed token request goes through the gateway to the identity service.
    let r = clerk.read(&gw, &fund.persons[0].cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // `ribat api` signs both requests: a read answered, a refusal said, exit codes kept.
    let api = |target: &str| {
        ribat(&[
            "api",
            "GET",
            target,
            "--gateway",
            &gw,
            "--identity",
            who.to_str().unwrap(),
        ])
    };
    let o = api(&format!(
        "/v1/persons/{}?purpose=counter-service",
        fund.persons[2].cnss
    ));
    assert!(o.status.success(), "{}", common::text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["fields"]["cnss"], fund.persons[2].cnss.as_str(), "{v}");
    let o = api(&format!(
        "/v1/persons/{}?purpose=marketing",
        fund.persons[2].cnss
    ));
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("HTTP 403"),
        "{}",
        common::text(&o)
    );
    let o = api("persons/1");
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the path of an API route"),
        "{}",
        common::text(&o)
    );
    // Unsigned, it gets no token: the gateway cannot mint one.
    let r = common::api::call(&gw, clerk.cfg.unsigned(), "POST", "/v1/token", None, None).unwrap();
    assert_eq!(r.status, 401, "{}", r.json());
    assert_eq!(common::api::problem(&r), "bad-signature");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("identity service"),
        "{}",
        r.json()
    );
    // Signed with another key than the connection's certificate's: the gateway itself
    // refuses it (an honest gateway forwards only what its client signed).
    let r = common::api::call_signing(
        &gw,
        clerk.cfg.tls.clone(),
        Some(common::api::signer(
            &dirs[0].join("identity/issued/gateway.embedded"),
        )),
        "POST",
        "/v1/token",
        None,
        None,
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.json());
    assert_eq!(common::api::problem(&r), "bad-signature");
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("does not verify") && !detail.contains("the user's"),
        "refused by the gateway, not forwarded: {detail}"
    );
    // Whoever holds the gateway's certificate, asking the identity service directly.
    let gateway_cert = dirs[0].join("identity/issued/gateway.embedded");
    let ca = dirs[0].join("ca.pem");
    let node_addr = |i: usize| {
        let mesh: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dirs[i].join("mesh.json")).unwrap())
                .unwrap();
        mesh["peers"][i]["addr"].as_str().unwrap().to_owned()
    };
    let post = |as_who: &Path, path: &str, body: serde_json::Value| {
        common::api::call(
            &node_addr(1),
            common::api::config(&ca, Some(as_who)).unsigned(),
            "POST",
            path,
            None,
            Some(body),
        )
        .unwrap()
    };
    let clerk_key = common::api::signer(&who);
    let gateway_key = common::api::signer(&gateway_cert);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let signed_by = |key: &ribat_identity::signed::RequestSigner| {
        let covered = Covered {
            method: "POST",
            target: "/v1/token",
            body_digest: &digest(b""),
            token: None,
        };
        serde_json::json!({
            "certificate": Base64UrlUnpadded::encode_string(clerk_key.certificate()),
            "body": "",
            "signature": key.sign(&covered, now()).unwrap().header(),
        })
    };
    // The clerk's own request, forwarded once: a token bound to the clerk's certificate.
    let ask = signed_by(&clerk_key);
    let r = post(&gateway_cert, "/v1/mesh/token", ask.clone());
    assert_eq!(r.status, 200, "{}", r.json());
    let claims = ribat_identity::TokenVerifier::from_paserk(
        "ribat.local",
        std::fs::read_to_string(dirs[0].join("identity/token.pub"))
            .unwrap()
            .trim(),
    )
    .unwrap()
    .verify(
        r.json()["token"].as_str().unwrap(),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    assert_eq!(claims.sub, "clerk.salma");
    assert_eq!(
        claims.cnf.x5t_s256,
        ribat_identity::peer::thumbprint(clerk_key.certificate())
    );
    // The same request again, or one the gateway signs itself in the clerk's name.
    let r = post(&gateway_cert, "/v1/mesh/token", ask);
    assert_eq!(r.status, 401, "{}", r.json());
    assert!(
        r.json()["detail"].as_str().unwrap().contains("used before"),
        "{}",
        r.json()
    );
    let r = post(&gateway_cert, "/v1/mesh/token", signed_by(&gateway_key));
    assert_eq!(r.status, 401, "{}", r.json());
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("does not verify"),
        "{}",
        r.json()
    );
    // A service token: its own node's, yes; another node's job, no.
    let service = |identity: &str, role: &str| {
        post(
            &gateway_cert,
            "/v1/mesh/service-token",
            serde_json::json!({"identity": identity, "role": role}),
        )
    };
    assert_eq!(service("node.embedded", "service").status, 200);
    let r = service("rotation.node-2", "rotation");
    assert_eq!(r.status, 403, "{}", r.json());
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("its own node"),
        "{}",
        r.json()
    );
    // Only gateways forward: the clerk's certificate asking directly is refused.
    let r = post(&who, "/v1/mesh/token", signed_by(&clerk_key));
    assert_eq!(r.status, 403, "{}", r.json());
    // An honest gateway checks a token request's signature before it forwards it: the
    // replayed and forged ones above are the gateway's doing, and three more make five
    // within a minute. Node 2 then holds that gateway: no token for it, even for a request
    // the clerk did sign, and no service token either.
    for _ in 0..3 {
        let r = post(&gateway_cert, "/v1/mesh/token", signed_by(&gateway_key));
        assert_eq!(r.status, 401, "{}", r.json());
    }
    let r = post(&gateway_cert, "/v1/mesh/token", signed_by(&clerk_key));
    assert_eq!(r.status, 403, "{}", r.json());
    assert_eq!(common::api::problem(&r), "quarantined");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("gateway.node-1"),
        "{}",
        r.json()
    );
    assert_eq!(service("node.embedded", "service").status, 403);
    // With node 2 gone, node 3 issues the tokens; the clerk reads on (custodians 1 and 3).
    drop(nodes[1].take());
    let r = clerk.read(&gw, &fund.persons[1].cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
