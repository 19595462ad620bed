//! Labelled leaked dumps made from a generated fund, for measuring leak tracing: each
//! variant is one way a real dump differs from the vault, and every row carries the truth
//! (its class, its person, its source) in a file beside it.

use crate::fund::{Declaration, Fund, Person};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha12Rng;
use ribat_import::ebds::{Header, write as write_ebds};
use ribat_import::model::DeclarationRow;
use std::collections::HashMap;
use std::fmt::Write as _;

/// Ways a dump differs from the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Every person one recipient read, every column, the current month, a CSV.
    Full,
    /// A tenth of them.
    Sampled,
    /// CIN, full name and birth date only: no CNSS number.
    Columns,
    /// No header, columns in another order, salaries in dirhams with decimals.
    Reordered,
    /// Salaries rounded to 100 dirhams.
    Rounded,
    /// A seventh of the rows altered (salary, CIN or name), a seventh made up.
    AlteredFabricated,
    /// The recipient's rows, and a file of an unrelated dataset (a phone directory).
    Unrelated,
    /// Attestations as text extracted from PDFs, with extraction damage.
    PdfText,
    /// Two recipients' exports merged.
    Merge,
    /// A recipient whose reads included a honey person.
    Honey,
    /// Arabic names, semicolons, Windows-1256.
    Arabic1256,
    /// French headers in Latin-1, tabs.
    Latin1,
    /// JSON lines with nested objects.
    Jsonl,
    /// e-BDS files of an older month, some lines forged without fixing their control sums.
    EbdsOlder,
    /// A spreadsheet (xlsx) with numbers typed as numbers.
    Xlsx,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 15] = [
        Variant::Full,
        Variant::Sampled,
        Variant::Columns,
        Variant::Reordered,
        Variant::Rounded,
        Variant::AlteredFabricated,
        Variant::Unrelated,
        Variant::PdfText,
        Variant::Merge,
        Variant::Honey,
        Variant::Arabic1256,
        Variant::Latin1,
        Variant::Jsonl,
        Variant::EbdsOlder,
        Variant::Xlsx,
    ];

    /// Its name (directory and table row).
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Sampled => "sampled",
            Self::Columns => "columns",
            Self::Reordered => "reordered",
            Self::Rounded => "rounded",
            Self::AlteredFabricated => "altered-fabricated",
            Self::Unrelated => "unrelated",
            Self::PdfText => "pdf-text",
            Self::Merge => "merge",
            Self::Honey => "honey",
            Self::Arabic1256 => "arabic-1256",
            Self::Latin1 => "latin-1",
            Self::Jsonl => "jsonl",
            Self::EbdsOlder => "ebds-older",
            Self::Xlsx => "xlsx",
        }
    }
}

/// The truth about one row of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TruthRow {
    /// File name within the dump.
    pub file: String,
    /// 1-based line.
    pub line: u64,
    /// `genuine-current`, `genuine-older`, `altered`, `fabricated`, `honey`, `unmatched`.
    pub class: &'static str,
    /// Index of the person in the fund (genuine, altered, honey rows).
    pub person: Option<usize>,
    /// The altered field, for altered rows.
    pub field: Option<&'static str>,
}

/// A dump and its truth.
#[derive(Debug, Clone, Default)]
pub struct Dump {
    /// Files: name and bytes.
    pub files: Vec<(String, Vec<u8>)>,
    /// One entry per row that names (or pretends to name) somebody, or is another
    /// dataset's row.
    pub truth: Vec<TruthRow>,
    /// The identities whose reads the dump was made from.
    pub sources: Vec<String>,
}

/// Who read whom before the leak: the recipients' sets of persons.
#[derive(Debug, Clone)]
pub struct Reads {
    /// `(identity, persons it read)`.
    pub by: Vec<(String, Vec<usize>)>,
}

impl Reads {
    fn of(&self, identity: &str) -> &[usize] {
        self.by
            .iter()
            .find(|(i, _)| i == identity)
            .map_or(&[], |(_, v)| v.as_slice())
    }
}

/// The recipients the dumps come from.
pub const ALPHA: &str = "partner.alpha";
/// See [`ALPHA`].
pub const BETA: &str = "partner.beta";
/// See [`ALPHA`]; its reads include a honey person.
pub const GAMMA: &str = "partner.gamma";

/// The reads the leak simulation makes before anything leaks: three recipients with
/// bulk access to different persons, clerks reading a few each, and a pension batch
/// that reads everybody (covering every dump, so chance must rule it out).
pub fn plan_reads(fund: &Fund, seed: u64) -> Reads {
    let mut rng = ChaCha12Rng::seed_from_u64(seed ^ 0x1eaf);
    let ordinary: Vec<usize> = (0..fund.persons.len())
        .filter(|&i| !fund.persons[i].honey)
        .collect();
    let mut pick = |share: f64| {
        let mut v = ordinary.clone();
        v.shuffle(&mut rng);
        v.truncate(((v.len() as f64 * share) as usize).max(1));
        v.sort_unstable();
        v
    };
    let alpha = pick(0.3);
    let beta = pick(0.2);
    let mut gamma = pick(0.1);
    if let Some(h) = fund.persons.iter().position(|p| p.honey) {
        gamma.push(h);
    }
    let mut by = vec![
        (ALPHA.to_owned(), alpha),
        (BETA.to_owned(), beta),
        (GAMMA.to_owned(), gamma),
    ];
    for c in 0..5 {
        by.push((format!("clerk.{c:02}"), pick(0.05)));
    }
    by.push(("batch.pension".to_owned(), ordinary.clone()));
    Reads { by }
}

struct Ctx<'a> {
    decl: HashMap<(usize, &'a str), &'a Declaration>,
    latest: String,
    first: String,
}

impl<'a> Ctx<'a> {
    fn new(fund: &'a Fund) -> Self {
        let periods = fund.periods();
        Self {
            decl: fund
                .declarations
                .iter()
                .map(|d| ((d.person, d.period.as_str()), d))
                .collect(),
            latest: periods.last().cloned().unwrap_or_default(),
            first: periods.first().cloned().unwrap_or_default(),
        }
    }

    fn current(&self, i: usize) -> Option<&'a Declaration> {
        self.decl.get(&(i, self.latest.as_str())).copied()
    }
}

fn dirhams(centimes: u64) -> String {
    format!("{}.{:02}", centimes / 100, centimes % 100)
}

fn full_name(p: &Person) -> String {
    format!("{} {}", p.surname.to_uppercase(), p.given)
}

/// Makes the dump of a variant.
pub fn make(fund: &Fund, reads: &Reads, variant: Variant, seed: u64) -> Dump {
    let mut rng = ChaCha12Rng::seed_from_u64(seed ^ ((variant as u64 + 1) * 0x9e37_79b9));
    let ctx = Ctx::new(fund);
    let alpha = reads.of(ALPHA);
    let mut d = Dump {
        sources: vec![ALPHA.to_owned()],
        ..Dump::default()
    };
    // Only persons declared in the latest month: a dump of "current salaries".
    let declared = |set: &[usize]| -> Vec<usize> {
        set.iter()
            .copied()
            .filter(|&i| ctx.current(i).is_some())
            .collect()
    };
    match variant {
        Variant::Full | Variant::Sampled | Variant::Rounded | Variant::Merge | Variant::Honey => {
            let mut persons = match variant {
                Variant::Merge => {
                    d.sources.push(BETA.to_owned());
                    let mut v = declared(alpha);
                    v.extend(declared(reads.of(BETA)));
                    v.sort_unstable();
                    v.dedup();
                    v
                }
                Variant::Honey => {
                    d.sources = vec![GAMMA.to_owned()];
                    reads.of(GAMMA).to_vec()
                }
                _ => declared(alpha),
            };
            persons.shuffle(&mut rng);
            if variant == Variant::Sampled {
                persons.truncate((persons.len() / 10).max(1));
            }
            let mut text = String::from(
                "N° CNSS,CIN,Nom,Prénom,Date de naissance,RIB,Salaire,Jours,Période\n",
            );
            for (n, &i) in persons.iter().enumerate() {
                let p = &fund.persons[i];
                let dec = ctx.current(i);
                let salary = dec.map_or(0, |x| x.salary_real);
                let shown = if variant == Variant::Rounded {
                    (salary + 5_000) / 10_000 * 10_000
                } else {
                    salary
                };
                let _ = writeln!(
                    text,
                    "{},{},{},{},{},{},{},{},{}",
                    p.cnss,
                    p.cin,
                    p.surname.to_uppercase(),
                    p.given,
                    p.birth_date,
                    p.rib,
                    if dec.is_some() {
                        dirhams(shown)
                    } else {
                        String::new()
                    },
                    dec.map_or(String::new(), |x| x.days.to_string()),
                    if dec.is_some() {
                        ctx.latest.clone()
                    } else {
                        String::new()
                    },
                );
                d.truth.push(TruthRow {
                    file: "dump.csv".into(),
                    line: n as u64 + 2,
                    class: if p.honey { "honey" } else { "genuine-current" },
                    person: Some(i),
                    field: None,
                });
            }
            d.files.push(("dump.csv".into(), text.into_bytes()));
        }
        Variant::Columns => {
            let mut text = String::from("cin;nom_complet;date_naissance\n");
            for (n, &i) in alpha.iter().enumerate() {
                let p = &fund.persons[i];
                let _ = writeln!(text, "{};{};{}", p.cin, full_name(p), p.birth_date);
                d.truth
                    .push(truth("dump.csv", n as u64 + 2, "genuine-current", i));
            }
            d.files.push(("dump.csv".into(), text.into_bytes()));
        }
        Variant::Reordered => {
            let mut text = String::new();
            for (n, &i) in declared(alpha).iter().enumerate() {
                let p = &fund.persons[i];
                let Some(dec) = ctx.current(i) else { continue };
                let _ = writeln!(
                    text,
                    "{}|{}|{}|{}|{}",
                    dirhams(dec.salary_real),
                    full_name(p),
                    p.cnss,
                    dec.days,
                    p.cin
                );
                d.truth
                    .push(truth("dump.txt", n as u64 + 1, "genuine-current", i));
            }
            d.files.push(("dump.txt".into(), text.into_bytes()));
        }
        Variant::AlteredFabricated => {
            let mut text = String::from("cnss,cin,nom,naissance,salaire\n");
            let mut line = 1;
            for &i in &declared(alpha) {
                let p = &fund.persons[i];
                let Some(dec) = ctx.current(i) else { continue };
                line += 1;
                let roll: f64 = rng.random();
                let (cin, name, salary, class, field) = if roll < 1.0 / 7.0 {
                    let which = rng.random_range(0..3);
                    match which {
                        0 => (
                            p.cin.clone(),
                            full_name(p),
                            dec.salary_real * 107 / 100 + 100,
                            "altered",
                            Some("salary"),
                        ),
                        1 => (
                            other_cin(&p.cin),
                            full_name(p),
                            dec.salary_real,
                            "altered",
                            Some("cin"),
                        ),
                        _ => {
                            let q = &fund.persons[(i + 7) % fund.persons.len()];
                            (
                                p.cin.clone(),
                                format!("{} {}", q.surname.to_uppercase(), q.given),
                                dec.salary_real,
                                "altered",
                                Some("name"),
                            )
                        }
                    }
                } else {
                    (
                        p.cin.clone(),
                        full_name(p),
                        dec.salary_real,
                        "genuine-current",
                        None,
                    )
                };
                let _ = writeln!(
                    text,
                    "{},{},{},{},{}",
                    p.cnss,
                    cin,
                    name,
                    p.birth_date,
                    dirhams(salary)
                );
                d.truth.push(TruthRow {
                    file: "dump.csv".into(),
                    line,
                    class,
                    person: Some(i),
                    field,
                });
                if rng.random_bool(1.0 / 6.0) {
                    // A made-up person in the fund's shape.
                    line += 1;
                    let cnss = format!("{:09}", rng.random_range(900_000_000u64..999_999_998));
                    let cin = format!("Z{}", rng.random_range(100_000..999_999));
                    let q = &fund.persons[rng.random_range(0..fund.persons.len())];
                    let _ = writeln!(
                        text,
                        "{},{},{} {},{},{}",
                        cnss,
                        cin,
                        q.surname.to_uppercase(),
                        fund.persons[rng.random_range(0..fund.persons.len())].given,
                        q.birth_date,
                        dirhams(rng.random_range(320_000..2_000_000))
                    );
                    d.truth.push(TruthRow {
                        file: "dump.csv".into(),
                        line,
                        class: "fabricated",
                        person: None,
                        field: None,
                    });
                }
            }
            d.files.push(("dump.csv".into(), text.into_bytes()));
        }
        Variant::Unrelated => {
            let mut ours = String::from("cnss,nom,salaire\n");
            for (n, &i) in declared(alpha).iter().enumerate() {
                let p = &fund.persons[i];
                let Some(dec) = ctx.current(i) else { continue };
                let _ = writeln!(
                    ours,
                    "{},{},{}",
                    p.cnss,
                    full_name(p),
                    dirhams(dec.salary_real)
                );
                d.truth
                    .push(truth("dump.csv", n as u64 + 2, "genuine-current", i));
            }
            d.files.push(("dump.csv".into(), ours.into_bytes()));
            let mut other = String::from("nom,telephone,ville\n");
            for n in 0..(alpha.len() / 3).max(5) {
                let p = &fund.persons[rng.random_range(0..fund.persons.len())];
                let _ = writeln!(
                    other,
                    "{},06{:08},{}",
                    full_name(p),
                    rng.random_range(0..100_000_000u64),
                    p.city
                );
                d.truth.push(TruthRow {
                    file: "annuaire.csv".into(),
                    line: n as u64 + 2,
                    class: "unmatched",
                    person: None,
                    field: None,
                });
            }
            d.files.push(("annuaire.csv".into(), other.into_bytes()));
        }
        Variant::PdfText => {
            let mut text = String::new();
            let mut line = 0u64;
            let mut push = |text: &mut String, s: String| {
                text.push_str(&s);
                text.push('\n');
                line += 1;
                line
            };
            let mm = ctx.latest.get(4..6).unwrap_or("01").to_owned();
            let yyyy = ctx.latest.get(..4).unwrap_or("2026").to_owned();
            for (page, chunk) in declared(alpha).chunks(37).enumerate() {
                push(&mut text, "CAISSE NATIONALE DE SECURITE SOCIALE".into());
                push(&mut text, "ATTESTATION DE DECLARATION DE SALAIRES".into());
                push(
                    &mut text,
                    format!("Période : {mm}/{yyyy}        Page {}", page + 1),
                );
                push(&mut text, "N° Immatriculation   Nom et Prénom   CIN   Jours   Salaire réel   Salaire plafonné".into());
                for &i in chunk {
                    let p = &fund.persons[i];
                    let Some(dec) = ctx.current(i) else { continue };
                    let mut cnss = format!("{} {} {}", &p.cnss[..3], &p.cnss[3..6], &p.cnss[6..]);
                    if rng.random_bool(0.1) {
                        cnss = p.cnss.replacen('0', "O", 1);
                    }
                    let n = push(
                        &mut text,
                        format!(
                            "{cnss}   {}   {}   {}   {}   {}",
                            full_name(p).to_uppercase(),
                            p.cin,
                            dec.days,
                            spaced(dec.salary_real),
                            spaced(dec.salary_capped)
                        ),
                    );
                    d.truth
                        .push(truth("attestations.txt", n, "genuine-current", i));
                }
                push(&mut text, String::new());
            }
            d.files.push(("attestations.txt".into(), text.into_bytes()));
        }
        Variant::Arabic1256 => {
            let mut text = String::from("رقم التسجيل;الاسم الكامل;الأجر\n");
            for (n, &i) in declared(alpha).iter().enumerate() {
                let p = &fund.persons[i];
                let Some(dec) = ctx.current(i) else { continue };
                let _ = writeln!(
                    text,
                    "{};{};{}",
                    p.cnss,
                    p.name_arabic,
                    dirhams(dec.salary_real).replace('.', ",")
                );
                d.truth
                    .push(truth("dump.csv", n as u64 + 2, "genuine-current", i));
            }
            let (bytes, _, _) = encoding_rs::WINDOWS_1256.encode(&text);
            d.files.push(("dump.csv".into(), bytes.into_owned()));
        }
        Variant::Latin1 => {
            let mut text =
                String::from("Numéro d'immatriculation\tPrénom\tNom\tNé(e) le\tSalaire brut\n");
            for (n, &i) in declared(alpha).iter().enumerate() {
                let p = &fund.persons[i];
                let Some(dec) = ctx.current(i) else { continue };
                let _ = writeln!(
                    text,
                    "{}\t{}\t{}\t{}\t{}",
                    p.cnss, p.given, p.surname, p.birth_date, dec.salary_real
                );
                d.truth
                    .push(truth("dump.tsv", n as u64 + 2, "genuine-current", i));
            }
            let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&text);
            d.files.push(("dump.tsv".into(), bytes.into_owned()));
        }
        Variant::Jsonl => {
            let mut text = String::new();
            for (n, &i) in declared(alpha).iter().enumerate() {
                let p = &fund.persons[i];
                let Some(dec) = ctx.current(i) else { continue };
                let _ = writeln!(
                    text,
                    "{{\"immatriculation\":\"{}\",\"identite\":{{\"nom\":\"{}\",\"cin\":\"{}\"}},\"salaire_brut\":{}}}",
                    p.cnss,
                    full_name(p),
                    p.cin,
                    dirhams(dec.salary_real)
                );
                d.truth
                    .push(truth("dump.jsonl", n as u64 + 1, "genuine-current", i));
            }
            d.files.push(("dump.jsonl".into(), text.into_bytes()));
        }
        Variant::Xlsx => {
            let mut rows: Vec<Vec<Cell>> = vec![
                [
                    "Matricule CNSS",
                    "Nom et prénom",
                    "CIN",
                    "Salaire brut",
                    "Jours",
                ]
                .iter()
                .map(|h| Cell::Text((*h).to_owned()))
                .collect(),
            ];
            for (n, &i) in declared(alpha).iter().enumerate() {
                let p = &fund.persons[i];
                let Some(dec) = ctx.current(i) else { continue };
                rows.push(vec![
                    Cell::Number(p.cnss.clone()),
                    Cell::Text(full_name(p)),
                    Cell::Text(p.cin.clone()),
                    Cell::Number(dirhams(dec.salary_real)),
                    Cell::Number(dec.days.to_string()),
                ]);
                d.truth
                    .push(truth("dump.xlsx", n as u64 + 2, "genuine-current", i));
            }
            d.files.push(("dump.xlsx".into(), xlsx(&rows)));
        }
        Variant::EbdsOlder => {
            // The first month's declarations of the recipient's persons, per employer.
            let mut by_employer: std::collections::BTreeMap<usize, Vec<&Declaration>> =
                Default::default();
            for &i in alpha {
                if let Some(dec) = ctx.decl.get(&(i, ctx.first.as_str())) {
                    by_employer.entry(dec.employer).or_default().push(dec);
                }
            }
            for (e, decls) in by_employer {
                let emp = &fund.employers[e];
                let mut sorted = decls;
                sorted.sort_by(|a, b| {
                    fund.persons[a.person]
                        .cnss
                        .cmp(&fund.persons[b.person].cnss)
                });
                let rows: Vec<DeclarationRow> = sorted
                    .iter()
                    .map(|x| DeclarationRow {
                        affiliation: emp.affiliation.clone(),
                        period: x.period.clone(),
                        cnss: fund.persons[x.person].cnss.clone(),
                        nom_prenom: fund.persons[x.person].nom_prenom(),
                        cin: None,
                        children: fund.persons[x.person].children,
                        allowance: x.allowance,
                        days: x.days,
                        salary_real: x.salary_real,
                        salary_capped: x.salary_capped,
                        situation: x.situation.unwrap_or("").to_owned(),
                        entrant: false,
                    })
                    .collect();
                let h = Header {
                    affiliation: emp.affiliation.clone(),
                    period: ctx.first.clone(),
                    name: emp.name.chars().take(40).collect(),
                    activity: emp.activity.chars().take(40).collect(),
                    address: emp.address.chars().take(120).collect(),
                    city: emp.city.chars().take(20).collect(),
                    postal_code: emp.postal_code.clone(),
                    agency: emp.agency.clone(),
                    issued: format!("{}01", ctx.first),
                    due: format!("{}10", ctx.first),
                };
                let Ok(text) = write_ebds(&h, &rows) else {
                    continue;
                };
                let name = format!(
                    "DS_{}_{}{}.txt",
                    emp.affiliation,
                    &ctx.first[4..],
                    &ctx.first[..4]
                );
                let mut out = String::new();
                for (n, l) in text.lines().enumerate() {
                    let mut l = l.to_owned();
                    if l.starts_with("B02") {
                        let cnss = &l[16..25];
                        let i = sorted
                            .iter()
                            .map(|x| x.person)
                            .find(|&p| fund.persons[p].cnss == cnss);
                        // A forger raises one salary in ten and leaves the control sum.
                        let forged = rng.random_bool(0.1);
                        if forged && let Ok(v) = l[113..126].parse::<u64>() {
                            l = format!("{}{:013}{}", &l[..113], v + 123_400, &l[126..]);
                        }
                        if let Some(i) = i {
                            d.truth.push(TruthRow {
                                file: name.clone(),
                                line: n as u64 + 1,
                                class: if forged { "altered" } else { "genuine-older" },
                                person: Some(i),
                                field: forged.then_some("salary"),
                            });
                        }
                    }
                    out.push_str(&l);
                    out.push('\n');
                }
                d.files.push((name, out.into_bytes()));
            }
        }
    }
    d
}

/// A spreadsheet cell.
enum Cell {
    Text(String),
    Number(String),
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The smallest xlsx a spreadsheet program opens: one sheet, inline strings.
fn xlsx(rows: &[Vec<Cell>]) -> Vec<u8> {
    use std::io::Write as _;
    const TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#;
    const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#;
    const BOOK: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Salaries" sheetId="1" r:id="rId1"/></sheets></workbook>"#;
    const BOOK_RELS: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#;
    let mut sheet = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for (r, row) in rows.iter().enumerate() {
        let _ = write!(sheet, r#"<row r="{}">"#, r + 1);
        for (c, cell) in row.iter().enumerate() {
            let at = format!("{}{}", char::from(b'A' + (c % 26) as u8), r + 1);
            match cell {
                Cell::Text(t) => {
                    let _ = write!(
                        sheet,
                        r#"<c r="{at}" t="inlineStr"><is><t>{}</t></is></c>"#,
                        escape(t)
                    );
                }
                Cell::Number(v) => {
                    let _ = write!(sheet, r#"<c r="{at}"><v>{v}</v></c>"#);
                }
            }
        }
        sheet.push_str("</row>");
    }
    sheet.push_str("</sheetData></worksheet>");
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (name, body) in [
        ("[Content_Types].xml", TYPES),
        ("_rels/.rels", RELS),
        ("xl/workbook.xml", BOOK),
        ("xl/_rels/workbook.xml.rels", BOOK_RELS),
        ("xl/worksheets/sheet1.xml", sheet.as_str()),
    ] {
        if w.start_file(name, opts).is_err() || w.write_all(body.as_bytes()).is_err() {
            return Vec::new();
        }
    }
    w.finish().map(|c| c.into_inner()).unwrap_or_default()
}

fn truth(file: &str, line: u64, class: &'static str, person: usize) -> TruthRow {
    TruthRow {
        file: file.into(),
        line,
        class,
        person: Some(person),
        field: None,
    }
}

/// `5 432,10`, as attestations print amounts.
fn spaced(centimes: u64) -> String {
    let whole = centimes / 100;
    let mut groups = Vec::new();
    let mut w = whole;
    loop {
        groups.push(w % 1000);
        w /= 1000;
        if w == 0 {
            break;
        }
    }
    let mut s = String::new();
    for (k, g) in groups.iter().rev().enumerate() {
        if k == 0 {
            let _ = write!(s, "{g}");
        } else {
            let _ = write!(s, " {g:03}");
        }
    }
    format!("{s},{:02}", centimes % 100)
}

/// A CIN with its digits changed, same shape.
fn other_cin(cin: &str) -> String {
    cin.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from_digit((d + 3) % 10, 10).unwrap_or(c),
            None => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fund::{FundSpec, generate};

    #[test]
    fn every_variant_has_rows_and_truth_for_each() {
        let fund = generate(&FundSpec::new(400, 30, 2, 7));
        let reads = plan_reads(&fund, 7);
        for v in Variant::ALL {
            let d = make(&fund, &reads, v, 7);
            assert!(!d.files.is_empty(), "{}", v.name());
            assert!(!d.truth.is_empty(), "{}", v.name());
            assert!(!d.sources.is_empty());
        }
        let af = make(&fund, &reads, Variant::AlteredFabricated, 7);
        assert!(af.truth.iter().any(|t| t.class == "fabricated"));
        assert!(af.truth.iter().any(|t| t.class == "altered"));
        assert_eq!(spaced(543_210), "5 432,10");
        assert_eq!(spaced(1_234_567_890), "12 345 678,90");
        assert_eq!(other_cin("BE123456"), "BE456789");
    }
}
