//! One whole test: build the plugins the spec names, bring up the runtime and
//! the database, run the generator through the interpreter while recording,
//! heal and tear everything down, then check the recorded history.
//!
//! Harness failures (a node that will not start) are `Err`; what the system
//! under test did is in the history and the verdict.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use tokio::sync::watch;

use crate::clock::MonotonicClock;
use crate::error::{HarnessError, Result};
use crate::generator::{self as g, Gen, Rng};
use crate::interpreter::{Interpreter, Progress, RunStats};
use crate::node::Runtime;
use crate::plugin::{ComposedNemesis, Db, Nemesis, Registry, TestEnv, Workload};
use crate::recorder::{Recorder, RecorderConfig};
use crate::runtime;
use crate::spec::TestSpec;
use results::RunDir;

/// How long a node may take to answer after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the caller supplies besides the spec.
pub struct RunOptions {
    /// Becomes `true` on Ctrl-C.
    pub interrupt: watch::Receiver<bool>,
    /// Live counters (the caller draws the progress bar from them).
    pub progress: Arc<Progress>,
    /// The faultline executable nodes run (`faultline refstore ...`).
    pub binary: PathBuf,
}

/// What a finished run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// Where its files are.
    pub run_dir: RunDir,
    /// The seed that replays it.
    pub seed: u64,
    /// The interpreter's statistics.
    pub stats: RunStats,
    /// The verdicts, and the report they were written to.
    pub finished: crate::finish::Finished,
}

/// The plugins a spec names, built.
pub struct Plan {
    /// The target.
    pub db: Arc<dyn Db>,
    /// The workload.
    pub workload: Box<dyn Workload>,
    /// The composed nemesis, its schedule and its final heal, if any.
    pub nemesis: Option<(Box<dyn Nemesis>, Gen, Gen)>,
}

/// Builds the plugins `spec` names and checks they fit together: the
/// target performs the workload's operations, the checkers can judge them,
/// and every option is read by some part of the test.
pub fn plan(spec: &TestSpec, registry: &Registry) -> Result<Plan> {
    let db = registry.build_target(&spec.target, spec)?;
    let workload = registry.build_workload(&spec.workload, spec)?;
    let supported = db.supported_fs();
    for f in workload.fs() {
        if !supported.contains(&f.as_str()) {
            return Err(HarnessError::spec(
                "test spec",
                "workload",
                format!(
                    "target {} cannot perform {f:?}, which workload {} needs (it supports {})",
                    spec.target,
                    spec.workload,
                    supported.join(", ")
                ),
            ));
        }
    }
    let mut members = Vec::new();
    let mut schedules = Vec::new();
    let mut finals = Vec::new();
    for name in spec.nemeses() {
        let pkg = registry.build_nemesis(name, spec)?;
        members.push(pkg.nemesis);
        schedules.push(pkg.generator);
        finals.push(pkg.final_generator);
    }
    if matches!(spec.runtime, crate::spec::RuntimeKind::Netns | crate::spec::RuntimeKind::Ssh) {
        // Read now, so a bad choice stops the test before anything starts.
        runtime::firewall_choice(spec)?;
    }
    let checks = crate::checks::test_checks(spec, workload.as_ref(), registry)?;
    crate::checks::validate(spec, workload.as_ref(), registry.checkers(), &checks)?;
    let nemesis = if members.is_empty() {
        None
    } else {
        let interval = Duration::from_secs_f64(spec.nemesis_interval);
        let nem: Box<dyn Nemesis> = Box::new(ComposedNemesis::new(members));
        // Faults start after one interval, once the cluster has settled
        // (a primary elected). Each package then follows its own schedule,
        // an operation every `interval` on average, so every fault kind
        // occurs and different kinds overlap.
        let each = schedules.into_iter().map(|s| g::stagger(interval, s)).collect();
        let schedule = g::seq(vec![g::sleep(interval), g::any(each)]);
        Some((nem, schedule, g::seq(finals)))
    };
    Ok(Plan { db, workload, nemesis })
}

/// The whole schedule: the main phase (clients, and faults) for the time
/// limit, then heal, recovery, and the workload's final operations.
pub fn schedule(spec: &TestSpec, workload: &dyn Workload, nemesis: Option<(Gen, Gen)>) -> Gen {
    schedule_limited(spec, workload, nemesis, None)
}

/// [`schedule`], with the main phase's client operations capped at
/// `client_ops` when given (the faults and the time limit stay as they
/// are): the deterministic simulation's shrinker looks for the fewest
/// operations that still fail.
pub fn schedule_limited(
    spec: &TestSpec,
    workload: &dyn Workload,
    nemesis: Option<(Gen, Gen)>,
    client_ops: Option<u64>,
) -> Gen {
    let mut clients = workload.generator(spec);
    if spec.rate > 0.0 {
        clients = g::stagger(Duration::from_secs_f64(1.0 / spec.rate), clients);
    }
    if let Some(n) = client_ops {
        clients = g::limit(n, clients);
    }
    let limit = Duration::from_secs_f64(spec.time_limit);
    let (main, heal) = match nemesis {
        Some((schedule, heal)) => {
            // The faults draw from their own stream, so a seed replays the
            // same faults however fast the clients went.
            let schedule = g::own_stream(schedule);
            (g::time_limit(limit, g::nemesis_and_clients(schedule, clients)), Some(heal))
        }
        None => (g::time_limit(limit, g::clients(clients)), None),
    };
    let mut phases = vec![main];
    if let Some(heal) = heal {
        phases.push(g::log("healing every fault"));
        phases.push(g::nemesis(heal));
    }
    if let Some(fin) = workload.final_generator(spec) {
        if spec.recovery > 0.0 {
            phases.push(g::log(format!("waiting {} s for recovery", spec.recovery)));
            phases.push(g::clients(g::sleep(Duration::from_secs_f64(spec.recovery))));
        }
        phases.push(g::log("final operations"));
        // Final operations retry until they succeed; a node that never
        // comes back must not hang the test.
        let final_limit =
            Duration::from_millis(spec.op_timeout_ms * 5).max(Duration::from_secs(30));
        phases.push(g::clients(g::time_limit(final_limit, fin)));
    }
    g::phases(phases)
}

/// Replaces `default` in the spec's nemeses by the faults its target picks
/// for its mode (`Db::default_nemeses`), and adds the options the target
/// sets for those faults (`Db::default_options`) where the spec sets none,
/// so `test.toml` names exactly the faults and targets that ran. Called
/// before the run directory is named; a resolved spec is left as it is.
pub fn resolve_defaults(spec: &mut TestSpec, registry: &Registry) -> Result<()> {
    let db = registry.build_target(&spec.target, spec)?;
    let mut resolved: Vec<String> = Vec::new();
    for name in std::mem::take(&mut spec.nemesis) {
        let names =
            if name == results::DEFAULT_NEMESIS { db.default_nemeses() } else { vec![name] };
        for n in names {
            if !resolved.contains(&n) {
                resolved.push(n);
            }
        }
    }
    spec.nemesis = resolved;
    let active: Vec<String> = spec.nemeses().into_iter().map(str::to_owned).collect();
    for (key, value) in db.default_options(&active) {
        spec.options.entry(key).or_insert(value);
    }
    Ok(())
}

/// A tag that marks this run's processes and network objects.
pub fn run_tag(run_dir: &RunDir) -> String {
    let stamp =
        run_dir.path().file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{}-{}", std::process::id(), stamp)
}

/// Runs the test described by `spec` (whose seed must be set) in `run_dir`.
pub async fn run_test(
    spec: TestSpec,
    registry: &Registry,
    run_dir: RunDir,
    opts: RunOptions,
) -> Result<RunOutcome> {
    let mut spec = spec;
    let seed = spec
        .seed
        .ok_or_else(|| HarnessError::Internal("run_test needs a spec with a seed".into()))?;
    resolve_defaults(&mut spec, registry)?;
    run_dir.write_spec(&spec)?;
    let plan = plan(&spec, registry)?;
    let spec = Arc::new(spec);
    let tag = run_tag(&run_dir);
    tracing::info!(seed, run = %run_dir.path().display(), tag = %tag, "starting test");
    let rt: Arc<dyn Runtime> = runtime::build(&spec, &run_dir, &tag, &opts.binary).await?;
    let env = TestEnv::new(spec.clone(), rt.clone(), run_dir.path().to_owned());

    let result = drive(&spec, &env, plan, &run_dir, seed, opts).await;

    // Teardown happens whatever happened above; its own failure is only
    // reported when the run itself went well.
    let teardown = rt.teardown().await;
    let stats = result?;
    teardown?;
    if stats.interrupted {
        run_dir.mark_interrupted(&format!(
            "Ctrl-C after {:.1} s of a {} s test",
            stats.elapsed_ns as f64 / 1e9,
            spec.time_limit
        ))?;
    }
    // Checking is CPU work that can take seconds: off the async threads, so
    // that the clients, proxies and other runs beside it keep their pace.
    let (dir, checked_spec, checkers) = (run_dir.clone(), spec.clone(), registry.clone());
    let mut finished = tokio::task::spawn_blocking(move || {
        crate::finish::finish_run(&dir, &checked_spec, &checkers)
    })
    .await
    .map_err(|e| HarnessError::Internal(format!("checking the run: {e}")))??;
    // A last sweep for the run's processes on this machine: the teardown
    // ended every one it found, but CI once saw two still running when the
    // harness exited (gone seconds later), started by something the sweep
    // at teardown did not see. Nothing of the run may outlive it.
    let late = crate::runtime::process::tagged_processes(Some(&tag));
    if !late.is_empty() {
        let pids: Vec<String> =
            late.iter().map(|(pid, _)| crate::runtime::process::described(*pid)).collect();
        let why = match crate::runtime::process::end_run(&tag).await {
            Ok(()) => "ended now".to_owned(),
            Err(e) => e.to_string(),
        };
        let warning = format!(
            "processes of the run were running after its teardown: {}; {why}",
            pids.join(", ")
        );
        tracing::warn!("{warning}");
        finished.warnings.push(warning);
    }
    Ok(RunOutcome { run_dir, seed, stats, finished })
}

/// Brings every node of `env` up: sets each up, starts each, then waits
/// until each answers (`Db::await_ready`). A test's setup, and the one way
/// anything else (a benchmark) gets a running cluster.
pub async fn start_cluster(db: &dyn Db, env: &TestEnv) -> Result<()> {
    let nodes = env.nodes();
    for node in nodes {
        db.setup(env, node).await?;
    }
    for node in nodes {
        db.start(env, node).await?;
    }
    for node in nodes {
        db.await_ready(env, node, READY_TIMEOUT).await?;
    }
    tracing::info!(nodes = nodes.len(), "cluster is up");
    Ok(())
}

/// Tears the database down on every node of `env`; a node whose teardown
/// fails is logged and the others are still torn down. The runtime itself
/// (`Runtime::teardown`) is the caller's to end afterwards.
pub async fn stop_cluster(db: &dyn Db, env: &TestEnv) {
    for node in env.nodes() {
        if let Err(e) = db.teardown(env, node).await {
            tracing::warn!(node = %node, "database teardown failed: {e}");
        }
    }
}

async fn drive(
    spec: &TestSpec,
    env: &TestEnv,
    plan: Plan,
    run_dir: &RunDir,
    seed: u64,
    opts: RunOptions,
) -> Result<RunStats> {
    let Plan { db, workload, nemesis } = plan;
    let nodes = env.nodes().to_vec();
    let mut recorder = Recorder::create(&run_dir.history_path(), RecorderConfig::default())?;

    let setup_result = start_cluster(db.as_ref(), env).await;

    let mut nemesis_back: Option<Box<dyn Nemesis>> = None;
    let run_result = match setup_result {
        Err(e) => Err(e),
        Ok(()) => {
            let (nem, gens) = match nemesis {
                Some((mut nem, schedule, heal)) => {
                    nem.setup(env, db.clone()).await?;
                    (Some(nem), Some((schedule, heal)))
                }
                None => (None, None),
            };
            // Kept to heal, on the record, a run cut short.
            let heal = gens.as_ref().map(|(_, heal)| heal.clone());
            let generator = schedule(spec, workload.as_ref(), gens);
            let clock = MonotonicClock::start();
            let factory_db = db.clone();
            let factory_env = env.clone();
            let client_factory: crate::interpreter::ClientFactory =
                Arc::new(move || factory_db.client(&factory_env));
            let interpreter = Interpreter {
                clients: spec.client_threads(),
                nodes: nodes.clone(),
                client_factory: client_factory.clone(),
                nemesis: nem,
                nemesis_seed: seed ^ 0x6e65_6d65_7369_7321,
                op_timeout: Duration::from_millis(spec.op_timeout_ms),
                drain_timeout: Duration::from_millis(spec.op_timeout_ms) + Duration::from_secs(2),
                clock: clock.clone(),
                progress: opts.progress.clone(),
                cancel: opts.interrupt.clone(),
            };
            match interpreter.run(generator, Rng::seed_from_u64(seed), &mut recorder).await {
                Ok((mut stats, nem)) => {
                    nemesis_back = nem;
                    if stats.interrupted
                        && let (Some(nem), Some(heal)) = (nemesis_back.take(), heal)
                    {
                        let healer = Healer { nodes: &nodes, client_factory, clock, seed };
                        let (events, nem) = healer.heal(spec, nem, heal, &mut recorder).await;
                        stats.events = stats.events.max(events);
                        nemesis_back = nem;
                    }
                    Ok(stats)
                }
                Err(e) => Err(e),
            }
        }
    };

    if let Some(nem) = nemesis_back.as_mut()
        && let Err(e) = nem.heal().await
    {
        tracing::warn!("healing after the run failed: {e}");
    }
    collect_logs(&db, env, run_dir, &nodes).await;
    stop_cluster(db.as_ref(), env).await;
    let events = recorder.finish()?;
    tracing::info!(events, "history written");
    run_result
}

/// Runs the nemesis's final heal after an interruption, through an
/// interpreter of its own (no clients, never cancelled) that records into
/// the same history on the same clock, so the history of a run cut short
/// shows every fault being healed, as a finished run's does. Returns the
/// events recorded so far and the nemesis, for the safety heal that follows.
struct Healer<'a> {
    nodes: &'a [String],
    client_factory: crate::interpreter::ClientFactory,
    clock: MonotonicClock,
    seed: u64,
}

impl Healer<'_> {
    async fn heal(
        self,
        spec: &TestSpec,
        nemesis: Box<dyn Nemesis>,
        heal: Gen,
        recorder: &mut Recorder,
    ) -> (u64, Option<Box<dyn Nemesis>>) {
        let (keep_open, never) = watch::channel(false);
        let interpreter = Interpreter {
            clients: 0,
            nodes: self.nodes.to_vec(),
            client_factory: self.client_factory,
            nemesis: Some(nemesis),
            nemesis_seed: self.seed ^ 0x6865_616c,
            op_timeout: Duration::from_millis(spec.op_timeout_ms),
            drain_timeout: Duration::from_millis(spec.op_timeout_ms) + Duration::from_secs(2),
            clock: self.clock,
            progress: Arc::new(Progress::default()),
            cancel: never,
        };
        let generator = g::phases(vec![
            g::log("interrupted: healing every fault before teardown"),
            g::nemesis(heal),
        ]);
        let outcome = interpreter.run(generator, Rng::seed_from_u64(self.seed ^ 1), recorder).await;
        drop(keep_open);
        match outcome {
            Ok((stats, nem)) => (stats.events, nem),
            Err(e) => {
                tracing::warn!("recording the heal after the interruption failed: {e}");
                (recorder.len(), None)
            }
        }
    }
}

/// Copies each node's log files into `nodes/<node>/` unless they are there
/// already (local and netns nodes write there directly).
async fn collect_logs(db: &Arc<dyn Db>, env: &TestEnv, run_dir: &RunDir, nodes: &[String]) {
    for node in nodes {
        let Some(control) = env.runtime.node(node) else { continue };
        let Ok(local_dir) = run_dir.node_dir(node) else { continue };
        for remote in db.log_files(env, node) {
            if remote.starts_with(run_dir.path()) || remote.starts_with(&local_dir) {
                continue;
            }
            let Some(name) = remote.file_name() else { continue };
            let local = local_dir.join(name);
            if let Err(e) = control.download(&remote, &local).await {
                tracing::warn!(node = %node, "could not fetch {}: {e}", remote.display());
            }
        }
    }
}
