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

use super::edn_text::{Top, split};
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
        // The value is the rest of the line after the function token (which
        // is a slice of `rest`: searching for its text could find it inside
        // the type, as `:in` inside `:invoke`).
        let f_end = f_tok.as_ptr() as usize - rest.as_ptr() as usize + f_tok.len();
        let value_text = rest[f_end..].trim();
        let value = if value_text.is_empty() {
            Value::Nil
        } else {
            let edn = read_value(line, value_text).map_err(|(column, expected, found)| {
                HistoryError::Syntax {
                    location: loc().field("value").column(column),
                    expected,
                    found,
                }
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

/// Reads the EDN value that ends a log `line` (`value_text`, a part of it):
/// its first form, as the EDN reader reads forms, bounds and all. An error
/// is (1-based column in the line, what was expected, what was found).
fn read_value(line: &str, value_text: &str) -> Result<edn_format::Value, (u64, String, String)> {
    // Columns count characters, as the EDN reader's do.
    let offset = value_text.as_ptr() as usize - line.as_ptr() as usize;
    let before = line[..offset].chars().count() as u64;
    let scanned = split(value_text, Top::Sequence)
        .map_err(|e| (before + e.column(value_text), e.expected, e.found))?;
    let Some(&(form, form_line)) = scanned.forms.first() else {
        return Ok(edn_format::Value::Nil);
    };
    scanned
        .parse(form, form_line)
        .map_err(|e| (before + e.column, "an EDN value".to_owned(), e.message))
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

    /// Regression: the value's column was computed from edn-format's line
    /// count (always 1) instead of its column, and nesting was unbounded.
    #[test]
    fn value_errors_name_their_column_and_deep_values_are_refused() {
        let err = parse("INFO  jepsen.util - 3\t:invoke\t:write\t[1 é @]\n", "x.log")
            .expect_err("bad value")
            .to_string();
        assert_eq!(
            err,
            "x.log:1:43 (field `value`): expected an EDN value, found Unexpected character '@'"
        );
        // A big integer ending the line, and one right before the next form.
        let h = parse(
            "INFO  jepsen.util - 3\t:ok\t:read\t123456789012345678901234567\n\
             INFO  jepsen.util - 3\t:ok\t:read\t[123456789012345678901234567\"x\"]\n",
            "x.log",
        )
        .expect("big integers");
        assert!(h.ops()[0].value.to_string().contains("123456789012345678901234567"));
        assert!(h.ops()[1].value.to_string().contains("123456789012345678901234567"));
        let deep = format!(
            "INFO  jepsen.util - 3\t:invoke\t:write\t{}1{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let err = parse(&deep, "x.log").expect_err("too deep").to_string();
        assert!(err.starts_with("x.log:1:1038 (field `value`)"), "{err}");
        assert!(err.contains("at depth 1001"), "{err}");
    }

    /// Regression: the value started after the first occurrence of the
    /// function's text in the line, so `:in` was found inside `:invoke` and
    /// the value read as `voke :in 5`.
    #[test]
    fn a_function_named_like_part_of_the_type_keeps_its_value() {
        let h = parse("INFO jepsen.util - 3 :invoke :in 5\n", "x.log").expect("parse");
        assert_eq!(h.ops()[0].f, "in");
        assert_eq!(h.ops()[0].value, Value::Int(5));
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
