//! `faultline serve` over a real store, through HTTP on loopback.

use checkers::Checker;
use results::CheckResult;

use crate::common::{
    ReadsWritten, TestServer, get, make_run, register_history, spec, with_phantom_read,
};

fn store_with_runs(root: &std::path::Path) {
    let h = register_history(600, 3, 31);
    let bad = with_phantom_read(&h);
    for (ts, hist) in [("20260101T000000Z", &h), ("20260102T000000Z", &bad)] {
        let dir = make_run(
            root,
            "reg",
            ts,
            hist,
            &spec("reg", 31).replace(
                "nemesis = [\"partition\", \"kill\"]",
                "nemesis = [\"partition\"]\ncampaign = \"nightly\"",
            ),
        );
        let check = CheckResult {
            spec: checkers::registry::CheckSpec::new("reads-written"),
            verdict: ReadsWritten.check(hist).expect("check"),
        };
        results::finish_run(&dir, hist, vec![check], &crate::common::plugins()).expect("finish");
    }
    // A run that crashed before it was checked, of another test.
    make_run(
        root,
        "la",
        "20260103T000000Z",
        &h,
        "name = \"la\"\nworkload = \"list-append\"\ntarget = \"etcd\"\nmode = \"\"\nnemesis = []\n",
    );
}

#[test]
fn index_lists_runs_with_verdict_colours_and_filters() {
    let tmp = tempfile::tempdir().expect("tempdir");
    store_with_runs(tmp.path());
    let server = TestServer::start(tmp.path());
    let (status, ctype, body) = get(server.addr, "/");
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/html"), "{ctype}");
    assert!(body.contains("<p class=\"muted\" id=\"run-count\">3 of 3 runs</p>"), "{body}");
    assert!(
        body.contains("<tr class=\"run invalid\">") && body.contains("<tr class=\"run valid\">")
    );
    assert!(body.contains("<tr class=\"run unchecked\">"));
    assert!(body.contains("href=\"/runs/reg/20260102T000000Z/\""));
    assert!(body.contains("<td>list-append</td><td>etcd</td>"));

    let (_, _, only_invalid) = get(server.addr, "/?status=invalid");
    assert!(only_invalid.contains("1 of 3 runs"), "{only_invalid}");
    let (_, _, by_workload) = get(server.addr, "/?workload=list-append&q=");
    assert!(by_workload.contains("1 of 3 runs") && by_workload.contains("20260103T000000Z"));
    let (_, _, by_fault) = get(server.addr, "/?fault=partition");
    assert!(by_fault.contains("2 of 3 runs"));

    let (status, ctype, json) = get(server.addr, "/api/runs");
    assert_eq!(status, 200);
    assert!(ctype.starts_with("application/json"));
    let runs: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(runs.as_array().expect("array").len(), 3);
}

#[test]
fn serves_reports_files_and_node_logs_but_nothing_outside_a_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    store_with_runs(tmp.path());
    std::fs::write(tmp.path().join("secret.txt"), "do not serve").expect("write");
    let server = TestServer::start(tmp.path());
    let (status, _, report) = get(server.addr, "/runs/reg/20260102T000000Z/");
    assert_eq!(status, 200);
    assert!(report.contains("id=\"overall-verdict\">invalid<"));
    // A run without a stored report is drawn on the fly.
    let (status, _, fresh) = get(server.addr, "/runs/la/20260103T000000Z/");
    assert_eq!(status, 200);
    assert!(fresh.contains("not checked"));
    let (status, _, _) = get(server.addr, "/runs/reg/20260102T000000Z");
    assert_eq!(status, 308, "a run without its slash redirects so relative links work");

    let (status, ctype, log) = get(server.addr, "/runs/reg/20260102T000000Z/nodes/n1/refstore.log");
    assert_eq!((status, log.as_str()), (200, "n1: started\n"));
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    let (status, _, history) = get(server.addr, "/runs/reg/20260102T000000Z/history.jsonl");
    assert_eq!(status, 200);
    assert!(
        history.starts_with("{\"format\":\"faultline-history\""),
        "{}",
        &history[..80.min(history.len())]
    );
    let (status, _, listing) = get(server.addr, "/runs/reg/20260102T000000Z/nodes/");
    assert_eq!(status, 200);
    assert!(listing.contains("href=\"n1/\""));

    for bad in [
        "/runs/reg/20260102T000000Z/../../secret.txt",
        "/runs/reg/20260102T000000Z/%2E%2E/%2E%2E/secret.txt",
        "/runs/reg/..%2F..%2Fsecret.txt/x",
        "/runs/nope/1/",
    ] {
        let (status, _, body) = get(server.addr, bad);
        assert!(status == 404 || status == 400, "{bad}: {status}");
        assert!(!body.contains("do not serve"), "{bad} leaked a file");
    }
}

#[test]
fn compares_the_runs_of_a_test_and_of_a_campaign() {
    let tmp = tempfile::tempdir().expect("tempdir");
    store_with_runs(tmp.path());
    let server = TestServer::start(tmp.path());
    let (status, _, by_name) = get(server.addr, "/compare?name=reg");
    assert_eq!(status, 200);
    assert!(by_name.contains("<h1>runs of reg</h1>"));
    assert_eq!(by_name.matches("<tr><td class=\"status").count(), 2);
    // Oldest first, with the per-checker column.
    let (a, b) = (
        by_name.find("20260101T000000Z").expect("a"),
        by_name.find("20260102T000000Z").expect("b"),
    );
    assert!(a < b);
    assert!(by_name.contains("<th>reads-written</th>"));
    assert!(by_name.contains("<span class=\"badge invalid\">invalid</span>"));
    assert!(by_name.contains(" ×1</td>"), "fault periods not compared");

    let (_, _, campaign) = get(server.addr, "/compare?campaign=nightly");
    assert_eq!(campaign.matches("<tr><td class=\"status").count(), 2);
    let (_, _, picked) =
        get(server.addr, "/compare?run=reg%2F20260101T000000Z&run=la%2F20260103T000000Z");
    assert_eq!(picked.matches("<tr><td class=\"status").count(), 2);
    assert!(picked.contains("la/20260103T000000Z"));
    let (_, _, none) = get(server.addr, "/compare?name=nothing");
    assert!(none.contains("id=\"compare-empty\""));
}

#[test]
fn the_index_marks_an_interrupted_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let h = register_history(300, 3, 5);
    let dir = make_run(tmp.path(), "reg", "20260101T000000Z", &h, &spec("reg", 5));
    results::RunDir::open(&dir)
        .expect("open")
        .mark_interrupted("Ctrl-C after 3.2 s of a 30 s test")
        .expect("mark");
    let check = CheckResult {
        spec: checkers::registry::CheckSpec::new("reads-written"),
        verdict: ReadsWritten.check(&h).expect("check"),
    };
    results::finish_run(&dir, &h, vec![check], &crate::common::plugins()).expect("finish");
    let server = TestServer::start(tmp.path());
    let (status, _, body) = get(server.addr, "/");
    assert_eq!(status, 200);
    // Found nothing, but cut short: unknown, and marked as interrupted.
    assert!(body.contains("<tr class=\"run unknown\">"), "{body}");
    assert!(body.contains("(interrupted)") && body.contains("Ctrl-C after 3.2 s"), "{body}");
}
