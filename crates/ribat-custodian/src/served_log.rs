//! The custodian's own append-only log of what it served and refused (I2).
//!
//! JSON lines, one entry per request, format version 1:
//!
//! ```json
//! {"v":1,"time":1763860000,"custodian":1,"request_id":"…","identity":"clerk.0042",
//!  "role":"clerk","purpose":"counter-service","table":"persons","class":"identity",
//!  "records":["p-000017"],"outcome":"served"}
//! ```
//!
//! `outcome` is `served` or `denied`; a denial carries `reason`, and a quarantine it
//! caused carries `quarantine_until`. Records are opaque ids, never personal data.
//! Every entry is written and `fsync`ed before the custodian answers, so an answer that
//! left the custodian is always in its log. A torn last line (a crash mid-write) belongs
//! to an answer that was never sent; replay skips it and reports it.
//! The Merkle log of issue 4 will take these entries over.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedEntry {
    /// Format version, 1.
    pub v: u8,
    /// Unix time.
    pub time: u64,
    /// Custodian index.
    pub custodian: u32,
    /// Request id.
    pub request_id: String,
    /// Requester identity.
    pub identity: String,
    /// Requester role.
    pub role: String,
    /// Declared purpose.
    pub purpose: String,
    /// Table.
    pub table: String,
    /// Class.
    pub class: String,
    /// Record ids.
    pub records: Vec<String>,
    /// `served` or `denied`.
    pub outcome: String,
    /// Why a request was denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// End of a quarantine this request caused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantine_until: Option<u64>,
}

/// The open log.
pub struct ServedLog {
    path: PathBuf,
    file: File,
    /// Bytes of complete entries; a failed append is cut back to this length.
    len: u64,
}

/// Longest line replay accepts. Entries are a few hundred bytes; a longer line means the
/// file was altered, and reading it whole could exhaust memory.
pub const MAX_LINE: usize = 64 * 1024;

/// What replay found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Complete entries, in order.
    pub entries: Vec<ServedEntry>,
    /// Whether a torn last line was skipped.
    pub torn_tail: bool,
    /// Length in bytes of the complete entries (where the next entry must start).
    pub valid_len: u64,
}

impl ServedLog {
    /// Opens (or creates) the log for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let len = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            len,
        })
    }

    /// Opens the log after a replay, cutting a torn tail so that the next entry starts on
    /// a line of its own.
    pub fn open_after(path: &Path, replay: &Replay) -> std::io::Result<Self> {
        let mut log = Self::open(path)?;
        if log.len != replay.valid_len {
            log.file.set_len(replay.valid_len)?;
            log.file.sync_all()?;
            log.len = replay.valid_len;
        }
        Ok(log)
    }

    /// Path of the log.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry and makes it durable.
    pub fn append(&mut self, e: &ServedEntry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let written = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Leave no half entry behind: the next append must start on a clean line.
                let _ = self.file.set_len(self.len);
                Err(e)
            }
        }
    }

    /// Reads every complete entry. A malformed line other than the last is an error: the
    /// log was altered, and the custodian must not start on a history it cannot read.
    pub fn replay(path: &Path) -> std::io::Result<Replay> {
        let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Replay::default()),
            Err(e) => return Err(e),
        };
        if !file.metadata()?.is_file() {
            return Err(invalid(format!(
                "{} is not a regular file; a custodian's log must be a file it owns",
                path.display()
            )));
        }
        let mut out = Replay::default();
        let mut reader = BufReader::new(file);
        let mut pending: Option<(usize, Vec<u8>)> = None;
        let mut n = 0usize;
        loop {
            let mut line = Vec::new();
            let read = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)?;
            if read == 0 {
                break;
            }
            n += 1;
            if line.len() > MAX_LINE {
                return Err(invalid(format!(
                    "{} line {n} is longer than {MAX_LINE} bytes; the log was altered",
                    path.display()
                )));
            }
            // A line is judged once we know whether it is the last one.
            if let Some((at, prev)) = pending.replace((n, line)) {
                out.entries.push(
                    parse(&prev)
                        .map_err(|e| invalid(format!("{} line {at}: {e}", path.display())))?,
                );
                out.valid_len += prev.len() as u64;
            }
        }
        if let Some((_, last)) = pending {
            match parse(&last) {
                Ok(e) if last.ends_with(b"\n") => {
                    out.entries.push(e);
                    out.valid_len += last.len() as u64;
                }
                _ => out.torn_tail = true,
            }
        }
        Ok(out)
    }
}

fn parse(line: &[u8]) -> Result<ServedEntry, serde_json::Error> {
    serde_json::from_slice(line.strip_suffix(b"\n").unwrap_or(line))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> ServedEntry {
        ServedEntry {
            v: 1,
            time: i,
            custodian: 1,
            request_id: format!("r{i}"),
            identity: "clerk".into(),
            role: "clerk".into(),
            purpose: "counter-service".into(),
            table: "persons".into(),
            class: "identity".into(),
            records: vec![format!("p-{i}")],
            outcome: "served".into(),
            reason: None,
            quarantine_until: None,
        }
    }

    #[test]
    fn replay_keeps_complete_entries_and_reports_a_torn_tail() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("served.log");
        let mut log = ServedLog::open(&p).unwrap();
        log.append(&entry(1)).unwrap();
        log.append(&entry(2)).unwrap();
        drop(log);
        let r = ServedLog::replay(&p).unwrap();
        assert_eq!(r.entries, vec![entry(1), entry(2)]);
        assert!(!r.torn_tail);
        // A crash mid-write leaves half a line.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"v\":1,\"ti")
            .unwrap();
        let r = ServedLog::replay(&p).unwrap();
        assert_eq!(r.entries.len(), 2);
        assert!(r.torn_tail);
        // Reopening cuts the torn bytes; the next entry is readable.
        let mut log = ServedLog::open_after(&p, &r).unwrap();
        log.append(&entry(3)).unwrap();
        let r = ServedLog::replay(&p).unwrap();
        assert_eq!(r.entries, vec![entry(1), entry(2), entry(3)]);
        assert!(!r.torn_tail);
    }

    #[test]
    fn an_altered_log_is_refused_not_skipped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("served.log");
        std::fs::write(&p, b"garbage\n{}\n").unwrap();
        let e = ServedLog::replay(&p).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        std::fs::write(&p, vec![b'x'; MAX_LINE + 10]).unwrap();
        assert!(
            ServedLog::replay(&p)
                .unwrap_err()
                .to_string()
                .contains("longer than")
        );
        assert!(
            ServedLog::replay(Path::new("/dev/full"))
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
    }
}
