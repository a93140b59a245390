//! Clock faults on nodes' wall clocks, through the database's clock control
//! (`Db::set_clock_offset`: refstore's `/admin/clock`, or libfaketime for
//! programs without one). The host clock is never touched.
//!
//! - `bump`: each target's clock jumps by its own random offset and stays
//!   there until the stop;
//! - `strobe`: each target's clock flips between an offset and true time
//!   every few milliseconds until the stop;
//! - `skew`: each target's clock runs at its own wrong rate (drifting ahead
//!   or behind) until the stop.
//!
//! The stop puts every node's clock back to true time. Offsets are drawn
//! from the nemesis's seeded randomness and recorded, per node.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use checkers::Value;
use checkers::value::Float;
use harness::generator::{self as g, Invocation, Rng};
use harness::plugin::NemesisPackage;
use harness::{Db, HarnessError, Nemesis, Result, TestEnv, TestSpec};
use rand::Rng as _;
use tokio::task::JoinHandle;

use crate::targets::{Bound, Targets, field, nodes_value, option_list, targets_option};

/// A kind of clock fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockFault {
    /// A jump by a fixed offset.
    Bump,
    /// Flipping between an offset and true time.
    Strobe,
    /// A clock running at the wrong rate.
    Skew,
}

impl ClockFault {
    /// Every kind.
    pub const EVERY: [ClockFault; 3] = [ClockFault::Bump, ClockFault::Strobe, ClockFault::Skew];

    /// The name in options and histories.
    pub fn name(self) -> &'static str {
        match self {
            ClockFault::Bump => "bump",
            ClockFault::Strobe => "strobe",
            ClockFault::Skew => "skew",
        }
    }

    /// The kind of this name.
    pub fn parse(s: &str) -> Option<ClockFault> {
        ClockFault::EVERY.iter().copied().find(|k| k.name() == s)
    }
}

/// How big clock faults get.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClockLimits {
    /// Largest offset (bump, strobe) in milliseconds; offsets are drawn
    /// with a magnitude between a tenth of this and this, either sign.
    pub max_offset_ms: i64,
    /// Largest drift of a skewed clock, as a fraction of real time (0.5: up
    /// to 1.5× or 0.5× the real rate).
    pub max_drift: f64,
}

/// What one target's clock fault is, as drawn: the parameters the nemesis
/// sets and records. Drawn by [`ClockDraw::draw`] alone, so a simulated
/// clock nemesis draws exactly what a real one would from the same rng.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClockDraw {
    /// The clock jumps by `offset_ms` and stays there.
    Bump {
        /// The offset from true time, milliseconds.
        offset_ms: i64,
    },
    /// The clock flips between `offset_ms` and true time every `period_ms`,
    /// starting at the offset.
    Strobe {
        /// The offset from true time while it is on, milliseconds.
        offset_ms: i64,
        /// How long each state lasts, milliseconds.
        period_ms: u64,
    },
    /// The clock runs at `1 + drift` times the real rate from the start of
    /// the fault (its offset, re-set every [`SKEW_STEP_MS`], grows by
    /// `drift` milliseconds per real millisecond).
    Skew {
        /// The rate's error, a fraction of real time.
        drift: f64,
    },
}

/// How often a skewed clock's offset is set again, milliseconds.
pub const SKEW_STEP_MS: u64 = 50;

impl ClockDraw {
    /// Draws one target's parameters for `fault` within `limits`.
    pub fn draw(fault: ClockFault, limits: &ClockLimits, rng: &mut Rng) -> ClockDraw {
        let offset = |rng: &mut Rng| {
            let max = limits.max_offset_ms.max(1);
            let magnitude = rng.random_range((max / 10).max(1)..=max);
            if rng.random_bool(0.5) { magnitude } else { -magnitude }
        };
        match fault {
            ClockFault::Bump => ClockDraw::Bump { offset_ms: offset(rng) },
            ClockFault::Strobe => {
                let offset_ms = offset(rng);
                ClockDraw::Strobe { offset_ms, period_ms: rng.random_range(10..=100) }
            }
            ClockFault::Skew => {
                let max = limits.max_drift.max(0.001);
                let magnitude = rng.random_range(max / 10.0..=max);
                ClockDraw::Skew { drift: if rng.random_bool(0.5) { magnitude } else { -magnitude } }
            }
        }
    }

    /// The offset (milliseconds) this fault has set `elapsed_ms` after it
    /// began, as the real nemesis's tasks set it but without the latency of
    /// their requests: a strobe flips at every period, a skew's offset is
    /// re-set every [`SKEW_STEP_MS`].
    pub fn offset_at(&self, elapsed_ms: u64) -> i64 {
        match *self {
            ClockDraw::Bump { offset_ms } => offset_ms,
            ClockDraw::Strobe { offset_ms, period_ms } => {
                if (elapsed_ms / period_ms.max(1)).is_multiple_of(2) { offset_ms } else { 0 }
            }
            ClockDraw::Skew { drift } => {
                let step = elapsed_ms / SKEW_STEP_MS * SKEW_STEP_MS;
                (step as f64 * drift) as i64
            }
        }
    }

    /// The parameter recorded for the target in the start's `clocks` map.
    pub fn record(&self) -> Value {
        let (param, value) = match *self {
            ClockDraw::Bump { offset_ms } => ("offset-ms", Value::Int(offset_ms)),
            ClockDraw::Strobe { offset_ms, period_ms } => (
                "strobe",
                Value::map(vec![
                    (Value::str("offset-ms"), Value::Int(offset_ms)),
                    (Value::str("period-ms"), Value::Int(period_ms as i64)),
                ]),
            ),
            ClockDraw::Skew { drift } => ("rate", Value::Float(Float(1.0 + drift))),
        };
        Value::map(vec![(Value::str(param), value)])
    }
}

/// The limits the `clock` package's options set (`clock_max_ms`,
/// `clock_max_drift`), checked.
pub fn clock_limits(spec: &TestSpec) -> Result<ClockLimits> {
    let max_offset_ms: i64 = spec.option("clock_max_ms", 60_000)?;
    let max_drift: f64 = spec.option("clock_max_drift", 0.5)?;
    if max_offset_ms <= 0 || !(max_drift > 0.0 && max_drift < 1.0) {
        return Err(HarnessError::spec(
            "test spec",
            "options.clock_max_ms",
            format!(
                "clock_max_ms must be positive ({max_offset_ms}) and clock_max_drift between 0 \
                 and 1 ({max_drift})"
            ),
        ));
    }
    Ok(ClockLimits { max_offset_ms, max_drift })
}

/// How long a clock task may take to finish its last offset at a stop
/// (a paused node holds the request until it times out) before it is
/// aborted.
const TASK_STOP: Duration = Duration::from_secs(10);

/// Injects clock faults and resets them.
pub struct ClockNemesis {
    limits: ClockLimits,
    bound: Bound,
    /// Background tasks moving clocks (strobe, skew), stopped at the stop.
    tasks: Vec<JoinHandle<()>>,
    /// Tells those tasks to stop after the offset they are setting.
    stop: Arc<AtomicBool>,
    /// Whether any offset may be in force.
    dirty: bool,
}

impl ClockNemesis {
    /// A clock nemesis within `limits`.
    pub fn new(limits: ClockLimits) -> ClockNemesis {
        ClockNemesis {
            limits,
            bound: Bound::default(),
            tasks: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            dirty: false,
        }
    }

    /// Stops the background tasks and puts every node's clock back;
    /// returns the nodes that could not be reset, with the reason.
    async fn reset(&mut self) -> Vec<(String, String)> {
        // Each task finishes the offset it is setting before it stops.
        // Aborting it instead could leave that request in flight (or, with
        // libfaketime, the command that writes the offset file running) to
        // land after the reset below and move the clock again.
        self.stop.store(true, Ordering::SeqCst);
        for mut t in self.tasks.drain(..) {
            if tokio::time::timeout(TASK_STOP, &mut t).await.is_err() {
                t.abort();
                let _ = t.await;
            }
        }
        self.stop = Arc::new(AtomicBool::new(false));
        let Ok((env, db)) = self.bound.get("clock") else { return Vec::new() };
        let all = env.nodes().iter().map(|n| (n.clone(), 0)).collect();
        let failed = set_all(&db, &env, all).await;
        self.dirty = !failed.is_empty();
        failed
    }
}

/// Sets `node`'s offset, turning a failure into a recorded reason (a node
/// that is down or paused cannot take an offset; that is not a harness
/// failure).
async fn set(db: &dyn Db, env: &TestEnv, node: &str, offset_ms: i64) -> Option<String> {
    db.set_clock_offset(env, node, offset_ms).await.err().map(|e| e.to_string())
}

/// Sets several nodes' offsets at once (a paused node holds its request
/// until it times out; the others need not wait for it). Returns the nodes
/// that could not be set, with the reason.
async fn set_all(
    db: &Arc<dyn Db>,
    env: &TestEnv,
    offsets: Vec<(String, i64)>,
) -> Vec<(String, String)> {
    let mut jobs = tokio::task::JoinSet::new();
    for (node, off) in offsets {
        let (db, env) = (db.clone(), env.clone());
        jobs.spawn(async move {
            let e = set(db.as_ref(), &env, &node, off).await;
            (node, e)
        });
    }
    let mut failed: Vec<(String, String)> =
        jobs.join_all().await.into_iter().filter_map(|(n, e)| e.map(|e| (n, e))).collect();
    failed.sort();
    failed
}

#[async_trait]
impl Nemesis for ClockNemesis {
    fn fs(&self) -> Vec<String> {
        vec!["start-clock".into(), "stop-clock".into()]
    }

    async fn setup(&mut self, env: &TestEnv, db: Arc<dyn Db>) -> Result<()> {
        self.bound.set(env, db);
        Ok(())
    }

    async fn invoke(&mut self, op: &Invocation, rng: &mut Rng) -> Result<Value> {
        let (env, db) = self.bound.get("clock")?;
        match op.f.as_str() {
            "start-clock" => {
                // A new fault replaces whatever the previous one left.
                if !self.tasks.is_empty() {
                    self.reset().await;
                }
                let fault =
                    field(&op.value, "fault", ClockFault::parse).unwrap_or(ClockFault::Bump);
                let rule = field(&op.value, "targets", Targets::parse).unwrap_or(Targets::One);
                let nodes = rule.choose(env.nodes(), db.as_ref(), &env, rng).await;
                self.dirty = true;
                let mut per_node = Vec::new();
                let mut bumps = Vec::new();
                for node in &nodes {
                    let draw = ClockDraw::draw(fault, &self.limits, rng);
                    match draw {
                        ClockDraw::Bump { offset_ms } => bumps.push((node.clone(), offset_ms)),
                        ClockDraw::Strobe { offset_ms, period_ms } => {
                            let period = Duration::from_millis(period_ms);
                            let (db2, env2, n2) = (db.clone(), env.clone(), node.clone());
                            let stop = self.stop.clone();
                            self.tasks.push(tokio::spawn(async move {
                                let mut on = false;
                                while !stop.load(Ordering::SeqCst) {
                                    on = !on;
                                    let off = if on { offset_ms } else { 0 };
                                    let _ = set(db2.as_ref(), &env2, &n2, off).await;
                                    tokio::time::sleep(period).await;
                                }
                            }));
                        }
                        ClockDraw::Skew { drift } => {
                            let (db2, env2, n2) = (db.clone(), env.clone(), node.clone());
                            let stop = self.stop.clone();
                            self.tasks.push(tokio::spawn(async move {
                                // The offset grows with real time, so the
                                // node's clock runs at (1 + drift) × real.
                                let began = Instant::now();
                                while !stop.load(Ordering::SeqCst) {
                                    let off = (began.elapsed().as_secs_f64() * 1e3 * drift) as i64;
                                    let _ = set(db2.as_ref(), &env2, &n2, off).await;
                                    tokio::time::sleep(Duration::from_millis(SKEW_STEP_MS)).await;
                                }
                            }));
                        }
                    }
                    per_node.push((Value::str(node), draw.record()));
                }
                let failed = set_all(&db, &env, bumps).await;
                tracing::info!(fault = fault.name(), ?nodes, "clock fault");
                let not_set = failed.into_iter().map(|(n, e)| (Value::str(n), Value::str(e)));
                Ok(clock_record(fault, rule, &nodes, per_node, not_set.collect()))
            }
            "stop-clock" => {
                let failed = self.reset().await;
                let mut fields = vec![(Value::str("reset"), nodes_value(env.nodes()))];
                if !failed.is_empty() {
                    fields.push((Value::str("not-reset"), reasons(failed)));
                }
                Ok(Value::map(fields))
            }
            other => Err(HarnessError::Internal(format!("clock nemesis cannot {other}"))),
        }
    }

    async fn heal(&mut self) -> Result<()> {
        if !self.dirty && self.tasks.is_empty() {
            return Ok(());
        }
        let failed = self.reset().await;
        match failed.first() {
            None => Ok(()),
            Some((node, e)) => Err(HarnessError::node(node, "reset the clock", e)),
        }
    }
}

fn reasons(failed: Vec<(String, String)>) -> Value {
    Value::map(failed.into_iter().map(|(n, e)| (Value::str(n), Value::str(e))).collect())
}

/// What a `start-clock` records, here and in the simulation: the fault,
/// the targets' rule and nodes, each node's drawn parameters, and the nodes
/// whose clock could not be set with why (`not-set`, left out when empty).
pub fn clock_record(
    fault: ClockFault,
    rule: Targets,
    nodes: &[String],
    clocks: Vec<(Value, Value)>,
    not_set: Vec<(Value, Value)>,
) -> Value {
    let mut fields = vec![
        (Value::str("fault"), Value::str(fault.name())),
        (Value::str("targets"), Value::str(rule.name())),
        (Value::str("nodes"), nodes_value(nodes)),
        (Value::str("clocks"), Value::map(clocks)),
    ];
    if !not_set.is_empty() {
        fields.push((Value::str("not-set"), Value::map(not_set)));
    }
    Value::map(fields)
}

/// The `clock` package: `options.clock_faults` (comma-separated `bump`,
/// `strobe`, `skew`; default all), `options.clock_targets` (default `one`,
/// `minority`, `majority`, `all`, `primaries`), `options.clock_max_ms` (largest offset,
/// default 60000) and `options.clock_max_drift` (default 0.5).
pub fn package(spec: &TestSpec) -> Result<NemesisPackage> {
    let known: Vec<(&str, ClockFault)> = ClockFault::EVERY.iter().map(|k| (k.name(), *k)).collect();
    let faults = option_list(spec, "clock_faults", &known, &ClockFault::EVERY)?;
    let rules = targets_option(spec, "clock_targets", &Targets::EVERY)?;
    let limits = clock_limits(spec)?;
    let start = g::from_fn(move |rng: &mut Rng, _| {
        let fault = faults[rng.random_range(0..faults.len())];
        let rule = rules[rng.random_range(0..rules.len())];
        Some(Invocation::new(
            "start-clock",
            Value::map(vec![
                (Value::str("fault"), Value::str(fault.name())),
                (Value::str("targets"), Value::str(rule.name())),
            ]),
        ))
    });
    let stop = g::from_fn(|_, _| Some(Invocation::new("stop-clock", Value::Nil)));
    Ok(NemesisPackage {
        nemesis: Box::new(ClockNemesis::new(limits)),
        generator: g::flip_flop(start, stop),
        final_generator: g::op(Invocation::new("stop-clock", Value::Nil)),
    })
}

/// Offsets per node as the last start recorded them (for tests reading a
/// history): node → offset in milliseconds, for bumps.
pub fn bump_offsets(value: &Value) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    if let Some(Value::Map(clocks)) = value.get(&Value::str("clocks")) {
        for (node, v) in clocks {
            if let (Some(n), Some(off)) =
                (node.as_str(), v.get(&Value::str("offset-ms")).and_then(Value::as_int))
            {
                out.insert(n.to_owned(), off);
            }
        }
    }
    out
}
