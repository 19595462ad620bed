//! Time as a value, so that quotas and quarantines are tested without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};

/// Seconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Now, seconds.
    fn now(&self) -> u64;
    /// Now, milliseconds (detectors and decisions time to the millisecond).
    fn now_ms(&self) -> u64 {
        self.now().saturating_mul(1000)
    }
}

/// The node's wall clock: the system's, or the lab's it follows (`ribat_clock`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        ribat_clock::now_secs()
    }
    fn now_ms(&self) -> u64 {
        ribat_clock::now_ms()
    }
}

/// A clock that moves only when told to (tests, simulations).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock at `t`.
    pub fn at(t: u64) -> Self {
        Self(AtomicU64::new(t))
    }
    /// Moves forward by `secs`.
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Simulated time: it runs at the speed of real time and can be moved forward at once, so
/// that a simulated week skips its idle nights while a burst is timed as it really runs.
#[derive(Debug)]
pub struct SimClock {
    /// Simulated ms at `start`, plus every jump.
    base_ms: AtomicU64,
    start: std::time::Instant,
}

impl SimClock {
    /// A clock reading `start_ms` now.
    pub fn at_ms(start_ms: u64) -> Self {
        Self {
            base_ms: AtomicU64::new(start_ms),
            start: std::time::Instant::now(),
        }
    }

    /// Moves forward to `t_ms` if that is later than now; never backwards.
    pub fn advance_to_ms(&self, t_ms: u64) {
        let now = self.now_ms();
        if t_ms > now {
            self.base_ms.fetch_add(t_ms - now, Ordering::SeqCst);
        }
    }
}

impl Clock for SimClock {
    fn now(&self) -> u64 {
        self.now_ms() / 1000
    }
    fn now_ms(&self) -> u64 {
        let real = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.base_ms.load(Ordering::SeqCst).saturating_add(real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sim_clock_jumps_forward_and_never_back() {
        let c = SimClock::at_ms(1_000_000);
        assert!(c.now_ms() >= 1_000_000);
        c.advance_to_ms(5_000_000);
        let t = c.now_ms();
        assert!((5_000_000..5_001_000).contains(&t), "{t}");
        c.advance_to_ms(2_000_000);
        assert!(c.now_ms() >= t, "never backwards");
        assert_eq!(c.now(), c.now_ms() / 1000);
    }
}
