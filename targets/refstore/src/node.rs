//! The tokio shell around a protocol core: it owns the clock, the write-ahead log, the peer
//! transport and the HTTP API, feeds the core its inputs and carries out its `Ready`
//! batches in the order that makes acknowledgements honest (log, then messages and replies).

use crate::clock::Clock;
use crate::core::{Core, Timing};
use crate::http::{self, ApiState};
use crate::modes::bug::Bug;
use crate::modes::crdt::Resolution;
use crate::modes::quorum::QuorumConfig;
use crate::modes::{CoreOptions, CoreSetup, Mode, WithCore};
use crate::transport::{self, Directory, Hello, Outbound};
use crate::types::{ClientOp, CoreStatus, NodeId, Now, OpError, Reply, RequestId};
use crate::wal::{RecoveryPolicy, RecoveryReport, Wal, WalError};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Everything one node needs to start.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id (positive).
    pub id: NodeId,
    /// The replication mode.
    pub mode: Mode,
    /// Address of the client and admin HTTP API.
    pub client_addr: String,
    /// Address peers dial to send this node messages.
    pub peer_addr: String,
    /// For every other node: the address this node dials to reach it.
    pub peers: BTreeMap<NodeId, String>,
    /// Where the write-ahead log lives.
    pub data_dir: PathBuf,
    /// Initial offset of the wall clock from the host clock.
    pub clock_offset_ms: i64,
    /// Timers.
    pub timing: Timing,
    /// What to do with a corrupt log (default: the mode's).
    pub wal_recovery: Option<RecoveryPolicy>,
    /// How long the HTTP API waits for the core before answering `timeout`.
    pub request_timeout: Duration,
    /// Seed of the core's randomness (election timeouts, gossip peers, backoff).
    pub seed: u64,
    /// N, R, W and sloppiness (quorum mode only; the other modes ignore it).
    pub quorum: QuorumConfig,
    /// How concurrent updates merge (multi-leader, eventual and quorum; the other modes
    /// order every update and refuse anything but the default, see [`start`]).
    pub resolution: Resolution,
    /// A protocol bug injected on purpose (off by default; refused outside its mode).
    pub bug: Option<Bug>,
}

/// Failures that stop a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    /// A listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The cores cannot be built with these options: quorum settings that cannot work on
    /// this cluster, a resolution or a bug the mode does not serve.
    #[error(transparent)]
    Core(#[from] crate::modes::CoreError),
    /// The write-ahead log failed: the node stops rather than acknowledge what it cannot keep.
    #[error(transparent)]
    Wal(#[from] WalError),
}

/// A client request on its way from the HTTP API to the core.
pub(crate) struct ClientRequest {
    pub op: ClientOp,
    pub reply: oneshot::Sender<Result<Reply, OpError>>,
}

/// A started node; dropping it does not stop it, [`RunningNode::shutdown`] does.
#[derive(Debug)]
pub struct RunningNode {
    /// The node's id.
    pub id: NodeId,
    /// The bound client API address.
    pub client_addr: String,
    /// The bound peer address.
    pub peer_addr: String,
    stop: CancellationToken,
    core_task: JoinHandle<Result<(), NodeError>>,
    /// The API server and the peer listener; awaited on shutdown so the ports are free.
    io_tasks: Vec<JoinHandle<()>>,
}

impl RunningNode {
    /// Stops the node and waits until its log is closed; returns the error that stopped it
    /// earlier, if any.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        self.stop.cancel();
        self.wait().await
    }

    /// Waits until the node stops by itself (a log failure) or `stop` is cancelled.
    pub async fn wait(self) -> Result<(), NodeError> {
        let result = self.core_task.await.unwrap_or(Ok(()));
        for t in self.io_tasks {
            let _ = t.await;
        }
        result
    }

    /// A token that stops the node when cancelled.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

/// Binds both sockets of `cfg` and starts the node on the current tokio runtime, which must
/// be multi-threaded (log writes block their worker thread while they sync).
pub async fn start(cfg: NodeConfig) -> Result<RunningNode, NodeError> {
    let client = TcpListener::bind(&cfg.client_addr)
        .await
        .map_err(|source| NodeError::Bind { addr: cfg.client_addr.clone(), source })?;
    let peer = TcpListener::bind(&cfg.peer_addr)
        .await
        .map_err(|source| NodeError::Bind { addr: cfg.peer_addr.clone(), source })?;
    start_with_listeners(cfg, client, peer)
}

/// Starts a node on sockets already bound (so tests can use port 0).
pub fn start_with_listeners(
    mut cfg: NodeConfig,
    client: TcpListener,
    peer: TcpListener,
) -> Result<RunningNode, NodeError> {
    if cfg.id == 0 {
        return Err(NodeError::Config("node ids are positive integers"));
    }
    if cfg.peers.contains_key(&cfg.id) {
        return Err(NodeError::Config("--peer names this node's own id"));
    }
    if let Ok(a) = client.local_addr() {
        cfg.client_addr = a.to_string();
    }
    if let Ok(a) = peer.local_addr() {
        cfg.peer_addr = a.to_string();
    }
    let policy = cfg.wal_recovery.unwrap_or(cfg.mode.default_recovery());
    let peers: Vec<NodeId> = cfg.peers.keys().copied().collect();
    let clock = Arc::new(Clock::new(cfg.clock_offset_ms));
    let now = clock.now();
    let (t, s, id) = (cfg.timing, cfg.seed, cfg.id);
    tracing::info!(id, mode = %cfg.mode, seed = s, client = %cfg.client_addr, peer = %cfg.peer_addr, "starting node");
    let stop = CancellationToken::new();
    let shell = Shell::new(&cfg, clock.clone(), stop.clone());
    let nodes = peers.len() + 1;
    let setup = CoreSetup { id, peers, timing: t, seed: s };
    let spawn = Spawn { shell, setup, dir: cfg.data_dir.clone(), policy, client, peer, now };
    // Which core serves the mode, and how it is built, is the modes table's to say.
    let options = CoreOptions { quorum: cfg.quorum, resolution: cfg.resolution, bug: cfg.bug };
    if let Some(bug) = cfg.bug {
        tracing::warn!(%bug, breaks = bug.breaks(), "running with an injected bug");
    }
    let (core_task, io_tasks) = cfg.mode.with_core(nodes, &options, spawn)??;
    Ok(RunningNode {
        id,
        client_addr: cfg.client_addr,
        peer_addr: cfg.peer_addr,
        stop,
        core_task,
        io_tasks,
    })
}

/// Opens the write-ahead log of the mode's record type, recovers the core
/// from it and spawns the node's tasks.
struct Spawn {
    shell: Shell,
    setup: CoreSetup,
    dir: PathBuf,
    policy: RecoveryPolicy,
    client: TcpListener,
    peer: TcpListener,
    now: Now,
}

type Tasks = (JoinHandle<Result<(), NodeError>>, Vec<JoinHandle<()>>);

impl WithCore for Spawn {
    type Output = Result<Tasks, NodeError>;

    fn with<C, F>(self, build: F) -> Self::Output
    where
        C: Core,
        F: Fn(&CoreSetup, Vec<C::Record>, Now) -> C + Clone + Send + Sync + 'static,
    {
        let (wal, recs, report) = open_wal(&self.dir, self.policy)?;
        let core = build(&self.setup, recs, self.now);
        Ok(self.shell.spawn(core, wal, report, self.client, self.peer))
    }
}

fn open_wal<R: DeserializeOwned>(
    dir: &std::path::Path,
    policy: RecoveryPolicy,
) -> Result<(Wal, Vec<R>, RecoveryReport), NodeError> {
    let (wal, records, report) = Wal::open(dir, policy)?;
    if let Some(damage) = &report.damage {
        tracing::error!(path = %wal.path().display(), truncated_bytes = report.truncated_bytes, %damage,
            "write-ahead log was damaged and has been cut");
    }
    tracing::info!(records = report.records, "write-ahead log replayed");
    Ok((wal, records, report))
}

/// The parts of a node that do not depend on the mode.
struct Shell {
    cfg: NodeConfig,
    clock: Arc<Clock>,
    stop: CancellationToken,
    directory: Directory,
}

impl Shell {
    fn new(cfg: &NodeConfig, clock: Arc<Clock>, stop: CancellationToken) -> Self {
        Shell { cfg: cfg.clone(), clock, stop, directory: Directory::default() }
    }

    fn spawn<C: Core>(
        self,
        core: C,
        wal: Wal,
        report: RecoveryReport,
        client: TcpListener,
        peer: TcpListener,
    ) -> Tasks {
        let cfg = &self.cfg;
        let mode = cfg.mode.name().to_string();
        let hello = Hello { id: cfg.id, mode: mode.clone(), client_addr: cfg.client_addr.clone() };
        // Every task of this node logs under its id (a local cluster shares one stderr).
        let span = tracing::info_span!("node", id = cfg.id);
        let outbound = span.in_scope(|| Outbound::start(hello, &cfg.peers, self.stop.clone()));
        let (inbox_tx, inbox_rx) = mpsc::channel(65536);
        let listener = tokio::spawn(
            transport::listen(peer, mode, self.directory.clone(), inbox_tx, self.stop.clone())
                .instrument(span.clone()),
        );
        let (client_tx, client_rx) = mpsc::channel(8192);
        let (status_tx, status_rx) = mpsc::channel(64);
        let api = ApiState {
            id: cfg.id,
            mode: cfg.mode,
            clock: self.clock.clone(),
            directory: self.directory.clone(),
            peers: cfg.peers.clone(),
            request_timeout: cfg.request_timeout,
            wal: Arc::new(report),
            client_tx,
            status_tx,
        };
        let server =
            tokio::spawn(http::serve(client, api, self.stop.clone()).instrument(span.clone()));
        let stop = self.stop.clone();
        let lp = Loop {
            core,
            wal,
            clock: self.clock,
            outbound,
            id: cfg.id,
            tick: cfg.timing.tick_ms,
            pending: BTreeMap::new(),
            next_req: 1,
            last_role: None,
        };
        let core = tokio::spawn(
            async move {
                let result = lp.run(inbox_rx, client_rx, status_rx, stop.clone()).await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, "node stopped");
                }
                // Whatever stopped the loop stops the transport and the API too.
                stop.cancel();
                result
            }
            .instrument(span),
        );
        (core, vec![listener, server])
    }
}

/// The single task that owns the core.
struct Loop<C: Core> {
    core: C,
    wal: Wal,
    clock: Arc<Clock>,
    outbound: Outbound,
    id: NodeId,
    tick: u64,
    pending: BTreeMap<RequestId, oneshot::Sender<Result<Reply, OpError>>>,
    next_req: RequestId,
    last_role: Option<(&'static str, u64, Option<NodeId>)>,
}

impl<C: Core> Loop<C> {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<(NodeId, Bytes)>,
        mut clients: mpsc::Receiver<ClientRequest>,
        mut status: mpsc::Receiver<oneshot::Sender<CoreStatus>>,
        stop: CancellationToken,
    ) -> Result<(), NodeError> {
        let mut ticker = tokio::time::interval(Duration::from_millis(self.tick.max(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = ticker.tick() => {
                    self.core.tick(self.clock.now());
                    self.log_role_change();
                }
                Some((from, bytes)) = inbox.recv() => self.on_message(from, &bytes),
                Some(req) = clients.recv() => self.on_client(req),
                Some(tx) = status.recv() => { let _ = tx.send(self.core.status()); }
            }
            // Take whatever else is already waiting so one log write covers all of it
            // (group commit).
            for _ in 0..512 {
                if let Ok((from, bytes)) = inbox.try_recv() {
                    self.on_message(from, &bytes);
                } else if let Ok(req) = clients.try_recv() {
                    self.on_client(req);
                } else {
                    break;
                }
            }
            self.flush()?;
        }
    }

    /// Logs when the node's role, leader or (in the leader modes) term changed since the
    /// last tick, so node logs show elections and failovers. Leaderless modes report a
    /// logical clock as their term, which moves with every write, so it is left out there.
    fn log_role_change(&mut self) {
        let s = self.core.status();
        let term = if s.role == "peer" { 0 } else { s.term };
        let now = (s.role, term, s.leader);
        if self.last_role != Some(now) {
            tracing::info!(role = s.role, term = s.term, leader = ?s.leader, "role");
            self.last_role = Some(now);
        }
    }

    fn on_message(&mut self, from: NodeId, bytes: &[u8]) {
        match serde_json::from_slice::<C::Msg>(bytes) {
            Ok(msg) => self.core.step(self.clock.now(), from, msg),
            Err(e) => tracing::warn!(from, error = %e, "undecodable peer message dropped"),
        }
    }

    fn on_client(&mut self, req: ClientRequest) {
        let id = self.next_req;
        self.next_req += 1;
        self.pending.insert(id, req.reply);
        self.core.propose(self.clock.now(), id, req.op);
    }

    /// Carries out the core's `Ready`: log first, then messages and replies.
    fn flush(&mut self) -> Result<(), NodeError> {
        let ready = self.core.take_ready();
        if ready.is_empty() {
            return Ok(());
        }
        if !ready.persist.is_empty() {
            // fsync blocks; let the runtime move other tasks off this worker meanwhile.
            let (wal, persist, sync) = (&mut self.wal, &ready.persist, ready.sync);
            tokio::task::block_in_place(|| wal.append(persist, sync))?;
        }
        for (to, msg) in ready.messages {
            if to == self.id {
                continue;
            }
            match serde_json::to_vec(&msg) {
                Ok(b) => self.outbound.send(to, Bytes::from(b)),
                Err(e) => tracing::error!(to, error = %e, "cannot encode a peer message"),
            }
        }
        for (req, result) in ready.replies {
            if let Some(tx) = self.pending.remove(&req) {
                let _ = tx.send(result);
            }
        }
        // Clients that gave up leave closed channels behind; forget them.
        if self.pending.len() > 4096 {
            self.pending.retain(|_, tx| !tx.is_closed());
        }
        Ok(())
    }
}
