//! The wire protocols between nodes, sans I/O: message types, limits and canonical encodings.
//!
//! Each request-response protocol has its own module holding its request, its response enum and
//! their encodings: [`handshake`] (Hello/HelloAck), [`status`], [`headers`], [`blocks`],
//! [`proof`] and [`snapshot`]. Gossip topics and payloads are in [`gossip`]; every limit is in
//! [`limits`]. Every response enum can carry an [`ErrorResponse`] instead of its payload.
//!
//! The network layer (`crate::net` natively, a browser transport later) frames each message as a
//! `u32` little-endian length then the canonical encoding (see `docs/PROTOCOL.md` §2), on a
//! libp2p stream negotiated with the protocol's name from [`Protocol::name`].

pub mod blocks;
pub mod gossip;
pub mod handshake;
pub mod headers;
pub mod limits;
pub mod proof;
pub mod snapshot;
pub mod status;

use std::fmt;

use crate::chain::{Decode, DecodeError, Encode, Reader, Writer};

pub use blocks::{BlocksResponse, BlocksRpc, GetBlocks};
pub use gossip::{GossipMessage, Topic};
pub use handshake::{
    check_hello, sign_ack, verify_ack, HandshakeError, HandshakeInfo, Hello, HelloAck,
    HelloResponse, HelloRpc,
};
pub use headers::{GetHeaders, HeadersResponse, HeadersRpc};
pub use proof::{GetProof, ProofResponse, ProofRpc};
pub use snapshot::{
    EncodedSnapshot, GetSnapshot, Snapshot, SnapshotAssembler, SnapshotChunk, SnapshotError,
    SnapshotResponse, SnapshotRpc,
};
pub use status::{Status, StatusResponse, StatusRpc};

/// The wire protocol version: the `1` in every protocol name and the `protocol_version` of Hello.
pub const WIRE_VERSION: u32 = 1;

/// The request-response protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Hello,
    Status,
    Headers,
    Blocks,
    Proof,
    Snapshot,
}

impl Protocol {
    /// All protocols, in a fixed order ([`Protocol::index`]).
    pub const ALL: [Protocol; 6] = [
        Protocol::Hello,
        Protocol::Status,
        Protocol::Headers,
        Protocol::Blocks,
        Protocol::Proof,
        Protocol::Snapshot,
    ];

    /// The versioned libp2p protocol name.
    pub const fn name(self) -> &'static str {
        match self {
            Protocol::Hello => "/headway/1/hello",
            Protocol::Status => "/headway/1/status",
            Protocol::Headers => "/headway/1/headers",
            Protocol::Blocks => "/headway/1/blocks",
            Protocol::Proof => "/headway/1/proof",
            Protocol::Snapshot => "/headway/1/snapshot",
        }
    }

    pub fn from_name(name: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Position in [`Protocol::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Largest encoded request.
    pub const fn max_request_bytes(self) -> usize {
        limits::MAX_REQUEST_BYTES
    }

    /// Largest encoded response.
    pub const fn max_response_bytes(self) -> usize {
        match self {
            Protocol::Hello | Protocol::Status => limits::MAX_SMALL_RESPONSE_BYTES,
            _ => limits::MAX_RESPONSE_BYTES,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One request-response protocol: its name and message types. Implemented by a marker type in
/// each protocol module ([`HeadersRpc`], ...), so transports can be generic over protocols.
pub trait Rpc: Send + 'static {
    const PROTOCOL: Protocol;
    type Request: Encode + Decode + Clone + fmt::Debug + Send + 'static;
    type Response: Encode + Decode + Clone + fmt::Debug + Send + 'static;

    /// The response that carries `error` instead of a payload.
    fn error(error: ErrorResponse) -> Self::Response;
}

/// Why a request was not answered with a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is not a canonical encoding of a valid request.
    Malformed,
    /// The request, or the response it asks for, exceeds a limit.
    TooLarge,
    /// The responder does not serve this (e.g. pruned data, or no handshake yet).
    Unsupported,
    /// Too many requests, or too many at once; retry later.
    RateLimited,
    /// The requested item does not exist.
    NotFound,
    /// The responder failed.
    Internal,
    /// The peers follow different chains (chain id or genesis differ).
    WrongChain,
    /// The peers speak incompatible protocol versions.
    IncompatibleVersion,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::Malformed,
        ErrorCode::TooLarge,
        ErrorCode::Unsupported,
        ErrorCode::RateLimited,
        ErrorCode::NotFound,
        ErrorCode::Internal,
        ErrorCode::WrongChain,
        ErrorCode::IncompatibleVersion,
    ];

    /// The wire tag (1..=8).
    pub const fn tag(self) -> u8 {
        match self {
            ErrorCode::Malformed => 1,
            ErrorCode::TooLarge => 2,
            ErrorCode::Unsupported => 3,
            ErrorCode::RateLimited => 4,
            ErrorCode::NotFound => 5,
            ErrorCode::Internal => 6,
            ErrorCode::WrongChain => 7,
            ErrorCode::IncompatibleVersion => 8,
        }
    }

    pub fn from_tag(tag: u8) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.tag() == tag)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// An error instead of a response payload: a code and a human-readable reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorResponse {
    pub code: ErrorCode,
    /// At most [`limits::MAX_ERROR_MESSAGE_LEN`] bytes.
    pub message: String,
}

impl ErrorResponse {
    /// Builds an error, cutting `message` to [`limits::MAX_ERROR_MESSAGE_LEN`] bytes at a
    /// character boundary.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorResponse {
        let mut message = message.into();
        if message.len() > limits::MAX_ERROR_MESSAGE_LEN {
            let mut end = limits::MAX_ERROR_MESSAGE_LEN;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        ErrorResponse { code, message }
    }

    /// The error answering a request that failed to decode: `TooLarge` for a length or count
    /// over its limit, `Malformed` otherwise.
    pub fn from_decode(error: &DecodeError) -> ErrorResponse {
        let code = match error {
            DecodeError::TooLong { .. } => ErrorCode::TooLarge,
            _ => ErrorCode::Malformed,
        };
        ErrorResponse::new(code, error.to_string())
    }
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ErrorResponse {}

impl Encode for ErrorResponse {
    fn encode_to(&self, w: &mut Writer) {
        w.u8(self.code.tag()).str(&self.message);
    }
}

impl Decode for ErrorResponse {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8()?;
        let code = ErrorCode::from_tag(tag).ok_or(DecodeError::InvalidTag {
            what: "error code",
            tag,
        })?;
        let message = r
            .str("error message", limits::MAX_ERROR_MESSAGE_LEN)?
            .to_owned();
        Ok(ErrorResponse { code, message })
    }
}

/// Response enums are a `u8` tag, then the payload (tag 0) or an [`ErrorResponse`] (tag 1).
pub(crate) const RESPONSE_OK: u8 = 0;
pub(crate) const RESPONSE_ERROR: u8 = 1;

/// Reads a response tag: `Ok(true)` for a payload, `Ok(false)` for an error.
pub(crate) fn read_response_tag(
    r: &mut Reader<'_>,
    what: &'static str,
) -> Result<bool, DecodeError> {
    match r.u8()? {
        RESPONSE_OK => Ok(true),
        RESPONSE_ERROR => Ok(false),
        tag => Err(DecodeError::InvalidTag { what, tag }),
    }
}

/// Checks a `start, count` range request: `1 ≤ count ≤ max` and `start + count` does not
/// overflow.
pub(crate) fn check_range(
    what: &'static str,
    start: u64,
    count: u32,
    max: u32,
) -> Result<(), DecodeError> {
    if count > max {
        return Err(DecodeError::TooLong {
            what,
            len: count.into(),
            max: max.into(),
        });
    }
    if count == 0 {
        return Err(DecodeError::Invalid {
            what,
            reason: "count must be at least 1".into(),
        });
    }
    if start.checked_add(u64::from(count)).is_none() {
        return Err(DecodeError::Invalid {
            what,
            reason: format!("range {start} + {count} overflows"),
        });
    }
    Ok(())
}

/// A request for data, as the node sends and serves it (the network handles Hello and Status
/// itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    GetHeaders(GetHeaders),
    GetBlocks(GetBlocks),
    GetProof(GetProof),
    GetSnapshot(GetSnapshot),
}

impl Request {
    pub fn protocol(&self) -> Protocol {
        match self {
            Request::GetHeaders(_) => Protocol::Headers,
            Request::GetBlocks(_) => Protocol::Blocks,
            Request::GetProof(_) => Protocol::Proof,
            Request::GetSnapshot(_) => Protocol::Snapshot,
        }
    }
}

/// The response to a [`Request`] of the same protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Headers(HeadersResponse),
    Blocks(BlocksResponse),
    Proof(ProofResponse),
    Snapshot(SnapshotResponse),
}

impl Response {
    pub fn protocol(&self) -> Protocol {
        match self {
            Response::Headers(_) => Protocol::Headers,
            Response::Blocks(_) => Protocol::Blocks,
            Response::Proof(_) => Protocol::Proof,
            Response::Snapshot(_) => Protocol::Snapshot,
        }
    }

    /// The error response of `protocol`'s type, or `None` for Hello and Status (which the
    /// network answers itself).
    pub fn error(protocol: Protocol, error: ErrorResponse) -> Option<Response> {
        Some(match protocol {
            Protocol::Headers => Response::Headers(HeadersResponse::Error(error)),
            Protocol::Blocks => Response::Blocks(BlocksResponse::Error(error)),
            Protocol::Proof => Response::Proof(ProofResponse::Error(error)),
            Protocol::Snapshot => Response::Snapshot(SnapshotResponse::Error(error)),
            Protocol::Hello | Protocol::Status => return None,
        })
    }

    /// The error this response carries instead of a payload, if any.
    pub fn as_error(&self) -> Option<&ErrorResponse> {
        match self {
            Response::Headers(HeadersResponse::Error(e))
            | Response::Blocks(BlocksResponse::Error(e))
            | Response::Proof(ProofResponse::Error(e))
            | Response::Snapshot(SnapshotResponse::Error(e)) => Some(e),
            _ => None,
        }
    }

    /// Length of the canonical encoding (what the byte cap applies to).
    pub fn encoded_len(&self) -> usize {
        match self {
            Response::Headers(r) => r.encoded_len(),
            Response::Blocks(r) => r.encoded_len(),
            Response::Proof(r) => r.encoded_len(),
            Response::Snapshot(r) => r.encoded_len(),
        }
    }
}

/// The longest prefix of `items` whose encoding as a response payload (a `u32` count, the items,
/// and the response tag) fits in `max_bytes`. Responders use it to send fewer headers or blocks
/// than asked for rather than exceed [`limits::MAX_RESPONSE_BYTES`].
pub fn fit_to_response<T: Encode>(items: &[T], max_bytes: usize) -> usize {
    let mut used = 1 + 4;
    for (i, item) in items.iter().enumerate() {
        used += item.encoded_len();
        if used > max_bytes {
            return i;
        }
    }
    items.len()
}

#[cfg(test)]
pub(crate) mod test_util {
    use crate::chain::{Decode, DecodeError, Encode};
    use std::fmt::Debug;

    /// Asserts `decode(encode(v)) == v` and that every strict prefix and a trailing byte are
    /// rejected.
    pub fn round_trip<T: Encode + Decode + PartialEq + Debug>(v: &T) {
        let bytes = v.encode();
        assert_eq!(T::decode(&bytes).as_ref(), Ok(v));
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(T::decode(&longer), Err(DecodeError::TrailingBytes(1)));
        // Every truncation fails without panicking (checking all cuts of large values is slow).
        let step = (bytes.len() / 64).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            assert!(T::decode(&bytes[..cut]).is_err(), "prefix {cut} decoded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::round_trip;
    use super::*;
    use crate::chain::TrustedHeader;
    use crate::testkit::ChainBuilder;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn protocol_names_are_versioned_and_unique() {
        for p in Protocol::ALL {
            assert!(p.name().starts_with("/headway/1/"), "{p}");
            assert_eq!(Protocol::from_name(p.name()), Some(p));
            assert_eq!(Protocol::ALL[p.index()], p);
        }
        assert_eq!(Protocol::from_name("/headway/2/hello"), None);
    }

    #[test]
    fn error_codes_round_trip() {
        for code in ErrorCode::ALL {
            round_trip(&ErrorResponse::new(code, format!("because {code}")));
        }
    }

    #[test]
    fn rejects_unknown_error_code() {
        for tag in [0u8, 9, 255] {
            let mut w = Writer::new();
            w.u8(tag).str("x");
            assert_eq!(
                ErrorResponse::decode(w.as_bytes()),
                Err(DecodeError::InvalidTag {
                    what: "error code",
                    tag
                })
            );
        }
    }

    #[test]
    fn long_error_messages_are_cut_at_a_char_boundary() {
        let e = ErrorResponse::new(ErrorCode::Internal, "é".repeat(200));
        assert_eq!(e.message.len(), limits::MAX_ERROR_MESSAGE_LEN);
        round_trip(&e);
        let mut w = Writer::new();
        w.u8(1).str(&"a".repeat(limits::MAX_ERROR_MESSAGE_LEN + 1));
        assert!(matches!(
            ErrorResponse::decode(w.as_bytes()),
            Err(DecodeError::TooLong { .. })
        ));
    }

    #[test]
    fn decode_errors_map_to_codes() {
        let too_long = DecodeError::TooLong {
            what: "x",
            len: 2,
            max: 1,
        };
        assert_eq!(
            ErrorResponse::from_decode(&too_long).code,
            ErrorCode::TooLarge
        );
        assert_eq!(
            ErrorResponse::from_decode(&DecodeError::TrailingBytes(1)).code,
            ErrorCode::Malformed
        );
    }

    #[test]
    fn response_error_helpers_match_protocols() {
        let e = ErrorResponse::new(ErrorCode::NotFound, "no");
        for p in [
            Protocol::Headers,
            Protocol::Blocks,
            Protocol::Proof,
            Protocol::Snapshot,
        ] {
            let r = Response::error(p, e.clone()).unwrap();
            assert_eq!(r.protocol(), p);
            assert_eq!(r.as_error(), Some(&e));
        }
        assert_eq!(Response::error(Protocol::Hello, e), None);
    }

    #[test]
    fn fit_to_response_keeps_the_longest_fitting_prefix() {
        let headers: Vec<TrustedHeader> = ChainBuilder::new("fit", 4).headers(10);
        let one = headers[0].encode().len();
        assert_eq!(fit_to_response(&headers, usize::MAX), 10);
        assert_eq!(fit_to_response(&headers, 5 + 3 * one), 3);
        assert_eq!(fit_to_response(&headers, 5 + 3 * one - 1), 2);
        assert_eq!(fit_to_response(&headers, 4), 0);
        let r = HeadersResponse::Headers(headers[..3].to_vec());
        assert!(r.encode().len() <= 5 + 3 * one);
    }

    #[test]
    fn check_range_rejections() {
        assert!(check_range("r", 0, 1, 1).is_ok());
        assert!(matches!(
            check_range("r", 0, 2, 1),
            Err(DecodeError::TooLong { .. })
        ));
        assert!(matches!(
            check_range("r", 0, 0, 1),
            Err(DecodeError::Invalid { .. })
        ));
        assert!(matches!(
            check_range("r", u64::MAX, 1, 1),
            Err(DecodeError::Invalid { .. })
        ));
    }
}
