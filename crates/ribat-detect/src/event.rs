//! What the gateway and the custodians report: one event per access, refusal,
//! authentication failure, custodian answer, proof failure or policy change.
//!
//! Events carry opaque record ids, never personal data. The one exception, a number
//! somebody looked up (`Access::lookup`), is kept for the enumeration detector in memory
//! only and is never serialised.

use ribat_policy::{Purpose, Table};
use serde::{Deserialize, Serialize};

/// Who made a request: the certificate's holder and where it connected from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Actor {
    /// Identity (certificate CN, token subject).
    pub identity: String,
    /// Role.
    pub role: String,
    /// Institution.
    pub institution: String,
    /// Client certificate serial (hex).
    pub serial: String,
    /// Source address (IP only).
    pub addr: String,
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Milliseconds since the Unix epoch (the reporting component's clock).
    pub time_ms: u64,
    /// The component that saw it (`gateway.embedded`, `custodian-2`).
    pub component: String,
    /// What happened.
    pub kind: Kind,
}

/// The kinds of event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Kind {
    /// A read the gateway answered (one per subject) or a lookup that found nothing.
    Access(Access),
    /// A request the gateway or a custodian refused.
    Denied(Denied),
    /// A token or certificate that did not authenticate.
    AuthFailure(AuthFailure),
    /// What a custodian answered, for comparison with what the gateway audited.
    CustodianAnswer(CustodianAnswer),
    /// The gateway made a read's audit entry durable (before releasing its plaintext).
    Audited {
        /// The request id custodians were given.
        request_id: String,
    },
    /// Time passes (a component with nothing to report lets deadline rules act).
    Tick,
    /// A custodian's partial decryption whose proof failed.
    ProofFailure {
        /// Custodian index.
        custodian: u32,
        /// Why.
        reason: String,
    },
    /// A third party's access nears (or passed) its review date in a mesh's identity
    /// register: a finding a week ahead, so that someone re-certifies or lets it lapse.
    ReviewDue {
        /// The certificate's holder.
        identity: String,
        /// Its role.
        role: String,
        /// Its serial.
        serial: String,
        /// The review date, Unix seconds.
        due_s: i64,
    },
    /// A mesh member's attestation judged otherwise than before: cut off (missing, stale,
    /// outside the allowed set), drifting on a retired build, or attested again.
    NodeAttestation {
        /// The member.
        node: String,
        /// Whether it is cut off now.
        isolated: bool,
        /// The verdict, for people (`isolated: it runs …`).
        verdict: String,
    },
    /// A policy or rules file loaded or changed.
    PolicyChange {
        /// Which file.
        what: String,
        /// SHA-256 of its contents, hex.
        digest: String,
    },
}

/// A read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Access {
    /// Who.
    pub actor: Actor,
    /// Declared purpose.
    pub purpose: Purpose,
    /// Route template (`/v1/persons/{cnss}`).
    pub route: String,
    /// Table read.
    pub table: Table,
    /// Record read; `None` when the lookup found nothing.
    pub subject: Option<String>,
    /// What was looked up, as a number for the enumeration detector only: a CNSS or
    /// affiliation number as it is, a CIN by [`cin_lookup`], a name and birth date by
    /// [`name_lookup`].
    #[serde(skip)]
    pub lookup: Option<u64>,
    /// A case reference the caller gave (`case` on the request).
    pub case_ref: Option<String>,
    /// The subject is on the public-figure list.
    pub public_figure: bool,
    /// Tag of the subject's employer or city, for the breadth detector (in memory only:
    /// a hash of a name is guessable).
    #[serde(skip)]
    pub area: Option<String>,
}

/// A refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denied {
    /// Who.
    pub actor: Actor,
    /// Declared purpose, when it was read: as the client sent it, since a malformed
    /// purpose is itself a reason for refusal and worth seeing.
    pub purpose: Option<String>,
    /// Route template or custodian table.
    pub route: String,
    /// Why it was refused.
    pub reason: Refusal,
}

/// Why a request was refused: the kinds detectors act on, by name; any other problem type
/// or denial slug as it was given. On the wire and in alerts it is the slug itself
/// (`quota-exceeded`, `honey`, …), so the event format does not change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
#[non_exhaustive]
pub enum Refusal {
    /// Over a quota of distinct records.
    QuotaExceeded,
    /// A honey record was asked for.
    Honey,
    /// The caller is quarantined.
    Quarantined,
    /// The caller's role is limited to essential purposes.
    EssentialOnly,
    /// A supervisor's co-signature is needed first.
    StepUpRequired,
    /// The caller is slowed down.
    Throttled,
    /// Another problem type or denial slug.
    Other(String),
}

impl Refusal {
    /// The slug.
    pub fn as_str(&self) -> &str {
        match self {
            Self::QuotaExceeded => "quota-exceeded",
            Self::Honey => "honey",
            Self::Quarantined => "quarantined",
            Self::EssentialOnly => "essential-only",
            Self::StepUpRequired => "step-up-required",
            Self::Throttled => "throttled",
            Self::Other(s) => s,
        }
    }

    /// A refusal that is a decision of the watch at work (quarantine, essential-only,
    /// step-up, throttling), not new evidence about the caller.
    pub fn is_a_decision_at_work(&self) -> bool {
        matches!(
            self,
            Self::Quarantined | Self::EssentialOnly | Self::StepUpRequired | Self::Throttled
        )
    }
}

impl From<String> for Refusal {
    fn from(s: String) -> Self {
        match s.as_str() {
            "quota-exceeded" => Self::QuotaExceeded,
            "honey" => Self::Honey,
            "quarantined" => Self::Quarantined,
            "essential-only" => Self::EssentialOnly,
            "step-up-required" => Self::StepUpRequired,
            "throttled" => Self::Throttled,
            _ => Self::Other(s),
        }
    }
}

impl From<&str> for Refusal {
    fn from(s: &str) -> Self {
        Self::from(s.to_owned())
    }
}

impl From<Refusal> for String {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Other(s) => s,
            known => known.as_str().to_owned(),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed authentication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthFailure {
    /// Who, as far as the certificate tells.
    pub actor: Actor,
    /// Why (`token-forged`, `token-expired`, …).
    pub reason: String,
}

/// A custodian's answer to one partial-decryption request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodianAnswer {
    /// Custodian index.
    pub custodian: u32,
    /// The request id the gateway gave.
    pub request_id: String,
    /// The node that asked (the gateway's certificate name).
    pub node: String,
    /// Table, as the custodian's log wrote it.
    pub table: String,
    /// End user named in the request.
    pub identity: String,
    /// Records answered (or refused).
    pub records: usize,
    /// `served`, `denied`, `failed`.
    pub outcome: String,
    /// A quarantine the custodian imposed with this answer, and why.
    pub quarantined: Option<String>,
}

/// Where lookups by CIN sit: above every CNSS and affiliation number, so that stepping
/// through one kind of number never reads as a step through another.
const CIN_SPACE: u64 = 1 << 40;

/// A CIN in normal form (one or two capital letters, then digits) as a lookup number: the
/// same letters and consecutive digits give consecutive numbers, so a walk through CINs
/// is a walk through numbers. `None` for anything else.
pub fn cin_lookup(cin: &str) -> Option<u64> {
    let letters = cin.bytes().take_while(u8::is_ascii_uppercase).count();
    let digits = &cin[letters..];
    if !(1..=2).contains(&letters)
        || digits.is_empty()
        || digits.len() > 7
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let prefix = cin
        .bytes()
        .take(letters)
        .fold(0u64, |acc, b| acc * 27 + u64::from(b - b'A' + 1));
    Some(CIN_SPACE + prefix * 10_000_000 + digits.parse::<u64>().ok()?)
}

/// A search by name and birth date as a lookup number: a digest of the normal form (in
/// the top half of the numbers, apart from CNSS numbers and CINs), so that repeating a
/// search is recognised and its misses are counted; it can never look like a walk.
pub fn name_lookup(digest: [u8; 8]) -> u64 {
    u64::from_be_bytes(digest) | (1 << 63)
}

impl Event {
    /// The actor, for kinds that have one.
    pub fn actor(&self) -> Option<&Actor> {
        match &self.kind {
            Kind::Access(a) => Some(&a.actor),
            Kind::Denied(d) => Some(&d.actor),
            Kind::AuthFailure(f) => Some(&f.actor),
            _ => None,
        }
    }

    /// A one-line summary for a decision's evidence: no personal data, record ids only.
    pub fn summary(&self) -> String {
        let t = self.time_ms;
        match &self.kind {
            Kind::Access(a) => format!(
                "{t} {} read {} {} as {} for {}{}",
                self.component,
                a.table,
                a.subject.as_deref().unwrap_or("(no match)"),
                a.actor.identity,
                a.purpose,
                a.case_ref
                    .as_deref()
                    .map_or_else(String::new, |c| format!(" case {c}"))
            ),
            Kind::Denied(d) => format!(
                "{t} {} refused {} on {}: {}",
                self.component, d.actor.identity, d.route, d.reason
            ),
            Kind::AuthFailure(f) => format!(
                "{t} {} authentication failed for certificate {} ({}) from {}: {}",
                self.component, f.actor.serial, f.actor.identity, f.actor.addr, f.reason
            ),
            Kind::CustodianAnswer(c) => format!(
                "{t} custodian {} {} request {} from {} for {} ({} records){}",
                c.custodian,
                c.outcome,
                c.request_id,
                c.node,
                c.identity,
                c.records,
                c.quarantined
                    .as_deref()
                    .map_or_else(String::new, |q| format!(", quarantined: {q}"))
            ),
            Kind::ProofFailure { custodian, reason } => {
                format!("{t} proof of custodian {custodian} failed: {reason}")
            }
            Kind::PolicyChange { what, digest } => format!("{t} {what} loaded ({digest})"),
            Kind::ReviewDue {
                identity,
                role,
                due_s,
                ..
            } => {
                format!("{t} review due: {identity} ({role}) lapses at {due_s} unless re-certified")
            }
            Kind::NodeAttestation { node, verdict, .. } => {
                format!("{t} {} judges {node} {verdict}", self.component)
            }
            Kind::Audited { request_id } => {
                format!("{t} {} audited request {request_id}", self.component)
            }
            Kind::Tick => format!("{t} {} tick", self.component),
        }
    }
}

#[cfg(test)]
mod lookup_tests {
    use super::*;

    #[test]
    fn consecutive_cins_are_consecutive_lookups_in_their_own_space() {
        let a = cin_lookup("BE123456").unwrap();
        assert_eq!(cin_lookup("BE123457"), Some(a + 1));
        assert!(a > 999_999_999, "above every CNSS number");
        // Another prefix is far away: no step between them.
        assert!(cin_lookup("BH123456").unwrap().abs_diff(a) > 1_000_000);
        assert_eq!(cin_lookup("A1"), Some(CIN_SPACE + 10_000_000 + 1));
        for bad in ["", "123456", "ABC123", "be123456", "BE", "BE12345678"] {
            assert_eq!(cin_lookup(bad), None, "{bad}");
        }
        assert!(name_lookup([0; 8]) > cin_lookup("ZZ9999999").unwrap());
    }

    #[test]
    fn a_cin_lookup_is_its_letters_in_base_27_then_its_digits_and_a_name_lookup_its_digest_with_the_top_bit()
     {
        assert_eq!(
            cin_lookup("BE123456"),
            Some(CIN_SPACE + (2 * 27 + 5) * 10_000_000 + 123_456)
        );
        assert_eq!(name_lookup([0, 0, 0, 0, 0, 0, 0, 1]), (1 << 63) | 1);
        assert_eq!(name_lookup([0x80, 0, 0, 0, 0, 0, 0, 1]), (1 << 63) | 1);
    }

    #[test]
    fn reads_refusals_and_authentication_failures_name_their_actor() {
        use crate::detectors::test_events::*;
        for e in [
            read(MONDAY_9AM, "c-1", "clerk", "counter-service", "p-1"),
            denied(MONDAY_9AM, "c-1", "clerk", "quota-exceeded"),
            auth_failure(MONDAY_9AM, "c-1", "token-forged"),
        ] {
            assert_eq!(e.actor().map(|a| a.identity.as_str()), Some("c-1"), "{e:?}");
        }
        let tick = Event {
            time_ms: MONDAY_9AM,
            component: "gateway".into(),
            kind: Kind::Tick,
        };
        assert!(tick.actor().is_none());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_is_its_slug_on_the_wire_and_known_slugs_are_typed() {
        for (slug, typed) in [
            ("quota-exceeded", Refusal::QuotaExceeded),
            ("honey", Refusal::Honey),
            ("quarantined", Refusal::Quarantined),
            ("essential-only", Refusal::EssentialOnly),
            ("step-up-required", Refusal::StepUpRequired),
            ("throttled", Refusal::Throttled),
            (
                "purpose-not-allowed",
                Refusal::Other("purpose-not-allowed".into()),
            ),
        ] {
            assert_eq!(Refusal::from(slug), typed);
            assert_eq!(typed.as_str(), slug);
            let json = serde_json::to_string(&typed).unwrap();
            assert_eq!(json, format!("\"{slug}\""));
            assert_eq!(serde_json::from_str::<Refusal>(&json).unwrap(), typed);
        }
        assert!(Refusal::Throttled.is_a_decision_at_work());
        assert!(!Refusal::QuotaExceeded.is_a_decision_at_work());
        assert!(!Refusal::Other("quarantined-ish".into()).is_a_decision_at_work());
    }

    #[test]
    fn a_looked_up_number_is_never_serialised() {
        let e = Event {
            time_ms: 1,
            component: "gateway".into(),
            kind: Kind::Access(Access {
                actor: Actor::default(),
                purpose: "p".parse().unwrap(),
                route: "/v1/persons/{cnss}".into(),
                table: Table::Persons,
                subject: None,
                lookup: Some(123_456_789),
                case_ref: None,
                public_figure: false,
                area: None,
            }),
        };
        let text = serde_json::to_string(&e).unwrap();
        assert!(!text.contains("123456789"), "{text}");
        assert!(!e.summary().contains("123456789"));
    }
}
