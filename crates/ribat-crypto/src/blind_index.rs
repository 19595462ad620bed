//! Blind indexes: keyed, truncated HMAC-SHA256 tags of normalised identifiers.
//!
//! `tag = HMAC-SHA256(k_idx, kind ‖ 0x00 ‖ normalised value)[..16]`
//!
//! The store keeps tags, never values, so a lookup by CIN or CNSS number needs `k_idx`,
//! which is itself sealed to a class key and opened by a custodian quorum when a reader
//! starts. Normalisation makes the clerk's "be 123 456" find the card "BE123456", and the
//! usual transliteration variants of a name meet on one spelling.

use crate::secret::SecretBytes;
use crate::{CryptoError, Result};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Length of a tag in bytes.
pub const TAG_LEN: usize = 16;

/// What is indexed; part of the HMAC input so that equal strings of different kinds differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// National identity card number.
    Cin,
    /// 9-digit CNSS insured number.
    Cnss,
    /// 7-digit employer affiliation number.
    Affiliation,
    /// Full name and birth date together.
    NameBirth,
}

impl IndexKind {
    /// The label stored next to the tag and fed to the HMAC.
    pub fn label(self) -> &'static str {
        match self {
            Self::Cin => "cin",
            Self::Cnss => "cnss",
            Self::Affiliation => "affiliation",
            Self::NameBirth => "name-birth",
        }
    }
}

/// Reference kind under which each declaration carries its person's record id.
pub const DECLARATIONS_OF: &str = "decl-of";

/// A tag as letters `a`–`p`, after `prefix`: a record id with no personal data in it.
fn opaque(prefix: &str, t: &BlindTag) -> String {
    let mut s = String::with_capacity(prefix.len() + 32);
    s.push_str(prefix);
    for b in t.0 {
        s.push(char::from(b'a' + (b >> 4)));
        s.push(char::from(b'a' + (b & 0x0f)));
    }
    s
}

/// A blind-index tag.
#[derive(Clone, Copy, Debug, Eq)]
pub struct BlindTag(pub [u8; TAG_LEN]);

impl PartialEq for BlindTag {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// Computes tags with the unsealed index key.
pub struct BlindIndexer {
    // Keyed once (the pads derived from the key, zeroized on drop); each tag clones the
    // state. HMAC takes keys of any length, so `None` cannot happen with a 32-byte key;
    // it is kept as an error rather than a panic all the same.
    keyed: Option<Hmac<Sha256>>,
}

impl std::fmt::Debug for BlindIndexer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindIndexer([redacted])")
    }
}

impl BlindIndexer {
    /// An indexer over `key` (the opened `k_idx`).
    pub fn new(key: SecretBytes<32>) -> Self {
        Self {
            keyed: <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose()).ok(),
        }
    }

    /// Tag of a CIN.
    pub fn cin(&self, cin: &str) -> Result<BlindTag> {
        self.tag(IndexKind::Cin, &normalise_cin(cin)?)
    }

    /// Tag of a CNSS number.
    pub fn cnss(&self, n: &str) -> Result<BlindTag> {
        self.tag(IndexKind::Cnss, &normalise_digits(n, 9, "CNSS number")?)
    }

    /// Tag of an employer affiliation number.
    pub fn affiliation(&self, n: &str) -> Result<BlindTag> {
        self.tag(
            IndexKind::Affiliation,
            &normalise_digits(n, 7, "affiliation number")?,
        )
    }

    /// Tag of a name with a birth date `YYYY-MM-DD`.
    pub fn name_birth(&self, name: &str, birth: &str) -> Result<BlindTag> {
        let n = normalise_name(name);
        if n.is_empty() {
            return Err(invalid("name", "no letters"));
        }
        let b = normalise_date(birth)?;
        self.tag(IndexKind::NameBirth, &format!("{n}|{b}"))
    }

    /// The opaque record id of the person with this CNSS number: `p-` and 32 letters
    /// `a`–`p` (the gateway finds the person by it, a custodian checks a signed request
    /// names it).
    pub fn person_record_id(&self, cnss: &str) -> Result<String> {
        Ok(opaque("p-", &self.reference("record-id/person", cnss)?))
    }

    /// The opaque record id of the employer with this affiliation number (`e-`…).
    pub fn employer_record_id(&self, affiliation: &str) -> Result<String> {
        Ok(opaque(
            "e-",
            &self.reference("record-id/employer", affiliation)?,
        ))
    }

    /// Tag of an internal reference (e.g. a person's record id, to find their declarations)
    /// under a caller-chosen kind label that must not collide with [`IndexKind`] labels.
    pub fn reference(&self, kind: &str, value: &str) -> Result<BlindTag> {
        if [
            IndexKind::Cin,
            IndexKind::Cnss,
            IndexKind::Affiliation,
            IndexKind::NameBirth,
        ]
        .iter()
        .any(|k| k.label() == kind)
        {
            return Err(invalid("index kind", "reserved for identifiers"));
        }
        self.mac(kind, value)
    }

    fn tag(&self, kind: IndexKind, value: &str) -> Result<BlindTag> {
        self.mac(kind.label(), value)
    }

    fn mac(&self, kind: &str, value: &str) -> Result<BlindTag> {
        let mut mac = self
            .keyed
            .clone()
            .ok_or_else(|| CryptoError::Kdf("HMAC key length".into()))?;
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(&full[..TAG_LEN]);
        Ok(BlindTag(t))
    }
}

/// Identifiers are personal data: an error says what is wrong, never what the value was.
fn invalid(what: &'static str, why: &str) -> CryptoError {
    CryptoError::Malformed {
        what,
        reason: why.to_owned(),
    }
}

/// `BE 123-456` → `BE123456`: one or two letters then digits, eight characters at most.
pub fn normalise_cin(cin: &str) -> Result<String> {
    let s: String = cin
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_uppercase)
        .collect();
    let letters = s.chars().take_while(char::is_ascii_uppercase).count();
    let digits = s.chars().skip(letters).filter(char::is_ascii_digit).count();
    if !(1..=2).contains(&letters) || digits == 0 || letters + digits != s.chars().count() {
        return Err(invalid(
            "CIN",
            "expected 1–2 letters followed by digits, e.g. BE123456",
        ));
    }
    if s.len() > 8 {
        return Err(invalid("CIN", "longer than 8 characters"));
    }
    Ok(s)
}

/// Exactly `len` digits once spaces are removed.
pub fn normalise_digits(n: &str, len: usize, what: &'static str) -> Result<String> {
    let s: String = n.chars().filter(|c| !c.is_whitespace()).collect();
    if s.len() != len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CryptoError::Malformed {
            what,
            reason: format!("expected exactly {len} digits"),
        });
    }
    Ok(s)
}

fn normalise_date(d: &str) -> Result<String> {
    let t = d.trim();
    let ok = t.len() == 10
        && t.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let month = t.get(5..7).and_then(|m| m.parse::<u8>().ok());
    let day = t.get(8..10).and_then(|m| m.parse::<u8>().ok());
    match (ok, month, day) {
        (true, Some(1..=12), Some(1..=31)) => Ok(t.to_owned()),
        _ => Err(invalid("birth date", "expected YYYY-MM-DD")),
    }
}

/// Canonical spellings of frequent transliteration variants. Data, kept in one place.
const VARIANTS: &[(&str, &str)] = &[
    ("mohammed", "mohamed"),
    ("mohammad", "mohamed"),
    ("muhammad", "mohamed"),
    ("mhamed", "mohamed"),
    ("mohamad", "mohamed"),
    ("fatima", "fatima"),
    ("fatimazahra", "fatima zahra"),
    ("abdelah", "abdellah"),
    ("abdallah", "abdellah"),
    ("youssef", "youssef"),
    ("yousef", "youssef"),
    ("yusuf", "youssef"),
    ("hassan", "hassan"),
    ("hasan", "hassan"),
    ("hussein", "houssine"),
    ("houssein", "houssine"),
    ("khadija", "khadija"),
    ("khadidja", "khadija"),
    ("rachid", "rachid"),
    ("rashid", "rachid"),
];

/// Latin names: strip accents, case-fold, drop `El`/`Al` articles, map variants, sort
/// the words (records list surname and given name in either order). Arabic names: strip
/// vowel marks (harakat) and tatweel, fold alef forms, and write the compounds of "عبد"
/// apart ("عبدالإله" as "عبد الإله"), since registers and payroll files write them both
/// ways.
pub fn normalise_name(name: &str) -> String {
    let folded = if name.is_ascii() {
        fold_ascii(name)
    } else {
        fold_unicode(name)
    };
    let mut words: Vec<&str> = Vec::new();
    for w in folded.split_whitespace() {
        match w.strip_prefix(ABD).filter(|rest| rest.chars().count() >= 2) {
            Some(rest) => {
                words.push(ABD);
                push_word(&mut words, rest);
            }
            None => push_word(&mut words, w),
        }
    }
    words.sort_unstable();
    words.join(" ")
}

/// "عبد" (servant of), the first part of compound given names.
const ABD: &str = "عبد";

/// One folded word, without its article, in its canonical spelling.
fn push_word<'a>(words: &mut Vec<&'a str>, w: &'a str) {
    if matches!(w, "el" | "al" | "ben" | "bin" | "ال") {
        // Articles and "ben" are written attached, hyphenated or apart; dropping them
        // makes "El Amrani", "Elamrani" differ less than keeping them would help.
        return;
    }
    let w = w
        .strip_prefix("ال")
        .filter(|r| r.chars().count() >= 2)
        .unwrap_or(w);
    let canon = VARIANTS
        .iter()
        .find(|(v, _)| *v == w)
        .map_or(w, |(_, c)| *c);
    words.extend(canon.split(' '));
}

/// Accents stripped, Arabic letter forms folded, lower case, anything but letters and
/// digits a space.
fn fold_unicode(name: &str) -> String {
    name.nfkd()
        .filter(|c| !is_combining_mark(*c) && *c != '\u{0640}')
        .map(|c| match c {
            'أ' | 'إ' | 'آ' | 'ٱ' => 'ا',
            'ى' => 'ي',
            'ة' => 'ه',
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect()
}

/// The same for ASCII, byte by byte: NFKD leaves ASCII as it is and marks none of it.
/// Most names of a dump are ASCII, and a scan folds millions.
fn fold_ascii(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b.to_ascii_lowercase())
            } else {
                ' '
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix() -> BlindIndexer {
        BlindIndexer::new(SecretBytes::new([9u8; 32]))
    }

    #[test]
    fn a_record_id_spells_its_tag_in_sixteen_letters_high_nibble_first() {
        let mut tag = [0u8; TAG_LEN];
        tag[..4].copy_from_slice(&[0x00, 0xff, 0x5a, 0x1f]);
        let id = opaque("p-", &BlindTag(tag));
        assert_eq!(id.len(), 2 + 2 * TAG_LEN);
        assert_eq!(&id[..10], "p-aappfkbp");
        assert!(id[10..].bytes().all(|b| b == b'a'));
        // A person's record id is the tag of its CNSS number under the record-id kind.
        let ix = ix();
        let id = ix.person_record_id("123456789").unwrap();
        let tag = ix.reference("record-id/person", "123456789").unwrap();
        assert_eq!(id, opaque("p-", &tag));
        assert_ne!(id, ix.person_record_id("123456780").unwrap());
        assert!(ix.employer_record_id("1234567").unwrap().starts_with("e-"));
        assert_eq!(format!("{ix:?}"), "BlindIndexer([redacted])");
        // Internal references never take an identifier's label (their tags would collide).
        for k in ["cin", "cnss", "affiliation", "name-birth"] {
            assert!(ix.reference(k, "123456789").is_err(), "{k}");
        }
    }

    #[test]
    fn a_cin_needs_digits_after_its_letters_and_a_date_is_exactly_ten_characters() {
        assert_eq!(normalise_cin("be 123-456").unwrap(), "BE123456");
        for bad in ["BE", "B1E2", "123456", "ABC123", "BE1234567"] {
            assert!(normalise_cin(bad).is_err(), "{bad}");
        }
        assert_eq!(normalise_date(" 2020-01-31 ").unwrap(), "2020-01-31");
        for bad in [
            "2020-01-011",
            "2020-1-01",
            "2020-13-01",
            "2020-01-32",
            "2020/01/01",
        ] {
            assert!(normalise_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_ascii_fold_is_the_unicode_fold_of_ascii() {
        for name in [
            "EL AMRANI Mohamed",
            "Ait-Benhaddou, O'Neil  Jr.",
            "bin   Laden\tX_y 42",
            "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./",
            "",
        ] {
            assert_eq!(fold_ascii(name), fold_unicode(name), "{name:?}");
        }
        let every: String = (0u8..128).map(char::from).collect();
        assert_eq!(fold_ascii(&every), fold_unicode(&every));
        assert_eq!(normalise_name("El Amrani  MOHAMED"), "amrani mohamed");
    }

    #[test]
    fn compounds_of_abd_fold_whether_written_joined_or_apart() {
        for (joined, apart) in [
            ("عبدالإله", "عبد الإله"),
            ("عبدالله العلوي", "عبد الله العلوي"),
            ("عبدالرحيم بناني", "بناني عبد الرحيم"),
            ("عبدالقادر", "عبد القادر"),
        ] {
            assert_eq!(normalise_name(joined), normalise_name(apart), "{joined}");
        }
        // "عبد" alone, or a name merely starting with its letters and one more, stays.
        assert_eq!(normalise_name("عبد"), "عبد");
        assert_ne!(normalise_name("عبدو"), normalise_name("عبد"));
    }

    #[test]
    fn the_arabic_article_is_dropped_only_before_a_word_of_two_letters_or_more() {
        assert_eq!(normalise_name("السعيدي"), "سعيدي");
        assert_eq!(normalise_name("ال سعيدي"), "سعيدي");
        // "الي" is a word of its own, not the article before one letter.
        assert_eq!(normalise_name("الي"), "الي");
    }

    #[test]
    fn arabic_letter_forms_written_either_way_fold_to_one() {
        for (a, b) in [
            ("أحمد", "احمد"),
            ("إدريس", "ادريس"),
            // Alef wasla has no decomposition: only the fold makes it a plain alef.
            ("ٱبراهيم", "ابراهيم"),
            ("آمنة", "امنه"),
            ("مصطفى", "مصطفي"),
            ("فاطمة", "فاطمه"),
        ] {
            assert_eq!(normalise_name(a), normalise_name(b), "{a}");
        }
    }

    #[test]
    fn normalised_forms_meet() {
        assert_eq!(normalise_cin(" be 123-456 ").unwrap(), "BE123456");
        assert_eq!(normalise_cin("J4567").unwrap(), "J4567");
        assert!(normalise_cin("123456").is_err());
        assert!(normalise_cin("ABC123").is_err());
        assert!(normalise_cin("BE1234567").is_err());
        assert_eq!(
            normalise_name("Mohammed EL AMRANI"),
            normalise_name("amrani mohamed")
        );
        assert_eq!(normalise_name("Hélène"), "helene");
        assert_eq!(normalise_name("مُحَمَّد"), normalise_name("محمد"));
        assert_eq!(normalise_name("أحمد"), normalise_name("احمد"));
    }

    #[test]
    fn tags_depend_on_key_kind_and_value() {
        let a = ix();
        let b = BlindIndexer::new(SecretBytes::new([8u8; 32]));
        assert_eq!(a.cin("be123456").unwrap(), a.cin("BE 123456").unwrap());
        assert_ne!(a.cin("BE123456").unwrap(), b.cin("BE123456").unwrap());
        assert_ne!(a.cnss("123456789").unwrap(), a.cnss("123456780").unwrap());
        // Same digits, different kinds.
        assert_ne!(
            a.affiliation("1234567").unwrap().0,
            a.tag(IndexKind::Cnss, "1234567").unwrap().0
        );
        assert!(a.cnss("12345678").is_err());
        assert!(a.name_birth("Ali", "1990-13-01").is_err());
        assert_eq!(
            a.name_birth("Youssef El Idrissi", "1990-02-03").unwrap(),
            a.name_birth("IDRISSI Yusuf", "1990-02-03").unwrap()
        );
    }
}
