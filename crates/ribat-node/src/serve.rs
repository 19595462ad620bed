//! `ribat serve` (the gateway over mTLS, with the embedded custodians and any networked
//! ones) and `ribat custodian` (one custodian as its own process).

use crate::bail;
use crate::embedded::{DEPLOYMENT, Embedded, open_store};
use crate::error::{Context, Result};
use crate::home::Home;
use crate::identity::{GATEWAY_NAME, dir as identity_dir, open_ca, tls_files};
use crate::passphrases::Source;
use ribat_custodian::clock::{Clock, SystemClock};
use ribat_custodian::policy::Policy;
use ribat_custodian::serve::{CustodianService, router as custodian_router};
use ribat_custodian::{Custodian, LocalCustodian};
use ribat_gateway::api::{App, router};
use ribat_gateway::gate::Gate;
use ribat_gateway::link::RemoteCustodian;
use ribat_gateway::metrics::Metrics;
use ribat_gateway::watch::{CustodianEvents, Watch};
use ribat_identity::TokenVerifier;
use ribat_identity::tls::{ServerTls, client_config};
use ribat_net::listener::{TlsStats, serve};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A custodian in another process: `INDEX=HOST:PORT`.
#[derive(Debug, Clone)]
pub struct RemoteSpec {
    /// Custodian index.
    pub index: u32,
    /// Address.
    pub addr: String,
}

impl std::str::FromStr for RemoteSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (i, addr) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}`: expected INDEX=HOST:PORT, e.g. 3=127.0.0.1:7443"))?;
        let index = i
            .parse()
            .map_err(|_| format!("`{s}`: custodian index `{i}` is not a number"))?;
        if !addr.contains(':') {
            return Err(format!("`{s}`: `{addr}` has no port"));
        }
        Ok(Self {
            index,
            addr: addr.to_owned(),
        })
    }
}

pub(crate) fn read_policy(path: &Path) -> Result<Policy> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the gateway's policy {} (written by `ribat keys init`)",
            path.display()
        )
    })?;
    Policy::from_json(&text).map_err(|e| crate::err!("{}: {e}", path.display()))
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Resolves at SIGINT (Ctrl-C) or SIGTERM (a service manager stopping the node).
pub(crate) async fn stop_signal() -> Result<()> {
    StopSignal::watch()?.wait().await
}

/// SIGINT and SIGTERM, watched from the moment it is made: made before a process says it
/// is ready, so that a signal sent as soon as it says so is not the default's (death
/// without stopping its children).
pub(crate) struct StopSignal {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignal {
    /// Starts watching (inside a runtime: `Runtime::enter` first).
    pub(crate) fn watch() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot watch for Ctrl-C")?,
        })
    }

    /// Resolves at the first of them.
    pub(crate) async fn wait(mut self) -> Result<()> {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        Ok(())
    }
}

fn token_verifier(home: &Home) -> Result<TokenVerifier> {
    let path = identity_dir(home).join(ribat_identity::ca::TOKEN_PUB);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the token-verifying key {}", path.display()))?;
    Ok(TokenVerifier::from_paserk(DEPLOYMENT, &text)?)
}

/// The detectors' rules file in HOME.
pub const RULES_FILE: &str = "rules.json";
/// Record ids of public figures (one per line) in HOME, for the public-figure detector.
pub const PUBLIC_FIGURES_FILE: &str = "public-figures.txt";

/// Reads HOME/rules.json (the defaults, with a warning, for a node made before it existed).
pub fn read_rules(home: &Home, policy: &Policy) -> Result<ribat_detect::Rules> {
    let path = home.root().join(RULES_FILE);
    let rules = match std::fs::read_to_string(&path) {
        Ok(text) => ribat_detect::Rules::from_json(&text)
            .map_err(|e| crate::err!("{}: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "warning: no {}; the detectors run on the default rules",
                path.display()
            );
            ribat_detect::Rules::default()
        }
        Err(e) => return Err(crate::err!("cannot read {}: {e}", path.display())),
    };
    Ok(rules.with_policy(policy))
}

fn read_public_figures(home: &Home) -> Result<std::collections::HashSet<String>> {
    let path = home.root().join(PUBLIC_FIGURES_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(crate::err!("cannot read {}: {e}", path.display())),
    }
}

/// What `ribat serve` is asked for besides the node.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Custodians in other processes.
    pub remotes: Vec<RemoteSpec>,
    /// Deadline for networked custodians.
    pub deadline: Duration,
    /// Where events and decisions go besides the decision log.
    pub outputs: ribat_gateway::watch::Outputs,
    /// The networked custodians learn what this gateway audited from the entries their
    /// witnesses cosign (a mesh), not from its word (`POST /v1/audited`).
    pub audited_by_log: bool,
    /// In a mesh after a resharing: the witness keys new custodians published through the
    /// log, by index (pinned for a custodian the ceremony did not put on its node).
    pub published_witnesses: std::collections::BTreeMap<u32, String>,
    /// The read routes refuse a request its sender did not sign (a mesh: its custodians
    /// would refuse it anyway); otherwise signed requests are checked and others taken.
    pub signed_requests: bool,
}

/// A gateway ready to serve: the app, the node under it, and its TLS.
pub struct Assembled {
    /// The routes' shared state.
    pub app: Arc<App>,
    /// The node.
    pub node: Arc<Embedded>,
    /// Server TLS.
    pub tls: Arc<ServerTls>,
    /// TLS counters.
    pub stats: Arc<TlsStats>,
    /// The networked custodians it asks.
    pub remotes: Vec<Arc<RemoteCustodian>>,
}

/// What a gateway needs to read through custodians in other processes.
pub(crate) struct Networked {
    /// The custodians, reached over mTLS with the gateway's certificate.
    pub remotes: Vec<Arc<RemoteCustodian>>,
    /// Who signs the tokens bound to clients' certificates: this gateway, or the mesh's
    /// identity service.
    pub tokens: ribat_gateway::app::Tokens,
    /// Mints the node's service identity's tokens (it opens the blind-index and
    /// leak-digest keys), bound to the gateway's certificate.
    pub service_tokens: crate::embedded::ServiceTokens,
    /// On a mesh node, the custodians' witnesses of this gateway's audit log, over the same
    /// links, with the keys the ceremony pinned.
    pub witnesses: Vec<Arc<dyn ribat_audit::Cosigner>>,
}

/// The custodians in other processes: `remotes` as given, or on a mesh node every
/// custodian of the mesh (its own node's included, over its node address).
pub(crate) fn networked(
    home: &Home,
    remotes: &[RemoteSpec],
    published: &std::collections::BTreeMap<u32, String>,
    rt: &tokio::runtime::Handle,
    deadline: Duration,
    clock: &Arc<dyn Clock>,
) -> Result<Networked> {
    let files = tls_files(home, GATEWAY_NAME);
    if crate::mesh::is_node(home) && !files.cert.exists() {
        bail!(
            "{} is a mesh node without a gateway: reads and imports go through a node that runs one (`gateway` in its mesh.json; `ribat mesh init --gateway ID=HOST:PORT`)",
            home.root().display()
        );
    }
    let ca = open_ca(home)?;
    let read = |p: &Path| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let key = zeroize::Zeroizing::new(read(&files.key)?);
    let to_custodians = client_config(&ca.cert_pem()?, Some((&read(&files.cert)?, &key)), true)?;
    let mesh = match crate::mesh::is_node(home) {
        true => Some(crate::mesh::MeshFile::read(home.root())?),
        false => None,
    };
    // A mesh node's gateway is handed the custodian set in force; mesh.json's custodians
    // (the ceremony's) when it is not.
    let specs = match &mesh {
        Some(m) if remotes.is_empty() => m
            .custodians()
            .into_iter()
            .map(|(index, addr)| RemoteSpec { index, addr })
            .collect(),
        _ => remotes.to_vec(),
    };
    // Every peer is reached with the gateway's certificate, the certificate it shows
    // naming the host it listens on.
    let link_to = |addr: &str| {
        ribat_gateway::link::Link::new(
            addr,
            crate::mesh::host_of(addr),
            to_custodians.clone(),
            rt.clone(),
            deadline,
        )
    };
    let remotes: Vec<Arc<RemoteCustodian>> = specs
        .iter()
        .map(|r| Arc::new(RemoteCustodian::new(r.index, link_to(&r.addr))))
        .collect();
    // The node opens its blind-index key as its service identity; a networked custodian
    // wants a token for that too, bound to the gateway's certificate.
    let gateway_peer = {
        let pem = read(&files.cert)?;
        let der = ribat_identity::tls::certs_from_pem(&pem, "gateway certificate")?;
        let first = der
            .first()
            .context("gateway certificate file holds no certificate")?;
        ribat_identity::PeerIdentity::from_der(first.as_ref())?
    };
    let identity_service = mesh
        .as_ref()
        .filter(|m| !m.token_service.is_empty() && !m.token_service.contains(&m.id))
        .map(|m| identity_link(m, &link_to, rt));
    let (tokens, service_tokens): (ribat_gateway::app::Tokens, crate::embedded::ServiceTokens) =
        match identity_service {
            Some(link) => {
                let link = Arc::new(link);
                let mint = link.clone();
                (
                    ribat_gateway::app::Tokens::Forwards(link),
                    Arc::new(move |who: &ribat_custodian::Requester| {
                        let ask = ribat_identity::service::ServiceTokenAsk {
                            identity: who.identity.clone(),
                            role: who.role.clone(),
                        };
                        match mint.service_token(&ask) {
                            Ok(token) => Ok(ribat_custodian::request::Bearer(token)),
                            Err(r) => Err(crate::err!(
                                "no token for {} from the mesh's identity service: {}",
                                who.identity,
                                r
                            )),
                        }
                    }),
                )
            }
            None => {
                let issuer = Arc::new(ca.token_issuer().with_context(|| {
                    format!(
                        "this gateway signs its clients' tokens, so {} must hold the token key",
                        crate::identity::dir(home).display()
                    )
                })?);
                let (mint, clock) = (issuer.clone(), clock.clone());
                (
                    ribat_gateway::app::Tokens::Signs(issuer),
                    Arc::new(move |who: &ribat_custodian::Requester| {
                        let now =
                            time::OffsetDateTime::from_unix_timestamp(i64::try_from(clock.now())?)?;
                        let (token, _) = mint.issue(
                            &ribat_identity::PeerIdentity {
                                name: who.identity.clone(),
                                role: who.role.clone(),
                                ..gateway_peer.clone()
                            },
                            DEPLOYMENT,
                            now,
                            60,
                        )?;
                        Ok(ribat_custodian::request::Bearer(token))
                    }),
                )
            }
        };
    let mut witnesses: Vec<Arc<dyn ribat_audit::Cosigner>> = Vec::new();
    if let Some(m) = &mesh {
        let origin = ribat_gateway::node_log::origin(DEPLOYMENT, &crate::mesh::audit_node(home)?);
        let (asked, vouched) = mesh_witnesses(m, &origin, &remotes, published)?;
        // Keys new custodians published through the log are pinned before the log opens
        // (it refuses witnesses it never pinned).
        ribat_gateway::node_log::pin(&home.root().join("audit"), &vouched)?;
        witnesses = asked;
    }
    Ok(Networked {
        remotes,
        tokens,
        service_tokens,
        witnesses,
    })
}

/// The mesh's identity service as a gateway reaches it: the nodes `mesh.json` names, over
/// their mesh listeners, with the gateway's certificate.
fn identity_link(
    m: &crate::mesh::MeshFile,
    link_to: &dyn Fn(&str) -> ribat_gateway::link::Link,
    rt: &tokio::runtime::Handle,
) -> ribat_gateway::link::IdentityLink {
    let nodes = m
        .token_service
        .iter()
        .filter_map(|id| m.peers.iter().find(|p| p.id == *id))
        .map(|p| (p.name.clone(), link_to(&p.addr)))
        .collect();
    ribat_gateway::link::IdentityLink::new(nodes, rt.clone())
}

/// The witnesses a gateway asks, and the keys among theirs to pin first.
pub(crate) type MeshWitnesses = (
    Vec<Arc<dyn ribat_audit::Cosigner>>,
    Vec<ribat_audit::VerifierKey>,
);

/// The witnesses a mesh gateway asks, one per networked custodian: the key the ceremony
/// pinned while that custodian is on the ceremony's node, else the key its node published
/// through the log (returned apart, to be pinned). A custodian with neither is not asked.
pub(crate) fn mesh_witnesses(
    m: &crate::mesh::MeshFile,
    origin: &str,
    remotes: &[Arc<RemoteCustodian>],
    published: &std::collections::BTreeMap<u32, String>,
) -> Result<MeshWitnesses> {
    let ceremony_addr: std::collections::BTreeMap<u32, String> =
        m.custodians().into_iter().collect();
    let ceremony_key: std::collections::BTreeMap<u32, ribat_audit::VerifierKey> =
        m.witness_keys()?.into_iter().collect();
    let (mut asked, mut vouched) = (Vec::new(), Vec::new());
    for r in remotes {
        let i = r.index();
        let key = match (
            ceremony_addr.get(&i),
            ceremony_key.get(&i),
            published.get(&i),
        ) {
            (Some(addr), Some(key), _) if addr == r.addr() => key.clone(),
            (_, _, Some(text)) => {
                let key = ribat_audit::VerifierKey::parse(text).map_err(|e| {
                    crate::err!("custodian {i}'s witness key, as the log holds it: {e}")
                })?;
                vouched.push(key.clone());
                key
            }
            _ => continue,
        };
        asked.push(Arc::new(ribat_gateway::link::RemoteWitness::new(
            r.clone(),
            key,
            origin,
        )) as Arc<dyn ribat_audit::Cosigner>);
    }
    Ok((asked, vouched))
}

/// Opens the node in `home` as a gateway: custodians (in process and networked), the
/// audit log, the policy, the detectors and their decision log, all on `clock`.
pub fn assemble(
    home: &Home,
    passphrases: &Source,
    o: &ServeOptions,
    rt: &tokio::runtime::Handle,
    clock: Arc<dyn Clock>,
) -> Result<Assembled> {
    let files = tls_files(home, GATEWAY_NAME);
    let tls = Arc::new(ServerTls::new(files.clone()).context("gateway TLS")?);
    let Networked {
        remotes,
        tokens,
        service_tokens,
        witnesses,
    } = networked(
        home,
        &o.remotes,
        &o.published_witnesses,
        rt,
        o.deadline,
        &clock,
    )?;
    let remote: Vec<Arc<dyn Custodian>> = remotes
        .iter()
        .map(|r| r.clone() as Arc<dyn Custodian>)
        .collect();
    let node = Arc::new(Embedded::open_with_token(
        home,
        passphrases,
        clock.clone(),
        remote,
        Some(service_tokens),
        witnesses,
    )?);
    let policy = read_policy(&home.root().join("policy.json"))?;
    for c in &node.custodians {
        let theirs = home
            .custodian_dir(c.index() as usize)
            .join(ribat_custodian::keystore::POLICY_FILE);
        if read_policy(&theirs).is_ok_and(|p| p != policy) {
            eprintln!(
                "warning: the gateway's policy differs from custodian {}'s; each enforces its own, so the stricter wins per request",
                c.index()
            );
        }
    }
    let rules = read_rules(home, &policy)?;
    let watch = Arc::new(Watch::open(
        &home.root().join("decisions"),
        GATEWAY_NAME,
        rules,
        clock.clone(),
        &o.outputs,
        read_public_figures(home)?,
    )?);
    {
        let w = Arc::downgrade(&watch);
        let pending = match o.audited_by_log {
            true => None,
            false => audited_to_remotes(&remotes, rt),
        };
        node.vault
            .on_audited(Box::new(move |id: &str, liars: &[(u32, String)]| {
                if let Some(p) = &pending
                    && let Ok(mut q) = p.lock()
                {
                    q.push(id.to_owned());
                }
                if let Some(w) = w.upgrade() {
                    let event = |kind| ribat_detect::Event {
                        time_ms: w.clock().now_ms(),
                        component: GATEWAY_NAME.to_owned(),
                        kind,
                    };
                    for (custodian, reason) in liars {
                        w.observe(&event(ribat_detect::Kind::ProofFailure {
                            custodian: *custodian,
                            reason: reason.clone(),
                        }));
                    }
                    w.observe(&event(ribat_detect::Kind::Audited {
                        request_id: id.to_owned(),
                    }));
                }
            }));
    }
    // What this gateway enforces, for the record (and the SIEM).
    for (what, path) in [
        ("policy.json", home.root().join("policy.json")),
        (RULES_FILE, home.root().join(RULES_FILE)),
    ] {
        if let Ok(bytes) = std::fs::read(&path) {
            use sha2::Digest;
            watch.observe(&ribat_detect::Event {
                time_ms: clock.now_ms(),
                component: GATEWAY_NAME.to_owned(),
                kind: ribat_detect::Kind::PolicyChange {
                    what: what.to_owned(),
                    digest: hex::encode(sha2::Sha256::digest(&bytes)),
                },
            });
        }
    }
    for r in &remotes {
        watch.add_enforcer(r.clone());
    }
    // A custodian whose proof failed is set aside by a signed decision.
    watch.add_enforcer(Arc::new(ribat_gateway::watch::ReaderEnforcer(
        node.vault.clone(),
    )));
    for c in &node.custodians {
        watch.add_enforcer(c.clone());
        c.set_observer(Arc::new(CustodianEvents {
            watch: Arc::downgrade(&watch),
            node: GATEWAY_NAME.to_owned(),
        }))?;
    }
    let stats = Arc::new(TlsStats::default());
    hear_refused_handshakes(&stats, &watch, GATEWAY_NAME);
    let app = Arc::new(App {
        vault: node.vault.clone(),
        gate: Gate::new(policy, token_verifier(home)?, clock),
        tokens,
        audience: DEPLOYMENT.to_owned(),
        metrics: Metrics::default(),
        tls: stats.clone(),
        uploads: {
            let uploads = home.root().join("uploads");
            let cleared = ribat_gateway::clear_unanswered_uploads(&uploads);
            if cleared > 0 {
                eprintln!(
                    "deleted {cleared} upload(s) a crash left unanswered in {} (their employers send them again)",
                    uploads.display()
                );
            }
            uploads
        },
        watch,
        exports: Some(Arc::new(crate::exports::NodeDesk::new(
            home.clone(),
            node.clone(),
        ))),
        intake: Some(crate::intake::NodeIntake::start(home, node.clone())?),
        leaks: Some(crate::leak_desk::NodeLeaks::start(home, node.clone())?),
        mesh: std::sync::OnceLock::new(),
        // A mesh's register is the replicated state's: granted and revoked through the log.
        identities: (!crate::mesh::is_node(home))
            .then(|| Arc::new(crate::identity_desk::NodeIdentities::new(home.clone())) as _),
        upload_slots: Arc::new(tokio::sync::Semaphore::new(
            ribat_gateway::api::CONCURRENT_UPLOADS,
        )),
        signatures: ribat_gateway::signed::Signatures::new(o.signed_requests, Some(tls.clone())),
        register: Some(crate::identity::dir(home).join(ribat_identity::ca::REGISTER)),
    });
    Ok(Assembled {
        app,
        node,
        tls,
        stats,
        remotes,
    })
}

/// Every half second, tells each networked custodian the request ids audited since the
/// last time (they stop answering a gateway certificate whose answers go unaudited).
fn audited_to_remotes(
    remotes: &[Arc<RemoteCustodian>],
    rt: &tokio::runtime::Handle,
) -> Option<Arc<std::sync::Mutex<Vec<String>>>> {
    if remotes.is_empty() {
        return None;
    }
    let pending = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (queue, remotes) = (pending.clone(), remotes.to_vec());
    rt.spawn(async move {
        // What a custodian has not heard yet is sent again (a lost batch would read as
        // answers nobody audited).
        let mut owed: Vec<Vec<String>> = vec![Vec::new(); remotes.len()];
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let ids = queue
                .lock()
                .map(|mut q| std::mem::take(&mut *q))
                .unwrap_or_default();
            for (r, owed) in remotes.iter().zip(owed.iter_mut()) {
                owed.extend(ids.iter().cloned());
                if owed.is_empty() {
                    continue;
                }
                match r.post_audited(owed.clone()).await {
                    Ok(()) => owed.clear(),
                    Err(e) => eprintln!(
                        "warning: could not tell custodian {} what was audited ({} ids owed): {e}",
                        r.index(),
                        owed.len()
                    ),
                }
            }
        }
    });
    Some(pending)
}

/// `ribat serve`.
pub fn gateway(home: &Home, passphrases: &Source, listen: &str, o: &ServeOptions) -> Result<()> {
    let rt = runtime()?;
    let Assembled {
        app,
        node,
        tls,
        stats,
        ..
    } = assemble(home, passphrases, o, rt.handle(), Arc::new(SystemClock))?;
    // Third parties past their review date are refused; a week before, a finding a day.
    let register = crate::reviews::vet_on_node(home, &tls, Arc::new(SystemClock))?;
    let ca_file = tls_files(home, GATEWAY_NAME).ca;
    let watch = app.watch.clone();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        println!(
            "gateway listening on https://{addr} (mTLS; CA {})",
            ca_file.display()
        );
        std::io::stdout().flush()?;
        // Where `ribat decisions release` finds this gateway.
        let _ = std::fs::write(home.root().join(GATEWAY_ADDR_FILE), format!("{addr}\n"));
        let checkpoints = spawn_checkpoints(node.clone(), Duration::from_secs(10));
        let reviews = {
            let watch = watch.clone();
            tokio::spawn(async move {
                let mut notices = crate::reviews::Notices::default();
                loop {
                    let (r, w) = (register.clone(), watch.clone());
                    notices = tokio::task::spawn_blocking(move || {
                        let _ = crate::reviews::raise_due(&r, &mut notices, &w, GATEWAY_NAME);
                        notices
                    })
                    .await
                    .unwrap_or_default();
                    tokio::time::sleep(Duration::from_secs(600)).await;
                }
            })
        };
        tokio::select! {
            r = serve(listener, tls, router(app), stats) => r?,
            r = stop_signal() => r?,
        }
        checkpoints.abort();
        reviews.abort();
        watch.flush();
        eprintln!("stopping: signing a last checkpoint of the audit log");
        let n = node.clone();
        tokio::task::spawn_blocking(move || n.checkpoint()).await??;
        Ok(())
    })
}

/// Every handshake a listener refuses (no, unknown, expired, revoked or malformed
/// certificate; not TLS; too slow) reaches the detectors of `component` (and the SIEM,
/// where they write to it) as an authentication failure from that address, as a refused
/// token does from a certificate. A peer that connects and goes away (a load balancer's
/// port check) is not one.
pub(crate) fn hear_refused_handshakes(stats: &TlsStats, watch: &Arc<Watch>, component: &str) {
    let component = component.to_owned();
    use ribat_net::listener::HandshakeRefusal;
    let w = Arc::downgrade(watch);
    let _ = stats.on_refusal.set(Arc::new(
        move |remote: std::net::SocketAddr, why: HandshakeRefusal| {
            if matches!(why, HandshakeRefusal::Other | HandshakeRefusal::ServerFull) {
                return;
            }
            let Some(w) = w.upgrade() else { return };
            let event = ribat_detect::Event {
                time_ms: w.clock().now_ms(),
                component: component.clone(),
                kind: ribat_detect::Kind::AuthFailure(ribat_detect::event::AuthFailure {
                    actor: ribat_detect::event::Actor {
                        identity: String::new(),
                        role: String::new(),
                        institution: String::new(),
                        serial: String::new(),
                        addr: remote.ip().to_string(),
                    },
                    reason: why.as_str().to_owned(),
                }),
            };
            // Off the accept loop: a decision is written durably.
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn_blocking(move || w.observe(&event));
                }
                Err(_) => {
                    w.observe(&event);
                }
            }
        },
    ));
}

/// Every `every`, when the audit log grew, signs a checkpoint and has the witnesses
/// cosign it.
pub(crate) fn spawn_checkpoints(
    node: Arc<Embedded>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = u64::MAX;
        loop {
            tokio::time::sleep(every).await;
            let n = node.clone();
            let size = node.vault.audit.log().size().unwrap_or(0);
            if size != last {
                last = size;
                let _ = tokio::task::spawn_blocking(move || n.checkpoint()).await;
            }
        }
    })
}

/// Where a running gateway writes its address (for `ribat decisions release`).
pub const GATEWAY_ADDR_FILE: &str = "gateway.addr";

/// `ribat custodian`: custodian `index` (directory `dir`, default HOME/custodian-INDEX)
/// serving partial decryptions over mTLS to gateways only.
pub fn custodian(
    home: &Home,
    passphrases: &Source,
    index: usize,
    dir: Option<&Path>,
    listen: &str,
    require_signed_requests: bool,
) -> Result<()> {
    let rt = runtime()?;
    let dir = dir.map_or_else(|| home.custodian_dir(index), Path::to_path_buf);
    let name = format!("custodian-{index}");
    let files = tls_files(home, &name);
    if !files.cert.exists() {
        bail!(
            "no certificate for `{name}` in {}: run `ribat identity add --name {name} --role custodian --host 127.0.0.1`",
            files
                .cert
                .parent()
                .map_or_else(String::new, |p| p.display().to_string())
        );
    }
    let tls = Arc::new(ServerTls::new(files.clone()).context("custodian TLS")?);
    let store = open_store(home)?;
    let pass = passphrases.get(index, false)?;
    let custodian = Arc::new(LocalCustodian::open(
        &dir,
        &pass,
        store,
        Arc::new(SystemClock),
    )?);
    drop(pass);
    if require_signed_requests && custodian.index_key().is_none() {
        bail!(
            "custodian {index} holds no blind-index key ({} has no index-key.json: its keys were made before signed requests), so it cannot tell which records a signed request names; run it without --require-signed-requests",
            dir.display()
        );
    }
    let (service, watch) = custodian_service(
        home,
        &dir,
        &name,
        custodian,
        tls.clone(),
        Default::default(),
        None,
        require_signed_requests,
    )?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        println!(
            "custodian {index} listening on https://{} (gateways only)",
            listener.local_addr()?
        );
        std::io::stdout().flush()?;
        let stats = Arc::new(TlsStats::default());
        hear_refused_handshakes(&stats, &watch, &name);
        let ticker = spawn_ticker(watch, name);
        tokio::select! {
            r = serve(listener, tls, custodian_router(service), stats) => r?,
            r = stop_signal() => r?,
        }
        ticker.abort();
        Ok(())
    })
}

/// What a custodian of a mesh node answers by, besides its own directory.
pub(crate) struct InMesh {
    /// Whether the node has carried out the security state recently (else it answers 503).
    pub ready: Arc<dyn Fn() -> Result<(), String> + Send + Sync>,
    /// The bulk reads allowed through the log.
    pub allowances: Arc<ribat_custodian::allowance::Allowances>,
    /// Why a calling gateway's node is cut off (its attestation), if it is.
    pub cut_off: ribat_custodian::serve::CutOff,
    /// Whether a calling gateway's node is the key rotation's job node.
    pub rotation_job: ribat_custodian::serve::RotationJob,
}

/// A custodian as a network service, with its own detectors and decision log in its
/// directory: it compares what it answered each gateway with the request ids that gateway
/// says it audited, and with `signed_requests` answers a user's read only with the request
/// the user signed.
#[allow(clippy::too_many_arguments)] // two call sites (alone, in a mesh), each argument distinct
pub(crate) fn custodian_service(
    home: &Home,
    dir: &Path,
    name: &str,
    custodian: Arc<LocalCustodian>,
    tls: Arc<ServerTls>,
    witnesses: std::collections::BTreeMap<String, ribat_audit::Witness>,
    mesh: Option<InMesh>,
    signed_requests: bool,
) -> Result<(Arc<CustodianService>, Arc<Watch>)> {
    let (ready, allowances, cut_off, rotation_job) = match mesh {
        Some(m) => (
            Some(m.ready),
            Some(m.allowances),
            Some(m.cut_off),
            Some(m.rotation_job),
        ),
        None => (None, None, None, None),
    };
    let policy = read_policy(&dir.join(ribat_custodian::keystore::POLICY_FILE))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let watch = Arc::new(Watch::open(
        &dir.join("decisions"),
        name,
        read_rules(home, &policy)?,
        clock,
        &ribat_gateway::watch::Outputs::default(),
        Default::default(),
    )?);
    let service = Arc::new(CustodianService {
        custodian,
        tokens: token_verifier(home)?,
        tls,
        observer: Some(watch.clone()),
        witnesses,
        ready,
        allowances,
        cut_off,
        rotation_job,
        signed_requests,
    });
    Ok((service, watch))
}

/// Time passes even when nobody calls: answers left unaudited past the grace act.
pub(crate) fn spawn_ticker(watch: Arc<Watch>, name: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let w = watch.clone();
            let component = name.clone();
            let _ = tokio::task::spawn_blocking(move || {
                for d in w.observe(&ribat_detect::Event {
                    time_ms: w.clock().now_ms(),
                    component,
                    kind: ribat_detect::Kind::Tick,
                }) {
                    eprintln!("ALERT: decision {} ({}): {}", d.id, d.rule, d.title);
                }
            })
            .await;
        }
    })
}

/// A `ribat serve` started by this process (the demo, a benchmark), stopped when dropped.
pub struct GatewayProcess {
    child: std::process::Child,
    /// Where it listens.
    pub addr: String,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts this executable as `ribat serve` on a free loopback port for the node in
/// `home`, its custodians' passphrases read from the files in `pass_dir`.
pub fn spawn_gateway(home: &Home, pass_dir: &Path) -> Result<GatewayProcess> {
    spawn_server(home, pass_dir, &["serve"])
}

/// Starts `ribat custodian --index I` for the node in `home` on a free loopback port.
pub fn spawn_custodian(home: &Home, pass_dir: &Path, index: u32) -> Result<GatewayProcess> {
    spawn_server(
        home,
        pass_dir,
        &["custodian", "--index", &index.to_string()],
    )
}

fn spawn_server(home: &Home, pass_dir: &Path, command: &[&str]) -> Result<GatewayProcess> {
    use std::io::BufRead;
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut child = std::process::Command::new(exe)
        .arg("--home")
        .arg(home.root())
        .args(command)
        .args(["--listen", "127.0.0.1:0", "--passphrases"])
        .arg(format!("dir:{}", pass_dir.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start `ribat {}`", command.join(" ")))?;
    let out = child.stdout.take().context("no output from the server")?;
    let mut line = String::new();
    let read = std::io::BufReader::new(out).read_line(&mut line);
    let mut gw = GatewayProcess {
        child,
        addr: String::new(),
    };
    read.context("the server said nothing")?;
    gw.addr = line
        .split("https://")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .with_context(|| {
            format!(
                "`ribat {}` did not start (it said {line:?})",
                command.join(" ")
            )
        })?
        .to_owned();
    Ok(gw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_custodian_is_an_index_and_an_address_with_a_port() {
        let r: RemoteSpec = "3=127.0.0.1:7443".parse().unwrap();
        assert_eq!((r.index, r.addr.as_str()), (3, "127.0.0.1:7443"));
        for (bad, says) in [
            ("127.0.0.1:7443", "expected INDEX=HOST:PORT"),
            ("x=127.0.0.1:7443", "is not a number"),
            ("3=localhost", "has no port"),
        ] {
            let e = bad.parse::<RemoteSpec>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
