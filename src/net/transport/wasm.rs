//! The browser transports: WebSocket (websocket-websys, then noise + yamux) and WebRTC-direct
//! (webrtc-websys, which authenticates and multiplexes itself). A page cannot listen, so the
//! browser only dials; `/ws`, `/tls/ws` (`/wss`) and `/webrtc-direct/certhash/…` addresses.

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::{Boxed, OptionalTransport};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::{noise, webrtc_websys, websocket_websys, yamux, PeerId, Swarm, Transport};

use super::super::behaviour::Behaviour;
use super::super::{NetError, NetworkConfig};
use super::BuiltSwarm;

/// Why the transports could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot build the {transport} transport: {reason}")]
    Build {
        transport: &'static str,
        reason: String,
    },
}

/// Builds a swarm on the JS event loop over the browser's WebSocket and WebRTC.
pub fn build_swarm(config: &NetworkConfig, behaviour: Behaviour) -> Result<BuiltSwarm, NetError> {
    if let Some(addr) = config.listen.first() {
        return Err(NetError::Listen {
            addr: addr.clone(),
            reason: "a browser cannot listen".into(),
        });
    }
    let keypair = &config.keypair;
    let transport = build_transport(keypair)?;
    let swarm_config = libp2p::swarm::Config::with_wasm_executor()
        .with_idle_connection_timeout(config.idle_connection_timeout);
    let swarm = Swarm::new(
        transport,
        behaviour,
        keypair.public().to_peer_id(),
        swarm_config,
    );
    Ok(BuiltSwarm {
        swarm,
        webrtc_pem: None,
        generated_pem: None,
    })
}

fn build_transport(keypair: &Keypair) -> Result<Boxed<(PeerId, StreamMuxerBox)>, TransportError> {
    let noise = noise::Config::new(keypair).map_err(|e| TransportError::Build {
        transport: "noise",
        reason: e.to_string(),
    })?;
    let websocket = websocket_websys::Transport::default()
        .upgrade(Version::V1Lazy)
        .authenticate(noise)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
    // Workers have no RTCPeerConnection, and webrtc-websys expects a `window`: there a
    // WebRTC address is simply not dialable (see `can_dial`), instead of a panic.
    let webrtc = if webrtc_available() {
        OptionalTransport::some(
            webrtc_websys::Transport::new(webrtc_websys::Config::new(keypair))
                .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection))),
        )
    } else {
        OptionalTransport::none()
    };
    Ok(websocket
        .or_transport(webrtc)
        .map(|either, _| either.into_inner())
        .boxed())
}

/// Whether this JS context can make WebRTC connections: a page (Window), not a Worker.
pub fn webrtc_available() -> bool {
    web_sys::window().is_some()
}
