//! Each mode on a real 3-node loopback cluster: read, write, cas, append, transactions,
//! status, and (in the leaderless modes) replication to the other nodes.

use crate::common::Fixture;
use refstore::Mode;
use serde_json::json;

/// The API contract every mode honours.
async fn serves_the_client_api(mode: Mode) {
    let f = Fixture::start(mode).await;
    let (s, b) = f.call_any("/v1/write", json!({"key": 1, "value": 10})).await;
    assert_eq!((s, &b), (200, &json!({})), "{mode}: write");
    let (s, b) = f.call_any("/v1/read", json!({"key": 1})).await;
    assert_eq!((s, &b), (200, &json!({"value": 10})), "{mode}: read");
    let (s, b) = f.call_any("/v1/cas", json!({"key": 1, "from": 10, "to": 11})).await;
    assert_eq!((s, &b), (200, &json!({})), "{mode}: cas that matches");
    let (s, b) = f.call_any("/v1/cas", json!({"key": 1, "from": 10, "to": 12})).await;
    assert_eq!(s, 409, "{mode}: cas that does not match: {b}");
    assert_eq!((&b["error"], &b["definite"]), (&json!("cas-mismatch"), &json!(true)));
    for v in [1, 2] {
        let (s, b) = f.call_any("/v1/append", json!({"key": "list", "value": v})).await;
        assert_eq!(s, 200, "{mode}: append: {b}");
    }
    let (s, b) = f.call_any("/v1/read", json!({"key": "list"})).await;
    assert_eq!((s, &b), (200, &json!({"value": [1, 2]})), "{mode}: read a list");
    let txn =
        json!({"ops": [["append", "t", 5], ["r", "t", null], ["w", "t", [9]], ["r", "t", null]]});
    let (s, b) = f.call_any("/v1/txn", txn).await;
    assert_eq!(
        (s, &b),
        (
            200,
            &json!({"ops": [["append", "t", 5], ["r", "t", [5]], ["w", "t", [9]], ["r", "t", [9]]]})
        ),
        "{mode}: txn"
    );
    let (s, b) = f.call_any("/v1/read", json!({"key": [1]})).await;
    assert_eq!(
        (s, &b["error"], &b["definite"]),
        (400, &json!("bad-request"), &json!(true)),
        "{mode}"
    );
    let status = f.status(1).await;
    assert_eq!(status["mode"], json!(mode.name()));
    assert_eq!(status["id"], json!(1));
    assert!(
        status["role"].is_string() && status["term"].is_u64() && status["peers"].is_array(),
        "{status}"
    );
    if !mode.has_leader() && mode != Mode::Paxos {
        // Writes accepted by one node reach the others.
        for node in 1..=3 {
            f.await_value(node, json!("list"), json!([1, 2])).await;
        }
    }
    f.cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_serves_the_client_api() {
    serves_the_client_api(Mode::Raft).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paxos_serves_the_client_api_and_refuses_multi_key_transactions() {
    serves_the_client_api(Mode::Paxos).await;
    let f = Fixture::start(Mode::Paxos).await;
    let (s, b) = f.call(2, "/v1/txn", json!({"ops": [["w", 1, 1], ["w", 2, 2]]})).await;
    assert_eq!((s, &b["error"]), (400, &json!("bad-request")), "{b}");
    // Any node coordinates: a write on node 3 is read on node 1.
    let (s, _) = f.call(3, "/v1/write", json!({"key": "k", "value": "v"})).await;
    assert_eq!(s, 200);
    let (s, b) = f.call(1, "/v1/read", json!({"key": "k"})).await;
    assert_eq!((s, b), (200, json!({"value": "v"})));
    f.cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_serves_the_client_api() {
    serves_the_client_api(Mode::Sync).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_serves_the_client_api() {
    serves_the_client_api(Mode::Async).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_leader_serves_the_client_api() {
    serves_the_client_api(Mode::MultiLeader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn causal_serves_the_client_api() {
    serves_the_client_api(Mode::Causal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventual_serves_the_client_api() {
    serves_the_client_api(Mode::Eventual).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_leader_clock_skew_decides_which_write_survives() {
    let f = Fixture::start(Mode::MultiLeader).await;
    // Node 1's clock runs an hour behind: its later write loses to node 2's earlier one.
    let (s, b) = f.call(1, "/admin/clock", json!({"offset_ms": -3_600_000})).await;
    assert_eq!((s, b), (200, json!({"offset_ms": -3_600_000})));
    assert_eq!(f.status(1).await["clock_offset_ms"], json!(-3_600_000));
    assert_eq!(f.call(2, "/v1/write", json!({"key": 1, "value": "early"})).await.0, 200);
    for node in 1..=3 {
        f.await_value(node, json!(1), json!("early")).await;
    }
    assert_eq!(f.call(1, "/v1/write", json!({"key": 1, "value": "late"})).await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    for node in 1..=3 {
        f.await_value(node, json!(1), json!("early")).await;
    }
    f.cluster.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_serves_reads_writes_appends_and_counters_and_refuses_cas_and_other_transactions() {
    let f = Fixture::start(Mode::Quorum).await;
    assert_eq!(f.call(1, "/v1/write", json!({"key": 1, "value": 10})).await, (200, json!({})));
    // R = W = 2 of N = 3: a read at any node sees the acknowledged write.
    for node in 1..=3 {
        assert_eq!(f.call(node, "/v1/read", json!({"key": 1})).await, (200, json!({"value": 10})));
    }
    for (node, v) in [(1, 1), (2, 2)] {
        let (s, b) = f.call(node, "/v1/append", json!({"key": "list", "value": v})).await;
        assert_eq!(s, 200, "append: {b}");
    }
    assert_eq!(
        f.call(3, "/v1/read", json!({"key": "list"})).await,
        (200, json!({"value": [1, 2]}))
    );
    let (s, b) = f.call(1, "/v1/cas", json!({"key": 1, "from": 10, "to": 11})).await;
    assert_eq!((s, &b["error"], &b["definite"]), (400, &json!("bad-request"), &json!(true)));
    // A counter's transaction (increments and reads of one key) is served,
    // through a read and a write quorum; any other transaction is refused.
    assert_eq!(
        f.call(1, "/v1/txn", json!({"ops": [["r", 1, null]]})).await,
        (200, json!({"ops": [["r", 1, 10]]}))
    );
    for ops in [json!([["r", 1, null], ["r", 2, null]]), json!([["w", 1, 11]])] {
        let (s, b) = f.call(1, "/v1/txn", json!({ "ops": ops })).await;
        assert_eq!((s, &b["error"]), (400, &json!("bad-request")), "{ops}: {b}");
    }
    let status = f.status(1).await;
    assert_eq!((&status["n"], &status["r"], &status["w"]), (&json!(3), &json!(2), &json!(2)));
    for node in 1..=3 {
        f.await_value(node, json!("list"), json!([1, 2])).await;
    }
    f.cluster.shutdown().await.expect("clean shutdown");
}
