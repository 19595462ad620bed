//! `ribat`: one binary for every role of a Ribat node.
//!
//! Owns: command-line parsing, the node directory, passphrase sources, and wiring the
//! crates together. Must never: print a secret, or hide an error's cause from the user.
#![forbid(unsafe_code)]

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ribat_lab::{bench, demo, sim_leak, simulate};
use ribat_node::{
    audit, ceremony, decisions, embedded, exports, home, identity, import, leak, passphrases, read,
    serve,
};
use ribat_policy::{Class, Purpose, Role};
use std::path::PathBuf;

/// Ribat keeps a social-security fund's records readable only by a quorum of custodians.
#[derive(Parser)]
#[command(name = "ribat", version, about, long_about = None)]
struct Cli {
    /// Node directory (default: $RIBAT_HOME, else $XDG_DATA_HOME/ribat, else ~/.local/share/ribat).
    #[arg(long, global = true, env = "RIBAT_HOME")]
    home: Option<PathBuf>,
    /// Where sealed records live: `sqlite` (HOME/store.sqlite) or `postgres:<connection string>`.
    #[arg(long, global = true, env = "RIBAT_STORE", default_value = "sqlite")]
    store: String,
    /// PostgreSQL schema of this node's store.
    #[arg(
        long,
        global = true,
        env = "RIBAT_STORE_SCHEMA",
        default_value = "ribat"
    )]
    store_schema: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a small fund, seal it in a fresh embedded node under HOME/demo, and show
    /// who can read what.
    Demo {
        /// Insured persons to generate.
        #[arg(long, default_value_t = 2_000)]
        persons: usize,
        /// Seed of the synthetic fund.
        #[arg(long, default_value_t = 2025)]
        seed: u64,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The synthetic fund.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// Import the fund's files (employers.csv, persons.csv, DS_*.txt e-BDS) into this node:
    /// validated, sealed, stored. Resumable: re-run after a crash to finish. With
    /// `--gateway`, the files go to a running gateway's intake instead (a running node or
    /// mesh takes them without stopping).
    Import {
        /// Files or directories to import.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// CSV of CNSS numbers of honey persons, registered with every custodian.
        #[arg(long)]
        honey: Option<PathBuf>,
        /// CSV of CNSS numbers of public figures: reading one without a case reference
        /// needs a supervisor's co-signature afterwards (kept as record ids in
        /// HOME/public-figures.txt; read by the gateway at start).
        #[arg(long)]
        public_figures: Option<PathBuf>,
        /// Where rejected files and lines are listed (default HOME/import-rejects.csv).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Sealing threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// Send the files to this running gateway's intake (`HOST:PORT`) instead of
        /// importing here: how a running node, a mesh's included, takes the monthly
        /// intake. Needs `--identity`.
        #[arg(long, requires = "identity", conflicts_with_all = ["honey", "public_figures", "report", "threads"])]
        gateway: Option<String>,
        /// With `--gateway`: the directory of the sending identity's files (`cert.pem`,
        /// `key.pem`, `ca.pem`; role `intake`).
        #[arg(long)]
        identity: Option<PathBuf>,
        #[command(flatten)]
        pass: PassArg,
    },
    /// One call to a running gateway's API as an issued identity: a token for its
    /// certificate, then the request, both signed with its key (`Ribat-Signature`, which a
    /// mesh's gateways require). Prints the answer's body.
    #[command(
        after_help = "Example: ribat api GET '/v1/persons/123456789?purpose=counter-service' --gateway 127.0.0.1:7701 --identity /tmp/mesh/deployment/identity/issued/clerk.amal\n\nExit codes: 0 the gateway answered 2xx (its body on stdout); 1 it answered otherwise (status, problem type and detail on stderr) or could not be reached; 2 bad arguments."
    )]
    Api {
        /// GET or POST.
        method: ApiMethod,
        /// The route's path and query, e.g. /v1/persons/123456789?purpose=counter-service.
        target: String,
        /// The gateway, `HOST:PORT` (default: the one HOME/gateway.addr records).
        #[arg(long)]
        gateway: Option<String>,
        /// The directory of the identity's files (`cert.pem`, `key.pem`, `ca.pem`), as
        /// `ribat identity add` issues them.
        #[arg(long)]
        identity: PathBuf,
        /// A JSON body, for a POST.
        #[arg(long)]
        body: Option<String>,
    },
    /// Read one person through the quorum of custodians.
    Get {
        /// CNSS number of the person.
        #[arg(long)]
        cnss: String,
        /// Why (required): counter-service, benefit-claim, investigation, pension-run, …
        #[arg(long)]
        purpose: Purpose,
        /// Fields to read, comma-separated (default: the identity fields).
        #[arg(long, value_delimiter = ',')]
        fields: Vec<String>,
        /// Also read the person's monthly declarations.
        #[arg(long)]
        history: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        who: WhoArg,
        #[command(flatten)]
        pass: PassArg,
    },
    /// Find persons by CIN, or by name and birth date, through the blind indexes.
    Find {
        /// CIN.
        #[arg(long, conflicts_with_all = ["name", "birth_date"])]
        cin: Option<String>,
        /// Full name (with --birth-date).
        #[arg(long, requires = "birth_date")]
        name: Option<String>,
        /// Birth date YYYY-MM-DD (with --name).
        #[arg(long, requires = "name")]
        birth_date: Option<String>,
        /// Why (required).
        #[arg(long)]
        purpose: Purpose,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        who: WhoArg,
        #[command(flatten)]
        pass: PassArg,
    },
    /// The audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Drive a fresh embedded node through its API with a legitimate workload and one
    /// attack; report records exposed, time to contain and false quarantines.
    Simulate {
        /// Scenario.
        #[arg(long, value_enum)]
        scenario: simulate::Scenario,
        /// Persons in the generated fund.
        #[arg(long, default_value_t = 200_000)]
        persons: usize,
        /// Seed.
        #[arg(long, default_value_t = 2025)]
        seed: u64,
        /// Legitimate requests to aim for in legit-week.
        #[arg(long, default_value_t = 1_000_000)]
        requests: u64,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 16)]
        in_flight: usize,
        /// Against a mesh of N `ribat node` processes on loopback (a custodian and a
        /// gateway on each). Attacks of minutes run in real time, measuring when every node
        /// refuses the attacker; legit-week, low-and-slow and partner-review run on a lab
        /// clock the nodes follow (`ribat node --lab-clock`), skipping idle nights.
        /// compromised-gateway runs without it.
        #[arg(long, value_name = "N")]
        mesh: Option<usize>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// What the detectors decided (signed records with their evidence), and the
    /// two-person release of a decision.
    Decisions {
        #[command(subcommand)]
        command: Option<DecisionsCommand>,
    },
    /// Identities: the deployment's CA, client certificates, revocation.
    Identity {
        #[command(subcommand)]
        command: IdentityCommand,
    },
    /// Tokens for API callers.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Run the gateway: the JSON API over mTLS, reading through the embedded custodians
    /// and any networked ones (`--remote-custodian 3=127.0.0.1:7443`).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: String,
        /// A custodian running as its own process (`ribat custodian`): INDEX=HOST:PORT. Repeatable.
        #[arg(long = "remote-custodian")]
        remote: Vec<serve::RemoteSpec>,
        /// How long a custodian may take before it is skipped for that read, in milliseconds.
        #[arg(long, default_value_t = 1_000)]
        deadline_ms: u64,
        /// Also write every event and decision as OCSF JSON lines to this file (appended).
        #[arg(long)]
        ocsf: Option<PathBuf>,
        /// Also send events and decisions as CEF over syslog (UDP) to HOST:PORT.
        #[arg(long)]
        syslog: Option<String>,
        /// Refuse reads their sender did not sign (`Ribat-Signature`; see the README's
        /// "Signed requests"). Without it, signed reads are checked and unsigned ones taken
        /// (the custodians of this shape run in this process or trust its gateway); a mesh
        /// always requires them.
        #[arg(long)]
        require_signed_requests: bool,
        #[command(flatten)]
        pass: PassArg,
    },
    /// Run one custodian as its own process, answering gateways over mTLS. It checks the
    /// gateway's certificate and the end user's token with every request itself.
    Custodian {
        /// Custodian index.
        #[arg(long)]
        index: usize,
        /// Custodian directory (default HOME/custodian-INDEX).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7443")]
        listen: String,
        /// Answer a user's read only with the request the user signed, forwarded by the
        /// gateway, and only for the records it names (see the README's "Signed
        /// requests"); gateways must then require them too.
        #[arg(long)]
        require_signed_requests: bool,
        #[command(flatten)]
        pass: PassArg,
    },
    /// Bulk exports to partners: requested, approved by two security administrators, run
    /// with export canaries and a sealed manifest.
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// The mesh: bootstrap its nodes' directories, ask where its members stand.
    Mesh {
        #[command(subcommand)]
        command: MeshCommand,
    },
    /// Run one mesh node from its directory (made by `ribat mesh init`): the replicated
    /// security state over mTLS with the other nodes, the node's custodian on the same
    /// address (opened with its passphrase) and, on a gateway node, the gateway.
    Node {
        /// The node's directory.
        #[arg(long)]
        dir: PathBuf,
        /// Also write its gateway's events, decisions and findings as OCSF JSON lines to
        /// this file (appended); a node without a gateway has none to write.
        #[arg(long)]
        ocsf: Option<PathBuf>,
        /// Also send them as CEF over syslog (UDP) to HOST:PORT.
        #[arg(long)]
        syslog: Option<String>,
        /// For simulations only: date tokens, quotas, decisions and reviews by the system's
        /// time plus the offset (ms) in FILE, which a simulator moves forward to skip idle
        /// nights (`ribat simulate --mesh`). Refused unless every address of the mesh is on
        /// loopback. Certificates, Raft and attestation keep the system's time.
        #[arg(long, value_name = "FILE")]
        lab_clock: Option<PathBuf>,
        #[command(flatten)]
        pass: PassArg,
    },
    /// Leak tracing: is a dumped file ours, who is affected, what is genuine, who leaked it.
    Leak {
        #[command(subcommand)]
        command: LeakCommand,
    },
    /// Benchmarks (figures with a baseline measured in the same run).
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(clap::Args)]
struct PassArg {
    /// Where custodians' passphrases come from: prompt, env (RIBAT_CUSTODIAN_N_PASSPHRASE for custodian N) or dir:PATH (files custodian-N.pass).
    #[arg(long, default_value = "prompt")]
    passphrases: passphrases::Source,
}

#[derive(clap::Args)]
struct WhoArg {
    /// Identity of the reader (until tokens arrive with the gateway).
    #[arg(long = "as", default_value = "cli.operator")]
    identity: String,
    /// Role of the reader in the custodians' policy.
    #[arg(long, default_value = "clerk")]
    role: Role,
    /// Institution of the reader, as the audit log records it.
    #[arg(long, default_value = "cnss.operations")]
    institution: String,
}

impl WhoArg {
    fn reader(self, purpose: Purpose) -> read::Reader {
        read::Reader {
            who: ribat_custodian::Requester {
                identity: self.identity,
                role: self.role,
            },
            institution: self.institution,
            purpose,
            token: None,
            asked: None,
        }
    }
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify a whole log directory as an outsider: read every entry, recompute the tree,
    /// check every checkpoint's signature, its witness cosignatures and its root. Reports
    /// the first problem with the entry index where it is. Exit status 0 when valid, 1 when not.
    Verify {
        /// The log directory (HOME/audit for this node).
        dir: PathBuf,
        /// Trust file: `log KEY`, `witness KEY`… and `quorum N` lines (default DIR/trust).
        #[arg(long)]
        trust: Option<PathBuf>,
    },
    /// Every access to one person's record, with an inclusion proof for each against the
    /// latest cosigned checkpoint (the citizen's and the authority's question).
    Subject {
        /// The person's CNSS number.
        #[arg(long)]
        cnss: String,
        /// The data-protection authority's view: shows who read, not only their role.
        #[arg(long)]
        authority: bool,
        /// Print JSON; each `inclusion` object is a file `ribat audit verify-proof` checks.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        pass: PassArg,
    },
    /// Check an inclusion proof ({leafIdx, treeSize, root, leafHash, proof[]}) or a
    /// consistency proof ({size1, size2, root1, root2, proof[]}), hashes in standard base64.
    /// Exit status 0 when valid, 1 when not, with the reason.
    VerifyProof {
        /// The proof file (JSON).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum IdentityCommand {
    /// Create the deployment's CA, its revocation list, the token key, and this node's
    /// gateway certificate (HOME/identity).
    Init {
        /// Host names or addresses the gateway certificate is valid for.
        #[arg(long = "host", default_values_t = ["localhost".to_owned(), "127.0.0.1".to_owned()])]
        hosts: Vec<String>,
    },
    /// Issue a certificate and key for a person or system (or, with --host, a server).
    Add {
        /// Identity name, e.g. clerk.casa-anfa.0042 or partner.insurer-x.
        #[arg(long)]
        name: String,
        /// Role: clerk, supervisor, employer, partner, pension-batch, auditor, citizen-portal, service, gateway, custodian.
        #[arg(long)]
        role: String,
        /// Institution (agency, employer affiliation number, partner name).
        #[arg(long, default_value = "cnss")]
        institution: String,
        /// Validity in days.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Host names or addresses, for gateway and custodian certificates.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Output directory (default HOME/identity/issued/NAME).
        #[arg(long)]
        out: Option<PathBuf>,
        /// For a third party (partner, pension-batch): when its access lapses unless
        /// re-certified, RFC 3339, within a year (default: 90 days from now).
        #[arg(long)]
        review_by: Option<String>,
    },
    /// A security administrator re-certifies a third party's access after reviewing it:
    /// it goes on until a later review date (else the gateway refuses it from its review
    /// date: certificate-review-lapsed).
    Recertify {
        /// Identity name.
        #[arg(long)]
        name: String,
        /// The next review date, RFC 3339, within a year.
        #[arg(long)]
        review_by: String,
    },
    /// Revoke every certificate of an identity; servers refuse it from their next connection.
    Revoke {
        /// Identity name.
        #[arg(long)]
        name: String,
    },
    /// List issued certificates.
    List,
}

/// The methods `ribat api` sends.
#[derive(Clone, Copy, clap::ValueEnum)]
enum ApiMethod {
    #[value(name = "GET", alias = "get")]
    Get,
    #[value(name = "POST", alias = "post")]
    Post,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue a token for the holder of a certificate (callers normally use POST /v1/token).
    Issue {
        /// The holder's certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// Lifetime in seconds (at most 900).
        #[arg(long, default_value_t = 300)]
        ttl: u64,
        /// Audience (default: this deployment).
        #[arg(long)]
        audience: Option<String>,
    },
}

#[derive(Subcommand)]
enum SimCommand {
    /// Generate a synthetic fund and write the files the fund would hold.
    Generate {
        /// Insured persons.
        #[arg(long, default_value_t = 10_000)]
        persons: usize,
        /// Employers.
        #[arg(long, default_value_t = 800)]
        employers: usize,
        /// Months of declarations.
        #[arg(long, default_value_t = 1)]
        months: usize,
        /// Seed.
        #[arg(long, default_value_t = 2025)]
        seed: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// A fresh node holding a generated fund, read by partners and clerks, then labelled
    /// leaked dumps of every variant (truth.csv beside each); `--evaluate` scans each dump
    /// and scores it (precision, recall, confusion, attribution, fewest rows).
    Leak {
        /// Insured persons.
        #[arg(long, default_value_t = 2_000)]
        persons: usize,
        /// Seed.
        #[arg(long, default_value_t = 2025)]
        seed: u64,
        /// Output directory (new or empty).
        #[arg(long)]
        out: PathBuf,
        /// Variants to make (default: all): full, sampled, columns, reordered, rounded,
        /// altered-fabricated, unrelated, pdf-text, merge, honey, arabic-1256, latin-1,
        /// jsonl, ebds-older.
        #[arg(long = "variant", value_delimiter = ',')]
        variants: Vec<String>,
        /// Scan each dump and score it against its truth.
        #[arg(long)]
        evaluate: bool,
        /// With --variant, also make the export-canary and export-merge dumps.
        #[arg(long = "exports")]
        include_exports: bool,
        /// Print the scores as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A mesh's size, addresses, threshold and administrators, for `mesh init` and `mesh up`.
#[derive(clap::Args)]
struct MeshShape {
    /// Nodes in the mesh.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Distinct nodes whose signatures make a decision mesh-wide.
    #[arg(long, default_value_t = 2)]
    threshold: usize,
    /// Each node's HOST:PORT, comma-separated (default 127.0.0.1 from --base-port + 1).
    #[arg(long, value_delimiter = ',')]
    addrs: Vec<String>,
    /// With no --addrs: node N listens on 127.0.0.1:(BASE_PORT + N).
    #[arg(long, default_value_t = 7600)]
    base_port: u16,
    /// The security administrators (at least two), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "sec.admin-1,sec.admin-2")]
    admins: Vec<String>,
    /// A node that runs a gateway for clients, and where it listens: ID=HOST:PORT
    /// (repeatable; default node 1, on its mesh port + 100).
    #[arg(long = "gateway")]
    gateways: Vec<serve::RemoteSpec>,
    /// How often each node signs what it runs, in seconds (a node silent for three
    /// intervals is cut off).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    attest_every: u64,
    /// The nodes of the identity service, the only ones that hold the token key,
    /// comma-separated ids (default: every node without a gateway, else node 1). Gateways
    /// elsewhere forward their clients' signed token requests to them.
    #[arg(long, value_delimiter = ',')]
    token_service: Vec<u64>,
}

impl MeshShape {
    /// What `mesh init` is asked for, into `out`.
    fn spec(
        self,
        out: PathBuf,
        passphrases: passphrases::Source,
        store: ribat_node::StoreSpec,
    ) -> Result<ribat_node::mesh::InitSpec> {
        let addrs = node_addrs(self.nodes, self.addrs, self.base_port)?;
        let gateways = if self.gateways.is_empty() {
            let first = addrs.first().context("a mesh has at least one node")?;
            let (host, port) = first
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?.checked_add(100)?)))
                .with_context(|| format!("node 1's address `{first}`: expected HOST:PORT below 65436 (or give --gateway 1=HOST:PORT)"))?;
            vec![(1, format!("{host}:{port}"))]
        } else {
            self.gateways
                .into_iter()
                .map(|g| (u64::from(g.index), g.addr))
                .collect()
        };
        Ok(ribat_node::mesh::InitSpec {
            out,
            addrs,
            threshold: self.threshold,
            admins: self.admins,
            gateways,
            passphrases,
            store,
            kdf: ribat_crypto::passphrase::KdfParams::default(),
            attest_every: std::time::Duration::from_secs(self.attest_every),
            token_service: self.token_service,
        })
    }
}

/// One administrator acting alone through a member (restricting, or re-certifying after
/// a review): where the proposal goes, and the key and name it is signed with.
#[derive(clap::Args)]
struct OneAdmin {
    /// A member's directory (the proposal goes through it).
    #[arg(long)]
    dir: PathBuf,
    /// The administrator's signing key (from `mesh init`'s admins/).
    #[arg(long)]
    key: PathBuf,
    /// The administrator's name.
    #[arg(long = "as")]
    admin: String,
}

/// The terms of an export allowed through the log: what each administrator signs.
#[derive(clap::Args)]
struct ExportTerms {
    /// The partner it goes to (as filed).
    #[arg(long)]
    recipient: Option<String>,
    /// Its purpose (as filed).
    #[arg(long)]
    purpose: Option<String>,
    /// How many distinct persons it reads.
    #[arg(long)]
    persons: Option<u64>,
    /// Until when it may be read, RFC 3339 (at most a week ahead).
    #[arg(long)]
    until: Option<String>,
}

impl ExportTerms {
    fn statement(&self, id: &str) -> Result<ribat_node::allowances::ExportStatement> {
        Ok(ribat_node::allowances::statement(
            id,
            self.recipient.as_deref().context("--recipient")?,
            self.purpose.as_deref().context("--purpose")?,
            self.persons.context("--persons")?,
            self.until.as_deref().context("--until")?,
        )?)
    }
}

/// What a build is besides its executable.
#[derive(clap::Args)]
struct BuildArgs {
    /// The `Cargo.lock` it was built from (default: this ribat's).
    #[arg(long)]
    lock: Option<PathBuf>,
    /// Its version (default: this ribat's).
    #[arg(long)]
    build_version: Option<String>,
}

/// Why and since when a build is retired: what each administrator signs.
#[derive(clap::Args)]
struct RetirementArgs {
    /// The advisory it is retired for (CVE, RUSTSEC, the fund's own).
    #[arg(long)]
    advisory: Option<String>,
    /// When it is retired, RFC 3339 (the grace period counts from here; every approver
    /// gives the same time).
    #[arg(long)]
    retired_at: Option<String>,
}

impl RetirementArgs {
    fn statement(&self, build: &str) -> Result<ribat_node::attest::RetireStatement> {
        Ok(ribat_node::attest::retire_statement(
            build,
            self.advisory.as_deref().context("--advisory")?,
            self.retired_at.as_deref().context("--retired-at")?,
        )?)
    }
}

/// A policy or rules file proposed with its approvals.
#[derive(clap::Args)]
struct DocumentArgs {
    /// A member's directory (the proposal goes through it).
    #[arg(long)]
    dir: PathBuf,
    /// The file, as the administrators approved it.
    #[arg(long)]
    file: PathBuf,
    /// Its version.
    #[arg(long)]
    version: u64,
    /// An approval printed by `mesh approve` (repeat for each administrator).
    #[arg(long = "approval")]
    approvals: Vec<String>,
}

#[derive(Subcommand)]
enum MeshCommand {
    /// Bootstrap ceremony: one directory per node (node certificate and key, node signing
    /// key, the members and administrators), the CA and the administrators' keys beside them.
    Init {
        #[command(flatten)]
        shape: MeshShape,
        /// Where the directories go (must be new or empty).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        pass: PassArg,
    },
    /// This node decides a restriction of an identity, signs it with its node key and
    /// proposes it; every node enforces it once committed.
    Restrict {
        /// A node's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The identity restricted.
        #[arg(long)]
        identity: String,
        /// How long, in minutes.
        #[arg(long, default_value_t = 60)]
        minutes: u64,
        /// Why (its digest is the decision's evidence).
        #[arg(long)]
        reason: String,
    },
    /// One administrator revokes a certificate through the log (signed with their key):
    /// once committed every node refuses it, and the tokens bound to it, at their next
    /// request. Exit status 1 when refused.
    Revoke {
        #[command(flatten)]
        by: OneAdmin,
        /// The certificate's serial, hex (`ribat identity list` shows it).
        #[arg(long)]
        serial: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// One administrator's approval, signed offline with their key, of a release
    /// (`--id`, `--reason`), a grant of certificates (`--grant`, `--reason`), a bulk export
    /// (`--export` with its terms), a membership
    /// change (`--add-node`, `--remove-node`), a policy or rules file (`--policy` or
    /// `--rules`, with `--version`), a build nodes may run (`--allow-build`, `--reason`),
    /// one they must leave (`--retire-build`, `--advisory`, `--retired-at`) or a resharing
    /// of the custodians (`--reshare FILE` from `mesh reshare --out`); prints it as one JSON
    /// line to hand to whoever proposes the change.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["id", "grant", "export", "add_node", "remove_node", "policy", "rules", "allow_build", "retire_build", "reshare"])))]
    Approve {
        /// The administrator's signing key (from `mesh init`'s admins/).
        #[arg(long)]
        key: PathBuf,
        /// The administrator's name.
        #[arg(long = "as")]
        admin: String,
        /// The restriction to release.
        #[arg(long, requires = "reason")]
        id: Option<String>,
        /// A certificate to let act in the mesh (its `cert.pem`, or the directory `identity
        /// add` wrote; repeatable: one approval for all).
        #[arg(long, requires = "reason")]
        grant: Vec<PathBuf>,
        /// With `--grant`: when a third party's access (partners, batch systems) lapses
        /// unless re-certified, RFC 3339, within a year (required for them).
        #[arg(long)]
        review_by: Option<String>,
        /// Why it is lifted, or granted (the same words every approver signs).
        #[arg(long)]
        reason: Option<String>,
        /// An export to allow (its id, as the export desk filed it), with `--recipient`,
        /// `--purpose`, `--persons` and `--until`.
        #[arg(long, requires_all = ["recipient", "purpose", "persons", "until"])]
        export: Option<String>,
        #[command(flatten)]
        terms: Box<ExportTerms>,
        /// The directory `mesh prepare-node` wrote for the node to add (its name, key and
        /// address are what is signed).
        #[arg(long)]
        add_node: Option<PathBuf>,
        /// The member to remove, e.g. `node-3`.
        #[arg(long)]
        remove_node: Option<String>,
        /// A policy file to put in force (with `--version`; its whole text is signed).
        #[arg(long, requires = "version")]
        policy: Option<PathBuf>,
        /// A detection rules file to put in force (with `--version`).
        #[arg(long, requires = "version")]
        rules: Option<PathBuf>,
        /// The policy's or the rules' version: above the one in force.
        #[arg(long)]
        version: Option<u64>,
        /// A build's executable to allow (with `--reason`): its SHA-256 is signed.
        #[arg(long, requires = "reason")]
        allow_build: Option<PathBuf>,
        #[command(flatten)]
        build: Box<BuildArgs>,
        /// A build to retire: its executable, or its SHA-256 as `mesh drift` shows it (with
        /// `--advisory` and `--retired-at`).
        #[arg(long, requires_all = ["advisory", "retired_at"])]
        retire_build: Option<String>,
        #[command(flatten)]
        retirement: Box<RetirementArgs>,
        /// A resharing statement written by `mesh reshare --out` (its whole text is signed).
        #[arg(long)]
        reshare: Option<PathBuf>,
    },
    /// Proposes a build with two administrators' approvals (`mesh approve --allow-build
    /// BINARY --reason R`): once committed, nodes that attest it are answered. Exit status
    /// 1 when refused.
    AllowBuild {
        /// A member's directory (the proposal goes through it).
        #[arg(long)]
        dir: PathBuf,
        /// The build's executable, as approved.
        #[arg(long)]
        binary: PathBuf,
        #[command(flatten)]
        build: BuildArgs,
        /// Why (as the approvers signed it).
        #[arg(long)]
        reason: String,
        /// An approval printed by `mesh approve` (repeat for each administrator).
        #[arg(long = "approval")]
        approvals: Vec<String>,
    },
    /// Proposes a build's retirement with two administrators' approvals (`mesh approve
    /// --retire-build …`): nodes still on it are listed as drifting and cut off once the
    /// rules' grace period (`patch-drift.grace-secs`, a week by default) has passed since
    /// `--retired-at`. The last allowed build cannot be retired. Exit status 1 when refused.
    RetireBuild {
        /// A member's directory (the proposal goes through it).
        #[arg(long)]
        dir: PathBuf,
        /// The build: its executable, or its SHA-256.
        #[arg(long)]
        build: String,
        #[command(flatten)]
        retirement: RetirementArgs,
        /// An approval printed by `mesh approve` (repeat for each administrator).
        #[arg(long = "approval")]
        approvals: Vec<String>,
    },
    /// Patch drift: what each member attests it runs (version, binary, Cargo.lock,
    /// kernel), how the node in DIR judges it, and the allowed builds with the members on
    /// each. Exit status 1 when a member is drifting or cut off.
    Drift {
        /// A member's directory (asks that node).
        #[arg(long)]
        dir: PathBuf,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Proposes a policy with two administrators' approvals (`mesh approve --policy FILE
    /// --version V`); once committed every node's gateway and custodian decide by it.
    /// Exit status 1 when refused.
    SetPolicy(DocumentArgs),
    /// Proposes detection rules with two administrators' approvals (`mesh approve --rules
    /// FILE --version V`); once committed every node's detectors run on them. Exit status
    /// 1 when refused.
    SetRules(DocumentArgs),
    /// Proposes a grant of certificates with two administrators' approvals (`mesh approve
    /// --grant CERT --reason R`): once committed every gateway and custodian of the mesh
    /// answers them. A certificate the CA issued is refused everywhere until then. Exit
    /// status 1 when refused.
    Grant {
        /// A member's directory (the proposal goes through it).
        #[arg(long)]
        dir: PathBuf,
        /// The certificates, as the administrators approved them (repeatable).
        #[arg(long = "cert", required = true)]
        certs: Vec<PathBuf>,
        /// Why (as the approvers signed it).
        #[arg(long)]
        reason: String,
        /// The third parties' review date, as the approvers signed it.
        #[arg(long)]
        review_by: Option<String>,
        /// An approval printed by `mesh approve` (repeat for each administrator).
        #[arg(long = "approval")]
        approvals: Vec<String>,
    },
    /// Proposes a bulk export's allowance with two administrators' approvals (`mesh
    /// approve --export ID` with the same terms): once committed, every custodian answers
    /// that recipient's export reads, up to so many distinct persons, until then. Exit
    /// status 1 when refused.
    AllowExport {
        /// A member's directory (the proposal goes through it).
        #[arg(long)]
        dir: PathBuf,
        /// The export's id.
        #[arg(long)]
        export: String,
        #[command(flatten)]
        terms: ExportTerms,
        /// An approval printed by `mesh approve` (repeat for each administrator).
        #[arg(long = "approval")]
        approvals: Vec<String>,
    },
    /// One administrator re-certifies a third party's access (signed with their key) until
    /// a later review date, after reviewing it; without it the access lapses at its review
    /// date (`certificate-review-lapsed`). Exit status 1 when refused.
    Recertify {
        #[command(flatten)]
        by: OneAdmin,
        /// The certificate's serial (`ribat mesh identities` shows it).
        #[arg(long)]
        serial: String,
        /// The next review date, RFC 3339, within a year.
        #[arg(long)]
        review_by: String,
        /// What was reviewed (a contract, a ticket).
        #[arg(long)]
        reason: String,
    },
    /// The identity register as a member holds it: every certificate granted through the
    /// log (and the ceremony's gateways), who granted it, and whether it was revoked.
    Identities {
        /// A member's directory (asks that node).
        #[arg(long)]
        dir: PathBuf,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Proposes a release with administrators' approvals (two distinct ones, neither the
    /// target, or every node refuses it). Exit status 1 when refused.
    Release {
        /// A node's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The restriction.
        #[arg(long)]
        id: String,
        /// Why (as the approvers signed it).
        #[arg(long)]
        reason: String,
        /// An approval printed by `mesh approve` (repeat for each administrator).
        #[arg(long = "approval")]
        approvals: Vec<String>,
    },
    /// On the host that keeps the ceremony's CA: writes the directory of a node that will
    /// join the mesh (certificate, keys, the members), to carry to its host. It runs no
    /// gateway and takes part once two administrators add it. With `--store sqlite:PATH`
    /// (or `postgres:…`, with a role of its own) it reaches the records, so that a
    /// resharing can give it a custodian (`mesh reshare --add`); without, it holds none.
    PrepareNode {
        /// The directory `mesh init --out` made.
        #[arg(long)]
        out: PathBuf,
        /// Where the new node will listen, HOST:PORT.
        #[arg(long)]
        addr: String,
        /// Its Raft id (default: one above every id known here).
        #[arg(long)]
        id: Option<u64>,
    },
    /// Replaces custodians without re-sealing any record: `--remove custodian-2 --add
    /// node-4 --reason R --out FILE` writes the statement (the freed index goes to the added
    /// node; `--threshold` changes the threshold, `--add` alone widens the set); two
    /// administrators approve it (`mesh approve --reshare FILE`); `--statement FILE
    /// --approval … --approval …` proposes it. The custodians that stay deal new shares to
    /// the new set over mTLS; when every new custodian is ready the new set is in force, the
    /// removed custodian's shares are erased and its old share opens nothing with the new
    /// ones. Reads go on with the old set until then. The nodes taking part must have been
    /// started with `--passphrases env` or `dir:PATH`. Exit status 1 when refused.
    Reshare {
        /// A member's directory (asked for the set in force; the proposal goes through it).
        #[arg(long)]
        dir: PathBuf,
        /// A custodian to remove: `custodian-<i>` or the node holding it (repeatable).
        #[arg(long)]
        remove: Vec<String>,
        /// A member node to hold a custodian (repeatable).
        #[arg(long)]
        add: Vec<String>,
        /// The new threshold (default: the one in force).
        #[arg(long)]
        threshold: Option<usize>,
        /// A key rotation instead (for when `t` shares may have leaked): the same holders,
        /// every custodian contributing to new class keys, then the node named here (one
        /// running a gateway) re-seals every record while reads go on; the previous
        /// epoch's shares are erased when it is done.
        #[arg(long, value_name = "JOB_NODE", conflicts_with_all = ["remove", "add", "threshold"])]
        rotate: Option<String>,
        /// Why (an incident, a host replaced).
        #[arg(long)]
        reason: Option<String>,
        /// Where to write the statement for the administrators to approve.
        #[arg(long)]
        out: Option<PathBuf>,
        /// A statement written before, to propose with its approvals.
        #[arg(long, conflicts_with_all = ["remove", "add", "threshold", "rotate", "reason", "out"])]
        statement: Option<PathBuf>,
        /// An approval printed by `mesh approve --reshare` (repeat for each administrator).
        #[arg(long = "approval", requires = "statement")]
        approvals: Vec<String>,
    },
    /// The custodian set in force (who holds which custodian) and the resharing under way,
    /// as the node in DIR holds them.
    Custodians {
        /// A member's directory.
        #[arg(long)]
        dir: PathBuf,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Proposes adding the node `mesh prepare-node` wrote, with two administrators'
    /// approvals (`mesh approve --add-node`); once committed the leader takes it on and
    /// makes it a voter when it has caught up. Exit status 1 when refused.
    AddNode {
        /// A member's directory (the proposal goes through it).
        #[arg(long)]
        dir: PathBuf,
        /// The new node's directory.
        #[arg(long)]
        node: PathBuf,
        /// An approval printed by `mesh approve` (repeat for each administrator).
        #[arg(long = "approval")]
        approvals: Vec<String>,
    },
    /// Proposes removing a member, with two administrators' approvals (`mesh approve
    /// --remove-node`); once committed its signatures count no more, every node refuses its
    /// requests, and the leader takes it out of Raft. Exit status 1 when refused.
    RemoveNode {
        /// A member's directory (the proposal goes through it).
        #[arg(long)]
        dir: PathBuf,
        /// The member, e.g. `node-3`.
        #[arg(long)]
        node: String,
        /// An approval printed by `mesh approve` (repeat for each administrator).
        #[arg(long = "approval")]
        approvals: Vec<String>,
    },
    /// Every node of a mesh on this machine as child processes (the mesh is made first when
    /// DIR holds none), until Ctrl-C: for trying the mesh and for tests.
    Up {
        #[command(flatten)]
        shape: MeshShape,
        /// The mesh's directory.
        #[arg(long)]
        dir: PathBuf,
        /// The fund's files (or directories) to import through the first gateway node
        /// before it starts (the others' custodians answering).
        #[arg(long, value_delimiter = ',')]
        import: Vec<PathBuf>,
    },
    /// Every member: its Raft state, the leader it follows, term, log and applied index,
    /// restrictions in force; or why it does not answer. Exit status 0 when a majority
    /// answers and agrees on a leader, 1 otherwise.
    Status {
        /// A node's directory (its certificate is used to ask the others).
        #[arg(long)]
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Ask for an export of the persons listed in a CSV (a `cnss` column) to a partner.
    Request {
        /// The partner identity it goes to.
        #[arg(long)]
        recipient: String,
        /// Why (a purpose of role `export`).
        #[arg(long, default_value = "partner-export")]
        purpose: String,
        /// CSV with a `cnss` column: the persons asked for.
        #[arg(long)]
        query: PathBuf,
        /// Who asks (an issued identity).
        #[arg(long = "as")]
        by: String,
    },
    /// One security administrator's approval; an export runs after two distinct ones.
    Approve {
        /// Export id.
        id: String,
        /// The administrator (an issued identity of role `security`).
        #[arg(long = "as")]
        admin: String,
    },
    /// Run an approved export: read through the quorum, add canaries, seal the manifest,
    /// write the file.
    Run {
        /// Export id.
        id: String,
        /// The file to write (must not exist).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        pass: PassArg,
    },
}

#[derive(Subcommand)]
enum LeakCommand {
    /// Write the data-protection authority's notification list (affected persons in
    /// clear, CSV) from a scan's report directory. Two security administrators approve;
    /// the custodian quorum decrypts and logs every person.
    Notify {
        /// The scan's report directory (`leak scan --report DIR`).
        report: PathBuf,
        /// The CSV to write (must not exist; owner-only).
        #[arg(long)]
        out: PathBuf,
        /// The two approving security administrators.
        #[arg(long = "as", num_args = 1)]
        approvers: Vec<String>,
        #[command(flatten)]
        pass: PassArg,
    },
    /// Scan dumped files (CSV/TSV with any delimiter, JSON lines, e-BDS, text extracted
    /// from PDFs; UTF-8, Windows-1256 or Latin-1) against this node's vault, without
    /// decrypting it: every row is classified, affected persons counted, and the audit log
    /// asked who read them. The custodians open the leak-digest key for the scan (each logs
    /// it).
    #[command(
        after_help = "Exit codes: 0 every file was read and scanned; 1 the scan could not run (node, passphrases, store) or no file could be read; 2 the scan ran but some files were refused (each listed with why: empty, binary, PDF, UTF-16, too large)."
    )]
    Scan {
        /// The dumped files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Write report.md, summary.json and rows.jsonl here: in rows.jsonl one line per row
        /// that names a person, one line per run of rows that name nobody.
        #[arg(long)]
        report: Option<PathBuf>,
        /// Encoding of the files when the guess is wrong: utf-8, windows-1256, latin-1.
        #[arg(long)]
        encoding: Option<String>,
        /// How rows meet the leak digests: `walk` reads the whole digest table once
        /// (cheapest for a large dump), `lookups` asks for each person (cheapest for a
        /// few), `auto` chooses by the dump's size. The verdicts are the same.
        #[arg(long, value_enum, default_value = "auto")]
        matching: leak::Matching,
        /// How values are checked: `records` tries one digest for a whole record (and one
        /// for a whole declaration) before checking field by field, `fields` checks every
        /// field on its own. The verdicts are the same.
        #[arg(long, value_enum, default_value = "records")]
        checks: leak::Checks,
        #[command(flatten)]
        pass: PassArg,
    },
}

#[derive(Subcommand)]
enum DecisionsCommand {
    /// Every decision with its state (in force, ended, released, alert); signatures checked.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One decision with its evidence.
    Show {
        /// Decision id.
        id: String,
    },
    /// One administrator's approval to lift a decision early, sent to the running gateway
    /// with that administrator's certificate (role `security`). Two distinct administrators
    /// release it.
    Release {
        /// Decision id.
        id: String,
        /// The administrator's identity (issued in HOME/identity/issued/NAME).
        #[arg(long = "as")]
        admin: String,
        /// Why it is lifted (kept in the decision log).
        #[arg(long)]
        reason: String,
        /// Gateway address (default: the one HOME/gateway.addr records).
        #[arg(long)]
        gateway: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Key ceremony: draw one key per class, split it among custodians, seal each share.
    Init {
        /// Custodians needed to decrypt (t).
        #[arg(long, default_value_t = 2)]
        threshold: usize,
        /// Custodians (n).
        #[arg(long, default_value_t = 3)]
        custodians: usize,
        /// Sensitivity classes, comma-separated; `identity` and `financial` are required (the fund's tables seal fields in them), others may be added.
        #[arg(long, value_delimiter = ',', default_value = "identity,financial")]
        classes: Vec<Class>,
        /// Where custodians' passphrases come from: prompt, env (RIBAT_CUSTODIAN_N_PASSPHRASE for custodian N) or dir:PATH (files custodian-N.pass).
        #[arg(long, default_value = "prompt")]
        passphrases: passphrases::Source,
    },
    /// Key rotation, for when `t` custodians' shares may have leaked: every custodian
    /// contributes to a new key for every class (no dealer ever holds it), new records are
    /// sealed to it at once, and every record is re-sealed to it by a job that reads each
    /// through the quorum (audited, purpose `key-rotation`). Reads go on throughout. The
    /// job can be stopped at any point (even kill -9): run the command again to resume.
    /// Once no record is left under the old epoch, its shares are erased. Exit codes: 0
    /// done, 1 an error (nothing lost; run again).
    Rotate {
        /// Where custodians' passphrases come from (every custodian must open): prompt,
        /// env or dir:PATH.
        #[arg(long, default_value = "prompt")]
        passphrases: passphrases::Source,
        /// Records per request of the re-sealing job.
        #[arg(long, default_value_t = ribat_node::rotate::DEFAULT_BATCH)]
        batch: usize,
        /// Only say where the rotation stands (no passphrase needed).
        #[arg(long)]
        status: bool,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Rotate the class keys of a generated fund: the re-sealing job's rate, and readers'
    /// latency while it runs against the same readers before it.
    Rotate {
        /// Insured persons (one month of declarations each).
        #[arg(long, default_value_t = 200_000)]
        persons: usize,
        /// Records per request of the job.
        #[arg(long, default_value_t = ribat_node::rotate::DEFAULT_BATCH)]
        batch: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Match a dump of every person of a generated fund against the node holding it,
    /// against parsing the same file alone.
    Leak {
        /// Rows of the dump (persons of the fund).
        #[arg(long, default_value_t = 200_000)]
        rows: usize,
        /// Seed.
        #[arg(long, default_value_t = 2025)]
        seed: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Import a generated fund sealed, and the same files in clear into SQLite (baseline).
    Import {
        /// Insured persons (one month of declarations each).
        #[arg(long, default_value_t = 100_000)]
        persons: usize,
        /// Seed.
        #[arg(long, default_value_t = 2025)]
        seed: u64,
        /// Sealing threads (default: every core).
        #[arg(long)]
        threads: Option<usize>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Durable audit appends per second with group commit, against raw fsync'd appends.
    Audit {
        /// Entries to append.
        #[arg(long, default_value_t = 200_000)]
        entries: u64,
        /// Concurrent appenders (request handlers each waiting for their entry).
        #[arg(long, default_value_t = 96)]
        threads: u64,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Single-person reads over mTLS from a running embedded node (2 of 3 custodians,
    /// audited), against PostgreSQL with the fields encrypted by pgcrypto, same clients.
    Api {
        /// Persons in the generated fund.
        #[arg(long, default_value_t = 5_000)]
        persons: usize,
        /// Reads to time on each side.
        #[arg(long, default_value_t = 20_000)]
        requests: usize,
        /// Concurrent clients, each with its own connection.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// PostgreSQL for the pgcrypto baseline.
        #[arg(long, env = "RIBAT_TEST_PG")]
        pg: String,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// A mesh of N node processes on loopback (one custodian each, a gateway on every
    /// node): reads through custodians on other nodes against the embedded node in the same
    /// run, detection to enforcement on every node over many decisions, and reads while the
    /// leader is killed.
    Mesh {
        /// Node processes (the threshold is a majority).
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// Persons in the generated fund.
        #[arg(long, default_value_t = 2_000)]
        persons: usize,
        /// Reads to time on each side.
        #[arg(long, default_value_t = 5_000)]
        requests: usize,
        /// Concurrent clients, each with its own connection.
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Decisions to time (each a partner quarantined by node 1's detectors).
        #[arg(long, default_value_t = 100)]
        decisions: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Sealing, partial decryption, proofs, combination, and batches.
    Crypto {
        /// Records per batch.
        #[arg(long, default_value_t = 1_000)]
        batch: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Command::Audit {
            command: AuditCommand::VerifyProof { file },
        } => return verify_proof(file),
        Command::Audit {
            command: AuditCommand::Verify { dir, trust },
        } => return audit::verify(dir, trust.as_deref()),
        _ => {}
    }
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<PartialSuccess>().is_some() => {
            let code = e.downcast_ref::<PartialSuccess>().map_or(1, |p| p.code);
            eprintln!("warning: {e}");
            std::process::ExitCode::from(code)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A command that did part of its work: its own exit code, documented in its `--help`.
#[derive(Debug)]
struct PartialSuccess {
    code: u8,
    what: String,
}

impl std::fmt::Display for PartialSuccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for PartialSuccess {}

/// `ribat audit verify-proof`: its own exit codes, so that scripts can branch on them.
fn verify_proof(file: &std::path::Path) -> std::process::ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return std::process::ExitCode::FAILURE;
        }
    };
    match ribat_audit::proof_file::verify_text(&text) {
        Ok(what) => {
            println!("valid: {what}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            println!("invalid: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let store = ribat_node::StoreSpec::parse(&cli.store, &cli.store_schema)?;
    match cli.command {
        Command::Demo { persons, seed } => {
            anyhow::ensure!(
                cli.store == "sqlite",
                "the demo runs on the embedded SQLite store; drop --store (or RIBAT_STORE)"
            );
            let home = node_home(cli.home, &store)?;
            Ok(demo::run(&home, &demo::DemoOptions { persons, seed })?)
        }
        Command::Identity { command } => {
            let home = node_home(cli.home, &store)?;
            Ok(match command {
                IdentityCommand::Init { hosts } => identity::init(&home, &hosts),
                IdentityCommand::Add {
                    name,
                    role,
                    institution,
                    days,
                    hosts,
                    out,
                    review_by,
                } => {
                    let review = review_by
                        .as_deref()
                        .map(ribat_node::grants::review_date)
                        .transpose()?;
                    identity::add(&home, &name, &role, &institution, days, &hosts, out, review)
                }
                IdentityCommand::Recertify { name, review_by } => {
                    let review = ribat_node::grants::review_date(&review_by)?;
                    ribat_node::reviews::recertify(&home, &name, review)
                }
                IdentityCommand::Revoke { name } => identity::revoke(&home, &name),
                IdentityCommand::List => identity::list(&home),
            }?)
        }
        Command::Token {
            command:
                TokenCommand::Issue {
                    cert,
                    ttl,
                    audience,
                },
        } => {
            let home = node_home(cli.home, &store)?;
            Ok(identity::issue_token(
                &home,
                &cert,
                ttl,
                audience.as_deref(),
            )?)
        }
        Command::Simulate {
            scenario,
            persons,
            seed,
            requests,
            in_flight,
            mesh,
            json,
        } => {
            let home = node_home(cli.home, &store)?;
            let o = simulate::Options {
                scenario,
                persons,
                seed,
                requests,
                in_flight,
                json,
            };
            match mesh {
                Some(n) => Ok(simulate::mesh::run(&home, &o, n)?),
                None => Ok(simulate::run(&home, &o)?),
            }
        }
        Command::Api {
            method,
            target,
            gateway,
            identity,
            body,
        } => {
            let addr = match gateway {
                Some(a) => a,
                None => ribat_node::api_client::gateway_addr(&node_home(cli.home, &store)?, None)?,
            };
            if let Some(b) = &body {
                serde_json::from_str::<serde_json::Value>(b).context("--body: not JSON")?;
            }
            let method = match method {
                ApiMethod::Get => "GET",
                ApiMethod::Post => "POST",
            };
            let r = ribat_node::api_client::call(
                &addr,
                &identity,
                method,
                &target,
                body.map(String::into_bytes),
            )?;
            let v = serde_json::from_slice::<serde_json::Value>(&r.body).ok();
            if (200..300).contains(&r.status) {
                match v {
                    Some(v) => println!("{}", serde_json::to_string_pretty(&v)?),
                    None => println!("{}", String::from_utf8_lossy(&r.body)),
                }
                return Ok(());
            }
            let field = |k: &str| {
                v.as_ref()
                    .and_then(|v| v[k].as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            anyhow::bail!(
                "the gateway answered HTTP {} {}: {}",
                r.status,
                field("type").rsplit('/').next().unwrap_or_default(),
                field("detail")
            )
        }
        Command::Decisions { command } => {
            let home = node_home(cli.home, &store)?;
            Ok(
                match command.unwrap_or(DecisionsCommand::List { json: false }) {
                    DecisionsCommand::List { json } => decisions::list(&home, json),
                    DecisionsCommand::Show { id } => decisions::show(&home, &id),
                    DecisionsCommand::Release {
                        id,
                        admin,
                        reason,
                        gateway,
                    } => decisions::release(&home, &id, &admin, &reason, gateway.as_deref()),
                }?,
            )
        }
        Command::Serve {
            listen,
            remote,
            deadline_ms,
            ocsf,
            syslog,
            require_signed_requests,
            pass,
        } => {
            let home = node_home(cli.home, &store)?;
            Ok(serve::gateway(
                &home,
                &pass.passphrases,
                &listen,
                &serve::ServeOptions {
                    remotes: remote,
                    deadline: std::time::Duration::from_millis(deadline_ms),
                    audited_by_log: false,
                    outputs: ribat_gateway::watch::Outputs { ocsf, syslog },
                    published_witnesses: Default::default(),
                    signed_requests: require_signed_requests,
                },
            )?)
        }
        Command::Custodian {
            index,
            dir,
            listen,
            require_signed_requests,
            pass,
        } => {
            let home = node_home(cli.home, &store)?;
            Ok(serve::custodian(
                &home,
                &pass.passphrases,
                index,
                dir.as_deref(),
                &listen,
                require_signed_requests,
            )?)
        }
        Command::Keys {
            command:
                KeysCommand::Init {
                    threshold,
                    custodians,
                    classes,
                    passphrases,
                },
        } => {
            let home = node_home(cli.home, &store)?;
            Ok(ceremony::init(
                &home,
                threshold,
                custodians,
                &classes,
                &passphrases,
                ribat_crypto::passphrase::KdfParams::default(),
            )?)
        }
        Command::Keys {
            command:
                KeysCommand::Rotate {
                    passphrases,
                    batch,
                    status,
                    json,
                },
        } => {
            let home = node_home(cli.home, &store)?;
            Ok(ribat_node::rotate::run(
                &home,
                &passphrases,
                ribat_crypto::passphrase::KdfParams::default(),
                batch,
                status,
                json,
            )?)
        }
        Command::Sim {
            command:
                SimCommand::Generate {
                    persons,
                    employers,
                    months,
                    seed,
                    out,
                },
        } => {
            anyhow::ensure!(
                employers >= 1 && persons >= 1 && months >= 1,
                "--persons, --employers and --months must be at least 1"
            );
            let fund = ribat_sim::files::write(
                &ribat_sim::FundSpec::new(persons, employers, months, seed),
                &out,
            )?;
            ribat_lab::describe_fund(&fund, &out);
            Ok(())
        }
        Command::Import {
            inputs,
            honey,
            public_figures,
            report,
            threads,
            gateway,
            identity,
            pass,
        } => {
            if let Some(gateway) = gateway {
                let identity = identity.context("--identity: the sending identity's directory")?;
                ribat_node::intake::send(&gateway, &identity, &inputs)?;
                return Ok(());
            }
            let home = node_home(cli.home, &store)?;
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            import::run(
                &home,
                &pass.passphrases,
                &import::ImportOptions {
                    inputs,
                    honey,
                    public_figures,
                    report,
                    threads,
                },
            )?;
            Ok(())
        }
        Command::Get {
            cnss,
            purpose,
            fields,
            history,
            json,
            who,
            pass,
        } => {
            read::check_fields(&fields)?;
            let home = node_home(cli.home, &store)?;
            let node = embedded::Embedded::open(&home, &pass.passphrases)?;
            let r = who.reader(purpose);
            let id = read::one(read::by_cnss(&node, &cnss)?, "CNSS number")?;
            let f = read::person(&node, &r, &id, &fields)?;
            let h = if history {
                Some(read::history(&node, &r, &id)?)
            } else {
                None
            };
            read::print(&id, &f, h.as_deref(), json)?;
            node.checkpoint()?;
            Ok(())
        }
        Command::Find {
            cin,
            name,
            birth_date,
            purpose,
            json,
            who,
            pass,
        } => {
            let home = node_home(cli.home, &store)?;
            let node = embedded::Embedded::open(&home, &pass.passphrases)?;
            let r = who.reader(purpose);
            let ids = match (cin, name, birth_date) {
                (Some(c), _, _) => read::by_cin(&node, &c)?,
                (None, Some(n), Some(b)) => read::by_name(&node, &n, &b)?,
                _ => anyhow::bail!("give --cin, or --name with --birth-date"),
            };
            if ids.is_empty() {
                anyhow::bail!("no person matches");
            }
            for id in ids {
                let f = read::person(&node, &r, &id, &[])?;
                read::print(&id, &f, None, json)?;
            }
            node.checkpoint()?;
            Ok(())
        }
        Command::Audit {
            command:
                AuditCommand::Subject {
                    cnss,
                    authority,
                    json,
                    pass,
                },
        } => {
            let home = node_home(cli.home, &store)?;
            let node = embedded::Embedded::open(&home, &pass.passphrases)?;
            Ok(audit::subject(&node, &cnss, authority, json)?)
        }
        // Handled in `main`, which owns their exit codes.
        Command::Audit { .. } => Ok(()),
        Command::Bench {
            command:
                BenchCommand::Mesh {
                    nodes,
                    persons,
                    requests,
                    clients,
                    decisions,
                    json,
                },
        } => {
            let home = node_home(cli.home, &store)?;
            home.create()?;
            Ok(bench::mesh::run(
                &home,
                &bench::mesh::Options {
                    nodes,
                    persons,
                    requests,
                    clients,
                    decisions,
                    json,
                },
            )?)
        }
        Command::Bench {
            command:
                BenchCommand::Api {
                    persons,
                    requests,
                    clients,
                    pg,
                    json,
                },
        } => {
            let home = node_home(cli.home, &store)?;
            home.create()?;
            Ok(bench::api::run(
                &home,
                &bench::api::Options {
                    persons,
                    requests,
                    clients,
                    pg,
                    json,
                },
            )?)
        }
        Command::Bench {
            command:
                BenchCommand::Audit {
                    entries,
                    threads,
                    json,
                },
        } => {
            anyhow::ensure!(entries >= 1, "--entries must be at least 1");
            anyhow::ensure!(
                (1..=4096).contains(&threads),
                "--threads must be between 1 and 4096"
            );
            let home = node_home(cli.home, &store)?;
            home.create()?;
            Ok(bench::audit::run(home.root(), entries, threads, json)?)
        }
        Command::Bench {
            command:
                BenchCommand::Import {
                    persons,
                    seed,
                    threads,
                    json,
                },
        } => {
            anyhow::ensure!(
                cli.store == "sqlite",
                "bench import measures the embedded SQLite store"
            );
            anyhow::ensure!(persons >= 12, "--persons must be at least 12");
            let home = node_home(cli.home, &store)?;
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            Ok(bench::import::run(&home, persons, seed, threads, json)?)
        }
        Command::Bench {
            command:
                BenchCommand::Rotate {
                    persons,
                    batch,
                    json,
                },
        } => {
            anyhow::ensure!(persons >= 12, "--persons must be at least 12");
            anyhow::ensure!(
                (1..=ribat_custodian::request::MAX_RECORDS_PER_REQUEST).contains(&batch),
                "--batch must be between 1 and {}",
                ribat_custodian::request::MAX_RECORDS_PER_REQUEST
            );
            anyhow::ensure!(
                cli.store == "sqlite",
                "bench rotate measures the embedded SQLite store"
            );
            let home = node_home(cli.home, &store)?;
            Ok(bench::rotate::run(&home, persons, batch, json)?)
        }
        Command::Bench {
            command: BenchCommand::Leak { rows, seed, json },
        } => {
            anyhow::ensure!(rows >= 12, "--rows must be at least 12");
            anyhow::ensure!(
                cli.store == "sqlite",
                "bench leak measures the embedded SQLite store"
            );
            let home = node_home(cli.home, &store)?;
            Ok(bench::leak::run(&home, rows, seed, json)?)
        }
        Command::Mesh { command } => mesh_command(command, store),
        Command::Node {
            dir,
            ocsf,
            syslog,
            lab_clock,
            pass,
        } => Ok(ribat_node::mesh::run(
            &dir,
            &pass.passphrases,
            ribat_gateway::watch::Outputs { ocsf, syslog },
            lab_clock.as_deref(),
        )?),
        Command::Export { command } => {
            let home = node_home(cli.home, &store)?;
            match command {
                ExportCommand::Request {
                    recipient,
                    purpose,
                    query,
                    by,
                } => {
                    let id = exports::request(&home, &recipient, &purpose, &query, &by)?;
                    println!(
                        "export {id} requested for {recipient}; two security administrators approve it with `ribat export approve {id} --as NAME`"
                    );
                }
                ExportCommand::Approve { id, admin } => {
                    let r = exports::approve(&home, &id, &admin)?;
                    println!(
                        "export {id}: {} of {} approvals",
                        r.approvals.len(),
                        exports::APPROVALS
                    );
                }
                ExportCommand::Run { id, out, pass } => {
                    let node = embedded::Embedded::open(&home, &pass.passphrases)?;
                    let (_, m) = exports::run(&home, &node, &id, &out)?;
                    println!(
                        "export {id} for {}: {} rows ({} canaries) written to {}; manifest sealed in the vault",
                        m.recipient,
                        m.rows,
                        m.canaries.len(),
                        out.display()
                    );
                }
            }
            Ok(())
        }
        Command::Leak {
            command:
                LeakCommand::Notify {
                    report,
                    out,
                    approvers,
                    pass,
                },
        } => {
            let home = node_home(cli.home, &store)?;
            let node = embedded::Embedded::open(&home, &pass.passphrases)?;
            let n = leak::notify(&home, &node, &report, &out, &approvers)?;
            println!(
                "{n} affected persons written to {} (owner-only); each read is in the custodians' and the audit log under purpose breach-notification",
                out.display()
            );
            Ok(())
        }
        Command::Leak {
            command:
                LeakCommand::Scan {
                    files,
                    json,
                    report,
                    encoding,
                    matching,
                    checks,
                    pass,
                },
        } => {
            let encoding = encoding
                .map(|e| {
                    ribat_leak::encoding::TextEncoding::parse(&e).with_context(|| {
                        format!("unknown encoding {e:?}: use utf-8, windows-1256 or latin-1")
                    })
                })
                .transpose()?;
            let home = node_home(cli.home, &store)?;
            let node = embedded::Embedded::open(&home, &pass.passphrases)?;
            let scan = leak::scan_into(
                &node,
                &leak::ScanOptions {
                    files,
                    encoding,
                    threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
                    attribute: true,
                    matching,
                    checks,
                },
                report.as_deref(),
                &mut |_| {},
            )?;
            if let Some(dir) = &report {
                leak::write_report(dir, &scan)?;
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&scan.summary)?);
            } else {
                leak::print_human(&scan.summary);
                if let Some(dir) = &report {
                    println!("report written to {}", dir.display());
                }
            }
            if scan.summary.files.is_empty() {
                let why: Vec<String> = scan
                    .summary
                    .refused
                    .iter()
                    .map(|(f, e)| format!("{f}: {e}"))
                    .collect();
                anyhow::bail!("no file could be read: {}", why.join("; "));
            }
            if !scan.summary.refused.is_empty() {
                return Err(PartialSuccess {
                    code: 2,
                    what: format!(
                        "{} of {} files were refused (listed above); the others were scanned",
                        scan.summary.refused.len(),
                        scan.summary.refused.len() + scan.summary.files.len()
                    ),
                }
                .into());
            }
            Ok(())
        }
        Command::Sim {
            command:
                SimCommand::Leak {
                    persons,
                    seed,
                    out,
                    variants,
                    evaluate,
                    include_exports,
                    json,
                },
        } => {
            anyhow::ensure!(persons >= 100, "--persons must be at least 100");
            let variants = variants
                .iter()
                .map(|v| {
                    ribat_sim::leak::Variant::ALL
                        .into_iter()
                        .find(|x| x.name() == v)
                        .with_context(|| format!("unknown variant {v:?}"))
                })
                .collect::<Result<Vec<_>>>()?;
            let scores = sim_leak::run(&sim_leak::LeakSimOptions {
                persons,
                seed,
                out,
                exports: variants.is_empty() || include_exports,
                variants,
                evaluate,
            })?;
            if evaluate {
                if json {
                    println!("{}", serde_json::to_string_pretty(&scores)?);
                } else {
                    sim_leak::print_table(&scores);
                }
            }
            Ok(())
        }
        Command::Bench {
            command: BenchCommand::Crypto { batch, json },
        } => {
            anyhow::ensure!(
                (1..=ribat_crypto::dleq::MAX_BATCH).contains(&batch),
                "--batch must be between 1 and 65535"
            );
            Ok(bench::crypto::run(batch, json)?)
        }
    }
}

fn mesh_command(command: MeshCommand, store: ribat_node::StoreSpec) -> Result<()> {
    match command {
        MeshCommand::Up { shape, dir, import } => {
            // Passphrases made up for a mesh on one machine (kept beside it, owner-only).
            let pass = passphrases::Source::Dir(dir.join(ribat_node::mesh::PASSPHRASES_DIR));
            let spec = shape.spec(dir, pass, store)?;
            let me = std::env::current_exe().context("cannot find this program to start nodes")?;
            Ok(ribat_node::mesh::up(&me, &spec, &import)?)
        }
        MeshCommand::Init { shape, out, pass } => {
            let spec = shape.spec(out, pass.passphrases, store)?;
            let dirs = ribat_node::mesh::init(&spec)?;
            let (nodes, threshold, out, addrs, gateways) = (
                spec.addrs.len(),
                spec.threshold,
                spec.out,
                spec.addrs,
                spec.gateways,
            );
            println!(
                "mesh of {nodes} nodes, threshold {threshold}, in {}",
                out.display()
            );
            for (i, (d, a)) in dirs.iter().zip(&addrs).enumerate() {
                let gateway = gateways
                    .iter()
                    .find(|(id, _)| *id == i as u64 + 1)
                    .map_or(String::new(), |(_, g)| format!(", gateway on {g}"));
                println!(
                    "  {} -> {a}: custodian {}{gateway} (carry to its host; run `ribat node --dir DIR`)",
                    d.display(),
                    i + 1
                );
            }
            println!(
                "  administrators' signing keys in {}/admins: give each to its holder, then delete them here",
                out.display()
            );
            println!(
                "  the CA's key is in {}: issue identities there (`ribat --home {} identity add …`), keep it offline",
                ribat_node::identity::dir(&ribat_node::mesh::deployment_home(&out)).display(),
                ribat_node::mesh::deployment_home(&out).root().display()
            );
            println!(
                "  a certificate acts in the mesh once two administrators grant it: `ribat mesh approve --grant CERT --reason R` each, then `ribat mesh grant`"
            );
            Ok(())
        }
        MeshCommand::Restrict {
            dir,
            identity,
            minutes,
            reason,
        } => {
            let (id, p) = ribat_node::mesh::restrict(
                &dir,
                ribat_detect::response::Target::Identity(identity),
                ribat_detect::response::Action::Quarantine,
                minutes,
                "manual",
                &reason,
            )?;
            println!("{}", ribat_node::mesh::describe(&p)?);
            println!("restriction {id}");
            Ok(())
        }
        MeshCommand::Revoke { by, serial, reason } => {
            let p = ribat_node::mesh::revoke(&by.dir, &by.key, &by.admin, &serial, &reason)?;
            println!("{}", ribat_node::mesh::describe(&p)?);
            Ok(())
        }
        MeshCommand::Approve {
            key,
            admin,
            id,
            grant,
            review_by,
            reason,
            export,
            terms,
            add_node,
            remove_node,
            policy,
            rules,
            version,
            allow_build,
            build,
            retire_build,
            retirement,
            reshare,
        } => {
            use ribat_node::mesh::Document;
            if let Some(file) = reshare {
                let statement = ribat_node::reshare::read_statement(&file)?;
                let a = ribat_node::reshare::approve(&key, &admin, &statement)?;
                println!("{}", serde_json::to_string(&a)?);
                return Ok(());
            }
            if let Some(binary) = allow_build {
                let reason = reason.context("--reason: why this build may run")?;
                let statement = ribat_node::attest::allow_statement(
                    &binary,
                    build.lock.as_deref(),
                    build.build_version.as_deref(),
                    &reason,
                )?;
                let a = ribat_node::attest::approve_allow(&key, &admin, &statement)?;
                println!("{}", serde_json::to_string(&a)?);
                return Ok(());
            }
            if let Some(b) = retire_build {
                let statement = retirement.statement(&b)?;
                let a = ribat_node::attest::approve_retire(&key, &admin, &statement)?;
                println!("{}", serde_json::to_string(&a)?);
                return Ok(());
            }
            let document = match (policy, rules) {
                (Some(f), _) => Some((Document::Policy, f)),
                (None, Some(f)) => Some((Document::Rules, f)),
                (None, None) => None,
            };
            if let Some((doc, file)) = document {
                let version = version.context("--version: the document's version")?;
                let statement = ribat_node::mesh::document_statement(doc, &file, version)?;
                let a = ribat_node::mesh::approve_document(doc, &key, &admin, &statement)?;
                println!("{}", serde_json::to_string(&a)?);
                return Ok(());
            }
            if let Some(export) = export {
                let statement = terms.statement(&export)?;
                let a = ribat_node::allowances::approve(&key, &admin, &statement)?;
                println!("{}", serde_json::to_string(&a)?);
                return Ok(());
            }
            if !grant.is_empty() {
                let reason = reason.context("--reason: why these certificates are let in")?;
                let review = review_by
                    .as_deref()
                    .map(ribat_node::grants::review_date)
                    .transpose()?;
                let statement = ribat_node::grants::statement(&grant, &reason, review)?;
                let a = ribat_node::grants::approve(&key, &admin, &statement)?;
                println!("{}", serde_json::to_string(&a)?);
                return Ok(());
            }
            let a = match (id, add_node, remove_node) {
                (Some(id), _, _) => {
                    let reason = reason.context("--reason: why the restriction is lifted")?;
                    ribat_node::mesh::approve_release(&key, &admin, &id, &reason)?
                }
                (None, Some(dir), _) => ribat_node::mesh::approve_membership(
                    &key,
                    &admin,
                    &ribat_node::mesh::joining(&dir)?,
                )?,
                (None, None, Some(name)) => ribat_node::mesh::approve_membership(
                    &key,
                    &admin,
                    &ribat_node::mesh::MembershipStatement::Remove(name),
                )?,
                (None, None, None) => {
                    anyhow::bail!(
                        "--id, --grant, --export, --add-node, --remove-node, --policy or --rules: what is approved"
                    )
                }
            };
            println!("{}", serde_json::to_string(&a)?);
            Ok(())
        }
        MeshCommand::SetPolicy(a) => put_in_force(ribat_node::mesh::Document::Policy, a),
        MeshCommand::SetRules(a) => put_in_force(ribat_node::mesh::Document::Rules, a),
        MeshCommand::Reshare {
            dir,
            remove,
            add,
            threshold,
            rotate,
            reason,
            out,
            statement,
            approvals,
        } => {
            if let Some(file) = statement {
                let statement = ribat_node::reshare::read_statement(&file)?;
                let p =
                    ribat_node::reshare::propose(&dir, statement, parse_approvals(&approvals)?)?;
                println!("{}", ribat_node::mesh::describe(&p)?);
                return Ok(());
            }
            let reason = reason.context("--reason: why the custodians change")?;
            let out =
                out.context("--out: where to write the statement the administrators approve")?;
            if remove.is_empty() && add.is_empty() && threshold.is_none() && rotate.is_none() {
                anyhow::bail!("nothing to change: give --remove, --add, --threshold or --rotate");
            }
            let current = ribat_node::reshare::custodians(&dir)?;
            let statement = match &rotate {
                Some(job) => ribat_node::reshare::rotation_statement(&current, job, &reason)?,
                None => {
                    ribat_node::reshare::statement(&current, &remove, &add, threshold, &reason)?
                }
            };
            ribat_node::reshare::write_statement(&out, &statement)?;
            println!(
                "custodian set {} → {}: {} of {} ({}), dealt by custodians {:?}",
                current.set.number,
                statement.set,
                statement.threshold,
                statement.holders.len(),
                ribat_node::reshare::holders_line(&statement.holders),
                statement.dealers
            );
            println!("statement: {}", out.display());
            println!("next:");
            println!(
                "  1. two administrators each run: ribat mesh approve --key KEY --as NAME --reshare {}",
                out.display()
            );
            println!(
                "  2. ribat mesh reshare --dir {} --statement {} --approval '…' --approval '…'",
                dir.display(),
                out.display()
            );
            Ok(())
        }
        MeshCommand::Custodians { dir, json } => {
            let c = ribat_node::reshare::custodians(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&c)?);
                return Ok(());
            }
            println!(
                "custodian set {} in force: {} of {}, key epoch {}",
                c.set.number,
                c.set.threshold,
                c.set.holders.len(),
                c.set.epoch
            );
            for (i, n) in &c.set.holders {
                println!("  custodian {i}  {n}");
            }
            if let Some(r) = &c.set.resealing {
                println!(
                    "records are re-sealed from epoch {} to {} by {} (its log says how far)",
                    r.from_epoch, c.set.epoch, r.job
                );
            }
            match &c.resharing {
                Some(r) => println!(
                    "{} to set {} under way ({}): {} of {} dealers dealt, {} of {} new custodians ready",
                    if r.statement.rotate.is_some() {
                        "key rotation"
                    } else {
                        "resharing"
                    },
                    r.statement.set,
                    r.statement.reason,
                    r.dealt.len(),
                    r.statement.dealers.len(),
                    r.received.len(),
                    r.statement.holders.len()
                ),
                None => println!("no resharing under way"),
            }
            Ok(())
        }
        MeshCommand::PrepareNode { out, addr, id } => {
            // With `--store sqlite:PATH` or `postgres:…`, the node reaches the records and
            // a resharing can give it a custodian.
            let store = (store != ribat_node::StoreSpec::Sqlite).then_some(store.clone());
            let dir = ribat_node::mesh::prepare_node(&out, &addr, id, store)?;
            let show = dir.display();
            println!("node directory: {show}");
            println!("next:");
            println!("  1. carry {show} to its host and start it: ribat node --dir {show}");
            println!(
                "  2. two administrators each run: ribat mesh approve --key KEY --as NAME --add-node {show}"
            );
            println!(
                "  3. ribat mesh add-node --dir A_MEMBER_DIR --node {show} --approval '…' --approval '…'"
            );
            Ok(())
        }
        MeshCommand::AddNode {
            dir,
            node,
            approvals,
        } => {
            let statement = ribat_node::mesh::joining(&node)?;
            let p =
                ribat_node::mesh::change_membership(&dir, statement, parse_approvals(&approvals)?)?;
            println!("{}", ribat_node::mesh::describe(&p)?);
            Ok(())
        }
        MeshCommand::RemoveNode {
            dir,
            node,
            approvals,
        } => {
            let statement = ribat_node::mesh::MembershipStatement::Remove(node);
            let p =
                ribat_node::mesh::change_membership(&dir, statement, parse_approvals(&approvals)?)?;
            println!("{}", ribat_node::mesh::describe(&p)?);
            Ok(())
        }
        MeshCommand::Grant {
            dir,
            certs,
            reason,
            review_by,
            approvals,
        } => {
            // The date as signed: parsed, not checked against the clock again (an
            // approval made yesterday for a date a year ahead stays valid).
            let review = review_by
                .as_deref()
                .map(|t| ribat_node::mesh::parse_time("--review-by", t))
                .transpose()?;
            let statement = ribat_node::grants::statement(&certs, &reason, review)?;
            let p = ribat_node::grants::grant(&dir, statement, parse_approvals(&approvals)?)?;
            println!("{}", ribat_node::mesh::describe(&p)?);
            Ok(())
        }
        MeshCommand::AllowExport {
            dir,
            export,
            terms,
            approvals,
        } => {
            let statement = terms.statement(&export)?;
            let p = ribat_node::allowances::allow(&dir, statement, parse_approvals(&approvals)?)?;
            println!("{}", ribat_node::mesh::describe(&p)?);
            Ok(())
        }
        MeshCommand::Recertify {
            by,
            serial,
            review_by,
            reason,
        } => {
            let review = ribat_node::grants::review_date(&review_by)?;
            let p = ribat_node::grants::recertify(
                &by.dir, &by.key, &by.admin, &serial, review, &reason,
            )?;
            println!("{}", ribat_node::mesh::describe(&p)?);
            Ok(())
        }
        MeshCommand::AllowBuild {
            dir,
            binary,
            build,
            reason,
            approvals,
        } => {
            let statement = ribat_node::attest::allow_statement(
                &binary,
                build.lock.as_deref(),
                build.build_version.as_deref(),
                &reason,
            )?;
            let p = ribat_node::attest::allow_build(&dir, statement, parse_approvals(&approvals)?)?;
            println!("{}", ribat_node::mesh::describe(&p)?);
            Ok(())
        }
        MeshCommand::RetireBuild {
            dir,
            build,
            retirement,
            approvals,
        } => {
            let statement = retirement.statement(&build)?;
            let p =
                ribat_node::attest::retire_build(&dir, statement, parse_approvals(&approvals)?)?;
            println!("{}", ribat_node::mesh::describe(&p)?);
            Ok(())
        }
        MeshCommand::Drift { dir, json } => {
            let a = ribat_node::attest::drift(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&a)?);
            } else {
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                print!("{}", ribat_node::attest::render_drift(&a, now_ms));
            }
            let off = ribat_node::attest::off_course(&a);
            anyhow::ensure!(
                off.is_empty(),
                "{} member(s) drifting or cut off: {}",
                off.len(),
                off.join(", ")
            );
            Ok(())
        }
        MeshCommand::Identities { dir, json } => {
            let list = ribat_node::grants::list(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print!("{}", ribat_node::grants::render(&list));
            }
            Ok(())
        }
        MeshCommand::Release {
            dir,
            id,
            reason,
            approvals,
        } => {
            let p = ribat_node::mesh::release(&dir, &id, &reason, parse_approvals(&approvals)?)?;
            println!("{}", ribat_node::mesh::describe(&p)?);
            Ok(())
        }
        MeshCommand::Status { dir, json } => {
            let members = ribat_node::mesh::status(&dir)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&members)?);
            } else {
                print!("{}", ribat_node::mesh::render(&members));
            }
            anyhow::ensure!(
                ribat_node::mesh::majority_leader(&members).is_some(),
                "no leader agreed by a majority of the {} members",
                members.len()
            );
            Ok(())
        }
    }
}

/// `mesh set-policy` and `mesh set-rules`.
fn put_in_force(doc: ribat_node::mesh::Document, a: DocumentArgs) -> Result<()> {
    let statement = ribat_node::mesh::document_statement(doc, &a.file, a.version)?;
    let p = ribat_node::mesh::put_in_force(doc, &a.dir, statement, parse_approvals(&a.approvals)?)?;
    println!("{}", ribat_node::mesh::describe(&p)?);
    Ok(())
}

/// Approvals as `mesh approve` printed them.
fn parse_approvals(approvals: &[String]) -> Result<Vec<ribat_node::mesh::Approval>> {
    approvals
        .iter()
        .map(|a| {
            serde_json::from_str(a)
                .with_context(|| "--approval: not an approval printed by `mesh approve`")
        })
        .collect()
}

/// The nodes' addresses: as given, or 127.0.0.1 from `base_port + 1`.
/// The node's HOME with its store: `--store`, else in a mesh node's directory the store
/// its mesh.json names, else HOME/store.sqlite.
fn node_home(flag: Option<PathBuf>, store: &ribat_node::StoreSpec) -> Result<home::Home> {
    let home = home::Home::resolve(flag)?.with_store(store.clone());
    Ok(ribat_node::mesh::adopt_store(home)?)
}

fn node_addrs(nodes: usize, addrs: Vec<String>, base_port: u16) -> Result<Vec<String>> {
    if addrs.is_empty() {
        (1..=nodes)
            .map(|i| {
                let port = u16::try_from(i)
                    .ok()
                    .and_then(|i| base_port.checked_add(i))
                    .context("--base-port + --nodes is beyond port 65535")?;
                Ok(format!("127.0.0.1:{port}"))
            })
            .collect()
    } else {
        anyhow::ensure!(
            addrs.len() == nodes,
            "--addrs names {} nodes, --nodes says {nodes}",
            addrs.len()
        );
        Ok(addrs)
    }
}
