//! Which field of which table goes into which class, and which blind indexes it gets.
//!
//! | table | record id | class `identity` | class `financial` | blind indexes |
//! |---|---|---|---|---|
//! | `persons` | `p-…` | cnss, cin, given, surname, name_ar, birth_date, city, employer | rib | cnss, cin, name-birth |
//! | `employers` | `e-…` | affiliation, ice, name, activity, address, city, postal_code, agency | — | affiliation |
//! | `declarations` | `d-AAAAMM-p-…-e-…` | — | period, person, employer, days, salary_real, salary_capped, allowance, situation | decl-of(person) |
//!
//! The layouts below ([`PERSON_FIELDS`], [`EMPLOYER_FIELDS`], [`DECLARATION_FIELDS`]) are
//! the one place that says it: the sealer seals what they list, and the gateway releases
//! and masks by them.
//!
//! Record ids are opaque and carry no personal data: `p-` or `e-` and 32 letters `a`–`p`
//! encoding a keyed tag of the CNSS or affiliation number (letters only, so that no digit
//! run of an id can be mistaken for a leaked number). Being derived from the number under
//! the index key, the same person always gets the same id: a re-run import finds what it
//! already stored and writes no duplicate. A declaration's link to its person and employer
//! is sealed; a person's history is found through a blind index over the person's id.

use crate::model::{DeclarationRow, EmployerRow, PersonRow};
use ribat_crypto::Result;
use ribat_crypto::blind_index::{BlindIndexer, BlindTag};
use ribat_crypto::envelope::{Envelope, Sealer};
use ribat_crypto::group::GroupPublic;
use ribat_crypto::leak_digest::{
    CANARY, Digest, Field, LeakDigester, WholeRecord, encode_body, normalise_field, salary_forms,
};
use ribat_policy::{Class, Table};
use ribat_store::{StoredClass, StoredRecord};

/// Blind-index kind for a person's declarations.
pub const DECL_OF: &str = ribat_crypto::blind_index::DECLARATIONS_OF;

/// Every class the fund's tables seal a field in: a key ceremony must draw a key for each
/// (the service keys are sealed to them too).
pub static SEALED_CLASSES: [Class; 2] = [Class::IDENTITY, Class::FINANCIAL];

/// A person's fields, each with the class that seals it, in the order the API lists them.
pub const PERSON_FIELDS: &[(&str, Class)] = &[
    ("cnss", Class::IDENTITY),
    ("cin", Class::IDENTITY),
    ("given", Class::IDENTITY),
    ("surname", Class::IDENTITY),
    ("name_ar", Class::IDENTITY),
    ("birth_date", Class::IDENTITY),
    ("city", Class::IDENTITY),
    ("employer", Class::IDENTITY),
    ("rib", Class::FINANCIAL),
];

/// An employer's fields, all sealed in class [`Class::IDENTITY`].
pub const EMPLOYER_FIELDS: &[&str] = &[
    "affiliation",
    "ice",
    "name",
    "activity",
    "address",
    "city",
    "postal_code",
    "agency",
];

/// The fields of a declaration (class [`Class::FINANCIAL`]) released in a person's history; the
/// others (its person, employer, line kind, children, allowance, situation) stay sealed.
pub const DECLARATION_FIELDS: &[&str] = &["period", "days", "salary_real", "salary_capped"];

/// The value of a person's field named in [`PERSON_FIELDS`].
fn person_value<'a>(p: &'a PersonRow, field: &str) -> Option<&'a str> {
    Some(match field {
        "cnss" => &p.cnss,
        "cin" => &p.cin,
        "given" => &p.given,
        "surname" => &p.surname,
        "name_ar" => &p.name_ar,
        "birth_date" => &p.birth_date,
        "city" => &p.city,
        "employer" => &p.employer,
        "rib" => &p.rib,
        _ => return None,
    })
}

/// The value of an employer's field named in [`EMPLOYER_FIELDS`].
fn employer_value<'a>(e: &'a EmployerRow, field: &str) -> Option<&'a str> {
    Some(match field {
        "affiliation" => &e.affiliation,
        "ice" => &e.ice,
        "name" => &e.name,
        "activity" => &e.activity,
        "address" => &e.address,
        "city" => &e.city,
        "postal_code" => &e.postal_code,
        "agency" => &e.agency,
        _ => return None,
    })
}

/// A person's fields of `class`, in layout order, with their values (no allocation but the
/// caller's: this runs for every imported person).
fn of_class<'a, 'c>(
    p: &'a PersonRow,
    class: &'c Class,
) -> impl Iterator<Item = (&'static str, &'a [u8])> + use<'a, 'c> {
    PERSON_FIELDS
        .iter()
        .filter(move |(_, c)| c == class)
        .filter_map(move |(f, _)| person_value(p, f).map(|v| (*f, v.as_bytes())))
}

/// Seals records with the group's public keys and tags them with the blind-index key
/// (and, when given the opened leak key, files their leak digests).
pub struct RecordSealer<'a> {
    identity: Sealer,
    financial: Sealer,
    index: &'a BlindIndexer,
    leak: Option<&'a LeakDigester>,
}

fn stored(env: &Envelope) -> Result<StoredClass> {
    Ok(StoredClass {
        class: env.class.clone(),
        epoch: env.epoch,
        r: env.r,
        envelope: env.to_bytes()?,
    })
}

fn tag(kind: &str, t: BlindTag) -> (String, [u8; 16]) {
    (kind.to_owned(), t.0)
}

impl<'a> RecordSealer<'a> {
    /// A sealer for the group's current epoch.
    pub fn new(group: &GroupPublic, index: &'a BlindIndexer) -> Result<Self> {
        Ok(Self {
            identity: Sealer::new(
                &Class::IDENTITY,
                group.class(&Class::IDENTITY)?,
                group.epoch,
            ),
            financial: Sealer::new(
                &Class::FINANCIAL,
                group.class(&Class::FINANCIAL)?,
                group.epoch,
            ),
            index,
            leak: None,
        })
    }

    /// The same sealer, also writing leak digests with `leak`.
    pub fn with_leak_digests(mut self, leak: &'a LeakDigester) -> Self {
        self.leak = Some(leak);
        self
    }

    /// The opaque record id of the person with this CNSS number.
    pub fn person_id(&self, cnss: &str) -> Result<String> {
        self.index.person_record_id(cnss)
    }

    /// The opaque record id of the employer with this affiliation number.
    pub fn employer_id(&self, affiliation: &str) -> Result<String> {
        self.index.employer_record_id(affiliation)
    }

    /// An export canary: a person like any other, whose leak digests also carry the canary
    /// mark, so that a scan knows it (the recipient is in the export's sealed manifest).
    pub fn canary(&self, record_id: &str, p: &PersonRow) -> Result<StoredRecord> {
        let mut r = self.person(record_id, p, 1)?;
        if let Some(l) = self.leak {
            let mut pairs = Vec::new();
            for (_, body) in &r.digests {
                pairs = ribat_crypto::leak_digest::decode_body(body)?;
            }
            pairs.push((Field::Canary, l.digest(Field::Canary, record_id, CANARY)));
            r.digests = vec![(l.locator(record_id), encode_body(&pairs))];
        }
        Ok(r)
    }

    /// A person: identity and bank details sealed, three blind indexes.
    pub fn person(&self, record_id: &str, p: &PersonRow, version: u64) -> Result<StoredRecord> {
        let identity: Vec<_> = of_class(p, &Class::IDENTITY).collect();
        let id = self
            .identity
            .seal(Table::Persons.as_str(), record_id, &identity)?;
        let financial: Vec<_> = of_class(p, &Class::FINANCIAL).collect();
        let fin = self
            .financial
            .seal(Table::Persons.as_str(), record_id, &financial)?;
        let full_name = format!("{} {}", p.given, p.surname);
        let mut index = vec![
            tag("cnss", self.index.cnss(&p.cnss)?),
            tag("cin", self.index.cin(&p.cin)?),
            tag(
                "name-birth",
                self.index.name_birth(&full_name, &p.birth_date)?,
            ),
        ];
        // The same lookup from the name as written in Arabic script, as counters type it.
        if !p.name_ar.trim().is_empty()
            && let Ok(t) = self.index.name_birth(&p.name_ar, &p.birth_date)
        {
            index.push(tag("name-birth", t));
        }
        let digests = self
            .leak
            .map(|l| person_digests(l, record_id, p))
            .unwrap_or_default();
        Ok(StoredRecord {
            table: Table::Persons.to_string(),
            record_id: record_id.to_owned(),
            version,
            classes: vec![stored(&id)?, stored(&fin)?],
            index,
            digests,
        })
    }

    /// An employer.
    pub fn employer(&self, record_id: &str, e: &EmployerRow, version: u64) -> Result<StoredRecord> {
        let fields: Vec<_> = EMPLOYER_FIELDS
            .iter()
            .filter_map(|f| employer_value(e, f).map(|v| (*f, v.as_bytes())))
            .collect();
        let id = self
            .identity
            .seal(Table::Employers.as_str(), record_id, &fields)?;
        Ok(StoredRecord {
            table: Table::Employers.to_string(),
            record_id: record_id.to_owned(),
            version,
            classes: vec![stored(&id)?],
            index: vec![tag("affiliation", self.index.affiliation(&e.affiliation)?)],
            digests: Vec::new(),
        })
    }

    /// A declaration line of `person_id` with employer `employer_id`.
    pub fn declaration(
        &self,
        d: &DeclarationRow,
        person_id: &str,
        employer_id: &str,
        version: u64,
    ) -> Result<StoredRecord> {
        let record_id = declaration_id(&d.period, person_id, employer_id);
        let children = d.children.to_string();
        let days = d.days.to_string();
        let real = d.salary_real.to_string();
        let capped = d.salary_capped.to_string();
        let allowance = d.allowance.to_string();
        let kind = if d.entrant { "B04" } else { "B02" };
        let fin = self.financial.seal(
            Table::Declarations.as_str(),
            &record_id,
            &[
                ("period", d.period.as_bytes()),
                ("person", person_id.as_bytes()),
                ("employer", employer_id.as_bytes()),
                ("line", kind.as_bytes()),
                ("children", children.as_bytes()),
                ("days", days.as_bytes()),
                ("salary_real", real.as_bytes()),
                ("salary_capped", capped.as_bytes()),
                ("allowance", allowance.as_bytes()),
                ("situation", d.situation.as_bytes()),
            ],
        )?;
        Ok(StoredRecord {
            table: Table::Declarations.to_string(),
            record_id,
            version,
            classes: vec![stored(&fin)?],
            index: vec![tag(DECL_OF, self.index.reference(DECL_OF, person_id)?)],
            digests: self
                .leak
                .map(|l| declaration_digests(l, person_id, d))
                .unwrap_or_default(),
        })
    }
}

/// Digests of what identifies a person, each field and the record as a whole, filed under
/// the person's locator.
fn person_digests(l: &LeakDigester, record_id: &str, p: &PersonRow) -> Vec<([u8; 16], Vec<u8>)> {
    let mut pairs = Vec::new();
    let mut normal: Vec<(Field, String)> = Vec::new();
    let full_name = format!("{} {}", p.given, p.surname);
    for (field, value) in [
        (Field::Cnss, p.cnss.as_str()),
        (Field::Cin, p.cin.as_str()),
        (Field::Name, full_name.as_str()),
        (Field::NameAr, p.name_ar.as_str()),
        (Field::Surname, p.surname.as_str()),
        (Field::Given, p.given.as_str()),
        (Field::Birth, p.birth_date.as_str()),
        (Field::Rib, p.rib.as_str()),
    ] {
        if let Some(v) = normalise_field(field, value) {
            pairs.push((field, l.digest(field, record_id, &v)));
            normal.push((field, v));
        }
    }
    let of = |f: Field| {
        normal
            .iter()
            .find(|(g, _)| *g == f)
            .map(|(_, v)| v.as_str())
    };
    // A record missing one of them has no whole-record digest: its rows are checked field
    // by field, as before whole records existed.
    if let (Some(cin), Some(name), Some(birth), Some(rib)) = (
        of(Field::Cin),
        of(Field::Name),
        of(Field::Birth),
        of(Field::Rib),
    ) {
        let whole = WholeRecord {
            cin,
            name,
            birth,
            rib,
        };
        pairs.push((
            Field::Record,
            l.digest_of(Field::Record, record_id, &whole.values()),
        ));
    }
    vec![(l.locator(record_id), encode_body(&pairs))]
}

/// Digests of a month's declaration, salted with the person's id so that a scanner
/// computes each leaked value's digest once and compares it with every month.
fn declaration_digests(
    l: &LeakDigester,
    person_id: &str,
    d: &DeclarationRow,
) -> Vec<([u8; 16], Vec<u8>)> {
    let mut pairs: Vec<(Field, Digest)> = salary_forms(d.salary_real)
        .iter()
        .map(|(f, v)| (*f, l.digest(*f, person_id, &v.to_string())))
        .collect();
    pairs.push((
        Field::Days,
        l.digest(Field::Days, person_id, &d.days.to_string()),
    ));
    pairs.push((
        Field::SalaryCapped,
        l.digest(Field::SalaryCapped, person_id, &d.salary_capped.to_string()),
    ));
    pairs.push((
        Field::Declaration,
        l.digest_of(
            Field::Declaration,
            person_id,
            &[&d.salary_real.to_string(), &d.days.to_string()],
        ),
    ));
    vec![(l.locator(person_id), encode_body(&pairs))]
}

/// The record id of a person's declaration for a period by one employer: a person may be
/// declared by several employers in the same month (part-time work, a change of job), and
/// each declaration is its own record.
pub fn declaration_id(period: &str, person_id: &str, employer_id: &str) -> String {
    format!("d-{period}-{person_id}-{employer_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use ribat_crypto::leak_digest::decode_body;
    use ribat_crypto::secret::SecretBytes;

    fn person() -> PersonRow {
        PersonRow {
            cnss: "152099839".into(),
            cin: "k890193".into(),
            given: "Youssef".into(),
            surname: "Mansouri".into(),
            name_ar: "يوسف المنصوري".into(),
            birth_date: "1984-07-08".into(),
            city: "Casablanca".into(),
            rib: "0072 8555 7520 0542 0858 2345".into(),
            employer: "1234567".into(),
        }
    }

    fn field(body: &[u8], f: Field) -> Option<Digest> {
        decode_body(body)
            .unwrap()
            .into_iter()
            .find(|(g, _)| *g == f)
            .map(|(_, d)| d)
    }

    #[test]
    fn the_classes_a_ceremony_must_draw_are_those_the_layouts_seal() {
        let used: std::collections::BTreeSet<&Class> =
            PERSON_FIELDS.iter().map(|(_, c)| c).collect();
        let listed: std::collections::BTreeSet<&Class> = SEALED_CLASSES.iter().collect();
        assert_eq!(used, listed);
    }

    #[test]
    fn every_field_of_a_layout_is_sealed_in_its_class_and_no_other() {
        let p = person();
        for class in [Class::IDENTITY, Class::FINANCIAL] {
            let sealed: Vec<&str> = of_class(&p, &class).map(|(f, _)| f).collect();
            let listed: Vec<&str> = PERSON_FIELDS
                .iter()
                .filter(|(_, c)| *c == class)
                .map(|(f, _)| *f)
                .collect();
            assert_eq!(sealed, listed, "class {class}");
        }
        assert!(
            of_class(&p, &"no-such-class".parse().unwrap())
                .next()
                .is_none()
        );
        let e = EmployerRow {
            affiliation: "1234567".into(),
            ice: "001234567000089".into(),
            name: "Atlas".into(),
            activity: "textile".into(),
            address: "1 rue".into(),
            city: "Fes".into(),
            postal_code: "30000".into(),
            agency: "12".into(),
        };
        for f in EMPLOYER_FIELDS {
            assert!(employer_value(&e, f).is_some_and(|v| !v.is_empty()), "{f}");
        }
        assert_eq!(person_value(&p, "rib"), Some(p.rib.as_str()));
        assert_eq!(person_value(&p, "no-such-field"), None);
    }

    #[test]
    fn a_whole_record_digest_covers_the_normal_forms_a_scan_computes() {
        let l = LeakDigester::new(&SecretBytes::new([4u8; 32])).unwrap();
        let [(_, body)] = person_digests(&l, "p-1", &person()).try_into().unwrap();
        // What a scan of a dump writing the name surname first, in capitals, computes.
        let name = normalise_field(Field::Name, "MANSOURI Youssef").unwrap();
        let whole = WholeRecord {
            cin: "K890193",
            name: &name,
            birth: "1984-07-08",
            rib: "007285557520054208582345",
        };
        assert_eq!(
            field(&body, Field::Record),
            Some(l.digest_of(Field::Record, "p-1", &whole.values()))
        );
        assert_eq!(
            field(&body, Field::Name),
            Some(l.digest(Field::Name, "p-1", &name))
        );
        // Without a RIB there is no whole record to digest; the other fields still are.
        let no_rib = PersonRow {
            rib: String::new(),
            ..person()
        };
        let [(_, body)] = person_digests(&l, "p-1", &no_rib).try_into().unwrap();
        assert_eq!(field(&body, Field::Record), None);
        assert!(field(&body, Field::Cin).is_some());
    }

    #[test]
    fn a_whole_declaration_digest_is_salary_then_days() {
        let l = LeakDigester::new(&SecretBytes::new([4u8; 32])).unwrap();
        let d = DeclarationRow {
            affiliation: "1234567".into(),
            period: "202501".into(),
            cnss: "152099839".into(),
            nom_prenom: "MANSOURI YOUSSEF".into(),
            cin: None,
            children: 0,
            allowance: 0,
            days: 26,
            salary_real: 552_839,
            salary_capped: 552_839,
            situation: String::new(),
            entrant: false,
        };
        let [(loc, body)] = declaration_digests(&l, "p-1", &d).try_into().unwrap();
        assert_eq!(loc, l.locator("p-1"));
        assert_eq!(
            field(&body, Field::Declaration),
            Some(l.digest_of(Field::Declaration, "p-1", &["552839", "26"]))
        );
    }
}
