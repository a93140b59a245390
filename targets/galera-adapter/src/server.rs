//! One node's MariaDB server as the adapter handles it: the install check,
//! a data directory from `mariadb-install-db`, `my.cnf`, starting `mariadbd`
//! (bootstrapping a new cluster or joining one), signals to its process
//! group, and SQL through its Unix socket with the `mariadb` client.
//!
//! When the harness is root, MariaDB's programs run in a user namespace as
//! the `mysql` user (`harness::on_node::RunAs`): run as root, the rsync
//! daemon that receives a state transfer drops to `nobody` and cannot write
//! the data directory, so no node could ever join.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use harness::node::{DaemonSpec, Signal};
use harness::on_node::{RunAs, control, run, write_file};
use harness::{HarnessError, Result, TestEnv};

use crate::config::{self, NodeConf, Status};

/// The server program of Debian's `mariadb-server`.
pub const MARIADBD: &str = "/usr/sbin/mariadbd";
/// The packages to install when something is missing.
pub const PACKAGES: &str = "mariadb-server galera-4";

/// The node's directory on the node.
fn node_dir(env: &TestEnv, node: &str) -> Result<PathBuf> {
    Ok(control(env, node)?.dir().to_path_buf())
}

/// The node's data directory (`nodes/<node>/mysql-data` on netns and local).
pub fn data_dir(env: &TestEnv, node: &str) -> Result<PathBuf> {
    Ok(node_dir(env, node)?.join("mysql-data"))
}

/// The server's log (standard output and error), kept in the node's directory.
pub fn log_file(env: &TestEnv, node: &str) -> Result<PathBuf> {
    Ok(node_dir(env, node)?.join("mariadb.log"))
}

/// The node's `my.cnf`.
pub fn conf_file(env: &TestEnv, node: &str) -> Result<PathBuf> {
    Ok(node_dir(env, node)?.join("my.cnf"))
}

/// The server's Unix socket. A socket's path is limited to 107 bytes,
/// which a run directory inside a temporary store easily passes, so it
/// lives in `/tmp` under a name made from the node's directory.
pub fn socket(env: &TestEnv, node: &str) -> Result<String> {
    let dir = node_dir(env, node)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    dir.hash(&mut h);
    Ok(format!("/tmp/faultline-galera-{:016x}-{node}.sock", h.finish()))
}

fn text(p: PathBuf) -> String {
    p.to_string_lossy().into_owned()
}

/// Checks the packages are there and finds how MariaDB's programs run.
pub async fn install_check(env: &TestEnv, node: &str) -> Result<RunAs> {
    let missing = |what: &str, e: &dyn std::fmt::Display| {
        HarnessError::node(
            node,
            format!("find {what}"),
            format!("{e}; install Debian's {PACKAGES} packages (apt-get install {PACKAGES})"),
        )
    };
    let version = run(env, node, MARIADBD, &["--version".into()]).await;
    let version = version.map_err(|e| missing("MariaDB", &e))?;
    tracing::info!(node, "{}", version.trim());
    let provider = run(env, node, "test", &["-f".into(), config::PROVIDER.into()]).await;
    provider.map_err(|e| missing("the Galera provider", &e))?;
    RunAs::find(env, node, "mysql", "mariadb-server").await
}

/// A fresh data directory from `mariadb-install-db` (root may connect
/// through the socket without a password, as the adapter does) and the
/// node's `my.cnf`.
pub async fn prepare(env: &TestEnv, node: &str, who: &RunAs, conf: &NodeConf) -> Result<()> {
    run(env, node, "rm", &["-rf".into(), conf.data_dir.clone()]).await?;
    let args = vec![
        "--no-defaults".to_owned(),
        format!("--datadir={}", conf.data_dir),
        "--auth-root-authentication-method=normal".into(),
        "--skip-test-db".into(),
        // The node's own temporary directory: two installs sharing /tmp
        // (parallel runs) collide on their temporary tables' names.
        format!("--tmpdir={}", text(node_dir(env, node)?)),
        "--skip-name-resolve".into(),
    ];
    let (program, args) = who.command("/usr/bin/mariadb-install-db", args);
    run(env, node, &program, &args).await.map_err(|e| match e {
        HarnessError::Node { node, message, .. } => {
            HarnessError::Node { node, action: "mariadb-install-db".into(), message }
        }
        other => other,
    })?;
    write_file(env, node, &conf_file(env, node)?, &config::my_cnf(conf)).await
}

/// Starts `mariadbd` and returns its process id; `bootstrap` starts a new
/// cluster (`--wsrep-new-cluster`, what `galera_new_cluster` passes to a
/// systemd service), otherwise it joins the members of `my.cnf`.
pub async fn start(env: &TestEnv, node: &str, who: &RunAs, bootstrap: bool) -> Result<u32> {
    // --defaults-file must come first.
    let mut args = vec![format!("--defaults-file={}", text(conf_file(env, node)?))];
    if bootstrap {
        args.push("--wsrep-new-cluster".into());
    }
    let (program, args) = who.command(MARIADBD, args);
    let spec = DaemonSpec {
        name: "mariadbd".into(),
        program: PathBuf::from(program),
        args,
        env: Vec::new(),
        log_file: log_file(env, node)?,
    };
    control(env, node)?.start_daemon(&spec).await
}

/// Sends `signal` to the server's process group: `mariadbd` and the state
/// transfer scripts and rsync daemons it started, which would otherwise
/// hold the SST port at the next start.
pub async fn signal_group(env: &TestEnv, node: &str, pid: u32, signal: Signal) -> Result<()> {
    let c = control(env, node)?;
    let args = [format!("-{}", signal.name()), "--".into(), format!("-{pid}")];
    let out = c.exec("kill", &args).await?;
    // A group already gone is fine; the daemon's own pid is signalled too,
    // so the runtime reaps it after a kill.
    if out.status != 0 {
        tracing::debug!(node, "kill {args:?}: {}", out.stderr.trim());
    }
    c.signal(pid, signal).await
}

/// Whether any process of the group `pid` leads is still alive
/// (`kill -0` to the group).
pub async fn group_alive(env: &TestEnv, node: &str, pid: u32) -> Result<bool> {
    let args = ["-0".to_owned(), "--".into(), format!("-{pid}")];
    Ok(control(env, node)?.exec("kill", &args).await?.status == 0)
}

/// Runs `sql` as root through the node's socket and returns the batch
/// output. `timeout` bounds it, since a paused server accepts the
/// connection and never answers.
pub async fn sql(env: &TestEnv, node: &str, sql: &str) -> Result<String> {
    let args = [
        "3".to_owned(),
        "mariadb".into(),
        "--no-defaults".into(),
        "--protocol=socket".into(),
        format!("--socket={}", socket(env, node)?),
        "--user=root".into(),
        "--connect-timeout=2".into(),
        "--batch".into(),
        "--skip-column-names".into(),
        "--execute".into(),
        sql.to_owned(),
    ];
    run(env, node, "timeout", &args).await
}

/// The node's wsrep status, or `None` when it does not answer.
pub async fn status(env: &TestEnv, node: &str) -> Option<Status> {
    sql(env, node, config::STATUS_QUERY).await.ok().map(|t| Status::parse(&t))
}

/// The last `[ERROR]` line of the node's log, which says why a server
/// exited or could not join.
pub async fn last_error(env: &TestEnv, node: &str) -> Option<String> {
    let remote = log_file(env, node).ok()?;
    let local = env.run_dir.join("nodes").join(node).join("mariadb.log");
    control(env, node).ok()?.download(&remote, &local).await.ok()?;
    let log = std::fs::read_to_string(&local).ok()?;
    log.lines().rev().find(|l| l.contains("[ERROR]")).map(|l| l.trim().to_owned())
}
