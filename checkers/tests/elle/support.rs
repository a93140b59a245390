//! Building small transactional histories by hand, and running a checker.

use std::collections::BTreeSet;

use checkers::formats::{self, Format};
use checkers::registry::{self, CheckSpec};
use checkers::{History, Op, OpType, Process, Value, Verdict};

/// Parses one EDN value, such as a transaction `[[:append :x 1] [:r :y nil]]`.
pub fn value(text: &str) -> Value {
    let h = formats::parse(
        &format!("{{:process 0, :type :invoke, :f :txn, :value {text}}}"),
        "test",
        Some(Format::Edn),
    )
    .unwrap_or_else(|e| panic!("bad EDN in test {text:?}: {e}"));
    h.ops()[0].value.clone()
}

/// The transaction as it would be invoked: reads not yet known.
fn unknown_reads(v: &Value) -> Value {
    match v {
        Value::List(mops) => Value::List(
            mops.iter()
                .map(|m| match m {
                    Value::List(p) if p.len() == 3 && p[0].as_str() == Some("r") => {
                        Value::list([p[0].clone(), p[1].clone(), Value::Nil])
                    }
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A history written event by event.
#[derive(Default)]
pub struct Builder {
    ops: Vec<Op>,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    fn push(&mut self, p: u64, kind: OpType, v: Value) -> &mut Builder {
        self.ops.push(Op::new(0, Process::Client(p), kind, "txn", v));
        self
    }

    /// Process `p` invokes `txn` (its reads become nil).
    pub fn invoke(&mut self, p: u64, txn: &str) -> &mut Builder {
        self.push(p, OpType::Invoke, unknown_reads(&value(txn)))
    }

    /// Process `p`'s transaction completes ok with `txn` (reads filled in).
    pub fn ok(&mut self, p: u64, txn: &str) -> &mut Builder {
        self.push(p, OpType::Ok, value(txn))
    }

    /// Process `p`'s transaction fails.
    pub fn fail(&mut self, p: u64, txn: &str) -> &mut Builder {
        self.push(p, OpType::Fail, unknown_reads(&value(txn)))
    }

    /// Process `p`'s transaction ends indeterminate.
    pub fn info(&mut self, p: u64, txn: &str) -> &mut Builder {
        self.push(p, OpType::Info, unknown_reads(&value(txn)))
    }

    /// Process `p` runs `txn` alone: invocation, then ok.
    pub fn txn(&mut self, p: u64, txn: &str) -> &mut Builder {
        self.invoke(p, txn).ok(p, txn)
    }

    /// Processes run these transactions at the same time: every invocation,
    /// then every completion, so no real-time order links them.
    pub fn concurrent(&mut self, txns: &[(u64, &str)]) -> &mut Builder {
        for &(p, t) in txns {
            self.invoke(p, t);
        }
        for &(p, t) in txns {
            self.ok(p, t);
        }
        self
    }

    /// The events so far, numbered.
    pub fn history(&self) -> History {
        History::from_ops_renumbered(self.ops.clone())
    }
}

/// `block`'s events inserted as one run into `background` after its
/// `at`-th event, all renumbered.
pub fn splice(background: &History, block: &History, at: usize) -> History {
    let at = at.min(background.len());
    let mut ops: Vec<Op> = background.ops()[..at].to_vec();
    ops.extend(block.ops().iter().cloned());
    ops.extend(background.ops()[at..].iter().cloned());
    History::from_ops_renumbered(ops)
}

/// Runs checker `name` on `h` against `models`, with `--opt` pairs.
pub fn check(name: &str, models: &[&str], opts: &[(&str, &str)], h: &History) -> Verdict {
    let spec = CheckSpec {
        checker: name.into(),
        consistency_models: models.iter().map(|m| (*m).to_owned()).collect(),
        options: opts.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        ..CheckSpec::default()
    };
    let checker = registry::build(&spec).unwrap_or_else(|e| panic!("build {name}: {e}"));
    checker.check(h).unwrap_or_else(|e| panic!("check {name}: {e}"))
}

/// Whether some committed transaction of `h` read a key: without one, Elle
/// has no dependency to infer and its verdict must be unknown, not valid.
pub fn reads_committed(h: &History) -> bool {
    h.ops().iter().filter(|op| op.kind == OpType::Ok).any(|op| {
        checkers::txn::parse_txn(&op.value)
            .is_ok_and(|txn| txn.iter().any(|m| matches!(m, checkers::txn::MicroOp::Read { .. })))
    })
}

/// Every anomaly type the verdict found, prohibited or not.
pub fn found(v: &Verdict) -> BTreeSet<String> {
    v.details["anomaly_counts"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// Strings to a set, for comparisons.
pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}
