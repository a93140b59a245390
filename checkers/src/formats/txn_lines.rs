//! A reader for one shape of Jepsen's `history.edn` only: a history of
//! transactions written one op map per line, with integer keys and values,
//! as Jepsen's list-append and rw-register workloads and faultline's EDN
//! writer (`elle_gen --format edn`) write them:
//!
//! ```text
//! {:index 7, :time 7000, :type :ok, :process 3, :f :txn, :value [[:append 86 1] [:r 35 [1 2]]]}
//! {:index 9, :time 9000, :type :ok, :process 4, :f :txn, :value [[:w 2 5] [:r 3 4]]}
//! ```
//!
//! Each op becomes a few machine words ([`TxnLine`], [`MicroOp`], and its
//! read's elements as plain integers) instead of an [`Op`] and a tree of
//! values, so that Elle's checker can read such a history's transactions
//! straight from its text (`elle::quick`). As with `register_lines`, on
//! anything else in the text, down to a space out of place, it gives up
//! (`None`), and the general readers read the file and word any error; the
//! history [`history`] makes of what it read is theirs (tested op by op and
//! line by line, and fuzzed with the `edn` target).
//!
//! [`Op`]: crate::history::Op

use thin_vec::ThinVec;

use super::register_lines::{Cursor, Head, INDEX, PROCESS, TYPE, read_map, read_pieces};

use crate::history::{History, Op, OpType, Process};
use crate::value::{Value, shared_str};

/// One op, as read: its fields, and where its micro-ops lie in its
/// piece's [`Piece::mops`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TxnLine {
    pub index: u64,
    /// Its `:time`, or `u64::MAX` for none (no time read here is that
    /// large).
    time: u64,
    pub process: u32,
    pub kind: OpType,
    /// Its first micro-op in the piece's `mops`, and how many it has.
    pub first: u32,
    pub len: u32,
}

/// What a micro-op does, and what it holds past its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    /// `[:append k element]`.
    Append,
    /// `[:w k value]`.
    Write,
    /// `[:r k nil]`.
    ReadNil,
    /// `[:r k value]`, a register's.
    ReadOne,
    /// `[:r k [elements]]`, a list's.
    ReadList,
}

/// One micro-op of a transaction: `[:append key element]`, `[:w key
/// value]`, or `[:r key nil]`, `[:r key value]` or `[:r key [elements]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MicroOp {
    pub key: i64,
    /// The element appended or the value written or read; a list read's
    /// first element's place in the piece's [`Piece::elems`].
    value: i64,
    /// A list read's number of elements.
    len: u32,
    form: Form,
}

/// What a micro-op does and holds past its key.
pub(crate) enum MopValue<'a> {
    /// An append's element.
    Append(i64),
    /// A write's value.
    Write(i64),
    /// A read of `nil`.
    ReadNil,
    /// A register read's value.
    ReadOne(i64),
    /// A list read's elements.
    ReadList(&'a [i64]),
}

/// The ops of a stretch of whole lines.
#[derive(Debug, Default)]
pub(crate) struct Piece {
    pub lines: Vec<TxnLine>,
    pub mops: Vec<MicroOp>,
    /// The elements of the reads, one after another.
    pub elems: Vec<i64>,
}

impl Piece {
    /// The micro-ops of `line`, one of this piece's.
    pub(crate) fn mops(&self, line: &TxnLine) -> &[MicroOp] {
        &self.mops[line.first as usize..(line.first + line.len) as usize]
    }

    /// What micro-op `m`, one of this piece's, does and holds past its key.
    pub(crate) fn value(&self, m: &MicroOp) -> MopValue<'_> {
        match m.form {
            Form::Append => MopValue::Append(m.value),
            Form::Write => MopValue::Write(m.value),
            Form::ReadNil => MopValue::ReadNil,
            Form::ReadOne => MopValue::ReadOne(m.value),
            Form::ReadList => {
                MopValue::ReadList(&self.elems[m.value as usize..m.value as usize + m.len as usize])
            }
        }
    }

    /// The op the general readers read from `line`, one of this piece's.
    pub(crate) fn op(&self, line: &TxnLine) -> Op {
        let mops = self.mops(line).iter().map(|m| {
            let (name, value) = match self.value(m) {
                MopValue::Append(e) => ("append", Value::Int(e)),
                MopValue::Write(v) => ("w", Value::Int(v)),
                MopValue::ReadNil => ("r", Value::Nil),
                MopValue::ReadOne(v) => ("r", Value::Int(v)),
                MopValue::ReadList(elems) => {
                    ("r", Value::List(elems.iter().map(|&e| Value::Int(e)).collect()))
                }
            };
            Value::List(thin_vec::thin_vec![
                Value::Keyword(shared_str(name)),
                Value::Int(m.key),
                value
            ])
        });
        Op {
            index: line.index,
            time: (line.time != u64::MAX).then_some(line.time),
            process: Process::Client(u64::from(line.process)),
            kind: line.kind,
            f: shared_str("txn"),
            value: Value::List(mops.collect::<ThinVec<Value>>()),
            key: None,
            node: None,
            error: None,
        }
    }
}

/// The ops of the text `input` gives, in pieces in the order of the text,
/// or `None` when the text is not wholly in this reader's shape, or cannot
/// be read (whoever reads it next words why). Indices are checked to
/// increase within each piece (see [`increasing`] for where pieces meet).
/// Each block's pieces are handed to `consume` in order as soon as they are
/// read, while the next block is read (see `register_lines::read_pieces`).
pub(crate) fn read_stream(
    input: &mut (dyn std::io::Read + Send),
    consume: &mut (dyn FnMut(&[Piece]) + Send),
) -> Option<Vec<Piece>> {
    let pieces = read_pieces(input, &read_piece, consume)?;
    pieces.iter().any(|p| !p.lines.is_empty()).then_some(pieces)
}

/// The ops of the whole lines `bytes` holds, with increasing indices.
///
/// Read into a scratch piece of the thread's, kept from piece to piece,
/// then copied out at their length: how many micro-ops and elements a
/// line holds is known only once read, and room guessed from the bytes
/// was twice what a generated history needed, memory the kernel clears
/// (in huge pages, wholly) when any of it is first touched.
fn read_piece(bytes: &[u8]) -> Option<Piece> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Piece> = std::cell::RefCell::default();
    }
    SCRATCH.with(|scratch| {
        let mut piece = scratch.borrow_mut();
        piece.lines.clear();
        piece.mops.clear();
        piece.elems.clear();
        let mut pos = 0;
        while pos < bytes.len() {
            let line = read_line(bytes, &mut pos, &mut piece)?;
            if piece.lines.last().is_some_and(|l| l.index >= line.index) {
                return None;
            }
            piece.lines.push(line);
        }
        Some(Piece {
            lines: piece.lines.clone(),
            mops: piece.mops.clone(),
            elems: piece.elems.clone(),
        })
    })
}

/// Whether the indices of the ops [`read_stream`] read increase where its
/// pieces meet, as they do within each.
pub(crate) fn increasing(pieces: &[Piece]) -> bool {
    let mut last: Option<u64> = None;
    for piece in pieces {
        let (Some(first), Some(end)) = (piece.lines.first(), piece.lines.last()) else {
            continue;
        };
        if last.is_some_and(|l| l >= first.index) {
            return false;
        }
        last = Some(end.index);
    }
    true
}

/// The history the general readers read from the text whose ops
/// [`read_stream`] read (`source` names it, for the places errors name):
/// each op on a line of its own, from line 1.
pub(crate) fn history(pieces: &[Piece], source: &str) -> History {
    let ops: Vec<Op> =
        pieces.iter().flat_map(|p| p.lines.iter().map(move |line| p.op(line))).collect();
    let numbers = (1..=ops.len() as u32).collect();
    History::with_lines(ops, numbers, source)
}

/// Whether `head`, the beginning of a text, begins with a line this reader
/// reads: whether [`read_stream`] may read the whole text.
pub(crate) fn starts(head: &str) -> bool {
    let bytes = head.as_bytes();
    let end = memchr::memchr(b'\n', bytes).map_or(bytes.len(), |at| at + 1);
    read_line(&bytes[..end], &mut 0, &mut Piece::default()).is_some()
}

/// The fields of a transaction beside the [`Head`]'s.
const F: u8 = 1 << 4;
const VALUE: u8 = 1 << 5;
/// The fields an op must have here (the general readers do without some;
/// this reader leaves such ops to them).
const REQUIRED: u8 = INDEX | TYPE | PROCESS | F | VALUE;

/// Reads the op map at `*pos` and the newline after it (none at the end of
/// the text), its micro-ops and elements into `piece`, leaving `*pos` on
/// the next line. On `None`, `piece` may hold some of the line's
/// micro-ops: the caller gives up on the piece.
#[inline]
fn read_line(bytes: &[u8], pos: &mut usize, piece: &mut Piece) -> Option<TxnLine> {
    let (mut first, mut len) = (0, 0);
    let head = read_map(bytes, pos, REQUIRED, |r| match *r.bytes.get(r.pos + 1)? {
        b'f' if r.take(b":f :txn") => Some(F),
        b'v' if r.take(b":value [") => {
            (first, len) = read_txn(r, piece)?;
            Some(VALUE)
        }
        _ => None,
    })?;
    let Head { index, time, process, kind } = head;
    Some(TxnLine { index, time, process, kind, first, len })
}

/// A transaction's micro-ops, from just after its `[` to just after its
/// `]`, into `piece`: the first one's place there, and how many.
#[inline]
fn read_txn(r: &mut Cursor<'_>, piece: &mut Piece) -> Option<(u32, u32)> {
    let first = u32::try_from(piece.mops.len()).ok()?;
    if r.take(b"]") {
        return Some((first, 0));
    }
    loop {
        let write = if r.take(b"[:append ") {
            Some(Form::Append)
        } else if r.take(b"[:w ") {
            Some(Form::Write)
        } else if r.take(b"[:r ") {
            None
        } else {
            return None;
        };
        let key = r.signed()?;
        r.expect(b' ')?;
        let (form, value, len) = match write {
            Some(form) => (form, r.signed()?, 0),
            None if r.take(b"nil") => (Form::ReadNil, 0, 0),
            None if r.take(b"[") => {
                let start = piece.elems.len();
                if !r.take(b"]") {
                    loop {
                        piece.elems.push(r.signed()?);
                        match r.next()? {
                            b' ' => {}
                            b']' => break,
                            _ => return None,
                        }
                    }
                }
                let len = u32::try_from(piece.elems.len() - start).ok()?;
                (Form::ReadList, i64::try_from(start).ok()?, len)
            }
            None => (Form::ReadOne, r.signed()?, 0),
        };
        r.expect(b']')?;
        piece.mops.push(MicroOp { key, value, len, form });
        match r.next()? {
            b' ' => {}
            b']' => break,
            _ => return None,
        }
    }
    Some((first, u32::try_from(piece.mops.len()).ok()? - first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{self, Format};

    /// Reads `text` here, and by the general readers.
    fn both(text: &str) -> (Option<History>, History) {
        let here = read_stream(&mut text.as_bytes(), &mut |_| {})
            .filter(|p| increasing(p))
            .map(|p| history(&p, "h"));
        let general = formats::parse(text, "h", Some(Format::Edn)).expect("a readable history");
        (here, general)
    }

    fn same(text: &str) {
        let (here, general) = both(text);
        let here = here.expect("read here");
        assert_eq!(here.ops(), general.ops(), "{text}");
        for pos in 0..general.len() {
            assert_eq!(here.locate(pos), general.locate(pos), "{text}");
        }
    }

    #[test]
    fn reads_transaction_lines_as_the_general_readers_do() {
        same(
            "{:index 0, :time 0, :type :invoke, :process 6, :f :txn, :value [[:r 35 nil] [:append 49 1]]}\n\
             {:index 1, :time 10, :type :ok, :process 6, :f :txn, :value [[:r 35 [1 -2 30]] [:append 49 1]]}\n\
             {:type :invoke, :f :txn, :value [[:r -8 []]], :time 5730405, :process 12, :index 2}\n\
             {:index 3, :type :info, :process 12, :f :txn, :value []}\n\
             {:index 9, :type :fail, :process 0, :f :txn, :value [[:append 0 0]]}",
        );
        // rw-register's micro-ops.
        same(
            "{:index 0, :time 0, :type :invoke, :process 6, :f :txn, :value [[:w 3 1] [:r 4 nil]]}\n\
             {:index 1, :time 10, :type :ok, :process 6, :f :txn, :value [[:w 3 1] [:r 4 -7]]}",
        );
        // Jepsen's field order and a final newline.
        same(
            "{:type :invoke, :f :txn, :value [[:append 9 1] [:r 8 nil]], :time 5730405, :process 0, :index 0}\n",
        );
    }

    #[test]
    fn leaves_other_texts_to_the_general_readers() {
        for text in [
            "[{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 nil]]}]",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 nil]]}  ",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 nil]] }",
            "{:index 0,  :type :invoke, :process 0, :f :txn, :value [[:r 1 nil]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 nil]], :node \"n1\"}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:write 1 2]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:w 1 nil]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 nilx]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 5 6]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r :x nil]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:append 1 \"a\"]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 [1  2]]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 [1 2 ]]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 [01]]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 [-0]]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 nil]  [:r 2 nil]]}",
            "{:index 0, :type :invoke, :process 0, :f :txns, :value [[:r 1 nil]]}",
            "{:index 0, :type :invoke, :process 0, :f :read, :value [[:r 1 nil]]}",
            "{:index 0, :type :invoke, :process :nemesis, :f :txn, :value [[:r 1 nil]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value nil}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 nil]], :index 1}",
            "{:type :invoke, :process 0, :f :txn, :value [[:r 1 nil]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 nil]]}\n\
             {:index 0, :type :ok, :process 0, :f :txn, :value [[:r 1 nil]]}",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 nil]]};\n",
            "{:index 0, :type :invoke, :process 0, :f :txn, :value [[:r 1 99999999999999999999]]}",
        ] {
            if formats::parse(text, "h", Some(Format::Edn)).is_ok() {
                let (here, _) = both(text);
                assert!(here.is_none(), "read here: {text}");
            } else {
                assert!(read_stream(&mut text.as_bytes(), &mut |_| {}).is_none(), "{text}");
            }
        }
    }

    #[test]
    fn a_text_read_in_several_blocks_and_pieces_is_the_whole_text() {
        let mut text = String::new();
        let mut i = 0u64;
        while text.len() < 5 << 20 {
            let reads: Vec<String> = (0..i % 20).map(|e| e.to_string()).collect();
            text.push_str(&format!(
                "{{:index {i}, :time {}, :type :invoke, :process {}, :f :txn, :value [[:append {} {i}] [:r 3 [{}]]]}}\n",
                i * 10,
                i % 7,
                i % 5,
                reads.join(" ")
            ));
            i += 1;
        }
        let mut consumed = 0;
        let pieces = read_stream(&mut text.as_bytes(), &mut |p| {
            consumed += p.iter().map(|p| p.lines.len()).sum::<usize>();
        })
        .expect("read");
        assert!(pieces.len() > 2, "{} pieces", pieces.len());
        assert!(increasing(&pieces));
        let general = formats::parse(&text, "h", Some(Format::Edn)).expect("readable");
        assert_eq!(consumed, general.len());
        assert_eq!(history(&pieces, "h").ops(), general.ops());
        assert!(starts(&text[..200]));
        assert!(!starts("{:index 0, :f :read}\n"));
    }
}
