//! The process's memory, for checkers' memory limits: the resident set
//! size read from `/proc/self/statm`, and the default limit (half of the
//! machine's memory) that protects every check.
//!
//! Checkers do no I/O, so they cannot look at the process themselves;
//! [`install`] hands them this meter (see `checkers::budget`). A plugin
//! author's own binary calls [`install`] too, first thing in `main`.

/// Bytes in one page of memory: what `/proc/self/statm` counts in. Every
/// Linux target faultline runs on uses 4 KiB pages; asking `sysconf` would
/// give the same answer at the cost of another dependency in this crate.
const PAGE: usize = 4096;

/// Installs the resident-set meter for every checker's memory limit.
pub fn install() {
    checkers::budget::set_heap_meter(resident_bytes);
}

/// The process's resident set size in bytes, or 0 where `/proc` cannot
/// tell (then only the limits checkers count themselves hold).
pub fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()))
        .map_or(0, |pages| pages * PAGE)
}

/// The memory limit a check gets when the user sets none: half of the
/// machine's memory, so a search that would grow without bound answers
/// `unknown` long before the kernel would kill it. `None` where
/// `/proc/meminfo` cannot tell.
pub fn default_limit() -> Option<usize> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024 / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_resident_set_and_the_machine_a_default_limit() {
        let rss = resident_bytes();
        assert!(rss > 1 << 20, "a test process holds more than a MiB: {rss}");
        let before = rss;
        let block = vec![1u8; 64 << 20];
        let after = resident_bytes();
        assert!(after >= before + (60 << 20), "64 MiB touched: {before} -> {after}");
        drop(block);
        let limit = default_limit().expect("/proc/meminfo");
        assert!(limit > 64 << 20, "half the machine: {limit}");
    }
}
