//! What every mesh test needs: node processes that die with the test, the ceremony's
//! directories, administrators' approvals, identities issued and granted through the log,
//! and waiting on what every member reports.

use crate::common;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The custodians' passphrases, as every node and ceremony of these tests reads them.
pub(crate) const PASSES: [(&str, &str); 3] = [
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

pub(crate) fn ribat_cmd(args: &[&str]) -> Command {
    program_cmd(Path::new(env!("CARGO_BIN_EXE_ribat")), args)
}

/// `program` (a ribat build) with `args` and the custodians' passphrases.
pub(crate) fn program_cmd(program: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.args(args).env_remove("RIBAT_HOME");
    for (k, v) in PASSES {
        c.env(k, v);
    }
    c
}

pub(crate) fn ribat(args: &[&str]) -> std::process::Output {
    ribat_cmd(args).output().unwrap()
}

/// A node process, killed with SIGKILL when dropped; its output is in `DIR/node.log`, shown
/// when the test fails.
pub(crate) struct NodeProcess(pub(crate) Child, pub(crate) Option<PathBuf>);

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

pub(crate) fn start(dir: &Path) -> NodeProcess {
    start_with(dir, &[])
}

/// `ribat node` for `dir` with `extra` arguments, its output in `dir/node.log`.
pub(crate) fn start_with(dir: &Path, extra: &[&str]) -> NodeProcess {
    start_as(Path::new(env!("CARGO_BIN_EXE_ribat")), dir, extra)
}

/// Same, with the ribat build at `program`.
pub(crate) fn start_as(program: &Path, dir: &Path, extra: &[&str]) -> NodeProcess {
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
pub(crate) fn free_addr() -> String {
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
pub(crate) fn three_node_mesh(out: &Path) -> Vec<PathBuf> {
    mesh_with_gateways(out, &[1])
}

/// Same, with a gateway on each node of `gateways`.
pub(crate) fn mesh_with_gateways(out: &Path, gateways: &[u64]) -> Vec<PathBuf> {
    mesh_made_with(out, gateways, &[])
}

/// Same, `mesh init` given `extra` arguments besides.
pub(crate) fn mesh_made_with(out: &Path, gateways: &[u64], extra: &[&str]) -> Vec<PathBuf> {
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
pub(crate) fn approve_with(
    key_of: &str,
    out: &Path,
    who: &str,
    what: &[&str],
) -> std::process::Output {
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
pub(crate) fn approval_with_key_of(out: &Path, key_of: &str, who: &str, what: &[&str]) -> String {
    let o = approve_with(key_of, out, who, what);
    assert!(o.status.success(), "{}", common::text(&o));
    String::from_utf8_lossy(&o.stdout).trim().to_owned()
}

/// Administrator `who`'s approval of `what`, signed with their own key.
pub(crate) fn approval(out: &Path, who: &str, what: &[&str]) -> String {
    approval_with_key_of(out, who, who, what)
}

/// `ribat mesh revoke` through the node in `dir`, signed by administrator `admin` alone.
pub(crate) fn revoke(
    out: &Path,
    dir: &Path,
    admin: &str,
    serial: &str,
    reason: &str,
) -> std::process::Output {
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
pub(crate) fn status(dir: &Path) -> Vec<serde_json::Value> {
    let o = ribat(&["mesh", "status", "--json", "--dir", dir.to_str().unwrap()]);
    serde_json::from_slice(&o.stdout).unwrap_or_default()
}

/// Waits until every member in `live` answers, all name the same leader among `live`, and
/// each one's custodian answers (it confirmed the security state with that leader).
pub(crate) fn agreed_leader(dir: &Path, live: &[u64]) -> (u64, Vec<serde_json::Value>) {
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

/// Waits for the gateway of the node in `dir` to say where it listens (in its node.log).
pub(crate) fn gateway_addr(dir: &Path) -> String {
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
pub(crate) fn import_through(dir: &Path, src: &Path) {
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
pub(crate) fn running_with_fund(
    tmp: &Path,
    dirs: &[PathBuf],
    fund: (u32, u32, u32, u64),
) -> Vec<Option<NodeProcess>> {
    running_with_fund_and(tmp, dirs, fund, &[])
}

/// Same, node 1 started with `node1` arguments besides.
pub(crate) fn running_with_fund_and(
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
pub(crate) fn generate(src: &Path, persons: u32, employers: u32, months: u32, seed: u64) {
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
pub(crate) fn issue(
    deployment: &Path,
    name: &str,
    role: &str,
    institution: &str,
) -> (PathBuf, String) {
    let (who, serial) = issue_only(deployment, name, role, institution);
    grant(deployment.parent().unwrap(), &[&who]);
    (who, serial)
}

/// `mesh approve --grant` by the mesh's first two administrators, then `mesh grant` through
/// node 1, which must succeed; returns once every node of the mesh in `out` holds the grant.
pub(crate) fn grant(out: &Path, who: &[&Path]) {
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
pub(crate) fn files_holding(dir: &Path, values: &[&str]) -> Vec<PathBuf> {
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
pub(crate) fn poll_until<T>(
    within: Duration,
    every: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
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
pub(crate) fn in_days(days: i64) -> String {
    in_seconds(days * 86_400)
}

pub(crate) use crate::common::in_seconds;

/// Whether the node in `dir` holds `name`'s certificate as granted and not revoked.
pub(crate) fn granted_in(dir: &Path, name: &str) -> bool {
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
pub(crate) fn issue_only(
    deployment: &Path,
    name: &str,
    role: &str,
    institution: &str,
) -> (PathBuf, String) {
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
pub(crate) struct Clerk {
    pub(crate) cfg: common::api::Client,
    pub(crate) ca: PathBuf,
    pub(crate) who: PathBuf,
}

impl Clerk {
    /// A clerk `name` of `institution`, issued where the CA's key is kept beside the mesh's
    /// node directories `dirs` (in `out`) and granted by two administrators.
    pub(crate) fn granted(out: &Path, dirs: &[PathBuf], name: &str, institution: &str) -> Self {
        let (who, _) = issue(&out.join("deployment"), name, "clerk", institution);
        Self::new(dirs[0].join("ca.pem"), who)
    }

    /// The holder of the identity files in `who`, trusting the CA in `ca`.
    pub(crate) fn new(ca: PathBuf, who: PathBuf) -> Self {
        Self {
            cfg: common::api::config(&ca, Some(&who)),
            ca,
            who,
        }
    }

    /// A read with a fresh token; the token request's answer when it gets none.
    pub(crate) fn read(&self, gateway: &str, cnss: &str) -> ribat_net::client::Response {
        let r =
            common::api::call(gateway, self.cfg.clone(), "POST", "/v1/token", None, None).unwrap();
        match r.status {
            200 => self.read_with(gateway, cnss, r.json()["token"].as_str().unwrap()),
            _ => r,
        }
    }

    /// A token from `gateway`.
    pub(crate) fn token(&self, gateway: &str) -> String {
        common::api::token(gateway, &self.ca, &self.who)
    }

    /// A read with a token the clerk already holds.
    pub(crate) fn read_with(
        &self,
        gateway: &str,
        cnss: &str,
        token: &str,
    ) -> ribat_net::client::Response {
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

/// `ribat mesh init` of `n` nodes with a gateway on each of `gateways`, the custodians'
/// passphrases in owner-only files under `passes`; the node directories.
pub(crate) fn mesh_of(out: &Path, n: usize, gateways: &[u64], passes: &Path) -> Vec<PathBuf> {
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
pub(crate) fn start_from(dir: &Path, passes: &Path) -> NodeProcess {
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

/// A node's custodian asked directly, as a gateway holding the certificate in `cert` would
/// forward a request: the way a stolen gateway certificate is used.
pub(crate) struct Direct {
    pub(crate) addr: String,
    pub(crate) cfg: common::api::Client,
}

impl Direct {
    /// Every node's custodian in `dirs`, asked with `cert` (trusting `ca`).
    pub(crate) fn every(dirs: &[PathBuf], ca: &Path, cert: &Path) -> Vec<Self> {
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
    pub(crate) fn ask(
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
    pub(crate) fn ask_as_signed(
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
pub(crate) fn refused_with(r: &ribat_net::client::Response, status: u16, words: &str, who: &str) {
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

/// Waits until each member in `ids` (asked from `dir`) holds exactly `want` as Raft voters
/// and has applied as far as the leader; the last status.
pub(crate) fn voters_everywhere(dir: &Path, ids: &[u64], want: &[u64]) -> Vec<serde_json::Value> {
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

/// Two administrators put `dir`'s rules, edited by `edit`, in force as `version` through
/// the log; returns once every member detects by them.
pub(crate) fn rules_in_force(
    out: &Path,
    dir: &Path,
    version: u64,
    edit: impl Fn(&mut serde_json::Value),
) {
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

/// Two administrators' approvals of `what` (`mesh approve` arguments) and the proposal
/// `mesh COMMAND` with `args` through the node in `dir` carrying both, which must succeed.
pub(crate) fn by_two_admins(out: &Path, what: &[&str], command: &str, dir: &Path, args: &[&str]) {
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

/// A mesh of three on one SQLite store with node-1's gateway, a fund imported, and node-4
/// prepared on the same store, started and added by two administrators; node-4's own
/// passphrase for custodian 2 is written now or (`pass_now` false) left to the test.
pub(crate) struct Joined {
    pub(crate) out: PathBuf,
    pub(crate) passes: PathBuf,
    pub(crate) dirs: Vec<PathBuf>,
    pub(crate) nodes: Vec<Option<NodeProcess>>,
    pub(crate) n4: PathBuf,
    pub(crate) pass4: PathBuf,
    pub(crate) p4: Option<NodeProcess>,
}

/// The console page at `path` of `gateway`, as the holder of the identity in `who` sees it.
pub(crate) fn console_page(gateway: &str, dir: &Path, who: &Path, path: &str) -> String {
    let cfg = common::api::tls_config(&dir.join("ca.pem"), Some(who));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(async {
        let host = gateway.rsplit_once(':').unwrap().0;
        let mut c = ribat_net::client::Connection::open(cfg, gateway, host, false)
            .await
            .unwrap();
        c.send_as_browser("GET", path, Vec::new(), None, &[])
            .await
            .unwrap()
    });
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    String::from_utf8(r.body).unwrap()
}
