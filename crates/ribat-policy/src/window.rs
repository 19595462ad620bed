//! Counting distinct things over a sliding window, in time proportional to the request,
//! not to the window's history: the custodian counts records, the gateway subjects.

use std::collections::{HashMap, VecDeque};

/// Distinct keys seen in the last `secs` seconds.
#[derive(Debug, Clone, Default)]
pub struct DistinctWindow {
    secs: u64,
    /// Key → time it was last seen.
    seen: HashMap<String, u64>,
    /// Every sighting, oldest first; a sighting is stale once a later one of its key exists.
    order: VecDeque<(u64, String)>,
}

impl DistinctWindow {
    /// A window of `secs` seconds.
    pub fn new(secs: u64) -> Self {
        Self {
            secs,
            ..Self::default()
        }
    }

    /// Window length.
    pub fn secs(&self) -> u64 {
        self.secs
    }

    fn expire(&mut self, now: u64) {
        while let Some((t, _)) = self.order.front() {
            // A sighting counts for `secs` seconds: [t, t + secs).
            if now.saturating_sub(*t) < self.secs {
                break;
            }
            if let Some((t, k)) = self.order.pop_front()
                && self.seen.get(&k) == Some(&t)
            {
                self.seen.remove(&k);
            }
        }
    }

    /// How many distinct keys the window would hold at `now` with `keys` added.
    pub fn would_be<'a>(&mut self, keys: impl IntoIterator<Item = &'a str>, now: u64) -> usize {
        self.expire(now);
        let mut fresh: Vec<&str> = keys
            .into_iter()
            .filter(|k| !self.seen.contains_key(*k))
            .collect();
        fresh.sort_unstable();
        fresh.dedup();
        self.seen.len() + fresh.len()
    }

    /// Records `keys` as seen at `now`.
    pub fn add<'a>(&mut self, keys: impl IntoIterator<Item = &'a str>, now: u64) {
        self.expire(now);
        for k in keys {
            self.seen.insert(k.to_owned(), now);
            self.order.push_back((now, k.to_owned()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_distinct_keys_and_forgets_them_after_the_window() {
        let mut w = DistinctWindow::new(60);
        assert_eq!(w.would_be(["a", "b", "a"], 0), 2);
        w.add(["a", "b"], 0);
        assert_eq!(w.would_be(["a"], 10), 2, "a is already counted");
        w.add(["a"], 30);
        assert_eq!(w.would_be(["c"], 59), 3);
        // At 60 the sighting of b (t=0) leaves; a was seen again at 30 and stays.
        assert_eq!(w.would_be([], 60), 1);
        assert_eq!(w.would_be([], 90), 0);
    }
}

/// Which count a request would overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The identity's own.
    Identity,
    /// The whole role's.
    Role,
}

/// A window a request would overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    /// Whose count.
    pub scope: Scope,
    /// The quota.
    pub quota: crate::policy::Quota,
    /// Distinct keys the window would hold.
    pub would_be: usize,
}

type Windows = std::collections::HashMap<String, Vec<(crate::policy::Quota, DistinctWindow)>>;

/// Every quota window of a policy, per identity and per role: what the custodian counts
/// in records and the gateway in subjects.
#[derive(Debug, Clone, Default)]
pub struct QuotaBook {
    by_identity: Windows,
    by_role: Windows,
}

impl QuotaBook {
    fn both<'a>(
        &'a mut self,
        policy: &crate::policy::Policy,
        identity: &str,
        role: &str,
    ) -> impl Iterator<Item = (Scope, &'a mut (crate::policy::Quota, DistinctWindow))> {
        let open = |quotas: Vec<crate::policy::Quota>| {
            quotas
                .into_iter()
                .map(|q| (q, DistinctWindow::new(q.window_secs)))
                .collect::<Vec<_>>()
        };
        let mine = self
            .by_identity
            .entry(identity.to_owned())
            .or_insert_with(|| open(policy.identity_windows(role)));
        let theirs = self
            .by_role
            .entry(role.to_owned())
            .or_insert_with(|| open(policy.role_windows(role)));
        mine.iter_mut()
            .map(|w| (Scope::Identity, w))
            .chain(theirs.iter_mut().map(|w| (Scope::Role, w)))
    }

    /// The first window `keys` would overflow at `now`, if any.
    pub fn check(
        &mut self,
        policy: &crate::policy::Policy,
        identity: &str,
        role: &str,
        keys: &[&str],
        now: u64,
    ) -> Result<(), Overflow> {
        for (scope, (quota, w)) in self.both(policy, identity, role) {
            let would_be = w.would_be(keys.iter().copied(), now);
            if would_be > quota.distinct_records {
                return Err(Overflow {
                    scope,
                    quota: *quota,
                    would_be,
                });
            }
        }
        Ok(())
    }

    /// Counts `keys` in every window of the identity and of its role.
    pub fn add(
        &mut self,
        policy: &crate::policy::Policy,
        identity: &str,
        role: &str,
        keys: &[&str],
        now: u64,
    ) {
        for (_, (_, w)) in self.both(policy, identity, role) {
            w.add(keys.iter().copied(), now);
        }
    }

    /// The distinct keys an identity's first window holds at `now` (for tests and reports).
    pub fn held(
        &mut self,
        policy: &crate::policy::Policy,
        identity: &str,
        role: &str,
        now: u64,
    ) -> usize {
        self.both(policy, identity, role)
            .next()
            .map_or(0, |(_, (_, w))| w.would_be([], now))
    }
}
