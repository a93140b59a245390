//! What the convergence modules' unit tests share: small histories written
//! as one tuple per completed op.

use crate::history::{History, Op, OpType, Process};
use crate::value::Value;

/// `(process, f, value)` ops, each invoked and completed `ok` at once
/// (value 0 is nil); `final-read`s on node `n<process>`.
pub(super) fn history(ops: &[(u64, &str, i64)]) -> History {
    let mut out = Vec::new();
    for &(p, f, v) in ops {
        let value = if v == 0 { Value::Nil } else { Value::Int(v) };
        let inv = if f == "write" { value.clone() } else { Value::Nil };
        let mut i = Op::new(0, Process::Client(p), OpType::Invoke, f, inv);
        let mut o = Op::new(0, Process::Client(p), OpType::Ok, f, value);
        if f == "final-read" {
            i.node = Some(format!("n{p}").into());
            o.node = i.node.clone();
        }
        out.extend([i, o]);
    }
    History::from_ops_renumbered(out)
}
