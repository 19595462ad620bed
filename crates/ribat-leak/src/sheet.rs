//! Spreadsheets (xlsx, xlsb, ods): every sheet is a table. The container is unpacked once,
//! into nothing, to measure what it really holds before the spreadsheet reader sees it: a
//! zip bomb (or a header that lies about sizes) is refused before it costs memory.

use crate::LeakError;
use crate::read::{FileReport, Tabular};
use crate::row::LeakRow;
use calamine::{Data, Reader, open_workbook_auto_from_rs};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The most a spreadsheet may unpack to.
pub const MAX_UNPACKED: u64 = 256 << 20;
/// The largest spreadsheet file read.
pub const MAX_PACKED: u64 = 128 << 20;
/// The most entries a spreadsheet container may hold.
const MAX_ENTRIES: usize = 10_000;

fn refuse(path: &Path, reason: String) -> LeakError {
    LeakError::Unsupported {
        path: path.to_owned(),
        reason,
    }
}

/// Measures the unpacked size of every entry, reading at most [`MAX_UNPACKED`] bytes in all.
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
        let left = MAX_UNPACKED - total;
        let n = std::io::copy(&mut (&mut e).take(left + 1), &mut std::io::sink())
            .map_err(|e| refuse(path, format!("entry {i} of the ZIP container: {e}")))?;
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
        let range = match book.worksheet_range_at(i) {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                report.skip(0, &format!("sheet {name:?} cannot be read: {e}"));
                continue;
            }
            None => continue,
        };
        let mut t = Tabular::cells_only();
        for (n, row) in range.rows().enumerate() {
            let cells: Vec<String> = row.iter().map(cell).collect();
            if cells.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            report.lines += 1;
            t.push_cells(cells, file, n as u64 + 1, &mut report, each);
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
