//! What travels between a gateway and a networked custodian, as JSON over mTLS: the paths a
//! custodian serves, its answers and refusals, and what a gateway tells it (the request ids
//! it audited, the decisions to carry out). Shared by the custodian's server (`serve`) and
//! the gateway's client, so that the two ends cannot drift apart.
//!
//! The request itself is [`crate::PartialRequest`] (with the end user's token).

use crate::Denial;
use base64ct::{Base64, Encoding};
use ribat_crypto::combine::Partial;
use ribat_crypto::dleq::Proof;
use ribat_crypto::point::{decode_point, encode_point};
use serde::{Deserialize, Serialize};

/// The path custodians serve.
pub const PARTIAL_PATH: &str = "/v1/partial";
/// Where a gateway tells a custodian which request ids it audited.
pub const AUDITED_PATH: &str = "/v1/audited";
/// Where a gateway hands a custodian a decision to carry out (or lift).
pub const DECISION_PATH: &str = "/v1/decision";

/// Where a gateway asks a custodian's witness to cosign its audit log's checkpoint.
pub const COSIGN_PATH: &str = "/v1/cosign";

/// A checkpoint to cosign: the log's signed note and the consistency proof from the size
/// the gateway believes the witness last cosigned.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireCosign {
    /// The log's origin (its key's name): which log the custodian witnesses.
    pub origin: String,
    /// The size the gateway believes the witness last cosigned.
    pub old_size: u64,
    /// Consistency proof hashes, base64.
    pub proof: Vec<String>,
    /// The signed checkpoint.
    pub note: String,
    /// The tree's right edge at `old_size`, base64 hashes, largest subtree first: with
    /// `entries`, the witness computes the checkpoint's root itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<Vec<String>>,
    /// The entries from `old_size` to the checkpoint's size, base64: what the witness then
    /// knows was audited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<String>>,
}

/// A witness's answer, one variant per [`ribat_audit::CosignError`] and the cosignature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireCosigned {
    /// The cosignature line.
    Cosigned(String),
    /// It last cosigned this size: retry with a proof from it.
    Conflict(u64),
    /// The checkpoint does not extend what it cosigned: a fork.
    Fork(String),
    /// Malformed, or a log it does not witness.
    Refused(String),
    /// It could not persist its state.
    Unavailable(String),
}

impl WireCosigned {
    /// The answer to a cosign call.
    pub fn from_result(r: Result<String, ribat_audit::CosignError>) -> Self {
        use ribat_audit::CosignError as E;
        match r {
            Ok(line) => Self::Cosigned(line),
            Err(E::Conflict(n)) => Self::Conflict(n),
            Err(E::Inconsistent(why)) => Self::Fork(why),
            Err(E::Refused(why)) => Self::Refused(why),
            Err(E::Unavailable(why)) => Self::Unavailable(why),
            Err(other) => Self::Unavailable(other.to_string()),
        }
    }

    /// Back to what the log expects of a witness.
    pub fn into_result(self) -> Result<String, ribat_audit::CosignError> {
        use ribat_audit::CosignError as E;
        match self {
            Self::Cosigned(line) => Ok(line),
            Self::Conflict(n) => Err(E::Conflict(n)),
            Self::Fork(why) => Err(E::Inconsistent(why)),
            Self::Refused(why) => Err(E::Refused(why)),
            Self::Unavailable(why) => Err(E::Unavailable(why)),
        }
    }
}

/// A decision on the wire: carry it out, or lift it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireDecision {
    /// The signed decision.
    pub decision: ribat_detect::Decision,
    /// Lift it instead.
    #[serde(default)]
    pub release: bool,
}

/// Request ids a gateway made durable in its audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireAudited {
    /// Request ids.
    pub request_ids: Vec<String>,
}

/// A partial decryption on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WirePartial {
    /// Custodian index.
    pub custodian: u32,
    /// Class.
    pub class: String,
    /// Points, base64 of 32-byte encodings.
    pub points: Vec<String>,
    /// Composite DLEQ proof, base64.
    pub proof: String,
}

/// A custodian's refusal on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireRefusal {
    /// A policy refusal, when it is one.
    #[serde(default)]
    pub denial: Option<Denial>,
    /// Otherwise what failed.
    #[serde(default)]
    pub error: Option<String>,
    /// When the request named another custodian set than the custodian's: (asked, held,
    /// retired), so that the reader knows to wait for the resharing, not to blame it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_set: Option<(u32, u32, bool)>,
}

/// Why an answer read off the wire is not a partial decryption.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A point is not base64 or not a ristretto255 encoding.
    #[error("point {index}: {reason}")]
    Point {
        /// Which point of the answer.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The proof is not base64 or not a proof's encoding.
    #[error("proof: {0}")]
    Proof(String),
}

impl WirePartial {
    /// The wire form of `p`.
    pub fn from_partial(p: &Partial) -> Self {
        Self {
            custodian: p.custodian,
            class: p.class.clone(),
            points: p
                .points
                .iter()
                .map(|x| Base64::encode_string(&encode_point(x)))
                .collect(),
            proof: Base64::encode_string(&p.proof.to_bytes()),
        }
    }

    /// Decodes the answer; the caller still verifies its proof.
    pub fn into_partial(self) -> Result<Partial, WireError> {
        let points = self
            .points
            .iter()
            .enumerate()
            .map(|(index, s)| {
                let point = |reason: String| WireError::Point { index, reason };
                let b = Base64::decode_vec(s).map_err(|e| point(e.to_string()))?;
                decode_point(&b, "answered point").map_err(|e| point(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let proof = Base64::decode_vec(&self.proof).map_err(|e| WireError::Proof(e.to_string()))?;
        Ok(Partial {
            custodian: self.custodian,
            class: self.class,
            points,
            proof: Proof::from_bytes(&proof).map_err(|e| WireError::Proof(e.to_string()))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_witness_answer_crosses_the_wire_unchanged() {
        use ribat_audit::CosignError as E;
        for r in [
            Ok("— custodian-1 abc".to_owned()),
            Err(E::Conflict(7)),
            Err(E::Inconsistent("root differs".into())),
            Err(E::Refused("unknown log".into())),
            Err(E::Unavailable("disk".into())),
        ] {
            let wire = WireCosigned::from_result(r.clone());
            let back: WireCosigned =
                serde_json::from_slice(&serde_json::to_vec(&wire).unwrap()).unwrap();
            assert_eq!(back.into_result(), r);
        }
    }

    #[test]
    fn an_answer_that_is_not_a_point_or_a_proof_is_named_as_such() {
        let bad_point = WirePartial {
            custodian: 1,
            class: "identity".into(),
            points: vec![
                Base64::encode_string(&encode_point(
                    &curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT,
                )),
                "%%".into(),
            ],
            proof: String::new(),
        };
        assert!(matches!(
            bad_point.into_partial(),
            Err(WireError::Point { index: 1, .. })
        ));
        let bad_proof = WirePartial {
            custodian: 1,
            class: "identity".into(),
            points: vec![],
            proof: Base64::encode_string(&[1u8; 5]),
        };
        assert!(matches!(bad_proof.into_partial(), Err(WireError::Proof(_))));
    }
}
