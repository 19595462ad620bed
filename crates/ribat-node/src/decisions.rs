//! `ribat decisions`: what the detectors decided, from the node's decision log (each
//! signature checked), and the two-person release of a decision through the running
//! gateway.

use crate::bail;
use crate::error::{Context, Result};
use crate::home::Home;
use ribat_detect::Decision;
use ribat_gateway::watch::{Record, read_log, verifying_key};
use std::collections::BTreeMap;

fn dir(home: &Home) -> std::path::PathBuf {
    home.root().join("decisions")
}

/// A decision with what became of it.
struct Row {
    d: Decision,
    valid: bool,
    approvals: Vec<String>,
    released: bool,
}

fn rows(home: &Home) -> Result<Vec<Row>> {
    let d = dir(home);
    let records = read_log(&d)?;
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let key = verifying_key(&d)?;
    let mut out: Vec<Row> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for r in records {
        match r {
            Record::Decision(dec) => {
                index.insert(dec.id.clone(), out.len());
                out.push(Row {
                    valid: dec.verify(&key).is_ok(),
                    d: *dec,
                    approvals: Vec::new(),
                    released: false,
                });
            }
            Record::Approval(a) => {
                if let Some(&i) = index.get(&a.decision) {
                    out[i].approvals.push(a.admin);
                }
            }
            Record::Released { decision, .. } => {
                if let Some(&i) = index.get(&decision) {
                    out[i].released = true;
                }
            }
        }
    }
    Ok(out)
}

fn utc(ms: u64) -> String {
    ribat_custodian::error_utc(ms / 1000)
}

fn state(r: &Row, now_ms: u64) -> &'static str {
    if !r.valid {
        "BAD SIGNATURE"
    } else if !r.d.enforces() {
        "alert"
    } else if r.released {
        "released"
    } else if r.d.until_ms <= now_ms {
        "ended"
    } else {
        "in force"
    }
}

/// `ribat decisions list`.
pub fn list(home: &Home, json: bool) -> Result<()> {
    let rows = rows(home)?;
    let now = ribat_custodian::clock::Clock::now_ms(&ribat_custodian::clock::SystemClock);
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "decision": r.d,
                    "signature_valid": r.valid,
                    "state": state(r, now),
                    "approvals": r.approvals,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!("no decisions in {}", dir(home).display());
        return Ok(());
    }
    println!(
        "{:<16}  {:<19}  {:<13}  {:<9}  {:<32}  {:<24}  title",
        "id", "decided (UTC)", "rule", "state", "target", "response"
    );
    for r in &rows {
        println!(
            "{:<16}  {:<19}  {:<13}  {:<9}  {:<32}  {:<24}  {}",
            r.d.id,
            utc(r.d.time_ms),
            r.d.rule,
            state(r, now),
            r.d.target.to_string(),
            r.d.action.to_string(),
            r.d.title
        );
    }
    let bad = rows.iter().filter(|r| !r.valid).count();
    if bad > 0 {
        bail!(
            "{bad} decision(s) do not verify under {}/key.pub: the log was altered",
            dir(home).display()
        );
    }
    Ok(())
}

/// `ribat decisions show ID`.
pub fn show(home: &Home, id: &str) -> Result<()> {
    let rows = rows(home)?;
    let r = rows
        .iter()
        .find(|r| r.d.id == id)
        .with_context(|| format!("no decision {id} in {}", dir(home).display()))?;
    let now = ribat_custodian::clock::Clock::now_ms(&ribat_custodian::clock::SystemClock);
    let d = &r.d;
    println!("decision {} ({})", d.id, state(r, now));
    println!(
        "  rule      {} ({:?}, severity {:?})",
        d.rule, d.mode, d.severity
    );
    println!("  what      {}", d.title);
    println!("  target    {}", d.target);
    println!("  response  {} until {} UTC", d.action, utc(d.until_ms));
    println!("  decided   {} UTC by {}", utc(d.time_ms), d.node);
    if let Some(e) = d.enforced_ms {
        println!(
            "  enforced  {} ms after the decision, by {}",
            e.saturating_sub(d.time_ms),
            d.enforced_by.join(", ")
        );
    }
    println!(
        "  signature {} (key {})",
        if r.valid { "valid" } else { "DOES NOT VERIFY" },
        d.key_id
    );
    if !r.approvals.is_empty() {
        println!("  release approved by {}", r.approvals.join(", "));
    }
    println!("  evidence:");
    for e in &d.evidence {
        println!("    {e}");
    }
    Ok(())
}

/// `ribat decisions release ID --as NAME --reason R`: one administrator's approval, sent
/// to the running gateway with that administrator's certificate.
pub fn release(
    home: &Home,
    id: &str,
    admin: &str,
    reason: &str,
    gateway: Option<&str>,
) -> Result<()> {
    let addr = crate::api_client::gateway_addr(home, gateway)?;
    let r = crate::api_client::call(
        &addr,
        &crate::identity::issued_dir(home, admin),
        "POST",
        &format!("/v1/decisions/{id}/release"),
        Some(serde_json::to_vec(&serde_json::json!({"reason": reason}))?),
    )?;
    let v = r.json();
    if r.status != 200 {
        bail!(
            "the gateway refused: HTTP {} {}",
            r.status,
            v["detail"].as_str().unwrap_or_default()
        );
    }
    let approvals: Vec<&str> = v["approvals"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default();
    match v["state"].as_str() {
        Some("released") => println!(
            "decision {id} released (approved by {})",
            approvals.join(" and ")
        ),
        _ => println!(
            "approval recorded ({} of {}); decision {id} stays in force until another administrator approves",
            approvals.len(),
            v["needed"]
        ),
    }
    Ok(())
}
