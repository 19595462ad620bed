//! What the console's chart shows: reads and refusals per role, minute by minute over the
//! last hour, and the decisions taken. Kept in memory by the watch (a restart starts it
//! afresh; the audit log and the decision log are the record, this is a view).

use ribat_detect::event::{Event, Kind};
use std::collections::{BTreeMap, VecDeque};

/// Minutes kept.
pub const MINUTES: u64 = 60;

/// Reads and refusals of one role in one minute.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Records read (one per subject).
    pub reads: u32,
    /// Requests refused.
    pub refused: u32,
}

/// One minute.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Minute {
    /// Minutes since the Unix epoch.
    pub at: u64,
    /// By role.
    pub roles: BTreeMap<String, Counts>,
    /// Decisions taken in it.
    pub decisions: u32,
}

/// The last hour.
#[derive(Debug, Default)]
pub struct Activity {
    minutes: VecDeque<Minute>,
}

impl Activity {
    fn minute(&mut self, time_ms: u64) -> Option<&mut Minute> {
        let at = time_ms / 60_000;
        let newest = self.minutes.back().map_or(0, |m| m.at);
        if at + MINUTES <= newest {
            return None; // older than what is kept
        }
        if at > newest {
            self.minutes.push_back(Minute {
                at,
                ..Minute::default()
            });
            while self.minutes.front().is_some_and(|m| m.at + MINUTES <= at) {
                self.minutes.pop_front();
            }
        }
        // Late events (a slow request) land in their own minute when it is still kept.
        let i = self.minutes.iter().position(|m| m.at >= at)?;
        if self.minutes[i].at != at {
            self.minutes.insert(
                i,
                Minute {
                    at,
                    ..Minute::default()
                },
            );
        }
        self.minutes.get_mut(i)
    }

    /// Counts a read or a refusal; other events change nothing.
    pub fn note(&mut self, ev: &Event) {
        let (role, read) = match &ev.kind {
            Kind::Access(a) if a.subject.is_some() => (&a.actor.role, true),
            Kind::Denied(d) => (&d.actor.role, false),
            _ => return,
        };
        if let Some(m) = self.minute(ev.time_ms) {
            let c = m.roles.entry(role.clone()).or_default();
            if read {
                c.reads += 1;
            } else {
                c.refused += 1;
            }
        }
    }

    /// Counts a request of `role` refused at `time_ms` by a decision in force (not an
    /// event for the detectors: their own decisions at work are no new evidence).
    pub fn held(&mut self, role: &str, time_ms: u64) {
        if let Some(m) = self.minute(time_ms) {
            m.roles.entry(role.to_owned()).or_default().refused += 1;
        }
    }

    /// Counts a decision taken at `time_ms`.
    pub fn decided(&mut self, time_ms: u64) {
        if let Some(m) = self.minute(time_ms) {
            m.decisions += 1;
        }
    }

    /// The minutes of the hour ending at `now_ms`, oldest first, every one present
    /// (empty where nothing happened).
    pub fn last_hour(&self, now_ms: u64) -> Vec<Minute> {
        let now = now_ms / 60_000;
        (now + 1 - MINUTES..=now)
            .map(|at| {
                self.minutes
                    .iter()
                    .find(|m| m.at == at)
                    .cloned()
                    .unwrap_or(Minute {
                        at,
                        ..Minute::default()
                    })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ribat_detect::event::{Access, Actor, Denied};
    use ribat_policy::{Purpose, Table};

    fn actor(role: &str) -> Actor {
        Actor {
            identity: format!("{role}.1"),
            role: role.into(),
            institution: "i".into(),
            serial: "s".into(),
            addr: "10.0.0.1".into(),
        }
    }

    fn read(t: u64, role: &str, found: bool) -> Event {
        Event {
            time_ms: t,
            component: "gw".into(),
            kind: Kind::Access(Access {
                actor: actor(role),
                purpose: "counter-service".parse::<Purpose>().unwrap(),
                route: "/v1/persons/{cnss}".into(),
                table: Table::Persons,
                subject: found.then(|| "p-1".to_owned()),
                lookup: None,
                case_ref: None,
                public_figure: false,
                area: None,
            }),
        }
    }

    fn refused(t: u64, role: &str) -> Event {
        Event {
            time_ms: t,
            component: "gw".into(),
            kind: Kind::Denied(Denied {
                actor: actor(role),
                purpose: None,
                route: "/v1/persons/{cnss}".into(),
                reason: "quarantined".to_owned().into(),
            }),
        }
    }

    #[test]
    fn reads_and_refusals_are_counted_by_role_and_minute_over_the_last_hour_only() {
        let mut a = Activity::default();
        let t0 = 1_000 * 60_000;
        a.note(&read(t0, "clerk", true));
        a.note(&read(t0 + 59_999, "clerk", true));
        a.note(&read(t0 + 1, "clerk", false)); // found nothing: not a read
        a.note(&refused(t0 + 60_000, "partner"));
        a.decided(t0 + 60_001);
        a.note(&read(t0 + 5 * 60_000, "partner", true));
        // A late event of a minute still kept lands in it.
        a.note(&refused(t0 + 2 * 60_000, "clerk"));
        a.held("clerk", t0 + 2 * 60_000 + 5);
        let hour = a.last_hour(t0 + 5 * 60_000);
        assert_eq!(hour.len(), MINUTES as usize);
        let at = |m: u64| hour.iter().find(|x| x.at == 1_000 + m).unwrap();
        assert_eq!(
            at(0).roles["clerk"],
            Counts {
                reads: 2,
                refused: 0
            }
        );
        assert_eq!(
            at(1).roles["partner"],
            Counts {
                reads: 0,
                refused: 1
            }
        );
        assert_eq!(at(1).decisions, 1);
        assert_eq!(
            at(2).roles["clerk"],
            Counts {
                reads: 0,
                refused: 2
            }
        );
        assert!(at(3).roles.is_empty());
        assert_eq!(at(5).roles["partner"].reads, 1);
        assert_eq!(hour.last().unwrap().at, 1_005);
        // An hour later the first minutes are gone, and an event that old is not kept.
        a.note(&read(t0 + 61 * 60_000, "clerk", true));
        a.note(&read(t0, "clerk", true));
        let later = a.last_hour(t0 + 61 * 60_000);
        assert!(later.iter().all(|m| m.at > 1_001));
        let reads: u32 = later
            .iter()
            .flat_map(|m| m.roles.values())
            .map(|c| c.reads)
            .sum();
        assert_eq!(reads, 2, "minute 1005's and 1061's; the old one not kept");
        assert!(later.iter().all(|m| m.decisions == 0));
    }
}
