//! Memory and CPU figures from inside a benchmark (Linux `/proc`), shared by
//! the benches and the `elle_gen` example so they all measure the same way.

/// Resident memory of this process in KiB: (current, high-water mark).
pub fn rss_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse::<u64>().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// User plus system CPU time of this process so far, in seconds (from
/// `/proc/self/stat`, in clock ticks of 1/100 s).
#[allow(dead_code)] // Not every includer reports CPU time.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// What one measured call cost in resident memory.
pub struct PeakMemory {
    /// Resident just before the call (MiB): the inputs already held.
    pub before_mib: f64,
    /// The process's resident high-water mark during the call (MiB).
    pub peak_mib: f64,
}

impl PeakMemory {
    /// How far the call pushed resident memory above where it started.
    pub fn added_mib(&self) -> f64 {
        (self.peak_mib - self.before_mib).max(0.0)
    }
}

impl std::fmt::Display for PeakMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "peak resident memory {:.0} MiB ({:.0} MiB above the {:.0} MiB held before)",
            self.peak_mib,
            self.added_mib(),
            self.before_mib
        )
    }
}

/// Runs `f`, measuring the resident high-water mark it reaches. Writing 5 to
/// `/proc/self/clear_refs` resets the mark to the current size first, so an
/// earlier, larger step (building the input) does not hide this one. `None`
/// where `/proc` is missing or the reset is refused.
pub fn peak_memory<T>(f: impl FnOnce() -> T) -> (T, Option<PeakMemory>) {
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = rss_kib();
    let out = f();
    let memory = match (reset, before, rss_kib()) {
        (true, Some((rss, _)), Some((_, peak))) => {
            Some(PeakMemory { before_mib: rss as f64 / 1024.0, peak_mib: peak as f64 / 1024.0 })
        }
        _ => None,
    };
    (out, memory)
}
