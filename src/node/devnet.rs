//! `headway devnet`: a local network on loopback in one process: validators, a full node
//! that serves browsers (TCP, WebSocket, WebRTC-direct, HTTP), and a stream of synthetic
//! signed audit events. Everything lives under one folder and survives restarts.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use libp2p::Multiaddr;

use super::config::ConsensusTimeouts;
use super::keys;
use super::service::{self, NodeHandle, NodeParams};
use crate::chain::{AuditEvent, ChainId, Checkpoint, Genesis, Outcome, Validator, ValidatorSet};
use crate::crypto::ed25519::SigningKey;

/// Options of `headway devnet`.
#[derive(Clone, Debug, clap::Args)]
pub struct DevnetOptions {
    /// Folder for the genesis, keys and every node's data (reused on the next start).
    #[arg(long, default_value = "devnet-data")]
    pub dir: PathBuf,
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Number of non-validating full nodes (the first one serves HTTP and browsers).
    #[arg(long, default_value_t = 1)]
    pub full_nodes: usize,
    /// Synthetic audit events submitted per second (0 to disable).
    #[arg(long, default_value_t = 5.0)]
    pub events_per_second: f64,
    /// Target time between blocks, ms.
    #[arg(long, default_value_t = 1000)]
    pub block_interval_ms: u64,
    /// Validator-set hand-over every this many blocks (the voting powers rotate), 0 for none.
    #[arg(long, default_value_t = 100)]
    pub hand_over_every: u64,
    /// HTTP API (and light-client page) address of the first full node.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// First of the loopback ports used: the full node takes base (TCP), base+1 (WebSocket)
    /// and base+2 (UDP, WebRTC-direct); validator i takes base+10+i (TCP).
    #[arg(long, default_value_t = 30400)]
    pub base_port: u16,
    /// Folder of the light-client page served by the HTTP API (`www/` when present); its
    /// sibling `pkg/` (the npm package) is served at `/pkg/`.
    #[arg(long)]
    pub www: Option<PathBuf>,
    /// Chain id of a new devnet.
    #[arg(long, default_value = "headway-devnet")]
    pub chain_id: String,
}

/// How many hand-overs a new devnet genesis schedules.
const SCHEDULED_HAND_OVERS: u64 = 200;

fn key_file(dir: &Path, name: &str) -> Result<SigningKey> {
    let path = dir.join(format!("{name}.key"));
    if path.exists() {
        Ok(keys::read_key_file(&path)?)
    } else {
        Ok(keys::generate_key_file(&path)?)
    }
}

/// Equal powers, except validator `turn % n` weighs double: every hand-over changes the set's
/// hash while every validator keeps signing.
fn rotated_set(keys: &[SigningKey], turn: u64) -> Result<ValidatorSet> {
    let n = keys.len() as u64;
    let validators = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Validator {
            key: k.public_key(),
            power: if turn > 0 && (i as u64) == (turn - 1) % n {
                20
            } else {
                10
            },
        })
        .collect();
    Ok(ValidatorSet::new(validators)?)
}

/// The devnet genesis, created on first start and read back afterwards.
pub fn load_or_create_genesis(options: &DevnetOptions, keys: &[SigningKey]) -> Result<Genesis> {
    let path = options.dir.join("genesis.json");
    if path.exists() {
        let text = std::fs::read_to_string(&path)?;
        return Genesis::from_json(&text).with_context(|| format!("{}", path.display()));
    }
    let mut schedule = BTreeMap::new();
    if options.hand_over_every > 0 {
        for turn in 1..=SCHEDULED_HAND_OVERS {
            schedule.insert(turn * options.hand_over_every, rotated_set(keys, turn)?);
        }
    }
    let genesis = Genesis::new(
        ChainId::new(options.chain_id.clone())?,
        super::now_ms(),
        rotated_set(keys, 0)?,
        schedule,
    )?;
    std::fs::write(&path, genesis.to_json())?;
    Ok(genesis)
}

fn addr(s: String) -> Result<Multiaddr> {
    s.parse().with_context(|| format!("address {s}"))
}

/// A running devnet.
pub struct Devnet {
    pub validators: Vec<NodeHandle>,
    pub full_nodes: Vec<NodeHandle>,
    pub genesis: Genesis,
    events: Option<tokio::task::JoinHandle<()>>,
}

impl Devnet {
    /// The node that serves HTTP and browsers.
    pub fn gateway(&self) -> &NodeHandle {
        self.full_nodes.first().unwrap_or(&self.validators[0])
    }

    pub async fn stop(mut self) -> Result<()> {
        if let Some(events) = self.events.take() {
            events.abort();
        }
        for node in self.full_nodes.into_iter().chain(self.validators) {
            node.stop().await?;
        }
        Ok(())
    }
}

/// Starts every node of the devnet and the event generator.
pub async fn start(options: &DevnetOptions) -> Result<Devnet> {
    anyhow::ensure!(
        options.validators >= 1,
        "a devnet needs at least one validator"
    );
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("creating {}", options.dir.display()))?;
    let keys_dir = options.dir.join("keys");
    std::fs::create_dir_all(&keys_dir)?;
    let keys = (0..options.validators)
        .map(|i| key_file(&keys_dir, &format!("validator-{i}")))
        .collect::<Result<Vec<_>>>()?;
    let genesis = load_or_create_genesis(options, &keys)?;
    let timeouts = ConsensusTimeouts {
        block_interval_ms: options.block_interval_ms,
        ..ConsensusTimeouts::default()
    };
    let consensus = service::consensus_config(&timeouts);
    let params = |data: &str,
                  key: Option<SigningKey>,
                  listen: Vec<Multiaddr>,
                  boot: Vec<Multiaddr>,
                  http| NodeParams {
        data_dir: options.dir.join(data),
        genesis: genesis.clone(),
        validator_key: key,
        listen,
        bootnodes: boot,
        http,
        consensus: consensus.clone(),
        block_interval_ms: options.block_interval_ms,
        www: options.www.clone(),
        dishonest: None,
        warp_from: None,
        trusted_peers: Vec::new(),
    };

    let mut validators: Vec<NodeHandle> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let port = options.base_port + 10 + i as u16;
        let listen = vec![addr(format!("/ip4/127.0.0.1/tcp/{port}"))?];
        let boot: Vec<Multiaddr> = validators
            .iter()
            .filter_map(|v| v.listen.first().cloned())
            .collect();
        let node = service::start(params(
            &format!("validator-{i}"),
            Some(key.clone()),
            listen,
            boot,
            None,
        ))
        .await
        .with_context(|| format!("starting validator {i}"))?;
        validators.push(node);
    }
    let boot: Vec<Multiaddr> = validators
        .iter()
        .filter_map(|v| v.listen.first().cloned())
        .collect();
    let mut full_nodes = Vec::new();
    for i in 0..options.full_nodes {
        let (listen, http) = if i == 0 {
            let p = options.base_port;
            (
                vec![
                    addr(format!("/ip4/127.0.0.1/tcp/{p}"))?,
                    addr(format!("/ip4/127.0.0.1/tcp/{}/ws", p + 1))?,
                    addr(format!("/ip4/127.0.0.1/udp/{}/webrtc-direct", p + 2))?,
                ],
                Some(options.http),
            )
        } else {
            (vec![addr("/ip4/127.0.0.1/tcp/0".into())?], None)
        };
        let node = service::start(params(
            &format!("full-{i}"),
            None,
            listen,
            boot.clone(),
            http,
        ))
        .await
        .with_context(|| format!("starting full node {i}"))?;
        full_nodes.push(node);
    }

    let mut devnet = Devnet {
        validators,
        full_nodes,
        genesis,
        events: None,
    };
    if options.events_per_second > 0.0 {
        let source = key_file(&keys_dir, "event-source")?;
        let commands = devnet.gateway().commands.clone();
        let period = Duration::from_secs_f64(1.0 / options.events_per_second);
        devnet.events = Some(tokio::spawn(generate_events(source, commands, period)));
    }
    Ok(devnet)
}

/// Submits a synthetic signed audit event every `period`.
async fn generate_events(
    source: SigningKey,
    commands: tokio::sync::mpsc::Sender<super::api::Command>,
    period: Duration,
) {
    const KINDS: [&str; 4] = [
        "user.login",
        "document.read",
        "document.update",
        "role.grant",
    ];
    let mut tick = tokio::time::interval(period);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        n += 1;
        let event = AuditEvent {
            kind: KINDS[(n % 4) as usize].into(),
            actor: format!("user-{}", n % 17),
            resource: format!("doc/{}", n % 101),
            outcome: if n.is_multiple_of(11) {
                Outcome::Denied
            } else {
                Outcome::Success
            },
            metadata: n.to_le_bytes().to_vec(),
            time_ms: super::now_ms(),
            source: source.public_key(),
        }
        .sign(&source);
        let (reply, answer) = tokio::sync::oneshot::channel();
        let command = super::api::Command::SubmitEvent {
            event: Box::new(event),
            reply,
        };
        if commands.send(command).await.is_err() {
            return;
        }
        if let Ok(Err(e)) = answer.await {
            tracing::debug!(error = %e, "synthetic event refused");
        }
    }
}

/// Runs the devnet until `shutdown` resolves, printing how to connect.
pub async fn run(mut options: DevnetOptions, shutdown: impl Future<Output = ()>) -> Result<()> {
    if options.www.is_none() && Path::new("www").is_dir() {
        options.www = Some(PathBuf::from("www"));
    }
    let mut page_note = None;
    if let Some(www) = options.www.take() {
        let (root, note) = site_root(&options.dir, &www)?;
        options.www = Some(root);
        page_note = note;
    }
    let devnet = start(&options).await?;
    let gateway = devnet.gateway();
    println!(
        "headway devnet: {} validators, {} full node(s), chain {}",
        devnet.validators.len(),
        devnet.full_nodes.len(),
        devnet.genesis.chain_id
    );
    println!("data:       {}", options.dir.display());
    if let Some(http) = gateway.http {
        println!("HTTP API:   http://{http}/status  (checkpoint: http://{http}/checkpoint)");
        if options.www.is_some() {
            println!(
                "page:       http://{http}/  (light client in the browser){}",
                page_note.as_deref().unwrap_or("")
            );
        }
    }
    if let Some(ws) = gateway.addr_with("/ws") {
        println!("WebSocket:  {ws}");
    }
    if let Some(rtc) = gateway.addr_with("/webrtc-direct") {
        println!("WebRTC:     {rtc}");
    }
    // The checkpoint a light client pastes: the gateway's head once it has one past genesis.
    for _ in 0..50 {
        if gateway.head_height() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let genesis_hash = devnet.genesis.block().block.header.hash();
    println!("genesis:    {genesis_hash}");
    let tcp = gateway
        .listen
        .iter()
        .find(|a| !a.to_string().contains("/ws") && a.to_string().contains("/tcp/"));
    if let Some(tcp) = tcp {
        println!("TCP:        {tcp}");
    }
    if let Some(cp) = checkpoint_of(gateway, &devnet.genesis)? {
        println!("checkpoint: {}", cp.to_text());
        if let Some(tcp) = tcp {
            println!(
                "light:      headway light --checkpoint {} --bootnode {tcp} --genesis-hash {genesis_hash}",
                cp.to_text()
            );
        }
    }
    println!("Ctrl-C stops every node.");
    shutdown.await;
    println!("stopping the devnet…");
    devnet.stop().await
}

/// The folder the HTTP API serves as `/`: `www`'s entries at the root and the npm package
/// (`pkg/`, the sibling of `www`) at `/pkg/`, so the page's `../pkg/headway.js` resolves the
/// same whether it is served here or from the repository root by any static server. It is
/// `<dir>/site`, rebuilt at each start from links (copies where links are unsupported), so
/// edits to `www/` and a rebuilt `pkg/` show on reload. Returns the folder and a note for the
/// page line when `pkg/` is missing.
fn site_root(dir: &Path, www: &Path) -> Result<(PathBuf, Option<String>)> {
    let www = www
        .canonicalize()
        .with_context(|| format!("--www {}", www.display()))?;
    let site = dir.join("site");
    if site.exists() {
        // Removes the links, never what they point to.
        std::fs::remove_dir_all(&site).with_context(|| format!("clearing {}", site.display()))?;
    }
    std::fs::create_dir_all(&site)?;
    for entry in std::fs::read_dir(&www)? {
        let entry = entry?;
        link(&entry.path(), &site.join(entry.file_name()))?;
    }
    let pkg = www.parent().map(|p| p.join("pkg"));
    let note = match pkg {
        Some(pkg) if pkg.join("headway.js").is_file() => {
            link(&pkg, &site.join("pkg"))?;
            None
        }
        _ => Some(format!(
            " — but {}/../pkg/headway.js is missing: run scripts/build-pkg.sh (or scripts/devnet.sh)",
            www.display()
        )),
    };
    Ok((site, note))
}

#[cfg(unix)]
fn link(from: &Path, to: &Path) -> Result<()> {
    std::os::unix::fs::symlink(from, to)
        .with_context(|| format!("linking {} to {}", to.display(), from.display()))
}

#[cfg(not(unix))]
fn link(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for entry in std::fs::read_dir(from)? {
            let entry = entry?;
            link(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to)
            .map(|_| ())
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))
    }
}

/// The checkpoint of a node's current head.
pub fn checkpoint_of(node: &NodeHandle, genesis: &Genesis) -> Result<Option<Checkpoint>> {
    let Some(head) = node.store.head()? else {
        return Ok(None);
    };
    let Some(header) = node.store.header(head.height)? else {
        return Ok(None);
    };
    let next = crate::store::next_validators(&*node.store, genesis, &header)?;
    Ok(Checkpoint::for_header(&header.header, next).ok())
}
