//! The interpreter: runs a generator against concurrent clients and the
//! nemesis, and records every event.
//!
//! One tokio task per client thread (each owning its client) and one for
//! the nemesis; a single loop owns the generator, the thread table and the
//! recorder, so the order of lines in `history.jsonl` is the order in which
//! that loop saw events. An invocation is recorded before it is handed to its
//! worker, and a completion after the worker returns it, which is what makes
//! the history's order a real-time order.
//!
//! A client operation that exceeds the per-operation timeout ends `info`; a
//! thread whose operation ended `info` continues under a fresh process
//! number (`process + concurrency`) with a freshly opened client, because
//! its previous request may still take effect.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use checkers::value::shared_str;
use checkers::{ArcStr, Op, OpType, Process, Value};
use futures_util::FutureExt;
use rand::SeedableRng;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::clock::{Clock, MonotonicClock};
use crate::error::{HarnessError, Result};
use crate::generator::{Action, Event, Gen, Invocation, Peek, Rng, Thread, Threads};
use crate::plugin::{Client, Completion, Nemesis};
use crate::recorder::Recorder;

/// Makes a fresh, unopened client.
pub type ClientFactory = Arc<dyn Fn() -> Box<dyn Client> + Send + Sync>;

/// Live counters for the progress bar, updated by the interpreter.
#[derive(Debug, Default)]
pub struct Progress {
    /// Invocations so far.
    pub invoked: AtomicU64,
    /// Completions `ok`.
    pub ok: AtomicU64,
    /// Completions `fail`.
    pub fail: AtomicU64,
    /// Completions `info`.
    pub info: AtomicU64,
    /// Faults currently in effect (`partition`, `kill`...).
    pub faults: Mutex<BTreeSet<String>>,
}

impl Progress {
    /// The faults in effect, comma-separated, or `none`.
    pub fn current_faults(&self) -> String {
        let faults = self.faults.lock().map(|f| f.iter().cloned().collect::<Vec<_>>().join(","));
        match faults {
            Ok(s) if !s.is_empty() => s,
            _ => "none".into(),
        }
    }

    fn completed(&self, kind: OpType) {
        let counter = match kind {
            OpType::Ok => &self.ok,
            OpType::Fail => &self.fail,
            _ => &self.info,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn nemesis_event(&self, f: &str) {
        let Ok(mut faults) = self.faults.lock() else { return };
        if let Some(kind) = f.strip_prefix("start-") {
            faults.insert(kind.to_owned());
        } else if let Some(kind) = f.strip_prefix("stop-") {
            faults.remove(kind);
        }
    }
}

/// What the interpreter needs besides the generator.
pub struct Interpreter {
    /// Number of client threads.
    pub clients: u32,
    /// The node each client thread talks to: thread `t` uses
    /// `nodes[t % nodes.len()]`.
    pub nodes: Vec<String>,
    /// Makes clients.
    pub client_factory: ClientFactory,
    /// The nemesis, if the test has faults.
    pub nemesis: Option<Box<dyn Nemesis>>,
    /// Seed for the nemesis's own random choices.
    pub nemesis_seed: u64,
    /// Client operations slower than this end `info`.
    pub op_timeout: Duration,
    /// How long to wait for operations in flight after an interruption.
    pub drain_timeout: Duration,
    /// The clock histories are timed with.
    pub clock: MonotonicClock,
    /// Live counters.
    pub progress: Arc<Progress>,
    /// Becomes `true` when the run must stop (Ctrl-C).
    pub cancel: watch::Receiver<bool>,
}

/// What the interpreter did.
#[derive(Debug)]
pub struct RunStats {
    /// Events recorded (invocations and completions).
    pub events: u64,
    /// Whether the run was interrupted before the generator was exhausted.
    pub interrupted: bool,
    /// Nanoseconds from start to end.
    pub elapsed_ns: u64,
}

enum Work {
    /// An operation, and the node it goes to.
    Invoke(Invocation, ArcStr),
    Sleep(Duration),
}

struct Done {
    thread: Thread,
    /// The invocation, handed back so the completion can be recorded without
    /// copying it; `None` for a sleep.
    inv: Option<Invocation>,
    completion: Completion,
}

/// How often an idle interpreter (a `Pending` generator with free threads)
/// asks the generator again.
const POLL: Duration = Duration::from_millis(10);

impl Interpreter {
    /// Runs `generator` to exhaustion (or until cancelled), recording into
    /// `recorder`. Returns the statistics and the nemesis, so the caller can
    /// heal what it broke.
    pub async fn run(
        mut self,
        mut generator: Gen,
        mut rng: Rng,
        recorder: &mut Recorder,
    ) -> Result<(RunStats, Option<Box<dyn Nemesis>>)> {
        let n = self.clients;
        let nemesis_thread = n;
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut senders: Vec<mpsc::UnboundedSender<Work>> = Vec::with_capacity(n as usize + 1);
        let mut client_tasks: Vec<JoinHandle<()>> = Vec::with_capacity(n as usize);
        let node_of = |t: Thread| -> Option<&String> {
            if self.nodes.is_empty() { None } else { self.nodes.get(t as usize % self.nodes.len()) }
        };
        for t in 0..n {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            client_tasks.push(tokio::spawn(client_worker(
                t,
                self.client_factory.clone(),
                self.op_timeout,
                rx,
                done_tx.clone(),
            )));
        }
        let (nem_tx, nem_rx) = mpsc::unbounded_channel();
        senders.push(nem_tx);
        let nemesis_task = tokio::spawn(nemesis_worker(
            nemesis_thread,
            self.nemesis.take(),
            Rng::seed_from_u64(self.nemesis_seed),
            nem_rx,
            done_tx.clone(),
        ));
        drop(done_tx);

        let nodes: Vec<Option<ArcStr>> =
            (0..n).map(|t| node_of(t).map(|name| shared_str(name))).collect();
        // The node an operation goes to: its thread's own, unless it names another.
        let node_for = |t: Thread, hint: Option<u32>| match hint {
            Some(i) if !self.nodes.is_empty() => {
                Some(shared_str(&self.nodes[i as usize % self.nodes.len()]))
            }
            _ => nodes.get(t as usize).cloned().flatten(),
        };
        let mut threads = Threads::new(n);
        let mut process: Vec<u64> = (0..u64::from(n)).collect();
        let mut outstanding: u32 = 0;
        let mut stopping = false;
        let mut drain_deadline: Option<u64> = None;
        let clock = self.clock.clone();

        loop {
            recorder.tick()?;
            if !stopping && *self.cancel.borrow() {
                stopping = true;
                drain_deadline = Some(clock.now_ns() + nanos(self.drain_timeout));
                tracing::warn!(
                    outstanding,
                    "interrupted: no new operations; waiting for those in flight"
                );
            }
            let now = clock.now_ns();
            let peek =
                if stopping { Peek::Done } else { generator.peek(&threads.context(now), &mut rng) };
            let wait_until: Option<u64> = match peek {
                Peek::Ready(p) if p.time <= now => {
                    let ctx = threads.context(now);
                    let thread = if p.needs_thread {
                        match ctx.restrict(p.lo, p.hi).pick_free(&mut rng) {
                            Some(t) => t,
                            None => {
                                return Err(HarnessError::Internal(format!(
                                    "the generator proposed threads {}..{} but none is free",
                                    p.lo, p.hi
                                )));
                            }
                        }
                    } else {
                        p.lo
                    };
                    let Some(action) = generator.take(&ctx, thread, &mut rng) else {
                        return Err(HarnessError::Internal(
                            "the generator proposed an operation and then had none to give".into(),
                        ));
                    };
                    match action {
                        Action::Log(msg) => tracing::info!(target: "faultline::generator", "{msg}"),
                        Action::Sleep(d) => {
                            threads.set_free(thread, false);
                            outstanding += 1;
                            send(&senders, thread, Work::Sleep(d))?;
                        }
                        Action::Invoke(inv) => {
                            let is_nemesis = thread == nemesis_thread;
                            let node = node_for(thread, inv.node);
                            let mut op = Op {
                                index: 0,
                                time: Some(now),
                                process: if is_nemesis {
                                    Process::Nemesis
                                } else {
                                    Process::Client(process[thread as usize])
                                },
                                kind: if is_nemesis { OpType::Info } else { OpType::Invoke },
                                f: shared_str(&inv.f),
                                value: inv.value,
                                key: inv.key,
                                node: if is_nemesis { None } else { node },
                                error: None,
                            };
                            recorder.record(&mut op)?;
                            self.progress.invoked.fetch_add(1, Ordering::Relaxed);
                            generator
                                .update(&ctx, &Event { thread, kind: OpType::Invoke, op: &op });
                            // A shared name: no allocation per operation.
                            let target = op.node.clone().unwrap_or_default();
                            let inv = Invocation {
                                f: inv.f,
                                value: op.value,
                                key: op.key,
                                node: inv.node,
                            };
                            threads.set_free(thread, false);
                            outstanding += 1;
                            send(&senders, thread, Work::Invoke(inv, target))?;
                        }
                    }
                    continue;
                }
                Peek::Ready(p) => Some(p.time),
                Peek::Pending => Some(now + nanos(POLL)),
                Peek::Done if outstanding == 0 => break,
                Peek::Done => drain_deadline,
            };
            if stopping && drain_deadline.is_some_and(|d| now >= d) {
                tracing::warn!(
                    outstanding,
                    "operations still in flight after the drain timeout; they stay open (info) in the history"
                );
                break;
            }

            // Wait for a completion, the proposed time, the recorder's
            // batch deadline or an interruption, whichever comes first.
            let done = match completed(&mut done_rx) {
                Some(d) => Some(d),
                None => {
                    let mut deadline = wait_until.map(|t| clock.instant_at(t));
                    if let Some(due) = recorder.due_in() {
                        let due = std::time::Instant::now() + due;
                        deadline = Some(deadline.map_or(due, |d| d.min(due)));
                    }
                    let sleep = async {
                        match deadline {
                            Some(d) => tokio::time::sleep_until(d.into()).await,
                            None => std::future::pending::<()>().await,
                        }
                    };
                    tokio::select! {
                        biased;
                        d = done_rx.recv() => match d {
                            Some(d) => Some(d),
                            None => return Err(HarnessError::Internal("every worker stopped".into())),
                        },
                        _ = sleep => None,
                        _ = self.cancel.changed(), if !stopping => None,
                    }
                }
            };
            let mut next = done;
            while let Some(d) = next {
                let now = clock.now_ns();
                let t = d.thread;
                if let Some(inv) = d.inv {
                    let is_nemesis = t == nemesis_thread;
                    let kind = if is_nemesis {
                        OpType::Info
                    } else if d.completion.kind == OpType::Invoke {
                        // A client must end an operation; treat the bug as
                        // "unknown outcome", which is always safe.
                        OpType::Info
                    } else {
                        d.completion.kind
                    };
                    let mut op = Op {
                        index: 0,
                        time: Some(now),
                        process: if is_nemesis {
                            Process::Nemesis
                        } else {
                            Process::Client(process[t as usize])
                        },
                        kind,
                        f: shared_str(&inv.f),
                        value: d.completion.value,
                        key: inv.key,
                        node: if is_nemesis { None } else { node_for(t, inv.node) },
                        error: d.completion.error,
                    };
                    recorder.record(&mut op)?;
                    if is_nemesis {
                        self.progress.nemesis_event(&op.f);
                    } else {
                        self.progress.completed(kind);
                        if kind == OpType::Info {
                            process[t as usize] += u64::from(n);
                        }
                    }
                    threads.set_free(t, true);
                    generator.update(&threads.context(now), &Event { thread: t, kind, op: &op });
                } else {
                    threads.set_free(t, true);
                }
                outstanding = outstanding.saturating_sub(1);
                next = completed(&mut done_rx);
            }
        }

        let elapsed_ns = clock.now_ns();
        drop(senders);
        for task in client_tasks {
            // A worker stuck in an operation past the drain timeout is
            // abandoned; its operation stays open (indeterminate).
            if tokio::time::timeout(self.drain_timeout, task).await.is_err() {
                tracing::warn!("a client worker did not stop in time");
            }
        }
        let nemesis = match tokio::time::timeout(self.drain_timeout * 4, nemesis_task).await {
            Ok(Ok(nem)) => nem,
            _ => {
                tracing::warn!("the nemesis worker did not stop in time");
                None
            }
        };
        recorder.handover()?;
        Ok((RunStats { events: recorder.len(), interrupted: stopping, elapsed_ns }, nemesis))
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn send(senders: &[mpsc::UnboundedSender<Work>], t: Thread, work: Work) -> Result<()> {
    senders
        .get(t as usize)
        .and_then(|s| s.send(work).ok())
        .ok_or_else(|| HarnessError::Internal(format!("worker {t} is gone")))
}

/// A completion already sent, without waiting for one.
///
/// Not `try_recv`: when it meets a sender half-way through its send, tokio's
/// `try_recv` parks the thread until that send ends, on the thread's own
/// parker, which is also the one a `block_on` sleeps on. The wake-up it
/// swallows there may be the one meant for that `block_on`: a campaign polls
/// all its runs from one `block_on`, whose futures set then never woke
/// again, and the campaign hung with every run frozen at the same instant.
/// Polling `recv` once never parks; a half-sent completion is taken by the
/// `recv` the loop awaits next, which that send then wakes.
fn completed(rx: &mut mpsc::UnboundedReceiver<Done>) -> Option<Done> {
    rx.recv().now_or_never().flatten()
}

async fn client_worker(
    thread: Thread,
    factory: ClientFactory,
    op_timeout: Duration,
    mut rx: mpsc::UnboundedReceiver<Work>,
    done: mpsc::UnboundedSender<Done>,
) {
    let mut client: Option<Box<dyn Client>> = None;
    // The node the open client talks to.
    let mut opened_on = ArcStr::default();
    while let Some(work) = rx.recv().await {
        let reply = match work {
            Work::Sleep(d) => {
                tokio::time::sleep(d).await;
                Done { thread, inv: None, completion: Completion::ok(Value::Nil) }
            }
            Work::Invoke(inv, node) => {
                if client.is_some() && opened_on != node {
                    // The session moves to another node: a new connection there.
                    if let Some(mut c) = client.take() {
                        c.close().await;
                    }
                }
                if client.is_none() {
                    let mut c = factory();
                    match tokio::time::timeout(op_timeout, c.open(&node)).await {
                        Ok(Ok(())) => {
                            client = Some(c);
                            opened_on = node;
                        }
                        Ok(Err(e)) => {
                            let completion = Completion::fail(
                                inv.value.clone(),
                                format!("could not open a client: {e}"),
                            );
                            let _ = done.send(Done { thread, inv: Some(inv), completion });
                            continue;
                        }
                        Err(_) => {
                            let completion =
                                Completion::fail(inv.value.clone(), "timed out opening a client");
                            let _ = done.send(Done { thread, inv: Some(inv), completion });
                            continue;
                        }
                    }
                }
                let Some(c) = client.as_mut() else { continue };
                let completion = match tokio::time::timeout(op_timeout, c.invoke(&inv)).await {
                    Ok(completion) => completion,
                    Err(_) => Completion::info(inv.value.clone(), "timeout"),
                };
                if completion.kind != OpType::Ok && completion.kind != OpType::Fail {
                    // The process is retired; its successor gets a fresh connection.
                    if let Some(mut c) = client.take() {
                        c.close().await;
                    }
                }
                Done { thread, inv: Some(inv), completion }
            }
        };
        if done.send(reply).is_err() {
            break;
        }
    }
    if let Some(mut c) = client.take() {
        c.close().await;
    }
}

async fn nemesis_worker(
    thread: Thread,
    mut nemesis: Option<Box<dyn Nemesis>>,
    mut rng: Rng,
    mut rx: mpsc::UnboundedReceiver<Work>,
    done: mpsc::UnboundedSender<Done>,
) -> Option<Box<dyn Nemesis>> {
    while let Some(work) = rx.recv().await {
        let reply = match work {
            Work::Sleep(d) => {
                tokio::time::sleep(d).await;
                Done { thread, inv: None, completion: Completion::ok(Value::Nil) }
            }
            Work::Invoke(inv, _) => {
                let completion = match nemesis.as_mut() {
                    None => Completion::info(inv.value.clone(), "no nemesis is configured"),
                    Some(nem) => match nem.invoke(&inv, &mut rng).await {
                        Ok(v) => Completion::info(v, Value::Nil),
                        Err(e) => {
                            tracing::warn!(f = %inv.f, "nemesis operation failed: {e}");
                            Completion::info(inv.value.clone(), e.to_string())
                        }
                    },
                };
                let completion =
                    Completion { error: completion.error.filter(|e| !e.is_nil()), ..completion };
                Done { thread, inv: Some(inv), completion }
            }
        };
        if done.send(reply).is_err() {
            break;
        }
    }
    nemesis
}
