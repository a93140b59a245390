//! EDN text read by hand before `edn-format` parses it: a history split into
//! its op forms, and each form made safe and faithful for that parser.
//!
//! `edn-format` parses a form recursively and knows less than Clojure's
//! reader, which wrote and reads Jepsen's histories. So before it sees a
//! form, this module
//! - bounds the nesting at [`MAX_DEPTH`] (collections, tags, `#_` discards
//!   and `^` metadata counted together), so a broken or hostile file is an
//!   error instead of a stack overflow that aborts the process;
//! - blanks out `#_` discarded forms, `^` metadata and comments, keeping
//!   every line and column where it was (edn-format does not know metadata
//!   at all, fails on a discard that ends a collection, and reads a comment
//!   right after an atom as part of it);
//! - gives integer literals of more than 18 digits the `N` suffix, so they
//!   read as big integers, as Clojure reads them, and spells big decimals
//!   (`1.5M`) as the floats they become in a history anyway (edn-format
//!   compares them by scaling, which never ends for far-apart exponents);
//! - refuses malformed character literals and spells out `\u` and `\;`,
//!   which edn-format misreads (it slices its lookahead by bytes, and strips
//!   a comment even after a backslash).
//!
//! The scan is iterative and runs once over the text; forms that need no
//! change are handed to the parser as slices of the original text. When
//! edn-format refuses a form, the place it names is mapped back to the
//! file's line and column (it counts lines and columns its own way).
//!
//! Every one of these was found by fuzzing or while fixing what fuzzing
//! found; see `docs/fuzzing.md`.

use std::borrow::Cow;

use edn_format::Value as Edn;

/// How deep EDN may nest: collections, `#tag`s, `#_` discards and `^`
/// metadata, counted together, including the history's own vector and the
/// op map. Jepsen's histories nest a handful of levels (an op map, a
/// transaction, a micro-op, a read's list); a thousand leaves room for any
/// real value while keeping edn-format's recursion (about 1.1 KiB of stack
/// a level, measured at opt-level 1) inside a 2 MiB thread stack, the size
/// of the pool threads `faultline check` reads files on.
pub const MAX_DEPTH: usize = 1000;

/// What the text around the op forms is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Top {
    /// A history: one vector or list of op forms, or a sequence of op forms.
    History,
    /// A sequence of forms, a vector being one form like any other (the
    /// value at the end of a Jepsen log line).
    Sequence,
}

/// A change made to the text before edn-format parses it.
#[derive(Clone, Copy, Debug)]
struct Edit {
    /// Byte offset in the scanned text where the change starts.
    at: usize,
    kind: EditKind,
}

impl Edit {
    /// The order edits are recorded in: by place, and at one place an
    /// insertion before a blank (a suffix ending an atom, then metadata
    /// written right after it; or a spelling, then the character it
    /// replaces).
    fn key(&self) -> (usize, u8) {
        (self.at, matches!(self.kind, EditKind::Blank { .. }) as u8)
    }
}

#[derive(Clone, Copy, Debug)]
enum EditKind {
    /// Replace every character up to this byte offset by a space (newlines
    /// stay, so lines and columns after it do not move).
    Blank { end: usize },
    /// Insert this text at `at`.
    Insert(&'static str),
}

/// The op forms of a text, each with the line it starts on, and the edits
/// they need before edn-format parses them.
#[derive(Debug)]
pub(crate) struct Forms<'a> {
    text: &'a str,
    /// Each op form (from its first prefix, if any, to its end) and its
    /// 1-based line.
    pub forms: Vec<(&'a str, u32)>,
    /// Sorted by [`Edit::key`]; blanks never overlap.
    edits: Vec<Edit>,
}

/// Text the scan refused: where, what it expected, what it found.
#[derive(Debug)]
pub(crate) struct ScanError {
    /// 1-based line.
    pub line: u32,
    /// Byte offset in the scanned text (for the column).
    at: usize,
    pub expected: String,
    pub found: String,
}

impl ScanError {
    /// The 1-based column (in characters) of the problem in `text`, the
    /// text that was scanned.
    pub fn column(&self, text: &str) -> u64 {
        column_of(text, self.at)
    }
}

/// A form edn-format refused, with the place in the scanned text.
#[derive(Debug)]
pub(crate) struct FormError {
    /// 1-based line.
    pub line: u64,
    /// 1-based column, in characters.
    pub column: u64,
    /// What edn-format said, with the detail it gave.
    pub message: String,
}

/// 1-based column, in characters, of byte offset `at` in `text`.
fn column_of(text: &str, at: usize) -> u64 {
    let at = text.floor_char_boundary(at.min(text.len()));
    let line_start = text[..at].rfind('\n').map_or(0, |p| p + 1);
    text[line_start..at].chars().count() as u64 + 1
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    /// `(`, `[`, `{`, or `#` for `#{`.
    Open(u8),
    /// `)`, `]` or `}`.
    Close(u8),
    /// A symbol, keyword, number, `nil`, `true` or `false`; or a character
    /// that cannot start a form, which edn-format then reports.
    Atom,
    /// A string.
    Str,
    /// A character literal such as `\a` or `\newline`.
    Char,
    /// `#_`: the next form is discarded.
    Discard,
    /// `^`: the next form is metadata for the one after it.
    Meta,
    /// `#` before a tag: the next form is the tag, the one after it the value.
    Tag,
}

impl Token {
    fn describe(self) -> &'static str {
        match self {
            Token::Open(b'(') => "(",
            Token::Open(b'[') => "[",
            Token::Open(b'{') => "{",
            Token::Open(_) => "#{",
            Token::Close(b')') => ")",
            Token::Close(b']') => "]",
            Token::Close(_) => "}",
            Token::Atom => "a symbol, keyword or number",
            Token::Str => "a string",
            Token::Char => "a character",
            Token::Discard => "#_",
            Token::Meta => "^",
            Token::Tag => "#",
        }
    }
}

/// Characters edn-format continues a symbol, keyword or number with.
fn is_atom_char(c: char) -> bool {
    if c.is_ascii() { ATOM_BYTES[c as usize] } else { c.is_alphanumeric() }
}

/// [`is_atom_char`] for each ASCII byte.
const ATOM_BYTES: [bool; 128] = {
    let mut table = [false; 128];
    let mut b = 0;
    while b < 128 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let punctuation = b".*+!-_?$%&=<>/:";
    let mut i = 0;
    while i < punctuation.len() {
        table[punctuation[i] as usize] = true;
        i += 1;
    }
    table
};

/// Whitespace as edn-format sees it: Unicode whitespace and commas.
fn is_space(c: char) -> bool {
    c.is_whitespace() || c == ','
}

/// The character literals edn-format reads besides single characters.
const CHAR_NAMES: [&str; 4] = ["newline", "return", "space", "tab"];

/// Splits EDN text into tokens, counting lines.
struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: u32,
    /// The comments skipped (byte ranges), when they are wanted.
    comments: Option<Vec<(usize, usize)>>,
}

impl<'a> Lexer<'a> {
    fn new(text: &'a str) -> Self {
        Lexer { text, pos: 0, line: 1, comments: None }
    }

    fn peek_char(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn error(&self, at: usize, line: u32, expected: &str, found: String) -> ScanError {
        ScanError { line, at, expected: expected.to_owned(), found }
    }

    /// The next token with its byte offset and line; `self.pos` is then its end.
    fn next(&mut self) -> Result<Option<(Token, usize, u32)>, ScanError> {
        let bytes = self.text.as_bytes();
        // Whitespace and comments.
        loop {
            match bytes.get(self.pos) {
                None => return Ok(None),
                Some(b'\n') => {
                    self.line += 1;
                    self.pos += 1;
                }
                Some(b' ' | b'\t' | b'\r' | b',' | 0x0b | 0x0c) => self.pos += 1,
                Some(b';') => {
                    let end =
                        self.text[self.pos..].find('\n').map_or(bytes.len(), |p| self.pos + p);
                    if let Some(comments) = &mut self.comments {
                        comments.push((self.pos, end));
                    }
                    self.pos = end;
                }
                Some(&b) if b >= 0x80 => match self.peek_char() {
                    Some(c) if is_space(c) => self.pos += c.len_utf8(),
                    _ => break,
                },
                Some(_) => break,
            }
        }
        let (start, line) = (self.pos, self.line);
        let token = match bytes[start] {
            b'(' | b'[' | b'{' => {
                self.pos += 1;
                Token::Open(bytes[start])
            }
            b')' | b']' | b'}' => {
                self.pos += 1;
                Token::Close(bytes[start])
            }
            b'^' => {
                self.pos += 1;
                Token::Meta
            }
            b'#' => match bytes.get(start + 1) {
                Some(b'{') => {
                    self.pos += 2;
                    Token::Open(b'#')
                }
                Some(b'_') => {
                    self.pos += 2;
                    Token::Discard
                }
                _ => {
                    self.pos += 1;
                    Token::Tag
                }
            },
            b'"' => {
                self.string(start, line)?;
                Token::Str
            }
            b'\\' => {
                self.character(start, line)?;
                Token::Char
            }
            _ => {
                // A symbol, keyword or number runs on while edn-format would
                // continue it; any other character stands alone, and
                // edn-format reports it with its place.
                let first = match bytes[start] {
                    b if b < 0x80 => b as char,
                    _ => self.peek_char().unwrap_or(' '),
                };
                self.pos += first.len_utf8();
                if is_atom_char(first) {
                    self.skip_atom_chars();
                }
                Token::Atom
            }
        };
        Ok(Some((token, start, line)))
    }

    /// Skips the characters edn-format continues an atom with. Most of a
    /// history's bytes are in atoms, so ASCII is looked up by byte.
    fn skip_atom_chars(&mut self) {
        let bytes = self.text.as_bytes();
        loop {
            match bytes.get(self.pos) {
                Some(&b) if b < 0x80 => {
                    if !ATOM_BYTES[b as usize] {
                        return;
                    }
                    self.pos += 1;
                }
                Some(_) => match self.peek_char().filter(|&c| is_atom_char(c)) {
                    Some(c) => self.pos += c.len_utf8(),
                    None => return,
                },
                None => return,
            }
        }
    }

    /// Skips a string from its opening quote at `start`.
    fn string(&mut self, start: usize, line: u32) -> Result<(), ScanError> {
        let bytes = self.text.as_bytes();
        let mut i = start + 1;
        loop {
            match bytes.get(i) {
                None => {
                    return Err(self.error(
                        start,
                        line,
                        "a closing \" for the string opened here",
                        "the end of the text".into(),
                    ));
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    // The escaped byte may be a newline (edn-format refuses
                    // the escape, but the line count must stay right).
                    if bytes.get(i + 1) == Some(&b'\n') {
                        self.line += 1;
                    }
                    i += 2;
                }
                Some(b'\n') => {
                    self.line += 1;
                    i += 1;
                }
                Some(_) => i += 1,
            }
        }
        self.pos = i + 1;
        Ok(())
    }

    /// Reads a character literal from its backslash at `start` and checks
    /// it is one edn-format reads without panicking.
    fn character(&mut self, start: usize, line: u32) -> Result<(), ScanError> {
        self.pos = start + 1;
        let Some(first) = self.peek_char() else {
            return Err(self.error(
                start,
                line,
                "a character after \\",
                "the end of the text".into(),
            ));
        };
        if first == '\n' {
            self.line += 1;
        }
        self.pos += first.len_utf8();
        self.skip_atom_chars();
        let name = &self.text[start + 1..self.pos];
        let unicode = name.len() == 5
            && name.starts_with('u')
            && name[1..].bytes().all(|b| b.is_ascii_hexdigit());
        if name.chars().count() == 1 || unicode || CHAR_NAMES.contains(&name) {
            Ok(())
        } else {
            Err(self.error(
                start,
                line,
                "a character literal (\\a, \\newline, \\return, \\space, \\tab or \\uXXXX)",
                format!("\\{}", short(name)),
            ))
        }
    }
}

/// A prefix waiting for the forms it applies to.
struct Pending {
    kind: Token,
    /// Forms still to come: two for a tag (the tag, then the value) and for
    /// metadata (the metadata, then its target), one for a discard.
    need: u8,
    start: usize,
    line: u32,
}

/// An open collection.
struct Frame {
    open: u8,
    start: usize,
    line: u32,
    /// `pending.len()` when it opened: prefixes above are inside it.
    pending_base: usize,
}

/// Splits `text` into its op forms, checking nesting, brackets and
/// prefixes, and noting the edits each form needs.
pub(crate) fn split(text: &str, top: Top) -> Result<Forms<'_>, ScanError> {
    let mut lexer = Lexer::new(text);
    let mut forms = Vec::new();
    let mut edits = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut pending: Vec<Pending> = Vec::new();
    // Open discards, and metadata still being read: what is read meanwhile
    // is blanked out, so it needs no edits of its own and holds no ops.
    let mut blanking: usize = 0;
    // How many collections deep op forms live: 1 inside the history's
    // vector or list, 0 in a sequence; unknown until the first form.
    let mut op_depth: Option<usize> = (top == Top::Sequence).then_some(0);
    // The line where the history's vector or list closed.
    let mut closed: Option<u32> = None;
    lexer.comments = Some(Vec::new());
    loop {
        let next = lexer.next()?;
        blank_comments(&mut lexer, blanking, &mut edits);
        let Some((token, start, line)) = next else { break };
        let end = lexer.pos;
        if let Some(closed_line) = closed {
            return Err(lexer.error(
                start,
                line,
                &format!("the end of the text after the history closed on line {closed_line}"),
                token.describe().to_owned(),
            ));
        }
        let is_prefix = matches!(token, Token::Discard | Token::Meta | Token::Tag);
        if op_depth.is_none() && stack.is_empty() && blanking == 0 && !is_prefix {
            if matches!(token, Token::Open(b'[' | b'(')) {
                // The history's vector: tags or metadata on it say nothing
                // about the ops.
                op_depth = Some(1);
                pending.clear();
            } else {
                op_depth = Some(0);
            }
        }
        macro_rules! complete {
            ($start:expr, $line:expr) => {
                complete_form(
                    text,
                    ($start, end, $line),
                    &stack,
                    &mut pending,
                    &mut blanking,
                    &mut edits,
                    (op_depth, &mut forms),
                )
            };
        }
        match token {
            Token::Open(open) => {
                stack.push(Frame { open, start, line, pending_base: pending.len() });
                check_depth(&lexer, stack.len() + pending.len(), start, line, token)?;
            }
            Token::Close(close) => {
                let frame = close_frame(&lexer, &mut stack, &pending, (close, start, line))?;
                if stack.is_empty() && op_depth == Some(1) {
                    closed = Some(line);
                    continue;
                }
                complete!(frame.start, frame.line);
            }
            Token::Atom => {
                if blanking == 0 {
                    atom_edits(&text[start..end], end, &mut edits);
                }
                complete!(start, line);
            }
            Token::Char => {
                if blanking == 0 {
                    char_edits(&text[start..end], start, &mut edits);
                }
                complete!(start, line);
            }
            Token::Str => complete!(start, line),
            Token::Discard | Token::Meta | Token::Tag => {
                let need = if token == Token::Discard { 1 } else { 2 };
                if token != Token::Tag {
                    blanking += 1;
                }
                pending.push(Pending { kind: token, need, start, line });
                check_depth(&lexer, stack.len() + pending.len(), start, line, token)?;
            }
        }
    }
    unfinished(&lexer, &stack, &pending, op_depth.unwrap_or(0))?;
    Ok(Forms { text, forms, edits })
}

/// Blanks the comments the lexer skipped, outside blanked forms:
/// edn-format reads a comment that follows an atom as part of it (`[1;c`
/// then `2]` on the next line is `[12]`) and one after a backslash as a
/// comment, so it must see none.
fn blank_comments(lexer: &mut Lexer<'_>, blanking: usize, edits: &mut Vec<Edit>) {
    if let Some(comments) = lexer.comments.as_mut().filter(|c| !c.is_empty()) {
        for (at, end) in comments.drain(..) {
            if blanking == 0 {
                edits.push(Edit { at, kind: EditKind::Blank { end } });
            }
        }
    }
}

/// Closes the innermost open collection with the bracket `close` (at
/// `start` on `line`): an error when nothing is open, when the brackets do
/// not match, or when a prefix inside still waits for its form.
fn close_frame(
    lexer: &Lexer<'_>,
    stack: &mut Vec<Frame>,
    pending: &[Pending],
    (close, start, line): (u8, usize, u32),
) -> Result<Frame, ScanError> {
    let token = Token::Close(close);
    let Some(frame) = stack.pop() else {
        return Err(lexer.error(
            start,
            line,
            "a form",
            format!("an unmatched {}", token.describe()),
        ));
    };
    let expected = match frame.open {
        b'(' => b')',
        b'[' => b']',
        _ => b'}',
    };
    if close != expected {
        return Err(lexer.error(
            start,
            line,
            &format!(
                "{} to close the {} opened on line {}",
                expected as char,
                Token::Open(frame.open).describe(),
                frame.line
            ),
            token.describe().to_owned(),
        ));
    }
    if let Some(p) = pending.get(frame.pending_base) {
        return Err(lexer.error(
            start,
            line,
            &format!("a form after the {} on line {}", p.kind.describe(), p.line),
            token.describe().to_owned(),
        ));
    }
    Ok(frame)
}

/// The edits an atom ending at `end` needs: the `N` a big integer needs,
/// and a big decimal read as a float.
fn atom_edits(atom: &str, end: usize, edits: &mut Vec<Edit>) {
    if needs_big_suffix(atom) {
        edits.push(Edit { at: end, kind: EditKind::Insert("N") });
    }
    if is_big_decimal(atom) {
        // A big decimal becomes a float in a history's values
        // anyway, and edn-format compares big decimals by
        // scaling one to the other's exponent: `1e30000000000M`
        // in a set or as a map key would never finish. So it
        // reads as the float: the `M` becomes a space, or a
        // point when there is none (`1M` is `1.`).
        let m = end - 1;
        if !atom.contains(['.', 'e', 'E']) {
            edits.push(Edit { at: m, kind: EditKind::Insert(".") });
        }
        edits.push(Edit { at: m, kind: EditKind::Blank { end } });
    }
}

/// The edits a character literal starting at `start` needs. `\u` alone is
/// the letter u; edn-format would take what follows for its hex digits, so
/// spell it out. It reads `\;` as a backslash and a comment, so spell that
/// out too.
fn char_edits(literal: &str, start: usize, edits: &mut Vec<Edit>) {
    let end = start + literal.len();
    match literal {
        "\\u" => edits.push(Edit { at: end, kind: EditKind::Insert("0075") }),
        "\\;" => {
            edits.push(Edit { at: start + 1, kind: EditKind::Insert("u003b") });
            edits.push(Edit { at: start + 1, kind: EditKind::Blank { end } });
        }
        _ => {}
    }
}

/// At the end of the text: an error for a prefix still waiting for its
/// form, an op map left open, or a history vector or list left open.
fn unfinished(
    lexer: &Lexer<'_>,
    stack: &[Frame],
    pending: &[Pending],
    op_depth: usize,
) -> Result<(), ScanError> {
    if let Some(p) = pending.last() {
        return Err(lexer.error(
            p.start,
            p.line,
            &format!("a form after this {}", p.kind.describe()),
            "the end of the text".into(),
        ));
    }
    if let Some(op) = stack.get(op_depth) {
        return Err(lexer.error(
            op.start,
            op.line,
            "a complete op map",
            "the end of the text inside it".into(),
        ));
    }
    if let Some(history) = stack.first() {
        return Err(lexer.error(
            lexer.pos,
            lexer.line,
            &format!(
                "the closing {} of the history opened on line {}",
                if history.open == b'(' { ')' } else { ']' },
                history.line
            ),
            "the end of the text".into(),
        ));
    }
    Ok(())
}

fn check_depth(
    lexer: &Lexer<'_>,
    depth: usize,
    start: usize,
    line: u32,
    token: Token,
) -> Result<(), ScanError> {
    if depth <= MAX_DEPTH {
        return Ok(());
    }
    Err(lexer.error(
        start,
        line,
        &format!(
            "EDN nested at most {MAX_DEPTH} deep (collections, tags, #_ and ^ metadata together)"
        ),
        format!("a {} at depth {depth}", token.describe()),
    ))
}

/// A form from `span.0` to `span.1` (on line `span.2`) is complete at the
/// current level: it feeds the prefixes waiting there (and is consumed by a
/// discard or as metadata), or it is an op form, or part of one.
#[inline]
fn complete_form<'a>(
    text: &'a str,
    span: (usize, usize, u32),
    stack: &[Frame],
    pending: &mut Vec<Pending>,
    blanking: &mut usize,
    edits: &mut Vec<Edit>,
    (op_depth, forms): (Option<usize>, &mut Vec<(&'a str, u32)>),
) {
    let (mut start, end, mut line) = span;
    let base = stack.last().map_or(0, |f| f.pending_base);
    while pending.len() > base {
        let Some(p) = pending.last_mut() else { break };
        p.need -= 1;
        match p.kind {
            Token::Discard => {
                let p_start = p.start;
                pending.pop();
                *blanking -= 1;
                // Inside another blanked form, that one's blank covers this.
                if *blanking == 0 {
                    edits.push(Edit { at: p_start, kind: EditKind::Blank { end } });
                }
                return;
            }
            Token::Meta if p.need == 1 => {
                // The metadata itself: blank it, then wait for its target.
                *blanking -= 1;
                if *blanking == 0 {
                    edits.push(Edit { at: p.start, kind: EditKind::Blank { end } });
                }
                return;
            }
            Token::Meta => {
                // The target, with its metadata gone: it completes as itself.
                pending.pop();
            }
            _ if p.need == 1 => return, // the tag's symbol; the value comes next
            _ => {
                // The tagged value: the tag and it complete as one form.
                start = p.start;
                line = p.line;
                pending.pop();
            }
        }
    }
    if *blanking == 0 && op_depth == Some(stack.len()) {
        forms.push((&text[start..end], line));
    }
}

/// A literal edn-format reads as a big decimal: a number ending in its only
/// `M`, with no `/` or `:` (which make it a symbol or an error).
fn is_big_decimal(atom: &str) -> bool {
    // Most atoms are keywords and integers: the last byte rules them out.
    if atom.as_bytes().last() != Some(&b'M') {
        return false;
    }
    let digits = atom.strip_prefix(['-', '+']).unwrap_or(atom);
    digits.chars().next().is_some_and(char::is_numeric)
        && atom.matches('M').count() == 1
        && !atom.contains(['/', ':'])
}

/// An integer literal of more than 18 digits, which may not fit in 64 bits:
/// Clojure reads it as a big integer, edn-format only with the `N` suffix.
/// Leading zeros are left for edn-format to refuse, as Clojure would read
/// them as octal.
fn needs_big_suffix(atom: &str) -> bool {
    let digits = match atom.as_bytes().first() {
        Some(b'-' | b'+') => &atom[1..],
        _ => atom,
    };
    digits.len() > 18 && !digits.starts_with('0') && digits.bytes().all(|b| b.is_ascii_digit())
}

impl<'a> Forms<'a> {
    /// Parses `form` (one of `self.forms`, starting on `line`) with
    /// edn-format, after its edits. Errors give the line and column in the
    /// scanned text.
    pub fn parse(&self, form: &str, line: u32) -> Result<Edn, FormError> {
        let at = form.as_ptr() as usize - self.text.as_ptr() as usize;
        // A form owns the suffixes after its start up to its end included
        // (one at its start ends the previous form's last atom), and the
        // blanks from its start up to its end excluded (one at its end is
        // metadata or a discard written right after it).
        let end = at + form.len();
        let first = self.edits.partition_point(|e| e.key() < (at, 1));
        let last = self.edits.partition_point(|e| e.key() < (end, 1));
        let (prepared, inserted) = apply(form, at, &self.edits[first..last]);
        edn_format::parse_str(&prepared).map_err(|e| {
            // edn-format swaps its names: `col` counts lines from 1, and
            // `row` counts the characters read on that line, 0 if none; and
            // it does not count what follows the backslash of a character
            // literal (a `\` and a newline loses it a line).
            let (line_offset, column) = position_in(&prepared, e.col, e.row);
            // Less what was inserted before it on its line (each insertion's
            // column is in the edited text, as `column` is).
            let shift: u64 = inserted
                .iter()
                .filter(|&&(l, c, _)| l == line_offset && c <= column)
                .map(|&(_, _, len)| len)
                .sum();
            let column = column.saturating_sub(shift);
            let column = column.max(1);
            FormError {
                line: u64::from(line) + line_offset as u64,
                column: if line_offset == 0 {
                    column_of(self.text, at) - 1 + column
                } else {
                    column
                },
                message: describe(&e.error),
            }
        })
    }
}

/// Where edn-format stopped in `text` (the text it parsed), from what it
/// reports: `line` (from 1) and `read`, the characters it counted on that
/// line. It counts every character it reads except those after the
/// backslash of a character literal, so walk the text counting as it does
/// and give the place, as (line offset from 0, characters read on the line),
/// of the last character it counted up to there.
fn position_in(text: &str, line: usize, read: usize) -> (usize, u64) {
    // The bodies of character literals: what edn-format reads uncounted.
    let mut uncounted: Vec<(usize, usize)> = Vec::new();
    let mut lexer = Lexer::new(text);
    while let Ok(Some((token, start, _))) = lexer.next() {
        if token == Token::Char {
            uncounted.push((start + 1, lexer.pos));
        }
    }
    let target = (line, read);
    let (mut counted, mut real) = ((1usize, 0usize), (0usize, 0u64));
    let mut found = (line.saturating_sub(1), read as u64);
    if counted == target {
        found = real;
    }
    let mut body = uncounted.iter().peekable();
    for (i, c) in text.char_indices() {
        while body.next_if(|&&(_, end)| end <= i).is_some() {}
        let is_counted = body.peek().is_none_or(|&&(start, _)| i < start);
        if c == '\n' {
            real = (real.0 + 1, 0);
        } else {
            real.1 += 1;
        }
        if is_counted {
            counted = if c == '\n' { (counted.0 + 1, 0) } else { (counted.0, counted.1 + 1) };
        }
        if counted == target {
            found = real;
        } else if counted > target {
            break;
        }
    }
    found
}

/// The form's text after its edits (offsets in `edits` are from the scanned
/// text, where the form starts at `at`), and each insertion as (line offset
/// in the form, 1-based column of its first character, length), to map
/// edn-format's columns back.
fn apply<'f>(form: &'f str, at: usize, edits: &[Edit]) -> (Cow<'f, str>, Vec<(usize, u64, u64)>) {
    if edits.is_empty() {
        return (Cow::Borrowed(form), Vec::new());
    }
    let mut out = String::with_capacity(form.len() + 8);
    let mut inserted = Vec::new();
    let (mut line, mut column) = (0usize, 0u64);
    let copy = |out: &mut String, s: &str, line: &mut usize, column: &mut u64| {
        for c in s.chars() {
            if c == '\n' {
                *line += 1;
                *column = 0;
            } else {
                *column += 1;
            }
        }
        out.push_str(s);
    };
    let mut done = 0;
    for edit in edits {
        let from = edit.at - at;
        copy(&mut out, &form[done..from], &mut line, &mut column);
        match edit.kind {
            EditKind::Blank { end } => {
                let blank: String = form[from..end - at]
                    .chars()
                    .map(|c| if c == '\n' { '\n' } else { ' ' })
                    .collect();
                copy(&mut out, &blank, &mut line, &mut column);
                done = end - at;
            }
            EditKind::Insert(s) => {
                inserted.push((line, column + 1, s.chars().count() as u64));
                copy(&mut out, s, &mut line, &mut column);
                done = from;
            }
        }
    }
    out.push_str(&form[done..]);
    (Cow::Owned(out), inserted)
}

/// edn-format's error with the detail it carries.
fn describe(e: &edn_format::ParserError) -> String {
    use edn_format::ParserError as P;
    match e {
        P::BadInt { parsing, encountered } => format!("{e} {}: {encountered}", short(parsing)),
        P::BadFloat { parsing, encountered } => format!("{e} {}: {encountered}", short(parsing)),
        P::BadBigInt { parsing, encountered } => format!("{e} {}: {encountered}", short(parsing)),
        P::BadBigDec { parsing, encountered } => format!("{e} {}: {encountered}", short(parsing)),
        P::UnexpectedCharacter(c) => format!("{e} {c:?}"),
        P::DuplicateKeyInMap { value } | P::DuplicateValueInSet { value } => {
            format!("{e}: {}", show(value))
        }
        P::InvalidElementForTag { value } => {
            format!("{e}, not {}", show(value))
        }
        P::InvalidInst(Some(inner)) => format!("{e}: {inner}"),
        P::InvalidUuid(Some(inner)) => format!("{e}: {inner}"),
        _ => e.to_string(),
    }
}

/// EDN text of `v` for an error message, cut at about 60 characters.
/// edn-format's `emit_str` writes a whole value however large, and a big
/// decimal digit by digit (`1e1000000000M` would be a gigabyte of zeros);
/// this writes no more than the message shows, a big decimal with its
/// exponent.
pub(crate) fn show(v: &Edn) -> String {
    fn write(v: &Edn, out: &mut String) {
        fn seq<'v>(
            out: &mut String,
            open: &str,
            items: impl Iterator<Item = &'v Edn>,
            close: &str,
        ) {
            out.push_str(open);
            for (i, item) in items.enumerate() {
                if out.len() > 60 {
                    return;
                }
                if i > 0 {
                    out.push(' ');
                }
                write(item, out);
            }
            out.push_str(close);
        }
        if out.len() > 60 {
            return;
        }
        match v {
            Edn::BigDec(d) => {
                let (digits, scale) = d.as_bigint_and_exponent();
                out.push_str(&format!("{digits}E{}M", -i128::from(scale)));
            }
            Edn::Vector(items) => seq(out, "[", items.iter(), "]"),
            Edn::List(items) => seq(out, "(", items.iter(), ")"),
            Edn::Set(items) => seq(out, "#{", items.iter(), "}"),
            Edn::Map(entries) => seq(out, "{", entries.iter().flat_map(|(k, v)| [k, v]), "}"),
            Edn::TaggedElement(tag, inner) => {
                out.push_str(&format!("#{tag} "));
                write(inner, out);
            }
            other => out.push_str(&edn_format::emit_str(other)),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    short(&out)
}

fn short(s: &str) -> String {
    if s.len() > 60 { format!("{}...", &s[..s.floor_char_boundary(60)]) } else { s.to_owned() }
}

/// What an EDN or JSON text opens with, for format detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Opening {
    /// A map whose first key is a string (JSON) or not (EDN), at this byte offset.
    Map { json: bool, at: usize },
    /// A vector or list whose first element is such a map; `list` for `(`.
    Container { list: bool, first: Option<(bool, usize)> },
}

/// What `text` opens with, skipping whitespace, commas, comments, `#_`
/// discarded forms, `^` metadata and tags, as Clojure's reader would;
/// `None` when it opens with anything else.
pub(crate) fn opening(text: &str) -> Option<Opening> {
    let mut lexer = Lexer::new(text);
    let (token, at) = first_real(&mut lexer)?;
    match token {
        Token::Open(b'{') => Some(Opening::Map { json: map_is_json(&mut lexer)?, at }),
        Token::Open(open @ (b'[' | b'(')) => {
            let first = match first_real(&mut lexer)? {
                (Token::Open(b'{'), at) => Some((map_is_json(&mut lexer)?, at)),
                (Token::Close(_), _) => None,
                _ => return None,
            };
            Some(Opening::Container { list: open == b'(', first })
        }
        _ => None,
    }
}

/// After a map's `{`: whether its first key is a JSON string (`None` for an
/// empty map or anything that cannot start an op map).
fn map_is_json(lexer: &mut Lexer<'_>) -> Option<bool> {
    match lexer.next().ok()?? {
        (Token::Str, _, _) => Some(true),
        (Token::Atom, start, _) if lexer.text[start..].starts_with(':') => Some(false),
        _ => None,
    }
}

/// The next token that starts a form of its own: discards and their forms,
/// metadata and its forms, and tags with their symbols are skipped.
fn first_real(lexer: &mut Lexer<'_>) -> Option<(Token, usize)> {
    loop {
        let (token, start, _) = lexer.next().ok()??;
        match token {
            Token::Discard | Token::Meta => skip_form(lexer)?,
            Token::Tag => {
                // The tag's symbol; the tagged form follows.
                lexer.next().ok()??;
            }
            _ => return Some((token, start)),
        }
    }
}

/// Skips one whole form, prefixes and all.
fn skip_form(lexer: &mut Lexer<'_>) -> Option<()> {
    // Forms still owed: a prefix adds the ones it applies to.
    let mut owed: usize = 1;
    let mut depth: usize = 0;
    while owed > 0 {
        let (token, _, _) = lexer.next().ok()??;
        match token {
            Token::Open(_) => depth += 1,
            Token::Close(_) => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    owed -= 1;
                }
            }
            // A prefix and what it applies to are one form, so the form
            // owed is still owed, and so is the one the prefix takes.
            Token::Discard | Token::Meta | Token::Tag if depth == 0 => owed += 1,
            _ if depth == 0 => owed -= 1,
            _ => {}
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forms(text: &str) -> Vec<String> {
        let scanned = split(text, Top::History).expect("scan");
        scanned
            .forms
            .iter()
            .map(|&(f, line)| match scanned.parse(f, line) {
                Ok(edn) => edn_format::emit_str(&edn),
                Err(e) => panic!("{text:?}: {e:?}"),
            })
            .collect()
    }

    #[test]
    fn discards_and_metadata_are_not_ops_and_vanish_inside_them() {
        let text = "#_{:dropped 1} ^{:meta 1} {:a 1} #_ #_ {:x 1} {:y 1}\n^:kw {:b [1 #_ 2]}";
        assert_eq!(forms(text), ["{:a 1}", "{:b [1]}"]);
        // In a list, and metadata inside a form.
        assert_eq!(forms("(#_{:x 1} {:a ^:m [1]} ,, {:b #_x 2})"), ["{:a [1]}", "{:b 2}"]);
    }

    #[test]
    fn tags_stay_on_their_form() {
        let scanned =
            split("{:a #foo/Tuple {:key 1}} #inst \"2020-01-01T00:00:00Z\"", Top::History)
                .expect("scan");
        assert_eq!(scanned.forms.len(), 2);
        assert!(scanned.forms[1].0.starts_with("#inst"));
    }

    #[test]
    fn mismatched_and_unclosed_brackets_are_named() {
        let err = split("{:a [1}", Top::History).expect_err("mismatch");
        assert_eq!(err.expected, "] to close the [ opened on line 1");
        let err = split("[{:a 1}\n", Top::History).expect_err("unclosed");
        assert!(err.expected.starts_with("the closing ]"), "{err:?}");
        let err = split("[{:a 1}] {:b 2}", Top::History).expect_err("after the history");
        assert!(err.expected.starts_with("the end of the text"), "{err:?}");
        let err = split("{:a 1} #_", Top::History).expect_err("dangling discard");
        assert_eq!(err.found, "the end of the text");
    }

    /// Regression: edn-format slices the characters after `\u` by bytes, and
    /// panicked when a multi-byte character straddled its slice.
    #[test]
    fn a_lone_backslash_u_is_the_letter_u() {
        let scanned = split("{:a [\\u éé]}", Top::History).expect("scan");
        let (form, line) = scanned.forms[0];
        let edn = scanned.parse(form, line).expect("parse");
        let key = Edn::Keyword(edn_format::Keyword::from_name("a"));
        let Edn::Map(map) = edn else { panic!("not a map") };
        assert_eq!(
            map.get(&key),
            Some(&Edn::Vector(vec![
                Edn::Character('u'),
                Edn::Symbol(edn_format::Symbol::from_name("éé"))
            ]))
        );
    }

    #[test]
    fn bad_character_literals_are_refused() {
        let err = split("{:a \\uéaé}", Top::History).expect_err("bad literal");
        assert!(err.found.starts_with("\\uéaé"), "{err:?}");
    }
}
