//! An entry of the mesh's log, decoded and applied to a security state: a leader (or
//! anyone who reaches the propose route) controls these bytes. Applying must refuse, never
//! panic, and two states applying the same entries must stay equal.
#![no_main]
use ribat_mesh::{Admin, Command, Genesis, KeyPair, Member, SecurityState};

fn genesis() -> Genesis {
    let kp = |s: u8| KeyPair::from_seed(&[s; 32]).public();
    Genesis {
        members: ["node-1", "node-2", "node-3"]
            .iter()
            .zip(1u8..)
            .map(|(n, s)| Member {
                name: (*n).into(),
                key: kp(s),
                cert: None,
            })
            .collect(),
        admins: vec![
            Admin {
                name: "sec.a".into(),
                key: kp(11),
            },
            Admin {
                name: "sec.b".into(),
                key: kp(12),
            },
        ],
        threshold: 2,
        seats: Default::default(),
        granted: Vec::new(),
        attestation: Default::default(),
        // Custodian holders, so that resharing entries reach their checks.
        custodians: [(1, "node-1"), (2, "node-2"), (3, "node-3")]
            .into_iter()
            .map(|(i, n)| (i, n.to_owned()))
            .collect(),
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let commands: Vec<Command> = data
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect();
    let g = genesis();
    let (mut a, mut b) = (SecurityState::new(&g), SecurityState::new(&g));
    for c in &commands {
        let _ = a.apply(c);
        let _ = b.apply(c);
    }
    assert_eq!(a.snapshot().ok(), b.snapshot().ok());
});
