//! A streaming reader for the EDN Jepsen writes, building ops straight from
//! the bytes, with no EDN tree in between.
//!
//! Jepsen's `history.edn` uses a small part of EDN: op maps of keywords,
//! integers, strings, `nil`, booleans, vectors and the odd nested map
//! (`[k v]` independent tuples, `[[:append 1 2] [:r 3 [1 2]]]`
//! transactions). This reader takes exactly that part and nothing else.
//! Whatever lies outside it (comments, `#_` discards, `^` metadata, tags,
//! sets, symbols, floats, big or `N`/`M` numbers, character literals,
//! string escapes other than `\" \\ \n \t \r`, deep nesting, non-ASCII
//! outside strings), and every mistake (a missing `:type`, a duplicate key,
//! an index that does not increase), makes it give up: the caller then
//! reads the file with the general reader (`edn_text` and edn-format),
//! which handles the rare forms as Clojure does and names the file, line
//! and field of every error. So this reader never has to get an edge case
//! or an error message right: it only has to read what it accepts exactly
//! as the general reader would, which the differential tests and the fuzz
//! target (`fuzz/fuzz_targets/edn.rs`) check.
//!
//! A large file is read on every core: the text is cut before op maps that
//! start a line, and each piece is read on its own, straight into its
//! stretch of the history's vector. A cut is trusted only if
//! the piece before it, read from a trusted start, ends exactly there; so a
//! `{` at the start of a line inside a string can never split an op.

use arcstr::ArcStr;
use rustc_hash::FxHashMap;
use thin_vec::ThinVec;

use crate::history::{Op, OpType, Process};
use crate::value::{Value, shared_str};

/// Ops read by the fast path: what `edn::parse` needs to build a history.
#[derive(Default)]
pub(crate) struct FastOps {
    pub ops: Vec<Op>,
    /// Each op's 1-based line.
    pub lines: Vec<u32>,
    /// Positions of the ops that named no process.
    pub unnamed: Vec<usize>,
}

/// How deep values may nest on the fast path (the op map is level 1).
/// Jepsen's values nest a handful of levels; deeper text goes to the general
/// reader, which bounds nesting and says so at its line. A low bound also
/// keeps this reader's recursion far from the end of any thread's stack.
const MAX_FAST_DEPTH: usize = 64;

/// Below this many bytes a file is read on one thread: handing pieces to the
/// pool would cost more than it saves.
pub(super) const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// Reads `text` if it is wholly in the subset this reader knows; `None`
/// sends it to the general reader.
pub(crate) fn parse(text: &str) -> Option<FastOps> {
    let bytes = text.as_bytes();
    let pieces = pieces_for(bytes.len());
    let whole = |pieces| {
        let mut stitch = Stitch::default();
        read_block(bytes, pieces, true, true, &mut stitch)?;
        stitch.finish()
    };
    match whole(pieces) {
        Some(ops) => Some(ops),
        // A cut that did not hold (inside a multi-line string, or in text
        // that is not in the subset at all): read it again in one piece,
        // which decides.
        None if pieces > 1 => whole(1),
        None => None,
    }
}

/// How many pieces to cut `len` bytes into: one per quarter megabyte, at
/// most four per core, one for small texts.
fn pieces_for(len: usize) -> usize {
    if len < PARALLEL_MIN_BYTES {
        1
    } else {
        (rayon::current_num_threads() * 4).min(len / (PARALLEL_MIN_BYTES / 4)).max(1)
    }
}

/// How much of a file [`parse_stream`] holds at a time: enough for four
/// pieces a core (see [`pieces_for`]).
pub(crate) const STREAM_BLOCK_BYTES: usize = 4 << 20;

/// Reads a history from `input` block by block (about `block` bytes each),
/// so that the file's text never lies in memory whole beside the history
/// it becomes: for a million transactions that text is 300 MB. Each block
/// ends where a line starts with `{`, is read on every core, and joins the
/// ops read so far as the pieces of one text do. `Ok(None)` when the text
/// is not wholly in this reader's subset, is not UTF-8, or a cut did not
/// hold: the caller then reads the whole file as before, which decides
/// (retrying in one piece, then the general reader, which words errors).
/// `total_bytes`, the input's length when known, sizes the history's
/// vector once instead of growing it block by block.
pub(crate) fn parse_stream(
    input: &mut (impl std::io::Read + Send),
    block: usize,
    total_bytes: Option<u64>,
) -> std::io::Result<Option<FastOps>> {
    let mut stitch = Stitch {
        total_bytes: total_bytes.and_then(|t| usize::try_from(t).ok()),
        ..Stitch::default()
    };
    let mut buf: Vec<u8> = Vec::with_capacity(block);
    let mut next: Vec<u8> = Vec::with_capacity(block);
    let mut eof = fill(input, &mut buf, block)?;
    let mut first = true;
    loop {
        let cut = if eof {
            buf.len()
        } else {
            match last_cut(&buf) {
                Some(cut) => cut,
                // No op starts a line in the block: read on until one does.
                None => {
                    let want = buf.len() * 2;
                    eof = fill(input, &mut buf, want)?;
                    continue;
                }
            }
        };
        if std::str::from_utf8(&buf[..cut]).is_err() {
            return Ok(None);
        }
        let this = &buf[..cut];
        let read = |stitch: &mut Stitch| read_block(this, pieces_for(cut), first, eof, stitch);
        if eof {
            return Ok(read(&mut stitch).and_then(|()| stitch.finish()));
        }
        // The next block is read from the file while this one is read into
        // ops, where it waited for them: a whole check of 100,000 register
        // ops (18 MB) took 44.4 ms so, against 50.9 (median of 40 runs,
        // alternating).
        next.clear();
        next.extend_from_slice(&buf[cut..]);
        let (done, more) = rayon::join(|| read(&mut stitch), || fill(input, &mut next, block));
        if done.is_none() {
            return Ok(None);
        }
        eof = more?;
        std::mem::swap(&mut buf, &mut next);
        first = false;
    }
}

/// Reads from `input` until `buf` holds `want` bytes or the input ends;
/// whether it ended.
pub(super) fn fill(
    input: &mut (impl std::io::Read + ?Sized),
    buf: &mut Vec<u8>,
    want: usize,
) -> std::io::Result<bool> {
    use std::io::Read;
    let missing = want.saturating_sub(buf.len());
    let got = (&mut *input).take(missing as u64).read_to_end(buf)?;
    Ok(got < missing)
}

/// The last offset in `bytes`, after its start, where a line starts with
/// `{` (after spaces).
fn last_cut(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    while let Some(newline) = memchr::memrchr(b'\n', &bytes[..end]) {
        let i = after_line_space(bytes, newline + 1);
        if bytes.get(i) == Some(&b'{') {
            return Some(i);
        }
        end = newline;
    }
    None
}

/// The ops read so far, from the blocks before: what joining the next
/// block's pieces needs.
#[derive(Default)]
struct Stitch {
    out: FastOps,
    /// Newlines before the next block.
    line_base: u32,
    /// The bracket that opened the history, read by the first block.
    opened: Option<u8>,
    /// The length of the whole text, when it is read block by block and
    /// its length is known.
    total_bytes: Option<usize>,
    /// Bytes of the text read so far.
    bytes_read: usize,
    /// The last `:index` read so far, while every op has had one.
    last_index: Option<u64>,
    /// Whether some op had no `:index`: the order of the indices is then
    /// checked over the whole history at the end.
    unindexed: bool,
}

impl Stitch {
    /// Makes room for `room` more ops, read from the next `block` bytes.
    fn reserve(&mut self, room: usize, block: usize) {
        self.bytes_read += block;
        let ops = &mut self.out.ops;
        let needed = ops.len() + room;
        if needed <= ops.capacity() {
            return;
        }
        // Growing the vector copies every op read so far (at this size the
        // allocator has no cheaper way), so a text read block by block gets
        // room for all its ops at once, guessed from how many ops its bytes
        // have held so far, with a quarter more for safety (a guess too
        // short only grows the vector as before). Room never written costs
        // no memory: the kernel backs only the pages written.
        let guess = match self.total_bytes {
            Some(total) if total > self.bytes_read => {
                let per_byte = needed as f64 / self.bytes_read as f64;
                (per_byte * total as f64 * 1.25) as usize
            }
            _ => needed,
        };
        ops.reserve_exact(guess.max(needed) - ops.len());
        self.out.lines.reserve_exact(guess.max(needed) - self.out.lines.len());
    }

    /// Joins a piece's order of indices to the order so far: `None` when
    /// the indices do not increase.
    fn order(&mut self, order: Order) -> Option<()> {
        if self.unindexed {
            return Some(());
        }
        match order {
            Order::Empty => {}
            Order::Increasing(first, last) => {
                if self.last_index.is_some_and(|before| first <= before) {
                    return None;
                }
                self.last_index = Some(last);
            }
            Order::Disordered => return None,
            Order::Unknown => self.unindexed = true,
        }
        Some(())
    }

    /// The history's ops, when their indices increase (the general reader
    /// words the error when they do not).
    fn finish(self) -> Option<FastOps> {
        let ops = &self.out.ops;
        if ops.is_empty() || self.unindexed && ops.windows(2).any(|w| w[1].index <= w[0].index) {
            return None;
        }
        Some(self.out)
    }
}

/// Reads `bytes` (a whole text, or a block of one, `first` and `last`
/// saying which ends of the text it holds) cut into about `pieces`
/// pieces, on every core, and joins its ops to `stitch`'s.
///
/// The ops are read straight into the history's vector: each piece gets
/// its own stretch of it, as long as the ops its lines start. Reading each
/// piece into a vector of its own and copying them into the history after
/// was a fifth of reading a 100k-op history, and all of it on one core:
/// the copy wrote every op a second time into memory the kernel had first
/// to clear. A piece whose ops do not fill its stretch exactly (ops that
/// share a line, a `{` that starts a line inside a string) still reads
/// right; its ops are then moved into place after, as before.
fn read_block(
    bytes: &[u8],
    pieces: usize,
    first: bool,
    last: bool,
    stitch: &mut Stitch,
) -> Option<()> {
    use rayon::prelude::*;
    let mut starts = vec![0usize];
    for k in 1..pieces {
        if let Some(cut) = cut_after(bytes, k * bytes.len() / pieces)
            && cut > *starts.last().unwrap_or(&0)
        {
            starts.push(cut);
        }
    }
    let n = starts.len();
    let ranges: Vec<(usize, usize)> =
        (0..n).map(|i| (starts[i], starts.get(i + 1).copied().unwrap_or(bytes.len()))).collect();
    let count = |(i, &(start, end)): (usize, &(usize, usize))| {
        op_starts(bytes, start, end, first && i == 0)
    };
    let sizes: Vec<usize> = if n == 1 {
        ranges.iter().enumerate().map(count).collect()
    } else {
        ranges.par_iter().enumerate().map(count).collect()
    };
    let room: usize = sizes.iter().sum();
    let base = stitch.out.ops.len();
    stitch.reserve(room, bytes.len());
    let out = &mut stitch.out;
    // The stretches hold placeholders until their ops replace them: the
    // vector's spare room cannot be lent out to be written without
    // `unsafe`, which this workspace forbids. Writing them on every core
    // also spreads the kernel's clearing of fresh pages over the cores.
    out.ops.par_extend((0..room).into_par_iter().map(|_| placeholder()));
    let mut slots: Vec<&mut [Op]> = Vec::with_capacity(n);
    let mut rest = &mut out.ops[base..];
    for &size in &sizes {
        let (slot, tail) = rest.split_at_mut(size);
        slots.push(slot);
        rest = tail;
    }
    let read = |(i, (&(start, end), slot)): (usize, (&(usize, usize), &mut [Op]))| {
        Reader::new(bytes, start).piece(end, first && i == 0, last && i + 1 == n, slot)
    };
    let read: Option<Vec<Piece>> = if n == 1 {
        ranges.iter().zip(slots).enumerate().map(read).collect()
    } else {
        ranges.par_iter().zip(slots).enumerate().map(read).collect()
    };
    let mut read = read?;
    // Trust each cut only where the piece before it ended exactly on it.
    for (i, piece) in read.iter().enumerate() {
        if piece.stopped != ranges[i].1 {
            return None;
        }
        if first && i == 0 {
            stitch.opened = piece.opened;
        }
        // The history's closing bracket must match its opening one, and
        // close it only at the very end.
        let closing = if last && i + 1 == n { stitch.opened.map(closer) } else { None };
        if piece.closed != closing {
            return None;
        }
        stitch.order(piece.order)?;
    }
    let out = &mut stitch.out;
    if read.iter().zip(&sizes).any(|(p, &size)| p.filled != size || !p.spill.is_empty()) {
        // Some piece's ops did not fill its stretch exactly: gather each
        // piece's ops, in order, without the placeholders left over.
        let mut tail = out.ops.split_off(base).into_iter();
        for (piece, &size) in read.iter_mut().zip(&sizes) {
            out.ops.extend(tail.by_ref().take(piece.filled));
            tail.by_ref().take(size - piece.filled).for_each(drop);
            out.ops.append(&mut piece.spill);
        }
    }
    let mut at = base;
    for piece in read {
        // A piece notes for each of its ops whether it had an index.
        let ops = &mut out.ops[at..at + piece.missing_index.len()];
        for (k, (op, &missing)) in ops.iter_mut().zip(&piece.missing_index).enumerate() {
            if missing {
                op.index = (at + k) as u64;
            }
        }
        out.lines.extend(piece.lines.iter().map(|&l| l + stitch.line_base));
        out.unnamed.extend(piece.unnamed.iter().map(|&p| p + at));
        stitch.line_base += piece.newlines;
        at += piece.missing_index.len();
    }
    Some(())
}

/// What a piece's stretch of the history holds until its op is read.
fn placeholder() -> Op {
    Op {
        index: 0,
        time: None,
        process: Process::Nemesis,
        kind: OpType::Info,
        f: ArcStr::new(),
        value: Value::Nil,
        key: None,
        node: None,
        error: None,
    }
}

/// How many op maps start a line in `bytes[start..end]` (the first piece
/// of a text counts the map after its opening bracket; any other piece
/// starts with a map): as many ops as a piece holds when Jepsen wrote it,
/// an op a line.
fn op_starts(bytes: &[u8], start: usize, end: usize, first: bool) -> usize {
    let mut i = after_line_space(bytes, start);
    if first && matches!(bytes.get(i), Some(b'[' | b'(')) {
        i = after_line_space(bytes, i + 1);
    }
    let mut count = usize::from(i < end && bytes.get(i) == Some(&b'{'));
    for newline in memchr::memchr_iter(b'\n', &bytes[start..end]) {
        let i = after_line_space(bytes, start + newline + 1);
        count += usize::from(i < end && bytes.get(i) == Some(&b'{'));
    }
    count
}

/// The first offset after `from` where a line starts with `{` (after
/// spaces), a place to cut the text into pieces.
fn cut_after(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let newline = at + memchr::memchr(b'\n', bytes.get(at..)?)?;
        let i = after_line_space(bytes, newline + 1);
        match bytes.get(i) {
            Some(b'{') => return Some(i),
            Some(_) => at = i,
            None => return None,
        }
    }
}

/// The first offset from `i` that is not space within a line (blanks,
/// carriage returns and commas): where a line's first form starts.
fn after_line_space(bytes: &[u8], mut i: usize) -> usize {
    while matches!(bytes.get(i), Some(b' ' | b'\t' | b'\r' | b',')) {
        i += 1;
    }
    i
}

fn closer(open: u8) -> u8 {
    if open == b'(' { b')' } else { b']' }
}

/// What one piece of the text read to.
struct Piece {
    /// How many of the piece's stretch of the history its ops filled.
    filled: usize,
    /// The ops that found the stretch full.
    spill: Vec<Op>,
    /// For each op, whether it had no `:index` (it is then its position in
    /// the history, known once the pieces are stitched).
    missing_index: Vec<bool>,
    /// How the piece's `:index`es run, when every op had one: the history's
    /// order is then checked only where pieces meet.
    order: Order,
    /// Each op's line, counted from 1 at the piece's start.
    lines: Vec<u32>,
    /// Positions in the piece of ops that named no process.
    unnamed: Vec<usize>,
    /// Newlines in the piece, up to where it stopped.
    newlines: u32,
    /// Where reading stopped: the end of the piece, if all went well.
    stopped: usize,
    /// The bracket that opened the history (first piece only).
    opened: Option<u8>,
    /// The bracket that closed it.
    closed: Option<u8>,
}

/// How a piece's ops' `:index`es run.
#[derive(Clone, Copy)]
enum Order {
    /// No op yet.
    Empty,
    /// Every op had an index, each above the one before: the first and
    /// the last.
    Increasing(u64, u64),
    /// Every op so far had an index, and one did not rise above the one
    /// before it.
    Disordered,
    /// Some op had no index: it takes its position in the history, known
    /// only once the pieces are joined.
    Unknown,
}

/// The op map's fields this reader gives meaning to, as bits for finding
/// duplicates.
const TYPE: u16 = 1;
const PROCESS: u16 = 1 << 1;
const F: u16 = 1 << 2;
const INDEX: u16 = 1 << 3;
const TIME: u16 = 1 << 4;
const VALUE: u16 = 1 << 5;
const KEY: u16 = 1 << 6;
const NODE: u16 = 1 << 7;
const ERROR: u16 = 1 << 8;

/// The bytes a plain keyword's name is made of: ASCII letters and digits
/// and `- _ ? ! * .`, which every EDN reader agrees on.
static KEYWORD_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'?' | b'!' | b'*' | b'.');
        b += 1;
    }
    table
};

/// How [`Reader::skip_space`] and [`Reader::at_delimiter`] see a byte.
const SPACE: u8 = 0;
const NEWLINE: u8 = 1;
/// `]`, `}` and `)`: a delimiter that is not space.
const CLOSE: u8 = 2;
/// Space to the general reader that this one leaves to it: a comment's
/// `;`, vertical tab, form feed, and every non-ASCII byte (Unicode space).
const FOREIGN: u8 = 3;
const OTHER: u8 = 4;
static BYTE_CLASS: [u8; 256] = {
    let mut table = [OTHER; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b' ' | b',' | b'\t' | b'\r' => SPACE,
            b'\n' => NEWLINE,
            b']' | b'}' | b')' => CLOSE,
            b';' | 0x0b | 0x0c | 0x80.. => FOREIGN,
            _ => OTHER,
        };
        b += 1;
    }
    table
};

/// An integer [`Reader::int_list`] has read, if [`Reader::integer`] would
/// take it: at most 18 digits (so it fits), no sign before a zero.
#[inline]
fn finish_integer(n: i64, digits: usize, negative: bool, zero: bool) -> Option<i64> {
    (digits <= 18 && !(zero && negative)).then_some(if negative { -n } else { n })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Newlines passed since the piece started.
    newlines: u32,
    /// Keywords and short strings read so far, so a repeated one costs a
    /// reference count instead of an allocation (the thread's
    /// `shared_str` table would need a hash of its own and a borrow).
    shared: FxHashMap<&'a [u8], ArcStr>,
    /// The items of the lists being read, innermost last: a list's items
    /// are gathered here and copied once, in one piece, into a vector of
    /// their length (`split_off`), so a long list (a read's hundred
    /// elements) grows no vector of its own.
    stack: ThinVec<Value>,
    /// The integers of the list [`Reader::int_list`] is reading.
    ints: Vec<i64>,
    /// The last names [`Reader::shared`] looked up, and where the next
    /// one goes.
    recent: [Option<(&'a [u8], ArcStr)>; RECENT],
    next_recent: usize,
}

/// How many names a reader remembers without hashing: what one line of a
/// history repeats (its function and a transaction's micro-op names).
const RECENT: usize = 4;

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], pos: usize) -> Self {
        Reader {
            bytes,
            pos,
            newlines: 0,
            shared: FxHashMap::default(),
            stack: ThinVec::new(),
            ints: Vec::new(),
            recent: Default::default(),
            next_recent: 0,
        }
    }

    /// Reads op maps from `self.pos` until the first one that starts at
    /// or past `end`, into `slot` while it has room; the first piece also
    /// reads the history's opening bracket, the last its closing one and
    /// the end of the text.
    fn piece(mut self, end: usize, first: bool, last: bool, slot: &mut [Op]) -> Option<Piece> {
        let mut piece = Piece {
            filled: 0,
            spill: Vec::new(),
            missing_index: Vec::with_capacity(slot.len()),
            order: Order::Empty,
            lines: Vec::with_capacity(slot.len()),
            unnamed: Vec::new(),
            newlines: 0,
            stopped: 0,
            opened: None,
            closed: None,
        };
        if first {
            self.skip_space()?;
            if let Some(&open @ (b'[' | b'(')) = self.bytes.get(self.pos) {
                piece.opened = Some(open);
                self.pos += 1;
            }
        }
        loop {
            self.skip_space()?;
            match self.bytes.get(self.pos) {
                None => break,
                Some(_) if self.pos >= end && !last => break,
                Some(b'{') => {
                    let line = self.newlines + 1;
                    self.pos += 1;
                    let (op, missing_index, unnamed) = self.op()?;
                    // Each index is compared with the one before it as it
                    // is read, so the history's order is checked on every
                    // core, and not in one pass over all ops at the end,
                    // on one core (0.9 ms of a whole check of 100,000
                    // register ops).
                    piece.order = match piece.order {
                        _ if missing_index => Order::Unknown,
                        Order::Empty => Order::Increasing(op.index, op.index),
                        Order::Increasing(first, last) if op.index > last => {
                            Order::Increasing(first, op.index)
                        }
                        Order::Increasing(..) => Order::Disordered,
                        other => other,
                    };
                    if unnamed {
                        piece.unnamed.push(piece.missing_index.len());
                    }
                    match slot.get_mut(piece.filled) {
                        Some(place) => {
                            // A placeholder owns nothing: forgetting it
                            // spares its drop, a check of every field.
                            std::mem::forget(std::mem::replace(place, op));
                            piece.filled += 1;
                        }
                        None => piece.spill.push(op),
                    }
                    piece.missing_index.push(missing_index);
                    piece.lines.push(line);
                }
                Some(&close @ (b']' | b')')) if last && piece.closed.is_none() => {
                    piece.closed = Some(close);
                    self.pos += 1;
                    // Nothing but space may follow the history.
                    self.skip_space()?;
                    if self.pos != self.bytes.len() {
                        return None;
                    }
                }
                Some(_) => return None,
            }
        }
        piece.newlines = self.newlines;
        piece.stopped = self.pos;
        Some(piece)
    }

    /// Skips whitespace and commas; `None` on anything the general reader
    /// must see (comments, Unicode whitespace).
    #[inline]
    fn skip_space(&mut self) -> Option<()> {
        // One table lookup a byte: this runs between every two tokens.
        while let Some(&b) = self.bytes.get(self.pos) {
            match BYTE_CLASS[usize::from(b)] {
                SPACE => {}
                NEWLINE => self.newlines += 1,
                FOREIGN => return None,
                _ => return Some(()),
            }
            self.pos += 1;
        }
        Some(())
    }

    /// Whether the byte at `self.pos` ends an atom as a delimiter the
    /// general reader also reads as one.
    #[inline]
    fn at_delimiter(&self) -> bool {
        self.bytes.get(self.pos).is_none_or(|&b| BYTE_CLASS[usize::from(b)] <= CLOSE)
    }

    /// An op map's body, after its `{`: the op, whether it had no
    /// `:index`, and whether it named no process.
    fn op(&mut self) -> Option<(Op, bool, bool)> {
        let mut seen = 0u16;
        let mut other_keys: Vec<&'a [u8]> = Vec::new();
        let mut kind = None;
        let mut process = None;
        let mut f = None;
        let mut index = None;
        let mut time = None;
        let mut value = Value::Nil;
        let mut key = None;
        let mut node = None;
        let mut error = None;
        loop {
            self.skip_space()?;
            match self.bytes.get(self.pos)? {
                b'}' => {
                    self.pos += 1;
                    break;
                }
                b':' => {}
                _ => return None,
            }
            let (name, bit) = self.op_key()?;
            if bit == 0 {
                if other_keys.contains(&name) {
                    return None;
                }
                other_keys.push(name);
            } else if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            self.skip_space()?;
            match bit {
                TYPE => {
                    kind = Some(self.op_type()?);
                }
                PROCESS => {
                    process = match self.bytes.get(self.pos)? {
                        b'0'..=b'9' => Some(Process::Client(self.natural()?)),
                        _ => match self.value(2)? {
                            Value::Nil => None,
                            Value::Keyword(k) if k == "nemesis" => Some(Process::Nemesis),
                            _ => return None,
                        },
                    };
                }
                F => {
                    let name = self.keyword_after_colon()?;
                    f = Some(self.shared(name));
                }
                INDEX => index = Some(self.natural()?),
                TIME => match self.bytes.get(self.pos)? {
                    b'0'..=b'9' => time = Some(self.natural()?),
                    _ => match self.value(2)? {
                        Value::Nil => {}
                        _ => return None,
                    },
                },
                VALUE => value = self.item(2)?,
                KEY => key = Some(self.item(2)?),
                NODE => {
                    node = Some(match self.value(2)? {
                        Value::Str(s) | Value::Keyword(s) => s,
                        other => shared_str(&other.to_string()),
                    });
                }
                ERROR => error = Some(self.value(2)?),
                _ => {
                    self.value(2)?;
                }
            }
        }
        let op = Op {
            index: index.unwrap_or(0),
            time,
            process: process.unwrap_or(Process::Client(0)),
            kind: kind?,
            f: f.unwrap_or_else(|| arcstr::literal!("txn")),
            value,
            key,
            node,
            error,
        };
        Some((op, index.is_none(), process.is_none()))
    }

    /// An op map's key at `self.pos` (its `:`): its name, and the bit of the
    /// field it names (0 for a key this reader gives no meaning to).
    ///
    /// Every op has six or so keys, and scanning each name a byte at a
    /// time was the largest single part of reading an op map (a sixth of
    /// its samples, by `perf`, on a register history): the names this
    /// reader knows are told apart by their first letter and compared
    /// whole, and only other keys are scanned.
    #[inline]
    fn op_key(&mut self) -> Option<(&'a [u8], u16)> {
        let start = self.pos + 1;
        let rest = self.bytes.get(start..)?;
        let (len, bit) = match rest.first() {
            Some(b't') if rest.starts_with(b"type") => (4, TYPE),
            Some(b't') if rest.starts_with(b"time") => (4, TIME),
            Some(b'p') if rest.starts_with(b"process") => (7, PROCESS),
            Some(b'f') => (1, F),
            Some(b'i') if rest.starts_with(b"index") => (5, INDEX),
            Some(b'v') if rest.starts_with(b"value") => (5, VALUE),
            Some(b'k') if rest.starts_with(b"key") => (3, KEY),
            Some(b'n') if rest.starts_with(b"node") => (4, NODE),
            Some(b'e') if rest.starts_with(b"error") => (5, ERROR),
            _ => (0, 0),
        };
        // A known name only if the keyword ends there: `:timeout` is not
        // `:time`.
        if bit != 0 && !rest.get(len).is_some_and(|&b| KEYWORD_BYTE[usize::from(b)]) {
            self.pos = start + len;
            return self.at_delimiter().then(|| (&self.bytes[start..start + len], bit));
        }
        Some((self.keyword_name()?, 0))
    }

    /// An op's `:type` at `self.pos`: one of the four keywords, followed by
    /// a delimiter.
    #[inline]
    fn op_type(&mut self) -> Option<OpType> {
        let rest = self.bytes.get(self.pos..)?;
        let (len, kind) = match rest.get(1)? {
            b'i' if rest.starts_with(b":invoke") => (7, OpType::Invoke),
            b'i' if rest.starts_with(b":info") => (5, OpType::Info),
            b'o' if rest.starts_with(b":ok") => (3, OpType::Ok),
            b'f' if rest.starts_with(b":fail") => (5, OpType::Fail),
            _ => return None,
        };
        self.pos += len;
        self.at_delimiter().then_some(kind)
    }

    /// A natural number at `self.pos`: at most 18 digits (so it fits in 64
    /// bits; the general reader makes a longer one a big integer), no
    /// leading zero, a delimiter after. The fields that hold one (an index,
    /// a time, a process) read it in place, with no `Value` made and
    /// matched.
    #[inline]
    fn natural(&mut self) -> Option<u64> {
        let start = self.pos;
        let mut i = start;
        let mut n: u64 = 0;
        while let Some(&b) = self.bytes.get(i) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            // Wrapping: more than 18 digits is refused below.
            n = n.wrapping_mul(10).wrapping_add(u64::from(digit));
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || digits > 18 || (self.bytes[start] == b'0' && digits > 1) {
            return None;
        }
        self.pos = i;
        self.at_delimiter().then_some(n)
    }

    /// A value at `self.pos`, nested `depth` deep, where integers and
    /// keywords are common (an op's fields, a micro-op's items): those are
    /// read in place, rather than by a call to [`Reader::value`] that
    /// returns each through memory.
    #[inline]
    fn item(&mut self, depth: usize) -> Option<Value> {
        match *self.bytes.get(self.pos)? {
            b'-' | b'0'..=b'9' => self.integer(),
            b':' => self.keyword(),
            _ => self.value(depth),
        }
    }

    /// The name of a keyword at `self.pos` (which is its `:`), if it is a
    /// plain one: no namespace, only characters every EDN reader agrees on,
    /// and a delimiter after it.
    #[inline]
    fn keyword_name(&mut self) -> Option<&'a [u8]> {
        let start = self.pos + 1;
        let mut i = start;
        while let Some(&b) = self.bytes.get(i) {
            if KEYWORD_BYTE[usize::from(b)] {
                i += 1;
            } else {
                break;
            }
        }
        if i == start {
            return None;
        }
        self.pos = i;
        self.at_delimiter().then(|| &self.bytes[start..i])
    }

    /// A keyword value at `self.pos` (its `:`), its name shared.
    #[inline]
    fn keyword(&mut self) -> Option<Value> {
        let name = self.keyword_name()?;
        Some(Value::Keyword(self.shared(name)))
    }

    /// [`Reader::keyword_name`] where a keyword must be.
    #[inline]
    fn keyword_after_colon(&mut self) -> Option<&'a [u8]> {
        if self.bytes.get(self.pos) != Some(&b':') {
            return None;
        }
        self.keyword_name()
    }

    /// Shared text for `name`, which is ASCII.
    #[inline]
    fn shared(&mut self, name: &'a [u8]) -> ArcStr {
        // A history repeats a handful of names on every line (`:txn`,
        // `:append`, `:r`): the last few are compared before any hashing.
        for (seen, s) in self.recent.iter().flatten() {
            if seen.len() == name.len() && seen.iter().zip(name).all(|(a, b)| a == b) {
                return s.clone();
            }
        }
        let s = match self.shared.get(name) {
            Some(s) => s.clone(),
            None => {
                let s = shared_str(std::str::from_utf8(name).unwrap_or_default());
                if self.shared.len() < 4096 {
                    self.shared.insert(name, s.clone());
                }
                s
            }
        };
        self.recent[self.next_recent] = Some((name, s.clone()));
        self.next_recent = (self.next_recent + 1) % RECENT;
        s
    }

    /// One value at `self.pos`, nested `depth` deep.
    fn value(&mut self, depth: usize) -> Option<Value> {
        match *self.bytes.get(self.pos)? {
            b':' => self.keyword(),
            b'-' | b'0'..=b'9' => self.integer(),
            b'"' => self.string(),
            open @ (b'[' | b'(') => self.list(open, depth).map(Value::List),
            b'{' => {
                if depth >= MAX_FAST_DEPTH {
                    return None;
                }
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    self.skip_space()?;
                    if *self.bytes.get(self.pos)? == b'}' {
                        self.pos += 1;
                        break;
                    }
                    let k = self.value(depth + 1)?;
                    self.skip_space()?;
                    if *self.bytes.get(self.pos)? == b'}' {
                        return None;
                    }
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                }
                // A duplicate key is an error to the general reader.
                let n = entries.len();
                let map = Value::map(entries);
                match &map {
                    Value::Map(m) if m.len() == n => Some(map),
                    _ => None,
                }
            }
            b'n' => self.word(b"nil", Value::Nil),
            b't' => self.word(b"true", Value::Bool(true)),
            b'f' => self.word(b"false", Value::Bool(false)),
            _ => None,
        }
    }

    /// A list from its opening bracket `open`, nested `depth` deep: its
    /// items. A list comes back as the pointer it is, in a register: as a
    /// `Value` returned through memory, the copy that pushed it on read it
    /// back before its bytes had reached the cache (a stalled store
    /// forward), 27% of the list code's samples on transactions by `perf`.
    fn list(&mut self, open: u8, depth: usize) -> Option<ThinVec<Value>> {
        if depth >= MAX_FAST_DEPTH {
            return None;
        }
        let close = closer(open);
        self.pos += 1;
        if let Some(b'-' | b'0'..=b'9') = self.bytes.get(self.pos) {
            let from = self.pos;
            if let Some(list) = self.int_list(close) {
                return Some(list);
            }
            // Something else is in the list: read it item by item.
            self.pos = from;
        }
        // Gathered on the reader's stack, then allocated once at their
        // length.
        let start = self.stack.len();
        loop {
            self.skip_space()?;
            match *self.bytes.get(self.pos)? {
                b if b == close => {
                    self.pos += 1;
                    // One copy of the items' bytes into a list of their
                    // length (moving them one at a time into it was a tenth
                    // of reading a transaction).
                    return Some(self.stack.split_off(start));
                }
                b']' | b')' | b'}' => return None,
                b'-' | b'0'..=b'9' => {
                    let n = self.signed()?;
                    self.stack.push(Value::Int(n));
                }
                b':' => {
                    let name = self.keyword_name()?;
                    let name = self.shared(name);
                    self.stack.push(Value::Keyword(name));
                }
                open @ (b'[' | b'(') => {
                    let list = self.list(open, depth + 1)?;
                    self.stack.push(Value::List(list));
                }
                _ => {
                    let v = self.value(depth + 1)?;
                    self.stack.push(v);
                }
            }
        }
    }

    #[inline]
    fn word(&mut self, word: &[u8], value: Value) -> Option<Value> {
        if !self.bytes[self.pos..].starts_with(word) {
            return None;
        }
        self.pos += word.len();
        self.at_delimiter().then_some(value)
    }

    /// An integer of at most 18 digits, which always fits in 64 bits, with
    /// no leading zero and no sign before a zero: a [`Reader::natural`],
    /// perhaps after a `-`.
    #[inline]
    fn integer(&mut self) -> Option<Value> {
        self.signed().map(Value::Int)
    }

    /// [`Reader::integer`]'s number.
    #[inline]
    fn signed(&mut self) -> Option<i64> {
        let negative = self.bytes[self.pos] == b'-';
        self.pos += usize::from(negative);
        let n = self.natural()? as i64;
        (!(negative && n == 0)).then_some(if negative { -n } else { n })
    }

    /// A list of integers alone (`[1 2 3]`), from just after its opening
    /// bracket, or `None` with nothing consumed that matters (the caller
    /// reads the list item by item from the same place).
    ///
    /// Nearly every value in a list-append history is such a list, a read's
    /// elements: tens of millions of integers in a million transactions.
    /// One tight loop reads them as plain numbers, which then become the
    /// list's values in one pass, allocated once at their count. Integers follow
    /// [`Reader::integer`]'s rules; the only separators taken are spaces
    /// and commas, so lines are still counted by the general path. The
    /// list's end is found first (memchr): a list nested in one that starts
    /// with an integer is looked over once more a level, and levels stop at
    /// `MAX_FAST_DEPTH`.
    #[inline]
    fn int_list(&mut self, close: u8) -> Option<ThinVec<Value>> {
        let rest = &self.bytes[self.pos..];
        let body = &rest[..memchr::memchr(close, rest)?];
        // Plain numbers first: a value pushed one at a time was built
        // apart and copied in whole, reading it back before its bytes had
        // reached the cache (a stalled store forward), a third of this
        // loop's samples by `perf`; made in one pass, each is stored
        // straight into the list.
        let ints = &mut self.ints;
        ints.clear();
        // The integer being read: its value so far, digits, sign, and
        // whether it began with a zero.
        let mut n: i64 = 0;
        let mut digits = 0usize;
        let mut negative = false;
        let mut zero = false;
        for &b in body {
            match b {
                b'0'..=b'9' => {
                    if digits == 0 {
                        zero = b == b'0';
                    } else if zero {
                        return None;
                    }
                    // Wrapping: more than 18 digits is refused below,
                    // whatever the sum came to.
                    n = n.wrapping_mul(10).wrapping_add(i64::from(b - b'0'));
                    digits += 1;
                }
                b' ' | b',' if digits > 0 => {
                    ints.push(finish_integer(n, digits, negative, zero)?);
                    (n, digits, negative) = (0, 0, false);
                }
                b' ' | b',' if !negative => {}
                b'-' if digits == 0 && !negative => negative = true,
                _ => return None,
            }
        }
        if digits > 0 {
            ints.push(finish_integer(n, digits, negative, zero)?);
        } else if negative {
            return None;
        }
        self.pos += body.len() + 1;
        let mut list = ThinVec::with_capacity(ints.len());
        list.extend(ints.iter().map(|&n| Value::Int(n)));
        Some(list)
    }

    /// A string from its opening quote: its text, with the common escapes.
    fn string(&mut self) -> Option<Value> {
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped: Option<Vec<u8>> = None;
        let mut from = start;
        loop {
            match *self.bytes.get(i)? {
                b'"' => break,
                b'\\' => {
                    let out = escaped.get_or_insert_with(Vec::new);
                    out.extend_from_slice(&self.bytes[from..i]);
                    out.push(match *self.bytes.get(i + 1)? {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        _ => return None,
                    });
                    i += 2;
                    from = i;
                }
                b'\n' => {
                    self.newlines += 1;
                    i += 1;
                }
                _ => i += 1,
            }
        }
        self.pos = i + 1;
        // A string runs straight into what follows it in EDN (`"a"b`); the
        // general reader decides what that means.
        if !self.at_delimiter() {
            return None;
        }
        // The text between quotes is whole UTF-8 characters: the file is
        // UTF-8 and the quotes and backslashes cut only at ASCII bytes.
        let text = match escaped {
            None => std::str::from_utf8(&self.bytes[start..i]).ok()?.to_owned(),
            Some(mut out) => {
                out.extend_from_slice(&self.bytes[from..i]);
                String::from_utf8(out).ok()?
            }
        };
        Some(Value::str(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::edn::parse_general;

    /// The fast path and the general reader give the same history.
    fn same(text: &str) {
        let fast = parse(text).unwrap_or_else(|| panic!("fast path refused {text:?}"));
        let general = parse_general(text, "h.edn").expect("general reader");
        assert_eq!(fast.ops, general.ops(), "{text:?}");
        let lines: Vec<u32> =
            (0..general.len()).map(|i| general.locate(i).line.unwrap_or(0) as u32).collect();
        assert_eq!(fast.lines, lines, "{text:?}");
    }

    #[test]
    fn reads_jepsen_shapes_as_the_general_reader_does() {
        same(
            "{:index 0, :time 1000, :type :invoke, :process 16, :f :read, :key 7, :value nil}\n\
              {:index 1, :time 2000, :type :ok, :process 16, :f :read, :key 7, :value 3}\n",
        );
        same(
            "[{:type :invoke, :f :txn, :value [[:append 1 2] [:r 3 nil]], :process 0}\n \
               {:type :ok, :f :txn, :value [[:append 1 2] [:r 3 [1 2]]], :process 0}]",
        );
        same(
            "({:type :invoke, :f :write, :value [4 -17], :process :nemesis, :node \"n1\"}\n\
              {:type :info, :f :write, :value [4 -17], :process nil, :error {:why \"a\\\"b\\n\" :x [true false]}})",
        );
        // Keys that start as the known ones do, and are others.
        same(
            "{:type :invoke, :f :read, :process 0, :timeout 5, :types [1], :f2 3, :indexes 2, \
               :keys 1, :errors 0, :nodes 1, :values 2, :processes 3, :time 4, :index 7}",
        );
        same(
            "{:type :invoke, :f :cas, :value [1 2], :process 3, :extra {:a 1 :b \"é\"}}\n\n\n\
              {:type :fail, :f :cas, :value [1 2], :process 3, :node :n2, :error \"multi\nline\"}\n\
              {:type :invoke, :f :read, :process 4}",
        );
    }

    /// Lists of integers alone take their own loop; whatever it refuses
    /// is read item by item, and what neither takes goes to the general
    /// reader.
    #[test]
    fn integer_lists_read_as_the_general_reader_does() {
        let op = |value: &str| format!("{{:type :ok, :f :txn, :process 0, :value {value}}}\n");
        for value in [
            "[1 2 3]",
            "[1,2 ,, 3 ]",
            "[-5 0 17 -123456789012345678 123456789012345678]",
            "(1 2)",
            "[0]",
            "[1\n2]",
            "[1 :a]",
            "[1 [2 3] 4]",
            "[[:r 1 [1 2]] [:append 2 3] [:r 3 []]]",
            "[1 \"2\"]",
            "[1 nil]",
        ] {
            same(&op(value));
        }
        for value in [
            "[01]",
            "[1 -0]",
            "[-0]",
            "[1234567890123456789]",
            "[1-2]",
            "[- 1]",
            "[1 2)",
            "[1 -]",
            "[1 2",
        ] {
            assert!(parse(&op(value)).is_none(), "{value}");
        }
    }

    #[test]
    fn leaves_the_rare_forms_and_every_error_to_the_general_reader() {
        for text in [
            "{:type :invoke, :f :read, :process 0} ; a comment",
            "#_{:x 1} {:type :invoke, :f :read, :process 0}",
            "{:type :invoke, :f :read, :process 0, :value ^:m [1]}",
            "{:type :invoke, :f :read, :process 0, :value #{1}}",
            "{:type :invoke, :f :read, :process 0, :value 12345678901234567890}",
            "{:type :invoke, :f :read, :process 0, :value 1N}",
            "{:type :invoke, :f :read, :process 0, :value 1.5}",
            "{:type :invoke, :f :read, :process 0, :value \\a}",
            "{:type :invoke, :f :read, :process 0, :value sym}",
            "{:type :invoke, :f :read, :process 0, :value 01}",
            "{:type :invoke, :f :read, :process 0, :value :a/b}",
            "{:type :invoke, :f :read, :process 0, :value \"\\u0041\"}",
            "{:type :invoke, :f :read, :process 0, :value {:a 1 :a 2}}",
            "{:type :invoke, :f :read, :process 0, :f :write}",
            "{:type :okay, :f :read, :process 0}",
            "{:type :invoked, :f :read, :process 0}",
            "{:type :ok/x, :f :read, :process 0}",
            "{:type :invoke, :f/x :read, :process 0}",
            "{:type :invoke, :time/x 1, :f :read, :process 0}",
            "{:f :read, :process 0}",
            "{:type :invoke, :f :read, :process \"p\"}",
            "{:index 2, :type :invoke, :f :read} {:index 1, :type :invoke, :f :read}",
            "[{:type :invoke, :f :read, :process 0})",
            "[{:type :invoke, :f :read, :process 0}] {:type :invoke}",
            "{:type :invoke, :f :read, :process 0",
            "",
        ] {
            assert!(parse(text).is_none(), "{text:?}");
        }
    }

    /// A large file is read in pieces; a cut inside a string (a line that
    /// starts with `{` within a string) must not split an op.
    #[test]
    fn pieces_stitch_into_the_same_history() {
        let mut text = String::from("[");
        for i in 0..60_000 {
            let value =
                if i % 1000 == 7 { "\"x\n{:type :ok}\n\"".to_owned() } else { i.to_string() };
            text.push_str(&format!(
                "{{:index {i}, :type :invoke, :process {}, :f :write, :value {value}}}\n",
                i % 7
            ));
        }
        text.push(']');
        assert!(text.len() > PARALLEL_MIN_BYTES);
        same(&text);
    }

    /// Read block by block, a file gives what its whole text gives: the
    /// same ops, lines, numbering and unnamed processes, whatever the block
    /// size; and what the whole text refuses, the blocks refuse too.
    #[test]
    fn blocks_read_as_the_whole_text() {
        let mut text = String::from("[");
        for i in 0..3_000 {
            let process = if i % 97 == 5 { String::new() } else { format!(", :process {}", i % 7) };
            let index = if i % 2 == 0 { format!(":index {i}, ") } else { String::new() };
            text.push_str(&format!(
                "{{{index}:type :invoke{process}, :f :txn, :value [[:append {i} 1] [:r 3 [1 2]]]}}\n\n"
            ));
        }
        text.push(']');
        let whole = parse(&text).expect("the whole text is in the fast subset");
        for block in [64, 1000, 4096, 1 << 20] {
            let streamed = parse_stream(&mut text.as_bytes(), block, Some(text.len() as u64))
                .expect("reading from memory")
                .expect("blocks in the fast subset");
            assert_eq!(streamed.ops, whole.ops, "block {block}");
            assert_eq!(streamed.lines, whole.lines, "block {block}");
            assert_eq!(streamed.unnamed, whole.unnamed, "block {block}");
        }
        // A closing bracket that does not match and indices that go back
        // are refused by blocks as by the whole text. A string holding a
        // line that starts with `{` may fall across a block's end: the
        // blocks then either refuse (the caller reads the whole text) or
        // read it as the whole text does.
        let wrong_close = format!("{}}}", &text[..text.len() - 1]);
        let backwards = format!("{{:index 9, :type :invoke, :f :x}}\n{}", &text[1..text.len() - 1]);
        let line = |i: usize| format!("{{:type :invoke, :f :txn, :value [[:append {i} 1]]}}\n");
        let split_string = format!(
            "{}{{:type :ok, :f :x, :value \"a\n{{b\"}}\n{}",
            (0..1500).map(line).collect::<String>(),
            (1500..3000).map(line).collect::<String>()
        );
        assert!(parse(&split_string).is_some(), "the fast reader reads the string");
        for t in [wrong_close, backwards, split_string] {
            let whole = parse(&t);
            for block in [64, 1000, 4096] {
                match parse_stream(&mut t.as_bytes(), block, None).expect("reading from memory") {
                    None => {}
                    Some(streamed) => {
                        let whole = whole.as_ref().expect("blocks read only what the text reads");
                        assert_eq!(streamed.ops, whole.ops, "block {block}");
                        assert_eq!(streamed.lines, whole.lines, "block {block}");
                    }
                }
            }
        }
    }

    /// Each piece reads its ops into its own stretch of the history, as
    /// long as the ops its lines start. Pieces whose ops overflow it (two
    /// ops on a line) or leave part of it empty (a `{` that starts a line
    /// inside a string) read as the general reader does, whole or block
    /// by block: the same ops, indices, lines and unnamed processes.
    #[test]
    fn pieces_that_miscount_their_ops_read_as_the_general_reader_does() {
        let mut text = String::from("[");
        for i in 0..30_000 {
            let index = if i % 3 == 0 { String::new() } else { format!(":index {i}, ") };
            let process =
                if i % 101 == 9 { String::new() } else { format!(", :process {}", i % 5) };
            let value = if i % 997 == 3 { format!("\"v\n{{:x {i}}}\n\"") } else { i.to_string() };
            text.push_str(&format!("{{{index}:type :invoke{process}, :f :write, :value {value}}}"));
            // Every seventh op shares its line with the next.
            text.push_str(if i % 7 == 0 { " " } else { "\n" });
        }
        text.push(']');
        assert!(text.len() > PARALLEL_MIN_BYTES);
        let whole = parse(&text).expect("the fast reader reads it");
        let general = parse_general(&text, "h.edn").expect("general reader");
        let unnamed: Vec<usize> = (0..30_000).filter(|i| i % 101 == 9).collect();
        assert_eq!(whole.unnamed, unnamed);
        let mut named = whole.ops.clone();
        assert_eq!(crate::formats::name_unnamed_processes(&mut named, &whole.unnamed), Some(5));
        assert_eq!(named, general.ops());
        let lines: Vec<u32> =
            (0..general.len()).map(|i| general.locate(i).line.unwrap_or(0) as u32).collect();
        assert_eq!(whole.lines, lines);
        for block in [4096, 1 << 16, 1 << 20] {
            for total in [None, Some(text.len() as u64), Some(64)] {
                let streamed = parse_stream(&mut text.as_bytes(), block, total)
                    .expect("reading from memory")
                    .expect("blocks in the fast subset");
                assert_eq!(streamed.ops, whole.ops, "block {block}, total {total:?}");
                assert_eq!(streamed.lines, whole.lines, "block {block}, total {total:?}");
                assert_eq!(streamed.unnamed, whole.unnamed, "block {block}, total {total:?}");
            }
        }
    }

    /// Bytes that are not UTF-8, in any block and any piece of it, send
    /// the file to the whole-text reading, which words the error.
    #[test]
    fn blocks_that_are_not_utf8_are_refused() {
        let line = |i: usize| {
            format!("{{:index {i}, :type :invoke, :process 0, :f :read, :value \"a\"}}\n")
        };
        let text: String = (0..30_000).map(line).collect();
        assert!(parse_stream(&mut text.as_bytes(), 1 << 20, None).expect("in memory").is_some());
        for at in [3, text.len() / 3, text.len() - 5] {
            // Inside a string (`"a"` becomes a lone continuation byte).
            let at = at + text[at..].find("\"a\"").expect("a string follows") + 1;
            let mut bytes = text.clone().into_bytes();
            bytes[at] = 0x80;
            for block in [4096, 1 << 20] {
                let read = parse_stream(&mut bytes.as_slice(), block, None).expect("in memory");
                assert!(read.is_none(), "byte {at}, block {block}");
            }
        }
    }

    /// A read that fails while the block before it is being read into ops
    /// is the error, not a shorter history.
    #[test]
    fn a_failed_read_of_the_next_block_is_the_error() {
        struct Failing<'a>(&'a [u8]);
        impl std::io::Read for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0.is_empty() {
                    return Err(std::io::Error::other("the disk went away"));
                }
                let n = buf.len().min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let text: String = (0..200)
            .map(|i| format!("{{:index {i}, :type :invoke, :process 0, :f :read}}\n"))
            .collect();
        let e = parse_stream(&mut Failing(text.as_bytes()), 1000, None)
            .err()
            .expect("the failed read is the error");
        assert_eq!(e.to_string(), "the disk went away");
    }

    #[test]
    fn indices_that_fall_where_pieces_meet_or_inside_one_are_refused() {
        // Each piece checks its own indices as it reads them, and the
        // join checks where pieces meet: a fall in either place must send
        // the text to the general reader, which words the error.
        let line = |index: u64| {
            format!("{{:index {index}, :type :invoke, :process 1, :f :write, :value 5}}\n")
        };
        let rising: String = (0..40_000).map(line).collect();
        assert!(rising.len() > PARALLEL_MIN_BYTES);
        assert!(parse(&rising).is_some());
        let bytes = rising.as_bytes();
        let pieces = pieces_for(bytes.len());
        assert!(pieces > 1);
        // The line the second piece starts with, as `read_block` cuts.
        let cut = cut_after(bytes, bytes.len() / pieces).expect("a cut");
        let at = bytes[..cut].iter().filter(|&&b| b == b'\n').count() as u64;
        for fall in [at, at + 5] {
            // Op `fall` gets the index of the op before it: at the cut, the
            // fall is where two pieces meet; five ops on, inside a piece.
            let text: String =
                (0..40_000).map(|i| line(if i == fall { i - 1 } else { i })).collect();
            assert_eq!(text.len(), rising.len());
            assert!(parse(&text).is_none(), "a fall at op {fall} was read");
            assert!(parse_general(&text, "h.edn").is_err());
        }
    }

    /// Ops without an `:index` are numbered by their place in the whole
    /// history, in every piece, not in the piece that read them.
    #[test]
    fn ops_without_an_index_are_numbered_across_pieces() {
        let mut text = String::new();
        for i in 0..40_000 {
            text.push_str(&format!(
                "{{:type :invoke, :process {}, :f :write, :value {i}, :node \"n{}\"}}\n",
                i % 7,
                i % 3
            ));
        }
        assert!(text.len() > PARALLEL_MIN_BYTES);
        let fast = parse(&text).expect("the fast reader reads it");
        assert_eq!(fast.ops.len(), 40_000);
        for (i, (op, line)) in fast.ops.iter().zip(&fast.lines).enumerate() {
            assert_eq!((op.index, *line), (i as u64, i as u32 + 1));
            assert_eq!(op.value, Value::Int(i as i64));
        }
    }
}
