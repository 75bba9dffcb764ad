//! `/headway/1/status`: each side tells the other its head every
//! [`STATUS_INTERVAL`](super::limits::STATUS_INTERVAL), and after the handshake.
//!
//! The request is the sender's [`Status`]; the response is the responder's. Together with the
//! lowest height a peer still serves, it is what sync uses to pick peers.

use super::{read_response_tag, ErrorResponse, Protocol, Rpc, RESPONSE_ERROR, RESPONSE_OK};
use crate::chain::{Decode, DecodeError, Encode, Hash, Reader, Writer};

/// A node's view of its chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub head_height: u64,
    pub head_hash: Hash,
    /// The head header's MMR root (over heights `0..head_height`).
    pub mmr_root: Hash,
    /// The lowest height whose block the node still serves (0 unless it started from a
    /// snapshot or pruned). Never above `head_height`.
    pub lowest_height: u64,
    /// Whether the node is still catching up.
    pub syncing: bool,
}

/// The response on `/headway/1/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusResponse {
    Status(Status),
    Error(ErrorResponse),
}

/// Marker for the status protocol.
#[derive(Clone, Copy, Debug)]
pub struct StatusRpc;

impl Rpc for StatusRpc {
    const PROTOCOL: Protocol = Protocol::Status;
    type Request = Status;
    type Response = StatusResponse;

    fn error(error: ErrorResponse) -> StatusResponse {
        StatusResponse::Error(error)
    }
}

impl Encode for Status {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(self.head_height)
            .hash(&self.head_hash)
            .hash(&self.mmr_root)
            .u64(self.lowest_height)
            .bool(self.syncing);
    }
}

impl Decode for Status {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let status = Status {
            head_height: r.u64()?,
            head_hash: r.hash()?,
            mmr_root: r.hash()?,
            lowest_height: r.u64()?,
            syncing: r.bool()?,
        };
        if status.lowest_height > status.head_height {
            return Err(DecodeError::Invalid {
                what: "status",
                reason: format!(
                    "lowest height {} is above the head {}",
                    status.lowest_height, status.head_height
                ),
            });
        }
        Ok(status)
    }
}

impl Encode for StatusResponse {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            StatusResponse::Status(s) => w.u8(RESPONSE_OK).value(s),
            StatusResponse::Error(e) => w.u8(RESPONSE_ERROR).value(e),
        };
    }
}

impl Decode for StatusResponse {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(if read_response_tag(r, "status response")? {
            StatusResponse::Status(Status::decode_from(r)?)
        } else {
            StatusResponse::Error(ErrorResponse::decode_from(r)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::round_trip;
    use super::super::ErrorCode;
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn status() -> Status {
        Status {
            head_height: 1005,
            head_hash: Hash([1; 32]),
            mmr_root: Hash([2; 32]),
            lowest_height: 10,
            syncing: false,
        }
    }

    #[test]
    fn messages_round_trip() {
        round_trip(&status());
        round_trip(&StatusResponse::Status(Status {
            syncing: true,
            ..status()
        }));
        round_trip(&StatusResponse::Error(ErrorResponse::new(
            ErrorCode::RateLimited,
            "slow down",
        )));
    }

    #[test]
    fn rejects_lowest_height_above_head() {
        let s = Status {
            lowest_height: 1006,
            ..status()
        };
        assert!(matches!(
            Status::decode(&s.encode()),
            Err(DecodeError::Invalid { what: "status", .. })
        ));
    }

    #[test]
    fn rejects_non_canonical_bool_and_tag() {
        let mut bytes = status().encode();
        *bytes.last_mut().unwrap() = 2;
        assert_eq!(Status::decode(&bytes), Err(DecodeError::InvalidBool(2)));
        assert!(matches!(
            StatusResponse::decode(&[7]),
            Err(DecodeError::InvalidTag { tag: 7, .. })
        ));
    }
}
