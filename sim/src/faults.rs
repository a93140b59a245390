//! The simulated nemesis: the real packages' schedules (`partition`, `kill`,
//! `pause`: their `start-<kind>` / `stop-<kind>` operations, drawn by the
//! nemesis crate's own generators) carried out on the simulated world.
//! Shapes and targets are chosen by the nemesis crate's pure functions
//! (`partition_for`, `Targets::pick`) from the same seeded generator a real
//! run's nemesis uses, and each operation records the same fields as the
//! real one, so reports shade the same fault periods.

use std::collections::BTreeSet;

use checkers::Value;
use harness::generator::Rng;
use harness::{Grudge, Invocation};
use nemesis::{PartitionKind, Targets, partition_for};

use crate::SimError;
use crate::client::{node_index, node_name};
use crate::world::Cluster;

/// The nemesis packages the simulation carries out. The others (clock,
/// packet, file) are refused by name: the world shapes every link itself,
/// and clock and file faults are not simulated yet.
pub const SIMULATED: [&str; 3] = ["partition", "kill", "pause"];

/// What the simulated faults hold now.
#[derive(Debug, Default)]
pub struct SimNemesis {
    nodes: Vec<String>,
    killed: BTreeSet<String>,
    paused: BTreeSet<String>,
}

fn nodes_value<'a>(nodes: impl IntoIterator<Item = &'a String>) -> Value {
    Value::List(nodes.into_iter().map(Value::str).collect())
}

impl SimNemesis {
    /// The nemesis of a cluster of `n` nodes.
    pub fn new(n: usize) -> SimNemesis {
        SimNemesis { nodes: (0..n).map(node_name).collect(), ..SimNemesis::default() }
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

    fn resume(&mut self, world: &mut dyn Cluster) -> Value {
        let mut back = Vec::new();
        for node in std::mem::take(&mut self.paused) {
            world.resume(self.index(&node));
            back.push(node);
        }
        Value::map(vec![(Value::str("resumed"), nodes_value(&back))])
    }
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
