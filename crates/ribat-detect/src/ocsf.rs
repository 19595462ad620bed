//! OCSF 1.3 JSON for the fund's SIEM: Datastore Activity (6005) for each access or
//! refusal, Detection Finding (2004) for each decision. One JSON object per line.

use crate::decision::Decision;
use crate::event::{Event, Kind};
use serde_json::{Value, json};

/// OCSF schema version written.
pub const OCSF_VERSION: &str = "1.3.0";

fn metadata(component: &str) -> Value {
    json!({
        "version": OCSF_VERSION,
        "product": {
            "name": "Ribat",
            "vendor_name": "Ribat",
            "version": env!("CARGO_PKG_VERSION"),
            "feature": {"name": component},
        },
    })
}

fn actor(a: &crate::event::Actor) -> Value {
    json!({
        "user": {
            "name": a.identity,
            "uid": a.identity,
            "type": a.role,
            "org": {"name": a.institution},
            "credential_uid": a.serial,
        }
    })
}

/// An event as OCSF, or `None` for kinds that are not datastore activity.
pub fn event(ev: &Event) -> Option<Value> {
    // Read = 1, Query = 4 (OCSF Datastore Activity activity ids); success 1, failure 2.
    let (activity_id, activity, status_id, status, detail, actor_v, addr, table, unmapped) =
        match &ev.kind {
            Kind::Access(a) => (
                if a.route.contains("search") { 4 } else { 1 },
                if a.route.contains("search") {
                    "Query"
                } else {
                    "Read"
                },
                1,
                "Success",
                if a.subject.is_some() {
                    "read"
                } else {
                    "no match"
                }
                .to_owned(),
                actor(&a.actor),
                a.actor.addr.clone(),
                a.table.to_string(),
                json!({
                    "purpose": a.purpose,
                    "route": a.route,
                    "record_id": a.subject,
                    "case_ref": a.case_ref,
                }),
            ),
            Kind::Denied(d) => (
                1,
                "Read",
                2,
                "Failure",
                d.reason.to_string(),
                actor(&d.actor),
                d.actor.addr.clone(),
                String::new(),
                json!({"purpose": d.purpose, "route": d.route}),
            ),
            Kind::AuthFailure(f) => (
                3,
                "Connect",
                2,
                "Failure",
                f.reason.clone(),
                actor(&f.actor),
                f.actor.addr.clone(),
                String::new(),
                json!({}),
            ),
            Kind::ProofFailure { custodian, reason } => (
                10,
                "Decrypt",
                2,
                "Failure",
                format!("proof-failure: {reason}"),
                json!({"user": {"name": format!("custodian-{custodian}"), "type": "custodian"}}),
                String::new(),
                String::new(),
                json!({"custodian": custodian}),
            ),
            Kind::ReviewDue {
                identity,
                role,
                serial,
                due_s,
            } => (
                99,
                "Other",
                1,
                "Success",
                format!(
                    "review-due: the access of {identity} lapses at {due_s} unless re-certified"
                ),
                json!({"user": {"name": identity, "type": role}}),
                String::new(),
                String::new(),
                json!({"serial": serial, "review_by": due_s}),
            ),
            Kind::NodeAttestation {
                node,
                isolated,
                verdict,
            } => (
                99,
                "Other",
                if *isolated { 2 } else { 1 },
                if *isolated { "Failure" } else { "Success" },
                format!("node-attestation: {node} {verdict}"),
                json!({"user": {"name": node, "type": "node"}}),
                String::new(),
                String::new(),
                json!({"node": node, "isolated": isolated}),
            ),
            Kind::PolicyChange { what, digest } => (
                2,
                "Update",
                1,
                "Success",
                format!("{what} loaded"),
                json!({"user": {"name": ev.component, "type": "gateway"}}),
                String::new(),
                what.clone(),
                json!({"sha256": digest}),
            ),
            _ => return None,
        };
    Some(json!({
        "class_uid": 6005,
        "class_name": "Datastore Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity,
        "type_uid": 6005 * 100 + activity_id,
        "time": ev.time_ms,
        "severity_id": 1,
        "status_id": status_id,
        "status": status,
        "status_detail": detail,
        "actor": actor_v,
        "src_endpoint": {"ip": addr},
        "database": {"name": "ribat"},
        "table": {"name": table},
        "metadata": metadata(&ev.component),
        "unmapped": unmapped,
    }))
}

/// A decision as an OCSF Detection Finding.
pub fn finding(d: &Decision) -> Value {
    json!({
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "category_uid": 2,
        "category_name": "Findings",
        "activity_id": 1,
        "activity_name": "Create",
        "type_uid": 200_401,
        "time": d.time_ms,
        "severity_id": d.severity.ocsf_id(),
        "status_id": 1,
        "status": "New",
        "message": d.title,
        "finding_info": {
            "uid": d.id,
            "title": d.title,
            "desc": d.evidence.join("\n"),
            "analytic": {"name": d.rule, "type_id": 1, "type": "Rule"},
            "created_time": d.time_ms,
        },
        // Remediation taken: OCSF `action_id` 2 = Denied (enforced), 1 = Allowed (alert only).
        "action_id": if d.enforces() { 2 } else { 1 },
        "action": d.action.to_string(),
        "resources": [{"type": "target", "name": d.target.to_string()}],
        "metadata": metadata(&d.node),
        "unmapped": {
            "mode": d.mode,
            "until_ms": d.until_ms,
            "enforced_ms": d.enforced_ms,
            "enforced_by": d.enforced_by,
            "key_id": d.key_id,
            "signature": d.signature,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;

    #[test]
    fn an_access_is_datastore_activity_read_and_a_refusal_a_failure() {
        let e = event(&read(MONDAY_9AM, "c-1", "clerk", "counter-service", "p-1")).unwrap();
        assert_eq!(e["class_uid"], 6005);
        assert_eq!(e["type_uid"], 600_501);
        assert_eq!(e["actor"]["user"]["name"], "c-1");
        assert_eq!(e["unmapped"]["record_id"], "p-1");
        let d = event(&denied(MONDAY_9AM, "c-1", "clerk", "quota-exceeded")).unwrap();
        assert_eq!(d["status_id"], 2);
        assert_eq!(d["status_detail"], "quota-exceeded");
        let p = event(&Event {
            time_ms: MONDAY_9AM,
            component: "gw".into(),
            kind: Kind::ProofFailure {
                custodian: 2,
                reason: "DLEQ proof does not verify".into(),
            },
        })
        .unwrap();
        assert_eq!(
            (p["type_uid"].as_u64(), p["status_id"].as_u64()),
            (Some(600_510), Some(2))
        );
        assert_eq!(p["actor"]["user"]["name"], "custodian-2");
    }

    #[test]
    fn a_node_cut_off_is_a_failure_naming_the_node_and_its_return_a_success() {
        let judged = |isolated: bool, verdict: &str| {
            event(&Event {
                time_ms: MONDAY_9AM,
                component: "gateway.node-1".into(),
                kind: Kind::NodeAttestation {
                    node: "node-3".into(),
                    isolated,
                    verdict: verdict.into(),
                },
            })
            .unwrap()
        };
        let cut = judged(
            true,
            "isolated: it runs 0.1.0 (binary 0a1b2c3d4e5f), not in the allowed set",
        );
        assert_eq!(cut["status_id"], 2);
        assert_eq!(cut["actor"]["user"]["name"], "node-3");
        assert_eq!(cut["unmapped"]["isolated"], true);
        assert!(
            cut["status_detail"]
                .as_str()
                .unwrap()
                .contains("not in the allowed set")
        );
        let back = judged(false, "attested: 0.1.0 (binary 0a1b2c3d4e5f)");
        assert_eq!(back["status_id"], 1);
    }

    #[test]
    fn authentication_failures_reviews_and_policy_loads_are_activity_and_decisions_findings() {
        let a = event(&auth_failure(MONDAY_9AM, "c-1", "tls-unknown-ca")).unwrap();
        assert_eq!(
            (a["activity_id"].as_u64(), a["activity_name"].as_str()),
            (Some(3), Some("Connect"))
        );
        assert_eq!(a["status"], "Failure");
        assert_eq!(a["status_detail"], "tls-unknown-ca");
        assert_eq!(a["metadata"]["product"]["name"], "Ribat");
        assert_eq!(a["metadata"]["product"]["feature"]["name"], "gateway");
        assert_eq!(a["metadata"]["version"], OCSF_VERSION);
        let review = Event {
            time_ms: MONDAY_9AM,
            component: "gateway".into(),
            kind: Kind::ReviewDue {
                identity: "partner.x".into(),
                role: "partner".into(),
                serial: "s-1".into(),
                due_s: 1_800_000_000,
            },
        };
        let r = event(&review).unwrap();
        assert_eq!(r["activity_id"], 99);
        assert!(
            r["status_detail"]
                .as_str()
                .unwrap()
                .starts_with("review-due: the access of partner.x")
        );
        assert_eq!(r["unmapped"]["serial"], "s-1");
        let policy = Event {
            time_ms: MONDAY_9AM,
            component: "gateway".into(),
            kind: Kind::PolicyChange {
                what: "rules.json".into(),
                digest: "ab".into(),
            },
        };
        let p = event(&policy).unwrap();
        assert_eq!(
            (p["activity_id"].as_u64(), p["activity_name"].as_str()),
            (Some(2), Some("Update"))
        );
        assert_eq!(p["table"]["name"], "rules.json");
        assert_eq!(p["unmapped"]["sha256"], "ab");
        use crate::response::{Action, Finding, Severity, Target};
        let f = Finding {
            rule: crate::rule_id::RuleId::Velocity,
            title: "p-1 read too fast".into(),
            severity: Severity::High,
            target: Target::Identity("p-1".into()),
            action: Action::Quarantine,
            duration_secs: 60,
            evidence: vec!["one".into(), "two".into()],
        };
        let d = Decision::from_finding("gw", &f, crate::rules::Mode::Enforce, MONDAY_9AM, 0);
        let v = finding(&d);
        assert_eq!(v["class_uid"], 2004);
        assert_eq!(v["severity_id"], 4);
        assert_eq!(v["finding_info"]["uid"], d.id.as_str());
        assert_eq!(v["finding_info"]["desc"], "one\ntwo");
        assert_eq!(v["action_id"], 2, "enforced");
        assert_eq!(v["resources"][0]["name"], "identity p-1");
        assert_eq!(v["metadata"]["product"]["feature"]["name"], "gw");
    }
}
