//! The mesh as a node's console shows it: every member asked where it stands (what
//! `ribat mesh status` prints), drawn into [`MeshPicture`] — the leader a majority
//! follows, the custodians up, and each member's attestation as this node judges it.

use crate::mesh::{MemberStatus, MeshFile, majority_leader, status};
use ribat_gateway::mesh_view::{MemberLine, MeshPicture, MeshView};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a picture is shown again before the members are asked anew: a console
/// reloaded by several administrators asks each member at most this often.
const FRESH_FOR: Duration = Duration::from_secs(2);

/// The console's view of the mesh from one node.
pub struct ConsoleView {
    dir: PathBuf,
    me: String,
    last: Mutex<Option<(Instant, MeshPicture)>>,
}

impl ConsoleView {
    /// The view from the node in `dir`, named `me` in the mesh.
    pub fn new(dir: PathBuf, me: String) -> Self {
        Self {
            dir,
            me,
            last: Mutex::new(None),
        }
    }
}

impl MeshView for ConsoleView {
    fn picture(&self) -> Result<MeshPicture, String> {
        let mut last = self
            .last
            .lock()
            .map_err(|_| "the mesh view failed earlier")?;
        if let Some((at, p)) = last.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return Ok(p.clone());
        }
        let threshold = MeshFile::read(&self.dir).map_err(|e| e.chain())?.threshold;
        let members = status(&self.dir).map_err(|e| e.chain())?;
        let p = picture(&members, &self.me, threshold);
        *last = Some((Instant::now(), p.clone()));
        Ok(p)
    }
}

/// The picture of `members` as the node `me` judges them.
pub fn picture(members: &[MemberStatus], me: &str, threshold: usize) -> MeshPicture {
    let leader_id = majority_leader(members);
    let leader_status = members
        .iter()
        .filter_map(|m| m.status.as_ref())
        .find(|s| Some(s.id) == leader_id);
    // Attestation as this node judges it; another member's judgement when this node did
    // not answer (it is the one drawing the page, so that is rare).
    let judge = members
        .iter()
        .find(|m| m.name == me)
        .and_then(|m| m.status.as_ref())
        .or(leader_status);
    let lines: Vec<MemberLine> = members
        .iter()
        .map(|m| {
            let s = m.status.as_ref();
            let verdict = judge.and_then(|j| j.attestation.get(&m.name));
            MemberLine {
                name: m.name.clone(),
                addr: m.addr.clone(),
                state: match (s, &m.error) {
                    (Some(s), _) => s.state.clone(),
                    (None, Some(e)) => format!("unreachable: {e}"),
                    (None, None) => "unreachable".into(),
                },
                up: s.is_some_and(|s| s.waiting.is_none()),
                leads: s.is_some_and(|s| Some(s.id) == leader_id),
                term: s.map(|s| s.term),
                applied: s.and_then(|s| s.last_applied_index),
                lag: s.and_then(|s| {
                    let l = leader_status?;
                    let matched = l.matched.get(&s.id)?.unwrap_or(0);
                    Some(l.last_log_index?.saturating_sub(matched))
                }),
                custodian: m.custodian,
                gateway: m.gateway,
                attestation: verdict.map_or_else(|| "not judged yet".to_owned(), |v| v.to_string()),
                isolated: verdict.is_some_and(|v| v.is_isolated()),
                in_force: s.map(|s| (s.in_force, s.mesh_wide)),
                removed: m.removed,
            }
        })
        .collect();
    let custodians = lines.iter().filter(|l| l.custodian.is_some() && !l.removed);
    MeshPicture {
        leader: lines.iter().find(|l| l.leads).map(|l| l.name.clone()),
        custodians: custodians.clone().count(),
        custodians_up: custodians.filter(|l| l.up && !l.isolated).count(),
        threshold,
        members: lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ribat_raft::serve::NodeStatus;

    fn answered(id: u64, state: &str, leader: u64) -> NodeStatus {
        NodeStatus {
            id,
            state: state.into(),
            leader: Some(leader),
            term: 3,
            last_log_index: Some(40),
            last_applied_index: Some(40),
            voters: vec![1, 2, 3],
            learners: Vec::new(),
            seats: Default::default(),
            in_force: 1,
            mesh_wide: 1,
            matched: Default::default(),
            contact_ms: Default::default(),
            policy: None,
            rules: None,
            waiting: None,
            carried: Default::default(),
            attestation: Default::default(),
            custodian_set: 1,
            holders: Default::default(),
            resharing_to: None,
            key_epoch: 1,
            resealing: None,
            lab_clock_ms: None,
        }
    }

    fn member(name: &str, custodian: u32, status: Option<NodeStatus>) -> MemberStatus {
        MemberStatus {
            name: name.into(),
            addr: format!("127.0.0.{custodian}:7000"),
            error: status.is_none().then(|| "connection refused".into()),
            status,
            custodian: Some(custodian),
            gateway: custodian == 1,
            identity_service: false,
            removed: false,
        }
    }

    #[test]
    fn the_picture_names_the_leader_counts_custodians_up_and_shows_this_nodes_judgement() {
        let mut leader = answered(2, "Leader", 2);
        leader.matched.insert(1, Some(38));
        leader.matched.insert(2, Some(40));
        let mut me = answered(1, "Follower", 2);
        me.attestation.insert(
            "node-2".into(),
            ribat_mesh::attest::Verdict::Isolated {
                why: ribat_mesh::attest::Why::Missing,
                release: None,
            },
        );
        me.attestation
            .insert("node-1".into(), ribat_mesh::attest::Verdict::Awaiting);
        let members = [
            member("node-1", 1, Some(me)),
            member("node-2", 2, Some(leader)),
            member("node-3", 3, None),
        ];
        let p = picture(&members, "node-1", 2);
        assert_eq!(p.leader.as_deref(), Some("node-2"));
        assert_eq!((p.custodians, p.threshold), (3, 2));
        // node-3 did not answer and node-2 is cut off by this node's judgement.
        assert_eq!(p.custodians_up, 1);
        let n2 = &p.members[1];
        assert!(n2.leads && n2.isolated && n2.attestation.starts_with("isolated"));
        assert_eq!(p.members[0].lag, Some(2));
        assert_eq!(p.members[0].attestation, "awaiting its first attestation");
        let n3 = &p.members[2];
        assert!(!n3.up && n3.state.starts_with("unreachable") && n3.lag.is_none());
        assert_eq!(n3.attestation, "not judged yet");
    }
}
