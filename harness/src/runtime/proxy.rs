//! TCP proxies, one per directed link, so the `local` runtime can cut and
//! (later) shape node-to-node traffic without privileges.
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

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{HarnessError, Result};

/// What a link does with traffic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkPolicy {
    /// Drop everything.
    pub cut: bool,
    /// Bumped on every change, so connections opened under an older policy
    /// close.
    pub generation: u64,
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
                    _ = rx.changed() => {}
                }
                return;
            }
            let Ok(mut upstream) = TcpStream::connect(target).await else { return };
            let _ = upstream.set_nodelay(true);
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream) => {}
                _ = rx.changed() => {}
            }
        });
    }
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
}
