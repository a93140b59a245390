//! Helpers every adapter that runs a real server needs on a node: its
//! control, a program run to completion with its error kept, a text file
//! written to it, how a server that refuses root (or whose helpers
//! misbehave as root) runs when the harness is root, and teardown's steps.
//!
//! Servers such as PostgreSQL refuse to run as root, and MariaDB's rsync
//! state transfer, run as root, drops to `nobody` and cannot write the data
//! directory. When the harness is root, such programs run in a user
//! namespace of their own (`unshare --user`) where root is mapped to the
//! package's user: the program sees a user that is not root and that owns
//! its files, while the files on disk stay root's. Running as that user
//! instead would need every directory above the run directory to be open to
//! it, and test stores usually live in private temporary directories.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{HarnessError, NodeControl, Result, TestEnv};

/// How long teardown lets a server act on SIGTERM before it sends SIGKILL
/// (etcd sometimes takes longer than 5 s).
pub const TERM_GRACE: Duration = Duration::from_secs(5);

/// The node's control, or an error naming it.
pub fn control<'a>(env: &'a TestEnv, node: &str) -> Result<&'a dyn NodeControl> {
    env.runtime.node(node).ok_or_else(|| HarnessError::Internal(format!("no node {node}")))
}

/// Runs `program` on `node` and returns its standard output, or an error
/// carrying its exit status and output.
pub async fn run(env: &TestEnv, node: &str, program: &str, args: &[String]) -> Result<String> {
    let out = control(env, node)?.exec(program, args).await?;
    if out.status != 0 {
        let why = format!("exit {}: {}{}", out.status, out.stderr.trim(), out.stdout.trim());
        return Err(HarnessError::node(node, program, why));
    }
    Ok(out.stdout)
}

/// Writes `contents` to `remote` on the node (mode 0600), staged in the
/// run's directory for the node.
pub async fn write_file(env: &TestEnv, node: &str, remote: &Path, contents: &str) -> Result<()> {
    let staged = env.run_dir.join("nodes").join(node).join(format!(
        "staged-{}",
        remote.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    if let Some(parent) = staged.parent() {
        std::fs::create_dir_all(parent).map_err(|e| HarnessError::io(parent, e))?;
    }
    std::fs::write(&staged, contents).map_err(|e| HarnessError::io(&staged, e))?;
    control(env, node)?.upload(&staged, remote, 0o600).await?;
    let _ = std::fs::remove_file(&staged);
    Ok(())
}

/// Waits, after SIGTERM, until `running` says the node's `what` stopped,
/// at most `TERM_GRACE`; says so when it did not, so the caller's SIGKILL
/// that follows is explained in the log.
pub async fn await_stop<F, Fut>(node: &str, what: &str, mut running: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let started = Instant::now();
    while running().await? {
        if started.elapsed() > TERM_GRACE {
            tracing::info!(node, "{what} ignored SIGTERM for {TERM_GRACE:?}; sending SIGKILL");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Removes `dir` on the node. A failure is logged and teardown goes on:
/// what is left is in the run's own directory.
pub async fn remove_dir(env: &TestEnv, node: &str, dir: &Path) -> Result<()> {
    let out =
        control(env, node)?.exec("rm", &["-rf".into(), dir.to_string_lossy().into_owned()]).await?;
    if out.status != 0 {
        tracing::warn!(node, "could not remove {}: {}", dir.display(), out.stderr.trim());
    }
    Ok(())
}

/// How a server's programs run on one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunAs {
    /// Directly: the node's user is not root.
    Itself,
    /// In a user namespace where root is the package's user (`uid`, `gid`).
    Namespaced {
        /// The user's id.
        uid: u32,
        /// Its group's id.
        gid: u32,
    },
}

impl RunAs {
    /// The command line that runs `program` (a path) with `args`.
    pub fn command(&self, program: &str, args: Vec<String>) -> (String, Vec<String>) {
        match self {
            RunAs::Itself => (program.to_owned(), args),
            RunAs::Namespaced { uid, gid } => {
                let mut all = vec![
                    "--user".to_owned(),
                    format!("--map-user={uid}"),
                    format!("--map-group={gid}"),
                    program.to_owned(),
                ];
                all.extend(args);
                ("unshare".to_owned(), all)
            }
        }
    }

    /// How programs run on `node`: directly unless the node's user is
    /// root, and then as `user` (which `package` creates) in a namespace.
    pub async fn find(env: &TestEnv, node: &str, user: &str, package: &str) -> Result<RunAs> {
        if run(env, node, "id", &["-u".into()]).await?.trim() != "0" {
            return Ok(RunAs::Itself);
        }
        let id = |flag: &str| {
            let args = [flag.to_owned(), user.to_owned()];
            async move { run(env, node, "id", &args).await }
        };
        let (uid, gid) = (id("-u").await, id("-g").await);
        let parse = |r: Result<String>| r.ok().and_then(|s| s.trim().parse::<u32>().ok());
        match (parse(uid), parse(gid)) {
            (Some(uid), Some(gid)) => Ok(RunAs::Namespaced { uid, gid }),
            _ => Err(HarnessError::node(
                node,
                format!("find the {user} user"),
                format!("running as root needs the {user} user that {package} creates"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_root_a_server_runs_in_a_user_namespace_as_its_packages_user() {
        let who = RunAs::Namespaced { uid: 101, gid: 104 };
        let (p, a) = who.command("/bin/initdb", vec!["-D".into(), "/d".into()]);
        assert_eq!(p, "unshare");
        assert_eq!(a, ["--user", "--map-user=101", "--map-group=104", "/bin/initdb", "-D", "/d"]);
        let (p, a) = RunAs::Itself.command("/bin/postgres", vec![]);
        assert_eq!(p, "/bin/postgres");
        assert!(a.is_empty());
    }
}
