//! History formats: reading and writing every format faultline speaks, and
//! telling them apart.
//!
//! | format | file | notes |
//! |---|---|---|
//! | `jsonl` | `history.jsonl` | ours: one JSON object per line, appendable during a run |
//! | `edn` | Jepsen `history.edn` | a vector or a sequence of op maps |
//! | `jepsen-log` | Jepsen's `jepsen.log` | `INFO jepsen.util - 3 :ok :read 1` lines |
//! | `porcupine-kv` | Porcupine's kv data | EDN op maps with `:key` |
//! | `elle-json` | elle-cli's JSON | one JSON array of op objects |

mod edn;
mod edn_text;
mod elle_json;
mod jepsen_log;
mod jsonl;

use std::path::Path;
use std::str::FromStr;

use crate::error::HistoryError;
use crate::history::History;

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

/// Guesses the format from the first meaningful line of the text.
///
/// Each format has an unmistakable start: Jepsen logs name `jepsen.util`;
/// JSON objects start `{"`, EDN maps `{:`; a JSON array of objects is
/// elle-cli's; EDN op maps carrying `:key` are Porcupine's kv histories.
pub fn detect(text: &str) -> Option<Format> {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with(';'))?;
    if first.contains("jepsen.util") {
        return Some(Format::JepsenLog);
    }
    let compact: String =
        first.chars().filter(|c| !c.is_whitespace() && *c != ',').take(3).collect();
    if compact.starts_with("{\"") {
        return Some(Format::Jsonl);
    }
    if compact.starts_with("[{\"") || compact == "[" || compact.starts_with("[]") {
        // `[` alone on the first line: look at the next meaningful character.
        let rest = text.trim_start().trim_start_matches('[').trim_start();
        return if rest.starts_with('{') && rest[1..].trim_start().starts_with('"') {
            Some(Format::ElleJson)
        } else if rest.starts_with('{') || rest.starts_with(']') {
            Some(Format::Edn)
        } else {
            None
        };
    }
    if compact.starts_with("{:") || compact.starts_with("[{:") {
        if first.contains(":key ") || first.contains(":key\t") {
            return Some(Format::PorcupineKv);
        }
        return Some(Format::Edn);
    }
    None
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

/// Reads and parses the history file at `path`.
pub fn read_path(path: &Path, format: Option<Format>) -> Result<History, HistoryError> {
    let source = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| HistoryError::Io { path: source.clone(), source: e })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        HistoryError::Syntax {
            location: crate::error::Location::new(source.clone(), Some(line)),
            expected: "UTF-8 text".into(),
            found: "bytes that are not UTF-8".into(),
        }
    })?;
    parse(&text, &source, format)
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

    #[test]
    fn empty_input_is_a_clear_error() {
        let err = parse("\n\n", "etcd_095.log", None).expect_err("empty");
        assert!(matches!(err, HistoryError::Empty(_)), "{err}");
        assert!(err.to_string().contains("etcd_095.log"));
    }
}
