//! The `headway` command line: run a node, make keys and genesis files, start a local devnet.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use super::config::NodeConfig;
use super::{devnet, gen_chain, keys, service};
use crate::chain::{ChainId, Genesis, Validator, ValidatorSet};
use crate::crypto::ed25519::{PublicKey, SigningKey};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "headway",
    version,
    about = "Audit-chain full node, devnet and tools"
)]
struct Cli {
    /// Log filter, e.g. `info` or `headway=debug,libp2p=info`.
    #[arg(long, global = true, env = "HEADWAY_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a full node (a validator if given a key).
    Node(NodeArgs),
    /// Start a local network on loopback: validators, a full node, synthetic events.
    Devnet(devnet::DevnetOptions),
    /// Generate a validator or event-source key (hex seed file) and print its public key.
    Keygen {
        /// Where to write the secret seed (hex). Refuses to overwrite.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the public key of a key file.
    Pubkey {
        #[arg(long)]
        key: PathBuf,
    },
    /// Write a genesis file.
    Genesis(GenesisArgs),
    /// Sign an audit event with a key file and print it as the JSON `POST /events` takes.
    SignEvent(SignEventArgs),
    /// Run a light client: verify headers from a checkpoint, follow the head, prove an event.
    Light(LightArgs),
    /// Generate a long, validly signed chain into a node data dir (for tests and benchmarks).
    GenChain(gen_chain::GenChainArgs),
}

#[derive(Args)]
struct LightArgs {
    /// The checkpoint to trust, as its one-line text form or `@FILE` holding it.
    #[arg(long)]
    checkpoint: String,
    /// Peer multiaddr with /p2p/<id> to dial (repeatable).
    #[arg(long = "bootnode", required = true, value_delimiter = ',')]
    bootnodes: Vec<String>,
    /// The chain's genesis block hash (hex). Peers refuse a handshake with another genesis, so
    /// it is required unless the checkpoint is at height 0 (the genesis itself).
    #[arg(long)]
    genesis_hash: Option<String>,
    /// Verify this event id (hex) once caught up, print the proof's block and exit.
    #[arg(long)]
    verify_event: Option<String>,
    /// Give up if no peer connects (or the first sync stalls) within this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
}

fn light_options(args: LightArgs) -> Result<super::light::LightRunOptions> {
    use super::light::{LightDriverConfig, LightRunOptions};
    let text = match args.checkpoint.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading the checkpoint file {path}"))?,
        None => args.checkpoint.clone(),
    };
    let checkpoint =
        crate::chain::Checkpoint::parse(text.trim()).context("parsing the checkpoint")?;
    let bootnodes = args
        .bootnodes
        .iter()
        .map(|b| {
            b.parse()
                .with_context(|| format!("bootnode {b:?} is not a multiaddr"))
        })
        .collect::<Result<Vec<libp2p::Multiaddr>>>()?;
    let genesis_hash = args
        .genesis_hash
        .as_deref()
        .map(|h| {
            crate::chain::Hash::from_hex(h)
                .map_err(|e| anyhow::anyhow!("--genesis-hash {h:?}: {e}"))
        })
        .transpose()?;
    let verify_event = args
        .verify_event
        .as_deref()
        .map(|h| {
            crate::chain::Hash::from_hex(h)
                .map_err(|e| anyhow::anyhow!("--verify-event {h:?}: {e}"))
        })
        .transpose()?;
    let mut driver = LightDriverConfig::new(checkpoint, bootnodes);
    driver.genesis_hash = genesis_hash;
    // The command keeps its headers in memory: bound them.
    driver.keep_headers = Some(100_000);
    Ok(LightRunOptions {
        driver,
        verify_event,
        sync_timeout: std::time::Duration::from_secs(args.timeout_secs),
    })
}

#[derive(Args)]
struct SignEventArgs {
    /// Key file of the event's source (see `keygen`).
    #[arg(long)]
    key: PathBuf,
    /// What happened, e.g. `user.login`.
    #[arg(long)]
    kind: String,
    #[arg(long)]
    actor: String,
    #[arg(long)]
    resource: String,
    /// success, failure, denied or error.
    #[arg(long, default_value = "success")]
    outcome: String,
    /// Application data, hex.
    #[arg(long, default_value = "")]
    metadata_hex: String,
    /// Event time, ms since the Unix epoch (default: now).
    #[arg(long)]
    time_ms: Option<u64>,
}

fn sign_event(args: SignEventArgs) -> Result<()> {
    let key = keys::read_key_file(&args.key)?;
    let outcome = serde_json::from_value(serde_json::Value::String(args.outcome.clone()))
        .with_context(|| {
            format!(
                "outcome {:?}: expected success, failure, denied or error",
                args.outcome
            )
        })?;
    let event = crate::chain::AuditEvent {
        kind: args.kind,
        actor: args.actor,
        resource: args.resource,
        outcome,
        metadata: hex::decode(&args.metadata_hex).context("metadata is not hex")?,
        time_ms: args.time_ms.unwrap_or_else(super::now_ms),
        source: key.public_key(),
    };
    event.validate()?;
    let signed = event.sign(&key);
    println!("{}", serde_json::to_string(&signed)?);
    eprintln!("event id {}", signed.id());
    Ok(())
}

#[derive(Args)]
struct NodeArgs {
    /// TOML configuration file (see README); flags and env vars override it.
    #[arg(long, env = "HEADWAY_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, env = "HEADWAY_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[arg(long, env = "HEADWAY_GENESIS")]
    genesis: Option<PathBuf>,
    /// libp2p listen multiaddr (repeatable).
    #[arg(long = "listen", env = "HEADWAY_LISTEN", value_delimiter = ',')]
    listen: Vec<String>,
    /// Peer multiaddr with /p2p/<id> to dial at start (repeatable).
    #[arg(long = "bootnode", env = "HEADWAY_BOOTNODES", value_delimiter = ',')]
    bootnodes: Vec<String>,
    /// HTTP API address, e.g. 127.0.0.1:8080.
    #[arg(long, env = "HEADWAY_HTTP")]
    http: Option<std::net::SocketAddr>,
    /// Validator key file (hex seed); omit for a non-validating full node.
    #[arg(long, env = "HEADWAY_VALIDATOR_KEY")]
    validator_key: Option<PathBuf>,
    /// PEM certificate chain for `/tls/ws` (wss) listen addresses; needs --tls-private-key.
    #[arg(long, env = "HEADWAY_TLS_CERTIFICATE")]
    tls_certificate: Option<PathBuf>,
    /// PEM private key of --tls-certificate.
    #[arg(long, env = "HEADWAY_TLS_PRIVATE_KEY")]
    tls_private_key: Option<PathBuf>,
    /// Once listening, write the listen multiaddrs (ending in /p2p/<peer id>) to this file, one
    /// per line, atomically: a script can wait for the file to appear.
    #[arg(long, env = "HEADWAY_ADDR_FILE")]
    addr_file: Option<PathBuf>,
    /// Test only: serve tampered answers (bad-signature, wrong-parent, forged-proof).
    #[arg(long, value_enum, hide = true)]
    dishonest: Option<super::dishonest::Dishonest>,
    /// Warp sync: with an empty data dir, start from this checkpoint's snapshot (checkpoint
    /// text or JSON, or @FILE) instead of syncing every block from genesis.
    #[arg(long, env = "HEADWAY_WARP_CHECKPOINT")]
    warp_checkpoint: Option<String>,
    /// Block sync mode: fast (whole blocks) or header-first (headers, then bodies).
    #[arg(long, value_enum, env = "HEADWAY_SYNC_MODE")]
    sync_mode: Option<super::config::SyncModeSetting>,
    /// A peer id block sync prefers (repeatable); its data is still verified.
    #[arg(
        long = "trusted-peer",
        env = "HEADWAY_TRUSTED_PEERS",
        value_delimiter = ','
    )]
    trusted_peers: Vec<String>,
}

#[derive(Args)]
struct GenesisArgs {
    #[arg(long)]
    chain_id: String,
    /// A validator `PUBKEY_HEX[:POWER]` (repeatable; power defaults to 10).
    #[arg(long = "validator", required = true)]
    validators: Vec<String>,
    /// A hand-over `HEIGHT=PUBKEY[:POWER],PUBKEY[:POWER],...`: from HEIGHT on that set signs.
    #[arg(long = "hand-over")]
    hand_overs: Vec<String>,
    /// Genesis time in ms since the Unix epoch (default: now).
    #[arg(long)]
    time_ms: Option<u64>,
    #[arg(long)]
    out: PathBuf,
}

fn parse_validator(spec: &str) -> Result<Validator> {
    let (key, power) = match spec.split_once(':') {
        Some((k, p)) => (k, p.parse().with_context(|| format!("power in {spec:?}"))?),
        None => (spec, 10),
    };
    let key = PublicKey::from_hex(key).with_context(|| format!("public key in {spec:?}"))?;
    Ok(Validator { key, power })
}

fn parse_set(specs: &[&str]) -> Result<ValidatorSet> {
    let validators = specs
        .iter()
        .map(|s| parse_validator(s))
        .collect::<Result<Vec<_>>>()?;
    Ok(ValidatorSet::new(validators)?)
}

fn genesis(args: GenesisArgs) -> Result<()> {
    let chain_id = ChainId::new(args.chain_id)?;
    let specs: Vec<&str> = args.validators.iter().map(String::as_str).collect();
    let validators = parse_set(&specs)?;
    let mut schedule = BTreeMap::new();
    for h in &args.hand_overs {
        let Some((height, set)) = h.split_once('=') else {
            bail!("hand-over {h:?}: expected HEIGHT=KEY[:POWER],...");
        };
        let height: u64 = height.parse().with_context(|| format!("height in {h:?}"))?;
        let specs: Vec<&str> = set.split(',').collect();
        schedule.insert(height, parse_set(&specs)?);
    }
    let time_ms = args.time_ms.unwrap_or_else(super::now_ms);
    let genesis = Genesis::new(chain_id, time_ms, validators, schedule)?;
    if args.out.exists() {
        bail!("{} exists; refusing to overwrite", args.out.display());
    }
    std::fs::write(&args.out, genesis.to_json())
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "wrote {} (genesis block {})",
        args.out.display(),
        genesis.block().block.header.hash()
    );
    Ok(())
}

fn node_config(args: NodeArgs) -> Result<NodeConfig> {
    let mut config = match &args.config {
        Some(path) => NodeConfig::load(path)?,
        None => NodeConfig {
            data_dir: args
                .data_dir
                .clone()
                .context("--data-dir (or a --config file) is required")?,
            genesis: args
                .genesis
                .clone()
                .context("--genesis (or a --config file) is required")?,
            listen: Vec::new(),
            bootnodes: Vec::new(),
            http: None,
            validator_key: None,
            consensus: Default::default(),
            www: None,
            tls_certificate: None,
            tls_private_key: None,
            addr_file: None,
            dishonest: None,
            warp_checkpoint: None,
            sync_mode: Default::default(),
            trusted_peers: Vec::new(),
        },
    };
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(g) = args.genesis {
        config.genesis = g;
    }
    if !args.listen.is_empty() {
        config.listen = args.listen;
    }
    if !args.bootnodes.is_empty() {
        config.bootnodes = args.bootnodes;
    }
    if args.http.is_some() {
        config.http = args.http;
    }
    if args.validator_key.is_some() {
        config.validator_key = args.validator_key;
    }
    if args.tls_certificate.is_some() {
        config.tls_certificate = args.tls_certificate;
    }
    if args.tls_private_key.is_some() {
        config.tls_private_key = args.tls_private_key;
    }
    if args.addr_file.is_some() {
        config.addr_file = args.addr_file;
    }
    if args.dishonest.is_some() {
        config.dishonest = args.dishonest;
    }
    if args.warp_checkpoint.is_some() {
        config.warp_checkpoint = args.warp_checkpoint;
    }
    if let Some(mode) = args.sync_mode {
        config.sync_mode = mode;
    }
    if !args.trusted_peers.is_empty() {
        config.trusted_peers = args.trusted_peers;
    }
    Ok(config)
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keygen { out } => {
            let key = keys::generate_key_file(&out)?;
            println!("{}", key.public_key());
            Ok(())
        }
        Command::Pubkey { key } => {
            let key: SigningKey = keys::read_key_file(&key)?;
            println!("{}", key.public_key());
            Ok(())
        }
        Command::Genesis(args) => genesis(args),
        Command::SignEvent(args) => sign_event(args),
        Command::Node(args) => {
            let config = node_config(args)?;
            service::block_on_until_ctrl_c(|shutdown| service::run_node(config, shutdown))
        }
        Command::Light(args) => {
            let options = light_options(args)?;
            service::block_on_until_ctrl_c(|shutdown| super::light::run_light(options, shutdown))
        }
        Command::GenChain(args) => gen_chain::run(args),
        Command::Devnet(options) => {
            service::block_on_until_ctrl_c(|shutdown| devnet::run(options, shutdown))
        }
    }
}

/// Parses the command line and runs it; the `headway` binary's `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    super::init_logging(&cli.log);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
