//! Spreadsheets (xlsx, xlsb, ods): every sheet is a table. The container is unpacked once,
//! into nothing, to measure what it really holds before the spreadsheet reader sees it: a
//! zip bomb (or a header that lies about sizes) is refused before it costs memory.
//!
//! xlsx and xlsb sheets are read cell by cell, a row at a time, so that a sheet of 250 MiB
//! costs a row's memory, not a grid's. What a reader must hold whole is bounded on its own:
//! an xlsx's shared strings, and an ods's content (its reader builds the whole grid).

use crate::LeakError;
use crate::row::LeakRow;
use crate::tabular::{FileReport, Tabular};
use calamine::{Data, Reader, Sheets, open_workbook_auto_from_rs};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The most a spreadsheet may unpack to.
pub const MAX_UNPACKED: u64 = 256 << 20;
/// The largest spreadsheet file read.
pub const MAX_PACKED: u64 = 128 << 20;
/// The most entries a spreadsheet container may hold.
const MAX_ENTRIES: usize = 10_000;
/// The most an xlsx's shared strings may unpack to: they are held whole, at about three
/// times their size once parsed.
pub const MAX_SHARED_STRINGS: u64 = 64 << 20;
/// The most an ods's content may unpack to: its reader builds the whole grid, at about
/// five times the content's size.
pub const MAX_ODS_CONTENT: u64 = 48 << 20;
/// The widest row read: a cell far to the right would otherwise make every row that wide.
const MAX_COLUMNS: u32 = 512;

fn refuse(path: &Path, reason: String) -> LeakError {
    LeakError::Unsupported {
        path: path.to_owned(),
        reason,
    }
}

/// Measures the unpacked size of every entry, reading at most [`MAX_UNPACKED`] bytes in all;
/// refuses shared strings or ods content larger than their readers can hold.
fn measure(path: &Path, bytes: &[u8]) -> Result<u64, LeakError> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| refuse(path, format!("a damaged ZIP container (xlsx/ods): {e}")))?;
    if z.len() > MAX_ENTRIES {
        return Err(refuse(
            path,
            format!(
                "a ZIP container of {} entries (more than {MAX_ENTRIES})",
                z.len()
            ),
        ));
    }
    let mut total: u64 = 0;
    for i in 0..z.len() {
        let mut e = z
            .by_index(i)
            .map_err(|e| refuse(path, format!("entry {i} of the ZIP container: {e}")))?;
        let name = e.name().map(|n| n.to_ascii_lowercase()).unwrap_or_default();
        let held = match name.as_str() {
            "xl/sharedstrings.xml" => Some(MAX_SHARED_STRINGS),
            "content.xml" => Some(MAX_ODS_CONTENT),
            _ => None,
        };
        let left = MAX_UNPACKED - total;
        let n = std::io::copy(&mut (&mut e).take(left + 1), &mut std::io::sink())
            .map_err(|e| refuse(path, format!("entry {i} of the ZIP container: {e}")))?;
        if let Some(max) = held
            && n > max
        {
            return Err(refuse(
                path,
                format!(
                    "its {name} unpacks to more than {} MiB, which would be read whole; save the sheet as CSV and scan that",
                    max >> 20
                ),
            ));
        }
        total += n;
        if total > MAX_UNPACKED {
            return Err(refuse(
                path,
                format!(
                    "unpacks to more than {} MiB from {} KiB (a zip bomb?); not read",
                    MAX_UNPACKED >> 20,
                    bytes.len() >> 10
                ),
            ));
        }
    }
    Ok(total)
}

fn cell(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        // Identifiers typed as numbers come back as floats: 123456789.0 is "123456789".
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::DateTime(dt) if dt.is_datetime() => serial_date(dt.as_f64()),
        other => other.to_string(),
    }
}

/// An Excel serial date (days since 1899-12-30, the 1900 system) as `YYYY-MM-DD`.
fn serial_date(serial: f64) -> String {
    let Ok(days) = i32::try_from(serial.floor() as i64) else {
        return String::new();
    };
    // Julian day of 1899-12-30 is 2415019.
    time::Date::from_julian_day(2_415_019 + days)
        .map(|d| format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()))
        .unwrap_or_default()
}

/// Hands on the rows of a sheet whose cells `next` gives one at a time (`from`: where its
/// used range begins); the first error stops it.
fn stream<'a, E: std::fmt::Display>(
    from: (u32, u32),
    mut next: impl FnMut() -> Result<Option<calamine::Cell<calamine::DataRef<'a>>>, E>,
    rows: &mut RowMaker,
    report: &mut FileReport,
    hand_on: &mut dyn FnMut(Vec<String>, u64, &mut FileReport),
) -> Result<(), String> {
    while let Some(c) = next().map_err(|e| e.to_string())? {
        let (row, col) = c.get_position();
        let value = cell(&Data::from(c.get_value().clone()));
        rows.put(row, col, from, value, report, hand_on);
    }
    Ok(())
}

/// A row being gathered from cells that come one at a time, in the sheet's order.
#[derive(Default)]
struct RowMaker {
    row: Option<u32>,
    cells: Vec<String>,
}

impl RowMaker {
    /// One cell at `(row, col)`; `from` is where the sheet's used range begins. A cell of
    /// a new row hands the one gathered so far on.
    fn put(
        &mut self,
        row: u32,
        col: u32,
        from: (u32, u32),
        value: String,
        report: &mut FileReport,
        hand_on: &mut dyn FnMut(Vec<String>, u64, &mut FileReport),
    ) {
        if self.row != Some(row) {
            self.end(report, hand_on);
            self.row = Some(row);
        }
        let at = col.saturating_sub(from.1);
        if at >= MAX_COLUMNS {
            if value.trim().is_empty() {
                return;
            }
            report.skip(
                u64::from(row) + 1,
                &format!("cells beyond column {MAX_COLUMNS} not read"),
            );
            return;
        }
        let at = at as usize;
        if self.cells.len() <= at {
            self.cells.resize(at + 1, String::new());
        }
        self.cells[at] = value;
    }

    /// Hands the row gathered so far on, numbered as the sheet numbers it.
    fn end(
        &mut self,
        report: &mut FileReport,
        hand_on: &mut dyn FnMut(Vec<String>, u64, &mut FileReport),
    ) {
        if let Some(r) = self.row.take() {
            hand_on(std::mem::take(&mut self.cells), u64::from(r) + 1, report);
        }
    }
}

/// Reads every sheet of a spreadsheet; each row's number is its row in its sheet.
pub fn read_sheets(
    path: &Path,
    file: u32,
    each: &mut dyn FnMut(LeakRow),
) -> Result<FileReport, LeakError> {
    let io = |source| LeakError::Io {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_PACKED {
        return Err(refuse(
            path,
            format!(
                "a spreadsheet of {} MiB (more than {} MiB); save it as CSV and scan that",
                len >> 20,
                MAX_PACKED >> 20
            ),
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    measure(path, &bytes)?;
    let mut book = open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).map_err(|e| {
        refuse(
            path,
            format!("not a spreadsheet ribat reads (xlsx, xlsb, ods): {e}"),
        )
    })?;
    let names = book.sheet_names();
    let mut report = FileReport {
        path: path.to_owned(),
        format: format!("spreadsheet ({} sheets)", names.len()),
        encoding: "utf-8",
        columns: String::new(),
        lines: 0,
        rows: 0,
        skipped: BTreeMap::new(),
        skipped_lines: Vec::new(),
    };
    let mut described = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut t = Tabular::cells_only();
        let mut rows = RowMaker::default();
        let mut hand_on = |cells: Vec<String>, n: u64, report: &mut FileReport| {
            if cells.iter().all(|c| c.trim().is_empty()) {
                return;
            }
            report.lines += 1;
            t.push_cells(cells, file, n, report, each);
        };
        let streamed = match &mut book {
            Sheets::Xlsx(x) => Some(
                x.worksheet_cells_reader(name)
                    .map_err(|e| e.to_string())
                    .and_then(|mut r| {
                        let from = r.dimensions().start;
                        stream(from, || r.next_cell(), &mut rows, &mut report, &mut hand_on)
                    }),
            ),
            Sheets::Xlsb(x) => Some(
                x.worksheet_cells_reader(name)
                    .map_err(|e| e.to_string())
                    .and_then(|mut r| {
                        let from = r.dimensions().start;
                        stream(from, || r.next_cell(), &mut rows, &mut report, &mut hand_on)
                    }),
            ),
            _ => None,
        };
        match streamed {
            Some(done) => {
                rows.end(&mut report, &mut hand_on);
                if let Err(e) = done {
                    report.skip(
                        report.lines + 1,
                        &format!("sheet {name:?} not read past here: {e}"),
                    );
                }
            }
            None => match book.worksheet_range_at(i) {
                Some(Ok(range)) => {
                    let top = u64::from(range.start().map_or(0, |(r, _)| r));
                    for (n, row) in range.rows().enumerate() {
                        let cells: Vec<String> =
                            row.iter().take(MAX_COLUMNS as usize).map(cell).collect();
                        hand_on(cells, top + n as u64 + 1, &mut report);
                    }
                }
                Some(Err(e)) => {
                    report.skip(0, &format!("sheet {name:?} cannot be read: {e}"));
                    continue;
                }
                None => continue,
            },
        }
        t.finish(file, &mut report, each);
        described.push(format!("{name}: {}", t.describe()));
    }
    report.columns = described.join("; ");
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn a_zip_bomb_is_refused_before_it_is_read() {
        let zeros = vec![0u8; 64 << 20];
        let names: Vec<String> = (1..=5)
            .map(|i| format!("xl/worksheets/sheet{i}.xml"))
            .collect();
        let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &zeros[..])).collect();
        let bomb = zip_of(&entries);
        assert!(bomb.len() < 2 << 20, "{} bytes packed", bomb.len());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bomb.xlsx");
        std::fs::write(&p, &bomb).unwrap();
        let err = read_sheets(&p, 0, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("zip bomb"), "{err}");
    }

    #[test]
    fn a_zip_that_is_no_spreadsheet_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.xlsx");
        std::fs::write(&p, zip_of(&[("readme.txt", b"hello")])).unwrap();
        let err = read_sheets(&p, 0, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("not a spreadsheet"), "{err}");
        std::fs::write(&p, b"PK\x03\x04 truncated").unwrap();
        let err = read_sheets(&p, 0, &mut |_| {}).unwrap_err().to_string();
        assert!(err.contains("damaged ZIP"), "{err}");
    }

    #[test]
    fn serial_dates_and_numeric_identifiers_read_as_written() {
        assert_eq!(serial_date(29_222.0), "1980-01-02");
        assert_eq!(cell(&Data::Float(123_456_789.0)), "123456789");
        assert_eq!(cell(&Data::Float(5_432.1)), "5432.1");
    }
}
