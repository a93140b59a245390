//! Packet faults: the links out of the target nodes (to every other node)
//! get delay with jitter, loss, duplication, reordering or a rate limit, or
//! several at once, through the runtime's link shaper (`tc netem`, the
//! NFQUEUE shaper in `netns` namespaces, or the proxies of `local`). Which
//! shaper the runtime found is logged and recorded with the fault; a runtime
//! with none refuses, saying what is missing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use checkers::Value;
use harness::generator::{self as g, Invocation, Rng};
use harness::node::LinkShape;
use harness::plugin::NemesisPackage;
use harness::{Db, HarnessError, Nemesis, Result, TestEnv, TestSpec};
use rand::Rng as _;

use crate::targets::{Bound, Targets, field, nodes_value, option_list, targets_option};

/// One packet behaviour (Jepsen's netem behaviours).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// 50 ms plus a uniform jitter of up to 10 ms.
    Delay,
    /// 20 % of packets dropped.
    Loss,
    /// 20 % of packets sent twice.
    Duplicate,
    /// 20 % of packets skip a 20 ms delay, overtaking the others.
    Reorder,
    /// 1 Mbit/s.
    Rate,
}

impl Behaviour {
    /// Every behaviour.
    pub const EVERY: [Behaviour; 5] = [
        Behaviour::Delay,
        Behaviour::Loss,
        Behaviour::Duplicate,
        Behaviour::Reorder,
        Behaviour::Rate,
    ];

    /// The name in options and histories.
    pub fn name(self) -> &'static str {
        match self {
            Behaviour::Delay => "delay",
            Behaviour::Loss => "loss",
            Behaviour::Duplicate => "duplicate",
            Behaviour::Reorder => "reorder",
            Behaviour::Rate => "rate",
        }
    }

    /// The behaviour of this name.
    pub fn parse(s: &str) -> Option<Behaviour> {
        Behaviour::EVERY.iter().copied().find(|b| b.name() == s)
    }

    /// Adds this behaviour to `shape`.
    pub fn apply(self, shape: &mut LinkShape) {
        match self {
            Behaviour::Delay => {
                shape.delay = shape.delay.max(Duration::from_millis(50));
                shape.jitter = Duration::from_millis(10);
            }
            Behaviour::Loss => shape.loss = 0.2,
            Behaviour::Duplicate => shape.duplicate = 0.2,
            Behaviour::Reorder => {
                shape.reorder = 0.2;
                shape.delay = shape.delay.max(Duration::from_millis(20));
            }
            Behaviour::Rate => shape.rate = 125_000,
        }
    }
}

/// The behaviours a `start-packet` names (its `behaviours` field), delay
/// when it names none: read the same way here and in the simulation.
pub fn behaviours_of(value: &Value) -> Vec<Behaviour> {
    let named: Vec<Behaviour> = value
        .get(&Value::str("behaviours"))
        .and_then(Value::as_list)
        .unwrap_or(&[])
        .iter()
        .filter_map(|b| b.as_str().and_then(Behaviour::parse))
        .collect();
    if named.is_empty() { vec![Behaviour::Delay] } else { named }
}

/// What a `start-packet` records, here and in the simulation: the
/// behaviours, the targets' rule and nodes, the shape, how many links it
/// shapes, and what shapes them.
pub fn packet_record(
    behaviours: &[Behaviour],
    rule: Targets,
    targets: &[String],
    shape: &LinkShape,
    links: usize,
    shaper: &str,
) -> Value {
    Value::map(vec![
        (
            Value::str("behaviours"),
            Value::List(behaviours.iter().map(|b| Value::str(b.name())).collect()),
        ),
        (Value::str("targets"), Value::str(rule.name())),
        (Value::str("from"), nodes_value(targets)),
        (Value::str("shape"), shape.to_value()),
        (Value::str("links"), Value::Int(links as i64)),
        (Value::str("shaper"), Value::str(shaper)),
    ])
}

/// The shape of a set of behaviours, seeded.
pub fn shape_of(behaviours: &[Behaviour], seed: u64) -> LinkShape {
    let mut shape = LinkShape { seed, ..LinkShape::default() };
    for b in behaviours {
        b.apply(&mut shape);
    }
    shape
}

/// Shapes the links out of target nodes, and restores them.
#[derive(Default)]
pub struct PacketNemesis {
    bound: Bound,
    /// Links currently shaped, `(from, to)`.
    shaped: Vec<(String, String)>,
}

impl PacketNemesis {
    async fn restore(&mut self) -> Result<usize> {
        let Some(env) = self.bound.env() else { return Ok(0) };
        let mut first = None;
        let mut restored = 0;
        for (from, to) in std::mem::take(&mut self.shaped) {
            match env.runtime.set_link_shape(&from, &to, None).await {
                Ok(()) => restored += 1,
                Err(e) => {
                    first.get_or_insert(e);
                    self.shaped.push((from, to));
                }
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(restored),
        }
    }
}

#[async_trait]
impl Nemesis for PacketNemesis {
    fn fs(&self) -> Vec<String> {
        vec!["start-packet".into(), "stop-packet".into()]
    }

    async fn setup(&mut self, env: &TestEnv, db: Arc<dyn Db>) -> Result<()> {
        self.bound.set(env, db);
        Ok(())
    }

    async fn invoke(&mut self, op: &Invocation, rng: &mut Rng) -> Result<Value> {
        let (env, db) = self.bound.get("packet")?;
        match op.f.as_str() {
            "start-packet" => {
                if !self.shaped.is_empty() {
                    self.restore().await?;
                }
                // Says what shapes links here, or why nothing can.
                let shaper = env.runtime.link_shaper().await?;
                let behaviours = behaviours_of(&op.value);
                let rule = field(&op.value, "targets", Targets::parse).unwrap_or(Targets::One);
                let targets = rule.choose(env.nodes(), db.as_ref(), &env, rng).await;
                let shape = shape_of(&behaviours, rng.random());
                for from in &targets {
                    for to in env.nodes().iter().filter(|n| *n != from) {
                        env.runtime.set_link_shape(from, to, Some(&shape)).await?;
                        self.shaped.push((from.clone(), to.clone()));
                    }
                }
                tracing::info!(?targets, shaper = %shaper, shape = ?shape, "packet fault");
                let shaper = shaper.to_string();
                Ok(packet_record(&behaviours, rule, &targets, &shape, self.shaped.len(), &shaper))
            }
            "stop-packet" => {
                let restored = self.restore().await?;
                Ok(Value::map(vec![(Value::str("restored-links"), Value::Int(restored as i64))]))
            }
            other => Err(HarnessError::Internal(format!("packet nemesis cannot {other}"))),
        }
    }

    async fn heal(&mut self) -> Result<()> {
        self.restore().await.map(|_| ())
    }
}

/// The `packet` package: `options.packet_faults` (comma-separated `delay`,
/// `loss`, `duplicate`, `reorder`, `rate`; default all: each start draws a
/// random non-empty subset) and `options.packet_targets` (default `one`,
/// `minority`, `majority`, `all`, `primaries`).
pub fn package(spec: &TestSpec) -> Result<NemesisPackage> {
    let known: Vec<(&str, Behaviour)> = Behaviour::EVERY.iter().map(|b| (b.name(), *b)).collect();
    let allowed = option_list(spec, "packet_faults", &known, &Behaviour::EVERY)?;
    let rules = targets_option(spec, "packet_targets", &Targets::EVERY)?;
    let start = g::from_fn(move |rng: &mut Rng, _| {
        let mut chosen: Vec<Behaviour> =
            allowed.iter().copied().filter(|_| rng.random_bool(0.5)).collect();
        if chosen.is_empty() {
            chosen.push(allowed[rng.random_range(0..allowed.len())]);
        }
        let rule = rules[rng.random_range(0..rules.len())];
        Some(Invocation::new(
            "start-packet",
            Value::map(vec![
                (
                    Value::str("behaviours"),
                    Value::List(chosen.iter().map(|b| Value::str(b.name())).collect()),
                ),
                (Value::str("targets"), Value::str(rule.name())),
            ]),
        ))
    });
    let stop = g::from_fn(|_, _| Some(Invocation::new("stop-packet", Value::Nil)));
    Ok(NemesisPackage {
        nemesis: Box::new(PacketNemesis::default()),
        generator: g::flip_flop(start, stop),
        final_generator: g::op(Invocation::new("stop-packet", Value::Nil)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaviours_combine_into_one_shape() {
        let s = shape_of(&[Behaviour::Reorder, Behaviour::Delay, Behaviour::Loss], 7);
        assert_eq!(s.delay, Duration::from_millis(50));
        assert_eq!(s.jitter, Duration::from_millis(10));
        assert_eq!((s.loss, s.reorder, s.duplicate, s.rate, s.seed), (0.2, 0.2, 0.0, 0, 7));
        assert!(s.validate().is_ok());
        let s = shape_of(&[Behaviour::Reorder], 1);
        assert_eq!(s.delay, Duration::from_millis(20), "reordering needs a delay to skip");
        assert!(!shape_of(&[Behaviour::Rate], 0).is_identity());
    }
}
