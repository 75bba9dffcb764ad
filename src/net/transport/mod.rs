//! The transports, one file per target; the only place that knows which transports exist.
//!
//! - [`native`]: TCP and WebSocket (plain and `/tls/ws`), both noise + yamux, and
//!   WebRTC-direct, on tokio; listens and dials.
//! - `wasm`: the browser's WebSocket (websocket-websys, noise + yamux) and WebRTC-direct
//!   (webrtc-websys); dials only, since a page cannot listen.
//!
//! Both build the same [`Behaviour`](super::Behaviour) into a swarm with
//! [`build_swarm`], so everything above this module is written once.

use libp2p::multiaddr::Protocol as AddrProtocol;
use libp2p::Multiaddr;

#[cfg(not(target_arch = "wasm32"))]
pub mod native;
#[cfg(target_arch = "wasm32")]
mod wasm;

#[cfg(not(target_arch = "wasm32"))]
pub use native::{
    build_swarm, is_secure_websocket, websocket_tls_config, TlsConfig, TlsError, TransportError,
    WebrtcCertificate,
};
#[cfg(target_arch = "wasm32")]
pub use wasm::{build_swarm, webrtc_available, TransportError};

/// Whether this JS context can make WebRTC connections (always, natively).
#[cfg(not(target_arch = "wasm32"))]
pub fn webrtc_available() -> bool {
    true
}

/// Whether `addr` is a WebRTC-direct address.
pub fn is_webrtc_direct(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, AddrProtocol::WebRTCDirect))
}

/// Whether this build can dial `addr`: the browser dials only `/ws` (and `/tls/ws`, `/wss`)
/// and, from a page but not a Worker, `/webrtc-direct`; native dials those and plain TCP.
pub fn can_dial(addr: &Multiaddr) -> bool {
    let ws = addr
        .iter()
        .any(|p| matches!(p, AddrProtocol::Ws(_) | AddrProtocol::Wss(_)));
    if ws {
        return true;
    }
    if is_webrtc_direct(addr) {
        return webrtc_available();
    }
    !cfg!(target_arch = "wasm32") && addr.iter().any(|p| matches!(p, AddrProtocol::Tcp(_)))
}

/// The swarm a [`Network`](super::Network) drives, with the WebRTC certificate in use.
pub struct BuiltSwarm {
    pub swarm: libp2p::Swarm<super::Behaviour>,
    /// The PEM of the WebRTC certificate in use (native listeners only).
    pub webrtc_pem: Option<String>,
    /// Set when a new certificate was generated: the node persists it.
    pub generated_pem: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn recognizes_webrtc_direct_addresses() {
        assert!(is_webrtc_direct(
            &"/ip4/127.0.0.1/udp/0/webrtc-direct".parse().unwrap()
        ));
        assert!(!is_webrtc_direct(
            &"/ip4/127.0.0.1/tcp/0/ws".parse().unwrap()
        ));
    }

    #[test]
    fn dialable_addresses_depend_on_the_target() {
        assert!(can_dial(&"/ip4/127.0.0.1/tcp/1/ws".parse().unwrap()));
        assert!(can_dial(
            &"/ip4/127.0.0.1/udp/1/webrtc-direct".parse().unwrap()
        ));
        assert_eq!(
            can_dial(&"/ip4/127.0.0.1/tcp/1".parse().unwrap()),
            !cfg!(target_arch = "wasm32")
        );
        assert!(!can_dial(&"/ip4/127.0.0.1/udp/1/quic-v1".parse().unwrap()));
    }
}
