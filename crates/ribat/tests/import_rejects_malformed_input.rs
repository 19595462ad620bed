//! Malformed e-BDS and CSV files: each refused file or line is named with its reason in
//! the report; everything valid is imported; nothing is dropped silently. A declaration
//! file is accepted or refused whole: a wrong line (a control sum that does not match,
//! an amount that is not digits) refuses the file at that line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::*;
use ribat_store::Store;

fn ebds_files(src: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(src.join("ebds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn edit(path: &std::path::Path, f: impl Fn(&mut Vec<String>)) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    f(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn every_malformed_file_and_line_is_reported_by_name_and_the_rest_imported() {
    let d = tempfile::tempdir().unwrap();
    let (src, home, fund) = fund_and_keys(d.path(), 600, 60, 1, 3);
    let files = ebds_files(&src);
    let name = |i: usize| files[i].file_name().unwrap().to_str().unwrap().to_owned();
    // 0: a line one character too long.  1: truncated (no B05/B06).  2: a byte that is not
    // ASCII.  3: non-digits in an amount.  4: a line whose control sum is wrong while the
    // totals were adjusted (a careless forger): the whole file is refused.
    edit(&files[0], |l| l[2].push(' '));
    edit(&files[1], |l| l.truncate(l.len() - 2));
    let mut raw = std::fs::read(&files[2]).unwrap();
    raw[300] = 0xe9;
    std::fs::write(&files[2], raw).unwrap();
    edit(&files[3], |l| l[2].replace_range(120..123, "1O0"));
    edit(&files[4], |l| {
        let b02 = l
            .iter()
            .position(|x| x.starts_with("B02"))
            .expect("a B02 line");
        let b03 = l.iter().position(|x| x.starts_with("B03")).unwrap();
        let b06 = l.len() - 1;
        for (i, at, w) in [(b02, 113, 13), (b03, 97, 15), (b06, 43, 15)] {
            let v: u64 = l[i][at..at + w].parse().unwrap();
            l[i].replace_range(at..at + w, &format!("{:0w$}", v + 1));
        }
    });
    // A persons.csv row with a broken RIB key, one with an impossible date, a duplicate.
    let persons = std::fs::read_to_string(src.join("persons.csv")).unwrap();
    let mut rows: Vec<String> = persons.lines().map(str::to_owned).collect();
    let mut fields: Vec<String> = rows[5].split(',').map(str::to_owned).collect();
    let rib = &mut fields[7];
    let last = rib.pop().unwrap();
    rib.push(if last == '9' {
        '0'
    } else {
        char::from(last as u8 + 1)
    });
    rows[5] = fields.join(",");
    let dup = rows[7].clone();
    rows.push(dup);
    std::fs::write(src.join("persons.csv"), rows.join("\n") + "\n").unwrap();
    std::fs::write(src.join("notes.txt"), b"not for import").unwrap();

    let out = ok(ribat(
        &home,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
    ));
    let report = std::fs::read_to_string(home.join("import-rejects.csv")).unwrap();
    let has = |file: &str, line: &str, reason: &str| {
        report.lines().any(|l| {
            l.contains(file)
                && (line.is_empty() || l.contains(&format!(",{line},")))
                && l.contains(reason)
        })
    };
    assert!(has(&name(0), "3", "261 characters"), "{report}");
    assert!(has(&name(1), "", "truncated"), "{report}");
    assert!(has(&name(2), "2", "not ASCII"), "{report}");
    // The line that is wrong is the one reported, the totals it upsets after it.
    assert!(
        has(&name(3), "3", "file refused: N_Salaire_Reel"),
        "{report}"
    );
    assert!(has(&name(3), "", "likely cause"), "{report}");
    assert!(
        has(&name(4), "3", "file refused: control sum S_Ctr"),
        "{report}"
    );
    assert!(
        has("persons.csv", "6", "rib is not 24 digits with a valid key"),
        "{report}"
    );
    assert!(
        has(
            "persons.csv",
            &(rows.len()).to_string(),
            "CNSS number already on line 8"
        ),
        "{report}"
    );
    assert!(
        has("notes.txt", "0", "not a file ribat imports"),
        "{report}"
    );
    assert!(out.contains("files or lines rejected"), "{out}");
    // No personal value is quoted in the report.
    let p5 = &fund.persons[4];
    assert!(!report.contains(&p5.cnss) && !report.contains(&p5.rib));

    // Everything else is in: all employers, all persons but the bad row, declarations of
    // the untouched files.
    let store = ribat_store::SqliteStore::open(&home.join("store.sqlite")).unwrap();
    assert_eq!(
        store.count("employers").unwrap(),
        fund.employers.len() as u64
    );
    assert_eq!(
        store.count("persons").unwrap(),
        fund.persons.len() as u64 - 1
    );
    // Declarations: every line of the untouched files, none of the five refused ones (a
    // file is one declaration, accepted or refused whole).
    let employee_lines: usize = files[5..]
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| {
                    l.starts_with("B02") || (l.starts_with("B04") && !l[16..25].trim().is_empty())
                })
                .count()
        })
        .sum();
    assert!(employee_lines > 0);
    assert_eq!(store.count("declarations").unwrap(), employee_lines as u64);
}

#[test]
fn nothing_to_import_and_a_missing_path_are_clear_errors() {
    let d = tempfile::tempdir().unwrap();
    let (_, home, _) = fund_and_keys(d.path(), 50, 5, 1, 1);
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = ribat(
        &home,
        &["import", empty.to_str().unwrap(), "--passphrases", "env"],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("nothing to import"), "{}", text(&o));
    let o = ribat(&home, &["import", "/no/such/dir", "--passphrases", "env"]);
    assert!(
        text(&o).contains("cannot read /no/such/dir"),
        "{}",
        text(&o)
    );
}
