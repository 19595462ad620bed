//! `ribat audit verify`, `ribat audit subject` and `ribat bench audit`.

use crate::embedded::Embedded;
use crate::error::{Context, Result};
use base64ct::{Base64, Encoding};
use ribat_audit::verify::{Trust, verify_dir};
use std::path::Path;

/// `ribat audit verify DIR`: exit status 0 when the log verifies, 1 when not.
pub fn verify(dir: &Path, trust: Option<&Path>) -> std::process::ExitCode {
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        std::process::ExitCode::FAILURE
    };
    let trust_path = trust.map_or_else(|| dir.join("trust"), Path::to_path_buf);
    if trust.is_none() {
        eprintln!(
            "note: trusting the keys in {}; an outsider should pin the keys it got from the fund with --trust FILE",
            trust_path.display()
        );
    }
    let text = match std::fs::read_to_string(&trust_path) {
        Ok(t) => t,
        Err(e) => return fail(format!("cannot read {}: {e}", trust_path.display())),
    };
    let trust = match Trust::parse(&text) {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: {e}", trust_path.display())),
    };
    let r = verify_dir(dir, &trust);
    println!(
        "{} entries read and hashed, {} checkpoints checked (log key {}, {} witnesses, quorum {})",
        r.entries,
        r.checkpoints,
        trust.log,
        trust.witnesses.len(),
        trust.quorum
    );
    if r.torn_bytes > 0 {
        println!(
            "an unfinished final append of {} bytes (a crash; it was never acknowledged)",
            r.torn_bytes
        );
    }
    for m in &r.remarks {
        println!("remark: {m}");
    }
    if let Some((size, root)) = r.latest {
        println!(
            "latest cosigned checkpoint: size {size}, root {}",
            Base64::encode_string(&root.0)
        );
    }
    if r.problems.is_empty() {
        println!(
            "VALID: the journal reproduces every checkpoint and the latest is cosigned by a quorum"
        );
        return std::process::ExitCode::SUCCESS;
    }
    for p in &r.problems {
        match p.index {
            Some(i) => println!("INVALID at entry {i}: {}", p.message),
            None => println!("INVALID: {}", p.message),
        }
    }
    std::process::ExitCode::FAILURE
}

/// `ribat audit subject --cnss N`: every access to one person, each with an inclusion
/// proof against the latest cosigned checkpoint.
pub fn subject(node: &Embedded, cnss: &str, authority: bool, json: bool) -> Result<()> {
    let rid = crate::read::one(crate::read::by_cnss(node, cnss)?, "CNSS number")?;
    // A fresh checkpoint first (cosigned when enough custodians answer), so that the
    // proofs cover every access made until now.
    let cp = node.checkpoint()?;
    let found = ribat_gateway::subject::accesses(node.vault.audit.log(), &rid)?;
    let size = found
        .against
        .as_ref()
        .context("no cosigned checkpoint yet: too few custodians to witness one")?
        .size;
    if json {
        let items: Vec<_> = found
            .accesses
            .iter()
            .map(|a| {
                let e = &a.entry;
                serde_json::json!({
                    "time_ms": e.time_ms,
                    "purpose": e.purpose,
                    "role": e.role,
                    "institution": e.institution,
                    "identity": if authority { Some(&e.identity) } else { None },
                    "classes": e.classes,
                    "fields": e.fields,
                    "outcome": e.outcome,
                    "table": e.table,
                    "inclusion": found.proof_file(a),
                })
            })
            .collect();
        let out = serde_json::json!({
            "subject": rid,
            "checkpoint": if cp.quorum_met { Some(&cp.note) } else { None },
            "accesses": items,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} accesses to the record of CNSS {cnss} ({rid}); proofs against the checkpoint at size {size} cosigned by {}",
        found.accesses.len(),
        cp.cosigned.join(", ")
    );
    for a in &found.accesses {
        let (i, e) = (a.index, &a.entry);
        let when = time::OffsetDateTime::from_unix_timestamp((e.time_ms / 1000) as i64)
            .ok()
            .and_then(|t| {
                t.format(time::macros::format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
                ))
                .ok()
            })
            .unwrap_or_default();
        let who = if authority {
            format!(" {}", e.identity)
        } else {
            String::new()
        };
        println!(
            "  {when}  {:<22} {:<10} {}{who}  {} {} {}: {}  [entry {i}, {}]",
            e.purpose,
            e.role,
            e.institution,
            e.outcome,
            e.table,
            e.classes.join(","),
            e.fields.join(","),
            if a.proof.is_some() {
                "inclusion proof verified"
            } else {
                "after the checkpoint"
            }
        );
    }
    if !authority {
        println!(
            "(identities of the readers are shown only in the data-protection authority's view: --authority)"
        );
    }
    Ok(())
}
