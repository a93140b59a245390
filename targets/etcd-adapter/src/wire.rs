//! etcd's v3 HTTP JSON gateway as data, without I/O: how a history key or
//! value becomes the bytes etcd stores (base64 in JSON), the request bodies
//! the client sends (`/v3/kv/range`, `/v3/kv/txn`), what comes back, and
//! what an answer that is not a success proves about the operation.
//!
//! The gateway speaks protobuf's JSON mapping: `bytes` fields are base64,
//! 64-bit integers are decimal strings, and fields at their default value
//! (`succeeded: false`, an empty `kvs`) are left out.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use checkers::Value;
use serde_json::json;

/// The prefix of every key faultline writes, so its keys are easy to tell
/// apart in etcd's own tools (`etcdctl get --prefix fl/`).
const KEY_PREFIX: &str = "fl/";

/// The etcd key of a history key, base64: `fl/` and the key's JSON text
/// (`fl/3` for the integer 3, `fl/"set"` for the string `set`).
pub fn key(k: &Value) -> String {
    B64.encode(format!("{KEY_PREFIX}{}", json_text(k)))
}

/// The stored form of a history value, base64 of its JSON text. Equal
/// values always encode to equal bytes, which a compare on `VALUE` relies on.
pub fn value(v: &Value) -> String {
    B64.encode(json_text(v))
}

fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// A history value back from etcd's base64, or `None` when the bytes are
/// not a value faultline wrote.
pub fn decode_value(b64: &str) -> Option<Value> {
    let bytes = B64.decode(b64).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// One key as a range request reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Read {
    /// The value, `Nil` when the key does not exist.
    pub value: Value,
    /// The revision of the key's last change, 0 when it does not exist (which
    /// is what a compare on `MOD` sees for a missing key).
    pub mod_revision: i64,
}

/// Which reads the client asks for: through Raft's read index, or from
/// the member's local state (`serializable`), which may be stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Linearizable (etcd's default).
    Linearizable,
    /// Serializable: answered locally by whichever member is asked.
    Serializable,
}

impl Reads {
    /// The option's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Reads::Linearizable => "linearizable",
            Reads::Serializable => "serializable",
        }
    }
}

/// A range request of one key (`/v3/kv/range`, or `request_range` inside a txn).
pub fn range(k: &Value, reads: Reads) -> serde_json::Value {
    json!({ "key": key(k), "serializable": reads == Reads::Serializable })
}

/// A read of several keys at one revision: a txn without comparisons whose
/// only requests are ranges (a read-only txn, read as `reads` says).
pub fn read_txn(keys: &[Value], reads: Reads) -> serde_json::Value {
    let success: Vec<serde_json::Value> =
        keys.iter().map(|k| json!({ "request_range": range(k, reads) })).collect();
    json!({ "success": success })
}

/// A put request inside a txn.
pub fn put_op(k: &Value, v: &Value) -> serde_json::Value {
    json!({ "request_put": { "key": key(k), "value": value(v) } })
}

/// A compare that holds while `k` still holds `v` (a compare-and-set).
pub fn value_equals(k: &Value, v: &Value) -> serde_json::Value {
    json!({ "key": key(k), "target": "VALUE", "result": "EQUAL", "value": value(v) })
}

/// A compare that holds while `k` is unchanged since revision `rev` (0: it
/// still does not exist).
pub fn unchanged_since(k: &Value, rev: i64) -> serde_json::Value {
    json!({ "key": key(k), "target": "MOD", "result": "EQUAL", "mod_revision": rev.to_string() })
}

/// A txn: `success` applied when every compare holds, else nothing.
pub fn txn(compare: Vec<serde_json::Value>, success: Vec<serde_json::Value>) -> serde_json::Value {
    json!({ "compare": compare, "success": success })
}

/// A 64-bit integer of the JSON mapping (a string, or a number).
fn int64(v: Option<&serde_json::Value>) -> Option<i64> {
    match v? {
        serde_json::Value::String(s) => s.parse().ok(),
        n => n.as_i64(),
    }
}

/// The key a range answer (`RangeResponse`) found, or `None` when the
/// answer is not one.
pub fn parse_range(resp: &serde_json::Value) -> Option<Read> {
    if !resp.is_object() {
        return None;
    }
    let Some(kv) = resp.get("kvs").and_then(|k| k.as_array()).and_then(|k| k.first()) else {
        return Some(Read { value: Value::Nil, mod_revision: 0 });
    };
    let value = match kv.get("value").and_then(|v| v.as_str()) {
        Some(b64) => decode_value(b64)?,
        // A key put with an empty value: faultline never writes one.
        None => return None,
    };
    Some(Read { value, mod_revision: int64(kv.get("mod_revision"))? })
}

/// Whether a txn's comparisons held (the gateway leaves out `false`).
pub fn txn_succeeded(resp: &serde_json::Value) -> bool {
    resp.get("succeeded").and_then(|s| s.as_bool()).unwrap_or(false)
}

/// The ranges a read-only txn answered, in order, or `None` when the
/// answer is not one.
pub fn parse_read_txn(resp: &serde_json::Value, keys: usize) -> Option<Vec<Read>> {
    let responses = resp.get("responses").and_then(|r| r.as_array())?;
    if responses.len() != keys {
        return None;
    }
    responses.iter().map(|r| parse_range(r.get("response_range")?)).collect()
}

/// Why a request to the gateway did not come back as a success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trouble {
    /// The connection was never made: the request was not sent.
    NotSent(String),
    /// No answer within the timeout: it may have been applied.
    Timeout,
    /// The connection broke, or the answer could not be read, after the
    /// request went out: it may have been applied.
    Lost(String),
    /// etcd answered with an error: its gRPC code and message.
    Refused {
        /// The gRPC status code (3 invalid argument, 14 unavailable...).
        code: i64,
        /// etcd's message (`etcdserver: request timed out`).
        message: String,
    },
}

/// gRPC's `InvalidArgument`: the request was refused as malformed before
/// anything was proposed.
const INVALID_ARGUMENT: i64 = 3;

impl Trouble {
    /// The trouble an error answer's body describes (`{"code", "message"}`).
    pub fn from_answer(status: u16, body: &serde_json::Value) -> Trouble {
        let code = body.get("code").and_then(|c| c.as_i64()).unwrap_or(-1);
        let message = body
            .get("message")
            .or_else(|| body.get("error"))
            .and_then(|m| m.as_str())
            .map_or_else(|| format!("HTTP {status}"), str::to_owned);
        Trouble::Refused { code, message }
    }

    /// Whether this proves a request that may write changed nothing. Only
    /// three answers do: a connection never made; a request refused as
    /// invalid (checked before anything is proposed); and the two refusals
    /// etcd gives before it proposes: `too many requests` (its proposal
    /// backlog is full) and Raft's `raft proposal dropped` (a follower
    /// that knows no leader, or a leader handing over). Everything else,
    /// `request timed out` and `leader changed` above all, may come after
    /// the entry reached the log, so the write may yet take effect.
    pub fn proves_nothing_written(&self) -> bool {
        match self {
            Trouble::NotSent(_) => true,
            Trouble::Timeout | Trouble::Lost(_) => false,
            Trouble::Refused { code, message } => {
                *code == INVALID_ARGUMENT
                    || message.contains("too many requests")
                    || message.contains("raft proposal dropped")
            }
        }
    }

    /// Whether a read with this trouble is certain to have observed nothing
    /// the history needs: any answer from etcd, since a read changes
    /// nothing. A timeout or a broken connection stays indeterminate.
    pub fn read_is_definite(&self) -> bool {
        matches!(self, Trouble::NotSent(_) | Trouble::Refused { .. })
    }

    /// The error recorded in the history.
    pub fn describe(&self) -> String {
        match self {
            Trouble::NotSent(_) => "connection-refused".to_owned(),
            Trouble::Timeout => "timeout".to_owned(),
            Trouble::Lost(e) => format!("connection: {e}"),
            Trouble::Refused { message, .. } => message.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_base64_of_their_json_text() {
        assert_eq!(B64.decode(key(&Value::Int(3))).expect("base64"), b"fl/3");
        assert_eq!(B64.decode(key(&Value::str("set"))).expect("base64"), b"fl/\"set\"");
        assert_eq!(
            B64.decode(value(&Value::list([Value::Int(1), Value::Int(2)]))).expect("base64"),
            b"[1,2]"
        );
        let v = Value::list([Value::Int(7), Value::str("x")]);
        assert_eq!(decode_value(&value(&v)), Some(v));
        assert_eq!(decode_value("not base64!"), None);
    }

    #[test]
    fn a_range_answer_gives_value_and_mod_revision_and_a_missing_key_reads_nil() {
        let answer = json!({
            "header": {"revision": "9"},
            "kvs": [{"key": key(&Value::Int(1)), "mod_revision": "7", "value": value(&Value::Int(4))}],
            "count": "1"
        });
        assert_eq!(parse_range(&answer), Some(Read { value: Value::Int(4), mod_revision: 7 }));
        let missing = json!({"header": {"revision": "9"}});
        assert_eq!(parse_range(&missing), Some(Read { value: Value::Nil, mod_revision: 0 }));
        assert_eq!(parse_range(&json!("junk")), None);
    }

    #[test]
    fn a_txn_that_leaves_out_succeeded_did_not_succeed() {
        assert!(txn_succeeded(&json!({"succeeded": true, "responses": []})));
        assert!(!txn_succeeded(&json!({"header": {}, "responses": []})));
    }

    #[test]
    fn requests_carry_reads_compares_and_puts_as_the_gateway_expects() {
        let k = Value::Int(2);
        assert_eq!(range(&k, Reads::Serializable)["serializable"], json!(true));
        assert_eq!(range(&k, Reads::Linearizable)["serializable"], json!(false));
        let t = txn(vec![unchanged_since(&k, 0)], vec![put_op(&k, &Value::Int(5))]);
        assert_eq!(t["compare"][0]["target"], json!("MOD"));
        assert_eq!(t["compare"][0]["mod_revision"], json!("0"));
        assert_eq!(t["success"][0]["request_put"]["value"], json!(value(&Value::Int(5))));
        assert_eq!(value_equals(&k, &Value::Int(1))["target"], json!("VALUE"));
        let r = read_txn(&[Value::Int(1), Value::Int(2)], Reads::Linearizable);
        assert_eq!(r["success"].as_array().map(Vec::len), Some(2));
        let answer = json!({"succeeded": true, "responses": [
            {"response_range": {"kvs": [{"mod_revision": "3", "value": value(&Value::Int(9))}]}},
            {"response_range": {"header": {}}}
        ]});
        assert_eq!(
            parse_read_txn(&answer, 2),
            Some(vec![
                Read { value: Value::Int(9), mod_revision: 3 },
                Read { value: Value::Nil, mod_revision: 0 }
            ])
        );
        assert_eq!(parse_read_txn(&answer, 3), None);
    }

    #[test]
    fn only_answers_that_prove_nothing_was_proposed_are_definite_for_writes() {
        let refused = |code, message: &str| Trouble::Refused { code, message: message.into() };
        assert!(Trouble::NotSent("refused".into()).proves_nothing_written());
        assert!(
            refused(3, "etcdserver: duplicate key given in txn request").proves_nothing_written()
        );
        assert!(refused(8, "etcdserver: too many requests").proves_nothing_written());
        assert!(refused(2, "raft proposal dropped").proves_nothing_written());
        assert!(!Trouble::Timeout.proves_nothing_written());
        assert!(!Trouble::Lost("reset".into()).proves_nothing_written());
        assert!(!refused(14, "etcdserver: request timed out").proves_nothing_written());
        assert!(!refused(14, "etcdserver: leader changed").proves_nothing_written());
        assert!(!refused(14, "etcdserver: no leader").proves_nothing_written());
        assert!(refused(14, "etcdserver: request timed out").read_is_definite());
        assert!(!Trouble::Timeout.read_is_definite());
    }

    #[test]
    fn an_error_body_names_its_code_and_message() {
        let body = json!({"error": "etcdserver: request timed out", "message": "etcdserver: request timed out", "code": 14});
        assert_eq!(
            Trouble::from_answer(503, &body),
            Trouble::Refused { code: 14, message: "etcdserver: request timed out".into() }
        );
        assert_eq!(
            Trouble::from_answer(502, &json!({})),
            Trouble::Refused { code: -1, message: "HTTP 502".into() }
        );
    }
}
