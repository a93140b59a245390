//! faultline's own history format: JSON Lines, one operation per line.
//!
//! The schema is documented in `docs/history-format.md`. Lines are written
//! as operations happen, so a run that is killed leaves a valid prefix; the
//! reader therefore accepts a final line that was cut off mid-write (no
//! trailing newline, not valid JSON) and reports it as a warning instead of
//! failing.

use serde::Deserialize;

use crate::error::{HistoryError, Location};
use crate::history::{History, Op, OpType, Process};
use crate::value::{ArcStr, Value};

/// The version of the JSONL schema this code writes and reads.
pub const JSONL_SCHEMA_VERSION: u64 = 1;

/// An optional first line naming the schema: `{"format":"faultline-history","version":1}`.
#[derive(Deserialize)]
struct Header {
    format: String,
    version: u64,
}

/// One line as written by any tool: `index` and `f` may be left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonOp {
    index: Option<u64>,
    time: Option<u64>,
    process: Process,
    #[serde(rename = "type")]
    kind: OpType,
    #[serde(default, deserialize_with = "crate::value::deserialize_shared_opt")]
    f: Option<ArcStr>,
    #[serde(default)]
    value: Value,
    key: Option<Value>,
    #[serde(default, deserialize_with = "crate::value::deserialize_shared_opt")]
    node: Option<ArcStr>,
    error: Option<Value>,
}

/// Lines parsed together on every core before their ops join the history:
/// large enough to keep the cores busy, small enough that the parsed wave
/// waiting to be appended costs a few megabytes, not a second copy of the
/// history's ops.
const WAVE: usize = 1 << 16;
/// Lines per parallel task within a wave.
const CHUNK: usize = 2048;

/// Parses one line, keeping integers beyond 64 bits exact (see
/// `formats::bigint`).
fn parse_line(line: &str) -> Result<JsonOp, serde_json::Error> {
    match super::bigint::protect_big_integers(line) {
        std::borrow::Cow::Borrowed(line) => serde_json::from_str(line),
        std::borrow::Cow::Owned(protected) => serde_json::from_str(&protected).map_err(|e| {
            // The error of the line as written names what the user wrote
            // (a big integer where a small one belongs), not our encoding.
            serde_json::from_str::<JsonOp>(line).err().unwrap_or(e)
        }),
    }
}

/// Reads a faultline JSONL history: schema lines, then one op per line. A
/// last line cut off mid-write is left out with a note that the history is
/// incomplete.
pub(crate) fn parse(text: &str, source: &str) -> Result<History, HistoryError> {
    let mut ops = Vec::new();
    let mut lines = Vec::new();
    let ends_with_newline = text.ends_with('\n');
    let total_lines = text.lines().count() as u64;
    let mut rest = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i as u64 + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
        .peekable();
    skip_headers(&mut rest, source)?;
    // serde_json takes about two microseconds per op, so a large
    // history is parsed on every core, a wave of lines at a time; the ops
    // then join the history in file order, which keeps the first bad line
    // the one reported and the checks below sequential.
    let mut wave: Vec<(u64, &str)> = Vec::with_capacity(WAVE);
    let mut torn: Option<u64> = None;
    loop {
        wave.clear();
        wave.extend(rest.by_ref().take(WAVE));
        if wave.is_empty() {
            break;
        }
        for (&(line_no, line), op) in wave.iter().zip(parse_wave(&wave)) {
            let op: JsonOp = match op {
                Ok(op) => op,
                Err(e) if !ends_with_newline && line_no == total_lines && e.is_eof() => {
                    // The writer was killed mid-line: everything before
                    // it is intact, but the history is not the whole
                    // file, and the verdict must say so.
                    torn = Some(line_no);
                    break;
                }
                Err(e) => return Err(line_error(text, source, (line_no, line), &e)),
            };
            let index = op.index.unwrap_or(ops.len() as u64);
            if let Some(prev) = ops.last().map(|o: &Op| o.index)
                && index <= prev
            {
                return Err(HistoryError::Invalid {
                    location: Location::new(source, Some(line_no)).field("index"),
                    message: format!("index {index} does not increase (previous op has {prev})"),
                });
            }
            ops.push(Op {
                index,
                time: op.time,
                process: op.process,
                kind: op.kind,
                f: op.f.unwrap_or(arcstr::literal!("txn")),
                value: op.value,
                key: op.key,
                node: op.node,
                error: op.error,
            });
            lines.push(u32::try_from(line_no).unwrap_or(u32::MAX));
        }
    }
    let judged = ops.len();
    let mut history = History::with_lines(ops, lines, source);
    if let Some(line) = torn {
        history.add_note(
            format!(
                "{source}:{line}: last line incomplete (cut off mid-write), ignored; only the \
                 {judged} ops before it are judged"
            ),
            true,
        );
    }
    Ok(history)
}

/// Skips the schema lines that come before the first op, refusing another
/// format or a newer version.
fn skip_headers<'t>(
    rest: &mut std::iter::Peekable<impl Iterator<Item = (u64, &'t str)>>,
    source: &str,
) -> Result<(), HistoryError> {
    while let Some(&(line_no, line)) = rest.peek() {
        let Some(h) = line
            .contains("\"format\"")
            .then(|| serde_json::from_str::<Header>(line).ok())
            .flatten()
        else {
            break;
        };
        if h.format != "faultline-history" || h.version > JSONL_SCHEMA_VERSION {
            return Err(HistoryError::Invalid {
                location: Location::new(source, Some(line_no)).field("version"),
                message: format!(
                    "this is {} version {}; this faultline reads faultline-history up to version {}",
                    h.format, h.version, JSONL_SCHEMA_VERSION
                ),
            });
        }
        rest.next();
    }
    Ok(())
}

/// Parses a wave of lines, in chunks on every core, into results in line
/// order.
fn parse_wave(wave: &[(u64, &str)]) -> impl Iterator<Item = Result<JsonOp, serde_json::Error>> {
    use rayon::prelude::*;
    let parse_chunk = |chunk: &[(u64, &str)]| -> Vec<Result<JsonOp, serde_json::Error>> {
        chunk.iter().map(|(_, line)| parse_line(line)).collect()
    };
    // A wave of one chunk stays on this thread: handing it to the pool
    // costs more than it saves.
    let parsed: Vec<Vec<Result<JsonOp, serde_json::Error>>> = if wave.len() <= CHUNK {
        vec![parse_chunk(wave)]
    } else {
        wave.par_chunks(CHUNK).map(parse_chunk).collect()
    };
    parsed.into_iter().flatten()
}

/// The error for a line of `text` that is not an op, at its line and
/// column (counted from the start of the line as written, before the
/// whitespace trimmed off it), naming the field when serde names one.
fn line_error(
    text: &str,
    source: &str,
    (line_no, line): (u64, &str),
    e: &serde_json::Error,
) -> HistoryError {
    let offset = line.as_ptr() as usize - text.as_ptr() as usize;
    let line_start = text[..offset].rfind('\n').map_or(0, |p| p + 1);
    let first_column = text[line_start..offset].chars().count() as u64 + 1;
    let (_, column) = super::json_position(line, e, line_no, first_column);
    let mut location = Location::new(source, Some(line_no)).column(column);
    if let Some(f) = field_of(e) {
        location = location.field(f);
    }
    // Unlike Jepsen's EDN and elle-cli's JSON, where a missing
    // process means one process, our format names it on every
    // line: the recorder always knows it, so its absence means
    // the file was written by something else.
    let found = if e.to_string().starts_with("missing field `process`") {
        "no \"process\"; faultline's JSONL requires it on every op (Jepsen EDN \
         and elle-cli JSON read a missing process as one process, JSONL does not)"
            .to_owned()
    } else {
        super::json_message(e)
    };
    HistoryError::Syntax {
        location,
        expected: "one operation per line: a JSON object with at least \
                   \"process\" and \"type\" (see docs/history-format.md)"
            .into(),
        found,
    }
}

/// Names the field a serde error is about, when its message quotes one.
fn field_of(e: &serde_json::Error) -> Option<String> {
    let msg = e.to_string();
    let start = msg.find("field `")? + "field `".len();
    let end = msg[start..].find('`')? + start;
    Some(msg[start..end].to_owned())
}

/// Writes one op as a JSONL line (with its newline) into `out`.
pub fn write_jsonl_line(op: &Op, out: &mut Vec<u8>) {
    // Serialising our own types cannot fail: every map key is a string.
    if serde_json::to_writer(&mut *out, op).is_ok() {
        out.push(b'\n');
    }
}

pub(crate) fn write(history: &History) -> String {
    let mut out = Vec::with_capacity(history.len() * 96);
    out.extend_from_slice(
        format!("{{\"format\":\"faultline-history\",\"version\":{JSONL_SCHEMA_VERSION}}}\n")
            .as_bytes(),
    );
    for op in history.ops() {
        write_jsonl_line(op, &mut out);
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_minimal_lines_and_defaults_index() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n\
                    {\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":3,\"time\":10}\n";
        let h = parse(text, "t.jsonl").expect("parse");
        assert_eq!(h.len(), 2);
        assert_eq!(h.ops()[1].index, 1);
        assert_eq!(h.ops()[1].value, Value::Int(3));
        assert_eq!(h.ops()[1].time, Some(10));
    }

    #[test]
    fn bad_type_names_line_and_field() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"type\":\"done\",\"f\":\"read\"}\n";
        let err = parse(text, "t.jsonl").expect_err("bad type").to_string();
        assert!(err.starts_with("t.jsonl:2:"), "{err}");
        assert!(err.contains("done"), "{err}");
    }

    /// Lines are parsed in parallel chunks; the history keeps file order
    /// and the first bad line is the one reported, whichever chunk it is in.
    #[test]
    fn chunks_keep_file_order_and_the_first_error() {
        let line = |i: usize| {
            format!("{{\"process\":{},\"type\":\"invoke\",\"f\":\"w\",\"value\":{i}}}\n", i)
        };
        let n = 3 * CHUNK + 17;
        let text: String = (0..n).map(line).collect();
        let h = parse(&text, "t.jsonl").expect("parse");
        assert_eq!(h.len(), n);
        assert!(h.ops().iter().enumerate().all(|(i, op)| op.value == Value::Int(i as i64)));
        let bad = |text: &mut String, at: usize| {
            let start: usize = (0..at).map(|i| line(i).len()).sum();
            text.replace_range(start..start + 1, "[");
        };
        let mut broken = text.clone();
        bad(&mut broken, 2 * CHUNK + 5);
        bad(&mut broken, 3 * CHUNK + 2);
        let err = parse(&broken, "t.jsonl").expect_err("bad lines").to_string();
        assert!(err.starts_with(&format!("t.jsonl:{}:", 2 * CHUNK + 6)), "{err}");
    }

    #[test]
    fn schema_line_is_skipped_and_a_newer_version_refused() {
        let op = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n";
        let ours = format!("\n{{\"format\":\"faultline-history\",\"version\":1}}\n{op}");
        assert_eq!(parse(&ours, "t.jsonl").expect("parse").ops()[0].f, "read");
        let newer = format!("{{\"format\":\"faultline-history\",\"version\":9}}\n{op}");
        let err = parse(&newer, "t.jsonl").expect_err("newer schema").to_string();
        assert!(err.starts_with("t.jsonl:1 (field `version`)"), "{err}");
    }

    /// serde_json stops at 128 levels of nesting, and our `Value`
    /// deserialiser goes through that limit (it asks serde_json for each
    /// element), so a value nested ten thousand deep is an error at its line,
    /// not a stack overflow.
    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let op = |open: &str, close: &str, depth: usize| {
            format!(
                "{{\"process\":0,\"type\":\"invoke\",\"f\":\"r\"}}\n\
                 {{\"process\":0,\"type\":\"ok\",\"f\":\"r\",\"value\":{}1{}}}\n",
                open.repeat(depth),
                close.repeat(depth)
            )
        };
        for (open, close) in [("[", "]"), ("{\"a\":", "}"), ("{\"$set\":[", "]}")] {
            let err = parse(&op(open, close, 10_000), "t.jsonl").expect_err(open).to_string();
            assert!(err.starts_with("t.jsonl:2:"), "{err}");
            assert!(err.contains("recursion limit exceeded"), "{err}");
            assert!(parse(&op(open, close, 60), "t.jsonl").is_ok(), "{open}");
        }
    }

    /// JSONL keeps `process` required (the recorder always knows it), and
    /// says so where Jepsen's formats would read one process.
    #[test]
    fn a_missing_process_is_an_error_that_says_it_is_required() {
        let text =
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"r\"}\n{\"type\":\"ok\",\"f\":\"r\"}\n";
        let err = parse(text, "t.jsonl").expect_err("no process").to_string();
        assert!(err.starts_with("t.jsonl:2:"), "{err}");
        assert!(err.contains("(field `process`)"), "{err}");
        assert!(err.contains("requires it on every op"), "{err}");
    }

    #[test]
    fn torn_last_line_is_dropped_not_fatal() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"ty";
        let h = parse(text, "t.jsonl").expect("parse");
        assert_eq!(h.len(), 1);
        // Regression: the torn line was dropped without a word, so a
        // truncated file was judged as if it were whole.
        assert_eq!(h.notes().len(), 1);
        assert!(h.notes()[0].incomplete);
        assert_eq!(
            h.notes()[0].text,
            "t.jsonl:2: last line incomplete (cut off mid-write), ignored; only the 1 ops before \
             it are judged"
        );
    }

    /// Regression: integers beyond 64 bits became floats (or, between
    /// i64::MAX and u64::MAX, were refused), so 10^30 + 1 equalled 10^30.
    #[test]
    fn integers_beyond_64_bits_stay_exact() {
        let text = concat!(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1000000000000000000000000000000}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1000000000000000000000000000001}\n",
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":18446744073709551615}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":[-99999999999999999999,{\"$bigint\":\"007\"}]}\n",
        );
        let h = parse(text, "t.jsonl").expect("parse");
        let values: Vec<String> = h.ops().iter().map(|o| o.value.to_string()).collect();
        assert_eq!(
            values,
            [
                "1000000000000000000000000000000N",
                "1000000000000000000000000000001N",
                "18446744073709551615N",
                "[-99999999999999999999N 7]"
            ]
        );
        assert_ne!(h.ops()[0].value, h.ops()[1].value);
        // And back: written as {"$bigint": ...}, read as the same values.
        let back = parse(&write(&h), "w.jsonl").expect("parse");
        assert_eq!(back.ops(), h.ops());
        // A big integer where a small one belongs is an error naming it.
        let err = parse(
            "{\"index\":100000000000000000000000,\"process\":0,\"type\":\"invoke\"}\n",
            "t.jsonl",
        )
        .expect_err("index beyond 64 bits")
        .to_string();
        assert!(err.starts_with("t.jsonl:1:"), "{err}");
        assert!(err.contains("expected u64"), "{err}");
    }

    #[test]
    fn round_trips_through_writer() {
        let mut op =
            Op::new(0, Process::Nemesis, OpType::Info, "start-partition", Value::str("majority"));
        op.time = Some(5);
        let h = History::new(vec![op]);
        let text = write(&h);
        let back = parse(&text, "w.jsonl").expect("parse");
        assert_eq!(back.ops(), h.ops());
    }
}
