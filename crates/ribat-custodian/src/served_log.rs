//! The custodian's own append-only log of what it served and refused (I2).
//!
//! Since the third session it is a Merkle log (`ribat_audit::Log`) in `DIR/served/`: the
//! same journal, group commit and tree as the node's audit log, so that a custodian's
//! answers are durable before they leave without one fsync per answer, and its history
//! can be proven. An older `DIR/served.log` (JSON lines) is carried over once at open and
//! kept as `served.log.migrated`. Each entry, format version 1:
//!
//! ```json
//! {"v":1,"time":1763860000,"custodian":1,"request_id":"…","identity":"clerk.0042",
//!  "role":"clerk","purpose":"counter-service","table":"persons","class":"identity",
//!  "records":["p-000017"],"outcome":"served"}
//! ```
//!
//! `outcome` is `served`, `denied` or `failed`; a denial carries `reason`, and a quarantine
//! it caused carries `quarantine_until`. Records are opaque ids, never personal data.
//! Every entry is durable before the custodian answers, so an answer that left the
//! custodian is always in its log; an append that was never acknowledged belongs to an
//! answer that was never sent, and the journal cuts it at open.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

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

/// Directory of the log inside a custodian's directory.
pub const SERVED_DIR: &str = "served";
/// Most record ids in one entry (a batch of 10,000 is ten entries, well under the log's
/// entry size limit).
pub const RECORDS_PER_ENTRY: usize = 1_000;
/// Bytes one entry is kept under, well below the log's entry limit (64 KiB).
const ENTRY_BUDGET: usize = 60_000;
/// The JSON-lines log of earlier versions, migrated at open.
pub const LEGACY_FILE: &str = "served.log";

/// The open log, appended to by many request threads at once (group commit).
pub struct ServedLog {
    log: ribat_audit::Log,
}

impl std::fmt::Debug for ServedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServedLog({})", self.log.dir().display())
    }
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

impl ServedLog {
    /// Opens (or creates) the log of the custodian in `dir`, carrying over a JSON-lines
    /// log of an earlier version, and returns every entry it holds, in order.
    pub fn open_dir(dir: &Path, custodian: u32) -> std::io::Result<(Self, Vec<ServedEntry>)> {
        let (log, _) = ribat_audit::Log::open(
            &dir.join(SERVED_DIR),
            &format!("custodian-{custodian}/served"),
        )
        .map_err(std::io::Error::other)?;
        let legacy = dir.join(LEGACY_FILE);
        if log.size().map_err(std::io::Error::other)? == 0 && legacy.exists() {
            let old = Self::replay(&legacy)?;
            let lines = old
                .entries
                .iter()
                .map(serde_json::to_vec)
                .collect::<Result<Vec<_>, _>>()
                .map_err(std::io::Error::other)?;
            let refs: Vec<&[u8]> = lines.iter().map(Vec::as_slice).collect();
            if !refs.is_empty() {
                log.append_all(&refs).map_err(std::io::Error::other)?;
            }
            std::fs::rename(&legacy, dir.join(format!("{LEGACY_FILE}.migrated")))?;
        }
        let me = Self { log };
        let entries = me.entries()?;
        Ok((me, entries))
    }

    /// Every entry, in order.
    pub fn entries(&self) -> std::io::Result<Vec<ServedEntry>> {
        let n = self.log.size().map_err(std::io::Error::other)?;
        (0..n)
            .map(|i| {
                let bytes = self.log.entry(i).map_err(std::io::Error::other)?;
                parse(&bytes).map_err(|e| invalid(format!("served entry {i}: {e}")))
            })
            .collect()
    }

    /// Reads the entries of a custodian's log without opening it for writing (another
    /// part of the process, or another process, may hold it open).
    pub fn read(dir: &Path) -> std::io::Result<Vec<ServedEntry>> {
        let path = dir.join(SERVED_DIR).join(ribat_audit::log::JOURNAL);
        let mut out = Vec::new();
        let mut bad = None;
        ribat_audit::journal::scan(&path, 0, |i, entry, _| {
            match parse(entry) {
                Ok(e) => out.push(e),
                Err(e) => bad = bad.take().or(Some(format!("served entry {i}: {e}"))),
            }
            Ok(())
        })
        .map_err(|d| invalid(format!("{}: {d}", path.display())))?;
        match bad {
            Some(m) => Err(invalid(m)),
            None => Ok(out),
        }
    }

    /// Where the log lives.
    pub fn dir(&self) -> &Path {
        self.log.dir()
    }

    /// Appends one request's entry; it is durable when this returns. A batch naming many
    /// records is written as several entries of at most [`RECORDS_PER_ENTRY`] records, in
    /// one group (all durable or none acknowledged). After a failed write or sync every
    /// later append fails too, until the custodian is reopened.
    pub fn append(&self, e: &ServedEntry) -> std::io::Result<()> {
        let whole = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        // Most requests fit one entry: written as they are, with no copy.
        let parts = if e.records.len() <= RECORDS_PER_ENTRY && whole.len() <= ENTRY_BUDGET {
            vec![whole]
        } else {
            split(e)?
        };
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        self.log
            .append_all(&refs)
            .map(|_| ())
            .map_err(std::io::Error::other)
    }
}

/// A large batch as several entries, split by count and by size: record ids differ in
/// length (a declaration's names its person and its employer), and each entry must stay
/// under the log's limit.
fn split(e: &ServedEntry) -> std::io::Result<Vec<Vec<u8>>> {
    let mut part = e.clone();
    part.records.clear();
    let overhead = serde_json::to_vec(&part)
        .map_err(std::io::Error::other)?
        .len();
    let mut parts = Vec::new();
    let mut bytes = overhead;
    for id in &e.records {
        // A JSON string of an id, its quotes and a comma: plain ASCII is written as it
        // is, anything else may be escaped up to six-fold.
        let plain = id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        let cost = if plain { id.len() } else { id.len() * 6 } + 3;
        if !part.records.is_empty()
            && (part.records.len() >= RECORDS_PER_ENTRY || bytes + cost > ENTRY_BUDGET)
        {
            parts.push(serde_json::to_vec(&part).map_err(std::io::Error::other)?);
            part.records.clear();
            bytes = overhead;
        }
        part.records.push(id.clone());
        bytes += cost;
    }
    if !part.records.is_empty() {
        parts.push(serde_json::to_vec(&part).map_err(std::io::Error::other)?);
    }
    Ok(parts)
}

/// Longest line the legacy reader accepts. Entries are a few hundred bytes; a longer line
/// means the file was altered, and reading it whole could exhaust memory.
pub const MAX_LINE: usize = 64 * 1024;

/// What reading a legacy log found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Complete entries, in order.
    pub entries: Vec<ServedEntry>,
    /// Whether a torn last line was skipped.
    pub torn_tail: bool,
    /// Length in bytes of the complete entries.
    pub valid_len: u64,
}

impl ServedLog {
    /// Reads every complete entry of a JSON-lines log of an earlier version. A malformed
    /// line other than the last is an error: the log was altered, and the custodian must
    /// not start on a history it cannot read.
    pub fn replay(path: &Path) -> std::io::Result<Replay> {
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
    use std::fs::OpenOptions;
    use std::io::Write;

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

    /// A JSON-lines log as earlier versions wrote it.
    fn write_legacy(path: &Path, entries: &[ServedEntry]) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        for e in entries {
            let mut line = serde_json::to_vec(e).unwrap();
            line.push(b'\n');
            f.write_all(&line).unwrap();
        }
    }

    #[test]
    fn replay_keeps_complete_entries_and_reports_a_torn_tail() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("served.log");
        write_legacy(&p, &[entry(1), entry(2)]);
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
    }

    #[test]
    fn a_legacy_log_is_carried_over_once_and_the_merkle_log_goes_on() {
        let d = tempfile::tempdir().unwrap();
        write_legacy(&d.path().join(LEGACY_FILE), &[entry(1), entry(2)]);
        let (log, entries) = ServedLog::open_dir(d.path(), 1).unwrap();
        assert_eq!(entries, vec![entry(1), entry(2)]);
        assert!(!d.path().join(LEGACY_FILE).exists());
        assert!(d.path().join("served.log.migrated").exists());
        log.append(&entry(3)).unwrap();
        assert_eq!(
            ServedLog::read(d.path()).unwrap().len(),
            3,
            "readable while open"
        );
        drop(log);
        let (_, entries) = ServedLog::open_dir(d.path(), 1).unwrap();
        assert_eq!(entries, vec![entry(1), entry(2), entry(3)]);
    }

    #[test]
    fn a_large_batch_is_split_into_entries_that_replay_to_the_same_records() {
        let d = tempfile::tempdir().unwrap();
        let (log, _) = ServedLog::open_dir(d.path(), 1).unwrap();
        let mut big = entry(7);
        big.records = (0..2_500).map(|i| format!("d-202501-p-{i:032}")).collect();
        log.append(&big).unwrap();
        let back = ServedLog::read(d.path()).unwrap();
        assert_eq!(back.len(), 3);
        let records: Vec<String> = back.iter().flat_map(|e| e.records.clone()).collect();
        assert_eq!(records, big.records);
        assert!(back.iter().all(|e| e.request_id == big.request_id));
    }

    #[test]
    fn long_record_ids_are_split_by_size_under_the_entry_limit() {
        let d = tempfile::tempdir().unwrap();
        let (log, _) = ServedLog::open_dir(d.path(), 1).unwrap();
        let mut big = entry(8);
        // Declaration ids name the person and the employer: 81 characters each.
        big.records = (0..5_000)
            .map(|i| format!("d-202501-p-{i:032}-e-{:032}", i % 7))
            .collect();
        log.append(&big).unwrap();
        let back = ServedLog::read(d.path()).unwrap();
        let records: Vec<String> = back.iter().flat_map(|e| e.records.clone()).collect();
        assert_eq!(records, big.records);
        assert!(back.len() >= 7, "{} entries", back.len());
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
