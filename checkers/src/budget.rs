//! Limits on a check: the [`Budget`] a user sets (`--time-limit`,
//! `--memory-limit`) and the [`Meter`] a checker polls while it works.
//!
//! Every checker takes a budget and polls a meter in its long loops; when a
//! limit runs out it stops and answers `unknown` with the meter's reason,
//! never `valid`. Memory is measured two ways, and a meter trips on either:
//! what a checker counts of its own structures (the linearizability search
//! counts its cache), and how much the process's heap grew since the check
//! began, where the program installed a heap meter ([`set_heap_meter`]).
//! The library does no I/O, so it cannot measure the process by itself:
//! `faultline` installs the harness's resident-set meter at start-up
//! (`harness::memory::install`); a library user may install their own.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Limits on a checker's work. When one runs out the answer is `Unknown`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Budget {
    /// Wall-clock time allowed.
    pub time: Option<Duration>,
    /// Memory allowed, in bytes: what the checker counts of its own
    /// structures, or the heap's growth since the check began, whichever
    /// is larger (see the module documentation).
    pub memory: Option<usize>,
}

impl Budget {
    /// Starts the clock: a meter to poll while checking.
    pub fn start(&self) -> Meter {
        let now = Instant::now();
        Meter {
            deadline: self.time.map(|t| now + t),
            time: self.time,
            memory: self.memory,
            heap_at_start: heap_in_use(),
            counted: AtomicUsize::new(0),
            ticks: AtomicU32::new(0),
            exhausted: OnceLock::new(),
        }
    }
}

/// The process-wide heap meter, when the program installed one.
static HEAP_METER: OnceLock<fn() -> usize> = OnceLock::new();

/// Installs the function that says how many bytes the process's heap holds
/// now (its resident set, say). Only the first call counts.
pub fn set_heap_meter(meter: fn() -> usize) {
    let _ = HEAP_METER.set(meter);
}

/// How long a reading of the heap meter stays good. A meter may cost
/// microseconds (the harness's reads `/proc`), and searches poll their
/// budget many thousand times a second; memory does not grow by much in a
/// few milliseconds.
const HEAP_READING_TTL: Duration = Duration::from_millis(5);

/// The last reading: nanoseconds after [`epoch`] it was taken, and bytes.
static HEAP_READ_AT: AtomicU64 = AtomicU64::new(u64::MAX);
static HEAP_READING: AtomicUsize = AtomicUsize::new(0);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Bytes the process's heap holds now, if a heap meter is installed; a
/// reading at most a few milliseconds old (races between threads only
/// cost an extra reading).
pub fn heap_in_use() -> Option<usize> {
    let meter = HEAP_METER.get()?;
    let now = epoch().elapsed().as_nanos() as u64;
    let at = HEAP_READ_AT.load(Ordering::Relaxed);
    if at != u64::MAX && now.saturating_sub(at) < HEAP_READING_TTL.as_nanos() as u64 {
        return Some(HEAP_READING.load(Ordering::Relaxed));
    }
    let bytes = meter();
    HEAP_READING.store(bytes, Ordering::Relaxed);
    HEAP_READ_AT.store(now, Ordering::Relaxed);
    Some(bytes)
}

/// A budget being spent. Shared by reference between the threads of one
/// check (it is `Sync`); once a limit has run out it stays out, and every
/// poll returns the same reason.
#[derive(Debug)]
pub struct Meter {
    deadline: Option<Instant>,
    time: Option<Duration>,
    memory: Option<usize>,
    heap_at_start: Option<usize>,
    /// Bytes the checker counts of its own structures ([`Meter::count`]).
    counted: AtomicUsize,
    /// Polls since the last real look at the clock ([`Meter::tick`]).
    ticks: AtomicU32,
    exhausted: OnceLock<String>,
}

/// How many [`Meter::tick`]s pass between two real looks at the clock and
/// the heap: often enough to stop within microseconds of a limit, rarely
/// enough to cost nothing in a loop over a million operations.
const TICKS_PER_LOOK: u32 = 1024;

impl Meter {
    /// A meter with no limits (never runs out).
    pub fn unlimited() -> Meter {
        Budget::default().start()
    }

    /// Why the budget ran out, or `None` while it has not. Looks at the
    /// clock and the heap every time; see [`Meter::tick`] for hot loops.
    pub fn exhausted(&self) -> Option<String> {
        if let Some(reason) = self.exhausted.get() {
            return Some(reason.clone());
        }
        let reason = if self.deadline.is_some_and(|d| Instant::now() >= d) {
            let t = self.time.unwrap_or_default();
            Some(format!("the time limit of {} ran out", show_duration(t)))
        } else if let Some(limit) = self.memory {
            let counted = self.counted.load(Ordering::Relaxed);
            let grown = match (self.heap_at_start, heap_in_use()) {
                (Some(start), Some(now)) => now.saturating_sub(start),
                _ => 0,
            };
            (counted.max(grown) > limit).then(|| {
                format!(
                    "the memory limit of {} ran out ({} in use by the check)",
                    show_bytes(limit),
                    show_bytes(counted.max(grown))
                )
            })
        } else {
            None
        };
        let reason = reason?;
        Some(self.exhausted.get_or_init(|| reason).clone())
    }

    /// [`Meter::exhausted`], but only looking every thousand calls or so:
    /// cheap enough to call once per operation of a history.
    pub fn tick(&self) -> Option<String> {
        if self.deadline.is_none() && self.memory.is_none() {
            return None;
        }
        if !self.ticks.fetch_add(1, Ordering::Relaxed).is_multiple_of(TICKS_PER_LOOK) {
            return self.exhausted.get().cloned();
        }
        self.exhausted()
    }

    /// Adds `bytes` to what the checker counts of its own structures.
    pub fn count(&self, bytes: usize) {
        self.counted.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Bytes counted so far by [`Meter::count`].
    pub fn counted(&self) -> usize {
        self.counted.load(Ordering::Relaxed)
    }

    /// The memory limit, if there is one.
    pub fn memory_limit(&self) -> Option<usize> {
        self.memory
    }

    /// The deadline, if there is a time limit.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// A duration for a sentence: `30 s`, `1.5 s`, `250 ms`.
pub fn show_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        if s.fract() == 0.0 { format!("{s:.0} s") } else { format!("{s:.1} s") }
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A size for a sentence: `512 MiB`, `12.0 GiB`.
pub fn show_bytes(b: usize) -> String {
    const MIB: f64 = (1 << 20) as f64;
    let mib = b as f64 / MIB;
    if mib >= 1024.0 { format!("{:.1} GiB", mib / 1024.0) } else { format!("{mib:.0} MiB") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlimited_meter_never_runs_out() {
        let m = Meter::unlimited();
        m.count(usize::MAX / 2);
        for _ in 0..5000 {
            assert_eq!(m.tick(), None);
        }
        assert_eq!(m.exhausted(), None);
    }

    #[test]
    fn a_spent_time_limit_names_itself_and_stays_spent() {
        let m = Budget { time: Some(Duration::ZERO), memory: None }.start();
        let reason = m.exhausted().expect("out of time");
        assert_eq!(reason, "the time limit of 0 ms ran out");
        assert_eq!(m.tick(), Some(reason));
    }

    #[test]
    fn counted_bytes_over_the_limit_run_it_out() {
        let m = Budget { time: None, memory: Some(1 << 20) }.start();
        m.count(1 << 19);
        assert_eq!(m.exhausted(), None);
        m.count(1 << 20);
        let reason = m.exhausted().expect("out of memory");
        assert!(reason.starts_with("the memory limit of 1 MiB ran out"), "{reason}");
    }
}
