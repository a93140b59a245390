//! elle-cli's JSON histories: one JSON array of op objects, `f` optional
//! (elle-cli's transactional histories leave it out; it means `txn`), and
//! `process` optional (ops without one are one process's, as in Jepsen).

use crate::error::{HistoryError, Location};
use crate::history::{History, Op, OpType, Process};
use crate::value::{Value, shared_str};

/// Reads an elle-cli JSON history: each op at the line its element starts on,
/// processes left out numbered as one.
pub(crate) fn parse(text: &str, source: &str) -> Result<History, HistoryError> {
    let items = read_array(text, source)?;
    // Each op's line: where the n-th element of the array starts. Histories
    // written by elle-cli put one op per line, so find where each starts.
    let starts = element_start_lines(text);
    let mut ops = Vec::with_capacity(items.len());
    let mut lines = Vec::with_capacity(items.len());
    let mut unnamed = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let line = starts.get(i).copied().unwrap_or(0);
        let loc = Location::new(source, (line > 0).then_some(u64::from(line)));
        let (op, named) = read_op(item, i, &loc)?;
        if !named {
            unnamed.push(i);
        }
        ops.push(op);
        lines.push(line);
    }
    indices_increase(&ops, &lines, source)?;
    let process = super::name_unnamed_processes(&mut ops, &unnamed);
    let mut history = History::with_lines(ops, lines, source);
    if let Some(p) = process {
        history.add_note(super::unnamed_note(source, unnamed.len(), "\"process\"", p), false);
    }
    Ok(history)
}

/// The text as one JSON array, or the syntax error at its place in the text.
fn read_array(text: &str, source: &str) -> Result<Vec<serde_json::Value>, HistoryError> {
    // Integers beyond 64 bits stay exact (see `formats::bigint`).
    let protected = super::bigint::protect_big_integers(text);
    serde_json::from_str(&protected).map_err(|e| {
        // Positions are the text's as written: where integers were
        // protected, the error is taken from the text itself (it fails
        // there too, at the same place or earlier).
        let e = match &protected {
            std::borrow::Cow::Owned(_) => {
                serde_json::from_str::<Vec<serde_json::Value>>(text).err().unwrap_or(e)
            }
            std::borrow::Cow::Borrowed(_) => e,
        };
        HistoryError::Syntax {
            location: {
                let (line, column) = super::json_position(text, &e, 1, 1);
                Location::new(source, Some(line)).column(column)
            },
            expected: "a JSON array of operation objects".into(),
            found: super::json_message(&e),
        }
    })
}

/// The `i`-th element of the array (at `loc`) as an op, and whether it
/// named its process.
fn read_op(item: serde_json::Value, i: usize, loc: &Location) -> Result<(Op, bool), HistoryError> {
    let syntax = |field: &str, expected: &str, found: String| HistoryError::Syntax {
        location: loc.clone().field(field),
        expected: expected.into(),
        found,
    };
    let obj = match item {
        serde_json::Value::Object(o) => o,
        other => {
            return Err(HistoryError::Syntax {
                location: loc.clone(),
                expected: "an operation object".into(),
                found: short(&other.to_string()),
            });
        }
    };
    let field = |name: &str| obj.get(name);
    let Some(kind) = field("type").and_then(|v| v.as_str()).and_then(OpType::parse) else {
        return Err(syntax(
            "type",
            "\"invoke\", \"ok\", \"fail\" or \"info\"",
            field("type").map_or("nothing".into(), |v| v.to_string()),
        ));
    };
    // elle-cli's own examples leave the process out; Jepsen's history
    // library reads that as one process, numbered below.
    let (process, named) = match field("process") {
        None | Some(serde_json::Value::Null) => (Process::Client(0), false),
        Some(serde_json::Value::Number(n)) if n.as_u64().is_some() => {
            (Process::Client(n.as_u64().unwrap_or_default()), true)
        }
        Some(serde_json::Value::String(s)) if s == "nemesis" => (Process::Nemesis, true),
        Some(other) => {
            return Err(syntax(
                "process",
                "a non-negative number or \"nemesis\"",
                other.to_string(),
            ));
        }
    };
    let value = match field("value") {
        Some(v) => serde_json::from_value::<Value>(v.clone())
            .map_err(|e| syntax("value", "a JSON value", e.to_string()))?,
        None => Value::Nil,
    };
    let index = match field("index") {
        Some(v) => {
            v.as_u64().ok_or_else(|| syntax("index", "a non-negative integer", v.to_string()))?
        }
        None => i as u64,
    };
    let f = match field("f") {
        Some(serde_json::Value::String(s)) => shared_str(s),
        Some(other) => return Err(syntax("f", "a string", other.to_string())),
        None => arcstr::literal!("txn"),
    };
    let error = match field("error") {
        Some(v) => serde_json::from_value::<Value>(v.clone()).ok(),
        None => None,
    };
    let op = Op {
        index,
        time: field("time").and_then(serde_json::Value::as_u64),
        process,
        kind,
        f,
        value,
        key: None,
        node: field("node").and_then(|v| v.as_str()).map(shared_str),
        error,
    };
    Ok((op, named))
}

/// elle-cli's own test data sometimes numbers from 1; order is what
/// matters, so only insist that indices increase.
fn indices_increase(ops: &[Op], lines: &[u32], source: &str) -> Result<(), HistoryError> {
    for w in 1..ops.len() {
        if ops[w].index <= ops[w - 1].index {
            return Err(HistoryError::Invalid {
                location: Location::new(source, Some(u64::from(lines[w]))).field("index"),
                message: format!(
                    "index {} does not increase (previous op has {})",
                    ops[w].index,
                    ops[w - 1].index
                ),
            });
        }
    }
    Ok(())
}

/// 1-based line of each top-level element of the array, objects or not
/// (the first element that is not an object is reported at its line).
fn element_start_lines(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let (mut depth, mut line, mut in_str, mut escaped) = (0u32, 1u32, false, false);
    // After the array's `[` or a `,` in it: the next non-space character
    // starts an element.
    let mut expecting = false;
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        if expecting && depth == 1 && !c.is_whitespace() && c != ']' {
            out.push(line);
            expecting = false;
        }
        match c {
            '"' => in_str = true,
            '[' | '{' => {
                depth += 1;
                expecting = depth == 1;
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expecting = true,
            _ => {}
        }
    }
    out
}

fn short(s: &str) -> String {
    if s.len() > 60 { format!("{}...", &s[..s.floor_char_boundary(60)]) } else { s.to_owned() }
}

pub(crate) fn write(history: &History) -> String {
    let mut out = String::from("[");
    for (i, op) in history.ops().iter().enumerate() {
        if i > 0 {
            out.push_str(",\n ");
        }
        out.push_str(&serde_json::to_string(op).unwrap_or_default());
    }
    out.push_str("]\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_elle_cli_append_history_without_f() {
        let text = "[{\"index\":0,\"process\":0,\"type\":\"invoke\",\"value\":[[\"append\",1,1]]},\n \
                    {\"index\":1,\"process\":0,\"type\":\"fail\",\"value\":[[\"append\",1,1]]}]\n";
        let h = parse(text, "x.json").expect("parse");
        assert_eq!(h.len(), 2);
        assert_eq!(h.ops()[0].f, "txn");
        assert_eq!(h.ops()[1].kind, OpType::Fail);
    }

    /// serde_json's recursion limit (128) bounds the array, its op objects
    /// and our `Value` read from them: deep nesting is an error, not a stack
    /// overflow.
    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let op = |depth: usize| {
            format!(
                "[{{\"process\":0,\"type\":\"invoke\"}},\n {{\"process\":0,\"type\":\"ok\",\"value\":{}1{}}}]",
                "[".repeat(depth),
                "]".repeat(depth)
            )
        };
        let err = parse(&op(10_000), "x.json").expect_err("too deep").to_string();
        assert!(err.starts_with("x.json:2:"), "{err}");
        assert!(err.contains("recursion limit exceeded"), "{err}");
        assert!(parse(&op(60), "x.json").is_ok());
    }

    /// elle-cli's examples leave `process` out: such ops are one process's,
    /// numbered past the others, and the history says so.
    #[test]
    fn ops_without_process_are_one_process() {
        let text = "[{\"process\":4,\"type\":\"invoke\",\"value\":[[\"r\",1,null]]},\n \
                    {\"process\":4,\"type\":\"ok\",\"value\":[[\"r\",1,[]]]},\n \
                    {\"type\":\"invoke\",\"value\":[[\"append\",1,1]]},\n \
                    {\"type\":\"ok\",\"process\":null,\"value\":[[\"append\",1,1]]}]";
        let h = parse(text, "x.json").expect("parse");
        assert_eq!(h.ops()[2].process, Process::Client(5));
        assert_eq!(h.ops()[3].process, Process::Client(5));
        assert_eq!(h.ops()[0].process, Process::Client(4));
        let notes: Vec<&str> = h.notes().iter().map(|n| n.text.as_str()).collect();
        assert_eq!(
            notes,
            ["x.json: 2 ops have no \"process\"; read as one process, 5, as Jepsen does"]
        );
        assert!(h.pairs().is_ok());
    }

    #[test]
    fn bad_process_names_line() {
        let text = "[{\"process\":0,\"type\":\"invoke\"},\n{\"process\":-2,\"type\":\"ok\"}]";
        let err = parse(text, "x.json").expect_err("bad").to_string();
        assert!(err.starts_with("x.json:2 (field `process`)"), "{err}");
    }
}
