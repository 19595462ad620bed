//! What a scan found, for the security team: counts, the classification breakdown, the
//! attribution, as JSON and as a Markdown report. No leaked value appears in either; persons
//! appear only as opaque record ids, and only in the JSON.

use crate::attribute::Candidate;
use crate::classify::{Class, Verdict};
use crate::read::FileReport;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The time window of a leak.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Window {
    /// The latest declaration month any genuine row shows.
    pub latest_period_in_dump: Option<String>,
    /// The latest month the vault holds for those persons: when later than the dump's, the
    /// data was taken before that month was declared.
    pub latest_period_in_vault: Option<String>,
    /// First and last read of a leaked person by the leading candidate, ms since epoch.
    pub reads_from_ms: Option<u64>,
    /// See `reads_from_ms`.
    pub reads_to_ms: Option<u64>,
}

/// A scan's summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Files read.
    pub files: Vec<FileReport>,
    /// Files that could not be read, with why.
    pub refused: Vec<(String, String)>,
    /// Rows classified.
    pub rows: u64,
    /// Rows per class.
    pub classes: BTreeMap<String, u64>,
    /// Rows of the fund's data.
    pub ours: u64,
    /// Distinct real persons affected (genuine and altered rows; not honey or canaries).
    pub affected_persons: u64,
    /// How often each field was found altered.
    pub altered_fields: BTreeMap<String, u64>,
    /// Genuine rows by declaration month.
    pub months: BTreeMap<String, u64>,
    /// Rows whose salary was rounded by whoever made the dump.
    pub rounded_salaries: u64,
    /// Rows whose salary could not be checked (no declaration digests).
    pub unverified_salaries: u64,
    /// e-BDS lines whose control sum fails.
    pub control_sum_failures: u64,
    /// Honey persons in the dump (record ids) and who read them.
    pub honey: Vec<(String, Vec<String>)>,
    /// Export canaries found, per recipient.
    pub canaries: BTreeMap<String, u64>,
    /// Identities whose reads cover the leaked persons.
    pub candidates: Vec<Candidate>,
    /// When.
    pub window: Window,
    /// Seconds the scan took.
    pub seconds: f64,
}

/// The counts of a scan, verdict by verdict: a scan adds each block of rows as it is
/// classified, and nothing of the verdicts is kept but these counts (and one bit per
/// person slot, or the record id where a verdict has none).
#[derive(Debug, Default)]
pub struct Tally {
    rows: u64,
    classes: BTreeMap<String, u64>,
    ours: u64,
    altered_fields: BTreeMap<String, u64>,
    months: BTreeMap<u32, u64>,
    rounded_salaries: u64,
    unverified_salaries: u64,
    control_sum_failures: u64,
    canaries: BTreeMap<String, u64>,
    // Persons by their slot in the scan (one bit each): slots are the scan's for its whole
    // length, so a person named in two blocks is one bit.
    slots: Vec<u64>,
    by_id: crate::mac_hash::MacSet<String>,
}

impl Tally {
    /// Counts one more verdict.
    pub fn add(&mut self, v: &Verdict) {
        self.rows += 1;
        bump(&mut self.classes, v.class.label());
        self.ours += u64::from(v.class.ours());
        self.rounded_salaries += u64::from(v.rounded);
        self.unverified_salaries += u64::from(v.unverified_salary);
        self.control_sum_failures += u64::from(v.control_sum_fails);
        match &v.class {
            Class::Altered { fields } => {
                for f in fields {
                    bump(&mut self.altered_fields, f);
                }
            }
            Class::Canary { recipient } => bump(&mut self.canaries, recipient),
            _ => {}
        }
        if matches!(v.class, Class::GenuineCurrent | Class::GenuineOlder { .. })
            && let Some(p) = v.period
        {
            *self.months.entry(p).or_insert(0) += 1;
        }
        if !matches!(
            v.class,
            Class::GenuineCurrent | Class::GenuineOlder { .. } | Class::Altered { .. }
        ) {
            return;
        }
        match (v.slot, &v.person) {
            (Some(slot), _) => {
                let (word, bit) = (slot as usize / 64, slot % 64);
                if self.slots.len() <= word {
                    self.slots.resize(word + 1, 0);
                }
                self.slots[word] |= 1 << bit;
            }
            (None, Some(p)) => {
                if !self.by_id.contains(p.as_str()) {
                    self.by_id.insert(p.clone());
                }
            }
            (None, None) => {}
        }
    }

    /// Rows counted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }
}

impl Summary {
    /// Counts the verdicts.
    pub fn new(
        files: Vec<FileReport>,
        refused: Vec<(String, String)>,
        verdicts: &[Verdict],
    ) -> Self {
        let mut t = Tally::default();
        for v in verdicts {
            t.add(v);
        }
        Self::of(files, refused, t)
    }

    /// The summary of what `tally` counted.
    pub fn of(files: Vec<FileReport>, refused: Vec<(String, String)>, tally: Tally) -> Self {
        let affected_persons = tally
            .slots
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum::<u64>()
            + tally.by_id.len() as u64;
        let months: BTreeMap<String, u64> = tally
            .months
            .into_iter()
            .map(|(p, n)| (p.to_string(), n))
            .collect();
        Self {
            files,
            refused,
            rows: tally.rows,
            classes: tally.classes,
            ours: tally.ours,
            affected_persons,
            altered_fields: tally.altered_fields,
            window: Window {
                latest_period_in_dump: months.keys().next_back().cloned(),
                ..Window::default()
            },
            months,
            rounded_salaries: tally.rounded_salaries,
            unverified_salaries: tally.unverified_salaries,
            control_sum_failures: tally.control_sum_failures,
            honey: Vec::new(),
            canaries: tally.canaries,
            candidates: Vec::new(),
            seconds: 0.0,
        }
    }

    /// The sentence a reader wants first, on a terminal and atop the report.
    pub fn headline(&self) -> String {
        format!(
            "{} rows read from {} files ({} refused) in {:.1} s: {} are the fund's data, naming {} real persons",
            self.rows,
            self.files.len(),
            self.refused.len(),
            self.seconds,
            self.ours,
            self.affected_persons
        )
    }

    /// The report for the security team, in Markdown.
    pub fn to_markdown(&self) -> String {
        let mut m = String::new();
        let _ = writeln!(m, "# Leak scan report\n");
        let _ = writeln!(m, "{}.\n", self.headline());
        let _ = writeln!(m, "## Classification\n\n| class | rows |\n|---|---:|");
        for (k, v) in &self.classes {
            let _ = writeln!(m, "| {k} | {v} |");
        }
        if !self.altered_fields.is_empty() {
            let _ = writeln!(m, "\nAltered fields: {}", join_counts(&self.altered_fields));
        }
        if !self.months.is_empty() {
            let _ = writeln!(
                m,
                "\nGenuine rows by declaration month: {}",
                join_counts(&self.months)
            );
        }
        let _ = writeln!(
            m,
            "\nSalaries rounded by the dump's maker: {}. Salaries that could not be checked (no declaration digests): {}. e-BDS lines failing their control sum: {}.",
            self.rounded_salaries, self.unverified_salaries, self.control_sum_failures
        );
        let _ = writeln!(m, "\n## Attribution\n");
        if !self.canaries.is_empty() {
            let _ = writeln!(
                m,
                "Export canaries name the source outright: {}.\n",
                join_counts(&self.canaries)
            );
        }
        for (h, readers) in &self.honey {
            let _ = writeln!(
                m,
                "Honey record `{h}` is in the dump; nobody legitimate reads it. Read by: {}.",
                if readers.is_empty() {
                    "nobody in this node's audit log".into()
                } else {
                    readers.join(", ")
                }
            );
        }
        if self.candidates.is_empty() {
            let _ = writeln!(
                m,
                "No identity in this node's audit log read the leaked persons."
            );
        } else {
            let _ = writeln!(
                m,
                "| identity | role | leaked persons it read | persons it read in all | chance by luck (≤) | first read | last read |\n|---|---|---:|---:|---|---|---|"
            );
            for c in &self.candidates {
                let _ = writeln!(
                    m,
                    "| {} | {} | {} of {} | {} | 1e{:.0} | {} | {} |",
                    c.identity,
                    c.role,
                    c.covered,
                    c.of,
                    c.read_in_all,
                    c.chance_log10,
                    c.first_ms,
                    c.last_ms
                );
            }
        }
        let _ = writeln!(m, "\n## Time window\n");
        match (
            &self.window.latest_period_in_dump,
            &self.window.latest_period_in_vault,
        ) {
            (Some(d), Some(v)) if d < v => {
                let _ = writeln!(
                    m,
                    "The dump's newest month is {d}; the vault holds {v} for these persons: it was taken after {d} and before {v} was declared."
                );
            }
            (Some(d), _) => {
                let _ = writeln!(
                    m,
                    "The dump's newest month is {d}, the newest the vault holds for these persons: taken after {d} was declared."
                );
            }
            _ => {
                let _ = writeln!(m, "The dump carries no declaration month.");
            }
        }
        let _ = writeln!(
            m,
            "\n## Files\n\n| file | format | encoding | rows | skipped | columns |\n|---|---|---|---:|---:|---|"
        );
        for f in &self.files {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} |",
                f.path.display(),
                f.format,
                f.encoding,
                f.rows,
                f.skipped_total(),
                f.columns
            );
            for (reason, n) in &f.skipped {
                let _ = writeln!(m, "|  | skipped: {reason} |  |  | {n} |  |");
            }
        }
        for (f, why) in &self.refused {
            let _ = writeln!(m, "\nRefused: {f}: {why}");
        }
        m
    }
}

fn join_counts(m: &BTreeMap<String, u64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One more under `key`.
fn bump(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_owned(), 1);
        }
    }
}
