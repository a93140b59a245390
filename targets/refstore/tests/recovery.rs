//! Restarts from the write-ahead log, corrupt logs, failover, and the shapes of API errors.

use crate::common::Fixture;
use refstore::Mode;
use refstore::node::{self, NodeConfig};
use serde_json::{Value, json};
use std::time::Duration;

async fn leader_id(f: &Fixture) -> u64 {
    for _ in 0..200 {
        for id in 1..=3 {
            if f.cluster.nodes.contains_key(&id) {
                let s = f.status(id).await;
                if s["role"] == json!("leader") || s["role"] == json!("primary") {
                    return id;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader within 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_keeps_acknowledged_writes_across_a_leader_restart() {
    let mut f = Fixture::start(Mode::Raft).await;
    assert_eq!(f.call_any("/v1/append", json!({"key": 7, "value": "a"})).await.0, 200);
    let l = leader_id(&f).await;
    f.cluster.restart(l).await.expect("restart");
    assert_eq!(f.call_any("/v1/append", json!({"key": 7, "value": "b"})).await.0, 200);
    let (s, b) = f.call_any("/v1/read", json!({"key": 7})).await;
    assert_eq!((s, b), (200, json!({"value": ["a", "b"]})));
    // A follower answers with the leader's client address.
    let l = leader_id(&f).await;
    let follower = (1..=3).find(|i| *i != l).expect("a follower");
    let (s, b) = f.call(follower, "/v1/read", json!({"key": 7})).await;
    assert_eq!((s, &b["error"], &b["definite"]), (421, &json!("not-leader"), &json!(true)), "{b}");
    assert_eq!(b["leader"], json!(f.addrs()[&l]));
    f.cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_log_stops_a_durable_node_and_is_cut_when_asked() {
    let mut f = Fixture::start(Mode::Paxos).await;
    for v in 0..5 {
        assert_eq!(f.call(1, "/v1/write", json!({"key": v, "value": v})).await.0, 200);
    }
    f.cluster.stop(1).await.expect("stop");
    let path = f.dir.path().join("n1").join("wal.log");
    let mut bytes = std::fs::read(&path).expect("log exists");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, &bytes).expect("corrupt the log");
    let cfg: NodeConfig = f.cluster.configs[&1].clone();
    let err = node::start(cfg.clone()).await.expect_err("a durable mode refuses a corrupt log");
    assert!(err.to_string().contains("corrupt"), "{err}");
    let cut = NodeConfig { wal_recovery: Some(refstore::wal::RecoveryPolicy::Truncate), ..cfg };
    let running = node::start(cut).await.expect("starts when told to truncate");
    f.cluster.nodes.insert(1, running);
    let status = f.status(1).await;
    assert!(status["wal"]["damage"].as_str().is_some_and(|d| d.contains("corrupt")), "{status}");
    // The cluster still answers (the other two nodes hold every register).
    let (s, b) = f.call(1, "/v1/read", json!({"key": 4})).await;
    assert_eq!((s, b), (200, json!({"value": 4})));
    f.cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_fails_over_without_losing_acknowledged_writes() {
    let mut f = Fixture::start(Mode::Sync).await;
    for v in 0..10 {
        assert_eq!(f.call_any("/v1/append", json!({"key": "l", "value": v})).await.0, 200);
    }
    let old = leader_id(&f).await;
    f.cluster.stop(old).await.expect("stop the primary");
    let (s, b) = f.call_any("/v1/read", json!({"key": "l"})).await;
    assert_eq!((s, b), (200, json!({"value": (0..10).collect::<Vec<_>>()})));
    let new = leader_id(&f).await;
    assert_ne!(new, old);
    f.cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_errors_are_json_with_a_code_and_definiteness() {
    let f = Fixture::start(Mode::Eventual).await;
    let addr = f.addrs()[&1].clone();
    let r = f
        .http
        .post(format!("http://{addr}/v1/write"))
        .body("{not json")
        .send()
        .await
        .expect("answers");
    assert_eq!(r.status().as_u16(), 400);
    let b: Value = r.json().await.expect("JSON error");
    assert_eq!(
        (&b["error"], &b["definite"], &b["leader"]),
        (&json!("bad-request"), &json!(true), &Value::Null)
    );
    let (s, b) = f.call(1, "/v1/write", json!({"key": 1})).await;
    assert_eq!(s, 400, "a missing value is refused: {b}");
    let (s, b) = f.call(1, "/v1/append", json!({"key": 1, "value": 1})).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f.call(1, "/v1/write", json!({"key": 2, "value": 5})).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = f.call(1, "/v1/append", json!({"key": 2, "value": 1})).await;
    assert_eq!((s, &b["error"]), (400, &json!("bad-request")), "appending to a number: {b}");
    let (s, b) = f.call(1, "/v1/nothing", json!({})).await;
    assert_eq!((s, &b["error"]), (404, &json!("bad-request")));
    let h = f.http.get(format!("http://{addr}/admin/health")).send().await.expect("health");
    let h: Value = h.json().await.expect("JSON");
    assert_eq!(h, json!({"ok": true, "id": 1, "mode": "eventual"}));
    f.cluster.shutdown().await.expect("clean shutdown");
}
