//! History formats: reading and writing every format faultline speaks, and
//! telling them apart.
//!
//! | format | file | notes |
//! |---|---|---|
//! | `jsonl` | `history.jsonl` | ours: one JSON object per line, appendable during a run |
//! | `edn` | Jepsen `history.edn` | a vector, a list or a sequence of op maps |
//! | `jepsen-log` | Jepsen's `jepsen.log` | `INFO jepsen.util - 3 :ok :read 1` lines |
//! | `porcupine-kv` | Porcupine's kv data | EDN op maps with `:key` |
//! | `elle-json` | elle-cli's JSON | one JSON array of op objects |

mod bigint;
mod edn;
mod edn_fast;
mod edn_text;
mod elle_json;
mod jepsen_log;
mod jsonl;
pub(crate) mod register_lines;
pub(crate) mod txn_lines;

use std::path::Path;
use std::str::FromStr;

use crate::error::HistoryError;
use crate::history::{History, Op, Process};
use edn_text::Opening;

pub use edn::edn_to_value;
pub use edn_text::MAX_DEPTH as MAX_EDN_DEPTH;
pub use jsonl::{JSONL_SCHEMA_VERSION, write_jsonl_line};

/// A history file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// faultline's JSON Lines.
    Jsonl,
    /// Jepsen's `history.edn`.
    Edn,
    /// Jepsen's text log (`INFO jepsen.util - ...`), as in Porcupine's etcd data.
    JepsenLog,
    /// Porcupine's key-value histories (EDN maps with `:key`).
    PorcupineKv,
    /// elle-cli's JSON: one array of op objects.
    ElleJson,
}

impl Format {
    /// Every format, in the order detection tries them.
    pub const ALL: [Format; 5] =
        [Format::Jsonl, Format::Edn, Format::JepsenLog, Format::PorcupineKv, Format::ElleJson];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::JepsenLog => "jepsen-log",
            Format::PorcupineKv => "porcupine-kv",
            Format::ElleJson => "elle-json",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
            format!("unknown history format {s:?}; known formats: {}", names.join(", "))
        })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Guesses the format from how the text opens.
///
/// Each format has an unmistakable start: Jepsen logs name `jepsen.util` on
/// their first line; JSON objects open with a string key, EDN maps with a
/// keyword; a JSON array of objects is elle-cli's, an EDN vector or list of
/// maps (Knossos writes lists) a Jepsen history; EDN op maps carrying `:key`
/// are Porcupine's kv histories. Before the first form, whatever Clojure's
/// reader skips is skipped: whitespace, commas, `;` comments, `#_`
/// discarded forms, `^` metadata.
pub fn detect(text: &str) -> Option<Format> {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with(';'))?;
    if first.contains("jepsen.util") {
        return Some(Format::JepsenLog);
    }
    // An EDN op map is Porcupine's when its line names a `:key`.
    let edn_at = |at: usize| {
        let line = text[at..].lines().next().unwrap_or_default();
        if line.contains(":key ") || line.contains(":key\t") {
            Format::PorcupineKv
        } else {
            Format::Edn
        }
    };
    match edn_text::opening(text)? {
        Opening::Map { json: true, .. } => Some(Format::Jsonl),
        Opening::Map { json: false, at } => Some(edn_at(at)),
        // JSON has arrays, not lists.
        Opening::Container { list, first: Some((true, _)) } => (!list).then_some(Format::ElleJson),
        Opening::Container { first: Some((false, at)), .. } => Some(edn_at(at)),
        // An empty vector or list: EDN's reader says it holds no ops.
        Opening::Container { first: None, .. } => Some(Format::Edn),
    }
}

/// Parses `text` (read from `source`, for error messages) in `format`, or in
/// the detected format when `format` is `None`.
pub fn parse(text: &str, source: &str, format: Option<Format>) -> Result<History, HistoryError> {
    let format = match format {
        Some(f) => f,
        None => detect(text).ok_or_else(|| {
            if text.trim().is_empty() {
                HistoryError::Empty(source.to_owned())
            } else {
                HistoryError::UnknownFormat {
                    path: source.to_owned(),
                    hint: format!(
                        "it starts with {:?}",
                        text.trim_start().chars().take(40).collect::<String>()
                    ),
                }
            }
        })?,
    };
    let history = match format {
        Format::Jsonl => jsonl::parse(text, source)?,
        Format::Edn | Format::PorcupineKv => edn::parse(text, source)?,
        Format::JepsenLog => jepsen_log::parse(text, source)?,
        Format::ElleJson => elle_json::parse(text, source)?,
    };
    if history.is_empty() {
        return Err(HistoryError::Empty(source.to_owned()));
    }
    Ok(history)
}

/// Reads an EDN history with the general reader only, never the fast one:
/// the baseline the fast reader is measured against (`benches/formats.rs`)
/// and the reference the differential tests and fuzz target compare it to.
/// Gives exactly what [`parse`] gives in [`Format::Edn`], more slowly.
#[doc(hidden)]
pub fn parse_edn_general(text: &str, source: &str) -> Result<History, HistoryError> {
    let history = edn::parse_general(text, source)?;
    if history.is_empty() {
        return Err(HistoryError::Empty(source.to_owned()));
    }
    Ok(history)
}

/// Files at least this large in Jepsen's EDN are read block by block
/// (`edn_fast::STREAM_BLOCK_BYTES` at a time). Small blocks, each read into
/// the memory the one before used, spare the kernel clearing fresh pages
/// for the whole text: with 4 MiB rather than the file in one piece, a
/// check of 100,000 register ops (18 MB of EDN) took 58.0 ms instead of
/// 62.5 (median of 40, alternating), with no change on a million
/// transactions.
const STREAM_MIN_BYTES: u64 = 4 << 20;

/// Reads and parses the history file at `path`.
///
/// A large regular file in Jepsen's EDN is read block by block, so its text
/// never lies in memory whole beside the history: the text of a million
/// list-append transactions is 300 MB beside a history of 1.2 GiB. When
/// the fast reader cannot read it that way, the whole file is read as any
/// other, which gives the same history or the same error.
pub fn read_path(path: &Path, format: Option<Format>) -> Result<History, HistoryError> {
    use std::io::{Read, Seek};
    let source = path.display().to_string();
    let io = |e| HistoryError::Io { path: source.clone(), source: e };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if meta.is_file() && meta.len() >= STREAM_MIN_BYTES {
        let edn = is_edn(&mut file, format).map_err(io)?;
        // Telling the format read the file's first kilobytes: whatever
        // reads it next starts again from its first byte.
        file.rewind().map_err(io)?;
        if edn {
            if let Some(history) =
                edn::parse_stream(&mut file, Some(meta.len()), &source).map_err(io)?
            {
                return Ok(history);
            }
            file.rewind().map_err(io)?;
        }
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(io)?;
    parse_bytes(&bytes, &source, format)
}

/// Whether a history file is read as Jepsen's EDN (Porcupine's kv
/// histories are EDN op maps too): as given, or as detected from its first
/// few kilobytes.
fn is_edn(file: &mut std::fs::File, format: Option<Format>) -> std::io::Result<bool> {
    if format.is_some() {
        return Ok(edn_format(format));
    }
    Ok(edn_format(detect(&head_text(file)?)))
}

fn edn_format(format: Option<Format>) -> bool {
    matches!(format, Some(Format::Edn | Format::PorcupineKv))
}

/// A file's first 64 KiB as text (a prefix cut inside a character is cut
/// back).
fn head_text(file: &mut std::fs::File) -> std::io::Result<String> {
    use std::io::Read;
    let mut head = Vec::with_capacity(64 << 10);
    file.take(64 << 10).read_to_end(&mut head)?;
    if let Err(e) = std::str::from_utf8(&head) {
        head.truncate(e.valid_up_to());
    }
    Ok(String::from_utf8(head).unwrap_or_default())
}

/// The first 64 KiB of the history file at `path` as text, when it is read
/// as EDN (as `format` says, or as detected): what a checker's
/// [`Checker::checks_text`](crate::Checker::checks_text) looks at before a
/// front end reads the whole text for its `check_text`. `None` for a file
/// in another format.
pub fn edn_head(path: &Path, format: Option<Format>) -> std::io::Result<Option<String>> {
    let mut file = std::fs::File::open(path)?;
    let head = head_text(&mut file)?;
    Ok(edn_format(format.or_else(|| detect(&head))).then_some(head))
}

/// Parses a history file's bytes (read from `source`, for error messages)
/// in `format`, or in the detected format when `format` is `None`. Bytes
/// that are not UTF-8 are a syntax error at the line and column where they
/// start. [`read_path`] reads files through this function, and the fuzz
/// targets feed it arbitrary bytes, so what is fuzzed is what is run.
pub fn parse_bytes(
    bytes: &[u8],
    source: &str,
    format: Option<Format>,
) -> Result<History, HistoryError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        // The valid prefix is UTF-8, so its characters can be counted.
        let column = std::str::from_utf8(&valid[line_start..]).map_or(0, |s| s.chars().count());
        HistoryError::Syntax {
            location: crate::error::Location::new(source, Some(line)).column(column as u64 + 1),
            expected: "UTF-8 text".into(),
            found: format!(
                "the byte 0x{:02x}, which does not start a UTF-8 character there",
                bytes.get(e.valid_up_to()).copied().unwrap_or_default()
            ),
        }
    })?;
    parse(text, source, format)
}

/// Where serde_json's error `e` is in `text` (the text it parsed, which
/// starts at column `first_column` of line `first_line` of the file): the
/// line in the file, and the column in characters. serde_json counts bytes
/// read on the line, 0 when none; every reader here counts characters from
/// 1, so a column means the same whatever the format.
pub(crate) fn json_position(
    text: &str,
    e: &serde_json::Error,
    first_line: u64,
    first_column: u64,
) -> (u64, u64) {
    let line_index = e.line().saturating_sub(1);
    let line = text.split('\n').nth(line_index).unwrap_or_default();
    let read = &line[..line.ceil_char_boundary(e.column().min(line.len()))];
    let column = (read.chars().count() as u64).max(1);
    if line_index == 0 {
        (first_line, first_column - 1 + column)
    } else {
        (first_line + line_index as u64, column)
    }
}

/// serde_json's message for `e` without the position it appends (` at line
/// 1 column 37`), which the error's location gives in the file's terms.
pub(crate) fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).map_or_else(|| text.clone(), str::to_owned)
}

/// Gives the ops at `unnamed` (sorted positions in `ops` of ops that named
/// no process) one client process and returns its number, `None` when there
/// are none. Jepsen's history library reads a missing process as one
/// process; numbering it past every process the other ops name keeps it
/// from merging with one of them.
pub(crate) fn name_unnamed_processes(ops: &mut [Op], unnamed: &[usize]) -> Option<u64> {
    if unnamed.is_empty() {
        return None;
    }
    let mut rest = unnamed.iter().peekable();
    let mut named: Vec<u64> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        if rest.next_if_eq(&&i).is_some() {
            continue;
        }
        if let Process::Client(p) = op.process {
            named.push(p);
        }
    }
    let process = match named.iter().max() {
        None => 0,
        Some(&max) => max.checked_add(1).unwrap_or_else(|| {
            // The largest number is taken: the smallest free one will do.
            named.sort_unstable();
            named.dedup();
            named.iter().zip(0u64..).find(|&(&p, i)| p != i).map_or(named.len() as u64, |(_, i)| i)
        }),
    };
    for &i in unnamed {
        ops[i].process = Process::Client(process);
    }
    Some(process)
}

/// The note a history gets when `count` ops named no process (`field` as the
/// format spells it) and were read as `process`'s.
pub(crate) fn unnamed_note(source: &str, count: usize, field: &str, process: u64) -> String {
    let ops = if count == 1 { "op has" } else { "ops have" };
    format!("{source}: {count} {ops} no {field}; read as one process, {process}, as Jepsen does")
}

/// Writes `history` in `format`.
pub fn write(history: &History, format: Format) -> String {
    match format {
        Format::Jsonl => jsonl::write(history),
        Format::Edn => edn::write(history, false),
        Format::PorcupineKv => edn::write(history, true),
        Format::JepsenLog => jepsen_log::write(history),
        Format::ElleJson => elle_json::write(history),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_format_from_its_first_line() {
        assert_eq!(detect("{\"index\":0}\n"), Some(Format::Jsonl));
        assert_eq!(detect("[{\"type\":\"invoke\"}]"), Some(Format::ElleJson));
        assert_eq!(detect("[\n {\"type\":\"invoke\"}]"), Some(Format::ElleJson));
        assert_eq!(detect("[{:type :invoke}]"), Some(Format::Edn));
        assert_eq!(detect("{:type :invoke, :f :read}\n"), Some(Format::Edn));
        assert_eq!(
            detect("{:process 0, :type :invoke, :f :get, :key \"9\", :value nil}"),
            Some(Format::PorcupineKv)
        );
        assert_eq!(detect("INFO  jepsen.util - 4\t:invoke\t:read\tnil"), Some(Format::JepsenLog));
        assert_eq!(detect("hello"), None);
    }

    /// Regression: detection looked only for `{:` and `[{:` on the first
    /// line, so a history written as a list (Knossos's `rethink-fail*.edn`),
    /// or opening with a discarded form or metadata, had no format.
    #[test]
    fn detects_edn_as_clojure_reads_it() {
        let op = "{:type :invoke, :f :read, :value nil, :process 0}";
        let cases = [
            format!("({op}\n ; a comment between ops\n {op})\n"),
            format!(",, ; a note\n\n[, ; and another\n {op}]"),
            format!("#_{{\"not\" \"json\"}}\n{op}"),
            format!("#_ #_ [1 2] (3) ; two discarded forms\n({op})"),
            format!("^{{:jepsen \"0.3\"}} [{op}]"),
            format!("^:history\n{op}"),
            format!("#_[{{\"a\" 1}}] ^{{:m [1 2]}} #_x\n {op}"),
        ];
        for text in &cases {
            assert_eq!(detect(text), Some(Format::Edn), "{text:?}");
            let h = parse(text, "h.edn", None).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(h.ops().iter().all(|o| o.f == "read"), "{text:?}");
        }
        let kv = "({:process 0, :type :invoke, :f :get, :key \"9\", :value nil})";
        assert_eq!(detect(kv), Some(Format::PorcupineKv));
        assert_eq!(detect("(\n{\"type\":\"invoke\"})"), None, "JSON has no lists");
        assert_eq!(detect("#_{:a 1}"), None, "only a discarded form");
    }

    /// A `#_` before an op discards it; metadata before an op attaches to it
    /// (and is dropped); both work inside ops too, and at the end of a
    /// collection, where edn-format alone fails on a discard.
    #[test]
    fn discards_and_metadata_are_read_as_clojure_reads_them() {
        let text = "#_ {:type :invoke, :f :write, :value 9, :process 9}\n\
                    ^{:note \"first\"} {:type :invoke, :f :write, :value [1 #_2], :process 0}\n\
                    {:type :ok, :f :write, :value ^:final [1 #_ #_ 2 3], #_#_ :ignored 4 :process 0}\n";
        let h = parse(text, "h.edn", None).expect("parse");
        assert_eq!(h.len(), 2);
        assert!(h.ops().iter().all(|o| o.process == crate::history::Process::Client(0)));
        assert_eq!(h.ops()[0].value.to_string(), "[1]");
        assert_eq!(h.ops()[1].value.to_string(), "[1]");
        assert_eq!(h.locate(0).line, Some(2));
    }

    /// The shared process of unnamed ops is one past the largest named, or
    /// the smallest free number when the largest is `u64::MAX`.
    #[test]
    fn unnamed_ops_get_a_free_process_number() {
        use crate::history::OpType;
        let op = |p: u64| Op::new(0, Process::Client(p), OpType::Invoke, "r", crate::Value::Nil);
        let mut ops = vec![op(3), op(0), op(1)];
        assert_eq!(name_unnamed_processes(&mut ops, &[1]), Some(4));
        let mut ops = vec![op(u64::MAX), op(0), op(1), op(0)];
        assert_eq!(name_unnamed_processes(&mut ops, &[3]), Some(2));
        assert_eq!(ops[3].process, Process::Client(2));
        assert_eq!(name_unnamed_processes(&mut ops, &[]), None);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_an_error_at_their_line_and_column() {
        let err = parse_bytes(b"{:type :invoke}\n{:f \"\xc3\xa9\xff\"}\n", "h.edn", None)
            .expect_err("not UTF-8")
            .to_string();
        assert_eq!(
            err,
            "h.edn:2:7: expected UTF-8 text, found the byte 0xff, which does not start a UTF-8 \
             character there"
        );
    }

    #[test]
    fn empty_input_is_a_clear_error() {
        let err = parse("\n\n", "etcd_095.log", None).expect_err("empty");
        assert!(matches!(err, HistoryError::Empty(_)), "{err}");
        assert!(err.to_string().contains("etcd_095.log"));
    }
}
