//! Sealing the fields of one record and class to a class key, and opening them again.
//!
//! ```text
//!   writer (public key only)                 reader (after t custodians answered)
//!   r ← random, R = r·G, S = r·Y_c           S = Σ λ_i·k_{c,i}·R
//!   DEK = HKDF-SHA256(ikm = S, salt = R‖Y_c, info = "ribat/v1" ‖ table ‖ id ‖ class ‖ epoch)
//!   per field: AES-256-GCM-SIV(DEK, nonce, value, AAD = "ribat/v1/aad" ‖ table ‖ id ‖ field ‖ epoch)
//! ```
//!
//! Variable-length strings inside `info` and AAD are each prefixed with their length (two
//! bytes, big-endian) so that no two different contexts encode to the same bytes; the
//! epoch is four bytes big-endian.
//!
//! AES-256-GCM-SIV (RFC 8452) rather than plain GCM: the DEK is fresh per seal, but if the
//! random source ever repeated `r` and a nonce, GCM would leak its authentication key and
//! the XOR of plaintexts; GCM-SIV would only reveal that two values are equal.
//!
//! # Byte layout, version 1
//!
//! | offset | size | content |
//! |---|---|---|
//! | 0 | 1 | format version, `0x01` |
//! | 1 | 1 | AEAD identifier, `0x01` = AES-256-GCM-SIV |
//! | 2 | 4 | key epoch, u32 big-endian |
//! | 6 | 32 | `R`, compressed ristretto255 |
//! | 38 | 2 + n | table name, u16 length then UTF-8 |
//! | … | 2 + n | record id, u16 length then UTF-8 |
//! | … | 1 + n | class name, u8 length then UTF-8 |
//! | … | 2 | number of fields, u16 |
//! | per field | 1 + n | field name, u8 length (1–255) then UTF-8 |
//! |  | 12 | nonce |
//! |  | 4 + n | ciphertext with its 16-byte tag, u32 length then bytes |
//!
//! Nothing may follow the last field. Table, record id, class and field names are not
//! secret (record ids are opaque); they are in clear so that a misplaced envelope is named
//! before any cryptography, and they are bound by the AEAD so that rewriting them fails.

use crate::combine::SharedPoint;
use crate::group::ClassPublic;
use crate::point::{decode_point, encode_point};
use crate::secret::SecretBytes;
use crate::{CryptoError, Result};
use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{RistrettoBasepointTable, RistrettoPoint};
use hkdf::Hkdf;
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// Format version written by this build.
pub const ENVELOPE_VERSION: u8 = 1;
/// AEAD identifier of AES-256-GCM-SIV.
pub const AEAD_AES256_GCM_SIV: u8 = 1;
const NONCE_LEN: usize = 12;

/// One sealed field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedField {
    /// Field name.
    pub name: String,
    /// AEAD nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext and tag.
    pub ciphertext: Vec<u8>,
}

/// The sealed fields of one class of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Key epoch at sealing time.
    pub epoch: u32,
    /// `R = r·G`, the point custodians raise to their share.
    pub r: [u8; 32],
    /// Table name.
    pub table: String,
    /// Opaque record id.
    pub record_id: String,
    /// Class name.
    pub class: String,
    /// The fields.
    pub fields: Vec<SealedField>,
}

/// Fields after opening; the values zeroize on drop and never print.
pub struct OpenedFields(Vec<(String, Zeroizing<Vec<u8>>)>);

impl OpenedFields {
    /// Field names and plaintext values, in sealing order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The value of one field.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

impl fmt::Debug for OpenedFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "OpenedFields({names:?}, values [redacted])")
    }
}

/// Seals records to one class key. Holds a precomputed table of `Y_c` so that `r·Y_c`
/// costs a fixed-base multiplication (constant time, like `r·G`).
pub struct Sealer {
    class: String,
    epoch: u32,
    y: [u8; 32],
    y_table: RistrettoBasepointTable,
}

impl Sealer {
    /// A sealer for `class` under the group's current epoch.
    pub fn new(class: &str, keys: &ClassPublic, epoch: u32) -> Self {
        Self {
            class: class.to_owned(),
            epoch,
            y: encode_point(&keys.group_key),
            y_table: RistrettoBasepointTable::create(&keys.group_key),
        }
    }

    /// Seals `fields` of record `record_id` in `table`.
    pub fn seal(&self, table: &str, record_id: &str, fields: &[(&str, &[u8])]) -> Result<Envelope> {
        check_name(table, u16::MAX as usize, "table name")?;
        check_name(record_id, u16::MAX as usize, "record id")?;
        if fields.len() > u16::MAX as usize {
            return Err(malformed("more than 65535 fields"));
        }
        let r = Zeroizing::new(crate::entropy::scalar()?);
        let big_r = encode_point(&(RISTRETTO_BASEPOINT_TABLE * &*r));
        let s = SharedPoint::new(&self.y_table * &*r);
        let dek = derive_dek(
            &s,
            &big_r,
            &self.y,
            table,
            record_id,
            &self.class,
            self.epoch,
        )?;
        let aead = Aes256GcmSiv::new(dek.expose().into());
        let mut sealed = Vec::with_capacity(fields.len());
        for (name, value) in fields {
            check_name(name, u8::MAX as usize, "field name")?;
            let mut nonce = [0u8; NONCE_LEN];
            crate::entropy::fill(&mut nonce)?;
            let aad = aad(table, record_id, name, self.epoch)?;
            let ciphertext = aead
                .encrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: value,
                        aad: &aad,
                    },
                )
                .map_err(|_| CryptoError::Encryption {
                    field: (*name).to_owned(),
                })?;
            sealed.push(SealedField {
                name: (*name).to_owned(),
                nonce,
                ciphertext,
            });
        }
        Ok(Envelope {
            epoch: self.epoch,
            r: big_r,
            table: table.to_owned(),
            record_id: record_id.to_owned(),
            class: self.class.clone(),
            fields: sealed,
        })
    }
}

impl Envelope {
    /// `R` as a point.
    pub fn r_point(&self) -> Result<RistrettoPoint> {
        decode_point(&self.r, "envelope R")
    }

    /// Opens the envelope with the combined `S`, after checking that it is the one asked for.
    pub fn open(
        &self,
        table: &str,
        record_id: &str,
        class: &str,
        keys: &ClassPublic,
        current_epoch: u32,
        s: &SharedPoint,
    ) -> Result<OpenedFields> {
        if self.table != table || self.record_id != record_id {
            return Err(CryptoError::RecordMismatch {
                envelope: format!("{}/{}", self.table, self.record_id),
                requested: format!("{table}/{record_id}"),
            });
        }
        if self.class != class {
            return Err(CryptoError::WrongClass {
                expected: class.to_owned(),
                got: self.class.clone(),
            });
        }
        if self.epoch != current_epoch {
            return Err(CryptoError::EpochMismatch {
                envelope: self.epoch,
                current: current_epoch,
            });
        }
        let y = encode_point(&keys.group_key);
        let dek = derive_dek(s, &self.r, &y, table, record_id, class, self.epoch)?;
        let aead = Aes256GcmSiv::new(dek.expose().into());
        let mut out = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            let aad = aad(table, record_id, &f.name, self.epoch)?;
            let pt = aead
                .decrypt(
                    &Nonce::from(f.nonce),
                    Payload {
                        msg: &f.ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| CryptoError::FieldAuthentication {
                    field: f.name.clone(),
                })?;
            out.push((f.name.clone(), Zeroizing::new(pt)));
        }
        Ok(OpenedFields(out))
    }

    /// Encodes in the version-1 layout.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(
            64 + self
                .fields
                .iter()
                .map(|f| 1 + f.name.len() + 16 + f.ciphertext.len())
                .sum::<usize>(),
        );
        out.push(ENVELOPE_VERSION);
        out.push(AEAD_AES256_GCM_SIV);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.r);
        put16(&mut out, self.table.as_bytes())?;
        put16(&mut out, self.record_id.as_bytes())?;
        put8(&mut out, self.class.as_bytes())?;
        let n = u16::try_from(self.fields.len()).map_err(|_| malformed("too many fields"))?;
        out.extend_from_slice(&n.to_be_bytes());
        for f in &self.fields {
            put8(&mut out, f.name.as_bytes())?;
            out.extend_from_slice(&f.nonce);
            let len = u32::try_from(f.ciphertext.len()).map_err(|_| malformed("field too long"))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&f.ciphertext);
        }
        Ok(out)
    }

    /// Decodes the version-1 layout, refusing anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut rd = Reader { b: bytes, pos: 0 };
        let version = rd.u8()?;
        if version != ENVELOPE_VERSION {
            return Err(CryptoError::UnsupportedVersion {
                what: "envelope",
                version,
                supported: ENVELOPE_VERSION,
            });
        }
        let aead = rd.u8()?;
        if aead != AEAD_AES256_GCM_SIV {
            return Err(malformed(format!("unknown AEAD identifier {aead}")));
        }
        let epoch = u32::from_be_bytes(rd.array()?);
        let r: [u8; 32] = rd.array()?;
        let table = rd.string16("table name")?;
        let record_id = rd.string16("record id")?;
        let class = rd.string8("class name")?;
        let n = u16::from_be_bytes(rd.array()?);
        let mut fields = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let name = rd.string8("field name")?;
            let nonce: [u8; NONCE_LEN] = rd.array()?;
            let len = u32::from_be_bytes(rd.array()?) as usize;
            if len < 16 {
                return Err(malformed(format!("field `{name}` is shorter than its tag")));
            }
            let ciphertext = rd.take(len)?.to_vec();
            fields.push(SealedField {
                name,
                nonce,
                ciphertext,
            });
        }
        if rd.pos != bytes.len() {
            return Err(malformed(format!(
                "{} bytes after the last field",
                bytes.len() - rd.pos
            )));
        }
        Ok(Self {
            epoch,
            r,
            table,
            record_id,
            class,
            fields,
        })
    }
}

/// The DEK of one record and class; see the module documentation for the derivation.
fn derive_dek(
    s: &SharedPoint,
    r: &[u8; 32],
    y: &[u8; 32],
    table: &str,
    record_id: &str,
    class: &str,
    epoch: u32,
) -> Result<SecretBytes<32>> {
    let ikm = Zeroizing::new(encode_point(s.expose()));
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(r);
    salt[32..].copy_from_slice(y);
    let mut info = b"ribat/v1".to_vec();
    put16(&mut info, table.as_bytes())?;
    put16(&mut info, record_id.as_bytes())?;
    put16(&mut info, class.as_bytes())?;
    info.extend_from_slice(&epoch.to_be_bytes());
    let hk = Hkdf::<Sha256>::new(Some(&salt), ikm.as_ref());
    let mut okm = [0u8; 32];
    hk.expand(&info, &mut okm)
        .map_err(|_| malformed("HKDF output length"))?;
    Ok(SecretBytes::new(okm))
}

fn aad(table: &str, record_id: &str, field: &str, epoch: u32) -> Result<Vec<u8>> {
    let mut a = b"ribat/v1/aad".to_vec();
    put16(&mut a, table.as_bytes())?;
    put16(&mut a, record_id.as_bytes())?;
    put16(&mut a, field.as_bytes())?;
    a.extend_from_slice(&epoch.to_be_bytes());
    Ok(a)
}

fn check_name(s: &str, max: usize, what: &'static str) -> Result<()> {
    if s.is_empty() || s.len() > max {
        return Err(CryptoError::Malformed {
            what,
            reason: format!("must be 1 to {max} bytes, is {}", s.len()),
        });
    }
    Ok(())
}

fn put16(out: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    let n = u16::try_from(b.len()).map_err(|_| malformed("string longer than 65535 bytes"))?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(b);
    Ok(())
}

fn put8(out: &mut Vec<u8>, b: &[u8]) -> Result<()> {
    let n = u8::try_from(b.len()).map_err(|_| malformed("name longer than 255 bytes"))?;
    out.push(n);
    out.extend_from_slice(b);
    Ok(())
}

fn malformed(reason: impl Into<String>) -> CryptoError {
    CryptoError::Malformed {
        what: "envelope",
        reason: reason.into(),
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| malformed(format!("truncated at byte {}", self.pos)))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?
            .try_into()
            .map_err(|_| malformed("internal length"))
    }
    fn string(&mut self, n: usize, what: &'static str) -> Result<String> {
        let at = self.pos;
        let raw = self.take(n)?;
        if raw.is_empty() {
            return Err(malformed(format!("empty {what} at byte {at}")));
        }
        String::from_utf8(raw.to_vec())
            .map_err(|_| malformed(format!("{what} at byte {at} is not UTF-8")))
    }
    fn string16(&mut self, what: &'static str) -> Result<String> {
        let n = u16::from_be_bytes(self.array()?) as usize;
        self.string(n, what)
    }
    fn string8(&mut self, what: &'static str) -> Result<String> {
        let n = self.u8()? as usize;
        self.string(n, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::GroupPublic;
    use crate::shamir::deal;

    fn group() -> (GroupPublic, Vec<crate::shamir::ClassDealing>) {
        let d = vec![deal("identity", 2, 3).unwrap()];
        (GroupPublic::from_dealings(2, 3, 1, &d).unwrap(), d)
    }

    /// `S` computed from the shares directly (what a quorum would produce).
    fn shared(env: &Envelope, d: &crate::shamir::ClassDealing) -> SharedPoint {
        let l = crate::combine::lagrange_at_zero(&[1, 2]).unwrap();
        let r = env.r_point().unwrap();
        SharedPoint::new(
            r * d.shares[0].secret().expose() * l[0] + r * d.shares[1].secret().expose() * l[1],
        )
    }

    #[test]
    fn bytes_round_trip_and_every_truncation_is_refused() {
        let (g, _) = group();
        let s = Sealer::new("identity", g.class("identity").unwrap(), 1);
        let env = s
            .seal(
                "persons",
                "p-1",
                &[("name", b"Fatima Zahra"), ("cin", b"BE123456")],
            )
            .unwrap();
        let bytes = env.to_bytes().unwrap();
        assert_eq!(Envelope::from_bytes(&bytes).unwrap(), env);
        for cut in 0..bytes.len() {
            assert!(Envelope::from_bytes(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(Envelope::from_bytes(&extra).is_err());
        let mut v2 = bytes;
        v2[0] = 2;
        assert!(matches!(
            Envelope::from_bytes(&v2),
            Err(CryptoError::UnsupportedVersion { version: 2, .. })
        ));
    }

    #[test]
    fn seal_open_and_plaintext_absent_from_bytes() {
        let (g, d) = group();
        let keys = g.class("identity").unwrap();
        let env = Sealer::new("identity", keys, 1)
            .seal("persons", "p-1", &[("name", b"Fatima Zahra Benali")])
            .unwrap();
        let bytes = env.to_bytes().unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"Fatima"));
        let opened = env
            .open("persons", "p-1", "identity", keys, 1, &shared(&env, &d[0]))
            .unwrap();
        assert_eq!(opened.get("name").unwrap(), b"Fatima Zahra Benali");
        assert!(!format!("{opened:?}").contains("Fatima"));
    }

    #[test]
    fn opened_fields_come_back_in_sealing_order() {
        let (g, d) = group();
        let keys = g.class("identity").unwrap();
        let env = Sealer::new("identity", keys, 1)
            .seal("persons", "p-2", &[("surname", b"Benali"), ("cin", b"BE1")])
            .unwrap();
        let opened = env
            .open("persons", "p-2", "identity", keys, 1, &shared(&env, &d[0]))
            .unwrap();
        let fields: Vec<(&str, &[u8])> = opened.iter().collect();
        assert_eq!(
            fields,
            [
                ("surname", b"Benali".as_slice()),
                ("cin", b"BE1".as_slice())
            ]
        );
        assert_eq!(
            format!("{opened:?}"),
            r#"OpenedFields(["surname", "cin"], values [redacted])"#
        );
    }

    #[test]
    fn a_table_or_record_id_is_one_to_65535_bytes() {
        let (g, _) = group();
        let s = Sealer::new("identity", g.class("identity").unwrap(), 1);
        let f: &[(&str, &[u8])] = &[("name", b"x")];
        let refused = |table: &str, id: &str| {
            s.seal(table, id, f)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert!(refused("", "p-1").contains("must be 1 to 65535 bytes, is 0"));
        assert!(refused("persons", "").contains("must be 1 to 65535 bytes, is 0"));
        let longest = "p".repeat(65_535);
        assert_eq!(refused("persons", &longest), "");
        let over = "p".repeat(65_536);
        assert!(refused("persons", &over).contains("must be 1 to 65535 bytes, is 65536"));
    }

    #[test]
    fn an_envelope_holds_at_most_65535_fields_and_an_empty_value_is_its_tag_alone() {
        let (g, _) = group();
        let s = Sealer::new("identity", g.class("identity").unwrap(), 1);
        let most: Vec<(&str, &[u8])> = vec![("f", b""); u16::MAX as usize];
        assert!(s.seal("persons", "p-3", &most).is_ok());
        let over: Vec<(&str, &[u8])> = vec![("f", b""); u16::MAX as usize + 1];
        let e = s.seal("persons", "p-3", &over).unwrap_err();
        assert!(e.to_string().contains("more than 65535 fields"), "{e}");
        // One empty field: its ciphertext is the 16-byte tag, the last thing in the bytes.
        let bytes = s
            .seal("persons", "p-3", &[("x", b"")])
            .unwrap()
            .to_bytes()
            .unwrap();
        assert!(Envelope::from_bytes(&bytes).is_ok());
        let at = bytes.len() - 16 - 4;
        assert_eq!(bytes[at..at + 4], 16u32.to_be_bytes());
        let mut short = bytes[..bytes.len() - 1].to_vec();
        short[at..at + 4].copy_from_slice(&15u32.to_be_bytes());
        let e = Envelope::from_bytes(&short).unwrap_err();
        assert!(e.to_string().contains("shorter than its tag"), "{e}");
    }
}
