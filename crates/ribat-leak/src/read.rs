//! One dumped file, whatever its shape, streamed into rows; what could not be used is
//! counted by reason, never fatal past the first bytes.

use crate::LeakError;
use crate::columns::{self, SAMPLE_ROWS};
use crate::ebds;
use crate::encoding::{self, TextEncoding};
use crate::lines::{Line, Lines, MAX_LINE};
use crate::row::LeakRow;
use crate::table;
pub use crate::tabular::FileReport;
use crate::tabular::{Shape, Tabular};
use crate::text::TextReader;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// How files are read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The encoding, when the caller knows it better than the guess.
    pub encoding: Option<TextEncoding>,
    /// The longest line kept.
    pub max_line: usize,
    /// Threads turning lines into rows (tables, JSON lines and e-BDS files; the text of
    /// PDFs is read in one, since a line's layout depends on the lines before it).
    pub threads: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            encoding: None,
            max_line: MAX_LINE,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

const NOT_UTF8: &str = "not valid UTF-8 (read with replacement characters)";

fn too_long(max: usize) -> String {
    format!("line longer than {max} bytes")
}

/// Lines in one batch, and what became of them: rows in order, and skipped lines.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    /// Line number and its bytes in `buf`, or how long a line too long to keep was.
    lines: Vec<(u64, Result<std::ops::Range<usize>, u64>)>,
    rows: Vec<LeakRow>,
    skips: Vec<(u64, String)>,
}

impl Batch {
    const LINES: usize = 4096;
    const BYTES: usize = 4 << 20;

    fn full(&self) -> bool {
        self.lines.len() >= Self::LINES || self.buf.len() >= Self::BYTES
    }

    fn hand_on(self, report: &mut FileReport, each: &mut dyn FnMut(LeakRow)) {
        for (n, why) in &self.skips {
            report.skip(*n, why);
        }
        report.rows += self.rows.len() as u64;
        for r in self.rows {
            each(r);
        }
    }
}

/// How a line becomes a row once the file's shape, encoding and columns are known: the
/// same for every line, so lines can be read on any thread.
struct Fixed<'a> {
    shape: &'a Shape,
    tab: &'a Tabular,
    enc: TextEncoding,
    file: u32,
    max_line: usize,
}

impl Fixed<'_> {
    fn line(&self, n: u64, line: Line<'_>, out: &mut Batch) {
        let bytes = match line {
            Line::TooLong(_) => {
                out.skips.push((n, too_long(self.max_line)));
                return;
            }
            Line::Bytes(b) => b,
        };
        let (decoded, broken) = self.enc.decode(bytes);
        if broken {
            out.skips.push((n, NOT_UTF8.into()));
        }
        if decoded.trim().is_empty() {
            return;
        }
        if matches!(self.shape, Shape::Ebds) {
            if !ebds::is_ebds_line(&decoded) {
                out.skips.push((n, "not a 260-character e-BDS line".into()));
            } else if let Some(r) = ebds::employee_row(&decoded, self.file, n) {
                out.rows.push(r);
            }
            return;
        }
        match self.tab.row(&decoded, self.file, n) {
            Ok(r) => out.rows.push(r),
            Err(why) => out.skips.push((n, why)),
        }
    }

    fn batch(&self, mut b: Batch) -> Batch {
        let lines = std::mem::take(&mut b.lines);
        let buf = std::mem::take(&mut b.buf);
        for (n, l) in &lines {
            let line = match l {
                Ok(r) => Line::Bytes(buf.get(r.clone()).unwrap_or_default()),
                Err(len) => Line::TooLong(*len),
            };
            self.line(*n, line, &mut b);
        }
        b
    }

    /// The rest of the file: this thread reads batches of lines and hands their rows on
    /// in order; `threads` workers turn them into rows. At most a few batches are in
    /// flight, so memory stays bounded however long the file is.
    fn read_rest<R: Read>(
        &self,
        lines: &mut Lines<R>,
        threads: usize,
        report: &mut FileReport,
        each: &mut dyn FnMut(LeakRow),
    ) {
        use std::sync::{Mutex, mpsc};
        let (to_work, work) = mpsc::sync_channel::<(u64, Batch)>(threads * 2);
        let (to_done, done) = mpsc::channel::<(u64, Batch)>();
        let work = Mutex::new(work);
        std::thread::scope(|s| {
            for _ in 0..threads {
                let (work, to_done) = (&work, to_done.clone());
                s.spawn(move || {
                    loop {
                        // The lock is held only to take a batch.
                        let next = work.lock().map(|w| w.recv());
                        let Ok(Ok((i, b))) = next else { break };
                        if to_done.send((i, self.batch(b))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(to_done);
            let mut waiting = std::collections::BTreeMap::new();
            let mut next_out = 0u64;
            let mut hand_on_ready = |waiting: &mut BTreeMap<u64, Batch>,
                                     report: &mut FileReport| {
                while let Some(b) = waiting.remove(&next_out) {
                    b.hand_on(report, each);
                    next_out += 1;
                }
            };
            let mut sent = 0u64;
            let mut stop: Option<std::io::Error> = None;
            let mut b = Batch::default();
            loop {
                let (n, line) = match lines.next_line() {
                    Ok(Some(l)) => l,
                    Ok(None) => break,
                    Err(e) => {
                        stop = Some(e);
                        break;
                    }
                };
                report.lines = n;
                let entry = match line {
                    Line::Bytes(bytes) => {
                        let at = b.buf.len();
                        b.buf.extend_from_slice(bytes);
                        Ok(at..b.buf.len())
                    }
                    Line::TooLong(len) => Err(len),
                };
                b.lines.push((n, entry));
                if b.full() {
                    if to_work.send((sent, std::mem::take(&mut b))).is_err() {
                        break;
                    }
                    sent += 1;
                    while let Ok((i, d)) = done.try_recv() {
                        waiting.insert(i, d);
                    }
                    hand_on_ready(&mut waiting, report);
                }
            }
            // A send fails only when every worker is gone, which is a panic the scope
            // raises when it ends.
            if !b.lines.is_empty() {
                let _ = to_work.send((sent, b));
            }
            drop(to_work);
            for (i, d) in done.iter() {
                waiting.insert(i, d);
                hand_on_ready(&mut waiting, report);
            }
            hand_on_ready(&mut waiting, report);
            if let Some(e) = stop {
                report.stopped(&e);
            }
        });
    }
}

const SNIFF: usize = 64 * 1024;

fn unsupported(path: &Path, reason: &str) -> LeakError {
    LeakError::Unsupported {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Reads `path` (the `file`-th of the scan) and hands each row to `each`.
pub fn read_file(
    path: &Path,
    file: u32,
    opts: &ReadOptions,
    each: &mut dyn FnMut(LeakRow),
) -> Result<FileReport, LeakError> {
    let io = |source| LeakError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    if f.metadata().map_err(io)?.len() == 0 {
        return Err(unsupported(
            path,
            "the file is empty (0 bytes): nothing to scan; check that the dump was copied whole",
        ));
    }
    let mut sample = Vec::with_capacity(SNIFF);
    (&mut f)
        .take(SNIFF as u64)
        .read_to_end(&mut sample)
        .map_err(io)?;
    if sample.starts_with(b"PK\x03\x04") {
        return crate::sheet::read_sheets(path, file, each);
    }
    if sample.starts_with(b"%PDF") {
        return Err(unsupported(
            path,
            "a PDF: extract its text first (e.g. `pdftotext -layout FILE`) and scan the text",
        ));
    }
    if sample.starts_with(b"\xff\xfe") || sample.starts_with(b"\xfe\xff") {
        return Err(unsupported(
            path,
            "UTF-16 text: convert it to UTF-8 first (e.g. `iconv -f UTF-16 -t UTF-8`)",
        ));
    }
    let control = sample
        .iter()
        .filter(|&&b| b == 0 || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c)))
        .count();
    if control * 20 > sample.len().max(1) {
        return Err(unsupported(
            path,
            "binary data, not a text dump (more than 5% control bytes in its first 64 KiB)",
        ));
    }
    let enc = opts.encoding.unwrap_or_else(|| encoding::guess(&sample));
    // A full sample ends inside a line, which would look like a line of its own.
    let whole = if sample.len() == SNIFF {
        sample
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(&sample[..0], |i| &sample[..i])
    } else {
        &sample[..]
    };
    let first_lines: Vec<String> = whole
        .split(|&b| b == b'\n')
        .take(SAMPLE_ROWS)
        .map(|l| {
            enc.decode(l.strip_suffix(b"\r").unwrap_or(l))
                .0
                .into_owned()
        })
        .filter(|l| !l.trim().is_empty())
        .collect();
    let refs: Vec<&str> = first_lines.iter().map(String::as_str).collect();
    let ebds_lines = refs.iter().filter(|l| ebds::is_ebds_line(l)).count();
    let shape = if !refs.is_empty() && ebds_lines * 2 >= refs.len() {
        Shape::Ebds
    } else if refs
        .first()
        .is_some_and(|l| l.trim_start().starts_with('{'))
    {
        Shape::Json
    } else if let Some(d) = table::sniff(&refs[..refs.len().min(50)])
        && (table_identifies(&refs, d) || !text_identifies(&refs))
    {
        // Text extracted from PDFs can split evenly on a comma (decimal commas); a
        // delimiter that yields no identifying column while the text yields rows is not one.
        Shape::Table(d)
    } else {
        Shape::Text
    };
    drop(first_lines);
    let f = std::fs::File::open(path).map_err(io)?;
    let mut lines = Lines::new(f, opts.max_line);
    let mut report = FileReport {
        path: path.to_owned(),
        format: match shape {
            Shape::Ebds => "e-bds".into(),
            Shape::Json => "jsonl".into(),
            Shape::Table('\t') => "tsv".into(),
            Shape::Table(d) => format!("csv({d})"),
            Shape::Text => "text".into(),
        },
        encoding: enc.name(),
        columns: String::new(),
        lines: 0,
        rows: 0,
        skipped: BTreeMap::new(),
        skipped_lines: Vec::new(),
    };
    let mut text = TextReader::default();
    let mut tab = Tabular::new(&shape);
    loop {
        // Once nothing about the file is left to decide, the rest of it is read in
        // batches on worker threads.
        if opts.threads > 1 && !matches!(shape, Shape::Text) && tab.decided(&shape) {
            let fixed = Fixed {
                shape: &shape,
                tab: &tab,
                enc,
                file,
                max_line: opts.max_line,
            };
            fixed.read_rest(&mut lines, opts.threads, &mut report, each);
            break;
        }
        let (n, line) = match lines.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                report.stopped(&e);
                break;
            }
        };
        report.lines = n;
        if matches!(shape, Shape::Ebds) || tab.decided(&shape) {
            let mut out = Batch::default();
            Fixed {
                shape: &shape,
                tab: &tab,
                enc,
                file,
                max_line: opts.max_line,
            }
            .line(n, line, &mut out);
            out.hand_on(&mut report, each);
            continue;
        }
        let bytes = match line {
            Line::TooLong(_) => {
                report.skip(n, &too_long(opts.max_line));
                continue;
            }
            Line::Bytes(b) => b,
        };
        let (decoded, broken) = enc.decode(bytes);
        if broken {
            report.skip(n, NOT_UTF8);
        }
        if decoded.trim().is_empty() {
            continue;
        }
        match shape {
            Shape::Text => {
                if let Some(r) = text.row(&decoded, file, n) {
                    report.rows += 1;
                    each(r);
                }
            }
            _ => tab.push(&decoded, file, n, &mut report, each),
        }
    }
    tab.finish(file, &mut report, each);
    if matches!(shape, Shape::Json | Shape::Table(_)) {
        report.columns = tab.describe();
    }
    Ok(report)
}

fn table_identifies(lines: &[&str], delim: char) -> bool {
    let rows: Vec<Vec<String>> = lines.iter().map(|l| table::split(l, delim)).collect();
    let mut refs: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().map(String::as_str).collect())
        .collect();
    let header = refs
        .first()
        .filter(|f| columns::is_header(f))
        .map(|f| f.iter().map(|c| (*c).to_owned()).collect::<Vec<String>>());
    if header.is_some() {
        refs.remove(0);
    }
    columns::detect(header.as_deref(), &refs).identifying()
}

fn text_identifies(lines: &[&str]) -> bool {
    let mut t = TextReader::default();
    lines
        .iter()
        .enumerate()
        .any(|(i, l)| t.row(l, 0, i as u64).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8], name: &str) -> Result<(FileReport, Vec<LeakRow>), LeakError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let mut rows = Vec::new();
        let r = read_file(&p, 0, &ReadOptions::default(), &mut |r| rows.push(r))?;
        Ok((r, rows))
    }

    #[test]
    fn a_semicolon_table_in_windows_1256_is_read() {
        let text =
            "رقم;الاسم;المبلغ\n123456789;محمد العلوي;5432,10\n123456790;فاطمة بناني;12000,00\n";
        let (bytes, _, _) = encoding_rs::WINDOWS_1256.encode(text);
        let (rep, rows) = read(&bytes, "dump.csv").unwrap();
        assert_eq!(rep.encoding, "windows-1256");
        assert_eq!(rep.format, "csv(;)");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].cnss.as_deref(), Some("123456789"));
        assert_eq!(rows[0].name_ar.as_deref(), Some("محمد العلوي"));
        assert_eq!(rows[1].salary, Some(1_200_000));
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn json_lines_with_a_bad_line_give_a_partial_result() {
        let text = "{\"n\":\"123456789\",\"cin\":\"BE123456\"}\nnot json\n{\"n\":\"123456790\",\"cin\":\"J45678\"}\n";
        let (rep, rows) = read(text.as_bytes(), "dump.jsonl").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rep.skipped.get("not a JSON object"), Some(&1));
        assert_eq!(rows[1].cin.as_deref(), Some("J45678"));
    }

    #[test]
    fn garbage_zip_and_pdf_are_refused_by_name() {
        let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let err = read(&garbage, "x.csv").unwrap_err().to_string();
        assert!(err.contains("binary data"), "{err}");
        let err = read(b"PK\x03\x04rest", "x.xlsx").unwrap_err().to_string();
        assert!(err.contains("damaged ZIP container (xlsx/ods)"), "{err}");
        let err = read(b"%PDF-1.7\n", "x.pdf").unwrap_err().to_string();
        assert!(err.contains("pdftotext"), "{err}");
    }

    #[test]
    fn rows_read_on_worker_threads_are_those_read_on_one() {
        let mut bytes = b"cnss;cin;nom;salaire\n".to_vec();
        for i in 0..20_000u32 {
            match i % 997 {
                5 => bytes.extend_from_slice(b"only;three;fields\n"),
                6 => bytes.extend_from_slice(b"\xff\xfe broken;J45678;X;1\n"),
                7 => bytes.extend(std::iter::repeat_n(b'x', 300).chain(*b"\n")),
                _ => bytes.extend_from_slice(
                    format!(
                        "{};BE{:06};\"ALAMI Sara\";{},50\n",
                        100_000_000 + i,
                        i,
                        3000 + i
                    )
                    .as_bytes(),
                ),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dump.csv");
        std::fs::write(&p, &bytes).unwrap();
        let read = |threads| {
            let mut rows = Vec::new();
            let opts = ReadOptions {
                encoding: Some(TextEncoding::Utf8),
                max_line: 200,
                threads,
            };
            let rep = read_file(&p, 0, &opts, &mut |r| rows.push(r)).unwrap();
            (rep, rows)
        };
        let (one, one_rows) = read(1);
        let (four, four_rows) = read(4);
        assert!(one_rows.len() > 19_000, "{}", one_rows.len());
        assert_eq!(one_rows, four_rows, "same rows, same order");
        assert_eq!(one.rows, four.rows);
        assert_eq!(one.lines, four.lines);
        assert_eq!(one.skipped, four.skipped);
        assert_eq!(
            one.skipped_lines, four.skipped_lines,
            "skips listed in line order"
        );
        assert_eq!(one.skipped.values().sum::<u64>(), 21 * 3);
        assert_eq!(four_rows[1].salary, Some(300_150));
        assert_eq!(four_rows[1].name.as_deref(), Some("ALAMI Sara"));
    }

    #[test]
    fn a_huge_line_is_skipped_and_the_rest_read() {
        let mut bytes = b"cnss,cin\n123456789,BE123456\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'9', 3 << 20));
        bytes.extend_from_slice(b"\n123456790,J45678\n");
        let (rep, rows) = read(&bytes, "x.csv").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rep.skipped_total(), 1);
        assert!(rep.skipped_lines[0].1.contains("longer than"));
    }
}
