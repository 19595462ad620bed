//! Leak digests: keyed, per-person digests of field values, for telling genuine rows of a
//! leaked file from altered and fabricated ones without decrypting the vault.
//!
//! ```text
//!   locator = HMAC-SHA256(k_leak, "locate/person" ‖ 0x00 ‖ person record id)[..16]
//!   digest  = HMAC-SHA256(k_leak, "field/"  ‖ 0x00 ‖ field ‖ 0x00 ‖ record id ‖ 0x00 ‖ value
//!                                  [‖ 0x00 ‖ value …])[..8]
//! ```
//!
//! Most digests cover one value. Two cover a whole record, so that a row which repeats
//! what the fund holds costs one digest per record instead of one per field
//! ([`Field::Record`]: CIN, name, birth date and RIB; [`Field::Declaration`]: salary and
//! days). They add nothing a holder of `k_leak` could not already test field by field;
//! a scan that finds them unequal falls back to the single-value digests to name the
//! fields that differ.
//!
//! Why a key of its own, and not the blind-index key: salaries, days and birth dates have
//! few possible values, so whoever holds the key can test guesses against the stored
//! digests. The blind-index key is opened by every gateway at start; `k_leak` is sealed to
//! the `financial` class and opened by a custodian quorum only for an import or a leak
//! scan, under its own purpose, logged by each custodian. No single node can test a guess.
//!
//! The record id inside every digest salts it per person: equal salaries of two persons
//! give unrelated digests, so the stored digests say nothing about who earns the same.
//! Eight bytes suffice: a forged value matches by chance with probability 2⁻⁶⁴.
//!
//! A scanner finds the person of a leaked row through the ordinary blind indexes (CNSS
//! number, CIN, name and birth date → record id), then fetches that person's digests, and
//! those of their monthly declarations, under one locator.

use crate::blind_index::{normalise_cin, normalise_digits, normalise_name};
use crate::secret::SecretBytes;
use crate::{CryptoError, Result};
use hmac::{HmacReset, KeyInit, Mac};
use sha2::Sha256;
use std::borrow::Cow;

/// Length of a locator in bytes.
pub const LOCATOR_LEN: usize = 16;
/// Length of a field digest in bytes.
pub const DIGEST_LEN: usize = 8;

/// A field whose value is digested. The code is stored; it never changes meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Field {
    /// CIN, normalised.
    Cin = 1,
    /// Name in Latin script, normalised (word order, accents, articles, variants).
    Name = 2,
    /// Name in Arabic script, normalised (vowel marks, alef forms).
    NameAr = 3,
    /// Birth date `YYYY-MM-DD`.
    Birth = 4,
    /// RIB, 24 digits.
    Rib = 5,
    /// CNSS number of the person (declarations carry it as their identifier).
    Cnss = 6,
    /// The person is an export canary (the value digested is [`CANARY`]).
    Canary = 7,
    /// Surname alone, normalised (dumps often carry one name column).
    Surname = 8,
    /// Given name alone, normalised.
    Given = 9,
    /// Real salary in centimes, exact.
    Salary = 10,
    /// Real salary in whole dirhams (centimes dropped).
    SalaryDirham = 11,
    /// Real salary rounded to the nearest 100 dirhams.
    SalaryHundred = 12,
    /// Real salary rounded to the nearest 1,000 dirhams.
    SalaryThousand = 13,
    /// Days declared.
    Days = 14,
    /// Capped salary in centimes.
    SalaryCapped = 15,
    /// A person record as a whole: the values of [`WholeRecord`], in its order.
    Record = 16,
    /// A month's declaration as a whole: real salary in centimes, then days.
    Declaration = 17,
}

impl Field {
    /// Every field, in code order.
    pub const ALL: [Field; 17] = [
        Field::Cin,
        Field::Name,
        Field::NameAr,
        Field::Birth,
        Field::Rib,
        Field::Cnss,
        Field::Canary,
        Field::Surname,
        Field::Given,
        Field::Salary,
        Field::SalaryDirham,
        Field::SalaryHundred,
        Field::SalaryThousand,
        Field::Days,
        Field::SalaryCapped,
        Field::Record,
        Field::Declaration,
    ];

    /// The field of a stored code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|f| *f as u8 == code)
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cin => "cin",
            Self::Name => "name",
            Self::NameAr => "name_ar",
            Self::Birth => "birth_date",
            Self::Rib => "rib",
            Self::Cnss => "cnss",
            Self::Canary => "canary",
            Self::Surname => "surname",
            Self::Given => "given",
            Self::Salary => "salary",
            Self::SalaryDirham => "salary_dirham",
            Self::SalaryHundred => "salary_hundred",
            Self::SalaryThousand => "salary_thousand",
            Self::Days => "days",
            Self::SalaryCapped => "salary_capped",
            Self::Record => "record",
            Self::Declaration => "declaration",
        }
    }
}

/// A field digest.
pub type Digest = [u8; DIGEST_LEN];

/// What a canary's [`Field::Canary`] digest is computed over: only a holder of `k_leak`
/// can tell a canary from any other person.
pub const CANARY: &str = "export-canary";

/// What a [`Field::Record`] digest covers, each value in its normal form
/// ([`normal_form`]); the name is the full Latin name, as [`Field::Name`] holds it.
#[derive(Debug, Clone, Copy)]
pub struct WholeRecord<'a> {
    /// CIN.
    pub cin: &'a str,
    /// Full name in Latin script.
    pub name: &'a str,
    /// Birth date.
    pub birth: &'a str,
    /// RIB.
    pub rib: &'a str,
}

impl<'a> WholeRecord<'a> {
    /// Its values in digest order.
    pub fn values(&self) -> [&'a str; 4] {
        [self.cin, self.name, self.birth, self.rib]
    }
}

/// `n` in decimal, written into `buf`: the form amounts and days are digested in, without
/// an allocation per value (a scan writes millions).
pub fn decimal(n: u64, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    let mut n = n;
    loop {
        at -= 1;
        // A single digit: the cast cannot truncate.
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).unwrap_or("0")
}

/// The salary forms a leaker commonly writes, each with its field: exact centimes, whole
/// dirhams, rounded to 100 and to 1,000 dirhams.
pub fn salary_forms(centimes: u64) -> [(Field, u64); 4] {
    let round = |unit: u64| (centimes + unit / 2) / unit * unit;
    [
        (Field::Salary, centimes),
        (Field::SalaryDirham, centimes / 100 * 100),
        (Field::SalaryHundred, round(10_000)),
        (Field::SalaryThousand, round(100_000)),
    ]
}

/// Computes locators and digests with the opened `k_leak`.
#[derive(Clone)]
pub struct LeakDigester {
    // Keyed once; each digest clones the keyed state instead of re-deriving the pads.
    keyed: HmacReset<Sha256>,
}

impl std::fmt::Debug for LeakDigester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LeakDigester([redacted])")
    }
}

/// The MAC input: parts joined by a zero byte (no part holds one: names, ids, digits).
fn feed<'a>(m: &mut HmacReset<Sha256>, parts: impl IntoIterator<Item = &'a [u8]>) {
    for (i, p) in parts.into_iter().enumerate() {
        if i > 0 {
            m.update(&[0]);
        }
        m.update(p);
    }
}

fn locator_parts(person_id: &str) -> [&[u8]; 2] {
    [b"locate/person", person_id.as_bytes()]
}

fn digest_parts<'a>(
    field: Field,
    record_id: &'a str,
    values: &'a [&'a str],
) -> impl Iterator<Item = &'a [u8]> {
    [
        b"field/".as_slice(),
        field.name().as_bytes(),
        record_id.as_bytes(),
    ]
    .into_iter()
    .chain(values.iter().map(|v| v.as_bytes()))
}

fn truncate<const N: usize>(full: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&full[..N]);
    out
}

impl LeakDigester {
    /// A digester over `key` (the opened `k_leak`).
    pub fn new(key: &SecretBytes<32>) -> Result<Self> {
        let keyed = <HmacReset<Sha256> as KeyInit>::new_from_slice(key.expose())
            .map_err(|_| CryptoError::Kdf("HMAC key length".into()))?;
        Ok(Self { keyed })
    }

    fn mac<'a>(&self, parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
        let mut m = self.keyed.clone();
        feed(&mut m, parts);
        m.finalize().into_bytes().into()
    }

    /// A digester for one thread's run of many digests: it keeps one keyed state and
    /// resets it after each digest, instead of copying the state in and wiping it out
    /// for every one (a scan computes millions).
    pub fn worker(&self) -> DigestWorker {
        DigestWorker {
            keyed: self.keyed.clone(),
        }
    }

    /// The locator of a person's digests (and of their declarations' digests): keyed, so
    /// that the digests table alone does not say which rows belong together.
    pub fn locator(&self, person_id: &str) -> [u8; LOCATOR_LEN] {
        truncate(&self.mac(locator_parts(person_id)))
    }

    /// The digest of `field` = `value` for the record `record_id` (values normalised by
    /// [`normalise_field`]).
    pub fn digest(&self, field: Field, record_id: &str, value: &str) -> Digest {
        self.digest_of(field, record_id, &[value])
    }

    /// The digest of `field` over several values ([`Field::Record`],
    /// [`Field::Declaration`]); one value gives [`LeakDigester::digest`].
    pub fn digest_of(&self, field: Field, record_id: &str, values: &[&str]) -> Digest {
        truncate(&self.mac(digest_parts(field, record_id, values)))
    }
}

/// [`LeakDigester`] for one thread: the same locators and digests.
pub struct DigestWorker {
    keyed: HmacReset<Sha256>,
}

impl std::fmt::Debug for DigestWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DigestWorker([redacted])")
    }
}

impl DigestWorker {
    fn mac<'a>(&mut self, parts: impl IntoIterator<Item = &'a [u8]>) -> [u8; 32] {
        feed(&mut self.keyed, parts);
        self.keyed.finalize_reset().into_bytes().into()
    }

    /// As [`LeakDigester::locator`].
    pub fn locator(&mut self, person_id: &str) -> [u8; LOCATOR_LEN] {
        truncate(&self.mac(locator_parts(person_id)))
    }

    /// As [`LeakDigester::digest`].
    pub fn digest(&mut self, field: Field, record_id: &str, value: &str) -> Digest {
        self.digest_of(field, record_id, &[value])
    }

    /// As [`LeakDigester::digest_of`].
    pub fn digest_of(&mut self, field: Field, record_id: &str, values: &[&str]) -> Digest {
        truncate(&self.mac(digest_parts(field, record_id, values)))
    }
}

/// The normal form of a field's value, shared by the writer and the scanner; `None` when
/// the value cannot be a value of that field (nor can any single value be a whole record
/// or declaration: their parts are normalised one by one).
pub fn normalise_field(field: Field, value: &str) -> Option<String> {
    normal_form(field, value).map(Cow::into_owned)
}

/// Same, borrowing `value` when it is in normal form already (as a scan's parsed CINs,
/// RIBs, CNSS numbers, dates and amounts are): millions of rows, no copy each.
pub fn normal_form(field: Field, value: &str) -> Option<Cow<'_, str>> {
    let b = value.as_bytes();
    let digits = |len: usize| b.len() == len && b.iter().all(u8::is_ascii_digit);
    let already = match field {
        Field::Cin => {
            let letters = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
            (1..=2).contains(&letters)
                && b.len() > letters
                && b.len() <= 8
                && b[letters..].iter().all(u8::is_ascii_digit)
        }
        Field::Rib => digits(24),
        Field::Cnss => digits(9),
        Field::Birth => b.len() == 10 && value.trim().len() == 10,
        Field::Salary
        | Field::SalaryDirham
        | Field::SalaryHundred
        | Field::SalaryThousand
        | Field::Days
        | Field::SalaryCapped => {
            !b.is_empty()
                && b.len() <= 19
                && b.iter().all(u8::is_ascii_digit)
                && (b[0] != b'0' || b.len() == 1)
        }
        Field::Canary => true,
        Field::Name
        | Field::NameAr
        | Field::Surname
        | Field::Given
        | Field::Record
        | Field::Declaration => false,
    };
    if already {
        return Some(Cow::Borrowed(value));
    }
    owned_normal_form(field, value).map(Cow::Owned)
}

fn owned_normal_form(field: Field, value: &str) -> Option<String> {
    match field {
        Field::Cin => normalise_cin(value).ok(),
        Field::Name | Field::NameAr | Field::Surname | Field::Given => {
            let n = normalise_name(value);
            (!n.is_empty()).then_some(n)
        }
        Field::Rib => normalise_digits(value, 24, "RIB").ok(),
        Field::Cnss => normalise_digits(value, 9, "CNSS number").ok(),
        Field::Canary => Some(value.to_owned()),
        Field::Birth => {
            let t = value.trim();
            (t.len() == 10).then(|| t.to_owned())
        }
        Field::Salary
        | Field::SalaryDirham
        | Field::SalaryHundred
        | Field::SalaryThousand
        | Field::Days
        | Field::SalaryCapped => value.trim().parse::<u64>().ok().map(|v| v.to_string()),
        // Several values, each in the normal form of its own field: no one value is one.
        Field::Record | Field::Declaration => None,
    }
}

/// A stored digest body: `(field code, digest)` pairs.
pub fn encode_body(pairs: &[(Field, Digest)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pairs.len() * (1 + DIGEST_LEN));
    for (f, d) in pairs {
        out.push(*f as u8);
        out.extend_from_slice(d);
    }
    out
}

/// Whether `body` is a whole number of `(field code, digest)` pairs.
pub fn check_body(body: &[u8]) -> Result<()> {
    if body.len().is_multiple_of(1 + DIGEST_LEN) {
        Ok(())
    } else {
        Err(CryptoError::Malformed {
            what: "leak digest body",
            reason: format!("{} bytes is not a whole number of entries", body.len()),
        })
    }
}

/// The pairs of a stored body; unknown codes (from a newer writer) are skipped.
pub fn decode_body(body: &[u8]) -> Result<Vec<(Field, Digest)>> {
    check_body(body)?;
    Ok(body
        .chunks_exact(1 + DIGEST_LEN)
        .filter_map(|c| {
            let f = Field::from_code(c[0])?;
            let mut d = [0u8; DIGEST_LEN];
            d.copy_from_slice(&c[1..]);
            Some((f, d))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dg(b: u8) -> LeakDigester {
        LeakDigester::new(&SecretBytes::new([b; 32])).unwrap()
    }

    #[test]
    fn values_already_in_normal_form_are_borrowed_and_others_normalised() {
        let borrowed = |f, v| matches!(normal_form(f, v), Some(Cow::Borrowed(_)));
        assert!(borrowed(Field::Cin, "BE123456"));
        assert!(borrowed(Field::Salary, "120"));
        assert!(borrowed(Field::Salary, "0"));
        assert!(borrowed(Field::Birth, "2020-01-31"));
        // Ten bytes with a space in them are not a date of ten characters.
        assert_eq!(normal_form(Field::Birth, " 2020-01-3"), None);
        for (f, v, normal) in [
            (Field::Cin, " be 123-456", Some("BE123456")),
            (Field::Cin, "BE", None),
            (Field::Salary, "0120", Some("120")),
            (Field::Salary, " 7 ", Some("7")),
            (Field::Cnss, "123 456 789", Some("123456789")),
            (Field::Cnss, "12", None),
            (Field::Given, "  Fatima ", Some("fatima")),
            (Field::Record, "anything", None),
        ] {
            assert_eq!(normalise_field(f, v).as_deref(), normal, "{f:?} {v:?}");
            assert!(!borrowed(f, v), "{f:?} {v:?}");
        }
        assert_eq!(format!("{:?}", dg(1)), "LeakDigester([redacted])");
        assert_eq!(format!("{:?}", dg(1).worker()), "DigestWorker([redacted])");
    }

    #[test]
    fn digests_are_salted_per_record_and_keyed() {
        let d = dg(1);
        let a = d.digest(Field::Salary, "p-a", "500000");
        assert_eq!(a, d.digest(Field::Salary, "p-a", "500000"));
        assert_ne!(a, d.digest(Field::Salary, "p-b", "500000"));
        assert_ne!(a, d.digest(Field::Days, "p-a", "500000"));
        assert_ne!(a, dg(2).digest(Field::Salary, "p-a", "500000"));
    }

    #[test]
    fn locators_are_keyed_per_person() {
        let d = dg(1);
        assert_eq!(d.locator("p-a"), d.locator("p-a"));
        assert_ne!(d.locator("p-a"), d.locator("p-b"));
        assert_ne!(d.locator("p-a"), dg(2).locator("p-a"));
    }

    #[test]
    fn a_borrowed_normal_form_is_the_owned_one() {
        let cases = [
            (
                Field::Cin,
                vec![
                    "BE123456",
                    "be 123456",
                    "B1",
                    "BE-12",
                    "ABC12",
                    "BE",
                    "B123456789",
                    "É12",
                ],
            ),
            (
                Field::Rib,
                vec![
                    "011780000012345678901234",
                    "0117 8000 0012 3456 7890 1234",
                    "12",
                ],
            ),
            (Field::Cnss, vec!["123456789", "123 456 789", "12345678a"]),
            (
                Field::Birth,
                vec!["1980-01-02", " 1980-01-02 ", "1980-1-2", "1980-01-02x"],
            ),
            (
                Field::Salary,
                vec![
                    "0",
                    "700003",
                    "0700",
                    " 12",
                    "12.5",
                    "",
                    "99999999999999999999",
                ],
            ),
            (Field::Days, vec!["26", "026"]),
            (Field::Name, vec!["Ben Ali", "ali ben"]),
        ];
        for (f, values) in cases {
            for v in values {
                let slow = owned_normal_form(f, v);
                let fast = normal_form(f, v).map(Cow::into_owned);
                assert_eq!(fast, slow, "{f:?} {v:?}");
            }
        }
    }

    #[test]
    fn a_worker_computes_what_the_digester_does_digest_after_digest() {
        let d = dg(5);
        let mut w = d.worker();
        for (f, id, v) in [
            (Field::Cin, "p-1", "BE123456"),
            (Field::Salary, "d-202501-p-1", "700003"),
            (Field::Cin, "p-1", "BE123456"),
            (Field::Name, "p-2", "ali ben"),
        ] {
            assert_eq!(w.digest(f, id, v), d.digest(f, id, v));
            assert_eq!(w.locator(id), d.locator(id));
            assert_eq!(
                w.digest_of(f, id, &[v, "26"]),
                d.digest_of(f, id, &[v, "26"])
            );
        }
    }

    #[test]
    fn a_single_value_digest_is_the_one_stored_before_whole_records_existed() {
        // The input of a one-value digest must not change: stores hold millions of them.
        let d = dg(7);
        let mut m = <HmacReset<Sha256> as KeyInit>::new_from_slice(&[7u8; 32]).unwrap();
        m.update(b"field/\0cin\0p-1\0BE123456");
        let want: [u8; 32] = m.finalize().into_bytes().into();
        assert_eq!(d.digest(Field::Cin, "p-1", "BE123456"), want[..DIGEST_LEN]);
    }

    #[test]
    fn whole_record_digests_depend_on_every_value_and_its_place() {
        let d = dg(3);
        let r = WholeRecord {
            cin: "BE123456",
            name: "ali ben",
            birth: "1980-01-02",
            rib: "011780000012345678901234",
        };
        let whole = d.digest_of(Field::Record, "p-1", &r.values());
        for other in [
            WholeRecord {
                cin: "BE123457",
                ..r
            },
            WholeRecord {
                name: "ali bel",
                ..r
            },
            WholeRecord {
                birth: "1980-01-03",
                ..r
            },
            WholeRecord {
                rib: "011780000012345678901235",
                ..r
            },
            // The same characters in other places.
            WholeRecord {
                cin: "BE12345",
                name: "6ali ben",
                ..r
            },
        ] {
            assert_ne!(whole, d.digest_of(Field::Record, "p-1", &other.values()));
        }
        assert_ne!(whole, d.digest_of(Field::Record, "p-2", &r.values()));
        assert_ne!(
            d.digest_of(Field::Declaration, "p-1", &["700003", "26"]),
            d.digest_of(Field::Declaration, "p-1", &["70000", "326"])
        );
    }

    #[test]
    fn decimal_writes_what_to_string_does() {
        let mut buf = [0u8; 20];
        for n in [0, 7, 10, 26, 700_003, 1_000_000, u64::MAX] {
            assert_eq!(decimal(n, &mut buf), n.to_string());
        }
    }

    #[test]
    fn salary_forms_round_half_up() {
        let f = salary_forms(1_234_567);
        assert_eq!(f[1].1, 1_234_500);
        assert_eq!(f[2].1, 1_230_000);
        assert_eq!(f[3].1, 1_200_000);
        assert_eq!(salary_forms(1_250_000)[2].1, 1_250_000);
        assert_eq!(salary_forms(1_255_000)[2].1, 1_260_000);
    }

    #[test]
    fn bodies_round_trip_and_bad_lengths_are_named() {
        let pairs = vec![(Field::Cin, [1u8; 8]), (Field::Days, [2u8; 8])];
        assert_eq!(decode_body(&encode_body(&pairs)).unwrap(), pairs);
        let err = decode_body(&[1, 2, 3]).unwrap_err().to_string();
        assert!(err.contains("not a whole number"), "{err}");
        let mut future = encode_body(&pairs);
        future.extend_from_slice(&[200, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode_body(&future).unwrap(), pairs);
    }
}
