//! A small Chrome DevTools Protocol client for the browser tests: it starts
//! Debian's Chromium headless, attaches to one page over a WebSocket, and
//! offers the handful of calls the tests make (navigate, evaluate,
//! screenshot) while collecting script errors and requests in the
//! background.
//!
//! Why not a CDP crate: `headless_chrome` compiled for about 210 s of the
//! clean build (its generated protocol bindings), more than any crate of our
//! own, for six protocol methods and four events. This file speaks them as
//! JSON over `tungstenite`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long one protocol call may take before the test fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// What the page did that a test asserts on, filled in by the reader thread.
#[derive(Default)]
struct Seen {
    errors: Vec<String>,
    requests: Vec<String>,
    /// The navigations (by loader id) whose document reached its load event.
    loaded: std::collections::HashSet<String>,
}

type Pending = Arc<Mutex<HashMap<u64, Sender<Result<Value, String>>>>>;

/// A headless Chromium with one page attached.
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    outgoing: Sender<String>,
    pending: Pending,
    seen: Arc<Mutex<Seen>>,
    session: String,
    next_id: u64,
    reader: Option<JoinHandle<()>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Browser {
    /// Starts `chrome` headless with a fresh profile and opens a blank page
    /// with the runtime, log, network and page domains enabled.
    pub fn launch(chrome: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(chrome)
            .args([
                "--headless",
                "--remote-debugging-port=0",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-default-apps",
                "--disable-extensions",
                "--disable-sync",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let ws_url = devtools_url(&mut child);
        let (outgoing, to_send) = channel::<String>();
        let pending: Pending = Arc::default();
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let socket = connect(&ws_url);
            let (pending, seen, stop) =
                (Arc::clone(&pending), Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || pump(socket, to_send, pending, seen, stop))
        };
        let mut b = Browser {
            child,
            _profile: profile,
            outgoing,
            pending,
            seen,
            session: String::new(),
            next_id: 1,
            reader: Some(reader),
            stop,
        };
        let target = b.call("Target.createTarget", json!({ "url": "about:blank" }));
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached =
            b.call("Target.attachToTarget", json!({ "targetId": target_id, "flatten": true }));
        b.session = attached["sessionId"].as_str().expect("sessionId").to_owned();
        for domain in ["Runtime", "Log", "Network", "Page"] {
            b.call(&format!("{domain}.enable"), json!({}));
        }
        b.call("Page.setLifecycleEventsEnabled", json!({ "enabled": true }));
        b
    }

    /// Sends one command (to the page's session once attached) and waits
    /// for its result; a protocol error fails the test.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.try_call(method, params).unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    fn try_call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if !self.session.is_empty() {
            msg["sessionId"] = Value::String(self.session.clone());
        }
        let (tx, rx) = channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        self.outgoing.send(msg.to_string()).map_err(|_| "the reader thread has stopped")?;
        rx.recv_timeout(CALL_TIMEOUT).map_err(|e| format!("no answer: {e}"))?
    }

    /// Navigates to `url` and waits until that document's load event.
    pub fn open(&mut self, url: &str) {
        let r = self.call("Page.navigate", json!({ "url": url }));
        if let Some(e) = r.get("errorText").and_then(Value::as_str) {
            panic!("navigating to {url}: {e}");
        }
        let loader = r["loaderId"].as_str().expect("loaderId").to_owned();
        let start = Instant::now();
        while !self.seen.lock().expect("seen lock").loaded.contains(&loader) {
            assert!(start.elapsed() < CALL_TIMEOUT, "{url} never finished loading");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn evaluate(&mut self, js: &str, await_promise: bool) -> Result<Value, String> {
        let r = self.try_call(
            "Runtime.evaluate",
            json!({ "expression": js, "returnByValue": true, "awaitPromise": await_promise }),
        )?;
        if let Some(d) = r.get("exceptionDetails") {
            return Err(format!("{js} threw: {d}"));
        }
        Ok(r["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    /// The value of `js` in the page.
    pub fn eval(&mut self, js: &str) -> Value {
        self.evaluate(js, false).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Evaluates `js`, which yields a promise, and waits for its value.
    pub fn eval_async(&mut self, js: &str) -> Value {
        self.evaluate(js, true).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Waits until `js` is true, for at most `limit`. An evaluation that
    /// fails (the page is between documents) counts as not yet.
    pub fn wait_for(&mut self, js: &str, limit: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.evaluate(js, false).ok() == Some(Value::Bool(true)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Saves a PNG of the whole page at `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("screenshot data"))
            .expect("screenshot base64");
        std::fs::write(path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
    }

    /// The script errors seen since the last call.
    pub fn take_errors(&self) -> Vec<String> {
        std::mem::take(&mut self.seen.lock().expect("seen lock").errors)
    }

    /// How many script errors have been seen and not taken.
    pub fn error_count(&self) -> usize {
        self.seen.lock().expect("seen lock").errors.len()
    }

    /// Every URL the page has requested so far.
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().expect("seen lock").requests.clone()
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        self.seen.lock().expect("seen lock").requests.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// Reads Chromium's stderr until it prints the browser's DevTools
/// WebSocket address, then keeps draining it so Chromium never blocks.
fn devtools_url(child: &mut Child) -> String {
    let stderr = child.stderr.take().expect("chromium stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut skipped = Vec::new();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => match line.split_once("DevTools listening on ") {
                Some((_, url)) => break url.trim().to_owned(),
                None => skipped.push(line),
            },
            _ => panic!("chromium exited without a DevTools address; it said: {skipped:#?}"),
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    url
}

fn connect(url: &str) -> WebSocket<TcpStream> {
    let addr = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("unexpected DevTools address {url}"));
    let stream = TcpStream::connect(addr).expect("connect to DevTools");
    let (mut socket, _) = tungstenite::client(url, stream).expect("DevTools handshake");
    // A short read timeout lets the one thread that owns the socket also
    // send the commands queued for it.
    socket.get_mut().set_read_timeout(Some(Duration::from_millis(10))).expect("read timeout");
    socket
}

/// The reader thread: sends queued commands, hands results to their
/// callers, and records the events the tests look at.
fn pump(
    mut socket: WebSocket<TcpStream>,
    to_send: Receiver<String>,
    pending: Pending,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        while let Ok(msg) = to_send.try_recv() {
            if socket.send(Message::text(msg)).is_err() {
                return;
            }
        }
        let text = match socket.read() {
            Ok(Message::Text(t)) => t,
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        };
        let Ok(msg) = serde_json::from_str::<Value>(text.as_str()) else { continue };
        if let Some(id) = msg.get("id").and_then(Value::as_u64) {
            let result = match msg.get("error") {
                Some(e) => Err(e.to_string()),
                None => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
            };
            if let Some(tx) = pending.lock().expect("pending lock").remove(&id) {
                let _ = tx.send(result);
            }
            continue;
        }
        record(&msg, &mut seen.lock().expect("seen lock"));
    }
}

fn record(event: &Value, seen: &mut Seen) {
    let p = &event["params"];
    match event["method"].as_str().unwrap_or_default() {
        "Runtime.exceptionThrown" => {
            let d = &p["exceptionDetails"];
            let desc = d["exception"]["description"].as_str().unwrap_or_default();
            seen.errors.push(format!(
                "exception: {} {desc} (line {})",
                d["text"].as_str().unwrap_or_default(),
                d["lineNumber"]
            ));
        }
        "Runtime.consoleAPICalled" if p["type"] == "error" => {
            let args: Vec<&Value> =
                p["args"].as_array().into_iter().flatten().map(|a| &a["value"]).collect();
            seen.errors.push(format!("console.error: {args:?}"));
        }
        "Log.entryAdded" if p["entry"]["level"] == "error" => {
            seen.errors.push(format!("log: {} {}", p["entry"]["text"], p["entry"]["url"]));
        }
        "Network.requestWillBeSent" => {
            if let Some(url) = p["request"]["url"].as_str() {
                seen.requests.push(url.to_owned());
            }
        }
        "Page.lifecycleEvent" if p["name"] == "load" => {
            if let Some(id) = p["loaderId"].as_str() {
                seen.loaded.insert(id.to_owned());
            }
        }
        _ => {}
    }
}

/// Debian's Chromium, if installed.
pub fn find_chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}
