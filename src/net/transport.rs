//! The native transports: TCP and WebSocket (both noise + yamux) and WebRTC-direct, on tokio.
//!
//! This is the only file that knows which transports exist; a wasm32 variant (websocket-websys,
//! webrtc-websys) will sit beside it and build the same [`Behaviour`] into a swarm.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol as AddrProtocol;
use libp2p::{noise, tcp, yamux, Multiaddr, Swarm, SwarmBuilder};
use libp2p_webrtc::tokio::{Certificate, Transport as WebrtcTransport};

use super::behaviour::Behaviour;

/// Why the transports could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid WebRTC certificate PEM: {0}")]
    Certificate(String),
    #[error("cannot build the {transport} transport: {reason}")]
    Build {
        transport: &'static str,
        reason: String,
    },
}

/// A WebRTC certificate and its PEM (which includes the private key: store it privately).
#[derive(Clone, Debug)]
pub struct WebrtcCertificate {
    pub certificate: Certificate,
    pub pem: String,
}

impl WebrtcCertificate {
    /// Generates a new certificate.
    pub fn generate() -> Result<WebrtcCertificate, TransportError> {
        let certificate = Certificate::generate(&mut rand_webrtc::rng())
            .map_err(|e| TransportError::Certificate(error_chain(&e)))?;
        let pem = certificate.serialize_pem();
        Ok(WebrtcCertificate { certificate, pem })
    }

    /// Loads a certificate persisted with [`WebrtcCertificate::pem`].
    pub fn from_pem(pem: &str) -> Result<WebrtcCertificate, TransportError> {
        // webrtc-rs indexes the EXPIRES block without checking its length, so a corrupt file
        // would panic inside `from_pem`; turn that into an error.
        let parsed = catch_unwind(AssertUnwindSafe(|| Certificate::from_pem(pem)))
            .map_err(|_| TransportError::Certificate("the PEM's EXPIRES block is short".into()))?
            .map_err(|e| TransportError::Certificate(error_chain(&e)))?;
        Ok(WebrtcCertificate {
            certificate: parsed,
            pem: pem.to_owned(),
        })
    }

    /// The `/certhash/...` multihash of the certificate, as it appears in listen addresses.
    pub fn certhash(&self) -> Multiaddr {
        Multiaddr::empty().with(AddrProtocol::Certhash(
            self.certificate.fingerprint().to_multihash(),
        ))
    }
}

/// An error and its sources, `: `-separated.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Whether `addr` is a WebRTC-direct address.
pub fn is_webrtc_direct(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, AddrProtocol::WebRTCDirect))
}

fn build_error(transport: &'static str) -> impl FnOnce(String) -> TransportError {
    move |reason| TransportError::Build { transport, reason }
}

/// Builds a tokio swarm for `keypair` over TCP, WebSocket and, with a certificate,
/// WebRTC-direct, running `behaviour`.
pub async fn build_swarm(
    keypair: Keypair,
    webrtc: Option<Certificate>,
    behaviour: Behaviour,
    idle_connection_timeout: Duration,
) -> Result<Swarm<Behaviour>, TransportError> {
    let builder = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| build_error("tcp")(e.to_string()))?;
    let swarm_config =
        |c: libp2p::swarm::Config| c.with_idle_connection_timeout(idle_connection_timeout);
    let swarm = match webrtc {
        Some(certificate) => {
            let Ok(builder) =
                builder.with_other_transport(|key| WebrtcTransport::new(key.clone(), certificate));
            let Ok(builder) = builder
                .with_dns()
                .map_err(|e| build_error("dns")(e.to_string()))?
                .with_websocket(noise::Config::new, yamux::Config::default)
                .await
                .map_err(|e| build_error("websocket")(e.to_string()))?
                .with_behaviour(|_| behaviour);
            builder.with_swarm_config(swarm_config).build()
        }
        None => {
            let Ok(builder) = builder
                .with_dns()
                .map_err(|e| build_error("dns")(e.to_string()))?
                .with_websocket(noise::Config::new, yamux::Config::default)
                .await
                .map_err(|e| build_error("websocket")(e.to_string()))?
                .with_behaviour(|_| behaviour);
            builder.with_swarm_config(swarm_config).build()
        }
    };
    Ok(swarm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_survives_its_pem() {
        let cert = WebrtcCertificate::generate().unwrap();
        let back = WebrtcCertificate::from_pem(&cert.pem).unwrap();
        assert_eq!(back.certhash(), cert.certhash());
        assert_ne!(
            WebrtcCertificate::generate().unwrap().certhash(),
            cert.certhash()
        );
    }

    #[test]
    fn a_corrupt_pem_is_an_error_not_a_panic() {
        for pem in [
            "",
            "garbage",
            "-----BEGIN EXPIRES-----\nAA==\n-----END EXPIRES-----\n",
        ] {
            assert!(
                matches!(
                    WebrtcCertificate::from_pem(pem),
                    Err(TransportError::Certificate(_))
                ),
                "{pem:?}"
            );
        }
    }

    #[test]
    fn recognizes_webrtc_direct_addresses() {
        assert!(is_webrtc_direct(
            &"/ip4/127.0.0.1/udp/0/webrtc-direct".parse().unwrap()
        ));
        assert!(!is_webrtc_direct(
            &"/ip4/127.0.0.1/tcp/0/ws".parse().unwrap()
        ));
    }
}
