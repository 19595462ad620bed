//! C2SP signed notes (`c2sp.org/signed-note`), the checkpoint body (`c2sp.org/tlog-checkpoint`)
//! and timestamped cosignatures (`c2sp.org/tlog-cosignature`), with Ed25519 keys.
//!
//! ```text
//! ribat.example/audit/node.embedded        origin
//! 1234                                      tree size, decimal
//! 5dc9…=                                    root hash, standard base64
//!                                           blank line
//! — ribat.example/audit/node.embedded AbCd… log signature: key ID ‖ Ed25519(text)
//! — custodian-1.ribat/witness EfGh…         cosignature: key ID ‖ time ‖ Ed25519(
//!                                             "cosignature/v1\ntime T\n" ‖ text)
//! ```
//!
//! Keys are written the way Go's `golang.org/x/mod/sumdb/note` writes them, so that any
//! tool of that ecosystem can check our checkpoints: a verifier key is
//! `name+<key ID hex>+base64(type ‖ public key)`, a signer key is
//! `PRIVATE+KEY+name+<key ID hex>+base64(type ‖ seed)`.
//! Signatures from the network are checked with `verify_strict` (no small-order keys,
//! no malleable encodings).

use crate::hash::Hash;
use base64ct::{Base64, Encoding};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

/// Signature type of plain Ed25519 note signatures (the log's own).
pub const ED25519: u8 = 0x01;
/// Signature type of timestamped Ed25519 cosignatures (witnesses).
pub const COSIGNATURE_V1: u8 = 0x04;

/// Most signature lines a note may carry; the spec asks verifiers to accept at least 16.
pub const MAX_SIGNATURES: usize = 64;
/// Longest note accepted (the text of a checkpoint is ~100 bytes).
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// Why a note, key or checkpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The text is not a well-formed signed note.
    #[error("malformed note: {0}")]
    Malformed(String),
    /// A key string is not well formed.
    #[error("malformed key: {0}")]
    MalformedKey(String),
    /// A signature by a known key does not verify.
    #[error("signature by {name} does not verify")]
    BadSignature {
        /// Key name.
        name: String,
    },
    /// No signature by the expected key.
    #[error("no signature by {name} (key ID {id:08x})")]
    NotSigned {
        /// Key name.
        name: String,
        /// Key ID.
        id: u32,
    },
    /// The checkpoint body is not well formed.
    #[error("malformed checkpoint: {0}")]
    Checkpoint(String),
    /// The operating system gave no randomness for a new key.
    #[error("no randomness for a new key: {0}")]
    Entropy(String),
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(NoteError::MalformedKey(
            "a key name is non-empty and has no spaces, '+' or control characters".into(),
        ));
    }
    Ok(())
}

/// `SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]`, big-endian.
pub fn key_id(name: &str, kind: u8, public: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind]);
    h.update(public);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A public key that checks signatures of one type under one name.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    kind: u8,
    key: VerifyingKey,
    id: u32,
}

impl std::fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifierKey({self})")
    }
}

impl std::fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut raw = [0u8; 33];
        raw[0] = self.kind;
        raw[1..].copy_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{:08x}+{}",
            self.name,
            self.id,
            Base64::encode_string(&raw)
        )
    }
}

impl VerifierKey {
    /// Parses `name+hex+base64(type ‖ key)`. The key ID must be the one the name and key imply.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let text = text.trim();
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::MalformedKey(
                "a verifier key is name+keyid+base64".into(),
            ));
        };
        check_name(name)?;
        let id = parse_id(id_hex)?;
        let raw = Base64::decode_vec(b64)
            .map_err(|_| NoteError::MalformedKey("the key is not standard base64".into()))?;
        let (kind, public) = match raw.as_slice() {
            [kind @ (ED25519 | COSIGNATURE_V1), rest @ ..] if rest.len() == 32 => (*kind, rest),
            [ED25519 | COSIGNATURE_V1, ..] => {
                return Err(NoteError::MalformedKey(
                    "an Ed25519 key is 32 bytes after its type byte".into(),
                ));
            }
            _ => {
                return Err(NoteError::MalformedKey(
                    "unsupported key type (Ribat uses 0x01 Ed25519 and 0x04 cosignature/v1)".into(),
                ));
            }
        };
        let mut pk = [0u8; 32];
        pk.copy_from_slice(public);
        let key = VerifyingKey::from_bytes(&pk)
            .map_err(|_| NoteError::MalformedKey("not an Ed25519 public key".into()))?;
        if key.is_weak() {
            return Err(NoteError::MalformedKey("a small-order public key".into()));
        }
        if key_id(name, kind, &pk) != id {
            return Err(NoteError::MalformedKey(format!(
                "key ID {id:08x} is not the one name and key imply"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            kind,
            key,
            id,
        })
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Key ID.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Signature type (`ED25519` or `COSIGNATURE_V1`).
    pub fn kind(&self) -> u8 {
        self.kind
    }
}

fn parse_id(hex8: &str) -> Result<u32, NoteError> {
    if hex8.len() != 8 || !hex8.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(NoteError::MalformedKey(
            "a key ID is 8 lowercase hex digits".into(),
        ));
    }
    u32::from_str_radix(hex8, 16).map_err(|_| NoteError::MalformedKey("bad key ID".into()))
}

/// A private key that signs notes (type `ED25519`) or cosigns checkpoints (`COSIGNATURE_V1`).
/// Its `Debug` shows only the public half; the seed is zeroized on drop.
pub struct NoteSigner {
    name: String,
    kind: u8,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoteSigner({})", self.verifier())
    }
}

impl NoteSigner {
    /// A signer from a 32-byte seed.
    pub fn from_seed(name: &str, kind: u8, seed: &[u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        if kind != ED25519 && kind != COSIGNATURE_V1 {
            return Err(NoteError::MalformedKey("unsupported key type".into()));
        }
        Ok(Self {
            name: name.to_owned(),
            kind,
            key: SigningKey::from_bytes(seed),
        })
    }

    /// A new random signer.
    pub fn generate(name: &str, kind: u8) -> Result<Self, NoteError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|e| NoteError::Entropy(e.to_string()))?;
        Self::from_seed(name, kind, &seed)
    }

    /// Parses `PRIVATE+KEY+name+hex+base64(type ‖ seed)`.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let text = text.trim();
        let rest = text.strip_prefix("PRIVATE+KEY+").ok_or_else(|| {
            NoteError::MalformedKey("a signer key starts with PRIVATE+KEY+".into())
        })?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(NoteError::MalformedKey(
                "a signer key is PRIVATE+KEY+name+keyid+base64".into(),
            ));
        };
        let id = parse_id(id_hex)?;
        let raw = Zeroizing::new(
            Base64::decode_vec(b64)
                .map_err(|_| NoteError::MalformedKey("the key is not standard base64".into()))?,
        );
        if raw.len() != 33 {
            return Err(NoteError::MalformedKey(
                "an Ed25519 signer key is 32 bytes after its type byte".into(),
            ));
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&raw[1..]);
        let signer = Self::from_seed(name, raw[0], &seed)?;
        if signer.verifier().id != id {
            return Err(NoteError::MalformedKey(format!(
                "key ID {id:08x} is not the one name and key imply"
            )));
        }
        Ok(signer)
    }

    /// The private key in Go's text form. Write it only to a file only its owner can read.
    pub fn to_private_text(&self) -> Zeroizing<String> {
        let mut raw = Zeroizing::new([0u8; 33]);
        raw[0] = self.kind;
        raw[1..].copy_from_slice(self.key.as_bytes());
        let id = self.verifier().id;
        Zeroizing::new(format!(
            "PRIVATE+KEY+{}+{id:08x}+{}",
            self.name,
            Base64::encode_string(raw.as_ref())
        ))
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        let key = self.key.verifying_key();
        VerifierKey {
            id: key_id(&self.name, self.kind, key.as_bytes()),
            name: self.name.clone(),
            kind: self.kind,
            key,
        }
    }

    /// Key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A signature line over `text` (type `ED25519`), or a cosignature line at `time`
    /// (type `COSIGNATURE_V1`). `text` must be a note text: UTF-8 ending in a newline.
    pub fn sign_line(&self, text: &str, time: u64) -> String {
        let id = self.verifier().id;
        let mut blob = id.to_be_bytes().to_vec();
        if self.kind == COSIGNATURE_V1 {
            let msg = cosigned_message(text, time);
            blob.extend_from_slice(&time.to_be_bytes());
            blob.extend_from_slice(&self.key.sign(msg.as_bytes()).to_bytes());
        } else {
            blob.extend_from_slice(&self.key.sign(text.as_bytes()).to_bytes());
        }
        format!("— {} {}\n", self.name, Base64::encode_string(&blob))
    }
}

fn cosigned_message(text: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{text}")
}

/// One signature line, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key ID.
    pub id: u32,
    /// The signature bytes after the key ID.
    pub blob: Vec<u8>,
}

/// A note: its text and its signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The text, ending in a newline (without the separating blank line).
    pub text: String,
    /// Signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Parses a signed note. Signatures are not checked here.
    pub fn parse(note: &str) -> Result<Self, NoteError> {
        if note.len() > MAX_NOTE_BYTES {
            return Err(NoteError::Malformed(format!(
                "longer than {MAX_NOTE_BYTES} bytes"
            )));
        }
        if note.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return Err(NoteError::Malformed(
                "control characters other than newline".into(),
            ));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
        let text = &note[..=split];
        let sigs = &note[split + 2..];
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "the last signature line does not end in a newline".into(),
            ));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::Malformed(format!(
                    "more than {MAX_SIGNATURES} signatures"
                )));
            }
            let rest = line.strip_prefix("— ").ok_or_else(|| {
                NoteError::Malformed("a signature line starts with an em dash and a space".into())
            })?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| NoteError::Malformed("a signature line is: — name base64".into()))?;
            check_name(name).map_err(|_| NoteError::Malformed("bad key name".into()))?;
            let raw = Base64::decode_vec(b64)
                .map_err(|_| NoteError::Malformed("a signature is not standard base64".into()))?;
            if raw.len() < 5 {
                return Err(NoteError::Malformed("a signature is too short".into()));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                id: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
                blob: raw[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(NoteError::Malformed("no signatures".into()));
        }
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Checks the signature of `key`. Returns the cosignature's time for a
    /// `COSIGNATURE_V1` key, 0 for a plain signature. Signatures by other keys are
    /// ignored, as the spec requires; a matching one that does not verify is an error.
    pub fn verify(&self, key: &VerifierKey) -> Result<u64, NoteError> {
        let mut found = false;
        let mut time = 0;
        for s in self
            .signatures
            .iter()
            .filter(|s| s.name == key.name && s.id == key.id)
        {
            found = true;
            let bad = || NoteError::BadSignature {
                name: key.name.clone(),
            };
            let (msg, sig) = if key.kind == COSIGNATURE_V1 {
                if s.blob.len() != 72 {
                    return Err(bad());
                }
                let mut t = [0u8; 8];
                t.copy_from_slice(&s.blob[..8]);
                time = u64::from_be_bytes(t);
                if time > i64::MAX as u64 {
                    return Err(bad());
                }
                (cosigned_message(&self.text, time), &s.blob[8..])
            } else {
                (self.text.clone(), &s.blob[..])
            };
            let sig = Signature::from_slice(sig).map_err(|_| bad())?;
            key.key
                .verify_strict(msg.as_bytes(), &sig)
                .map_err(|_| bad())?;
        }
        if found {
            Ok(time)
        } else {
            Err(NoteError::NotSigned {
                name: key.name.clone(),
                id: key.id,
            })
        }
    }

    /// The note with its signature lines.
    pub fn to_text(&self) -> String {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            let mut raw = s.id.to_be_bytes().to_vec();
            raw.extend_from_slice(&s.blob);
            out.push_str(&format!("— {} {}\n", s.name, Base64::encode_string(&raw)));
        }
        out
    }

    /// Adds signature lines made by `NoteSigner::sign_line`.
    pub fn add_lines(&mut self, lines: &str) -> Result<(), NoteError> {
        let extra = Self::parse(&format!("{}\n{lines}", self.text))?;
        self.signatures.extend(extra.signatures);
        Ok(())
    }
}

/// The body of a checkpoint: origin, size, root and optional extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (its identity).
    pub origin: String,
    /// Tree size.
    pub size: u64,
    /// Root hash at that size.
    pub root: Hash,
    /// Extension lines, if any.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            Base64::encode_string(&self.root.0)
        );
        for e in &self.extensions {
            out.push_str(e);
            out.push('\n');
        }
        out
    }

    /// Parses a note text as a checkpoint.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::Checkpoint(why.to_owned());
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("the text does not end in a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| bad("no origin line"))?;
        let size_line = lines.next().ok_or_else(|| bad("no size line"))?;
        if size_line.is_empty()
            || !size_line.bytes().all(|b| b.is_ascii_digit())
            || (size_line.len() > 1 && size_line.starts_with('0'))
        {
            return Err(bad("the size is a decimal number without leading zeros"));
        }
        let size: u64 = size_line
            .parse()
            .map_err(|_| bad("the size is too large"))?;
        let root_line = lines.next().ok_or_else(|| bad("no root hash line"))?;
        let root = Base64::decode_vec(root_line).map_err(|_| bad("the root is not base64"))?;
        let root: [u8; 32] = root
            .try_into()
            .map_err(|_| bad("the root hash is not 32 bytes"))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("an empty extension line"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root: Hash(root),
            extensions,
        })
    }

    /// Signs the checkpoint with the log's key.
    pub fn sign(&self, log: &NoteSigner) -> SignedNote {
        let text = self.to_text();
        let line = log.sign_line(&text, 0);
        // A line we just made always parses.
        SignedNote::parse(&format!("{text}\n{line}")).unwrap_or(SignedNote {
            text,
            signatures: Vec::new(),
        })
    }
}

/// A signed checkpoint opened with the log's key: the body, and the note it came in.
#[derive(Debug, Clone)]
pub struct OpenedCheckpoint {
    /// Body.
    pub checkpoint: Checkpoint,
    /// The note, with every signature line it carries.
    pub note: SignedNote,
}

/// Parses a checkpoint note and checks the log's signature.
pub fn open_checkpoint(note: &str, log: &VerifierKey) -> Result<OpenedCheckpoint, NoteError> {
    let note = SignedNote::parse(note)?;
    note.verify(log)?;
    let checkpoint = Checkpoint::parse(&note.text)?;
    if checkpoint.origin != log.name {
        return Err(NoteError::Checkpoint(format!(
            "origin {} is not the log key's name {}",
            checkpoint.origin, log.name
        )));
    }
    Ok(OpenedCheckpoint { checkpoint, note })
}

#[cfg(test)]
mod tests {
    use super::*;

    // golang.org/x/mod/sumdb/note, note_test.go and the package documentation.
    const GO_SIGNER: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VERIFIER: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    #[test]
    fn a_key_says_its_id_and_a_signer_shows_its_verifier() {
        let k = VerifierKey::parse(GO_VERIFIER).unwrap();
        assert_eq!(k.id(), 0xc74f_20a3);
        assert_eq!(k.name(), "PeterNeumann");
        let signer = NoteSigner::parse(GO_SIGNER).unwrap();
        assert_eq!(
            format!("{signer:?}"),
            format!("NoteSigner({})", signer.verifier())
        );
    }

    #[test]
    fn a_signature_is_a_key_id_and_at_least_one_byte() {
        let with_sig =
            |raw: &[u8]| format!("text\n\n— PeterNeumann {}\n", Base64::encode_string(raw));
        assert!(SignedNote::parse(&with_sig(&[1, 2, 3, 4, 5])).is_ok());
        let e = SignedNote::parse(&with_sig(&[1, 2, 3, 4])).unwrap_err();
        assert!(e.to_string().contains("too short"), "{e}");
    }

    #[test]
    fn a_cosignature_time_is_at_most_the_largest_signed_64_bit_time() {
        let w = NoteSigner::from_seed("w.ribat.test", COSIGNATURE_V1, &[7; 32]).unwrap();
        let at = |time: u64| {
            let mut n =
                SignedNote::parse(&format!("{GO_TEXT}\n{}", w.sign_line(GO_TEXT, time))).unwrap();
            n.text = GO_TEXT.to_owned();
            n.verify(&w.verifier())
        };
        assert_eq!(at(i64::MAX as u64), Ok(i64::MAX as u64));
        assert!(matches!(
            at(i64::MAX as u64 + 1),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn a_checkpoint_size_is_a_decimal_number_without_leading_zeros() {
        let root = Base64::encode_string(&[0u8; 32]);
        for bad in ["", "12a", "012", "-1"] {
            let body = format!("ribat.test/log\n{bad}\n{root}\n");
            let e = Checkpoint::parse(&body).unwrap_err();
            assert!(
                e.to_string().contains("without leading zeros"),
                "{bad:?}: {e}"
            );
        }
        assert_eq!(
            Checkpoint::parse(&format!("ribat.test/log\n0\n{root}\n"))
                .unwrap()
                .size,
            0
        );
    }

    #[test]
    fn a_note_is_at_most_64_kib() {
        let sig = GO_NOTE.split("\n\n").nth(1).unwrap();
        let of = |body: usize| format!("{}\n{sig}", "n".repeat(body - 1) + "\n");
        let most = of(MAX_NOTE_BYTES - sig.len() - 1);
        assert_eq!(most.len(), MAX_NOTE_BYTES);
        assert!(SignedNote::parse(&most).is_ok());
        let over = of(MAX_NOTE_BYTES - sig.len());
        let e = SignedNote::parse(&over).unwrap_err();
        assert!(e.to_string().contains("longer than 65536 bytes"), "{e}");
    }

    #[test]
    fn a_key_name_is_non_empty_without_spaces_plus_or_control_characters() {
        for bad in ["", "a b", "a+b", "a\tb", "a\u{7}b"] {
            assert!(
                matches!(
                    NoteSigner::from_seed(bad, ED25519, &[1; 32]),
                    Err(NoteError::MalformedKey(_))
                ),
                "{bad:?}"
            );
        }
        let k = NoteSigner::from_seed("ribat.test/log", ED25519, &[1; 32])
            .unwrap()
            .verifier();
        assert_eq!(format!("{k:?}"), format!("VerifierKey({k})"));
        // A key of the right type but the wrong length says so.
        let short = format!(
            "ribat.test/log+{:08x}+{}",
            k.id(),
            Base64::encode_string(&[&[ED25519][..], &[0u8; 31]].concat())
        );
        let e = VerifierKey::parse(&short).unwrap_err();
        assert!(
            e.to_string().contains("32 bytes after its type byte"),
            "{e}"
        );
    }

    #[test]
    fn go_reference_note_is_reproduced_byte_for_byte() {
        let signer = NoteSigner::parse(GO_SIGNER).unwrap();
        assert_eq!(signer.verifier().to_string(), GO_VERIFIER);
        let line = signer.sign_line(GO_TEXT, 0);
        assert_eq!(format!("{GO_TEXT}\n{line}"), GO_NOTE);
        assert_eq!(signer.to_private_text().as_str(), GO_SIGNER);
        let key = VerifierKey::parse(GO_VERIFIER).unwrap();
        let note = SignedNote::parse(GO_NOTE).unwrap();
        assert_eq!(note.verify(&key).unwrap(), 0);
        assert_eq!(note.to_text(), GO_NOTE);
        let altered = SignedNote::parse(&GO_NOTE.replace("cryptography", "cryptographY")).unwrap();
        assert!(matches!(
            altered.verify(&key),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn mangled_keys_are_refused() {
        let good = GO_VERIFIER.as_bytes();
        for i in 0..good.len() {
            let mut k = good.to_vec();
            k[i] = if k[i] == b'A' { b'B' } else { b'A' };
            if let Ok(s) = std::str::from_utf8(&k) {
                assert!(VerifierKey::parse(s).is_err(), "accepted {s}");
            }
            assert!(
                VerifierKey::parse(&GO_VERIFIER[..i]).is_err(),
                "accepted prefix {i}"
            );
        }
    }

    #[test]
    fn a_cosignature_verifies_only_with_its_own_time_and_text() {
        let w = NoteSigner::generate("custodian-1.ribat/witness", COSIGNATURE_V1).unwrap();
        let log = NoteSigner::generate("ribat.test/log", ED25519).unwrap();
        let cp = Checkpoint {
            origin: "ribat.test/log".into(),
            size: 3,
            root: Hash([7; 32]),
            extensions: vec![],
        };
        let mut note = cp.sign(&log);
        note.add_lines(&w.sign_line(&note.text, 1_700_000_000))
            .unwrap();
        let text = note.to_text();
        let opened = open_checkpoint(&text, &log.verifier()).unwrap();
        assert_eq!(opened.checkpoint, cp);
        assert_eq!(opened.note.verify(&w.verifier()).unwrap(), 1_700_000_000);
        // Another time in the blob: the signature no longer matches.
        let mut forged = opened.note.clone();
        let s = forged
            .signatures
            .iter_mut()
            .find(|s| s.name == w.name())
            .unwrap();
        s.blob[7] ^= 1;
        assert!(forged.verify(&w.verifier()).is_err());
        // The same public key as a plain-signature key has another key ID: the line is
        // not its signature.
        let v = w.verifier();
        let plain = format!(
            "{}+{:08x}+{}",
            v.name(),
            key_id(v.name(), ED25519, v.key.as_bytes()),
            Base64::encode_string(&[&[ED25519][..], v.key.as_bytes()].concat())
        );
        let plain = VerifierKey::parse(&plain).unwrap();
        assert!(matches!(
            opened.note.verify(&plain),
            Err(NoteError::NotSigned { .. })
        ));
    }

    #[test]
    fn checkpoint_bodies_are_strict() {
        for bad in [
            "o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            "o\n1\nAAAA\n",
            "\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "o\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
            "o\n99999999999999999999999\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "accepted {bad:?}");
        }
        let ok =
            Checkpoint::parse("o\n0\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\next\n").unwrap();
        assert_eq!(ok.extensions, vec!["ext".to_string()]);
    }
}
