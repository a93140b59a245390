//! The etcd client: faultline's operations (docs/workloads.md) over etcd's
//! v3 HTTP JSON gateway (`wire.rs` has the bodies).
//!
//! - `read` is a range of the key; `write` a put; `cas` a txn whose one
//!   compare is the key's value, so a failed compare proves nothing
//!   happened (`fail`).
//! - `txn` (list-append, rw-register) reads every key it names in one
//!   read-only txn, computes the reads and the new lists, then commits
//!   the writes in a txn that compares every key's mod revision with what
//!   it read: serializable, and a failed compare is a certain `fail`. A
//!   transaction without writes is the read alone.
//! - `add` (set) appends to a list under one key the same way, retried
//!   while another add got there first; `read` without a key reads it.
//!
//! Reads follow `--opt etcd_reads`: linearizable (etcd's read index) or
//! serializable (the member's own state). Outcomes never claim more than
//! is known: a request that never connected is `fail`; a timeout or a
//! connection lost after sending is `info`; of etcd's error answers only
//! those that prove nothing was proposed make a write `fail`
//! ([`Trouble::proves_nothing_written`]), while an error answer to a read
//! is a `fail`, since a read changes nothing.

use async_trait::async_trait;
use checkers::{OpType, Value};
use harness::{Client, Completion, Invocation, Result, TestEnv};

use crate::wire::{self, Read, Reads, Trouble};

/// The key of the set workload's elements (a list under one key).
const SET_KEY: &str = "set";
/// Attempts an `add` makes while other adds keep changing the set first.
const ADD_ATTEMPTS: usize = 8;

/// A client of one etcd member's gateway.
pub struct EtcdClient {
    http: reqwest::Client,
    /// The test's nodes and addresses (`None` for a client made for one URL).
    env: Option<TestEnv>,
    /// `http://host:port` of the member, once opened.
    base: String,
    reads: Reads,
}

impl EtcdClient {
    /// A client of the test's members.
    pub fn new(http: reqwest::Client, env: TestEnv, reads: Reads) -> EtcdClient {
        EtcdClient { http, env: Some(env), base: String::new(), reads }
    }

    /// A client of the gateway at `base` (`http://127.0.0.1:2379`).
    pub fn at(http: reqwest::Client, base: &str, reads: Reads) -> EtcdClient {
        EtcdClient { http, env: None, base: base.to_owned(), reads }
    }

    /// `POST path` with `body`: the answer, or what went wrong.
    async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> std::result::Result<serde_json::Value, Trouble> {
        let resp = match self.http.post(format!("{}{path}", self.base)).json(body).send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Err(Trouble::NotSent(e.to_string())),
            Err(e) if e.is_timeout() => return Err(Trouble::Timeout),
            Err(e) => return Err(Trouble::Lost(e.to_string())),
        };
        let status = resp.status();
        let body: serde_json::Value = match resp.json().await {
            Ok(b) => b,
            Err(e) if e.is_timeout() => return Err(Trouble::Timeout),
            Err(e) => return Err(Trouble::Lost(format!("unreadable answer: {e}"))),
        };
        if status.is_success() {
            Ok(body)
        } else {
            Err(Trouble::from_answer(status.as_u16(), &body))
        }
    }

    /// A request that may write: its trouble as the completion to record.
    async fn write_request(
        &self,
        path: &str,
        body: &serde_json::Value,
        inv: &Invocation,
    ) -> std::result::Result<serde_json::Value, Completion> {
        self.post(path, body).await.map_err(|t| {
            if t.proves_nothing_written() {
                Completion::fail(inv.value.clone(), Value::str(t.describe()))
            } else {
                Completion::info(inv.value.clone(), Value::str(t.describe()))
            }
        })
    }

    /// A request that only reads.
    async fn read_request(
        &self,
        path: &str,
        body: &serde_json::Value,
        inv: &Invocation,
    ) -> std::result::Result<serde_json::Value, Completion> {
        self.post(path, body).await.map_err(|t| read_trouble(&t, inv))
    }

    /// One key.
    async fn read_key(&self, k: &Value, inv: &Invocation) -> std::result::Result<Read, Completion> {
        let body = wire::range(k, self.reads);
        let answer = self.read_request("/v3/kv/range", &body, inv).await?;
        wire::parse_range(&answer).ok_or_else(|| unreadable(inv, &answer))
    }

    /// Several keys at one revision.
    async fn read_keys(
        &self,
        keys: &[Value],
        inv: &Invocation,
    ) -> std::result::Result<Vec<Read>, Completion> {
        let body = wire::read_txn(keys, self.reads);
        let answer = self.read_request("/v3/kv/txn", &body, inv).await?;
        wire::parse_read_txn(&answer, keys.len()).ok_or_else(|| unreadable(inv, &answer))
    }

    /// A txn of writes guarded by compares: `Ok(true)` applied, `Ok(false)`
    /// a compare failed (certainly not applied).
    async fn guarded(
        &self,
        compare: Vec<serde_json::Value>,
        success: Vec<serde_json::Value>,
        inv: &Invocation,
    ) -> std::result::Result<bool, Completion> {
        let answer = self.write_request("/v3/kv/txn", &wire::txn(compare, success), inv).await?;
        Ok(wire::txn_succeeded(&answer))
    }

    async fn cas(&self, k: &Value, inv: &Invocation) -> std::result::Result<Value, Completion> {
        let Some([from, to]) = inv.value.as_list().and_then(|l| <&[Value; 2]>::try_from(l).ok())
        else {
            return Err(Completion::fail(inv.value.clone(), Value::str("cas needs [from to]")));
        };
        let applied =
            self.guarded(vec![wire::value_equals(k, from)], vec![wire::put_op(k, to)], inv).await?;
        if applied {
            Ok(inv.value.clone())
        } else {
            Err(Completion::fail(inv.value.clone(), Value::str("cas-mismatch")))
        }
    }

    /// Appends `element` to the list under the set's key.
    async fn add(&self, inv: &Invocation) -> std::result::Result<Value, Completion> {
        let k = Value::str(SET_KEY);
        for _ in 0..ADD_ATTEMPTS {
            // Every earlier attempt certainly failed, so a failed read
            // means this add changed nothing.
            let read = self.read_key(&k, inv).await.map_err(|c| nothing_written(c, inv))?;
            let mut items = read.value.as_list().map(<[Value]>::to_vec).unwrap_or_default();
            items.push(inv.value.clone());
            let compare = vec![wire::unchanged_since(&k, read.mod_revision)];
            let success = vec![wire::put_op(&k, &Value::list(items))];
            if self.guarded(compare, success, inv).await? {
                return Ok(inv.value.clone());
            }
        }
        Err(Completion::fail(inv.value.clone(), Value::str("contended")))
    }

    /// The whole set, as the set workload reads it.
    async fn read_set(&self, inv: &Invocation) -> std::result::Result<Value, Completion> {
        let read = self.read_key(&Value::str(SET_KEY), inv).await?;
        Ok(Value::set(read.value.as_list().map(<[Value]>::to_vec).unwrap_or_default()))
    }

    /// A transaction of `r`, `w` and `append` micro-ops.
    async fn txn(&self, inv: &Invocation) -> std::result::Result<Value, Completion> {
        let plan = match TxnPlan::parse(&inv.value) {
            Ok(p) => p,
            Err(why) => return Err(Completion::fail(inv.value.clone(), Value::str(why))),
        };
        let reads = self.read_keys(&plan.keys, inv).await.map_err(|c| nothing_written(c, inv))?;
        let (result, writes) = plan.apply(&reads);
        if writes.is_empty() {
            return Ok(result);
        }
        let compare =
            plan.keys.iter().zip(&reads).map(|(k, r)| wire::unchanged_since(k, r.mod_revision));
        let success = writes.iter().map(|(k, v)| wire::put_op(k, v)).collect();
        if self.guarded(compare.collect(), success, inv).await? {
            Ok(result)
        } else {
            Err(Completion::fail(inv.value.clone(), Value::str("conflict")))
        }
    }
}

/// A read's trouble as its completion: `fail` when etcd answered (a read
/// changes nothing) or nothing was sent, `info` when the answer was lost.
fn read_trouble(t: &Trouble, inv: &Invocation) -> Completion {
    if t.read_is_definite() {
        Completion::fail(inv.value.clone(), Value::str(t.describe()))
    } else {
        Completion::info(inv.value.clone(), Value::str(t.describe()))
    }
}

/// An answer that is not what the request asks for: nobody can tell what
/// happened.
fn unreadable(inv: &Invocation, answer: &serde_json::Value) -> Completion {
    let mut text = answer.to_string();
    text.truncate(200);
    Completion::info(inv.value.clone(), Value::str(format!("unexpected answer: {text}")))
}

/// The read that precedes an operation's only write went wrong, so the
/// operation certainly wrote nothing.
fn nothing_written(c: Completion, inv: &Invocation) -> Completion {
    Completion::fail(inv.value.clone(), c.error.unwrap_or_else(|| Value::str("read failed")))
}

/// A transaction's micro-ops, and the keys they touch (each once, in order
/// of first use).
struct TxnPlan {
    mops: Vec<(MicroOp, Value, Value)>,
    keys: Vec<Value>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MicroOp {
    Read,
    Write,
    Append,
}

impl TxnPlan {
    fn parse(value: &Value) -> std::result::Result<TxnPlan, String> {
        let list = value.as_list().ok_or("txn needs a list of micro-ops")?;
        let mut mops = Vec::new();
        let mut keys: Vec<Value> = Vec::new();
        for m in list {
            let Some([f, k, v]) = m.as_list().and_then(|l| <&[Value; 3]>::try_from(l).ok()) else {
                return Err(format!("micro-op {m:?} is not [f k v]"));
            };
            let op = match f.as_str() {
                Some("r") => MicroOp::Read,
                Some("w") => MicroOp::Write,
                Some("append") => MicroOp::Append,
                _ => return Err(format!("etcd's client performs r, w and append, not {f:?}")),
            };
            if !keys.contains(k) {
                keys.push(k.clone());
            }
            mops.push((op, k.clone(), v.clone()));
        }
        Ok(TxnPlan { mops, keys })
    }

    /// The micro-ops with their reads filled in from `reads` (one per key,
    /// in `keys` order) and the transaction's own earlier writes, and the
    /// final value of every key it writes.
    fn apply(&self, reads: &[Read]) -> (Value, Vec<(Value, Value)>) {
        let mut state: Vec<Value> = reads.iter().map(|r| r.value.clone()).collect();
        let mut written = vec![false; self.keys.len()];
        let mut out = Vec::with_capacity(self.mops.len());
        for (op, k, v) in &self.mops {
            let i = self.keys.iter().position(|x| x == k).unwrap_or(0);
            let f = match op {
                MicroOp::Read => {
                    out.push(Value::list([Value::str("r"), k.clone(), state[i].clone()]));
                    continue;
                }
                MicroOp::Write => {
                    state[i] = v.clone();
                    "w"
                }
                MicroOp::Append => {
                    let mut items = state[i].as_list().map(<[Value]>::to_vec).unwrap_or_default();
                    items.push(v.clone());
                    state[i] = Value::list(items);
                    "append"
                }
            };
            written[i] = true;
            out.push(Value::list([Value::str(f), k.clone(), v.clone()]));
        }
        let writes = self
            .keys
            .iter()
            .zip(state)
            .zip(written)
            .filter(|(_, w)| *w)
            .map(|((k, v), _)| (k.clone(), v))
            .collect();
        (Value::list(out), writes)
    }
}

#[async_trait]
impl Client for EtcdClient {
    async fn open(&mut self, node: &str) -> Result<()> {
        if let Some(env) = &self.env {
            self.base = format!("http://{}", env.addrs(node)?.client);
        }
        Ok(())
    }

    async fn invoke(&mut self, inv: &Invocation) -> Completion {
        let result = match (inv.f.as_str(), &inv.key) {
            ("read" | "final-read", None) => self.read_set(inv).await,
            ("read" | "final-read", Some(k)) => self.read_key(k, inv).await.map(|r| r.value),
            ("write", Some(k)) => {
                let body =
                    serde_json::json!({ "key": wire::key(k), "value": wire::value(&inv.value) });
                self.write_request("/v3/kv/put", &body, inv).await.map(|_| inv.value.clone())
            }
            ("cas", Some(k)) => self.cas(k, inv).await,
            ("add", _) => self.add(inv).await,
            ("txn", _) => self.txn(inv).await,
            (f, _) => {
                return Completion::fail(
                    inv.value.clone(),
                    Value::str(format!("the etcd client cannot {f} (without a key?)")),
                );
            }
        };
        match result {
            Ok(v) => Completion::ok(v),
            Err(c) => {
                debug_assert!(c.kind != OpType::Ok);
                c
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The client against a fake gateway on loopback: what each kind of
    //! answer, and each way of not answering, is recorded as.

    use std::time::Duration;

    use axum::Json;
    use axum::http::StatusCode;
    use axum::routing::post;
    use serde_json::json;

    use super::*;

    fn http() -> reqwest::Client {
        reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(300))
            .build()
            .expect("http client")
    }

    async fn serve(app: axum::Router) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(l, app).await });
        format!("http://{addr}")
    }

    fn inv(f: &str, key: Option<i64>, value: Value) -> Invocation {
        let mut i = Invocation::new(f, value);
        i.key = key.map(Value::Int);
        i
    }

    fn error(code: i64, message: &str) -> (StatusCode, Json<serde_json::Value>) {
        let body = json!({"error": message, "message": message, "code": code});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body))
    }

    #[tokio::test]
    async fn a_read_decodes_the_value_and_a_missing_key_reads_nil() {
        let app = axum::Router::new().route(
            "/v3/kv/range",
            post(|Json(b): Json<serde_json::Value>| async move {
                assert_eq!(b["serializable"], json!(true));
                if b["key"] == json!(wire::key(&Value::Int(1))) {
                    Json(json!({"kvs": [{"mod_revision": "4", "value": wire::value(&Value::Int(3))}]}))
                } else {
                    Json(json!({"header": {}}))
                }
            }),
        );
        let mut c = EtcdClient::at(http(), &serve(app).await, Reads::Serializable);
        assert_eq!(c.invoke(&inv("read", Some(1), Value::Nil)).await, Completion::ok(3));
        assert_eq!(c.invoke(&inv("read", Some(2), Value::Nil)).await, Completion::ok(Value::Nil));
    }

    #[tokio::test]
    async fn a_cas_whose_compare_fails_is_a_certain_fail() {
        let app = axum::Router::new().route(
            "/v3/kv/txn",
            post(|Json(b): Json<serde_json::Value>| async move {
                assert_eq!(b["compare"][0]["value"], json!(wire::value(&Value::Int(1))));
                Json(json!({"header": {"revision": "5"}, "responses": []}))
            }),
        );
        let mut c = EtcdClient::at(http(), &serve(app).await, Reads::Linearizable);
        let done = c.invoke(&inv("cas", Some(1), Value::list([1.into(), 2.into()]))).await;
        assert_eq!(done.kind, OpType::Fail);
        assert_eq!(done.error, Some(Value::str("cas-mismatch")));
    }

    #[tokio::test]
    async fn a_write_timed_out_by_etcd_is_info_and_one_refused_as_invalid_is_fail() {
        let app = axum::Router::new()
            .route("/v3/kv/put", post(|| async { error(14, "etcdserver: request timed out") }))
            .route(
                "/v3/kv/txn",
                post(|| async { error(3, "etcdserver: duplicate key given in txn request") }),
            );
        let mut c = EtcdClient::at(http(), &serve(app).await, Reads::Linearizable);
        let w = c.invoke(&inv("write", Some(1), Value::Int(2))).await;
        assert_eq!(w.kind, OpType::Info, "{w:?}");
        let cas = c.invoke(&inv("cas", Some(1), Value::list([1.into(), 2.into()]))).await;
        assert_eq!(cas.kind, OpType::Fail, "{cas:?}");
    }

    #[tokio::test]
    async fn a_read_etcd_refused_is_fail_but_a_read_that_timed_out_is_info() {
        let app = axum::Router::new().route(
            "/v3/kv/range",
            post(|Json(b): Json<serde_json::Value>| async move {
                if b["key"] == json!(wire::key(&Value::Int(1))) {
                    error(14, "etcdserver: leader changed")
                } else {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    error(14, "too late")
                }
            }),
        );
        let mut c = EtcdClient::at(http(), &serve(app).await, Reads::Linearizable);
        assert_eq!(c.invoke(&inv("read", Some(1), Value::Nil)).await.kind, OpType::Fail);
        let slow = c.invoke(&inv("read", Some(2), Value::Nil)).await;
        assert_eq!(slow.kind, OpType::Info);
        assert_eq!(slow.error, Some(Value::str("timeout")));
    }

    #[tokio::test]
    async fn a_write_whose_connection_drops_after_sending_is_info() {
        // A server that reads the request and closes without answering.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                drop(s);
            }
        });
        let mut c = EtcdClient::at(http(), &format!("http://{addr}"), Reads::Linearizable);
        let w = c.invoke(&inv("write", Some(1), Value::Int(2))).await;
        assert_eq!(w.kind, OpType::Info, "{w:?}");
    }

    #[tokio::test]
    async fn a_write_to_a_closed_port_is_fail() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        drop(l);
        let mut c = EtcdClient::at(http(), &format!("http://{addr}"), Reads::Linearizable);
        let w = c.invoke(&inv("write", Some(1), Value::Int(2))).await;
        assert_eq!(w.kind, OpType::Fail, "{w:?}");
        assert_eq!(w.error, Some(Value::str("connection-refused")));
    }

    #[tokio::test]
    async fn a_list_append_txn_reads_then_commits_guarded_by_mod_revisions() {
        let app = axum::Router::new().route(
            "/v3/kv/txn",
            post(|Json(b): Json<serde_json::Value>| async move {
                if b.get("compare").is_none_or(|c| c.as_array().is_none_or(Vec::is_empty)) {
                    // The read: key 1 holds [5] at revision 8, key 2 is missing.
                    return Json(json!({"succeeded": true, "responses": [
                        {"response_range": {"kvs": [{"mod_revision": "8", "value": wire::value(&Value::list([5.into()]))}]}},
                        {"response_range": {}}
                    ]}));
                }
                assert_eq!(b["compare"][0]["mod_revision"], json!("8"));
                assert_eq!(b["compare"][1]["mod_revision"], json!("0"));
                assert_eq!(
                    b["success"][0]["request_put"]["value"],
                    json!(wire::value(&Value::list([5.into(), 6.into()])))
                );
                Json(json!({"succeeded": true, "responses": [{"response_put": {}}]}))
            }),
        );
        let mut c = EtcdClient::at(http(), &serve(app).await, Reads::Linearizable);
        let mop = |f: &str, k: i64, v: Value| Value::list([Value::str(f), Value::Int(k), v]);
        let t = Value::list([
            mop("append", 1, 6.into()),
            mop("r", 1, Value::Nil),
            mop("r", 2, Value::Nil),
        ]);
        let done = c.invoke(&inv("txn", None, t)).await;
        let want = Value::list([
            mop("append", 1, 6.into()),
            mop("r", 1, Value::list([5.into(), 6.into()])),
            mop("r", 2, Value::Nil),
        ]);
        assert_eq!(done, Completion::ok(want));
    }
}
