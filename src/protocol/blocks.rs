//! `/headway/1/blocks`: `GetBlocks { start, count }` → `Blocks(Vec<FinalizedBlock>)`.
//!
//! The response holds the finalized blocks of heights `start, start + 1, ...`, at most `count`
//! and at most [`MAX_BLOCKS_PER_REQUEST`]; fewer when the responder's chain ends or the
//! response would exceed [`MAX_RESPONSE_BYTES`](super::limits::MAX_RESPONSE_BYTES) (see
//! [`fit_to_response`](super::fit_to_response)).

use super::limits::MAX_BLOCKS_PER_REQUEST;
use super::{
    check_range, read_response_tag, ErrorResponse, Protocol, Rpc, RESPONSE_ERROR, RESPONSE_OK,
};
use crate::chain::{Decode, DecodeError, Encode, FinalizedBlock, Reader, Writer};

/// Asks for the finalized blocks of heights `start..start + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetBlocks {
    pub start: u64,
    /// 1 to [`MAX_BLOCKS_PER_REQUEST`].
    pub count: u32,
}

/// The response on `/headway/1/blocks`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlocksResponse {
    Blocks(Vec<FinalizedBlock>),
    Error(ErrorResponse),
}

/// Marker for the blocks protocol.
#[derive(Clone, Copy, Debug)]
pub struct BlocksRpc;

impl Rpc for BlocksRpc {
    const PROTOCOL: Protocol = Protocol::Blocks;
    type Request = GetBlocks;
    type Response = BlocksResponse;

    fn error(error: ErrorResponse) -> BlocksResponse {
        BlocksResponse::Error(error)
    }
}

impl Encode for GetBlocks {
    fn encode_to(&self, w: &mut Writer) {
        w.u64(self.start).u32(self.count);
    }
}

impl Decode for GetBlocks {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let req = GetBlocks {
            start: r.u64()?,
            count: r.u32()?,
        };
        check_range(
            "blocks request",
            req.start,
            req.count,
            MAX_BLOCKS_PER_REQUEST,
        )?;
        Ok(req)
    }
}

impl Encode for BlocksResponse {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            BlocksResponse::Blocks(b) => w.u8(RESPONSE_OK).seq(b),
            BlocksResponse::Error(e) => w.u8(RESPONSE_ERROR).value(e),
        };
    }
}

impl Decode for BlocksResponse {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(if read_response_tag(r, "blocks response")? {
            BlocksResponse::Blocks(r.seq("blocks", MAX_BLOCKS_PER_REQUEST as usize)?)
        } else {
            BlocksResponse::Error(ErrorResponse::decode_from(r)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::round_trip;
    use super::super::ErrorCode;
    use super::*;
    use crate::testkit::{self, ChainBuilder};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn blocks(n: usize) -> Vec<FinalizedBlock> {
        let mut chain = ChainBuilder::new("devnet", 4);
        let source = testkit::key(99);
        (0..n as u64)
            .map(|h| {
                let events = (0..h)
                    .map(|i| testkit::event(&source, h * 10 + i, 1))
                    .collect();
                let (block, trusted) = chain.next_block(events);
                FinalizedBlock {
                    block,
                    commit: trusted.commit,
                    next_validators: trusted.next_validators,
                }
            })
            .collect()
    }

    #[test]
    fn messages_round_trip() {
        round_trip(&GetBlocks {
            start: 1,
            count: MAX_BLOCKS_PER_REQUEST,
        });
        round_trip(&BlocksResponse::Blocks(blocks(3)));
        round_trip(&BlocksResponse::Error(ErrorResponse::new(
            ErrorCode::Unsupported,
            "pruned below 100",
        )));
    }

    #[test]
    fn rejects_bad_ranges() {
        let err = GetBlocks::decode(
            &GetBlocks {
                start: 0,
                count: MAX_BLOCKS_PER_REQUEST + 1,
            }
            .encode(),
        )
        .unwrap_err();
        assert!(matches!(err, DecodeError::TooLong { .. }));
        assert!(matches!(
            GetBlocks::decode(&GetBlocks { start: 0, count: 0 }.encode()),
            Err(DecodeError::Invalid { .. })
        ));
    }

    #[test]
    fn rejects_too_many_blocks_before_reading_them() {
        let mut w = Writer::new();
        w.u8(RESPONSE_OK).u32(MAX_BLOCKS_PER_REQUEST + 1);
        assert!(matches!(
            BlocksResponse::decode(w.as_bytes()),
            Err(DecodeError::TooLong { what: "blocks", .. })
        ));
    }
}
