//! `ribat audit verify`, `ribat audit subject` and `ribat bench audit`.

use crate::embedded::Embedded;
use crate::error::{Context, Result};
use base64ct::{Base64, Encoding};
use ribat_audit::AuditEntry;
use ribat_audit::hash::leaf;
use ribat_audit::log::Log;
use ribat_audit::proof::verify_inclusion;
use ribat_audit::verify::{Trust, verify_dir};
use std::path::Path;
use std::time::Instant;

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
    let cp = node.checkpoint()?;
    let log = node.vault.audit.log();
    let (size, root) = if cp.quorum_met {
        (cp.size, log.root(cp.size)?)
    } else {
        let text = log
            .latest_checkpoint()?
            .context("no cosigned checkpoint yet: too few custodians to witness one")?;
        let note = ribat_audit::note::SignedNote::parse(&text)?;
        let c = ribat_audit::note::Checkpoint::parse(&note.text)?;
        (c.size, c.root)
    };
    let mut rows = Vec::new();
    for i in log.entries_of(&rid)? {
        let bytes = log.entry(i)?;
        let e = AuditEntry::decode(&bytes)?;
        let leaf_hash = leaf(&bytes);
        let proof = if i < size {
            let p = log.inclusion_proof(i, size)?;
            verify_inclusion(i, size, &leaf_hash, &p, &root)
                .with_context(|| format!("entry {i} is not in the checkpoint it should be in"))?;
            Some(p)
        } else {
            None
        };
        rows.push((i, e, leaf_hash, proof));
    }
    if json {
        let items: Vec<_> = rows
            .iter()
            .map(|(i, e, h, p)| {
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
                    "inclusion": p.as_ref().map(|p| serde_json::json!({
                        "leafIdx": i,
                        "treeSize": size,
                        "root": Base64::encode_string(&root.0),
                        "leafHash": Base64::encode_string(&h.0),
                        "proof": p.iter().map(|x| Base64::encode_string(&x.0)).collect::<Vec<_>>(),
                    })),
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
        rows.len(),
        cp.cosigned.join(", ")
    );
    for (i, e, _, p) in &rows {
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
            if p.is_some() {
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

fn sample_entry(i: u64) -> Vec<u8> {
    AuditEntry {
        v: 1,
        time_ms: 1_763_900_000_000 + i,
        node: "node.bench".into(),
        request_id: format!("bench-{i:012}"),
        identity: format!("clerk.casa-anfa.{:04}", i % 500),
        role: "clerk".into(),
        institution: "CNSS agence Casa-Anfa".into(),
        purpose: "counter-service".into(),
        subject: format!("p-{:032x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        record: format!("p-{:032x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        table: "persons".into(),
        classes: vec!["identity".into()],
        fields: vec!["given".into(), "surname".into(), "cin".into()],
        outcome: "released".into(),
        reason: None,
        custodians: vec![1, 3],
    }
    .encode()
    .unwrap_or_default()
}

/// `ribat bench audit`: durable appends per second with group commit, against raw
/// fsync'd appends of the same bytes on the same disk.
pub fn bench(dir: &Path, entries: u64, threads: u64, json: bool) -> Result<()> {
    let work = dir.join(format!("bench-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let result = bench_in(&work, entries, threads, json);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn bench_in(work: &Path, entries: u64, threads: u64, json: bool) -> Result<()> {
    let bytes: Vec<Vec<u8>> = (0..entries).map(sample_entry).collect();
    let avg = bytes.iter().map(Vec::len).sum::<usize>() / bytes.len().max(1);
    // Baseline: each entry written and fdatasync'ed on its own, for 3 s at most.
    let raw_path = work.join("raw");
    let mut raw = std::fs::File::create(&raw_path)?;
    let t0 = Instant::now();
    let mut synced = 0u64;
    for b in &bytes {
        use std::io::Write;
        raw.write_all(b)?;
        raw.sync_data()?;
        synced += 1;
        if t0.elapsed().as_secs_f64() > 3.0 {
            break;
        }
    }
    let fsync_per_s = synced as f64 / t0.elapsed().as_secs_f64();
    drop(raw);

    let (log, _) = Log::open(&work.join("log"), "ribat.bench/audit")?;
    let log = std::sync::Arc::new(log);
    let bytes = std::sync::Arc::new(bytes);
    let t0 = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (log, bytes) = (log.clone(), bytes.clone());
            std::thread::spawn(move || -> Result<Vec<u32>> {
                let mut lat = Vec::new();
                let mut i = t;
                while i < entries {
                    let s = Instant::now();
                    log.append(&bytes[i as usize])?;
                    lat.push(s.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                    i += threads;
                }
                Ok(lat)
            })
        })
        .collect();
    let mut lat = Vec::with_capacity(entries as usize);
    for h in handles {
        lat.extend(
            h.join()
                .map_err(|_| crate::err!("an appender thread panicked"))??,
        );
    }
    let seconds = t0.elapsed().as_secs_f64();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |us| f64::from(*us) / 1000.0)
    };
    let groups = log.groups()?;
    let entries_per_s = entries as f64 / seconds;
    let out = serde_json::json!({
        "entries": entries,
        "entry_bytes": avg,
        "threads": threads,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "entries_per_s": entries_per_s.round(),
        "fsync_per_s": fsync_per_s.round(),
        "ratio": (entries_per_s / fsync_per_s * 100.0).round() / 100.0,
        "p50_ms": (pct(0.50) * 1000.0).round() / 1000.0,
        "p99_ms": (pct(0.99) * 1000.0).round() / 1000.0,
        "groups": groups,
        "entries_per_group": (entries as f64 / groups.max(1) as f64).round(),
    });
    if json {
        println!("{out}");
    } else {
        println!(
            "{entries} durable audit entries ({avg} bytes each) from {threads} appenders in {seconds:.2} s: {entries_per_s:.0}/s",
        );
        println!(
            "  group commit: {groups} fsyncs, {:.0} entries each; latency p50 {:.2} ms, p99 {:.2} ms",
            entries as f64 / groups.max(1) as f64,
            pct(0.5),
            pct(0.99)
        );
        println!(
            "  baseline, one fsync per entry on the same disk: {fsync_per_s:.0}/s; ratio {:.1}x",
            entries_per_s / fsync_per_s
        );
    }
    Ok(())
}
