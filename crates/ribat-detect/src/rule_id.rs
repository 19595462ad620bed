//! The rules' names, once: each detector implements one [`RuleId`], the rules file has one
//! section per rule, and a decision carries the rule's name (signed, so its spelling is part
//! of the format and never changes).

use serde::{Deserialize, Serialize};

/// A detection rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum RuleId {
    /// Distinct records read too fast.
    Velocity,
    /// Refusals for quota, again and again.
    QuotaHammer,
    /// A whole role reading far above its usual rate.
    RoleSurge,
    /// Reading steadily just under the quota.
    Sustained,
    /// Far above one's own learned baseline.
    Baseline,
    /// Too many distinct subjects over a day.
    Breadth,
    /// Walking through consecutive numbers.
    Enumeration,
    /// A honey record touched.
    Honey,
    /// A public figure read without a case.
    PublicFigure,
    /// Reads outside working hours.
    OffHours,
    /// A source never seen for this identity.
    NewSource,
    /// Bursts of authentication failures.
    AuthFailures,
    /// Custodians answered what no gateway audited.
    Disagreement,
    /// A custodian's answer failed its proof.
    ProofFailure,
}

impl RuleId {
    /// Every rule.
    pub const ALL: [RuleId; 14] = [
        Self::Velocity,
        Self::QuotaHammer,
        Self::RoleSurge,
        Self::Sustained,
        Self::Baseline,
        Self::Breadth,
        Self::Enumeration,
        Self::Honey,
        Self::PublicFigure,
        Self::OffHours,
        Self::NewSource,
        Self::AuthFailures,
        Self::Disagreement,
        Self::ProofFailure,
    ];

    /// The rule's name, as the rules file, decisions and alerts spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Velocity => "velocity",
            Self::QuotaHammer => "quota-hammer",
            Self::RoleSurge => "role-surge",
            Self::Sustained => "sustained",
            Self::Baseline => "baseline",
            Self::Breadth => "breadth",
            Self::Enumeration => "enumeration",
            Self::Honey => "honey",
            Self::PublicFigure => "public-figure",
            Self::OffHours => "off-hours",
            Self::NewSource => "new-source",
            Self::AuthFailures => "auth-failures",
            Self::Disagreement => "disagreement",
            Self::ProofFailure => "proof-failure",
        }
    }

    /// The rule named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_is_named_once_and_its_name_reads_back() {
        let mut names: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        for r in RuleId::ALL {
            assert_eq!(RuleId::parse(r.as_str()), Some(r));
            // serde spells it as the rules file and decisions do
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.as_str())
            );
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RuleId::ALL.len());
        assert_eq!(RuleId::parse("no-such-rule"), None);
    }

    #[test]
    fn a_rule_is_displayed_by_its_name() {
        for r in RuleId::ALL {
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(RuleId::AuthFailures.to_string(), "auth-failures");
    }
}
