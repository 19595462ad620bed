//! A gateway whose disk fills up while it serves: reads are refused with a clear error once
//! the audit log (or a custodian's log) cannot write — nothing is released unrecorded — the
//! process does not die, and reads resume once space returns. The node's HOME sits on a
//! tmpfs of its own size (mounting one needs root, which `.ci/run` has on these machines;
//! elsewhere the test says SKIPPED and why).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::api::*;
use common::*;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A size-limited tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let o = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .unwrap();
        if !o.status.success() {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs here ({}); .ci/run runs as root",
                text(&o).trim()
            );
            return None;
        }
        Some(Self(at.to_owned()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the filesystem is full; returns how many bytes it took.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0x5au8; 1 << 16];
    let mut n = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(_) => break,
        }
    }
    let _ = f.sync_all();
    // What the page cache held back: one byte at a time to the very end.
    while f.write(&[0]).is_ok_and(|k| k == 1) && f.sync_all().is_ok() {
        n += 1;
    }
    n
}

#[test]
fn reads_are_refused_clearly_while_the_disk_is_full_and_resume_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("small"), "96m") else {
        return;
    };
    let (src, home, fund) = fund_and_keys(&disk.0, 60, 4, 1, 31);
    ok(ribat(
        &home,
        &[
            "import",
            src.join("persons.csv").to_str().unwrap(),
            src.join("employers.csv").to_str().unwrap(),
            "--passphrases",
            "env",
        ],
    ));
    ok(ribat(&home, &["identity", "init"]));
    add(&home, "clerk.1", "clerk", "agency-fes");
    let gw = start(
        &home,
        &["serve", "--listen", "127.0.0.1:0", "--passphrases", "env"],
        &[],
    );
    let ca = identity(&home, "gateway.embedded").join("ca.pem");
    let clerk = identity(&home, "clerk.1");
    let tok = token(&gw.addr, &ca, &clerk);
    let read = |i: usize| {
        call(
            &gw.addr,
            config(&ca, Some(&clerk)),
            "GET",
            &format!(
                "/v1/persons/{}?purpose=counter-service&case=T-{i}",
                fund.persons[i].cnss
            ),
            Some(&tok),
            None,
        )
        .unwrap()
    };
    // Reads answered, per person: each must be in the audit trail after all this.
    let answered = std::cell::RefCell::new([0usize; 6]);
    let read = |i: usize| {
        let r = read(i);
        if r.status == 200 {
            answered.borrow_mut()[i] += 1;
        }
        r
    };
    let r = read(0);
    assert_eq!(r.status, 200, "{r:?}");

    // The disk fills up (another process's file, a runaway log): every read is refused,
    // saying why, and none releases a value.
    let filler = disk.0.join("filler");
    let took = fill(&filler);
    assert!(took > 0);
    // A log appends into the space its last page still has: those reads are recorded and
    // answered. Within a few dozen the logs need a new page, and from then on every read
    // is refused.
    let mut answered_while_full = 0;
    let first_refused = (1..60)
        .find(|&i| {
            // The same few persons again and again: re-reads are recorded each time but
            // count once against the clerk's quota and the detectors.
            let r = read(i % 3);
            match r.status {
                200 => {
                    answered_while_full += 1;
                    false
                }
                503 => true,
                s => panic!("{s}: {}", String::from_utf8_lossy(&r.body)),
            }
        })
        .expect("reads went on with the disk full: where were they recorded?");
    eprintln!(
        "{answered_while_full} reads recorded in the logs' last pages before the first refusal"
    );
    for i in first_refused..first_refused + 3 {
        let r = read(i % 3);
        let body = String::from_utf8_lossy(&r.body).into_owned();
        assert_eq!(r.status, 503, "{body}");
        let kind = problem(&r);
        assert!(
            matches!(
                kind.as_str(),
                "audit-unavailable" | "custodians-unavailable"
            ),
            "{kind}: {body}"
        );
        assert!(
            body.contains("No space left") || body.contains("space"),
            "the refusal says the disk is full: {body}"
        );
        assert!(!body.contains(&fund.persons[i % 3].surname), "{body}");
    }
    // The process is still there and answers what needs no disk.
    let h = call(
        &gw.addr,
        config(&ca, Some(&clerk)),
        "GET",
        "/healthz",
        None,
        None,
    )
    .unwrap();
    assert!(h.status < 500 || h.status == 503, "{h:?}");

    // Space returns: reads resume without a restart.
    std::fs::remove_file(&filler).unwrap();
    let mut last = None;
    for attempt in 0..50 {
        let r = read(attempt % 3);
        if r.status == 200 {
            last = None;
            break;
        }
        last = Some(String::from_utf8_lossy(&r.body).into_owned());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        last.is_none(),
        "reads did not resume once space returned: {last:?}"
    );
    let r = read(5);
    assert_eq!(r.status, 200, "{r:?}");
    drop(gw);

    // After the episode and a stop, the audit log verifies whole, and every read that was
    // answered — in the logs' last pages while the disk was full too — is in the trail of
    // the person read.
    let audit = home.join("audit");
    let v = ribat(&home, &["audit", "verify", audit.to_str().unwrap()]);
    assert!(v.status.success(), "{}", text(&v));
    for (i, n) in answered
        .borrow()
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
    {
        let out = ok(ribat(
            &home,
            &[
                "audit",
                "subject",
                "--cnss",
                &fund.persons[i].cnss,
                "--passphrases",
                "env",
            ],
        ));
        let listed: usize = out
            .split_whitespace()
            .next()
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("{out}"));
        assert!(
            listed >= *n,
            "person {i}: {n} reads answered, {listed} in the audit trail: {out}"
        );
    }
}
