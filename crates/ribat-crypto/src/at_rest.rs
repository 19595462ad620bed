//! The one AEAD step for secrets at rest: `nonce (12) ‖ AES-256-GCM-SIV ciphertext` under a
//! 32-byte key, with caller-chosen associated data. Used with a key derived from a
//! passphrase (the custodian's sealed shares, `passphrase`) and with a key derived from a
//! custodian's share (its honey list, so that no second passphrase derivation is needed).

use crate::secret::SecretBytes;
use crate::{CryptoError, Result};
use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use zeroize::Zeroizing;

/// Seals `plaintext` under `key`, binding `aad`.
pub fn seal(key: &SecretBytes<32>, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; 12];
    crate::entropy::fill(&mut nonce)?;
    let ct = Aes256GcmSiv::new(key.expose().into())
        .encrypt(
            &Nonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| CryptoError::Encryption {
            field: "sealed file".into(),
        })?;
    Ok([nonce.as_slice(), &ct].concat())
}

/// Opens what [`seal`] made; `what` names the file in the error.
pub fn open(
    key: &SecretBytes<32>,
    sealed: &[u8],
    aad: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < 12 + 16 {
        return Err(CryptoError::Malformed {
            what: "sealed file",
            reason: format!("{what}: shorter than a nonce and a tag"),
        });
    }
    let (nonce, ct) = sealed.split_at(12);
    let nonce: [u8; 12] = nonce.try_into().map_err(|_| CryptoError::Malformed {
        what: "sealed file",
        reason: what.to_owned(),
    })?;
    Aes256GcmSiv::new(key.expose().into())
        .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::Malformed { what: "sealed file", reason: format!("{what} does not open with this custodian's key (altered, or from another custodian)") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let k = SecretBytes::new([3u8; 32]);
        let s = seal(&k, b"honey", b"custodian 1").unwrap();
        assert_eq!(&*open(&k, &s, b"custodian 1", "h").unwrap(), b"honey");
        assert!(open(&k, &s, b"custodian 2", "h").is_err());
        assert!(open(&SecretBytes::new([4u8; 32]), &s, b"custodian 1", "h").is_err());
        assert!(open(&k, &s[..20], b"custodian 1", "h").is_err());
        assert!(!s.windows(5).any(|w| w == b"honey"));
    }

    #[test]
    fn a_sealed_file_shorter_than_a_nonce_and_a_tag_is_malformed_and_one_that_long_is_not() {
        let k = SecretBytes::new([3u8; 32]);
        let short = |n: usize| {
            open(&k, &vec![0u8; n], b"aad", "f")
                .err()
                .map(|e| e.to_string().contains("shorter than a nonce and a tag"))
        };
        assert_eq!(short(27), Some(true));
        assert_eq!(short(12 + 16), Some(false), "long enough, but forged");
    }
}
