//! The embedded shape: one process holding the store, every custodian and the reader.

use crate::bail;
use crate::error::{Context, Result};
use crate::home::{Home, StoreSpec};
use crate::passphrases::Source;
use ribat_crypto::group::GroupPublic;
use ribat_custodian::clock::{Clock, SystemClock};
use ribat_custodian::{Custodian, LocalCustodian, QuorumReader, Requester};
use ribat_gateway::NodeLog;
use ribat_gateway::node_log::{log_key, origin};
use ribat_gateway::vault::Vault;
use ribat_store::{PostgresStore, SqliteStore, Store};
use std::sync::Arc;

/// The identity under which a node opens its blind-index key.
pub fn service_identity() -> Requester {
    Requester {
        identity: "node.embedded".into(),
        role: ribat_policy::Role::SERVICE,
    }
}

/// Opens the node's store.
pub fn open_store(home: &Home) -> Result<Arc<dyn Store>> {
    Ok(match home.store().clone() {
        StoreSpec::Sqlite | StoreSpec::SqliteAt(_) => {
            Arc::new(SqliteStore::open(&home.store_file())?)
        }
        StoreSpec::Postgres { conninfo, schema } => Arc::new(
            PostgresStore::connect(&conninfo, &schema)
                .context("cannot open the PostgreSQL store")?,
        ),
    })
}

/// Mints a token for one of the node's own identities — its service identity, a key
/// rotation's re-sealing job — bound to its gateway's certificate (networked custodians
/// check who reads like any other read; each token lives a minute).
pub type ServiceTokens =
    Arc<dyn Fn(&Requester) -> Result<ribat_custodian::request::Bearer> + Send + Sync>;

/// An opened embedded node.
pub struct Embedded {
    /// The public group.
    pub group: GroupPublic,
    /// Custodians that opened (a custodian whose passphrase is wrong stays closed).
    pub custodians: Vec<Arc<LocalCustodian>>,
    /// The reading side: quorum reader over the open custodians, the audit log they
    /// cosign, the blind-index key opened through them, and the store.
    pub vault: Arc<Vault>,
    /// Tokens for the service identity, when custodians are networked.
    service_tokens: Option<ServiceTokens>,
    /// On a mesh node, the runtime its networked custodians are reached on (dropped last).
    runtime: Option<tokio::runtime::Runtime>,
}

/// The deployment name in key names and checkpoint origins.
pub const DEPLOYMENT: &str = "ribat.local";
/// This node's name in audit entries.
pub const NODE: &str = "node.embedded";

impl Embedded {
    /// Opens every custodian of `home` and the blind-index key.
    pub fn open(home: &Home, passphrases: &Source) -> Result<Self> {
        Self::open_with_clock(home, passphrases, Arc::new(SystemClock))
    }

    /// Same, with a given clock. In a mesh node's directory every custodian is on a mesh
    /// node, asked over mTLS with the node's gateway certificate.
    pub fn open_with_clock(
        home: &Home,
        passphrases: &Source,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        if !crate::mesh::is_node(home) {
            return Self::open_with(home, passphrases, clock, Vec::new());
        }
        let rt = crate::serve::runtime()?;
        // The custodian set in force, as this node's copy of the state holds it (the
        // ceremony's before any resharing).
        let (remotes, published) = crate::mesh::custodians_on_disk(home)?;
        let n = crate::serve::networked(
            home,
            &remotes,
            &published,
            rt.handle(),
            std::time::Duration::from_secs(5),
            &clock,
        )?;
        let remote = n
            .remotes
            .into_iter()
            .map(|r| r as Arc<dyn Custodian>)
            .collect();
        let mut node = Self::open_with_token(
            home,
            passphrases,
            clock,
            remote,
            Some(n.service_tokens),
            n.witnesses,
        )?;
        node.runtime = Some(rt);
        Ok(node)
    }

    /// Opens the custodians of `home` in this process, except those given as `remote`
    /// (custodians in other processes, asked over mTLS), and reads through all of them.
    pub fn open_with(
        home: &Home,
        passphrases: &Source,
        clock: Arc<dyn Clock>,
        remote: Vec<Arc<dyn Custodian>>,
    ) -> Result<Self> {
        Self::open_with_token(home, passphrases, clock, remote, None, Vec::new())
    }

    /// Same, with the service identity's token for networked custodians (they check who
    /// opens the blind-index key like any other read) and the witnesses of networked
    /// custodians (cosigning the audit log beside the local ones).
    pub fn open_with_token(
        home: &Home,
        passphrases: &Source,
        clock: Arc<dyn Clock>,
        remote: Vec<Arc<dyn Custodian>>,
        service_tokens: Option<ServiceTokens>,
        remote_witnesses: Vec<Arc<dyn ribat_audit::Cosigner>>,
    ) -> Result<Self> {
        if !home.has_keys() {
            bail!(
                "no keys in {}: run `ribat keys init` first (or `ribat demo`)",
                home.root().display()
            );
        }
        let text = std::fs::read_to_string(home.group_file())
            .with_context(|| format!("cannot read {}", home.group_file().display()))?;
        let group = GroupPublic::from_json(&text).with_context(|| {
            format!("{} is not a valid group file", home.group_file().display())
        })?;
        let store = open_store(home)?;
        let mut custodians = Vec::new();
        let mut closed = Vec::new();
        let remote_indexes: Vec<u32> = remote.iter().map(|c| c.index()).collect();
        for i in 1..=group.custodians {
            if u32::try_from(i).is_ok_and(|i| remote_indexes.contains(&i)) {
                continue;
            }
            let opened = passphrases.get(i, false).and_then(|p| {
                Ok(LocalCustodian::open(
                    &home.custodian_dir(i),
                    &p,
                    store.clone(),
                    clock.clone(),
                )?)
            });
            match opened {
                Ok(c) => custodians.push(Arc::new(c)),
                Err(e) => closed.push(format!("custodian {i}: {}", e.chain())),
            }
        }
        if custodians.len() + remote.len() < group.threshold {
            bail!(
                "only {} of the {} custodians needed could open:\n  {}",
                custodians.len() + remote.len(),
                group.threshold,
                closed.join("\n  ")
            );
        }
        // Writers seal with the keys of HOME/group.json. Each custodian has just checked its
        // secret share against the commitments of its own copy, and t verified shares fix
        // every commitment, hence Y_c: a group file that differs from theirs would make
        // new records readable by whoever forged it.
        for c in &custodians {
            if c.group()? != group {
                bail!(
                    "{} differs from the group file custodian {} verified its key shares against; refusing to seal or read with keys the custodians do not hold (restore group.json from a custodian's directory; if a key rotation stopped halfway, `ribat keys rotate` finishes it)",
                    home.group_file().display(),
                    ribat_custodian::Custodian::index(c.as_ref())
                );
            }
        }
        for c in &closed {
            eprintln!("warning: {c}; reads go on with the others");
        }
        let mut all: Vec<Arc<dyn Custodian>> = custodians
            .iter()
            .map(|c| c.clone() as Arc<dyn Custodian>)
            .chain(remote)
            .collect();
        all.sort_by_key(|c| c.index());
        let reader = QuorumReader::new(group.clone(), all, store.clone());
        // The audit log opens before any read: a node that cannot record does not read.
        let audit_dir = home.root().join("audit");
        let node_name = crate::mesh::audit_node(home)?;
        let log_key = log_key(&audit_dir, &origin(DEPLOYMENT, &node_name))?.verifier();
        let mut witnesses = custodians
            .iter()
            .map(|c| {
                c.witness(DEPLOYMENT, log_key.clone())
                    .map(|w| Arc::new(w) as Arc<dyn ribat_audit::Cosigner>)
            })
            .collect::<Result<Vec<_>, _>>()?;
        witnesses.extend(remote_witnesses);
        let audit = NodeLog::open(
            &audit_dir,
            DEPLOYMENT,
            &node_name,
            witnesses,
            group.threshold,
        )
        .context("the audit log cannot be opened, so this node serves no read")?;
        if audit.opened().torn_bytes > 0 {
            eprintln!(
                "note: the audit log ended in an unfinished append ({} bytes, a crash); it was cut, no acknowledged entry is affected",
                audit.opened().torn_bytes
            );
        }
        let token = service_tokens
            .as_ref()
            .map(|mint| mint(&service_identity()))
            .transpose()?;
        let index = reader
            .open_index_key_with(&service_identity(), "node-start", token)
            .context("cannot open the blind-index key through the custodians")?;
        Ok(Self {
            group,
            custodians,
            vault: Arc::new(Vault::new(reader, audit, index, store)),
            service_tokens,
            runtime: None,
        })
    }

    /// A token for `who`, one of the node's own identities, where custodians are in other
    /// processes (`None` where they are all in this one and share its checks).
    pub fn token_for(&self, who: &Requester) -> Result<Option<ribat_custodian::request::Bearer>> {
        self.service_tokens
            .as_ref()
            .map(|mint| mint(who))
            .transpose()
    }

    /// Opens the leak-digest key through the custodian quorum (creating it first in a home
    /// made before leak digests existed). Each custodian logs the opening under `why`.
    /// Writers need it to file digests; a leak scan to check rows against them.
    pub fn leak_digester(&self, why: &str) -> Result<ribat_crypto::leak_digest::LeakDigester> {
        QuorumReader::create_leak_key(&self.group, self.vault.store.as_ref())
            .context("cannot create the leak-digest key")?;
        let token = self
            .service_tokens
            .as_ref()
            .map(|mint| mint(&service_identity()))
            .transpose()?;
        let key = self
            .vault
            .reader
            .open_leak_key_with(&service_identity(), why, token)
            .context("the custodians did not open the leak-digest key")?;
        Ok(ribat_crypto::leak_digest::LeakDigester::new(&key)?)
    }

    /// Signs a checkpoint of the audit log and has the custodians cosign it. A witness
    /// that refuses a fork is an alert, printed loudly; one that is merely unavailable is
    /// a warning.
    pub fn checkpoint(&self) -> Result<ribat_audit::CheckpointReport> {
        let report = self.vault.audit.checkpoint()?;
        for (w, e) in &report.refused {
            match e {
                ribat_audit::CosignError::Inconsistent(_) => {
                    eprintln!("ALERT: witness {w} refused the audit checkpoint: {e}");
                }
                _ => eprintln!("warning: witness {w} did not cosign: {e}"),
            }
        }
        if !report.quorum_met {
            eprintln!(
                "warning: the audit checkpoint at size {} has {} of {} cosignatures needed",
                report.size,
                report.cosigned.len(),
                self.group.threshold
            );
        }
        Ok(report)
    }
}
