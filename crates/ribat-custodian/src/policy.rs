//! Which role may read which classes for which purposes, and how much.
//!
//! Every custodian loads its own copy and enforces it itself (I3). JSON, format
//! `ribat-policy/v1`; [`Policy::embedded_default`] is the policy of the embedded demo.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The purpose under which the blind-index key (table `keys`) is opened, and nothing else.
pub const PURPOSE_OPEN_INDEX_KEY: &str = "open-index-key";
/// The table holding sealed service keys.
pub const KEYS_TABLE: &str = "keys";

/// What one role may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePolicy {
    /// Classes the role may have decrypted.
    pub classes: BTreeSet<String>,
    /// Purposes the role may declare.
    pub purposes: BTreeSet<String>,
    /// Distinct records per window, overriding the default.
    #[serde(default)]
    pub quota: Option<Quota>,
}

/// A limit of distinct records per sliding window, per identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Distinct records.
    pub distinct_records: usize,
    /// Window length in seconds.
    pub window_secs: u64,
}

/// The whole policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Always `ribat-policy/v1`.
    pub format: String,
    /// Per role.
    pub roles: BTreeMap<String, RolePolicy>,
    /// Default quota per identity.
    pub quota: Quota,
    /// How long touching a honey record quarantines an identity.
    pub honey_quarantine_secs: u64,
}

/// The format tag.
pub const POLICY_FORMAT: &str = "ribat-policy/v1";

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

impl Policy {
    /// The embedded demo's policy: counters see identity, supervisors and the pension run
    /// see salaries, partners verify identity at a low rate.
    pub fn embedded_default() -> Self {
        let role = |classes: &[&str], purposes: &[&str], quota: Option<(usize, u64)>| RolePolicy {
            classes: set(classes),
            purposes: set(purposes),
            quota: quota.map(|(distinct_records, window_secs)| Quota {
                distinct_records,
                window_secs,
            }),
        };
        let mut roles = BTreeMap::new();
        roles.insert(
            "clerk".into(),
            role(
                &["identity"],
                &["counter-service", "benefit-claim"],
                Some((60, 3600)),
            ),
        );
        roles.insert(
            "supervisor".into(),
            role(
                &["identity", "financial"],
                &["counter-service", "benefit-claim", "investigation"],
                Some((200, 3600)),
            ),
        );
        roles.insert(
            "pension-batch".into(),
            role(
                &["identity", "financial"],
                &["pension-run"],
                Some((3_000_000, 86_400)),
            ),
        );
        roles.insert(
            "partner".into(),
            role(&["identity"], &["partner-verification"], Some((100, 3600))),
        );
        roles.insert(
            "service".into(),
            role(&["identity"], &[PURPOSE_OPEN_INDEX_KEY], Some((10, 60))),
        );
        Self {
            format: POLICY_FORMAT.into(),
            roles,
            quota: Quota {
                distinct_records: 100,
                window_secs: 3600,
            },
            honey_quarantine_secs: 7 * 86_400,
        }
    }

    /// Parses and checks a policy file's text.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let p: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if p.format != POLICY_FORMAT {
            return Err(format!(
                "format is `{}`, expected `{POLICY_FORMAT}`",
                p.format
            ));
        }
        for (name, r) in &p.roles {
            if r.quota.is_some_and(|q| q.window_secs == 0) || p.quota.window_secs == 0 {
                return Err(format!(
                    "role `{name}`: a quota window must be at least one second"
                ));
            }
        }
        Ok(p)
    }

    /// The quota that applies to a role.
    pub fn quota_for(&self, role: &str) -> Quota {
        self.roles
            .get(role)
            .and_then(|r| r.quota)
            .unwrap_or(self.quota)
    }
}
