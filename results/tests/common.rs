//! Shared builders for the tests and the benchmark: deterministic register
//! histories with faults, run directories laid out as the harness lays
//! them, and a small plugin checker with pages of its own.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use checkers::formats::{Format, write};
use checkers::{
    Anomaly, CheckError, Checker, History, HtmlPage, Op, OpType, Process, Validity, Value, Verdict,
};

/// A small xorshift generator: the tests print their seed, and the same seed
/// gives the same history.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A register history of `events` events: `threads` client threads doing
/// reads and writes of small integers, some failing or timing out (a
/// thread whose op timed out continues under a fresh process number), and a
/// nemesis that starts and stops partitions and kills.
pub fn register_history(events: usize, threads: u64, seed: u64) -> History {
    let mut rng = Rng::new(seed);
    let mut ops: Vec<Op> = Vec::with_capacity(events);
    let mut time: u64 = 0;
    // Per thread: its current process and the op in flight (f, value).
    let mut procs: Vec<u64> = (0..threads).collect();
    let mut inflight: Vec<Option<(String, Value)>> = vec![None; threads as usize];
    let mut next_process = threads;
    let mut register = Value::Nil;
    let mut fault: Option<&str> = None;
    while ops.len() < events {
        time += 50_000 + rng.below(400_000);
        let push = |ops: &mut Vec<Op>, p: Process, kind: OpType, f: &str, v: Value| {
            let mut op = Op::new(ops.len() as u64, p, kind, f, v);
            op.time = Some(time);
            ops.push(op);
        };
        // Faults on a fixed schedule, so every history of a few hundred
        // events has fault periods to shade.
        if ops.len() % 250 == 249 && ops.len() + 2 <= events {
            let kinds = ["partition", "kill"];
            let (f, value) = match fault {
                None => {
                    let k = kinds[rng.below(2) as usize];
                    fault = Some(k);
                    (format!("start-{k}"), Value::str("n1 n2 | n3 n4 n5"))
                }
                Some(k) => {
                    fault = None;
                    (format!("stop-{k}"), Value::Nil)
                }
            };
            push(&mut ops, Process::Nemesis, OpType::Invoke, &f, Value::Nil);
            push(&mut ops, Process::Nemesis, OpType::Info, &f, value);
            continue;
        }
        let t = rng.below(threads) as usize;
        let p = Process::Client(procs[t]);
        match inflight[t].take() {
            None => {
                let (f, v) = if rng.below(2) == 0 {
                    ("read".to_owned(), Value::Nil)
                } else {
                    ("write".to_owned(), Value::Int(rng.below(5) as i64))
                };
                push(&mut ops, p, OpType::Invoke, &f, v.clone());
                inflight[t] = Some((f, v));
            }
            Some((f, v)) => {
                let roll = rng.below(100);
                let kind = if roll < 3 {
                    OpType::Info
                } else if roll < 8 {
                    OpType::Fail
                } else {
                    OpType::Ok
                };
                let value = if f == "read" {
                    if kind == OpType::Ok { register.clone() } else { Value::Nil }
                } else {
                    if kind == OpType::Ok {
                        register = v.clone();
                    }
                    v
                };
                push(&mut ops, p, kind, &f, value);
                if kind == OpType::Info {
                    procs[t] = next_process;
                    next_process += 1;
                }
            }
        }
    }
    History::new(ops)
}

/// Lays out a run directory as the harness does: `test.toml`,
/// `history.jsonl`, `faultline.log` and one log per node.
pub fn make_run(store: &Path, name: &str, ts: &str, history: &History, spec: &str) -> PathBuf {
    let dir = store.join(name).join(ts);
    std::fs::create_dir_all(&dir).expect("create run dir");
    std::fs::write(dir.join("test.toml"), spec).expect("write test.toml");
    std::fs::write(dir.join("history.jsonl"), write(history, Format::Jsonl))
        .expect("write history");
    std::fs::write(dir.join("faultline.log"), "INFO starting test\nINFO done\n")
        .expect("write log");
    for n in ["n1", "n2"] {
        let node = dir.join("nodes").join(n);
        std::fs::create_dir_all(&node).expect("node dir");
        std::fs::write(node.join("refstore.log"), format!("{n}: started\n")).expect("node log");
    }
    dir
}

/// A test spec in the shape the harness writes.
pub fn spec(name: &str, seed: u64) -> String {
    format!(
        "name = \"{name}\"\nseed = {seed}\nworkload = \"register\"\ntarget = \"refstore\"\n\
         mode = \"raft\"\nnemesis = [\"partition\", \"kill\"]\nnodes = 5\ntime_limit = 30.0\n"
    )
}

/// A small plugin checker: every `ok` read must return nil or a value that
/// some write tried to write. A read of a value nobody wrote is a
/// `phantom-read`. With no reads at all there is nothing to judge: unknown.
pub struct ReadsWritten;

impl Checker for ReadsWritten {
    fn name(&self) -> &str {
        "reads-written"
    }

    fn check(&self, history: &History) -> Result<Verdict, CheckError> {
        let pairs = history.pairs()?;
        let ops = history.ops();
        let written: std::collections::BTreeSet<&Value> = pairs
            .iter()
            .filter(|p| ops[p.invoke].f == "write")
            .map(|p| &ops[p.invoke].value)
            .collect();
        let mut reads = 0;
        let mut anomalies = Vec::new();
        for p in &pairs {
            let Some(c) = p.complete else { continue };
            if ops[p.invoke].f != "read" || ops[c].kind != OpType::Ok {
                continue;
            }
            reads += 1;
            let v = &ops[c].value;
            if *v != Value::Nil && !written.contains(v) {
                anomalies.push(Anomaly {
                    kind: "phantom-read".into(),
                    explanation: format!(
                        "Process {} read {v} at op {}, but no operation ever wrote {v}: the value \
                         came from nowhere.",
                        ops[c].process, ops[c].index
                    ),
                    ops: vec![ops[p.invoke].index, ops[c].index],
                    data: serde_json::json!({"values": [v.to_string()]}),
                });
            }
        }
        let mut v = if !anomalies.is_empty() {
            let mut v = Verdict::new(
                "reads-written",
                Validity::Invalid,
                format!("{} phantom read(s)", anomalies.len()),
            );
            v.anomalies = anomalies;
            v
        } else if reads == 0 {
            let mut v = Verdict::new("reads-written", Validity::Unknown, "no reads to judge");
            v.unknown_reason = Some("the history has no successful reads".into());
            v
        } else {
            Verdict::new(
                "reads-written",
                Validity::Valid,
                format!("{reads} reads all saw written values"),
            )
        };
        v.details = serde_json::json!({"reads": reads});
        Ok(v)
    }

    fn render_html(&self, history: &History, verdict: &Verdict) -> Vec<HtmlPage> {
        if verdict.anomalies.is_empty() {
            return Vec::new();
        }
        let mut body = String::from("<ul class=\"phantoms\">");
        for a in &verdict.anomalies {
            let values = a.data["values"].as_array().cloned().unwrap_or_default();
            body.push_str(&format!(
                "<li>phantom value {} (history of {} events)</li>",
                checkers::html::escape(
                    &values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",")
                ),
                history.len()
            ));
        }
        body.push_str("</ul>");
        vec![HtmlPage { name: "phantom-read".into(), title: "Phantom reads".into(), body }]
    }
}

/// The built-in checkers and this plugin one, as the harness's registry
/// holds them.
pub fn plugins() -> checkers::registry::CheckerTable {
    let mut table = checkers::registry::CheckerTable::builtin();
    table.register(
        "reads-written",
        "every value read was written (test plugin)",
        checkers::registry::Accepts::nothing(),
        |_, _| Ok(Box::new(ReadsWritten)),
    );
    table
}

/// A read of 99, which nobody wrote, appended to `history`.
pub fn with_phantom_read(history: &History) -> History {
    let mut ops = history.ops().to_vec();
    let t = ops.last().and_then(|o| o.time).unwrap_or(0);
    let p = Process::Client(10_000);
    let mut a = Op::new(0, p, OpType::Invoke, "read", Value::Nil);
    a.time = Some(t + 1_000);
    let mut b = Op::new(0, p, OpType::Ok, "read", Value::Int(99));
    b.time = Some(t + 2_000_000);
    ops.push(a);
    ops.push(b);
    History::from_ops_renumbered(ops)
}

/// `faultline serve` on a loopback port for the length of a test.
pub struct TestServer {
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start(store: &Path) -> TestServer {
        let store = results::Store::new(store);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
                addr_tx.send(listener.local_addr().expect("addr")).expect("send addr");
                axum::serve(listener, results::serve::router(store, crate::common::plugins()))
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("serve");
            });
        });
        let addr = addr_rx.recv().expect("server address");
        TestServer { addr, stop: Some(stop), thread: Some(thread) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A plain HTTP/1.1 GET to the test server: (status, content type, body).
pub fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(60))).expect("timeout");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status");
    let ctype = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(str::to_owned))
        .unwrap_or_default();
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, ctype, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((len, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(len.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}
