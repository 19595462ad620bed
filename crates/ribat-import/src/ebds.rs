//! The DAMANCOM e-BDS salary declaration file: writer and validating parser.
//!
//! One file per employer and period, ASCII, lines of exactly 260 characters separated by
//! LF, named `DS_<affiliation>_<MMAAAA>.txt`. Numeric fields are right-aligned and
//! zero-padded; text fields are left-aligned and space-padded; amounts are in centimes.
//!
//! ```text
//!   B00 transfer header ─ B01 employer ─ B02* employees ─ B03 totals of B02
//!       ─ B04+ entrants (one blank line if none) ─ B05 totals of B04 ─ B06 grand totals
//! ```
//!
//! Field widths and control sums are those of `../shared/FUND-DATA.md`:
//! - B02 `S_Ctr = N_Num_Assure + N_AF_A_Reverser + N_Jours_Declares + N_Salaire_Reel + N_Salaire_Plaf + rank(L_Situation)`
//! - B04 `S_Ctr = N_Num_Assure (0 if blank) + N_Jours_Declares + N_Salaire_Reel + N_Salaire_Plaf`
//! - totals: `N_T_Num_Imma` = sum of insured numbers, `N_T_Ctr` = sum of the lines' `S_Ctr`.
//!
//! One file is one declaration: it is accepted whole or refused whole. A wrong employee
//! line (wrong control sum, non-digits in an amount, impossible days, an insured number
//! declared twice) refuses the file, as a broken structure does (wrong line length, wrong
//! order, truncated, not ASCII, totals that do not match the lines as written): storing
//! the other lines would leave the vault holding less than the file's B03/B06 totals say.
//! The refusal names the first wrong line, and every other wrong line after it, so that
//! the employer can correct them all at once; a totals line that disagrees because a line
//! above it could not be read is reported after that line, which is the cause. Every
//! rejection names the file, the line and the field, never the value: the rejects report
//! is a plaintext file on the node, and a salary or an insured number quoted in it would
//! be plaintext at rest (I4).

use crate::model::DeclarationRow;
use std::fmt::Write as _;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Length of every line.
pub const LINE_LEN: usize = 260;

/// Situation codes and their rank in `S_Ctr`. *(to verify against the fund's table; kept
/// here, as data, in one place.)* Codes `CS` and `MS` carry zero days and zero salary.
pub const SITUATIONS: &[(&str, u64)] = &[
    ("", 0),
    ("SO", 1),
    ("DE", 2),
    ("IT", 3),
    ("IL", 4),
    ("AT", 5),
    ("CS", 6),
    ("MS", 7),
    ("MP", 8),
];

fn rank(code: &str) -> Option<u64> {
    SITUATIONS.iter().find(|(c, _)| *c == code).map(|(_, r)| *r)
}

/// The employer header of a file (B01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Affiliation.
    pub affiliation: String,
    /// `AAAAMM`.
    pub period: String,
    /// Company name.
    pub name: String,
    /// Activity.
    pub activity: String,
    /// Address.
    pub address: String,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// Agency code.
    pub agency: String,
    /// `AAAAMMJJ`.
    pub issued: String,
    /// `AAAAMMJJ`.
    pub due: String,
}

/// The file name of a declaration.
pub fn file_name(affiliation: &str, period: &str) -> String {
    let (year, month) = period.split_at(4.min(period.len()));
    format!("DS_{affiliation}_{month}{year}.txt")
}

fn n(out: &mut String, v: u64, width: usize) {
    let _ = write!(out, "{v:0width$}");
}

fn a(out: &mut String, v: &str, width: usize) {
    // Text fields are ASCII in the format: accents are dropped (Aït → Ait), as payroll
    // software does, and anything else becomes '?' so that the line keeps its width.
    let s: String = v
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .take(width)
        .collect();
    let _ = write!(out, "{s:<width$}");
}

fn num(s: &str) -> u64 {
    s.parse().unwrap_or(0)
}

struct Totals {
    count: u64,
    children: u64,
    allowance: u64,
    imma: u64,
    days: u64,
    real: u64,
    capped: u64,
    ctr: u64,
}

fn totals(rows: &[&DeclarationRow]) -> Totals {
    let mut t = Totals {
        count: 0,
        children: 0,
        allowance: 0,
        imma: 0,
        days: 0,
        real: 0,
        capped: 0,
        ctr: 0,
    };
    for r in rows {
        t.count += 1;
        t.children += u64::from(r.children);
        t.allowance += r.allowance;
        t.imma += num(&r.cnss);
        t.days += u64::from(r.days);
        t.real += r.salary_real;
        t.capped += r.salary_capped;
        t.ctr += ctr(r);
    }
    t
}

fn ctr(r: &DeclarationRow) -> u64 {
    if r.entrant {
        num(&r.cnss) + u64::from(r.days) + r.salary_real + r.salary_capped
    } else {
        num(&r.cnss)
            + u64::from(r.days)
            + r.salary_real
            + r.salary_capped
            + rank(&r.situation).unwrap_or(0)
    }
}

/// Writes a principal declaration (B00–B06). `rows` may mix existing employees and
/// entrants; B02 lines are sorted by insured number.
///
/// Refuses (rather than write a malformed file) when a value does not fit its field: for
/// example `N_T_Jours_Declares` has six digits, so one declaration cannot cover more than
/// 38,461 employees with 26 days each; such an employer must split its declaration.
pub fn write(h: &Header, rows: &[DeclarationRow]) -> Result<String, FileError> {
    let mut existing: Vec<&DeclarationRow> = rows.iter().filter(|r| !r.entrant).collect();
    existing.sort_by(|x, y| x.cnss.cmp(&y.cnss));
    let entrants: Vec<&DeclarationRow> = rows.iter().filter(|r| r.entrant).collect();
    let aff = num(&h.affiliation);
    let per = num(&h.period);
    let mut out = String::with_capacity((rows.len() + 8) * (LINE_LEN + 1));
    let mut line = |f: &dyn Fn(&mut String)| {
        f(&mut out);
        out.push('\n');
    };
    line(&|o| {
        a(o, "B00", 3);
        let _ = write!(o, "{:07}{:06}1", aff, per);
        a(o, "B0", 2);
        a(o, "", 241);
    });
    line(&|o| {
        a(o, "B01", 3);
        n(o, aff, 7);
        n(o, per, 6);
        a(o, &h.name, 40);
        a(o, &h.activity, 40);
        a(o, &h.address, 120);
        a(o, &h.city, 20);
        a(o, &h.postal_code, 6);
        a(o, &h.agency, 2);
        a(o, &h.issued, 8);
        a(o, &h.due, 8);
    });
    for r in &existing {
        line(&|o| {
            a(o, "B02", 3);
            n(o, aff, 7);
            n(o, per, 6);
            a(o, &r.cnss, 9);
            a(o, &r.nom_prenom, 60);
            n(o, u64::from(r.children), 2);
            n(o, r.allowance, 6);
            n(o, 0, 6);
            n(o, r.allowance, 6);
            n(o, 0, 6);
            n(o, u64::from(r.days), 2);
            n(o, r.salary_real, 13);
            n(o, r.salary_capped, 9);
            a(o, &r.situation, 2);
            n(o, ctr(r), 19);
            a(o, "", 104);
        });
    }
    let t2 = totals(&existing);
    line(&|o| {
        a(o, "B03", 3);
        n(o, aff, 7);
        n(o, per, 6);
        n(o, t2.count, 6);
        n(o, t2.children, 6);
        n(o, t2.allowance, 12);
        n(o, 0, 12);
        n(o, t2.allowance, 12);
        n(o, t2.imma, 15);
        n(o, 0, 12);
        n(o, t2.days, 6);
        n(o, t2.real, 15);
        n(o, t2.capped, 13);
        n(o, t2.ctr, 19);
        a(o, "", 116);
    });
    if entrants.is_empty() {
        line(&|o| {
            a(o, "B04", 3);
            n(o, aff, 7);
            n(o, per, 6);
            a(o, "", 9);
            a(o, "", 60);
            a(o, "", 8);
            n(o, 0, 2);
            n(o, 0, 13);
            n(o, 0, 9);
            n(o, 0, 19);
            a(o, "", 124);
        });
    }
    for r in &entrants {
        line(&|o| {
            a(o, "B04", 3);
            n(o, aff, 7);
            n(o, per, 6);
            a(o, &r.cnss, 9);
            a(o, &r.nom_prenom, 60);
            a(o, r.cin.as_deref().unwrap_or(""), 8);
            n(o, u64::from(r.days), 2);
            n(o, r.salary_real, 13);
            n(o, r.salary_capped, 9);
            n(o, ctr(r), 19);
            a(o, "", 124);
        });
    }
    let t4 = totals(&entrants);
    let grand = |o: &mut String, kind: &str, t: &Totals| {
        a(o, kind, 3);
        n(o, aff, 7);
        n(o, per, 6);
        n(o, t.count, 6);
        n(o, t.imma, 15);
        n(o, t.days, 6);
        n(o, t.real, 15);
        n(o, t.capped, 13);
        n(o, t.ctr, 19);
        a(o, "", 170);
    };
    line(&|o| grand(o, "B05", &t4));
    let all: Vec<&DeclarationRow> = existing.iter().chain(entrants.iter()).copied().collect();
    let t6 = totals(&all);
    line(&|o| grand(o, "B06", &t6));
    if let Some((i, l)) = out.lines().enumerate().find(|(_, l)| l.len() != LINE_LEN) {
        return Err(ferr(
            i + 1,
            format!(
                "a value of this {} line does not fit its field (the line would be {} characters)",
                &l[..3],
                l.len()
            ),
        ));
    }
    Ok(out)
}

/// A rejected line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// A file that parsed: every employee line is valid.
#[derive(Debug, Clone)]
pub struct Parsed {
    /// The employer header.
    pub header: Header,
    /// The employee lines (B02, then B04).
    pub rows: Vec<DeclarationRow>,
    /// The 1-based line number of each row in `rows`.
    pub lines: Vec<usize>,
}

/// Why a whole file was refused: the first wrong line, and the others after it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}{}", others(.more))]
pub struct FileError {
    /// 1-based line number of the first wrong line (0 for the file as a whole).
    pub line: usize,
    /// Why.
    pub reason: String,
    /// Further wrong lines, in file order.
    pub more: Vec<Rejected>,
}

fn others(more: &[Rejected]) -> String {
    match more.len() {
        0 => String::new(),
        1 => format!(" (and line {}: {})", more[0].line, more[0].reason),
        n => format!(" (and {n} other lines, the next at line {})", more[0].line),
    }
}

impl FileError {
    /// Every wrong line: the first, then the others.
    pub fn problems(&self) -> impl Iterator<Item = Rejected> + '_ {
        std::iter::once(Rejected {
            line: self.line,
            reason: self.reason.clone(),
        })
        .chain(self.more.iter().cloned())
    }

    /// A refusal naming `problems` (at least one) in file order.
    fn of(mut problems: Vec<Rejected>) -> Self {
        problems.sort_by_key(|r| r.line);
        let mut it = problems.into_iter();
        let first = it.next().unwrap_or(Rejected {
            line: 0,
            reason: "refused".into(),
        });
        Self {
            line: first.line,
            reason: first.reason,
            more: it.collect(),
        }
    }
}

fn ferr(line: usize, reason: impl Into<String>) -> FileError {
    FileError {
        line,
        reason: reason.into(),
        more: Vec::new(),
    }
}

/// A cursor over one line's fields.
struct Fields<'a> {
    line: &'a str,
    pos: usize,
    no: usize,
}

impl<'a> Fields<'a> {
    fn take(&mut self, w: usize) -> &'a str {
        let s = &self.line[self.pos..self.pos + w];
        self.pos += w;
        s
    }
    fn text(&mut self, w: usize) -> String {
        self.take(w).trim_end().to_owned()
    }
    fn number(&mut self, w: usize, name: &str) -> Result<u64, Rejected> {
        let at = self.pos + 1;
        let s = self.take(w);
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Rejected {
                line: self.no,
                reason: format!("{name} (column {at}) is not {w} digits"),
            });
        }
        s.parse().map_err(|_| Rejected {
            line: self.no,
            reason: format!("{name} out of range"),
        })
    }
}

/// Parses and validates one e-BDS file. `name` is the file name, checked against the
/// header when it has the `DS_<affiliation>_<MMAAAA>.txt` form.
pub fn parse(name: &str, bytes: &[u8]) -> Result<Parsed, FileError> {
    if let Some(pos) = bytes.iter().position(|b| !b.is_ascii()) {
        let line = bytes[..pos].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(ferr(
            line,
            format!(
                "byte 0x{:02x} is not ASCII: e-BDS files are ASCII (convert from Windows-1252 or UTF-8 first)",
                bytes[pos]
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ferr(0, "not ASCII"))?;
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let lines: &[&str] = match lines.last() {
        Some(&"") => &lines[..lines.len() - 1],
        _ => &lines,
    };
    for (i, l) in lines.iter().enumerate() {
        if l.len() != LINE_LEN {
            return Err(ferr(
                i + 1,
                format!(
                    "line is {} characters long, e-BDS lines are {LINE_LEN}",
                    l.len()
                ),
            ));
        }
    }
    let kind = |i: usize| lines.get(i).map(|l| &l[..3]);
    if kind(0) != Some("B00") {
        return Err(ferr(1, "the file must start with a B00 transfer header"));
    }
    if kind(1) != Some("B01") {
        return Err(ferr(2, "the second line must be the B01 employer header"));
    }
    let mut f = Fields {
        line: lines[1],
        pos: 3,
        no: 2,
    };
    let aff_n = f
        .number(7, "N_Num_Affilie")
        .map_err(|r| ferr(2, r.reason))?;
    let per_n = f.number(6, "L_Periode").map_err(|r| ferr(2, r.reason))?;
    let header = Header {
        affiliation: format!("{aff_n:07}"),
        period: format!("{per_n:06}"),
        name: f.text(40),
        activity: f.text(40),
        address: f.text(120),
        city: f.text(20),
        postal_code: f.text(6),
        agency: f.text(2),
        issued: f.text(8),
        due: f.text(8),
    };
    let month = per_n % 100;
    if !(1..=12).contains(&month) || !(1990..=2100).contains(&(per_n / 100)) {
        return Err(ferr(
            2,
            format!("period {} is not a valid AAAAMM", header.period),
        ));
    }
    if name.starts_with("DS_") && name != file_name(&header.affiliation, &header.period) {
        return Err(ferr(
            0,
            format!(
                "file name should be {} for affiliation {} and period {}",
                file_name(&header.affiliation, &header.period),
                header.affiliation,
                header.period
            ),
        ));
    }

    let mut taken = Taken::default();
    let mut i = 2;
    // B02 lines, with their totals as written.
    let mut written = Sums::default();
    while kind(i) == Some("B02") {
        let r = employee(lines[i], i + 1, &header, false, &mut written);
        taken.accept(r, i + 1);
        i += 1;
    }
    // A totals line that disagrees is reported after the lines rejected above it: they
    // are usually the cause, and the first of them is the line to correct.
    let explain = |e: FileError, rejected: &[Rejected]| -> FileError {
        if rejected.is_empty() {
            return e;
        }
        let mut all = rejected.to_vec();
        all.push(Rejected {
            line: e.line,
            reason: format!("{} (the wrong lines above are the likely cause)", e.reason),
        });
        FileError::of(all)
    };
    match kind(i) {
        Some("B03") => check_totals(lines[i], i + 1, &written, true)
            .map_err(|e| explain(e, &taken.rejected))?,
        Some(k) => {
            return Err(ferr(
                i + 1,
                format!("expected B03 totals after the B02 lines, found {k}"),
            ));
        }
        None => {
            return Err(ferr(
                i,
                format!("file is truncated after line {i}: B03, B05 and B06 are missing"),
            ));
        }
    }
    i += 1;
    let mut written4 = Sums::default();
    let mut any_b04 = false;
    while kind(i) == Some("B04") {
        any_b04 = true;
        let blank = lines[i][16..25].trim().is_empty();
        if blank {
            // The one empty line of a declaration without entrants.
            i += 1;
            continue;
        }
        let r = employee(lines[i], i + 1, &header, true, &mut written4);
        taken.accept(r, i + 1);
        i += 1;
    }
    if !any_b04 {
        return Err(ferr(
            i + 1,
            "at least one B04 line is required (a blank one when there are no entrants)",
        ));
    }
    match kind(i) {
        Some("B05") => check_totals(lines[i], i + 1, &written4, false)
            .map_err(|e| explain(e, &taken.rejected))?,
        Some(k) => {
            return Err(ferr(
                i + 1,
                format!("expected B05 totals after the B04 lines, found {k}"),
            ));
        }
        None => {
            return Err(ferr(
                i,
                format!("file is truncated after line {i}: B05 and B06 are missing"),
            ));
        }
    }
    i += 1;
    let grand = Sums {
        count: written.count + written4.count,
        imma: written.imma + written4.imma,
        days: written.days + written4.days,
        real: written.real + written4.real,
        capped: written.capped + written4.capped,
        ctr: written.ctr + written4.ctr,
        ..Sums::default()
    };
    match kind(i) {
        Some("B06") => {
            check_totals(lines[i], i + 1, &grand, false).map_err(|e| explain(e, &taken.rejected))?
        }
        Some(k) => return Err(ferr(i + 1, format!("expected B06 grand totals, found {k}"))),
        None => {
            return Err(ferr(
                i,
                format!("file is truncated after line {i}: B06 is missing"),
            ));
        }
    }
    if i + 1 != lines.len() {
        taken.rejected.push(Rejected {
            line: i + 2,
            reason: "lines after the B06 grand totals".into(),
        });
    }
    if !taken.rejected.is_empty() {
        return Err(FileError::of(taken.rejected));
    }
    Ok(Parsed {
        header,
        rows: taken.rows,
        lines: taken.lines,
    })
}

/// The employee lines read so far: the valid ones with their line numbers, the wrong
/// ones with why, and the first line of each insured number.
#[derive(Default)]
struct Taken {
    rows: Vec<DeclarationRow>,
    lines: Vec<usize>,
    rejected: Vec<Rejected>,
    seen: std::collections::HashMap<String, usize>,
}

impl Taken {
    fn accept(&mut self, r: Result<DeclarationRow, Rejected>, line: usize) {
        match r {
            Ok(row) => {
                if let Some(first) = self.seen.get(&row.cnss) {
                    self.rejected.push(Rejected {
                        line,
                        reason: format!(
                            "this insured number is already declared on line {first} of the file"
                        ),
                    });
                } else {
                    self.seen.insert(row.cnss.clone(), line);
                    self.rows.push(row);
                    self.lines.push(line);
                }
            }
            Err(e) => self.rejected.push(e),
        }
    }
}

#[derive(Default)]
struct Sums {
    count: u64,
    children: u64,
    allowance: u64,
    imma: u64,
    days: u64,
    real: u64,
    capped: u64,
    ctr: u64,
}

/// Parses one B02 or B04 line. Totals are accumulated from the line as written (when its
/// numbers are readable), so that a rejected line does not make the totals look wrong.
fn employee(
    line: &str,
    no: usize,
    h: &Header,
    entrant: bool,
    sums: &mut Sums,
) -> Result<DeclarationRow, Rejected> {
    let rej = |reason: String| Rejected { line: no, reason };
    let mut f = Fields { line, pos: 3, no };
    let aff = f.number(7, "N_Num_Affilie")?;
    let per = f.number(6, "L_Periode")?;
    if format!("{aff:07}") != h.affiliation || format!("{per:06}") != h.period {
        return Err(rej(format!(
            "affiliation/period {aff:07}/{per:06} differ from the header's {}/{}",
            h.affiliation, h.period
        )));
    }
    let cnss_raw = f.take(9).to_owned();
    let nom_prenom = f.text(60);
    let (cin, children, allowance, reverser) = if entrant {
        (Some(f.text(8)), 0u8, 0u64, 0u64)
    } else {
        let children = f.number(2, "N_Enfants")?;
        let a_payer = f.number(6, "N_AF_A_Payer")?;
        let _deduire = f.number(6, "N_AF_A_Deduire")?;
        let _net = f.number(6, "N_AF_Net_A_Payer")?;
        let reverser = f.number(6, "N_AF_A_Reverser")?;
        (
            None,
            u8::try_from(children).unwrap_or(u8::MAX),
            a_payer,
            reverser,
        )
    };
    let days = f.number(2, "N_Jours_Declares")?;
    let real = f.number(13, "N_Salaire_Reel")?;
    let capped = f.number(9, "N_Salaire_Plaf")?;
    let situation = if entrant { String::new() } else { f.text(2) };
    let s_ctr = f.number(19, "S_Ctr")?;
    if !cnss_raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(rej("N_Num_Assure (column 17) is not 9 digits".into()));
    }
    let imma = num(&cnss_raw);
    sums.count += 1;
    sums.children += u64::from(children);
    sums.allowance += allowance;
    sums.imma += imma;
    sums.days += days;
    sums.real += real;
    sums.capped += capped;
    sums.ctr += s_ctr;
    let expected = if entrant {
        imma + days + real + capped
    } else {
        let r = rank(&situation)
            .ok_or_else(|| rej("unknown situation code L_Situation (column 136)".into()))?;
        imma + reverser + days + real + capped + r
    };
    if s_ctr != expected {
        return Err(rej(
            "control sum S_Ctr does not match the line's numbers".into()
        ));
    }
    if cnss_raw == "000000000" || cnss_raw == "999999999" {
        return Err(rej(
            "insured number is a placeholder (000000000 or 999999999), not a person".into(),
        ));
    }
    if days > 26 {
        return Err(rej(format!("{days} days declared, at most 26 per month")));
    }
    if capped > real {
        return Err(rej("N_Salaire_Plaf exceeds N_Salaire_Reel".into()));
    }
    if matches!(situation.as_str(), "CS" | "MS") && (days != 0 || real != 0) {
        return Err(rej(format!(
            "situation {situation} requires zero days and zero salary"
        )));
    }
    Ok(DeclarationRow {
        affiliation: h.affiliation.clone(),
        period: h.period.clone(),
        cnss: cnss_raw,
        nom_prenom,
        cin: cin.filter(|c| !c.is_empty()),
        children,
        allowance,
        days: u8::try_from(days).unwrap_or(u8::MAX),
        salary_real: real,
        salary_capped: capped,
        situation,
        entrant,
    })
}

fn check_totals(line: &str, no: usize, s: &Sums, b03: bool) -> Result<(), FileError> {
    let mut f = Fields { line, pos: 16, no };
    let e = |r: Rejected| ferr(no, r.reason);
    let mut checks: Vec<(&str, u64, u64)> = Vec::new();
    checks.push((
        "N_Nbr_Salaries",
        f.number(6, "N_Nbr_Salaries").map_err(e)?,
        s.count,
    ));
    if b03 {
        checks.push((
            "N_T_Enfants",
            f.number(6, "N_T_Enfants").map_err(e)?,
            s.children,
        ));
        checks.push((
            "N_T_AF_A_Payer",
            f.number(12, "N_T_AF_A_Payer").map_err(e)?,
            s.allowance,
        ));
        f.number(12, "N_T_AF_A_Deduire").map_err(e)?;
        f.number(12, "N_T_AF_Net_A_Payer").map_err(e)?;
        checks.push((
            "N_T_Num_Imma",
            f.number(15, "N_T_Num_Imma").map_err(e)?,
            s.imma,
        ));
        f.number(12, "N_T_AF_A_Reverser").map_err(e)?;
    } else {
        checks.push((
            "N_T_Num_Imma",
            f.number(15, "N_T_Num_Imma").map_err(e)?,
            s.imma,
        ));
    }
    checks.push((
        "N_T_Jours_Declares",
        f.number(6, "N_T_Jours_Declares").map_err(e)?,
        s.days,
    ));
    checks.push((
        "N_T_Salaire_Reel",
        f.number(15, "N_T_Salaire_Reel").map_err(e)?,
        s.real,
    ));
    checks.push((
        "N_T_Salaire_Plaf",
        f.number(13, "N_T_Salaire_Plaf").map_err(e)?,
        s.capped,
    ));
    checks.push(("N_T_Ctr", f.number(19, "N_T_Ctr").map_err(e)?, s.ctr));
    for (name, declared, computed) in checks {
        if declared != computed {
            return Err(ferr(
                no,
                format!("{name} does not equal the sum of the lines above"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            affiliation: "1234567".into(),
            period: "202501".into(),
            name: "ATLAS NOUR SARL".into(),
            activity: "CONFECTION ET TEXTILE".into(),
            address: "12 BD MOHAMMED V".into(),
            city: "CASABLANCA".into(),
            postal_code: "20000".into(),
            agency: "01".into(),
            issued: "20250205".into(),
            due: "20250210".into(),
        }
    }

    fn row(cnss: &str, days: u8, real: u64, entrant: bool) -> DeclarationRow {
        DeclarationRow {
            affiliation: "1234567".into(),
            period: "202501".into(),
            cnss: cnss.into(),
            nom_prenom: "EL AMRANI MOHAMMED".into(),
            cin: entrant.then(|| "BE123456".to_owned()),
            children: if entrant { 0 } else { 2 },
            allowance: if entrant { 0 } else { 60_000 },
            days,
            salary_real: real,
            salary_capped: real.min(600_000),
            situation: String::new(),
            entrant,
        }
    }

    fn sample() -> (String, Vec<DeclarationRow>) {
        let rows = vec![
            row("123456789", 26, 774_431, false),
            row("100000001", 20, 320_000, false),
            row("130000002", 26, 1_200_000, true),
        ];
        (write(&header(), &rows).unwrap(), rows)
    }

    #[test]
    fn written_files_parse_back_exactly() {
        let (text, rows) = sample();
        assert!(text.lines().all(|l| l.len() == LINE_LEN));
        assert_eq!(text.lines().count(), 2 + 2 + 1 + 1 + 1 + 1);
        let p = parse(&file_name("1234567", "202501"), text.as_bytes()).unwrap();
        assert_eq!(p.lines, [3, 4, 6]);
        assert_eq!(p.header, header());
        let mut want = rows.clone();
        want.sort_by(|a, b| (a.entrant, &a.cnss).cmp(&(b.entrant, &b.cnss)));
        assert_eq!(p.rows, want);
        assert_eq!(file_name("1234567", "202501"), "DS_1234567_012025.txt");
        // Without entrants there is one blank B04 line.
        let t = write(&header(), &rows[..1]).unwrap();
        assert_eq!(parse("x.txt", t.as_bytes()).unwrap().rows.len(), 1);
    }

    fn mutate(line_no: usize, f: impl Fn(&mut String)) -> Vec<u8> {
        let (text, _) = sample();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        f(&mut lines[line_no - 1]);
        (lines.join("\n") + "\n").into_bytes()
    }

    #[test]
    fn malformed_files_are_named_by_line() {
        // Wrong line length.
        let e = parse("x", &mutate(3, |l| l.push(' '))).unwrap_err();
        assert_eq!((e.line, e.reason.contains("261 characters")), (3, true));
        // Non-digits in an amount: the file is refused at that line (the one to correct),
        // and the totals that no longer add up come after it.
        let e = parse("x", &mutate(3, |l| l.replace_range(112..115, "1O0"))).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.reason.contains("N_Salaire_Reel"), "{e}");
        assert_eq!(e.more.len(), 1, "{e}");
        assert_eq!(e.more[0].line, 5, "{e}");
        assert!(e.more[0].reason.contains("does not equal"), "{e}");
        // Truncated file.
        let (text, _) = sample();
        let cut: Vec<&str> = text.lines().take(6).collect();
        let e = parse("x", (cut.join("\n") + "\n").as_bytes()).unwrap_err();
        assert!(e.reason.contains("truncated"), "{e}");
        // Wrong encoding.
        let mut bytes = text.clone().into_bytes();
        bytes[300] = 0xe9;
        let e = parse("x", &bytes).unwrap_err();
        assert_eq!((e.line, e.reason.contains("not ASCII")), (2, true), "{e}");
        // File name that contradicts the header.
        let e = parse("DS_7654321_012025.txt", text.as_bytes()).unwrap_err();
        assert!(e.reason.contains("should be DS_1234567_012025.txt"), "{e}");
    }

    #[test]
    fn values_that_do_not_fit_their_field_are_refused_not_written() {
        let rows: Vec<DeclarationRow> = (0..40_000)
            .map(|i| row(&format!("{:09}", 100_000_000 + i), 26, 320_000, false))
            .collect();
        let e = write(&header(), &rows).unwrap_err();
        assert_eq!(e.line, 40_003, "{e}");
        assert!(e.reason.contains("B03 line does not fit"), "{e}");
    }

    #[test]
    fn a_bad_control_sum_refuses_the_whole_file_at_that_line() {
        // Change S_Ctr of one B02 line and the B03/B06 control totals with it, as a forger
        // who edits the amounts but does not know the sums would not.
        let rows = vec![
            row("123456789", 26, 774_431, false),
            row("100000001", 20, 320_000, false),
        ];
        let text = write(&header(), &rows).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        // B02 lines are sorted: line 3 is 100000001. Raise its real salary by 1 centime
        // without fixing its S_Ctr, and fix the totals so only the line is wrong.
        let l = &mut lines[2];
        let real: u64 = l[113..126].parse().unwrap();
        l.replace_range(113..126, &format!("{:013}", real + 1));
        for (idx, start, w) in [(4usize, 97usize, 15usize), (7, 43, 15)] {
            let t = &mut lines[idx];
            let v: u64 = t[start..start + w].parse().unwrap();
            t.replace_range(start..start + w, &format!("{:0w$}", v + 1));
        }
        let e = parse("x", (lines.join("\n") + "\n").as_bytes()).unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.reason.contains("control sum"), "{e}");
        assert!(e.more.is_empty(), "the totals were made to match: {e}");
    }

    #[test]
    fn every_wrong_line_is_named_in_file_order() {
        // The writer does not judge days: two lines of 27, with sums that agree with them.
        let rows = vec![
            row("123456789", 26, 774_431, false),
            row("100000001", 27, 320_000, false),
            row("130000002", 27, 1_200_000, false),
        ];
        let text = write(&header(), &rows).unwrap();
        let e = parse("x", text.as_bytes()).unwrap_err();
        let lines: Vec<usize> = e.problems().map(|r| r.line).collect();
        assert_eq!(lines, [3, 5], "{e}");
        assert!(e.reason.contains("27 days"), "{e}");
        assert!(e.to_string().contains("and line 5"), "{e}");
    }
}
