//! `/headway/1/hello`: the handshake both sides run on every new connection.
//!
//! Each side sends a [`Hello`] request carrying its chain, head and node key and a fresh 32-byte
//! nonce. The responder checks it with [`check_hello`] and answers either a [`HelloAck`] (its own
//! [`HandshakeInfo`] and a signature by its node key over
//! `hash(Domain::Handshake, requester nonce ‖ encode(responder info))`) or an error
//! (`WrongChain`, `IncompatibleVersion`) with the reason. The requester checks the ack with
//! [`verify_ack`]. A peer is handshaken once its Hello was accepted and its ack verified.
//!
//! The nonce binds the ack to this handshake (an old ack cannot be replayed), the domain keeps
//! the signature from ever being read as a vote or an event signature, and the network layer
//! checks that the node key is the key the transport authenticated (the libp2p peer id).

use super::{
    read_response_tag, ErrorCode, ErrorResponse, Protocol, Rpc, RESPONSE_ERROR, RESPONSE_OK,
};
use crate::chain::{hash, ChainId, Decode, DecodeError, Domain, Encode, Hash, Reader, Writer};
use crate::crypto::ed25519::{self, PublicKey, Signature, SignatureError, SigningKey};

/// Length of a handshake nonce.
pub const NONCE_LEN: usize = 32;

/// What a node says about itself in a handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeInfo {
    /// [`super::WIRE_VERSION`] of the sender.
    pub protocol_version: u32,
    pub chain_id: ChainId,
    /// Hash of the chain's genesis block.
    pub genesis_hash: Hash,
    pub head_height: u64,
    pub head_hash: Hash,
    /// The node's ed25519 libp2p identity key.
    pub node_key: PublicKey,
}

/// The handshake request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub info: HandshakeInfo,
    /// Fresh random bytes that the responder's ack signs.
    pub nonce: [u8; NONCE_LEN],
}

/// The accepting answer to a [`Hello`]: the responder's own info, signed together with the
/// requester's nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelloAck {
    pub info: HandshakeInfo,
    pub signature: Signature,
}

/// The response on `/headway/1/hello`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one per connection; boxing would only add noise
pub enum HelloResponse {
    Ack(HelloAck),
    Error(ErrorResponse),
}

/// Marker for the hello protocol.
#[derive(Clone, Copy, Debug)]
pub struct HelloRpc;

impl Rpc for HelloRpc {
    const PROTOCOL: Protocol = Protocol::Hello;
    type Request = Hello;
    type Response = HelloResponse;

    fn error(error: ErrorResponse) -> HelloResponse {
        HelloResponse::Error(error)
    }
}

/// Why a handshake fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("incompatible protocol version: we speak {ours}, the peer {theirs}")]
    IncompatibleVersion { ours: u32, theirs: u32 },
    #[error("wrong chain: we follow {ours}, the peer {theirs}")]
    WrongChain { ours: ChainId, theirs: ChainId },
    #[error("wrong genesis: ours is {ours}, the peer's {theirs}")]
    WrongGenesis { ours: Hash, theirs: Hash },
    #[error("the ack's signature does not verify: {0}")]
    BadSignature(#[from] SignatureError),
}

impl HandshakeError {
    /// The error code to answer with.
    pub fn code(&self) -> ErrorCode {
        match self {
            HandshakeError::IncompatibleVersion { .. } => ErrorCode::IncompatibleVersion,
            HandshakeError::WrongChain { .. } | HandshakeError::WrongGenesis { .. } => {
                ErrorCode::WrongChain
            }
            HandshakeError::BadSignature(_) => ErrorCode::Malformed,
        }
    }

    /// The error response carrying this reason.
    pub fn to_response(&self) -> ErrorResponse {
        ErrorResponse::new(self.code(), self.to_string())
    }
}

/// Checks that a peer's info is compatible with ours: same protocol version, chain id and
/// genesis.
pub fn check_hello(ours: &HandshakeInfo, theirs: &HandshakeInfo) -> Result<(), HandshakeError> {
    if ours.protocol_version != theirs.protocol_version {
        return Err(HandshakeError::IncompatibleVersion {
            ours: ours.protocol_version,
            theirs: theirs.protocol_version,
        });
    }
    if ours.chain_id != theirs.chain_id {
        return Err(HandshakeError::WrongChain {
            ours: ours.chain_id.clone(),
            theirs: theirs.chain_id.clone(),
        });
    }
    if ours.genesis_hash != theirs.genesis_hash {
        return Err(HandshakeError::WrongGenesis {
            ours: ours.genesis_hash,
            theirs: theirs.genesis_hash,
        });
    }
    Ok(())
}

/// The digest an ack signs: `hash(Domain::Handshake, requester nonce ‖ encode(responder info))`.
pub fn ack_digest(requester_nonce: &[u8; NONCE_LEN], responder: &HandshakeInfo) -> Hash {
    let mut w = Writer::with_capacity(256);
    w.raw(requester_nonce).value(responder);
    hash(Domain::Handshake, w.as_bytes())
}

/// Answers `hello` with our info, signed by our node key. `ours.node_key` must be `key`'s
/// public key.
pub fn sign_ack(key: &SigningKey, hello: &Hello, ours: HandshakeInfo) -> HelloAck {
    debug_assert_eq!(
        ours.node_key,
        key.public_key(),
        "ack info names another key"
    );
    let signature = key.sign(ack_digest(&hello.nonce, &ours).as_bytes());
    HelloAck {
        info: ours,
        signature,
    }
}

/// Checks the ack to the `hello` we sent: the responder's info is compatible with ours and its
/// node key signed our nonce. (The caller checks the node key against the transport's peer id.)
pub fn verify_ack(hello_sent: &Hello, ack: &HelloAck) -> Result<(), HandshakeError> {
    check_hello(&hello_sent.info, &ack.info)?;
    ed25519::verify(
        &ack.info.node_key,
        ack_digest(&hello_sent.nonce, &ack.info).as_bytes(),
        &ack.signature,
    )?;
    Ok(())
}

impl Encode for HandshakeInfo {
    fn encode_to(&self, w: &mut Writer) {
        w.u32(self.protocol_version)
            .value(&self.chain_id)
            .hash(&self.genesis_hash)
            .u64(self.head_height)
            .hash(&self.head_hash)
            .value(&self.node_key);
    }
}

impl Decode for HandshakeInfo {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(HandshakeInfo {
            protocol_version: r.u32()?,
            chain_id: ChainId::decode_from(r)?,
            genesis_hash: r.hash()?,
            head_height: r.u64()?,
            head_hash: r.hash()?,
            node_key: PublicKey::decode_from(r)?,
        })
    }
}

impl Encode for Hello {
    fn encode_to(&self, w: &mut Writer) {
        w.value(&self.info).raw(&self.nonce);
    }
}

impl Decode for Hello {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Hello {
            info: HandshakeInfo::decode_from(r)?,
            nonce: r.array()?,
        })
    }
}

impl Encode for HelloAck {
    fn encode_to(&self, w: &mut Writer) {
        w.value(&self.info).value(&self.signature);
    }
}

impl Decode for HelloAck {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(HelloAck {
            info: HandshakeInfo::decode_from(r)?,
            signature: Signature::decode_from(r)?,
        })
    }
}

impl Encode for HelloResponse {
    fn encode_to(&self, w: &mut Writer) {
        match self {
            HelloResponse::Ack(ack) => w.u8(RESPONSE_OK).value(ack),
            HelloResponse::Error(e) => w.u8(RESPONSE_ERROR).value(e),
        };
    }
}

impl Decode for HelloResponse {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(if read_response_tag(r, "hello response")? {
            HelloResponse::Ack(HelloAck::decode_from(r)?)
        } else {
            HelloResponse::Error(ErrorResponse::decode_from(r)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::round_trip;
    use super::super::WIRE_VERSION;
    use super::*;
    use crate::testkit;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn info(key: &SigningKey, chain: &str) -> HandshakeInfo {
        HandshakeInfo {
            protocol_version: WIRE_VERSION,
            chain_id: ChainId::new(chain).unwrap(),
            genesis_hash: Hash([7; 32]),
            head_height: 42,
            head_hash: Hash([9; 32]),
            node_key: key.public_key(),
        }
    }

    fn hello(key: &SigningKey) -> Hello {
        Hello {
            info: info(key, "devnet"),
            nonce: [5; NONCE_LEN],
        }
    }

    #[test]
    fn messages_round_trip() {
        let a = testkit::key(1);
        let b = testkit::key(2);
        let h = hello(&a);
        round_trip(&h);
        let ack = sign_ack(&b, &h, info(&b, "devnet"));
        round_trip(&ack);
        round_trip(&HelloResponse::Ack(ack));
        round_trip(&HelloResponse::Error(
            HandshakeError::IncompatibleVersion { ours: 1, theirs: 2 }.to_response(),
        ));
    }

    #[test]
    fn a_signed_ack_verifies() {
        let a = testkit::key(1);
        let b = testkit::key(2);
        let h = hello(&a);
        let ack = sign_ack(&b, &h, info(&b, "devnet"));
        assert_eq!(verify_ack(&h, &ack), Ok(()));
    }

    #[test]
    fn rejects_an_ack_for_another_nonce() {
        let a = testkit::key(1);
        let b = testkit::key(2);
        let h = hello(&a);
        let mut other = h.clone();
        other.nonce[0] ^= 1;
        let ack = sign_ack(&b, &other, info(&b, "devnet"));
        assert!(matches!(
            verify_ack(&h, &ack),
            Err(HandshakeError::BadSignature(_))
        ));
    }

    #[test]
    fn rejects_an_ack_with_altered_fields_or_another_key() {
        let a = testkit::key(1);
        let b = testkit::key(2);
        let h = hello(&a);
        let mut ack = sign_ack(&b, &h, info(&b, "devnet"));
        ack.info.head_height += 1;
        assert!(matches!(
            verify_ack(&h, &ack),
            Err(HandshakeError::BadSignature(_))
        ));
        let mut ack = sign_ack(&b, &h, info(&b, "devnet"));
        ack.info.node_key = testkit::key(3).public_key();
        assert!(matches!(
            verify_ack(&h, &ack),
            Err(HandshakeError::BadSignature(_))
        ));
    }

    #[test]
    fn rejects_wrong_chain_genesis_and_version() {
        let a = testkit::key(1);
        let b = testkit::key(2);
        let ours = info(&a, "devnet");
        let theirs = info(&b, "othernet");
        let err = check_hello(&ours, &theirs).unwrap_err();
        assert_eq!(
            err,
            HandshakeError::WrongChain {
                ours: ours.chain_id.clone(),
                theirs: theirs.chain_id.clone()
            }
        );
        assert_eq!(err.code(), ErrorCode::WrongChain);
        assert!(err.to_response().message.contains("othernet"));

        let mut theirs = info(&b, "devnet");
        theirs.genesis_hash = Hash([8; 32]);
        let err = check_hello(&ours, &theirs).unwrap_err();
        assert!(matches!(err, HandshakeError::WrongGenesis { .. }));
        assert_eq!(err.code(), ErrorCode::WrongChain);

        let mut theirs = info(&b, "devnet");
        theirs.protocol_version = 2;
        let err = check_hello(&ours, &theirs).unwrap_err();
        assert_eq!(
            err,
            HandshakeError::IncompatibleVersion { ours: 1, theirs: 2 }
        );
        assert_eq!(err.code(), ErrorCode::IncompatibleVersion);

        // verify_ack applies the same checks to the responder's info.
        let h = hello(&a);
        let ack = sign_ack(&b, &h, info(&b, "othernet"));
        assert!(matches!(
            verify_ack(&h, &ack),
            Err(HandshakeError::WrongChain { .. })
        ));
    }

    #[test]
    fn the_digest_is_domain_separated() {
        let a = testkit::key(1);
        let i = info(&a, "devnet");
        let mut w = Writer::new();
        w.raw(&[5; NONCE_LEN]).value(&i);
        assert_eq!(
            ack_digest(&[5; NONCE_LEN], &i),
            hash(Domain::Handshake, w.as_bytes())
        );
        assert_ne!(
            ack_digest(&[5; NONCE_LEN], &i),
            hash(Domain::Vote, w.as_bytes())
        );
    }

    #[test]
    fn rejects_malformed_encodings() {
        let a = testkit::key(1);
        let h = hello(&a);
        // An invalid chain id.
        let mut w = Writer::new();
        w.u32(1).str("UPPER");
        assert!(matches!(
            HandshakeInfo::decode(w.as_bytes()),
            Err(DecodeError::Invalid { .. })
        ));
        // A node key that is not a valid point (all 0xff is not canonical).
        let mut bytes = h.encode();
        let key_at = bytes.len() - NONCE_LEN - 32;
        bytes[key_at..key_at + 32].fill(0xff);
        assert!(matches!(
            Hello::decode(&bytes),
            Err(DecodeError::Invalid {
                what: "public key",
                ..
            })
        ));
        // An unknown response tag.
        assert_eq!(
            HelloResponse::decode(&[2]),
            Err(DecodeError::InvalidTag {
                what: "hello response",
                tag: 2
            })
        );
        // A hello fits the request cap.
        assert!(h.encode().len() <= Protocol::Hello.max_request_bytes());
    }
}
