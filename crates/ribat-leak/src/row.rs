//! A row of a dump as the scan understands it, and the value shapes it recognises.

use ribat_crypto::blind_index::normalise_cin;

/// What the scan took from one row. Values are as written (trimmed); the matcher
/// normalises them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeakRow {
    /// Index of the file in the scan.
    pub file: u32,
    /// 1-based line (or JSON line, or sheet row) in that file.
    pub line: u64,
    /// CNSS number.
    pub cnss: Option<String>,
    /// CIN.
    pub cin: Option<String>,
    /// Full name, any script, any word order.
    pub name: Option<String>,
    /// Full name in Arabic script, when the dump has a column of its own for it.
    pub name_ar: Option<String>,
    /// A name-like column beside the name whose values repeat (given names do, so do
    /// cities): tried as part of the name, never required.
    pub name_extra: Option<String>,
    /// Birth date, `YYYY-MM-DD`.
    pub birth: Option<String>,
    /// RIB.
    pub rib: Option<String>,
    /// Real salary in centimes.
    pub salary: Option<u64>,
    /// Days declared.
    pub days: Option<u8>,
    /// Period `AAAAMM`.
    pub period: Option<String>,
    /// The e-BDS control sum of the line did not add up.
    pub control_sum_fails: bool,
}

impl LeakRow {
    /// About what the row costs in memory: itself and its values' buffers (a scan holds a
    /// block of rows at a time, sized by this).
    pub fn footprint(&self) -> usize {
        // An allocator keeps about a word beside each buffer.
        let held = |s: &Option<String>| s.as_ref().map_or(0, |s| s.capacity() + 16);
        std::mem::size_of::<Self>()
            + [
                &self.cnss,
                &self.cin,
                &self.name,
                &self.name_ar,
                &self.name_extra,
                &self.birth,
                &self.rib,
                &self.period,
            ]
            .into_iter()
            .map(held)
            .sum::<usize>()
    }

    /// Whether it carries anything that could identify a person of the fund.
    pub fn has_identifier(&self) -> bool {
        self.cnss.is_some()
            || self.cin.is_some()
            || ((self.name.is_some() || self.name_ar.is_some()) && self.birth.is_some())
    }
}

/// Exactly nine digits (spaces and dots between groups allowed), not one of the two
/// placeholder numbers.
pub fn cnss(s: &str) -> Option<String> {
    let d: String = s
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-'))
        .collect();
    (d.len() == 9 && d.bytes().all(|b| b.is_ascii_digit()) && d != "000000000" && d != "999999999")
        .then_some(d)
}

/// A CIN: one or two letters then at least three digits (fewer is a code, not a card),
/// eight characters at most.
pub fn cin(s: &str) -> Option<String> {
    let n = normalise_cin(s).ok()?;
    let digits = n.bytes().filter(u8::is_ascii_digit).count();
    (digits >= 3).then_some(n)
}

/// 24 digits once spaces are removed.
pub fn rib(s: &str) -> Option<String> {
    let d: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (d.len() == 24 && d.bytes().all(|b| b.is_ascii_digit())).then_some(d)
}

/// A birth date in `YYYY-MM-DD`, `DD/MM/YYYY` or `DD-MM-YYYY` (years 1900–2029).
pub fn date(s: &str) -> Option<String> {
    let t = s.trim();
    let parts: Vec<&str> = t.split(['-', '/', '.']).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let (y, m, d) = if a.len() == 4 {
        (*a, *b, *c)
    } else if c.len() == 4 {
        (*c, *b, *a)
    } else {
        return None;
    };
    let y: u16 = y.parse().ok()?;
    let m: u8 = m.parse().ok()?;
    let d: u8 = d.parse().ok()?;
    ((1900..2030).contains(&y) && (1..=12).contains(&m) && (1..=31).contains(&d))
        .then(|| format!("{y:04}-{m:02}-{d:02}"))
}

/// A period `AAAAMM`, also written `AAAA-MM`, `MM/AAAA` or `MMAAAA` (years 2000–2099).
pub fn period(s: &str) -> Option<String> {
    let t: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, '-' | '/'))
        .collect();
    if t.len() != 6 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let check = |y: &str, m: &str| {
        let yy: u16 = y.parse().ok()?;
        let mm: u8 = m.parse().ok()?;
        ((2000..2100).contains(&yy) && (1..=12).contains(&mm)).then(|| format!("{y}{m}"))
    };
    check(&t[..4], &t[4..]).or_else(|| check(&t[2..], &t[..2]))
}

/// An amount as written: `5432.10`, `5 432,10`, `5.432,10`, `543210`. Returns the amount
/// in hundredths when it has decimals, and whether it had them.
pub fn amount(s: &str) -> Option<(u64, bool)> {
    let t: String = s
        .trim()
        .trim_end_matches("MAD")
        .trim_end_matches("DH")
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\''))
        .collect();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b',')
    {
        return None;
    }
    // The last separator followed by one or two digits is the decimal mark.
    let last = t.rfind(['.', ',']);
    let (int, frac) = match last {
        Some(i) if t.len() - i - 1 <= 2 && t.len() - i > 1 => (&t[..i], &t[i + 1..]),
        _ => (t.as_str(), ""),
    };
    let int: String = int.chars().filter(char::is_ascii_digit).collect();
    if int.is_empty() || int.len() > 12 {
        return None;
    }
    let whole: u64 = int.parse().ok()?;
    if frac.is_empty() {
        return Some((whole, false));
    }
    let mut cents: u64 = frac.parse().ok()?;
    if frac.len() == 1 {
        cents *= 10;
    }
    Some((whole * 100 + cents, true))
}

/// A small whole number.
pub fn small(s: &str) -> Option<u8> {
    s.trim().parse::<u8>().ok()
}

/// Mostly letters (Latin or Arabic), at least two of them.
pub fn name_like(s: &str) -> bool {
    let letters = s.chars().filter(|c| c.is_alphabetic()).count();
    let other = s
        .chars()
        .filter(|c| !c.is_alphabetic() && !matches!(c, ' ' | '-' | '\'' | '.'))
        .count();
    letters >= 2 && other == 0
}

/// Whether the text is written in Arabic script.
pub fn arabic(s: &str) -> bool {
    s.chars().any(|c| ('\u{0600}'..='\u{06ff}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert_eq!(cnss("123 456 789").as_deref(), Some("123456789"));
        assert_eq!(cnss("000000000"), None);
        assert_eq!(cnss("12345678"), None);
        assert_eq!(cin("be 123456").as_deref(), Some("BE123456"));
        assert_eq!(cin("AB"), None);
        assert_eq!(cin("A123"), Some("A123".into()));
        assert_eq!(cin("A12"), None);
        assert_eq!(date("02/01/1980").as_deref(), Some("1980-01-02"));
        assert_eq!(date("1980-13-02"), None);
        assert_eq!(period("202603").as_deref(), Some("202603"));
        assert_eq!(period("03/2026").as_deref(), Some("202603"));
        assert_eq!(period("199913"), None);
        assert_eq!(amount("5 432,10"), Some((543_210, true)));
        assert_eq!(amount("5.432,1"), Some((543_210, true)));
        assert_eq!(amount("5432.10 MAD"), Some((543_210, true)));
        assert_eq!(amount("543210"), Some((543_210, false)));
        assert_eq!(amount("12,345,678"), Some((12_345_678, false)));
        assert_eq!(amount("abc"), None);
        assert!(name_like("EL AMRANI Mohamed"));
        assert!(name_like("محمد العلوي"));
        assert!(!name_like("BE123456"));
        assert!(arabic("محمد") && !arabic("Mohamed"));
    }
}
