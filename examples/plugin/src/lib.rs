//! An example plugin crate: a workload (`unique-writes`), a checker
//! (`no-phantom-reads`) and a linearizability model of a data type of its
//! own (`bounded-stack`) that live outside faultline, registered by name
//! so `faultline-plugins test --workload unique-writes` runs them against
//! any target that can `read` and `write`, and `faultline-plugins check`,
//! `analyze`, `report` and `serve` know them like the built-ins.
//!
//! The workload writes unique, increasing integers to a few keys and reads
//! them back; the checker verifies that every value a read returned was
//! written by some operation (a store that returns values nobody wrote has
//! corrupted or fabricated data). The stack shows the linearizability
//! model API: the sequential specification is all a user writes; the
//! search, the evidence and the report page come with it.

use std::collections::BTreeSet;

use checkers::linear::{ModelChecker, SequentialModel};
use checkers::registry::{Accepts, CheckSpec};
use checkers::{Anomaly, CheckError, Checker, History, OpType, Process, Validity, Value, Verdict};
use harness::generator::{self as g, Gen, Invocation};
use harness::{Registry, TestSpec, Workload};
use rand::Rng;

/// Registers the workload, the checker and the stack model.
pub fn register(registry: &mut Registry) {
    registry.checker(
        "bounded-stack",
        "linearizability of a stack of at most --opt capacity=N elements (example plugin model)",
        ModelChecker::<BoundedStack>::accepts()
            .option("capacity", "how many elements the stack holds (default 8)"),
        |spec| {
            let capacity = match spec.option("capacity") {
                None => 8,
                Some(c) => c.parse().map_err(|_| {
                    CheckError::BadOption(format!("--opt capacity={c}: expected a count"))
                })?,
            };
            let mut model_spec = spec.clone();
            model_spec.options.remove("capacity");
            Ok(Box::new(ModelChecker::from_spec(BoundedStack { capacity }, &model_spec)?))
        },
    );
    registry.workload(
        "unique-writes",
        "unique increasing writes and reads on a few keys (example plugin)",
        |spec| Ok(Box::new(UniqueWrites { keys: spec.option("keys", 3i64)?.max(1) })),
    );
    registry.checker(
        "no-phantom-reads",
        "every value read was written by someone (example plugin)",
        Accepts::nothing(),
        |_| Ok(Box::new(NoPhantomReads)),
    );
}

/// Unique writes and reads.
pub struct UniqueWrites {
    keys: i64,
}

impl Workload for UniqueWrites {
    fn generator(&self, _spec: &TestSpec) -> Gen {
        let keys = self.keys;
        let mut next = 0i64;
        g::from_fn(move |rng, _| {
            let key = rng.random_range(0..keys);
            if rng.random_bool(0.5) {
                Some(Invocation::new("read", Value::Nil).with_key(key))
            } else {
                next += 1;
                Some(Invocation::new("write", next).with_key(key))
            }
        })
    }

    fn final_generator(&self, _spec: &TestSpec) -> Option<Gen> {
        None
    }

    fn fs(&self) -> Vec<String> {
        vec!["read".into(), "write".into()]
    }

    fn checks(&self, _spec: &TestSpec) -> Vec<CheckSpec> {
        vec![CheckSpec { checker: "no-phantom-reads".into(), ..CheckSpec::default() }]
    }
}

/// Reads return only values that were written.
pub struct NoPhantomReads;

impl Checker for NoPhantomReads {
    fn name(&self) -> &str {
        "no-phantom-reads"
    }

    fn check(&self, history: &History) -> std::result::Result<Verdict, CheckError> {
        // Any invoked write may have happened (even one that timed out), so
        // every write invocation counts as a possible source.
        let written: BTreeSet<(Option<&Value>, &Value)> = history
            .ops()
            .iter()
            .filter(|o| o.f == "write" && o.kind == OpType::Invoke)
            .map(|o| (o.key.as_ref(), &o.value))
            .collect();
        let mut anomalies = Vec::new();
        let mut reads = 0;
        for op in history.ops() {
            if op.f != "read" || op.kind != OpType::Ok || op.process == Process::Nemesis {
                continue;
            }
            reads += 1;
            if !op.value.is_nil() && !written.contains(&(op.key.as_ref(), &op.value)) {
                anomalies.push(Anomaly {
                    kind: "phantom-read".into(),
                    explanation: format!(
                        "op {} (process {}) read {} from key {} but no operation ever wrote that value there",
                        op.index,
                        op.process,
                        op.value,
                        op.key.as_ref().map_or("-".to_owned(), Value::to_string)
                    ),
                    ops: vec![op.index],
                    data: serde_json::Value::Null,
                });
            }
        }
        // Without a read nothing was observed, and nothing can be valid.
        let validity = match (anomalies.is_empty(), reads) {
            (false, _) => Validity::Invalid,
            (true, 0) => Validity::Unknown,
            (true, _) => Validity::Valid,
        };
        let mut v = Verdict::new(
            "no-phantom-reads",
            validity,
            format!("{reads} reads, {} of values nobody wrote", anomalies.len()),
        );
        if reads == 0 {
            v.unknown_reason = Some("no read completed ok, so no value was observed".into());
        }
        v.anomalies = anomalies;
        Ok(v)
    }

    fn render_html(&self, _history: &History, verdict: &Verdict) -> Vec<checkers::HtmlPage> {
        if verdict.anomalies.is_empty() {
            return Vec::new();
        }
        let mut body = String::from("<h1>Phantom reads</h1>\n<ul class=\"phantom-reads\">\n");
        for a in &verdict.anomalies {
            body.push_str(&format!("<li>{}</li>\n", checkers::html::escape(&a.explanation)));
        }
        body.push_str("</ul>\n");
        vec![checkers::HtmlPage {
            name: "phantom-reads".into(),
            title: "Phantom reads".into(),
            body,
        }]
    }
}

/// A stack holding at most `capacity` elements: `push` of a value (an
/// acknowledged push took effect, so it must have found room), and `pop`,
/// which returns the top element, or nil when the stack is empty.
#[derive(Clone, Debug)]
pub struct BoundedStack {
    /// The most elements the stack holds.
    pub capacity: usize,
}

/// A stack operation, with what it observed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StackOp {
    /// Pushes the value.
    Push(Value),
    /// Pops the top: `Some(v)` when it returned `v` (nil: the stack was
    /// empty), `None` when it crashed and its result is unknown.
    Pop(Option<Value>),
}

impl SequentialModel for BoundedStack {
    type State = Vec<Value>;
    type Op = StackOp;

    fn name(&self) -> &str {
        "bounded-stack"
    }

    fn init(&self) -> Vec<Value> {
        Vec::new()
    }

    fn op(
        &self,
        f: &str,
        input: &Value,
        output: Option<&Value>,
    ) -> Result<Option<StackOp>, String> {
        match f {
            "push" => Ok(Some(StackOp::Push(input.clone()))),
            "pop" => Ok(Some(StackOp::Pop(output.cloned()))),
            other => Err(format!("a bounded stack has push and pop, not {other:?}")),
        }
    }

    fn step(&self, stack: &Vec<Value>, op: &StackOp) -> Option<Vec<Value>> {
        let mut next = stack.clone();
        match op {
            StackOp::Push(v) => {
                if next.len() == self.capacity {
                    return None;
                }
                next.push(v.clone());
            }
            // A crashed pop took the top, whatever it was, or nothing.
            StackOp::Pop(None) => {
                next.pop();
            }
            StackOp::Pop(Some(Value::Nil)) => return stack.is_empty().then_some(next),
            StackOp::Pop(Some(v)) => {
                if next.pop().as_ref() != Some(v) {
                    return None;
                }
            }
        }
        Some(next)
    }

    fn observes(&self, f: &str, _output: &Value) -> bool {
        f == "pop"
    }

    fn describe_state(&self, stack: &Vec<Value>) -> String {
        let items: Vec<String> = stack.iter().map(Value::to_string).collect();
        format!("[{}] (top last)", items.join(" "))
    }

    fn state_bytes(stack: &Vec<Value>) -> usize {
        stack.capacity() * std::mem::size_of::<Value>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checkers::Op;

    fn op(i: u64, kind: OpType, f: &str, key: i64, value: Value) -> Op {
        let mut o = Op::new(i, Process::Client(0), kind, f, value);
        o.key = Some(Value::Int(key));
        o
    }

    #[test]
    fn reads_of_written_values_are_valid_and_phantoms_are_named() {
        let ok = History::new(vec![
            op(0, OpType::Invoke, "write", 1, Value::Int(5)),
            op(1, OpType::Info, "write", 1, Value::Int(5)),
            op(2, OpType::Invoke, "read", 1, Value::Nil),
            op(3, OpType::Ok, "read", 1, Value::Int(5)),
        ]);
        assert_eq!(NoPhantomReads.check(&ok).expect("check").validity, Validity::Valid);
        let bad = History::new(vec![
            op(0, OpType::Invoke, "write", 1, Value::Int(5)),
            op(1, OpType::Ok, "write", 1, Value::Int(5)),
            op(2, OpType::Invoke, "read", 2, Value::Nil),
            op(3, OpType::Ok, "read", 2, Value::Int(5)),
        ]);
        let v = NoPhantomReads.check(&bad).expect("check");
        assert_eq!(v.validity, Validity::Invalid);
        assert_eq!(v.anomalies[0].ops, vec![3]);
        assert!(
            v.anomalies[0].explanation.contains("read 5 from key 2"),
            "{}",
            v.anomalies[0].explanation
        );
    }

    #[test]
    fn the_registry_finds_the_plugin_by_name() {
        let mut r = Registry::new();
        register(&mut r);
        let spec = TestSpec { workload: "unique-writes".into(), ..TestSpec::default() };
        let w = r.build_workload("unique-writes", &spec).expect("workload");
        assert_eq!(w.checks(&spec)[0].checker, "no-phantom-reads");
        let c = r.build_checker(&w.checks(&spec)[0]).expect("checker");
        assert_eq!(c.name(), "no-phantom-reads");
    }
}
