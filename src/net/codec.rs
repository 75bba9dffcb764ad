//! The request-response codec: one `u32` little-endian length, then the canonical encoding.
//!
//! [`HeadwayCodec<P>`] serves one protocol `P` (see [`Rpc`]). Byte caps are applied while
//! reading: a length prefix over the protocol's cap is refused before any body byte is read, and
//! a body is read through `take(len)` into a buffer that grows with the bytes that actually
//! arrive, so a peer cannot make us buffer more than the cap (or reserve the cap up front).
//!
//! A request that is too large or does not decode is not an I/O error: it is read as
//! `Err(`[`FrameError`]`)` so the network can answer it with an [`ErrorResponse`] and lower the
//! sender's score. A bad response is an I/O error of kind `InvalidData` (the request fails).

use std::io;
use std::marker::PhantomData;

use futures::prelude::*;
use libp2p::StreamProtocol;

use crate::chain::{Decode, Encode};
use crate::protocol::{ErrorCode, ErrorResponse, Rpc};

/// Why an inbound request frame was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct FrameError {
    /// `TooLarge` or `Malformed`.
    pub code: ErrorCode,
    pub reason: String,
}

impl FrameError {
    pub fn to_response(&self) -> ErrorResponse {
        ErrorResponse::new(self.code, self.reason.clone())
    }
}

/// A request as read from a stream: decoded, or why not.
pub type InboundFrame<T> = Result<T, FrameError>;

/// The codec of protocol `P`. Its request type is [`InboundFrame<P::Request>`]; writing an
/// `Err` frame is refused.
pub struct HeadwayCodec<P>(PhantomData<fn() -> P>);

impl<P> Default for HeadwayCodec<P> {
    fn default() -> Self {
        HeadwayCodec(PhantomData)
    }
}

impl<P> Clone for HeadwayCodec<P> {
    fn clone(&self) -> Self {
        HeadwayCodec(PhantomData)
    }
}

impl<P: Rpc> HeadwayCodec<P> {
    /// The libp2p protocol name `P` is negotiated under.
    pub fn protocol() -> StreamProtocol {
        StreamProtocol::new(P::PROTOCOL.name())
    }
}

/// What [`read_frame`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Bytes(Vec<u8>),
    /// The length prefix exceeds the cap; the body was not read.
    TooLarge {
        len: usize,
        max: usize,
    },
}

/// Reads one length-prefixed frame of at most `max` bytes.
pub async fn read_frame<T>(io: &mut T, max: usize) -> io::Result<Frame>
where
    T: AsyncRead + Unpin + Send,
{
    let mut prefix = [0u8; 4];
    io.read_exact(&mut prefix).await?;
    let len = u32::from_le_bytes(prefix) as usize;
    if len > max {
        return Ok(Frame::TooLarge { len, max });
    }
    let mut body = Vec::new();
    (&mut *io).take(len as u64).read_to_end(&mut body).await?;
    if body.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "frame announced {len} bytes, the stream ended after {}",
                body.len()
            ),
        ));
    }
    Ok(Frame::Bytes(body))
}

/// The most bytes [`write_frame`] hands to one `write` before flushing.
///
/// A WebRTC stream (libp2p-webrtc-utils) turns each write into one protobuf message of at most
/// 16 KiB, but buffers those messages until its buffer reaches ~16 KiB and then hands the whole
/// buffer to the data channel as *one* SCTP message: a large frame written in one `write_all`
/// so becomes a message of up to ~32 KiB, over the 16 KiB `max-message-size` both ends
/// negotiate, and webrtc-rs fails the write ("outbound packet larger than maximum message
/// size"), resetting the stream. Flushing after every chunk of at most this many bytes keeps
/// each data-channel message one protobuf message of at most `CHUNK + 7` bytes, well under the
/// limit (and under what webrtc-websys lets a browser buffer per stream). Other transports
/// (yamux) just see a few more, smaller writes.
pub const WRITE_CHUNK_BYTES: usize = 8 * 1024;

/// Writes one length-prefixed frame, refusing one over `max` bytes, in chunks of at most
/// [`WRITE_CHUNK_BYTES`] each followed by a flush.
pub async fn write_frame<T>(io: &mut T, bytes: &[u8], max: usize) -> io::Result<()>
where
    T: AsyncWrite + Unpin + Send,
{
    if bytes.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes exceeds the cap {max}", bytes.len()),
        ));
    }
    let prefix = (bytes.len() as u32).to_le_bytes();
    // The prefix travels with the first chunk of the body.
    let first = bytes.len().min(WRITE_CHUNK_BYTES - prefix.len());
    let mut head = Vec::with_capacity(prefix.len() + first);
    head.extend_from_slice(&prefix);
    head.extend_from_slice(&bytes[..first]);
    io.write_all(&head).await?;
    io.flush().await?;
    for chunk in bytes[first..].chunks(WRITE_CHUNK_BYTES) {
        io.write_all(chunk).await?;
        io.flush().await?;
    }
    Ok(())
}

fn invalid_data(reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, reason)
}

impl<P: Rpc> libp2p::request_response::Codec for HeadwayCodec<P> {
    type Protocol = StreamProtocol;
    type Request = InboundFrame<P::Request>;
    type Response = P::Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Self::Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let max = P::PROTOCOL.max_request_bytes();
        Ok(match read_frame(io, max).await? {
            Frame::TooLarge { len, max } => Err(FrameError {
                code: ErrorCode::TooLarge,
                reason: format!("request of {len} bytes exceeds the cap {max}"),
            }),
            Frame::Bytes(bytes) => P::Request::decode(&bytes).map_err(|e| {
                let e = ErrorResponse::from_decode(&e);
                FrameError {
                    code: e.code,
                    reason: e.message,
                }
            }),
        })
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Self::Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        match read_frame(io, P::PROTOCOL.max_response_bytes()).await? {
            Frame::TooLarge { len, max } => Err(invalid_data(format!(
                "{} response of {len} bytes exceeds the cap {max}",
                P::PROTOCOL
            ))),
            Frame::Bytes(bytes) => P::Response::decode(&bytes)
                .map_err(|e| invalid_data(format!("{} response: {e}", P::PROTOCOL))),
        }
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Self::Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let request = request.map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("refused frame: {e}"))
        })?;
        write_frame(io, &request.encode(), P::PROTOCOL.max_request_bytes()).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Self::Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &response.encode(), P::PROTOCOL.max_response_bytes()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Hash;
    use crate::protocol::limits::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES};
    use crate::protocol::{
        GetHeaders, HeadersResponse, HeadersRpc, Status, StatusResponse, StatusRpc,
    };
    use crate::testkit::ChainBuilder;
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;

    fn frame(len: u32, body: &[u8]) -> Vec<u8> {
        let mut v = len.to_le_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    /// Wraps a reader and counts the bytes handed out.
    struct Counting<R> {
        inner: R,
        read: usize,
    }

    impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            let this = &mut *self;
            let r = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
            if let std::task::Poll::Ready(Ok(n)) = r {
                this.read += n;
            }
            r
        }
    }

    /// Records what is written between flushes.
    #[derive(Default)]
    struct Flushes {
        pending: Vec<u8>,
        flushed: Vec<Vec<u8>>,
    }

    impl AsyncWrite for Flushes {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<io::Result<usize>> {
            self.pending.extend_from_slice(buf);
            std::task::Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let pending = std::mem::take(&mut self.pending);
            if !pending.is_empty() {
                self.flushed.push(pending);
            }
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            self.poll_flush(cx)
        }
    }

    #[test]
    fn large_frames_are_written_in_flushed_chunks() {
        for len in [
            0,
            1,
            WRITE_CHUNK_BYTES - 4,
            WRITE_CHUNK_BYTES - 3,
            3 * WRITE_CHUNK_BYTES + 17,
            70_000,
        ] {
            let body: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut io = Flushes::default();
            block_on(write_frame(&mut io, &body, MAX_RESPONSE_BYTES)).unwrap();
            assert!(io.pending.is_empty(), "{len}: unflushed bytes");
            assert!(
                io.flushed.iter().all(|c| c.len() <= WRITE_CHUNK_BYTES),
                "{len}: a chunk over {WRITE_CHUNK_BYTES} bytes"
            );
            assert_eq!(io.flushed.len(), (len + 4).div_ceil(WRITE_CHUNK_BYTES));
            let all = io.flushed.concat();
            assert_eq!(
                block_on(read_frame(&mut Cursor::new(all), MAX_RESPONSE_BYTES)).unwrap(),
                Frame::Bytes(body)
            );
        }
    }

    #[test]
    fn requests_and_responses_round_trip() {
        let mut codec = HeadwayCodec::<HeadersRpc>::default();
        let p = HeadwayCodec::<HeadersRpc>::protocol();
        assert_eq!(p.as_ref(), "/headway/1/headers");
        let req = GetHeaders { start: 3, count: 7 };
        let mut buf = Vec::new();
        block_on(codec.write_request(&p, &mut buf, Ok(req))).unwrap();
        assert_eq!(buf[..4], (buf.len() as u32 - 4).to_le_bytes());
        let read = block_on(codec.read_request(&p, &mut Cursor::new(buf))).unwrap();
        assert_eq!(read, Ok(req));

        let resp = HeadersResponse::Headers(ChainBuilder::new("devnet", 3).headers(4));
        let mut buf = Vec::new();
        block_on(codec.write_response(&p, &mut buf, resp.clone())).unwrap();
        let read = block_on(codec.read_response(&p, &mut Cursor::new(buf))).unwrap();
        assert_eq!(read, resp);
    }

    #[test]
    fn a_malformed_request_is_a_frame_error_not_an_io_error() {
        let mut codec = HeadwayCodec::<HeadersRpc>::default();
        let p = HeadwayCodec::<HeadersRpc>::protocol();
        let bytes = frame(3, &[1, 2, 3]);
        let read = block_on(codec.read_request(&p, &mut Cursor::new(bytes))).unwrap();
        assert_eq!(read.unwrap_err().code, ErrorCode::Malformed);
        // A count over the maximum reads as TooLarge.
        let over = GetHeaders {
            start: 0,
            count: 10_000,
        };
        let bytes = frame(12, &over.encode());
        let read = block_on(codec.read_request(&p, &mut Cursor::new(bytes))).unwrap();
        assert_eq!(read.unwrap_err().code, ErrorCode::TooLarge);
    }

    #[test]
    fn an_oversized_request_is_refused_without_reading_its_body() {
        let mut codec = HeadwayCodec::<HeadersRpc>::default();
        let p = HeadwayCodec::<HeadersRpc>::protocol();
        let bytes = frame(
            MAX_REQUEST_BYTES as u32 + 1,
            &vec![0; MAX_REQUEST_BYTES + 1],
        );
        let mut io = Counting {
            inner: Cursor::new(bytes),
            read: 0,
        };
        let read = block_on(codec.read_request(&p, &mut io)).unwrap();
        assert_eq!(read.unwrap_err().code, ErrorCode::TooLarge);
        assert_eq!(io.read, 4);
    }

    #[test]
    fn an_oversized_response_is_refused_without_reading_its_body() {
        let mut codec = HeadwayCodec::<HeadersRpc>::default();
        let p = HeadwayCodec::<HeadersRpc>::protocol();
        let mut io = Counting {
            inner: Cursor::new(frame(MAX_RESPONSE_BYTES as u32 + 1, &[0; 64])),
            read: 0,
        };
        let err = block_on(codec.read_response(&p, &mut io)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(io.read, 4);
        // Status responses have the small cap.
        let mut codec = HeadwayCodec::<StatusRpc>::default();
        let bytes = frame(5000, &[0; 5000]);
        let err = block_on(codec.read_response(&p, &mut Cursor::new(bytes))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_truncated_or_undecodable_response_fails() {
        let mut codec = HeadwayCodec::<StatusRpc>::default();
        let p = HeadwayCodec::<StatusRpc>::protocol();
        let err =
            block_on(codec.read_response(&p, &mut Cursor::new(frame(10, &[0; 3])))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = block_on(codec.read_response(&p, &mut Cursor::new(frame(1, &[9])))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let ok = StatusResponse::Status(Status {
            head_height: 1,
            head_hash: Hash::ZERO,
            mmr_root: Hash::ZERO,
            lowest_height: 0,
            syncing: false,
        });
        let mut buf = Vec::new();
        block_on(codec.write_response(&p, &mut buf, ok.clone())).unwrap();
        assert_eq!(
            block_on(codec.read_response(&p, &mut Cursor::new(buf))).unwrap(),
            ok
        );
    }

    #[test]
    fn refuses_to_write_oversized_frames_or_error_frames() {
        let mut codec = HeadwayCodec::<HeadersRpc>::default();
        let p = HeadwayCodec::<HeadersRpc>::protocol();
        let mut buf = Vec::new();
        let err = block_on(write_frame(&mut buf, &[0; 11], 10)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(buf.is_empty());
        let frame_err = FrameError {
            code: ErrorCode::Malformed,
            reason: "x".into(),
        };
        let err = block_on(codec.write_request(&p, &mut buf, Err(frame_err))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
