//! The simulated nemesis: the real packages' schedules (`partition`, `kill`,
//! `pause`, `clock`, `packet`, `file`: their `start-<kind>` /
//! `stop-<kind>` operations, drawn by the nemesis crate's own generators)
//! carried out on the simulated world. Shapes, targets and parameters are chosen by the nemesis crate's
//! pure functions (`partition_for`, `Targets::pick`, `ClockDraw::draw`,
//! `shape_of`, `truncate`, `bitflip`)
//! from the same seeded generator a real run's nemesis uses, and each
//! operation records the same fields as the real one, so reports shade the
//! same fault periods.

use std::collections::BTreeSet;
use std::path::Path;

use checkers::Value;
use harness::generator::Rng;
use harness::{Grudge, Invocation, TestSpec};
use nemesis::{
    ClockDraw, ClockFault, ClockLimits, FileFault, PartitionKind, Targets, behaviours_of,
    clock_record, damage, packet_record, partition_for, shape_of,
};
use rand::Rng as _;
use refstore::Mode;
use refstore::wal::RecoveryPolicy;

use crate::SimError;
use crate::client::{node_index, node_name};
use crate::world::Cluster;

/// The nemesis packages the simulation carries out: every built-in one.
/// `clock` moves the simulated wall clocks (bumps, strobes, skews);
/// `packet` shapes links as a TCP stream is shaped (delay, jitter, rate, a
/// loss as a retransmission delay); `file` damages or rolls back a node's
/// log as bytes and the node recovers through refstore's own recovery,
/// under the test's `wal_recovery` or its mode's default.
pub const SIMULATED: [&str; 6] = ["partition", "kill", "pause", "clock", "packet", "file"];

/// The packages' settings a simulated nemesis needs, read once per test
/// from its options as the real packages read them.
#[derive(Clone, Debug)]
pub struct FaultSettings {
    /// How big clock faults get (`clock_max_ms`, `clock_max_drift`).
    pub clock: ClockLimits,
    /// What a node does with a corrupt log: `options.wal_recovery`, or the
    /// mode's default, as the real node resolves `--wal-recovery`.
    pub recovery: RecoveryPolicy,
    /// Whether the mode fsyncs its log before acknowledging, which decides
    /// what `lose-unfsynced` loses (the adapter's `Db::data_files`).
    pub fsyncs: bool,
}

impl FaultSettings {
    /// The settings of `spec`'s nemesis packages; a package's options are
    /// read (and checked) only when the test uses it, as the real package
    /// reads them only when it is built.
    pub fn of(spec: &TestSpec, mode: Mode) -> Result<FaultSettings, SimError> {
        let uses = |name: &str| spec.nemeses().contains(&name);
        let clock = if uses("clock") {
            nemesis::clock_limits(spec)?
        } else {
            ClockLimits { max_offset_ms: 60_000, max_drift: 0.5 }
        };
        let recovery = match spec.option_text("wal_recovery") {
            None => mode.default_recovery(),
            Some("refuse") => RecoveryPolicy::Refuse,
            Some("truncate") => RecoveryPolicy::Truncate,
            Some(other) => {
                return Err(SimError::Config {
                    field: "options.wal_recovery",
                    why: format!("{other:?}: use refuse or truncate"),
                });
            }
        };
        Ok(FaultSettings { clock, recovery, fsyncs: mode.fsyncs_before_ack() })
    }
}

/// What the simulated faults hold now.
#[derive(Debug)]
pub struct SimNemesis {
    nodes: Vec<String>,
    settings: FaultSettings,
    killed: BTreeSet<String>,
    paused: BTreeSet<String>,
    /// Whether a strobe or skew is running: the real nemesis resets every
    /// clock before a new start only then (a bump has no task to stop).
    clock_tasks: bool,
    /// The directed links the packet nemesis shaped.
    shaped: Vec<(usize, usize)>,
    /// File faults begun and not yet ended.
    files: Vec<PendingFile>,
}

/// A file fault begun on one node: its log as it was before the damage
/// (or the snapshot), and the damaged bytes it starts on at the stop.
#[derive(Debug)]
struct PendingFile {
    node: String,
    fault: FileFault,
    before: Vec<u8>,
    damaged: Option<Vec<u8>>,
}

fn nodes_value<'a>(nodes: impl IntoIterator<Item = &'a String>) -> Value {
    Value::List(nodes.into_iter().map(Value::str).collect())
}

impl SimNemesis {
    /// The nemesis of a cluster of `n` nodes.
    pub fn new(n: usize, settings: &FaultSettings) -> SimNemesis {
        SimNemesis {
            nodes: (0..n).map(node_name).collect(),
            settings: settings.clone(),
            killed: BTreeSet::new(),
            paused: BTreeSet::new(),
            clock_tasks: false,
            shaped: Vec::new(),
            files: Vec::new(),
        }
    }

    fn index(&self, name: &str) -> usize {
        node_index(name).unwrap_or(usize::MAX)
    }

    fn primaries(&self, world: &dyn Cluster) -> Vec<String> {
        world.primaries().into_iter().map(node_name).collect()
    }

    /// Performs `op` on `world` and returns the value to record, or why it
    /// could not (recorded as the operation's error, as a real nemesis's
    /// failure is).
    pub fn invoke(
        &mut self,
        op: &Invocation,
        world: &mut dyn Cluster,
        rng: &mut Rng,
    ) -> Result<Value, SimError> {
        match op.f.as_str() {
            "start-partition" => self.partition(op, world, rng),
            "stop-partition" => {
                world.set_cut(BTreeSet::new());
                Ok(Value::map(vec![
                    (Value::str("healed"), Value::Bool(true)),
                    (Value::str("verified"), Value::Bool(true)),
                ]))
            }
            "start-kill" => Ok(self.kill(op, world, rng)),
            "stop-kill" => {
                let mut back = Vec::new();
                for node in std::mem::take(&mut self.killed) {
                    world.restart(self.index(&node));
                    back.push(node);
                }
                Ok(Value::map(vec![(Value::str("restarted"), nodes_value(&back))]))
            }
            "start-pause" => Ok(self.pause(op, world, rng)),
            "stop-pause" => Ok(self.resume(world)),
            "start-clock" => Ok(self.clock(op, world, rng)),
            "start-packet" => Ok(self.packet(op, world, rng)),
            "start-file" => self.file(op, world, rng),
            "stop-file" => Ok(Value::list(self.finish_files(world))),
            "stop-packet" => {
                let restored = self.restore_links(world);
                Ok(Value::map(vec![(Value::str("restored-links"), Value::Int(restored as i64))]))
            }
            "stop-clock" => {
                let failed = self.reset_clocks(world);
                let mut fields = vec![(Value::str("reset"), nodes_value(&self.nodes))];
                if !failed.is_empty() {
                    fields.push((Value::str("not-reset"), reasons(&failed)));
                }
                Ok(Value::map(fields))
            }
            other => Err(SimError::Unsupported(format!("no simulated nemesis performs {other:?}"))),
        }
    }

    fn partition(
        &mut self,
        op: &Invocation,
        world: &mut dyn Cluster,
        rng: &mut Rng,
    ) -> Result<Value, SimError> {
        let name = op.value.as_str().unwrap_or("random-halves");
        let kind = PartitionKind::parse(name)
            .ok_or_else(|| SimError::Unsupported(format!("unknown partition kind {name:?}")))?;
        let primaries =
            if kind == PartitionKind::Primaries { self.primaries(world) } else { Vec::new() };
        let p = partition_for(kind, &self.nodes, &primaries, rng)?;
        world.set_cut(cut_links(&p.grudge, |n| self.index(n)));
        let mut fields = vec![
            (Value::str("kind"), Value::str(kind.name())),
            (Value::str("grudge"), p.grudge.to_value()),
        ];
        if let Value::Map(detail) = p.detail {
            fields.extend(detail);
        }
        fields.push((Value::str("enforced-by"), Value::str("simulation")));
        // The world drops exactly the links it is given.
        fields.push((Value::str("verified"), Value::Bool(true)));
        Ok(Value::map(fields))
    }

    fn kill(&mut self, op: &Invocation, world: &mut dyn Cluster, rng: &mut Rng) -> Value {
        let rule = op.value.as_str().and_then(Targets::parse).unwrap_or(Targets::One);
        let candidates: Vec<String> =
            self.nodes.iter().filter(|n| !self.killed.contains(*n)).cloned().collect();
        let primaries = self.primaries(world);
        let victims = rule.pick(&candidates, &primaries, rng);
        let mut was_paused = Vec::new();
        for v in &victims {
            world.crash(self.index(v));
            if self.paused.remove(v) {
                was_paused.push(v.clone());
            }
            self.killed.insert(v.clone());
        }
        let mut fields = vec![
            (Value::str("targets"), Value::str(rule.name())),
            (Value::str("nodes"), nodes_value(&victims)),
        ];
        if !was_paused.is_empty() {
            fields.push((Value::str("was-paused"), nodes_value(&was_paused)));
        }
        Value::map(fields)
    }

    fn pause(&mut self, op: &Invocation, world: &mut dyn Cluster, rng: &mut Rng) -> Value {
        let rule = op.value.as_str().and_then(Targets::parse).unwrap_or(Targets::One);
        // A dead node cannot be paused: pauses choose among the living.
        let down: Vec<String> =
            self.nodes.iter().filter(|n| self.killed.contains(*n)).cloned().collect();
        let candidates: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| !self.paused.contains(*n) && !self.killed.contains(*n))
            .cloned()
            .collect();
        let primaries = self.primaries(world);
        let victims = rule.pick(&candidates, &primaries, rng);
        for v in &victims {
            world.pause(self.index(v));
            self.paused.insert(v.clone());
        }
        let mut fields = vec![
            (Value::str("targets"), Value::str(rule.name())),
            (Value::str("nodes"), nodes_value(&victims)),
        ];
        if !down.is_empty() {
            fields.push((Value::str("down"), nodes_value(&down)));
        }
        Value::map(fields)
    }

    /// A clock fault on the targets, drawn as the real clock nemesis draws
    /// it (targets, then each target's parameters, from the same rng).
    fn clock(&mut self, op: &Invocation, world: &mut dyn Cluster, rng: &mut Rng) -> Value {
        if self.clock_tasks {
            self.reset_clocks(world);
        }
        let fault = field(&op.value, "fault", ClockFault::parse).unwrap_or(ClockFault::Bump);
        let rule = field(&op.value, "targets", Targets::parse).unwrap_or(Targets::One);
        let primaries = self.primaries(world);
        let nodes = rule.pick(&self.nodes, &primaries, rng);
        let mut per_node = Vec::new();
        let mut failed = Vec::new();
        for node in &nodes {
            let draw = ClockDraw::draw(fault, &self.settings.clock, rng);
            let set = world.set_clock_fault(self.index(node), Some(draw));
            match draw {
                // The real nemesis records only the bumps it could not set;
                // strobes and skews are set by tasks that retry until the stop.
                ClockDraw::Bump { .. } if !set => failed.push(node.clone()),
                ClockDraw::Bump { .. } => {}
                ClockDraw::Strobe { .. } | ClockDraw::Skew { .. } => self.clock_tasks = true,
            }
            per_node.push((Value::str(node), draw.record()));
        }
        let not_set = failed.iter().map(|n| (Value::str(n), Value::str("the node is down")));
        clock_record(fault, rule, &nodes, per_node, not_set.collect())
    }

    /// Shapes the links out of the targets, as the real packet nemesis does:
    /// the behaviours the operation names (delay when none), the targets,
    /// then the shaper's seed, drawn in that order.
    fn packet(&mut self, op: &Invocation, world: &mut dyn Cluster, rng: &mut Rng) -> Value {
        if !self.shaped.is_empty() {
            self.restore_links(world);
        }
        let behaviours = behaviours_of(&op.value);
        let rule = field(&op.value, "targets", Targets::parse).unwrap_or(Targets::One);
        let primaries = self.primaries(world);
        let targets = rule.pick(&self.nodes, &primaries, rng);
        let shape = shape_of(&behaviours, rng.random());
        for from in &targets {
            for to in self.nodes.iter().filter(|n| *n != from) {
                let link = (self.index(from), self.index(to));
                world.set_link_shape(link.0, link.1, Some(shape.clone()));
                self.shaped.push(link);
            }
        }
        // The real nemesis names the runtime's shaper; the simulation's
        // shapes a TCP stream as the `local` runtime's proxies do.
        let shaper = "simulation (stream)";
        packet_record(&behaviours, rule, &targets, &shape, self.shaped.len(), shaper)
    }

    /// Restores every shaped link; how many.
    fn restore_links(&mut self, world: &mut dyn Cluster) -> usize {
        let links = std::mem::take(&mut self.shaped);
        for (from, to) in &links {
            world.set_link_shape(*from, *to, None);
        }
        links.len()
    }

    /// A file fault on the targets, as the real file nemesis does it:
    /// `truncate` and `bitflip` kill the node and damage its log (the
    /// nemesis crate's own `truncate` and `bitflip` on its bytes);
    /// `rollback` and `lose-unfsynced` snapshot it. A new start first ends
    /// what the last one began.
    fn file(
        &mut self,
        op: &Invocation,
        world: &mut dyn Cluster,
        rng: &mut Rng,
    ) -> Result<Value, SimError> {
        if !self.files.is_empty() {
            self.finish_files(world);
        }
        let fault = field(&op.value, "fault", FileFault::parse).unwrap_or(FileFault::Bitflip);
        let rule = field(&op.value, "targets", Targets::parse).unwrap_or(Targets::One);
        let primaries = self.primaries(world);
        let nodes = rule.pick(&self.nodes, &primaries, rng);
        let mut per_node = Vec::new();
        for node in &nodes {
            let i = self.index(node);
            let damaging = matches!(fault, FileFault::Truncate | FileFault::Bitflip);
            if damaging && world.crash(i) {
                self.paused.remove(node);
            }
            let before = world.disk_image(i)?;
            let mut d = vec![
                (Value::str("file"), Value::str(log_path(node))),
                (Value::str("bytes"), Value::Int(before.len() as i64)),
            ];
            let mut damaged = None;
            if damaging {
                let mut bytes = before.clone();
                d.push(damage(fault, &mut bytes, rng));
                damaged = Some(bytes);
            } else {
                d.push((Value::str("snapshot"), Value::Bool(true)));
            }
            self.files.push(PendingFile { node: node.clone(), fault, before, damaged });
            per_node.push((Value::str(node), Value::list(vec![Value::map(d)])));
        }
        Ok(Value::map(vec![
            (Value::str("fault"), Value::str(fault.name())),
            (Value::str("targets"), Value::str(rule.name())),
            (Value::str("nodes"), nodes_value(&nodes)),
            (Value::str("files"), Value::map(per_node)),
        ]))
    }

    /// Ends every pending file fault; what each did, as the real nemesis
    /// records it.
    fn finish_files(&mut self, world: &mut dyn Cluster) -> Vec<Value> {
        let mut out = Vec::new();
        for p in std::mem::take(&mut self.files) {
            let i = self.index(&p.node);
            let mut fields = vec![
                (Value::str("node"), Value::str(&p.node)),
                (Value::str("fault"), Value::str(p.fault.name())),
            ];
            match &p.damaged {
                Some(damaged) => {
                    let restart = self.restart_on(world, i, &p.node, damaged, Some(&p.before));
                    fields.push((Value::str("restart"), restart));
                }
                None => {
                    if world.crash(i) {
                        self.paused.remove(&p.node);
                    }
                    let now = world.disk_image(i).unwrap_or_default();
                    let restore = p.fault == FileFault::Rollback || !self.settings.fsyncs;
                    let mut d = vec![(Value::str("file"), Value::str(log_path(&p.node)))];
                    let bytes = if restore {
                        d.push((Value::str("bytes-before"), Value::Int(now.len() as i64)));
                        d.push((Value::str("bytes-after"), Value::Int(p.before.len() as i64)));
                        p.before.clone()
                    } else {
                        d.push((Value::str("fsynced-before-ack"), Value::Bool(true)));
                        d.push((Value::str("bytes-kept"), Value::Int(now.len() as i64)));
                        now
                    };
                    fields.push((Value::str("files"), Value::list(vec![Value::map(d)])));
                    let restart = self.restart_on(world, i, &p.node, &bytes, None);
                    fields.push((Value::str("restart"), restart));
                }
            }
            // The node is up again (or refused for good): a kill's stop
            // has nothing left to restart.
            self.killed.remove(&p.node);
            out.push(Value::map(fields));
        }
        out
    }

    /// Starts node `i` on the log `bytes`; when its recovery refuses,
    /// records why and, given the log as it was before the damage, puts
    /// that back and starts it again, as the real file nemesis does.
    fn restart_on(
        &self,
        world: &mut dyn Cluster,
        i: usize,
        node: &str,
        bytes: &[u8],
        repair: Option<&[u8]>,
    ) -> Value {
        let path = log_path(node);
        let policy = self.settings.recovery;
        let mut fields = Vec::new();
        match world.recover_disk(i, Path::new(&path), bytes, policy) {
            Ok(_) => {
                world.restart(i);
                fields.push((Value::str("started"), Value::Bool(true)));
            }
            Err(e) => {
                fields.push((Value::str("refused"), Value::str(e.to_string())));
                let Some(before) = repair else {
                    fields.push((Value::str("started"), Value::Bool(false)));
                    return Value::map(fields);
                };
                // The log as it was before the damage recovers as it did
                // when the node last started on it.
                let again = world.recover_disk(i, Path::new(&path), before, policy);
                let started = again.is_ok() && {
                    world.restart(i);
                    true
                };
                fields.push((Value::str("restored"), Value::Bool(true)));
                fields.push((Value::str("started"), Value::Bool(started)));
                if let Err(e) = again {
                    fields.push((Value::str("not-answering"), Value::str(e.to_string())));
                }
            }
        }
        Value::map(fields)
    }

    /// Puts every node's clock back; the nodes that were down.
    fn reset_clocks(&mut self, world: &mut dyn Cluster) -> Vec<String> {
        self.clock_tasks = false;
        let mut failed = Vec::new();
        for node in &self.nodes {
            if !world.set_clock_fault(self.index(node), None) {
                failed.push(node.clone());
            }
        }
        failed
    }

    fn resume(&mut self, world: &mut dyn Cluster) -> Value {
        let mut back = Vec::new();
        for node in std::mem::take(&mut self.paused) {
            world.resume(self.index(&node));
            back.push(node);
        }
        Value::map(vec![(Value::str("resumed"), nodes_value(&back))])
    }
}

/// Where a node keeps its log, as refstore's adapter names it (relative:
/// a simulated node has no directory).
fn log_path(node: &str) -> String {
    format!("{node}/data/wal.log")
}

/// The field `key` of a nemesis operation's value, parsed.
fn field<T>(value: &Value, key: &str, parse: impl Fn(&str) -> Option<T>) -> Option<T> {
    value.get(&Value::str(key)).and_then(Value::as_str).and_then(parse)
}

/// Nodes that could not take a clock change, with the reason, as the real
/// nemesis records a refused request.
fn reasons(down: &[String]) -> Value {
    Value::map(down.iter().map(|n| (Value::str(n), Value::str("the node is down"))).collect())
}

/// The directed links `(from, to)` a grudge cuts: node `k` drops what
/// every node of `grudge[k]` sends it.
fn cut_links(grudge: &Grudge, index: impl Fn(&str) -> usize) -> BTreeSet<(usize, usize)> {
    let mut cut = BTreeSet::new();
    for (to, froms) in &grudge.0 {
        for from in froms {
            cut.insert((index(from), index(to)));
        }
    }
    cut
}
