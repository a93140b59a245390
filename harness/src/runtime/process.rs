//! Node control for nodes that are process trees on this machine: the
//! `local` runtime (plain processes) and the `netns` runtime (processes
//! started inside a network namespace through a command prefix).
//!
//! Every process the harness starts carries `FAULTLINE_RUN=<tag>` in its
//! environment, which is how `faultline clean` finds the leftovers of a
//! harness that was killed before it could tear down.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;

use async_trait::async_trait;
use nix::unistd::Pid;

use crate::error::{HarnessError, Result};
use crate::node::{DaemonSpec, ExecOutput, NodeControl, Signal};

/// The environment variable that marks processes started by a run.
pub const RUN_TAG_ENV: &str = "FAULTLINE_RUN";

/// The run directory of a process the harness starts, so `faultline clean`
/// can tell which store a leftover belongs to.
pub const RUN_DIR_ENV: &str = "FAULTLINE_RUN_DIR";

/// `path` made absolute, with symlinks resolved where it exists, so a run
/// directory recorded with a process compares with a store named from any
/// working directory (`faultline clean --store DIR`).
pub fn absolute_path(path: &Path) -> PathBuf {
    path.canonicalize().or_else(|_| std::path::absolute(path)).unwrap_or_else(|_| path.to_owned())
}

/// A node whose processes run on this machine.
pub struct ProcessNode {
    id: String,
    dir: PathBuf,
    run_tag: String,
    /// The run directory (`<run dir>/nodes/<node>` is `dir`), absolute, for
    /// [`RUN_DIR_ENV`].
    run_dir: Option<PathBuf>,
    /// Prepended to every command (e.g. `ip netns exec NS`).
    prefix: Vec<String>,
    /// Daemons started here, kept so they are reaped and killed on drop.
    children: Mutex<BTreeMap<u32, tokio::process::Child>>,
}

impl ProcessNode {
    /// A node named `id` working in `dir`, whose commands run through
    /// `prefix`.
    pub fn new(id: &str, dir: PathBuf, run_tag: &str, prefix: Vec<String>) -> ProcessNode {
        // Absolute now: the store is often named relative to where the test
        // was started (`./store`), and `clean` may run from elsewhere.
        let run_dir = dir.parent().and_then(Path::parent).map(absolute_path);
        ProcessNode {
            id: id.to_owned(),
            dir,
            run_tag: run_tag.to_owned(),
            run_dir,
            prefix,
            children: Mutex::new(BTreeMap::new()),
        }
    }

    fn command(&self, program: &str, args: &[String]) -> tokio::process::Command {
        let mut cmd = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = tokio::process::Command::new(first);
                c.args(rest).arg(program);
                c
            }
            None => tokio::process::Command::new(program),
        };
        cmd.args(args).env(RUN_TAG_ENV, &self.run_tag).stdin(Stdio::null());
        if let Some(run_dir) = &self.run_dir {
            cmd.env(RUN_DIR_ENV, run_dir);
        }
        cmd
    }

    /// Kills every daemon this node started (teardown and drop).
    pub fn kill_all(&self) {
        let Ok(mut children) = self.children.lock() else { return };
        for (pid, child) in children.iter_mut() {
            let _ = nix::sys::signal::kill(
                Pid::from_raw(*pid as i32),
                nix::sys::signal::Signal::SIGCONT,
            );
            let _ = child.start_kill();
        }
        for (_, child) in children.iter_mut() {
            // Reap, so no zombie outlives the test.
            for _ in 0..200 {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        }
        children.clear();
    }

    /// The process ids of the daemons started here that are still tracked.
    pub fn pids(&self) -> Vec<u32> {
        self.children.lock().map(|c| c.keys().copied().collect()).unwrap_or_default()
    }
}

impl Drop for ProcessNode {
    fn drop(&mut self) {
        self.kill_all();
    }
}

#[async_trait]
impl NodeControl for ProcessNode {
    fn id(&self) -> &str {
        &self.id
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    async fn exec(&self, program: &str, args: &[String]) -> Result<ExecOutput> {
        let out = self
            .command(program, args)
            .output()
            .await
            .map_err(|e| HarnessError::node(&self.id, format!("run {program}"), e))?;
        Ok(ExecOutput {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    async fn start_daemon(&self, spec: &DaemonSpec) -> Result<u32> {
        let action = format!("start {}", spec.name);
        if let Some(parent) = spec.log_file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| HarnessError::node(&self.id, &action, e))?;
        }
        let log = std::fs::File::options().create(true).append(true).open(&spec.log_file).map_err(
            |e| HarnessError::node(&self.id, &action, format!("{}: {e}", spec.log_file.display())),
        )?;
        let err = log.try_clone().map_err(|e| HarnessError::node(&self.id, &action, e))?;
        let program = spec.program.to_string_lossy();
        let mut cmd = self.command(&program, &spec.args);
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C at the terminal reaches the
            // harness, which then tears down in order, not the nodes.
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| HarnessError::node(&self.id, &action, format!("{program}: {e}")))?;
        let pid =
            child.id().ok_or_else(|| HarnessError::node(&self.id, &action, "exited at once"))?;
        if let Ok(mut children) = self.children.lock() {
            children.insert(pid, child);
        }
        Ok(pid)
    }

    async fn signal(&self, pid: u32, signal: Signal) -> Result<()> {
        match nix::sys::signal::kill(Pid::from_raw(pid as i32), signal.to_nix()) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(HarnessError::node(&self.id, format!("signal {}", signal.name()), e));
            }
        }
        if signal == Signal::Kill {
            // Reap it now so it does not linger as a zombie.
            let child = self.children.lock().ok().and_then(|mut c| c.remove(&pid));
            if let Some(mut child) = child {
                let _ = child.wait().await;
            }
        }
        Ok(())
    }

    async fn is_alive(&self, pid: u32) -> Result<bool> {
        if let Ok(mut children) = self.children.lock()
            && let Some(child) = children.get_mut(&pid)
        {
            return Ok(matches!(child.try_wait(), Ok(None)));
        }
        Ok(pid_alive(pid))
    }

    async fn upload(&self, local: &Path, remote: &Path, mode: u32) -> Result<()> {
        if local == remote {
            return Ok(());
        }
        use std::os::unix::fs::PermissionsExt;
        let fail = |e: std::io::Error| {
            HarnessError::node(&self.id, format!("upload {}", local.display()), e)
        };
        if let Some(parent) = remote.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(fail)?;
        }
        tokio::fs::copy(local, remote).await.map_err(fail)?;
        tokio::fs::set_permissions(remote, std::fs::Permissions::from_mode(mode))
            .await
            .map_err(fail)
    }

    async fn download(&self, remote: &Path, local: &Path) -> Result<()> {
        if local == remote {
            return Ok(());
        }
        let fail = |e: std::io::Error| {
            HarnessError::node(&self.id, format!("download {}", remote.display()), e)
        };
        if let Some(parent) = local.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(fail)?;
        }
        tokio::fs::copy(remote, local).await.map(|_| ()).map_err(fail)
    }
}

/// Whether a process exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the command name in parentheses.
        Ok(stat) => {
            stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        }
        Err(_) => false,
    }
}

/// How long a teardown waits for the run's killed processes to exit.
const END_RUN_BOUND: std::time::Duration = std::time::Duration::from_secs(30);

/// One round of ending the processes that carry the run tag `tag`:
/// SIGCONT and SIGKILL to each. Returns those that were still running.
///
/// A teardown kills the daemons it started, and an adapter kills a
/// server's children, but SIGKILL is only delivered, not waited for: a
/// process in an uninterruptible disk wait (a busy disk, a large buffer
/// pool being freed) exits seconds later, and a server may have forked a
/// helper nobody tracked. Nothing of a run may outlive its teardown, so the
/// runtime ends whatever still carries its tag, and waits for it.
fn signal_tagged(tag: &str) -> Vec<(u32, String)> {
    let left = tagged_processes(Some(tag));
    for (pid, _) in &left {
        let pid = Pid::from_raw(*pid as i32);
        // A stopped (paused) process acts on SIGKILL too, but resuming it
        // first lets it leave the stopped state at once.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    }
    left
}

/// What survived: an error naming each process and its command line.
fn survivors(tag: &str, left: Vec<(u32, String)>) -> Result<()> {
    if left.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = left.iter().map(|(pid, _)| described(*pid)).collect();
    Err(HarnessError::Timeout(format!(
        "teardown: processes of run {tag} still running {} s after SIGKILL: {}",
        END_RUN_BOUND.as_secs(),
        names.join(", ")
    )))
}

/// A process as `pid (command line)`, for messages about leftovers.
pub fn described(pid: u32) -> String {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim().to_owned())
        .unwrap_or_default();
    format!("{pid} ({cmd})")
}

/// Ends every process carrying the run tag `tag` and waits until none is
/// left (at most [`END_RUN_BOUND`]); blocks the calling thread. For
/// teardowns that are synchronous (netns, and its `Drop`).
pub fn end_run_blocking(tag: &str) -> Result<()> {
    let started = std::time::Instant::now();
    loop {
        let left = signal_tagged(tag);
        if left.is_empty() || started.elapsed() >= END_RUN_BOUND {
            return survivors(tag, left);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// [`end_run_blocking`] for an async teardown (local), on the blocking pool.
pub async fn end_run(tag: &str) -> Result<()> {
    let tag = tag.to_owned();
    tokio::task::spawn_blocking(move || end_run_blocking(&tag))
        .await
        .map_err(|e| HarnessError::Internal(format!("ending the run's processes: {e}")))?
}

/// Processes on this machine whose environment carries `FAULTLINE_RUN`,
/// with the tag's value; `only` restricts to one tag.
pub fn tagged_processes(only: Option<&str>) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return out };
    let me = std::process::id();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
        let prefix = format!("{RUN_TAG_ENV}=");
        for var in env.split(|&b| b == 0) {
            if let Some(tag) = var.strip_prefix(prefix.as_bytes()) {
                let tag = String::from_utf8_lossy(tag).into_owned();
                if only.is_none_or(|o| o == tag) && pid_alive(pid) {
                    out.push((pid, tag));
                }
                break;
            }
        }
    }
    out
}
