//! A small HTTP client for the refstore API that follows `not-leader` redirects, and a
//! cluster fixture on loopback ports the kernel picks.

use refstore::Mode;
use refstore::cluster::{LocalCluster, Ports};
use refstore::core::Timing;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A running cluster plus a client for it; the temp dir lives as long as the fixture.
pub struct Fixture {
    pub cluster: LocalCluster,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub async fn start(mode: Mode) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let timing = Timing { request_ms: 3000, ..Timing::default() };
        let cluster =
            LocalCluster::start(mode, 3, "127.0.0.1", Ports::Ephemeral, dir.path(), timing)
                .await
                .expect("cluster starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        Fixture { cluster, http, dir }
    }

    pub fn addrs(&self) -> BTreeMap<u64, String> {
        self.cluster.client_addrs()
    }

    /// One request to one node: (status, body).
    pub async fn call(&self, node: u64, path: &str, body: Value) -> (u16, Value) {
        let addr = &self.addrs()[&node];
        post(&self.http, addr, path, body)
            .await
            .unwrap_or_else(|e| panic!("node {node} does not answer: {e}"))
    }

    /// A request that follows redirects and retries definite failures (no leader yet)
    /// until it succeeds or 10 s pass; returns the last answer.
    pub async fn call_any(&self, path: &str, body: Value) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut addr = self.addrs().values().next().cloned().expect("a node");
        let mut round = 0usize;
        loop {
            // A stopped node (connection refused) counts like a definite failure: try another.
            let (status, reply) =
                post(&self.http, &addr, path, body.clone()).await.unwrap_or((0, Value::Null));
            let retry = status == 421 || status == 503 || status == 0;
            if !retry || Instant::now() > deadline {
                return (status, reply);
            }
            round += 1;
            addr = match reply.get("leader").and_then(Value::as_str) {
                Some(leader) => leader.to_string(),
                None => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let addrs: Vec<String> = self.addrs().values().cloned().collect();
                    addrs[round % addrs.len()].clone()
                }
            };
        }
    }

    pub async fn status(&self, node: u64) -> Value {
        let addr = &self.addrs()[&node];
        let r = self
            .http
            .get(format!("http://{addr}/admin/status"))
            .send()
            .await
            .expect("status answers");
        r.json().await.expect("status is JSON")
    }

    /// Polls a read on `node` until it returns `want` (10 s at most).
    pub async fn await_value(&self, node: u64, key: Value, want: Value) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self.call(node, "/v1/read", json!({ "key": key })).await;
            if status == 200 && body["value"] == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node {node} never read {want} at {key}: last {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// One POST; `Err` when the node cannot be reached.
pub async fn post(
    http: &reqwest::Client,
    addr: &str,
    path: &str,
    body: Value,
) -> Result<(u16, Value), reqwest::Error> {
    let r = http.post(format!("http://{addr}{path}")).json(&body).send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.expect("every answer is JSON")))
}
