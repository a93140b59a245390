//! Dynamic values: what an operation's `value` (and `error`) fields hold.
//!
//! Histories come from many tools and languages, so a value is a small
//! EDN-like tree rather than a Rust type per workload. Checkers interpret it
//! (a CAS pair, a keyed tuple, a transaction's micro-ops) when they prepare a
//! history, and report a typed error naming the op when the shape is wrong.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

pub use arcstr::ArcStr;
use rustc_hash::FxHashSet;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;
pub use thin_vec::ThinVec;

/// A value in a history.
///
/// Ordering and equality are structural, so values can key maps and sets.
/// Keywords (`:read` in EDN) are kept apart from strings so that EDN
/// round-trips exactly; JSON has no keywords and writes them as strings.
///
/// A value is 16 bytes: a history of a million transactions holds tens of
/// millions of them (every element of every read), so strings are thin
/// shared pointers ([`ArcStr`], shared between equal short strings by
/// [`shared_str`]) and sequences thin vectors ([`ThinVec`], length and
/// capacity in the allocation). Build them with [`Value::list`],
/// [`Value::str`], [`Value::set`] and [`Value::map`]; read them through
/// [`Value::as_list`] and [`Value::as_str`], or match on the variants, which
/// dereference to `&[Value]` and `&str`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Value {
    /// `nil` / `null`: absent, or (in a read's invocation) not yet known.
    #[default]
    Nil,
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// An integer beyond 64 bits, exactly: its decimal digits, with a `-`
    /// when negative and no leading zeros. Histories hold them (Clojure
    /// reads any integer literal, EDN's `N` suffix, JSON numbers of any
    /// length), and a checker must compare them exactly, never rounded to
    /// a float. Integers that fit in 64 bits are always [`Value::Int`], so
    /// equal numbers are equal values; build one with [`Value::integer`].
    BigInt(ArcStr),
    /// A float, compared by its total order so values stay `Eq`.
    Float(Float),
    /// A string.
    Str(ArcStr),
    /// An EDN keyword, without its leading colon.
    Keyword(ArcStr),
    /// An ordered sequence (EDN vectors and lists, JSON arrays).
    List(ThinVec<Value>),
    /// A set, kept sorted and free of duplicates.
    Set(ThinVec<Value>),
    /// A map, kept sorted by key.
    Map(ThinVec<(Value, Value)>),
}

/// Strings of at most this many bytes are shared by [`shared_str`].
const SHARED_MAX_LEN: usize = 24;
/// How many distinct short strings each thread remembers before it starts
/// afresh: enough for every function name, micro-op name, node and key
/// name a history repeats, while a history of unique short strings cannot
/// grow the table without bound.
const SHARED_MAX_ENTRIES: usize = 4096;

thread_local! {
    /// Short strings seen lately on this thread. A table per thread needs no
    /// lock, and parsers that run on several threads each share within
    /// their own part of the history, which is where the repetition is.
    static SHARED: RefCell<FxHashSet<ArcStr>> = RefCell::new(FxHashSet::default());
}

/// The names Jepsen's histories repeat on every line, as static text:
/// cloning or dropping static text counts no references, where every copy
/// of shared text counted one up and one down, an atomic operation each.
const COMMON: [ArcStr; 14] = [
    arcstr::literal!("read"),
    arcstr::literal!("write"),
    arcstr::literal!("cas"),
    arcstr::literal!("txn"),
    arcstr::literal!("r"),
    arcstr::literal!("w"),
    arcstr::literal!("append"),
    arcstr::literal!("add"),
    arcstr::literal!("final-read"),
    arcstr::literal!("enqueue"),
    arcstr::literal!("dequeue"),
    arcstr::literal!("acquire"),
    arcstr::literal!("release"),
    arcstr::literal!("start-partition"),
];

/// Text for a history, shared with earlier equal short strings.
///
/// A list-append history spells `"append"` and `"r"` millions of times;
/// one allocation each instead of one per micro-op is a large part of what
/// keeps a million-transaction history under a gigabyte and a half. Long
/// strings are rarely repeated and are copied as they are; the commonest
/// names are static text ([`COMMON`]).
pub fn shared_str(s: &str) -> ArcStr {
    if s.len() > SHARED_MAX_LEN {
        return ArcStr::from(s);
    }
    if let Some(common) = COMMON.iter().find(|c| c.as_str() == s) {
        return common.clone();
    }
    SHARED.with(|table| {
        let mut table = table.borrow_mut();
        if let Some(found) = table.get(s) {
            return found.clone();
        }
        if table.len() >= SHARED_MAX_ENTRIES {
            table.clear();
        }
        let text = ArcStr::from(s);
        table.insert(text.clone());
        text
    })
}

/// Deserialises a string into shared text ([`shared_str`]), for `serde`'s
/// `deserialize_with` on fields such as `Op::f` and `Op::node`.
pub(crate) fn deserialize_shared<'de, D: Deserializer<'de>>(d: D) -> Result<ArcStr, D::Error> {
    struct SharedVisitor;
    impl Visitor<'_> for SharedVisitor {
        type Value = ArcStr;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E>(self, s: &str) -> Result<ArcStr, E> {
            Ok(shared_str(s))
        }
    }
    d.deserialize_str(SharedVisitor)
}

/// [`deserialize_shared`] for an optional field.
pub(crate) fn deserialize_shared_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<ArcStr>, D::Error> {
    #[derive(Deserialize)]
    struct Shared(#[serde(deserialize_with = "deserialize_shared")] ArcStr);
    Ok(Option::<Shared>::deserialize(d)?.map(|s| s.0))
}

/// An `f64` with a total order (`f64::total_cmp`), so it can live in `Value`.
#[derive(Clone, Copy, Debug)]
pub struct Float(pub f64);

impl PartialEq for Float {
    fn eq(&self, other: &Self) -> bool {
        self.0.total_cmp(&other.0) == Ordering::Equal
    }
}
impl Eq for Float {}
impl PartialOrd for Float {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Float {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}
impl Hash for Float {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl Value {
    /// Builds a list from its elements, in order.
    pub fn list(items: impl IntoIterator<Item = Value>) -> Value {
        Value::List(items.into_iter().collect())
    }

    /// Builds a set: sorts and removes duplicates.
    pub fn set(mut items: Vec<Value>) -> Value {
        items.sort();
        items.dedup();
        Value::Set(items.into())
    }

    /// Builds a map: sorts by key; a later duplicate key replaces an earlier one.
    pub fn map(mut entries: Vec<(Value, Value)>) -> Value {
        // A stable sort keeps duplicates in input order, so keeping the last
        // of each run gives "later wins", as in Clojure's `assoc`.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(Value, Value)> = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => out.push((k, v)),
            }
        }
        Value::Map(out.into())
    }

    /// A string value (short strings are shared, see [`shared_str`]).
    pub fn str(s: impl AsRef<str>) -> Value {
        Value::Str(shared_str(s.as_ref()))
    }

    /// A keyword value (`:name`).
    pub fn keyword(s: impl AsRef<str>) -> Value {
        Value::Keyword(shared_str(s.as_ref()))
    }

    /// The integer written in decimal as `digits` (an optional `-`, then
    /// ASCII digits; leading zeros allowed): a [`Value::Int`] when it fits
    /// in 64 bits, else an exact [`Value::BigInt`]. `None` when the text is
    /// not such an integer.
    pub fn integer(digits: &str) -> Option<Value> {
        let (negative, body) = match digits.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, digits),
        };
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if let Ok(i) = digits.parse::<i64>() {
            return Some(Value::Int(i));
        }
        let body = body.trim_start_matches('0');
        if body.is_empty() {
            return Some(Value::Int(0));
        }
        let canonical = if negative { format!("-{body}") } else { body.to_owned() };
        // A canonical form that still parses as i64 cannot arise here: the
        // whole text did not fit, and leading zeros do not change that.
        Some(Value::BigInt(ArcStr::from(canonical)))
    }

    /// True for `nil`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The text of a string or keyword.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Keyword(s) => Some(s),
            _ => None,
        }
    }

    /// The elements of a list or set.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Set(v) => Some(v),
            _ => None,
        }
    }

    /// Looks a key up in a map value.
    pub fn get(&self, key: &Value) -> Option<&Value> {
        match self {
            Value::Map(entries) => {
                entries.binary_search_by(|(k, _)| k.cmp(key)).ok().map(|i| &entries[i].1)
            }
            _ => None,
        }
    }

    /// A short name of this value's shape, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "boolean",
            Value::Int(_) | Value::BigInt(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Keyword(_) => "keyword",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
        }
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::str(s)
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::str(s)
    }
}
impl From<ArcStr> for Value {
    fn from(s: ArcStr) -> Self {
        Value::Str(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map_or(Value::Nil, Into::into)
    }
}
impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(v: Vec<T>) -> Self {
        Value::List(v.into_iter().map(Into::into).collect())
    }
}

/// Writes the value in EDN notation: `nil`, `1`, `"s"`, `:kw`, `[1 2]`, `#{1}`, `{:k 1}`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(f: &mut fmt::Formatter<'_>, items: &[Value]) -> fmt::Result {
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{v}")?;
            }
            Ok(())
        }
        match self {
            Value::Nil => f.write_str("nil"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            // EDN's suffix for an arbitrary-precision integer, as Clojure
            // prints one.
            Value::BigInt(digits) => write!(f, "{digits}N"),
            Value::Float(x) => {
                if x.0.is_finite() && x.0.fract() == 0.0 {
                    write!(f, "{:.1}", x.0)
                } else {
                    write!(f, "{}", x.0)
                }
            }
            Value::Str(s) => {
                f.write_str("\"")?;
                // Runs of characters that need no escape are written whole:
                // evidence shows values of kilobytes (Porcupine's kv), and
                // formatting them a character at a time cost more than the
                // search that found the failure. The escaped characters
                // are ASCII, which never occurs inside another character's
                // UTF-8 bytes, so every cut is at a character boundary.
                let mut plain = 0;
                for (at, b) in s.bytes().enumerate() {
                    let escaped = match b {
                        b'"' => "\\\"",
                        b'\\' => "\\\\",
                        b'\n' => "\\n",
                        b'\t' => "\\t",
                        b'\r' => "\\r",
                        _ => continue,
                    };
                    f.write_str(&s[plain..at])?;
                    f.write_str(escaped)?;
                    plain = at + 1;
                }
                f.write_str(&s[plain..])?;
                f.write_str("\"")
            }
            Value::Keyword(k) => write!(f, ":{k}"),
            Value::List(items) => {
                f.write_str("[")?;
                seq(f, items)?;
                f.write_str("]")
            }
            Value::Set(items) => {
                f.write_str("#{")?;
                seq(f, items)?;
                f.write_str("}")
            }
            Value::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// JSON encoding, documented in `docs/history-format.md`: scalars and lists
/// map directly; a keyword becomes a string; a set becomes `{"$set": [...]}`;
/// a map whose keys are all strings or keywords becomes a JSON object, any
/// other map `{"$map": [[k, v], ...]}`; an integer beyond 64 bits
/// `{"$bigint": "digits"}`, because most JSON readers (serde_json among
/// them) would turn a bare one into a float.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Nil => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::BigInt(digits) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("$bigint", digits.as_str())?;
                m.end()
            }
            Value::Float(x) => s.serialize_f64(x.0),
            Value::Str(t) | Value::Keyword(t) => s.serialize_str(t),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Set(items) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("$set", &items[..])?;
                m.end()
            }
            Value::Map(entries) => {
                let string_keys = entries
                    .iter()
                    .all(|(k, _)| matches!(k, Value::Str(_) | Value::Keyword(_)))
                    && !entries.iter().any(|(k, _)| k.as_str().is_some_and(|t| t.starts_with('$')));
                let mut m = s.serialize_map(Some(entries.len()))?;
                if string_keys {
                    for (k, v) in entries {
                        m.serialize_entry(k.as_str().unwrap_or_default(), v)?;
                    }
                } else {
                    let pairs: Vec<[&Value; 2]> = entries.iter().map(|(k, v)| [k, v]).collect();
                    m.serialize_entry("$map", &pairs)?;
                }
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u)
            .map(Value::Int)
            .unwrap_or_else(|_| Value::BigInt(ArcStr::from(u.to_string()))))
    }
    fn visit_i128<E>(self, i: i128) -> Result<Value, E> {
        Ok(Value::integer(&i.to_string()).unwrap_or_default())
    }
    fn visit_u128<E>(self, u: u128) -> Result<Value, E> {
        Ok(Value::integer(&u.to_string()).unwrap_or_default())
    }
    fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
        Ok(Value::Float(Float(x)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // JSON gives no length up front. Growing the list itself would leave
        // spare capacity (or, shrunk afterwards, holes the allocator cannot
        // reuse) in each of the millions of lists a history holds (every
        // micro-op, every read's result), so the elements gather on the
        // stack first and the list is allocated once, at its exact length.
        let mut items: SmallVec<[Value; 16]> = SmallVec::new();
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::List(items.into_iter().collect()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            match k.as_str() {
                "$set" if entries.is_empty() => {
                    let items: Vec<Value> = map.next_value()?;
                    if map.next_key::<String>()?.is_some() {
                        return Err(de::Error::custom("a {\"$set\": [...]} object has one field"));
                    }
                    return Ok(Value::set(items));
                }
                "$bigint" if entries.is_empty() => {
                    let digits: String = map.next_value()?;
                    if map.next_key::<String>()?.is_some() {
                        return Err(de::Error::custom(
                            "a {\"$bigint\": \"digits\"} object has one field",
                        ));
                    }
                    return Value::integer(&digits).ok_or_else(|| {
                        de::Error::custom(format!(
                            "{{\"$bigint\": {digits:?}}} holds no integer (an optional - then digits)"
                        ))
                    });
                }
                "$map" if entries.is_empty() => {
                    let pairs: Vec<(Value, Value)> = map.next_value()?;
                    if map.next_key::<String>()?.is_some() {
                        return Err(de::Error::custom("a {\"$map\": [...]} object has one field"));
                    }
                    return Ok(Value::map(pairs));
                }
                _ => {
                    let v: Value = map.next_value()?;
                    entries.push((Value::str(k), v));
                }
            }
        }
        Ok(Value::map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_sets_and_non_string_maps() {
        let v = Value::list([
            Value::Nil,
            Value::Int(-3),
            Value::set(vec![Value::Int(2), Value::Int(1), Value::Int(2)]),
            Value::map(vec![(Value::Int(1), Value::str("a"))]),
            Value::map(vec![(Value::str("k"), Value::Bool(true))]),
        ]);
        let text = serde_json::to_string(&v).expect("serialise");
        assert_eq!(text, r#"[null,-3,{"$set":[1,2]},{"$map":[[1,"a"]]},{"k":true}]"#);
        let back: Value = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, v);
    }

    #[test]
    fn display_is_edn() {
        let v = Value::list([Value::keyword("append"), Value::Int(5), Value::str("x\"y")]);
        assert_eq!(v.to_string(), r#"[:append 5 "x\"y"]"#);
        // Escapes between runs of plain text, multi-byte characters kept whole.
        let s = Value::str("é\\a\n\t\rπ\"");
        assert_eq!(s.to_string(), r#""é\\a\n\t\rπ\"""#);
    }

    #[test]
    fn later_duplicate_map_key_wins() {
        let m = Value::map(vec![
            (Value::Int(1), Value::Int(10)),
            (Value::Int(0), Value::Int(0)),
            (Value::Int(1), Value::Int(11)),
        ]);
        assert_eq!(m.get(&Value::Int(1)), Some(&Value::Int(11)));
    }

    /// Regression: JSON lists were kept with the spare capacity of their
    /// doubling growth, a third of a million-transaction history's memory.
    #[test]
    fn lists_read_from_json_hold_no_spare_capacity() {
        let v: Value = serde_json::from_str("[[1,2,3,4,5],[\"r\",1,[1,2,3,4,5,6,7,8,9]]]")
            .expect("valid JSON");
        fn check(v: &Value) {
            if let Value::List(items) = v {
                assert_eq!(items.capacity(), items.len(), "{v}");
                items.iter().for_each(check);
            }
        }
        check(&v);
    }

    /// The layout the memory figures in `docs/elle.md` rest on: a value
    /// wider than two words would add hundreds of megabytes to a
    /// million-transaction history.
    #[test]
    fn a_value_is_two_words() {
        assert_eq!(std::mem::size_of::<Value>(), 16);
        assert_eq!(std::mem::size_of::<Option<Value>>(), 16);
    }

    #[test]
    fn equal_short_strings_share_one_allocation() {
        let a: Value = serde_json::from_str("[\"append\",\"append\"]").expect("valid JSON");
        let items = a.as_list().expect("a list");
        match (&items[0], &items[1]) {
            (Value::Str(x), Value::Str(y)) => assert!(ArcStr::ptr_eq(x, y)),
            _ => panic!("expected two strings, got {a}"),
        }
        let long = "a string longer than the sharing limit of short strings";
        assert!(!ArcStr::ptr_eq(&shared_str(long), &shared_str(long)));
        assert_eq!(shared_str(long), long);
    }
}
