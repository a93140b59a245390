//! Process faults: crash nodes with SIGKILL and restart them (`kill`), or
//! freeze them with SIGSTOP and resume them with SIGCONT (`pause`), aimed at
//! one node, a minority, a majority, all, or the current primaries. The stop
//! operation records which nodes came back, as checked through the database.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use checkers::Value;
use harness::generator::{self as g, Invocation, Rng};
use harness::plugin::NemesisPackage;
use harness::{Db, HarnessError, Nemesis, Result, TestEnv, TestSpec};
use rand::Rng as _;

use crate::targets::{Bound, Targets, nodes_value, targets_option};

/// How long a restarted node may take to answer again.
const RESTART_READY: Duration = Duration::from_secs(20);

/// What a process fault does to its targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessFault {
    /// SIGKILL, then start again.
    Kill,
    /// SIGSTOP, then SIGCONT.
    Pause,
}

impl ProcessFault {
    /// `kill` or `pause`: the kind in `start-<kind>` / `stop-<kind>`.
    pub fn kind(self) -> &'static str {
        match self {
            ProcessFault::Kill => "kill",
            ProcessFault::Pause => "pause",
        }
    }
}

/// Kills and restarts, or pauses and resumes, database processes.
pub struct ProcessNemesis {
    fault: ProcessFault,
    bound: Bound,
    /// Nodes this nemesis broke and has not yet brought back.
    affected: BTreeSet<String>,
}

/// The kill nemesis (kept under its old name for plugin code).
pub type KillNemesis = ProcessNemesis;
/// The kill targets (kept under its old name for plugin code).
pub type KillTargets = Targets;

impl ProcessNemesis {
    /// A nemesis doing `fault`.
    pub fn new(fault: ProcessFault) -> ProcessNemesis {
        ProcessNemesis { fault, bound: Bound::default(), affected: BTreeSet::new() }
    }

    /// Brings back every affected node: restarts (kill) or resumes (pause),
    /// then waits for each to answer. Returns `(back, still_down)`.
    async fn restore(&mut self) -> Result<(Vec<String>, Vec<(String, String)>)> {
        let Ok((env, db)) = self.bound.get(self.fault.kind()) else {
            return Ok((Vec::new(), Vec::new()));
        };
        let env = &env;
        let mut back = Vec::new();
        let mut down = Vec::new();
        let mut first_err = None;
        for node in std::mem::take(&mut self.affected) {
            let r = match self.fault {
                ProcessFault::Kill => db.start(env, &node).await,
                ProcessFault::Pause => db.resume(env, &node).await,
            };
            match r {
                Ok(()) => back.push(node),
                Err(e) => {
                    down.push((node.clone(), e.to_string()));
                    first_err.get_or_insert(e);
                    self.affected.insert(node);
                }
            }
        }
        let mut ready = Vec::new();
        for node in back {
            match db.await_ready(env, &node, RESTART_READY).await {
                Ok(()) => ready.push(node),
                // Recorded, not fatal: another fault (a damaged file, a
                // partition) may legitimately keep it from answering.
                Err(e) => {
                    tracing::warn!(node = %node, "not answering after {}: {e}", self.fault.kind());
                    down.push((node, e.to_string()));
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok((ready, down)),
        }
    }
}

#[async_trait]
impl Nemesis for ProcessNemesis {
    fn fs(&self) -> Vec<String> {
        let k = self.fault.kind();
        vec![format!("start-{k}"), format!("stop-{k}")]
    }

    async fn setup(&mut self, env: &TestEnv, db: Arc<dyn Db>) -> Result<()> {
        self.bound.set(env, db);
        Ok(())
    }

    async fn invoke(&mut self, op: &Invocation, rng: &mut Rng) -> Result<Value> {
        let (env, db) = self.bound.get(self.fault.kind())?;
        let k = self.fault.kind();
        if op.f == format!("start-{k}") {
            let rule = op.value.as_str().and_then(Targets::parse).unwrap_or(Targets::One);
            let candidates: Vec<String> =
                env.nodes().iter().filter(|n| !self.affected.contains(*n)).cloned().collect();
            let victims = rule.choose(&candidates, db.as_ref(), &env, rng).await;
            for v in &victims {
                match self.fault {
                    ProcessFault::Kill => db.kill(&env, v).await?,
                    ProcessFault::Pause => db.pause(&env, v).await?,
                }
                self.affected.insert(v.clone());
            }
            tracing::info!(?victims, targets = rule.name(), "{k}");
            Ok(Value::map(vec![
                (Value::str("targets"), Value::str(rule.name())),
                (Value::str("nodes"), nodes_value(&victims)),
            ]))
        } else if op.f == format!("stop-{k}") {
            let (back, down) = self.restore().await?;
            let verb = match self.fault {
                ProcessFault::Kill => "restarted",
                ProcessFault::Pause => "resumed",
            };
            let mut fields = vec![(Value::str(verb), nodes_value(&back))];
            if !down.is_empty() {
                fields.push((
                    Value::str("not-answering"),
                    Value::map(
                        down.into_iter().map(|(n, e)| (Value::str(n), Value::str(e))).collect(),
                    ),
                ));
            }
            Ok(Value::map(fields))
        } else {
            Err(HarnessError::Internal(format!("{k} nemesis cannot {}", op.f)))
        }
    }

    async fn heal(&mut self) -> Result<()> {
        self.restore().await.map(|_| ())
    }
}

fn package_for(spec: &TestSpec, fault: ProcessFault) -> Result<NemesisPackage> {
    let k = fault.kind();
    let rules = targets_option(spec, &format!("{k}_targets"), &Targets::EVERY)?;
    let start_f = format!("start-{k}");
    let stop_f = format!("stop-{k}");
    let start = g::from_fn(move |rng: &mut Rng, _| {
        let rule = rules[rng.random_range(0..rules.len())];
        Some(Invocation::new(start_f.clone(), rule.name()))
    });
    let stop_f2 = stop_f.clone();
    let stop = g::from_fn(move |_, _| Some(Invocation::new(stop_f2.clone(), Value::Nil)));
    Ok(NemesisPackage {
        nemesis: Box::new(ProcessNemesis::new(fault)),
        generator: g::flip_flop(start, stop),
        final_generator: g::op(Invocation::new(stop_f, Value::Nil)),
    })
}

/// The `kill` package: `options.kill_targets` = a comma-separated list of
/// `one`, `minority`, `majority`, `all`, `primaries` (default: all five; each
/// start draws one).
pub fn kill_package(spec: &TestSpec) -> Result<NemesisPackage> {
    package_for(spec, ProcessFault::Kill)
}

/// The `pause` package: `options.pause_targets`, as for `kill`.
pub fn pause_package(spec: &TestSpec) -> Result<NemesisPackage> {
    package_for(spec, ProcessFault::Pause)
}
