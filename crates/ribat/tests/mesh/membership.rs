//! Who is in the mesh: a leader lost and taken back, `mesh up` and its stop, nodes of another
//! CA or with a minted certificate refused, a directory holding two custodians refused, nodes
//! joining and leaving only by two administrators, a revoked node cut off.

use crate::common;
use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
