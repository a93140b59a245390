//! The Galera client: one session with the node the harness opened it on
//! (Galera is multi-master: every node takes writes, so clients spread
//! over all of them), every operation one transaction at the test's
//! isolation level (`ops.rs` has the SQL, `outcome.rs` what each error
//! proves).
//!
//! A session that cannot be opened makes the operation `fail`: nothing was
//! sent. A session whose last operation was cut short (the harness's
//! timeout dropped it mid-statement) is not trusted again: the next
//! operation opens a new one.

use std::time::Duration;

use async_trait::async_trait;
use checkers::{OpType, Value};
use harness::{Client, Completion, Invocation, Result, TestEnv};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

use crate::Options;
use crate::config;
use crate::ops::{self, Step, Trouble};
use crate::outcome;

/// How long opening a session may take.
const CONNECT: Duration = Duration::from_secs(2);

/// A client of one Galera node.
pub struct GaleraClient {
    env: TestEnv,
    options: Options,
    /// The node whose server this client talks to.
    node: String,
    /// The open session, if any.
    session: Option<Conn>,
    /// Whether an operation is under way on the session; still set when a
    /// new one begins, the last was dropped half-way.
    busy: bool,
}

impl GaleraClient {
    /// A client of nothing yet; `open` names the node.
    pub fn new(env: TestEnv, options: Options) -> GaleraClient {
        GaleraClient { env, options, node: String::new(), session: None, busy: false }
    }

    /// The session with the node, opened (with the test's isolation level)
    /// when there is none.
    async fn session(&mut self) -> std::result::Result<&mut Conn, String> {
        if self.busy {
            self.session = None;
        }
        if self.session.is_none() {
            let addr = self.env.addrs(&self.node).map_err(|e| e.to_string())?.client;
            let opts = OptsBuilder::default()
                .ip_or_hostname(addr.ip().to_string())
                .tcp_port(addr.port())
                .prefer_socket(false)
                .user(Some(config::USER))
                .db_name(Some(config::DATABASE))
                .client_found_rows(true)
                .init(vec![self.options.isolation.set_session()]);
            let conn = tokio::time::timeout(CONNECT, Conn::new(opts)).await;
            let conn = match conn {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Err(format!("no session with {}: {e}", self.node)),
                Err(_) => return Err(format!("no session with {} within {CONNECT:?}", self.node)),
            };
            self.session = Some(conn);
        }
        self.session.as_mut().ok_or_else(|| "no session".to_owned())
    }
}

/// The transaction's trouble as the completion to record.
fn completion(inv: &Invocation, trouble: &Trouble, at_commit: bool) -> Completion {
    let (kind, why) = match trouble {
        Trouble::Invalid(why) => (OpType::Fail, why.clone()),
        Trouble::Rollback(why) => (OpType::Fail, (*why).to_owned()),
        Trouble::Sql(e) => {
            let code = match e {
                mysql_async::Error::Server(s) => Some(s.code),
                _ => None,
            };
            let (kind, tag) = outcome::outcome(code, at_commit);
            (kind, format!("{tag}: {e}"))
        }
    };
    Completion { kind, value: inv.value.clone(), error: Some(Value::str(why)) }
}

/// The operation's statements (inside the transaction). A write
/// completes with its argument, a read with what it read.
async fn perform(c: &mut Conn, options: Options, inv: &Invocation) -> Step<Value> {
    let key = inv.key.as_ref().map(|k| ops::int(k, "key")).transpose()?;
    let written = inv.value.clone();
    match (inv.f.as_str(), key) {
        ("read" | "final-read", Some(k)) => ops::read(c, options.tables, k).await,
        ("read" | "final-read", None) => match inv.value.as_list() {
            Some(accounts) => ops::read_many(c, accounts).await,
            None => Err(Trouble::Invalid("a read without a key needs the accounts".into())),
        },
        ("write", Some(k)) => {
            ops::write(c, k, ops::int(&inv.value, "value")?).await.map(|()| written)
        }
        ("cas", Some(k)) => {
            let (from, to) = ops::cas_args(&inv.value)?;
            ops::cas(c, k, from, to).await.map(|()| written)
        }
        ("txn", None) => ops::txn(c, options.tables, &inv.value).await,
        ("transfer", None) => ops::transfer(c, &inv.value).await,
        (f, _) => Err(Trouble::Invalid(format!("the galera client cannot {f} (with that key?)"))),
    }
}

/// Whether the trouble leaves the session unusable: anything but an
/// error answer from the server means the connection is gone or in an
/// unknown state.
fn breaks_session(t: &Trouble) -> bool {
    matches!(t, Trouble::Sql(e) if !matches!(e, mysql_async::Error::Server(_)))
}

/// One transaction: BEGIN, the operation, COMMIT. Returns the completion
/// and whether the session is still usable.
async fn transaction(c: &mut Conn, options: Options, inv: &Invocation) -> (Completion, bool) {
    if let Err(e) = c.query_drop("START TRANSACTION").await {
        let t = Trouble::Sql(e);
        return (completion(inv, &t, false), !breaks_session(&t));
    }
    let (done, trouble) = match perform(c, options, inv).await {
        Ok(v) => match c.query_drop("COMMIT").await {
            Ok(()) => return (Completion::ok(v), true),
            Err(e) => {
                let t = Trouble::Sql(e);
                (completion(inv, &t, true), t)
            }
        },
        Err(t) => (completion(inv, &t, false), t),
    };
    if breaks_session(&trouble) {
        return (done, false);
    }
    // The transaction is rolled back: an error answer leaves it open in
    // MariaDB (a certification failure already rolled it back, and a
    // second ROLLBACK is harmless).
    let usable = c.query_drop("ROLLBACK").await.is_ok();
    (done, usable)
}

#[async_trait]
impl Client for GaleraClient {
    async fn open(&mut self, node: &str) -> Result<()> {
        // The session opens at the first operation, so a node that is down
        // now only fails operations, not the client.
        node.clone_into(&mut self.node);
        self.session = None;
        Ok(())
    }

    async fn invoke(&mut self, inv: &Invocation) -> Completion {
        let options = self.options;
        if let Err(why) = self.session().await {
            return Completion::fail(inv.value.clone(), Value::str(why));
        }
        let Some(c) = self.session.as_mut() else {
            return Completion::fail(inv.value.clone(), Value::str("no session"));
        };
        self.busy = true;
        let (done, usable) = transaction(c, options, inv).await;
        if !usable {
            self.session = None;
        }
        self.busy = false;
        done
    }

    async fn close(&mut self) {
        if let Some(c) = self.session.take() {
            let _ = tokio::time::timeout(Duration::from_millis(500), c.disconnect()).await;
        }
    }
}
