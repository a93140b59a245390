//! A reader for one shape of Jepsen's `history.edn` only: a register
//! history written one op map per line, with integer keys and values, as
//! `faultline generate -f edn` writes it and Jepsen writes a register test
//! with `:key`s:
//!
//! ```text
//! {:index 4, :time 5000, :type :invoke, :process 7, :f :cas, :key 0, :value [3 5]}
//! ```
//!
//! Each op becomes a few machine words ([`Line`]) instead of an [`Op`] and
//! its values, so that the linearizability checker can decide such a
//! history straight from its text (`linear::quick`). On anything else in
//! the text, down to a space out of place, it gives up (`None`), and the
//! general readers read the file and word any error. So it never refuses a
//! history, and every op it reads is the op the general readers read: the
//! history [`history`] makes of them is theirs (tested op by op and line by
//! line, and fuzzed with the `edn` target).
//!
//! [`Op`]: crate::history::Op

use rayon::prelude::*;

use super::edn_fast::{PARALLEL_MIN_BYTES, fill};

use crate::history::{History, Op, OpType, Process};
use crate::value::Value;

/// A register function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    Read,
    Write,
    Cas,
}

impl Func {
    /// Its name in the history.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Func::Read => "read",
            Func::Write => "write",
            Func::Cas => "cas",
        }
    }
}

/// An integer read here that stands for `nil`, in the places that may be
/// either: no integer read here is this small (at most 18 digits), and a
/// line stays a few words (`Option<i64>` would double each).
pub(crate) const NIL: i64 = i64::MIN;

/// The second item of an [`Arg`] that has one only.
const ONE: i64 = i64::MIN + 1;

/// An integer or `nil` ([`NIL`]) as the general readers read it.
fn int_or_nil(n: i64) -> Value {
    if n == NIL { Value::Nil } else { Value::Int(n) }
}

/// An op's `:value`: `nil`, an integer, or a cas's `[from to]` of integers
/// or `nil`s, in two words: the item or the pair's first, and the pair's
/// second or [`ONE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Arg {
    first: i64,
    second: i64,
}

impl Arg {
    const NIL: Arg = Arg { first: NIL, second: ONE };

    fn int(n: i64) -> Arg {
        Arg { first: n, second: ONE }
    }

    /// The value the general readers make of it.
    pub(crate) fn value(self) -> Value {
        if self.second == ONE {
            int_or_nil(self.first)
        } else {
            Value::List(thin_vec::thin_vec![int_or_nil(self.first), int_or_nil(self.second)])
        }
    }
}

/// One op, as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub index: u64,
    /// Its `:time`, or `u64::MAX` for none (no time read here is that
    /// large).
    time: u64,
    /// Its `:key`, or [`NIL`] for none.
    key: i64,
    pub value: Arg,
    pub process: u32,
    pub kind: OpType,
    pub f: Func,
}

impl Line {
    /// Its `:key`, if it has one.
    pub(crate) fn key(&self) -> Option<i64> {
        (self.key != NIL).then_some(self.key)
    }

    /// The op the general readers read from this line.
    pub(crate) fn op(&self) -> Op {
        Op {
            index: self.index,
            time: (self.time != u64::MAX).then_some(self.time),
            process: Process::Client(u64::from(self.process)),
            kind: self.kind,
            f: crate::value::shared_str(self.f.name()),
            value: self.value.value(),
            key: self.key().map(Value::Int),
            node: None,
            error: None,
        }
    }
}

/// The ops of the text `input` gives, in pieces in the order of the text
/// (each piece's lines follow the last piece's), or `None` when the text
/// is not wholly in this reader's shape, or cannot be read (whoever reads
/// it next words why). Indices are checked to increase within each piece
/// (see [`increasing`] for where pieces meet). Each block's pieces are
/// handed to `consume` in order as soon as they are read, while the next
/// block is read.
pub(crate) fn read_stream(
    input: &mut (dyn std::io::Read + Send),
    consume: &mut (dyn FnMut(&[Vec<Line>]) + Send),
) -> Option<Vec<Vec<Line>>> {
    let pieces = read_pieces(input, &read_piece, consume)?;
    pieces.iter().any(|p| !p.is_empty()).then_some(pieces)
}

/// The ops of the whole lines `bytes` holds, with increasing indices.
fn read_piece(bytes: &[u8]) -> Option<Vec<Line>> {
    // A line is about 90 bytes: room for them all at once.
    let mut lines = Vec::with_capacity(bytes.len() / 64 + 1);
    let mut pos = 0;
    while pos < bytes.len() {
        let line = read_line(bytes, &mut pos)?;
        if lines.last().is_some_and(|l: &Line| l.index >= line.index) {
            return None;
        }
        lines.push(line);
    }
    Some(lines)
}

/// How much of a text [`read_pieces`] reads at a time.
const BLOCK_BYTES: usize = 2 << 20;

/// The text `input` gives, read by `read_piece` a piece of whole lines at
/// a time, the pieces in the order of the text; `None` when a piece is not
/// in `read_piece`'s shape or the text cannot be read. Each block's pieces
/// are handed to `consume` in order as soon as they are read, while the
/// next block is read. For the readers of one line shape each
/// ([`read_stream`], `txn_lines`).
///
/// The text is read a block at a time, into two buffers that take turns:
/// one block is read from `input` while the last one's lines are read on
/// every core, and the one before them consumed. Reading a 100,000-op
/// history whole first took 9 ms of a check of 40, most of it the kernel
/// clearing the fresh pages the text went to; two blocks are cleared once
/// and stay in the cache.
pub(super) fn read_pieces<P: Send + Sync>(
    input: &mut (dyn std::io::Read + Send),
    read_piece: &(dyn Fn(&[u8]) -> Option<P> + Sync),
    consume: &mut (dyn FnMut(&[P]) + Send),
) -> Option<Vec<P>> {
    let mut pieces: Vec<P> = Vec::new();
    // Grown as read: a small history gets small buffers.
    let (mut block, mut next) = (Vec::new(), Vec::new());
    let mut end = fill(input, &mut block, BLOCK_BYTES).ok()?;
    // Pieces handed to `consume` so far.
    let mut consumed = 0;
    loop {
        // The block's whole lines; what follows its last newline is the
        // start of the next block.
        let whole = if end { block.len() } else { memchr::memrchr(b'\n', &block)? + 1 };
        next.clear();
        next.extend_from_slice(&block[whole..]);
        let last_block = &pieces[consumed..];
        let ((read, filled), ()) = rayon::join(
            || {
                rayon::join(
                    || read_lines(&block[..whole], read_piece),
                    || if end { Some(true) } else { fill(input, &mut next, BLOCK_BYTES).ok() },
                )
            },
            || consume(last_block),
        );
        consumed = pieces.len();
        pieces.extend(read?);
        if end {
            break;
        }
        end = filled?;
        std::mem::swap(&mut block, &mut next);
    }
    consume(&pieces[consumed..]);
    Some(pieces)
}

/// `bytes`, whole lines, read by `read_piece` in pieces on every core when
/// there are enough of them (see [`read_pieces`]).
fn read_lines<P: Send>(
    bytes: &[u8],
    read_piece: &(dyn Fn(&[u8]) -> Option<P> + Sync),
) -> Option<Vec<P>> {
    let pieces =
        if bytes.len() < PARALLEL_MIN_BYTES { 1 } else { rayon::current_num_threads() * 4 };
    // Pieces end just after a newline, so each starts on an op of its own.
    let mut cuts = vec![0];
    for p in 1..pieces {
        let from = (bytes.len() * p / pieces).max(*cuts.last().unwrap_or(&0));
        match memchr::memchr(b'\n', &bytes[from..]) {
            Some(at) if from + at + 1 < bytes.len() => cuts.push(from + at + 1),
            _ => break,
        }
    }
    cuts.push(bytes.len());
    cuts.dedup();
    if cuts.len() <= 2 {
        return Some(vec![read_piece(bytes)?]);
    }
    cuts.par_windows(2).map(|w| read_piece(&bytes[w[0]..w[1]])).collect()
}

/// Whether the indices of the ops [`read_stream`] read increase where its
/// pieces meet, as they do within each.
pub(crate) fn increasing(pieces: &[Vec<Line>]) -> bool {
    let mut last: Option<u64> = None;
    for piece in pieces {
        let (Some(first), Some(end)) = (piece.first(), piece.last()) else { continue };
        if last.is_some_and(|l| l >= first.index) {
            return false;
        }
        last = Some(end.index);
    }
    true
}

/// The history the general readers read from the text whose ops
/// [`read_stream`] read (`source` names it, for the places errors name):
/// each op on a line of its own, from line 1. For a check that reads the
/// text this way first and then needs the whole history, so that it need
/// not read the text again.
///
/// On one thread: it may be made inside a search running on the pool
/// (`linear::quick`).
pub(crate) fn history(pieces: &[Vec<Line>], source: &str) -> History {
    let ops: Vec<Op> = pieces.iter().flatten().map(Line::op).collect();
    let numbers = (1..=ops.len() as u32).collect();
    History::with_lines(ops, numbers, source)
}

/// Whether `head`, the beginning of a text, begins with a line this reader
/// reads: whether [`read_stream`] may read the whole text.
pub(crate) fn starts(head: &str) -> bool {
    let bytes = head.as_bytes();
    let end = memchr::memchr(b'\n', bytes).map_or(bytes.len(), |at| at + 1);
    read_line(&bytes[..end], &mut 0).is_some()
}

/// The fields of every op map the line readers read, as bits.
pub(super) const INDEX: u8 = 1;
pub(super) const TIME: u8 = 1 << 1;
pub(super) const TYPE: u8 = 1 << 2;
pub(super) const PROCESS: u8 = 1 << 3;
/// The fields of a register op beside those.
const F: u8 = 1 << 4;
const KEY: u8 = 1 << 5;
const VALUE: u8 = 1 << 6;
/// The fields an op must have here (the general readers do without some;
/// this reader leaves such ops to them).
const REQUIRED: u8 = INDEX | TYPE | PROCESS | F | VALUE;

/// Reads the op map at `*pos` and the newline after it (none at the end of
/// the text), leaving `*pos` on the next line.
#[inline]
fn read_line(bytes: &[u8], pos: &mut usize) -> Option<Line> {
    let (mut key, mut value, mut f) = (NIL, Arg::NIL, Func::Read);
    let head = read_map(bytes, pos, REQUIRED, |r| match *r.bytes.get(r.pos + 1)? {
        b'f' if r.take(b":f :") => {
            f = r.one_of([
                (&b"read"[..], Func::Read),
                (b"write", Func::Write),
                (b"cas", Func::Cas),
            ])?;
            Some(F)
        }
        b'k' if r.take(b":key ") => {
            key = r.signed()?;
            Some(KEY)
        }
        b'v' if r.take(b":value ") => {
            value = r.arg()?;
            Some(VALUE)
        }
        _ => None,
    })?;
    let Head { index, time, process, kind } = head;
    Some(Line { index, time, key, value, process, kind, f })
}

/// The fields every op map the line readers read has.
#[derive(Clone, Copy, Debug)]
pub(super) struct Head {
    pub index: u64,
    /// Its `:time`, or `u64::MAX` for none (no time read here is that
    /// large).
    pub time: u64,
    pub process: u32,
    pub kind: OpType,
}

/// Reads the op map at `*pos`, one line, for the readers of one line shape
/// each: its [`Head`] here, each other field by `field`, which is handed
/// the cursor on the field's colon and reads it, giving its bit (`None`
/// for a field it does not read), and the newline after it (none at the
/// end of the text), leaving `*pos` on the next line. The line must have
/// the fields of `required`, each once, separated by `, ` exactly.
#[inline(always)]
pub(super) fn read_map<'a>(
    bytes: &'a [u8],
    pos: &mut usize,
    required: u8,
    mut field: impl FnMut(&mut Cursor<'a>) -> Option<u8>,
) -> Option<Head> {
    let mut r = Cursor { bytes, pos: *pos };
    r.expect(b'{')?;
    let mut seen = 0u8;
    let mut head = Head { index: 0, time: u64::MAX, process: 0, kind: OpType::Invoke };
    // Each field is told by the letter after its colon, then matched
    // whole with its space: a few compares of words, where reading names
    // letter by letter took half of this reader's time.
    loop {
        let bit = match *r.bytes.get(r.pos + 1)? {
            b'i' if r.take(b":index ") => {
                head.index = r.natural()?;
                INDEX
            }
            b't' if r.take(b":time ") => {
                head.time = r.natural()?;
                TIME
            }
            b't' if r.take(b":type :") => {
                head.kind = r.one_of([
                    (&b"invoke"[..], OpType::Invoke),
                    (b"ok", OpType::Ok),
                    (b"fail", OpType::Fail),
                    (b"info", OpType::Info),
                ])?;
                TYPE
            }
            b'p' if r.take(b":process ") => {
                head.process = u32::try_from(r.natural()?).ok()?;
                PROCESS
            }
            _ => field(&mut r)?,
        };
        if seen & bit != 0 {
            return None;
        }
        seen |= bit;
        // Every value read ends before a comma or a brace, never a longer
        // word (`:readx`, `12a`): anything else fails here.
        if r.take(b", ") {
            continue;
        }
        if r.take(b"}") {
            break;
        }
        return None;
    }
    if seen & required != required {
        return None;
    }
    match r.bytes.get(r.pos) {
        None => {}
        Some(b'\n') => r.pos += 1,
        Some(_) => return None,
    }
    *pos = r.pos;
    Some(head)
}

/// A place in a line being read, for the readers of one line shape each.
pub(super) struct Cursor<'a> {
    pub bytes: &'a [u8],
    pub pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    pub fn next(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    #[inline]
    pub fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// The value of the first of `words` that is next, past it.
    #[inline(always)]
    pub fn one_of<T: Copy, const N: usize>(&mut self, words: [(&[u8], T); N]) -> Option<T> {
        words.iter().find(|(word, _)| self.take(word)).map(|&(_, value)| value)
    }

    /// Whether `word` is next, and if so, past it.
    #[inline(always)]
    pub fn take(&mut self, word: &[u8]) -> bool {
        let end = self.pos + word.len();
        let found = self.bytes.get(self.pos..end) == Some(word);
        if found {
            self.pos = end;
        }
        found
    }

    /// A natural number as the general readers take one: digits with no
    /// leading zero, at most 18 of them (so it fits), and a delimiter
    /// after (left).
    #[inline]
    pub fn natural(&mut self) -> Option<u64> {
        let start = self.pos;
        let mut n: u64 = 0;
        while let Some(&b) = self.bytes.get(self.pos) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            // Wrapping: more than 18 digits is refused below.
            n = n.wrapping_mul(10).wrapping_add(u64::from(digit));
            self.pos += 1;
        }
        let digits = self.pos - start;
        if digits == 0 || digits > 18 || (self.bytes[start] == b'0' && digits > 1) {
            return None;
        }
        matches!(self.bytes.get(self.pos), Some(b',' | b'}' | b' ' | b']')).then_some(n)
    }

    /// An integer: a natural number, perhaps negative (never `-0`), with a
    /// delimiter after (left).
    #[inline]
    pub fn signed(&mut self) -> Option<i64> {
        let negative = self.bytes.get(self.pos) == Some(&b'-');
        self.pos += usize::from(negative);
        let n = self.natural()? as i64;
        (!(negative && n == 0)).then_some(if negative { -n } else { n })
    }

    /// An integer or `nil` ([`NIL`]), inside a list.
    #[inline]
    fn signed_or_nil(&mut self) -> Option<i64> {
        if self.take(b"nil") {
            return Some(NIL);
        }
        self.signed()
    }

    /// `nil`, an integer, or `[from to]` of those with one space between.
    #[inline]
    fn arg(&mut self) -> Option<Arg> {
        match self.bytes.get(self.pos)? {
            b'n' => self.take(b"nil").then_some(Arg::NIL),
            b'[' => {
                self.pos += 1;
                let from = self.signed_or_nil()?;
                self.expect(b' ')?;
                let to = self.signed_or_nil()?;
                self.expect(b']')?;
                Some(Arg { first: from, second: to })
            }
            _ => self.signed().map(Arg::int),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{Format, parse};

    /// Reads `text` with this reader and with the general ones, and checks
    /// that the two agree op by op whenever this one reads it at all.
    /// Returns whether it did.
    fn agrees(text: &str) -> bool {
        let Some(pieces) = read_stream(&mut text.as_bytes(), &mut |_| {}).filter(|p| increasing(p))
        else {
            return false;
        };
        let general = parse(text, "h.edn", Some(Format::Edn)).unwrap_or_else(|e| {
            panic!("this reader read what the general one refuses ({e}):\n{text}")
        });
        let ours = history(&pieces, "h.edn");
        assert_eq!(ours.len(), general.len());
        for i in 0..ours.len() {
            assert_eq!(ours.locate(i), general.locate(i), "op {i} of {text}");
        }
        assert!(general.notes().is_empty());
        let ops = ours.ops();
        let general = general.ops();
        assert_eq!(ops, general, "{text}");
        true
    }

    const LINES: [&str; 7] = [
        "{:index 0, :time 1000, :type :invoke, :process 16, :f :read, :key 7, :value nil}",
        "{:index 1, :time 2000, :type :invoke, :process 14, :f :write, :key -1, :value 1}",
        "{:index 2, :time 3000, :type :invoke, :process 10, :f :cas, :key 0, :value [nil 0]}",
        "{:index 3, :time 4000, :type :ok, :process 16, :f :read, :key 7, :value 5}",
        "{:type :fail, :f :cas, :value [nil 0], :process 10, :index 4, :key 0}",
        "{:index 5, :type :info, :process 14, :f :write, :value 1, :time 6000, :key -1}",
        "{:index 6, :time 7000, :type :invoke, :process 3, :f :cas, :key 0, :value [-3 nil]}",
    ];

    #[test]
    fn reads_register_lines_as_the_general_reader_does() {
        let text = LINES.join("\n");
        assert!(agrees(&text));
        assert!(agrees(&format!("{text}\n")), "a newline at the end");
        // Jepsen's own order of fields, and no key.
        assert!(agrees(
            "{:type :invoke, :f :write, :value 3, :process 0, :time 26164, :index 0}\n\
             {:type :ok, :f :write, :value 3, :process 0, :time 29122, :index 1}\n"
        ));
    }

    #[test]
    fn leaves_every_other_shape_to_the_general_readers() {
        let refused = [
            // Other fields, functions, values and processes.
            "{:index 0, :type :invoke, :process 1, :f :read, :value nil, :node \"n1\"}",
            "{:index 0, :type :info, :process :nemesis, :f :start, :value nil}",
            "{:index 0, :type :invoke, :process 1, :f :final-read, :value nil}",
            "{:index 0, :type :invoke, :process 1, :f :add, :value 1}",
            "{:index 0, :type :invoke, :process 1, :f :write, :value \"a\"}",
            "{:index 0, :type :invoke, :process 1, :f :write, :value [1 2 3]}",
            "{:index 0, :type :invoke, :process 1, :f :write, :value [1, 2]}",
            "{:index 0, :type :invoke, :process 1, :f :write, :value 1.5}",
            "{:index 0, :type :invoke, :process 1, :f :cas, :value [nill 1]}",
            "{:index 0, :type :invoke, :process 1, :f :cas, :value [1 nil ]}",
            "{:index 0, :type :invoke, :process 1, :f :write, :value nil1}",
            "{:index 0, :type :invoke, :process 1, :f :write, :key nil, :value 1}",
            "{:index 0, :type :invoke, :process 1, :f :write, :value 1N}",
            "{:index 0, :type :invoke, :process 1, :f :write, :value 007}",
            "{:index 0, :type :invoke, :process 1, :f :write, :value -0}",
            "{:index 0, :type :invoke, :process 1, :f :write, :value 1234567890123456789}",
            "{:index 0, :type :invoke, :process 4294967296, :f :write, :value 1}",
            "{:index 0, :type :invoke, :process -1, :f :write, :value 1}",
            // Missing, repeated and misspelt fields.
            "{:type :invoke, :process 1, :f :write, :value 1}",
            "{:index 0, :process 1, :f :write, :value 1}",
            "{:index 0, :type :invoke, :process 1, :f :write}",
            "{:index 0, :index 1, :type :invoke, :process 1, :f :write, :value 1}",
            "{:index 0, :type :invoked, :process 1, :f :write, :value 1}",
            // Spacing other than Jepsen's, and whatever surrounds the maps.
            "{:index 0,:type :invoke, :process 1, :f :write, :value 1}",
            "{:index 0, :type :invoke, :process 1, :f :write, :value 1 }",
            "{:index 0  , :type :invoke, :process 1, :f :write, :value 1}",
            " {:index 0, :type :invoke, :process 1, :f :write, :value 1}",
            "[{:index 0, :type :invoke, :process 1, :f :write, :value 1}]",
            "{:index 0, :type :invoke, :process 1, :f :write, :value 1}\n\n",
            "{:index 0, :type :invoke, :process 1, :f :write, :value 1}\r\n",
            "{:index 0, :type :invoke, :process 1, :f :write, :value 1} ; done",
            "",
        ];
        for text in refused {
            assert!(read_stream(&mut text.as_bytes(), &mut |_| {}).is_none(), "{text:?}");
        }
        // Indices that do not increase.
        let text = [LINES[0], LINES[0]].join("\n");
        assert!(read_stream(&mut text.as_bytes(), &mut |_| {}).is_none());
    }

    #[test]
    fn indices_must_increase_where_pieces_meet() {
        let text = LINES.join("\n");
        let pieces = read_stream(&mut text.as_bytes(), &mut |_| {}).expect("read");
        let ops: Vec<Line> = pieces.into_iter().flatten().collect();
        let (a, b) = ops.split_at(3);
        assert!(increasing(&[a.to_vec(), Vec::new(), b.to_vec()]));
        assert!(!increasing(&[b.to_vec(), a.to_vec()]));
        assert!(!increasing(&[a.to_vec(), a[2..].to_vec()]), "an index repeated");
    }

    #[test]
    fn a_large_text_reads_in_blocks_and_pieces_that_stitch_into_the_same_history() {
        let mut text = String::new();
        let mut i = 0u64;
        while text.len() < 3 * BLOCK_BYTES + 1000 {
            for (p, f, v) in
                [(i % 7, "write", "3"), (i % 7, "cas", "[3 4]"), (i % 7, "read", "nil")]
            {
                text.push_str(&format!(
                    "{{:index {i}, :time {}, :type :invoke, :process {p}, :f :{f}, :key {}, :value {v}}}\n",
                    i * 10,
                    i % 3
                ));
                i += 1;
            }
        }
        let pieces = read_stream(&mut text.as_bytes(), &mut |_| {}).expect("read");
        assert!(pieces.len() > 8, "read in {} pieces", pieces.len());
        assert!(agrees(&text));
    }
}
