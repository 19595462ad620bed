//! Custody over time: resharing to a new node (a dealer killed halfway, a stolen share left
//! worthless) and a key rotation across the mesh while reads go on.

use crate::common;
use crate::support::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
