//! The refstore adapter: starts refstore nodes through any runtime (the
//! faultline executable embeds refstore as `faultline refstore ...`) and
//! speaks its HTTP JSON client API.
//!
//! Options (`--opt KEY=VALUE`): `clock = admin | faketime` (how clock faults
//! reach a node: refstore's `/admin/clock`, the default, or libfaketime,
//! which shows the same faults work on a program without clock control);
//! `wal_recovery = refuse | truncate` (passed to refstore: what a node does
//! with a corrupted log).
//!
//! Outcomes follow refstore's contract: an error answer with
//! `definite: true` is `fail`, with `definite: false` is `info`; a timeout
//! or a lost connection is `info`; a refused connection is `fail` (nothing
//! was sent).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use checkers::Value;
use harness::faketime::Faketime;
use harness::node::{DaemonSpec, Signal};
use harness::{
    Client, Completion, DataFile, Db, Durability, HarnessError, Invocation, Registry, Result,
    TestEnv, TestSpec,
};
use refstore::modes::Mode;
use serde_json::json;

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
        Ok(RefstoreDb {
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
        Box::new(RefstoreClient { http: self.http.clone(), env: env.clone(), base: String::new() })
    }

    fn supported_fs(&self) -> &[&str] {
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

/// A client of one refstore node.
pub struct RefstoreClient {
    http: reqwest::Client,
    env: TestEnv,
    base: String,
}

/// JSON for a history value (keys and register values are small ints or strings).
fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn from_json(v: serde_json::Value) -> Value {
    serde_json::from_value(v).unwrap_or(Value::Nil)
}

/// The key of a set workload's elements (refstore stores the set as a list).
const SET_KEY: &str = "set";
/// The key of the counter when an `increment` names none.
const COUNTER_KEY: &str = "counter";
/// The key `generate` counts up when it names none.
const IDS_KEY: &str = "ids";
/// The key of the queue (a list, its head first) when an operation names none.
const QUEUE_KEY: &str = "queue";
/// Compare-and-set attempts a dequeue, drain or transfer makes before it
/// gives up with `fail`: under contention another client keeps winning.
const CAS_ATTEMPTS: usize = 8;

/// What a dequeue or drain takes from the queue's list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Take {
    /// The first element (`nil` when the queue is empty).
    Head,
    /// Every element.
    All,
}

impl RefstoreClient {
    /// Sends one request. A definite `not-leader` answer that names the
    /// leader is retried once against the leader: nothing happened at the
    /// first node, so the retry cannot duplicate the operation.
    async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
        inv: &Invocation,
    ) -> std::result::Result<serde_json::Value, Completion> {
        match self.post_to(&self.base, path, &body, inv).await {
            Err(Refusal::NotLeader(Some(leader), _)) => {
                match self.post_to(&format!("http://{leader}"), path, &body, inv).await {
                    Ok(v) => Ok(v),
                    Err(r) => Err(r.completion()),
                }
            }
            Ok(v) => Ok(v),
            Err(r) => Err(r.completion()),
        }
    }

    async fn post_to(
        &self,
        base: &str,
        path: &str,
        body: &serde_json::Value,
        inv: &Invocation,
    ) -> std::result::Result<serde_json::Value, Refusal> {
        let resp = match self.http.post(format!("{base}{path}")).json(body).send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                return Err(Refusal::Other(Completion::fail(
                    inv.value.clone(),
                    Value::str("connection-refused"),
                )));
            }
            Err(e) if e.is_timeout() => {
                return Err(Refusal::Other(Completion::info(
                    inv.value.clone(),
                    Value::str("timeout"),
                )));
            }
            Err(e) => {
                return Err(Refusal::Other(Completion::info(
                    inv.value.clone(),
                    Value::str(format!("connection: {e}")),
                )));
            }
        };
        let status = resp.status();
        let body: serde_json::Value = match resp.json().await {
            Ok(b) => b,
            Err(e) => {
                return Err(Refusal::Other(Completion::info(
                    inv.value.clone(),
                    Value::str(format!("unreadable answer: {e}")),
                )));
            }
        };
        if status.is_success() {
            return Ok(body);
        }
        let code = body.get("error").and_then(|c| c.as_str()).unwrap_or("error").to_owned();
        let definite = body.get("definite").and_then(|d| d.as_bool()).unwrap_or(false);
        let completion = if definite {
            Completion::fail(inv.value.clone(), Value::str(code.as_str()))
        } else {
            Completion::info(inv.value.clone(), Value::str(code.as_str()))
        };
        if definite && code == "not-leader" {
            let leader = body.get("leader").and_then(|l| l.as_str()).map(str::to_owned);
            return Err(Refusal::NotLeader(leader, completion));
        }
        Err(Refusal::Other(completion))
    }
}

impl RefstoreClient {
    async fn read_key(
        &self,
        key: &serde_json::Value,
        inv: &Invocation,
    ) -> std::result::Result<Value, Completion> {
        let b = self.post("/v1/read", json!({ "key": key }), inv).await?;
        Ok(from_json(b.get("value").cloned().unwrap_or_default()))
    }

    /// A transaction; its micro-ops with their reads filled in.
    async fn txn(
        &self,
        ops: serde_json::Value,
        inv: &Invocation,
    ) -> std::result::Result<Vec<serde_json::Value>, Completion> {
        let b = self.post("/v1/txn", json!({ "ops": ops }), inv).await?;
        Ok(b.get("ops").and_then(|o| o.as_array()).cloned().unwrap_or_default())
    }

    /// Several keys read in one transaction, as a map of key to value.
    async fn read_many(
        &self,
        keys: &[Value],
        inv: &Invocation,
    ) -> std::result::Result<Value, Completion> {
        let ops: Vec<serde_json::Value> =
            keys.iter().map(|k| json!(["r", to_json(k), null])).collect();
        let read = self.txn(json!(ops), inv).await?;
        let values = read.iter().map(|m| from_json(m[2].clone()));
        Ok(Value::map(keys.iter().cloned().zip(values).collect()))
    }

    /// A bank transfer `{from, to, amount}`: the two balances read, then
    /// moved by one transaction guarded by what was read, retried while
    /// another transfer changed them first. An overdraft is refused (`fail`)
    /// unless the invocation allows negative balances (`negative true`).
    async fn transfer(&self, inv: &Invocation) -> std::result::Result<Value, Completion> {
        let field = |name: &str| inv.value.get(&Value::str(name));
        let (Some(from), Some(to), Some(amount)) =
            (field("from"), field("to"), field("amount").and_then(Value::as_int))
        else {
            return Err(Completion::fail(
                inv.value.clone(),
                Value::str("transfer needs {from, to, amount}"),
            ));
        };
        let overdraft_ok = field("negative") == Some(&Value::Bool(true));
        let (from, to) = (to_json(from), to_json(to));
        for _ in 0..CAS_ATTEMPTS {
            let read = json!([["r", from, null], ["r", to, null]]);
            let read = self.txn(read, inv).await.map_err(|c| nothing_written(c, inv))?;
            // A balance never written reads null, and its guard says so.
            let was = |i: usize| read.get(i).map(|m| m[2].clone()).unwrap_or_default();
            let (a, b) = (was(0).as_i64().unwrap_or(0), was(1).as_i64().unwrap_or(0));
            if a < amount && !overdraft_ok {
                return Err(Completion::fail(inv.value.clone(), Value::str("insufficient-funds")));
            }
            let moved =
                json!([["cas", from, [was(0), a - amount]], ["cas", to, [was(1), b + amount]]]);
            match self.txn(moved, inv).await {
                Ok(_) => return Ok(inv.value.clone()),
                // Certainly not applied: read again and retry.
                Err(c) if is_cas_mismatch(&c) => continue,
                Err(c) => return Err(c),
            }
        }
        Err(Completion::fail(inv.value.clone(), Value::str("contended")))
    }

    /// A dequeue (the head) or a drain (everything): the list read, then
    /// replaced by its rest with a compare-and-set, retried while others
    /// took from it first.
    async fn take(
        &self,
        key: &serde_json::Value,
        take: Take,
        inv: &Invocation,
    ) -> std::result::Result<Value, Completion> {
        for _ in 0..CAS_ATTEMPTS {
            let list = self.read_key(key, inv).await.map_err(|c| nothing_written(c, inv))?;
            let items = list.as_list().map(<[Value]>::to_vec).unwrap_or_default();
            let (taken, rest) = match (take, items.split_first()) {
                (Take::Head, None) => return Ok(Value::Nil),
                (Take::Head, Some((head, rest))) => (head.clone(), rest.to_vec()),
                (Take::All, _) if items.is_empty() => return Ok(Value::list([])),
                (Take::All, _) => (Value::list(items.clone()), Vec::new()),
            };
            let cas = json!([["cas", key, [to_json(&list), to_json(&Value::list(rest))]]]);
            match self.txn(cas, inv).await {
                Ok(_) => return Ok(taken),
                Err(c) if is_cas_mismatch(&c) => continue,
                Err(c) => return Err(c),
            }
        }
        Err(Completion::fail(inv.value.clone(), Value::str("contended")))
    }
}

/// A read that came before any write of an operation failed or timed out:
/// whatever its own outcome, the operation certainly changed nothing (every
/// earlier attempt ended in a definite mismatch), so it failed.
fn nothing_written(c: Completion, inv: &Invocation) -> Completion {
    Completion::fail(inv.value.clone(), c.error.unwrap_or_else(|| Value::str("read failed")))
}

/// Whether a failed request found another value than the one it guarded on.
fn is_cas_mismatch(c: &Completion) -> bool {
    c.kind == checkers::OpType::Fail
        && c.error.as_ref().and_then(Value::as_str) == Some("cas-mismatch")
}

/// Why a request did not succeed.
enum Refusal {
    /// This node does not coordinate writes; the leader's address, if known.
    NotLeader(Option<String>, Completion),
    /// Anything else, already as the completion to record.
    Other(Completion),
}

impl Refusal {
    fn completion(self) -> Completion {
        match self {
            Refusal::NotLeader(_, c) | Refusal::Other(c) => c,
        }
    }
}

#[async_trait]
impl Client for RefstoreClient {
    async fn open(&mut self, node: &str) -> Result<()> {
        self.base = format!("http://{}", self.env.addrs(node)?.client);
        Ok(())
    }

    async fn invoke(&mut self, inv: &Invocation) -> Completion {
        let key = |default: &str| match &inv.key {
            Some(k) => to_json(k),
            None => json!(default),
        };
        let result = match inv.f.as_str() {
            "read" | "final-read" if inv.key.is_none() => match inv.value.as_list() {
                // A read of several keys at once (the bank's balances).
                Some(keys) => self.read_many(keys, inv).await,
                // The set workload reads the whole set.
                None => self
                    .read_key(&json!(SET_KEY), inv)
                    .await
                    .map(|v| Value::set(v.as_list().map(<[Value]>::to_vec).unwrap_or_default())),
            },
            "read" | "final-read" => self.read_key(&key(""), inv).await,
            "write" => self
                .post("/v1/write", json!({ "key": key(""), "value": to_json(&inv.value) }), inv)
                .await
                .map(|_| inv.value.clone()),
            "cas" => {
                let Some([from, to]) =
                    inv.value.as_list().and_then(|l| <&[Value; 2]>::try_from(l).ok())
                else {
                    return Completion::fail(inv.value.clone(), Value::str("cas needs [from to]"));
                };
                let body = json!({ "key": key(""), "from": to_json(from), "to": to_json(to) });
                self.post("/v1/cas", body, inv).await.map(|_| inv.value.clone())
            }
            "add" => self
                .post("/v1/append", json!({ "key": SET_KEY, "value": to_json(&inv.value) }), inv)
                .await
                .map(|_| inv.value.clone()),
            "txn" => self.txn(to_json(&inv.value), inv).await.map(|ops| from_json(json!(ops))),
            "increment" => {
                let delta = if inv.value.is_nil() { json!(1) } else { to_json(&inv.value) };
                let ops = json!([["inc", key(COUNTER_KEY), delta]]);
                self.txn(ops, inv).await.map(|_| inv.value.clone())
            }
            "generate" => {
                // The store adds one and reads the sum in one step.
                let k = key(IDS_KEY);
                let ops = json!([["inc", k, 1], ["r", k, null]]);
                self.txn(ops, inv).await.map(|ops| from_json(ops[1][2].clone()))
            }
            "transfer" => self.transfer(inv).await,
            "enqueue" => self
                .post(
                    "/v1/append",
                    json!({ "key": key(QUEUE_KEY), "value": to_json(&inv.value) }),
                    inv,
                )
                .await
                .map(|_| inv.value.clone()),
            "dequeue" => self.take(&key(QUEUE_KEY), Take::Head, inv).await,
            "drain" => self.take(&key(QUEUE_KEY), Take::All, inv).await,
            other => {
                return Completion::fail(
                    inv.value.clone(),
                    Value::str(format!("refstore cannot {other}")),
                );
            }
        };
        match result {
            Ok(v) => Completion::ok(v),
            Err(c) => c,
        }
    }
}
