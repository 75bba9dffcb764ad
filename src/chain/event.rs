//! Audit events: what the chain records.

use serde::{Deserialize, Serialize};

use super::encoding::{Decode, DecodeError, Encode, Reader, Writer};
use super::hash::{hash, Domain, Hash};
use crate::crypto::ed25519::{self, PublicKey, Signature, SigningKey};

/// The id of an event: `hash(Domain::Event, encode(signed event))`.
pub type EventId = Hash;

pub const MAX_KIND_LEN: usize = 64;
pub const MAX_ACTOR_LEN: usize = 256;
pub const MAX_RESOURCE_LEN: usize = 512;
pub const MAX_METADATA_LEN: usize = 16 * 1024;

/// How the audited action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
    Error,
}

impl Outcome {
    fn tag(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Failure => 1,
            Outcome::Denied => 2,
            Outcome::Error => 3,
        }
    }

    fn from_tag(tag: u8) -> Option<Outcome> {
        Some(match tag {
            0 => Outcome::Success,
            1 => Outcome::Failure,
            2 => Outcome::Denied,
            3 => Outcome::Error,
            _ => return None,
        })
    }
}

/// One audited action, as its source states it (before signing).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// What happened, e.g. `user.login` (1–64 bytes of `a-z 0-9 . _ - : /`).
    pub kind: String,
    /// Who did it (1–256 bytes of UTF-8, no control characters).
    pub actor: String,
    /// What it was done to (1–512 bytes of UTF-8, no control characters).
    pub resource: String,
    pub outcome: Outcome,
    /// Opaque application data (at most 16 KiB).
    #[serde(with = "hex_bytes")]
    pub metadata: Vec<u8>,
    /// When it happened, milliseconds since the Unix epoch (the source's clock).
    pub time_ms: u64,
    /// The key of the system that reports the event; it signs the event.
    pub source: PublicKey,
}

/// An event with its source's signature: the unit stored in blocks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEvent {
    pub event: AuditEvent,
    pub signature: Signature,
}

/// Why an event is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("{field} must be 1 to {max} bytes, got {len}")]
    Length {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("kind may only contain a-z, 0-9, '.', '_', '-', ':' and '/', found {0:?}")]
    KindCharacter(char),
    #[error("{0} contains a control character")]
    ControlCharacter(&'static str),
    #[error("metadata is {0} bytes, more than {MAX_METADATA_LEN}")]
    MetadataTooLong(usize),
    #[error("the source's signature does not verify: {0}")]
    Signature(#[from] ed25519::SignatureError),
}

fn check_text(field: &'static str, s: &str, max: usize) -> Result<(), EventError> {
    if s.is_empty() || s.len() > max {
        return Err(EventError::Length {
            field,
            len: s.len(),
            max,
        });
    }
    if s.chars().any(char::is_control) {
        return Err(EventError::ControlCharacter(field));
    }
    Ok(())
}

impl AuditEvent {
    /// Checks every field against its limits and alphabet.
    pub fn validate(&self) -> Result<(), EventError> {
        check_text("kind", &self.kind, MAX_KIND_LEN)?;
        if let Some(c) = self
            .kind
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-' | ':' | '/'))
        {
            return Err(EventError::KindCharacter(c));
        }
        check_text("actor", &self.actor, MAX_ACTOR_LEN)?;
        check_text("resource", &self.resource, MAX_RESOURCE_LEN)?;
        if self.metadata.len() > MAX_METADATA_LEN {
            return Err(EventError::MetadataTooLong(self.metadata.len()));
        }
        Ok(())
    }

    /// The digest the source signs: `hash(Domain::EventSignature, encode(event))`.
    pub fn signing_digest(&self) -> Hash {
        hash(Domain::EventSignature, &self.encode())
    }

    /// Signs the event. The key must be the event's `source`.
    pub fn sign(self, key: &SigningKey) -> SignedEvent {
        let signature = key.sign(self.signing_digest().as_bytes());
        SignedEvent {
            event: self,
            signature,
        }
    }
}

impl SignedEvent {
    /// The event id: `hash(Domain::Event, encode(signed event))`.
    pub fn id(&self) -> EventId {
        hash(Domain::Event, &self.encode())
    }

    /// Validates the fields and the source's signature.
    pub fn validate(&self) -> Result<(), EventError> {
        self.event.validate()?;
        ed25519::verify(
            &self.event.source,
            self.event.signing_digest().as_bytes(),
            &self.signature,
        )?;
        Ok(())
    }
}

impl Encode for AuditEvent {
    fn encode_to(&self, w: &mut Writer) {
        w.str(&self.kind)
            .str(&self.actor)
            .str(&self.resource)
            .u8(self.outcome.tag())
            .bytes(&self.metadata)
            .u64(self.time_ms)
            .value(&self.source);
    }
}

impl Decode for AuditEvent {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let kind = r.str("event kind", MAX_KIND_LEN)?.to_owned();
        let actor = r.str("event actor", MAX_ACTOR_LEN)?.to_owned();
        let resource = r.str("event resource", MAX_RESOURCE_LEN)?.to_owned();
        let tag = r.u8()?;
        let outcome = Outcome::from_tag(tag).ok_or(DecodeError::InvalidTag {
            what: "event outcome",
            tag,
        })?;
        let metadata = r.bytes("event metadata", MAX_METADATA_LEN)?.to_vec();
        let time_ms = r.u64()?;
        let source = PublicKey::decode_from(r)?;
        let event = AuditEvent {
            kind,
            actor,
            resource,
            outcome,
            metadata,
            time_ms,
            source,
        };
        event.validate().map_err(|e| DecodeError::Invalid {
            what: "event",
            reason: e.to_string(),
        })?;
        Ok(event)
    }
}

impl Encode for SignedEvent {
    fn encode_to(&self, w: &mut Writer) {
        w.value(&self.event).value(&self.signature);
    }
}

impl Decode for SignedEvent {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignedEvent {
            event: AuditEvent::decode_from(r)?,
            signature: Signature::decode_from(r)?,
        })
    }
}

/// Serde helper: bytes as a lowercase hex string.
pub(crate) mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(s.as_ref()).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn event(key: &SigningKey) -> AuditEvent {
        AuditEvent {
            kind: "user.login".into(),
            actor: "alice".into(),
            resource: "console".into(),
            outcome: Outcome::Success,
            metadata: vec![1, 2, 3],
            time_ms: 1_700_000_000_000,
            source: key.public_key(),
        }
    }

    #[test]
    fn signed_event_round_trips_and_validates() {
        let key = SigningKey::from_seed(&[7; 32]);
        let signed = event(&key).sign(&key);
        assert_eq!(signed.validate(), Ok(()));
        assert_eq!(SignedEvent::decode(&signed.encode()), Ok(signed.clone()));
        let json = serde_json::to_string(&signed).unwrap();
        assert_eq!(serde_json::from_str::<SignedEvent>(&json).unwrap(), signed);
    }

    #[test]
    fn rejects_a_signature_by_another_key() {
        let key = SigningKey::from_seed(&[7; 32]);
        let other = SigningKey::from_seed(&[8; 32]);
        let forged = event(&key).sign(&other);
        assert!(matches!(forged.validate(), Err(EventError::Signature(_))));
    }

    #[test]
    fn rejects_bad_fields() {
        let key = SigningKey::from_seed(&[7; 32]);
        let mut e = event(&key);
        e.kind = "User.Login".into();
        assert_eq!(e.validate(), Err(EventError::KindCharacter('U')));
        let mut e = event(&key);
        e.actor = String::new();
        assert_eq!(
            e.validate(),
            Err(EventError::Length {
                field: "actor",
                len: 0,
                max: MAX_ACTOR_LEN
            })
        );
        let mut e = event(&key);
        e.resource = "a\nb".into();
        assert_eq!(e.validate(), Err(EventError::ControlCharacter("resource")));
        let mut e = event(&key);
        e.metadata = vec![0; MAX_METADATA_LEN + 1];
        assert_eq!(
            e.validate(),
            Err(EventError::MetadataTooLong(MAX_METADATA_LEN + 1))
        );
    }

    #[test]
    fn decode_rejects_unknown_outcome() {
        let key = SigningKey::from_seed(&[7; 32]);
        let mut bytes = event(&key).encode();
        // kind(4+10) actor(4+5) resource(4+7): the outcome byte follows.
        bytes[34] = 9;
        assert_eq!(
            AuditEvent::decode(&bytes),
            Err(DecodeError::InvalidTag {
                what: "event outcome",
                tag: 9
            })
        );
    }

    #[test]
    fn id_changes_with_any_field() {
        let key = SigningKey::from_seed(&[7; 32]);
        let a = event(&key).sign(&key);
        let mut e = event(&key);
        e.time_ms += 1;
        let b = e.sign(&key);
        assert_ne!(a.id(), b.id());
    }
}
