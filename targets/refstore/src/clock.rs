//! The node's clocks: a monotonic clock for timers and leases, and a wall clock that is the
//! host clock plus an offset the nemesis sets through `/admin/clock`. Clock faults change
//! only the offset, never the host clock.

use crate::types::Now;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The clocks of one node.
#[derive(Debug)]
pub struct Clock {
    origin: Instant,
    offset_ms: AtomicI64,
}

impl Clock {
    /// A clock whose wall time is shifted by `offset_ms`.
    pub fn new(offset_ms: i64) -> Self {
        Clock { origin: Instant::now(), offset_ms: AtomicI64::new(offset_ms) }
    }

    /// The current offset of the wall clock from the host clock, in milliseconds.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// Sets the wall clock's offset from the host clock.
    pub fn set_offset_ms(&self, offset_ms: i64) {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
    }

    /// Both clocks, read now.
    pub fn now(&self) -> Now {
        let host_us = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_micros() as i64,
            // A host clock before 1970 is reported as negative time rather than a panic.
            Err(e) => -(e.duration().as_micros() as i64),
        };
        Now {
            // Starting at 1 keeps 0 free to mean "never" in the cores.
            mono_ms: self.origin.elapsed().as_millis() as u64 + 1,
            wall_us: host_us.saturating_add(self.offset_ms().saturating_mul(1000)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_moves_only_the_wall_clock() {
        let clock = Clock::new(0);
        let before = clock.now();
        clock.set_offset_ms(-60_000);
        let after = clock.now();
        assert!(after.wall_us < before.wall_us - 59_000_000);
        assert!(after.mono_ms >= before.mono_ms);
        assert_eq!(clock.offset_ms(), -60_000);
    }
}
