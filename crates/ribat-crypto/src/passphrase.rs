//! Sealing bytes under a passphrase: argon2id derives a key, AES-256-GCM-SIV encrypts.
//!
//! Used for custodians' key shares at rest. The KDF parameters and salt travel with the
//! ciphertext, so a file stays readable after the defaults change; the caller's
//! associated data (which custodian, which epoch) is bound by the AEAD.

use crate::secret::{Passphrase, SecretBytes};
use crate::{CryptoError, Result};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// argon2id cost. The default follows RFC 9106's second recommendation scaled to a
/// 2-core node: 64 MiB, 3 passes, 1 lane (about a third of a second here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        Self {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

impl KdfParams {
    /// The cheapest parameters argon2 accepts. For tests only: they protect nothing.
    pub fn insecure_for_tests() -> Self {
        Self {
            m_kib: 8,
            t: 1,
            p: 1,
        }
    }
}

/// A passphrase-sealed blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassphraseSealed {
    /// Always `argon2id+aes-256-gcm-siv`.
    pub scheme: String,
    /// argon2id parameters.
    pub kdf: KdfParams,
    /// 16-byte salt, hex.
    pub salt: String,
    /// 12-byte nonce, hex.
    pub nonce: String,
    /// Ciphertext and tag, hex.
    pub ciphertext: String,
}

const SCHEME: &str = "argon2id+aes-256-gcm-siv";

fn derive(pass: &Passphrase, salt: &[u8], kdf: KdfParams) -> Result<SecretBytes<32>> {
    if pass.is_empty() {
        return Err(CryptoError::Kdf("the passphrase is empty".into()));
    }
    let params = Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32))
        .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pass.expose(), salt, &mut key)
        .map_err(|e| CryptoError::Kdf(e.to_string()))?;
    Ok(SecretBytes::new(key))
}

/// Seals `plaintext` under `pass`, binding `aad`.
pub fn seal(
    plaintext: &[u8],
    pass: &Passphrase,
    kdf: KdfParams,
    aad: &[u8],
) -> Result<PassphraseSealed> {
    let mut salt = [0u8; 16];
    crate::entropy::fill(&mut salt)?;
    let key = derive(pass, &salt, kdf)?;
    // The AEAD step is the one sealing at rest uses everywhere: nonce ‖ ciphertext.
    let sealed = crate::at_rest::seal(&key, plaintext, aad)?;
    let (nonce, ct) = sealed.split_at(12);
    Ok(PassphraseSealed {
        scheme: SCHEME.into(),
        kdf,
        salt: hex(&salt),
        nonce: hex(nonce),
        ciphertext: hex(ct),
    })
}

/// Opens a blob sealed by [`seal`]; `what` names the file in the error.
pub fn open(
    sealed: &PassphraseSealed,
    pass: &Passphrase,
    aad: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let bad = |reason: &str| CryptoError::Malformed {
        what: "sealed file",
        reason: format!("{what}: {reason}"),
    };
    if sealed.scheme != SCHEME {
        return Err(bad("unknown scheme"));
    }
    let salt = unhex(&sealed.salt).ok_or_else(|| bad("salt is not hex"))?;
    let nonce = unhex(&sealed.nonce)
        .filter(|n| n.len() == 12)
        .ok_or_else(|| bad("nonce is not 12 hex bytes"))?;
    let ct = unhex(&sealed.ciphertext).ok_or_else(|| bad("ciphertext is not hex"))?;
    let key = derive(pass, &salt, sealed.kdf)?;
    crate::at_rest::open(&key, &[nonce, ct].concat(), aad, what).map_err(|_| {
        CryptoError::WrongPassphrase {
            what: what.to_owned(),
        }
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(h: &str) -> Option<Vec<u8>> {
    hex::decode(h).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_wrong_passphrase_and_moved_file() {
        let p = Passphrase::new("tessellate-ribat".into());
        let s = seal(
            b"share bytes",
            &p,
            KdfParams::insecure_for_tests(),
            b"custodian 1",
        )
        .unwrap();
        assert_eq!(
            &*open(&s, &p, b"custodian 1", "c1").unwrap(),
            b"share bytes"
        );
        assert_eq!(
            open(&s, &Passphrase::new("wrong".into()), b"custodian 1", "c1"),
            Err(CryptoError::WrongPassphrase { what: "c1".into() })
        );
        // The same file presented as another custodian's.
        assert!(open(&s, &p, b"custodian 2", "c2").is_err());
        assert!(
            seal(
                b"x",
                &Passphrase::new(String::new()),
                KdfParams::insecure_for_tests(),
                b""
            )
            .is_err()
        );
    }
}
