//! A running `ribat serve` (or `ribat custodian`) process and mTLS calls to it, as a
//! partner system or an attacker would make them.

use super::{command, fund_and_keys, ok, ribat};
use ribat_identity::signed::RequestSigner;
use ribat_net::client::{ClientConfig, ClientError, Connection, Response};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

/// A server process, killed when dropped.
pub(crate) struct Server {
    pub child: Child,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `ribat ARGS…` and waits for its "listening on https://ADDR" line.
pub(crate) fn start(home: &Path, args: &[&str], env_remove: &[&str]) -> Server {
    let mut c = command(home, args);
    for k in env_remove {
        c.env_remove(k);
    }
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    let addr = line
        .split("https://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    Server { child, addr }
}

/// The files of an identity issued in `home`.
pub(crate) fn identity(home: &Path, name: &str) -> PathBuf {
    home.join("identity/issued").join(name)
}

/// Issues an identity with the CLI.
pub(crate) fn add(home: &Path, name: &str, role: &str, institution: &str) {
    ok(ribat(
        home,
        &[
            "identity",
            "add",
            "--name",
            name,
            "--role",
            role,
            "--institution",
            institution,
        ],
    ));
}

/// What an import of a generated fund also marks, from the generator's `ribat-only` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Marks {
    /// Nothing: every person is ordinary.
    Nothing,
    /// The honey persons.
    Honey,
    /// The honey persons and the public figures.
    HoneyAndPublicFigures,
}

/// A node holding a generated fund (one month) imported, with the deployment's CA made and
/// each `(name, role, institution)` issued: where the gateway's tests start.
pub(crate) struct Served {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) home: PathBuf,
    pub(crate) fund: ribat_sim::Fund,
    /// The deployment CA's certificate, as clients pin it.
    pub(crate) ca: PathBuf,
}

/// Builds a [`Served`] node of `persons` and `employers` from `seed`.
pub(crate) fn served(
    persons: usize,
    employers: usize,
    seed: u64,
    marks: Marks,
    identities: &[(&str, &str, &str)],
) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let (src, home, fund) = fund_and_keys(dir.path(), persons, employers, 1, seed);
    let only = src.join("ribat-only");
    let files = [src.join("persons.csv"), src.join("employers.csv")];
    let (honey, figures) = (only.join("honey.csv"), only.join("sensitive.csv"));
    let mut args: Vec<&str> = vec!["import"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    if marks != Marks::Nothing {
        args.extend(["--honey", honey.to_str().unwrap()]);
    }
    if marks == Marks::HoneyAndPublicFigures {
        args.extend(["--public-figures", figures.to_str().unwrap()]);
    }
    args.extend(["--passphrases", "env"]);
    ok(ribat(&home, &args));
    ok(ribat(&home, &["identity", "init"]));
    for (name, role, institution) in identities {
        add(&home, name, role, institution);
    }
    let ca = identity(&home, "gateway.embedded").join("ca.pem");
    Served {
        _dir: dir,
        home,
        fund,
        ca,
    }
}

/// A client: its TLS settings, and the signer of its requests when it has a certificate.
#[derive(Clone)]
pub(crate) struct Client {
    pub tls: std::sync::Arc<ClientConfig>,
    pub signer: Option<std::sync::Arc<RequestSigner>>,
}

impl Client {
    /// The same client, not signing its requests.
    pub(crate) fn unsigned(&self) -> Self {
        Self {
            tls: self.tls.clone(),
            signer: None,
        }
    }
}

/// A client from an identity directory (`None`: no client certificate), signing its
/// requests with its certificate's key.
pub(crate) fn config(ca: &Path, who: Option<&Path>) -> Client {
    Client {
        tls: tls_config(ca, who),
        signer: who.map(signer),
    }
}

/// Client TLS settings from an identity directory (`None`: no client certificate).
pub(crate) fn tls_config(ca: &Path, who: Option<&Path>) -> std::sync::Arc<ClientConfig> {
    let ca = std::fs::read_to_string(ca).unwrap();
    let pair = who.map(|d| {
        (
            std::fs::read_to_string(d.join("cert.pem")).unwrap(),
            std::fs::read_to_string(d.join("key.pem")).unwrap(),
        )
    });
    ribat_identity::tls::client_config(
        &ca,
        pair.as_ref().map(|(c, k)| (c.as_str(), k.as_str())),
        false,
    )
    .unwrap()
}

/// One request on a fresh connection (HTTP/1.1), signed when the client signs and a token
/// goes with it.
pub(crate) fn call(
    addr: &str,
    cfg: Client,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Result<Response, ClientError> {
    call_signing(addr, cfg.tls, cfg.signer, method, path, token, body)
}

/// The signer of an identity issued in a directory (`cert.pem`, `key.pem`).
pub(crate) fn signer(who: &Path) -> std::sync::Arc<RequestSigner> {
    std::sync::Arc::new(RequestSigner::in_dir(who).unwrap())
}

/// Same, signed by `signer` (`Ribat-Signature`) when a token goes with it.
pub(crate) fn call_signing(
    addr: &str,
    cfg: std::sync::Arc<ClientConfig>,
    signer: Option<std::sync::Arc<RequestSigner>>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Result<Response, ClientError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // The certificate names the host the node listens on.
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let mut c = Connection::open(cfg, addr, host, false).await?;
        if let Some(s) = signer {
            c = c.signing(s);
        }
        c.send(
            method,
            path,
            token,
            body.map(|b| serde_json::to_vec(&b).unwrap()),
        )
        .await
    })
}

/// A token from POST /v1/token for the holder of `who`.
pub(crate) fn token(addr: &str, ca: &Path, who: &Path) -> String {
    let r = call(addr, config(ca, Some(who)), "POST", "/v1/token", None, None).unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["token"].as_str().unwrap().to_owned()
}

/// The problem type's last segment of a problem+json response.
pub(crate) fn problem(r: &Response) -> String {
    assert_eq!(r.content_type, "application/problem+json", "{r:?}");
    r.json()["type"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned()
}

/// An identity calling a running gateway with its own certificate and a token bound to it,
/// signing each request with its certificate's key.
pub(crate) struct Caller {
    pub addr: String,
    pub cfg: std::sync::Arc<ClientConfig>,
    pub token: String,
    pub signer: std::sync::Arc<RequestSigner>,
}

impl Caller {
    /// `name`'s certificate (issued in `home`, trusting `ca`) and a fresh token.
    pub(crate) fn new(home: &Path, ca: &Path, gw: &Server, name: &str) -> Self {
        let who = identity(home, name);
        Self {
            addr: gw.addr.clone(),
            cfg: tls_config(ca, Some(&who)),
            token: token(&gw.addr, ca, &who),
            signer: signer(&who),
        }
    }

    /// `GET path`.
    pub(crate) fn get(&self, path: &str) -> Response {
        call_signing(
            &self.addr,
            self.cfg.clone(),
            Some(self.signer.clone()),
            "GET",
            path,
            Some(&self.token),
            None,
        )
        .unwrap()
    }

    /// `POST path` with a JSON body.
    pub(crate) fn post(&self, path: &str, body: serde_json::Value) -> Response {
        call_signing(
            &self.addr,
            self.cfg.clone(),
            Some(self.signer.clone()),
            "POST",
            path,
            Some(&self.token),
            Some(body),
        )
        .unwrap()
    }
}

/// What a dump made by [`leaked_dump`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DumpTruth {
    /// Rows of real (not honey) persons, every value as the fund holds it.
    pub(crate) genuine: u64,
    /// Rows of real persons with a birth date the fund never held.
    pub(crate) altered: u64,
    /// Rows of honey persons.
    pub(crate) honey: u64,
    /// Rows naming nobody of the fund.
    pub(crate) fabricated: u64,
}

/// A leaked dump of `rows` rows as one is found outside: every person of the fund with
/// the values the fund holds (a CSV of identities, French headers), a second row for every
/// third real person with a birth date changed, then rows with made-up CNSS numbers nobody
/// holds, until `rows`.
pub(crate) fn leaked_dump(fund: &ribat_sim::Fund, rows: usize) -> (String, DumpTruth) {
    use std::fmt::Write as _;
    let mut text = String::from("N° CNSS,CIN,Nom,Prénom,Date de naissance\n");
    let mut truth = DumpTruth {
        genuine: 0,
        altered: 0,
        honey: 0,
        fabricated: 0,
    };
    let held: std::collections::HashSet<&str> =
        fund.persons.iter().map(|p| p.cnss.as_str()).collect();
    for p in fund.persons.iter().take(rows) {
        writeln!(
            text,
            "{},{},{},{},{}",
            p.cnss,
            p.cin,
            p.surname.to_uppercase(),
            p.given,
            p.birth_date
        )
        .unwrap();
        if p.honey {
            truth.honey += 1;
        } else {
            truth.genuine += 1;
        }
    }
    let real = fund.persons.iter().take(rows).filter(|p| !p.honey);
    for p in real.step_by(3) {
        if truth.genuine + truth.altered + truth.honey >= rows as u64 {
            break;
        }
        writeln!(
            text,
            "{},{},{},{},1901-01-01",
            p.cnss,
            p.cin,
            p.surname.to_uppercase(),
            p.given
        )
        .unwrap();
        truth.altered += 1;
    }
    let mut n = 0u64;
    while (truth.genuine + truth.altered + truth.honey + truth.fabricated) < rows as u64 {
        n += 1;
        // Nine digits from a counter, spread out; never one the fund holds.
        let cnss = format!("{:09}", (n * 7_919 + 104_729) % 1_000_000_000);
        if held.contains(cnss.as_str()) {
            continue;
        }
        writeln!(
            text,
            "{cnss},ZZ{:06},FAKE{},Nom{},1980-01-{:02}",
            n % 1_000_000,
            n % 997,
            n % 991,
            1 + n % 28
        )
        .unwrap();
        truth.fabricated += 1;
    }
    (text, truth)
}
