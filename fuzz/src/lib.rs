//! What every fuzz target asserts about a history reader, on any bytes.
//!
//! The input goes through `formats::parse_bytes`, the function `read_path`
//! reads files with, so non-UTF-8 input takes the real path. Then:
//! - nothing panics, overflows the stack or runs out of memory (libFuzzer
//!   reports those itself);
//! - an error names the input's source and, when it is about a place in the
//!   text (syntax errors, invalid ops), a line that exists in the input and
//!   a column (in characters) that exists on that line or just past its end;
//!   with `--format` given, the format is never "unknown";
//! - a history read has ops, each at a line that exists in the input, and
//!   pairing its ops (what every checker does first) either works or fails
//!   with an error that names the source and such a line.

use checkers::error::{HistoryError, Location};
use checkers::formats::{self, Format};

/// The source name the targets give the input, for error messages.
pub const SOURCE: &str = "fuzz-input.hist";

/// Reads `bytes` as a history in `format` (detected when `None`) and checks
/// what the reader said about them.
pub fn check(bytes: &[u8], format: Option<Format>) {
    let text = Text::new(bytes);
    match formats::parse_bytes(bytes, SOURCE, format) {
        Ok(history) => {
            assert!(!history.is_empty(), "a history without ops must be an error");
            for i in 0..history.len() {
                let location = history.locate(i);
                text.check_location(&location, &format!("op {i}"));
            }
            if let Err(e) = history.pairs() {
                text.check_error(&e, format);
            }
        }
        Err(e) => text.check_error(&e, format),
    }
}

/// The EDN reader `faultline check` runs (the fast reader, which hands
/// whatever it does not know to the general one) and the general reader
/// alone read `bytes` alike: the same ops at the same lines with the same
/// notes, or the same error word for word. The fast reader must never read
/// a form differently from Clojure's rules as the general reader applies
/// them, nor accept what the general reader refuses.
pub fn check_edn_readers_agree(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let fast = formats::parse(text, SOURCE, Some(Format::Edn));
    let general = formats::parse_edn_general(text, SOURCE);
    match (fast, general) {
        (Ok(a), Ok(b)) => {
            assert!(a.ops() == b.ops(), "the readers read different ops");
            for i in 0..a.len() {
                assert_eq!(a.locate(i), b.locate(i), "op {i} is at different places");
            }
            let notes = |h: &checkers::History| {
                h.notes().iter().map(|n| n.text.clone()).collect::<Vec<_>>()
            };
            assert_eq!(notes(&a), notes(&b));
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (Ok(_), Err(e)) => panic!("only the general reader refused it: {e}"),
        (Err(e), Ok(_)) => panic!("only the fast path refused it: {e}"),
    }
}

/// The text paths (`Checker::check_text`) of the linearizability checker
/// (registers) and of Elle's checkers decide only what reading
/// `bytes` as a history and checking it decides alike, and hand over only
/// the history the readers read from them.
pub fn check_text_path_agrees(bytes: &[u8]) {
    use checkers::elle::{Elle, ElleOptions, Workload};
    use checkers::linear::{LinearChecker, ModelName};
    use checkers::{Checker, FromText, Verdict};
    // What differs between two checks of one history: times, and the flag
    // that says which path read it.
    let comparable = |mut v: Verdict| {
        v.elapsed = std::time::Duration::ZERO;
        if let Some(d) = v.details.as_object_mut() {
            d.remove("timings_ms");
            d.remove("read_from_text");
        }
        format!("{v:?}")
    };
    let checkers: [Box<dyn Checker>; 4] = [
        Box::new(LinearChecker::new(ModelName::CasRegister)),
        Box::new(LinearChecker::new(ModelName::Register)),
        Box::new(Elle::new(Workload::ListAppend, ElleOptions::default())),
        Box::new(Elle::new(Workload::RwRegister, ElleOptions::default())),
    ];
    for checker in &checkers {
        let checker = checker.as_ref();
        let got = checker.check_text(&mut &bytes[..], SOURCE);
        if matches!(got, FromText::Left) {
            continue;
        }
        let history = formats::parse_bytes(bytes, SOURCE, Some(Format::Edn))
            .unwrap_or_else(|e| panic!("the text path read a history the reader refuses: {e}"));
        match got {
            FromText::Decided(quick) => {
                let whole = checkers::judge(checker, &history)
                    .unwrap_or_else(|e| panic!("the text path decided what the check refuses: {e}"));
                assert_eq!(comparable(quick), comparable(whole), "the two paths' verdicts differ");
            }
            FromText::Read(read) => {
                assert!(read.ops() == history.ops(), "the text path read different ops");
                for i in 0..read.len() {
                    assert_eq!(read.locate(i), history.locate(i), "op {i} is at different places");
                }
            }
            FromText::Left => {}
        }
    }
}

/// The input's lines, to check the places errors name.
struct Text {
    /// Characters on each line (lines end at `\n`; a `\r` counts as a
    /// character, as the readers count it). Bytes that are not UTF-8 count
    /// as one replacement character per bad sequence.
    line_chars: Vec<u64>,
}

impl Text {
    fn new(bytes: &[u8]) -> Self {
        let lossy = String::from_utf8_lossy(bytes);
        Text { line_chars: lossy.split('\n').map(|l| l.chars().count() as u64).collect() }
    }

    fn check_error(&self, e: &HistoryError, format: Option<Format>) {
        let shown = e.to_string();
        assert!(shown.starts_with(SOURCE), "the error does not start with the source: {shown}");
        match e {
            HistoryError::Io { .. } => panic!("no I/O happens when parsing bytes: {shown}"),
            HistoryError::Empty(path) => assert_eq!(path, SOURCE, "{shown}"),
            HistoryError::UnknownFormat { path, .. } => {
                assert_eq!(path, SOURCE, "{shown}");
                assert!(format.is_none(), "the format was given, yet it is unknown: {shown}");
            }
            HistoryError::Syntax { location, .. } | HistoryError::Invalid { location, .. } => {
                self.check_location(location, &shown);
            }
        }
    }

    /// `location` names the source, a line of the input and, if it has
    /// one, a column on that line (at most one past its last character).
    fn check_location(&self, location: &Location, what: &str) {
        assert_eq!(location.file, SOURCE, "{what}");
        let Some(line) = location.line else { panic!("no line: {what}") };
        assert!(
            line >= 1 && line as usize <= self.line_chars.len(),
            "line {line} of {}: {what}",
            self.line_chars.len()
        );
        if let Some(column) = location.column {
            let chars = self.line_chars[line as usize - 1];
            assert!(
                column >= 1 && column <= chars + 1,
                "column {column} on line {line} of {chars} characters: {what}"
            );
        }
    }
}
