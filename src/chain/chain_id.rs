//! Chain identifiers.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::encoding::{Decode, DecodeError, Encode, Reader, Writer};

/// Maximum length of a chain id in bytes.
pub const MAX_CHAIN_ID_LEN: usize = 64;

/// A chain identifier: 1 to 64 bytes of `a-z`, `0-9`, `-`, `_`, `.`.
///
/// The restricted alphabet keeps ids unambiguous in the one-line checkpoint text (which uses
/// `:` as a separator) and in logs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(String);

/// Why a string is not a chain id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainIdError {
    #[error("chain id must be 1 to {MAX_CHAIN_ID_LEN} bytes, got {0}")]
    Length(usize),
    #[error("chain id may only contain a-z, 0-9, '-', '_' and '.', found {0:?}")]
    Character(char),
}

impl ChainId {
    pub fn new(id: impl Into<String>) -> Result<ChainId, ChainIdError> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_CHAIN_ID_LEN {
            return Err(ChainIdError::Length(id.len()));
        }
        if let Some(c) = id
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
        {
            return Err(ChainIdError::Character(c));
        }
        Ok(ChainId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.0)
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ChainId {
    type Err = ChainIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChainId::new(s)
    }
}

impl Serialize for ChainId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ChainId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ChainId::new(s).map_err(serde::de::Error::custom)
    }
}

impl Encode for ChainId {
    fn encode_to(&self, w: &mut Writer) {
        w.str(&self.0);
    }
}

impl Decode for ChainId {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let s = r.str("chain id", MAX_CHAIN_ID_LEN)?;
        ChainId::new(s).map_err(|e| DecodeError::Invalid {
            what: "chain id",
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn accepts_the_allowed_alphabet() {
        assert!(ChainId::new("headway-devnet_1.0").is_ok());
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters() {
        assert_eq!(ChainId::new(""), Err(ChainIdError::Length(0)));
        assert_eq!(ChainId::new("a".repeat(65)), Err(ChainIdError::Length(65)));
        assert_eq!(ChainId::new("Main"), Err(ChainIdError::Character('M')));
        assert_eq!(ChainId::new("a:b"), Err(ChainIdError::Character(':')));
    }

    #[test]
    fn decode_validates() {
        let mut w = Writer::new();
        w.str("UPPER");
        assert!(matches!(
            ChainId::decode(w.as_bytes()),
            Err(DecodeError::Invalid { .. })
        ));
    }
}
