//! A node's part in replacing custodians by resharing (`ribat mesh reshare`): the protocol
//! is in [`ribat_crypto::reshare`], the log's steps in [`ribat_mesh::custodians`], one
//! custodian's arithmetic in [`ribat_custodian::reshare`]. Here is what a running node does
//! with them, every [`TICK`]:
//!
//! - **a dealer** (it holds a custodian of the set in force that the resharing named):
//!   redeals its shares once, logs its commitments signed with its node key, then sends each
//!   new custodian's node its sub-shares over mTLS (node certificates both ways) until that
//!   custodian is ready in the log;
//! - **a new custodian** (the resharing names this node): keeps the sub-shares it is sent
//!   ([`SUBSHARES`]; only from the node that holds the dealer), and once every dealer's
//!   commitments are committed, checks and combines them, seals its new shares under its
//!   passphrase beside the old ones and logs that it is ready;
//! - **every node**, when the set in force changes: its custodian promotes its new shares
//!   (or, not in the new set, stops answering and erases its shares), a custodian new to
//!   the node starts serving, the gateway asks the new set and checks answers against the
//!   new public shares, and `group.json` becomes the new set's.
//!
//! A dealer keeps its dealing sealed in its custodian's directory (under a key derived from
//! its current share) from before it logs its commitments until the set is in force, so a
//! dealer killed in the middle sends the same sub-shares when it is back. A node holds at
//! most one custodian, and keeps its index across resharings (a removed custodian's index
//! goes to an added node).

use crate::bail;
use crate::error::{Context, Result};
use crate::home::Home;
use crate::passphrases::Source;
use ribat_crypto::group::GroupPublic;
use ribat_crypto::passphrase::KdfParams;
use ribat_crypto::reshare::Plan;
use ribat_custodian::reshare::{Dealing, WireSubShares};
use ribat_custodian::{LocalCustodian, keystore};
use ribat_mesh::custodians::{
    CustodianSet, Custodians, DealtStatement, ReceivedStatement, ReshareStatement,
};
use ribat_mesh::{Command, KeyPair, Seat};
use ribat_raft::{MeshRaft, MeshStateMachine};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a dealer's node sends a new custodian's node its sub-shares.
pub const SUBSHARES: &str = "/mesh/reshare/subshares";

/// How often a node looks at the resharing under way.
pub const TICK: Duration = Duration::from_millis(250);

/// How long a dealer waits before sending a new custodian its sub-shares again.
const RESEND: Duration = Duration::from_secs(2);

/// The plan of a resharing: `dealers` (the previous threshold of them) to custodians
/// `1..=n` with `threshold`.
pub fn plan(dealers: &[u32], n: usize, threshold: usize) -> Result<Plan> {
    let new: Vec<u32> = (1..=u32::try_from(n).unwrap_or(u32::MAX)).collect();
    Ok(Plan::new(dealers.to_vec(), dealers.len(), new, threshold)?)
}

/// The group of custodian `set`: `base` itself when it is that set's, else computed from the
/// commitments the log holds (any set's group file gives the group keys, which never
/// change; the computation checks them).
///
/// A set made by a key rotation is computed from its contributors' commitments over the
/// previous set's group (`base`), whose keys become the previous epoch's; once the log
/// says every record is re-sealed, the previous epoch is dropped.
pub fn group_of(base: &GroupPublic, set: &CustodianSet) -> Result<GroupPublic> {
    let g = if base.set == set.number || set.number == 1 {
        base.clone()
    } else if set.rotated {
        ribat_custodian::reshare::rotated_group(base, &set.dealers, &set.dealt, set.number)?
    } else {
        let p = plan(&set.dealers, set.holders.len(), set.threshold)?;
        ribat_custodian::reshare::next_group(base, &p, &set.dealt, set.number)?
    };
    Ok(match set.resealing {
        None => g.without_previous(),
        Some(_) => g,
    })
}

/// The node's own group file (`HOME/group.json`).
pub fn base_group(home: &Home) -> Result<GroupPublic> {
    let path = home.group_file();
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(GroupPublic::from_json(&text)?)
}

/// The digest a dealing is kept under: hex SHA-256 of the statement two administrators
/// signed (a second resharing to the same set has another).
pub fn statement_digest(s: &ReshareStatement) -> Result<String> {
    Ok(crate::attest::digest_bytes(&serde_json::to_vec(s)?))
}

/// Sub-shares this node was sent, by (set, dealer), until it combined them.
#[derive(Default)]
pub struct Inbox(Mutex<BTreeMap<(u32, u32), WireSubShares>>);

impl Inbox {
    fn put(&self, w: WireSubShares) {
        if let Ok(mut m) = self.0.lock() {
            m.insert((w.set, w.from), w);
        }
    }

    fn one_from_each(&self, set: u32, dealers: &[u32]) -> Option<Vec<WireSubShares>> {
        let m = self.0.lock().ok()?;
        dealers.iter().map(|d| m.get(&(set, *d)).cloned()).collect()
    }

    fn forget_through(&self, set: u32) {
        if let Ok(mut m) = self.0.lock() {
            m.retain(|(s, _), _| *s > set);
        }
    }
}

/// Why a dealer's sub-shares are not taken (the dealer logs it and sends again).
pub fn accept(
    custodians: &Custodians,
    me: &str,
    caller: &str,
    w: WireSubShares,
    inbox: &Inbox,
) -> std::result::Result<(), String> {
    let Some(r) = custodians
        .resharing
        .as_ref()
        .filter(|r| r.statement.set == w.set)
    else {
        return Err(format!(
            "{me} knows of no resharing to custodian set {} (yet): its log may be behind",
            w.set
        ));
    };
    if r.statement.holders.get(&w.to).map(String::as_str) != Some(me) {
        return Err(format!("{me} is not custodian {} of set {}", w.to, w.set));
    }
    if !r.statement.dealers.contains(&w.from)
        || custodians.set.holders.get(&w.from).map(String::as_str) != Some(caller)
    {
        return Err(format!(
            "{caller} does not hold dealer {} of set {}",
            w.from, w.set
        ));
    }
    inbox.put(w);
    Ok(())
}

/// What a node changes when a new custodian set is in force, and how.
pub struct Switches {
    /// The custodian this node serves now.
    pub custodian: Mutex<Option<Arc<LocalCustodian>>>,
    /// Where the node's listener finds it.
    pub slot: Arc<ribat_custodian::serve::Slot>,
    /// Opens custodian `index` in this node's directory and starts serving it.
    pub start: Box<dyn Fn(u32) -> Result<Arc<LocalCustodian>> + Send + Sync>,
    /// The node's gateway, once it runs: its reader moves to the new set.
    pub gateway: std::sync::OnceLock<Gateway>,
}

/// What the gateway's reader and audit log need to ask a new set.
pub struct Gateway {
    /// The gateway.
    pub app: Arc<ribat_gateway::api::App>,
    /// A networked custodian to copy the TLS settings of.
    pub template: Arc<ribat_gateway::link::RemoteCustodian>,
    /// The node's description (the ceremony's custodians and their witness keys).
    pub mesh: crate::mesh::MeshFile,
    /// The gateway's audit log's origin (what its witnesses cosign).
    pub origin: String,
    /// The node under the gateway (its vault, its own identities' tokens): a key
    /// rotation's job re-seals through it.
    pub node: Arc<crate::embedded::Embedded>,
}

/// Where a node remembers the custodian set it last put in force, and where each custodian
/// sits: its state on disk is its last snapshot (the log after it is applied again at
/// start), so a node restarted after a resharing reads here which custodian it holds now,
/// and its directory used offline which nodes to ask.
pub const REMEMBERED: &str = "custodian-set.json";

/// What [`REMEMBERED`] holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Remembered {
    /// The set.
    pub set: CustodianSet,
    /// Where each custodian's node listens, by index.
    pub addrs: BTreeMap<u32, String>,
}

/// Remembers `set` as in force on this node (durably, before anything changes for it).
pub fn remember(home: &Home, set: &CustodianSet, seats: &BTreeMap<String, Seat>) -> Result<()> {
    let addrs = set
        .holders
        .iter()
        .filter_map(|(i, n)| Some((*i, seats.get(n)?.addr.clone())))
        .collect();
    let r = Remembered {
        set: set.clone(),
        addrs,
    };
    ribat_custodian::keystore::write_atomic(
        &home.root().join(REMEMBERED),
        serde_json::to_string_pretty(&r)?.as_bytes(),
    )?;
    Ok(())
}

/// The set this node last put in force, if it ever put one after the ceremony's.
pub fn remembered(home: &Home) -> Result<Option<Remembered>> {
    let path = home.root().join(REMEMBERED);
    match std::fs::read_to_string(&path) {
        Ok(t) => Ok(Some(serde_json::from_str(&t).with_context(|| {
            format!("{}: not a custodian set this node wrote", path.display())
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::err!("cannot read {}: {e}", path.display())),
    }
}

/// The custodian set in force for this node, and where each of its custodians' nodes
/// listens: the one the state holds (`from_state`, placed by `seats`), or the one the node
/// remembers when that is later (its state is its last snapshot until the log after it is
/// applied again).
pub fn in_force(
    home: &Home,
    from_state: CustodianSet,
    seats: &BTreeMap<String, Seat>,
) -> Result<(CustodianSet, Vec<crate::serve::RemoteSpec>)> {
    let spec = |(index, addr): (&u32, &String)| crate::serve::RemoteSpec {
        index: *index,
        addr: addr.clone(),
    };
    if let Some(r) = remembered(home)?.filter(|r| r.set.number > from_state.number) {
        let remotes = r.addrs.iter().map(spec).collect();
        return Ok((r.set, remotes));
    }
    let mut addrs = BTreeMap::new();
    for (index, node) in &from_state.holders {
        let seat = seats
            .get(node)
            .ok_or_else(|| crate::err!("custodian {index}'s node {node} has no seat"))?;
        addrs.insert(*index, seat.addr.clone());
    }
    let remotes = addrs.iter().map(spec).collect();
    Ok((from_state, remotes))
}

/// Puts custodian set `set` in force on this node (see the module's doc). Safe to repeat:
/// each step looks at what is already done.
pub fn switch(
    home: &Home,
    me: &str,
    set: &CustodianSet,
    seats: &BTreeMap<String, Seat>,
    switches: &Switches,
    passphrases: &Source,
) -> Result<GroupPublic> {
    let group = group_of(&base_group(home)?, set)?;
    remember(home, set, seats)?;
    let held = switches
        .custodian
        .lock()
        .map_err(|_| crate::err!("custodian lock poisoned"))?
        .clone();
    match (set.index_of(me), held) {
        (Some(j), Some(c)) if ribat_custodian::Custodian::index(c.as_ref()) == j => {
            let dir = home.custodian_dir(j as usize);
            if keystore::pending_set(&dir)? == Some(set.number) {
                keystore::promote(&dir)?;
            }
            ribat_custodian::reshare::forget_dealing(&dir)?;
            if c.keys()?.set < set.number {
                let pass = passphrases.get(j as usize, false)?;
                c.replace_keys(keystore::load(&dir, &pass)?)?;
            }
        }
        (Some(j), Some(c)) => bail!(
            "{me} holds custodian {} but set {} gives it custodian {j}: a node keeps its index across resharings",
            ribat_custodian::Custodian::index(c.as_ref()),
            set.number
        ),
        (Some(j), None) => {
            let dir = home.custodian_dir(j as usize);
            if keystore::pending_set(&dir)? == Some(set.number) {
                keystore::promote(&dir)?;
            }
            let c = (switches.start)(j)?;
            *switches
                .custodian
                .lock()
                .map_err(|_| crate::err!("custodian lock poisoned"))? = Some(c);
        }
        (None, Some(c)) => {
            switches.slot.clear();
            c.retire(set.number)?;
            let index = ribat_custodian::Custodian::index(c.as_ref());
            keystore::erase(&home.custodian_dir(index as usize))?;
            *switches
                .custodian
                .lock()
                .map_err(|_| crate::err!("custodian lock poisoned"))? = None;
            eprintln!(
                "{me} is not in custodian set {}: custodian {index}'s shares are erased and it answers no one",
                set.number
            );
        }
        (None, None) => {}
    }
    if let Some(g) = switches.gateway.get() {
        move_reader(g, group.clone(), set, seats)?;
    }
    ribat_custodian::keystore::write_atomic(&home.group_file(), group.to_json()?.as_bytes())?;
    Ok(group)
}

/// Moves the gateway's reader to custodian set `set`, whose group is `group`.
pub fn move_reader(
    g: &Gateway,
    group: GroupPublic,
    set: &CustodianSet,
    seats: &BTreeMap<String, Seat>,
) -> Result<()> {
    let mut remotes = Vec::new();
    for (i, node) in &set.holders {
        let seat = seats
            .get(node)
            .ok_or_else(|| crate::err!("custodian {i}'s node {node} has no seat in the mesh"))?;
        remotes.push(Arc::new(g.template.elsewhere(
            *i,
            &seat.addr,
            crate::mesh::host_of(&seat.addr),
        )));
    }
    // Its audit log asks the new set's witnesses to cosign: a new custodian's key, as its
    // node published it through the log, is pinned beside the ceremony's.
    let (witnesses, vouched) =
        crate::serve::mesh_witnesses(&g.mesh, &g.origin, &remotes, &set.witnesses)?;
    g.app.vault.audit.set_witnesses(witnesses, &vouched)?;
    let asked: Vec<Arc<dyn ribat_custodian::Custodian>> = remotes
        .into_iter()
        .map(|r| r as Arc<dyn ribat_custodian::Custodian>)
        .collect();
    g.app.vault.reader.replace_set(group, asked);
    Ok(())
}

/// What the resharing task needs.
pub struct Resharer {
    /// The security state.
    pub sm: MeshStateMachine,
    /// Raft, to propose.
    pub raft: MeshRaft,
    /// The node's client TLS (its node certificate).
    pub tls: Arc<ribat_net::client::ClientConfig>,
    /// The node key.
    pub key: Arc<KeyPair>,
    /// This node's name.
    pub me: String,
    /// Its directory.
    pub home: Home,
    /// Where its custodians' passphrases come from.
    pub passphrases: Source,
    /// Sub-shares sent to it.
    pub inbox: Arc<Inbox>,
    /// What it switches.
    pub switches: Arc<Switches>,
    /// The custodian set it has in force now.
    pub in_force: u32,
}

struct Progress {
    /// The resharing this node dealt for (its statement) and its dealing.
    dealing: Option<(ReshareStatement, Arc<Dealing>)>,
    /// When each new custodian was last sent its sub-shares.
    sent: BTreeMap<u32, Instant>,
    /// The resharing whose new shares this node has sealed, and the new custodian's
    /// witness key.
    installed: Option<(ReshareStatement, String)>,
    /// When this node last proposed a step, so that it does not flood the log.
    proposed: Option<Instant>,
    /// The last warning, said once.
    said: String,
    /// A key rotation's re-sealing job running on this node, if it is the job's node.
    job: Option<tokio::task::JoinHandle<Result<(u64, u64)>>>,
    /// The epoch whose previous epoch this node has dropped.
    dropped: Option<u32>,
}

impl Progress {
    fn may_propose(&mut self) -> bool {
        match self.proposed {
            Some(t) if t.elapsed() < RESEND => false,
            _ => {
                self.proposed = Some(Instant::now());
                true
            }
        }
    }

    fn warn(&mut self, what: String) {
        if what != self.said {
            eprintln!("warning: {what}");
            self.said = what;
        }
    }
}

/// Runs the node's part in every resharing, until the node stops.
pub async fn run(mut r: Resharer) {
    let mut p = Progress {
        dealing: None,
        sent: BTreeMap::new(),
        installed: None,
        proposed: None,
        said: String::new(),
        job: None,
        dropped: None,
    };
    loop {
        tokio::time::sleep(TICK).await;
        let Ok((custodians, seats)) =
            r.sm.read(|st| (st.custodians().clone(), st.seats().clone()))
        else {
            continue;
        };
        if custodians.set.number > r.in_force && !custodians.set.holders.is_empty() {
            let (home, me, set, sw, pass) = (
                r.home.clone(),
                r.me.clone(),
                custodians.set.clone(),
                r.switches.clone(),
                r.passphrases.clone(),
            );
            let seats2 = seats.clone();
            let done =
                tokio::task::spawn_blocking(move || switch(&home, &me, &set, &seats2, &sw, &pass))
                    .await;
            match done {
                Ok(Ok(_)) => {
                    r.in_force = custodians.set.number;
                    r.inbox.forget_through(r.in_force);
                    p.dealing = None;
                    p.installed = None;
                    p.sent.clear();
                    eprintln!(
                        "{}: custodian set {} is in force ({} of {})",
                        r.me,
                        custodians.set.number,
                        custodians.set.threshold,
                        custodians.set.holders.len()
                    );
                }
                Ok(Err(e)) => p.warn(format!(
                    "{} cannot put custodian set {} in force yet: {}",
                    r.me,
                    custodians.set.number,
                    e.chain()
                )),
                Err(e) => p.warn(format!("putting a custodian set in force: {e}")),
            }
            continue;
        }
        if let Err(e) = rotation_step(&r, &mut p, &custodians, &seats).await {
            p.warn(format!(
                "{} in the key rotation to epoch {}: {}",
                r.me,
                custodians.set.epoch,
                e.chain()
            ));
        }
        let Some(rs) = custodians.resharing.as_ref() else {
            continue;
        };
        // A state still at its snapshot (the node just started) may show a resharing this
        // node already saw through: nothing to deal or receive for it.
        if rs.statement.set <= r.in_force {
            continue;
        }
        if let Err(e) = deal_step(&r, &mut p, &custodians, &seats).await {
            p.warn(format!(
                "{} as a dealer of set {}: {}",
                r.me,
                rs.statement.set,
                e.chain()
            ));
        }
        if let Err(e) = receive_step(&r, &mut p, &custodians).await {
            p.warn(format!(
                "{} as a new custodian of set {}: {}",
                r.me,
                rs.statement.set,
                e.chain()
            ));
        }
    }
}

/// After a key rotation's set is in force: on the job's node, runs the re-sealing job
/// and, once it is done, logs that every record is re-sealed; on every node, once the log
/// says so, drops the previous epoch's shares and keys.
async fn rotation_step(
    r: &Resharer,
    p: &mut Progress,
    custodians: &Custodians,
    seats: &BTreeMap<String, Seat>,
) -> Result<()> {
    let set = &custodians.set;
    if set.number != r.in_force || !set.rotated {
        return Ok(());
    }
    let Some(job) = &set.resealing else {
        if p.dropped != Some(set.epoch) {
            let (home, set2, seats2, sw, pass) = (
                r.home.clone(),
                set.clone(),
                seats.clone(),
                r.switches.clone(),
                r.passphrases.clone(),
            );
            tokio::task::spawn_blocking(move || drop_previous(&home, &set2, &seats2, &sw, &pass))
                .await
                .map_err(|e| crate::err!("dropping the previous epoch: {e}"))??;
            p.dropped = Some(set.epoch);
            eprintln!(
                "{}: every record is under epoch {}; the previous epoch's shares are erased",
                r.me, set.epoch
            );
        }
        return Ok(());
    };
    if job.job != r.me {
        return Ok(());
    }
    let Some(g) = r.switches.gateway.get() else {
        bail!("it runs the re-sealing job but has no gateway to read through");
    };
    match p.job.take() {
        None => {
            let (vault, node, me) = (g.app.vault.clone(), g.node.clone(), r.me.clone());
            let who = ribat_custodian::Requester {
                identity: format!("rotation.{me}"),
                role: ribat_policy::Role::constant("rotation"),
            };
            eprintln!("{me}: re-sealing every record to epoch {}", set.epoch);
            p.job = Some(tokio::task::spawn_blocking(move || {
                let mut last = 0u64;
                crate::rotate::reseal_pass(
                    &vault,
                    &who,
                    &|| node.token_for(&who),
                    crate::rotate::DEFAULT_BATCH,
                    &mut |pr| {
                        if pr.done == pr.total || pr.done >= last + (pr.total / 20).max(1) {
                            last = pr.done;
                            eprintln!("{me}: re-sealed {} of {}", pr.done, pr.total);
                        }
                    },
                )
            }));
        }
        Some(h) if !h.is_finished() => p.job = Some(h),
        Some(h) => match h.await {
            Ok(Ok((done, changed))) => {
                eprintln!(
                    "{}: the re-sealing job is done ({done} re-sealed, {changed} replaced meanwhile)",
                    r.me
                );
                let statement = ribat_mesh::custodians::ResealedStatement {
                    set: set.number,
                    from_epoch: job.from_epoch,
                };
                let sig = r
                    .key
                    .sign(ribat_mesh::command::kind::RESEALED, &statement)?;
                let command = Command::Resealed {
                    statement,
                    by: r.me.clone(),
                    sig,
                };
                // Run again (a pass over nothing) until the log has it.
                propose_step(r, command, "the end of the re-sealing").await?;
            }
            Ok(Err(e)) => bail!("the re-sealing job stopped: {}; it starts again", e.chain()),
            Err(e) => bail!("the re-sealing job stopped: {e}; it starts again"),
        },
    }
    Ok(())
}

async fn deal_step(
    r: &Resharer,
    p: &mut Progress,
    custodians: &Custodians,
    seats: &BTreeMap<String, Seat>,
) -> Result<()> {
    let Some(rs) = custodians.resharing.as_ref() else {
        return Ok(());
    };
    let Some(d) = custodians.set.index_of(&r.me) else {
        return Ok(());
    };
    if !rs.statement.dealers.contains(&d) {
        return Ok(());
    }
    let dealing = match &p.dealing {
        Some((s, dealing)) if *s == rs.statement => dealing.clone(),
        _ => {
            let c = r
                .switches
                .custodian
                .lock()
                .map_err(|_| crate::err!("custodian lock poisoned"))?
                .clone()
                .ok_or_else(|| crate::err!("it holds no open custodian to deal from"))?;
            // A rotation's contributors draw new keys; a resharing's dealers redeal theirs.
            let how = match &rs.statement.rotate {
                Some(_) => None,
                None => Some(plan(
                    &rs.statement.dealers,
                    rs.statement.holders.len(),
                    rs.statement.threshold,
                )?),
            };
            let (contributors, threshold) = (rs.statement.dealers.clone(), rs.statement.threshold);
            let keys = c.keys()?;
            let dir = r.home.custodian_dir(d as usize);
            let (digest, set, logged) = (
                statement_digest(&rs.statement)?,
                rs.statement.set,
                rs.dealt.contains_key(&d),
            );
            // The dealing kept before a restart, if any: its commitments may be in the log
            // already, and only its sub-shares match them. A new one is kept before its
            // commitments are proposed.
            let dealing = tokio::task::spawn_blocking(move || -> Result<Dealing> {
                if let Some(kept) = ribat_custodian::reshare::load_dealing(&dir, &keys, &digest)?
                {
                    return Ok(kept);
                }
                if logged {
                    bail!(
                        "its commitments are in the log but its dealing is lost (its directory was restored?): two administrators start another resharing to set {set}"
                    );
                }
                let dealing = match &how {
                    Some(plan) => ribat_custodian::reshare::deal(&keys, plan)?,
                    None => ribat_custodian::reshare::contribute(&keys, &contributors, threshold)?,
                };
                ribat_custodian::reshare::save_dealing(&dir, &keys, &digest, set, &dealing)?;
                Ok(dealing)
            })
            .await
            .map_err(|e| crate::err!("dealing: {e}"))??;
            let dealing = Arc::new(dealing);
            p.dealing = Some((rs.statement.clone(), dealing.clone()));
            p.sent.clear();
            dealing
        }
    };
    if !rs.dealt.contains_key(&d) {
        if p.may_propose() {
            let statement = DealtStatement {
                set: rs.statement.set,
                dealer: d,
                commitments: dealing.commitments.clone(),
            };
            let sig = r
                .key
                .sign(ribat_mesh::command::kind::RESHARE_DEALT, &statement)?;
            let put = propose_step(
                r,
                Command::ReshareDealt {
                    statement,
                    by: r.me.clone(),
                    sig,
                },
                "its commitments",
            )
            .await?;
            eprintln!(
                "{}: custodian {d} dealt set {} (index {})",
                r.me, rs.statement.set, put.index
            );
        }
        // Sub-shares go out once the commitments they are checked against are committed.
        return Ok(());
    }
    // The blind-index key goes with the sub-shares, so that a custodian that joins checks
    // users' signed requests as the others do.
    let index_key = r
        .switches
        .custodian
        .lock()
        .map_err(|_| crate::err!("custodian lock poisoned"))?
        .as_ref()
        .and_then(|c| {
            c.index_key()
                .map(|k| ribat_crypto::secret::SecretBytes::new(*k.expose()))
        });
    for (j, node) in &rs.statement.holders {
        if rs.received.contains(j) || p.sent.get(j).is_some_and(|t| t.elapsed() < RESEND) {
            continue;
        }
        p.sent.insert(*j, Instant::now());
        let subs = dealing
            .subshares
            .get(j)
            .ok_or_else(|| crate::err!("no sub-shares for custodian {j}"))?;
        let wire =
            WireSubShares::new(rs.statement.set, d, *j, subs).with_index_key(index_key.as_ref());
        let body = zeroize::Zeroizing::new(serde_json::to_vec(&wire)?);
        let addr = &seats
            .get(node)
            .ok_or_else(|| crate::err!("{node} has no seat in the mesh"))?
            .addr;
        let answer = crate::mesh::call_peer(
            &r.tls,
            addr,
            "POST",
            SUBSHARES,
            Some(body.to_vec()),
            Duration::from_secs(5),
        )
        .await;
        match answer {
            Ok(a) if a.status == 200 => {}
            Ok(a) => p.warn(format!(
                "{node} did not take custodian {d}'s sub-shares (HTTP {}): {}",
                a.status,
                String::from_utf8_lossy(&a.body)
            )),
            Err(e) => p.warn(format!("cannot reach {node} at {addr}: {e}")),
        }
    }
    Ok(())
}

async fn receive_step(r: &Resharer, p: &mut Progress, custodians: &Custodians) -> Result<()> {
    let Some(rs) = custodians.resharing.as_ref() else {
        return Ok(());
    };
    let Some((&j, _)) = rs.statement.holders.iter().find(|(_, n)| **n == r.me) else {
        return Ok(());
    };
    if rs.received.contains(&j) {
        return Ok(());
    }
    if p.installed.as_ref().map(|(s, _)| s) != Some(&rs.statement) {
        if rs.dealt.len() < rs.statement.dealers.len() {
            return Ok(());
        }
        let Some(wires) = r
            .inbox
            .one_from_each(rs.statement.set, &rs.statement.dealers)
        else {
            return Ok(());
        };
        let (home, pass, sw, statement, dealt, set) = (
            r.home.clone(),
            r.passphrases.clone(),
            r.switches.clone(),
            rs.statement.clone(),
            rs.dealt.clone(),
            custodians.set.clone(),
        );
        let witness = tokio::task::spawn_blocking(move || {
            install(&home, &pass, &sw, &statement, &dealt, &set, j, &wires)
        })
        .await
        .map_err(|e| crate::err!("sealing the new shares: {e}"))??;
        p.installed = Some((rs.statement.clone(), witness.to_string()));
        eprintln!(
            "{}: custodian {j} of set {} checked its sub-shares and sealed its new shares",
            r.me, rs.statement.set
        );
    }
    if p.may_propose() {
        let statement = ReceivedStatement {
            set: rs.statement.set,
            custodian: j,
            witness: p.installed.as_ref().map(|(_, w)| w.clone()),
        };
        let sig = r
            .key
            .sign(ribat_mesh::command::kind::RESHARE_RECEIVED, &statement)?;
        let command = Command::ReshareReceived {
            statement,
            by: r.me.clone(),
            sig,
        };
        propose_step(r, command, "its readiness").await?;
    }
    Ok(())
}

/// Proposes a step this node signed; a refusal by the state machine is an error naming
/// `what` was refused.
async fn propose_step(r: &Resharer, command: Command, what: &str) -> Result<crate::mesh::Proposed> {
    let put = crate::mesh::propose_from_node(&r.raft, r.tls.clone(), command).await?;
    if let ribat_raft::Outcome::Rejected(why) = &put.outcome {
        bail!("the mesh refused {what}: {why}");
    }
    Ok(put)
}

/// Checks and combines the sub-shares, and seals the new shares beside the old ones;
/// returns the key the new custodian's witness cosigns with.
#[allow(clippy::too_many_arguments)] // one call site, each argument a distinct input
fn install(
    home: &Home,
    passphrases: &Source,
    switches: &Switches,
    statement: &ReshareStatement,
    dealt: &BTreeMap<u32, ribat_mesh::custodians::Commitments>,
    set: &CustodianSet,
    j: u32,
    wires: &[WireSubShares],
) -> Result<ribat_audit::VerifierKey> {
    if matches!(passphrases, Source::Prompt) {
        bail!(
            "its passphrase is needed while it runs: start the node with --passphrases env or dir:PATH to take part in a resharing"
        );
    }
    if !home.store_file().exists() && matches!(home.store(), crate::home::StoreSpec::Sqlite) {
        bail!(
            "it has no records' store to resolve requests against: prepare a node that will hold a custodian with `ribat mesh prepare-node --store …`"
        );
    }
    let current = group_of(&base_group(home)?, set)?;
    let mut received = Vec::new();
    for w in wires {
        received.extend(w.subshares()?);
    }
    if statement.rotate.is_some() {
        return install_rotation(
            home,
            passphrases,
            switches,
            statement,
            dealt,
            &current,
            j,
            &received,
        );
    }
    let plan = plan(
        &statement.dealers,
        statement.holders.len(),
        statement.threshold,
    )?;
    let (shares, next) =
        ribat_custodian::reshare::combine(j, &plan, &current, dealt, &received, statement.set)?;
    let carried = match switches
        .custodian
        .lock()
        .map_err(|_| crate::err!("custodian lock poisoned"))?
        .as_ref()
    {
        Some(c) => keystore::keys_to_carry(&*c.keys()?)?,
        None => keystore::fresh_keys_to_carry()?,
    };
    let dir = home.custodian_dir(j as usize);
    if !dir.join(keystore::POLICY_FILE).exists() {
        std::fs::create_dir_all(&dir)?;
        let policy = crate::serve::read_policy(&home.root().join("policy.json"))?;
        LocalCustodian::write_policy(&dir, &policy)?;
    }
    let pass = passphrases.get(j as usize, false)?;
    let index_key = agreed_index_key(wires)?;
    keystore::install_next(
        &dir,
        j,
        &shares,
        &carried,
        &next,
        &pass,
        KdfParams::default(),
    )?;
    if let Some(key) = &index_key {
        keystore::save_index_key_carried(&dir, j, current.epoch, &carried, key)?;
    }
    Ok(keystore::carried_witness_key(
        &carried,
        j,
        crate::embedded::DEPLOYMENT,
    )?)
}

/// The blind-index key the dealers sent, when they all sent the same one (a dealer that
/// sends another is named; none sending one leaves the custodian without it).
fn agreed_index_key(
    wires: &[WireSubShares],
) -> Result<Option<ribat_crypto::secret::SecretBytes<32>>> {
    let mut agreed: Option<(u32, ribat_crypto::secret::SecretBytes<32>)> = None;
    for w in wires {
        let Some(key) = w.index_key()? else { continue };
        match &agreed {
            None => agreed = Some((w.from, key)),
            Some((first, k)) if k.expose() != key.expose() => bail!(
                "custodians {first} and {} sent different blind-index keys with their sub-shares: one of them is not honest",
                w.from
            ),
            Some(_) => {}
        }
    }
    Ok(agreed.map(|(_, k)| k))
}

/// A rotation's new shares: every contributor's sub-shares checked and summed, sealed
/// beside the current shares, which are kept as the previous epoch's.
#[allow(clippy::too_many_arguments)] // one call site, each argument a distinct input
fn install_rotation(
    home: &Home,
    passphrases: &Source,
    switches: &Switches,
    statement: &ReshareStatement,
    dealt: &BTreeMap<u32, ribat_mesh::custodians::Commitments>,
    current: &GroupPublic,
    j: u32,
    received: &[ribat_crypto::reshare::SubShare],
) -> Result<ribat_audit::VerifierKey> {
    let (shares, next) = ribat_custodian::reshare::combine_rotation(
        j,
        current,
        &statement.dealers,
        dealt,
        received,
        statement.set,
    )?;
    let c = switches
        .custodian
        .lock()
        .map_err(|_| crate::err!("custodian lock poisoned"))?
        .clone()
        .ok_or_else(|| crate::err!("a key rotation needs this node's custodian open"))?;
    let keys = c.keys()?;
    let dir = home.custodian_dir(j as usize);
    let pass = passphrases.get(j as usize, false)?;
    keystore::install_rotation(&dir, &keys, &shares, &next, &pass, KdfParams::default())?;
    Ok(keystore::carried_witness_key(
        &keystore::keys_to_carry(&keys)?,
        j,
        crate::embedded::DEPLOYMENT,
    )?)
}

/// Once every record is re-sealed (the log says so): the node's custodian drops the
/// previous epoch's shares (on disk and in memory), the gateway stops reading with that
/// epoch's keys, and `group.json` loses them. Safe to repeat.
pub fn drop_previous(
    home: &Home,
    set: &CustodianSet,
    seats: &BTreeMap<String, Seat>,
    switches: &Switches,
    passphrases: &Source,
) -> Result<()> {
    let held = switches
        .custodian
        .lock()
        .map_err(|_| crate::err!("custodian lock poisoned"))?
        .clone();
    if let Some(c) = held {
        let keys = c.keys()?;
        if keys.previous.is_some() {
            let i = ribat_custodian::Custodian::index(c.as_ref());
            let dir = home.custodian_dir(i as usize);
            let pass = passphrases.get(i as usize, false)?;
            keystore::finish_rotation(&dir, &keys, &pass, KdfParams::default())?;
            keystore::promote(&dir)?;
            c.replace_keys(keystore::load(&dir, &pass)?)?;
        }
    }
    let group = group_of(&base_group(home)?, set)?;
    if let Some(g) = switches.gateway.get() {
        move_reader(g, group.clone(), set, seats)?;
    }
    ribat_custodian::keystore::write_atomic(&home.group_file(), group.to_json()?.as_bytes())?;
    Ok(())
}

/// Finishes, at start, what a crash interrupted: shares waiting for a set that is now in
/// force are promoted; a custodian's shares kept past a set that left it out are erased.
pub fn settle(home: &Home, me: &str, set: &CustodianSet) -> Result<()> {
    if set.number <= 1 || set.holders.is_empty() {
        return Ok(());
    }
    for i in crate::mesh::held_custodians(home)? {
        let dir = home.custodian_dir(i as usize);
        match set.index_of(me) {
            Some(j) if j == i => {
                if keystore::pending_set(&dir)? == Some(set.number) {
                    keystore::promote(&dir)?;
                }
            }
            _ => {
                let g = GroupPublic::from_json(
                    &std::fs::read_to_string(dir.join(keystore::GROUP_FILE))
                        .with_context(|| format!("cannot read {}", dir.display()))?,
                )?;
                if g.set < set.number {
                    keystore::erase(&dir)?;
                    eprintln!(
                        "{me} is not in custodian set {}: custodian {i}'s shares, kept past it, are erased",
                        set.number
                    );
                }
            }
        }
    }
    let group = group_of(&base_group(home)?, set)?;
    ribat_custodian::keystore::write_atomic(&home.group_file(), group.to_json()?.as_bytes())?;
    Ok(())
}

/// The statement of a key rotation: the set in force again as the next set (same holders
/// and threshold), every custodian contributing, `job` re-sealing the records.
pub fn rotation_statement(
    current: &Custodians,
    job: &str,
    reason: &str,
) -> Result<ReshareStatement> {
    let set = &current.set;
    if set.holders.is_empty() {
        bail!("this mesh's state names no custodian holders; it cannot rotate keys");
    }
    if let Some(r) = &set.resealing {
        bail!(
            "records are still being re-sealed from epoch {} by {}: a rotation at a time",
            r.from_epoch,
            r.job
        );
    }
    Ok(ReshareStatement {
        set: set.number + 1,
        holders: set.holders.clone(),
        threshold: set.threshold,
        dealers: set.holders.keys().copied().collect(),
        reason: reason.to_owned(),
        rotate: Some(ribat_mesh::custodians::RotateSpec {
            job: job.to_owned(),
        }),
    })
}

/// The statement to move the custodians of the set in force (`current`) to a new set:
/// `remove` (custodian indexes or node names) leave, `add` (node names) join, taking the
/// freed indexes first; the dealers are the first `t` custodians that stay.
pub fn statement(
    current: &Custodians,
    remove: &[String],
    add: &[String],
    threshold: Option<usize>,
    reason: &str,
) -> Result<ReshareStatement> {
    if let Some(r) = &current.resharing {
        eprintln!(
            "note: a resharing to set {} is under way; this one replaces it once two administrators sign it",
            r.statement.set
        );
    }
    let set = &current.set;
    if set.holders.is_empty() {
        bail!("this mesh's state names no custodian holders; it cannot reshare");
    }
    let mut holders = set.holders.clone();
    let mut freed = Vec::new();
    for r in remove {
        let index = match r
            .strip_prefix("custodian-")
            .and_then(|i| i.parse::<u32>().ok())
        {
            Some(i) => i,
            None => set.index_of(r).ok_or_else(|| {
                crate::err!("--remove {r}: neither custodian-<i> nor a node holding one")
            })?,
        };
        if holders.remove(&index).is_none() {
            bail!(
                "--remove {r}: there is no custodian {index} in set {}",
                set.number
            );
        }
        freed.push(index);
    }
    freed.sort_unstable();
    let mut next_index = holders
        .keys()
        .chain(freed.iter())
        .max()
        .copied()
        .unwrap_or(0)
        + 1;
    for a in add {
        if holders.values().any(|n| n == a) {
            bail!("--add {a}: it holds a custodian already");
        }
        let index = if freed.is_empty() {
            let i = next_index;
            next_index += 1;
            i
        } else {
            freed.remove(0)
        };
        holders.insert(index, a.clone());
    }
    if let Some(gap) = freed.first() {
        bail!(
            "removing custodian {gap} without adding a node leaves a gap in the custodians' numbers: add as many nodes as you remove"
        );
    }
    let dealers: Vec<u32> = set
        .holders
        .keys()
        .filter(|i| holders.get(i) == set.holders.get(i))
        .take(set.threshold)
        .copied()
        .collect();
    if dealers.len() < set.threshold {
        bail!(
            "only {} custodians stay, and {} of the set in force must deal",
            dealers.len(),
            set.threshold
        );
    }
    let statement = ReshareStatement {
        set: set.number + 1,
        threshold: threshold.unwrap_or(set.threshold),
        holders,
        dealers,
        reason: reason.to_owned(),
        rotate: None,
    };
    // The same checks the state machine applies, before any administrator signs.
    current
        .clone()
        .start(&statement, Default::default(), |_| true)
        .map_err(|e| crate::err!("{e}"))?;
    Ok(statement)
}

pub use ribat_mesh::custodians::ReshareStatement as Statement;
pub use ribat_mesh::custodians::holders_line;

/// Reads a statement written by [`write_statement`].
pub fn read_statement(file: &Path) -> Result<ReshareStatement> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a resharing statement written by `ribat mesh reshare --out`",
            file.display()
        )
    })
}

/// Writes `statement` to `out` for the administrators to read and approve (never over an
/// existing file: two statements must not be confused).
pub fn write_statement(out: &Path, statement: &ReshareStatement) -> Result<()> {
    crate::ensure!(
        !out.exists(),
        "{} exists already; write the statement to a new file",
        out.display()
    );
    ribat_identity::ca::write_file(
        out,
        serde_json::to_string_pretty(statement)?.as_bytes(),
        false,
    )?;
    Ok(())
}

/// The custodian set and resharing as the node in `dir` holds them.
pub fn custodians(dir: &Path) -> Result<Custodians> {
    crate::mesh::ask_own_node(dir, ribat_raft::serve::CUSTODIANS)
}

/// One administrator's approval of a resharing statement.
pub fn approve(
    key: &Path,
    admin: &str,
    statement: &ReshareStatement,
) -> Result<ribat_mesh::Approval> {
    crate::mesh::approve_as(key, admin, ribat_mesh::command::kind::RESHARE, statement)
}

/// Proposes a resharing with its approvals.
pub fn propose(
    dir: &Path,
    statement: ReshareStatement,
    approvals: Vec<ribat_mesh::Approval>,
) -> Result<crate::mesh::Proposed> {
    crate::mesh::propose(
        dir,
        &Command::Reshare {
            statement,
            approvals,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current() -> Custodians {
        Custodians::first(
            2,
            BTreeMap::from([
                (1, "node-1".into()),
                (2, "node-2".into()),
                (3, "node-3".into()),
            ]),
        )
    }

    #[test]
    fn removing_one_custodian_and_adding_a_node_gives_it_the_freed_index() {
        let s = statement(
            &current(),
            &["custodian-2".into()],
            &["node-4".into()],
            None,
            "host of node-2 taken",
        )
        .unwrap();
        assert_eq!(s.set, 2);
        assert_eq!(s.holders.get(&2).map(String::as_str), Some("node-4"));
        assert_eq!(s.dealers, vec![1, 3]);
        // By node name too.
        let by_name = statement(
            &current(),
            &["node-2".into()],
            &["node-4".into()],
            None,
            "x",
        )
        .unwrap();
        assert_eq!(by_name.holders, s.holders);
    }

    #[test]
    fn sub_shares_are_taken_only_from_the_dealers_node_for_this_node_in_the_resharing_under_way() {
        let mut c = current();
        let wire = |from, to| WireSubShares::new(2, from, to, &[]);
        let inbox = Inbox::default();
        // No resharing yet: refused, saying the log may be behind.
        let err = accept(&c, "node-4", "node-1", wire(1, 2), &inbox).unwrap_err();
        assert!(err.contains("may be behind"), "{err}");
        let s = statement(&c, &["custodian-2".into()], &["node-4".into()], None, "x").unwrap();
        let is_member = |n: &str| ["node-1", "node-2", "node-3", "node-4"].contains(&n);
        c.start(&s, Default::default(), is_member).unwrap();
        for (me, caller, from, to, words) in [
            ("node-4", "node-2", 2, 2, "does not hold dealer 2"),
            ("node-4", "node-3", 1, 2, "does not hold dealer 1"),
            ("node-2", "node-1", 1, 2, "node-2 is not custodian 2"),
            ("node-4", "node-1", 1, 3, "node-4 is not custodian 3"),
        ] {
            let err = accept(&c, me, caller, wire(from, to), &inbox).unwrap_err();
            assert!(err.contains(words), "{err} (wanted {words})");
        }
        assert!(inbox.one_from_each(2, &[1]).is_none());
        accept(&c, "node-4", "node-1", wire(1, 2), &inbox).unwrap();
        accept(&c, "node-4", "node-3", wire(3, 2), &inbox).unwrap();
        assert_eq!(inbox.one_from_each(2, &[1, 3]).map(|w| w.len()), Some(2));
        inbox.forget_through(2);
        assert!(inbox.one_from_each(2, &[1]).is_none());
    }

    /// A 2-of-3 ceremony in one directory (every custodian's shares, as on one host for the
    /// test), and set 2 dealt by custodians 1 and 3 to {1=node-1, 2=node-4, 3=node-3}.
    fn dealt_world() -> (tempfile::TempDir, Home, CustodianSet) {
        use ribat_crypto::secret::Passphrase;
        let d = tempfile::tempdir().unwrap();
        let home = Home::at(d.path().to_owned());
        let dirs: Vec<_> = (1..=3).map(|i| home.custodian_dir(i)).collect();
        let passes: Vec<_> = (1..=3)
            .map(|i| Passphrase::new(format!("custodian {i}")))
            .collect();
        ribat_custodian::ceremony::run(
            &ribat_custodian::ceremony::CeremonySpec {
                threshold: 2,
                classes: vec!["identity".into(), "financial".into()],
                epoch: 1,
                kdf: KdfParams::insecure_for_tests(),
            },
            &dirs,
            &passes,
            &home.group_file(),
        )
        .unwrap();
        let p = plan(&[1, 3], 3, 2).unwrap();
        let mut dealt = BTreeMap::new();
        for i in [1u32, 3] {
            let keys = keystore::load(&dirs[i as usize - 1], &passes[i as usize - 1]).unwrap();
            dealt.insert(
                i,
                ribat_custodian::reshare::deal(&keys, &p)
                    .unwrap()
                    .commitments,
            );
        }
        let set = CustodianSet {
            number: 2,
            threshold: 2,
            holders: BTreeMap::from([
                (1, "node-1".into()),
                (2, "node-4".into()),
                (3, "node-3".into()),
            ]),
            dealers: vec![1, 3],
            dealt,
            witnesses: BTreeMap::new(),
            epoch: 1,
            rotated: false,
            resealing: None,
        };
        (d, home, set)
    }

    #[test]
    fn at_start_a_node_out_of_the_remembered_set_erases_its_shares_and_takes_its_group() {
        let (_d, home, set) = dealt_world();
        let before = base_group(&home).unwrap();
        assert_eq!(before.set, 1);
        // Nothing remembered: the state's set counts.
        let no_seats = BTreeMap::new();
        let seats: BTreeMap<String, Seat> = ["node-1", "node-2", "node-3"]
            .iter()
            .zip(1..)
            .map(|(n, id)| {
                let seat = Seat {
                    raft_id: id,
                    addr: format!("127.0.0.1:{}", 7600 + id),
                };
                ((*n).to_owned(), seat)
            })
            .collect();
        assert_eq!(in_force(&home, current().set, &seats).unwrap().0.number, 1);
        remember(&home, &set, &no_seats).unwrap();
        assert_eq!(in_force(&home, current().set, &seats).unwrap().0.number, 2);
        // As node-2 (custodian 2 left the set): its shares go, the others' stay.
        settle(&home, "node-2", &set).unwrap();
        assert!(!keystore::holds_shares(&home.custodian_dir(2)));
        assert!(home.custodian_dir(2).join(keystore::GROUP_FILE).exists());
        // (Custodians 1 and 3 are in set 2 but hold set-1 shares here, with no pending
        // ones: as "node-2" this node does not hold them, so they go too — a node holds one.)
        let after = base_group(&home).unwrap();
        assert_eq!(after.set, 2);
        for (class, c) in &after.classes {
            assert_eq!(c.group_key, before.class(class).unwrap().group_key);
        }
        // Again: nothing left to do, no error.
        settle(&home, "node-2", &set).unwrap();
    }

    #[test]
    fn two_of_three_becomes_three_of_five_and_a_gap_is_refused() {
        let s = statement(
            &current(),
            &[],
            &["node-4".into(), "node-5".into()],
            Some(3),
            "more custodians",
        )
        .unwrap();
        assert_eq!(s.holders.len(), 5);
        assert_eq!(s.threshold, 3);
        assert_eq!(s.dealers, vec![1, 2]);
        let err = statement(&current(), &["custodian-2".into()], &[], None, "x").unwrap_err();
        assert!(err.to_string().contains("gap"), "{err}");
        let err = statement(&current(), &[], &["node-1".into()], None, "x").unwrap_err();
        assert!(
            err.to_string().contains("holds a custodian already"),
            "{err}"
        );
        let err = statement(
            &current(),
            &["custodian-7".into()],
            &["node-4".into()],
            None,
            "x",
        )
        .unwrap_err();
        assert!(err.to_string().contains("no custodian 7"), "{err}");
    }
}
