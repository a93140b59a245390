//! Transactions as lists of micro-operations: `[[:append 5 3] [:r 5 [1 3]] [:w 2 7]]`.
//!
//! Elle-style list-append and rw-register histories, and the session-guarantee
//! checkers, read an op's value as a transaction. Function names are accepted
//! as keywords (EDN) or strings (JSON), short or long (`r`/`read`, `w`/`write`).

use crate::value::Value;

/// One micro-operation of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MicroOp {
    /// Append `value` to the list at `key`.
    Append {
        /// The key.
        key: Value,
        /// The element appended.
        value: Value,
    },
    /// Read `key`. In an invocation the value is `nil` (not yet known); in an
    /// `ok` completion it is what was read: `nil` for a key never written, a
    /// list for list-append, a single value for a register.
    Read {
        /// The key.
        key: Value,
        /// The value read.
        value: Value,
    },
    /// Write `value` to the register at `key`.
    Write {
        /// The key.
        key: Value,
        /// The value written.
        value: Value,
    },
}

impl MicroOp {
    /// The key this micro-op touches.
    pub fn key(&self) -> &Value {
        match self {
            MicroOp::Append { key, .. }
            | MicroOp::Read { key, .. }
            | MicroOp::Write { key, .. } => key,
        }
    }

    /// The micro-op back as a value, in Elle's notation (`[:append k v]`).
    pub fn to_value(&self) -> Value {
        let (f, k, v) = match self {
            MicroOp::Append { key, value } => ("append", key, value),
            MicroOp::Read { key, value } => ("r", key, value),
            MicroOp::Write { key, value } => ("w", key, value),
        };
        Value::list([Value::keyword(f), k.clone(), v.clone()])
    }
}

impl std::fmt::Display for MicroOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_value())
    }
}

/// A micro-operation borrowed from an op's value: what `parse_txn` returns,
/// without copying keys and values. Checkers that read millions of
/// transactions use this form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MicroOpRef<'a> {
    /// `[:append key value]`.
    Append {
        /// The key.
        key: &'a Value,
        /// The element appended.
        value: &'a Value,
    },
    /// `[:r key value]`.
    Read {
        /// The key.
        key: &'a Value,
        /// The value read (`nil` in an invocation).
        value: &'a Value,
    },
    /// `[:w key value]`.
    Write {
        /// The key.
        key: &'a Value,
        /// The value written.
        value: &'a Value,
    },
}

impl<'a> MicroOpRef<'a> {
    /// The key this micro-op touches.
    pub fn key(&self) -> &'a Value {
        match *self {
            MicroOpRef::Append { key, .. }
            | MicroOpRef::Read { key, .. }
            | MicroOpRef::Write { key, .. } => key,
        }
    }

    /// The micro-op's value: the element appended, the value read or written.
    pub fn value(&self) -> &'a Value {
        match *self {
            MicroOpRef::Append { value, .. }
            | MicroOpRef::Read { value, .. }
            | MicroOpRef::Write { value, .. } => value,
        }
    }

    /// An owned copy.
    pub fn to_owned(&self) -> MicroOp {
        let (key, value) = (self.key().clone(), self.value().clone());
        match self {
            MicroOpRef::Append { .. } => MicroOp::Append { key, value },
            MicroOpRef::Read { .. } => MicroOp::Read { key, value },
            MicroOpRef::Write { .. } => MicroOp::Write { key, value },
        }
    }
}

impl std::fmt::Display for MicroOpRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            MicroOpRef::Append { .. } => "append",
            MicroOpRef::Read { .. } => "r",
            MicroOpRef::Write { .. } => "w",
        };
        write!(f, "[:{name} {} {}]", self.key(), self.value())
    }
}

/// Reads a transaction from an op's value. The error says what was wrong in
/// words; the caller adds the location (file, line, field `value`).
pub fn parse_txn(value: &Value) -> Result<Vec<MicroOp>, String> {
    let mut mops = Vec::new();
    parse_txn_into(value, &mut mops)?;
    Ok(mops.iter().map(MicroOpRef::to_owned).collect())
}

/// Like `parse_txn`, but borrows from `value` and appends to `out`, so that a
/// checker can reuse one buffer for every transaction of a history. On error
/// `out` may hold the micro-ops read before the bad one.
pub fn parse_txn_into<'a>(value: &'a Value, out: &mut Vec<MicroOpRef<'a>>) -> Result<(), String> {
    if let Value::List(items) = value {
        out.reserve(items.len());
    }
    visit_txn(value, |_, m| {
        out.push(m);
        Ok(())
    })
}

/// Reads a transaction from an op's value, handing each micro-op in turn
/// to `visit` with its position, with nothing gathered: what
/// [`parse_txn_into`] does with a buffer. The first error, `visit`'s or the
/// value's, ends it.
pub fn visit_txn<'a>(
    value: &'a Value,
    mut visit: impl FnMut(usize, MicroOpRef<'a>) -> Result<(), String>,
) -> Result<(), String> {
    let items = match value {
        Value::List(items) => items,
        Value::Nil => return Ok(()),
        other => {
            return Err(format!(
                "expected a transaction (a list of micro-ops such as [[:append 1 2] [:r 1 nil]]), found a {}: {other}",
                other.kind_name()
            ));
        }
    };
    for (i, mop) in items.iter().enumerate() {
        let parts = match mop {
            Value::List(p) if p.len() == 3 => p,
            other => {
                return Err(format!(
                    "micro-op {i} should be [f key value] with f one of append, r, w; found {other}"
                ));
            }
        };
        let (key, value) = (&parts[1], &parts[2]);
        let m = match parts[0].as_str() {
            Some("append") => MicroOpRef::Append { key, value },
            Some("r" | "read") => MicroOpRef::Read { key, value },
            Some("w" | "write") => MicroOpRef::Write { key, value },
            _ => {
                return Err(format!(
                    "micro-op {i} has function {}, expected append, r or w",
                    parts[0]
                ));
            }
        };
        visit(i, m)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_edn_and_json_spellings() {
        let v = Value::list([
            Value::list([Value::keyword("append"), Value::Int(5), Value::Int(3)]),
            Value::list([Value::str("r"), Value::Int(5), Value::list([Value::Int(3)])]),
            Value::list([Value::keyword("w"), Value::str("x"), Value::Int(1)]),
        ]);
        let txn = parse_txn(&v).expect("parse");
        assert_eq!(txn.len(), 3);
        assert_eq!(
            txn[1],
            MicroOp::Read { key: Value::Int(5), value: Value::list([Value::Int(3)]) }
        );
        assert_eq!(txn[0].to_string(), "[:append 5 3]");
        let mut refs = Vec::new();
        parse_txn_into(&v, &mut refs).expect("parse");
        assert_eq!(refs[1].to_string(), "[:r 5 [3]]");
        assert_eq!(refs[2].to_owned(), txn[2]);
    }

    #[test]
    fn rejects_unknown_micro_op_in_words() {
        let v = Value::list([Value::list([Value::keyword("inc"), Value::Int(1), Value::Int(1)])]);
        let err = parse_txn(&v).expect_err("bad");
        assert!(err.contains("micro-op 0 has function :inc"), "{err}");
    }
}
