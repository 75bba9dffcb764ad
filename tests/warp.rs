//! Warp sync: the sans-I/O machine (`headway::sync::WarpSync`) against scripted peers, and
//! installing its snapshot in every store backend, then continuing the chain on top of it.
//! The machine tests are pure, so they also build for wasm32.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use headway::chain::{Checkpoint, CheckpointError, FinalizedBlock, Hash};
use headway::proof::mmr::{peaks_at, Mmr};
use headway::proof::MmrPeaks;
use headway::protocol::snapshot::{
    EncodedSnapshot, GetSnapshot, Snapshot, SnapshotChunk, SnapshotError, SnapshotResponse,
};
use headway::protocol::{ErrorCode, ErrorResponse, Status};
use headway::sync::{
    RequestFailure, RequestId, WarpAction, WarpFault, WarpInput, WarpOptions, WarpSync,
};
use headway::testkit::{self, ChainBuilder};

type Peer = u32;

const TIP: u64 = 40;
/// The checkpoint height: after the hand-over at 20, so the snapshot's set is the new one.
const AT: u64 = 30;
const NOW: u64 = 1_000_000;

/// A chain 0..=TIP with events in a few blocks and a hand-over at 20.
struct Chain {
    blocks: Vec<FinalizedBlock>,
    mmr: Mmr,
    checkpoint: Checkpoint,
}

fn chain_with(extra_event_at: Option<u64>) -> Chain {
    let mut builder = ChainBuilder::new("warp-test", 4).hand_over_at(20, testkit::keys(10, 5));
    let source = testkit::key(99);
    let mut blocks = Vec::new();
    let mut checkpoint = None;
    for h in 0..=TIP {
        let mut events: Vec<_> = if h % 7 == 3 {
            (0..3)
                .map(|i| testkit::event(&source, h * 10 + i, 1))
                .collect()
        } else {
            Vec::new()
        };
        if extra_event_at == Some(h) {
            events.push(testkit::event(&source, 1_000_000 + h, 1));
        }
        let (block, trusted) = builder.next_block(events);
        blocks.push(FinalizedBlock {
            block,
            commit: trusted.commit,
            next_validators: trusted.next_validators,
        });
        if h == AT {
            checkpoint = builder.checkpoint();
        }
    }
    Chain {
        blocks,
        mmr: builder.mmr().clone(),
        checkpoint: checkpoint.expect("checkpoint at AT"),
    }
}

fn chain() -> Chain {
    chain_with(None)
}

/// The set that signs block `height` (the hand-over is at 20).
fn signers(height: u64) -> headway::chain::ValidatorSet {
    if height >= 20 {
        testkit::validator_set(&testkit::keys(10, 5))
    } else {
        testkit::validator_set(&testkit::keys(0, 4))
    }
}

impl Chain {
    /// The snapshot an honest node with every block serves at `height`.
    fn snapshot(&self, height: u64) -> Snapshot {
        let snapshot = Snapshot {
            header: self.blocks[height as usize].trusted_header(),
            peaks: peaks_at(&self.mmr, height).unwrap(),
            next_validators: signers(height + 1),
            lowest_height: 0,
        };
        snapshot.check().expect("honest snapshot");
        snapshot
    }
}

fn status(lowest: u64, head: u64) -> Status {
    Status {
        head_height: head,
        head_hash: Hash::ZERO,
        mmr_root: Hash::ZERO,
        lowest_height: lowest,
        syncing: false,
    }
}

fn machine(chain: &Chain) -> WarpSync<Peer> {
    WarpSync::new(chain.checkpoint.clone(), WarpOptions::default(), NOW)
}

fn actions(m: &mut WarpSync<Peer>) -> Vec<WarpAction<Peer>> {
    std::iter::from_fn(|| m.next_action()).collect()
}

/// The one request in `actions`.
fn request(actions: &[WarpAction<Peer>]) -> (Peer, RequestId, GetSnapshot) {
    let sent: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            WarpAction::SendRequest {
                peer,
                request_id,
                request,
            } => Some((*peer, *request_id, *request)),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 1, "one request expected in {actions:?}");
    sent[0]
}

fn chunk_response(snapshot: &Snapshot, chunk: u32) -> SnapshotResponse {
    SnapshotResponse::Chunk(snapshot.to_encoded().unwrap().chunk(chunk).unwrap())
}

fn answer(m: &mut WarpSync<Peer>, peer: Peer, id: RequestId, response: SnapshotResponse) {
    m.feed(WarpInput::Response {
        peer,
        request_id: id,
        response,
    });
}

fn done(actions: &[WarpAction<Peer>]) -> Option<Snapshot> {
    actions.iter().find_map(|a| match a {
        WarpAction::Done(s) => Some((**s).clone()),
        _ => None,
    })
}

fn reported(actions: &[WarpAction<Peer>]) -> Vec<(Peer, WarpFault)> {
    actions
        .iter()
        .filter_map(|a| match a {
            WarpAction::ReportPeer { peer, fault } => Some((*peer, fault.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn fetches_the_snapshot_from_a_peer_that_has_the_height_and_checks_it() {
    let chain = chain();
    let mut m = machine(&chain);
    // Peer 1 is behind the checkpoint, peer 2 pruned below it: neither is asked.
    m.feed(WarpInput::PeerStatus {
        peer: 1,
        status: status(0, AT - 1),
    });
    m.feed(WarpInput::PeerStatus {
        peer: 2,
        status: status(AT + 1, TIP),
    });
    assert!(actions(&mut m).is_empty());
    assert_eq!(m.serving_peers(), 0);
    m.feed(WarpInput::PeerStatus {
        peer: 3,
        status: status(0, TIP),
    });
    let a = actions(&mut m);
    let (peer, id, req) = request(&a);
    assert_eq!(
        (peer, req),
        (
            3,
            GetSnapshot {
                height: AT,
                chunk: 0
            }
        )
    );
    let honest = chain.snapshot(AT);
    answer(&mut m, 3, id, chunk_response(&honest, 0));
    let a = actions(&mut m);
    assert_eq!(done(&a), Some(honest));
    assert!(m.is_done());
    assert_eq!(m.served_by(), Some(&3));
    // Nothing happens after `Done`.
    m.feed(WarpInput::PeerStatus {
        peer: 4,
        status: status(0, TIP),
    });
    assert!(actions(&mut m).is_empty());
    assert_eq!(m.next_deadline_ms(), None);
}

#[test]
fn a_snapshot_of_another_block_at_the_height_is_reported_and_another_peer_asked() {
    let chain = chain();
    // Same keys and history up to AT - 1; block AT differs: validly signed, not the checkpoint's.
    let fork = chain_with(Some(AT));
    assert_ne!(
        chain.blocks[AT as usize].block.header.hash(),
        fork.blocks[AT as usize].block.header.hash()
    );
    let mut m = machine(&chain);
    m.feed(WarpInput::PeerStatus {
        peer: 1,
        status: status(0, TIP),
    });
    m.feed(WarpInput::PeerStatus {
        peer: 2,
        status: status(0, TIP - 1),
    });
    // The highest head goes first: peer 1.
    let (peer, id, _) = request(&actions(&mut m));
    assert_eq!(peer, 1);
    answer(&mut m, 1, id, chunk_response(&fork.snapshot(AT), 0));
    let a = actions(&mut m);
    let faults = reported(&a);
    assert_eq!(faults.len(), 1, "{a:?}");
    assert_eq!(faults[0].0, 1);
    assert!(
        matches!(
            faults[0].1,
            WarpFault::Checkpoint(CheckpointError::HashMismatch { .. })
        ),
        "{faults:?}"
    );
    let (peer, id, req) = request(&a);
    assert_eq!((peer, req.chunk), (2, 0));
    answer(&mut m, 2, id, chunk_response(&chain.snapshot(AT), 0));
    assert_eq!(done(&actions(&mut m)), Some(chain.snapshot(AT)));
    assert_eq!(m.peers_reported, 1);
    assert_eq!(m.attempts, 2);
}

#[test]
fn forged_peaks_are_caught_against_the_header_even_with_a_matching_snapshot_hash() {
    let chain = chain();
    let mut forged = chain.snapshot(AT);
    let mut peaks = forged.peaks.peaks().to_vec();
    peaks[0].0[0] ^= 1;
    forged.peaks = MmrPeaks::from_parts(forged.peaks.leaf_count(), peaks).unwrap();
    let mut m = machine(&chain);
    m.feed(WarpInput::PeerStatus {
        peer: 1,
        status: status(0, TIP),
    });
    let (_, id, _) = request(&actions(&mut m));
    answer(&mut m, 1, id, chunk_response(&forged, 0));
    let a = actions(&mut m);
    assert!(
        matches!(
            reported(&a)[..],
            [(1, WarpFault::Chunk(SnapshotError::PeaksRoot { .. }))]
        ),
        "{a:?}"
    );
    assert!(done(&a).is_none());
    // Alone and reported: nobody to ask, and it is not asked again when it reconnects.
    m.feed(WarpInput::PeerDisconnected { peer: 1 });
    m.feed(WarpInput::PeerStatus {
        peer: 1,
        status: status(0, TIP),
    });
    assert!(actions(&mut m).is_empty());
    assert_eq!(m.serving_peers(), 0);
    // Until its ban ends.
    let ban_end = NOW + WarpOptions::default().ban_ms;
    assert_eq!(m.next_deadline_ms(), Some(ban_end));
    m.feed(WarpInput::Tick { now_ms: ban_end });
    assert_eq!(request(&actions(&mut m)).0, 1);
}

#[test]
fn a_tampered_or_truncated_chunk_is_a_fault() {
    let chain = chain();
    let honest = chain.snapshot(AT);
    let encoded = honest.to_encoded().unwrap();
    let mut flipped = encoded.chunk(0).unwrap();
    flipped.data[10] ^= 1;
    let mut wrong_height = encoded.chunk(0).unwrap();
    wrong_height.height = AT + 1;
    // Chunk 0 announces two chunks, chunk 1 announces another snapshot.
    let big = EncodedSnapshot::new(AT, vec![7u8; (1 << 20) + 5]).unwrap();
    let other = EncodedSnapshot::new(AT, vec![8u8; (1 << 20) + 5]).unwrap();
    type Case = (Vec<SnapshotChunk>, fn(&WarpFault) -> bool);
    let cases: Vec<Case> = vec![
        (vec![flipped], |f| {
            matches!(f, WarpFault::Chunk(SnapshotError::HashMismatch { .. }))
        }),
        (vec![wrong_height], |f| {
            matches!(f, WarpFault::Chunk(SnapshotError::WrongHeight { .. }))
        }),
        (vec![big.chunk(0).unwrap(), other.chunk(1).unwrap()], |f| {
            matches!(f, WarpFault::Chunk(SnapshotError::Inconsistent { .. }))
        }),
        // Consistent chunks of bytes that are no snapshot.
        (vec![big.chunk(0).unwrap(), big.chunk(1).unwrap()], |f| {
            matches!(f, WarpFault::Chunk(SnapshotError::Decode(_)))
        }),
    ];
    for (chunks, expected) in cases {
        let mut m = machine(&chain);
        m.feed(WarpInput::PeerStatus {
            peer: 5,
            status: status(0, TIP),
        });
        let mut a = actions(&mut m);
        for chunk in chunks {
            let (peer, id, req) = request(&a);
            assert_eq!((peer, req.chunk), (5, chunk.chunk));
            answer(&mut m, 5, id, SnapshotResponse::Chunk(chunk));
            a = actions(&mut m);
        }
        let faults = reported(&a);
        assert!(
            faults.len() == 1 && expected(&faults[0].1),
            "unexpected {faults:?}"
        );
        assert!(!m.is_done());
    }
}

#[test]
fn an_answer_for_another_chunk_is_malformed() {
    let chain = chain();
    let big = EncodedSnapshot::new(AT, vec![7u8; (1 << 20) + 5]).unwrap();
    let mut m = machine(&chain);
    m.feed(WarpInput::PeerStatus {
        peer: 1,
        status: status(0, TIP),
    });
    let (_, id, _) = request(&actions(&mut m));
    answer(
        &mut m,
        1,
        id,
        SnapshotResponse::Chunk(big.chunk(1).unwrap()),
    );
    assert!(matches!(
        reported(&actions(&mut m))[..],
        [(1, WarpFault::Malformed(_))]
    ));
}

#[test]
fn refusals_timeouts_and_disconnects_move_to_another_peer_with_back_off() {
    let chain = chain();
    let honest = chain.snapshot(AT);
    let mut m = machine(&chain);
    for (peer, head) in [(1, TIP), (2, TIP - 1), (3, TIP - 2)] {
        m.feed(WarpInput::PeerStatus {
            peer,
            status: status(0, head),
        });
    }
    // Peer 1 lacks it after all (its status was optimistic).
    let (peer, id, _) = request(&actions(&mut m));
    assert_eq!(peer, 1);
    answer(
        &mut m,
        1,
        id,
        SnapshotResponse::Error(ErrorResponse::new(ErrorCode::NotFound, "pruned")),
    );
    // Peer 2 times out.
    let a = actions(&mut m);
    assert!(reported(&a).is_empty(), "a refusal is not a fault");
    let (peer, id2, _) = request(&a);
    assert_eq!(peer, 2);
    let timeout = WarpOptions::default().request_timeout_ms;
    assert_eq!(m.next_deadline_ms(), Some(NOW + timeout));
    m.feed(WarpInput::Tick {
        now_ms: NOW + timeout,
    });
    // Peer 3 disconnects mid-request.
    let (peer, id3, _) = request(&actions(&mut m));
    assert_eq!(peer, 3);
    // The late answer of peer 2 is ignored.
    answer(&mut m, 2, id2, chunk_response(&honest, 0));
    assert!(actions(&mut m).is_empty());
    m.feed(WarpInput::PeerDisconnected { peer: 3 });
    // Peer 2 is backed off, peer 1 no longer claims the height: nothing to do until the
    // back-off ends.
    assert!(actions(&mut m).is_empty());
    let until = m.next_deadline_ms().expect("a back-off to wait for");
    assert!(until > NOW + timeout);
    m.feed(WarpInput::Tick { now_ms: until });
    let (peer, id, _) = request(&actions(&mut m));
    assert_eq!(peer, 2);
    // A failure from a peer that is not asked any more is ignored.
    m.feed(WarpInput::RequestFailed {
        peer: 3,
        request_id: id3,
        reason: RequestFailure::Disconnected,
    });
    answer(&mut m, 2, id, chunk_response(&honest, 0));
    assert_eq!(done(&actions(&mut m)), Some(honest));
}

#[test]
fn waits_without_peers_and_goes_on_when_one_comes() {
    let chain = chain();
    let mut m = machine(&chain);
    m.feed(WarpInput::Tick {
        now_ms: NOW + 60_000,
    });
    assert!(actions(&mut m).is_empty());
    assert_eq!(m.next_deadline_ms(), None);
    assert_eq!(m.fetching_from(), None);
    m.feed(WarpInput::PeerStatus {
        peer: 9,
        status: status(0, AT),
    });
    let (peer, id, _) = request(&actions(&mut m));
    assert_eq!(m.fetching_from(), Some(&9));
    answer(&mut m, 9, id, chunk_response(&chain.snapshot(AT), 0));
    assert!(done(&actions(&mut m)).is_some());
    assert_eq!(peer, 9);
}

// ---- stores ------------------------------------------------------------------------------------

#[cfg(not(target_arch = "wasm32"))]
mod stores {
    use super::*;
    use headway::node::serve::build_snapshot;
    use headway::store::{event_proof, ChainStore, MemoryStore, RedbStore, StoreError};

    fn backends() -> Vec<(&'static str, Box<dyn ChainStore>, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().unwrap();
        let redb = RedbStore::open(dir.path().join("chain.redb")).unwrap();
        vec![
            ("memory", Box::new(MemoryStore::new()), None),
            ("redb", Box::new(redb), Some(dir)),
        ]
    }

    #[test]
    fn a_store_started_from_a_snapshot_continues_the_chain_and_proves_new_events() {
        let chain = chain();
        let full = MemoryStore::new();
        full.append(&chain.blocks).unwrap();
        for (name, store, _dir) in backends() {
            let snapshot = chain.snapshot(AT);
            store.install_snapshot(&snapshot).unwrap();
            let head = store.head().unwrap().unwrap();
            assert_eq!(head.height, AT, "{name}");
            assert_eq!(head.hash, chain.checkpoint.block_hash, "{name}");
            assert_eq!(head.peaks.root(), {
                let mut p = snapshot.peaks.clone();
                p.append(&head.hash).unwrap();
                p.root()
            });
            assert_eq!(store.lowest_height().unwrap(), AT, "{name}");
            assert_eq!(store.header(AT).unwrap(), Some(snapshot.header.clone()));
            assert_eq!(store.header(AT - 1).unwrap(), None, "{name}");
            assert!(store.headers(AT - 3, 5).unwrap().is_empty(), "{name}");
            assert_eq!(store.block(AT).unwrap(), None, "{name}");
            assert_eq!(store.height_of(&head.hash).unwrap(), Some(AT));
            assert_eq!(
                store.validators_for(AT + 1).unwrap(),
                Some(snapshot.next_validators.clone())
            );
            // A node that warp-synced serves a snapshot at its base height too.
            let genesis_for_serving = headway::chain::Genesis::new(
                chain.blocks[0].block.header.chain_id.clone(),
                chain.blocks[0].block.header.timestamp_ms,
                testkit::validator_set(&testkit::keys(0, 4)),
                Default::default(),
            )
            .unwrap();
            let served = build_snapshot(&*store, &genesis_for_serving, AT)
                .unwrap()
                .unwrap();
            assert_eq!(served.peaks, snapshot.peaks, "{name}");
            assert_eq!(served.lowest_height, AT);

            // The rest of the chain appends on top, with the same MMR as the full chain.
            store.append(&chain.blocks[AT as usize + 1..]).unwrap();
            let head = store.head().unwrap().unwrap();
            assert_eq!(head, full.head().unwrap().unwrap(), "{name}");
            assert_eq!(store.lowest_height().unwrap(), AT + 1, "{name}");
            // Events after the snapshot are proven against the head, as by a full node.
            let tip_header = &chain.blocks[TIP as usize].block.header;
            for h in [AT + 1, 38] {
                for event in &chain.blocks[h as usize].block.events {
                    let proof = event_proof(&*store, &event.id(), None)
                        .unwrap()
                        .unwrap_or_else(|| panic!("{name}: no proof at {h}"));
                    proof.verify(tip_header).unwrap();
                    assert_eq!(
                        proof,
                        event_proof(&full, &event.id(), None).unwrap().unwrap()
                    );
                }
            }
            // Events before it are unknown: no proof, no error.
            let old = chain.blocks[3].block.events[0].id();
            assert!(event_proof(&*store, &old, None).unwrap().is_none());
            // Snapshots above the base are served too (their peaks are stored).
            let later = build_snapshot(&*store, &genesis_for_serving, 37)
                .unwrap()
                .unwrap();
            assert_eq!(later.peaks, chain.snapshot(37).peaks, "{name}");
        }
    }

    #[test]
    fn a_snapshot_installs_only_into_an_empty_store_and_only_if_consistent() {
        let chain = chain();
        for (name, store, _dir) in backends() {
            let mut bad = chain.snapshot(AT);
            bad.header.commit.height += 1;
            assert!(
                matches!(
                    store.install_snapshot(&bad),
                    Err(StoreError::CommitMismatch { height: AT })
                ),
                "{name}"
            );
            let mut bad = chain.snapshot(AT);
            bad.peaks = peaks_at(&chain.mmr, AT - 1).unwrap();
            assert!(
                matches!(
                    store.install_snapshot(&bad),
                    Err(StoreError::InvalidSnapshot(_))
                ),
                "{name}"
            );
            assert!(store.head().unwrap().is_none(), "{name}: nothing written");
            store.install_snapshot(&chain.snapshot(AT)).unwrap();
            assert!(
                matches!(
                    store.install_snapshot(&chain.snapshot(AT)),
                    Err(StoreError::NotEmpty { height: AT })
                ),
                "{name}"
            );
            // Appends must continue right after it.
            assert!(matches!(
                store.append(&chain.blocks[AT as usize + 2..]),
                Err(StoreError::NotContiguous { .. })
            ));
        }
        let store = MemoryStore::new();
        store.append(&chain.blocks[..3]).unwrap();
        assert!(matches!(
            store.install_snapshot(&chain.snapshot(AT)),
            Err(StoreError::NotEmpty { height: 2 })
        ));
    }

    #[test]
    fn a_redb_store_started_from_a_snapshot_reopens_at_it() {
        let chain = chain();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        {
            let store = RedbStore::open(&path).unwrap();
            store.install_snapshot(&chain.snapshot(AT)).unwrap();
        }
        let store = RedbStore::open(&path).unwrap();
        assert_eq!(store.head().unwrap().unwrap().height, AT);
        assert_eq!(store.lowest_height().unwrap(), AT);
        store.append(&chain.blocks[AT as usize + 1..]).unwrap();
        assert_eq!(store.head().unwrap().unwrap().height, TIP);
    }
}
