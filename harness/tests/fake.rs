//! In-process fakes for driving the interpreter without a cluster.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use checkers::Value;
use harness::generator::{Invocation, Rng};
use harness::{Client, Completion, Db, Nemesis, Result, TestEnv};

/// Registers by key, shared by every client: a linearizable store.
pub type Store = Arc<Mutex<BTreeMap<Value, Value>>>;

/// A client of `Store`. Every `slow_every`-th operation (counted over all
/// clients) takes `slow` after applying, so the harness times it out.
pub struct MemClient {
    pub store: Store,
    pub counter: Arc<AtomicU64>,
    pub slow_every: u64,
    pub slow: Duration,
}

#[async_trait]
impl Client for MemClient {
    async fn open(&mut self, _node: &str) -> Result<()> {
        Ok(())
    }

    async fn invoke(&mut self, op: &Invocation) -> Completion {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let key = op.key.clone().unwrap_or_default();
        let result = {
            let Ok(mut s) = self.store.lock() else {
                return Completion::info(op.value.clone(), "poisoned");
            };
            match op.f.as_str() {
                "read" => Completion::ok(s.get(&key).cloned().unwrap_or_default()),
                "write" => {
                    s.insert(key, op.value.clone());
                    Completion::ok(op.value.clone())
                }
                "cas" => {
                    let (from, to) = match op.value.as_list() {
                        Some([f, t]) => (f.clone(), t.clone()),
                        _ => return Completion::fail(op.value.clone(), "bad cas"),
                    };
                    if s.get(&key).cloned().unwrap_or_default() == from {
                        s.insert(key, to);
                        Completion::ok(op.value.clone())
                    } else {
                        Completion::fail(op.value.clone(), "cas-mismatch")
                    }
                }
                other => Completion::fail(op.value.clone(), format!("unknown f {other}")),
            }
        };
        if self.slow_every > 0 && n % self.slow_every == self.slow_every - 1 {
            tokio::time::sleep(self.slow).await;
        }
        result
    }
}

/// A nemesis that records what it was asked to do.
#[derive(Default)]
pub struct RecordingNemesis {
    pub log: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl Nemesis for RecordingNemesis {
    fn fs(&self) -> Vec<String> {
        vec!["start-noop".into(), "stop-noop".into()]
    }

    async fn setup(&mut self, _env: &TestEnv, _db: Arc<dyn Db>) -> Result<()> {
        Ok(())
    }

    async fn invoke(&mut self, op: &Invocation, _rng: &mut Rng) -> Result<Value> {
        if let Ok(mut l) = self.log.lock() {
            l.push(op.f.clone());
        }
        Ok(Value::str("done"))
    }

    async fn heal(&mut self) -> Result<()> {
        Ok(())
    }
}
