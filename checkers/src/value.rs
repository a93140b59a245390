//! Dynamic values: what an operation's `value` (and `error`) fields hold.
//!
//! Histories come from many tools and languages, so a value is a small
//! EDN-like tree rather than a Rust type per workload. Checkers interpret it
//! (a CAS pair, a keyed tuple, a transaction's micro-ops) when they prepare a
//! history, and report a typed error naming the op when the shape is wrong.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value in a history.
///
/// Ordering and equality are structural, so values can key maps and sets.
/// Keywords (`:read` in EDN) are kept apart from strings so that EDN
/// round-trips exactly; JSON has no keywords and writes them as strings.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Value {
    /// `nil` / `null`: absent, or (in a read's invocation) not yet known.
    #[default]
    Nil,
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A float, compared by its total order so values stay `Eq`.
    Float(Float),
    /// A string.
    Str(String),
    /// An EDN keyword, without its leading colon.
    Keyword(String),
    /// An ordered sequence (EDN vectors and lists, JSON arrays).
    List(Vec<Value>),
    /// A set, kept sorted and free of duplicates.
    Set(Vec<Value>),
    /// A map, kept sorted by key.
    Map(Vec<(Value, Value)>),
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
    /// Builds a set: sorts and removes duplicates.
    pub fn set(mut items: Vec<Value>) -> Value {
        items.sort();
        items.dedup();
        Value::Set(items)
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
        Value::Map(out)
    }

    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// A keyword value (`:name`).
    pub fn keyword(s: impl Into<String>) -> Value {
        Value::Keyword(s.into())
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
            Value::Int(_) => "integer",
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
        Value::Str(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
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
            Value::Float(x) => {
                if x.0.is_finite() && x.0.fract() == 0.0 {
                    write!(f, "{:.1}", x.0)
                } else {
                    write!(f, "{}", x.0)
                }
            }
            Value::Str(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        '\r' => f.write_str("\\r")?,
                        c => write!(f, "{c}")?,
                    }
                }
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
/// other map `{"$map": [[k, v], ...]}`.
impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Nil => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
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
                m.serialize_entry("$set", items)?;
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
    fn visit_u64<E: de::Error>(self, u: u64) -> Result<Value, E> {
        i64::try_from(u)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("integer {u} does not fit in 64 signed bits")))
    }
    fn visit_f64<E>(self, x: f64) -> Result<Value, E> {
        Ok(Value::Float(Float(x)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        // JSON gives no length up front, so the vector grew by doubling; a
        // history holds millions of these lists (every read's result), and
        // the unused half of each would be a third of its memory.
        items.shrink_to_fit();
        Ok(Value::List(items))
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
                "$map" if entries.is_empty() => {
                    let pairs: Vec<(Value, Value)> = map.next_value()?;
                    if map.next_key::<String>()?.is_some() {
                        return Err(de::Error::custom("a {\"$map\": [...]} object has one field"));
                    }
                    return Ok(Value::map(pairs));
                }
                _ => {
                    let v: Value = map.next_value()?;
                    entries.push((Value::Str(k), v));
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
        let v = Value::List(vec![
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
        let v = Value::List(vec![Value::keyword("append"), Value::Int(5), Value::str("x\"y")]);
        assert_eq!(v.to_string(), r#"[:append 5 "x\"y"]"#);
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
}
