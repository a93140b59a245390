//! One node's PostgreSQL server as the adapter handles it: running
//! PostgreSQL's programs (as a user other than root), creating a cluster
//! with `initdb`, cloning a standby with `pg_basebackup`, bringing a former
//! primary back with `pg_rewind`, starting, stopping and signalling the
//! whole process tree, and asking a server how it is.
//!
//! PostgreSQL refuses to run as root. When the harness is root (netns, and
//! ssh as root), every PostgreSQL program runs in a user namespace of its
//! own (`unshare --user`) where root is mapped to the `postgres` user's
//! id: the program sees a user that is not root and that owns its files,
//! while the files on disk stay root's. A dedicated user (`runuser`) would
//! need every directory above the run directory to be open to it, and test
//! stores usually live in private temporary directories.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::node::{DaemonSpec, Signal};
use harness::{HarnessError, Result, TestEnv};

use crate::config;

/// Where Debian's `postgresql-15` puts its programs.
pub const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The package to install when they are missing.
pub const PACKAGE: &str = "postgresql-15";

pub use harness::on_node::{RunAs, control, run, write_file};

/// The command line that runs PostgreSQL's `program` with `args`.
fn command(who: &RunAs, program: &str, args: Vec<String>) -> (String, Vec<String>) {
    who.command(&format!("{BIN}/{program}"), args)
}

/// The node's data directory (`nodes/<node>/pgdata` on netns and local).
pub fn data_dir(env: &TestEnv, node: &str) -> Result<PathBuf> {
    Ok(control(env, node)?.dir().join("pgdata"))
}

/// The server's log (standard output and error), kept in the node's directory.
pub fn log_file(env: &TestEnv, node: &str) -> Result<PathBuf> {
    Ok(control(env, node)?.dir().join("postgres.log"))
}

fn text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Runs one of PostgreSQL's programs on `node`.
pub async fn run_pg(
    env: &TestEnv,
    node: &str,
    who: &RunAs,
    program: &str,
    args: Vec<String>,
) -> Result<String> {
    let (p, a) = command(who, program, args);
    run(env, node, &p, &a).await.map_err(|e| match e {
        HarnessError::Node { node, message, .. } => {
            HarnessError::Node { node, action: program.to_owned(), message }
        }
        other => other,
    })
}

/// Checks the package is there and finds how its programs must run.
pub async fn install_check(env: &TestEnv, node: &str) -> Result<RunAs> {
    let version = run(env, node, &format!("{BIN}/postgres"), &["--version".into()]).await;
    let version = version.map_err(|e| {
        HarnessError::node(
            node,
            "find PostgreSQL 15",
            format!("{e}; install Debian's {PACKAGE} package (apt-get install {PACKAGE})"),
        )
    })?;
    tracing::info!(node, "{}", version.trim());
    RunAs::find(env, node, "postgres", PACKAGE).await
}

/// Appends `contents` to `remote` on the node.
pub async fn append_file(env: &TestEnv, node: &str, remote: &Path, contents: &str) -> Result<()> {
    let staged = env.run_dir.join("nodes").join(node).join("staged-append");
    control(env, node)?.download(remote, &staged).await?;
    let mut all = std::fs::read_to_string(&staged).map_err(|e| HarnessError::io(&staged, e))?;
    let _ = std::fs::remove_file(&staged);
    all.push_str(contents);
    write_file(env, node, remote, &all).await
}

/// A new cluster in the node's data directory, configured for replication.
pub async fn initdb(env: &TestEnv, node: &str, who: &RunAs, settings: &str) -> Result<()> {
    let data = data_dir(env, node)?;
    let args = ["-D", &text(&data), "-U", "postgres", "--auth=trust", "--no-sync"];
    run_pg(env, node, who, "initdb", args.iter().map(|s| (*s).to_owned()).collect()).await?;
    append_file(env, node, &data.join("postgresql.conf"), settings).await?;
    write_file(env, node, &data.join("pg_hba.conf"), config::PG_HBA).await
}

/// A standby's data directory cloned from the primary at `primary`.
pub async fn basebackup(env: &TestEnv, node: &str, who: &RunAs, primary: SocketAddr) -> Result<()> {
    let data = text(&data_dir(env, node)?);
    run(env, node, "rm", &["-rf".into(), data.clone()]).await?;
    let args = vec![
        "-d".into(),
        config::conninfo(primary, node),
        "-D".into(),
        data,
        "-X".into(),
        "stream".into(),
        "-c".into(),
        "fast".into(),
    ];
    run_pg(env, node, who, "pg_basebackup", args).await.map(|_| ())
}

/// Rewinds the node's data directory to where it forked from the primary
/// at `primary` (a no-op when it never went past that point).
pub async fn rewind(env: &TestEnv, node: &str, who: &RunAs, primary: SocketAddr) -> Result<String> {
    let args = vec![
        format!("--target-pgdata={}", text(&data_dir(env, node)?)),
        format!("--source-server={}", config::conninfo(primary, node)),
    ];
    run_pg(env, node, who, "pg_rewind", args).await
}

/// Makes the data directory a standby of `primary` (or, with `None`, a
/// primary) at its next start.
pub async fn set_role(env: &TestEnv, node: &str, primary: Option<SocketAddr>) -> Result<()> {
    let data = data_dir(env, node)?;
    let signal = text(&data.join("standby.signal"));
    match primary {
        Some(addr) => {
            let conf = config::standby_conf(addr, node);
            write_file(env, node, &data.join(config::STANDBY_CONF), &conf).await?;
            write_file(env, node, &data.join("standby.signal"), "").await
        }
        None => {
            write_file(env, node, &data.join(config::STANDBY_CONF), "").await?;
            run(env, node, "rm", &["-f".into(), signal]).await.map(|_| ())
        }
    }
}

/// Starts the server and returns its process id (the postmaster's).
pub async fn start(env: &TestEnv, node: &str, who: &RunAs) -> Result<u32> {
    let addr = env.addrs(node)?.client;
    let args = config::server_args(&text(&data_dir(env, node)?), node, addr);
    let (program, args) = command(who, "postgres", args);
    let spec = DaemonSpec {
        name: "postgres".into(),
        program: PathBuf::from(program),
        args,
        env: Vec::new(),
        log_file: log_file(env, node)?,
    };
    control(env, node)?.start_daemon(&spec).await
}

/// Sends `signal` to the postmaster `pid` and to every process it forked.
/// PostgreSQL's backends are sessions of their own, so signalling the
/// postmaster's process group would miss them: a crash that left them
/// running would keep the shared memory the next start needs, and a pause
/// that left them running would not pause the sessions already open.
pub async fn signal_tree(env: &TestEnv, node: &str, pid: u32, signal: Signal) -> Result<()> {
    let c = control(env, node)?;
    // Stopped first, the postmaster forks nothing while its children are
    // signalled; resumed last, it finds its children already running.
    if signal != Signal::Cont {
        c.signal(pid, Signal::Stop).await?;
    }
    let args = [format!("-{}", signal.name()), "-P".into(), pid.to_string()];
    // pkill's exit status 1 means no child matched, which is fine.
    let out = c.exec("pkill", &args).await?;
    if out.status > 1 {
        return Err(HarnessError::node(node, "signal postgres's children", out.stderr.trim()));
    }
    c.signal(pid, signal).await
}

/// Asks the postmaster for a fast shutdown (SIGINT: sessions are ended,
/// unlike SIGTERM's smart shutdown, which waits for them).
pub async fn request_fast_stop(env: &TestEnv, node: &str, pid: u32) -> Result<()> {
    let out = control(env, node)?.exec("kill", &["-INT".into(), pid.to_string()]).await?;
    if out.status != 0 {
        tracing::debug!(node, "kill -INT {pid}: {}", out.stderr.trim());
    }
    Ok(())
}

/// A session with the server at `addr`, or `None` when it does not answer
/// within `timeout`. The connection's task ends with the session.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Option<tokio_postgres::Client> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(addr.ip().to_string())
        .port(addr.port())
        .user("postgres")
        .dbname("postgres")
        .connect_timeout(timeout);
    let connecting = cfg.connect(tokio_postgres::NoTls);
    let (client, conn) = tokio::time::timeout(timeout, connecting).await.ok()?.ok()?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Some(client)
}

/// Whether the server at `addr` is a standby (`Some(true)`), a primary
/// (`Some(false)`), or does not answer.
pub async fn in_recovery(addr: SocketAddr) -> Option<bool> {
    let client = connect(addr, Duration::from_millis(800)).await?;
    let q = client.query_one("SELECT pg_is_in_recovery()", &[]);
    let row = tokio::time::timeout(Duration::from_millis(800), q).await.ok()?.ok()?;
    row.try_get(0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_programs_are_found_in_the_packages_directory() {
        let who = RunAs::Namespaced { uid: 101, gid: 104 };
        let (p, a) = command(&who, "initdb", vec!["-D".into(), "/d".into()]);
        assert_eq!(p, "unshare");
        assert_eq!(
            a,
            ["--user", "--map-user=101", "--map-group=104", &format!("{BIN}/initdb"), "-D", "/d"]
        );
        let (p, a) = command(&RunAs::Itself, "postgres", vec![]);
        assert_eq!(p, format!("{BIN}/postgres"));
        assert!(a.is_empty());
    }
}
