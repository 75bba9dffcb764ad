//! The HTTP API for operators and apps (axum).
//!
//! Reads go straight to the store (it is `Sync` and every read is one consistent view);
//! writes (event submission) go to the node loop over a channel, because the mempool and
//! consensus live there. Every error is a 4xx/5xx with a JSON body `{"error": code, "message"}`.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{mpsc, oneshot, watch};

use super::metrics::Metrics;
use crate::chain::{Checkpoint, Encode, EventId, Genesis, Hash, SignedEvent};
use crate::store::{event_proof, next_validators, ChainStore, StoreError};

/// Largest accepted request body: one event with 16 KiB of metadata, hex-encoded, fits easily.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the node loop reports about itself; the API serves it at `/status`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NodeStatus {
    pub chain_id: String,
    pub peer_id: String,
    pub head_height: u64,
    pub head_hash: String,
    pub finalized_height: u64,
    /// Lowest height whose block this node serves: 0, or where a warp sync started it.
    pub lowest_height: u64,
    /// `connecting` (no peer), then the sync state: `determining`, `syncing`, `synced`, or
    /// `stopped` (a conflict between finalized chains; an operator must decide).
    pub state: String,
    pub syncing: bool,
    pub peers: usize,
    pub mempool: usize,
    pub validator: bool,
    pub listen: Vec<String>,
    /// Block sync's state and progress (`null` before the node loop reports it).
    pub sync: Option<SyncStatus>,
}

/// Block sync as `/status` shows it (see `node::sync_driver`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// `determining` (no peer to compare with), `syncing`, `synced` or `stopped` (a fork
    /// between finalized chains: an operator must decide).
    pub state: String,
    /// `fast` or `headerfirst`.
    pub mode: String,
    /// The height this run started from.
    pub start: u64,
    /// The highest block verified.
    pub current: u64,
    /// The highest block durably written.
    pub written: u64,
    /// The best head a connected peer claims.
    pub target: u64,
    pub blocks_per_second: f64,
    /// Time left at the current rate; `null` while nothing moves.
    pub eta_ms: Option<u64>,
    /// Of this run, 0 to 100.
    pub percent: f64,
    pub peers: usize,
    pub requests_in_flight: usize,
    /// The conflict between finalized chains that stopped sync, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fork: Option<ForkReport>,
}

/// Two different blocks at one height, each finalized by more than 2/3 of the set that signs
/// there: evidence that more than 1/3 of the voting power equivocated. Sync stops at the first;
/// it never picks a side. Also stored under the store meta key `sync:fork`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForkReport {
    pub height: u64,
    /// Our block's hash at that height, and the other one's.
    pub ours: String,
    pub theirs: String,
    /// The peer that sent the other block.
    pub peer: String,
    /// Both trusted headers (header and commit), canonical encoding in hex: the evidence.
    pub ours_header: String,
    pub theirs_header: String,
}

/// Why the node refused an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("invalid event: {0}")]
    Invalid(String),
    #[error("event {0} is already pending")]
    Duplicate(EventId),
    #[error("event {0} is already in the chain")]
    AlreadyInChain(EventId),
    #[error("the mempool is full, retry later")]
    Full,
    #[error("the node is shutting down")]
    Unavailable,
}

/// Requests from the API to the node loop.
#[derive(Debug)]
pub enum Command {
    SubmitEvent {
        event: Box<SignedEvent>,
        reply: oneshot::Sender<Result<EventId, SubmitError>>,
    },
}

/// Shared state of the API handlers.
#[derive(Clone)]
pub struct ApiState {
    pub store: Arc<dyn ChainStore>,
    pub genesis: Arc<Genesis>,
    pub commands: mpsc::Sender<Command>,
    pub status: watch::Receiver<NodeStatus>,
    pub metrics: Metrics,
}

/// An API error: a status code and a JSON body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error while serving the API");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string())
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        let (status, code) = match e {
            SubmitError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_event"),
            SubmitError::Duplicate(_) => (StatusCode::CONFLICT, "duplicate"),
            SubmitError::AlreadyInChain(_) => (StatusCode::CONFLICT, "already_in_chain"),
            SubmitError::Full => (StatusCode::SERVICE_UNAVAILABLE, "mempool_full"),
            SubmitError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.code, "message": self.message }));
        (self.status, body).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/events", post(submit_event))
        .route("/events/{id}", get(get_event))
        .route("/events/{id}/proof", get(get_event_proof))
        .route("/headers/{height}", get(get_header))
        .route("/status", get(get_status))
        .route("/checkpoint", get(get_checkpoint))
        .route("/light-config", get(get_light_config))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn parse_id(id: &str) -> ApiResult<EventId> {
    Hash::from_hex(id).map_err(|e| ApiError::bad_request(format!("event id: {e}")))
}

fn parse_height(height: &str) -> ApiResult<u64> {
    if height.is_empty() || !height.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_request(format!(
            "height {height:?} is not a decimal number"
        )));
    }
    height
        .parse()
        .map_err(|_| ApiError::bad_request(format!("height {height} is out of range")))
}

async fn submit_event(
    State(state): State<ApiState>,
    body: Result<Json<SignedEvent>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let Json(event) = body.map_err(|e| {
        state
            .metrics
            .events_submitted
            .get_or_create(&kind("malformed"))
            .inc();
        ApiError::new(e.status(), "malformed", e.body_text())
    })?;
    let (reply, answer) = oneshot::channel();
    state
        .commands
        .send(Command::SubmitEvent {
            event: Box::new(event),
            reply,
        })
        .await
        .map_err(|_| SubmitError::Unavailable)?;
    let result = answer.await.map_err(|_| SubmitError::Unavailable)?;
    let outcome = match &result {
        Ok(_) => "accepted",
        Err(SubmitError::Invalid(_)) => "invalid",
        Err(SubmitError::Duplicate(_) | SubmitError::AlreadyInChain(_)) => "duplicate",
        Err(SubmitError::Full) => "full",
        Err(SubmitError::Unavailable) => "unavailable",
    };
    state
        .metrics
        .events_submitted
        .get_or_create(&kind(outcome))
        .inc();
    let id = result?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))))
}

fn kind(k: &str) -> super::metrics::KindLabel {
    super::metrics::KindLabel { kind: k.to_owned() }
}

async fn get_event(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = parse_id(&id)?;
    let location = state
        .store
        .event_location(&id)?
        .ok_or_else(|| ApiError::not_found(format!("event {id} is not in the chain")))?;
    let block = state.store.block(location.height)?.ok_or_else(|| {
        ApiError::not_found(format!(
            "block {} holding event {id} is no longer stored",
            location.height
        ))
    })?;
    let event = block
        .block
        .events
        .get(location.index as usize)
        .ok_or_else(|| ApiError::from(StoreError::Corrupt(format!("event index of {id}"))))?;
    Ok(Json(json!({
        "id": id,
        "height": location.height,
        "index": location.index,
        "block_hash": block.block.header.hash(),
        "event": event,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProofQuery {
    at_height: Option<u64>,
}

async fn get_event_proof(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    query: Result<Query<ProofQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let id = parse_id(&id)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let proof = event_proof(&*state.store, &id, query.at_height)?.ok_or_else(|| {
        ApiError::not_found(format!(
            "no proof for event {id}{}",
            query
                .at_height
                .map(|h| format!(" at height {h}"))
                .unwrap_or_default()
        ))
    })?;
    let trusted_height = query.at_height.unwrap_or_else(|| {
        proof
            .mmr
            .as_ref()
            .map_or(proof.header.height, |m| m.leaf_count)
    });
    Ok(Json(json!({
        "event_id": id,
        "height": proof.header.height,
        "trusted_height": trusted_height,
        "proof": hex::encode(proof.encode()),
    })))
}

async fn get_header(
    State(state): State<ApiState>,
    Path(height): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let height = parse_height(&height)?;
    let header = state
        .store
        .header(height)?
        .ok_or_else(|| ApiError::not_found(format!("no header at height {height}")))?;
    Ok(Json(json!({
        "hash": header.header.hash(),
        "encoded": hex::encode(header.encode()),
        "header": header,
    })))
}

async fn get_status(State(state): State<ApiState>) -> Json<NodeStatus> {
    Json(state.status.borrow().clone())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointQuery {
    format: Option<String>,
}

/// The checkpoint of the head: the text form a light client pastes, or JSON with `?format=json`.
async fn get_checkpoint(
    State(state): State<ApiState>,
    query: Result<Query<CheckpointQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let head = state
        .store
        .head()?
        .ok_or_else(|| ApiError::not_found("the node has no blocks yet"))?;
    let header = state
        .store
        .header(head.height)?
        .ok_or_else(|| ApiError::from(StoreError::Corrupt("head header missing".into())))?;
    let next = next_validators(&*state.store, &state.genesis, &header)?;
    let checkpoint = Checkpoint::for_header(&header.header, next)
        .map_err(|e| ApiError::from(StoreError::Corrupt(e.to_string())))?;
    Ok(match query.format.as_deref() {
        None | Some("text") => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", checkpoint.to_text()),
        )
            .into_response(),
        Some("json") => (
            [(header::CONTENT_TYPE, "application/json")],
            checkpoint.to_json(),
        )
            .into_response(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format {other:?}: expected text or json"
            )))
        }
    })
}

/// How far below the head `/light-config` puts its checkpoint by default: deep enough that a
/// browser shows real header sync, shallow enough that a long-running devnet syncs in seconds.
pub const LIGHT_CONFIG_DEPTH: u64 = 2_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LightConfigQuery {
    height: Option<u64>,
}

/// The first listen address whose text contains `needle`, skipping unspecified IPs (0.0.0.0,
/// ::), which a browser cannot dial.
fn dialable(listen: &[String], needle: &str, not: &str) -> Option<String> {
    listen
        .iter()
        .find(|a| {
            a.contains(needle)
                && (not.is_empty() || !a.contains(not))
                && !a.starts_with("/ip4/0.0.0.0/")
                && !a.starts_with("/ip6/::/")
        })
        .cloned()
}

/// The newest event id in the last few blocks below `head`, so a demo page can offer an event
/// that is really in the chain without the user signing one first.
fn recent_event(store: &dyn ChainStore, head: u64) -> Result<Option<EventId>, StoreError> {
    let lowest = store.lowest_height()?;
    for height in (lowest.max(head.saturating_sub(100))..=head).rev() {
        if let Some(block) = store.block(height)? {
            if let Some(event) = block.block.events.last() {
                return Ok(Some(event.id()));
            }
        }
    }
    Ok(None)
}

/// Everything a browser light client needs to connect to this node, in the field names of the
/// JS `LightClientConfig`: a checkpoint (by default [`LIGHT_CONFIG_DEPTH`] blocks below the
/// head, or at `?height=`), the genesis hash, this node's WebSocket and WebRTC-direct
/// multiaddrs, and a recent event id. The devnet page prefills its form from it.
async fn get_light_config(
    State(state): State<ApiState>,
    query: Result<Query<LightConfigQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<serde_json::Value>> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let head = state
        .store
        .head()?
        .ok_or_else(|| ApiError::not_found("the node has no blocks yet"))?;
    let height = match query.height {
        Some(h) if h > head.height => {
            return Err(ApiError::not_found(format!(
                "height {h} is above the head ({})",
                head.height
            )))
        }
        Some(h) => h,
        // Height 1 at least: a genesis checkpoint is valid but needs no genesis hash, and the
        // page always shows one.
        None => head
            .height
            .saturating_sub(LIGHT_CONFIG_DEPTH)
            .max(head.height.min(1)),
    };
    let header = state
        .store
        .header(height)?
        .ok_or_else(|| ApiError::not_found(format!("no header at height {height}")))?;
    let next = next_validators(&*state.store, &state.genesis, &header)?;
    let checkpoint = Checkpoint::for_header(&header.header, next)
        .map_err(|e| ApiError::from(StoreError::Corrupt(e.to_string())))?;
    let listen = state.status.borrow().listen.clone();
    Ok(Json(json!({
        "chainId": state.genesis.chain_id.to_string(),
        "checkpoint": checkpoint.to_text(),
        "checkpointHeight": height,
        "genesisHash": state.genesis.block().block.header.hash(),
        "headHeight": head.height,
        "bootnodes": {
            "ws": dialable(&listen, "/ws/", "/tls/"),
            "webrtc": dialable(&listen, "/webrtc-direct/", ""),
        },
        "recentEventId": recent_event(&*state.store, head.height)?,
    })))
}

async fn health(State(state): State<ApiState>) -> ApiResult<Json<serde_json::Value>> {
    let head = state.store.head()?;
    Ok(Json(json!({
        "status": "ok",
        "head_height": head.map(|h| h.height),
    })))
}

async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::dialable;

    #[test]
    fn light_config_picks_dialable_browser_addresses() {
        let listen: Vec<String> = [
            "/ip4/0.0.0.0/tcp/1/ws/p2p/12D3KooWA",
            "/ip4/127.0.0.1/tcp/30400/p2p/12D3KooWA",
            "/ip4/127.0.0.1/tcp/30403/tls/ws/p2p/12D3KooWA",
            "/ip4/127.0.0.1/tcp/30401/ws/p2p/12D3KooWA",
            "/ip4/127.0.0.1/udp/30402/webrtc-direct/certhash/uEi/p2p/12D3KooWA",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            dialable(&listen, "/ws/", "/tls/").as_deref(),
            Some("/ip4/127.0.0.1/tcp/30401/ws/p2p/12D3KooWA")
        );
        assert_eq!(
            dialable(&listen, "/webrtc-direct/", "").as_deref(),
            Some("/ip4/127.0.0.1/udp/30402/webrtc-direct/certhash/uEi/p2p/12D3KooWA")
        );
        assert_eq!(dialable(&listen[..2], "/webrtc-direct/", ""), None);
    }
}
