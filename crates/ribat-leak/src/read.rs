//! One dumped file, whatever its shape, streamed into rows; what could not be used is
//! counted by reason, never fatal past the first bytes.

use crate::LeakError;
use crate::columns::{self, Columns, SAMPLE_ROWS};
use crate::ebds;
use crate::encoding::{self, TextEncoding};
use crate::lines::{Line, Lines, MAX_LINE};
use crate::row::LeakRow;
use crate::table;
use crate::text::TextReader;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// How files are read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The encoding, when the caller knows it better than the guess.
    pub encoding: Option<TextEncoding>,
    /// The longest line kept.
    pub max_line: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            encoding: None,
            max_line: MAX_LINE,
        }
    }
}

/// What reading one file found and skipped.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// `csv(;)`, `jsonl`, `e-bds`, `text`.
    pub format: String,
    /// The encoding read with.
    pub encoding: &'static str,
    /// The columns found (tables only).
    pub columns: String,
    /// Lines read.
    pub lines: u64,
    /// Rows handed on.
    pub rows: u64,
    /// Lines skipped, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// The first skipped lines, with their reason (no content: it is personal data).
    pub skipped_lines: Vec<(u64, String)>,
}

impl FileReport {
    pub(crate) fn skip(&mut self, line: u64, reason: &str) {
        *self.skipped.entry(reason.to_owned()).or_insert(0) += 1;
        if self.skipped_lines.len() < 20 {
            self.skipped_lines.push((line, reason.to_owned()));
        }
    }

    /// Lines skipped in all.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

enum Shape {
    Ebds,
    Json,
    Table(char),
    Text,
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
        let (n, line) = match lines.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                // A read error mid-file (a disk error, a file truncated under us): keep
                // what was read and say where it stopped.
                report.skip(
                    report.lines + 1,
                    &format!("read error, file not read past here: {e}"),
                );
                break;
            }
        };
        report.lines = n;
        let bytes = match line {
            Line::TooLong(_) => {
                report.skip(n, &format!("line longer than {} bytes", opts.max_line));
                continue;
            }
            Line::Bytes(b) => b,
        };
        let (decoded, broken) = enc.decode(bytes);
        if broken {
            report.skip(n, "not valid UTF-8 (read with replacement characters)");
        }
        if decoded.trim().is_empty() {
            continue;
        }
        match shape {
            Shape::Ebds => {
                if !ebds::is_ebds_line(&decoded) {
                    report.skip(n, "not a 260-character e-BDS line");
                } else if let Some(r) = ebds::employee_row(&decoded, file, n) {
                    report.rows += 1;
                    each(r);
                }
            }
            Shape::Text => {
                if let Some(r) = text.row(&decoded, file, n) {
                    report.rows += 1;
                    each(r);
                }
            }
            Shape::Json | Shape::Table(_) => {
                tab.push(&decoded, file, n, &mut report, each);
            }
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

/// Tables and JSON lines: the first rows are held until the columns are known.
pub(crate) struct Tabular {
    json: bool,
    delim: char,
    held: Vec<(u64, Vec<String>)>,
    keys: Vec<String>,
    header: Option<Vec<String>>,
    cols: Option<Columns>,
    width: usize,
    ragged: bool,
}

impl Tabular {
    /// A table whose rows arrive already split (spreadsheets): rows of another width
    /// than most are read, not skipped, since empty trailing cells are not stored.
    pub(crate) fn cells_only() -> Self {
        let mut t = Self::new(&Shape::Json);
        t.json = false;
        t.ragged = true;
        t
    }

    fn new(shape: &Shape) -> Self {
        Self {
            json: matches!(shape, Shape::Json),
            delim: match shape {
                Shape::Table(d) => *d,
                _ => ',',
            },
            held: Vec::new(),
            keys: Vec::new(),
            header: None,
            cols: None,
            width: 0,
            ragged: false,
        }
    }

    pub(crate) fn describe(&self) -> String {
        self.cols
            .as_ref()
            .map_or_else(|| "no rows".into(), |c| c.describe(self.header.as_deref()))
    }

    fn cells(&mut self, line: &str, n: u64, report: &mut FileReport) -> Option<Vec<String>> {
        if !self.json {
            return Some(table::split(line, self.delim));
        }
        let Some(fields) = table::json_fields(line) else {
            report.skip(n, "not a JSON object");
            return None;
        };
        let mut cells = vec![String::new(); self.keys.len()];
        for (k, v) in fields {
            match self.keys.iter().position(|x| *x == k) {
                Some(i) => cells[i] = v,
                // Keys first seen after the sample get no column; enough keys are seen
                // in the first rows of any real dump.
                None if self.cols.is_none() && self.keys.len() < 256 => {
                    self.keys.push(k);
                    cells.push(v);
                }
                None => {}
            }
        }
        Some(cells)
    }

    fn push(
        &mut self,
        line: &str,
        file: u32,
        n: u64,
        report: &mut FileReport,
        each: &mut dyn FnMut(LeakRow),
    ) {
        if let Some(cells) = self.cells(line, n, report) {
            self.push_cells(cells, file, n, report, each);
        }
    }

    /// One row of cells (a table line once split, or a spreadsheet row).
    pub(crate) fn push_cells(
        &mut self,
        cells: Vec<String>,
        file: u32,
        n: u64,
        report: &mut FileReport,
        each: &mut dyn FnMut(LeakRow),
    ) {
        match &self.cols {
            None => {
                self.held.push((n, cells));
                if self.held.len() > SAMPLE_ROWS {
                    self.decide();
                    self.release(file, report, each);
                }
            }
            Some(_) => self.emit(n, &cells, file, report, each),
        }
    }

    fn decide(&mut self) {
        if self.json {
            self.header = Some(self.keys.clone());
        } else if let Some((_, first)) = self.held.first() {
            let refs: Vec<&str> = first.iter().map(String::as_str).collect();
            if columns::is_header(&refs) {
                self.header = Some(first.clone());
                self.held.remove(0);
            }
        }
        let sample: Vec<Vec<&str>> = self
            .held
            .iter()
            .map(|(_, c)| c.iter().map(String::as_str).collect())
            .collect();
        let mut widths = std::collections::HashMap::new();
        for c in &sample {
            *widths.entry(c.len()).or_insert(0usize) += 1;
        }
        self.width = widths
            .into_iter()
            .max_by_key(|(w, n)| (*n, *w))
            .map_or(0, |(w, _)| w);
        self.cols = Some(columns::detect(self.header.as_deref(), &sample));
    }

    fn release(&mut self, file: u32, report: &mut FileReport, each: &mut dyn FnMut(LeakRow)) {
        for (n, cells) in std::mem::take(&mut self.held) {
            self.emit(n, &cells, file, report, each);
        }
    }

    fn emit(
        &self,
        n: u64,
        cells: &[String],
        file: u32,
        report: &mut FileReport,
        each: &mut dyn FnMut(LeakRow),
    ) {
        let Some(cols) = &self.cols else {
            return;
        };
        if !self.json && !self.ragged && cells.len() != self.width {
            report.skip(
                n,
                &format!("{} fields where the table has {}", cells.len(), self.width),
            );
            return;
        }
        let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
        report.rows += 1;
        each(cols.extract(&refs, file, n));
    }

    pub(crate) fn finish(
        &mut self,
        file: u32,
        report: &mut FileReport,
        each: &mut dyn FnMut(LeakRow),
    ) {
        if self.cols.is_none() && !self.held.is_empty() {
            self.decide();
            self.release(file, report, each);
        }
    }
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
