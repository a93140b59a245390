//! The Redis client: faultline's operations (docs/workloads.md) on the
//! primary that Sentinel names (`wire.rs` has the commands and replies).
//!
//! Connecting follows Redis's guidelines for Sentinel clients: ask the
//! Sentinels in order (the client's own node's first, as a client running
//! on that node would) for `SENTINEL get-master-addr-by-name`, connect to
//! the address the first one names, and check with `ROLE` that it is a
//! primary. The connection is kept while nothing goes wrong on it (an
//! error reply, a refusal, a broken connection end it) and the Sentinels
//! keep naming its server: they are asked again once a second, about as
//! soon as a client subscribed to `+switch-master` would hear of a
//! failover. A failover also disconnects the clients of a primary that
//! Sentinel demotes (its reconfiguration sends `CLIENT KILL`); a primary
//! cut off from the Sentinels keeps the clients whose own Sentinel, cut
//! off with it, still names it.
//!
//! - `read`/`final-read` of a key is `GET`; `write` is `SET`; `cas` runs a
//!   Lua script (atomic) that sets only over the expected value, so its
//!   0 proves nothing happened (`fail`).
//! - `add` (set) is `SADD` on one key; `read` without a key is `SMEMBERS`.
//! - `txn` (list-append) is `MULTI`, an `RPUSH` per append and an `LRANGE`
//!   per read in order, `EXEC`.
//!
//! With `--opt redis_wait=N` every write is followed, on the same
//! connection and in the same pipeline, by `WAIT N timeout`. A write whose
//! `WAIT` saw N replicas acknowledge it is `ok`; one whose `WAIT` saw fewer
//! (or failed) is `info`: it happened on the primary, and may be read and
//! may survive, but the rule the application set for an acknowledged
//! write was not met, and Redis does not roll it back. So a lost write
//! that was `ok` is one that WAIT had confirmed.
//!
//! Outcomes never claim more than is known: a request never sent (no
//! primary named, no connection, `ROLE` not a primary) is `fail`; a
//! timeout or a connection lost after sending is `info`; of Redis's error
//! replies only those given before a command executes (`READONLY` from a
//! demoted primary above all, `EXECABORT`, a transaction aborted) make a
//! write `fail` ([`Trouble::proves_nothing_written`]); an error reply to a
//! read is `fail`, since a read changes nothing.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use checkers::Value;
use harness::{Client, Completion, Invocation, Result, TestEnv};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, Pipeline, Value as Resp};

use crate::wire::{self, Trouble, Txn, Waited};

/// How long connecting to a server or a Sentinel may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a Sentinel may take to name the primary before the next one
/// is asked (a paused Sentinel accepts connections and never answers).
const SENTINEL_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a connection serves before the Sentinels are asked again
/// whether its server is still the primary: a client subscribed to
/// Sentinel's `+switch-master` learns of a failover about as soon.
const RECHECK: Duration = Duration::from_secs(1);

/// What every client of a test shares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `WAIT` after every write for this many replicas, with this timeout
    /// in milliseconds (`None`: no `WAIT`).
    pub wait: Option<(u32, u64)>,
    /// How long a reply may take (the operation timeout).
    pub response_timeout: Duration,
}

/// A client of the primary, found through the Sentinels.
pub struct RedisClient {
    /// The test's nodes and addresses (`None` for a client made for given
    /// Sentinels).
    env: Option<TestEnv>,
    /// The Sentinels to ask, in order.
    sentinels: Vec<SocketAddr>,
    settings: Settings,
    /// The connection to the primary while nothing has gone wrong on it:
    /// the primary's address and when a Sentinel last named it.
    conn: Option<(MultiplexedConnection, (String, u16), Instant)>,
}

/// The replies to a write's commands, and to the `WAIT` after them.
struct Written {
    replies: Vec<Resp>,
    wait: Option<Resp>,
}

/// An operation's result, or the completion to record instead.
type Outcome = std::result::Result<Value, Completion>;

impl RedisClient {
    /// A client of the test's cluster.
    pub fn new(env: TestEnv, settings: Settings) -> RedisClient {
        RedisClient { env: Some(env), sentinels: Vec::new(), settings, conn: None }
    }

    /// A client that asks these Sentinels, in order.
    pub fn with_sentinels(sentinels: Vec<SocketAddr>, settings: Settings) -> RedisClient {
        RedisClient { env: None, sentinels, settings, conn: None }
    }

    /// The connection to the primary. The one kept serves for
    /// [`RECHECK`]; then the Sentinels are asked again, and a primary they
    /// name elsewhere gets a new connection, checked with `ROLE`. When no
    /// Sentinel answers, the connection kept stays in use, as a client
    /// whose Sentinels are down keeps its primary.
    async fn connection(&mut self) -> std::result::Result<MultiplexedConnection, Trouble> {
        if let Some((conn, _, checked)) = &self.conn
            && checked.elapsed() < RECHECK
        {
            return Ok(conn.clone());
        }
        let named = self.ask_sentinels().await;
        if let Some((conn, at, checked)) = &mut self.conn {
            // Named again, or nobody answered: keep it until the next check.
            if named.as_ref().is_ok_and(|addr| addr == at) || named.is_err() {
                *checked = Instant::now();
                return Ok(conn.clone());
            }
        }
        self.conn = None;
        let (host, port) = named?;
        let mut conn = connect(&host, port, self.settings.response_timeout).await?;
        let reply = conn
            .req_packed_command(&redis::cmd("ROLE"))
            .await
            .map_err(|e| Trouble::NotSent(format!("ROLE on {host}:{port}: {e}")))?;
        match wire::role(&reply).as_deref() {
            Some("master") => {}
            other => return Err(Trouble::NotPrimary(format!("{host}:{port} is {other:?}"))),
        }
        self.conn = Some((conn.clone(), (host, port), Instant::now()));
        Ok(conn)
    }

    /// The primary's address, from the first Sentinel that names one.
    async fn ask_sentinels(&self) -> std::result::Result<(String, u16), Trouble> {
        let mut why = Vec::new();
        let mut ask = redis::cmd("SENTINEL");
        ask.arg("get-master-addr-by-name").arg(wire::MASTER_NAME);
        for s in &self.sentinels {
            let answer = async {
                let mut c = connect(&s.ip().to_string(), s.port(), SENTINEL_TIMEOUT).await?;
                c.req_packed_command(&ask).await.map_err(|e| Trouble::from_error(&e, true))
            };
            match answer.await {
                Ok(reply) => match wire::master_addr(&reply) {
                    Some(addr) => return Ok(addr),
                    None => why.push(format!("{s}: {reply:?}")),
                },
                Err(t) => why.push(format!("{s}: {t}")),
            }
        }
        Err(Trouble::NotSent(format!("no sentinel named a primary ({})", why.join("; "))))
    }

    /// Sends `commands` as one pipeline and returns every reply in order,
    /// error replies among them.
    async fn send(
        conn: &mut MultiplexedConnection,
        commands: &Pipeline,
    ) -> std::result::Result<Vec<Resp>, Trouble> {
        let replies = conn
            .req_packed_commands(commands, 0, commands.len())
            .await
            .map_err(|e| Trouble::from_error(&e, true))?;
        if replies.len() == commands.len() {
            Ok(replies)
        } else {
            Err(Trouble::Unexpected(format!("{} replies to {}", replies.len(), commands.len())))
        }
    }

    /// A read: its reply, or the completion its trouble makes.
    async fn read(&mut self, cmd: Cmd, inv: &Invocation) -> std::result::Result<Resp, Completion> {
        let mut conn = self.connection().await.map_err(|t| self.failed(&t, inv))?;
        let mut p = redis::pipe();
        p.add_command(cmd);
        let reply = Self::send(&mut conn, &p).await.and_then(|mut r| {
            let reply = r.pop().unwrap_or(Resp::Nil);
            Trouble::from_reply(&reply).map_or(Ok(reply), Err)
        });
        reply.map_err(|t| {
            self.conn = None;
            let err = Value::str(t.describe());
            if t.read_is_definite() {
                Completion::fail(inv.value.clone(), err)
            } else {
                Completion::info(inv.value.clone(), err)
            }
        })
    }

    /// A write: `commands`, then `WAIT` when asked, in one pipeline. This
    /// judges the transport and a single command's refusal; the caller
    /// judges what the replies say, then the `WAIT` ([`Self::acknowledged`]).
    async fn write(
        &mut self,
        commands: Pipeline,
        inv: &Invocation,
    ) -> std::result::Result<Written, Completion> {
        let mut conn = self.connection().await.map_err(|t| self.failed(&t, inv))?;
        let mut p = commands.clone();
        if let Some((replicas, timeout_ms)) = self.settings.wait {
            p.add_command(wire::wait_cmd(replicas, timeout_ms));
        }
        let mut replies = Self::send(&mut conn, &p).await.map_err(|t| self.trouble(&t, inv))?;
        let wait = if self.settings.wait.is_some() { replies.pop() } else { None };
        // A transaction's refusals are in its replies, the caller's to read.
        if commands.len() == 1
            && let Some(t) = replies.first().and_then(Trouble::from_reply)
        {
            return Err(self.trouble(&t, inv));
        }
        Ok(Written { replies, wait })
    }

    /// A write that happened: `ok` when no `WAIT` was asked for or it saw
    /// enough replicas, `info` otherwise (see the module's documentation).
    fn acknowledged(&self, w: &Written, inv: &Invocation) -> std::result::Result<(), Completion> {
        let (Some(reply), Some((replicas, _))) = (&w.wait, self.settings.wait) else {
            return Ok(());
        };
        let why = match wire::waited(reply, replicas) {
            Waited::Reached(_) => return Ok(()),
            Waited::Short(n) => format!("wait: {n} of {replicas} replicas acknowledged"),
            Waited::Unknown(e) => format!("wait: {e}"),
        };
        Err(Completion::info(inv.value.clone(), Value::str(why)))
    }

    /// Nothing was sent: `fail`, and the next operation asks Sentinel again.
    fn failed(&mut self, t: &Trouble, inv: &Invocation) -> Completion {
        self.conn = None;
        Completion::fail(inv.value.clone(), Value::str(t.describe()))
    }

    /// A write's trouble as its completion: `fail` only when it proves
    /// nothing was written. The connection is dropped either way.
    fn trouble(&mut self, t: &Trouble, inv: &Invocation) -> Completion {
        self.conn = None;
        let err = Value::str(t.describe());
        if t.proves_nothing_written() {
            Completion::fail(inv.value.clone(), err)
        } else {
            Completion::info(inv.value.clone(), err)
        }
    }

    async fn get(&mut self, k: &Value, inv: &Invocation) -> Outcome {
        let mut cmd = redis::cmd("GET");
        cmd.arg(wire::key(k));
        let reply = self.read(cmd, inv).await?;
        wire::decode(&reply).ok_or_else(|| unreadable(inv, &reply))
    }

    async fn set(&mut self, k: &Value, inv: &Invocation) -> Outcome {
        let mut p = redis::pipe();
        p.cmd("SET").arg(wire::key(k)).arg(wire::encode(&inv.value));
        let w = self.write(p, inv).await?;
        self.acknowledged(&w, inv)?;
        Ok(inv.value.clone())
    }

    async fn cas(&mut self, k: &Value, inv: &Invocation) -> Outcome {
        let Some([from, to]) = inv.value.as_list().and_then(|l| <&[Value; 2]>::try_from(l).ok())
        else {
            return Err(Completion::fail(inv.value.clone(), Value::str("cas needs [from to]")));
        };
        let mut p = redis::pipe();
        p.cmd("EVAL").arg(wire::CAS_SCRIPT).arg(1).arg(wire::key(k));
        p.arg(wire::encode(from)).arg(wire::encode(to));
        let w = self.write(p, inv).await?;
        match w.replies.first() {
            Some(Resp::Int(1)) => {
                self.acknowledged(&w, inv)?;
                Ok(inv.value.clone())
            }
            // It set nothing, so its WAIT (sent with it) says nothing.
            Some(Resp::Int(0)) => {
                Err(Completion::fail(inv.value.clone(), Value::str("cas-mismatch")))
            }
            other => Err(unreadable(inv, other.unwrap_or(&Resp::Nil))),
        }
    }

    async fn add(&mut self, inv: &Invocation) -> Outcome {
        let mut p = redis::pipe();
        p.cmd("SADD").arg(wire::set_key()).arg(wire::encode(&inv.value));
        let w = self.write(p, inv).await?;
        self.acknowledged(&w, inv)?;
        Ok(inv.value.clone())
    }

    async fn read_set(&mut self, inv: &Invocation) -> Outcome {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(wire::set_key());
        let reply = self.read(cmd, inv).await?;
        wire::decode_all(&reply).map(Value::set).ok_or_else(|| unreadable(inv, &reply))
    }

    async fn txn(&mut self, inv: &Invocation) -> Outcome {
        let t = Txn::parse(&inv.value)
            .map_err(|why| Completion::fail(inv.value.clone(), Value::str(why)))?;
        if !t.writes() {
            return self.read_txn(&t, inv).await;
        }
        let w = self.write(t.pipeline(), inv).await?;
        let done = t.outcome(&w.replies).map_err(|trouble| self.trouble(&trouble, inv))?;
        self.acknowledged(&w, inv)?;
        Ok(done)
    }

    /// A transaction of reads only: no `WAIT`, and any refusal is `fail`.
    async fn read_txn(&mut self, t: &Txn, inv: &Invocation) -> Outcome {
        let mut conn = self.connection().await.map_err(|tr| self.failed(&tr, inv))?;
        let replies = Self::send(&mut conn, &t.pipeline()).await;
        match replies.and_then(|r| t.outcome(&r)) {
            Ok(v) => Ok(v),
            Err(tr) if tr.read_is_definite() => Err(self.failed(&tr, inv)),
            Err(tr) => {
                self.conn = None;
                Err(Completion::info(inv.value.clone(), Value::str(tr.describe())))
            }
        }
    }
}

/// Connects to a server or Sentinel; every failure means nothing was sent.
pub(crate) async fn connect(
    host: &str,
    port: u16,
    response_timeout: Duration,
) -> std::result::Result<MultiplexedConnection, Trouble> {
    use redis::IntoConnectionInfo as _;
    let info = redis::ConnectionAddr::Tcp(host.to_owned(), port)
        .into_connection_info()
        .map_err(|e| Trouble::NotSent(e.to_string()))?;
    // Redis 7.0 has no `CLIENT SETINFO`; asking would only add an error
    // reply to every connection's start.
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    let info = info.set_redis_settings(settings);
    let client = redis::Client::open(info).map_err(|e| Trouble::NotSent(e.to_string()))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(response_timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| Trouble::NotSent(format!("{host}:{port}: {e}")))
}

/// A reply that is not what the command gives: nobody can tell what
/// happened.
fn unreadable(inv: &Invocation, reply: &Resp) -> Completion {
    let mut text = format!("{reply:?}");
    text.truncate(200);
    Completion::info(inv.value.clone(), Value::str(format!("unexpected reply: {text}")))
}

#[async_trait]
impl Client for RedisClient {
    async fn open(&mut self, node: &str) -> Result<()> {
        if let Some(env) = &self.env {
            // The node's own Sentinel first, then the others in order.
            let mut order = vec![env.addrs(node)?.peer_listen];
            for other in env.nodes().iter().filter(|n| *n != node) {
                order.push(env.addrs(other)?.peer_listen);
            }
            self.sentinels = order;
        }
        self.conn = None;
        Ok(())
    }

    async fn invoke(&mut self, inv: &Invocation) -> Completion {
        let result = match (inv.f.as_str(), &inv.key) {
            ("read" | "final-read", None) if inv.value.is_nil() => self.read_set(inv).await,
            ("read" | "final-read", Some(k)) => self.get(k, inv).await,
            ("write", Some(k)) => self.set(k, inv).await,
            ("cas", Some(k)) => self.cas(k, inv).await,
            ("add", None) => self.add(inv).await,
            ("txn", None) => self.txn(inv).await,
            (f, _) => Err(Completion::fail(
                inv.value.clone(),
                Value::str(format!("the redis client cannot {f} with this key and value")),
            )),
        };
        match result {
            Ok(v) => Completion::ok(v),
            Err(c) => c,
        }
    }

    async fn close(&mut self) {
        self.conn = None;
    }
}

#[cfg(test)]
mod tests {
    //! The client against a fake server on loopback that plays Sentinel and
    //! primary at once: what each kind of reply, and each way of not
    //! replying, is recorded as.

    use std::sync::Arc;

    use checkers::OpType;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// What the fake answers a command with: RESP bytes, or `None` to
    /// close the connection without answering.
    type Handler = Arc<dyn Fn(&[String]) -> Option<String> + Send + Sync>;

    /// One whole command (an array of bulk strings) off the front of
    /// `buf`, if it holds one.
    fn take_command(buf: &mut Vec<u8>) -> Option<Vec<String>> {
        let text = String::from_utf8_lossy(buf).into_owned();
        let mut lines = text.split("\r\n");
        let n: usize = lines.next()?.strip_prefix('*')?.parse().ok()?;
        let mut args = Vec::with_capacity(n);
        let mut used = format!("*{n}\r\n").len();
        for _ in 0..n {
            let len_line = lines.next()?;
            let arg = lines.next()?;
            let len: usize = len_line.strip_prefix('$')?.parse().ok()?;
            if arg.len() < len || used + len_line.len() + len + 4 > buf.len() {
                return None;
            }
            used += len_line.len() + len + 4;
            args.push(arg[..len].to_owned());
        }
        buf.drain(..used);
        Some(args)
    }

    /// A fake on 127.0.0.1 whose Sentinel names itself as the primary,
    /// whose `ROLE` is `role`, and which answers everything else with
    /// `handler`.
    async fn fake(role: &'static str, handler: Handler) -> SocketAddr {
        fake_naming(role, Arc::default(), handler).await
    }

    /// The same, its Sentinel naming the address in `named` when it holds one.
    async fn fake_naming(
        role: &'static str,
        named: Arc<std::sync::Mutex<Option<SocketAddr>>>,
        handler: Handler,
    ) -> SocketAddr {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let me = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let handler = handler.clone();
                let named = named.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = s.read(&mut chunk).await {
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(cmd) = take_command(&mut buf) {
                            let addr = named.lock().ok().and_then(|n| *n).unwrap_or(me);
                            let reply = match cmd[0].to_uppercase().as_str() {
                                "SENTINEL" => Some(format!(
                                    "*2\r\n$9\r\n127.0.0.1\r\n${}\r\n{}\r\n",
                                    addr.port().to_string().len(),
                                    addr.port()
                                )),
                                "ROLE" => Some(format!("*1\r\n${}\r\n{role}\r\n", role.len())),
                                _ => handler(&cmd),
                            };
                            let Some(reply) = reply else { return };
                            if s.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        me
    }

    fn settings(wait: Option<(u32, u64)>) -> Settings {
        Settings { wait, response_timeout: Duration::from_millis(300) }
    }

    fn inv(f: &str, key: Option<i64>, value: Value) -> Invocation {
        let mut i = Invocation::new(f, value);
        i.key = key.map(Value::Int);
        i
    }

    fn bulk(s: &str) -> String {
        format!("${}\r\n{s}\r\n", s.len())
    }

    #[tokio::test]
    async fn reads_writes_and_a_matching_cas_are_ok_and_a_cas_that_set_nothing_fails() {
        let h: Handler = Arc::new(|cmd: &[String]| match cmd[0].as_str() {
            "GET" if cmd[1] == "fl/1" => Some(bulk("3")),
            "GET" => Some("$-1\r\n".into()),
            "SET" => Some("+OK\r\n".into()),
            "EVAL" if cmd[4] == "1" => Some(":1\r\n".into()),
            "EVAL" => Some(":0\r\n".into()),
            _ => Some("-ERR unexpected\r\n".into()),
        });
        let mut c = RedisClient::with_sentinels(vec![fake("master", h).await], settings(None));
        assert_eq!(c.invoke(&inv("read", Some(1), Value::Nil)).await, Completion::ok(3));
        assert_eq!(c.invoke(&inv("read", Some(2), Value::Nil)).await, Completion::ok(Value::Nil));
        assert_eq!(c.invoke(&inv("write", Some(1), 4.into())).await, Completion::ok(4));
        let cas = |from: i64| inv("cas", Some(1), Value::list([from.into(), 5.into()]));
        assert_eq!(c.invoke(&cas(1)).await.kind, OpType::Ok);
        let miss = c.invoke(&cas(2)).await;
        assert_eq!((miss.kind, miss.error), (OpType::Fail, Some(Value::str("cas-mismatch"))));
    }

    #[tokio::test]
    async fn a_write_refused_as_readonly_fails_and_a_plain_error_is_info() {
        let h: Handler = Arc::new(|cmd: &[String]| match cmd[0].as_str() {
            "SADD" => Some("-READONLY You can't write against a read only replica.\r\n".into()),
            _ => Some("-ERR something inside went wrong\r\n".into()),
        });
        let mut c = RedisClient::with_sentinels(vec![fake("master", h).await], settings(None));
        let add = c.invoke(&inv("add", None, 1.into())).await;
        assert_eq!(add.kind, OpType::Fail, "{add:?}");
        let write = c.invoke(&inv("write", Some(1), 2.into())).await;
        assert_eq!(write.kind, OpType::Info, "{write:?}");
        // A read changes nothing: any refusal is a certain fail.
        let read = c.invoke(&inv("read", Some(1), Value::Nil)).await;
        assert_eq!(read.kind, OpType::Fail, "{read:?}");
    }

    #[tokio::test]
    async fn a_write_whose_connection_drops_after_sending_or_times_out_is_info() {
        let drop_it: Handler = Arc::new(|_: &[String]| None);
        let mut c =
            RedisClient::with_sentinels(vec![fake("master", drop_it).await], settings(None));
        assert_eq!(c.invoke(&inv("add", None, 1.into())).await.kind, OpType::Info);
        // Never answers: the response timeout fires.
        let silent: Handler = Arc::new(|_: &[String]| Some(String::new()));
        let mut c = RedisClient::with_sentinels(vec![fake("master", silent).await], settings(None));
        let w = c.invoke(&inv("write", Some(1), 2.into())).await;
        assert_eq!(w.kind, OpType::Info, "{w:?}");
    }

    #[tokio::test]
    async fn nothing_is_sent_to_a_closed_port_or_to_an_address_that_is_not_a_primary() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let closed = l.local_addr().expect("addr");
        drop(l);
        let mut c = RedisClient::with_sentinels(vec![closed], settings(None));
        let w = c.invoke(&inv("add", None, 1.into())).await;
        assert_eq!(w.kind, OpType::Fail, "{w:?}");
        let sadd: Handler = Arc::new(|_: &[String]| panic!("a replica was sent the write"));
        let mut c =
            RedisClient::with_sentinels(vec![closed, fake("slave", sadd).await], settings(None));
        let w = c.invoke(&inv("add", None, 1.into())).await;
        assert_eq!(w.kind, OpType::Fail, "{w:?}");
        assert!(format!("{:?}", w.error).contains("not-primary"), "{w:?}");
    }

    #[tokio::test]
    async fn a_write_is_ok_only_when_its_wait_on_the_same_connection_reached_enough_replicas() {
        let h: Handler = Arc::new(|cmd: &[String]| match cmd[0].as_str() {
            "SADD" => Some(":1\r\n".into()),
            // One replica acknowledges, whatever was asked for.
            "WAIT" => Some(":1\r\n".into()),
            "EVAL" => Some(":0\r\n".into()),
            _ => Some("-ERR unexpected\r\n".into()),
        });
        let addr = fake("master", h).await;
        let mut one = RedisClient::with_sentinels(vec![addr], settings(Some((1, 100))));
        assert_eq!(one.invoke(&inv("add", None, 1.into())).await, Completion::ok(1));
        let mut two = RedisClient::with_sentinels(vec![addr], settings(Some((2, 100))));
        let short = two.invoke(&inv("add", None, 2.into())).await;
        assert_eq!(short.kind, OpType::Info, "{short:?}");
        assert_eq!(short.error, Some(Value::str("wait: 1 of 2 replicas acknowledged")));
        // A cas that set nothing fails whatever its WAIT said.
        let cas = two.invoke(&inv("cas", Some(1), Value::list([1.into(), 2.into()]))).await;
        assert_eq!(cas.kind, OpType::Fail, "{cas:?}");
    }

    #[tokio::test]
    async fn a_set_read_and_a_list_append_txn_read_back_what_redis_holds() {
        let h: Handler = Arc::new(|cmd: &[String]| match cmd[0].as_str() {
            "SMEMBERS" => Some(format!("*2\r\n{}{}", bulk("1"), bulk("2"))),
            "MULTI" => Some("+OK\r\n".into()),
            "RPUSH" | "LRANGE" => Some("+QUEUED\r\n".into()),
            "EXEC" => Some(format!("*2\r\n:2\r\n*2\r\n{}{}", bulk("5"), bulk("6"))),
            _ => Some("-ERR unexpected\r\n".into()),
        });
        let mut c = RedisClient::with_sentinels(vec![fake("master", h).await], settings(None));
        let set = c.invoke(&inv("read", None, Value::Nil)).await;
        assert_eq!(set, Completion::ok(Value::set(vec![1.into(), 2.into()])));
        let mop = |f: &str, v: Value| Value::list([Value::str(f), Value::Int(1), v]);
        let t = Value::list([mop("append", 6.into()), mop("r", Value::Nil)]);
        let done = c.invoke(&inv("txn", None, t)).await;
        let want =
            Value::list([mop("append", 6.into()), mop("r", Value::list([5.into(), 6.into()]))]);
        assert_eq!(done, Completion::ok(want));
    }

    #[tokio::test]
    async fn a_kept_connection_moves_to_the_primary_sentinel_names_after_a_failover() {
        let adds = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let recorder = |name: &'static str| -> Handler {
            let adds = adds.clone();
            Arc::new(move |cmd: &[String]| {
                adds.lock().expect("adds").push(format!("{name} {}", cmd[0]));
                Some(":1\r\n".into())
            })
        };
        let old = fake("master", recorder("old")).await;
        let new = fake("master", recorder("new")).await;
        let named = Arc::new(std::sync::Mutex::new(Some(old)));
        let none: Handler = Arc::new(|_: &[String]| Some("-ERR not a server\r\n".into()));
        let sentinel = fake_naming("sentinel", named.clone(), none).await;
        let mut c = RedisClient::with_sentinels(vec![sentinel], settings(None));
        assert_eq!(c.invoke(&inv("add", None, 1.into())).await.kind, OpType::Ok);
        *named.lock().expect("named") = Some(new);
        // Within RECHECK the kept connection still serves.
        assert_eq!(c.invoke(&inv("add", None, 2.into())).await.kind, OpType::Ok);
        tokio::time::sleep(RECHECK + Duration::from_millis(50)).await;
        assert_eq!(c.invoke(&inv("add", None, 3.into())).await.kind, OpType::Ok);
        let adds = adds.lock().expect("adds").clone();
        assert_eq!(adds, ["old SADD", "old SADD", "new SADD"]);
    }
}
