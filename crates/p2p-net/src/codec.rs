//! Adapts p2p-proto's messages to libp2p's request-response codec: each
//! message is one frame, a 4-byte big-endian length then the body, and the
//! length is checked against the message's limit before the body is read.

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use p2p_proto::{frame_header, frame_len, Request, Response, MAX_REQUEST_SIZE, MAX_RESPONSE_SIZE};
use std::io;

/// The codec of [`p2p_proto::SYNC_PROTOCOL`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncCodec;

/// A request as read off a stream. Undecodable bytes are not an I/O error
/// here: request-response drops a failed read without naming the peer, and
/// the host needs the peer to punish it.
#[derive(Clone, Debug)]
pub enum Inbound {
    /// A well-formed request.
    Valid(Request),
    /// What was wrong with the bytes (an oversized frame or a bad body).
    Malformed(String),
}

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, limit: usize) -> io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    io.read_exact(&mut header).await?;
    let len =
        frame_len(header, limit).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    Ok(body)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, body: &[u8]) -> io::Result<()> {
    io.write_all(&frame_header(body.len())).await?;
    io.write_all(body).await?;
    io.close().await
}

impl libp2p::request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Inbound;
    type Response = Response;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Inbound> {
        let body = match read_frame(io, MAX_REQUEST_SIZE).await {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Ok(Inbound::Malformed(e.to_string()))
            }
            Err(e) => return Err(e),
        };
        Ok(match Request::decode(&body) {
            Ok(r) => Inbound::Valid(r),
            Err(e) => Inbound::Malformed(e.to_string()),
        })
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Response> {
        let body = read_frame(io, MAX_RESPONSE_SIZE).await?;
        Response::decode(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Inbound,
    ) -> io::Result<()> {
        match req {
            Inbound::Valid(r) => write_frame(io, &r.encode()).await,
            Inbound::Malformed(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a malformed request is never sent",
            )),
        }
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()> {
        write_frame(io, &res.encode()).await
    }
}

/// Writes requests as raw bytes, unframed, and reads whatever comes back:
/// lets a test play a peer that sends garbage.
#[cfg(feature = "test-utils")]
#[derive(Clone, Copy, Debug, Default)]
pub struct RawCodec;

#[cfg(feature = "test-utils")]
impl libp2p::request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> io::Result<Vec<u8>> {
        Err(io::Error::other("raw peers take no requests"))
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        io.take(u64::try_from(MAX_RESPONSE_SIZE).unwrap_or(u64::MAX))
            .read_to_end(&mut out)
            .await?;
        if out.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the stream ended without an answer",
            ));
        }
        Ok(out)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()> {
        Err(io::Error::other("raw peers send no responses"))
    }
}
