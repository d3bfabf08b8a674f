//! A simulated network link for in-process networks (`/memory/` addresses).
//!
//! Loopback and libp2p's memory transport deliver every byte at once; the
//! internet does not. A [`LinkNetwork`] gives each attached host a region
//! and an upload and download rate, and the memory transport of a host
//! with a [`SimLink`] delays every byte it writes accordingly:
//!
//! - it leaves once the sender's upload has room for it (the sender's
//!   rate, shared by all its connections);
//! - it travels the one-way latency between the two hosts' regions (plus,
//!   with probability `loss`, a retransmission: the round trip and 200 ms);
//! - it arrives once the receiver's download has room for it (shared by
//!   all the receiver's connections).
//!
//! Bytes of one connection arrive in the order written. The receiver's
//! download is booked when a write is made, not when its bytes arrive, so
//! a later write that arrives earlier over a shorter path can wait behind
//! one booked first: an error of at most one write's time on the
//! receiver's link. Each end learns the other's identity from an 8-byte
//! exchange before the connection's upgrades, so both delay what they
//! write.

use futures::channel::mpsc;
use futures::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf};
use futures::{SinkExt, StreamExt};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// Where a host is and how fast its link is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkSpec {
    /// Index into the network's latency matrix.
    pub region: usize,
    /// Upload rate in bits per second (0: unlimited).
    pub up_bits_per_s: u64,
    /// Download rate in bits per second (0: unlimited).
    pub down_bits_per_s: u64,
}

/// A rate shared by every connection of one host: when the link is next free.
#[derive(Debug)]
struct Pacer {
    bits_per_s: u64,
    next_free: Mutex<Option<Instant>>,
}

impl Pacer {
    fn new(bits_per_s: u64) -> Pacer {
        Pacer {
            bits_per_s,
            next_free: Mutex::new(None),
        }
    }

    /// Books `bytes` from `at` on; when they are through.
    fn book(&self, bytes: usize, at: Instant) -> Instant {
        if self.bits_per_s == 0 {
            return at;
        }
        let took = Duration::from_secs_f64(bytes as f64 * 8.0 / self.bits_per_s as f64);
        let mut next = self.next_free.lock().unwrap_or_else(|p| p.into_inner());
        let start = next.map_or(at, |n| n.max(at));
        let end = start + took;
        *next = Some(end);
        end
    }
}

#[derive(Debug)]
struct Host {
    spec: LinkSpec,
    up: Pacer,
    down: Pacer,
}

/// The hosts of one simulated network and the latencies between regions.
#[derive(Debug)]
pub struct LinkNetwork {
    one_way: Vec<Vec<Duration>>,
    loss: f64,
    hosts: Mutex<Vec<Arc<Host>>>,
    seed: Mutex<u64>,
}

impl LinkNetwork {
    /// A network whose one-way latency from region `a` to region `b` is
    /// `one_way[a][b]`, losing a write with probability `loss` (0 to 1);
    /// `seed` makes the losses repeatable.
    pub fn new(one_way: Vec<Vec<Duration>>, loss: f64, seed: u64) -> Arc<LinkNetwork> {
        Arc::new(LinkNetwork {
            one_way,
            loss: loss.clamp(0.0, 1.0),
            hosts: Mutex::new(Vec::new()),
            seed: Mutex::new(seed | 1),
        })
    }

    /// Adds a host with `spec`; give the result to its `NetConfig::link`.
    pub fn attach(self: &Arc<Self>, spec: LinkSpec) -> SimLink {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts.push(Arc::new(Host {
            spec,
            up: Pacer::new(spec.up_bits_per_s),
            down: Pacer::new(spec.down_bits_per_s),
        }));
        SimLink {
            net: self.clone(),
            me: (hosts.len() - 1) as u64,
        }
    }

    fn host(&self, id: u64) -> Option<Arc<Host>> {
        let hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        usize::try_from(id).ok().and_then(|i| hosts.get(i).cloned())
    }

    /// One-way latency between two regions (zero for unknown regions).
    pub fn latency(&self, from: usize, to: usize) -> Duration {
        self.one_way
            .get(from)
            .and_then(|r| r.get(to))
            .copied()
            .unwrap_or_default()
    }

    /// Whether this write is lost (xorshift: no shared RNG needed).
    fn lost(&self) -> bool {
        if self.loss <= 0.0 {
            return false;
        }
        let mut s = self.seed.lock().unwrap_or_else(|p| p.into_inner());
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        (*s >> 11) as f64 / (1u64 << 53) as f64 <= self.loss
    }

    /// When `bytes` written now by `from` to `to` have arrived.
    fn arrival(&self, from: &Host, to: &Host, bytes: usize, now: Instant) -> Instant {
        let sent = from.up.book(bytes, now);
        let one_way = self.latency(from.spec.region, to.spec.region);
        let mut arrive = sent + one_way;
        if self.lost() {
            arrive += one_way * 2 + Duration::from_millis(200);
        }
        to.down.book(bytes, arrive)
    }
}

/// One host's place in a [`LinkNetwork`].
#[derive(Clone, Debug)]
pub struct SimLink {
    net: Arc<LinkNetwork>,
    me: u64,
}

/// Most bytes queued on one connection's link before writes wait.
const QUEUED_WRITES: usize = 64;
/// Largest piece one write takes.
const MAX_WRITE: usize = 64 * 1024;

impl SimLink {
    /// Wraps a new connection's stream: exchanges identities (the dialler
    /// first), then delays what this end writes.
    pub(crate) async fn wrap<S>(self, mut io: S, dialer: bool) -> io::Result<LinkStream<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut theirs = [0u8; 8];
        if dialer {
            io.write_all(&self.me.to_be_bytes()).await?;
            io.flush().await?;
            io.read_exact(&mut theirs).await?;
        } else {
            io.read_exact(&mut theirs).await?;
            io.write_all(&self.me.to_be_bytes()).await?;
            io.flush().await?;
        }
        let unknown = || io::Error::new(io::ErrorKind::InvalidData, "unknown simulated host");
        let remote = self
            .net
            .host(u64::from_be_bytes(theirs))
            .ok_or_else(unknown)?;
        let local = self.net.host(self.me).ok_or_else(unknown)?;
        let (read, mut write) = io.split();
        let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUED_WRITES);
        tokio::spawn(async move {
            while let Some((at, bytes)) = rx.next().await {
                tokio::time::sleep_until(at).await;
                if write.write_all(&bytes).await.is_err() || write.flush().await.is_err() {
                    return;
                }
            }
            let _ = write.close().await;
        });
        Ok(LinkStream {
            read,
            tx,
            net: self.net,
            local,
            remote,
            last: None,
        })
    }
}

/// A connection over a simulated link: reads pass through, writes are
/// delivered when the link model says they arrive.
pub struct LinkStream<S> {
    read: ReadHalf<S>,
    tx: mpsc::Sender<(Instant, Vec<u8>)>,
    net: Arc<LinkNetwork>,
    local: Arc<Host>,
    remote: Arc<Host>,
    last: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for LinkStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for LinkStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let closed = |_| io::Error::from(io::ErrorKind::BrokenPipe);
        match self.tx.poll_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(r) => r.map_err(closed)?,
        }
        let n = buf.len().min(MAX_WRITE);
        let mut at = self
            .net
            .arrival(&self.local, &self.remote, n, Instant::now());
        if let Some(last) = self.last {
            at = at.max(last);
        }
        self.last = Some(at);
        self.tx
            .start_send((at, buf[..n].to_vec()))
            .map_err(closed)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written bytes are on the link; they arrive on their own.
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // The link delivers what is queued, then closes the stream.
        let _ = self.tx.poll_close_unpin(cx);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::AsyncReadExt;

    fn spec(region: usize, mbit: u64) -> LinkSpec {
        LinkSpec {
            region,
            up_bits_per_s: mbit * 1_000_000,
            down_bits_per_s: mbit * 1_000_000,
        }
    }

    fn network() -> Arc<LinkNetwork> {
        let ms = Duration::from_millis;
        LinkNetwork::new(vec![vec![ms(2), ms(70)], vec![ms(70), ms(2)]], 0.0, 1)
    }

    #[test]
    fn a_write_waits_for_both_links_and_the_latency() {
        let net = network();
        let (a, b) = (net.attach(spec(0, 8)), net.attach(spec(1, 1)));
        let (a, b) = (net.host(a.me).unwrap(), net.host(b.me).unwrap());
        let t0 = Instant::now();
        // 125,000 bytes: 125 ms at 8 Mbit/s up, 1 s at 1 Mbit/s down.
        let at = net.arrival(&a, &b, 125_000, t0);
        assert_eq!(at - t0, Duration::from_millis(125 + 70 + 1000));
        // The uploader's link is shared: a second write to anyone waits.
        let c = net.host(net.attach(spec(0, 0)).me).unwrap();
        let at = net.arrival(&a, &c, 125_000, t0);
        assert_eq!(at - t0, Duration::from_millis(250 + 2));
    }

    #[tokio::test]
    async fn bytes_arrive_in_order_after_the_one_way_latency() {
        let net = network();
        let (la, lb) = (net.attach(spec(0, 0)), net.attach(spec(1, 0)));
        let (x, y) = sluice_pair();
        let (a, b) = tokio::join!(la.wrap(x, true), lb.wrap(y, false));
        let (mut a, mut b) = (a.unwrap(), b.unwrap());
        let t0 = Instant::now();
        a.write_all(b"hello").await.unwrap();
        a.write_all(b" world").await.unwrap();
        let mut got = [0u8; 11];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello world");
        assert!(Instant::now() - t0 >= Duration::from_millis(70));
        assert!(Instant::now() - t0 < Duration::from_secs(5));
    }

    /// Two ends of an in-memory duplex stream.
    fn sluice_pair() -> (Duplex, Duplex) {
        let (a, b) = tokio::io::duplex(1 << 20);
        (Duplex(a), Duplex(b))
    }

    /// tokio's duplex stream with futures' traits.
    struct Duplex(tokio::io::DuplexStream);

    impl AsyncRead for Duplex {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let mut rb = tokio::io::ReadBuf::new(buf);
            match tokio::io::AsyncRead::poll_read(Pin::new(&mut self.0), cx, &mut rb) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        }
    }

    impl AsyncWrite for Duplex {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            tokio::io::AsyncWrite::poll_write(Pin::new(&mut self.0), cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            tokio::io::AsyncWrite::poll_flush(Pin::new(&mut self.0), cx)
        }
        fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            tokio::io::AsyncWrite::poll_shutdown(Pin::new(&mut self.0), cx)
        }
    }
}
