//! What the readers of tables share: the report of one file's reading ([`FileReport`]),
//! the shape a file was sniffed as, and the rows of a table or of JSON lines held until
//! their columns are known ([`Tabular`]). Text files and spreadsheets (`sheet`) both build
//! rows through it.

use crate::columns::{self, Columns, SAMPLE_ROWS};
use crate::row::LeakRow;
use crate::table;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

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

    /// A read error mid-file (a disk error, a file truncated under us): what was read is
    /// kept, and the report says where it stopped.
    pub(crate) fn stopped(&mut self, e: &std::io::Error) {
        self.skip(
            self.lines + 1,
            &format!("read error, file not read past here: {e}"),
        );
    }

    /// Lines skipped in all.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }
}

pub(crate) enum Shape {
    Ebds,
    Json,
    Table(char),
    Text,
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

    pub(crate) fn new(shape: &Shape) -> Self {
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

    /// Whether the columns are known, so that every further line is read alike.
    pub(crate) fn decided(&self, shape: &Shape) -> bool {
        matches!(shape, Shape::Json | Shape::Table(_)) && self.cols.is_some()
    }

    /// A line of a table whose columns are known, as a row, or why it is skipped.
    pub(crate) fn row(&self, line: &str, file: u32, n: u64) -> Result<LeakRow, String> {
        let Some(cols) = &self.cols else {
            return Err("read before the columns were known".into());
        };
        if self.json {
            let Some(fields) = table::json_fields(line) else {
                return Err("not a JSON object".into());
            };
            let mut cells = vec![String::new(); self.keys.len()];
            for (k, v) in fields {
                if let Some(i) = self.keys.iter().position(|x| *x == k) {
                    cells[i] = v;
                }
            }
            let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
            return Ok(cols.extract(&refs, file, n));
        }
        // Most lines have no quotes and split without copying.
        let owned;
        let refs: Vec<&str> = if line.contains('"') {
            owned = table::split(line, self.delim);
            owned.iter().map(String::as_str).collect()
        } else {
            line.split(self.delim).collect()
        };
        if !self.ragged && refs.len() != self.width {
            return Err(format!(
                "{} fields where the table has {}",
                refs.len(),
                self.width
            ));
        }
        Ok(cols.extract(&refs, file, n))
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

    pub(crate) fn push(
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
