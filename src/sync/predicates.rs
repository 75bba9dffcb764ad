//! The checks block sync makes beyond header verification, each a small function with its own
//! error, apart from the scheduling that calls them (as `crate::verify::predicates` is for
//! headers). A reader can list what is checked of a response by reading this file.

use std::sync::Arc;

use super::error::Fault;
use crate::chain::{
    BlockHash, BlockHeader, FinalizedBlock, SignedEvent, TrustedHeader, ValidatorSet,
};
use crate::proof::merkle_root;
use crate::verify::{TrustedState, Verifier, VerifyError};

/// A range response holds at most `count` items at heights `start, start + 1, ...`: anything
/// else is not what was asked for.
pub fn range_shape(
    what: &str,
    start: u64,
    count: u64,
    heights: impl ExactSizeIterator<Item = u64>,
) -> Result<(), Fault> {
    let got = heights.len() as u64;
    if got > count {
        return Err(Fault::Malformed(format!(
            "asked for {count} {what} from height {start}, got {got}"
        )));
    }
    for (i, height) in heights.enumerate() {
        let expected = start + i as u64;
        if height != expected {
            return Err(Fault::Malformed(format!(
                "{what} {i} of a range from {start} is at height {height}, expected {expected}"
            )));
        }
    }
    Ok(())
}

/// The block's header is the verified header at its height: same hash. The hash covers the
/// events root and count, so a block passing this and [`events_match_header`] is the block
/// the validators signed.
pub fn header_is_verified(verified: &BlockHash, block: &FinalizedBlock) -> Result<(), Fault> {
    let got = block.block.header.hash();
    if got != *verified {
        return Err(Fault::BodyMismatch {
            height: block.height(),
            reason: format!("its header hashes to {got}, the verified header is {verified}"),
        });
    }
    Ok(())
}

/// The events are the ones the header commits to: count and Merkle root of their ids.
pub fn events_match_header(header: &BlockHeader, events: &[SignedEvent]) -> Result<(), Fault> {
    if header.event_count as usize != events.len() {
        return Err(Fault::BodyMismatch {
            height: header.height,
            reason: format!(
                "{} events, the header commits to {}",
                events.len(),
                header.event_count
            ),
        });
    }
    let ids: Vec<_> = events.iter().map(SignedEvent::id).collect();
    let root = merkle_root(&ids);
    if root != header.events_root {
        return Err(Fault::BodyMismatch {
            height: header.height,
            reason: format!(
                "events root {root}, the header commits to {}",
                header.events_root
            ),
        });
    }
    Ok(())
}

/// Verifies `theirs` as the verifier would, except for the link to a parent: `like` is any
/// header of ours (for the chain id), `signers` the set that signed our block at `theirs`'
/// height. A different block that passes is finalized as surely as ours: a fork.
pub fn signed_without_parent(
    verifier: &Verifier,
    like: &BlockHeader,
    signers: &Arc<ValidatorSet>,
    theirs: &TrustedHeader,
    now_ms: u64,
) -> Result<(), VerifyError> {
    let height = theirs.header.height;
    if height == 0 {
        // Genesis has no parent: nothing signs it but the genesis file itself.
        return Err(VerifyError::NonSequentialHeight { trusted: 0, got: 0 });
    }
    let parent = TrustedState {
        header: BlockHeader {
            height: height - 1,
            timestamp_ms: 0,
            ..like.clone()
        },
        hash: theirs.header.parent_hash,
        next_validators: Arc::clone(signers),
    };
    verifier.verify(&parent, theirs, now_ms).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{self, ChainBuilder};
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn block(chain: &mut ChainBuilder, events: usize) -> FinalizedBlock {
        let source = testkit::key(50);
        let h = chain.next_height();
        let events = (0..events as u64)
            .map(|i| testkit::event(&source, h * 10 + i, 1))
            .collect();
        let (block, th) = chain.next_block(events);
        FinalizedBlock {
            block,
            commit: th.commit,
            next_validators: th.next_validators,
        }
    }

    #[test]
    fn rejects_ranges_of_the_wrong_shape() {
        assert!(range_shape("blocks", 5, 3, [5, 6, 7].into_iter()).is_ok());
        assert!(range_shape("blocks", 5, 3, [5].into_iter()).is_ok());
        assert!(matches!(
            range_shape("blocks", 5, 2, [5, 6, 7].into_iter()),
            Err(Fault::Malformed(m)) if m.contains("got 3")
        ));
        assert!(matches!(
            range_shape("blocks", 5, 3, [5, 7].into_iter()),
            Err(Fault::Malformed(m)) if m.contains("expected 6")
        ));
    }

    #[test]
    fn rejects_a_body_that_is_not_its_header_s() {
        let mut chain = ChainBuilder::new("preds", 4);
        let b0 = block(&mut chain, 0);
        let b1 = block(&mut chain, 3);
        let verified = b1.block.header.hash();
        assert!(header_is_verified(&verified, &b1).is_ok());
        assert!(events_match_header(&b1.block.header, &b1.block.events).is_ok());

        let mut dropped = b1.clone();
        dropped.block.events.pop();
        assert!(matches!(
            events_match_header(&dropped.block.header, &dropped.block.events),
            Err(Fault::BodyMismatch { height: 1, reason }) if reason.contains("2 events")
        ));
        let mut swapped = b1.clone();
        swapped.block.events.swap(0, 1);
        assert!(matches!(
            events_match_header(&swapped.block.header, &swapped.block.events),
            Err(Fault::BodyMismatch { height: 1, reason }) if reason.contains("events root")
        ));
        assert!(matches!(
            header_is_verified(&verified, &b0),
            Err(Fault::BodyMismatch { height: 0, .. })
        ));
    }

    #[test]
    fn a_differently_signed_block_verifies_without_its_parent_only_if_finalized() {
        let mut chain = ChainBuilder::new("preds", 4);
        let b0 = block(&mut chain, 0);
        let set = Arc::new(chain.current_set().clone());
        let b1 = block(&mut chain, 1);
        let verifier = Verifier::new();
        let now = b1.block.header.timestamp_ms;
        let th = b1.trusted_header();
        assert!(signed_without_parent(&verifier, &b0.block.header, &set, &th, now).is_ok());
        let mut weak = th.clone();
        weak.commit.signatures.truncate(2);
        assert!(matches!(
            signed_without_parent(&verifier, &b0.block.header, &set, &weak, now),
            Err(VerifyError::InsufficientVotingPower { .. })
        ));
        assert!(signed_without_parent(
            &verifier,
            &b0.block.header,
            &set,
            &b0.trusted_header(),
            now
        )
        .is_err());
    }
}
