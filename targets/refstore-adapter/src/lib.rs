//! The refstore adapter: starts refstore nodes through any runtime (the
//! faultline executable embeds refstore as `faultline refstore ...`) and
//! speaks its HTTP JSON client API.
//!
//! Options (`--opt KEY=VALUE`): `clock = admin | faketime` (how clock faults
//! reach a node: refstore's `/admin/clock`, the default, or libfaketime,
//! which shows the same faults work on a program without clock control);
//! `wal_recovery = refuse | truncate` (passed to refstore: what a node does
//! with a corrupted log); `ship_interval_ms = N` (async mode only: how often
//! the primary ships what it acknowledged to its backups, default 200);
//! `quorum_n`, `quorum_r`, `quorum_w` (quorum mode only: replicas per key,
//! default 3 clamped to the node count, and the replicas a read and a write
//! wait for, default a majority of N), `sloppy_quorum = true | false`
//! (quorum mode only, default true: whether live non-replicas take writes as
//! hints for unreachable replicas); `resolution = lww | crdt` (the conflict
//! resolution of multi-leader, eventual and quorum, default lww; `crdt`
//! merges appends, set adds and increments without loss and refuses register
//! writes, so it is refused up front with a workload that writes registers;
//! quorum mode serves the counter and unique-ids workloads under lww, losing
//! concurrent increments, and crdt, a PN-counter whose ids can still repeat;
//! `siblings`, quorum mode only, keeps concurrent versions and reads them all
//! back, for the set workload, whose client unions them, and the register
//! workload, whose client records a read of several as a set of values;
//! other modes and workloads refuse it by name); `bug = NAME`
//! (inject one of refstore's classic protocol bugs on purpose, to measure
//! detection: refused in a mode it does not belong to, and named in the run's
//! test name and target label, so no report shows a bug-injected run as the
//! mode's real behaviour).
//!
//! With no `--nemesis`, a test of refstore gets the faults that matter for
//! its mode ([`default_nemeses`]).
//!
//! The client, and how it maps faultline's operations onto refstore's API,
//! is in `client.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use harness::faketime::Faketime;
use harness::node::{DaemonSpec, Signal};
use harness::{
    Client, DataFile, Db, Durability, HarnessError, Registry, Result, TestEnv, TestSpec,
};
use refstore::modes::bug::Bug;
use refstore::modes::crdt::Resolution;
use refstore::modes::quorum::QuorumConfig;
use refstore::modes::{CoreOptions, Mode};
use serde_json::json;

mod client;

pub use client::{InMemory, RefstoreClient, Refusal, Transport, answer_body, api_op};

/// Registers the `refstore` target.
pub fn register_all(registry: &mut Registry) {
    let about = format!("faultline's reference store (modes: {})", Mode::names());
    registry.target("refstore", &about, |spec| Ok(Arc::new(RefstoreDb::from_spec(spec)?)));
}

/// How clock faults reach a refstore node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockControl {
    /// refstore's own `/admin/clock` offset.
    Admin,
    /// libfaketime preloaded, its offset in a file on the node.
    Faketime,
}

/// The refstore target.
pub struct RefstoreDb {
    mode: Mode,
    seed: u64,
    op_timeout: Duration,
    http: reqwest::Client,
    pids: Mutex<BTreeMap<String, u32>>,
    clock: ClockControl,
    /// libfaketime per node, once prepared (with `clock = faketime`).
    faketime: Mutex<BTreeMap<String, Faketime>>,
    wal_recovery: Option<String>,
    ship_interval_ms: Option<u64>,
    /// `--quorum-*` and `--sloppy-quorum` arguments for quorum nodes.
    quorum_args: Vec<String>,
    /// A protocol bug injected on purpose (`bug = NAME`).
    bug: Option<Bug>,
}

/// The fault targets a test of `mode` gets unless it sets them: async's
/// anomalies (lost acknowledged writes, split brain) only happen when a
/// fault hits the primary, so its kills, pauses and partitions aim there
/// (`kill_targets = primaries` and so on). Every other mode keeps each
/// nemesis's own mix of targets, which includes the primaries.
///
/// The modes that fsync before acknowledging (raft, paxos, sync, causal)
/// promise to survive the file faults a disk can really cause a process
/// that fsyncs: bit flips (caught by checksums) and the loss of unsynced
/// writes. Truncating or rolling back a log that was fsynced is the disk
/// breaking its own promise, which no consensus protocol survives, so for
/// them those two are opt-in (`file_faults`).
pub fn default_options(mode: Mode, nemeses: &[String]) -> Vec<(String, String)> {
    let mut options = Vec::new();
    for n in nemeses {
        let option = match (mode, n.as_str()) {
            (Mode::Async, "kill") => ("kill_targets", "primaries"),
            (Mode::Async, "pause") => ("pause_targets", "primaries"),
            (Mode::Async, "partition") => ("partition", "primaries"),
            (Mode::Async, "file") => ("file_targets", "primaries"),
            (Mode::Raft | Mode::Paxos | Mode::Sync | Mode::Causal, "file") => {
                ("file_faults", "bitflip,lose-unfsynced")
            }
            _ => continue,
        };
        options.push((option.0.to_owned(), option.1.to_owned()));
    }
    options
}

/// The faults a test of `mode` runs when it names none: those under which
/// the mode's promises are tested or its documented anomalies show (see
/// refstore's mode table). The strong modes face every fault that stresses
/// elections, fencing and durability; async, primary kills and partitions
/// (its lost writes and split brain); multi-leader, clock skew (its lost
/// writes without concurrency) and partitions; causal, partitions and
/// kills with pinned sessions; eventual, partitions (stale reads, and
/// convergence after the heal).
pub fn default_nemeses(mode: Mode) -> &'static [&'static str] {
    match mode {
        Mode::Raft | Mode::Paxos | Mode::Sync => &["partition", "kill", "pause"],
        Mode::Async => &["partition", "kill"],
        Mode::MultiLeader => &["clock", "partition"],
        Mode::Causal => &["partition", "kill"],
        Mode::Eventual => &["partition"],
        Mode::Quorum => &["partition", "clock"],
    }
}

/// The workloads whose operations `resolution = crdt` serves: appends, set adds,
/// increments and reads (a set's adds are appends to one list). Every other built-in
/// workload writes registers or compare-and-sets, which crdt refuses.
const CRDT_WORKLOADS: [&str; 4] = ["set", "list-append", "counter", "unique-ids"];

/// The workloads whose client knows siblings (`resolution = siblings`): the
/// set's read unions them, a register read of several records their set
/// (which linearizability reports). Any other workload would read a sibling
/// set as if it were one value, or needs compare-and-set or transactions,
/// which quorum mode refuses.
const SIBLINGS_WORKLOADS: [&str; 2] = ["set", "register"];

/// Reads the quorum options (`quorum_n`, `quorum_r`, `quorum_w`,
/// `sloppy_quorum`) and `resolution` into refstore's arguments, refusing
/// them by name where the mode does not read them and checking N, R and W
/// against the node count before anything starts.
fn quorum_args(spec: &TestSpec, mode: Mode) -> Result<Vec<String>> {
    quorum_settings(spec, mode).map(|(_, _, args)| args)
}

/// The quorum settings (the default everywhere but quorum mode), the
/// conflict resolution and the injected bug a test of `mode` gives its
/// nodes, read and checked as [`quorum_args`] and [`bug_option`] do: the
/// deterministic simulation builds its cores with them.
pub fn core_options(spec: &TestSpec, mode: Mode) -> Result<CoreOptions> {
    let (quorum, resolution, _) = quorum_settings(spec, mode)?;
    Ok(CoreOptions { quorum, resolution, bug: bug_option(spec, mode)? })
}

/// The `bug` option: one of refstore's injectable bugs, refused by name
/// when it is unknown or belongs to another mode.
pub fn bug_option(spec: &TestSpec, mode: Mode) -> Result<Option<Bug>> {
    let Some(name) = spec.option_text("bug") else { return Ok(None) };
    let bad = |e: refstore::modes::bug::BugError| {
        HarnessError::spec("test spec", "options.bug", e.to_string())
    };
    let bug: Bug = name.parse().map_err(bad)?;
    bug.check_mode(mode).map_err(bad)?;
    Ok(Some(bug))
}

fn quorum_settings(spec: &TestSpec, mode: Mode) -> Result<(QuorumConfig, Resolution, Vec<String>)> {
    let bad =
        |field: &str, why: String| HarnessError::spec("test spec", format!("options.{field}"), why);
    let mut args = Vec::new();
    let mut resolution = Resolution::Lww;
    match spec.option_text("resolution") {
        None => {}
        Some(_) if !mode.resolves_conflicts() => {
            return Err(bad("resolution", format!("mode {mode} has no conflicts to resolve")));
        }
        Some("lww") => {}
        Some("crdt") if CRDT_WORKLOADS.contains(&spec.workload.as_str()) => {
            args.extend(["--resolution".to_owned(), "crdt".to_owned()]);
            resolution = Resolution::Crdt;
        }
        Some("crdt") => {
            return Err(bad(
                "resolution",
                format!(
                    "crdt in mode {mode} refuses register writes and compare-and-sets, which \
                     workload {:?} needs; crdt serves the workloads {}",
                    spec.workload,
                    CRDT_WORKLOADS.join(", ")
                ),
            ));
        }
        Some("siblings") if !mode.serves(Resolution::Siblings) => {
            return Err(bad(
                "resolution",
                format!(
                    "siblings is not supported in mode {mode}: only quorum mode keeps sibling \
                     versions; use lww or crdt"
                ),
            ));
        }
        Some("siblings") if SIBLINGS_WORKLOADS.contains(&spec.workload.as_str()) => {
            args.extend(["--resolution".to_owned(), "siblings".to_owned()]);
            resolution = Resolution::Siblings;
        }
        Some("siblings") => {
            return Err(bad(
                "resolution",
                format!(
                    "siblings is not supported for workload {:?}: only the clients of {} merge \
                     or record sibling reads",
                    spec.workload,
                    SIBLINGS_WORKLOADS.join(" and ")
                ),
            ));
        }
        Some(other) => {
            return Err(bad("resolution", format!("{other:?}: use lww, crdt or siblings")));
        }
    }
    let mut config = QuorumConfig::default();
    for (option, flag) in [
        ("quorum_n", "--quorum-n"),
        ("quorum_r", "--quorum-r"),
        ("quorum_w", "--quorum-w"),
        ("sloppy_quorum", "--sloppy-quorum"),
    ] {
        let Some(text) = spec.option_text(option) else { continue };
        if mode != Mode::Quorum {
            return Err(bad(
                option,
                format!("a setting of quorum mode only; mode {mode} does not read it"),
            ));
        }
        if option == "sloppy_quorum" {
            config.sloppy = match text {
                "true" => true,
                "false" => false,
                _ => return Err(bad(option, format!("{text:?}: use true or false"))),
            };
        } else {
            let v: usize = text
                .parse()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| bad(option, format!("{text:?}: use a positive integer")))?;
            match option {
                "quorum_n" => config.n = v,
                "quorum_r" => config.r = Some(v),
                _ => config.w = Some(v),
            }
        }
        args.push(flag.to_owned());
        args.push(text.to_owned());
    }
    if mode == Mode::Quorum {
        use refstore::modes::quorum::QuorumError;
        config.resolve(spec.nodes as usize).map_err(|e| {
            let field = match &e {
                QuorumError::OutOfRange { which: "R", .. } => "quorum_r",
                QuorumError::OutOfRange { .. } => "quorum_w",
                QuorumError::ZeroN => "quorum_n",
            };
            bad(field, e.to_string())
        })?;
    }
    Ok((config, resolution, args))
}

/// refstore's numeric id of node `n3` is 3.
fn numeric_id(node: &str) -> Result<u64> {
    node.trim_start_matches('n').parse().map_err(|_| {
        HarnessError::Internal(format!("refstore nodes are named n1, n2, ...; not {node:?}"))
    })
}

impl RefstoreDb {
    /// Reads the mode from the spec.
    pub fn from_spec(spec: &TestSpec) -> Result<RefstoreDb> {
        let mode: Mode =
            spec.mode.parse().map_err(|e: String| HarnessError::spec("test spec", "mode", e))?;
        let op_timeout = Duration::from_millis(spec.op_timeout_ms);
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(op_timeout)
            .connect_timeout(Duration::from_millis(500))
            .build()
            .map_err(|e| HarnessError::Internal(format!("http client: {e}")))?;
        let clock = match spec.option("clock", "admin".to_owned())?.as_str() {
            "admin" => ClockControl::Admin,
            "faketime" => ClockControl::Faketime,
            other => {
                return Err(HarnessError::spec(
                    "test spec",
                    "options.clock",
                    format!("{other:?}: use admin (refstore's /admin/clock) or faketime"),
                ));
            }
        };
        let wal_recovery = match spec.option_text("wal_recovery") {
            None => None,
            Some(p @ ("refuse" | "truncate")) => Some(p.to_owned()),
            Some(other) => {
                return Err(HarnessError::spec(
                    "test spec",
                    "options.wal_recovery",
                    format!("{other:?}: use refuse or truncate"),
                ));
            }
        };
        let ship_interval_ms = match spec.option_text("ship_interval_ms") {
            None => None,
            Some(text) => match text.parse::<u64>() {
                Ok(ms) if ms > 0 && mode == Mode::Async => Some(ms),
                Ok(_) if mode != Mode::Async => {
                    return Err(HarnessError::spec(
                        "test spec",
                        "options.ship_interval_ms",
                        format!("only async ships in batches; mode {mode} does not read it"),
                    ));
                }
                _ => {
                    return Err(HarnessError::spec(
                        "test spec",
                        "options.ship_interval_ms",
                        format!("{text:?}: use a positive number of milliseconds"),
                    ));
                }
            },
        };
        let quorum_args = quorum_args(spec, mode)?;
        let bug = bug_option(spec, mode)?;
        Ok(RefstoreDb {
            bug,
            quorum_args,
            ship_interval_ms,
            mode,
            seed: spec.seed.unwrap_or(0),
            op_timeout,
            http,
            pids: Mutex::new(BTreeMap::new()),
            clock,
            faketime: Mutex::new(BTreeMap::new()),
            wal_recovery,
        })
    }

    fn data_dir(env: &TestEnv, node: &str) -> Result<PathBuf> {
        Ok(control(env, node)?.dir().join("data"))
    }

    fn log_file(env: &TestEnv, node: &str) -> Result<PathBuf> {
        Ok(control(env, node)?.dir().join("refstore.log"))
    }

    /// libfaketime on `node`, prepared on first use.
    async fn faketime(&self, env: &TestEnv, node: &str) -> Result<Faketime> {
        if let Some(ft) = self.faketime.lock().ok().and_then(|f| f.get(node).cloned()) {
            return Ok(ft);
        }
        let c = control(env, node)?;
        let ft = Faketime::prepare(c, &c.dir().join("faketime.rc")).await?;
        if let Ok(mut f) = self.faketime.lock() {
            f.insert(node.to_owned(), ft.clone());
        }
        Ok(ft)
    }

    fn pid(&self, node: &str) -> Option<u32> {
        self.pids.lock().ok().and_then(|p| p.get(node).copied())
    }

    async fn signal(&self, env: &TestEnv, node: &str, signal: Signal) -> Result<()> {
        match self.pid(node) {
            Some(pid) => control(env, node)?.signal(pid, signal).await,
            None => Ok(()),
        }
    }

    async fn status(&self, env: &TestEnv, node: &str) -> Option<serde_json::Value> {
        let addr = env.addrs(node).ok()?.client;
        let resp = self
            .http
            .get(format!("http://{addr}/admin/status"))
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }
}

fn control<'a>(env: &'a TestEnv, node: &str) -> Result<&'a dyn harness::NodeControl> {
    env.runtime.node(node).ok_or_else(|| HarnessError::Internal(format!("no node {node}")))
}

#[async_trait]
impl Db for RefstoreDb {
    async fn setup(&self, env: &TestEnv, node: &str) -> Result<()> {
        let dir = Self::data_dir(env, node)?;
        let out = control(env, node)?
            .exec("mkdir", &["-p".into(), dir.to_string_lossy().into_owned()])
            .await?;
        if out.status != 0 {
            return Err(HarnessError::node(node, "create the data directory", out.stderr.trim()));
        }
        Ok(())
    }

    async fn start(&self, env: &TestEnv, node: &str) -> Result<()> {
        // Several nemeses may restart the same node (a kill and a file fault
        // overlapping); a second process would only fail on the port and
        // make the harness lose track of the first.
        if self.is_running(env, node).await? {
            return Ok(());
        }
        let addrs = env.addrs(node)?;
        let id = numeric_id(node)?;
        let mut args = vec![
            "refstore".to_owned(),
            "--mode".into(),
            self.mode.name().into(),
            "--id".into(),
            id.to_string(),
            "--client-addr".into(),
            addrs.client.to_string(),
            "--peer-addr".into(),
            addrs.peer_listen.to_string(),
            "--data-dir".into(),
            Self::data_dir(env, node)?.to_string_lossy().into_owned(),
            "--seed".into(),
            (self.seed ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_string(),
            "--request-timeout-ms".into(),
            // Answer (with a definite or indefinite error) before the
            // harness gives up on the request.
            (self.op_timeout.as_millis() as u64 * 3 / 4).max(1).to_string(),
        ];
        for (peer, addr) in &addrs.peers {
            args.push("--peer".into());
            args.push(format!("{}={addr}", numeric_id(peer)?));
        }
        if let Some(policy) = &self.wal_recovery {
            args.push("--wal-recovery".into());
            args.push(policy.clone());
        }
        if let Some(ms) = self.ship_interval_ms {
            args.push("--ship-interval-ms".into());
            args.push(ms.to_string());
        }
        args.extend(self.quorum_args.iter().cloned());
        if let Some(bug) = self.bug {
            args.push("--bug".into());
            args.push(bug.name().into());
        }
        let daemon_env = match self.clock {
            ClockControl::Admin => Vec::new(),
            ClockControl::Faketime => self.faketime(env, node).await?.env(),
        };
        let spec = DaemonSpec {
            name: "refstore".into(),
            program: env.runtime.faultline_binary(node),
            args,
            env: daemon_env,
            log_file: Self::log_file(env, node)?,
        };
        let pid = control(env, node)?.start_daemon(&spec).await?;
        tracing::info!(node, pid, mode = %self.mode, "refstore started");
        if let Ok(mut pids) = self.pids.lock() {
            pids.insert(node.to_owned(), pid);
        }
        Ok(())
    }

    async fn kill(&self, env: &TestEnv, node: &str) -> Result<()> {
        self.signal(env, node, Signal::Kill).await?;
        if let Ok(mut pids) = self.pids.lock() {
            pids.remove(node);
        }
        Ok(())
    }

    async fn pause(&self, env: &TestEnv, node: &str) -> Result<()> {
        self.signal(env, node, Signal::Stop).await
    }

    async fn resume(&self, env: &TestEnv, node: &str) -> Result<()> {
        self.signal(env, node, Signal::Cont).await
    }

    async fn await_ready(&self, env: &TestEnv, node: &str, timeout: Duration) -> Result<()> {
        let addr = env.addrs(node)?.client;
        let started = Instant::now();
        loop {
            let ok = self
                .http
                .get(format!("http://{addr}/admin/health"))
                .timeout(Duration::from_millis(500))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            if !self.is_running(env, node).await? {
                return Err(HarnessError::node(
                    node,
                    "start refstore",
                    format!("the process exited; see {}", Self::log_file(env, node)?.display()),
                ));
            }
            if started.elapsed() > timeout {
                return Err(HarnessError::Timeout(format!(
                    "refstore on {node} did not answer at {addr} within {timeout:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn is_running(&self, env: &TestEnv, node: &str) -> Result<bool> {
        match self.pid(node) {
            Some(pid) => control(env, node)?.is_alive(pid).await,
            None => Ok(false),
        }
    }

    async fn teardown(&self, env: &TestEnv, node: &str) -> Result<()> {
        // Resume first: a paused process does not die of SIGKILL until resumed
        // on some kernels' accounting, and it must not linger.
        self.signal(env, node, Signal::Cont).await?;
        self.kill(env, node).await?;
        let dir = Self::data_dir(env, node)?;
        let out = control(env, node)?
            .exec("rm", &["-rf".into(), dir.to_string_lossy().into_owned()])
            .await?;
        if out.status != 0 {
            tracing::warn!(node, "could not remove {}: {}", dir.display(), out.stderr.trim());
        }
        Ok(())
    }

    fn log_files(&self, env: &TestEnv, node: &str) -> Vec<PathBuf> {
        Self::log_file(env, node).into_iter().collect()
    }

    async fn primaries(&self, env: &TestEnv) -> Vec<String> {
        let mut out = Vec::new();
        for node in env.nodes() {
            if let Some(status) = self.status(env, node).await {
                let role = status.get("role").and_then(|r| r.as_str()).unwrap_or("");
                if role == "leader" || role == "primary" {
                    out.push(node.clone());
                }
            }
        }
        out
    }

    async fn set_clock_offset(&self, env: &TestEnv, node: &str, offset_ms: i64) -> Result<()> {
        if self.clock == ClockControl::Faketime {
            let ft = self.faketime(env, node).await?;
            return ft.set_offset_ms(control(env, node)?, offset_ms).await;
        }
        let addr = env.addrs(node)?.client;
        let resp = self
            .http
            .post(format!("http://{addr}/admin/clock"))
            .json(&json!({ "offset_ms": offset_ms }))
            .send()
            .await
            .map_err(|e| HarnessError::node(node, "set the clock offset", e))?;
        if !resp.status().is_success() {
            return Err(HarnessError::node(node, "set the clock offset", resp.status()));
        }
        Ok(())
    }

    fn data_files(&self, env: &TestEnv, node: &str) -> Vec<DataFile> {
        let durability = if self.mode.fsyncs_before_ack() {
            Durability::FsyncBeforeAck
        } else {
            Durability::NoFsync
        };
        Self::data_dir(env, node)
            .map(|d| DataFile { path: d.join("wal.log"), durability })
            .into_iter()
            .collect()
    }

    fn client(&self, env: &TestEnv) -> Box<dyn Client> {
        Box::new(RefstoreClient::over_http(self.http.clone(), env.clone()))
    }

    fn default_nemeses(&self) -> Vec<String> {
        default_nemeses(self.mode).iter().map(|s| (*s).to_owned()).collect()
    }

    fn default_options(&self, nemeses: &[String]) -> Vec<(String, String)> {
        default_options(self.mode, nemeses)
    }

    fn supported_fs(&self) -> &[&str] {
        if self.mode == Mode::Quorum {
            // No transactions but a counter's (increments and reads of one
            // key), so transfers, dequeues and list-append's transactions
            // cannot run. `cas` stays so the register workload runs; quorum
            // nodes refuse each one definitely (recorded `fail`). Increments
            // and ids are served under lww (losing concurrent increments, as
            // appends) and crdt (a PN-counter); siblings is refused for the
            // counter workloads up front (`SIBLINGS_WORKLOADS`).
            return &[
                "read",
                "final-read",
                "write",
                "cas",
                "add",
                "increment",
                "generate",
                "enqueue",
            ];
        }
        &[
            "read",
            "final-read",
            "write",
            "cas",
            "txn",
            "add",
            "increment",
            "generate",
            "transfer",
            "enqueue",
            "dequeue",
            "drain",
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: &str, options: &[(&str, &str)]) -> TestSpec {
        let mut spec = TestSpec { mode: mode.to_owned(), nodes: 5, ..TestSpec::default() };
        for (k, v) in options {
            spec.options.insert((*k).to_owned(), (*v).to_owned());
        }
        spec
    }

    #[test]
    fn quorum_options_become_node_flags_and_other_modes_refuse_them() {
        let s = spec("quorum", &[("quorum_r", "1"), ("sloppy_quorum", "false")]);
        let args = quorum_args(&s, Mode::Quorum).expect("valid settings");
        assert_eq!(args, ["--quorum-r", "1", "--sloppy-quorum", "false"]);
        let s = spec("raft", &[("quorum_n", "3")]);
        let err = quorum_args(&s, Mode::Raft).expect_err("raft has no quorum settings");
        assert!(err.to_string().contains("options.quorum_n"), "{err}");
        let s = spec("quorum", &[("quorum_w", "4")]);
        let err = quorum_args(&s, Mode::Quorum).expect_err("W > N");
        assert!(err.to_string().contains("options.quorum_w"), "{err}");
    }

    #[test]
    fn crdt_resolution_becomes_a_flag_and_what_it_cannot_serve_is_refused_by_name() {
        let lww = quorum_args(&spec("quorum", &[("resolution", "lww")]), Mode::Quorum);
        assert_eq!(lww.expect("lww is the default"), Vec::<String>::new());
        for mode in [Mode::MultiLeader, Mode::Eventual, Mode::Quorum] {
            let mut s = spec(mode.name(), &[("resolution", "crdt")]);
            s.workload = "set".into();
            assert_eq!(quorum_args(&s, mode).expect("crdt sets"), ["--resolution", "crdt"]);
            s.workload = "register".into();
            let err = quorum_args(&s, mode).expect_err("crdt refuses register writes");
            let text = err.to_string();
            assert!(text.contains("options.resolution") && text.contains("\"register\""), "{text}");
            let mut s = spec(mode.name(), &[("resolution", "siblings")]);
            s.workload = "set".into();
            if mode == Mode::Quorum {
                assert_eq!(quorum_args(&s, mode).expect("siblings"), ["--resolution", "siblings"]);
                s.workload = "counter".into();
                let err = quorum_args(&s, mode).expect_err("no sibling counters");
                assert!(err.to_string().contains("not supported for workload"), "{err}");
            } else {
                let err = quorum_args(&s, mode).expect_err("siblings in quorum mode only");
                let text = err.to_string();
                assert!(text.contains("siblings is not supported in mode"), "{text}");
            }
        }
        let err = quorum_args(&spec("raft", &[("resolution", "crdt")]), Mode::Raft)
            .expect_err("raft resolves nothing");
        assert!(err.to_string().contains("options.resolution"), "{err}");
    }
}
