//! What a detector concludes (a finding) and the graded, reversible responses to it.

use crate::rule_id::RuleId;
use serde::{Deserialize, Serialize};

/// What a response applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "kebab-case")]
pub enum Target {
    /// An identity (all its certificates).
    Identity(String),
    /// One client certificate, by serial.
    Certificate(String),
    /// A node of the mesh (a gateway or a custodian), by name.
    Node(String),
    /// A source address.
    Address(String),
    /// A whole role (used for the essential-services fallback).
    Role(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Identity(s) => write!(f, "identity {s}"),
            Self::Certificate(s) => write!(f, "certificate {s}"),
            Self::Node(s) => write!(f, "node {s}"),
            Self::Address(s) => write!(f, "address {s}"),
            Self::Role(s) => write!(f, "role {s}"),
        }
    }
}

/// Graded responses, weakest first. Every one but `Alert` lasts a duration and can be
/// released early by two administrators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Tell the security team; change nothing.
    Alert,
    /// At most `per_minute` requests a minute.
    Throttle {
        /// Requests per minute allowed.
        per_minute: u32,
    },
    /// Every request needs a supervisor's co-signature.
    StepUp,
    /// Nothing is served.
    Quarantine,
    /// Only the essential roles (counters, pensions) are served.
    Essential,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Alert => f.write_str("alert"),
            Self::Throttle { per_minute } => write!(f, "throttle to {per_minute}/min"),
            Self::StepUp => f.write_str("require a supervisor's co-signature"),
            Self::Quarantine => f.write_str("quarantine"),
            Self::Essential => f.write_str("essential services only"),
        }
    }
}

/// How bad (OCSF severity ids 1–5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// Informational.
    Low,
    /// Worth a look.
    Medium,
    /// Act now.
    High,
    /// Hostile by definition (honey records, forged proofs).
    Critical,
}

impl Severity {
    /// OCSF `severity_id`.
    pub fn ocsf_id(self) -> u8 {
        match self {
            Self::Low => 2,
            Self::Medium => 3,
            Self::High => 4,
            Self::Critical => 5,
        }
    }
}

/// A detector's conclusion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule that found it.
    pub rule: RuleId,
    /// One line for people.
    pub title: String,
    /// How bad.
    pub severity: Severity,
    /// Who or what.
    pub target: Target,
    /// The response the rule asks for.
    pub action: Action,
    /// How long the response lasts, seconds.
    pub duration_secs: u64,
    /// The events that led here (summaries, no personal data), oldest first.
    pub evidence: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_actions_read_as_words_and_severities_as_ocsf_ids() {
        let shown: Vec<String> = [
            Target::Identity("a".into()),
            Target::Certificate("b".into()),
            Target::Node("c".into()),
            Target::Address("d".into()),
            Target::Role("e".into()),
        ]
        .iter()
        .map(Target::to_string)
        .collect();
        assert_eq!(
            shown,
            [
                "identity a",
                "certificate b",
                "node c",
                "address d",
                "role e"
            ]
        );
        let shown: Vec<String> = [
            Action::Alert,
            Action::Throttle { per_minute: 6 },
            Action::StepUp,
            Action::Quarantine,
            Action::Essential,
        ]
        .iter()
        .map(Action::to_string)
        .collect();
        assert_eq!(
            shown,
            [
                "alert",
                "throttle to 6/min",
                "require a supervisor's co-signature",
                "quarantine",
                "essential services only"
            ]
        );
        let ids: Vec<u8> = [
            Severity::Low,
            Severity::Medium,
            Severity::High,
            Severity::Critical,
        ]
        .into_iter()
        .map(Severity::ocsf_id)
        .collect();
        assert_eq!(ids, [2, 3, 4, 5]);
    }
}
