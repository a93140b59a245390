//! Peer transport: one-way framed messages over TCP.
//!
//! A node sends to peer `j` only over a connection it opened itself to `j`'s `--peer`
//! address, and receives only on connections others opened to its `--peer-addr`. Replies
//! travel as separate messages on the replier's own outbound connection, never back on the
//! connection a request came in on. That makes a one-way partition of the link i→j exactly
//! what a proxy or firewall on that link does. Frames are a 4-byte big-endian length and a
//! JSON payload; the first frame on a connection is a [`Hello`].
//!
//! Outbound connections reconnect with exponential backoff, and messages queued while a link
//! is down are dropped: the protocols tolerate loss, and stale messages after a heal would
//! only add delay.

use crate::types::NodeId;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Largest frame accepted (a full anti-entropy answer stays far below this).
const MAX_FRAME: usize = 64 << 20;
/// Messages queued for one peer before new ones are dropped.
const QUEUE: usize = 8192;

/// The first frame on every connection: who is calling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's node id.
    pub id: NodeId,
    /// The sender's replication mode; a mismatch is refused.
    pub mode: String,
    /// The sender's client API address, so redirects can name it.
    pub client_addr: String,
}

/// Client API addresses learned from peers' hellos, by node id.
pub type Directory = Arc<RwLock<BTreeMap<NodeId, String>>>;

fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .length_field_length(4)
        .big_endian()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}

/// Handles to the outbound links, one queue per peer.
#[derive(Clone, Debug)]
pub struct Outbound {
    links: BTreeMap<NodeId, mpsc::Sender<Bytes>>,
}

impl Outbound {
    /// Starts one sender task per peer. Each dials `addr`, says hello and forwards its
    /// queue until `stop` is cancelled.
    pub fn start(
        hello: Hello,
        peers: &BTreeMap<NodeId, String>,
        stop: CancellationToken,
    ) -> Outbound {
        let mut links = BTreeMap::new();
        for (&id, addr) in peers {
            let (tx, rx) = mpsc::channel(QUEUE);
            links.insert(id, tx);
            tokio::spawn(
                sender(hello.clone(), id, addr.clone(), rx, stop.clone()).in_current_span(),
            );
        }
        Outbound { links }
    }

    /// Queues one message for `to`; dropped if the link's queue is full or `to` is unknown.
    pub fn send(&self, to: NodeId, payload: Bytes) {
        if let Some(tx) = self.links.get(&to)
            && tx.try_send(payload).is_err()
        {
            tracing::debug!(to, "peer queue full or closed; message dropped");
        }
    }
}

async fn sender(
    hello: Hello,
    peer: NodeId,
    addr: String,
    mut rx: mpsc::Receiver<Bytes>,
    stop: CancellationToken,
) {
    let hello_bytes = match serde_json::to_vec(&hello) {
        Ok(b) => Bytes::from(b),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode hello");
            return;
        }
    };
    let mut backoff = Duration::from_millis(20);
    loop {
        let connect = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(&addr));
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            r = connect => r,
        };
        match stream {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                tracing::info!(peer, %addr, "connected to peer");
                backoff = Duration::from_millis(20);
                let mut framed = Framed::new(stream, codec());
                if framed.send(hello_bytes.clone()).await.is_ok()
                    && forward(&mut framed, &mut rx, &stop).await.is_none()
                {
                    return;
                }
                tracing::info!(peer, %addr, "lost connection to peer");
            }
            Ok(Err(e)) => tracing::debug!(peer, %addr, error = %e, "cannot connect to peer"),
            Err(_) => tracing::debug!(peer, %addr, "connecting to peer timed out"),
        }
        // Drop whatever piles up while the link is down, then retry.
        let deadline = tokio::time::sleep(backoff);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = &mut deadline => break,
                m = rx.recv() => if m.is_none() { return },
            }
        }
        backoff = (backoff * 2).min(Duration::from_millis(500));
    }
}

/// Writes queued messages until the connection fails (`Some`) or the node stops (`None`).
async fn forward(
    framed: &mut Framed<TcpStream, LengthDelimitedCodec>,
    rx: &mut mpsc::Receiver<Bytes>,
    stop: &CancellationToken,
) -> Option<()> {
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return None,
            m = rx.recv() => m?,
            // A peer never writes on our outbound connection; a read ending means it closed.
            r = framed.next() => { if r.is_none() { return Some(()) } continue }
        };
        if framed.feed(msg).await.is_err() {
            return Some(());
        }
        // Batch whatever is already queued into one flush.
        while let Ok(more) = rx.try_recv() {
            if framed.feed(more).await.is_err() {
                return Some(());
            }
        }
        if SinkExt::<Bytes>::flush(framed).await.is_err() {
            return Some(());
        }
    }
}

/// Accepts peer connections and forwards `(sender, payload)` pairs to `inbox`.
pub async fn listen(
    listener: TcpListener,
    mode: String,
    directory: Directory,
    inbox: mpsc::Sender<(NodeId, Bytes)>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, remote)) => {
                let _ = stream.set_nodelay(true);
                let (mode, directory, inbox, stop) =
                    (mode.clone(), directory.clone(), inbox.clone(), stop.clone());
                let task = async move {
                    tokio::select! {
                        _ = stop.cancelled() => {}
                        r = receive(stream, mode, directory, inbox) => if let Err(e) = r {
                            tracing::warn!(%remote, error = %e, "peer connection closed");
                        }
                    }
                };
                tokio::spawn(task.in_current_span());
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Why an inbound peer connection was closed.
#[derive(Debug, thiserror::Error)]
enum ReceiveError {
    #[error("reading from peer: {0}")]
    Io(#[from] std::io::Error),
    #[error("peer sent an invalid hello: {0}")]
    Hello(String),
    #[error("peer {id} runs mode {theirs}, this node runs {ours}")]
    Mode { id: NodeId, theirs: String, ours: String },
}

async fn receive(
    stream: TcpStream,
    mode: String,
    directory: Directory,
    inbox: mpsc::Sender<(NodeId, Bytes)>,
) -> Result<(), ReceiveError> {
    let mut framed = Framed::new(stream, codec());
    let Some(first) = framed.next().await else { return Ok(()) };
    let hello: Hello =
        serde_json::from_slice(&first?).map_err(|e| ReceiveError::Hello(e.to_string()))?;
    if hello.mode != mode {
        return Err(ReceiveError::Mode { id: hello.id, theirs: hello.mode, ours: mode });
    }
    if let Ok(mut dir) = directory.write() {
        dir.insert(hello.id, hello.client_addr.clone());
    }
    while let Some(frame) = framed.next().await {
        if inbox.send((hello.id, frame?.freeze())).await.is_err() {
            break;
        }
    }
    Ok(())
}
