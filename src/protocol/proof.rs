//! `/headway/1/proof`: `GetProof { event_id, at_height }` → `Proof(Option<EventProof>)`.
//!
//! The proof shows the event in its block and, when `at_height` is later than the event's
//! block, that block in the chain whose header at `at_height` the requester trusts. Without
//! `at_height` the responder proves against its head. `Proof(None)` means the responder does not
//! know the event.

use super::{read_response_tag, ErrorResponse, Protocol, Rpc, RESPONSE_ERROR, RESPONSE_OK};
use crate::chain::{Decode, DecodeError, Encode, EventId, Reader, Writer};
use crate::proof::EventProof;

/// Asks for a proof of the event `event_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetProof {
    pub event_id: EventId,
    /// The height of the header to prove against; `None` for the responder's head.
    pub at_height: Option<u64>,
}

/// The response on `/headway/1/proof`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofResponse {
    /// Boxed: a proof is large next to an error.
    Proof(Option<Box<EventProof>>),
    Error(ErrorResponse),
}

/// Marker for the proof protocol.
#[derive(Clone, Copy, Debug)]
pub struct ProofRpc;

impl Rpc for ProofRpc {
    const PROTOCOL: Protocol = Protocol::Proof;
    type Request = GetProof;
    type Response = ProofResponse;

    fn error(error: ErrorResponse) -> ProofResponse {
        ProofResponse::Error(error)
    }
}

impl Encode for GetProof {
    fn encode_to(&self, w: &mut Writer) {
        w.hash(&self.event_id).option(self.at_height.as_ref());
    }
}

impl Decode for GetProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(GetProof {
            event_id: r.hash()?,
            at_height: r.option("proof height")?,
        })
    }
}

impl Encode for ProofResponse {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            ProofResponse::Proof(p) => w.u8(RESPONSE_OK).option(p.as_deref()),
            ProofResponse::Error(e) => w.u8(RESPONSE_ERROR).value(e),
        };
    }
}

impl Decode for ProofResponse {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(if read_response_tag(r, "proof response")? {
            ProofResponse::Proof(r.option::<EventProof>("event proof")?.map(Box::new))
        } else {
            ProofResponse::Error(ErrorResponse::decode_from(r)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::round_trip;
    use super::super::ErrorCode;
    use super::*;
    use crate::chain::Hash;
    use crate::testkit::{self, ChainBuilder};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn proof() -> EventProof {
        let mut chain = ChainBuilder::new("devnet", 4);
        let source = testkit::key(50);
        let events = (0..5).map(|i| testkit::event(&source, i, 1)).collect();
        let (block, _) = chain.next_block(events);
        chain.headers(3);
        EventProof::build(&block, 2, chain.mmr(), 3).unwrap()
    }

    #[test]
    fn messages_round_trip() {
        round_trip(&GetProof {
            event_id: Hash([3; 32]),
            at_height: Some(7),
        });
        round_trip(&GetProof {
            event_id: Hash([3; 32]),
            at_height: None,
        });
        round_trip(&ProofResponse::Proof(Some(Box::new(proof()))));
        round_trip(&ProofResponse::Proof(None));
        round_trip(&ProofResponse::Error(ErrorResponse::new(
            ErrorCode::NotFound,
            "height 7 is pruned",
        )));
    }

    #[test]
    fn rejects_bad_option_tags() {
        let mut bytes = GetProof {
            event_id: Hash([3; 32]),
            at_height: None,
        }
        .encode();
        *bytes.last_mut().unwrap() = 2;
        assert!(matches!(
            GetProof::decode(&bytes),
            Err(DecodeError::InvalidTag {
                what: "proof height",
                tag: 2
            })
        ));
        assert!(matches!(
            ProofResponse::decode(&[RESPONSE_OK, 3]),
            Err(DecodeError::InvalidTag {
                what: "event proof",
                tag: 3
            })
        ));
    }
}
