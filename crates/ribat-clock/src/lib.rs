//! What time it is for everything in a node that dates or expires security state: tokens,
//! detectors' windows, quotas, decisions, review dates, export approvals.
//!
//! Owns: the process's wall clock — the system's, or, in a node started with
//! `ribat node --lab-clock FILE`, the system's plus an offset read from that file, so that a
//! simulator can skip a simulated week's idle nights for N node processes at once.
//!
//! Must never: move backwards (a token expired stays expired, a quarantine lifted by time
//! stays lifted), be moved by anything but the file the process was told to follow, or date
//! what lives in real time: TLS certificates and their revocation lists, Raft's timers,
//! attestation freshness and contact with peers keep [`real_ms`].
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How stale a lab offset may be: a change written to the file is seen by every reading of
/// the clock made this long after the file was renamed into place.
pub const LAB_REFRESH: Duration = Duration::from_millis(1);

/// Largest offset, either way, a lab file may hold: a lab places its simulated week on a
/// fixed date and skips weeks or months from there, not centuries (and a misread file must
/// not expire every token at once).
pub const LAB_MAX_OFFSET_MS: i64 = 10 * 365 * 86_400_000;

/// Why the lab clock cannot be followed or written.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The process follows a lab file already.
    #[error("this process follows the lab clock in {0} already")]
    AlreadyFollowing(PathBuf),
    /// The file cannot be read or written.
    #[error("lab clock {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file does not hold an offset.
    #[error(
        "lab clock {path}: `{text}` is not an offset (one line: milliseconds ahead of the system clock, negative for behind, at most {LAB_MAX_OFFSET_MS} either way)"
    )]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What it holds (an offset is a number: nothing secret).
        text: String,
    },
}

struct Lab {
    path: PathBuf,
    offset_ms: AtomicI64,
    origin: Instant,
    /// When the last completed reading of the file started, µs after `origin`.
    read_at_us: AtomicU64,
}

static LAB: OnceLock<Lab> = OnceLock::new();

/// The system's wall clock, ms since the Unix epoch, whatever a lab says.
pub fn real_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Now, ms since the Unix epoch: the system's clock, plus the lab's offset when this process
/// follows one.
pub fn now_ms() -> u64 {
    real_ms().saturating_add_signed(lab_offset_ms().unwrap_or(0))
}

/// Now, whole seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// Now, as a date.
pub fn now_utc() -> time::OffsetDateTime {
    let nanos = i128::from(now_ms()) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The lab's offset when this process follows a lab clock; `None` on the system's.
pub fn lab_offset_ms() -> Option<i64> {
    LAB.get().map(Lab::offset_ms)
}

/// The file this process follows, if any.
pub fn lab_file() -> Option<&'static Path> {
    LAB.get().map(|l| l.path.as_path())
}

/// From now on this process's clock is the system's plus the offset in `path` (which must
/// hold one already). Once per process: a clock followed is followed until exit.
pub fn follow(path: &Path) -> Result<(), LabError> {
    if let Some(l) = LAB.get() {
        return Err(LabError::AlreadyFollowing(l.path.clone()));
    }
    let first = read_offset(path)?;
    let lab = Lab {
        path: path.to_path_buf(),
        offset_ms: AtomicI64::new(first),
        origin: Instant::now(),
        read_at_us: AtomicU64::new(0),
    };
    LAB.set(lab)
        .map_err(|l| LabError::AlreadyFollowing(l.path.clone()))
}

/// Writes `offset_ms` into the lab file at `path` (whole or not at all: a temporary file
/// renamed into place). Followers take it only if it is ahead of what they hold: the first
/// offset, read when a process starts to follow, may place it in the past.
pub fn write_offset(path: &Path, offset_ms: i64) -> Result<(), LabError> {
    let io = |source| LabError::Io {
        path: path.to_path_buf(),
        source,
    };
    if offset_ms.abs() > LAB_MAX_OFFSET_MS {
        return Err(LabError::Malformed {
            path: path.to_path_buf(),
            text: offset_ms.to_string(),
        });
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".next");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{offset_ms}\n")).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The offset a lab file holds.
pub fn read_offset(path: &Path) -> Result<i64, LabError> {
    let text = std::fs::read_to_string(path).map_err(|source| LabError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let t = text.trim();
    t.parse::<i64>()
        .ok()
        .filter(|v| v.abs() <= LAB_MAX_OFFSET_MS)
        .ok_or_else(|| LabError::Malformed {
            path: path.to_path_buf(),
            text: t.chars().take(40).collect(),
        })
}

impl Lab {
    fn offset_ms(&self) -> i64 {
        let refresh = u64::try_from(LAB_REFRESH.as_micros()).unwrap_or(u64::MAX);
        let started = u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX);
        if started.saturating_sub(self.read_at_us.load(Ordering::SeqCst)) >= refresh {
            // A file gone or garbled keeps the last offset: the clock never goes back.
            if let Ok(v) = read_offset(&self.path) {
                self.offset_ms.fetch_max(v, Ordering::SeqCst);
            }
            // Recorded only once the reading is done: a caller that finds a recent reading
            // finds its offset stored too.
            self.read_at_us.fetch_max(started.max(1), Ordering::SeqCst);
        }
        self.offset_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One process follows one lab: this is the only test that calls `follow`.
    #[test]
    fn a_followed_lab_clock_moves_forward_with_its_file_and_never_back() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("lab-clock");
        assert!(
            matches!(follow(&f), Err(LabError::Io { .. })),
            "no file yet"
        );
        assert_eq!(lab_offset_ms(), None);
        let before = now_ms();
        assert!(now_ms().abs_diff(real_ms()) < 1_000);

        // A lab may start in the past (its week on a fixed date), then only moves forward.
        write_offset(&f, -3_600_000).unwrap();
        follow(&f).unwrap();
        assert_eq!(lab_file(), Some(f.as_path()));
        assert!(matches!(follow(&f), Err(LabError::AlreadyFollowing(_))));
        assert!(now_ms() < real_ms() - 3_500_000);

        write_offset(&f, 7 * 86_400_000).unwrap();
        std::thread::sleep(LAB_REFRESH * 3);
        assert_eq!(lab_offset_ms(), Some(7 * 86_400_000));
        let t = now_ms();
        assert!(t >= before + 7 * 86_400_000, "{t}");
        assert_eq!(now_secs(), now_ms() / 1000);
        assert!(now_utc().unix_timestamp() >= i64::try_from(t / 1000).unwrap());

        // Backwards, garbled, gone: the clock keeps what it had.
        write_offset(&f, 1_000).unwrap();
        std::thread::sleep(LAB_REFRESH * 3);
        assert_eq!(lab_offset_ms(), Some(7 * 86_400_000));
        std::fs::write(&f, "tomorrow\n").unwrap();
        std::thread::sleep(LAB_REFRESH * 3);
        assert_eq!(lab_offset_ms(), Some(7 * 86_400_000));
        std::fs::remove_file(&f).unwrap();
        std::thread::sleep(LAB_REFRESH * 3);
        assert_eq!(lab_offset_ms(), Some(7 * 86_400_000));
        assert!(
            real_ms() + 86_400_000 < now_ms(),
            "real time is not the lab's"
        );
    }

    #[test]
    fn a_lab_file_that_holds_no_offset_is_named_with_what_it_holds() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("c");
        for bad in [
            "",
            "1.5",
            "12 days",
            "99999999999999999999",
            "-400000000000",
        ] {
            std::fs::write(&f, bad).unwrap();
            let e = read_offset(&f).unwrap_err();
            assert!(matches!(e, LabError::Malformed { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("milliseconds ahead"), "{e}");
        }
        assert!(write_offset(&f, LAB_MAX_OFFSET_MS + 1).is_err());
        write_offset(&f, 42).unwrap();
        assert_eq!(read_offset(&f).unwrap(), 42);
        write_offset(&f, -86_400_000).unwrap();
        assert_eq!(read_offset(&f).unwrap(), -86_400_000);
        assert!(!d.path().join("c.next").exists(), "renamed into place");
    }
}
