//! Discrete-log-equality proofs of RFC 9497 §2.2 over ristretto255 with SHA-512.
//!
//! A custodian answers `P_j = k_i·R_j` for a batch of points `R_j` and proves, in one
//! composite proof, that the same `k_i` satisfies `Y_i = k_i·G`, without revealing `k_i`:
//!
//! ```text
//!   prover (custodian i)                         verifier (combiner)
//!   (M, Z) = composites(Y_i, R[], P[])           (M, Z) = composites(Y_i, R[], P[])
//!   t2 = r·G, t3 = r·M                           t2 = s·G + c·Y_i,  t3 = s·M + c·Z
//!   c  = H(Y_i, M, Z, t2, t3), s = r − c·k_i      accept iff c == H(Y_i, M, Z, t2, t3)
//! ```
//!
//! The transcripts, hashing to scalars (`expand_message_xmd` with SHA-512, 64 bytes,
//! reduced mod ℓ) and domain separation are exactly those of the RFC, with the context
//! string as a parameter: RFC 9497's own VOPRF context reproduces its test vectors, and
//! Ribat uses its own context so that a proof from one protocol cannot be replayed in the
//! other.

use crate::point::{decode_scalar, encode_point};
use crate::secret::SecretScalar;
use crate::{CryptoError, Result};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use hash2curve::{ExpandMsg, ExpandMsgXmd, Expander};
use sha2::digest::typenum::U32;
use sha2::{Digest, Sha512};
use std::num::NonZero;
use subtle::ConstantTimeEq;

/// Length of an encoded proof: `c ‖ s`, two 32-byte little-endian scalars.
pub const PROOF_LEN: usize = 64;

/// Up to this many points, the prover sums public answers instead of multiplying by `k`.
const SMALL_BATCH: usize = 8;

/// The largest batch one composite proof may cover (the index is encoded on two bytes).
pub const MAX_BATCH: usize = u16::MAX as usize;

/// RFC 9497's context string for `mode` and the ristretto255-SHA512 suite.
pub fn rfc9497_context(mode: u8) -> Vec<u8> {
    let mut c = b"OPRFV1-".to_vec();
    c.push(mode);
    c.extend_from_slice(b"-ristretto255-SHA512");
    c
}

/// The context string of Ribat's partial decryptions (format version 1).
pub const RIBAT_PARTIAL_CONTEXT: &[u8] = b"RIBATV1-partial-decryption-ristretto255-SHA512";

/// A proof `(c, s)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof {
    c: Scalar,
    s: Scalar,
}

impl Proof {
    /// `c ‖ s`, as in RFC 9497's `SerializeScalar`.
    pub fn to_bytes(&self) -> [u8; PROOF_LEN] {
        let mut out = [0u8; PROOF_LEN];
        out[..32].copy_from_slice(&self.c.to_bytes());
        out[32..].copy_from_slice(&self.s.to_bytes());
        out
    }

    /// Reads `c ‖ s`, refusing non-canonical scalars.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != PROOF_LEN {
            return Err(CryptoError::Malformed {
                what: "DLEQ proof",
                reason: format!("{} bytes, expected {PROOF_LEN}", bytes.len()),
            });
        }
        Ok(Self {
            c: decode_scalar(&bytes[..32], "proof challenge")?,
            s: decode_scalar(&bytes[32..], "proof response")?,
        })
    }
}

/// Proofs under one context string.
#[derive(Clone, Debug)]
pub struct Dleq {
    context: Vec<u8>,
}

impl Dleq {
    /// Proofs under an arbitrary context string.
    pub fn new(context: &[u8]) -> Self {
        Self {
            context: context.to_vec(),
        }
    }

    /// Proofs for Ribat's partial decryptions.
    pub fn ribat() -> Self {
        Self::new(RIBAT_PARTIAL_CONTEXT)
    }

    /// Proves `log_G(b) == log_{c[j]}(d[j])` for all `j`, with `b = k·G` and `d[j] = k·c[j]`.
    pub fn prove(
        &self,
        k: &SecretScalar,
        b: &RistrettoPoint,
        c: &[RistrettoPoint],
        d: &[RistrettoPoint],
    ) -> Result<Proof> {
        let r = SecretScalar::new(crate::entropy::scalar()?);
        self.prove_with_nonce(k, b, c, d, &r)
    }

    /// [`Dleq::prove`] with the proof randomness given; for known-answer tests only.
    pub(crate) fn prove_with_nonce(
        &self,
        k: &SecretScalar,
        b: &RistrettoPoint,
        c: &[RistrettoPoint],
        d: &[RistrettoPoint],
        r: &SecretScalar,
    ) -> Result<Proof> {
        check_batch(c, d)?;
        let weights = self.composite_weights(b, c, d)?;
        // M and the weights are public (they are recomputed by the verifier), so
        // variable-time arithmetic leaks nothing.
        let m = RistrettoPoint::vartime_multiscalar_mul(&weights, c);
        // Z = k·M equals Σ d_j·D_j when D_j = k·C_j. For small batches the public sum is
        // cheaper than a constant-time multiplication by the secret k; for large ones one
        // multiplication beats an m-term sum (RFC 9497's ComputeCompositesFast).
        let z = if c.len() <= SMALL_BATCH {
            RistrettoPoint::vartime_multiscalar_mul(&weights, d)
        } else {
            m * k.expose()
        };
        let t2 = RISTRETTO_BASEPOINT_TABLE * r.expose();
        let t3 = m * r.expose();
        let ch = self.challenge(b, &m, &z, &t2, &t3)?;
        let s = r.expose() - ch * k.expose();
        Ok(Proof { c: ch, s })
    }

    /// Verifies a proof made by [`Dleq::prove`].
    pub fn verify(
        &self,
        b: &RistrettoPoint,
        c: &[RistrettoPoint],
        d: &[RistrettoPoint],
        proof: &Proof,
    ) -> Result<()> {
        check_batch(c, d)?;
        let weights = self.composite_weights(b, c, d)?;
        // All inputs are public here, so variable-time arithmetic is safe and faster.
        let m = RistrettoPoint::vartime_multiscalar_mul(&weights, c);
        let z = RistrettoPoint::vartime_multiscalar_mul(&weights, d);
        let t2 = RistrettoPoint::vartime_double_scalar_mul_basepoint(&proof.c, b, &proof.s);
        let t3 = RistrettoPoint::vartime_multiscalar_mul([proof.s, proof.c], [m, z]);
        let expected = self.challenge(b, &m, &z, &t2, &t3)?;
        if bool::from(expected.ct_eq(&proof.c)) {
            Ok(())
        } else {
            Err(CryptoError::ProofInvalid)
        }
    }

    /// The weights `d_j` of ComputeComposites.
    fn composite_weights(
        &self,
        b: &RistrettoPoint,
        c: &[RistrettoPoint],
        d: &[RistrettoPoint],
    ) -> Result<Vec<Scalar>> {
        let mut seed_dst = b"Seed-".to_vec();
        seed_dst.extend_from_slice(&self.context);
        let bm = encode_point(b);
        let mut h = Sha512::new();
        h.update(len2(bm.len())?);
        h.update(bm);
        h.update(len2(seed_dst.len())?);
        h.update(&seed_dst);
        let seed = h.finalize();

        let mut weights = Vec::with_capacity(c.len());
        for (i, (ci, di)) in c.iter().zip(d).enumerate() {
            let ce = encode_point(ci);
            let de = encode_point(di);
            let mut t = Vec::with_capacity(2 + seed.len() + 2 + 2 + 32 + 2 + 32 + 9);
            t.extend_from_slice(&len2(seed.len())?);
            t.extend_from_slice(&seed);
            t.extend_from_slice(&len2(i)?);
            t.extend_from_slice(&len2(ce.len())?);
            t.extend_from_slice(&ce);
            t.extend_from_slice(&len2(de.len())?);
            t.extend_from_slice(&de);
            t.extend_from_slice(b"Composite");
            weights.push(self.hash_to_scalar(&t)?);
        }
        if weights.is_empty() {
            return Err(CryptoError::BatchMalformed {
                reason: "empty batch",
            });
        }
        Ok(weights)
    }

    fn challenge(
        &self,
        b: &RistrettoPoint,
        m: &RistrettoPoint,
        z: &RistrettoPoint,
        t2: &RistrettoPoint,
        t3: &RistrettoPoint,
    ) -> Result<Scalar> {
        let mut t = Vec::with_capacity(5 * 34 + 9);
        for p in [b, m, z, t2, t3] {
            let e = encode_point(p);
            t.extend_from_slice(&len2(e.len())?);
            t.extend_from_slice(&e);
        }
        t.extend_from_slice(b"Challenge");
        self.hash_to_scalar(&t)
    }

    /// RFC 9497 HashToScalar for ristretto255: 64 bytes of `expand_message_xmd(SHA-512)`
    /// under DST `"HashToScalar-" ‖ contextString`, reduced mod ℓ.
    fn hash_to_scalar(&self, msg: &[u8]) -> Result<Scalar> {
        let dst: [&[u8]; 2] = [b"HashToScalar-", &self.context];
        let len = NonZero::new(64u16).ok_or(CryptoError::BatchMalformed {
            reason: "zero output length",
        })?;
        let mut expander =
            <ExpandMsgXmd<Sha512> as ExpandMsg<U32>>::expand_message(&[msg], &dst, len).map_err(
                |_| CryptoError::BatchMalformed {
                    reason: "context string too long for expand_message_xmd",
                },
            )?;
        let mut wide = [0u8; 64];
        expander
            .fill_bytes(&mut wide)
            .map_err(|_| CryptoError::BatchMalformed {
                reason: "expand_message_xmd output exhausted",
            })?;
        Ok(Scalar::from_bytes_mod_order_wide(&wide))
    }
}

fn check_batch(c: &[RistrettoPoint], d: &[RistrettoPoint]) -> Result<()> {
    if c.len() != d.len() {
        return Err(CryptoError::BatchMalformed {
            reason: "as many answers as requested points are needed",
        });
    }
    if c.is_empty() {
        return Err(CryptoError::BatchMalformed {
            reason: "empty batch",
        });
    }
    if c.len() > MAX_BATCH {
        return Err(CryptoError::BatchMalformed {
            reason: "more than 65535 points in one proof",
        });
    }
    Ok(())
}

/// I2OSP(n, 2).
fn len2(n: usize) -> Result<[u8; 2]> {
    u16::try_from(n)
        .map(u16::to_be_bytes)
        .map_err(|_| CryptoError::BatchMalformed {
            reason: "length does not fit in two bytes",
        })
}

/// The identity point, for tests that forge answers.
#[cfg(test)]
pub(crate) fn identity() -> RistrettoPoint {
    use curve25519_dalek::traits::Identity;
    RistrettoPoint::identity()
}

#[cfg(test)]
mod tests {
    //! Known answers: RFC 9497 test vectors, `ristretto255-SHA512`, mode 1 (VOPRF), from
    //! `../shared/testdata/rfc9497/allVectors.json` (cfrg/draft-irtf-cfrg-voprf
    //! `poc/vectors/allVectors.json` @ 43da59f).
    use super::*;
    use crate::point::decode_point;
    use serde_json::Value;

    #[test]
    fn a_batch_holds_at_most_65535_points() {
        let most = vec![identity(); MAX_BATCH];
        assert!(check_batch(&most, &most).is_ok());
        let over = vec![identity(); MAX_BATCH + 1];
        assert!(matches!(
            check_batch(&over, &over),
            Err(CryptoError::BatchMalformed { .. })
        ));
    }

    fn vectors() -> (Value, Vec<Value>) {
        let text = ribat_testkit::vectors::read("rfc9497/allVectors.json").unwrap();
        let all: Value = serde_json::from_str(&text).unwrap();
        let suite = all
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["identifier"] == "ristretto255-SHA512" && e["mode"] == 1)
            .unwrap()
            .clone();
        let v = suite["vectors"].as_array().unwrap().clone();
        (suite, v)
    }

    fn points(list: &Value) -> Vec<RistrettoPoint> {
        list.as_str()
            .unwrap()
            .split(',')
            .map(|h| decode_point(&hex::decode(h).unwrap(), "vector point").unwrap())
            .collect()
    }

    #[test]
    fn rfc9497_voprf_ristretto255_proofs_are_reproduced() {
        let (suite, vs) = vectors();
        let sk = SecretScalar::from_canonical_bytes(
            hex::decode(suite["skSm"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap(),
        )
        .unwrap();
        let pk =
            decode_point(&hex::decode(suite["pkSm"].as_str().unwrap()).unwrap(), "pk").unwrap();
        assert_eq!(RISTRETTO_BASEPOINT_TABLE * sk.expose(), pk);
        let dleq = Dleq::new(&rfc9497_context(1));
        let mut batches = std::collections::BTreeSet::new();
        for v in &vs {
            let c = points(&v["BlindedElement"]);
            let d = points(&v["EvaluationElement"]);
            assert_eq!(c.len() as u64, v["Batch"].as_u64().unwrap());
            batches.insert(c.len());
            let r = SecretScalar::from_canonical_bytes(
                hex::decode(v["Proof"]["r"].as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap(),
            )
            .unwrap();
            let want = hex::decode(v["Proof"]["proof"].as_str().unwrap()).unwrap();
            let proof = dleq.prove_with_nonce(&sk, &pk, &c, &d, &r).unwrap();
            assert_eq!(proof.to_bytes().to_vec(), want, "batch {}", c.len());
            let parsed = Proof::from_bytes(&want).unwrap();
            dleq.verify(&pk, &c, &d, &parsed).unwrap();
            // The evaluations are k·C, which is what a custodian answers.
            for (ci, di) in c.iter().zip(&d) {
                assert_eq!(ci * sk.expose(), *di);
            }
        }
        assert!(batches.contains(&1) && batches.contains(&2), "{batches:?}");
    }

    #[test]
    fn proof_under_another_context_does_not_verify() {
        let (suite, vs) = vectors();
        let pk =
            decode_point(&hex::decode(suite["pkSm"].as_str().unwrap()).unwrap(), "pk").unwrap();
        let v = &vs[0];
        let (c, d) = (
            points(&v["BlindedElement"]),
            points(&v["EvaluationElement"]),
        );
        let proof = Proof::from_bytes(&hex::decode(v["Proof"]["proof"].as_str().unwrap()).unwrap())
            .unwrap();
        assert_eq!(
            Dleq::ribat().verify(&pk, &c, &d, &proof),
            Err(CryptoError::ProofInvalid)
        );
    }

    #[test]
    fn wrong_answer_wrong_key_or_swapped_order_is_refused() {
        let k = SecretScalar::new(crate::entropy::scalar().unwrap());
        let other = SecretScalar::new(crate::entropy::scalar().unwrap());
        let b = RISTRETTO_BASEPOINT_TABLE * k.expose();
        let c: Vec<_> = (0..4)
            .map(|_| RISTRETTO_BASEPOINT_TABLE * &crate::entropy::scalar().unwrap())
            .collect();
        let d: Vec<_> = c.iter().map(|ci| ci * k.expose()).collect();
        let dleq = Dleq::ribat();
        let p = dleq.prove(&k, &b, &c, &d).unwrap();
        dleq.verify(&b, &c, &d, &p).unwrap();

        let mut bad = d.clone();
        bad[2] = c[2] * other.expose();
        assert_eq!(
            dleq.verify(&b, &c, &bad, &p),
            Err(CryptoError::ProofInvalid)
        );
        assert!(
            dleq.prove(&k, &b, &c, &bad)
                .and_then(|q| dleq.verify(&b, &c, &bad, &q))
                .is_err()
        );

        let mut swapped = d.clone();
        swapped.swap(0, 1);
        assert_eq!(
            dleq.verify(&b, &c, &swapped, &p),
            Err(CryptoError::ProofInvalid)
        );

        let mut ident = d.clone();
        ident[0] = identity();
        assert_eq!(
            dleq.verify(&b, &c, &ident, &p),
            Err(CryptoError::ProofInvalid)
        );

        assert!(matches!(
            dleq.verify(&b, &c, &d[..3], &p),
            Err(CryptoError::BatchMalformed { .. })
        ));
    }
}
