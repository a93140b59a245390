//! The command line: `refstore --mode M --id N ...` runs one node, `refstore cluster ...`
//! runs a whole local cluster. [`main_from_args`] is what both the `refstore` binary and the
//! hidden `faultline refstore` subcommand call.

use crate::cluster::{LocalCluster, Ports};
use crate::core::Timing;
use crate::modes::Mode;
use crate::modes::bug::Bug;
use crate::modes::crdt::Resolution;
use crate::modes::quorum::QuorumConfig;
use crate::node::{self, NodeConfig};
use crate::types::NodeId;
use crate::wal::RecoveryPolicy;
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "refstore",
    about = "faultline's reference replicated key-value store",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a whole cluster on this machine in the foreground (Ctrl-C stops it).
    Cluster(ClusterArgs),
}

#[derive(Args, Debug)]
struct NodeArgs {
    /// Replication mode (every node of a cluster must use the same).
    #[arg(long, value_enum, required = true)]
    mode: Option<Mode>,
    /// This node's id, a small positive integer.
    #[arg(long, required = true)]
    id: Option<NodeId>,
    /// HOST:PORT of the client and admin HTTP API.
    #[arg(long, required = true)]
    client_addr: Option<String>,
    /// HOST:PORT where peers connect to send this node messages.
    #[arg(long, required = true)]
    peer_addr: Option<String>,
    /// ID=HOST:PORT: the address this node dials to reach peer ID (once per other node).
    #[arg(long = "peer", value_parser = parse_peer)]
    peers: Vec<(NodeId, String)>,
    /// Directory of this node's write-ahead log.
    #[arg(long, required = true)]
    data_dir: Option<PathBuf>,
    /// Initial offset of this node's wall clock from the host clock, in milliseconds.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    clock_offset_ms: i64,
    /// Log filter (error, warn, info, debug, trace, or a tracing filter directive).
    #[arg(long, default_value = "info")]
    log_level: String,
    /// What to do when the write-ahead log fails a checksum (default: refuse in raft, paxos,
    /// sync and causal; truncate in async, multi-leader and eventual).
    #[arg(long, value_enum)]
    wal_recovery: Option<RecoveryArg>,
    /// How long the API waits for an outcome before answering `timeout`.
    #[arg(long, default_value_t = 5000)]
    request_timeout_ms: u64,
    /// How often an async primary ships newly acknowledged entries to its backups (async
    /// mode only; default 200). What it acknowledged since its last shipment is lost when
    /// it crashes and a backup takes over.
    #[arg(long)]
    ship_interval_ms: Option<u64>,
    /// Seed of the node's randomness (default: derived from the id and the time; logged).
    #[arg(long)]
    seed: Option<u64>,
    /// Replicas per key (quorum mode only; default 3, at most the cluster's size).
    #[arg(long)]
    quorum_n: Option<usize>,
    /// Replicas a read waits for (quorum mode only; default a majority of N).
    #[arg(long)]
    quorum_r: Option<usize>,
    /// Replicas a write waits for (quorum mode only; default a majority of N).
    #[arg(long)]
    quorum_w: Option<usize>,
    /// Whether live non-replicas may take writes for unreachable replicas as hints and count
    /// towards W (quorum mode only; default true).
    #[arg(long, action = clap::ArgAction::Set)]
    sloppy_quorum: Option<bool>,
    /// How concurrent updates of a key merge (multi-leader, eventual and quorum only; default
    /// lww): the highest version wins, or appends, adds and increments merge without loss
    /// (crdt, which refuses register writes), or concurrent versions are all kept and read
    /// back (siblings, quorum only).
    #[arg(long, value_enum)]
    resolution: Option<Resolution>,
    /// Inject a classic protocol bug, on purpose, to measure whether tests find it (off by
    /// default; each bug belongs to one mode and is refused in the others; see the README's
    /// "Injected bugs").
    #[arg(long, value_enum)]
    bug: Option<Bug>,
}

#[derive(Args, Debug)]
struct ClusterArgs {
    /// Replication mode.
    #[arg(long, value_enum)]
    mode: Mode,
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Node i serves clients on BASE+i-1 and peers on BASE+100+i-1; 0 picks free ports.
    /// Each node's addresses are printed either way.
    #[arg(long, default_value_t = 7000)]
    base_port: u16,
    /// Host to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Directory for the nodes' logs (node i uses DIR/n<i>).
    #[arg(long)]
    data_dir: PathBuf,
    /// Log filter.
    #[arg(long, default_value = "info")]
    log_level: String,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum RecoveryArg {
    Refuse,
    Truncate,
}

/// Errors of a command-line value.
#[derive(Debug, thiserror::Error)]
enum PeerArgError {
    #[error("expected ID=HOST:PORT, got {0:?}")]
    Shape(String),
    #[error("peer id {0:?} is not a positive integer")]
    Id(String),
}

fn parse_peer(s: &str) -> Result<(NodeId, String), PeerArgError> {
    let (id, addr) = s.split_once('=').ok_or_else(|| PeerArgError::Shape(s.into()))?;
    let id: NodeId = id.trim().parse().map_err(|_| PeerArgError::Id(id.into()))?;
    if id == 0 || addr.is_empty() {
        return Err(if id == 0 {
            PeerArgError::Id("0".into())
        } else {
            PeerArgError::Shape(s.into())
        });
    }
    Ok((id, addr.to_string()))
}

/// Runs the `refstore` command line. `args` excludes the program name. Builds its own tokio
/// runtime; returns 0 after a clean stop (Ctrl-C or SIGTERM), 1 when a node fails (bad log,
/// port in use) and 2 for bad arguments.
pub fn main_from_args(args: Vec<String>) -> ExitCode {
    let cli = match Cli::try_parse_from(std::iter::once("refstore".to_string()).chain(args)) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let log_level = match &cli.command {
        Some(Command::Cluster(c)) => c.log_level.clone(),
        None => cli.node.log_level.clone(),
    };
    match tracing_subscriber::EnvFilter::try_new(&log_level) {
        Ok(filter) => {
            // A host program (faultline) may have installed a subscriber already.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .try_init();
        }
        Err(e) => {
            eprintln!("refstore: invalid --log-level {log_level:?}: {e}");
            return ExitCode::from(2);
        }
    }
    let runtime =
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                eprintln!("refstore: cannot start the async runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
    let result = runtime.block_on(async move {
        match cli.command {
            Some(Command::Cluster(c)) => run_cluster(c).await,
            None => run_node(cli.node).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("refstore: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why the command stopped with an error.
#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Node(#[from] node::NodeError),
    #[error("duplicate --peer for node {0}")]
    DuplicatePeer(NodeId),
    #[error(
        "--ship-interval-ms {0}: only async mode ships in batches, and the interval must be positive"
    )]
    ShipInterval(u64),
    #[error("{0} is a setting of quorum mode only; mode {1} does not read it")]
    NotQuorum(&'static str, Mode),
    #[error("cannot wait for signals: {0}")]
    Signal(std::io::Error),
}

async fn run_node(mut a: NodeArgs) -> Result<(), RunError> {
    // clap enforces the required options; these defaults are never used.
    let id = a.id.unwrap_or(0);
    let mut peers = BTreeMap::new();
    for (pid, addr) in std::mem::take(&mut a.peers) {
        if peers.insert(pid, addr).is_some() {
            return Err(RunError::DuplicatePeer(pid));
        }
    }
    let mut timing = Timing::default();
    if let Some(ms) = a.ship_interval_ms {
        if a.mode != Some(Mode::Async) || ms == 0 {
            return Err(RunError::ShipInterval(ms));
        }
        timing.ship_ms = ms;
    }
    let mode = a.mode.unwrap_or(Mode::Raft);
    let quorum = quorum_config(&a, mode)?;
    let seed = a.seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    });
    let cfg = NodeConfig {
        id,
        mode,
        client_addr: a.client_addr.unwrap_or_default(),
        peer_addr: a.peer_addr.unwrap_or_default(),
        peers,
        data_dir: a.data_dir.unwrap_or_default(),
        clock_offset_ms: a.clock_offset_ms,
        timing: Timing { request_ms: a.request_timeout_ms.saturating_sub(500).max(100), ..timing },
        wal_recovery: a.wal_recovery.map(|r| match r {
            RecoveryArg::Refuse => RecoveryPolicy::Refuse,
            RecoveryArg::Truncate => RecoveryPolicy::Truncate,
        }),
        request_timeout: Duration::from_millis(a.request_timeout_ms),
        seed,
        quorum,
        resolution: a.resolution.unwrap_or_default(),
        bug: a.bug,
    };
    let running = node::start(cfg).await?;
    let stop = running.stop_token();
    tokio::select! {
        r = shutdown_signal() => { r?; tracing::info!("stopping"); running.shutdown().await?; }
        _ = stop.cancelled() => running.wait().await?,
    }
    Ok(())
}

/// The quorum settings of the command line, refused by name in any other mode (a setting
/// that is silently ignored would make a test measure something else than it says).
fn quorum_config(a: &NodeArgs, mode: Mode) -> Result<QuorumConfig, RunError> {
    let given = [
        ("--quorum-n", a.quorum_n.is_some()),
        ("--quorum-r", a.quorum_r.is_some()),
        ("--quorum-w", a.quorum_w.is_some()),
        ("--sloppy-quorum", a.sloppy_quorum.is_some()),
    ];
    if mode != Mode::Quorum
        && let Some((flag, _)) = given.iter().find(|(_, set)| *set)
    {
        return Err(RunError::NotQuorum(flag, mode));
    }
    let d = QuorumConfig::default();
    Ok(QuorumConfig {
        n: a.quorum_n.unwrap_or(d.n),
        r: a.quorum_r,
        w: a.quorum_w,
        sloppy: a.sloppy_quorum.unwrap_or(d.sloppy),
    })
}

async fn run_cluster(c: ClusterArgs) -> Result<(), RunError> {
    let ports = if c.base_port == 0 { Ports::Ephemeral } else { Ports::Base(c.base_port) };
    let cluster =
        LocalCluster::start(c.mode, c.nodes, &c.host, ports, &c.data_dir, Timing::default())
            .await?;
    for (id, node) in &cluster.nodes {
        println!("node {id} client http://{} peer {}", node.client_addr, node.peer_addr);
    }
    println!("{} cluster of {} nodes running; Ctrl-C stops it", c.mode, c.nodes);
    shutdown_signal().await?;
    cluster.shutdown().await?;
    Ok(())
}

async fn shutdown_signal() -> Result<(), RunError> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(RunError::Signal)?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map_err(RunError::Signal),
        _ = term.recv() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_arguments_parse_or_explain() {
        assert_eq!(parse_peer("2=127.0.0.1:7101").ok(), Some((2, "127.0.0.1:7101".to_string())));
        assert!(parse_peer("127.0.0.1:7101").is_err());
        assert!(parse_peer("0=127.0.0.1:1").is_err());
        assert!(parse_peer("x=127.0.0.1:1").is_err());
    }

    #[test]
    fn the_documented_node_command_line_parses() {
        let args = [
            "refstore",
            "--mode",
            "multi-leader",
            "--id",
            "1",
            "--client-addr",
            "127.0.0.1:7000",
            "--peer-addr",
            "127.0.0.1:7100",
            "--peer",
            "2=127.0.0.1:7101",
            "--peer",
            "3=127.0.0.1:7102",
            "--data-dir",
            "/tmp/x",
            "--clock-offset-ms",
            "-250",
        ];
        let cli = Cli::try_parse_from(args).expect("documented flags parse");
        assert_eq!(cli.node.mode, Some(Mode::MultiLeader));
        assert_eq!(cli.node.peers.len(), 2);
        assert_eq!(cli.node.clock_offset_ms, -250);
        let cluster = Cli::try_parse_from([
            "refstore",
            "cluster",
            "--mode",
            "raft",
            "--nodes",
            "3",
            "--base-port",
            "7000",
            "--data-dir",
            "/tmp/c",
        ])
        .expect("cluster flags parse");
        assert!(matches!(cluster.command, Some(Command::Cluster(ClusterArgs { nodes: 3, .. }))));
        assert!(Cli::try_parse_from(["refstore", "--mode", "raft"]).is_err());
    }
}
