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

use std::collections::BTreeMap;
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
use refstore::modes::crdt::Resolution;
use refstore::modes::quorum::QuorumConfig;
use results::RuntimeKind;

use crate::SimError;
use crate::client::{Mailbox, Operation, SharedMailbox, node_name};
use crate::faults::{SIMULATED, SimNemesis};
use crate::world::{self, Answer, Cluster, MS, Ns, WorldConfig, WorldStats};

/// How long the cluster runs before the first operation, as a real run
/// waits for its nodes to answer: long enough to elect a leader.
const WARMUP: Ns = 2_000 * MS;

/// The seed of the nemesis's own choices, derived as a real run derives it
/// (`harness::run`), so a seed draws the same faults in both.
const NEMESIS_SEED: u64 = 0x6e65_6d65_7369_7321;

/// Options refstore's adapter reads that change how real nodes run but
/// have no meaning in the simulation; refused when set.
const NOT_SIMULATED_OPTIONS: [(&str, &str); 2] = [
    ("clock", "simulated clocks are set by the world, not through /admin/clock or libfaketime"),
    ("wal_recovery", "simulated disks are never corrupted, so there is nothing to recover"),
];

/// A test planned once for many seeds.
pub struct Prepared {
    /// The test, defaults resolved, marked `runtime = "sim"`, no seed.
    pub spec: TestSpec,
    /// The simulated world's settings.
    pub world: WorldConfig,
    registry: Registry,
    mode: Mode,
    /// The quorum settings and conflict resolution the cores are built with.
    cores: (QuorumConfig, Resolution),
    /// The whole schedule, cloned for each seed. Generators are `Send` but
    /// not `Sync`, so threads take their copies under a lock.
    schedule: Mutex<Gen>,
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
    let plan = harness::run::plan(&spec, registry)?;
    let cores = faultline_refstore::core_options(&spec, mode)?;
    let nemesis = plan.nemesis.map(|(_, schedule, heal)| (schedule, heal));
    let schedule = harness::run::schedule(&spec, plan.workload.as_ref(), nemesis);
    world.validate()?;
    Ok(Prepared { spec, world, registry: registry.clone(), mode, cores, schedule: schedule.into() })
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
    let mut world = world::build(prepared.mode, spec.nodes, prepared.cores, &prepared.world, seed)?;
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
        nemesis: SimNemesis::new(spec.nodes as usize),
        nemesis_rng: Rng::seed_from_u64(seed ^ NEMESIS_SEED),
        op_timeout: spec.op_timeout_ms * MS,
        nodes: (0..spec.nodes as usize).map(|i| shared_str(&node_name(i))).collect(),
        clients,
        outstanding: 0,
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
