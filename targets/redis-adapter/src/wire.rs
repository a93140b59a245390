//! Redis's side of the client as data, without I/O: how a history key or
//! value becomes the bytes Redis stores, the commands each operation sends,
//! how the replies read back, and what a reply that is not a success proves
//! about the operation ([`Trouble`]).
//!
//! Every reply is read as the raw RESP value (`redis::Value`): an error
//! reply arrives as `Value::ServerError` in its place in a pipeline, so the
//! reply to a write and the reply to the `WAIT` after it are judged apart.

use checkers::Value;
use redis::{Cmd, Pipeline, Value as Resp};

/// The name Sentinel monitors the primary under.
pub const MASTER_NAME: &str = "fl";

/// The prefix of every key faultline writes, so its keys are easy to tell
/// apart in `redis-cli --scan`.
const KEY_PREFIX: &str = "fl/";

/// The compare-and-set script: sets `KEYS[1]` to `ARGV[2]` when it holds
/// `ARGV[1]`, and answers 1 when it did, 0 when it did not. Lua scripts run
/// atomically, so no write can come between the read and the set.
pub const CAS_SCRIPT: &str = "local v = redis.call('GET', KEYS[1]) \
    if v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end \
    return 0";

/// The Redis key of a history key: `fl/` and the key's JSON text (`fl/3`
/// for the integer 3, `fl/"set"` for the string `set`).
pub fn key(k: &Value) -> String {
    format!("{KEY_PREFIX}{}", encode(k))
}

/// The key of the set workload's elements.
pub fn set_key() -> String {
    key(&Value::str("set"))
}

/// The stored form of a history value: its JSON text. Equal values encode
/// to equal bytes, which the compare-and-set script relies on.
pub fn encode(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// A stored value back as a history value, or `None` when the bytes are
/// not a value faultline wrote.
pub fn decode(resp: &Resp) -> Option<Value> {
    match resp {
        Resp::Nil => Some(Value::Nil),
        Resp::BulkString(b) => serde_json::from_slice(b).ok(),
        Resp::SimpleString(s) => serde_json::from_str(s).ok(),
        _ => None,
    }
}

/// The elements of an array reply (`SMEMBERS`, `LRANGE`), decoded.
pub fn decode_all(resp: &Resp) -> Option<Vec<Value>> {
    match resp {
        Resp::Array(items) | Resp::Set(items) => items.iter().map(decode).collect(),
        Resp::Nil => Some(Vec::new()),
        _ => None,
    }
}

/// What went wrong with a request, as far as the client can tell.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Trouble {
    /// The request was never sent: no sentinel named a primary, or the
    /// connection to it could not be made.
    #[error("not sent: {0}")]
    NotSent(String),
    /// The address Sentinel named is not a primary (its `ROLE` said
    /// otherwise); nothing was sent to it.
    #[error("not the primary: {0}")]
    NotPrimary(String),
    /// No reply within the timeout: the request may have been applied.
    #[error("timeout")]
    Timeout,
    /// The connection broke, or the reply could not be read, after the
    /// request went out: it may have been applied.
    #[error("connection lost: {0}")]
    Lost(String),
    /// Redis answered with an error reply: its code and message.
    #[error("{code} {message}")]
    Refused {
        /// The error's first word (`READONLY`, `EXECABORT`, `ERR`).
        code: String,
        /// The rest of it.
        message: String,
    },
    /// A reply of a shape the command never gives.
    #[error("unexpected reply: {0}")]
    Unexpected(String),
}

/// Error codes Redis gives before it executes a command at all (its
/// `processCommand` refusals, and `EXEC` discarding a transaction), so a
/// write refused with one of them certainly changed nothing. `READONLY` is
/// the one failovers produce: the address now holds a replica. A script's
/// `READONLY` comes from its first write, which the replica refused, so it
/// too proves nothing was written.
const REFUSED_BEFORE_EXECUTION: &[&str] = &[
    "READONLY",
    "EXECABORT",
    "LOADING",
    "MASTERDOWN",
    "NOREPLICAS",
    "MISCONF",
    "BUSY",
    "OOM",
    "NOAUTH",
    "NOPERM",
];

impl Trouble {
    /// The trouble a `redis` crate error describes. `sent` says whether the
    /// request had gone out (an error while connecting never sends it).
    pub fn from_error(e: &redis::RedisError, sent: bool) -> Trouble {
        if !sent {
            return Trouble::NotSent(e.to_string());
        }
        if let Some(code) = e.code() {
            let message = e.detail().unwrap_or_default().to_owned();
            return Trouble::Refused { code: code.to_owned(), message };
        }
        if e.is_timeout() { Trouble::Timeout } else { Trouble::Lost(e.to_string()) }
    }

    /// The trouble an error reply in a pipeline carries, if it is one.
    pub fn from_reply(resp: &Resp) -> Option<Trouble> {
        let Resp::ServerError(e) = resp else { return None };
        Some(Trouble::Refused {
            code: e.code().to_owned(),
            message: e.details().unwrap_or_default().to_owned(),
        })
    }

    /// Whether this proves a request that may write changed nothing: it was
    /// never sent, or Redis refused it before executing it. Every other
    /// error reply (a plain `ERR` from inside a script or a transaction
    /// among them) may come after part of it took effect.
    pub fn proves_nothing_written(&self) -> bool {
        match self {
            Trouble::NotSent(_) | Trouble::NotPrimary(_) => true,
            Trouble::Timeout | Trouble::Lost(_) | Trouble::Unexpected(_) => false,
            Trouble::Refused { code, .. } => REFUSED_BEFORE_EXECUTION.contains(&code.as_str()),
        }
    }

    /// Whether a read with this trouble certainly observed nothing the
    /// history needs: any refusal, since a read changes nothing. A timeout
    /// or a broken connection stays indeterminate.
    pub fn read_is_definite(&self) -> bool {
        matches!(self, Trouble::NotSent(_) | Trouble::NotPrimary(_) | Trouble::Refused { .. })
    }

    /// The error recorded in the history: a short, stable word for the
    /// kinds a checker's reader may count, Redis's own words otherwise.
    pub fn describe(&self) -> String {
        match self {
            Trouble::NotSent(e) => format!("not-sent: {e}"),
            Trouble::NotPrimary(e) => format!("not-primary: {e}"),
            Trouble::Timeout => "timeout".to_owned(),
            other => other.to_string(),
        }
    }
}

/// What a `WAIT numreplicas timeout` after a write answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Waited {
    /// At least the replicas asked for acknowledged the write.
    Reached(i64),
    /// Fewer did before the timeout: the write happened on the primary,
    /// but the application's rule for an acknowledged write was not met.
    Short(i64),
    /// `WAIT` itself failed or its reply was not a count.
    Unknown(String),
}

/// Reads a `WAIT` reply against the number of replicas asked for.
pub fn waited(resp: &Resp, wanted: u32) -> Waited {
    match resp {
        Resp::Int(n) if *n >= i64::from(wanted) => Waited::Reached(*n),
        Resp::Int(n) => Waited::Short(*n),
        other => Waited::Unknown(
            Trouble::from_reply(other).map_or_else(|| format!("{other:?}"), |t| t.to_string()),
        ),
    }
}

/// The `WAIT` command sent right after a write, on the same connection
/// (`WAIT` counts the replicas that acknowledged this connection's writes).
pub fn wait_cmd(replicas: u32, timeout_ms: u64) -> Cmd {
    let mut c = redis::cmd("WAIT");
    c.arg(replicas).arg(timeout_ms);
    c
}

/// The address a `SENTINEL get-master-addr-by-name` reply names.
pub fn master_addr(resp: &Resp) -> Option<(String, u16)> {
    let Resp::Array(items) = resp else { return None };
    let [host, port] = items.as_slice() else { return None };
    let text = |r: &Resp| match r {
        Resp::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Resp::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    Some((text(host)?, text(port)?.parse().ok()?))
}

/// The role a `ROLE` reply names (`master`, `slave`, `sentinel`).
pub fn role(resp: &Resp) -> Option<String> {
    let Resp::Array(items) = resp else { return None };
    match items.first()? {
        Resp::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Resp::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// One micro-op of a list-append transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum MicroOp {
    /// `[r k nil]`: `LRANGE k 0 -1`.
    Read(Value),
    /// `[append k v]`: `RPUSH k v`.
    Append(Value, Value),
}

/// A list-append transaction: its micro-ops, sent as one `MULTI`/`EXEC`.
#[derive(Clone, Debug, PartialEq)]
pub struct Txn {
    /// The micro-ops in order.
    pub mops: Vec<MicroOp>,
}

impl Txn {
    /// Reads `[[f k v] ...]`; only `r` and `append` exist on this client.
    pub fn parse(value: &Value) -> Result<Txn, String> {
        let list = value.as_list().ok_or("txn needs a list of micro-ops")?;
        let mut mops = Vec::with_capacity(list.len());
        for m in list {
            let Some([f, k, v]) = m.as_list().and_then(|l| <&[Value; 3]>::try_from(l).ok()) else {
                return Err(format!("micro-op {m:?} is not [f k v]"));
            };
            mops.push(match f.as_str() {
                Some("r") => MicroOp::Read(k.clone()),
                Some("append") => MicroOp::Append(k.clone(), v.clone()),
                _ => return Err(format!("the redis client performs r and append, not {f:?}")),
            });
        }
        Ok(Txn { mops })
    }

    /// Whether it writes (and so is followed by `WAIT` when asked).
    pub fn writes(&self) -> bool {
        self.mops.iter().any(|m| matches!(m, MicroOp::Append(..)))
    }

    /// The commands: `MULTI`, one per micro-op, `EXEC`. Inside `MULTI` a
    /// read sees the transaction's own earlier appends, as list-append
    /// expects.
    pub fn pipeline(&self) -> Pipeline {
        let mut p = redis::pipe();
        p.cmd("MULTI");
        for m in &self.mops {
            match m {
                MicroOp::Read(k) => p.cmd("LRANGE").arg(key(k)).arg(0).arg(-1),
                MicroOp::Append(k, v) => p.cmd("RPUSH").arg(key(k)).arg(encode(v)),
            };
        }
        p.cmd("EXEC");
        p
    }

    /// The completed micro-ops from the replies to [`Txn::pipeline`]
    /// (`MULTI`'s, one `QUEUED` per micro-op, then `EXEC`'s): `Ok` with the
    /// reads filled in, or the trouble. A queued command refused makes
    /// `EXEC` discard the whole transaction (`EXECABORT`); `EXEC` answering
    /// nil is an abort too; an error inside `EXEC`'s array means the other
    /// commands ran, so it is not a refusal of the whole.
    pub fn outcome(&self, replies: &[Resp]) -> Result<Value, Trouble> {
        let unexpected = || Trouble::Unexpected(format!("{replies:?}"));
        let (exec, queued) = replies.split_last().ok_or_else(unexpected)?;
        if let Some(t) = Trouble::from_reply(exec) {
            return Err(t);
        }
        if let Some(t) = queued.iter().find_map(Trouble::from_reply) {
            // EXEC answered something other than EXECABORT after a refused
            // command: nobody can tell what ran.
            return Err(Trouble::Unexpected(format!("{t} before EXEC answered {exec:?}")));
        }
        let results = match exec {
            Resp::Array(items) if items.len() == self.mops.len() => items,
            Resp::Nil => {
                return Err(Trouble::Refused {
                    code: "EXECABORT".into(),
                    message: "EXEC answered nil: the transaction was aborted".into(),
                });
            }
            _ => return Err(unexpected()),
        };
        self.fill(results)
    }

    fn fill(&self, results: &[Resp]) -> Result<Value, Trouble> {
        let mut out = Vec::with_capacity(self.mops.len());
        for (m, r) in self.mops.iter().zip(results) {
            if let Some(t) = Trouble::from_reply(r) {
                // Redis does not roll back the commands before or after it.
                return Err(Trouble::Unexpected(format!("inside EXEC: {t}")));
            }
            out.push(match m {
                MicroOp::Read(k) => {
                    let items =
                        decode_all(r).ok_or_else(|| Trouble::Unexpected(format!("{r:?}")))?;
                    let read = if items.is_empty() { Value::Nil } else { Value::list(items) };
                    Value::list([Value::str("r"), k.clone(), read])
                }
                MicroOp::Append(k, v) => Value::list([Value::str("append"), k.clone(), v.clone()]),
            });
        }
        Ok(Value::list(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Resp {
        Resp::BulkString(s.as_bytes().to_vec())
    }

    /// An error reply as Redis sends it (`-CODE message`).
    fn error(text: &str) -> Resp {
        redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).expect("an error reply")
    }

    #[test]
    fn keys_and_values_are_their_json_text() {
        assert_eq!(key(&Value::Int(3)), "fl/3");
        assert_eq!(set_key(), "fl/\"set\"");
        let v = Value::list([Value::Int(7), Value::str("x")]);
        assert_eq!(decode(&bulk(&encode(&v))), Some(v));
        assert_eq!(decode(&Resp::Nil), Some(Value::Nil));
        assert_eq!(decode(&bulk("{not json")), None);
        let members = Resp::Array(vec![bulk("1"), bulk("2")]);
        assert_eq!(decode_all(&members), Some(vec![Value::Int(1), Value::Int(2)]));
    }

    #[test]
    fn only_refusals_before_execution_prove_a_write_did_nothing() {
        let readonly =
            Trouble::from_reply(&error("READONLY You can't write against a read only replica."))
                .expect("an error reply");
        assert!(readonly.proves_nothing_written());
        assert!(
            Trouble::from_reply(&error("EXECABORT Transaction discarded"))
                .is_some_and(|t| t.proves_nothing_written())
        );
        let err = Trouble::from_reply(&error("ERR Error running script")).expect("an error reply");
        assert!(!err.proves_nothing_written());
        assert!(err.read_is_definite());
        assert!(!Trouble::Timeout.proves_nothing_written());
        assert!(!Trouble::Timeout.read_is_definite());
        assert!(!Trouble::Lost("reset".into()).proves_nothing_written());
        assert!(Trouble::NotSent("refused".into()).proves_nothing_written());
        assert!(Trouble::NotPrimary("slave".into()).proves_nothing_written());
        assert_eq!(Trouble::from_reply(&Resp::Int(1)), None);
    }

    #[test]
    fn wait_replies_are_read_against_the_replicas_asked_for() {
        assert_eq!(waited(&Resp::Int(2), 2), Waited::Reached(2));
        assert_eq!(waited(&Resp::Int(1), 2), Waited::Short(1));
        assert!(
            matches!(waited(&error("ERR WAIT cannot be used with replica instances"), 1), Waited::Unknown(e) if e.contains("replica"))
        );
    }

    #[test]
    fn sentinel_and_role_replies_name_the_primary() {
        let addr = Resp::Array(vec![bulk("10.0.0.1"), bulk("7700")]);
        assert_eq!(master_addr(&addr), Some(("10.0.0.1".into(), 7700)));
        assert_eq!(master_addr(&Resp::Nil), None);
        let role_reply = Resp::Array(vec![bulk("master"), Resp::Int(0), Resp::Array(vec![])]);
        assert_eq!(role(&role_reply).as_deref(), Some("master"));
    }

    fn mop(f: &str, k: i64, v: Value) -> Value {
        Value::list([Value::str(f), Value::Int(k), v])
    }

    #[test]
    fn a_list_append_txn_fills_its_reads_from_exec() {
        let t = Txn::parse(&Value::list([
            mop("append", 1, 6.into()),
            mop("r", 1, Value::Nil),
            mop("r", 2, Value::Nil),
        ]))
        .expect("a txn");
        assert!(t.writes());
        assert_eq!(t.pipeline().len(), 5);
        let queued = || Resp::SimpleString("QUEUED".into());
        let exec = Resp::Array(vec![
            Resp::Int(2),
            Resp::Array(vec![bulk("5"), bulk("6")]),
            Resp::Array(vec![]),
        ]);
        let replies = [Resp::Okay, queued(), queued(), queued(), exec];
        let want = Value::list([
            mop("append", 1, 6.into()),
            mop("r", 1, Value::list([5.into(), 6.into()])),
            mop("r", 2, Value::Nil),
        ]);
        assert_eq!(t.outcome(&replies), Ok(want));
    }

    #[test]
    fn a_txn_refused_while_queued_or_aborted_proves_nothing_written_but_an_error_inside_exec_does_not()
     {
        let t = Txn::parse(&Value::list([mop("append", 1, 6.into())])).expect("a txn");
        let refused = [
            Resp::Okay,
            error("READONLY replica"),
            error("EXECABORT Transaction discarded because of previous errors."),
        ];
        assert!(t.outcome(&refused).is_err_and(|e| e.proves_nothing_written()));
        let aborted = [Resp::Okay, Resp::SimpleString("QUEUED".into()), Resp::Nil];
        assert!(t.outcome(&aborted).is_err_and(|e| e.proves_nothing_written()));
        let inside = [
            Resp::Okay,
            Resp::SimpleString("QUEUED".into()),
            Resp::Array(vec![error("WRONGTYPE Operation against a key")]),
        ];
        assert!(t.outcome(&inside).is_err_and(|e| !e.proves_nothing_written()));
        assert!(Txn::parse(&Value::list([mop("w", 1, 2.into())])).is_err());
    }
}
