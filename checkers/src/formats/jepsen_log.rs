//! Jepsen's text log: `INFO  jepsen.util - <process> :<type> :<f> <value>`,
//! the form in which the etcd histories of Horn & Kroening's benchmark (and
//! Porcupine's copy of it) survive.
//!
//! Two conventions of that data are made explicit here:
//! - `:fail :read :timed-out` is a read whose result nobody saw: we record it
//!   as an `info` completion with error `:timed-out` (an unknown read);
//! - `:info ... :timed-out` keeps the invocation's value and records the
//!   error, since `:timed-out` is not the operation's value.
//!
//! Operations still pending at the end of the log stay without completion,
//! which the history model treats as `info`.

use crate::error::{HistoryError, Location};
use crate::history::{History, Op, OpType, Process};
use crate::value::Value;

pub(crate) fn parse(text: &str, source: &str) -> Result<History, HistoryError> {
    let mut ops: Vec<Op> = Vec::new();
    let mut lines = Vec::new();
    // Value of each process's pending invocation, to give an info completion
    // the value it was invoked with.
    let mut pending: rustc_hash::FxHashMap<Process, Value> = Default::default();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        let Some(at) = line.find("jepsen.util") else { continue };
        let rest = line[at + "jepsen.util".len()..].trim_start();
        let Some(rest) = rest.strip_prefix('-') else { continue };
        let mut fields = rest.split_whitespace();
        let loc = || Location::new(source, Some(line_no));
        // Other jepsen.util messages ("Relative time begins now") are not ops:
        // an op line starts with a process.
        let process = match fields.next() {
            Some(":nemesis") => Process::Nemesis,
            Some(p) => match p.parse::<u64>() {
                Ok(n) => Process::Client(n),
                Err(_) => continue,
            },
            None => continue,
        };
        let kind_tok = fields.next().unwrap_or("");
        let kind = kind_tok.strip_prefix(':').and_then(OpType::parse).ok_or_else(|| {
            HistoryError::Syntax {
                location: loc().field("type"),
                expected: ":invoke, :ok, :fail or :info".into(),
                found: if kind_tok.is_empty() {
                    "the end of the line".into()
                } else {
                    kind_tok.into()
                },
            }
        })?;
        let f_tok = fields.next().unwrap_or("");
        let f = f_tok.strip_prefix(':').filter(|f| !f.is_empty()).ok_or_else(|| {
            HistoryError::Syntax {
                location: loc().field("f"),
                expected: "a function keyword such as :read".into(),
                found: if f_tok.is_empty() { "the end of the line".into() } else { f_tok.into() },
            }
        })?;
        // The value is the rest of the line after the function token.
        let f_end = rest.find(f_tok).map_or(rest.len(), |p| p + f_tok.len());
        let value_text = rest[f_end..].trim();
        let value = if value_text.is_empty() {
            Value::Nil
        } else {
            let edn = edn_format::parse_str(value_text).map_err(|e| HistoryError::Syntax {
                location: loc()
                    .field("value")
                    .column((line.len() - rest[f_end..].len() + e.col) as u64),
                expected: "an EDN value".into(),
                found: e.error.to_string(),
            })?;
            super::edn_to_value(edn)
        };
        let mut op = Op::new(ops.len() as u64, process, kind, f, value);
        let timed_out = matches!(&op.value, Value::Keyword(k) if k == "timed-out");
        match kind {
            OpType::Invoke => {
                pending.insert(process, op.value.clone());
            }
            _ => {
                let invoked = pending.remove(&process);
                if timed_out {
                    op.error = Some(op.value.clone());
                    op.value = invoked.unwrap_or_default();
                    if kind == OpType::Fail && f == "read" {
                        op.kind = OpType::Info;
                    }
                }
            }
        }
        ops.push(op);
        lines.push(u32::try_from(line_no).unwrap_or(u32::MAX));
    }
    Ok(History::with_lines(ops, lines, source))
}

pub(crate) fn write(history: &History) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for op in history.ops() {
        let process = match op.process {
            Process::Client(p) => p.to_string(),
            Process::Nemesis => ":nemesis".into(),
        };
        let value = match (&op.error, op.kind) {
            (Some(e), OpType::Info | OpType::Fail) => e.to_string(),
            _ => op.value.to_string(),
        };
        let _ = writeln!(
            out,
            "INFO  jepsen.util - {process}\t:{}\t:{}\t{value}",
            op.kind.as_str(),
            op.f
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tabs_and_spaces_and_timeouts() {
        let text = "INFO  jepsen.util - Relative time begins now\n\
                    INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2]\n\
                    INFO  jepsen.util - 3   :info   :cas    :timed-out\n\
                    INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                    INFO  jepsen.util - 0\t:fail\t:read\t:timed-out\n";
        let h = parse(text, "etcd.log").expect("parse");
        assert_eq!(h.len(), 4);
        assert_eq!(h.ops()[0].value, Value::list([Value::Int(1), Value::Int(2)]));
        assert_eq!(h.ops()[1].kind, OpType::Info);
        assert_eq!(h.ops()[1].value, h.ops()[0].value);
        assert_eq!(h.ops()[1].error, Some(Value::keyword("timed-out")));
        assert_eq!(h.ops()[3].kind, OpType::Info, "a timed-out read is an unknown read");
    }

    #[test]
    fn bad_type_is_reported_with_line() {
        let err =
            parse("INFO jepsen.util - 1 :done :read nil\n", "x.log").expect_err("bad").to_string();
        assert_eq!(
            err,
            "x.log:1 (field `type`): expected :invoke, :ok, :fail or :info, found :done"
        );
    }
}
