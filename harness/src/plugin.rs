//! The plugin API: the traits a target (DB + client), a workload, a nemesis
//! or a checker implements, and the `Registry` that makes them reachable by
//! name from the command line and from test files.
//!
//! A user adds a plugin in their own crate: implement the trait, then
//! register a factory under a name in a `Registry` that also holds the
//! built-ins, and hand that registry to `harness::cli::main` from a binary of
//! their own (see `examples/plugin`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use checkers::registry::{Accepts, CheckSpec, CheckerTable};
use checkers::{Checker, OpType, Value};

use crate::error::{HarnessError, Result};
use crate::generator::{Gen, Invocation, Rng};
use crate::node::{NodeAddrs, Runtime};
use crate::spec::TestSpec;

/// Everything a plugin may look at while the test runs: the spec, the
/// runtime (nodes and network) and the run directory.
#[derive(Clone)]
pub struct TestEnv {
    /// The full test specification.
    pub spec: Arc<TestSpec>,
    /// The nodes and the network.
    pub runtime: Arc<dyn Runtime>,
    /// The run's directory (`store/<name>/<timestamp>`).
    pub run_dir: PathBuf,
    /// Which nodes process faults currently hold, shared by every nemesis
    /// of the test, so a kill of a paused node and a pause of a dead one
    /// are recorded as what they are.
    pub process_faults: Arc<ProcessFaults>,
}

/// What process faults hold on each node: paused (SIGSTOP) and killed
/// (SIGKILL, not restarted yet). A node can be both, when a paused process
/// is killed: the kill ends the pause.
#[derive(Debug, Default)]
pub struct ProcessFaults(std::sync::Mutex<BTreeMap<String, HeldBy>>);

/// The process faults holding one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeldBy {
    /// Stopped by the pause nemesis and not resumed.
    pub paused: bool,
    /// Killed and not restarted.
    pub killed: bool,
}

impl ProcessFaults {
    /// What holds `node` now.
    pub fn get(&self, node: &str) -> HeldBy {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(node).copied().unwrap_or_default()
    }

    /// Changes what holds `node`.
    pub fn update(&self, node: &str, f: impl FnOnce(&mut HeldBy)) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(map.entry(node.to_owned()).or_default());
    }
}

impl TestEnv {
    /// The environment of a test of `spec` on `runtime`, in `run_dir`.
    pub fn new(spec: Arc<TestSpec>, runtime: Arc<dyn Runtime>, run_dir: PathBuf) -> TestEnv {
        TestEnv { spec, runtime, run_dir, process_faults: Arc::default() }
    }

    /// The node names.
    pub fn nodes(&self) -> &[String] {
        self.runtime.nodes()
    }

    /// The addresses of node `id`, or an error naming it.
    pub fn addrs(&self, id: &str) -> Result<&NodeAddrs> {
        self.runtime
            .addrs(id)
            .ok_or_else(|| HarnessError::Internal(format!("no addresses for node {id}")))
    }
}

/// A database (the system under test) as the harness manages it on each node.
#[async_trait]
pub trait Db: Send + Sync {
    /// Installs and configures the database on `node` (before the first start).
    async fn setup(&self, env: &TestEnv, node: &str) -> Result<()>;

    /// Starts the database process on `node`.
    async fn start(&self, env: &TestEnv, node: &str) -> Result<()>;

    /// Crashes the database on `node` (SIGKILL). Killing a dead node is fine.
    async fn kill(&self, env: &TestEnv, node: &str) -> Result<()>;

    /// Pauses the database on `node` (SIGSTOP).
    async fn pause(&self, env: &TestEnv, node: &str) -> Result<()>;

    /// Resumes a paused database on `node` (SIGCONT).
    async fn resume(&self, env: &TestEnv, node: &str) -> Result<()>;

    /// Waits until `node` answers; called after `start`.
    async fn await_ready(&self, env: &TestEnv, node: &str, timeout: Duration) -> Result<()>;

    /// Whether the database process on `node` is running.
    async fn is_running(&self, env: &TestEnv, node: &str) -> Result<bool>;

    /// Stops the database on `node` and removes its data (after the test;
    /// logs stay).
    async fn teardown(&self, env: &TestEnv, node: &str) -> Result<()>;

    /// Log files on `node` worth copying into the run directory.
    fn log_files(&self, env: &TestEnv, node: &str) -> Vec<PathBuf>;

    /// The nodes that currently act as primaries or leaders, for faults that
    /// target them. The default asks nobody and returns none.
    async fn primaries(&self, _env: &TestEnv) -> Vec<String> {
        Vec::new()
    }

    /// Sets `node`'s clock offset, for clock faults; `Unsupported` by default.
    async fn set_clock_offset(&self, _env: &TestEnv, _node: &str, _offset_ms: i64) -> Result<()> {
        Err(HarnessError::Unsupported {
            runtime: "db".into(),
            what: "offset clocks".into(),
            why: "this target has no clock control".into(),
        })
    }

    /// The files on `node` that hold the database's durable state, for file
    /// faults (truncation, bit flips, rollbacks, lost unsynced writes). The
    /// default names none, and file faults then refuse this target.
    fn data_files(&self, _env: &TestEnv, _node: &str) -> Vec<DataFile> {
        Vec::new()
    }

    /// The nemesis packages a test runs when it names none (`default` in
    /// `--nemesis`): the faults that matter for this target in its mode.
    /// The default is partitions and kills.
    fn default_nemeses(&self) -> Vec<String> {
        vec!["partition".into(), "kill".into()]
    }

    /// Options this target sets for the given nemeses when the test does
    /// not set them itself, so its faults land where its promise is tested
    /// (an async primary-backup store aims kills at the primary). They are
    /// written into the run's `test.toml`, so a replay needs no defaults.
    /// The default sets none.
    fn default_options(&self, _nemeses: &[String]) -> Vec<(String, String)> {
        Vec::new()
    }

    /// A fresh, unopened client for this test.
    fn client(&self, env: &TestEnv) -> Box<dyn Client>;

    /// The functions (`read`, `write`, `cas`, `txn`, `add`) its client can
    /// perform, so an unsupported workload is refused before the test starts.
    fn supported_fs(&self) -> &[&str];
}

/// When the database makes what it writes to a data file durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// It fsyncs before acknowledging anything that depends on the write, so
    /// a machine crash loses only writes nobody was told about.
    FsyncBeforeAck,
    /// It never fsyncs: a machine crash loses whatever the kernel had not
    /// written back yet, acknowledged or not.
    NoFsync,
}

/// A file holding a database's durable state on a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataFile {
    /// Its path on the node.
    pub path: PathBuf,
    /// When writes to it become durable.
    pub durability: Durability,
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// `Ok`, `Fail` or `Info`.
    pub kind: OpType,
    /// The result (for `ok`), or the argument again.
    pub value: Value,
    /// Why it failed or is indeterminate.
    pub error: Option<Value>,
}

impl Completion {
    /// It happened, with result `value`.
    pub fn ok(value: impl Into<Value>) -> Completion {
        Completion { kind: OpType::Ok, value: value.into(), error: None }
    }

    /// It definitely did not happen.
    pub fn fail(value: impl Into<Value>, error: impl Into<Value>) -> Completion {
        Completion { kind: OpType::Fail, value: value.into(), error: Some(error.into()) }
    }

    /// Nobody knows whether it happened.
    pub fn info(value: impl Into<Value>, error: impl Into<Value>) -> Completion {
        Completion { kind: OpType::Info, value: value.into(), error: Some(error.into()) }
    }
}

/// A client of the database, bound to one node. The harness opens one per
/// client process; when an operation ends `info`, the process is retired
/// and a fresh client is opened for its successor.
#[async_trait]
pub trait Client: Send {
    /// Connects to `node`. An error here makes the next operation `fail`
    /// (nothing was sent).
    async fn open(&mut self, node: &str) -> Result<()>;

    /// Performs one operation. A definite refusal is `fail`; a timeout or a
    /// lost connection is `info`, never `fail`. The harness also applies
    /// its own per-operation timeout and records `info` when it fires.
    async fn invoke(&mut self, op: &Invocation) -> Completion;

    /// Releases the connection.
    async fn close(&mut self) {}
}

/// The fault injector. It receives the nemesis thread's operations
/// (`start-partition`, `stop-partition`, `start-kill`, ...) and answers with
/// the value to record: the targets and parameters it actually used.
#[async_trait]
pub trait Nemesis: Send {
    /// The functions this nemesis handles; a composed nemesis routes by them.
    fn fs(&self) -> Vec<String>;

    /// Prepares, once before the test: keeps what it needs of the test's
    /// environment and database for later operations.
    async fn setup(&mut self, env: &TestEnv, db: Arc<dyn Db>) -> Result<()>;

    /// Performs one fault operation and returns what to record as its value.
    async fn invoke(&mut self, op: &Invocation, rng: &mut Rng) -> Result<Value>;

    /// Undoes every fault this nemesis may have caused (final phase and
    /// teardown). Must be safe to call when nothing is broken.
    async fn heal(&mut self) -> Result<()>;
}

/// A fault package: the nemesis, its schedule, and how it heals at the end.
pub struct NemesisPackage {
    /// The nemesis.
    pub nemesis: Box<dyn Nemesis>,
    /// Its operations during the test (for the nemesis thread).
    pub generator: Gen,
    /// Operations that undo its faults in the final phase.
    pub final_generator: Gen,
}

/// A workload: the client operations a test performs and how to judge them.
pub trait Workload: Send + Sync {
    /// Client operations for the main phase (usually endless; the harness
    /// applies the time limit and the rate).
    fn generator(&self, spec: &TestSpec) -> Gen;

    /// Client operations for the final phase, after faults healed (final
    /// reads on every node), or `None`.
    fn final_generator(&self, spec: &TestSpec) -> Option<Gen>;

    /// The functions its operations use, so the target can refuse early.
    fn fs(&self) -> Vec<String>;

    /// The checkers that judge its history.
    fn checks(&self, spec: &TestSpec) -> Vec<CheckSpec>;
}

/// Builds a target's `Db` for a test.
pub type DbFactory = Arc<dyn Fn(&TestSpec) -> Result<Arc<dyn Db>> + Send + Sync>;
/// Builds a workload for a test.
pub type WorkloadFactory = Arc<dyn Fn(&TestSpec) -> Result<Box<dyn Workload>> + Send + Sync>;
/// Builds a nemesis package for a test.
pub type NemesisFactory = Arc<dyn Fn(&TestSpec) -> Result<NemesisPackage> + Send + Sync>;
/// Plugins by name. Built-ins register themselves into it like any plugin;
/// its checkers are one [`CheckerTable`], which starts with the built-in
/// checkers, and through which every command (`check`, `test`, `analyze`,
/// `report`, `serve`) finds a checker by name.
#[derive(Clone)]
pub struct Registry {
    targets: BTreeMap<String, (String, DbFactory)>,
    workloads: BTreeMap<String, (String, WorkloadFactory)>,
    nemeses: BTreeMap<String, (String, NemesisFactory)>,
    checkers: CheckerTable,
}

impl Default for Registry {
    fn default() -> Registry {
        Registry {
            targets: BTreeMap::new(),
            workloads: BTreeMap::new(),
            nemeses: BTreeMap::new(),
            checkers: CheckerTable::builtin(),
        }
    }
}

fn unknown<T>(kind: &'static str, name: &str, map: &BTreeMap<String, T>) -> HarnessError {
    HarnessError::Unknown {
        kind,
        name: name.to_owned(),
        known: map.keys().cloned().collect::<Vec<_>>().join(", "),
    }
}

impl Registry {
    /// A registry with the built-in checkers and no other plugin.
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers a target (a `Db` with its client).
    pub fn target(
        &mut self,
        name: &str,
        about: &str,
        f: impl Fn(&TestSpec) -> Result<Arc<dyn Db>> + Send + Sync + 'static,
    ) -> &mut Self {
        self.targets.insert(name.into(), (about.into(), Arc::new(f)));
        self
    }

    /// Registers a workload.
    pub fn workload(
        &mut self,
        name: &str,
        about: &str,
        f: impl Fn(&TestSpec) -> Result<Box<dyn Workload>> + Send + Sync + 'static,
    ) -> &mut Self {
        self.workloads.insert(name.into(), (about.into(), Arc::new(f)));
        self
    }

    /// Registers a nemesis package.
    pub fn nemesis(
        &mut self,
        name: &str,
        about: &str,
        f: impl Fn(&TestSpec) -> Result<NemesisPackage> + Send + Sync + 'static,
    ) -> &mut Self {
        self.nemeses.insert(name.into(), (about.into(), Arc::new(f)));
        self
    }

    /// Registers a checker: its name, one line saying what it checks, what
    /// it reads from a spec (anything else given to it is refused before
    /// it is built) and its factory. It replaces a built-in of the same name.
    pub fn checker(
        &mut self,
        name: &str,
        about: &str,
        accepts: Accepts,
        f: impl Fn(&CheckSpec) -> std::result::Result<Box<dyn Checker>, checkers::CheckError>
        + Send
        + Sync
        + 'static,
    ) -> &mut Self {
        self.checkers.register(name, about, accepts, move |spec, _| f(spec));
        self
    }

    /// The checkers, built-in and registered.
    pub fn checkers(&self) -> &CheckerTable {
        &self.checkers
    }

    /// Builds the target named `name`.
    pub fn build_target(&self, name: &str, spec: &TestSpec) -> Result<Arc<dyn Db>> {
        let (_, f) =
            self.targets.get(name).ok_or_else(|| unknown("target", name, &self.targets))?;
        f(spec)
    }

    /// Builds the workload named `name`.
    pub fn build_workload(&self, name: &str, spec: &TestSpec) -> Result<Box<dyn Workload>> {
        let (_, f) =
            self.workloads.get(name).ok_or_else(|| unknown("workload", name, &self.workloads))?;
        f(spec)
    }

    /// Builds the nemesis package named `name`.
    pub fn build_nemesis(&self, name: &str, spec: &TestSpec) -> Result<NemesisPackage> {
        let (_, f) =
            self.nemeses.get(name).ok_or_else(|| unknown("nemesis", name, &self.nemeses))?;
        f(spec)
    }

    /// Builds the checker `spec` names.
    pub fn build_checker(
        &self,
        spec: &CheckSpec,
    ) -> std::result::Result<Box<dyn Checker>, checkers::CheckError> {
        self.checkers.build(spec)
    }

    /// `(kind, name, description)` of everything registered, for `--list`.
    pub fn list(&self) -> Vec<(&'static str, String, String)> {
        let mut out = Vec::new();
        for (n, (a, _)) in &self.targets {
            out.push(("target", n.clone(), a.clone()));
        }
        for (n, (a, _)) in &self.workloads {
            out.push(("workload", n.clone(), a.clone()));
        }
        for (n, (a, _)) in &self.nemeses {
            out.push(("nemesis", n.clone(), a.clone()));
        }
        for e in self.checkers.entries() {
            out.push(("checker", e.name.clone(), e.description.clone()));
        }
        out
    }

    /// What `--list` says under a target, workload or nemesis: the options
    /// it reads (found by building it from a default spec and watching
    /// which options it asks for), the operations a target performs, and a
    /// workload's operations and default checkers.
    pub fn details(&self, kind: &str, name: &str) -> Vec<String> {
        let mut spec = TestSpec::default();
        let mut lines = Vec::new();
        match kind {
            "target" => {
                spec.target = name.to_owned();
                if let Ok(db) = self.build_target(name, &spec) {
                    lines.push(format!("operations: {}", db.supported_fs().join(", ")));
                }
            }
            "workload" => {
                spec.workload = name.to_owned();
                if let Ok(w) = self.build_workload(name, &spec) {
                    lines.push(format!("operations: {}", w.fs().join(", ")));
                    let checks: Vec<String> =
                        w.checks(&spec).into_iter().map(|c| c.checker).collect();
                    lines.push(format!("checkers: {}", checks.join(", ")));
                }
            }
            "nemesis" => {
                let _ = self.build_nemesis(name, &spec);
            }
            _ => return lines,
        }
        let read = spec.options_read.names();
        if !read.is_empty() {
            lines.push(format!("options: {}", read.into_iter().collect::<Vec<_>>().join(", ")));
        }
        lines
    }
}

/// Several nemeses as one: each operation goes to the member whose `fs`
/// names its function (Jepsen's `compose`).
pub struct ComposedNemesis {
    members: Vec<Box<dyn Nemesis>>,
}

impl ComposedNemesis {
    /// Composes `members`; a function handled by two members goes to the first.
    pub fn new(members: Vec<Box<dyn Nemesis>>) -> ComposedNemesis {
        ComposedNemesis { members }
    }
}

#[async_trait]
impl Nemesis for ComposedNemesis {
    fn fs(&self) -> Vec<String> {
        self.members.iter().flat_map(|m| m.fs()).collect()
    }

    async fn setup(&mut self, env: &TestEnv, db: Arc<dyn Db>) -> Result<()> {
        for m in &mut self.members {
            m.setup(env, db.clone()).await?;
        }
        Ok(())
    }

    async fn invoke(&mut self, op: &Invocation, rng: &mut Rng) -> Result<Value> {
        for m in &mut self.members {
            if m.fs().contains(&op.f) {
                return m.invoke(op, rng).await;
            }
        }
        Err(HarnessError::Internal(format!("no nemesis handles {:?}", op.f)))
    }

    async fn heal(&mut self) -> Result<()> {
        // Heal every member even if one fails, then report the first failure.
        let mut first = None;
        for m in &mut self.members {
            if let Err(e) = m.heal().await {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}
