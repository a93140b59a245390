//! One simulated run: the test planned as the harness plans a real one
//! (`harness::run::plan` and `schedule`: the workload's generator, the
//! nemesis packages' schedules, the heal and the final phase), interpreted
//! in simulated time against the world, recorded as a history in the
//! normal format and judged by the checkers the workload names
//! (`harness::finish::check_history`).
//!
//! The driver is the real interpreter's loop with simulated time: it peeks
//! the generator at the world's time, records an invocation before handing
//! it to its thread and a completion when the thread's operation ends, a
//! timeout ends an operation `info` and retires its process, and the
//! nemesis thread's operations are carried out on the world at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use checkers::value::shared_str;
use checkers::{ArcStr, History, Op, OpType, Process};
use harness::finish::Checked;
use harness::generator::{Action, Event, Gen, Peek, Proposal, Rng, Thread, Threads};
use harness::plugin::Registry;
use harness::{Completion, Invocation, TestSpec};
use rand::SeedableRng;
use refstore::Mode;
use refstore::modes::CoreOptions;
use results::RuntimeKind;

use crate::SimError;
use crate::client::{Mailbox, Operation, SharedMailbox, node_name};
use crate::faults::{FaultSettings, SIMULATED, SimNemesis};
use crate::world::{self, Answer, Cluster, MS, Ns, WorldConfig, WorldStats};

/// How long the cluster runs before the first operation, as a real run
/// waits for its nodes to answer: long enough to elect a leader.
const WARMUP: Ns = 2_000 * MS;

/// The seed of the nemesis's own choices, derived as a real run derives it
/// (`harness::run`), so a seed draws the same faults in both.
const NEMESIS_SEED: u64 = 0x6e65_6d65_7369_7321;

/// Options refstore's adapter reads that change how real nodes run but
/// have no meaning in the simulation; refused when set.
const NOT_SIMULATED_OPTIONS: [(&str, &str); 1] = [(
    "clock",
    "simulated clocks are set by the world and its clock nemesis, not through /admin/clock \
         or libfaketime",
)];

/// The options that narrow a simulated run's schedule, which the shrinker
/// (`crate::shrink`) sets and a replay repeats; read only here, so a real
/// test refuses them.
pub mod options {
    /// The most client operations the main phase hands out.
    pub const MAX_OPS: &str = "sim_max_ops";
    /// Faults of the schedule left out, by their place among its
    /// `start-<kind>` operations (0 first), comma-separated.
    pub const DROP_FAULTS: &str = "sim_drop_faults";
}

/// A test planned once for many seeds.
pub struct Prepared {
    /// The test, defaults resolved, marked `runtime = "sim"`, no seed.
    pub spec: TestSpec,
    /// The simulated world's settings.
    pub world: WorldConfig,
    registry: Registry,
    mode: Mode,
    /// The quorum settings, conflict resolution and injected bug the cores
    /// are built with.
    cores: CoreOptions,
    /// Faults of the schedule left out (their places among the `start-*`
    /// operations): drawn as usual, so the others keep their shapes and
    /// targets, but neither carried out nor recorded.
    drop_faults: BTreeSet<u64>,
    /// The nemesis packages' settings the simulated faults use.
    faults: FaultSettings,
    /// The whole schedule, cloned for each seed. Generators are `Send` but
    /// not `Sync`, so threads take their copies under a lock.
    schedule: Mutex<Gen>,
    /// The `faultline sim` command that runs this test, the seed left to
    /// add, which a kept run directory records (`results::store::files::REPLAY`)
    /// so its report tells how to replay it; `None` when no command line
    /// made it (an example, a test).
    pub replay: Option<Replay>,
}

/// A `faultline sim` command without its seed.
#[derive(Clone, Debug)]
pub struct Replay {
    /// Every word but the seed's.
    pub command: String,
    /// The flag that takes the seed: `--seed`, or `--first-seed` for a
    /// campaign's cell (whose command runs that one seed).
    pub seed_flag: &'static str,
}

impl Replay {
    /// The command that runs `seed`.
    pub fn with_seed(&self, seed: u64) -> String {
        format!("{} {} {seed}", self.command, self.seed_flag)
    }
}

impl Prepared {
    /// The registry the test was planned and is judged with.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// Plans `spec` for simulation: refstore in the spec's mode, the workload
/// and nemeses the registry holds, checked as `faultline test` checks a
/// test before it starts. Refuses what the simulation does not simulate.
pub fn prepare(
    spec: TestSpec,
    mut world: WorldConfig,
    registry: &Registry,
) -> Result<Prepared, SimError> {
    if spec.target != "refstore" {
        return Err(SimError::Unsupported(format!(
            "target {:?}: only refstore's protocol cores run in the simulation",
            spec.target
        )));
    }
    let mode: Mode = spec.mode.parse().map_err(SimError::Unsupported)?;
    let mut spec = TestSpec { runtime: RuntimeKind::Sim, seed: None, ..spec };
    harness::run::resolve_defaults(&mut spec, registry)?;
    for name in spec.nemeses() {
        if !SIMULATED.contains(&name) {
            return Err(SimError::Unsupported(format!(
                "nemesis {name:?} is not simulated (simulated: {})",
                SIMULATED.join(", ")
            )));
        }
    }
    for (option, why) in NOT_SIMULATED_OPTIONS {
        if spec.options.contains_key(option) {
            return Err(SimError::Unsupported(format!("options.{option}: {why}")));
        }
    }
    if let Some(ms) = spec.options.get("ship_interval_ms") {
        // The adapter has checked it (a positive integer, async only) in `plan` below.
        if let Ok(ms) = ms.parse() {
            world.timing.ship_ms = ms;
        }
    }
    let (max_ops, drop_faults) = narrowing(&spec)?;
    let plan = harness::run::plan(&spec, registry)?;
    let cores = faultline_refstore::core_options(&spec, mode)?;
    let nemesis = plan.nemesis.map(|(_, schedule, heal)| (schedule, heal));
    let schedule = harness::run::schedule_limited(&spec, plan.workload.as_ref(), nemesis, max_ops);
    world.validate()?;
    let faults = FaultSettings::of(&spec, mode)?;
    Ok(Prepared {
        faults,
        spec,
        world,
        registry: registry.clone(),
        mode,
        cores,
        drop_faults,
        schedule: schedule.into(),
        replay: None,
    })
}

/// Reads the options that narrow the schedule ([`options`]).
fn narrowing(spec: &TestSpec) -> Result<(Option<u64>, BTreeSet<u64>), SimError> {
    let bad = |field: &'static str, text: &str| SimError::Config {
        field,
        why: format!("{text:?} is not a list of non-negative integers"),
    };
    let max_ops = match spec.option_text(options::MAX_OPS) {
        None => None,
        Some(t) => Some(t.parse().map_err(|_| bad(options::MAX_OPS, t))?),
    };
    let mut drop = BTreeSet::new();
    if let Some(t) = spec.option_text(options::DROP_FAULTS) {
        for part in t.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            drop.insert(part.parse().map_err(|_| bad(options::DROP_FAULTS, t))?);
        }
    }
    Ok((max_ops, drop))
}

/// What one seed's run produced.
#[derive(Debug)]
pub struct Simulated {
    /// The seed.
    pub seed: u64,
    /// The test with its seed, as a run directory stores it.
    pub spec: TestSpec,
    /// The verdicts, and the history they judged.
    pub checked: Checked,
    /// What the world did.
    pub world: WorldStats,
    /// Simulated nanoseconds from the first operation to the last event.
    pub simulated_ns: u64,
}

/// Runs `seed` and judges its history.
pub fn run_seed(prepared: &Prepared, seed: u64) -> Result<Simulated, SimError> {
    let (history, world, simulated_ns) = simulate(prepared, seed)?;
    let spec = TestSpec { seed: Some(seed), ..prepared.spec.clone() };
    let checked = harness::finish::check_history(history, &spec, &prepared.registry, None)?;
    Ok(Simulated { seed, spec, checked, world, simulated_ns })
}

/// Runs `seed` and returns its history (not judged), what the world did and
/// how long the run took in simulated time.
pub fn simulate(prepared: &Prepared, seed: u64) -> Result<(History, WorldStats, Ns), SimError> {
    let spec = &prepared.spec;
    let mut world =
        world::build(prepared.mode, spec.nodes, &prepared.cores, &prepared.world, seed)?;
    while world.next_time().is_some_and(|t| t < WARMUP) {
        // Nobody has asked anything yet, so no answer can come.
        world.step();
    }
    world.advance_to(WARMUP);
    let clients = spec.client_threads();
    let mut driver = Driver {
        world,
        t0: WARMUP,
        mailbox: SharedMailbox::new(Mailbox::default().into()),
        threads: Threads::new(clients),
        busy: (0..=clients).map(|_| Busy::Free).collect(),
        process: (0..u64::from(clients)).collect(),
        owner: BTreeMap::new(),
        ops: Vec::new(),
        nemesis: SimNemesis::new(spec.nodes as usize, &prepared.faults),
        nemesis_rng: Rng::seed_from_u64(seed ^ NEMESIS_SEED),
        op_timeout: spec.op_timeout_ms * MS,
        nodes: (0..spec.nodes as usize).map(|i| shared_str(&node_name(i))).collect(),
        clients,
        outstanding: 0,
        drop_faults: prepared.drop_faults.clone(),
        faults_started: 0,
        ghosts: BTreeSet::new(),
    };
    // The generator draws from the seed itself, as in a real run.
    let mut rng = Rng::seed_from_u64(seed);
    let schedule = prepared.schedule.lock().unwrap_or_else(|e| e.into_inner()).clone();
    driver.run(schedule, &mut rng)?;
    let simulated = driver.world.now() - driver.t0;
    let stats = driver.world.stats();
    Ok((History::new(driver.ops), stats, simulated))
}

/// What a thread is doing.
enum Busy {
    Free,
    /// A generator's `sleep`, until this simulated time.
    Sleep {
        until: Ns,
    },
    /// A client operation.
    Op(Box<InFlight>),
}

struct InFlight {
    operation: Operation,
    inv: Invocation,
    node: ArcStr,
    deadline: Ns,
    /// The requests it posted, so their late answers are dropped if it ends first.
    requests: Vec<u64>,
}

struct Driver {
    world: Box<dyn Cluster>,
    /// Simulated time of the test's start (history times count from it).
    t0: Ns,
    mailbox: SharedMailbox,
    threads: Threads,
    busy: Vec<Busy>,
    process: Vec<u64>,
    /// Which thread waits for each request in the world.
    owner: BTreeMap<u64, Thread>,
    ops: Vec<Op>,
    nemesis: SimNemesis,
    nemesis_rng: Rng,
    op_timeout: Ns,
    nodes: Vec<ArcStr>,
    clients: u32,
    outstanding: u32,
    /// Faults left out, by their place among the `start-*` operations.
    drop_faults: BTreeSet<u64>,
    /// `start-*` operations the generator has handed out so far.
    faults_started: u64,
    /// Fault kinds whose current period was left out, so that its
    /// `stop-<kind>` is left out too.
    ghosts: BTreeSet<String>,
}

fn nanos(d: Duration) -> Ns {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Driver {
    /// Test time: nanoseconds since the first operation could start.
    fn now(&self) -> Ns {
        self.world.now() - self.t0
    }

    fn run(&mut self, mut generator: Gen, rng: &mut Rng) -> Result<(), SimError> {
        loop {
            let now = self.now();
            let wake = match generator.peek(&self.threads.context(now), rng) {
                Peek::Ready(p) if p.time <= now => {
                    self.dispatch(&mut generator, p, rng)?;
                    continue;
                }
                Peek::Ready(p) => Some(p.time + self.t0),
                Peek::Pending => None,
                Peek::Done if self.outstanding == 0 => return Ok(()),
                Peek::Done => None,
            };
            let deadline = self.busy.iter().filter_map(deadline_of).min();
            let next = self.world.next_time();
            match (deadline, next) {
                (Some(d), n) if n.is_none_or(|n| d <= n) && wake.is_none_or(|w| d <= w) => {
                    self.world.advance_to(d);
                    self.expire(&mut generator, d);
                }
                (_, n) if wake.is_some_and(|w| n.is_none_or(|n| w <= n)) => {
                    self.world.advance_to(wake.unwrap_or_default());
                }
                (_, Some(_)) => {
                    if let Some((req, answer)) = self.world.step() {
                        self.deliver(&mut generator, req, answer);
                    }
                }
                (_, None) => {
                    return Err(SimError::Generator(
                        "the world stopped while operations were waiting".into(),
                    ));
                }
            }
        }
    }

    fn node_for(&self, thread: Thread, hint: Option<u32>) -> ArcStr {
        let n = self.nodes.len();
        let i = match hint {
            Some(i) => i as usize % n,
            None => thread as usize % n,
        };
        self.nodes[i].clone()
    }

    fn record(&mut self, mut op: Op) -> Op {
        op.index = self.ops.len() as u64;
        self.ops.push(op.clone());
        op
    }

    fn dispatch(
        &mut self,
        generator: &mut Gen,
        p: Proposal,
        rng: &mut Rng,
    ) -> Result<(), SimError> {
        let now = self.now();
        let ctx = self.threads.context(now);
        let thread = if p.needs_thread {
            ctx.restrict(p.lo, p.hi).pick_free(rng).ok_or_else(|| {
                SimError::Generator(format!(
                    "the generator proposed threads {}..{} but none is free",
                    p.lo, p.hi
                ))
            })?
        } else {
            p.lo
        };
        let action = generator.take(&ctx, thread, rng).ok_or_else(|| {
            SimError::Generator("the generator proposed an operation and then had none".into())
        })?;
        match action {
            Action::Log(_) => {}
            Action::Sleep(d) => {
                self.threads.set_free(thread, false);
                self.outstanding += 1;
                self.busy[thread as usize] = Busy::Sleep { until: self.world.now() + nanos(d) };
            }
            Action::Invoke(inv) if thread == self.clients && self.left_out(&inv) => {
                self.ghost(generator, thread, &inv);
            }
            Action::Invoke(inv) => {
                let is_nemesis = thread == self.clients;
                let node = self.node_for(thread, inv.node);
                let op = self.record(Op {
                    index: 0,
                    time: Some(now),
                    process: if is_nemesis {
                        Process::Nemesis
                    } else {
                        Process::Client(self.process[thread as usize])
                    },
                    kind: if is_nemesis { OpType::Info } else { OpType::Invoke },
                    f: shared_str(&inv.f),
                    value: inv.value.clone(),
                    key: inv.key.clone(),
                    node: if is_nemesis { None } else { Some(node.clone()) },
                    error: None,
                });
                let ctx = self.threads.context(now);
                generator.update(&ctx, &Event { thread, kind: OpType::Invoke, op: &op });
                if is_nemesis {
                    let completion =
                        match self.nemesis.invoke(&inv, self.world.as_mut(), &mut self.nemesis_rng)
                        {
                            Ok(v) => Completion { kind: OpType::Info, value: v, error: None },
                            Err(e) => Completion::info(inv.value.clone(), e.to_string()),
                        };
                    self.finish(generator, thread, inv, node, completion);
                } else {
                    self.threads.set_free(thread, false);
                    self.outstanding += 1;
                    let operation = Operation::start(&self.mailbox, &node, inv.clone());
                    let deadline = self.world.now() + self.op_timeout;
                    let flight = InFlight { operation, inv, node, deadline, requests: Vec::new() };
                    self.busy[thread as usize] = Busy::Op(Box::new(flight));
                    self.pump(generator, thread);
                }
            }
        }
        Ok(())
    }

    /// Whether the nemesis operation `inv` belongs to a fault left out
    /// (`Prepared::drop_faults`): a `start-*` at a dropped place, or the
    /// `stop-*` that ends such a period.
    fn left_out(&mut self, inv: &Invocation) -> bool {
        if let Some(kind) = inv.f.strip_prefix("start-") {
            let place = self.faults_started;
            self.faults_started += 1;
            let dropped = self.drop_faults.contains(&place);
            if dropped {
                self.ghosts.insert(kind.to_owned());
            }
            dropped
        } else if let Some(kind) = inv.f.strip_prefix("stop-") {
            self.ghosts.remove(kind)
        } else {
            false
        }
    }

    /// Plays a left-out fault operation against a world that ignores it:
    /// the nemesis still draws its shape and targets (so the faults that
    /// are kept draw what they drew before), and the generator still sees
    /// it start and end (so the schedule keeps its times), but nothing
    /// happens to the world and nothing is recorded.
    fn ghost(&mut self, generator: &mut Gen, thread: Thread, inv: &Invocation) {
        let now = self.now();
        let mut op = Op {
            index: self.ops.len() as u64,
            time: Some(now),
            process: Process::Nemesis,
            kind: OpType::Info,
            f: shared_str(&inv.f),
            value: inv.value.clone(),
            key: inv.key.clone(),
            node: None,
            error: None,
        };
        let ctx = self.threads.context(now);
        generator.update(&ctx, &Event { thread, kind: OpType::Invoke, op: &op });
        let mut ghost = Ghost(self.world.as_mut());
        if let Ok(v) = self.nemesis.invoke(inv, &mut ghost, &mut self.nemesis_rng) {
            op.value = v;
        }
        self.threads.set_free(thread, true);
        generator
            .update(&self.threads.context(now), &Event { thread, kind: OpType::Info, op: &op });
    }

    /// Runs thread `t`'s operation as far as it can go now: sends what it
    /// posts into the world, and finishes it if it completed.
    fn pump(&mut self, generator: &mut Gen, t: Thread) {
        let Busy::Op(flight) = &mut self.busy[t as usize] else { return };
        let done = flight.operation.poll();
        let posted = self.mailbox.lock().map(|mut m| m.take_posted()).unwrap_or_default();
        for p in posted {
            flight.requests.push(p.req);
            self.owner.insert(p.req, t);
            self.world.request(p.node, p.req, p.op);
        }
        if let Some(completion) = done {
            self.end(generator, t, completion);
        }
    }

    /// An answer came back from the world.
    fn deliver(&mut self, generator: &mut Gen, req: u64, answer: Answer) {
        let Some(t) = self.owner.remove(&req) else { return };
        if let Ok(mut m) = self.mailbox.lock() {
            m.answer(req, answer);
        }
        self.pump(generator, t);
    }

    /// Ends whatever threads have reached their deadline at `at`.
    fn expire(&mut self, generator: &mut Gen, at: Ns) {
        for t in 0..self.busy.len() {
            if deadline_of(&self.busy[t]).is_some_and(|d| d <= at) {
                let t = t as Thread;
                match &self.busy[t as usize] {
                    Busy::Sleep { .. } => {
                        self.busy[t as usize] = Busy::Free;
                        self.threads.set_free(t, true);
                        self.outstanding -= 1;
                    }
                    Busy::Op(flight) => {
                        let c = Completion::info(flight.inv.value.clone(), "timeout");
                        self.end(generator, t, c);
                    }
                    Busy::Free => {}
                }
            }
        }
    }

    /// Ends client thread `t`'s operation with `completion`.
    fn end(&mut self, generator: &mut Gen, t: Thread, completion: Completion) {
        let Busy::Op(flight) = std::mem::replace(&mut self.busy[t as usize], Busy::Free) else {
            return;
        };
        let InFlight { inv, node, requests, .. } = *flight;
        if let Ok(mut m) = self.mailbox.lock() {
            for r in &requests {
                self.owner.remove(r);
                m.forget(*r);
            }
        }
        self.outstanding -= 1;
        self.finish(generator, t, inv, node, completion);
    }

    /// Records the completion of thread `t`'s operation and frees the thread.
    fn finish(
        &mut self,
        generator: &mut Gen,
        t: Thread,
        inv: Invocation,
        node: ArcStr,
        completion: Completion,
    ) {
        let is_nemesis = t == self.clients;
        let kind = match completion.kind {
            _ if is_nemesis => OpType::Info,
            // A client must end an operation; "unknown outcome" is always safe.
            OpType::Invoke => OpType::Info,
            k => k,
        };
        let now = self.now();
        let op = self.record(Op {
            index: 0,
            time: Some(now),
            process: if is_nemesis {
                Process::Nemesis
            } else {
                Process::Client(self.process[t as usize])
            },
            kind,
            f: shared_str(&inv.f),
            value: completion.value,
            key: inv.key,
            node: if is_nemesis { None } else { Some(node) },
            error: completion.error.filter(|e| !e.is_nil()),
        });
        if !is_nemesis && kind == OpType::Info {
            // Its request may still take effect: the thread goes on as a new process.
            self.process[t as usize] += u64::from(self.clients);
        }
        self.threads.set_free(t, true);
        generator.update(&self.threads.context(now), &Event { thread: t, kind, op: &op });
    }
}

fn deadline_of(b: &Busy) -> Option<Ns> {
    match b {
        Busy::Free => None,
        Busy::Sleep { until } => Some(*until),
        Busy::Op(f) => Some(f.deadline),
    }
}

/// The world as a left-out fault sees it: what it reads is the real
/// world's, what it would change is ignored.
struct Ghost<'a>(&'a mut dyn Cluster);

impl Cluster for Ghost<'_> {
    fn now(&self) -> Ns {
        self.0.now()
    }
    fn next_time(&self) -> Option<Ns> {
        self.0.next_time()
    }
    fn advance_to(&mut self, _: Ns) {}
    fn step(&mut self) -> Option<(u64, Answer)> {
        None
    }
    fn request(&mut self, _: usize, _: u64, _: refstore::types::ClientOp) {}
    fn crash(&mut self, node: usize) -> bool {
        self.0.is_up(node)
    }
    fn restart(&mut self, node: usize) -> bool {
        !self.0.is_up(node)
    }
    fn pause(&mut self, node: usize) -> bool {
        self.0.is_up(node)
    }
    fn resume(&mut self, _: usize) -> bool {
        false
    }
    fn is_up(&self, node: usize) -> bool {
        self.0.is_up(node)
    }
    fn set_cut(&mut self, _: BTreeSet<(usize, usize)>) {}
    fn set_link_shape(&mut self, _: usize, _: usize, _: Option<harness::node::LinkShape>) {}
    fn disk_image(&self, node: usize) -> Result<Vec<u8>, refstore::wal::WalError> {
        self.0.disk_image(node)
    }
    fn recover_disk(
        &mut self,
        _: usize,
        _: &std::path::Path,
        _: &[u8],
        _: refstore::wal::RecoveryPolicy,
    ) -> Result<refstore::wal::RecoveryReport, refstore::wal::WalError> {
        // Nothing is replaced: the node starts on the disk it has.
        Ok(refstore::wal::RecoveryReport::default())
    }
    fn set_clock_fault(&mut self, node: usize, _: Option<nemesis::ClockDraw>) -> bool {
        self.0.is_up(node)
    }
    fn primaries(&self) -> Vec<usize> {
        self.0.primaries()
    }
    fn stats(&self) -> WorldStats {
        self.0.stats()
    }
}
