//! Which role may read which classes for which purposes, and how much.
//!
//! Every custodian loads its own copy and enforces it itself (I3). JSON, format
//! `ribat-policy/v1`; [`Policy::embedded_default`] is the policy of the embedded demo.

use crate::vocab::{Class, Purpose, Role};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The record of table `keys` holding the sealed blind-index key.
pub const INDEX_KEY_RECORD: &str = "blind-index";
/// The record of table `keys` holding the sealed leak-digest key `k_leak`.
pub const LEAK_KEY_RECORD: &str = "leak-digest";

/// What one role may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePolicy {
    /// Classes the role may have decrypted.
    pub classes: BTreeSet<Class>,
    /// Purposes the role may declare.
    pub purposes: BTreeSet<Purpose>,
    /// Distinct records per window, overriding the default.
    #[serde(default)]
    pub quota: Option<Quota>,
    /// Further windows per identity (e.g. per minute and per day beside the hourly quota).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limits: Vec<Quota>,
    /// Windows counted across every identity of the role together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role_limits: Vec<Quota>,
    /// Fields the gateway may release (all fields of the allowed classes when absent).
    /// Custodians see classes, not fields; this list is the gateway's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeSet<String>>,
    /// Fields the gateway releases only masked, and how.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub masks: BTreeMap<String, Mask>,
}

/// How a released field is masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mask {
    /// The first two and last two characters kept, the rest `*` (`BE****56`).
    Partial,
    /// A date reduced to its year (`1984-**-**`).
    Year,
}

impl Mask {
    /// Applies the mask to a value.
    pub fn apply(self, value: &str) -> String {
        let chars: Vec<char> = value.chars().collect();
        match self {
            Self::Partial if chars.len() <= 4 => "*".repeat(chars.len()),
            Self::Partial => {
                let mut s: String = chars[..2].iter().collect();
                s.push_str(&"*".repeat(chars.len() - 4));
                s.extend(&chars[chars.len() - 2..]);
                s
            }
            Self::Year => {
                let year: String = chars.iter().take(4).collect();
                format!("{year}-**-**")
            }
        }
    }
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
    pub roles: BTreeMap<Role, RolePolicy>,
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

/// Names written in this file; the default policy's test parses them back.
fn names<T: Ord>(items: &[&'static str], known: fn(&'static str) -> T) -> BTreeSet<T> {
    items.iter().map(|s| known(s)).collect()
}

impl Policy {
    /// The embedded demo's policy: counters see identity, supervisors and the pension run
    /// see salaries, partners verify identity at a low rate.
    pub fn embedded_default() -> Self {
        let role = |classes: &[&'static str],
                    purposes: &[&'static str],
                    quota: Option<(usize, u64)>| RolePolicy {
            classes: names(classes, Class::constant),
            purposes: names(purposes, Purpose::constant),
            quota: quota.map(|(distinct_records, window_secs)| Quota {
                distinct_records,
                window_secs,
            }),
            limits: Vec::new(),
            role_limits: Vec::new(),
            fields: None,
            masks: BTreeMap::new(),
        };
        let per = |distinct_records: usize, window_secs: u64| Quota {
            distinct_records,
            window_secs,
        };
        let mut roles = BTreeMap::new();
        let mut clerk = role(
            &["identity"],
            &["counter-service", "benefit-claim"],
            Some((60, 3600)),
        );
        clerk.limits = vec![per(10, 60), per(200, 86_400)];
        clerk.role_limits = vec![per(50_000, 3600)];
        roles.insert(Role::constant("clerk"), clerk);
        roles.insert(
            Role::constant("supervisor"),
            role(
                &["identity", "financial"],
                &["counter-service", "benefit-claim", "investigation"],
                Some((200, 3600)),
            ),
        );
        roles.insert(
            Role::constant("pension-batch"),
            role(
                &["identity", "financial"],
                &["pension-run"],
                Some((3_000_000, 86_400)),
            ),
        );
        let mut partner = role(&["identity"], &["partner-verification"], Some((100, 3600)));
        partner.limits = vec![per(20, 60), per(500, 86_400)];
        partner.role_limits = vec![per(2_000, 3600)];
        partner.fields = Some(set(&[
            "cnss",
            "cin",
            "given",
            "surname",
            "birth_date",
            "employer",
        ]));
        partner.masks = BTreeMap::from([
            ("cin".into(), Mask::Partial),
            ("birth_date".into(), Mask::Year),
        ]);
        roles.insert(Role::constant("partner"), partner);
        let mut employer = role(
            &["identity"],
            &["employee-check", "declaration-upload"],
            Some((300, 3600)),
        );
        employer.fields = Some(set(&["cnss", "cin", "given", "surname", "birth_date"]));
        employer.masks = BTreeMap::from([
            ("cin".into(), Mask::Partial),
            ("birth_date".into(), Mask::Year),
        ]);
        roles.insert(Role::constant("employer"), employer);
        roles.insert(
            Role::constant("auditor"),
            role(&[], &["audit"], Some((0, 3600))),
        );
        // Bulk exports to partners, each approved by two administrators beforehand; the
        // identity is `export/RECIPIENT`, so the audit log names the recipient.
        roles.insert(
            Role::constant("export"),
            role(
                &["identity"],
                &["partner-export"],
                Some((3_000_000, 86_400)),
            ),
        );
        // The security team: opens export manifests when a leak carries canaries, and
        // writes the data-protection authority's notification list (every affected person).
        roles.insert(
            Role::constant("security"),
            role(
                &["identity"],
                &["leak-attribution", "breach-notification"],
                Some((3_000_000, 86_400)),
            ),
        );
        // The fund's intake system sends register and declaration files (`POST
        // /v1/intake`); it writes with the public keys and reads nothing.
        roles.insert(
            Role::constant("intake"),
            role(&[], &["register-intake"], Some((0, 3600))),
        );
        // The re-sealing job of a key rotation: every table and class, each record once
        // (the custodians refuse a record already under the new epoch).
        roles.insert(
            Role::constant("rotation"),
            role(
                &["identity", "financial"],
                &["key-rotation"],
                Some((100_000_000, 86_400)),
            ),
        );
        roles.insert(
            Role::constant("service"),
            role(
                &["identity", "financial"],
                &["open-index-key", "open-leak-key"],
                Some((10, 60)),
            ),
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
            let windows = r.quota.iter().chain(&r.limits).chain(&r.role_limits);
            if windows.clone().any(|q| q.window_secs == 0) || p.quota.window_secs == 0 {
                return Err(format!(
                    "role `{name}`: a quota window must be at least one second"
                ));
            }
        }
        Ok(p)
    }

    /// Every per-identity window that applies to a role: its quota (or the default) and
    /// its further limits.
    pub fn identity_windows(&self, role: &str) -> Vec<Quota> {
        let mut v = vec![self.quota_for(role)];
        if let Some(r) = self.roles.get(role) {
            v.extend(r.limits.iter().copied());
        }
        v
    }

    /// The windows counted across a whole role.
    pub fn role_windows(&self, role: &str) -> Vec<Quota> {
        self.roles
            .get(role)
            .map(|r| r.role_limits.clone())
            .unwrap_or_default()
    }

    /// The quota that applies to a role.
    pub fn quota_for(&self, role: &str) -> Quota {
        self.roles
            .get(role)
            .and_then(|r| r.quota)
            .unwrap_or(self.quota)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_reads_back_from_its_own_json_every_name_checked() {
        let p = Policy::embedded_default();
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(Policy::from_json(&text), Ok(p));
    }

    #[test]
    fn a_policy_naming_a_malformed_role_or_purpose_is_refused_with_the_name() {
        let mut v = serde_json::to_value(Policy::embedded_default()).unwrap();
        v["roles"]["Clerk Desk"] = v["roles"]["clerk"].clone();
        let e = Policy::from_json(&v.to_string()).unwrap_err();
        assert!(e.contains("role name `Clerk Desk`"), "{e}");
        let mut v = serde_json::to_value(Policy::embedded_default()).unwrap();
        v["roles"]["clerk"]["purposes"] = serde_json::json!(["counter service"]);
        let e = Policy::from_json(&v.to_string()).unwrap_err();
        assert!(e.contains("purpose name `counter service`"), "{e}");
    }
}
