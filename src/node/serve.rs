//! Answers data requests from the store: a pure function of the store and the request, so it
//! is tested without a network and shared by every transport.

use crate::chain::Genesis;
use crate::proof::mmr::peaks_at;
use crate::protocol::blocks::{BlocksResponse, GetBlocks};
use crate::protocol::headers::{GetHeaders, HeadersResponse};
use crate::protocol::limits::{
    MAX_BLOCKS_PER_REQUEST, MAX_HEADERS_PER_REQUEST, MAX_RESPONSE_BYTES,
};
use crate::protocol::proof::{GetProof, ProofResponse};
use crate::protocol::snapshot::{GetSnapshot, Snapshot, SnapshotResponse};
use crate::protocol::{fit_to_response, ErrorCode, ErrorResponse, Request, Response};
use crate::store::{event_proof, next_validators, ChainStore, StoreError, StoreNodes};

/// Room for the response tag and framing inside the response cap.
const RESPONSE_OVERHEAD: usize = 64;

fn internal(e: StoreError) -> ErrorResponse {
    tracing::error!(error = %e, "store error while serving a request");
    ErrorResponse::new(ErrorCode::Internal, "storage error")
}

/// The response to `request`, never larger than [`MAX_RESPONSE_BYTES`].
pub fn serve(store: &dyn ChainStore, genesis: &Genesis, request: &Request) -> Response {
    let protocol = request.protocol();
    let result = match request {
        Request::GetHeaders(r) => headers(store, r).map(Response::Headers),
        Request::GetBlocks(r) => blocks(store, r).map(Response::Blocks),
        Request::GetProof(r) => proof(store, r).map(Response::Proof),
        Request::GetSnapshot(r) => snapshot(store, genesis, r).map(Response::Snapshot),
    };
    match result {
        Ok(response) => response,
        Err(error) => match Response::error(protocol, error) {
            Some(response) => response,
            // Data protocols always have an error form.
            None => Response::Headers(HeadersResponse::Error(ErrorResponse::new(
                ErrorCode::Internal,
                "no error form",
            ))),
        },
    }
}

fn check_count(count: u32, max: u32) -> Result<(), ErrorResponse> {
    if count == 0 || count > max {
        return Err(ErrorResponse::new(
            ErrorCode::Malformed,
            format!("count must be 1 to {max}, got {count}"),
        ));
    }
    Ok(())
}

fn headers(store: &dyn ChainStore, r: &GetHeaders) -> Result<HeadersResponse, ErrorResponse> {
    check_count(r.count, MAX_HEADERS_PER_REQUEST)?;
    let mut headers = store.headers(r.start, r.count).map_err(internal)?;
    headers.truncate(fit_to_response(
        &headers,
        MAX_RESPONSE_BYTES - RESPONSE_OVERHEAD,
    ));
    Ok(HeadersResponse::Headers(headers))
}

fn blocks(store: &dyn ChainStore, r: &GetBlocks) -> Result<BlocksResponse, ErrorResponse> {
    check_count(r.count, MAX_BLOCKS_PER_REQUEST)?;
    let lowest = store.lowest_height().map_err(internal)?;
    if r.start < lowest {
        return Err(ErrorResponse::new(
            ErrorCode::NotFound,
            format!("blocks below height {lowest} are not stored here"),
        ));
    }
    let mut blocks = store.blocks(r.start, r.count).map_err(internal)?;
    let fit = fit_to_response(&blocks, MAX_RESPONSE_BYTES - RESPONSE_OVERHEAD);
    if fit == 0 && !blocks.is_empty() {
        return Err(ErrorResponse::new(
            ErrorCode::TooLarge,
            format!("block {} alone exceeds the response cap", r.start),
        ));
    }
    blocks.truncate(fit);
    Ok(BlocksResponse::Blocks(blocks))
}

fn proof(store: &dyn ChainStore, r: &GetProof) -> Result<ProofResponse, ErrorResponse> {
    let proof = event_proof(store, &r.event_id, r.at_height).map_err(internal)?;
    Ok(ProofResponse::Proof(proof.map(Box::new)))
}

/// The warp-sync snapshot at `height`: its trusted header, the MMR peaks before it, the set
/// that signs the next block, and the lowest height this node stores.
pub fn build_snapshot(
    store: &dyn ChainStore,
    genesis: &Genesis,
    height: u64,
) -> Result<Option<Snapshot>, StoreError> {
    let Some(header) = store.header(height)? else {
        return Ok(None);
    };
    let nodes = StoreNodes::new(store);
    let peaks = match peaks_at(&nodes, height) {
        Ok(peaks) => peaks,
        Err(e) => {
            return Err(nodes
                .take_error()
                .unwrap_or_else(|| StoreError::Corrupt(format!("MMR peaks at {height}: {e}"))))
        }
    };
    let next_validators = next_validators(store, genesis, &header)?;
    Ok(Some(Snapshot {
        header,
        peaks,
        next_validators,
        lowest_height: store.lowest_height()?,
    }))
}

fn snapshot(
    store: &dyn ChainStore,
    genesis: &Genesis,
    r: &GetSnapshot,
) -> Result<SnapshotResponse, ErrorResponse> {
    let not_found = |what: String| ErrorResponse::new(ErrorCode::NotFound, what);
    let snapshot = build_snapshot(store, genesis, r.height)
        .map_err(internal)?
        .ok_or_else(|| not_found(format!("no block at height {}", r.height)))?;
    let encoded = snapshot
        .to_encoded()
        .map_err(|e| ErrorResponse::new(ErrorCode::Internal, e.to_string()))?;
    let chunk = encoded.chunk(r.chunk).ok_or_else(|| {
        not_found(format!(
            "chunk {} of {} does not exist",
            r.chunk,
            encoded.total_chunks()
        ))
    })?;
    Ok(SnapshotResponse::Chunk(chunk))
}
