//! Text extracted from PDFs (attestations de déclaration de salaires, nominal lists):
//! no columns, so each line with a CNSS or CIN token is a row, read by token shape.
//! Extraction damage is repaired where it is unambiguous: a mostly-digit token with `O`
//! for `0` or `l`/`I` for `1`, digits split by spaces inside a nine-digit number.

use crate::row::{self, LeakRow};

/// Reads documents line by line, remembering the period a page header announced.
#[derive(Debug, Default)]
pub struct TextReader {
    period: Option<String>,
}

fn repair(token: &str) -> String {
    let digits = token.chars().filter(char::is_ascii_digit).count();
    if token.len() >= 6 && digits * 10 >= token.len() * 7 {
        token
            .chars()
            .map(|c| match c {
                'O' | 'o' => '0',
                'l' | 'I' | '|' => '1',
                c => c,
            })
            .collect()
    } else {
        token.to_owned()
    }
}

/// The tokens of a line. Layout-preserving extraction (`pdftotext -layout`) separates
/// columns by two spaces or more and writes `5 432,10` with single spaces: a column that
/// is a spaced number is one token. Without such gaps, digit groups are joined by shape.
fn tokenize(line: &str) -> Vec<String> {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| c.is_whitespace() || matches!(c, '|' | ';'))
            .filter(|t| !t.is_empty())
            .map(repair)
            .collect()
    };
    if !line.contains("  ") {
        return merge_groups(words(line));
    }
    let mut out = Vec::new();
    for column in line.split("  ").map(str::trim).filter(|c| !c.is_empty()) {
        let spaced_number = column.contains(' ')
            && column
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, ' ' | ',' | '.' | 'O' | 'o'));
        if spaced_number {
            out.push(repair(&column.replace(' ', "")));
        } else {
            out.extend(words(column));
        }
    }
    out
}

/// `5 432,10` and `123 456 789` arrive as several tokens: a group of one to three digits
/// followed by groups of exactly three (the last may carry decimals) is one number.
fn merge_groups(tokens: Vec<String>) -> Vec<String> {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let group = |t: &str| {
        let (int, frac) = t.split_once([',', '.']).unwrap_or((t, ""));
        int.len() == 3 && digits(int) && (frac.is_empty() || (frac.len() == 2 && digits(frac)))
    };
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut open = false;
    for t in tokens {
        if open
            && group(&t)
            && let Some(last) = out.last_mut()
        {
            open = !t.contains([',', '.']);
            last.push_str(&t);
            continue;
        }
        open = (1..=3).contains(&t.len()) && digits(&t);
        out.push(t);
    }
    out
}

impl TextReader {
    /// The row of one line of text, if it names somebody.
    pub fn row(&mut self, line: &str, file: u32, number: u64) -> Option<LeakRow> {
        let lower = line.to_lowercase();
        let tokens = tokenize(line);
        if ["période", "periode", "mois", "الفترة"]
            .iter()
            .any(|w| lower.contains(w))
            && let Some(p) = tokens.iter().find_map(|t| row::period(t))
        {
            self.period = Some(p);
        }
        let mut r = LeakRow {
            file,
            line: number,
            period: self.period.clone(),
            ..LeakRow::default()
        };
        // A nine-digit number split as 3+3+3 or 3+6 by the extraction.
        let mut i = 0;
        while i < tokens.len() && r.cnss.is_none() {
            r.cnss = row::cnss(&tokens[i]);
            for span in 2..=3 {
                if r.cnss.is_none() && i + span <= tokens.len() {
                    let joined: String = tokens[i..i + span].concat();
                    if tokens[i..i + span]
                        .iter()
                        .all(|t| t.bytes().all(|b| b.is_ascii_digit()))
                    {
                        r.cnss = row::cnss(&joined);
                    }
                }
            }
            i += 1;
        }
        let mut name_words: Vec<&str> = Vec::new();
        let mut best_name: Vec<&str> = Vec::new();
        let mut amounts = Vec::new();
        for t in &tokens {
            if r.cin.is_none() && !t.bytes().all(|b| b.is_ascii_digit()) {
                r.cin = row::cin(t);
                if r.cin.is_some() {
                    continue;
                }
            }
            if r.birth.is_none()
                && let Some(d) = row::date(t)
            {
                r.birth = Some(d);
                continue;
            }
            if row::name_like(t) && t.chars().any(char::is_uppercase) || row::arabic(t) {
                name_words.push(t);
                continue;
            }
            if name_words.len() > best_name.len() {
                best_name = std::mem::take(&mut name_words);
            }
            name_words.clear();
            if let Some((v, true)) = row::amount(t) {
                amounts.push(v);
            } else if r.days.is_none()
                && let Some(d) = row::small(t).filter(|d| (1..=31).contains(d))
            {
                r.days = Some(d);
            }
        }
        if name_words.len() > best_name.len() {
            best_name = name_words;
        }
        if best_name.len() >= 2 {
            let name = best_name.join(" ");
            if row::arabic(&name) {
                r.name_ar = Some(name);
            } else {
                r.name = Some(name);
            }
        }
        // The real salary is the largest amount of its line (the capped one is smaller).
        r.salary = amounts.into_iter().max();
        (r.cnss.is_some() || r.cin.is_some()).then_some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attestation_lines_become_rows_and_damage_is_repaired() {
        let mut t = TextReader::default();
        assert!(
            t.row("ATTESTATION DE DÉCLARATION DE SALAIRES", 0, 1)
                .is_none()
        );
        assert!(t.row("Période : 03/2026   Affilié 1234567", 0, 2).is_none());
        let r = t
            .row(
                "123 456 789  ALAMI MOHAMED   BE123456   26   5 432,10   5 432,10",
                0,
                3,
            )
            .unwrap();
        assert_eq!(r.cnss.as_deref(), Some("123456789"));
        assert_eq!(r.cin.as_deref(), Some("BE123456"));
        assert_eq!(r.name.as_deref(), Some("ALAMI MOHAMED"));
        assert_eq!(r.period.as_deref(), Some("202603"));
        assert_eq!(r.days, Some(26));
        let r = t
            .row(
                "129 766 127   HAJJI YOUSSOUF   AB887206   8   998,82   998,82",
                0,
                4,
            )
            .unwrap();
        assert_eq!((r.days, r.salary), (Some(8), Some(99_882)));
        let r = t
            .row(
                "129 765 193   CHRAIBI ABDERRAHIM   GA810881   26   112 000,00   6 000,00",
                0,
                5,
            )
            .unwrap();
        assert_eq!((r.days, r.salary), (Some(26), Some(11_200_000)));
        let damaged = t.row("12345678O BENANI FATIMA 12000,00", 0, 4).unwrap();
        assert_eq!(damaged.cnss.as_deref(), Some("123456780"));
        assert_eq!(damaged.salary, Some(1_200_000));
    }
}
