//! faultline's operations (docs/workloads.md) as SQL, each run inside one
//! transaction the client opens and commits (`client.rs`).
//!
//! - List-append (`Tables::Lists`): table `lists (k bigint primary key,
//!   v text)`, one row per key holding its list as comma-separated
//!   integers; `append` is `INSERT ... ON CONFLICT (k) DO UPDATE SET v =
//!   lists.v || ',' || x`, `r` a `SELECT` of the row.
//! - Everything else (`Tables::Registers`): table `registers (k bigint
//!   primary key, v bigint)`: `r` and `read` select the row, `w` and
//!   `write` upsert it, `cas` updates it where it holds the expected value
//!   (or inserts it where it must not exist) and rolls the transaction back
//!   when no row changed. The bank's accounts are registers; a `transfer`
//!   reads both balances, refuses an overdraft unless allowed, and writes
//!   both new balances (a read-modify-write, so the isolation level shows).
//! - The set: table `elements (e bigint)`, `add` inserts, `read` selects all.

use checkers::Value;
use thiserror::Error;
use tokio_postgres::Client;

use crate::cluster::Tables;

/// The tables, created once by the first primary before clients start.
pub const SCHEMA: &str = "\
CREATE TABLE IF NOT EXISTS lists (k bigint PRIMARY KEY, v text NOT NULL);
CREATE TABLE IF NOT EXISTS registers (k bigint PRIMARY KEY, v bigint);
CREATE TABLE IF NOT EXISTS elements (e bigint NOT NULL);";

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
    /// PostgreSQL or the connection reported an error.
    #[error("{0}")]
    Pg(#[from] tokio_postgres::Error),
}

/// What an operation step returns.
pub type Step<T> = std::result::Result<T, Trouble>;

/// An integer key or value, or the reason it is not one.
pub fn int(v: &Value, what: &str) -> Step<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(Trouble::Invalid(format!(
            "the postgres client needs integer {what}s, not {other:?}"
        ))),
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

/// Reads key `k` of `tables`.
pub async fn read(c: &Client, tables: Tables, k: i64) -> Step<Value> {
    match tables {
        Tables::Lists => {
            let row = c.query_opt("SELECT v FROM lists WHERE k = $1", &[&k]).await?;
            row.map_or(Ok(Value::Nil), |r| parse_list(r.get::<_, &str>(0)))
        }
        Tables::Registers => {
            let row = c.query_opt("SELECT v FROM registers WHERE k = $1", &[&k]).await?;
            Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)).map_or(Value::Nil, Value::Int))
        }
    }
}

/// Writes `v` to register `k`.
pub async fn write(c: &Client, k: i64, v: i64) -> Step<()> {
    let q = "INSERT INTO registers (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = $2";
    c.execute(q, &[&k, &v]).await?;
    Ok(())
}

/// Appends `v` to list `k`.
pub async fn append(c: &Client, k: i64, v: i64) -> Step<()> {
    let q = "INSERT INTO lists (k, v) VALUES ($1, $2) \
             ON CONFLICT (k) DO UPDATE SET v = lists.v || ',' || $2";
    c.execute(q, &[&k, &v.to_string()]).await?;
    Ok(())
}

/// Sets register `k` from `from` (nil: absent) to `to`, or rolls back.
pub async fn cas(c: &Client, k: i64, from: &Value, to: i64) -> Step<()> {
    let changed = match from {
        Value::Nil => {
            let q = "INSERT INTO registers (k, v) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING";
            c.execute(q, &[&k, &to]).await?
        }
        from => {
            let from = int(from, "value")?;
            let q = "UPDATE registers SET v = $3 WHERE k = $1 AND v = $2";
            c.execute(q, &[&k, &from, &to]).await?
        }
    };
    if changed == 0 { Err(Trouble::Rollback("cas-mismatch")) } else { Ok(()) }
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
pub async fn txn(c: &Client, tables: Tables, mops: &Value) -> Step<Value> {
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
pub async fn read_many(c: &Client, accounts: &[Value]) -> Step<Value> {
    let keys: Vec<i64> = accounts.iter().map(|a| int(a, "key")).collect::<Step<_>>()?;
    let rows = c.query("SELECT k, v FROM registers WHERE k = ANY($1)", &[&keys]).await?;
    let map = rows.iter().map(|r| {
        let v: Option<i64> = r.get(1);
        (Value::Int(r.get(0)), v.map_or(Value::Nil, Value::Int))
    });
    Ok(Value::map(map.collect::<Vec<_>>()))
}

/// A bank transfer: `{from, to, amount}` (and `negative`).
pub async fn transfer(c: &Client, t: &Value) -> Step<Value> {
    let field = |name: &str| t.get(&Value::str(name)).cloned().unwrap_or(Value::Nil);
    let (from, to) = (int(&field("from"), "account")?, int(&field("to"), "account")?);
    let amount = int(&field("amount"), "amount")?;
    let negative = field("negative") == Value::Bool(true);
    let rows = c.query("SELECT k, v FROM registers WHERE k = $1 OR k = $2", &[&from, &to]).await?;
    let balance = |k: i64| {
        rows.iter().find(|r| r.get::<_, i64>(0) == k).and_then(|r| r.get::<_, Option<i64>>(1))
    };
    let (Some(a), Some(b)) = (balance(from), balance(to)) else {
        return Err(Trouble::Rollback("no-such-account"));
    };
    if a < amount && !negative {
        return Err(Trouble::Rollback("insufficient-funds"));
    }
    let q = "UPDATE registers SET v = $2 WHERE k = $1";
    c.execute(q, &[&from, &(a - amount)]).await?;
    c.execute(q, &[&to, &(b + amount)]).await?;
    Ok(t.clone())
}

/// Adds `e` to the set.
pub async fn add(c: &Client, e: i64) -> Step<()> {
    c.execute("INSERT INTO elements (e) VALUES ($1)", &[&e]).await?;
    Ok(())
}

/// The whole set.
pub async fn read_set(c: &Client) -> Step<Value> {
    let rows = c.query("SELECT e FROM elements", &[]).await?;
    Ok(Value::set(rows.iter().map(|r| Value::Int(r.get(0))).collect::<Vec<_>>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_reads_back_as_the_integers_appended() {
        let v = parse_list("3,1,22").expect("list");
        assert_eq!(v, Value::list([3.into(), 1.into(), 22.into()]));
        assert!(parse_list("3,x").is_err());
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
