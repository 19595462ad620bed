//! Which column holds what, found by content; headers (French, Arabic, English) only break
//! ties, since a dump's headers may be missing, translated or wrong.

use crate::row::{self, LeakRow};

/// How many rows are looked at to decide.
pub const SAMPLE_ROWS: usize = 200;
/// Share of a column's non-empty sample values that must have a shape for it to count.
const MIN_SHARE: f64 = 0.6;

/// How an amount column is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// In centimes (e-BDS style whole numbers).
    Centimes,
    /// In dirhams, with or without decimals.
    Dirhams,
}

/// The columns found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Columns {
    /// CNSS number.
    pub cnss: Option<usize>,
    /// CIN.
    pub cin: Option<usize>,
    /// Name parts in Latin script, in order (one full name, or surname and given name).
    pub names: Vec<usize>,
    /// Name in Arabic script.
    pub name_ar: Option<usize>,
    /// A repetitive name-like column beside the name (a given name, or a city).
    pub name_extra: Option<usize>,
    /// Birth date.
    pub birth: Option<usize>,
    /// RIB.
    pub rib: Option<usize>,
    /// Real salary and its unit.
    pub salary: Option<(usize, Unit)>,
    /// Days declared.
    pub days: Option<usize>,
    /// Period.
    pub period: Option<usize>,
}

impl Columns {
    /// Whether any identifying column was found.
    pub fn identifying(&self) -> bool {
        self.cnss.is_some()
            || self.cin.is_some()
            || (self.birth.is_some() && (!self.names.is_empty() || self.name_ar.is_some()))
    }

    /// What was found, for the report: `cnss=2 cin=3 name=0+1 …` (0-based columns).
    pub fn describe(&self, header: Option<&[String]>) -> String {
        let label = |i: usize| match header.and_then(|h| h.get(i)) {
            Some(h) if !h.trim().is_empty() => format!("{i} ({})", h.trim()),
            _ => i.to_string(),
        };
        let mut out = Vec::new();
        let mut one = |k: &str, c: Option<usize>| {
            if let Some(i) = c {
                out.push(format!("{k}={}", label(i)));
            }
        };
        one("cnss", self.cnss);
        one("cin", self.cin);
        one("name_ar", self.name_ar);
        one("birth_date", self.birth);
        one("rib", self.rib);
        one("salary", self.salary.map(|(i, _)| i));
        one("days", self.days);
        one("period", self.period);
        if !self.names.is_empty() {
            let parts: Vec<String> = self.names.iter().map(|&i| label(i)).collect();
            out.push(format!("name={}", parts.join("+")));
        }
        if out.is_empty() {
            "no identifying column".into()
        } else {
            out.join(" ")
        }
    }

    /// The row of these cells.
    pub fn extract(&self, cells: &[&str], file: u32, line: u64) -> LeakRow {
        let cell = |i: Option<usize>| i.and_then(|i| cells.get(i)).map(|s| s.trim());
        let names: Vec<&str> = self
            .names
            .iter()
            .filter_map(|&i| cells.get(i).map(|s| s.trim()))
            .filter(|s| !s.is_empty())
            .collect();
        LeakRow {
            file,
            line,
            cnss: cell(self.cnss).and_then(row::cnss),
            cin: cell(self.cin).and_then(row::cin),
            name: (!names.is_empty()).then(|| names.join(" ")),
            name_ar: cell(self.name_ar)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            name_extra: cell(self.name_extra)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            birth: cell(self.birth).and_then(row::date),
            rib: cell(self.rib).and_then(row::rib),
            salary: self.salary.and_then(|(i, unit)| {
                let (v, decimals) = cells.get(i).and_then(|s| row::amount(s))?;
                Some(match (unit, decimals) {
                    (_, true) => v,
                    (Unit::Centimes, false) => v,
                    (Unit::Dirhams, false) => v.checked_mul(100)?,
                })
            }),
            days: cell(self.days).and_then(row::small).filter(|d| *d <= 31),
            period: cell(self.period).and_then(row::period),
            control_sum_fails: false,
        }
    }
}

/// Whether a first line is a header rather than data: none of its cells has the shape of
/// a value the scan reads.
pub fn is_header(cells: &[&str]) -> bool {
    !cells.is_empty()
        && cells.iter().all(|c| {
            let c = c.trim();
            row::cnss(c).is_none()
                && row::cin(c).is_none()
                && row::amount(c).is_none()
                && row::date(c).is_none()
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hint {
    Cnss,
    Cin,
    Name,
    Birth,
    Rib,
    Salary,
    Capped,
    Days,
    Period,
    /// An employer's number (affiliation, ICE): an identifier, never money.
    Employer,
    Other,
}

fn hint(header: &str) -> Option<Hint> {
    let h = header.trim().to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| h.contains(w));
    Some(if has(&["plaf", "capped", "مسقف"]) {
        Hint::Capped
    } else if has(&["affili", "employeur", "patron", "منخرط", "المشغل"])
        || h.split(|c: char| !c.is_alphanumeric()).any(|w| w == "ice")
    {
        Hint::Employer
    } else if has(&["cnss", "assur", "immatric", "ضمان", "تسجيل"]) {
        Hint::Cnss
    } else if has(&["cin", "cnie", "carte", "بطاقة"]) {
        Hint::Cin
    } else if has(&["rib", "bancaire", "iban", "بنك", "حساب"]) {
        Hint::Rib
    } else if has(&["naiss", "birth", "ازدياد", "ولادة"]) {
        Hint::Birth
    } else if has(&["nom", "prenom", "prénom", "name", "الاسم", "اسم", "النسب"]) {
        Hint::Name
    } else if has(&[
        "salaire", "salary", "brut", "montant", "أجر", "راتب", "مبلغ",
    ]) {
        Hint::Salary
    } else if has(&["jour", "days", "أيام"]) {
        Hint::Days
    } else if has(&["période", "periode", "period", "mois", "الفترة", "شهر"]) {
        Hint::Period
    } else if h.is_empty() {
        return None;
    } else {
        Hint::Other
    })
}

struct Profile {
    filled: usize,
    cnss: usize,
    cin: usize,
    rib: usize,
    date: usize,
    period: usize,
    amount: usize,
    decimals: usize,
    small: usize,
    name: usize,
    arabic: usize,
    legal_form: usize,
    same_length_zero_padded: bool,
    distinct: usize,
    amounts: Vec<u64>,
    /// Digit counts of the whole numbers among the amounts.
    whole_lengths: std::collections::HashSet<usize>,
    smalls: Vec<u8>,
}

impl Profile {
    /// Whether the column holds numbers that identify rather than count: whole numbers
    /// all of one length of seven digits or more (an affiliation number has seven, and
    /// salaries, spread over a range, do not keep one length), or so few distinct values
    /// that they are codes (a register's employer column), not the pay of each person.
    fn identifier_like(&self) -> bool {
        if self.decimals > 0 || self.amount < 5 {
            return false;
        }
        let one_long_length =
            self.whole_lengths.len() == 1 && self.whole_lengths.iter().all(|&n| n >= 7);
        let codes = self.amount >= 8 && self.distinct * 3 < self.filled;
        one_long_length || codes
    }
}

fn profile(sample: &[Vec<&str>], col: usize) -> Profile {
    let mut p = Profile {
        filled: 0,
        cnss: 0,
        cin: 0,
        rib: 0,
        date: 0,
        period: 0,
        amount: 0,
        decimals: 0,
        small: 0,
        name: 0,
        arabic: 0,
        legal_form: 0,
        same_length_zero_padded: false,
        distinct: 0,
        amounts: Vec::new(),
        whole_lengths: std::collections::HashSet::new(),
        smalls: Vec::new(),
    };
    let mut seen = std::collections::HashSet::new();
    let mut lengths = std::collections::HashSet::new();
    let mut leading_zero = 0;
    for r in sample {
        let Some(v) = r.get(col).map(|s| s.trim()).filter(|s| !s.is_empty()) else {
            continue;
        };
        p.filled += 1;
        seen.insert(v);
        lengths.insert(v.len());
        leading_zero += usize::from(v.starts_with('0'));
        p.cnss += usize::from(row::cnss(v).is_some());
        p.cin += usize::from(row::cin(v).is_some() && !v.bytes().all(|b| b.is_ascii_digit()));
        p.rib += usize::from(row::rib(v).is_some());
        p.date += usize::from(row::date(v).is_some());
        p.period += usize::from(row::period(v).is_some());
        if let Some(d) = row::small(v) {
            p.small += 1;
            p.smalls.push(d);
        }
        if let Some((a, dec)) = row::amount(v) {
            p.amount += 1;
            p.decimals += usize::from(dec);
            p.amounts.push(a);
            if !dec {
                p.whole_lengths.insert(v.len());
            }
        }
        if row::name_like(v) {
            p.name += 1;
            p.arabic += usize::from(row::arabic(v));
            let upper = v.to_uppercase();
            p.legal_form += usize::from(
                upper
                    .split_whitespace()
                    .any(|w| matches!(w, "SARL" | "SA" | "SNC" | "STE" | "SARLAU" | "SCS")),
            );
        }
    }
    p.distinct = seen.len();
    p.same_length_zero_padded = lengths.len() == 1 && leading_zero * 10 >= p.filled;
    p
}

fn share(n: usize, p: &Profile) -> f64 {
    if p.filled == 0 {
        0.0
    } else {
        n as f64 / p.filled as f64
    }
}

fn median<T: Copy + Ord>(v: &[T]) -> Option<T> {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get(s.len() / 2).copied()
}

/// Finds the columns of a table from a sample of its rows and, if it has one, its header.
pub fn detect(header: Option<&[String]>, sample: &[Vec<&str>]) -> Columns {
    let width = sample.iter().map(Vec::len).max().unwrap_or(0);
    let profiles: Vec<Profile> = (0..width).map(|c| profile(sample, c)).collect();
    let hints: Vec<Option<Hint>> = (0..width)
        .map(|c| header.and_then(|h| h.get(c)).and_then(|h| hint(h)))
        .collect();
    let mut taken = vec![false; width];
    let mut out = Columns::default();
    // The strongest shapes first: each claims its column so that weaker shapes (amounts,
    // small numbers) do not claim it again.
    let best = |score: &dyn Fn(&Profile) -> f64, want: Hint, taken: &mut Vec<bool>| {
        let mut pick: Option<(usize, f64)> = None;
        for (i, p) in profiles.iter().enumerate() {
            if taken[i] {
                continue;
            }
            let mut s = score(p);
            if s < MIN_SHARE {
                continue;
            }
            if hints[i] == Some(want) {
                s += 1.0;
            }
            if pick.is_none_or(|(_, b)| s > b) {
                pick = Some((i, s));
            }
        }
        if let Some((i, _)) = pick {
            taken[i] = true;
        }
        pick.map(|(i, _)| i)
    };
    out.rib = best(&|p| share(p.rib, p), Hint::Rib, &mut taken);
    out.cnss = best(&|p| share(p.cnss, p), Hint::Cnss, &mut taken);
    out.cin = best(&|p| share(p.cin, p), Hint::Cin, &mut taken);
    out.birth = best(&|p| share(p.date, p), Hint::Birth, &mut taken);
    out.period = best(&|p| share(p.period, p), Hint::Period, &mut taken);
    out.days = best(
        &|p| {
            let dayish = p.smalls.iter().filter(|&&d| d <= 31).count();
            if median(&p.smalls).is_some_and(|m| m >= 10) && p.decimals == 0 {
                share(dayish, p)
            } else {
                0.0
            }
        },
        Hint::Days,
        &mut taken,
    );
    // Amounts: whole or decimal numbers of a salary's size. Numbers that identify
    // (fixed-width zero-padded, one length of seven digits or more, a few codes repeated,
    // a header naming an employer) are not money, whatever their size: a nominal list
    // `affiliation;cnss;name` has no salary column. The real salary is the largest amount
    // column (capped salaries and allowances are smaller), unless a header names it.
    let mut amounts: Vec<(usize, u64, bool)> = Vec::new();
    for (i, p) in profiles.iter().enumerate() {
        if taken[i]
            || p.same_length_zero_padded
            || p.identifier_like()
            || hints[i] == Some(Hint::Employer)
            || share(p.amount, p) < MIN_SHARE
        {
            continue;
        }
        let Some(m) = median(&p.amounts) else {
            continue;
        };
        let decimals = p.decimals * 2 >= p.amount;
        let dirhams = if decimals { m / 100 } else { m };
        if dirhams < 1_000 && (decimals || m < 100_000) {
            continue;
        }
        if matches!(hints[i], Some(Hint::Capped | Hint::Days)) {
            continue;
        }
        amounts.push((i, if decimals { m } else { m.max(1) }, decimals));
    }
    let named = amounts
        .iter()
        .find(|(i, _, _)| hints[*i] == Some(Hint::Salary))
        .copied();
    let chosen = named.or_else(|| {
        amounts
            .iter()
            .max_by_key(|(_, m, dec)| if *dec { *m } else { *m * 100 })
            .copied()
    });
    if let Some((i, m, decimals)) = chosen {
        taken[i] = true;
        let unit = if decimals || m < 200_000 {
            Unit::Dirhams
        } else {
            Unit::Centimes
        };
        // Whole numbers of 200,000 and more are centimes: no declared monthly salary
        // reaches 200,000 dirhams, and the minimum wage is 320,000 centimes.
        // Decimal columns are dirhams: their whole values (`5432`, a spreadsheet's
        // `5432.00`) are dirhams too.
        out.salary = Some((i, if decimals { Unit::Dirhams } else { unit }));
    }
    // Names: mostly letters, varied (a city or sector column repeats), not company names.
    let mut names: Vec<(usize, bool)> = Vec::new();
    let mut repetitive: Vec<usize> = Vec::new();
    for (i, p) in profiles.iter().enumerate() {
        if taken[i] || share(p.name, p) < MIN_SHARE || p.legal_form * 5 > p.name {
            continue;
        }
        let varied = p.distinct * 10 >= p.filled * 3;
        let hinted = hints[i] == Some(Hint::Name);
        if hints[i] == Some(Hint::Other) && !varied {
            continue;
        }
        if varied || hinted {
            names.push((i, p.arabic * 2 > p.name));
        } else {
            repetitive.push(i);
        }
    }
    out.name_ar = names.iter().find(|(_, ar)| *ar).map(|(i, _)| *i);
    out.names = names
        .iter()
        .filter(|(_, ar)| !ar)
        .map(|(i, _)| *i)
        .take(2)
        .collect();
    if out.names.len() == 1 {
        let n = out.names[0];
        out.name_extra = repetitive
            .iter()
            .copied()
            .find(|&i| i + 1 == n || n + 1 == i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str, sep: char) -> Vec<Vec<String>> {
        text.lines()
            .map(|l| l.split(sep).map(str::to_owned).collect())
            .collect()
    }

    fn refs(r: &[Vec<String>]) -> Vec<Vec<&str>> {
        r.iter()
            .map(|v| v.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn columns_are_found_without_a_header_in_any_order() {
        let data = rows(
            "5432.10;BE123456;ALAMI;Mohamed;123456789;Casablanca;26;1980-01-02\n\
             12000.00;J45678;BENANI;Fatima;123456790;Casablanca;26;1975-11-30\n\
             3200.00;AB98765;IDRISSI;Youssef;123456795;Rabat;20;1990-05-05\n\
             8100.50;C1234;TAZI;Khadija;123456801;Casablanca;26;1988-07-14\n\
             4500.00;D777;FASSI;Omar;123456802;Fes;13;1969-02-01",
            ';',
        );
        let c = detect(None, &refs(&data));
        assert_eq!(c.cnss, Some(4));
        assert_eq!(c.cin, Some(1));
        assert_eq!(c.salary, Some((0, Unit::Dirhams)));
        assert_eq!(c.days, Some(6));
        assert_eq!(c.birth, Some(7));
        assert_eq!(c.names, vec![2, 3], "{}", c.describe(None));
        let r = c.extract(&refs(&data)[0], 0, 1);
        assert_eq!(r.salary, Some(543_210));
        // A whole value in a decimal column is dirhams.
        assert_eq!(c.extract(&["5432", "BE123456"], 0, 9).salary, Some(543_200));
        assert_eq!(r.name.as_deref(), Some("ALAMI Mohamed"));
        assert_eq!(r.cin.as_deref(), Some("BE123456"));
    }

    #[test]
    fn wrong_headers_lose_to_content_and_centimes_are_told_from_dirhams() {
        let header: Vec<String> = ["salaire", "nom", "cnss", "الاسم"]
            .map(str::to_owned)
            .to_vec();
        // The header calls the CNSS column "salaire" and the salary "cnss".
        let data = rows(
            "123456789,ALAMI Mohamed,543210,محمد العلمي\n\
             123456790,BENANI Fatima,1200000,فاطمة بناني\n\
             123456791,TAZI Omar,320000,عمر التازي",
            ',',
        );
        let c = detect(Some(&header), &refs(&data));
        assert_eq!(c.cnss, Some(0));
        assert_eq!(c.salary, Some((2, Unit::Centimes)));
        assert_eq!(c.names, vec![1]);
        assert_eq!(c.name_ar, Some(3));
        let dirhams = rows("123456789,5432\n123456790,12000\n123456791,3200", ',');
        let c = detect(None, &refs(&dirhams));
        assert_eq!(c.salary, Some((1, Unit::Dirhams)));
        assert_eq!(c.extract(&refs(&dirhams)[0], 0, 1).salary, Some(543_200));
    }

    #[test]
    fn an_affiliation_number_is_never_taken_for_a_salary() {
        // The nominal list that leaked in 2025: one employer's staff.
        let header: Vec<String> = ["N° affiliation", "N° immatriculation", "Nom et prénom"]
            .map(str::to_owned)
            .to_vec();
        let mut list = String::new();
        for k in 0..12 {
            list.push_str(&format!("2456718;1234567{k:02};ALAMI Mohamed\n"));
        }
        let c = detect(Some(&header), &refs(&rows(&list, ';')));
        assert_eq!((c.cnss, c.salary), (Some(1), None), "{}", c.describe(None));
        // Without the header, and with several employers (a register as kept).
        let mut register = String::new();
        for k in 0..12 {
            let employer = [2456718, 3018842, 1177305][k % 3];
            register.push_str(&format!("1234567{k:02},ALAMI Mohamed,{employer}\n"));
        }
        let c = detect(None, &refs(&rows(&register, ',')));
        assert_eq!(c.salary, None, "{}", c.describe(None));
        // Every employer distinct, still seven digits each: an identifier.
        let mut varied = String::new();
        for k in 0..12u64 {
            varied.push_str(&format!("1234567{k:02};{};ALAMI\n", 2_456_718 + k * 7_919));
        }
        let c = detect(None, &refs(&rows(&varied, ';')));
        assert_eq!(c.salary, None, "{}", c.describe(None));
        // Real salaries in centimes vary in length and are still found.
        let pay = rows(
            "123456789;ALAMI;543210\n123456790;TAZI;1200000\n123456791;FASSI;320000\n\
             123456792;BENANI;874512\n123456793;IDRISSI;1450075",
            ';',
        );
        assert_eq!(detect(None, &refs(&pay)).salary, Some((2, Unit::Centimes)));
    }

    #[test]
    fn unrelated_tables_have_no_identifying_column() {
        let data = rows(
            "Casablanca,Grand Casablanca,3359818\nRabat,Rabat-Salé,577827\nFès,Fès-Meknès,1112072",
            ',',
        );
        let c = detect(None, &refs(&data));
        assert!(!c.identifying(), "{}", c.describe(None));
        assert!(is_header(&["nom", "ville", "CNSS"]));
        assert!(!is_header(&["ALAMI", "123456789"]));
    }
}
