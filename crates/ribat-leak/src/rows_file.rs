//! `rows.jsonl`, the scan's verdicts row by row, written as the scan goes: a line for each
//! row that names a person (genuine, older, altered, honey, canary), and one line for each
//! run of consecutive rows of a file that name nobody (fabricated or unmatched). Five
//! million lines of another dataset make one line, not five million: the file grows with
//! what the scan has to say, not with the dump.
//!
//! A row line is the [`Verdict`] as JSON (`file`, `line`, `class`, then what is known:
//! `person`, `period`, `version`, `fields`, `recipient`, and the flags that are set). A run
//! line is `{"file":F,"line":FIRST,"last_line":LAST,"rows":N,"class":C}`, its rows all of
//! class C and no others of the file between FIRST and LAST.

use crate::classify::{Class, Verdict};
use serde::Serialize;
use std::io::Write;

/// Consecutive rows of one file that name nobody, all of one class.
#[derive(Debug, Serialize)]
struct Run {
    file: u32,
    line: u64,
    last_line: u64,
    rows: u64,
    class: &'static str,
}

/// Writes verdicts to `out` as they come.
pub struct RowsWriter<W: Write> {
    out: W,
    run: Option<Run>,
    lines: u64,
}

impl<W: Write> RowsWriter<W> {
    /// A writer into `out` (buffer it: a line is a few small writes).
    pub fn new(out: W) -> Self {
        Self {
            out,
            run: None,
            lines: 0,
        }
    }

    /// One more verdict, in file and line order.
    pub fn push(&mut self, v: &Verdict) -> std::io::Result<()> {
        let nobody = matches!(v.class, Class::Fabricated | Class::Unmatched)
            && v.person.is_none()
            && !v.control_sum_fails;
        if nobody {
            let class = v.class.label();
            if let Some(r) = &mut self.run
                && r.file == v.file
                && r.class == class
                && r.last_line < v.line
            {
                r.last_line = v.line;
                r.rows += 1;
                return Ok(());
            }
            self.end_run()?;
            self.run = Some(Run {
                file: v.file,
                line: v.line,
                last_line: v.line,
                rows: 1,
                class,
            });
            return Ok(());
        }
        self.end_run()?;
        self.line(v)
    }

    /// Writes what is pending and returns the output, flushed, with the number of lines
    /// written.
    pub fn finish(mut self) -> std::io::Result<(W, u64)> {
        self.end_run()?;
        self.out.flush()?;
        Ok((self.out, self.lines))
    }

    fn end_run(&mut self) -> std::io::Result<()> {
        match self.run.take() {
            Some(r) => self.line(&r),
            None => Ok(()),
        }
    }

    fn line(&mut self, v: &impl Serialize) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, v)?;
        self.out.write_all(b"\n")?;
        self.lines += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(file: u32, line: u64, class: Class, person: Option<&str>) -> Verdict {
        Verdict {
            file,
            line,
            class,
            person: person.map(str::to_owned),
            slot: None,
            period: None,
            rounded: false,
            unverified_salary: false,
            control_sum_fails: false,
        }
    }

    fn written(vs: &[Verdict]) -> Vec<serde_json::Value> {
        let mut w = RowsWriter::new(Vec::new());
        for v in vs {
            w.push(v).unwrap();
        }
        let (bytes, n) = w.finish().unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len() as u64, n);
        lines
    }

    #[test]
    fn a_million_rows_naming_nobody_make_one_line() {
        let vs: Vec<Verdict> = (1..=1_000_000)
            .map(|l| verdict(0, l, Class::Fabricated, None))
            .collect();
        let lines = written(&vs);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["rows"], 1_000_000);
        assert_eq!(lines[0]["line"], 1);
        assert_eq!(lines[0]["last_line"], 1_000_000);
        assert_eq!(lines[0]["class"], "fabricated");
    }

    #[test]
    fn every_row_naming_a_person_keeps_its_line_and_runs_break_around_it() {
        let vs = vec![
            verdict(0, 1, Class::Unmatched, None),
            verdict(0, 2, Class::Unmatched, None),
            verdict(0, 3, Class::GenuineCurrent, Some("p-1")),
            verdict(0, 4, Class::Unmatched, None),
            verdict(0, 5, Class::Fabricated, None),
            verdict(1, 1, Class::Fabricated, None),
            verdict(1, 2, Class::Honey, Some("p-h")),
        ];
        let lines = written(&vs);
        let shape: Vec<(String, u64)> = lines
            .iter()
            .map(|l| {
                (
                    l["class"].as_str().unwrap().to_owned(),
                    l["rows"].as_u64().unwrap_or(1),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                ("unmatched".into(), 2),
                ("genuine-current".into(), 1),
                ("unmatched".into(), 1),
                ("fabricated".into(), 1),
                ("fabricated".into(), 1),
                ("honey".into(), 1),
            ]
        );
        assert_eq!(lines[1]["person"], "p-1");
        assert_eq!(lines[1]["line"], 3);
        // Flags that are not set, and values not known, are left out.
        assert!(lines[1].get("rounded").is_none() && lines[1].get("period").is_none());
    }

    #[test]
    fn a_row_with_a_failed_control_sum_is_never_folded_into_a_run() {
        let mut bad = verdict(0, 2, Class::Fabricated, None);
        bad.control_sum_fails = true;
        let vs = vec![
            verdict(0, 1, Class::Fabricated, None),
            bad,
            verdict(0, 3, Class::Fabricated, None),
        ];
        let lines = written(&vs);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["control_sum_fails"], true);
    }
}
