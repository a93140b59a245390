//! The client and admin HTTP API (JSON over HTTP/1.1), documented in the crate README.
//!
//! Every answer is bounded in time: a request the core does not answer within the request
//! timeout gets `timeout` (indeterminate), so a harness client never hangs on a node.

use crate::clock::Clock;
use crate::modes::Mode;
use crate::node::ClientRequest;
use crate::transport::Directory;
use crate::types::{ClientOp, Context, CoreStatus, Key, MicroOp, NodeId, OpError, Reply, Value};
use crate::wal::RecoveryReport;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// What the HTTP handlers share.
#[derive(Clone)]
pub(crate) struct ApiState {
    pub id: NodeId,
    pub mode: Mode,
    pub clock: Arc<Clock>,
    pub directory: Directory,
    pub peers: BTreeMap<NodeId, String>,
    pub request_timeout: Duration,
    pub wal: Arc<RecoveryReport>,
    pub client_tx: mpsc::Sender<ClientRequest>,
    pub status_tx: mpsc::Sender<oneshot::Sender<CoreStatus>>,
}

/// Serves the API on `listener` until `stop` is cancelled.
pub(crate) async fn serve(listener: TcpListener, state: ApiState, stop: CancellationToken) {
    let app = Router::new()
        .route("/v1/read", post(read))
        .route("/v1/write", post(write))
        .route("/v1/cas", post(cas))
        .route("/v1/append", post(append))
        .route("/v1/txn", post(txn))
        .route("/admin/health", get(health))
        .route("/admin/status", get(status))
        .route("/admin/clock", post(set_clock))
        .fallback(not_found)
        .with_state(state);
    let served =
        axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await });
    if let Err(e) = served.await {
        tracing::error!(error = %e, "client API stopped");
    }
}

/// An error answer: `{"error", "message", "definite", "leader"}` with the matching status.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    definite: bool,
    leader: Option<String>,
}

impl ApiError {
    fn bad_request(message: String) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "bad-request",
            message,
            definite: true,
            leader: None,
        }
    }

    fn from_op(e: OpError, directory: &Directory) -> Self {
        let (status, leader) = match &e {
            OpError::NotLeader { leader } => {
                let addr =
                    leader.and_then(|id| directory.read().ok().and_then(|d| d.get(&id).cloned()));
                (StatusCode::MISDIRECTED_REQUEST, addr)
            }
            OpError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
            OpError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, None),
            OpError::CasMismatch { .. } => (StatusCode::CONFLICT, None),
            OpError::BadRequest(_) => (StatusCode::BAD_REQUEST, None),
            OpError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        let message = match &e {
            OpError::NotLeader { leader: Some(id) } => format!("node {id} is the leader"),
            OpError::NotLeader { leader: None } => "no leader is known right now".to_string(),
            other => other.to_string(),
        };
        ApiError { status, code: e.code(), message, definite: e.definite(), leader }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.code,
            "message": self.message,
            "definite": self.definite,
            "leader": self.leader,
        });
        (self.status, axum::Json(body)).into_response()
    }
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

fn key(v: &Value) -> Result<Key, ApiError> {
    Key::from_json(v)
        .ok_or_else(|| ApiError::bad_request(format!("key {v} is not an integer or a string")))
}

/// Hands `op` to the core and waits, bounded by the request timeout.
async fn run(state: &ApiState, op: ClientOp) -> Result<Reply, ApiError> {
    let (tx, rx) = oneshot::channel();
    let wait = async {
        if state.client_tx.send(ClientRequest { op, reply: tx }).await.is_err() {
            return Err(OpError::Unavailable("the node is shutting down".into()));
        }
        rx.await.unwrap_or_else(|_| {
            Err(OpError::Internal("the node stopped while working on the request".into()))
        })
    };
    match tokio::time::timeout(state.request_timeout, wait).await {
        Ok(result) => result.map_err(|e| ApiError::from_op(e, &state.directory)),
        Err(_) => Err(ApiError::from_op(
            OpError::Timeout(format!("no outcome within {} ms", state.request_timeout.as_millis())),
            &state.directory,
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadBody {
    key: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteBody {
    key: Value,
    value: Value,
}

/// A write's body: with a `context` (one a read under `--resolution siblings` returned) it
/// supersedes the versions that context names.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    key: Value,
    value: Value,
    #[serde(default)]
    context: Option<Context>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasBody {
    key: Value,
    from: Value,
    to: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TxnBody {
    ops: Vec<MicroOp>,
}

fn ok(body: serde_json::Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

async fn read(State(s): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let b: ReadBody = parse(&body)?;
    match run(&s, ClientOp::Read { key: key(&b.key)? }).await? {
        Reply::Value(v) => Ok(ok(json!({ "value": v }))),
        Reply::Siblings { values, context } => {
            Ok(ok(json!({ "siblings": values, "context": context })))
        }
        other => Err(unexpected(other)),
    }
}

async fn write(State(s): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let b: PutBody = parse(&body)?;
    let (key, value) = (key(&b.key)?, b.value);
    let op = match b.context {
        Some(context) => ClientOp::Put { key, value, context },
        None => ClientOp::Write { key, value },
    };
    match run(&s, op).await? {
        Reply::Written { context } => Ok(ok(json!({ "context": context }))),
        _ => Ok(ok(json!({}))),
    }
}

async fn cas(State(s): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let b: CasBody = parse(&body)?;
    run(&s, ClientOp::Cas { key: key(&b.key)?, from: b.from, to: b.to }).await?;
    Ok(ok(json!({})))
}

async fn append(State(s): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let b: WriteBody = parse(&body)?;
    run(&s, ClientOp::Append { key: key(&b.key)?, value: b.value }).await?;
    Ok(ok(json!({})))
}

async fn txn(State(s): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let b: TxnBody = parse(&body)?;
    match run(&s, ClientOp::Txn { ops: b.ops }).await? {
        Reply::Txn(ops) => Ok(ok(json!({ "ops": ops }))),
        other => Err(unexpected(other)),
    }
}

fn unexpected(reply: Reply) -> ApiError {
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal",
        message: format!("the core answered with an unexpected reply {reply:?}"),
        definite: false,
        leader: None,
    }
}

async fn health(State(s): State<ApiState>) -> Response {
    ok(json!({ "ok": true, "id": s.id, "mode": s.mode.name() }))
}

async fn status(State(s): State<ApiState>) -> Result<Response, ApiError> {
    let (tx, rx) = oneshot::channel();
    let asked = async {
        s.status_tx.send(tx).await.ok()?;
        rx.await.ok()
    };
    let Ok(Some(core)) = tokio::time::timeout(s.request_timeout, asked).await else {
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: "the node's core did not answer".into(),
            definite: true,
            leader: None,
        });
    };
    let clients = s.directory.read().map(|d| d.clone()).unwrap_or_default();
    let peers: Vec<_> = s
        .peers
        .iter()
        .map(|(id, addr)| json!({ "id": id, "addr": addr, "client_addr": clients.get(id) }))
        .collect();
    let mut body = serde_json::Map::new();
    body.insert("id".into(), s.id.into());
    body.insert("mode".into(), s.mode.name().into());
    body.insert("role".into(), core.role.into());
    body.insert("term".into(), core.term.into());
    body.insert("leader".into(), json!(core.leader));
    body.insert("peers".into(), peers.into());
    body.insert("clock_offset_ms".into(), s.clock.offset_ms().into());
    // The wall clock as the node reads it (host clock, as this process sees
    // it, plus the offset), so a clock fault can be measured from outside.
    body.insert("wall_clock_us".into(), s.clock.now().wall_us.into());
    body.insert("wal".into(), json!(*s.wal));
    for (k, v) in core.extra {
        body.insert(k, v);
    }
    Ok(ok(body.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockBody {
    offset_ms: i64,
}

async fn set_clock(State(s): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let b: ClockBody = parse(&body)?;
    s.clock.set_offset_ms(b.offset_ms);
    tracing::info!(offset_ms = b.offset_ms, "clock offset set");
    Ok(ok(json!({ "offset_ms": b.offset_ms })))
}

async fn not_found() -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        code: "bad-request",
        message: "no such endpoint; see the refstore README for the API".into(),
        definite: true,
        leader: None,
    }
}
