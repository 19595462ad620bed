//! The rules file (`ribat-rules/v1`, JSON): every detector's thresholds, its response,
//! how long the response lasts, and its mode — `enforce`, `shadow` (alert only, to try a
//! rule on live traffic before it acts) or `off`.

use crate::response::Action;
use ribat_policy::Role;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The format string of a rules file.
pub const RULES_FORMAT: &str = "ribat-rules/v1";

/// What a rule does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Respond.
    #[default]
    Enforce,
    /// Alert only.
    Shadow,
    /// Do not run.
    Off,
}

/// The part every rule has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Common {
    /// Enforce, shadow or off.
    pub mode: Mode,
    /// Response.
    pub action: Action,
    /// How long the response lasts, seconds.
    pub duration_secs: u64,
}

macro_rules! rule {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct $name {
            /// Enforce, shadow or off.
            pub mode: Mode,
            /// Response.
            pub action: Action,
            /// How long the response lasts, seconds.
            pub duration_secs: u64,
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        impl $name {
            /// Mode, response and duration.
            pub fn common(&self) -> Common {
                Common { mode: self.mode, action: self.action, duration_secs: self.duration_secs }
            }
        }
    };
}

rule!(
    /// Too many distinct subjects in a few seconds for the role: a scraper, not a person.
    Velocity {
        /// Window, seconds.
        window_secs: u64,
        /// Distinct subjects allowed in the window, per role (`*` for the others).
        limits: BTreeMap<String, usize>,
    }
);

rule!(
    /// The identity keeps hitting its quota: it is pushing, not working.
    QuotaHammer {
        /// Quota refusals.
        count: usize,
        /// Within this many seconds.
        window_secs: u64,
    }
);

rule!(
    /// A whole role reads far more than it ever does: many credentials, each under quota.
    RoleSurge {
        /// Window, seconds.
        window_secs: u64,
        /// Distinct subjects per role in the window.
        limits: BTreeMap<String, usize>,
    }
);

rule!(
    /// An identity near its daily quota day after day: low and slow.
    Sustained {
        /// Share of the daily quota that counts as near (0–1).
        share: f64,
        /// Consecutive days.
        days: u32,
        /// Daily quota per role (filled from the policy when absent).
        daily_quota: BTreeMap<Role, usize>,
    }
);

rule!(
    /// A role's distinct subjects this hour against what it learned for this hour of the
    /// week.
    Baseline {
        /// Fires above `factor` × the learned mean…
        factor: f64,
        /// …and above this many subjects (a role's hour)…
        floor: usize,
        /// …or this many (one identity's hour).
        #[serde(default = "default_identity_floor")]
        identity_floor: usize,
        /// Hours of the same slot learned before it judges.
        warmup: u32,
    }
);

rule!(
    /// Too many distinct employers or cities in a day for the role.
    Breadth {
        /// Window, seconds.
        window_secs: u64,
        /// Distinct areas per role.
        limits: BTreeMap<String, usize>,
    }
);

rule!(
    /// Walking the number space: near-sequential numbers, or lookups that mostly miss.
    Enumeration {
        /// The last this many lookups are looked at.
        last: usize,
        /// Two numbers within this distance are near.
        gap: u64,
        /// This many steps in one direction, each at most `gap`, fire.
        near: usize,
        /// At least this many lookups…
        min_lookups: usize,
        /// …of which this share missed, fire.
        miss_share: f64,
    }
);

rule!(
    /// A honey record touched.
    Honey {}
);

rule!(
    /// A public figure read without a case reference.
    PublicFigure {
        /// Record ids (`p-` and 32 letters `a`–`p`, as `ribat import --public-figures`
        /// writes them to a node's `public-figures.txt`) watched besides that file's. In a
        /// mesh the rules travel through the log, so every gateway watches these.
        #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
        records: BTreeSet<String>,
    }
);

rule!(
    /// Counter roles reading outside office hours.
    OffHours {
        /// Roles that work office hours.
        roles: BTreeSet<String>,
        /// Working days, 1 = Monday … 7 = Sunday.
        days: BTreeSet<u8>,
        /// Start, minutes after local midnight.
        start_minute: u32,
        /// End, minutes after local midnight.
        end_minute: u32,
        /// Distinct subjects read off hours in a day before it fires.
        subjects: usize,
    }
);

rule!(
    /// An identity connecting from an address it never used.
    NewSource {
        /// Events from known addresses before an identity's addresses count as learned.
        learn_events: usize,
    }
);

rule!(
    /// Failed authentications from one certificate.
    AuthFailures {
        /// Failures.
        count: usize,
        /// Within this many seconds.
        window_secs: u64,
    }
);

rule!(
    /// A custodian answered a request the gateway never audited.
    Disagreement {
        /// How long an answer may wait for the gateway's audit entry, milliseconds.
        grace_ms: u64,
    }
);

rule!(
    /// A custodian's answer failed its proof: it is set aside for reads.
    ProofFailure {}
);

/// A rules file written before the rule existed gets its default.
fn default_proof_failure() -> ProofFailure {
    ProofFailure {
        mode: Mode::Enforce,
        action: Action::Quarantine,
        duration_secs: 600,
    }
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rules {
    /// `ribat-rules/v1`.
    pub format: String,
    /// Local time offset for office hours and the baseline (Morocco: +60).
    pub utc_offset_minutes: i32,
    /// Roles still served in essential-services mode.
    pub essential_roles: BTreeSet<String>,
    /// Purposes under which a role reads in bulk and in register order by design (the
    /// monthly pension run), per role: exempt from the velocity and enumeration rules.
    pub bulk_purposes: BTreeMap<String, BTreeSet<String>>,
    /// Distinct subjects in seconds.
    pub velocity: Velocity,
    /// Quota refusals in a row.
    pub quota_hammer: QuotaHammer,
    /// A role's volume.
    pub role_surge: RoleSurge,
    /// Near the quota for days.
    pub sustained: Sustained,
    /// Against the learned hour of week.
    pub baseline: Baseline,
    /// Employers or cities.
    pub breadth: Breadth,
    /// Near-sequential numbers and misses.
    pub enumeration: Enumeration,
    /// Honey records.
    pub honey: Honey,
    /// Public figures without a case.
    pub public_figure: PublicFigure,
    /// Office hours.
    pub off_hours: OffHours,
    /// New source address.
    pub new_source: NewSource,
    /// Authentication failures.
    pub auth_failures: AuthFailures,
    /// Custodian answers nobody audited.
    pub disagreement: Disagreement,
    /// Custodian answers whose proof failed.
    #[serde(default = "default_proof_failure")]
    pub proof_failure: ProofFailure,
    /// In a mesh: how long a node may stay on a retired build before it is isolated.
    #[serde(default)]
    pub patch_drift: PatchDrift,
}

/// Patch drift: a release two administrators retired (an advisory against it) is listed on
/// every node still running it, and those nodes are cut off after the grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PatchDrift {
    /// Seconds from the retirement to the isolation of nodes still on it.
    pub grace_secs: u64,
}

impl Default for PatchDrift {
    fn default() -> Self {
        // A week: time to roll a fixed build out, short enough for a known weakness.
        Self {
            grace_secs: 7 * DAY,
        }
    }
}

/// A person's record id as the importer derives it: `p-` and 32 letters `a`–`p`.
fn is_person_record_id(id: &str) -> bool {
    id.strip_prefix("p-")
        .is_some_and(|t| t.len() == 32 && t.bytes().all(|b| (b'a'..=b'p').contains(&b)))
}

fn per_role(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(r, n)| ((*r).to_owned(), *n)).collect()
}

const DAY: u64 = 86_400;

/// Subjects in one identity's hour below which the baseline never fires.
fn default_identity_floor() -> usize {
    60
}

impl Default for Rules {
    /// The embedded deployment's rules, tuned to its default policy.
    fn default() -> Self {
        let set = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<BTreeSet<_>>();
        Self {
            format: RULES_FORMAT.into(),
            utc_offset_minutes: 60,
            essential_roles: set(&[
                "clerk",
                "supervisor",
                "pension-batch",
                "employer",
                "service",
            ]),
            bulk_purposes: BTreeMap::from([("pension-batch".into(), set(&["pension-run"]))]),
            velocity: Velocity {
                mode: Mode::Enforce,
                action: Action::Quarantine,
                duration_secs: DAY,
                window_secs: 10,
                limits: per_role(&[
                    ("partner", 8),
                    ("employer", 10),
                    ("clerk", 10),
                    ("supervisor", 10),
                    ("*", 20),
                ]),
            },
            quota_hammer: QuotaHammer {
                mode: Mode::Enforce,
                action: Action::Quarantine,
                duration_secs: DAY,
                count: 3,
                window_secs: 60,
            },
            role_surge: RoleSurge {
                mode: Mode::Enforce,
                action: Action::Essential,
                duration_secs: 3600,
                window_secs: 600,
                limits: per_role(&[("partner", 300), ("employer", 3_000)]),
            },
            sustained: Sustained {
                mode: Mode::Enforce,
                action: Action::StepUp,
                // A week: a day would let low-and-slow resume the next afternoon.
                duration_secs: 7 * DAY,
                share: 0.8,
                days: 2,
                daily_quota: BTreeMap::new(),
            },
            baseline: Baseline {
                mode: Mode::Shadow,
                action: Action::Alert,
                duration_secs: 3600,
                factor: 4.0,
                floor: 200,
                identity_floor: default_identity_floor(),
                warmup: 1,
            },
            breadth: Breadth {
                mode: Mode::Enforce,
                action: Action::StepUp,
                duration_secs: DAY,
                window_secs: DAY,
                // Counters serve whoever walks in; partners' customers work anywhere; an
                // employer checks its own staff.
                limits: per_role(&[("partner", 150), ("employer", 3)]),
            },
            enumeration: Enumeration {
                mode: Mode::Enforce,
                action: Action::Quarantine,
                duration_secs: DAY,
                last: 12,
                gap: 30,
                near: 6,
                min_lookups: 8,
                miss_share: 0.5,
            },
            honey: Honey {
                mode: Mode::Enforce,
                action: Action::Quarantine,
                duration_secs: 7 * DAY,
            },
            public_figure: PublicFigure {
                mode: Mode::Enforce,
                action: Action::StepUp,
                duration_secs: DAY,
                records: BTreeSet::new(),
            },
            off_hours: OffHours {
                mode: Mode::Enforce,
                action: Action::Alert,
                duration_secs: DAY,
                roles: set(&["clerk"]),
                days: [1, 2, 3, 4, 5].into_iter().collect(),
                start_minute: 7 * 60 + 30,
                end_minute: 18 * 60 + 30,
                subjects: 1,
            },
            new_source: NewSource {
                mode: Mode::Shadow,
                action: Action::Alert,
                duration_secs: DAY,
                learn_events: 20,
            },
            auth_failures: AuthFailures {
                mode: Mode::Enforce,
                action: Action::Quarantine,
                duration_secs: 3600,
                count: 5,
                window_secs: 60,
            },
            disagreement: Disagreement {
                mode: Mode::Enforce,
                action: Action::Quarantine,
                duration_secs: DAY,
                grace_ms: 5_000,
            },
            proof_failure: default_proof_failure(),
            patch_drift: PatchDrift::default(),
        }
    }
}

impl Rules {
    /// Whether `role` reading under `purpose` is a declared bulk read.
    pub fn is_bulk(&self, role: &str, purpose: &str) -> bool {
        self.bulk_purposes
            .get(role)
            .is_some_and(|p| p.contains(purpose))
    }

    /// Parses and checks a rules file's text; says which setting is wrong.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let r: Self = serde_json::from_str(text).map_err(|e| format!("rules file: {e}"))?;
        r.check()?;
        Ok(r)
    }

    /// The checks a parsed file must pass.
    pub fn check(&self) -> Result<(), String> {
        if self.format != RULES_FORMAT {
            return Err(format!(
                "rules file: format `{}` is not `{RULES_FORMAT}`",
                self.format
            ));
        }
        let positive = [
            ("velocity.window-secs", self.velocity.window_secs),
            ("quota-hammer.window-secs", self.quota_hammer.window_secs),
            ("role-surge.window-secs", self.role_surge.window_secs),
            ("breadth.window-secs", self.breadth.window_secs),
            ("auth-failures.window-secs", self.auth_failures.window_secs),
            ("enumeration.last", self.enumeration.last as u64),
            ("quota-hammer.count", self.quota_hammer.count as u64),
            ("auth-failures.count", self.auth_failures.count as u64),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("rules file: {name} must be at least 1"));
            }
        }
        let shares = [
            ("sustained.share", self.sustained.share),
            ("enumeration.miss-share", self.enumeration.miss_share),
        ];
        for (name, v) in shares {
            if !(v > 0.0 && v <= 1.0) {
                return Err(format!("rules file: {name} must be in (0, 1], not {v}"));
            }
        }
        if let Some(bad) = self
            .public_figure
            .records
            .iter()
            .find(|id| !is_person_record_id(id))
        {
            return Err(format!(
                "rules file: public-figure.records lists `{bad}`, which is not a person's record id (`p-` and 32 letters a–p, as in public-figures.txt)"
            ));
        }
        if self.enumeration.near > self.enumeration.last {
            return Err("rules file: enumeration.near cannot exceed enumeration.last".into());
        }
        if self.off_hours.days.iter().any(|d| !(1..=7).contains(d)) {
            return Err("rules file: off-hours.days are 1 (Monday) to 7 (Sunday)".into());
        }
        if self.off_hours.start_minute >= self.off_hours.end_minute
            || self.off_hours.end_minute > 24 * 60
        {
            return Err(
                "rules file: off-hours needs start-minute < end-minute ≤ 1440 (minutes after local midnight)".into(),
            );
        }
        if !(-14 * 60..=14 * 60).contains(&self.utc_offset_minutes) {
            return Err("rules file: utc-offset-minutes must be within ±14 h".into());
        }
        Ok(())
    }

    /// Pretty JSON, as written by `ribat keys init`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Fills each role's daily quota from a policy (its largest window of a day or more).
    pub fn with_policy(mut self, policy: &ribat_policy::policy::Policy) -> Self {
        for (name, role) in &policy.roles {
            let daily = role
                .quota
                .iter()
                .chain(role.limits.iter())
                .filter(|q| q.window_secs >= DAY)
                .map(|q| q.distinct_records)
                .min();
            if let Some(d) = daily {
                self.sustained.daily_quota.entry(name.clone()).or_insert(d);
            }
        }
        self
    }
}

/// The limit for `role` in a per-role table, or the `*` entry.
pub fn limit_for(limits: &BTreeMap<String, usize>, role: &str) -> Option<usize> {
    limits.get(role).or_else(|| limits.get("*")).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_rules_round_trip_and_pass_their_checks() {
        let r = Rules::default();
        let back = Rules::from_json(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn a_wrong_setting_is_named() {
        let mut v: serde_json::Value = serde_json::from_str(&Rules::default().to_json()).unwrap();
        v["velocity"]["window-secs"] = 0.into();
        let e = Rules::from_json(&v.to_string()).unwrap_err();
        assert!(e.contains("velocity.window-secs"), "{e}");

        let mut v: serde_json::Value = serde_json::from_str(&Rules::default().to_json()).unwrap();
        v["honey"]["mode"] = "maybe".into();
        let e = Rules::from_json(&v.to_string()).unwrap_err();
        assert!(e.contains("maybe"), "{e}");

        let mut v: serde_json::Value = serde_json::from_str(&Rules::default().to_json()).unwrap();
        v["velocity"]["limit"] = 3.into();
        let e = Rules::from_json(&v.to_string()).unwrap_err();
        assert!(e.contains("limit"), "{e}");

        let e = Rules::from_json("{\"format\": \"ribat-rules/v0\"}").unwrap_err();
        assert!(e.contains("rules file"), "{e}");
    }

    #[test]
    fn public_figures_listed_in_the_rules_are_record_ids_and_absent_when_none() {
        // The default file has no list (its digest is the one older nodes attest).
        assert!(!Rules::default().to_json().contains("records"));
        let mut v: serde_json::Value = serde_json::from_str(&Rules::default().to_json()).unwrap();
        let id = format!("p-{}", "p".repeat(32));
        v["public-figure"]["records"] = serde_json::json!([id]);
        let r = Rules::from_json(&v.to_string()).unwrap();
        assert!(r.public_figure.records.contains(&id));
        for bad in [
            "123456789",
            "p-abc",
            &format!("p-{}", "q".repeat(32)),
            &format!("e-{}", "a".repeat(32)),
        ] {
            v["public-figure"]["records"] = serde_json::json!([bad]);
            let e = Rules::from_json(&v.to_string()).unwrap_err();
            assert!(
                e.contains("public-figure.records") && e.contains(bad),
                "{e}"
            );
        }
    }

    #[test]
    fn each_bound_of_a_rules_file_is_checked_at_its_edge() {
        let ok = |f: &dyn Fn(&mut Rules)| {
            let mut r = Rules::default();
            f(&mut r);
            r.check()
        };
        // Shares are in (0, 1].
        assert!(ok(&|r| r.sustained.share = 1.0).is_ok());
        assert!(ok(&|r| r.sustained.share = 0.5).is_ok());
        for bad in [0.0, 1.5, -0.5] {
            let e = ok(&|r| r.sustained.share = bad).unwrap_err();
            assert!(e.contains("sustained.share"), "{bad}: {e}");
        }
        // near ≤ last.
        assert!(ok(&|r| r.enumeration.near = r.enumeration.last).is_ok());
        let e = ok(&|r| r.enumeration.near = r.enumeration.last + 1).unwrap_err();
        assert!(e.contains("enumeration.near"), "{e}");
        // start < end ≤ 1440.
        assert!(ok(&|r| r.off_hours.end_minute = 24 * 60).is_ok());
        let e = ok(&|r| r.off_hours.end_minute = 24 * 60 + 1).unwrap_err();
        assert!(e.contains("off-hours"), "{e}");
        let e = ok(&|r| r.off_hours.start_minute = r.off_hours.end_minute).unwrap_err();
        assert!(e.contains("off-hours"), "{e}");
        // ±14 h.
        for edge in [14 * 60, -14 * 60] {
            assert!(ok(&|r| r.utc_offset_minutes = edge).is_ok(), "{edge}");
        }
        for bad in [14 * 60 + 1, -14 * 60 - 1] {
            let e = ok(&|r| r.utc_offset_minutes = bad).unwrap_err();
            assert!(e.contains("utc-offset-minutes"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_rules_file_without_the_baselines_identity_floor_gets_sixty() {
        let mut v: serde_json::Value = serde_json::from_str(&Rules::default().to_json()).unwrap();
        v["baseline"]
            .as_object_mut()
            .unwrap()
            .remove("identity-floor")
            .unwrap();
        let r = Rules::from_json(&v.to_string()).unwrap();
        assert_eq!(r.baseline.identity_floor, 60);
    }

    #[test]
    fn daily_quotas_come_from_the_policy() {
        let r = Rules::default().with_policy(&ribat_policy::policy::Policy::embedded_default());
        assert_eq!(r.sustained.daily_quota.get("clerk"), Some(&200));
        assert_eq!(r.sustained.daily_quota.get("partner"), Some(&500));
    }
}
