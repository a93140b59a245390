//! The simulated world: refstore's protocol cores as nodes, a network, disks
//! and clocks, driven by one queue of events ordered by (simulated time,
//! sequence number), so the same seed replays the same run event for event.
//!
//! A node is a core built by the mode's own builder (`Mode::with_core`, the
//! one the real node shell uses). Its `Ready` batches are carried out as the
//! shell does: records to its disk first (marked synced when the batch
//! says `sync`), then messages into the network and replies back to the
//! clients. The network gives every directed link a base latency drawn at
//! the start, adds seeded jitter to each message (which reorders them),
//! drops and duplicates messages with set probabilities, and drops what a
//! cut link carries when it arrives (partitions, one-way included). Clocks
//! have per-node offsets and drift, and the clock nemesis moves a node's
//! wall clock on top of them (bumps, strobes, skews); the packet nemesis
//! shapes links as the `local` runtime's proxies shape a TCP stream. A
//! crash loses the core, its buffered input and the client requests it
//! held, and keeps what it synced; what it had written but not synced
//! survives whole, or (a seeded choice) only in part, as after a power cut.
//! The file nemesis damages or rolls back a node's log as bytes, framed as
//! refstore's write-ahead log, and the node recovers from them through
//! refstore's own recovery. A pause holds a node's input until it resumes,
//! as a stopped process's sockets do.
//!
//! Nothing here reads a clock, the OS's entropy or a `HashMap` order: time
//! is the queue's, and each concern (links, message fates, disks, clocks)
//! draws from its own ChaCha stream of the seed.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::path::Path;

use harness::node::LinkShape;
use harness::runtime::shape::{Fate, Mode as ShapeMode, Shaper};
use nemesis::ClockDraw;
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use refstore::core::{Core, Timing};
use refstore::modes::{CoreOptions, CoreSetup, Mode, WithCore};
use refstore::types::{ClientOp, NodeId, Now, OpError, Reply, RequestId};
use refstore::wal::{self, RecoveryPolicy, RecoveryReport, WalError};

use crate::SimError;

/// Simulated nanoseconds since the world began.
pub type Ns = u64;

/// One simulated millisecond.
pub const MS: Ns = 1_000_000;

/// The wall clock of every node at simulated time 0 (2026-01-01T00:00:00Z,
/// in microseconds): a fixed date, so histories and last-write-wins
/// timestamps do not depend on when the simulation ran.
const EPOCH_US: i64 = 1_767_225_600_000_000;

/// The settings of the simulated network, disks and clocks.
#[derive(Clone, Debug, PartialEq)]
pub struct WorldConfig {
    /// Each directed link's base latency is drawn uniformly from this range
    /// (milliseconds) when the world starts.
    pub latency_ms: (f64, f64),
    /// Each message waits its link's base latency plus an exponential
    /// jitter with this mean, as a fraction of the base; jitter is what
    /// reorders messages on a link.
    pub jitter: f64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// One-way latency between a client and a node (milliseconds).
    pub client_latency_ms: f64,
    /// Probability that a crash also loses (a seeded part of) what the node
    /// wrote but did not sync, as a power cut does; otherwise a crash keeps
    /// every record written, as a killed process's page cache does.
    pub lose_unsynced: f64,
    /// Each node's wall clock is offset from simulated time by up to this
    /// many milliseconds either way.
    pub clock_offset_ms: i64,
    /// Each node's monotonic clock runs fast or slow by up to this many
    /// parts per million.
    pub drift_ppm: i64,
    /// The cores' timers (the real nodes' defaults).
    pub timing: Timing,
}

impl Default for WorldConfig {
    fn default() -> Self {
        WorldConfig {
            latency_ms: (0.2, 2.0),
            jitter: 0.5,
            loss: 0.01,
            duplicate: 0.01,
            client_latency_ms: 0.5,
            lose_unsynced: 0.5,
            clock_offset_ms: 50,
            drift_ppm: 200,
            timing: Timing::default(),
        }
    }
}

impl WorldConfig {
    /// Refuses settings that cannot describe a network.
    pub fn validate(&self) -> Result<(), SimError> {
        let prob = |name: &'static str, p: f64| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(SimError::Config { field: name, why: format!("{p} is not a probability") })
            }
        };
        prob("loss", self.loss)?;
        prob("duplicate", self.duplicate)?;
        prob("lose_unsynced", self.lose_unsynced)?;
        let (lo, hi) = self.latency_ms;
        if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
            return Err(SimError::Config {
                field: "latency_ms",
                why: format!("{lo}..{hi} is not a range of non-negative milliseconds"),
            });
        }
        if !(self.jitter.is_finite() && self.jitter >= 0.0) {
            return Err(SimError::Config { field: "jitter", why: "must be ≥ 0".into() });
        }
        if !(self.client_latency_ms.is_finite() && self.client_latency_ms >= 0.0) {
            return Err(SimError::Config {
                field: "client_latency_ms", why: "must be ≥ 0".into()
            });
        }
        if self.clock_offset_ms < 0 {
            return Err(SimError::Config {
                field: "clock_offset_ms",
                why: format!("{} is negative; it bounds offsets either way", self.clock_offset_ms),
            });
        }
        // A clock running backwards (drift of a million parts per million
        // or more) would make the monotonic clock non-monotonic.
        if !(0..1_000_000).contains(&self.drift_ppm) {
            return Err(SimError::Config {
                field: "drift_ppm",
                why: format!("{} is not in 0..1000000; it bounds drift either way", self.drift_ppm),
            });
        }
        if self.timing.tick_ms == 0 {
            return Err(SimError::Config {
                field: "timing.tick_ms",
                why: "must be positive".into(),
            });
        }
        Ok(())
    }
}

/// What became of a client request.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// The node's core answered.
    Reply(Result<Reply, OpError>),
    /// The node was down when the request arrived: nothing was sent to any
    /// core (a refused connection).
    Refused,
    /// The node crashed while it held the request: it may or may not have
    /// taken effect (a connection closed under it).
    Closed,
}

/// Counters of what the world did, for reports and the throughput figure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorldStats {
    /// Events processed.
    pub events: u64,
    /// Messages the cores sent.
    pub sent: u64,
    /// Messages lost at random.
    pub lost: u64,
    /// Messages delivered twice.
    pub duplicated: u64,
    /// Messages dropped by a cut link, or because the receiver was down.
    pub dropped: u64,
}

/// The world as the driver sees it, whatever the mode's core type.
pub trait Cluster: Send {
    /// The simulated time.
    fn now(&self) -> Ns;
    /// When the next event happens (there always is one while nodes tick).
    fn next_time(&self) -> Option<Ns>;
    /// Moves time forward to `t` without processing anything (nothing may be
    /// due before `t`).
    fn advance_to(&mut self, t: Ns);
    /// Processes the next event; a client request's answer when that event
    /// delivered one to its client.
    fn step(&mut self) -> Option<(u64, Answer)>;
    /// A client sends request `req` to node `node` (0-based) now.
    fn request(&mut self, node: usize, req: u64, op: ClientOp);
    /// Crashes `node`; false when it was already down.
    fn crash(&mut self, node: usize) -> bool;
    /// Restarts a crashed `node` from what its disk kept; false when it was up.
    fn restart(&mut self, node: usize) -> bool;
    /// Pauses `node`; false when it was down or already paused.
    fn pause(&mut self, node: usize) -> bool;
    /// Resumes a paused `node`; false when it was not paused.
    fn resume(&mut self, node: usize) -> bool;
    /// Whether `node` is running (up, paused or not).
    fn is_up(&self, node: usize) -> bool;
    /// The directed links `(from, to)` that drop everything, replacing the
    /// previous set.
    fn set_cut(&mut self, cut: BTreeSet<(usize, usize)>);
    /// Shapes what the directed link `from → to` carries from now on
    /// (`None` restores it), as the `local` runtime's proxies shape a real
    /// link: delay, jitter and rate in order, a loss costing a
    /// retransmission timeout, because the peers talk over TCP.
    fn set_link_shape(&mut self, from: usize, to: usize, shape: Option<LinkShape>);
    /// The bytes of `node`'s log file as a real node's would hold them:
    /// every record it wrote, synced or not (a killed process's page cache
    /// keeps what it wrote), framed as refstore's write-ahead log frames it.
    fn disk_image(&self, node: usize) -> Result<Vec<u8>, WalError>;
    /// Replaces the disk of `node`, which is down, by the log file `bytes`
    /// as refstore's recovery reads it under `policy` (`path` names the
    /// file in its errors): what recovery keeps is the disk, synced, and
    /// what it cuts is gone. When recovery refuses to start, the disk is
    /// left as it was and the error says why.
    fn recover_disk(
        &mut self,
        node: usize,
        path: &Path,
        bytes: &[u8],
        policy: RecoveryPolicy,
    ) -> Result<RecoveryReport, WalError>;
    /// Puts the clock nemesis's fault on `node`'s wall clock from now on
    /// (`None` puts it back to the node's own time), on top of the node's
    /// own offset and drift, as `/admin/clock` shifts a real node's wall
    /// clock from its host's; false when the node is down (a real node
    /// that is down refuses the request).
    fn set_clock_fault(&mut self, node: usize, fault: Option<ClockDraw>) -> bool;
    /// The nodes whose cores say they lead (leader or primary), as the real
    /// database's `primaries` reads `/admin/status`.
    fn primaries(&self) -> Vec<usize>;
    /// What the world did so far.
    fn stats(&self) -> WorldStats;
}

/// Builds a world of `nodes` nodes of `mode` (cores built with `options`:
/// quorum settings, conflict resolution, injected bug) from `seed`.
pub fn build(
    mode: Mode,
    nodes: u32,
    options: &CoreOptions,
    config: &WorldConfig,
    seed: u64,
) -> Result<Box<dyn Cluster>, SimError> {
    config.validate()?;
    if nodes == 0 {
        return Err(SimError::Config { field: "nodes", why: "a cluster needs a node".into() });
    }
    let maker = Maker { nodes, config: config.clone(), seed };
    Ok(mode.with_core(nodes as usize, options, maker)?)
}

/// The [`WithCore`] that builds a world once the core type is known.
struct Maker {
    nodes: u32,
    config: WorldConfig,
    seed: u64,
}

/// The streams of the seed, one per concern, so that changing how one
/// concern draws (more messages, another fault) shifts no other's choices.
/// Stream 0 is left to the workload's generator, which is seeded as in a
/// real run.
mod stream {
    pub const LINKS: u64 = 1;
    pub const MESSAGES: u64 = 2;
    pub const DISKS: u64 = 3;
    pub const CLOCKS: u64 = 4;
    pub const CORES: u64 = 5;
}

/// A ChaCha generator for one concern of `seed`.
pub fn stream_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

impl WithCore for Maker {
    type Output = Box<dyn Cluster>;

    fn with<C, F>(self, build: F) -> Box<dyn Cluster>
    where
        C: Core,
        F: Fn(&CoreSetup, Vec<C::Record>, Now) -> C + Clone + Send + Sync + 'static,
    {
        let n = self.nodes as usize;
        let cfg = self.config;
        let mut links_rng = stream_rng(self.seed, stream::LINKS);
        let mut clocks_rng = stream_rng(self.seed, stream::CLOCKS);
        let mut cores_rng = stream_rng(self.seed, stream::CORES);
        let (lo, hi) = cfg.latency_ms;
        let latency: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                (0..n).map(|_| if hi > lo { links_rng.random_range(lo..hi) } else { lo }).collect()
            })
            .collect();
        let ids: Vec<NodeId> = (1..=n as u64).collect();
        let mut world = World {
            build,
            nodes: Vec::with_capacity(n),
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            cut: BTreeSet::new(),
            shapers: BTreeMap::new(),
            latency,
            messages_rng: stream_rng(self.seed, stream::MESSAGES),
            disks_rng: stream_rng(self.seed, stream::DISKS),
            stats: WorldStats::default(),
            tick: cfg.timing.tick_ms * MS,
            config: cfg,
        };
        for (i, id) in ids.iter().enumerate() {
            let setup = CoreSetup {
                id: *id,
                peers: ids.clone(),
                timing: world.config.timing,
                seed: cores_rng.random(),
            };
            let offset = world.config.clock_offset_ms;
            let drift = world.config.drift_ppm;
            let node = Node {
                core: None,
                setup,
                paused: false,
                held: Vec::new(),
                disk: Vec::new(),
                synced: 0,
                pending: BTreeMap::new(),
                next_req: 1,
                clock_offset_ms: if offset > 0 {
                    clocks_rng.random_range(-offset..=offset)
                } else {
                    0
                },
                drift_ppm: if drift > 0 { clocks_rng.random_range(-drift..=drift) } else { 0 },
                clock_fault: None,
            };
            world.nodes.push(node);
            // Ticks start at a random phase, as independent processes' timers do.
            let phase = clocks_rng.random_range(0..world.tick);
            world.push(phase, Ev::Tick(i));
        }
        for i in 0..n {
            world.boot(i);
        }
        Box::new(world)
    }
}

/// One node: its core (none while crashed) and everything that outlives it.
struct Node<C: Core> {
    core: Option<C>,
    setup: CoreSetup,
    paused: bool,
    /// Input that arrived while paused, delivered in order on resume.
    held: Vec<Ev<C::Msg>>,
    /// Every record written, in order; the first `synced` are fsynced.
    disk: Vec<C::Record>,
    synced: usize,
    /// The client requests the core holds: its request id to the client's.
    pending: BTreeMap<RequestId, u64>,
    next_req: RequestId,
    clock_offset_ms: i64,
    drift_ppm: i64,
    /// The clock nemesis's fault and when it began: an offset the real
    /// node keeps in memory, so a crash forgets it.
    clock_fault: Option<(ClockDraw, Ns)>,
}

/// Something that happens at a simulated time.
enum Ev<M> {
    /// A node's timer fires.
    Tick(usize),
    /// A message arrives.
    Deliver { from: usize, to: usize, msg: M },
    /// A client request arrives at a node.
    Request { node: usize, req: u64, op: ClientOp },
    /// An answer arrives at its client.
    Answer { req: u64, answer: Answer },
}

/// A queued event; the heap pops the smallest (time, sequence) first.
struct Entry<M> {
    time: Ns,
    seq: u64,
    ev: Ev<M>,
}

impl<M> PartialEq for Entry<M> {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl<M> Eq for Entry<M> {}
impl<M> PartialOrd for Entry<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for Entry<M> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap.
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

struct World<C: Core, F> {
    build: F,
    nodes: Vec<Node<C>>,
    queue: BinaryHeap<Entry<C::Msg>>,
    seq: u64,
    now: Ns,
    cut: BTreeSet<(usize, usize)>,
    /// The packet nemesis's shapers of directed links `(from, to)`.
    shapers: BTreeMap<(usize, usize), Shaper>,
    /// Base latency of each directed link, milliseconds: `latency[from][to]`.
    latency: Vec<Vec<f64>>,
    messages_rng: ChaCha8Rng,
    disks_rng: ChaCha8Rng,
    stats: WorldStats,
    tick: Ns,
    config: WorldConfig,
}

fn ms_to_ns(ms: f64) -> Ns {
    (ms * MS as f64).round().max(0.0) as Ns
}

impl<C, F> World<C, F>
where
    C: Core,
    F: Fn(&CoreSetup, Vec<C::Record>, Now) -> C + Send + 'static,
{
    fn push(&mut self, time: Ns, ev: Ev<C::Msg>) {
        self.seq += 1;
        self.queue.push(Entry { time, seq: self.seq, ev });
    }

    /// What node `i`'s clocks say now.
    fn clock(&self, i: usize) -> Now {
        let node = &self.nodes[i];
        let ms = self.now / MS;
        let drifted = ms as i128 * (1_000_000 + i128::from(node.drift_ppm)) / 1_000_000;
        // Monotonic time starts at 1 so that "never" (0) stays in the past.
        let mono_ms = u64::try_from(drifted).unwrap_or(0) + 1;
        let fault_ms =
            node.clock_fault.map_or(0, |(fault, began)| fault.offset_at((self.now - began) / MS));
        let wall_us =
            EPOCH_US + (self.now / 1000) as i64 + (node.clock_offset_ms + fault_ms) * 1000;
        Now { mono_ms, wall_us }
    }

    /// Builds node `i`'s core from what its disk holds.
    fn boot(&mut self, i: usize) {
        let now = self.clock(i);
        let node = &mut self.nodes[i];
        node.core = Some((self.build)(&node.setup, node.disk.clone(), now));
        node.paused = false;
        self.flush(i);
    }

    /// Carries out node `i`'s `Ready` as the shell does: disk, then
    /// messages and replies.
    fn flush(&mut self, i: usize) {
        let Some(core) = self.nodes[i].core.as_mut() else { return };
        let ready = core.take_ready();
        let node = &mut self.nodes[i];
        node.disk.extend(ready.persist);
        if ready.sync {
            node.synced = node.disk.len();
        }
        for (to, msg) in ready.messages {
            let Some(to) =
                (to as usize).checked_sub(1).filter(|t| *t < self.nodes.len() && *t != i)
            else {
                continue;
            };
            self.send(i, to, msg);
        }
        let back = ms_to_ns(self.config.client_latency_ms);
        for (rid, result) in ready.replies {
            if let Some(req) = self.nodes[i].pending.remove(&rid) {
                self.push(self.now + back, Ev::Answer { req, answer: Answer::Reply(result) });
            }
        }
    }

    fn delay(&mut self, from: usize, to: usize) -> Ns {
        let base = self.latency[from][to];
        let mean = base * self.config.jitter;
        let jitter = if mean > 0.0 {
            // Exponential by inversion; 1 - u is in (0, 1].
            let u: f64 = self.messages_rng.random();
            -mean * (1.0 - u).ln()
        } else {
            0.0
        };
        ms_to_ns(base + jitter).max(1)
    }

    /// How long the shaper of `from → to`, if any, holds a message
    /// leaving now. The size it is charged (for a rate limit) is its
    /// encoding on the wire: the JSON payload and the frame's 4-byte length.
    fn shaped(&mut self, from: usize, to: usize, msg: &C::Msg) -> Ns {
        let Some(shaper) = self.shapers.get_mut(&(from, to)) else { return 0 };
        let len = if shaper.shape().rate > 0 {
            serde_json::to_vec(msg).map_or(0, |b| b.len()) + 4
        } else {
            0
        };
        let now = std::time::Duration::from_nanos(self.now);
        match shaper.admit(now, len) {
            Fate::Send { at, .. } => {
                u64::try_from(at.saturating_sub(now).as_nanos()).unwrap_or(u64::MAX)
            }
            // A stream shaper never loses a chunk: a loss is a retransmission delay.
            Fate::Lost => 0,
        }
    }

    fn send(&mut self, from: usize, to: usize, msg: C::Msg) {
        self.stats.sent += 1;
        if self.messages_rng.random_bool(self.config.loss) {
            self.stats.lost += 1;
            return;
        }
        let held = self.shaped(from, to, &msg);
        if self.messages_rng.random_bool(self.config.duplicate) {
            self.stats.duplicated += 1;
            let d = self.delay(from, to);
            self.push(self.now + held + d, Ev::Deliver { from, to, msg: msg.clone() });
        }
        let d = self.delay(from, to);
        self.push(self.now + held + d, Ev::Deliver { from, to, msg });
    }

    /// Handles one event at node level; an answer for a client if it was one.
    fn handle(&mut self, ev: Ev<C::Msg>) -> Option<(u64, Answer)> {
        match ev {
            Ev::Answer { req, answer } => return Some((req, answer)),
            Ev::Tick(i) => {
                let next = self.now + self.tick;
                self.push(next, Ev::Tick(i));
                let node = &self.nodes[i];
                if node.core.is_some() && !node.paused {
                    let now = self.clock(i);
                    if let Some(core) = self.nodes[i].core.as_mut() {
                        core.tick(now);
                    }
                    self.flush(i);
                }
            }
            Ev::Deliver { from, to, msg } => {
                if self.cut.contains(&(from, to)) || self.nodes[to].core.is_none() {
                    self.stats.dropped += 1;
                } else if self.nodes[to].paused {
                    self.nodes[to].held.push(Ev::Deliver { from, to, msg });
                } else {
                    let now = self.clock(to);
                    if let Some(core) = self.nodes[to].core.as_mut() {
                        core.step(now, from as NodeId + 1, msg);
                    }
                    self.flush(to);
                }
            }
            Ev::Request { node, req, op } => {
                if self.nodes[node].core.is_none() {
                    let back = ms_to_ns(self.config.client_latency_ms);
                    self.push(self.now + back, Ev::Answer { req, answer: Answer::Refused });
                } else if self.nodes[node].paused {
                    self.nodes[node].held.push(Ev::Request { node, req, op });
                } else {
                    let now = self.clock(node);
                    let n = &mut self.nodes[node];
                    let rid = n.next_req;
                    n.next_req += 1;
                    n.pending.insert(rid, req);
                    if let Some(core) = n.core.as_mut() {
                        core.propose(now, rid, op);
                    }
                    self.flush(node);
                }
            }
        }
        None
    }
}

impl<C, F> Cluster for World<C, F>
where
    C: Core,
    F: Fn(&CoreSetup, Vec<C::Record>, Now) -> C + Send + 'static,
{
    fn now(&self) -> Ns {
        self.now
    }

    fn next_time(&self) -> Option<Ns> {
        self.queue.peek().map(|e| e.time)
    }

    fn advance_to(&mut self, t: Ns) {
        debug_assert!(self.next_time().is_none_or(|n| n >= t), "advanced past an event");
        self.now = self.now.max(t);
    }

    fn step(&mut self) -> Option<(u64, Answer)> {
        let entry = self.queue.pop()?;
        self.now = self.now.max(entry.time);
        self.stats.events += 1;
        self.handle(entry.ev)
    }

    fn request(&mut self, node: usize, req: u64, op: ClientOp) {
        let t = self.now + ms_to_ns(self.config.client_latency_ms);
        if node < self.nodes.len() {
            self.push(t, Ev::Request { node, req, op });
        } else {
            self.push(t, Ev::Answer { req, answer: Answer::Refused });
        }
    }

    fn crash(&mut self, i: usize) -> bool {
        let Some(node) = self.nodes.get_mut(i) else { return false };
        if node.core.take().is_none() {
            return false;
        }
        node.paused = false;
        node.held.clear();
        node.clock_fault = None;
        let unsynced = node.disk.len() - node.synced;
        if unsynced > 0 && self.disks_rng.random_bool(self.config.lose_unsynced) {
            let kept = self.disks_rng.random_range(0..=unsynced);
            node.disk.truncate(node.synced + kept);
        }
        // Every request it held loses its connection.
        let pending = std::mem::take(&mut node.pending);
        for req in pending.into_values() {
            self.push(self.now, Ev::Answer { req, answer: Answer::Closed });
        }
        true
    }

    fn restart(&mut self, i: usize) -> bool {
        if self.nodes.get(i).is_none_or(|n| n.core.is_some()) {
            return false;
        }
        self.boot(i);
        true
    }

    fn pause(&mut self, i: usize) -> bool {
        match self.nodes.get_mut(i) {
            Some(n) if n.core.is_some() && !n.paused => {
                n.paused = true;
                true
            }
            _ => false,
        }
    }

    fn resume(&mut self, i: usize) -> bool {
        let Some(node) = self.nodes.get_mut(i).filter(|n| n.paused) else { return false };
        node.paused = false;
        // What queued up arrives now, in the order it came.
        for ev in std::mem::take(&mut node.held) {
            self.push(self.now, ev);
        }
        true
    }

    fn is_up(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|n| n.core.is_some())
    }

    fn set_cut(&mut self, cut: BTreeSet<(usize, usize)>) {
        self.cut = cut;
    }

    fn disk_image(&self, i: usize) -> Result<Vec<u8>, WalError> {
        let mut bytes = Vec::new();
        if let Some(n) = self.nodes.get(i) {
            wal::encode(Path::new("wal.log"), &n.disk, &mut bytes)?;
        }
        Ok(bytes)
    }

    fn recover_disk(
        &mut self,
        i: usize,
        path: &Path,
        bytes: &[u8],
        policy: RecoveryPolicy,
    ) -> Result<RecoveryReport, WalError> {
        let (records, report, _) = wal::replay::<C::Record>(path, bytes, policy)?;
        if let Some(n) = self.nodes.get_mut(i) {
            n.disk = records;
            // The file was written whole (put back, or cut and synced by
            // recovery) before the node starts on it.
            n.synced = n.disk.len();
        }
        Ok(report)
    }

    fn set_link_shape(&mut self, from: usize, to: usize, shape: Option<LinkShape>) {
        match shape.filter(|s| !s.is_identity()) {
            // The peers' transport is a TCP stream: chunks leave in order,
            // whole, and a lost segment is retransmitted.
            Some(s) => self.shapers.insert((from, to), Shaper::new(s, ShapeMode::Stream)),
            None => self.shapers.remove(&(from, to)),
        };
    }

    fn set_clock_fault(&mut self, i: usize, fault: Option<ClockDraw>) -> bool {
        let now = self.now;
        match self.nodes.get_mut(i) {
            Some(n) if n.core.is_some() => {
                n.clock_fault = fault.map(|f| (f, now));
                true
            }
            _ => false,
        }
    }

    fn primaries(&self) -> Vec<usize> {
        let leads = |n: &Node<C>| {
            n.core.as_ref().is_some_and(|c| matches!(c.status().role, "leader" | "primary"))
        };
        self.nodes.iter().enumerate().filter(|(_, n)| leads(n)).map(|(i, _)| i).collect()
    }

    fn stats(&self) -> WorldStats {
        self.stats
    }
}
