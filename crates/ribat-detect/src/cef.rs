//! ArcSight Common Event Format lines, for SIEMs that take syslog rather than JSON:
//! `CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|key=value …`.
//! Header fields escape `\` and `|`; extension values escape `\`, `=` and line breaks.

use crate::decision::Decision;
use crate::event::{Event, Kind};

fn header(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|")
}

fn value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('=', "\\=")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

fn line(signature: &str, name: &str, severity: u8, ext: &[(&str, String)]) -> String {
    let ext: Vec<String> = ext
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", value(v)))
        .collect();
    format!(
        "CEF:0|Ribat|ribat|{}|{}|{}|{severity}|{}",
        header(env!("CARGO_PKG_VERSION")),
        header(signature),
        header(name),
        ext.join(" ")
    )
}

/// An event as CEF, or `None` for kinds a SIEM does not need.
pub fn event(ev: &Event) -> Option<String> {
    let t = ev.time_ms.to_string();
    match &ev.kind {
        Kind::Access(a) => Some(line(
            "access",
            "Record read",
            1,
            &[
                ("rt", t),
                ("suser", a.actor.identity.clone()),
                ("src", a.actor.addr.clone()),
                ("cs1Label", "purpose".into()),
                ("cs1", a.purpose.to_string()),
                ("request", a.route.clone()),
                ("duid", a.subject.clone().unwrap_or_default()),
                ("outcome", "success".into()),
            ],
        )),
        Kind::Denied(d) => Some(line(
            "denied",
            "Request refused",
            4,
            &[
                ("rt", t),
                ("suser", d.actor.identity.clone()),
                ("src", d.actor.addr.clone()),
                ("request", d.route.clone()),
                ("reason", d.reason.to_string()),
                ("outcome", "failure".into()),
            ],
        )),
        Kind::AuthFailure(f) => Some(line(
            "auth-failure",
            "Authentication failed",
            5,
            &[
                ("rt", t),
                ("suser", f.actor.identity.clone()),
                ("src", f.actor.addr.clone()),
                ("reason", f.reason.clone()),
                ("outcome", "failure".into()),
            ],
        )),
        _ => None,
    }
}

/// A decision as CEF (severity 0–10).
pub fn decision(d: &Decision) -> String {
    let severity = match d.severity.ocsf_id() {
        5 => 10,
        4 => 8,
        3 => 5,
        _ => 3,
    };
    line(
        &d.rule,
        &d.title,
        severity,
        &[
            ("rt", d.time_ms.to_string()),
            ("externalId", d.id.clone()),
            ("act", d.action.to_string()),
            ("duser", d.target.to_string()),
            ("cs1Label", "mode".into()),
            (
                "cs1",
                serde_json::to_value(d.mode)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
            ),
            ("end", d.until_ms.to_string()),
        ],
    )
}

/// A syslog (RFC 5424) frame around a CEF line, facility local4 (20).
pub fn syslog(severity: u8, host: &str, cef: &str) -> String {
    // PRI = facility × 8 + severity; RFC 5424 severities: 2 critical, 4 warning, 6 info.
    let sev = match severity {
        0..=3 => 6,
        4..=7 => 4,
        _ => 2,
    };
    format!("<{}>1 - {host} ribat - - - {cef}", 20 * 8 + sev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;

    #[test]
    fn cef_escapes_what_would_break_a_line() {
        let mut e = denied(MONDAY_9AM, "c|1", "clerk", "quota=exceeded\nforged");
        if let Kind::Denied(d) = &mut e.kind {
            d.actor.addr = "10.0.0.1".into();
        }
        let l = event(&e).unwrap();
        assert!(l.starts_with("CEF:0|Ribat|ribat|"), "{l}");
        assert!(l.contains("reason=quota\\=exceeded\\nforged"), "{l}");
        assert!(
            l.contains("suser=c|1"),
            "pipes need no escape in extensions: {l}"
        );
        assert!(!l.contains('\n'));
        assert_eq!(header("a|b\\c"), "a\\|b\\\\c");
        assert!(syslog(8, "node", &l).starts_with("<162>1 - node ribat"));
    }

    fn decision_of(severity: crate::response::Severity) -> Decision {
        use crate::response::{Action, Finding, Target};
        let f = Finding {
            rule: crate::rule_id::RuleId::Velocity,
            title: "p-1 read too fast".into(),
            severity,
            target: Target::Identity("p-1".into()),
            action: Action::Quarantine,
            duration_secs: 60,
            evidence: vec![],
        };
        Decision::from_finding("gw", &f, crate::rules::Mode::Enforce, MONDAY_9AM, 0)
    }

    #[test]
    fn reads_authentication_failures_and_decisions_are_cef_lines_with_their_severity() {
        let l = event(&read(MONDAY_9AM, "c-1", "clerk", "counter-service", "p-1")).unwrap();
        assert!(l.contains("|access|Record read|1|"), "{l}");
        for part in [
            "suser=c-1",
            "duid=p-1",
            "cs1=counter-service",
            "outcome=success",
        ] {
            assert!(l.contains(part), "{part}: {l}");
        }
        let l = event(&auth_failure(MONDAY_9AM, "c-1", "token-forged")).unwrap();
        assert!(l.contains("|auth-failure|Authentication failed|5|"), "{l}");
        assert!(
            l.contains("reason=token-forged") && l.contains("suser=c-1"),
            "{l}"
        );
        let audited = Event {
            time_ms: MONDAY_9AM,
            component: "gateway".into(),
            kind: Kind::Audited {
                request_id: "r-1".into(),
            },
        };
        assert_eq!(event(&audited), None, "not for the SIEM");
        use crate::response::Severity::*;
        for (severity, cef) in [(Critical, 10), (High, 8), (Medium, 5), (Low, 3)] {
            let d = decision_of(severity);
            let l = decision(&d);
            assert!(
                l.contains(&format!("|velocity|p-1 read too fast|{cef}|")),
                "{l}"
            );
            for part in [
                format!("externalId={}", d.id),
                "act=quarantine".into(),
                "duser=identity p-1".into(),
                "cs1=enforce".into(),
                format!("end={}", d.until_ms),
            ] {
                assert!(l.contains(&part), "{part}: {l}");
            }
        }
        // RFC 5424 severities from CEF's: informational, warning, critical.
        assert!(syslog(3, "n", "x").starts_with("<166>"));
        assert!(syslog(5, "n", "x").starts_with("<164>"));
        assert!(syslog(8, "n", "x").starts_with("<162>"));
    }
}
