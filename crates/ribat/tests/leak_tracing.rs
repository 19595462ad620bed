//! Leak tracing, as the security team uses it: a generated fund held by a real node, read
//! by partners and clerks through the quorum (audited), then leaked dumps of every shape
//! scanned by the real binary and scored against the truth written beside them; and
//! hostile files that must end with a clear error or a partial result, in bounded memory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::*;
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// Runs `ribat sim leak`; returns its standard output.
fn sim(out: &Path, persons: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "sim",
        "leak",
        "--persons",
        persons,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = ribat(out.parent().unwrap(), &args);
    assert!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// `ribat leak scan` on the simulation's node, with its passphrase files.
fn scan(out: &Path, files: &[&Path], extra: &[&str]) -> std::process::Output {
    scan_in_blocks(out, files, extra, None)
}

/// The same, with blocks of rows of `block_kib` KiB: a dump larger than one block is read
/// twice and classified a block at a time.
fn scan_in_blocks(
    out: &Path,
    files: &[&Path],
    extra: &[&str],
    block_kib: Option<&str>,
) -> std::process::Output {
    let pass = format!("dir:{}", out.join("passphrases").display());
    let mut c = Command::new(env!("CARGO_BIN_EXE_ribat"));
    if let Some(k) = block_kib {
        c.env("RIBAT_LEAK_BLOCK_KIB", k);
    }
    c.arg("--home")
        .arg(out.join("node"))
        .args(["leak", "scan", "--passphrases", &pass])
        .args(extra)
        .args(files)
        .env_remove("RIBAT_HOME");
    c.output().unwrap()
}

/// The walk of the whole digest table and the lookup per person are two ways to the same
/// verdicts: every row's, the persons counted, the months, the attribution. So are
/// checking whole records first and checking every field on its own, and reading a dump
/// larger than a block twice, a block at a time (blocks of 16 KiB here: tens of them).
#[test]
fn the_walk_the_lookups_field_by_field_checks_and_blocks_give_the_same_verdicts() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("leak");
    sim(&out, "300", &[]);
    let mut compared = 0;
    for entry in std::fs::read_dir(out.join("dumps")).unwrap() {
        let dir = entry.unwrap().path();
        let files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_str().unwrap();
                name != "truth.csv" && name != "sources.txt" && p.is_file()
            })
            .collect();
        let files: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
        let mut seen = Vec::new();
        for (how, checks, block) in [
            ("walk", "records", None),
            ("lookups", "records", None),
            ("walk", "fields", None),
            ("walk", "records", Some("16")),
            ("lookups", "records", Some("16")),
        ] {
            let report = d.path().join(format!(
                "{}-{how}-{checks}-{}",
                dir.display(),
                block.unwrap_or("whole")
            ));
            let o = scan_in_blocks(
                &out,
                &files,
                &[
                    "--matching",
                    how,
                    "--checks",
                    checks,
                    "--report",
                    report.to_str().unwrap(),
                ],
                block,
            );
            assert!(
                o.status.success(),
                "{how} on {}: {}",
                dir.display(),
                text(&o)
            );
            let rows = std::fs::read_to_string(report.join("rows.jsonl")).unwrap();
            let mut summary: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(report.join("summary.json")).unwrap(),
            )
            .unwrap();
            summary.as_object_mut().unwrap().remove("seconds");
            seen.push((rows, summary));
        }
        assert!(!seen[0].0.is_empty(), "{}: no verdicts", dir.display());
        for other in &seen[1..] {
            assert_eq!(seen[0].0, other.0, "{}: verdicts differ", dir.display());
            assert_eq!(seen[0].1, other.1, "{}: summaries differ", dir.display());
        }
        compared += 1;
    }
    assert!(compared >= 15, "only {compared} dumps compared");
}

#[test]
fn every_leak_variant_is_told_apart_and_traced_to_its_recipient() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("leak");
    let json = sim(&out, "2000", &["--evaluate", "--json"]);
    let scores: serde_json::Value = serde_json::from_str(&json).unwrap();
    let scores = scores.as_array().unwrap();
    assert_eq!(scores.len(), 17, "one score per variant, exports included");
    for s in scores {
        let v = s["variant"].as_str().unwrap();
        let f = |k: &str| s[k].as_f64().unwrap();
        let rows = f("rows");
        assert!(rows >= 50.0, "{v}: {rows} rows");
        assert!(f("ours_precision") >= 0.99, "{v}: {s}");
        assert!(f("ours_recall") >= 0.99, "{v}: {s}");
        assert!(f("affected_recall") >= 0.99, "{v}: {s}");
        assert!(
            f("exact") / rows >= 0.98,
            "{v}: class exactly right too rarely: {s}"
        );
        assert_eq!(s["attribution_correct"], true, "{v}: {s}");
        // One recipient's dump names it from a handful of rows; a merge needs more.
        let fewest = s["fewest_rows"].as_u64().unwrap_or(u64::MAX);
        let merged = v.ends_with("merge");
        assert!(fewest <= if merged { 100 } else { 20 }, "{v}: {s}");
    }
    let by = |v: &str| scores.iter().find(|s| s["variant"] == v).unwrap();
    // Fabricated rows are called fabricated, altered ones altered, other datasets unmatched.
    let af = &by("altered-fabricated")["confusion"];
    assert!(
        af["fabricated"]["fabricated"].as_u64().unwrap() >= 50,
        "{af}"
    );
    assert!(af["altered"]["altered"].as_u64().unwrap() >= 50, "{af}");
    assert_eq!(af["genuine-current"].get("altered"), None, "{af}");
    let un = &by("unrelated")["confusion"]["unmatched"];
    assert_eq!(un.as_object().unwrap().len(), 1, "{un}");
    assert!(un["unmatched"].as_u64().unwrap() > 0);
    // Older e-BDS files are older, and forged lines altered.
    let eb = &by("ebds-older")["confusion"];
    assert!(
        eb["genuine-older"]["genuine-older"].as_u64().unwrap() > 100,
        "{eb}"
    );
    assert!(eb["altered"]["altered"].as_u64().unwrap() > 10, "{eb}");
    assert_eq!(by("honey")["confusion"]["honey"]["honey"], 1);
    // Canaries are canaries, and each export's own recipient is named.
    assert_eq!(by("export-canary")["confusion"]["canary"]["canary"], 2);
    assert_eq!(by("export-merge")["confusion"]["canary"]["canary"], 4);
    assert_eq!(
        by("export-merge")["named"],
        serde_json::json!(["partner.delta", "partner.epsilon"])
    );
    // The report a person reads says it, without any leaked value.
    let report =
        std::fs::read_to_string(out.join("dumps/altered-fabricated/scan/report.md")).unwrap();
    assert!(report.contains("| fabricated |"), "{report}");
    assert!(report.contains("partner.alpha"), "{report}");
    let truth = std::fs::read_to_string(out.join("dumps/full/truth.csv")).unwrap();
    let cnss = truth.lines().nth(1).unwrap().split(',').nth(3).unwrap();
    for f in ["report.md", "summary.json", "rows.jsonl"] {
        let t = std::fs::read_to_string(out.join("dumps/full/scan").join(f)).unwrap();
        assert!(!t.contains(cnss), "{f} holds a leaked CNSS number");
    }
    // Scanning with the CLI: the same verdicts, and the custodians logged the key opening.
    let o = scan(&out, &[&out.join("dumps/merge/dump.csv")], &[]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("most likely source: partner."), "{t}");
    let served = std::fs::read(out.join("node/custodians/custodian-1/served/journal")).unwrap();
    let openings = served
        .windows(b"open-leak-key".len())
        .filter(|w| w == b"open-leak-key")
        .count();
    // The import's opening, the evaluation's scans, and this one.
    assert!(
        openings >= 3,
        "{openings} openings of the leak key in custodian 1's log"
    );
}

/// The most memory `leak scan` held, from its own account (`RIBAT_LEAK_TIMING`), MiB.
fn peak_rss_mib(stderr: &str) -> u64 {
    let end = stderr
        .lines()
        .rfind(|l| l.starts_with("end:"))
        .unwrap_or_else(|| panic!("no end line in {stderr}"));
    let mib = end.split("peak rss ").nth(1).unwrap();
    mib.trim_end_matches(" MiB)").parse().unwrap()
}

/// The smallest xlsx a spreadsheet program opens: `top` rows (a header, genuine rows),
/// then `filler` rows holding only a number nobody holds, in one sheet of about 60 bytes a
/// row (inline strings: no shared-strings table).
fn spreadsheet(path: &Path, top: &[Vec<String>], filler: u32) {
    const TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#;
    const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
    const BOOK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    const BOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in [
        ("[Content_Types].xml", TYPES),
        ("_rels/.rels", RELS),
        ("xl/workbook.xml", BOOK),
        ("xl/_rels/workbook.xml.rels", BOOK_RELS),
    ] {
        z.start_file(name, opts).unwrap();
        z.write_all(body.as_bytes()).unwrap();
    }
    z.start_file("xl/worksheets/sheet1.xml", opts).unwrap();
    let mut w = std::io::BufWriter::new(&mut z);
    w.write_all(br#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#).unwrap();
    let mut r = 0u32;
    let mut row = |w: &mut dyn Write, cells: &[String]| {
        r += 1;
        write!(w, r#"<row r="{r}">"#).unwrap();
        for (c, v) in cells.iter().enumerate() {
            let col = char::from(b'A' + c as u8);
            write!(
                w,
                r#"<c r="{col}{r}" t="inlineStr"><is><t>{v}</t></is></c>"#
            )
            .unwrap();
        }
        w.write_all(b"</row>").unwrap();
    };
    for cells in top {
        row(&mut w, cells);
    }
    for i in 1..=filler {
        row(&mut w, &[format!("{}", 300_000_000 + i)]);
    }
    w.write_all(b"</sheetData></worksheet>").unwrap();
    drop(w);
    z.finish().unwrap();
}

/// Millions of rows, or a sheet that unpacks to over a hundred mebibytes, are scanned in at
/// most 512 MiB, and the report says in a few lines what it has to say: each genuine row,
/// and one line for each run of rows that name nobody.
#[test]
fn millions_of_rows_are_scanned_in_bounded_memory_with_a_report_that_grows_with_the_findings() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("leak");
    sim(&out, "300", &["--variant", "full"]);
    let genuine = std::fs::read_to_string(out.join("dumps/full/dump.csv")).unwrap();
    // The header and up to 100 genuine rows, then 2,000,000 rows of numbers nobody holds.
    let top: Vec<&str> = genuine.lines().take(101).collect();
    let n = top.len() as u64 - 1;
    assert!(n >= 50, "{n} genuine rows");
    let delim = if top[0].contains(';') { ';' } else { ',' };
    let columns = top[0].split(delim).count();
    let empty = delim.to_string().repeat(columns - 1);
    let csv = d.path().join("tiny.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
        for l in &top {
            writeln!(f, "{l}").unwrap();
        }
        for i in 1..=2_000_000u32 {
            writeln!(f, "{}{empty}", 300_000_000 + i).unwrap();
        }
    }
    let pass = format!("dir:{}", out.join("passphrases").display());
    let run = |file: &Path, report: &Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_ribat"))
            .arg("--home")
            .arg(out.join("node"))
            .args(["leak", "scan", "--passphrases", &pass, "--json", "--report"])
            .arg(report)
            .arg(file)
            .env("RIBAT_LEAK_TIMING", "1")
            .env_remove("RIBAT_HOME")
            .env_remove("RIBAT_LEAK_BLOCK_KIB")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let rows = std::fs::read_to_string(report.join("rows.jsonl")).unwrap();
        (s, peak_rss_mib(&String::from_utf8_lossy(&o.stderr)), rows)
    };
    let (s, peak, rows) = run(&csv, &d.path().join("report-csv"));
    assert_eq!(s["rows"], 2_000_000 + n, "{s}");
    assert_eq!(s["ours"], n, "the genuine rows among them: {s}");
    assert!(peak <= 512, "{peak} MiB for {} rows", 2_000_000 + n);
    // The genuine rows, then one run of 2,000,000 rows naming nobody.
    assert_eq!(
        rows.lines().count() as u64,
        n + 1,
        "{}",
        &rows[..rows.len().min(2000)]
    );
    let run_line: serde_json::Value = serde_json::from_str(rows.lines().last().unwrap()).unwrap();
    assert_eq!(run_line["rows"], 2_000_000, "{run_line}");
    assert_eq!(run_line["class"], "fabricated", "{run_line}");

    // The same as a sheet (about 120 MiB unpacked).
    let cells: Vec<Vec<String>> = top
        .iter()
        .map(|l| l.split(delim).map(str::to_owned).collect())
        .collect();
    let xlsx = d.path().join("big.xlsx");
    spreadsheet(&xlsx, &cells, 2_000_000);
    let (s, peak, rows) = run(&xlsx, &d.path().join("report-xlsx"));
    assert_eq!(s["rows"], 2_000_000 + n, "{s}");
    assert_eq!(s["ours"], n, "{s}");
    assert!(
        peak <= 512,
        "{peak} MiB for a sheet of {} rows",
        2_000_000 + n
    );
    assert_eq!(
        rows.lines().count() as u64,
        n + 1,
        "{}",
        &rows[..rows.len().min(2000)]
    );
}

#[test]
fn hostile_dumps_end_with_a_clear_error_or_a_partial_result_in_bounded_memory() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("leak");
    sim(&out, "300", &["--variant", "full"]);
    let genuine = std::fs::read_to_string(out.join("dumps/full/dump.csv")).unwrap();
    let lines: Vec<&str> = genuine.lines().collect();

    // Binary garbage and an empty spreadsheet container: refused by name; nothing read.
    let garbage = d.path().join("garbage.csv");
    let bytes: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(&garbage, bytes).unwrap();
    let o = scan(&out, &[&garbage], &[]);
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("binary data") && t.contains("no file could be read"),
        "{t}"
    );

    // An empty file says so, and is not taken for a dump of nothing.
    let empty = d.path().join("empty.csv");
    std::fs::write(&empty, b"").unwrap();
    let o = scan(&out, &[&empty], &[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("the file is empty"), "{t}");

    // A 2 GB line between genuine rows, and a line that is not UTF-8, in a process whose
    // address space is capped at 1 GiB: the rows around them are read, the rest reported.
    let big = d.path().join("big.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        writeln!(f, "{}", lines[0]).unwrap();
        writeln!(f, "{}", lines[1]).unwrap();
        let chunk = vec![b'7'; 1 << 20];
        for _ in 0..2048 {
            f.write_all(&chunk).unwrap();
        }
        writeln!(f).unwrap();
        f.write_all(b"\xff\xfe broken,\xc3\x28 bytes\n").unwrap();
        writeln!(f, "{}", lines[2]).unwrap();
    }
    let pass = format!("dir:{}", out.join("passphrases").display());
    let o = Command::new("sh")
        .arg("-c")
        .arg(
            "ulimit -v 1048576 && exec \"$0\" --home \"$1\" leak scan --passphrases \"$2\" --json \"$3\"",
        )
        .arg(env!("CARGO_BIN_EXE_ribat"))
        .arg(out.join("node"))
        .arg(&pass)
        .arg(&big)
        .env_remove("RIBAT_HOME")
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["ours"], 2, "the rows before and after: {s}");
    let skipped = &s["files"][0]["skipped"];
    assert_eq!(skipped["line longer than 1048576 bytes"], 1, "{s}");
    assert_eq!(
        skipped["not valid UTF-8 (read with replacement characters)"], 1,
        "{s}"
    );

    // A spreadsheet and a PDF are named, with what to do; a good file beside them is read.
    let xlsx = d.path().join("dump.xlsx");
    std::fs::write(&xlsx, b"PK\x03\x04not really a zip").unwrap();
    let pdf = d.path().join("dump.pdf");
    std::fs::write(&pdf, b"%PDF-1.7\n%binary").unwrap();
    let good = out.join("dumps/full/dump.csv");
    let o = scan(&out, &[&xlsx, &pdf, &good], &[]);
    let t = text(&o);
    // Exit 2: scanned, but some files were refused (documented in `leak scan --help`).
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("2 of 3 files were refused"), "{t}");
    assert!(
        t.contains("refused") && t.contains("dump.xlsx") && t.contains("damaged ZIP"),
        "{t}"
    );
    assert!(t.contains("pdftotext"), "{t}");
    assert!(
        t.contains(&format!("{} are the fund's data", lines.len() - 1)),
        "{t}"
    );
}

#[test]
fn an_export_through_the_api_is_approved_with_two_certificates_and_fetched_by_its_recipient_alone()
{
    use common::api::{Caller, add, identity, problem, start};
    use sha2::Digest as _;
    let d = tempfile::tempdir().unwrap();
    let (src, home, fund) = fund_and_keys(d.path(), 300, 30, 1, 9);
    ok(ribat(
        &home,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
    ));
    ok(ribat(&home, &["identity", "init"]));
    for (name, role) in [
        ("partner.delta", "partner"),
        ("partner.other", "partner"),
        ("sec.amina", "security"),
        ("sec.karim", "security"),
        ("clerk.1", "clerk"),
        ("audit.1", "auditor"),
    ] {
        add(&home, name, role, "x");
    }
    let gw = start(
        &home,
        &["serve", "--listen", "127.0.0.1:0", "--passphrases", "env"],
        &[],
    );
    let ca = identity(&home, "gateway.embedded").join("ca.pem");
    let who = |name: &str| Caller::new(&home, &ca, &gw, name);
    let (amina, karim, delta, other, clerk, auditor) = (
        who("sec.amina"),
        who("sec.karim"),
        who("partner.delta"),
        who("partner.other"),
        who("clerk.1"),
        who("audit.1"),
    );
    let numbers: Vec<String> = fund
        .persons
        .iter()
        .filter(|p| !p.honey)
        .take(40)
        .map(|p| p.cnss.clone())
        .collect();
    let body = |recipient: &str, cnss: &[String]| serde_json::json!({"recipient": recipient, "purpose": "partner-export", "cnss": cnss});

    // Filing: administrators only, a partner as recipient, real numbers.
    let r = clerk.post("/v1/exports", body("partner.delta", &numbers));
    assert_eq!((r.status, problem(&r).as_str()), (403, "role-not-allowed"));
    let r = amina.post("/v1/exports", body("clerk.1", &numbers));
    assert_eq!((r.status, problem(&r).as_str()), (422, "export-invalid"));
    let r = amina.post("/v1/exports", body("partner.delta", &["12345".to_owned()]));
    assert_eq!((r.status, problem(&r).as_str()), (422, "export-invalid"));
    let r = amina.post(
        "/v1/exports",
        serde_json::json!({"recipient": "partner.delta"}),
    );
    assert_eq!((r.status, problem(&r).as_str()), (400, "bad-body"));
    let r = amina.post("/v1/exports", body("partner.delta", &numbers));
    assert_eq!(r.status, 201, "{r:?}");
    let state = r.json();
    let id = state["id"].as_str().unwrap().to_owned();
    assert_eq!(state["persons"], 40);
    assert_eq!(state["requested_by"], "sec.amina");
    assert_eq!(state["approvals"], serde_json::json!([]));
    assert!(
        !String::from_utf8_lossy(&r.body).contains(&numbers[0]),
        "the state never lists the persons"
    );
    let path = |tail: &str| format!("/v1/exports/{id}{tail}");

    // Approvals: each with its own certificate; not twice, not by the recipient.
    let r = amina.post(&path("/run"), serde_json::json!({}));
    assert_eq!((r.status, problem(&r).as_str()), (409, "export-refused"));
    let r = amina.post(&path("/approve"), serde_json::json!({}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["approvals"], serde_json::json!(["sec.amina"]));
    let r = amina.post(&path("/approve"), serde_json::json!({}));
    assert_eq!((r.status, problem(&r).as_str()), (409, "export-refused"));
    let r = delta.post(&path("/approve"), serde_json::json!({}));
    assert_eq!((r.status, problem(&r).as_str()), (403, "role-not-allowed"));
    let r = amina.post(&path("/run"), serde_json::json!({}));
    assert!(
        r.status == 409 && String::from_utf8_lossy(&r.body).contains("1 approval"),
        "{r:?}"
    );
    let r = delta.get(&path("/file"));
    assert_eq!((r.status, problem(&r).as_str()), (409, "export-refused"));
    let r = karim.post(&path("/approve"), serde_json::json!({}));
    assert_eq!(
        r.json()["approvals"],
        serde_json::json!(["sec.amina", "sec.karim"])
    );

    // The run: 40 persons and 2 canaries, the manifest sealed; once only.
    let r = karim.post(&path("/run"), serde_json::json!({}));
    assert_eq!(r.status, 200, "{r:?}");
    let ran = r.json();
    assert_eq!(ran["rows"], 42);
    let r = karim.post(&path("/run"), serde_json::json!({}));
    assert_eq!((r.status, problem(&r).as_str()), (409, "export-refused"));

    // The file: its recipient alone takes it; an administrator is told so, another
    // partner learns nothing of it.
    let r = amina.get(&path("/file"));
    assert_eq!((r.status, problem(&r).as_str()), (403, "not-the-recipient"));
    for stranger in [&other, &clerk] {
        assert_eq!(stranger.get(&path("/file")).status, 404);
        assert_eq!(stranger.get(&path("")).status, 404);
    }
    assert_eq!(auditor.get(&path("")).status, 200);
    let r = delta.get(&path("/file"));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.content_type.starts_with("text/csv"), "{}", r.content_type);
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&r.body)),
        ran["file_sha256"].as_str().unwrap()
    );
    let file = String::from_utf8(r.body).unwrap();
    assert_eq!(file.lines().count(), 43, "a header and 42 rows");
    let seen = delta.get(&path("")).json();
    assert_eq!(seen["fetched"][0][0], "partner.delta", "{seen}");
    drop(gw);

    // The file turns up on a forum: its canaries name the recipient.
    let leaked = d.path().join("forum.csv");
    std::fs::write(&leaked, &file).unwrap();
    let o = ribat(
        &home,
        &[
            "leak",
            "scan",
            leaked.to_str().unwrap(),
            "--json",
            "--passphrases",
            "env",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["classes"]["canary"], 2, "{s}");
    assert!(
        s["canaries"]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| k.starts_with(&format!("partner.delta (export {id})"))),
        "{s}"
    );
}

#[test]
fn an_export_needs_two_administrators_and_its_canaries_name_the_recipient() {
    let d = tempfile::tempdir().unwrap();
    let (src, home, fund) = fund_and_keys(d.path(), 400, 40, 1, 5);
    ok(ribat(
        &home,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
    ));
    ok(ribat(&home, &["identity", "init"]));
    for (name, role) in [
        ("partner.delta", "partner"),
        ("sec.amina", "security"),
        ("sec.karim", "security"),
        ("clerk.rabat.01", "clerk"),
    ] {
        ok(ribat(
            &home,
            &["identity", "add", "--name", name, "--role", role],
        ));
    }
    let query = d.path().join("query.csv");
    let mut q = String::from("cnss\n");
    for p in fund.persons.iter().filter(|p| !p.honey).take(50) {
        q.push_str(&p.cnss);
        q.push('\n');
    }
    std::fs::write(&query, q).unwrap();
    let t = ok(ribat(
        &home,
        &[
            "export",
            "request",
            "--recipient",
            "partner.delta",
            "--query",
            query.to_str().unwrap(),
            "--as",
            "clerk.rabat.01",
        ],
    ));
    let id = t.split_whitespace().nth(1).unwrap().to_owned();
    let out = d.path().join("to-delta.csv");
    let run = |home: &Path| {
        ribat(
            home,
            &[
                "export",
                "run",
                &id,
                "--out",
                out.to_str().unwrap(),
                "--passphrases",
                "env",
            ],
        )
    };
    // Nobody's approval, then one: it does not run. Neither the recipient, a clerk, nor the
    // same administrator twice counts.
    let o = run(&home);
    assert!(
        !o.status.success() && text(&o).contains("0 approval"),
        "{}",
        text(&o)
    );
    ok(ribat(
        &home,
        &["export", "approve", &id, "--as", "sec.amina"],
    ));
    for who in ["sec.amina", "partner.delta", "clerk.rabat.01"] {
        let o = ribat(&home, &["export", "approve", &id, "--as", who]);
        assert!(!o.status.success(), "{who} approved: {}", text(&o));
    }
    let o = run(&home);
    assert!(
        !o.status.success() && text(&o).contains("1 approval"),
        "{}",
        text(&o)
    );
    ok(ribat(
        &home,
        &["export", "approve", &id, "--as", "sec.karim"],
    ));
    let t = ok(run(&home));
    assert!(t.contains("52 rows (2 canaries)"), "{t}");
    let o = run(&home);
    assert!(
        !o.status.success() && text(&o).contains("already ran"),
        "{}",
        text(&o)
    );
    // The manifest is sealed: the recipient's name is nowhere in the store in clear.
    let store = std::fs::read(home.join("store.sqlite")).unwrap();
    assert!(!store.windows(13).any(|w| w == b"partner.delta"));

    // The file turns up on a forum: the canaries in it name the recipient.
    let text_out = std::fs::read_to_string(&out).unwrap();
    let leaked = d.path().join("forum.csv");
    std::fs::write(&leaked, &text_out).unwrap();
    let o = ribat(
        &home,
        &[
            "leak",
            "scan",
            leaked.to_str().unwrap(),
            "--json",
            "--passphrases",
            "env",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(s["classes"]["genuine-current"], 50, "{s}");
    assert_eq!(s["classes"]["canary"], 2, "{s}");
    let canaries = s["canaries"].as_object().unwrap();
    assert_eq!(canaries.len(), 1, "{s}");
    assert!(
        canaries
            .keys()
            .next()
            .unwrap()
            .starts_with(&format!("partner.delta (export {id})"))
    );
    assert_eq!(s["affected_persons"], 50, "canaries are nobody: {s}");
    // The audit log names the export's reads too.
    assert_eq!(
        s["candidates"][0]["identity"], "export/partner.delta",
        "{s}"
    );

    // The notification list: only with two security administrators, then every affected
    // person in clear (the canaries are nobody), each read logged.
    let report = d.path().join("scan");
    ok(ribat(
        &home,
        &[
            "leak",
            "scan",
            leaked.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--passphrases",
            "env",
        ],
    ));
    let list = d.path().join("notify.csv");
    let notify = |who: &[&str]| {
        let mut args = vec![
            "leak",
            "notify",
            report.to_str().unwrap(),
            "--out",
            list.to_str().unwrap(),
            "--passphrases",
            "env",
        ];
        for w in who {
            args.extend(["--as", w]);
        }
        ribat(&home, &args)
    };
    for who in [
        &["sec.amina"][..],
        &["sec.amina", "sec.amina"],
        &["sec.amina", "clerk.rabat.01"],
    ] {
        let o = notify(who);
        assert!(!o.status.success(), "{who:?}: {}", text(&o));
        assert!(!list.exists());
    }
    let t = ok(notify(&["sec.amina", "sec.karim"]));
    assert!(t.contains("50 affected persons"), "{t}");
    let csv = std::fs::read_to_string(&list).unwrap();
    assert_eq!(csv.lines().count(), 51, "{csv}");
    for p in fund.persons.iter().filter(|p| !p.honey).take(50) {
        assert!(
            csv.contains(&p.cnss) && csv.contains(&p.surname),
            "{} missing",
            p.cnss
        );
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&list).unwrap().permissions().mode() & 0o077,
        0
    );
    let audit = std::fs::read(home.join("audit/journal")).unwrap();
    let logged = audit
        .windows(b"breach-notification".len())
        .filter(|w| w == b"breach-notification")
        .count();
    assert_eq!(logged, 50, "one audit entry per notified person");
}
