//! The clients' way into the simulated world. Each client thread uses
//! refstore's real client (`faultline_refstore::RefstoreClient`, the one
//! that maps faultline's vocabulary onto refstore's API, with its retries
//! and its outcome rules) over a [`SimTransport`]: a request is posted to a
//! shared [`Mailbox`] and its future stays pending until the world's answer
//! is put there. The driver polls a thread's operation with a no-op waker
//! after each answer for it, so a multi-request operation (a transfer reads,
//! then writes) runs in simulated time with no async runtime at all.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use async_trait::async_trait;
use checkers::Value;
use faultline_refstore::{RefstoreClient, Refusal, Transport, answer_body, api_op};
use harness::{Client, Completion, Invocation};
use refstore::types::{ClientOp, OpError};

use crate::world::Answer;

/// A request a client posted and the world has not received yet.
#[derive(Debug)]
pub struct Posted {
    /// The request's number, unique in the run.
    pub req: u64,
    /// The node it goes to (0-based).
    pub node: usize,
    /// The operation.
    pub op: ClientOp,
}

/// Requests on their way into the world and answers on their way back.
#[derive(Debug, Default)]
pub struct Mailbox {
    next: u64,
    posted: Vec<Posted>,
    answers: BTreeMap<u64, Answer>,
}

impl Mailbox {
    /// Takes the requests posted since the last call, in order.
    pub fn take_posted(&mut self) -> Vec<Posted> {
        std::mem::take(&mut self.posted)
    }

    /// Hands `answer` to whoever waits for request `req`.
    pub fn answer(&mut self, req: u64, answer: Answer) {
        self.answers.insert(req, answer);
    }

    /// Forgets the answer to `req` if it came (its operation was abandoned).
    pub fn forget(&mut self, req: u64) {
        self.answers.remove(&req);
    }
}

/// The shared mailbox.
pub type SharedMailbox = Arc<Mutex<Mailbox>>;

fn lock(m: &SharedMailbox) -> std::sync::MutexGuard<'_, Mailbox> {
    // Single-threaded use: a poisoned lock only means a panic elsewhere.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The name of node `i` (0-based), as the real runtimes name nodes.
pub fn node_name(i: usize) -> String {
    format!("n{}", i + 1)
}

/// The 0-based index of a node named `n<k>`.
pub fn node_index(name: &str) -> Option<usize> {
    name.strip_prefix('n')?.parse::<usize>().ok()?.checked_sub(1)
}

/// refstore's requests into the simulated world: a [`Transport`] whose
/// `base` is a node's name.
pub struct SimTransport {
    mailbox: SharedMailbox,
}

impl SimTransport {
    /// A transport posting into `mailbox`.
    pub fn new(mailbox: SharedMailbox) -> SimTransport {
        SimTransport { mailbox }
    }
}

/// The answer as refstore's HTTP API would have given it: a body, or the
/// refusal the real client derives from an error answer or a broken
/// connection.
fn as_http(answer: Answer, inv: &Invocation) -> Result<serde_json::Value, Refusal> {
    match answer {
        Answer::Reply(Ok(reply)) => Ok(answer_body(reply)),
        Answer::Reply(Err(e)) => {
            let leader = match &e {
                OpError::NotLeader { leader: Some(id) } => {
                    usize::try_from(*id).ok().and_then(|id| id.checked_sub(1)).map(node_name)
                }
                _ => None,
            };
            Err(Refusal::answered(e.code(), e.definite(), leader, inv))
        }
        // Nothing was sent: as the HTTP client's refused connection.
        Answer::Refused => Err(Refusal::Other(Completion::fail(
            inv.value.clone(),
            Value::str("connection-refused"),
        ))),
        // As the HTTP client's connection error after sending.
        Answer::Closed => Err(Refusal::Other(Completion::info(
            inv.value.clone(),
            Value::str("connection: closed by the node's crash"),
        ))),
    }
}

#[async_trait]
impl Transport for SimTransport {
    async fn post(
        &self,
        base: &str,
        path: &str,
        body: &serde_json::Value,
        inv: &Invocation,
    ) -> Result<serde_json::Value, Refusal> {
        // The API's bodies are its operations' fields; the path names the operation.
        let Some(op) = api_op(path, body) else {
            return Err(Refusal::Other(Completion::fail(
                inv.value.clone(),
                Value::str("bad-request"),
            )));
        };
        let req = {
            let mut m = lock(&self.mailbox);
            m.next += 1;
            let req = m.next;
            // A base that names no node is a node that is not there.
            let node = node_index(base).unwrap_or(usize::MAX);
            m.posted.push(Posted { req, node, op });
            req
        };
        let answer = std::future::poll_fn(|_| match lock(&self.mailbox).answers.remove(&req) {
            Some(a) => Poll::Ready(a),
            None => Poll::Pending,
        })
        .await;
        as_http(answer, inv)
    }
}

/// One client operation in flight: refstore's client performing it.
pub struct Operation {
    future: Pin<Box<dyn Future<Output = Completion> + Send>>,
}

impl Operation {
    /// Starts `inv` on node `node` with a fresh refstore client over the
    /// simulated transport. (The real client keeps no state between
    /// operations but its node, so a fresh one per operation is the same.)
    pub fn start(mailbox: &SharedMailbox, node: &str, inv: Invocation) -> Operation {
        let transport: Arc<dyn Transport> = Arc::new(SimTransport::new(mailbox.clone()));
        let mut client = RefstoreClient::over(transport);
        let node = node.to_owned();
        let future = Box::pin(async move {
            if let Err(e) = client.open(&node).await {
                return Completion::fail(
                    inv.value.clone(),
                    format!("could not open a client: {e}"),
                );
            }
            client.invoke(&inv).await
        });
        Operation { future }
    }

    /// Runs the operation as far as the answers so far allow: its
    /// completion when it finished.
    pub fn poll(&mut self) -> Option<Completion> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.future.as_mut().poll(&mut cx) {
            Poll::Ready(c) => Some(c),
            Poll::Pending => None,
        }
    }
}
