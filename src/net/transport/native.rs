//! The native transports: TCP and WebSocket (both noise + yamux) and WebRTC-direct, on tokio.
//!
//! The WebSocket transport serves `/ws` always and `/tls/ws` (a.k.a. `/wss`) when given a
//! [`TlsConfig`]; it dials both, checking `wss` servers against the webpki (Mozilla) roots
//! plus any extra trusted roots.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use libp2p::core::muxing::{StreamMuxer, StreamMuxerBox, StreamMuxerEvent};
use libp2p::core::transport::{Boxed, OptionalTransport};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol as AddrProtocol;
use libp2p::{dns, noise, tcp, websocket, yamux, Multiaddr, PeerId, Swarm, Transport};
use libp2p_webrtc::tokio::{Certificate, Transport as WebrtcTransport};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::super::behaviour::Behaviour;
use super::super::{NetError, NetworkConfig};
use super::{is_webrtc_direct, BuiltSwarm};

/// Why the transports could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid WebRTC certificate PEM: {0}")]
    Certificate(String),
    #[error("invalid WebSocket TLS configuration: {0}")]
    Tls(#[from] TlsError),
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

/// The certificate chain and private key (PEM) a node serves on `/tls/ws` (`/wss`) listen
/// addresses.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// One or more `CERTIFICATE` blocks: the node's certificate first, then intermediates.
    pub certificate_chain_pem: String,
    /// The certificate's private key: a `PRIVATE KEY` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1) or
    /// `EC PRIVATE KEY` (SEC1) block.
    pub private_key_pem: String,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("certificate_chain_pem", &self.certificate_chain_pem)
            .field("private_key_pem", &"<redacted>")
            .finish()
    }
}

/// Why a [`TlsConfig`] (or a trusted root) is unusable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("the certificate PEM holds no CERTIFICATE block")]
    NoCertificate,
    #[error("invalid certificate: {0}")]
    Certificate(String),
    #[error("the private key PEM holds no PRIVATE KEY block")]
    NoPrivateKey,
    #[error("invalid private key: {0}")]
    PrivateKey(String),
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    #[error("invalid trusted root certificate: {0}")]
    TrustedRoot(String),
    #[error("the certificate and key are unusable: {0}")]
    Other(String),
}

impl TlsConfig {
    /// Checks that the chain and key parse and that the key belongs to the first certificate.
    pub fn validate(&self) -> Result<(), TlsError> {
        websocket_tls_config(Some(self), &[]).map(|_| ())
    }
}

/// The `CERTIFICATE` blocks of `pem`, in order.
fn parse_certificates(pem: &str) -> Result<Vec<websocket::tls::Certificate>, TlsError> {
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .map(|c| c.map(|der| websocket::tls::Certificate::new(der.to_vec())))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certificates)
}

/// The first private key block of `pem`.
fn parse_private_key(pem: &str) -> Result<websocket::tls::PrivateKey, TlsError> {
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey,
        e => TlsError::PrivateKey(e.to_string()),
    })?;
    let der = key.secret_der().to_vec();
    // `tls::PrivateKey::new` panics on a DER it cannot classify: run its check first.
    PrivateKeyDer::try_from(der.clone()).map_err(|e| TlsError::PrivateKey(e.to_string()))?;
    Ok(websocket::tls::PrivateKey::new(der))
}

/// The typed reason rustls refused a certificate and key.
fn server_error(e: &websocket::tls::Error) -> TlsError {
    let rustls_error = match e {
        websocket::tls::Error::Tls(inner) => inner.downcast_ref::<rustls::Error>(),
        _ => None,
    };
    match rustls_error {
        Some(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            TlsError::KeyMismatch
        }
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
            TlsError::Certificate(error_chain(e))
        }
        // rustls reports a key none of its algorithms can load as `General`.
        Some(rustls::Error::General(_)) => TlsError::PrivateKey(error_chain(e)),
        _ => TlsError::Other(error_chain(e)),
    }
}

/// The WebSocket TLS configuration: serving `server`'s certificate (if any) on `/tls/ws`, and
/// trusting the webpki roots plus every certificate in `trusted_roots` (PEM) when dialing.
pub fn websocket_tls_config(
    server: Option<&TlsConfig>,
    trusted_roots: &[String],
) -> Result<websocket::tls::Config, TlsError> {
    let mut builder = websocket::tls::Config::builder();
    for pem in trusted_roots {
        let roots = parse_certificates(pem).map_err(|e| TlsError::TrustedRoot(e.to_string()))?;
        for root in &roots {
            builder
                .add_trust(root)
                .map_err(|e| TlsError::TrustedRoot(error_chain(&e)))?;
        }
    }
    if let Some(server) = server {
        let certificates = parse_certificates(&server.certificate_chain_pem)?;
        let key = parse_private_key(&server.private_key_pem)?;
        builder
            .server(key, certificates)
            .map_err(|e| server_error(&e))?;
    }
    Ok(builder.finish())
}

/// Whether `addr` is a secure WebSocket address (`/tls/ws`, `/tls/sni/<host>/ws` or `/wss`).
pub fn is_secure_websocket(addr: &Multiaddr) -> bool {
    let has = |f: fn(&AddrProtocol) -> bool| addr.iter().any(|p| f(&p));
    has(|p| matches!(p, AddrProtocol::Wss(_)))
        || (has(|p| matches!(p, AddrProtocol::Tls)) && has(|p| matches!(p, AddrProtocol::Ws(_))))
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

fn build_error(transport: &'static str) -> impl FnOnce(String) -> TransportError {
    move |reason| TransportError::Build { transport, reason }
}

/// Builds a tokio swarm over TCP, WebSocket (`/tls/ws` with [`NetworkConfig::websocket_tls`])
/// and, when a WebRTC-direct address is listened on, WebRTC-direct with the persisted
/// certificate (or a new one, returned for the node to persist), running `behaviour`.
pub fn build_swarm(config: &NetworkConfig, behaviour: Behaviour) -> Result<BuiltSwarm, NetError> {
    let wants_webrtc = config.listen.iter().any(is_webrtc_direct);
    let (webrtc, generated_pem) = match (&config.webrtc_certificate_pem, wants_webrtc) {
        (Some(pem), _) => (Some(WebrtcCertificate::from_pem(pem)?), None),
        (None, true) => {
            let cert = WebrtcCertificate::generate()?;
            let pem = cert.pem.clone();
            (Some(cert), Some(pem))
        }
        (None, false) => (None, None),
    };
    let webrtc_pem = webrtc.as_ref().map(|c| c.pem.clone());
    if config.websocket_tls.is_none() {
        if let Some(addr) = config.listen.iter().find(|a| is_secure_websocket(a)) {
            return Err(NetError::Listen {
                addr: addr.clone(),
                reason: "a /tls/ws (wss) address needs a TLS certificate".into(),
            });
        }
    }
    let websocket_tls = websocket_tls_config(
        config.websocket_tls.as_ref(),
        &config.websocket_trusted_roots,
    )
    .map_err(TransportError::from)?;
    let keypair = &config.keypair;
    let transport = build_transport(keypair, webrtc.map(|c| c.certificate), websocket_tls)?;
    let swarm_config = libp2p::swarm::Config::with_tokio_executor()
        .with_idle_connection_timeout(config.idle_connection_timeout);
    let swarm = Swarm::new(
        transport,
        behaviour,
        keypair.public().to_peer_id(),
        swarm_config,
    );
    Ok(BuiltSwarm {
        swarm,
        webrtc_pem,
        generated_pem,
    })
}

/// How long an accepted WebRTC-direct connection holds back our outbound streams when the
/// dialer opens none of its own (see [`OutboundAfterInbound`]).
pub const WEBRTC_OUTBOUND_GRACE: Duration = Duration::from_secs(2);

/// A WebRTC-direct connection we accepted, whose outbound streams wait until the dialer has
/// opened a stream (or [`WEBRTC_OUTBOUND_GRACE`] has passed).
///
/// In WebRTC-direct the listener is the Noise initiator, so it finishes the handshake one
/// message before the dialer and starts opening data channels at once. A browser dialer
/// (libp2p-webrtc-websys) only installs its `ondatachannel` handler once its side of the
/// handshake is done, and the browser neither queues nor replays `datachannel` events that fire
/// before that: the channel is acknowledged at the SCTP level but never surfaces as a stream, so
/// whatever we open in that window (our Hello, identify, gossipsub) is silently lost and times
/// out. The dialer can only open a stream once its connection is set up, so its first inbound
/// stream proves that our data channels will be seen from then on.
struct OutboundAfterInbound<M> {
    inner: M,
    /// Whether outbound streams may be opened.
    open: bool,
    /// How long to wait for the dialer's first stream, and the timer once started.
    grace: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    waker: Option<Waker>,
}

impl<M> OutboundAfterInbound<M> {
    /// Wraps `inner`; only a connection we accepted (`gated`) holds its outbound streams back.
    fn new(inner: M, gated: bool) -> Self {
        Self::with_grace(inner, gated, WEBRTC_OUTBOUND_GRACE)
    }

    fn with_grace(inner: M, gated: bool, grace: Duration) -> Self {
        OutboundAfterInbound {
            inner,
            open: !gated,
            grace,
            timer: None,
            waker: None,
        }
    }

    fn open_outbound(&mut self) {
        self.open = true;
        self.timer = None;
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

impl<M: StreamMuxer + Unpin> StreamMuxer for OutboundAfterInbound<M> {
    type Substream = M::Substream;
    type Error = M::Error;

    fn poll_inbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let inbound = Pin::new(&mut self.inner).poll_inbound(cx);
        if !self.open && matches!(inbound, Poll::Ready(Ok(_))) {
            self.open_outbound();
        }
        inbound
    }

    fn poll_outbound(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        if !self.open {
            let grace = self.grace;
            let timer = self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(grace)));
            if timer.as_mut().poll(cx).is_pending() {
                self.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            tracing::debug!("the WebRTC dialer opened no stream; opening ours anyway");
            self.open_outbound();
        }
        Pin::new(&mut self.inner).poll_outbound(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        Pin::new(&mut self.inner).poll(cx)
    }
}

/// The transport `SwarmBuilder`'s tcp → other (WebRTC) → dns → websocket chain builds, except
/// that the WebSocket transport gets a TLS configuration (the builder offers no way to set one).
///
/// As in the builder, the WebSocket transport sits outermost with its own DNS inside, so a
/// `/dns/<host>/tcp/443/tls/ws` dial still sees the host name for SNI and the certificate check.
fn build_transport(
    keypair: &Keypair,
    webrtc: Option<Certificate>,
    websocket_tls: websocket::tls::Config,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, TransportError> {
    let tcp_config = || tcp::Config::default().nodelay(true);
    let noise = || noise::Config::new(keypair).map_err(|e| build_error("noise")(e.to_string()));

    let tcp = tcp::tokio::Transport::new(tcp_config())
        .upgrade(Version::V1Lazy)
        .authenticate(noise()?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
    let webrtc = match webrtc {
        Some(certificate) => {
            OptionalTransport::some(WebrtcTransport::new(keypair.clone(), certificate).map(
                |(peer, connection), endpoint| {
                    let connection = OutboundAfterInbound::new(connection, endpoint.is_listener());
                    (peer, StreamMuxerBox::new(connection))
                },
            ))
        }
        None => OptionalTransport::none(),
    };
    let tcp_webrtc = dns::tokio::Transport::system(
        tcp.or_transport(webrtc)
            .map(|either, _| either.into_inner()),
    )
    .map_err(|e| build_error("dns")(e.to_string()))?;

    let ws_inner = dns::tokio::Transport::system(tcp::tokio::Transport::new(tcp_config()))
        .map_err(|e| build_error("websocket")(e.to_string()))?;
    let mut ws = websocket::Config::new(ws_inner);
    ws.set_tls_config(websocket_tls);
    let ws = ws
        .upgrade(Version::V1Lazy)
        .authenticate(noise()?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));

    Ok(ws
        .or_transport(tcp_webrtc)
        .map(|either, _| either.into_inner())
        .boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A muxer whose inbound streams are handed in by the test and whose outbound streams are
    /// always ready (streams are numbers, over an in-memory cursor).
    #[derive(Default)]
    struct FakeMuxer {
        inbound: std::collections::VecDeque<u8>,
        outbound: u8,
    }

    impl StreamMuxer for FakeMuxer {
        type Substream = futures::io::Cursor<Vec<u8>>;
        type Error = std::io::Error;

        fn poll_inbound(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Result<Self::Substream, Self::Error>> {
            match self.inbound.pop_front() {
                Some(n) => Poll::Ready(Ok(futures::io::Cursor::new(vec![n]))),
                None => Poll::Pending,
            }
        }

        fn poll_outbound(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Result<Self::Substream, Self::Error>> {
            self.outbound += 1;
            Poll::Ready(Ok(futures::io::Cursor::new(vec![self.outbound])))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn poll(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
            Poll::Pending
        }
    }

    fn poll_outbound<M: StreamMuxer + Unpin>(m: &mut OutboundAfterInbound<M>) -> bool {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        Pin::new(m).poll_outbound(&mut cx).is_ready()
    }

    fn poll_inbound<M: StreamMuxer + Unpin>(m: &mut OutboundAfterInbound<M>) -> bool {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        Pin::new(m).poll_inbound(&mut cx).is_ready()
    }

    #[tokio::test]
    async fn an_accepted_webrtc_connection_opens_streams_after_the_dialers_first() {
        let mut m = OutboundAfterInbound::new(FakeMuxer::default(), true);
        assert!(!poll_outbound(&mut m));
        assert!(!poll_inbound(&mut m));
        assert!(!poll_outbound(&mut m), "no inbound stream yet");
        m.inner.inbound.push_back(7);
        assert!(poll_inbound(&mut m));
        assert!(poll_outbound(&mut m));
        assert_eq!(m.inner.outbound, 1);
    }

    #[tokio::test]
    async fn a_dialed_webrtc_connection_opens_streams_at_once() {
        let mut m = OutboundAfterInbound::new(FakeMuxer::default(), false);
        assert!(poll_outbound(&mut m));
    }

    #[tokio::test]
    async fn an_accepted_webrtc_connection_opens_streams_after_the_grace_anyway() {
        let grace = Duration::from_millis(50);
        let mut m = OutboundAfterInbound::with_grace(FakeMuxer::default(), true, grace);
        assert!(!poll_outbound(&mut m));
        tokio::time::sleep(grace * 2).await;
        assert!(poll_outbound(&mut m));
        assert!(poll_outbound(&mut m));
    }

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
    fn recognizes_secure_websocket_addresses() {
        for (addr, secure) in [
            ("/ip4/127.0.0.1/tcp/443/tls/ws", true),
            ("/ip4/127.0.0.1/tcp/443/wss", true),
            ("/dns4/example.com/tcp/443/tls/sni/example.com/ws", true),
            ("/ip4/127.0.0.1/tcp/80/ws", false),
            ("/ip4/127.0.0.1/tcp/30333", false),
        ] {
            assert_eq!(
                is_secure_websocket(&addr.parse().unwrap()),
                secure,
                "{addr}"
            );
        }
    }
}
