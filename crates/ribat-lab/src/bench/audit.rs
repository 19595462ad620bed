//! `ribat bench audit`: durable audit appends per second with group commit from concurrent
//! appenders, against one fsync per entry of the same bytes on the same disk, same run.

use ribat_audit::AuditEntry;
use ribat_audit::log::Log;
use ribat_node::{Context, Result};
use std::path::Path;
use std::time::Instant;

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
pub fn run(dir: &Path, entries: u64, threads: u64, json: bool) -> Result<()> {
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
                .map_err(|_| ribat_node::err!("an appender thread panicked"))??,
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
