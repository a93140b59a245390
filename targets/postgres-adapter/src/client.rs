//! The PostgreSQL client: one session with the current primary, every
//! operation one transaction at the test's isolation level (`ops.rs` has
//! the SQL, `outcome.rs` what each error proves).
//!
//! The client ignores the node the harness opens it on and talks to the
//! primary the adapter knows (writes can go nowhere else); when failover
//! names another primary, its next operation connects there. A session
//! that cannot be opened makes the operation `fail`: nothing was sent.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use checkers::{OpType, Value};
use harness::{Client, Completion, Invocation, Result, TestEnv};

use crate::cluster::{Options, Primary};
use crate::ops::{self, Step, Trouble};
use crate::outcome::{self, Answer};
use crate::server;

/// How long opening a session may take.
const CONNECT: Duration = Duration::from_secs(2);

/// A client of the cluster's primary.
pub struct PgClient {
    env: TestEnv,
    primary: Arc<Primary>,
    options: Options,
    /// The open session and the primary epoch it was opened in.
    session: Option<(tokio_postgres::Client, u64)>,
}

impl PgClient {
    /// A client that follows `primary`.
    pub fn new(env: TestEnv, primary: Arc<Primary>, options: Options) -> PgClient {
        PgClient { env, primary, options, session: None }
    }

    /// The session with the current primary, opened when there is none,
    /// when it broke, or when another node became primary.
    async fn session(&mut self) -> std::result::Result<&tokio_postgres::Client, String> {
        let (node, epoch) = self.primary.get();
        let stale = match &self.session {
            Some((c, e)) => c.is_closed() || *e != epoch,
            None => true,
        };
        if stale {
            self.session = None;
            let addr = self.env.addrs(&node).map_err(|e| e.to_string())?.client;
            let client = server::connect(addr, CONNECT)
                .await
                .ok_or_else(|| format!("no session with primary {node}"))?;
            self.session = Some((client, epoch));
        }
        self.session.as_ref().map(|(c, _)| c).ok_or_else(|| "no session".to_owned())
    }
}

/// The transaction's trouble as the completion to record.
fn completion(inv: &Invocation, trouble: &Trouble, at_commit: bool) -> Completion {
    let (kind, why) = match trouble {
        Trouble::Invalid(why) => (OpType::Fail, why.clone()),
        Trouble::Rollback(why) => (OpType::Fail, (*why).to_owned()),
        Trouble::Pg(e) => {
            let db = e.as_db_error();
            let answer = db.map(|d| Answer { code: d.code().code(), severity: d.severity() });
            let (kind, tag) = outcome::outcome(answer, at_commit);
            let detail = db.map_or_else(|| e.to_string(), |d| d.message().to_owned());
            (kind, format!("{tag}: {detail}"))
        }
    };
    Completion { kind, value: inv.value.clone(), error: Some(Value::str(why)) }
}

/// The operation's statements (inside the transaction). A write
/// completes with its argument, a read with what it read.
async fn perform(c: &tokio_postgres::Client, options: Options, inv: &Invocation) -> Step<Value> {
    let key = inv.key.as_ref().map(|k| ops::int(k, "key")).transpose()?;
    let written = inv.value.clone();
    match (inv.f.as_str(), key) {
        ("read" | "final-read", Some(k)) => ops::read(c, options.tables, k).await,
        ("read" | "final-read", None) => match inv.value.as_list() {
            Some(accounts) => ops::read_many(c, accounts).await,
            None => ops::read_set(c).await,
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
        ("add", None) => ops::add(c, ops::int(&inv.value, "element")?).await.map(|()| written),
        (f, _) => Err(Trouble::Invalid(format!("the postgres client cannot {f} (with that key?)"))),
    }
}

#[async_trait]
impl Client for PgClient {
    async fn open(&mut self, _node: &str) -> Result<()> {
        // The session opens at the first operation, with whichever node is
        // the primary then.
        Ok(())
    }

    async fn invoke(&mut self, inv: &Invocation) -> Completion {
        let options = self.options;
        let c = match self.session().await {
            Ok(c) => c,
            Err(why) => return Completion::fail(inv.value.clone(), Value::str(why)),
        };
        if let Err(e) = c.batch_execute(options.isolation.begin()).await {
            return completion(inv, &Trouble::Pg(e), false);
        }
        let done = match perform(c, options, inv).await {
            Ok(v) => match c.batch_execute("COMMIT").await {
                Ok(()) => return Completion::ok(v),
                Err(e) => completion(inv, &Trouble::Pg(e), true),
            },
            Err(t) => completion(inv, &t, false),
        };
        // The session is reusable once the failed transaction is rolled
        // back; if that fails too, it is opened afresh next time.
        if c.is_closed() || c.batch_execute("ROLLBACK").await.is_err() {
            self.session = None;
        }
        done
    }

    async fn close(&mut self) {
        self.session = None;
    }
}
