//! `headway gen-chain`: a long, validly signed chain written straight into a node's store.
//!
//! Browser light-client tests and benchmarks need a real node serving more than a thousand
//! blocks with validator-set hand-overs; producing those through consensus rounds takes far
//! too long. So the chain is generated offline with the code a proposer uses
//! ([`build_block`] on a [`ChainTip`], the genesis hand-over schedule) and every commit is
//! signed by all validators of the signing set with [`Commit::sign`], then appended to a
//! [`RedbStore`] through the normal append rules, in the data dir layout `headway node` opens.
//! Keys are derived from fixed seeds, so the same [`ChainSpec`] gives the same chain, byte for
//! byte. A fork (`fork_at`) is the same chain below that height and different, equally validly
//! signed blocks from it on: the validators equivocate, as a light client's fork alarm expects.
//!
//! Besides `chain.redb`, the output folder gets `genesis.json` (what `headway node --genesis`
//! reads) and `fixture.json` ([`Fixture`]: what a test needs to know about the chain).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use serde::{Deserialize, Serialize};

use super::consensus::proposal::build_block;
use super::consensus::{ChainTip, ConsensusConfig};
use super::service::open_store;
use crate::chain::{
    AuditEvent, ChainId, Checkpoint, Commit, EventId, FinalizedBlock, Genesis, Hash, Outcome,
    SignedEvent, Validator, ValidatorSet, MAX_BLOCK_EVENTS,
};
use crate::crypto::ed25519::SigningKey;
use crate::store::{next_validators, ChainStore, RedbStore};

/// Blocks per store transaction: few fsyncs, bounded transaction size.
const APPEND_BATCH: usize = 256;
/// Most (height, event id) samples in the fixture.
const MAX_SAMPLES: u64 = 64;
/// Name of the fixture file in the output folder.
pub const FIXTURE_FILE: &str = "fixture.json";
/// Name of the genesis file in the output folder.
pub const GENESIS_FILE: &str = "genesis.json";
/// Event sources take turns signing the events.
const EVENT_SOURCES: u64 = 3;

/// Everything that determines a generated chain. Stored in the fixture, so a fork can be made
/// of it later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainSpec {
    pub chain_id: String,
    pub validators: usize,
    /// Height of the last block.
    pub blocks: u64,
    /// A validator-set hand-over at every multiple of this height up to `blocks`; 0 for none.
    pub hand_over_every: u64,
    pub events_per_block: usize,
    pub genesis_time_ms: u64,
    pub block_interval_ms: u64,
    /// From this height on the blocks differ from the unforked chain's (same genesis, keys
    /// and signers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork_at: Option<u64>,
}

impl ChainSpec {
    /// A spec whose last block is about one interval before now, so a light client neither
    /// finds the chain stale nor any header in the future.
    pub fn ending_now(
        chain_id: &str,
        validators: usize,
        blocks: u64,
        hand_over_every: u64,
    ) -> ChainSpec {
        let block_interval_ms = 1_000;
        ChainSpec {
            chain_id: chain_id.into(),
            validators,
            blocks,
            hand_over_every,
            events_per_block: 2,
            genesis_time_ms: super::now_ms()
                .saturating_sub(blocks.saturating_add(1).saturating_mul(block_interval_ms)),
            block_interval_ms,
            fork_at: None,
        }
    }

    fn check(&self) -> Result<()> {
        ensure!(self.validators >= 1, "at least one validator is needed");
        ensure!(self.blocks >= 1, "at least one block is needed");
        ensure!(
            self.events_per_block <= MAX_BLOCK_EVENTS,
            "at most {MAX_BLOCK_EVENTS} events per block"
        );
        if let Some(at) = self.fork_at {
            ensure!(
                (1..=self.blocks).contains(&at),
                "the fork height {at} must be within 1..={}",
                self.blocks
            );
        }
        Ok(())
    }

    /// How many hand-overs the genesis schedules (one per multiple of `hand_over_every`).
    fn turns(&self) -> u64 {
        match self.hand_over_every {
            0 => 0,
            every => self.blocks / every,
        }
    }

    /// The hand-over in effect at `height`: 0 before the first.
    fn turn_at(&self, height: u64) -> u64 {
        match self.hand_over_every {
            0 => 0,
            every => (height / every).min(self.turns()),
        }
    }

    fn forked(&self, height: u64) -> bool {
        self.fork_at.is_some_and(|at| height >= at)
    }
}

/// What a test or a benchmark needs to know about a generated chain (`fixture.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    pub chain_id: String,
    pub genesis_hash: Hash,
    pub head_height: u64,
    pub head_hash: Hash,
    /// Heights from which a new set signs.
    pub hand_over_heights: Vec<u64>,
    pub checkpoint_height: u64,
    /// The checkpoint text of `checkpoint_height`, as `GET /checkpoint` renders it.
    pub checkpoint: String,
    /// Events a light client can ask proofs for.
    pub samples: Vec<Sample>,
    pub spec: ChainSpec,
}

/// One event of the generated chain and the block that holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sample {
    pub height: u64,
    pub index: u32,
    pub event_id: EventId,
}

impl Fixture {
    pub fn read(dir: &Path) -> Result<Fixture> {
        let path = dir.join(FIXTURE_FILE);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    pub fn checkpoint(&self) -> Result<Checkpoint> {
        Checkpoint::parse(&self.checkpoint).context("the fixture's checkpoint")
    }
}

/// A deterministic key: `seed = BLAKE3(domain ‖ u64_le(n))`.
fn derived_key(domain: &str, n: u64) -> SigningKey {
    let mut h = blake3::Hasher::new();
    h.update(domain.as_bytes());
    h.update(&n.to_le_bytes());
    SigningKey::from_seed(h.finalize().as_bytes())
}

/// Validator key `n` of generated chains (the set of hand-over `t` uses keys `t..t + N`).
pub fn validator_key(n: u64) -> SigningKey {
    derived_key("headway gen-chain validator", n)
}

/// Event source key `n` of generated chains.
pub fn source_key(n: u64) -> SigningKey {
    derived_key("headway gen-chain event source", n)
}

/// The keys that sign from hand-over `turn` on: a window sliding by one key per hand-over,
/// so after N hand-overs no genesis validator is left and only a client that verified every
/// hand-over still knows the signers.
fn turn_keys(pool: &[SigningKey], validators: usize, turn: u64) -> &[SigningKey] {
    let first = turn as usize;
    &pool[first..first + validators]
}

/// The set of hand-over `turn`: power 10 each, except one validator weighing 20 that moves
/// one place per hand-over (as in the devnet), so every set differs in keys and powers.
fn turn_set(keys: &[SigningKey], turn: u64) -> Result<ValidatorSet> {
    let n = keys.len() as u64;
    let validators = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Validator {
            key: k.public_key(),
            power: if turn > 0 && i as u64 == (turn - 1) % n {
                20
            } else {
                10
            },
        })
        .collect();
    Ok(ValidatorSet::new(validators)?)
}

/// The genesis of `spec`, and the key pool its sets are drawn from.
pub fn genesis_of(spec: &ChainSpec) -> Result<(Genesis, Vec<SigningKey>)> {
    spec.check()?;
    let turns = spec.turns();
    let pool: Vec<SigningKey> = (0..spec.validators as u64 + turns)
        .map(validator_key)
        .collect();
    let mut schedule = std::collections::BTreeMap::new();
    for turn in 1..=turns {
        let keys = turn_keys(&pool, spec.validators, turn);
        schedule.insert(turn * spec.hand_over_every, turn_set(keys, turn)?);
    }
    let genesis = Genesis::new(
        ChainId::new(spec.chain_id.clone())?,
        spec.genesis_time_ms,
        turn_set(turn_keys(&pool, spec.validators, 0), 0)?,
        schedule,
    )?;
    Ok((genesis, pool))
}

/// Event `index` of the block at `height`; a forked block's events differ in their metadata.
fn event(spec: &ChainSpec, sources: &[SigningKey], height: u64, index: usize) -> SignedEvent {
    const KINDS: [&str; 4] = [
        "user.login",
        "document.read",
        "document.update",
        "role.grant",
    ];
    let n = height * spec.events_per_block as u64 + index as u64;
    let source = &sources[(n % EVENT_SOURCES) as usize];
    let mut metadata = n.to_le_bytes().to_vec();
    if spec.forked(height) {
        metadata.extend_from_slice(b"fork");
    }
    AuditEvent {
        kind: KINDS[(n % 4) as usize].into(),
        actor: format!("user-{}", n % 17),
        resource: format!("doc/{n}"),
        outcome: if n.is_multiple_of(11) {
            Outcome::Denied
        } else {
            Outcome::Success
        },
        metadata,
        time_ms: block_time(spec, height).saturating_sub(1),
        source: source.public_key(),
    }
    .sign(source)
}

/// A block's timestamp; forked blocks are 1 ms later, so even empty ones differ.
fn block_time(spec: &ChainSpec, height: u64) -> u64 {
    let base = spec
        .genesis_time_ms
        .saturating_add(height.saturating_mul(spec.block_interval_ms));
    base + u64::from(spec.forked(height))
}

/// Builds blocks `1..=spec.blocks` of `genesis` as the round-0 proposer of each height would,
/// each with a commit signed by every validator of its signing set.
pub fn build_chain(
    spec: &ChainSpec,
    genesis: &Genesis,
    pool: &[SigningKey],
) -> Result<Vec<FinalizedBlock>> {
    spec.check()?;
    let sources: Vec<SigningKey> = (0..EVENT_SOURCES).map(source_key).collect();
    let limits = ConsensusConfig::default().limits;
    let mut tip = ChainTip::genesis(genesis);
    let mut blocks = Vec::with_capacity(spec.blocks as usize);
    for height in 1..=spec.blocks {
        let set = genesis.validators_at(height);
        let proposer = set.proposer(height, 0).key.clone();
        let events: Vec<SignedEvent> = (0..spec.events_per_block)
            .map(|i| event(spec, &sources, height, i))
            .collect();
        let block = build_block(
            &tip,
            genesis,
            proposer,
            events,
            block_time(spec, height),
            limits,
        );
        ensure!(
            block.events.len() == spec.events_per_block,
            "block {height} holds only {} of {} events: the block size limit is too small",
            block.events.len(),
            spec.events_per_block
        );
        let next_validators = block
            .header
            .hands_over()
            .then(|| genesis.validators_at(height + 1).clone());
        // Signed below, in parallel: a block's hash, and so every later header, does not
        // depend on any commit.
        let finalized = FinalizedBlock {
            commit: Commit {
                height,
                round: 0,
                block_hash: Hash::ZERO,
                signatures: Vec::new(),
            },
            block,
            next_validators,
        };
        tip = tip
            .advance(&finalized)
            .map_err(|e| anyhow::anyhow!("block {height}: {e}"))?;
        blocks.push(finalized);
    }
    sign_commits(spec, genesis, pool, &mut blocks);
    Ok(blocks)
}

/// Fills every block's commit with the signatures of all validators of its signing set.
fn sign_commits(
    spec: &ChainSpec,
    genesis: &Genesis,
    pool: &[SigningKey],
    blocks: &mut [FinalizedBlock],
) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = blocks.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for part in blocks.chunks_mut(chunk) {
            scope.spawn(move || {
                for block in part {
                    let height = block.height();
                    let keys = turn_keys(pool, spec.validators, spec.turn_at(height));
                    let keys: Vec<&SigningKey> = keys.iter().collect();
                    let set = genesis.validators_at(height);
                    block.commit = Commit::sign(&block.block.header, 0, set, &keys);
                }
            });
        }
    });
}

/// Generates the chain of `spec` into `out` (created if missing; it must not hold a chain
/// yet) and returns its fixture.
pub fn generate(spec: &ChainSpec, out: &Path) -> Result<Fixture> {
    for name in [GENESIS_FILE, FIXTURE_FILE, "chain.redb"] {
        let path = out.join(name);
        if path.exists() {
            bail!("{} exists; refusing to overwrite", path.display());
        }
    }
    let (genesis, pool) = genesis_of(spec)?;
    let blocks = build_chain(spec, &genesis, &pool)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::write(out.join(GENESIS_FILE), genesis.to_json())
        .with_context(|| format!("writing {}", out.join(GENESIS_FILE).display()))?;
    let store = open_store(out, &genesis, None)?;
    for batch in blocks.chunks(APPEND_BATCH) {
        store
            .append(batch)
            .with_context(|| format!("storing blocks from {}", batch[0].height()))?;
    }
    let fixture = fixture_of(spec, &genesis, &store, &blocks)?;
    let text = serde_json::to_string_pretty(&fixture)?;
    std::fs::write(out.join(FIXTURE_FILE), text + "\n")
        .with_context(|| format!("writing {}", out.join(FIXTURE_FILE).display()))?;
    Ok(fixture)
}

fn fixture_of(
    spec: &ChainSpec,
    genesis: &Genesis,
    store: &Arc<RedbStore>,
    blocks: &[FinalizedBlock],
) -> Result<Fixture> {
    let head = store.head()?.context("the store has no head")?;
    // The checkpoint exactly as the API's `/checkpoint` builds it, at a low height so a
    // client verifies (nearly) the whole chain from it.
    let checkpoint_height = 1;
    let header = store
        .header(checkpoint_height)?
        .context("the checkpoint header is not stored")?;
    let next = next_validators(&**store, genesis, &header)?;
    let checkpoint = Checkpoint::for_header(&header.header, next)?;
    let hand_over_heights = genesis
        .schedule
        .keys()
        .copied()
        .filter(|h| *h <= spec.blocks)
        .collect();
    Ok(Fixture {
        chain_id: spec.chain_id.clone(),
        genesis_hash: genesis.block().block.header.hash(),
        head_height: head.height,
        head_hash: head.hash,
        hand_over_heights,
        checkpoint_height,
        checkpoint: checkpoint.to_text(),
        samples: samples(blocks),
        spec: spec.clone(),
    })
}

/// Up to [`MAX_SAMPLES`] events spread over the chain, the last block's always among them.
fn samples(blocks: &[FinalizedBlock]) -> Vec<Sample> {
    let with_events: Vec<&FinalizedBlock> = blocks
        .iter()
        .filter(|b| !b.block.events.is_empty())
        .collect();
    let Some(last) = with_events.len().checked_sub(1) else {
        return Vec::new();
    };
    let count = (with_events.len() as u64).min(MAX_SAMPLES);
    let mut picked: Vec<usize> = (0..count)
        .map(|i| (i * last as u64 / count.saturating_sub(1).max(1)) as usize)
        .collect();
    picked.dedup();
    picked
        .into_iter()
        .map(|i| {
            let block = with_events[i];
            let index = (block.height() % block.block.events.len() as u64) as u32;
            Sample {
                height: block.height(),
                index,
                event_id: block.block.events[index as usize].id(),
            }
        })
        .collect()
}

/// Options of `headway gen-chain`.
#[derive(Clone, Debug, clap::Args)]
pub struct GenChainArgs {
    /// Output folder: becomes a node data dir with genesis.json and fixture.json beside.
    #[arg(long)]
    pub out: PathBuf,
    /// Validators per set [default: 4].
    #[arg(long)]
    pub validators: Option<usize>,
    /// Height of the last block [default with --fork-of: the original's].
    #[arg(long)]
    pub blocks: Option<u64>,
    /// A validator-set hand-over every this many blocks, 0 for none [default: 100].
    #[arg(long)]
    pub hand_over_every: Option<u64>,
    /// Signed audit events per block [default: 2].
    #[arg(long)]
    pub events_per_block: Option<usize>,
    /// Chain id [default: headway-gen].
    #[arg(long)]
    pub chain_id: Option<String>,
    /// Genesis time, ms since the Unix epoch [default: so that the last block is about one
    /// interval old]. Give it to reproduce a chain byte for byte.
    #[arg(long)]
    pub genesis_time_ms: Option<u64>,
    /// Time between blocks, ms [default: 1000].
    #[arg(long)]
    pub block_interval_ms: Option<u64>,
    /// Make a fork of the chain generated in this folder (its fixture.json gives the spec).
    #[arg(long, requires = "fork_at")]
    pub fork_of: Option<PathBuf>,
    /// First height where the fork differs from the original.
    #[arg(long, requires = "fork_of")]
    pub fork_at: Option<u64>,
}

impl GenChainArgs {
    /// The spec these options describe; with `--fork-of`, the original's spec with the fork
    /// height (options that would change the shared prefix are refused).
    pub fn spec(&self) -> Result<ChainSpec> {
        if let Some(original) = &self.fork_of {
            let base = Fixture::read(original)?.spec;
            ensure!(
                base.fork_at.is_none(),
                "{} is itself a fork; fork the original chain",
                original.display()
            );
            let differs = self.validators.is_some_and(|v| v != base.validators)
                || self
                    .hand_over_every
                    .is_some_and(|v| v != base.hand_over_every)
                || self
                    .events_per_block
                    .is_some_and(|v| v != base.events_per_block)
                || self.chain_id.as_ref().is_some_and(|v| *v != base.chain_id)
                || self
                    .genesis_time_ms
                    .is_some_and(|v| v != base.genesis_time_ms)
                || self
                    .block_interval_ms
                    .is_some_and(|v| v != base.block_interval_ms);
            ensure!(
                !differs,
                "a fork shares the original's genesis and blocks below --fork-at: only --blocks \
                 may differ from {}",
                original.display()
            );
            return Ok(ChainSpec {
                blocks: self.blocks.unwrap_or(base.blocks),
                fork_at: self.fork_at,
                ..base
            });
        }
        let blocks = self.blocks.context("--blocks is required")?;
        let mut spec = ChainSpec::ending_now(
            self.chain_id.as_deref().unwrap_or("headway-gen"),
            self.validators.unwrap_or(4),
            blocks,
            self.hand_over_every.unwrap_or(100),
        );
        if let Some(e) = self.events_per_block {
            spec.events_per_block = e;
        }
        if let Some(ms) = self.block_interval_ms {
            spec.block_interval_ms = ms;
            spec.genesis_time_ms =
                super::now_ms().saturating_sub(blocks.saturating_add(1).saturating_mul(ms));
        }
        if let Some(t) = self.genesis_time_ms {
            spec.genesis_time_ms = t;
        }
        Ok(spec)
    }
}

/// `headway gen-chain`: generates, checks a fork's genesis against the original's, prints a
/// summary with the time taken.
pub fn run(args: GenChainArgs) -> Result<()> {
    let spec = args.spec()?;
    let started = Instant::now();
    let fixture = generate(&spec, &args.out)?;
    if let Some(original) = &args.fork_of {
        let base = Fixture::read(original)?;
        ensure!(
            base.genesis_hash == fixture.genesis_hash,
            "the fork's genesis {} differs from {}'s {}",
            fixture.genesis_hash,
            original.display(),
            base.genesis_hash
        );
    }
    let elapsed = started.elapsed();
    println!(
        "wrote {} blocks ({} validators, hand-overs at {:?}) to {} in {:.2?}",
        fixture.head_height,
        spec.validators,
        fixture.hand_over_heights,
        args.out.display(),
        elapsed
    );
    println!("genesis:    {}", fixture.genesis_hash);
    println!("head:       {} {}", fixture.head_height, fixture.head_hash);
    println!("checkpoint: {}", fixture.checkpoint);
    println!(
        "serve it:   headway node --data-dir {0} --genesis {0}/{GENESIS_FILE} --listen /ip4/127.0.0.1/tcp/0",
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::TrustedHeader;
    use crate::verify::{TrustedState, Verifier};

    fn spec(blocks: u64) -> ChainSpec {
        ChainSpec {
            chain_id: "gen-test".into(),
            validators: 4,
            blocks,
            hand_over_every: 10,
            events_per_block: 2,
            genesis_time_ms: 1_700_000_000_000,
            block_interval_ms: 1_000,
            fork_at: None,
        }
    }

    fn chain(spec: &ChainSpec) -> (Genesis, Vec<FinalizedBlock>) {
        let (genesis, pool) = genesis_of(spec).unwrap();
        let blocks = build_chain(spec, &genesis, &pool).unwrap();
        (genesis, blocks)
    }

    /// Verifies the whole chain from the genesis block as a light client would.
    fn verify_all(genesis: &Genesis, blocks: &[FinalizedBlock]) {
        let g = genesis.block().block.header;
        let trusted = TrustedState {
            hash: g.hash(),
            header: g,
            next_validators: Arc::new(genesis.validators_at(1).clone()),
        };
        let headers: Vec<TrustedHeader> = blocks.iter().map(|b| b.trusted_header()).collect();
        let now = blocks.last().unwrap().block.header.timestamp_ms;
        let end = Verifier::new()
            .verify_range(&trusted, &headers, now)
            .unwrap_or_else(|e| panic!("generated chain does not verify: {e:?}"));
        assert_eq!(end.height(), blocks.len() as u64);
    }

    #[test]
    fn the_chain_verifies_across_hand_overs_with_every_validator_signing() {
        let spec = spec(35);
        let (genesis, blocks) = chain(&spec);
        verify_all(&genesis, &blocks);
        let hand_overs: Vec<u64> = blocks
            .iter()
            .filter(|b| b.next_validators.is_some())
            .map(|b| b.height() + 1)
            .collect();
        assert_eq!(hand_overs, [10, 20, 30]);
        // Keys rotate: after 4 hand-overs of 4 validators no genesis key would sign; here the
        // set of block 30 shares only one key with the genesis set.
        let first = genesis.validators_at(1);
        let later = genesis.validators_at(30);
        let shared = later
            .validators()
            .iter()
            .filter(|v| first.index_of(&v.key).is_some())
            .count();
        assert_eq!(shared, 1);
        for b in &blocks {
            assert_eq!(b.commit.signatures.len(), 4, "block {}", b.height());
            assert_eq!(b.block.events.len(), 2);
        }
    }

    #[test]
    fn the_same_spec_gives_the_same_chain() {
        let spec = spec(12);
        let (g1, a) = chain(&spec);
        let (g2, b) = chain(&spec);
        assert_eq!(g1, g2);
        assert_eq!(a, b);
        let other = ChainSpec {
            genesis_time_ms: spec.genesis_time_ms + 1,
            ..spec
        };
        let (_, c) = chain(&other);
        assert_ne!(a[0].block.header.hash(), c[0].block.header.hash());
    }

    #[test]
    fn a_fork_shares_the_prefix_and_is_validly_signed_after_it() {
        let base = spec(25);
        let fork = ChainSpec {
            fork_at: Some(15),
            ..base.clone()
        };
        let (genesis, a) = chain(&base);
        let (fork_genesis, b) = chain(&fork);
        assert_eq!(genesis, fork_genesis);
        assert_eq!(a[..14], b[..14]);
        for (x, y) in a[14..].iter().zip(&b[14..]) {
            assert_ne!(x.block.header.hash(), y.block.header.hash());
            assert_ne!(x.block.events, y.block.events);
        }
        verify_all(&genesis, &b);
    }

    #[test]
    fn generate_writes_a_store_the_node_opens_and_a_matching_fixture() {
        let dir = tempfile::tempdir().unwrap();
        let spec = spec(30);
        let fixture = generate(&spec, dir.path()).unwrap();
        assert_eq!(fixture.head_height, 30);
        assert_eq!(fixture.hand_over_heights, [10, 20, 30]);
        assert!(generate(&spec, dir.path()).is_err(), "overwrote a chain");
        assert_eq!(Fixture::read(dir.path()).unwrap(), fixture);

        let text = std::fs::read_to_string(dir.path().join(GENESIS_FILE)).unwrap();
        let genesis = Genesis::from_json(&text).unwrap();
        let store = open_store(dir.path(), &genesis, None).unwrap();
        assert_eq!(store.head().unwrap().unwrap().hash, fixture.head_hash);
        let checkpoint = fixture.checkpoint().unwrap();
        let header = store.header(1).unwrap().unwrap();
        checkpoint.check_header(&header.header).unwrap();
        assert!(!fixture.samples.is_empty());
        for s in &fixture.samples {
            let loc = store.event_location(&s.event_id).unwrap().unwrap();
            assert_eq!((loc.height, loc.index), (s.height, s.index));
        }
        assert_eq!(fixture.samples.last().unwrap().height, 30);
    }

    #[test]
    fn a_spec_out_of_range_is_refused() {
        assert!(genesis_of(&ChainSpec {
            validators: 0,
            ..spec(5)
        })
        .is_err());
        assert!(genesis_of(&ChainSpec {
            fork_at: Some(6),
            ..spec(5)
        })
        .is_err());
    }
}
