//! Encoding and decoding of ristretto255 points and scalars, with errors that say which.

use crate::{CryptoError, Result};
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;

/// Decodes a 32-byte point encoding, refusing non-canonical encodings and the identity.
///
/// The identity is refused because no honest key, share, `R` or partial is ever the identity,
/// and accepting it would let a custodian answer `P = O` for every record.
pub fn decode_point(bytes: &[u8], what: &'static str) -> Result<RistrettoPoint> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| CryptoError::InvalidPoint { what })?;
    let p = CompressedRistretto(arr)
        .decompress()
        .ok_or(CryptoError::InvalidPoint { what })?;
    if p == RistrettoPoint::default() {
        return Err(CryptoError::InvalidPoint { what });
    }
    Ok(p)
}

/// Decodes a canonical 32-byte little-endian scalar.
pub fn decode_scalar(bytes: &[u8], what: &'static str) -> Result<Scalar> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| CryptoError::InvalidScalar { what })?;
    Option::from(Scalar::from_canonical_bytes(arr)).ok_or(CryptoError::InvalidScalar { what })
}

/// The 32-byte encoding of a point.
pub fn encode_point(p: &RistrettoPoint) -> [u8; 32] {
    p.compress().to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;

    #[test]
    fn round_trip_and_refusals() {
        let p = RISTRETTO_BASEPOINT_POINT * Scalar::from(5u64);
        assert_eq!(decode_point(&encode_point(&p), "p").unwrap(), p);
        assert_eq!(
            decode_point(&[0u8; 32], "R"),
            Err(CryptoError::InvalidPoint { what: "R" })
        );
        assert!(decode_point(&[0xffu8; 32], "R").is_err());
        assert!(decode_point(&[1u8; 31], "R").is_err());
        assert!(decode_scalar(&[0xffu8; 32], "s").is_err());
    }
}
