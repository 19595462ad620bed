//! e-BDS declaration files read leniently: every employee line (B02, B04, and the fund's
//! A02 / complementary E02, E04 of the same layout) becomes a row; its control sum
//! (`S_Ctr`) is recomputed, since fabricated files often fail it.

use crate::row::{self, LeakRow};
use ribat_import::ebds::{LINE_LEN, SITUATIONS};

/// Whether a line looks like an e-BDS line: the full width and a known record type.
pub fn is_ebds_line(line: &str) -> bool {
    line.len() == LINE_LEN
        && line.is_ascii()
        && matches!(line.get(..1), Some("A" | "B" | "E"))
        && line
            .as_bytes()
            .get(1..3)
            .is_some_and(|t| t.iter().all(u8::is_ascii_digit))
}

fn num(line: &str, from: usize, to: usize) -> Option<u64> {
    let s = line.get(from..to)?.trim();
    if s.is_empty() {
        return Some(0);
    }
    s.parse().ok()
}

/// The row of an employee line, or `None` for header and total lines.
pub fn employee_row(line: &str, file: u32, number: u64) -> Option<LeakRow> {
    let kind = line.get(1..3)?;
    let period = line.get(10..16).and_then(row::period);
    let cnss_text = line.get(16..25)?;
    // The placeholder B04 line of a file without entrants names nobody.
    if cnss_text.trim().trim_start_matches('0').is_empty() && line.get(25..85)?.trim().is_empty() {
        return None;
    }
    let name = line
        .get(25..85)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let cnss_n = num(line, 16, 25);
    let (days, real, cin, ctr, sum) = match kind {
        "02" => {
            let days = num(line, 111, 113)?;
            let real = num(line, 113, 126)?;
            let capped = num(line, 126, 135)?;
            let reverse = num(line, 105, 111)?;
            let situation = line.get(135..137)?.trim();
            let rank = SITUATIONS
                .iter()
                .find(|(c, _)| *c == situation)
                .map(|(_, r)| *r);
            let ctr = num(line, 137, 156)?;
            let sum = rank.map(|r| cnss_n.unwrap_or(0) + reverse + days + real + capped + r);
            (days, real, None, ctr, sum)
        }
        "04" => {
            let cin = line.get(85..93).and_then(row::cin);
            let days = num(line, 93, 95)?;
            let real = num(line, 95, 108)?;
            let capped = num(line, 108, 117)?;
            let ctr = num(line, 117, 136)?;
            (
                days,
                real,
                cin,
                ctr,
                Some(cnss_n.unwrap_or(0) + days + real + capped),
            )
        }
        _ => return None,
    };
    Some(LeakRow {
        file,
        line: number,
        cnss: row::cnss(cnss_text),
        cin,
        name,
        salary: Some(real),
        days: u8::try_from(days).ok(),
        period,
        control_sum_fails: sum != Some(ctr),
        ..LeakRow::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ribat_import::ebds::{Header, write};
    use ribat_import::model::DeclarationRow;

    #[test]
    fn employee_lines_are_read_and_control_sums_checked() {
        let h = Header {
            affiliation: "1234567".into(),
            period: "202603".into(),
            name: "ATLAS".into(),
            activity: "X".into(),
            address: "Y".into(),
            city: "Rabat".into(),
            postal_code: "10000".into(),
            agency: "01".into(),
            issued: "20260401".into(),
            due: "20260410".into(),
        };
        let d = DeclarationRow {
            affiliation: "1234567".into(),
            period: "202603".into(),
            cnss: "123456789".into(),
            nom_prenom: "ALAMI MOHAMED".into(),
            cin: None,
            children: 2,
            allowance: 0,
            days: 26,
            salary_real: 543_210,
            salary_capped: 543_210,
            situation: String::new(),
            entrant: false,
        };
        let text = write(&h, &[d]).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.iter().all(|l| is_ebds_line(l)));
        let rows: Vec<LeakRow> = lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| employee_row(l, 0, i as u64 + 1))
            .collect();
        assert_eq!(rows.len(), 1, "only the employee line");
        let r = &rows[0];
        assert_eq!(r.cnss.as_deref(), Some("123456789"));
        assert_eq!((r.salary, r.days), (Some(543_210), Some(26)));
        assert_eq!(r.period.as_deref(), Some("202603"));
        assert!(!r.control_sum_fails);
        // A forger who changes the salary but not the control sum is caught.
        let b02 = lines.iter().find(|l| l.starts_with("B02")).unwrap();
        let forged = format!("{}{}{}", &b02[..113], "0000000999999", &b02[126..]);
        assert!(employee_row(&forged, 0, 1).unwrap().control_sum_fails);
    }
}
