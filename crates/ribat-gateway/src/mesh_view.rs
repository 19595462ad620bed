//! What the console shows of the mesh its gateway belongs to: the members, who leads,
//! how far each has applied the security state, which custodian each holds and how this
//! node judges each one's attestation. The node provides it (it asks every member).
//!
//! Must never: act on the mesh (the console's mesh actions go through the log, signed by
//! administrators), or stand in for `ribat mesh status` in a script (that has `--json`).

/// One member as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberLine {
    /// Its name.
    pub name: String,
    /// Where it listens.
    pub addr: String,
    /// `Leader`, `Follower`, `Candidate`, `Learner`, or why it did not answer.
    pub state: String,
    /// Whether it answered.
    pub up: bool,
    /// Whether it leads.
    pub leads: bool,
    /// Its term.
    pub term: Option<u64>,
    /// The last index it applied to the security state.
    pub applied: Option<u64>,
    /// How far its log is behind the leader's (from the leader's answer).
    pub lag: Option<u64>,
    /// The custodian it holds, if one.
    pub custodian: Option<u32>,
    /// Whether it runs a gateway.
    pub gateway: bool,
    /// How this node judges its attestation now (`attested: …`, `isolated: …`).
    pub attestation: String,
    /// Whether that judgement cuts it off.
    pub isolated: bool,
    /// Restrictions in force by its clock, and of those the mesh-wide ones.
    pub in_force: Option<(usize, usize)>,
    /// Whether two administrators removed it.
    pub removed: bool,
}

/// The mesh as the console draws it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeshPicture {
    /// Every member, founding ones first.
    pub members: Vec<MemberLine>,
    /// The member a majority follows, if any.
    pub leader: Option<String>,
    /// Custodians whose node answered and is not cut off.
    pub custodians_up: usize,
    /// Custodians in the set.
    pub custodians: usize,
    /// Custodians a read needs.
    pub threshold: usize,
}

/// The node's side.
pub trait MeshView: Send + Sync {
    /// Asks the members where they stand (blocking: a few network round trips).
    fn picture(&self) -> Result<MeshPicture, String>;
}
