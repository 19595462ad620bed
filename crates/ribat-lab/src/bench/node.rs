//! A throwaway node for benchmarks: a directory of its own under HOME (marked, so that a
//! bench never deletes what it did not make), random custodian passphrases in 0600 files,
//! and the key ceremony.

use crate::home::Home;
use crate::passphrases::{self, Source};
use ribat_crypto::passphrase::KdfParams;
use ribat_crypto::secret::SecretBytes;
use ribat_node::bail;
use ribat_node::{Context, Result};
use std::path::PathBuf;

const MARKER: &str = ".ribat-bench";

/// HOME/NAME, emptied if a previous bench made it, refused otherwise.
pub fn fresh_dir(home: &Home, name: &str) -> Result<PathBuf> {
    let dir = home.root().join(name);
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            bail!(
                "{} exists and was not made by a ribat benchmark; move it away",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join(MARKER), b"made by a ribat benchmark\n")?;
    Ok(dir)
}

/// A 2-of-3 node in `dir/node` whose passphrases are random files in `dir/passphrases`.
pub fn keyed_node(dir: &std::path::Path) -> Result<(Home, Source)> {
    let node_home = Home::at(dir.join("node"));
    let source = passphrases::random_files(&dir.join("passphrases"), 3)?;
    crate::ceremony::init_quiet(
        &node_home,
        2,
        3,
        &ribat_import::records::SEALED_CLASSES,
        &source,
        KdfParams::default(),
    )?;
    Ok((node_home, source))
}

/// 32 random bytes as hex (a benchmark's throwaway key).
pub fn random_hex() -> Result<zeroize::Zeroizing<String>> {
    let raw = SecretBytes::<32>::random()?;
    Ok(zeroize::Zeroizing::new(hex::encode(raw.expose())))
}

/// Imports the generated files `files` sealed into `node` (the bench's fund); a rejected
/// file or line is an error.
pub fn import_fund(
    node: &crate::embedded::Embedded,
    files: &[PathBuf],
) -> std::result::Result<(), super::BenchError> {
    let sealer = ribat_import::records::RecordSealer::new(&node.group, &node.vault.index)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let importer =
        ribat_import::importer::Importer::new(node.vault.store.as_ref(), &sealer, threads, 5_000);
    let summary = importer.run(files, &mut |_| {})?;
    if let Some(r) = summary.rejects.first() {
        bail!("the generated files were rejected: {r:?}");
    }
    Ok(())
}

/// A free TCP address on loopback, for a process to listen on.
pub fn free_addr() -> Result<String> {
    // The port is free when asked, not reserved: a second ask may get the same one back.
    // Never hand out a port twice in this process.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = l.local_addr()?;
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !given.contains(&addr.port()) {
            given.push(addr.port());
            return Ok(addr.to_string());
        }
    }
}

/// Waits (up to 90 s) until a TLS connection to `addr` opens: a gateway listening.
pub fn wait_listening(
    rt: &tokio::runtime::Runtime,
    cfg: &ribat_net::client::ClientSide,
    addr: &str,
) -> Result<()> {
    let started = std::time::Instant::now();
    while rt
        .block_on(ribat_net::client::Connection::open(
            cfg.clone(),
            addr,
            "127.0.0.1",
            false,
        ))
        .is_err()
    {
        if started.elapsed() > std::time::Duration::from_secs(90) {
            bail!("no gateway listening at {addr} after 90 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Ok(())
}

/// A generated fund of `persons` written to `dir/source`, and the CNSS numbers of its
/// ordinary persons (what the read benches ask for).
pub fn generated_fund(
    dir: &std::path::Path,
    persons: usize,
) -> std::result::Result<(ribat_sim::Fund, std::sync::Arc<Vec<String>>), super::BenchError> {
    let spec = ribat_sim::FundSpec::new(persons, (persons / 12).max(1), 1, 2025);
    let fund = ribat_sim::files::write(&spec, &dir.join("source"))?;
    let cnss = fund
        .persons
        .iter()
        .filter(|p| !p.honey)
        .map(|p| p.cnss.clone())
        .collect();
    Ok((fund, std::sync::Arc::new(cnss)))
}

/// The embedded node serving `dir/source` (2 of 3 custodians in one process, the fund
/// imported sealed) behind `ribat serve`, and the directory of a pension batch's identity
/// to read it with.
pub fn embedded_gateway(
    dir: &std::path::Path,
) -> std::result::Result<(crate::serve::GatewayProcess, PathBuf), super::BenchError> {
    let (node_home, source) = keyed_node(dir)?;
    {
        let node = crate::embedded::Embedded::open(&node_home, &source)?;
        let src = dir.join("source");
        import_fund(&node, &[src.join("employers.csv"), src.join("persons.csv")])?;
    }
    let ca = crate::identity::init_quiet(&node_home, &["127.0.0.1".into()])?;
    let client = crate::identity::add_client_quiet(
        &ca,
        &node_home,
        "bench.pension-run",
        "pension-batch",
        "cnss.pensions",
    )?;
    let gw = crate::serve::spawn_gateway(&node_home, &dir.join("passphrases"))?;
    Ok((gw, client))
}

/// A mesh of node processes on loopback for a bench or a simulation, stopped when dropped.
pub struct RunningMesh {
    /// Where `mesh init` wrote the node directories and the deployment.
    pub out: PathBuf,
    /// The node directories, in id order.
    pub dirs: Vec<PathBuf>,
    /// Each node's mesh address (its custodian's too), in id order.
    pub addrs: Vec<String>,
    /// Each node's gateway: (node id, address).
    pub gateways: Vec<(u64, String)>,
    /// The node processes, in id order (`None` once killed).
    pub procs: Vec<Option<ribat_node::mesh::NodeChild>>,
}

impl RunningMesh {
    /// Node `id`'s gateway address.
    pub fn gateway(&self, id: u64) -> String {
        self.gateways
            .iter()
            .find(|(g, _)| *g == id)
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    }
}

/// The ceremony for `nodes` nodes under `dir` (a custodian and a gateway on each, threshold
/// a majority, administrators `{admins}-1` and `{admins}-2`), `files` imported sealed
/// through node 1's directory while the others' custodians answer (node 1's process holds
/// its audit log once it runs), then node 1 started and every node ready.
pub fn running_mesh(
    dir: &std::path::Path,
    nodes: usize,
    admins: &str,
    files: &[PathBuf],
    public_figures: Option<&std::path::Path>,
    lab_clock: Option<&std::path::Path>,
    say: &dyn Fn(&str),
) -> std::result::Result<RunningMesh, super::BenchError> {
    use ribat_node::mesh::{InitSpec, NodeChild};
    use std::time::{Duration, Instant};
    let threshold = nodes / 2 + 1;
    say(&format!(
        "mesh: ceremony for {nodes} nodes (threshold {threshold}), a gateway on each…"
    ));
    let out = dir.join("mesh");
    let passes = dir.join("mesh-passphrases");
    let source = passphrases::random_files(&passes, nodes)?;
    let addrs = (0..nodes)
        .map(|_| free_addr())
        .collect::<Result<Vec<_>>>()?;
    let gateways = (1..=nodes as u64)
        .map(|i| Ok((i, free_addr()?)))
        .collect::<Result<Vec<_>>>()?;
    let dirs = ribat_node::mesh::init(&InitSpec {
        out: out.clone(),
        addrs: addrs.clone(),
        threshold,
        admins: vec![format!("{admins}-1"), format!("{admins}-2")],
        gateways: gateways.clone(),
        passphrases: source.clone(),
        store: ribat_node::StoreSpec::Sqlite,
        kdf: KdfParams::default(),
        attest_every: ribat_node::mesh::ATTEST_EVERY,
        token_service: vec![],
    })?;
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let mut procs: Vec<Option<NodeChild>> = Vec::new();
    for (i, d) in dirs.iter().enumerate() {
        procs.push(match i {
            0 => None,
            _ => Some(NodeChild::start_in_lab(&exe, d, &passes, lab_clock)?),
        });
    }
    say("mesh: sealed import through node 1's directory (the other nodes' custodians up)…");
    let node1 = ribat_node::mesh::adopt_store(Home::at(dirs[0].clone()))?;
    let started = Instant::now();
    loop {
        match crate::embedded::Embedded::open(&node1, &source) {
            Ok(node) => {
                import_fund(&node, files)?;
                // Node 1's gateway watches them from its start (`public-figures.txt` in its
                // directory); the others learn of a snoop from node 1's decisions.
                if let Some(csv) = public_figures {
                    let sealer =
                        ribat_import::records::RecordSealer::new(&node.group, &node.vault.index)?;
                    crate::import::write_public_figures(&node1, &sealer, csv)?;
                }
                break;
            }
            Err(_) if started.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e.into()),
        }
    }
    procs[0] = Some(NodeChild::start_in_lab(&exe, &dirs[0], &passes, lab_clock)?);
    say("mesh: waiting for a leader and every custodian…");
    ribat_node::mesh::wait_ready(&dirs[0], Duration::from_secs(90))?;
    Ok(RunningMesh {
        out,
        dirs,
        addrs,
        gateways,
        procs,
    })
}
