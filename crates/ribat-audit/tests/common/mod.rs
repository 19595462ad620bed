//! What the audit log's behaviour tests share.

#![allow(clippy::unwrap_used, dead_code)] // test helpers fail loudly by design

use ribat_audit::AuditEntry;

/// Entry `i`: a clerk's released read of `subject`, encoded.
pub(crate) fn entry(i: u64, subject: &str) -> Vec<u8> {
    AuditEntry {
        v: 1,
        time_ms: 1_763_900_000_000 + i,
        node: "node-1".into(),
        request_id: format!("req-{i}"),
        identity: "clerk.amal".into(),
        role: "clerk".into(),
        institution: "agency-casa-anfa".into(),
        purpose: "counter-service".into(),
        subject: subject.into(),
        record: subject.into(),
        table: "persons".into(),
        classes: vec!["identity".into()],
        fields: vec!["cin".into()],
        outcome: "released".into(),
        reason: None,
        custodians: vec![1, 2],
    }
    .encode()
    .unwrap()
}
