//! Delimited text (CSV, TSV, any delimiter) and JSON lines, one record per line.

/// Delimiters tried, most common first.
pub const DELIMITERS: [char; 5] = [',', ';', '\t', '|', ':'];

/// Splits one line on `delim`, honouring double quotes (`""` inside quotes is a quote).
/// A record spanning lines is not joined: each line stands alone, so one broken quote
/// costs one row, not the rest of the file.
pub fn split(line: &str, delim: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' if quoted => quoted = false,
            '"' if cur.trim().is_empty() => {
                cur.clear();
                quoted = true;
            }
            c if c == delim && !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// The delimiter that splits the sample lines into the same number (≥ 2) of fields most
/// consistently; `None` when no delimiter does (free text).
pub fn sniff(lines: &[&str]) -> Option<char> {
    let mut best: Option<(char, usize)> = None;
    for d in DELIMITERS {
        let widths: Vec<usize> = lines
            .iter()
            .filter(|l| !l.trim().is_empty())
            .map(|l| split(l, d).len())
            .collect();
        if widths.is_empty() {
            continue;
        }
        let mut counts = std::collections::HashMap::new();
        for w in &widths {
            *counts.entry(*w).or_insert(0usize) += 1;
        }
        let Some((&mode, &n)) = counts.iter().max_by_key(|(w, n)| (**n, **w)) else {
            continue;
        };
        if mode < 2 || n * 10 < widths.len() * 8 {
            continue;
        }
        let score = n * mode;
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((d, score));
        }
    }
    best.map(|(d, _)| d)
}

/// The fields of one JSON object line, flattened one level (`a.b`), as text; `None` when
/// the line is not a JSON object.
pub fn json_fields(line: &str) -> Option<Vec<(String, String)>> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let obj = v.as_object()?;
    let mut out = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        match v {
            serde_json::Value::Object(inner) => {
                for (k2, v2) in inner {
                    out.push((format!("{k}.{k2}"), scalar(v2)));
                }
            }
            other => out.push((k.clone(), scalar(other))),
        }
    }
    Some(out)
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_delimiters() {
        assert_eq!(
            split(r#"a,"b, c","d ""e""""#, ','),
            ["a", "b, c", r#"d "e""#]
        );
        assert_eq!(split("a;;b", ';'), ["a", "", "b"]);
        assert_eq!(sniff(&["a;b;c", "1;2;3", "4;5;6"]), Some(';'));
        assert_eq!(sniff(&["a\tb", "1\t2,5", "4\t5,5"]), Some('\t'));
        assert_eq!(sniff(&["Attestation de salaire", "Page 1"]), None);
    }

    #[test]
    fn json_lines_flatten_one_level() {
        let f = json_fields(r#"{"cnss":"123456789","salaire":5432.1,"p":{"nom":"X"}}"#).unwrap();
        assert!(f.contains(&("p.nom".into(), "X".into())));
        assert!(f.contains(&("salaire".into(), "5432.1".into())));
        assert_eq!(json_fields("[1,2]"), None);
        assert_eq!(json_fields("{broken"), None);
    }
}
