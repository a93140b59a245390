//! `faultline clean`: removes what interrupted or crashed runs left behind:
//! processes tagged `FAULTLINE_RUN`, network namespaces, bridges, veths and
//! host rules listed in `/run/faultline/` state files, and any other
//! `fl-*` namespace or `flb*`/`flv*` link.
//!
//! It removes every faultline leftover on the machine, so run it when no
//! test is running (or restrict it to one run's tag).

use crate::runtime::netns::{self, NetnsState};
use crate::runtime::process::tagged_processes;

/// What `clean` did.
#[derive(Debug, Default)]
pub struct CleanReport {
    /// What was removed (or would be, in a dry run).
    pub removed: Vec<String>,
    /// What could not be removed, and why.
    pub failed: Vec<String>,
}

/// Removes every leftover (`dry_run`: only lists them).
pub fn clean(dry_run: bool) -> CleanReport {
    clean_matching(dry_run, None)
}

/// Removes the leftovers of runs whose tag starts with `tag_prefix` (all
/// runs when `None`).
pub fn clean_matching(dry_run: bool, tag_prefix: Option<&str>) -> CleanReport {
    let mut report = CleanReport::default();
    let matches = |tag: &str| tag_prefix.is_none_or(|p| tag.starts_with(p));
    for (pid, tag) in tagged_processes(None) {
        if !matches(&tag) {
            continue;
        }
        report.removed.push(format!("process {pid} (run {tag})"));
        if !dry_run {
            let pid = nix::unistd::Pid::from_raw(pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
            if let Err(e) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)
                && e != nix::errno::Errno::ESRCH
            {
                report.failed.push(format!("process {pid}: {e}"));
            }
        }
    }
    for state in NetnsState::all() {
        if !matches(&state.tag) {
            continue;
        }
        if dry_run {
            report.removed.extend(state.namespaces.iter().map(|n| format!("namespace {n}")));
            report.removed.extend(state.links.iter().map(|l| format!("link {l}")));
        } else {
            let (removed, failed) = state.remove();
            report.removed.extend(removed);
            report.failed.extend(failed);
        }
    }
    if tag_prefix.is_none() {
        // Objects with our names but no state file (a crash between
        // creating them and recording them).
        for ns in netns::faultline_namespaces() {
            report.removed.push(format!("namespace {ns}"));
            if !dry_run {
                netns::kill_namespace_processes(&ns);
                if let Err(e) = netns::run("ip", &["netns", "del", &ns]) {
                    report.failed.push(e);
                }
            }
        }
        for link in netns::faultline_links() {
            if !netns::link_exists(&link) {
                continue;
            }
            report.removed.push(format!("link {link}"));
            // A veth disappears with its peer; only report what remains.
            if !dry_run
                && let Err(e) = netns::run("ip", &["link", "del", &link])
                && netns::link_exists(&link)
            {
                report.failed.push(e);
            }
        }
    }
    report
}
