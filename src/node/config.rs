//! Node configuration: a TOML file, overridable by command-line flags and `HEADWAY_*`
//! environment variables (the CLI merges them; this module only parses and validates).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::net::{TlsConfig, TlsError};

/// Everything a node needs to start, as read from `headway node --config node.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Folder for the redb database, the node identity key and the WebRTC certificate.
    pub data_dir: PathBuf,
    /// Path of the genesis JSON (`headway genesis` writes one).
    pub genesis: PathBuf,
    /// libp2p listen addresses, e.g. `/ip4/0.0.0.0/tcp/30333`, `/ip4/0.0.0.0/tcp/30334/ws`,
    /// `/ip4/0.0.0.0/tcp/443/tls/ws` (with `tls_certificate`), `/ip4/0.0.0.0/udp/30335/webrtc-direct`.
    #[serde(default)]
    pub listen: Vec<String>,
    /// Peers to dial at start, as multiaddrs ending in `/p2p/<peer id>`.
    #[serde(default)]
    pub bootnodes: Vec<String>,
    /// HTTP API address; `None` disables the API.
    #[serde(default)]
    pub http: Option<SocketAddr>,
    /// Hex seed file of this node's validator key; `None` runs a non-validating full node.
    #[serde(default)]
    pub validator_key: Option<PathBuf>,
    #[serde(default)]
    pub consensus: ConsensusTimeouts,
    /// Folder served under `/` by the HTTP API (the light-client page), if any.
    #[serde(default)]
    pub www: Option<PathBuf>,
    /// PEM certificate chain served on `/tls/ws` (wss) listen addresses; needs
    /// `tls_private_key`.
    #[serde(default)]
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key of `tls_certificate`.
    #[serde(default)]
    pub tls_private_key: Option<PathBuf>,
    /// Once listening, write the listen multiaddrs (with `/p2p/<peer id>`) here, one per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr_file: Option<PathBuf>,
    /// Test only: tamper with served answers (see `node::dishonest`); never set it otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dishonest: Option<super::dishonest::Dishonest>,
    /// Warp sync: a checkpoint (its one-line text or JSON, or `@FILE` to read one) at which a
    /// node with an empty data directory starts its chain, from a snapshot fetched from peers
    /// and checked against it, instead of downloading every block from genesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warp_checkpoint: Option<String>,
    /// How block sync fetches blocks: `fast` (whole blocks, one pass) or `header-first`
    /// (headers verified first, then bodies checked against them).
    #[serde(default)]
    pub sync_mode: SyncModeSetting,
    /// Peer ids whose answers block sync prefers when several peers can serve a range (their
    /// data is verified like anyone's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trusted_peers: Vec<String>,
}

/// The `sync_mode` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SyncModeSetting {
    #[default]
    Fast,
    HeaderFirst,
}

impl From<SyncModeSetting> for crate::sync::SyncMode {
    fn from(s: SyncModeSetting) -> Self {
        match s {
            SyncModeSetting::Fast => crate::sync::SyncMode::Fast,
            SyncModeSetting::HeaderFirst => crate::sync::SyncMode::HeaderFirst,
        }
    }
}

/// Consensus timeouts in milliseconds; a round `r` waits `base + r × delta`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusTimeouts {
    pub block_interval_ms: u64,
    pub propose_ms: u64,
    pub propose_delta_ms: u64,
    pub vote_ms: u64,
    pub vote_delta_ms: u64,
}

impl Default for ConsensusTimeouts {
    fn default() -> Self {
        ConsensusTimeouts {
            block_interval_ms: 1_000,
            propose_ms: 1_500,
            propose_delta_ms: 500,
            vote_ms: 500,
            vote_delta_ms: 250,
        }
    }
}

/// Why a configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid listen or bootnode address {addr:?}: {message}")]
    Address { addr: String, message: String },
    #[error("invalid validator key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("cannot read the warp checkpoint file {path}: {error}")]
    CheckpointRead {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid warp checkpoint: {0}")]
    Checkpoint(#[from] crate::chain::CheckpointError),
    #[error("tls_certificate and tls_private_key go together: {missing} is missing")]
    TlsIncomplete { missing: &'static str },
    // Not `source` fields: the message already says why, and `{:#}` would say it twice.
    #[error("cannot read TLS file {path}: {error}")]
    TlsRead {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("unusable TLS certificate {certificate} / key {private_key}: {error}")]
    Tls {
        certificate: PathBuf,
        private_key: PathBuf,
        error: TlsError,
    },
}

impl NodeConfig {
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_owned(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<NodeConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The warp checkpoint, if configured: parsed from the setting, or from the file it names
    /// after `@`.
    pub fn warp_checkpoint(&self) -> Result<Option<crate::chain::Checkpoint>, ConfigError> {
        let Some(setting) = &self.warp_checkpoint else {
            return Ok(None);
        };
        let text = match setting.strip_prefix('@') {
            Some(path) => {
                std::fs::read_to_string(path).map_err(|error| ConfigError::CheckpointRead {
                    path: path.into(),
                    error,
                })?
            }
            None => setting.clone(),
        };
        Ok(Some(crate::chain::Checkpoint::parse(text.trim())?))
    }

    /// Reads and checks the `/tls/ws` certificate and key, if configured: both files must be
    /// readable PEM, and the key must belong to the certificate.
    pub fn websocket_tls(&self) -> Result<Option<TlsConfig>, ConfigError> {
        let (certificate, private_key) = match (&self.tls_certificate, &self.tls_private_key) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(ConfigError::TlsIncomplete {
                    missing: "tls_private_key",
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError::TlsIncomplete {
                    missing: "tls_certificate",
                })
            }
            (Some(c), Some(k)) => (c, k),
        };
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path).map_err(|error| ConfigError::TlsRead {
                path: path.clone(),
                error,
            })
        };
        let tls = TlsConfig {
            certificate_chain_pem: read(certificate)?,
            private_key_pem: read(private_key)?,
        };
        tls.validate().map_err(|error| ConfigError::Tls {
            certificate: certificate.clone(),
            private_key: private_key.clone(),
            error,
        })?;
        Ok(Some(tls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_minimal_config_with_defaults() {
        let c = NodeConfig::parse("data_dir = \"d\"\ngenesis = \"g.json\"\n").unwrap();
        assert_eq!(c.data_dir, PathBuf::from("d"));
        assert_eq!(c.consensus, ConsensusTimeouts::default());
        assert!(c.listen.is_empty() && c.http.is_none() && c.validator_key.is_none());
    }

    #[test]
    fn round_trips_through_toml() {
        let c = NodeConfig {
            data_dir: "data".into(),
            genesis: "genesis.json".into(),
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            bootnodes: vec![],
            http: Some("127.0.0.1:8080".parse().unwrap()),
            validator_key: Some("key.hex".into()),
            consensus: ConsensusTimeouts::default(),
            www: None,
            tls_certificate: Some("cert.pem".into()),
            tls_private_key: Some("key.pem".into()),
            addr_file: Some("addrs.txt".into()),
            dishonest: Some(super::super::dishonest::Dishonest::WrongParent),
            warp_checkpoint: Some("@checkpoint.txt".into()),
            sync_mode: SyncModeSetting::HeaderFirst,
            trusted_peers: vec!["12D3KooWAbc".into()],
        };
        assert_eq!(NodeConfig::parse(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn rejects_unknown_fields_and_bad_types() {
        assert!(NodeConfig::parse("data_dir = \"d\"\ngenesis = \"g\"\nlisten_addr = 1\n").is_err());
        assert!(NodeConfig::parse("data_dir = 3\ngenesis = \"g\"\n").is_err());
        assert!(NodeConfig::parse("genesis = \"g\"\n").is_err());
    }

    #[test]
    fn tls_needs_both_files() {
        let mut c = NodeConfig::parse("data_dir = \"d\"\ngenesis = \"g\"\n").unwrap();
        assert!(c.websocket_tls().unwrap().is_none());
        c.tls_certificate = Some("cert.pem".into());
        assert!(matches!(
            c.websocket_tls(),
            Err(ConfigError::TlsIncomplete {
                missing: "tls_private_key"
            })
        ));
        c.tls_certificate = None;
        c.tls_private_key = Some("key.pem".into());
        assert!(matches!(
            c.websocket_tls(),
            Err(ConfigError::TlsIncomplete {
                missing: "tls_certificate"
            })
        ));
    }

    #[test]
    fn sync_mode_parses_and_rejects_unknown_modes() {
        let c = NodeConfig::parse("data_dir = \"d\"\ngenesis = \"g\"\n").unwrap();
        assert_eq!(c.sync_mode, SyncModeSetting::Fast);
        let c =
            NodeConfig::parse("data_dir = \"d\"\ngenesis = \"g\"\nsync_mode = \"header-first\"\n")
                .unwrap();
        assert_eq!(c.sync_mode, SyncModeSetting::HeaderFirst);
        assert!(
            NodeConfig::parse("data_dir = \"d\"\ngenesis = \"g\"\nsync_mode = \"warp\"\n").is_err()
        );
    }

    #[test]
    fn warp_checkpoint_errors_are_typed() {
        let mut c = NodeConfig::parse("data_dir = \"d\"\ngenesis = \"g\"\n").unwrap();
        assert_eq!(c.warp_checkpoint().unwrap(), None);
        c.warp_checkpoint = Some("headway1:not-a-checkpoint".into());
        assert!(matches!(
            c.warp_checkpoint(),
            Err(ConfigError::Checkpoint(_))
        ));
        c.warp_checkpoint = Some("@/nonexistent/checkpoint.txt".into());
        assert!(matches!(
            c.warp_checkpoint(),
            Err(ConfigError::CheckpointRead { .. })
        ));
    }

    #[test]
    fn load_reports_a_missing_file() {
        let err = NodeConfig::load(Path::new("/nonexistent/headway.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
    }
}
