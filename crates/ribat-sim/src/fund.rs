//! The synthetic fund: employers, insured persons and their monthly declarations.
//!
//! Deterministic for a seed (ChaCha12). Shapes follow `../shared/FUND-DATA.md`: heavy-tailed
//! employer sizes (most under 10 employees, a few over 5,000), lognormal salaries by sector
//! between the minimum wage and 35 times it, 26 declared days at most, near-sequential
//! CNSS numbers (they are issued in registration order), a few public figures flagged
//! sensitive and a few honey persons that no legitimate workflow ever reads.

use crate::names::{CITIES, COMPANY_WORDS, FEMALE, LEGAL_FORMS, MALE, SECTORS, SURNAMES};
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha12Rng;
use rand_distr::{Distribution, LogNormal, Pareto};
use ribat_import::ids::make_rib;
use std::collections::HashSet;

/// What to generate.
#[derive(Debug, Clone)]
pub struct FundSpec {
    /// Insured persons.
    pub persons: usize,
    /// Employers.
    pub employers: usize,
    /// Months of declarations.
    pub months: usize,
    /// Seed.
    pub seed: u64,
    /// First period, `(year, month)`.
    pub first_period: (u16, u8),
    /// Minimum wage, centimes per month (about 3,200 MAD).
    pub smig_centimes: u64,
    /// Salary ceiling for contributions, centimes (6,000 MAD; *to verify*).
    pub ceiling_centimes: u64,
    /// Share of honey persons.
    pub honey_share: f64,
    /// Share of public figures.
    pub public_figure_share: f64,
}

impl FundSpec {
    /// A spec with the documented defaults.
    pub fn new(persons: usize, employers: usize, months: usize, seed: u64) -> Self {
        Self {
            persons,
            employers,
            months,
            seed,
            first_period: (2025, 1),
            smig_centimes: 320_000,
            ceiling_centimes: 600_000,
            honey_share: 0.002,
            public_figure_share: 0.001,
        }
    }
}

/// An employer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employer {
    /// 7-digit affiliation number.
    pub affiliation: String,
    /// 15-digit ICE.
    pub ice: String,
    /// Company name.
    pub name: String,
    /// Activity label.
    pub activity: String,
    /// Sector index into [`SECTORS`].
    pub sector: usize,
    /// Street address.
    pub address: String,
    /// City.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// CNSS agency code.
    pub agency: String,
}

/// An insured person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Opaque record id in the vault.
    pub record_id: String,
    /// 9-digit CNSS number.
    pub cnss: String,
    /// CIN.
    pub cin: String,
    /// Given name, Latin script.
    pub given: String,
    /// Surname, Latin script.
    pub surname: String,
    /// Full name, Arabic script.
    pub name_arabic: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// City of residence.
    pub city: String,
    /// 24-digit RIB.
    pub rib: String,
    /// Index of the employer.
    pub employer: usize,
    /// Monthly salary for a full month, centimes.
    pub base_salary: u64,
    /// Children (for family allowances).
    pub children: u8,
    /// A public figure: reads need a case reference.
    pub sensitive: bool,
    /// A honey person: any read is hostile.
    pub honey: bool,
}

impl Person {
    /// `SURNAME GIVEN`, as in e-BDS `L_Nom_Prenom`.
    pub fn nom_prenom(&self) -> String {
        format!("{} {}", self.surname, self.given).to_uppercase()
    }
}

/// One person's declaration for one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declaration {
    /// `AAAAMM`.
    pub period: String,
    /// Employer index.
    pub employer: usize,
    /// Person index.
    pub person: usize,
    /// Days declared, 0 to 26.
    pub days: u8,
    /// Real salary, centimes.
    pub salary_real: u64,
    /// Capped salary, centimes.
    pub salary_capped: u64,
    /// Family allowance to pay, centimes.
    pub allowance: u64,
    /// Situation code, when not ordinary.
    pub situation: Option<&'static str>,
    /// First declaration of a new entrant (an e-BDS B04 line).
    pub entrant: bool,
}

/// The generated fund.
#[derive(Debug, Clone)]
pub struct Fund {
    /// What was asked.
    pub spec: FundSpec,
    /// Employers.
    pub employers: Vec<Employer>,
    /// Persons.
    pub persons: Vec<Person>,
    /// Declarations, grouped by period then employer.
    pub declarations: Vec<Declaration>,
}

impl Fund {
    /// The periods covered, in order.
    pub fn periods(&self) -> Vec<String> {
        (0..self.spec.months)
            .map(|m| period(self.spec.first_period, m))
            .collect()
    }
}

/// `AAAAMM` of the `m`-th month after `first`.
pub fn period(first: (u16, u8), m: usize) -> String {
    let idx = first.0 as usize * 12 + (first.1 as usize - 1) + m;
    format!("{:04}{:02}", idx / 12, idx % 12 + 1)
}

fn pick<'a, T>(rng: &mut impl Rng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

/// The common spelling most of the time, a variant otherwise.
fn spelling(rng: &mut impl Rng, variants: &[&'static str]) -> &'static str {
    if variants.len() > 1 && rng.random_bool(0.3) {
        variants[rng.random_range(1..variants.len())]
    } else {
        variants[0]
    }
}

/// The largest employer the generator makes.
pub const MAX_EMPLOYER: usize = 30_000;

const BANKS: &[u16] = &[7, 11, 13, 21, 22, 145, 190, 225, 230];
const STREETS: &[&str] = &[
    "BD MOHAMMED V",
    "AV HASSAN II",
    "RUE IBN BATOUTA",
    "BD ZERKTOUNI",
    "AV DES FAR",
    "RUE ALLAL BEN ABDELLAH",
    "ZONE INDUSTRIELLE",
];

/// Generates a fund.
pub fn generate(spec: &FundSpec) -> Fund {
    let mut rng = ChaCha12Rng::seed_from_u64(spec.seed);
    let employers = employers(spec, &mut rng);
    let sizes = employer_sizes(spec, &mut rng);
    let persons = persons(spec, &employers, &sizes, &mut rng);
    let declarations = declarations(spec, &employers, &persons, &mut rng);
    Fund {
        spec: spec.clone(),
        employers,
        persons,
        declarations,
    }
}

fn employers(spec: &FundSpec, rng: &mut ChaCha12Rng) -> Vec<Employer> {
    let mut aff = 1_000_000u64 + rng.random_range(0..500_000);
    (0..spec.employers)
        .map(|_| {
            aff += rng.random_range(1..=7);
            let (city, _, postal, agency) = *pick(rng, CITIES);
            let sector = rng.random_range(0..SECTORS.len());
            let name = format!(
                "{} {} {}",
                pick(rng, COMPANY_WORDS),
                pick(rng, COMPANY_WORDS),
                pick(rng, LEGAL_FORMS)
            );
            Employer {
                affiliation: format!("{:07}", aff % 10_000_000),
                ice: format!(
                    "{:015}",
                    rng.random_range(1_000_000_000_000u64..999_999_999_999_999)
                ),
                name,
                activity: SECTORS[sector].1.to_owned(),
                sector,
                address: format!("{} {}", rng.random_range(1..400), pick(rng, STREETS)),
                city: city.to_owned(),
                postal_code: postal.to_owned(),
                agency: agency.to_owned(),
            }
        })
        .collect()
}

/// Pareto-distributed sizes scaled to the number of persons: most employers are tiny, a
/// few are very large.
fn employer_sizes(spec: &FundSpec, rng: &mut ChaCha12Rng) -> Vec<usize> {
    if spec.employers == 0 {
        return Vec::new();
    }
    let pareto = Pareto::<f64>::new(1.0, 1.05).ok();
    let raw: Vec<f64> = (0..spec.employers)
        .map(|_| pareto.map_or(1.0_f64, |p| p.sample(rng)).min(50_000.0))
        .collect();
    let total: f64 = raw.iter().sum();
    let mut sizes: Vec<usize> = raw
        .iter()
        .map(|r| ((r / total) * spec.persons as f64).floor() as usize)
        .collect();
    // No employer above MAX_EMPLOYER: one e-BDS declaration holds at most 38,461 employees
    // (six-digit total of days); the excess goes to the others.
    let mut excess: usize = sizes.iter().map(|&s| s.saturating_sub(MAX_EMPLOYER)).sum();
    for s in &mut sizes {
        *s = (*s).min(MAX_EMPLOYER);
    }
    let mut i = 0;
    while excess > 0 && sizes.iter().any(|&s| s < MAX_EMPLOYER) {
        let e = i % spec.employers;
        if sizes[e] < MAX_EMPLOYER {
            sizes[e] += 1;
            excess -= 1;
        }
        i += 1;
    }
    // Hand out the rounding remainder one by one, smallest employers first.
    let mut left = spec.persons.saturating_sub(sizes.iter().sum());
    let mut i = 0;
    while left > 0 {
        sizes[i % spec.employers] += 1;
        left -= 1;
        i += 1;
    }
    sizes
}

fn persons(
    spec: &FundSpec,
    employers: &[Employer],
    sizes: &[usize],
    rng: &mut ChaCha12Rng,
) -> Vec<Person> {
    let mut cnss = 100_000_000u64 + rng.random_range(0..50_000_000);
    let mut cins = HashSet::with_capacity(spec.persons);
    let mut out = Vec::with_capacity(spec.persons);
    let honey_every = if spec.honey_share > 0.0 {
        (1.0 / spec.honey_share) as usize
    } else {
        usize::MAX
    };
    let figure_every = if spec.public_figure_share > 0.0 {
        (1.0 / spec.public_figure_share) as usize
    } else {
        usize::MAX
    };
    let employer_of: Vec<usize> = sizes
        .iter()
        .enumerate()
        .flat_map(|(e, &n)| std::iter::repeat_n(e, n))
        .collect();
    for i in 0..spec.persons {
        cnss += rng.random_range(1..=15);
        let female = rng.random_bool(0.42);
        let (given_v, given_ar) = *pick(rng, if female { FEMALE } else { MALE });
        let (sur_v, sur_ar) = *pick(rng, SURNAMES);
        let employer = employer_of
            .get(i)
            .copied()
            .unwrap_or(i % employers.len().max(1));
        let city = employers
            .get(employer)
            .map_or("CASABLANCA", |e| e.city.as_str());
        let prefixes = CITIES
            .iter()
            .find(|c| c.0 == city)
            .map_or(&["BE"][..], |c| c.1);
        let cin = loop {
            let p = pick(rng, prefixes);
            let c = format!("{p}{}", rng.random_range(10_000..1_000_000u32));
            if cins.insert(c.clone()) {
                break c;
            }
        };
        let sector = employers.get(employer).map_or(0, |e| e.sector);
        let (_, _, median, sigma) = SECTORS[sector];
        let mad = LogNormal::new(median.ln(), sigma).map_or(median, |d| d.sample(rng));
        let mut salary = (mad * 100.0).round() as u64;
        if rng.random_bool(0.003) {
            salary = salary.saturating_mul(rng.random_range(5..12));
        }
        let salary = salary.clamp(spec.smig_centimes, spec.smig_centimes * 35);
        let rib = make_rib(
            *pick(rng, BANKS),
            rng.random_range(100..900),
            rng.random_range(0..10_000_000_000_000_000),
        )
        .unwrap_or_default();
        out.push(Person {
            record_id: format!("p-{i:08}"),
            cnss: format!("{:09}", cnss % 1_000_000_000),
            cin,
            given: spelling(rng, given_v).to_owned(),
            surname: spelling(rng, sur_v).to_owned(),
            name_arabic: format!("{given_ar} {sur_ar}"),
            birth_date: format!(
                "{}-{:02}-{:02}",
                rng.random_range(1961..=2007),
                rng.random_range(1..=12),
                rng.random_range(1..=28)
            ),
            city: city.to_owned(),
            rib,
            employer,
            base_salary: salary,
            children: [0, 0, 1, 1, 2, 2, 3, 4][rng.random_range(0..8)],
            sensitive: i % figure_every == figure_every / 2,
            honey: i % honey_every == honey_every / 3,
        });
    }
    out
}

fn allowance(children: u8) -> u64 {
    // 300 MAD for each of the first three children, 36 MAD for the next three.
    let c = u64::from(children.min(6));
    c.min(3) * 30_000 + c.saturating_sub(3) * 3_600
}

fn declarations(
    spec: &FundSpec,
    employers: &[Employer],
    persons: &[Person],
    rng: &mut ChaCha12Rng,
) -> Vec<Declaration> {
    let mut out = Vec::with_capacity(persons.len() * spec.months);
    // Some persons join after the first month; they appear as B04 entrants.
    let start: Vec<usize> = persons
        .iter()
        .map(|_| {
            if spec.months > 1 && rng.random_bool(0.03) {
                rng.random_range(1..spec.months)
            } else {
                0
            }
        })
        .collect();
    let mut by_employer: Vec<Vec<usize>> = vec![Vec::new(); employers.len()];
    for (i, p) in persons.iter().enumerate() {
        if let Some(v) = by_employer.get_mut(p.employer) {
            v.push(i);
        }
    }
    for m in 0..spec.months {
        let per = period(spec.first_period, m);
        for (e, staff) in by_employer.iter().enumerate() {
            for &i in staff {
                if start[i] > m {
                    continue;
                }
                let p = &persons[i];
                let (days, situation) = match rng.random_range(0..1000) {
                    0..=4 => (0u8, Some("MS")),
                    5..=140 => (rng.random_range(8..26), None),
                    _ => (26, None),
                };
                let real = p.base_salary * u64::from(days) / 26;
                out.push(Declaration {
                    period: per.clone(),
                    employer: e,
                    person: i,
                    days,
                    salary_real: real,
                    salary_capped: real.min(spec.ceiling_centimes),
                    allowance: if days == 0 { 0 } else { allowance(p.children) },
                    situation,
                    entrant: start[i] == m && m > 0,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ribat_import::ids::rib_is_valid;

    #[test]
    fn deterministic_for_a_seed_and_different_across_seeds() {
        let a = generate(&FundSpec::new(500, 40, 2, 7));
        let b = generate(&FundSpec::new(500, 40, 2, 7));
        let c = generate(&FundSpec::new(500, 40, 2, 8));
        assert_eq!(a.persons, b.persons);
        assert_eq!(a.declarations, b.declarations);
        assert_ne!(a.persons, c.persons);
    }

    #[test]
    fn shapes_follow_the_funds_rules() {
        let f = generate(&FundSpec::new(20_000, 2_000, 3, 1));
        let spec = &f.spec;
        let mut cnss = HashSet::new();
        let mut cin = HashSet::new();
        for p in &f.persons {
            assert!(p.cnss.len() == 9 && p.cnss.bytes().all(|b| b.is_ascii_digit()));
            assert!(p.cnss != "000000000" && p.cnss != "999999999");
            assert!(cnss.insert(p.cnss.clone()), "duplicate CNSS");
            assert!(cin.insert(p.cin.clone()), "duplicate CIN");
            assert!(p.cin.len() <= 8);
            assert!(rib_is_valid(&p.rib), "{}", p.rib);
            assert!((spec.smig_centimes..=spec.smig_centimes * 35).contains(&p.base_salary));
        }
        for d in &f.declarations {
            assert!(d.days <= 26);
            assert!(d.salary_capped <= spec.ceiling_centimes && d.salary_capped <= d.salary_real);
            if d.situation == Some("MS") {
                assert_eq!((d.days, d.salary_real), (0, 0));
            }
        }
        // Heavy tail: most employers are small, at least one is large.
        let mut sizes = vec![0usize; f.employers.len()];
        for p in &f.persons {
            sizes[p.employer] += 1;
        }
        let small = sizes.iter().filter(|&&s| s < 10).count();
        assert!(
            small * 10 > f.employers.len() * 6,
            "{small} small of {}",
            f.employers.len()
        );
        assert!(
            sizes.iter().any(|&s| s > 500),
            "max {}",
            sizes.iter().max().unwrap()
        );
        assert!(f.persons.iter().filter(|p| p.honey).count() >= 30);
        assert!(f.persons.iter().any(|p| p.sensitive));
        assert!(f.declarations.iter().any(|d| d.entrant));
        assert_eq!(f.periods(), ["202501", "202502", "202503"]);
    }

    #[test]
    fn periods_roll_over_years() {
        assert_eq!(period((2025, 11), 0), "202511");
        assert_eq!(period((2025, 11), 2), "202601");
    }
}
