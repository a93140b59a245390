//! Reading a list-append or rw-register history's transactions straight
//! from its EDN text, for Elle's `check_text`.
//!
//! Read into the generic history, each op of a list-append history is a
//! tree of small values, 580 bytes a line on Jepsen's shape; a third of
//! reading it was the kernel clearing the fresh pages they land on, and
//! the checker's first pass (`prep`) walks them only to turn them into
//! integer codes. When the text is in the one shape `formats::txn_lines`
//! reads (op maps of integers, one per line), this reads each op into a
//! few words and its reads' elements into one array instead, and gives
//! them to that same first pass as a [`Source`]. The tables it makes are
//! the ones the history would give, so the verdict is the same, evidence
//! included: Elle's evidence is drawn from those tables alone.
//!
//! An op the history's rules refuse, or a transaction `prep` refuses from
//! here, hands the caller the history as the readers read it, for the
//! whole check: it words the error, or, for the one thing refused here
//! that a history may hold (an rw-register read of a list, a value to the
//! history's tables), decides it. Text in another shape is left to the
//! readers.

use std::time::Instant;

use super::Elle;
use super::prep::{Atom, Held, Item, MopKind, Positions, Prepared, Source};
use crate::error::{CheckError, Location};
use crate::formats::txn_lines::{self, MopValue, Piece, TxnLine};
use crate::history::{OpType, Pair};
use crate::value::Value;
use crate::verdict::{FromText, Laps};

/// The verdict on the transactional history `text` holds (`source` names
/// it), when this path decides it; else the history, or nothing when the
/// text is not in this path's shape (see the module's comment).
pub(super) fn check_text(
    elle: &Elle,
    text: &mut (dyn std::io::Read + Send),
    source: &str,
) -> FromText {
    let started = Instant::now();
    let mut laps = Laps::start();
    let read = txn_lines::read_stream(text, &mut |_| {});
    // The readers refuse indices that do not increase, so no history is
    // made unless they do.
    let Some(pieces) = read.filter(|p| txn_lines::increasing(p)) else {
        return FromText::Left;
    };
    laps.lap("read");
    let text = Text::new(&pieces, source);
    let prep = Prepared::from_source(&text, elle.workload.name(), elle.workload.allowed());
    drop(text);
    match prep.map(Prepared::detached) {
        Ok(Some(prep)) => {
            // The tables hold all the analyses need: the ops read are
            // freed before those take their memory.
            drop(pieces);
            laps.lap("prepare");
            let mut v = elle.decide(prep, laps, started);
            if let Some(d) = v.details.as_object_mut() {
                d.insert("read_from_text".into(), serde_json::json!(true));
            }
            FromText::Decided(v)
        }
        // Refused (or, never, tables that hold the history): the whole
        // check words why, or reads what was refused here whole.
        Ok(None) | Err(_) => FromText::Read(txn_lines::history(&pieces, source)),
    }
}

/// `nil`, as a history holds it.
static NIL: Value = Value::Nil;

/// The ops `txn_lines` read, by their position in the history.
struct Text<'a> {
    pieces: &'a [Piece],
    /// The piece each position's op is in.
    piece_of: Vec<u32>,
    /// The position of each piece's first op.
    starts: Vec<usize>,
    source: &'a str,
}

impl<'a> Text<'a> {
    fn new(pieces: &'a [Piece], source: &'a str) -> Text<'a> {
        let mut piece_of = Vec::with_capacity(pieces.iter().map(|p| p.lines.len()).sum());
        let mut starts = Vec::with_capacity(pieces.len());
        for (i, p) in pieces.iter().enumerate() {
            starts.push(piece_of.len());
            piece_of.resize(piece_of.len() + p.lines.len(), i as u32);
        }
        Text { pieces, piece_of, starts, source }
    }

    /// The op at `pos`, and its piece.
    fn line(&self, pos: usize) -> (&'a Piece, &'a TxnLine) {
        let p = self.piece_of[pos] as usize;
        let piece = &self.pieces[p];
        (piece, &piece.lines[pos - self.starts[p]])
    }

    fn lines(&self) -> impl Iterator<Item = &'a TxnLine> {
        self.pieces.iter().flat_map(|p| p.lines.iter())
    }
}

/// Why the history's rules refuse it: the caller hands the history over to
/// the whole check, which words the error.
fn refused() -> CheckError {
    CheckError::BadOption("the history breaks the rules of pairing".into())
}

impl<'a> Source<'a> for Text<'a> {
    /// `History::pairs`'s rules, on client ops of one function (`txn`).
    fn pairs(&self) -> Result<Vec<Pair>, CheckError> {
        // Each process's pending invocation: its position, and its pair.
        let mut pending: Vec<Option<(usize, usize)>> = Vec::new();
        let mut pairs: Vec<Pair> = Vec::with_capacity(self.piece_of.len() / 2 + 1);
        for (pos, line) in self.lines().enumerate() {
            let p = line.process as usize;
            if pending.len() <= p {
                // Processes are numbered densely, as Jepsen numbers them.
                // A history that names huge ones is left to the readers.
                if p > 1 << 20 {
                    return Err(refused());
                }
                pending.resize(p + 1, None);
            }
            let slot = &mut pending[p];
            match (line.kind, *slot) {
                (OpType::Invoke, None) => {
                    *slot = Some((pos, pairs.len()));
                    pairs.push(Pair { invoke: pos, complete: None });
                }
                (OpType::Invoke, Some(_)) | (OpType::Ok | OpType::Fail, None) => {
                    return Err(refused());
                }
                // A client's `info` with nothing pending stands alone.
                (OpType::Info, None) => pairs.push(Pair { invoke: pos, complete: Some(pos) }),
                (_, Some((_, at))) => {
                    *slot = None;
                    pairs[at].complete = Some(pos);
                }
            }
        }
        Ok(pairs)
    }

    fn client(&self, pos: usize) -> Option<u64> {
        Some(u64::from(self.line(pos).1.process))
    }

    fn other_function(&self, _pos: usize) -> Option<String> {
        // Every op read here is a `txn`.
        None
    }

    fn outcome(&self, pair: &Pair) -> OpType {
        match pair.complete {
            Some(c) if c != pair.invoke => self.line(c).1.kind,
            _ => OpType::Info,
        }
    }

    fn items(&self, pos: usize, out: &mut Vec<Item<'a>>) -> Result<(), String> {
        // What a workload cannot hold (a write in a list-append history,
        // a list read in an rw-register one) is refused by `prep`, as it
        // is from a history, and the history is then handed over.
        let (piece, line) = self.line(pos);
        out.extend(piece.mops(line).iter().map(|m| {
            let (kind, held) = match piece.value(m) {
                MopValue::Append(e) => (MopKind::Append, Held::Atom(Atom::Int(e))),
                MopValue::Write(v) => (MopKind::Write, Held::Atom(Atom::Int(v))),
                MopValue::ReadNil => (MopKind::Read, Held::Atom(Atom::Value(&NIL))),
                MopValue::ReadOne(v) => (MopKind::Read, Held::Atom(Atom::Int(v))),
                MopValue::ReadList(elems) => (MopKind::Read, Held::Ints(elems)),
            };
            Item { kind, key: Atom::Int(m.key), held }
        }));
        Ok(())
    }

    fn locate(&self, pos: usize) -> Location {
        Location::new(self.source, Some(pos as u64 + 1))
    }

    fn positions(&self) -> Positions<'a> {
        Positions::Indices(self.lines().map(|l| l.index).collect())
    }
}
