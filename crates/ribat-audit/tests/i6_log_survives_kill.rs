//! I6 — nothing lost. Many threads append concurrently; the process is killed with
//! SIGKILL mid-stream; after a restart the log verifies and holds every entry whose
//! append had returned, at the index it returned, byte for byte.
//! Also I2's precondition: once the log cannot write, it refuses every later append.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use ribat_audit::log::{Log, LogError};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const CHILD: &str = "RIBAT_AUDIT_CRASH_CHILD";

fn entry(thread: u64, n: u64) -> Vec<u8> {
    format!(
        r#"{{"v":1,"subject":"p-{thread}","n":{n},"pad":"{}"}}"#,
        "x".repeat(200)
    )
    .into_bytes()
}

/// The child: 16 appenders for ever, printing `index thread n` after each append returns.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD) else {
        return;
    };
    let (log, _) = Log::open(std::path::Path::new(&dir), "ribat.test/crash").unwrap();
    let log = std::sync::Arc::new(log);
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let (log, out) = (log.clone(), out.clone());
            std::thread::spawn(move || {
                for n in 0.. {
                    let i = log.append(&entry(t, n)).unwrap();
                    let mut o = out.lock().unwrap();
                    writeln!(o, "{i} {t} {n}").unwrap();
                    o.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}

#[test]
fn every_acknowledged_append_survives_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut acked = Vec::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        while acked.len() < 3000 {
            let line = lines.next().unwrap().unwrap();
            let v: Vec<u64> = line.split(' ').filter_map(|x| x.parse().ok()).collect();
            if v.len() == 3 {
                acked.push((v[0], v[1], v[2]));
            }
        }
        child.kill().unwrap(); // SIGKILL, mid-stream
        child.wait().unwrap();
        let (log, report) = Log::open(&dir, "ribat.test/crash").unwrap();
        let size = log.size().unwrap();
        for (i, t, n) in &acked {
            assert!(
                *i < size,
                "round {round}: acknowledged entry {i} lost (size {size})"
            );
            assert_eq!(
                log.entry(*i).unwrap(),
                entry(*t, *n),
                "round {round}: entry {i} changed"
            );
        }
        // Group commit did group: far fewer syncs than entries is the point, but the count
        // is a benchmark matter; here only that the log is whole again.
        let root = log.root(size).unwrap();
        let leaves: Vec<_> = (0..size).map(|i| log.leaf_hash(i).unwrap()).collect();
        assert_eq!(ribat_audit::tree::root(&leaves), root);
        eprintln!(
            "round {round}: {} acknowledged, {size} in the log, torn tail {} bytes",
            acked.len(),
            report.torn_bytes
        );
    }
}

#[test]
fn an_unwritable_log_refuses_appends_and_stays_refusing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (log, _) = Log::open(&dir, "ribat.test/ro").unwrap();
    log.append(b"{\"v\":1}").unwrap();
    ribat_testkit::fs::make_unwritable(&dir, true).unwrap();
    if ribat_testkit::fs::is_root() {
        // The descriptor is open: the write itself fails.
        let e = log.append(b"{\"v\":1,\"n\":2}").unwrap_err();
        assert!(matches!(e, LogError::Failed { .. }), "{e}");
        assert!(e.to_string().contains("cannot write"), "{e}");
    }
    ribat_testkit::fs::make_unwritable(&dir, false).unwrap();
    if ribat_testkit::fs::is_root() {
        // Writable again, but the open log stays failed: nothing after a failed sync is trusted.
        let e = log.append(b"{\"v\":1,\"n\":3}").unwrap_err();
        assert!(matches!(e, LogError::Failed { .. }), "{e}");
    }
    // While it is open, nobody else may open it for writing (a second node on one directory).
    let e = Log::open(&dir, "ribat.test/ro").unwrap_err();
    assert!(e.to_string().contains("another process"), "{e}");
    drop(log);
    // Reopening an unwritable log fails with a clear error.
    ribat_testkit::fs::make_unwritable(&dir, true).unwrap();
    let e = Log::open(&dir, "ribat.test/ro").unwrap_err();
    assert!(e.to_string().contains("audit log"), "{e}");
    ribat_testkit::fs::make_unwritable(&dir, false).unwrap();
    let (log, _) = Log::open(&dir, "ribat.test/ro").unwrap();
    assert_eq!(log.size().unwrap(), 1);
}

#[test]
fn damage_far_from_the_end_is_refused_not_cut_as_a_crash_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (log, _) = Log::open(&dir, "ribat.test/long").unwrap();
    // More than a crash can leave unfinished, and no checkpoint yet.
    let big: Vec<Vec<u8>> = (0..5000).map(|n| entry(0, n).repeat(4)).collect();
    for chunk in big.chunks(500) {
        let refs: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
        log.append_all(&refs).unwrap();
    }
    drop(log);
    let path = dir.join("journal");
    let before = std::fs::metadata(&path).unwrap().len();
    assert!(before > ribat_audit::journal::MAX_TORN);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8] = 0x7f; // entry 0's length field
    std::fs::write(&path, &bytes).unwrap();
    let e = Log::open(&dir, "ribat.test/long").unwrap_err();
    assert!(matches!(e, LogError::Damaged { .. }), "{e}");
    assert!(e.to_string().contains("entry 0"), "{e}");
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        before,
        "open cut the journal"
    );
}
