//! TCP proxies, one per directed link, so the `local` runtime can cut and
//! shape node-to-node traffic without privileges.
//!
//! Node `a` dials node `b` through the proxy for link `a → b`. Peer
//! transports that send each message on the sender's own connection (as
//! refstore's does) make cutting one proxy a clean one-way partition.
//!
//! When a link is cut, its open connections are closed and new connections
//! are accepted but their bytes discarded, as a network that drops packets
//! would; when it is restored, the black-holed connections are closed too,
//! so senders reconnect and no connection carries a stream with a hole in
//! it.
//!
//! A shaped link delays what the sender writes chunk by chunk, as
//! `shape::Shaper` decides in stream mode (delay, jitter and rate in order;
//! a loss costs a retransmission timeout). Changing the shape does not
//! close connections: the next chunk follows the new shape.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{HarnessError, Result};
use crate::node::LinkShape;
use crate::runtime::shape::{Fate, Mode, Shaper};

/// What a link does with traffic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkPolicy {
    /// Drop everything.
    pub cut: bool,
    /// Bumped when the link is cut, restored or stopped, so connections
    /// opened under an older policy close.
    pub generation: u64,
    /// How the sender's bytes are delayed, if at all.
    pub shape: Option<LinkShape>,
}

/// A running proxy for one directed link.
pub struct Proxy {
    /// The address the sending node dials.
    pub listen: SocketAddr,
    /// The receiving node's real peer address.
    pub target: SocketAddr,
    policy: watch::Sender<LinkPolicy>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// Binds a proxy on `127.0.0.1` (any free port) forwarding to `target`.
    pub async fn start(target: SocketAddr) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| HarnessError::Net(format!("cannot bind a proxy: {e}")))?;
        let listen =
            listener.local_addr().map_err(|e| HarnessError::Net(format!("proxy address: {e}")))?;
        let (policy, rx) = watch::channel(LinkPolicy::default());
        let task = tokio::spawn(accept_loop(listener, target, rx));
        Ok(Proxy { listen, target, policy, task })
    }

    /// Cuts or restores the link. Connections opened before the change close.
    pub fn set_cut(&self, cut: bool) {
        self.policy.send_if_modified(|p| {
            if p.cut == cut {
                return false;
            }
            p.cut = cut;
            p.generation += 1;
            true
        });
    }

    /// Whether the link is cut.
    pub fn is_cut(&self) -> bool {
        self.policy.borrow().cut
    }

    /// Shapes the link (`None` restores it). Open connections stay open
    /// and follow the new shape from their next chunk on.
    pub fn set_shape(&self, shape: Option<LinkShape>) {
        let shape = shape.filter(|s| !s.is_identity());
        self.policy.send_if_modified(|p| {
            if p.shape == shape {
                return false;
            }
            p.shape = shape;
            true
        });
    }

    /// The link's current shape.
    pub fn shape(&self) -> Option<LinkShape> {
        self.policy.borrow().shape.clone()
    }

    /// Stops accepting and closes every connection.
    pub fn stop(&self) {
        self.task.abort();
        // Dropping the sender side is not possible through `&self`; bumping
        // the generation closes the connections that are still open.
        self.policy.send_modify(|p| p.generation += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    policy: watch::Receiver<LinkPolicy>,
) {
    let policy = Arc::new(policy);
    loop {
        let Ok((conn, _)) = listener.accept().await else { continue };
        let _ = conn.set_nodelay(true);
        let mut rx = (*policy).clone();
        let started = rx.borrow_and_update().clone();
        tokio::spawn(async move {
            let mut conn = conn;
            if started.cut {
                let mut sink = tokio::io::sink();
                tokio::select! {
                    _ = tokio::io::copy(&mut conn, &mut sink) => {}
                    _ = generation_changed(&mut rx, started.generation) => {}
                }
                return;
            }
            let Ok(upstream) = TcpStream::connect(target).await else { return };
            let _ = upstream.set_nodelay(true);
            let (conn_r, mut conn_w) = conn.into_split();
            let (mut up_r, up_w) = upstream.into_split();
            let forward = forward_shaped(conn_r, up_w, rx.clone());
            let backward = tokio::io::copy(&mut up_r, &mut conn_w);
            tokio::select! {
                _ = async { tokio::join!(forward, backward) } => {}
                _ = generation_changed(&mut rx, started.generation) => {}
            }
        });
    }
}

/// Resolves when the link was cut, restored or stopped since `generation`
/// (or the proxy is gone); shape changes do not count.
async fn generation_changed(rx: &mut watch::Receiver<LinkPolicy>, generation: u64) {
    loop {
        if rx.changed().await.is_err() || rx.borrow().generation != generation {
            return;
        }
    }
}

/// Copies the sender's bytes to the receiver, each chunk released when the
/// link's current shape says (at once when unshaped).
async fn forward_shaped(
    mut from: tokio::net::tcp::OwnedReadHalf,
    to: tokio::net::tcp::OwnedWriteHalf,
    policy: watch::Receiver<LinkPolicy>,
) {
    let epoch = Instant::now();
    // Chunks in flight with their release times; the writer sleeps until
    // each is due, in order (stream mode never reorders).
    let (tx, mut queue) = tokio::sync::mpsc::unbounded_channel::<(std::time::Duration, Vec<u8>)>();
    let writer = async move {
        let mut to = to;
        while let Some((at, bytes)) = queue.recv().await {
            tokio::time::sleep_until((epoch + at).into()).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut shaper: Option<Shaper> = None;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let current = policy.borrow().shape.clone();
            if shaper.as_ref().map(Shaper::shape) != current.as_ref() {
                shaper = current.map(|s| Shaper::new(s, Mode::Stream));
            }
            let at = match shaper.as_mut().map(|s| s.admit(epoch.elapsed(), n)) {
                Some(Fate::Send { at, .. }) => at,
                // Stream mode never loses a chunk; unshaped means now.
                Some(Fate::Lost) | None => epoch.elapsed(),
            };
            if tx.send((at, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn forwards_then_cuts_then_restores() {
        let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let target = server.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut c, _)) = server.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = c.read(&mut buf).await {
                        if n == 0 || c.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = Proxy::start(target).await.expect("proxy");
        let mut c = TcpStream::connect(proxy.listen).await.expect("connect");
        c.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"ping");

        proxy.set_cut(true);
        // The open connection is closed by the cut.
        let n = tokio::time::timeout(std::time::Duration::from_secs(2), c.read(&mut buf))
            .await
            .expect("closed in time")
            .unwrap_or(0);
        assert_eq!(n, 0);
        // A new connection is accepted but nothing comes back.
        let mut c = TcpStream::connect(proxy.listen).await.expect("connect");
        c.write_all(b"lost").await.expect("write");
        let r = tokio::time::timeout(std::time::Duration::from_millis(200), c.read(&mut buf)).await;
        assert!(r.is_err(), "a cut link must not answer");

        proxy.set_cut(false);
        let mut c = TcpStream::connect(proxy.listen).await.expect("connect");
        c.write_all(b"back").await.expect("write");
        c.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"back");
    }

    async fn round_trip(c: &mut TcpStream) -> std::time::Duration {
        let started = Instant::now();
        c.write_all(b"ping").await.expect("write");
        let mut buf = [0u8; 4];
        c.read_exact(&mut buf).await.expect("read");
        started.elapsed()
    }

    #[tokio::test]
    async fn shaped_link_delays_each_chunk_and_keeps_connections_open() {
        let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let target = server.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut c, _)) = server.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = c.read(&mut buf).await {
                        if n == 0 || c.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let proxy = Proxy::start(target).await.expect("proxy");
        let mut c = TcpStream::connect(proxy.listen).await.expect("connect");
        assert!(round_trip(&mut c).await < std::time::Duration::from_millis(50));
        let shape =
            LinkShape { delay: std::time::Duration::from_millis(120), ..LinkShape::default() };
        proxy.set_shape(Some(shape));
        // The same connection now takes the delay (only the forward
        // direction is shaped: the reverse is its own link).
        let rtt = round_trip(&mut c).await;
        assert!(
            rtt >= std::time::Duration::from_millis(120)
                && rtt < std::time::Duration::from_millis(300),
            "{rtt:?}"
        );
        proxy.set_shape(None);
        assert!(round_trip(&mut c).await < std::time::Duration::from_millis(50));
    }
}
