//! `/headway/1/headers`: `GetHeaders { start, count }` → `Headers(Vec<TrustedHeader>)`.
//!
//! The response holds the trusted headers of heights `start, start + 1, ...`, at most `count`
//! and at most [`MAX_HEADERS_PER_REQUEST`]; fewer when the responder's chain ends or the
//! response would exceed [`MAX_RESPONSE_BYTES`](super::limits::MAX_RESPONSE_BYTES) (see
//! [`fit_to_response`](super::fit_to_response)). An empty list means the responder has none
//! of them. The requester verifies every header.

use super::limits::MAX_HEADERS_PER_REQUEST;
use super::{
    check_range, read_response_tag, ErrorResponse, Protocol, Rpc, RESPONSE_ERROR, RESPONSE_OK,
};
use crate::chain::{Decode, DecodeError, Encode, Reader, TrustedHeader, Writer};

/// Asks for the trusted headers of heights `start..start + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetHeaders {
    pub start: u64,
    /// 1 to [`MAX_HEADERS_PER_REQUEST`].
    pub count: u32,
}

/// The response on `/headway/1/headers`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadersResponse {
    Headers(Vec<TrustedHeader>),
    Error(ErrorResponse),
}

/// Marker for the headers protocol.
#[derive(Clone, Copy, Debug)]
pub struct HeadersRpc;

impl Rpc for HeadersRpc {
    const PROTOCOL: Protocol = Protocol::Headers;
    type Request = GetHeaders;
    type Response = HeadersResponse;

    fn error(error: ErrorResponse) -> HeadersResponse {
        HeadersResponse::Error(error)
    }
}

impl Encode for GetHeaders {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(self.start).u32(self.count);
    }
}

impl Decode for GetHeaders {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let req = GetHeaders {
            start: r.u64()?,
            count: r.u32()?,
        };
        check_range(
            "headers request",
            req.start,
            req.count,
            MAX_HEADERS_PER_REQUEST,
        )?;
        Ok(req)
    }
}

impl Encode for HeadersResponse {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            HeadersResponse::Headers(h) => w.u8(RESPONSE_OK).seq(h),
            HeadersResponse::Error(e) => w.u8(RESPONSE_ERROR).value(e),
        };
    }
}

impl Decode for HeadersResponse {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(if read_response_tag(r, "headers response")? {
            HeadersResponse::Headers(r.seq("headers", MAX_HEADERS_PER_REQUEST as usize)?)
        } else {
            HeadersResponse::Error(ErrorResponse::decode_from(r)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::round_trip;
    use super::super::ErrorCode;
    use super::*;
    use crate::testkit::ChainBuilder;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn messages_round_trip() {
        round_trip(&GetHeaders {
            start: 5,
            count: MAX_HEADERS_PER_REQUEST,
        });
        let mut chain = ChainBuilder::new("devnet", 4).hand_over_at(3, crate::testkit::keys(10, 3));
        round_trip(&HeadersResponse::Headers(chain.headers(5)));
        round_trip(&HeadersResponse::Headers(Vec::new()));
        round_trip(&HeadersResponse::Error(ErrorResponse::new(
            ErrorCode::NotFound,
            "pruned",
        )));
    }

    #[test]
    fn rejects_bad_ranges() {
        let too_many = GetHeaders {
            start: 0,
            count: MAX_HEADERS_PER_REQUEST + 1,
        };
        let err = GetHeaders::decode(&too_many.encode()).unwrap_err();
        assert!(matches!(err, DecodeError::TooLong { .. }));
        assert_eq!(ErrorResponse::from_decode(&err).code, ErrorCode::TooLarge);
        assert!(matches!(
            GetHeaders::decode(&GetHeaders { start: 0, count: 0 }.encode()),
            Err(DecodeError::Invalid { .. })
        ));
        assert!(matches!(
            GetHeaders::decode(
                &GetHeaders {
                    start: u64::MAX,
                    count: 2
                }
                .encode()
            ),
            Err(DecodeError::Invalid { .. })
        ));
    }

    #[test]
    fn rejects_too_many_headers_before_reading_them() {
        let mut w = Writer::new();
        w.u8(RESPONSE_OK).u32(MAX_HEADERS_PER_REQUEST + 1);
        assert!(matches!(
            HeadersResponse::decode(w.as_bytes()),
            Err(DecodeError::TooLong {
                what: "headers",
                ..
            })
        ));
    }
}
