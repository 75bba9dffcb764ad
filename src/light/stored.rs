//! What the light client hands to its store: per height the header without its commit
//! ([`StoredHeader`]), and validator sets and commits only where the set hands over
//! ([`VerifiedHeader`]).
//!
//! A stored header is the header's canonical encoding (§ header encoding in
//! `docs/PROTOCOL.md`): its hash is recomputed on decode, so a store cannot serve a header
//! under a wrong hash. With a 10-byte chain id it is 238 bytes.

use crate::chain::{
    BlockHash, BlockHeader, Commit, Decode, DecodeError, Encode, Reader, ValidatorSet, Writer,
};

/// One verified header as a store keeps it: the header (no commit) and its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredHeader {
    pub header: BlockHeader,
    /// `header.hash()`, computed once.
    pub hash: BlockHash,
}

impl StoredHeader {
    pub fn new(header: BlockHeader) -> StoredHeader {
        StoredHeader {
            hash: header.hash(),
            header,
        }
    }

    pub fn height(&self) -> u64 {
        self.header.height
    }
}

/// The header's canonical encoding; the hash is not stored.
impl Encode for StoredHeader {
    fn encode_to(&self, w: &mut Writer) {
        self.header.encode_to(w);
    }
}

impl Decode for StoredHeader {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(StoredHeader::new(BlockHeader::decode_from(r)?))
    }
}

/// One height the client verified, as it hands it to the driver in
/// [`Action::StoreHeaders`](super::Action).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedHeader {
    pub header: StoredHeader,
    /// The set that signs `height + 1`: present at the anchor (the checkpoint's block) and
    /// where the header hands over to a new set; `None` where the set stays the same.
    pub next_validators: Option<ValidatorSet>,
    /// The commit that finalized the header, kept only at a hand-over (where it is the
    /// evidence that the old set approved the new one).
    pub commit: Option<Commit>,
}

impl VerifiedHeader {
    pub fn height(&self) -> u64 {
        self.header.height()
    }
}

impl Encode for VerifiedHeader {
    fn encode_to(&self, w: &mut Writer) {
        w.value(&self.header)
            .option(self.next_validators.as_ref())
            .option(self.commit.as_ref());
    }
}

impl Decode for VerifiedHeader {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(VerifiedHeader {
            header: StoredHeader::decode_from(r)?,
            next_validators: r.option("stored next validator set")?,
            commit: r.option("stored hand-over commit")?,
        })
    }
}
