//! Gossip: gossipsub (with identify) in the native build; nothing in the browser.
//!
//! Gossip is how full nodes spread events, proposals, votes and finalized blocks. A light
//! client needs none of it: it follows the head from the `Status` that full nodes push to
//! every peer their gossip does not reach (see `Network::set_status`), then fetches the
//! headers, which is less traffic than a finalized block (events included, up to 4 MiB) per
//! height. Leaving gossipsub, its protobuf codec and identify out of the wasm build saved 102 of
//! 678 KiB gzipped (BENCHMARKS.md, issue 4). The native light client (`headway light`)
//! runs the same code as the browser: it subscribes to no topic, so it follows by `Status` too.
//!
//! Both builds offer the same small API ([`Gossip`], [`Received`], [`Validation`]), so the
//! network's driver has no `cfg` of its own.

use libp2p::PeerId;

pub use imp::{Gossip, GossipEvent, MessageId};

/// What the network decided about a received message; gossipsub forwards only accepted ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    Accept,
    /// Invalid: the sender is penalized by gossipsub too.
    Reject,
    /// Not forwarded, nobody penalized (e.g. the sender's handshake failed).
    Ignore,
}

/// One received gossip message, before decoding.
pub struct Received {
    /// The peer that sent it to us.
    pub propagation_source: PeerId,
    pub message_id: MessageId,
    /// The topic's name as sent (unknown names are the sender's fault).
    pub topic: String,
    pub data: Vec<u8>,
    /// The publisher, when the message is signed.
    pub source: Option<PeerId>,
}

/// Why publishing failed, as gossipsub says it.
pub enum PublishFailure {
    NoPeers,
    Duplicate,
    TooLarge,
    Other(String),
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::time::Duration;

    use libp2p::identity::Keypair;
    use libp2p::swarm::NetworkBehaviour;
    use libp2p::{gossipsub, identify, PeerId};

    use super::{PublishFailure, Received, Validation};
    use crate::protocol::limits::MAX_GOSSIP_BYTES;
    use crate::protocol::Topic;

    pub use gossipsub::MessageId;

    /// The identify protocol version string.
    const IDENTIFY_PROTOCOL_VERSION: &str = "/headway/1";

    /// Room for gossipsub's own framing (signature, key, topic, sequence number) on top of the
    /// payload.
    const GOSSIP_FRAMING_BYTES: usize = 4 * 1024;

    /// Gossipsub, and identify (which only tells peers our agent and listen addresses: it
    /// serves operators' tools, not the protocol).
    #[derive(NetworkBehaviour)]
    #[behaviour(to_swarm = "GossipEvent")]
    pub struct Gossip {
        identify: identify::Behaviour,
        gossipsub: gossipsub::Behaviour,
    }

    /// What the gossip behaviour reports to the swarm.
    #[derive(Debug)]
    #[allow(clippy::large_enum_variant)] // each event is moved once, to the driver
    pub enum GossipEvent {
        Gossipsub(gossipsub::Event),
        Identify,
    }

    impl From<gossipsub::Event> for GossipEvent {
        fn from(event: gossipsub::Event) -> Self {
            GossipEvent::Gossipsub(event)
        }
    }

    impl From<identify::Event> for GossipEvent {
        fn from(_: identify::Event) -> Self {
            GossipEvent::Identify
        }
    }

    /// The gossipsub message id. For events and finalized blocks it is the BLAKE3 hash of the
    /// payload, so the same block published by every node that stored it is one message. For
    /// proposals and votes it also covers the publisher's sequence number: consensus re-sends
    /// its own messages when gossip may have lost them (`rebroadcast_ms`), and a content-only
    /// id would make gossipsub drop every re-send as a duplicate.
    fn message_id(message: &gossipsub::Message) -> MessageId {
        let consensus = [Topic::Proposals, Topic::Votes]
            .iter()
            .any(|t| topic(*t).hash() == message.topic);
        let mut h = blake3::Hasher::new();
        h.update(&message.data);
        if consensus {
            h.update(&message.sequence_number.unwrap_or(0).to_le_bytes());
        }
        MessageId::from(h.finalize().as_bytes().to_vec())
    }

    fn topic(topic: Topic) -> gossipsub::IdentTopic {
        gossipsub::IdentTopic::new(topic.name())
    }

    impl Gossip {
        /// Gossip subscribed to `topics` (a full node: every topic). Messages are signed and
        /// checked strictly, and held until the network validates them.
        pub fn new(
            keypair: &Keypair,
            heartbeat: Duration,
            topics: &[Topic],
        ) -> Result<Gossip, String> {
            let config = gossipsub::ConfigBuilder::default()
                .validation_mode(gossipsub::ValidationMode::Strict)
                .message_id_fn(message_id)
                .validate_messages()
                .max_transmit_size(MAX_GOSSIP_BYTES + GOSSIP_FRAMING_BYTES)
                .heartbeat_interval(heartbeat)
                .build()
                .map_err(|e| format!("gossipsub config: {e}"))?;
            let mut gossipsub = gossipsub::Behaviour::new(
                gossipsub::MessageAuthenticity::Signed(keypair.clone()),
                config,
            )
            .map_err(|e| format!("gossipsub: {e}"))?;
            for &t in topics {
                gossipsub
                    .subscribe(&topic(t))
                    .map_err(|e| format!("subscribe to {t}: {e}"))?;
            }
            let identify = identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL_VERSION.into(), keypair.public())
                    .with_agent_version(format!("headway/{}", env!("CARGO_PKG_VERSION"))),
            );
            Ok(Gossip {
                identify,
                gossipsub,
            })
        }

        /// The message in `event`, if it is one.
        pub fn received(event: GossipEvent) -> Option<Received> {
            match event {
                GossipEvent::Gossipsub(gossipsub::Event::Message {
                    propagation_source,
                    message_id,
                    message,
                }) => Some(Received {
                    propagation_source,
                    message_id,
                    topic: message.topic.into_string(),
                    data: message.data,
                    source: message.source,
                }),
                _ => None,
            }
        }

        pub fn publish(&mut self, t: Topic, data: Vec<u8>) -> Result<(), PublishFailure> {
            use gossipsub::PublishError as E;
            self.gossipsub
                .publish(topic(t), data)
                .map(|_| ())
                .map_err(|e| match e {
                    E::NoPeersSubscribedToTopic => PublishFailure::NoPeers,
                    E::Duplicate => PublishFailure::Duplicate,
                    E::MessageTooLarge => PublishFailure::TooLarge,
                    other => PublishFailure::Other(other.to_string()),
                })
        }

        pub fn validate(&mut self, id: &MessageId, from: &PeerId, validation: Validation) {
            let acceptance = match validation {
                Validation::Accept => gossipsub::MessageAcceptance::Accept,
                Validation::Reject => gossipsub::MessageAcceptance::Reject,
                Validation::Ignore => gossipsub::MessageAcceptance::Ignore,
            };
            let _ = self
                .gossipsub
                .report_message_validation_result(id, from, acceptance);
        }

        pub fn blacklist(&mut self, peer: &PeerId) {
            self.gossipsub.blacklist_peer(peer);
        }

        pub fn unblacklist(&mut self, peer: &PeerId) {
            self.gossipsub.remove_blacklisted_peer(peer);
        }

        /// Whether `peer` is subscribed to `t`, so that what we publish there reaches it.
        pub fn reaches(&self, peer: &PeerId, t: Topic) -> bool {
            let hash = topic(t).hash();
            self.gossipsub
                .all_peers()
                .any(|(p, topics)| p == peer && topics.contains(&&hash))
        }
    }
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use std::time::Duration;

    use libp2p::identity::Keypair;
    use libp2p::swarm::{dummy, NetworkBehaviour};
    use libp2p::PeerId;

    use super::{PublishFailure, Received, Validation};
    use crate::protocol::Topic;

    /// No gossip in the browser: a behaviour that opens and accepts no stream.
    #[derive(NetworkBehaviour)]
    #[behaviour(to_swarm = "GossipEvent")]
    pub struct Gossip {
        none: dummy::Behaviour,
    }

    /// Never constructed: nothing is gossiped to the browser.
    #[derive(Debug)]
    pub enum GossipEvent {}

    impl From<std::convert::Infallible> for GossipEvent {
        fn from(never: std::convert::Infallible) -> Self {
            match never {}
        }
    }

    /// Never constructed, like [`GossipEvent`].
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum MessageId {}

    impl Gossip {
        /// Subscribing is refused: the browser build has no gossip.
        pub fn new(
            _keypair: &Keypair,
            _heartbeat: Duration,
            topics: &[Topic],
        ) -> Result<Gossip, String> {
            match topics.first() {
                Some(t) => Err(format!("cannot subscribe to {t}: no gossip in this build")),
                None => Ok(Gossip {
                    none: dummy::Behaviour,
                }),
            }
        }

        pub fn received(event: GossipEvent) -> Option<Received> {
            match event {}
        }

        pub fn publish(&mut self, _t: Topic, _data: Vec<u8>) -> Result<(), PublishFailure> {
            Err(PublishFailure::Other("no gossip in this build".into()))
        }

        pub fn validate(&mut self, id: &MessageId, _from: &PeerId, _validation: Validation) {
            match *id {}
        }

        pub fn blacklist(&mut self, _peer: &PeerId) {}

        pub fn unblacklist(&mut self, _peer: &PeerId) {}

        pub fn reaches(&self, _peer: &PeerId, _t: Topic) -> bool {
            false
        }
    }
}
