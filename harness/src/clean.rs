//! `faultline clean`: removes what interrupted or crashed runs left behind:
//! processes tagged `FAULTLINE_RUN`, network namespaces, bridges, veths and
//! host rules listed in `/run/faultline/` state files.
//!
//! By default it touches only what is certainly this user's and this
//! store's and no longer in use: leftovers of runs whose run directory lies
//! in the store, owned by the current user, whose harness process has
//! ended. A test running right now (its harness alive), another user's, or
//! another store's is left alone. `--all` removes every faultline leftover
//! on the machine, including namespaces and links no state file names (a
//! crash between creating them and recording them); run it only when no
//! test is running.
//!
//! What a leftover says about its run: a process carries its run's tag
//! (`FAULTLINE_RUN`) and its run directory, absolute (`FAULTLINE_RUN_DIR`),
//! in its environment, and its owner is the owner of `/proc/<pid>`; a netns
//! state file records the tag, the run directory and the harness's uid.
//! The store a leftover belongs to is the store its run directory lies in.
//!
//! A run's tag starts with its harness's pid (`run::run_tag`); the harness
//! counts as alive when that pid exists and its process started before the
//! run did. The start time settles pid reuse: a pid reused by a later
//! process (which started after the run's timestamp) does not keep
//! leftovers alive. It was preferred to matching `/proc/<pid>/exe` against
//! faultline because a plugin author's own binary runs tests too, and
//! because a later faultline process (another test) reusing the pid would
//! match that check wrongly.

use std::path::{Path, PathBuf};

use crate::runtime::netns::{self, NetnsState};
use crate::runtime::process::{RUN_DIR_ENV, absolute_path, pid_alive, tagged_processes};

/// What `clean` did.
#[derive(Debug, Default)]
pub struct CleanReport {
    /// What was removed (or would be, in a dry run).
    pub removed: Vec<String>,
    /// What was left alone, and why.
    pub kept: Vec<String>,
    /// What could not be removed, and why.
    pub failed: Vec<String>,
}

/// Which leftovers a clean may remove.
#[derive(Clone, Debug)]
pub enum Scope {
    /// Every faultline leftover on the machine.
    All,
    /// Leftovers of finished runs in this store, owned by this user.
    Mine {
        /// The store (canonical).
        store: PathBuf,
        /// The current user.
        uid: u32,
    },
}

impl Scope {
    /// This user's leftovers in `store` (named relative to the working
    /// directory or not; run directories are recorded absolute).
    pub fn mine(store: &Path) -> Scope {
        Scope::Mine { store: absolute_path(store), uid: nix::unistd::getuid().as_raw() }
    }
}

/// One leftover as `clean` sees it.
#[derive(Clone, Debug)]
pub struct Leftover {
    /// The run's tag.
    pub tag: String,
    /// The run directory it belongs to, when known.
    pub run_dir: Option<PathBuf>,
    /// Its owner, when known.
    pub uid: Option<u32>,
}

/// Whether `scope` lets `clean` remove `leftover`: `Ok` or the reason to
/// keep it. `harness_alive` says whether the harness of a tag still runs.
pub fn decide(
    scope: &Scope,
    leftover: &Leftover,
    harness_alive: impl Fn(&str) -> bool,
) -> Result<(), String> {
    let Scope::Mine { store, uid } = scope else { return Ok(()) };
    match leftover.uid {
        Some(u) if u == *uid => {}
        Some(u) => return Err(format!("another user's (uid {u})")),
        None => return Err("its owner is unknown (use --all)".into()),
    }
    match &leftover.run_dir {
        None => return Err("its run directory is unknown (use --all)".into()),
        // Older versions recorded the path as given; relative to a working
        // directory nobody knows any more, it could match any store.
        Some(dir) if dir.is_relative() => {
            return Err(format!(
                "its run directory was recorded relative ({}) (use --all)",
                dir.display()
            ));
        }
        Some(dir) => {
            let dir = dir.canonicalize().unwrap_or_else(|_| dir.clone());
            if !dir.starts_with(store) {
                return Err(format!("a run of another store ({})", dir.display()));
            }
        }
    }
    if harness_alive(&leftover.tag) {
        return Err("its test is still running".into());
    }
    Ok(())
}

/// Whether the harness that made run `tag` is still running: its pid (the
/// tag's first part) is alive and started before the run's timestamp (the
/// rest of the tag).
pub fn harness_alive(tag: &str) -> bool {
    let Some((pid, stamp)) = tag.split_once('-') else { return false };
    let Ok(pid) = pid.parse::<u32>() else { return false };
    if !pid_alive(pid) {
        return false;
    }
    match (process_start_ms(pid), stamp_ms(stamp)) {
        // A second of slack for clocks read at slightly different moments.
        (Some(started), Some(run)) => started <= run + 1000,
        // Alive, and nothing says it is another process: keep.
        _ => true,
    }
}

/// When process `pid` started, in ms since the epoch (from `/proc`).
fn process_start_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    // Field 22 of stat; `rest` starts at field 3.
    let ticks: u64 = rest.split_whitespace().nth(19)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??.max(1) as u64;
    Some(boot * 1000 + ticks * 1000 / hz)
}

/// A run directory's timestamp (`20261205T091914.672Z`, maybe with `-2`)
/// in ms since the epoch.
fn stamp_ms(stamp: &str) -> Option<u64> {
    let stamp = stamp.split('-').next()?;
    let t = chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%S%.3fZ").ok()?;
    u64::try_from(t.and_utc().timestamp_millis()).ok()
}

/// The run directory and owner of process `pid`.
fn process_origin(pid: u32) -> (Option<PathBuf>, Option<u32>) {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid());
    let prefix = format!("{RUN_DIR_ENV}=");
    let run_dir = std::fs::read(format!("/proc/{pid}/environ")).ok().and_then(|env| {
        env.split(|&b| b == 0)
            .find_map(|v| v.strip_prefix(prefix.as_bytes()))
            .map(|d| PathBuf::from(String::from_utf8_lossy(d).into_owned()))
    });
    (run_dir, uid)
}

/// Removes the leftovers `scope` allows (`dry_run`: only lists them).
pub fn clean(dry_run: bool, scope: &Scope) -> CleanReport {
    let mut report = CleanReport::default();
    for (pid, tag) in tagged_processes(None) {
        let (run_dir, uid) = process_origin(pid);
        let leftover = Leftover { tag: tag.clone(), run_dir, uid };
        if let Err(why) = decide(scope, &leftover, harness_alive) {
            report.kept.push(format!("process {pid} (run {tag}): {why}"));
            continue;
        }
        kill_process(pid, &tag, dry_run, &mut report);
    }
    for state in NetnsState::all() {
        let uid = state.uid.or_else(|| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(Path::new(netns::STATE_DIR).join(format!("{}.json", state.id)))
                .ok()
                .map(|m| m.uid())
        });
        let leftover = Leftover { tag: state.tag.clone(), run_dir: state.run_dir.clone(), uid };
        if let Err(why) = decide(scope, &leftover, harness_alive) {
            report.kept.push(format!("namespaces of run {}: {why}", state.tag));
            continue;
        }
        remove_state(&state, dry_run, &mut report);
    }
    if matches!(scope, Scope::All) {
        sweep_unrecorded(dry_run, &mut report);
    }
    report
}

/// Removes the leftovers of runs whose tag starts with `tag_prefix`,
/// whatever their store or owner (teardown after a crash, tests).
pub fn clean_matching(dry_run: bool, tag_prefix: &str) -> CleanReport {
    let mut report = CleanReport::default();
    for (pid, tag) in tagged_processes(None) {
        if tag.starts_with(tag_prefix) {
            kill_process(pid, &tag, dry_run, &mut report);
        }
    }
    for state in NetnsState::all() {
        if state.tag.starts_with(tag_prefix) {
            remove_state(&state, dry_run, &mut report);
        }
    }
    report
}

fn kill_process(pid: u32, tag: &str, dry_run: bool, report: &mut CleanReport) {
    report.removed.push(format!("process {pid} (run {tag})"));
    if dry_run {
        return;
    }
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
    if let Err(e) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL)
        && e != nix::errno::Errno::ESRCH
    {
        report.failed.push(format!("process {pid}: {e}"));
    }
}

fn remove_state(state: &NetnsState, dry_run: bool, report: &mut CleanReport) {
    if dry_run {
        report.removed.extend(state.namespaces.iter().map(|n| format!("namespace {n}")));
        report.removed.extend(state.links.iter().map(|l| format!("link {l}")));
    } else {
        let (removed, failed) = state.remove();
        report.removed.extend(removed);
        report.failed.extend(failed);
    }
}

/// Objects with our names but no state file (a crash between creating
/// them and recording them): only `--all` may assume they are abandoned.
fn sweep_unrecorded(dry_run: bool, report: &mut CleanReport) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mine() -> Scope {
        Scope::Mine { store: PathBuf::from("/srv/store"), uid: 1000 }
    }

    fn leftover(dir: Option<&str>, uid: Option<u32>) -> Leftover {
        Leftover { tag: "4242-20261205T091914.672Z".into(), run_dir: dir.map(PathBuf::from), uid }
    }

    #[test]
    fn only_finished_runs_of_this_store_and_user_are_removed() {
        let dead = |_: &str| false;
        let alive = |_: &str| true;
        let ours = leftover(Some("/srv/store/raft/20261205T091914.672Z"), Some(1000));
        assert_eq!(decide(&mine(), &ours, dead), Ok(()));
        let why = decide(&mine(), &ours, alive).expect_err("running");
        assert!(why.contains("still running"), "{why}");
        let other_store = leftover(Some("/home/x/store/raft/1"), Some(1000));
        let why = decide(&mine(), &other_store, dead).expect_err("store");
        assert!(why.contains("another store"), "{why}");
        let other_user = leftover(Some("/srv/store/raft/1"), Some(0));
        assert!(decide(&mine(), &other_user, dead).expect_err("user").contains("another user"));
        let unknown = leftover(None, Some(1000));
        assert!(decide(&mine(), &unknown, dead).expect_err("unknown").contains("--all"));
        let no_owner = leftover(Some("/srv/store/raft/1"), None);
        assert!(decide(&mine(), &no_owner, dead).expect_err("owner").contains("owner is unknown"));
        // A relative path says nothing about which store it lay in.
        let relative = leftover(Some("store/raft/1"), Some(1000));
        assert!(decide(&mine(), &relative, dead).expect_err("relative").contains("relative"));
        // A sibling whose name merely starts like the store is another store.
        let sibling = leftover(Some("/srv/store2/raft/1"), Some(1000));
        assert!(decide(&mine(), &sibling, dead).expect_err("sibling").contains("another store"));
        // --all removes all of them, running or not.
        for l in [ours, other_store, other_user, unknown, no_owner, relative, sibling] {
            assert_eq!(decide(&Scope::All, &l, alive), Ok(()));
        }
    }

    #[test]
    fn a_harness_is_alive_only_if_it_started_before_its_run() {
        let me = std::process::id();
        // This process started before now: a run stamped now is ours.
        let now = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        assert!(harness_alive(&format!("{me}-{now}")));
        // A run stamped long before this process started belonged to an
        // earlier process that had this pid.
        assert!(!harness_alive(&format!("{me}-20000101T000000.000Z")));
        // A pid that does not exist.
        assert!(!harness_alive(&format!("{}-{now}", u32::MAX - 7)));
        assert_eq!(stamp_ms("20000101T000000.000Z-2"), Some(946_684_800_000));
    }
}
