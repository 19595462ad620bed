//! Bad input gets an error, never a panic: e-BDS and the registers' CSV, on random bytes
//! and on random damage to valid files (flipped bytes, cuts, insertions).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use proptest::prelude::*;
use ribat_import::csv_files::{read_employers, read_persons};
use ribat_import::ebds::{self, Header};
use ribat_import::model::DeclarationRow;

fn valid_ebds() -> Vec<u8> {
    let h = Header {
        affiliation: "1234567".into(),
        period: "202501".into(),
        name: "ATLAS NOUR SARL".into(),
        activity: "TEXTILE".into(),
        address: "12 BD MOHAMMED V".into(),
        city: "CASABLANCA".into(),
        postal_code: "20000".into(),
        agency: "01".into(),
        issued: "20250205".into(),
        due: "20250210".into(),
    };
    let rows: Vec<DeclarationRow> = (0..6)
        .map(|i| DeclarationRow {
            affiliation: "1234567".into(),
            period: "202501".into(),
            cnss: format!("{:09}", 123_456_700 + i),
            nom_prenom: "TAZI SALMA".into(),
            cin: (i == 5).then(|| "BE12345".into()),
            children: 1,
            allowance: if i == 5 { 0 } else { 30_000 },
            days: 26,
            salary_real: 400_000 + i * 1000,
            salary_capped: 400_000 + i * 1000,
            situation: String::new(),
            entrant: i == 5,
        })
        .collect();
    ebds::write(&h, &rows).unwrap().into_bytes()
}

#[derive(Debug, Clone)]
enum Damage {
    Flip(prop::sample::Index, u8),
    Cut(prop::sample::Index),
    Insert(prop::sample::Index, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Flip(i, b)),
        any::<prop::sample::Index>().prop_map(Damage::Cut),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..40)
        )
            .prop_map(|(i, v)| Damage::Insert(i, v)),
    ]
}

fn apply(mut bytes: Vec<u8>, ds: &[Damage]) -> Vec<u8> {
    for d in ds {
        match d {
            Damage::Flip(i, b) if !bytes.is_empty() => {
                let at = i.index(bytes.len());
                bytes[at] ^= b | 1;
            }
            Damage::Cut(i) => bytes.truncate(i.index(bytes.len() + 1)),
            Damage::Insert(i, v) => {
                let at = i.index(bytes.len() + 1);
                bytes.splice(at..at, v.iter().copied());
            }
            Damage::Flip(..) => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn ebds_random_bytes_give_an_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000)) {
        let _ = ebds::parse("DS_1234567_012025.txt", &bytes);
    }

    #[test]
    fn damaged_ebds_files_never_panic_and_never_yield_impossible_rows(ds in prop::collection::vec(damage(), 1..4)) {
        let bytes = apply(valid_ebds(), &ds);
        if let Ok(p) = ebds::parse("DS_1234567_012025.txt", &bytes) {
            for r in &p.rows {
                prop_assert!(r.days <= 26 && r.salary_capped <= r.salary_real && r.cnss.len() == 9);
            }
        }
    }

    #[test]
    fn csv_registers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000), header in any::<bool>()) {
        let mut input = if header { b"cnss,cin,given,surname,name_ar,birth_date,city,rib,employer\n".to_vec() } else { Vec::new() };
        input.extend_from_slice(&bytes);
        let _ = read_persons(&input);
        let _ = read_employers(&input);
    }
}

#[test]
fn the_undamaged_file_parses() {
    let p = ebds::parse("DS_1234567_012025.txt", &valid_ebds()).unwrap();
    assert_eq!((p.rows.len(), p.lines.len()), (6, 6));
}
