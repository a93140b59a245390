//! The refstore client: faultline's operation vocabulary (docs/workloads.md)
//! mapped onto refstore's API. Reads, writes, compare-and-sets, appends and
//! transactions map one to one; a transfer or a dequeue reads, then writes
//! with a transaction of `cas` micro-ops guarded by what it read; increments
//! and ids use the store's own `inc`. Requests travel over HTTP to a node,
//! to an in-memory state machine ([`InMemory`]), or through any other
//! [`Transport`] (the deterministic simulation hands them to simulated
//! nodes), so every way of reaching refstore records the same outcomes.
//!
//! Under `--resolution siblings` (quorum mode) a read answers every
//! concurrent version and a context: the client keeps the context of each
//! key it last read and passes it with its next write of that key, so the
//! write supersedes what it read. The set workload's read is the union of
//! the siblings' lists; a register read of two or more siblings is recorded
//! as a set of their values (docs/history-format.md), which the register
//! checkers report rather than pick from.
//!
//! Outcomes follow refstore's contract: an error answer with
//! `definite: true` is `fail`, with `definite: false` is `info`; a timeout
//! or a lost connection is `info`; a refused connection is `fail` (nothing
//! was sent).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use checkers::Value;
use harness::{Client, Completion, Invocation, Result, TestEnv};
use refstore::kv::Kv;
use refstore::types::{ClientOp, Reply};
use serde_json::json;

/// A client of one refstore node.
pub struct RefstoreClient {
    transport: Arc<dyn Transport>,
    /// The test's nodes and their addresses (`None` in memory).
    env: Option<TestEnv>,
    /// The node's client address (`http://host:port`), once opened.
    base: String,
    /// Under siblings: per key (its JSON text), the context the last read or
    /// write of it returned, passed with the next write of the key.
    contexts: BTreeMap<String, serde_json::Value>,
}

/// What a read of one key answered.
enum Read {
    /// One value (every resolution but siblings).
    One(Value),
    /// Under siblings: every concurrent version's value and the context
    /// that covers them.
    Siblings(Vec<Value>, serde_json::Value),
}

impl Read {
    /// The value recorded for a register read: a sibling's value when there
    /// is one, `nil` when there is none, and the set of the values when
    /// there are several, so no checker can mistake them for one value.
    /// Siblings holding the same value (concurrent writes of it) read as
    /// that one value: the client cannot tell them apart, and a set of one
    /// value would read as a value nobody wrote.
    fn register_value(self) -> Value {
        match self {
            Read::One(v) => v,
            Read::Siblings(values, _) => {
                let mut distinct = values;
                distinct.sort();
                distinct.dedup();
                if distinct.len() <= 1 {
                    distinct.pop().unwrap_or(Value::Nil)
                } else {
                    Value::set(distinct)
                }
            }
        }
    }

    /// The set a set workload reads: the elements of the list, or the union
    /// of every sibling's list (the client's merge, so no acknowledged add
    /// is lost to a conflict).
    fn set_value(self) -> Value {
        let lists = match self {
            Read::One(v) => vec![v],
            Read::Siblings(values, _) => values,
        };
        let items =
            lists.iter().flat_map(|l| l.as_list().map(<[Value]>::to_vec).unwrap_or_default());
        Value::set(items.collect())
    }
}

impl RefstoreClient {
    /// A client of a cluster's nodes over HTTP.
    pub fn over_http(http: reqwest::Client, env: TestEnv) -> RefstoreClient {
        RefstoreClient {
            transport: Arc::new(Http(http)),
            env: Some(env),
            base: String::new(),
            contexts: BTreeMap::new(),
        }
    }

    /// A client of `store`, one in-memory refstore state machine shared by
    /// every client made from it: a linearizable store with no network,
    /// for generating histories of every workload fast (benchmarks) and
    /// for tests of the vocabulary itself.
    pub fn in_memory(store: Arc<InMemory>) -> RefstoreClient {
        RefstoreClient::over(store)
    }

    /// A client whose requests go through `transport`; `open(node)` makes
    /// `node`'s name the base it posts to.
    pub fn over(transport: Arc<dyn Transport>) -> RefstoreClient {
        RefstoreClient { transport, env: None, base: String::new(), contexts: BTreeMap::new() }
    }
}

/// How requests reach refstore: its HTTP API, a state machine in memory, or
/// a simulated node.
#[async_trait]
pub trait Transport: Send + Sync {
    /// `POST base path` with a JSON body: the answer's body, or why it
    /// failed. `base` is the node's address (`http://host:port`) or, for
    /// a client made with [`RefstoreClient::over`], the node's name; a
    /// `not-leader` refusal names the leader's base in the same form.
    async fn post(
        &self,
        base: &str,
        path: &str,
        body: &serde_json::Value,
        inv: &Invocation,
    ) -> std::result::Result<serde_json::Value, Refusal>;
}

/// refstore's HTTP JSON API.
struct Http(reqwest::Client);

#[async_trait]
impl Transport for Http {
    async fn post(
        &self,
        base: &str,
        path: &str,
        body: &serde_json::Value,
        inv: &Invocation,
    ) -> std::result::Result<serde_json::Value, Refusal> {
        let resp = match self.0.post(format!("{base}{path}")).json(body).send().await {
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
        let code = body.get("error").and_then(|c| c.as_str()).unwrap_or("error");
        let definite = body.get("definite").and_then(|d| d.as_bool()).unwrap_or(false);
        let leader = body.get("leader").and_then(|l| l.as_str()).map(|l| format!("http://{l}"));
        Err(Refusal::answered(code, definite, leader, inv))
    }
}

/// The body of refstore's successful answer to an operation, as its HTTP
/// API writes it: `{"value"}` for a read, `{}` for a write, `{"ops"}` for a
/// transaction.
pub fn answer_body(reply: Reply) -> serde_json::Value {
    match reply {
        Reply::Value(v) => json!({ "value": v }),
        Reply::Done => json!({}),
        Reply::Txn(ops) => json!({ "ops": ops }),
        Reply::Siblings { values, context } => json!({ "siblings": values, "context": context }),
        Reply::Written { context } => json!({ "context": context }),
    }
}

/// The operation a request of refstore's API stands for, as its HTTP
/// server reads it: the body's fields, named by the path (`/v1/write` with
/// a `context` is a write in that context); `None` when they do not make
/// one.
pub fn api_op(path: &str, body: &serde_json::Value) -> Option<ClientOp> {
    let mut request = body.clone();
    let f = match path.trim_start_matches("/v1/") {
        "write" if body.get("context").is_some() => "put",
        f => f,
    };
    request["f"] = json!(f);
    serde_json::from_value(request).ok()
}

/// One refstore state machine in memory (`refstore::kv::Kv`), serving the
/// API's requests one at a time under a lock.
#[derive(Default)]
pub struct InMemory {
    kv: Mutex<Kv>,
}

#[async_trait]
impl Transport for InMemory {
    async fn post(
        &self,
        _base: &str,
        path: &str,
        body: &serde_json::Value,
        inv: &Invocation,
    ) -> std::result::Result<serde_json::Value, Refusal> {
        let refuse =
            |code: &str| Refusal::Other(Completion::fail(inv.value.clone(), Value::str(code)));
        let op = api_op(path, body).ok_or_else(|| refuse("bad-request"))?;
        let reply = self.kv.lock().unwrap_or_else(|e| e.into_inner()).apply(&op);
        match reply {
            Ok(reply) => Ok(answer_body(reply)),
            // A state machine's only refusals are definite.
            Err(e) => Err(refuse(e.code())),
        }
    }
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
        let t = &self.transport;
        match t.post(&self.base, path, &body, inv).await {
            Err(Refusal::NotLeader(Some(leader), _)) => {
                match t.post(&leader, path, &body, inv).await {
                    Ok(v) => Ok(v),
                    Err(r) => Err(r.completion()),
                }
            }
            Ok(v) => Ok(v),
            Err(r) => Err(r.completion()),
        }
    }
}

impl RefstoreClient {
    /// A read of one key: its value, or under siblings every sibling's.
    async fn read_versions(
        &self,
        key: &serde_json::Value,
        inv: &Invocation,
    ) -> std::result::Result<Read, Completion> {
        let b = self.post("/v1/read", json!({ "key": key }), inv).await?;
        if let Some(siblings) = b.get("siblings").and_then(|s| s.as_array()) {
            let values = siblings.iter().cloned().map(from_json).collect();
            return Ok(Read::Siblings(values, b.get("context").cloned().unwrap_or_default()));
        }
        Ok(Read::One(from_json(b.get("value").cloned().unwrap_or_default())))
    }

    /// A read of one key that must be one value (a queue's list): siblings
    /// cannot be taken from with a compare-and-set, so they fail the read.
    async fn read_key(
        &self,
        key: &serde_json::Value,
        inv: &Invocation,
    ) -> std::result::Result<Value, Completion> {
        match self.read_versions(key, inv).await? {
            Read::One(v) => Ok(v),
            Read::Siblings(..) => Err(Completion::fail(
                inv.value.clone(),
                Value::str("siblings: a queue cannot be read as one list"),
            )),
        }
    }

    /// A register read; under siblings it keeps the context for the next
    /// write of the key.
    async fn read_register(
        &mut self,
        key: &serde_json::Value,
        inv: &Invocation,
    ) -> std::result::Result<Value, Completion> {
        let read = self.read_versions(key, inv).await?;
        if let Read::Siblings(_, context) = &read {
            self.contexts.insert(key.to_string(), context.clone());
        }
        Ok(read.register_value())
    }

    /// A register write, superseding what this client last read of the key
    /// when the store gave it a context (siblings); keeps the context the
    /// write returns, which covers the write itself.
    async fn write_register(
        &mut self,
        key: &serde_json::Value,
        inv: &Invocation,
    ) -> std::result::Result<Value, Completion> {
        let mut body = json!({ "key": key, "value": to_json(&inv.value) });
        if let Some(context) = self.contexts.get(&key.to_string()) {
            body["context"] = context.clone();
        }
        let answer = self.post("/v1/write", body, inv).await?;
        if let Some(context) = answer.get("context") {
            self.contexts.insert(key.to_string(), context.clone());
        }
        Ok(inv.value.clone())
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
pub enum Refusal {
    /// This node does not coordinate writes; the leader's base (as
    /// [`Transport::post`] takes it), if known.
    NotLeader(Option<String>, Completion),
    /// Anything else, already as the completion to record.
    Other(Completion),
}

impl Refusal {
    /// refstore's error answer `code`: `fail` when it is `definite` (the
    /// operation certainly did not take effect), `info` otherwise; a
    /// definite `not-leader` keeps the leader's base for one retry.
    pub fn answered(
        code: &str,
        definite: bool,
        leader: Option<String>,
        inv: &Invocation,
    ) -> Refusal {
        let completion = if definite {
            Completion::fail(inv.value.clone(), Value::str(code))
        } else {
            Completion::info(inv.value.clone(), Value::str(code))
        };
        if definite && code == "not-leader" {
            return Refusal::NotLeader(leader, completion);
        }
        Refusal::Other(completion)
    }

    /// The completion to record.
    pub fn completion(self) -> Completion {
        match self {
            Refusal::NotLeader(_, c) | Refusal::Other(c) => c,
        }
    }
}

#[async_trait]
impl Client for RefstoreClient {
    async fn open(&mut self, node: &str) -> Result<()> {
        self.base = match &self.env {
            Some(env) => format!("http://{}", env.addrs(node)?.client),
            None => node.to_owned(),
        };
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
                None => self.read_versions(&json!(SET_KEY), inv).await.map(Read::set_value),
            },
            "read" | "final-read" => self.read_register(&key(""), inv).await,
            "write" => self.write_register(&key(""), inv).await,
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

#[cfg(test)]
mod tests {
    use super::Read;
    use checkers::Value;

    fn siblings(values: &[i64]) -> Read {
        Read::Siblings(values.iter().map(|v| Value::Int(*v)).collect(), serde_json::Value::Null)
    }

    #[test]
    fn a_register_read_of_siblings_is_their_distinct_values() {
        assert_eq!(siblings(&[]).register_value(), Value::Nil);
        assert_eq!(siblings(&[3]).register_value(), Value::Int(3));
        // Two concurrent writes of the same value: one value, not a set nobody wrote.
        assert_eq!(siblings(&[3, 3]).register_value(), Value::Int(3));
        let two = Value::set(vec![Value::Int(1), Value::Int(3)]);
        assert_eq!(siblings(&[3, 1, 3]).register_value(), two);
    }
}
