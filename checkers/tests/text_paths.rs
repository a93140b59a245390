//! What the text paths' tests share (`linear_text`, `elle_text`): a
//! checker's answer on a text (`Checker::check_text`), held to reading the
//! history and checking it.

use checkers::formats::{self, Format};
use checkers::{Checker, FromText, Verdict};

/// A verdict as JSON, without what differs from run to run (times) and
/// the flag that says it was read from the text.
pub fn comparable(mut v: Verdict) -> serde_json::Value {
    v.elapsed = std::time::Duration::ZERO;
    if let Some(d) = v.details.as_object_mut() {
        d.remove("timings_ms");
        d.remove("read_from_text");
    }
    serde_json::to_value(&v).expect("a verdict as JSON")
}

/// What the text path made of a text, checked against the whole way.
#[derive(Debug, PartialEq)]
pub enum Got {
    Decided(Verdict),
    Read,
    Left,
}

/// The text path's answer on `text`, checked against reading the history
/// and checking it (the whole check's outcome, or its error in words): a
/// verdict decided from the text must be the whole check's, evidence and
/// all, and a history handed over must be the one the readers read (op
/// for op, line for line). Where `must_decide` holds of the whole check's
/// outcome, the text path must have decided.
pub fn agree(
    checker: &dyn Checker,
    text: &str,
    must_decide: &dyn Fn(&Result<Verdict, String>) -> bool,
) -> Got {
    let got = checker.check_text(&mut text.as_bytes(), "h.edn");
    let read = formats::parse(text, "h.edn", Some(Format::Edn));
    let whole = read
        .as_ref()
        .map_err(ToString::to_string)
        .and_then(|h| checkers::judge(checker, h).map_err(|e| e.to_string()));
    match got {
        FromText::Decided(q) => {
            let w = whole.unwrap_or_else(|e| panic!("decided what the whole way refuses ({e})"));
            // Said wherever the verdict has details (nothing observed has none).
            if q.details.is_object() {
                assert_eq!(q.details["read_from_text"], true);
            }
            assert_eq!(comparable(q.clone()), comparable(w), "{text}");
            Got::Decided(q)
        }
        FromText::Read(h) => {
            let r =
                read.unwrap_or_else(|e| panic!("handed over a history the readers refuse ({e})"));
            assert_eq!(h.ops(), r.ops(), "{text}");
            for i in 0..h.len() {
                assert_eq!(h.locate(i), r.locate(i), "op {i}");
            }
            assert!(!must_decide(&whole), "handed over, and not decided from the text:\n{text}");
            Got::Read
        }
        FromText::Left => {
            assert!(!must_decide(&whole), "not read from the text:\n{text}");
            Got::Left
        }
    }
}
