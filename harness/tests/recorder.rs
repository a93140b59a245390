//! The recorder: batches reach the file when handed over (so a killed
//! harness loses at most the batch it was filling), the header comes
//! first, and dropping a recorder writes what it holds.

use std::time::Duration;

use checkers::{Op, OpType, Process, Value};
use harness::recorder::{Recorder, RecorderConfig};

fn op(i: u64) -> Op {
    let mut o = Op::new(0, Process::Client(i % 3), OpType::Invoke, "write", Value::Int(i as i64));
    o.time = Some(i * 1000);
    o
}

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path).expect("read").lines().map(str::to_owned).collect()
}

#[test]
fn handed_over_batches_are_in_the_file_while_the_recorder_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    let config = RecorderConfig {
        batch_bytes: 1 << 20,
        batch_interval: Duration::from_millis(20),
        sync_interval: Duration::from_millis(100),
    };
    let mut r = Recorder::create(&path, config).expect("create");
    for i in 0..100 {
        r.record(&mut op(i)).expect("record");
    }
    // Not yet handed over: only the header is on disk.
    std::thread::sleep(Duration::from_millis(30));
    assert_eq!(lines(&path), [r#"{"format":"faultline-history","version":1}"#]);
    r.tick().expect("tick");
    // The writer thread writes the batch promptly; nothing else is needed
    // for it to survive the process being killed.
    let mut seen = 0;
    for _ in 0..100 {
        seen = lines(&path).len();
        if seen == 101 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(seen, 101);
    let history = checkers::formats::read_path(&path, None).expect("parse");
    assert_eq!(history.ops()[99].index, 99);
    assert_eq!(history.ops()[99].value, Value::Int(99));
    r.finish().expect("finish");
}

#[test]
fn a_full_batch_is_handed_over_without_waiting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    let config = RecorderConfig { batch_bytes: 4096, ..RecorderConfig::default() };
    let mut r = Recorder::create(&path, config).expect("create");
    for i in 0..1000 {
        r.record(&mut op(i)).expect("record");
    }
    std::thread::sleep(Duration::from_millis(100));
    let on_disk = lines(&path).len();
    // All but the last (partial) batch are on disk.
    assert!(on_disk > 900, "{on_disk} lines on disk");
    drop(r);
    assert_eq!(lines(&path).len(), 1001, "drop writes the rest");
}

#[test]
fn never_overwrites_an_existing_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("history.jsonl");
    std::fs::write(&path, "precious\n").expect("write");
    assert!(Recorder::create(&path, RecorderConfig::default()).is_err());
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "precious\n");
}
