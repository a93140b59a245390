//! Process faults: crash nodes with SIGKILL and restart them (`kill`), or
//! freeze them with SIGSTOP and resume them with SIGCONT (`pause`), aimed at
//! one node, a minority, a majority, all, or the current primaries. The stop
//! operation records which nodes came back, as checked through the database.
//!
//! The two packages share what holds each node (`TestEnv::process_faults`),
//! so when they overlap the records say what happened: a kill of a paused
//! node records `was-paused` (the kill ends the pause), a pause skips nodes
//! that are down and records them under `down`, and the pause's stop
//! records a node killed meanwhile under `not-resumed` instead of claiming
//! to resume it.

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
    /// then waits for each to answer. Returns `(back, still_down, skipped)`:
    /// `skipped` are paused nodes a kill took meanwhile, with why.
    async fn restore(&mut self) -> Result<Restored> {
        let Ok((env, db)) = self.bound.get(self.fault.kind()) else {
            return Ok(Restored::default());
        };
        let env = &env;
        let mut back = Vec::new();
        let mut down = Vec::new();
        let mut skipped = Vec::new();
        let mut first_err = None;
        for node in std::mem::take(&mut self.affected) {
            let held = env.process_faults.get(&node);
            if self.fault == ProcessFault::Pause && !held.paused {
                // A kill ended the pause: there is no stopped process to
                // resume (the node is down, or the kill nemesis restarted it).
                let why = if held.killed {
                    "killed while paused; still down"
                } else {
                    "killed while paused; restarted by the kill nemesis"
                };
                skipped.push((node, why.to_owned()));
                continue;
            }
            let r = match self.fault {
                ProcessFault::Kill => db.start(env, &node).await,
                ProcessFault::Pause => db.resume(env, &node).await,
            };
            match r {
                Ok(()) => {
                    env.process_faults.update(&node, |h| match self.fault {
                        ProcessFault::Kill => h.killed = false,
                        ProcessFault::Pause => h.paused = false,
                    });
                    back.push(node)
                }
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
            None => Ok(Restored { back: ready, down, skipped }),
        }
    }
}

/// What a stop brought back.
#[derive(Default)]
struct Restored {
    /// Nodes back and answering.
    back: Vec<String>,
    /// Nodes that did not come back, with why.
    down: Vec<(String, String)>,
    /// Paused nodes a kill took meanwhile, with why they were not resumed.
    skipped: Vec<(String, String)>,
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
            // A dead node cannot be paused: pauses choose among the living
            // and say which nodes were down.
            let down: Vec<String> = env
                .nodes()
                .iter()
                .filter(|n| self.fault == ProcessFault::Pause && env.process_faults.get(n).killed)
                .cloned()
                .collect();
            let candidates: Vec<String> = env
                .nodes()
                .iter()
                .filter(|n| !self.affected.contains(*n) && !down.contains(n))
                .cloned()
                .collect();
            let victims = rule.choose(&candidates, db.as_ref(), &env, rng).await;
            let mut was_paused = Vec::new();
            for v in &victims {
                match self.fault {
                    ProcessFault::Kill => {
                        db.kill(&env, v).await?;
                        env.process_faults.update(v, |h| {
                            if h.paused {
                                was_paused.push(v.clone());
                            }
                            h.killed = true;
                            h.paused = false;
                        });
                    }
                    ProcessFault::Pause => {
                        db.pause(&env, v).await?;
                        env.process_faults.update(v, |h| h.paused = true);
                    }
                }
                self.affected.insert(v.clone());
            }
            tracing::info!(?victims, targets = rule.name(), "{k}");
            let mut fields = vec![
                (Value::str("targets"), Value::str(rule.name())),
                (Value::str("nodes"), nodes_value(&victims)),
            ];
            if !was_paused.is_empty() {
                fields.push((Value::str("was-paused"), nodes_value(&was_paused)));
            }
            if !down.is_empty() {
                fields.push((Value::str("down"), nodes_value(&down)));
            }
            Ok(Value::map(fields))
        } else if op.f == format!("stop-{k}") {
            let Restored { back, down, skipped } = self.restore().await?;
            let verb = match self.fault {
                ProcessFault::Kill => "restarted",
                ProcessFault::Pause => "resumed",
            };
            let mut fields = vec![(Value::str(verb), nodes_value(&back))];
            if !skipped.is_empty() {
                fields.push((
                    Value::str("not-resumed"),
                    Value::map(
                        skipped.into_iter().map(|(n, e)| (Value::str(n), Value::str(e))).collect(),
                    ),
                ));
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use harness::runtime::local::LocalRuntime;
    use harness::{Client, Completion};
    use rand::SeedableRng;
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::sync::Mutex;

    /// A database of signals: it records what was done to whom and which
    /// nodes are running, stopped or dead, as a real process would be.
    #[derive(Default)]
    struct Signals {
        log: Mutex<Vec<String>>,
        state: Mutex<BTreeMap<String, &'static str>>,
    }

    impl Signals {
        fn did(&self, what: &str, node: &str, state: &'static str) {
            self.log.lock().expect("log").push(format!("{what} {node}"));
            self.state.lock().expect("state").insert(node.to_owned(), state);
        }
        fn state(&self, node: &str) -> &'static str {
            self.state.lock().expect("state").get(node).copied().unwrap_or("running")
        }
    }

    struct NoClient;
    #[async_trait]
    impl Client for NoClient {
        async fn open(&mut self, _: &str) -> Result<()> {
            Ok(())
        }
        async fn invoke(&mut self, op: &Invocation) -> Completion {
            Completion::fail(op.value.clone(), "no client")
        }
        async fn close(&mut self) {}
    }

    #[async_trait]
    impl Db for Signals {
        async fn setup(&self, _: &TestEnv, _: &str) -> Result<()> {
            Ok(())
        }
        async fn start(&self, _: &TestEnv, n: &str) -> Result<()> {
            self.did("start", n, "running");
            Ok(())
        }
        async fn kill(&self, _: &TestEnv, n: &str) -> Result<()> {
            self.did("kill", n, "dead");
            Ok(())
        }
        async fn pause(&self, _: &TestEnv, n: &str) -> Result<()> {
            assert_eq!(self.state(n), "running", "pausing {n}, which is not running");
            self.did("pause", n, "stopped");
            Ok(())
        }
        async fn resume(&self, _: &TestEnv, n: &str) -> Result<()> {
            assert_eq!(self.state(n), "stopped", "resuming {n}, which is not stopped");
            self.did("resume", n, "running");
            Ok(())
        }
        async fn await_ready(&self, _: &TestEnv, _: &str, _: Duration) -> Result<()> {
            Ok(())
        }
        async fn is_running(&self, _: &TestEnv, n: &str) -> Result<bool> {
            Ok(self.state(n) != "dead")
        }
        async fn teardown(&self, _: &TestEnv, _: &str) -> Result<()> {
            Ok(())
        }
        fn log_files(&self, _: &TestEnv, _: &str) -> Vec<PathBuf> {
            Vec::new()
        }
        fn client(&self, _: &TestEnv) -> Box<dyn Client> {
            Box::new(NoClient)
        }
        fn supported_fs(&self) -> &[&str] {
            &[]
        }
    }

    fn field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
        v.get(&Value::str(k))
    }

    #[tokio::test]
    async fn overlapping_pause_and_kill_are_recorded_as_what_happened() {
        let dir = tempfile_dir();
        let rt = LocalRuntime::start(1, dir.join("nodes"), PathBuf::from("/bin/true"), "overlap")
            .await
            .expect("runtime");
        let env = TestEnv::new(Arc::new(TestSpec::default()), Arc::new(rt), dir.clone());
        let db = Arc::new(Signals::default());
        let mut pause = ProcessNemesis::new(ProcessFault::Pause);
        let mut kill = ProcessNemesis::new(ProcessFault::Kill);
        pause.setup(&env, db.clone()).await.expect("setup");
        kill.setup(&env, db.clone()).await.expect("setup");
        let mut rng = Rng::seed_from_u64(1);
        let op = |f: &str, v: Value| Invocation::new(f.to_owned(), v);

        // Pause n1, then kill it: the kill ends the pause.
        let v = pause.invoke(&op("start-pause", Value::str("one")), &mut rng).await.expect("p");
        assert_eq!(field(&v, "nodes"), Some(&nodes_value(&["n1".to_owned()])));
        let v = kill.invoke(&op("start-kill", Value::str("one")), &mut rng).await.expect("k");
        assert_eq!(field(&v, "was-paused"), Some(&nodes_value(&["n1".to_owned()])), "{v}");
        // While n1 is dead, a pause has nothing to stop and says so.
        let v = pause.invoke(&op("start-pause", Value::str("one")), &mut rng).await.expect("p");
        assert_eq!(field(&v, "nodes"), Some(&nodes_value(&Vec::<String>::new())), "{v}");
        assert_eq!(field(&v, "down"), Some(&nodes_value(&["n1".to_owned()])), "{v}");
        // The pause's stop does not claim to resume a dead node.
        let v = pause.invoke(&op("stop-pause", Value::Nil), &mut rng).await.expect("stop");
        assert_eq!(field(&v, "resumed"), Some(&nodes_value(&Vec::<String>::new())), "{v}");
        let not = field(&v, "not-resumed").expect("not-resumed");
        assert!(
            field(not, "n1").and_then(Value::as_str).is_some_and(|s| s.contains("still down")),
            "{v}"
        );
        let v = kill.invoke(&op("stop-kill", Value::Nil), &mut rng).await.expect("stop");
        assert_eq!(field(&v, "restarted"), Some(&nodes_value(&["n1".to_owned()])), "{v}");
        assert_eq!(db.state("n1"), "running");
        // And a plain pause and resume still work afterwards.
        pause.invoke(&op("start-pause", Value::str("one")), &mut rng).await.expect("p");
        let v = pause.invoke(&op("stop-pause", Value::Nil), &mut rng).await.expect("stop");
        assert_eq!(field(&v, "resumed"), Some(&nodes_value(&["n1".to_owned()])), "{v}");
        assert_eq!(
            *db.log.lock().expect("log"),
            ["pause n1", "kill n1", "start n1", "pause n1", "resume n1"]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_paused_node_killed_and_restarted_is_not_resumed_by_the_pause() {
        let dir = tempfile_dir().join("restarted");
        let rt = LocalRuntime::start(2, dir.join("nodes"), PathBuf::from("/bin/true"), "restart")
            .await
            .expect("runtime");
        let env = TestEnv::new(Arc::new(TestSpec::default()), Arc::new(rt), dir.clone());
        let db = Arc::new(Signals::default());
        // Both packages, as a test builds them, composed in spec order.
        let mut nem = harness::plugin::ComposedNemesis::new(vec![
            pause_package(&TestSpec::default()).expect("pause").nemesis,
            kill_package(&TestSpec::default()).expect("kill").nemesis,
        ]);
        nem.setup(&env, db.clone()).await.expect("setup");
        let mut rng = Rng::seed_from_u64(1);
        let op = |f: &str, v: Value| Invocation::new(f.to_owned(), v);

        // Pause both nodes, then kill both: the kill ends both pauses.
        let v = nem.invoke(&op("start-pause", Value::str("all")), &mut rng).await.expect("p");
        let both = nodes_value(&["n1".to_owned(), "n2".to_owned()]);
        assert_eq!(field(&v, "nodes"), Some(&both), "{v}");
        let v = nem.invoke(&op("start-kill", Value::str("all")), &mut rng).await.expect("k");
        assert_eq!(field(&v, "was-paused"), Some(&both), "{v}");
        // The kill's stop restarts them: fresh processes, never stopped.
        let v = nem.invoke(&op("stop-kill", Value::Nil), &mut rng).await.expect("stop");
        assert_eq!(field(&v, "restarted"), Some(&both), "{v}");
        assert_eq!(env.process_faults.get("n1"), harness::plugin::HeldBy::default());
        // The pause's stop resumes nothing and says why for each node.
        let v = nem.invoke(&op("stop-pause", Value::Nil), &mut rng).await.expect("stop");
        assert_eq!(field(&v, "resumed"), Some(&nodes_value(&Vec::<String>::new())), "{v}");
        let not = field(&v, "not-resumed").expect("not-resumed");
        for n in ["n1", "n2"] {
            let why = field(not, n).and_then(Value::as_str).unwrap_or_default();
            assert!(why.contains("restarted"), "{n}: {v}");
        }
        // The final heal has nothing left to do, and does nothing.
        nem.heal().await.expect("heal");
        assert_eq!(
            *db.log.lock().expect("log"),
            ["pause n1", "pause n2", "kill n1", "kill n2", "start n1", "start n2"]
        );
        assert_eq!((db.state("n1"), db.state("n2")), ("running", "running"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fl-overlap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }
}
