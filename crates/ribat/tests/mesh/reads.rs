//! Reads across nodes: on while any `t` custodians answer (3 and 5 nodes, partitions), refused
//! clearly below; custodians count as audited only what they cosigned; a compromised
//! gateway opens nothing beyond what its user signed.

use crate::common;
use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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

    // The security team's console on node 1 draws the mesh: a leader, every custodian
    // answering, each member judged by this node.
    issue(&deployment, "sec.watch", "security", "cnss-soc");
    let officer = deployment.join("identity/issued/sec.watch");
    let mesh_section = || {
        let page = console_page(&gw1, &dirs[0], &officer, "/console");
        let at = page
            .find("<section id=\"mesh\">")
            .expect("the mesh on the Now page");
        page[at..].to_owned()
    };
    let seen = mesh_section();
    assert!(seen.contains("Leader: node-"), "{seen}");
    assert!(
        seen.contains("custodians answering: 3 / 3 (reads need 2)"),
        "{seen}"
    );
    for n in 1..=3 {
        assert!(
            seen.contains(&format!("<tr data-member=\"node-{n}\" class=\"\">")),
            "{seen}"
        );
    }
    assert!(!seen.contains("isolated"), "{seen}");

    // Any n − t = 1 node killed with SIGKILL: reads go on through a gateway still up,
    // and the console shows who is gone.
    nodes[2] = None;
    ok_read(&gw1, cnss[2]);
    ok_read(&gw2, cnss[3]);
    let seen = poll_until(Duration::from_secs(15), Duration::from_millis(500), || {
        let seen = mesh_section();
        match seen.contains("custodians answering: 2 / 3") {
            true => Ok(seen),
            false => Err(seen),
        }
    });
    assert!(
        seen.contains("<tr data-member=\"node-3\" class=\"down\">"),
        "{seen}"
    );
    assert!(seen.contains("unreachable"), "{seen}");
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
