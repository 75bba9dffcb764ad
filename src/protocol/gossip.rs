//! Gossip topics and their payloads.
//!
//! Each topic carries one payload type, so a message is just the payload's encoding (the topic
//! says how to decode it): a [`SignedEvent`] on `/headway/1/events`, a [`FinalizedBlock`] on
//! `/headway/1/finalized`, and opaque consensus bytes on `/headway/1/proposals` and
//! `/headway/1/votes` (the consensus layer defines and decodes them).

use std::fmt;

use super::limits::MAX_GOSSIP_BYTES;
use crate::chain::{Decode, DecodeError, Encode, FinalizedBlock, SignedEvent};

/// The gossip topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    Events,
    Proposals,
    Votes,
    Finalized,
}

impl Topic {
    pub const ALL: [Topic; 4] = [
        Topic::Events,
        Topic::Proposals,
        Topic::Votes,
        Topic::Finalized,
    ];

    /// The versioned topic name.
    pub const fn name(self) -> &'static str {
        match self {
            Topic::Events => "/headway/1/events",
            Topic::Proposals => "/headway/1/proposals",
            Topic::Votes => "/headway/1/votes",
            Topic::Finalized => "/headway/1/finalized",
        }
    }

    pub fn from_name(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A gossip message, typed by its topic.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // moved once from the network to the node
pub enum GossipMessage {
    /// A new audit event for the mempool.
    Event(SignedEvent),
    /// A consensus proposal (opaque here).
    Proposal(Vec<u8>),
    /// A consensus vote (opaque here).
    Vote(Vec<u8>),
    /// A block with the commit that finalizes it.
    Finalized(FinalizedBlock),
}

impl GossipMessage {
    pub fn topic(&self) -> Topic {
        match self {
            GossipMessage::Event(_) => Topic::Events,
            GossipMessage::Proposal(_) => Topic::Proposals,
            GossipMessage::Vote(_) => Topic::Votes,
            GossipMessage::Finalized(_) => Topic::Finalized,
        }
    }

    /// The payload bytes: the canonical encoding, or the consensus bytes as they are.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            GossipMessage::Event(e) => e.encode(),
            GossipMessage::Proposal(b) | GossipMessage::Vote(b) => b.clone(),
            GossipMessage::Finalized(b) => b.encode(),
        }
    }

    /// Decodes a payload received on `topic`: at most [`MAX_GOSSIP_BYTES`], and for typed
    /// topics the strict canonical encoding. Consensus payloads must not be empty.
    pub fn decode(topic: Topic, bytes: &[u8]) -> Result<GossipMessage, DecodeError> {
        if bytes.len() > MAX_GOSSIP_BYTES {
            return Err(DecodeError::TooLong {
                what: "gossip message",
                len: bytes.len() as u64,
                max: MAX_GOSSIP_BYTES as u64,
            });
        }
        let opaque = |bytes: &[u8]| {
            if bytes.is_empty() {
                Err(DecodeError::Invalid {
                    what: "consensus message",
                    reason: "empty".into(),
                })
            } else {
                Ok(bytes.to_vec())
            }
        };
        Ok(match topic {
            Topic::Events => GossipMessage::Event(SignedEvent::decode(bytes)?),
            Topic::Proposals => GossipMessage::Proposal(opaque(bytes)?),
            Topic::Votes => GossipMessage::Vote(opaque(bytes)?),
            Topic::Finalized => GossipMessage::Finalized(FinalizedBlock::decode(bytes)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, ChainBuilder};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn finalized() -> FinalizedBlock {
        let mut chain = ChainBuilder::new("devnet", 4);
        let source = testkit::key(7);
        let (block, trusted) = chain.next_block(vec![testkit::event(&source, 1, 5)]);
        FinalizedBlock {
            block,
            commit: trusted.commit,
            next_validators: trusted.next_validators,
        }
    }

    #[test]
    fn topic_names_are_versioned_and_unique() {
        for t in Topic::ALL {
            assert!(t.name().starts_with("/headway/1/"));
            assert_eq!(Topic::from_name(t.name()), Some(t));
        }
        assert_eq!(Topic::from_name("/headway/1/hello"), None);
    }

    #[test]
    fn messages_round_trip_on_their_topic() {
        let source = testkit::key(7);
        for m in [
            GossipMessage::Event(testkit::event(&source, 3, 9)),
            GossipMessage::Proposal(vec![1, 2, 3]),
            GossipMessage::Vote(vec![4]),
            GossipMessage::Finalized(finalized()),
        ] {
            let bytes = m.to_bytes();
            assert_eq!(GossipMessage::decode(m.topic(), &bytes), Ok(m.clone()));
            let mut longer = bytes.clone();
            longer.push(0);
            if matches!(m.topic(), Topic::Events | Topic::Finalized) {
                assert_eq!(
                    GossipMessage::decode(m.topic(), &longer),
                    Err(DecodeError::TrailingBytes(1))
                );
                assert!(GossipMessage::decode(m.topic(), &bytes[..bytes.len() - 1]).is_err());
            }
        }
    }

    #[test]
    fn rejects_payloads_on_the_wrong_topic_empty_or_oversized() {
        let block = GossipMessage::Finalized(finalized()).to_bytes();
        assert!(GossipMessage::decode(Topic::Events, &block).is_err());
        assert!(matches!(
            GossipMessage::decode(Topic::Votes, &[]),
            Err(DecodeError::Invalid { .. })
        ));
        assert!(matches!(
            GossipMessage::decode(Topic::Proposals, &vec![0; MAX_GOSSIP_BYTES + 1]),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
