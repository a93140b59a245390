//! faultline's operations (docs/workloads.md) as MariaDB SQL, each run
//! inside one transaction the client opens and commits (`client.rs`).
//!
//! - List-append (`Tables::Lists`): table `lists (k BIGINT PRIMARY KEY,
//!   v TEXT)`, one row per key holding its list as comma-separated
//!   integers; `append` is `INSERT ... ON DUPLICATE KEY UPDATE v =
//!   CONCAT(v, ',', VALUES(v))`, `r` a `SELECT` of the row.
//! - Everything else (`Tables::Registers`): table `registers (k BIGINT
//!   PRIMARY KEY, v BIGINT)`: `r` and `read` select the row, `w` and
//!   `write` upsert it, `cas` updates it where it holds the expected value
//!   (or inserts it where it must not exist) and rolls the transaction
//!   back when no row matched. The bank's accounts are registers; a
//!   `transfer` reads both balances, refuses an overdraft unless allowed,
//!   and writes both new balances (a read-modify-write, so the isolation
//!   level shows).
//!
//! Under REPEATABLE READ, InnoDB's plain `SELECT` reads the transaction's
//! snapshot while `UPDATE` and `INSERT ... ON DUPLICATE KEY UPDATE` act on
//! the latest committed row: an append never drops another append, but
//! what the transaction read may be older than what it wrote on top of.

use checkers::Value;
use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use thiserror::Error;

/// Which tables the client uses, chosen by the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tables {
    /// `lists`: one row per key, its value a comma-separated text list.
    Lists,
    /// `registers`: one integer per key (registers, rw-register, bank).
    Registers,
}

/// Why an operation did not complete.
#[derive(Debug, Error)]
pub enum Trouble {
    /// The operation cannot be expressed (not an integer, an unknown
    /// micro-op); nothing was sent for it.
    #[error("{0}")]
    Invalid(String),
    /// The client rolled the transaction back on purpose (a compare that
    /// did not hold, an overdraft).
    #[error("{0}")]
    Rollback(&'static str),
    /// MariaDB or the connection reported an error.
    #[error("{0}")]
    Sql(#[from] mysql_async::Error),
}

/// What an operation step returns.
pub type Step<T> = std::result::Result<T, Trouble>;

/// An integer key or value, or the reason it is not one.
pub fn int(v: &Value, what: &str) -> Step<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => {
            Err(Trouble::Invalid(format!("the galera client needs integer {what}s, not {other:?}")))
        }
    }
}

/// A list as the `lists` table holds it, read back.
pub fn parse_list(text: &str) -> Step<Value> {
    let items: Result<Vec<Value>, _> = text
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<i64>().map(Value::Int))
        .collect();
    items
        .map(Value::list)
        .map_err(|_| Trouble::Invalid(format!("list {text:?} holds a non-integer")))
}

/// `k IN (...)` of integer keys, written out (they are integers, so
/// nothing needs quoting, and the number of placeholders never varies).
fn key_list(keys: &[i64]) -> String {
    keys.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

/// Reads key `k` of `tables`.
pub async fn read(c: &mut Conn, tables: Tables, k: i64) -> Step<Value> {
    match tables {
        Tables::Lists => {
            let row: Option<(String,)> =
                c.exec_first("SELECT v FROM lists WHERE k = ?", (k,)).await?;
            row.map_or(Ok(Value::Nil), |(v,)| parse_list(&v))
        }
        Tables::Registers => {
            let row: Option<(Option<i64>,)> =
                c.exec_first("SELECT v FROM registers WHERE k = ?", (k,)).await?;
            Ok(row.and_then(|(v,)| v).map_or(Value::Nil, Value::Int))
        }
    }
}

/// Writes `v` to register `k`.
pub async fn write(c: &mut Conn, k: i64, v: i64) -> Step<()> {
    let q = "INSERT INTO registers (k, v) VALUES (?, ?) ON DUPLICATE KEY UPDATE v = VALUES(v)";
    c.exec_drop(q, (k, v)).await?;
    Ok(())
}

/// Appends `v` to list `k`.
pub async fn append(c: &mut Conn, k: i64, v: i64) -> Step<()> {
    let q = "INSERT INTO lists (k, v) VALUES (?, ?) \
             ON DUPLICATE KEY UPDATE v = CONCAT(v, ',', VALUES(v))";
    c.exec_drop(q, (k, v.to_string())).await?;
    Ok(())
}

/// Sets register `k` from `from` (nil: absent) to `to`, or rolls back.
/// The session counts matched rows (`CLIENT_FOUND_ROWS`), so a cas from a
/// value to itself counts as done.
pub async fn cas(c: &mut Conn, k: i64, from: &Value, to: i64) -> Step<()> {
    match from {
        Value::Nil => {
            let q = "INSERT IGNORE INTO registers (k, v) VALUES (?, ?)";
            c.exec_drop(q, (k, to)).await?;
        }
        from => {
            let from = int(from, "value")?;
            let q = "UPDATE registers SET v = ? WHERE k = ? AND v = ?";
            c.exec_drop(q, (to, k, from)).await?;
        }
    }
    if c.affected_rows() == 0 { Err(Trouble::Rollback("cas-mismatch")) } else { Ok(()) }
}

/// The `[from to]` of a cas.
pub fn cas_args(v: &Value) -> Step<(&Value, i64)> {
    match v.as_list() {
        Some([from, to]) => Ok((from, int(to, "value")?)),
        _ => Err(Trouble::Invalid(format!("cas needs [from to], not {v:?}"))),
    }
}

/// A transaction's micro-ops, performed in order; the result is the
/// micro-ops with their reads filled in.
pub async fn txn(c: &mut Conn, tables: Tables, mops: &Value) -> Step<Value> {
    let list = mops.as_list().ok_or_else(|| Trouble::Invalid("txn needs a list".into()))?;
    let mut out = Vec::with_capacity(list.len());
    for m in list {
        let Some([f, k, v]) = m.as_list() else {
            return Err(Trouble::Invalid(format!("micro-op {m:?} is not [f k v]")));
        };
        let key = int(k, "key")?;
        let value = match (f.as_str(), tables) {
            (Some("r"), _) => read(c, tables, key).await?,
            (Some("append"), Tables::Lists) => {
                append(c, key, int(v, "value")?).await.map(|_| v.clone())?
            }
            (Some("w"), Tables::Registers) => {
                write(c, key, int(v, "value")?).await.map(|_| v.clone())?
            }
            (Some("cas"), Tables::Registers) => {
                let (from, to) = cas_args(v)?;
                cas(c, key, from, to).await.map(|_| v.clone())?
            }
            (f, t) => return Err(Trouble::Invalid(format!("micro-op {f:?} on {t:?} tables"))),
        };
        out.push(Value::list([f.clone(), k.clone(), value]));
    }
    Ok(Value::list(out))
}

/// The balances of `accounts`, as a map, in one read.
pub async fn read_many(c: &mut Conn, accounts: &[Value]) -> Step<Value> {
    let keys: Vec<i64> = accounts.iter().map(|a| int(a, "key")).collect::<Step<_>>()?;
    if keys.is_empty() {
        return Ok(Value::map(Vec::new()));
    }
    let q = format!("SELECT k, v FROM registers WHERE k IN ({})", key_list(&keys));
    let rows: Vec<(i64, Option<i64>)> = c.query(q).await?;
    let map = rows.into_iter().map(|(k, v)| (Value::Int(k), v.map_or(Value::Nil, Value::Int)));
    Ok(Value::map(map.collect::<Vec<_>>()))
}

/// A bank transfer: `{from, to, amount}` (and `negative`).
pub async fn transfer(c: &mut Conn, t: &Value) -> Step<Value> {
    let field = |name: &str| t.get(&Value::str(name)).cloned().unwrap_or(Value::Nil);
    let (from, to) = (int(&field("from"), "account")?, int(&field("to"), "account")?);
    let amount = int(&field("amount"), "amount")?;
    let negative = field("negative") == Value::Bool(true);
    let rows: Vec<(i64, Option<i64>)> =
        c.exec("SELECT k, v FROM registers WHERE k = ? OR k = ?", (from, to)).await?;
    let balance = |k: i64| rows.iter().find(|r| r.0 == k).and_then(|r| r.1);
    let (Some(a), Some(b)) = (balance(from), balance(to)) else {
        return Err(Trouble::Rollback("no-such-account"));
    };
    if a < amount && !negative {
        return Err(Trouble::Rollback("insufficient-funds"));
    }
    let q = "UPDATE registers SET v = ? WHERE k = ?";
    c.exec_drop(q, (a - amount, from)).await?;
    c.exec_drop(q, (b + amount, to)).await?;
    Ok(t.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_reads_back_as_the_integers_appended() {
        let v = parse_list("3,1,22").expect("list");
        assert_eq!(v, Value::list([3.into(), 1.into(), 22.into()]));
        assert!(parse_list("3,x").is_err());
        assert_eq!(key_list(&[4, -2]), "4,-2");
    }

    #[test]
    fn only_integers_are_keys_and_a_cas_needs_two_values() {
        assert_eq!(int(&Value::Int(4), "key").ok(), Some(4));
        assert!(matches!(int(&Value::str("a"), "key"), Err(Trouble::Invalid(_))));
        let v = Value::list([Value::Nil, 5.into()]);
        assert_eq!(cas_args(&v).ok(), Some((&Value::Nil, 5)));
        assert!(cas_args(&Value::list([1.into()])).is_err());
    }
}
