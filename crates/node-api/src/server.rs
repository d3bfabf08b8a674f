//! The server: its own runtime and thread, a bounded number of
//! connections, a deadline for a request's headers and for its answer.

use crate::cache::{Cached, NET_FRESH_FOR};
use crate::error::json_error;
use crate::guard::{PeerIp, StreamSlots};
use crate::{metrics::ApiMetrics, routes, NetSummary, NetView};
use anyhow::Context;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use chain_node::{Network, Node};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// How the server behaves.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// Where it listens.
    pub listen: SocketAddr,
    /// Connections open at once; more wait in the kernel's queue.
    pub max_connections: usize,
    /// A client that has not sent a request's headers within this is cut
    /// off (a slow or idle client cannot hold a connection).
    pub header_timeout: Duration,
    /// A request not answered within this gets a 503 (the event stream
    /// excepted).
    pub request_timeout: Duration,
    /// Host names the server answers to besides IP addresses and
    /// `localhost` (the `Host` header is checked).
    pub host_names: Vec<String>,
    /// Event streams open at once, from all clients.
    pub max_event_streams: usize,
    /// Event streams open at once from one client address.
    pub max_event_streams_per_ip: usize,
    /// An event stream is closed after this; the client reconnects
    /// (`EventSource` does by itself).
    pub event_stream_lifetime: Duration,
}

impl ApiSettings {
    /// The defaults, listening on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        ApiSettings {
            listen,
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            host_names: Vec::new(),
            max_event_streams: 32,
            max_event_streams_per_ip: 4,
            event_stream_lifetime: Duration::from_secs(600),
        }
    }
}

/// What the handlers share.
pub(crate) struct App<N: Network, V: NetView> {
    pub node: Arc<Node<N>>,
    pub net: V,
    /// The node's runtime: a submitted payment is handled there, as a
    /// peer's would be, not on the server's.
    pub node_rt: tokio::runtime::Handle,
    pub metrics: ApiMetrics,
    pub request_timeout: Duration,
    /// The network host's summary and metrics, asked at most once a second.
    pub net_info: Cached<NetSummary>,
    pub net_metrics: Cached<String>,
    /// Names the `Host` header may carry besides addresses and localhost.
    pub host_names: Vec<String>,
    /// The event streams' slots, and how long a stream lives.
    pub streams: Arc<StreamSlots>,
    pub stream_lifetime: Duration,
}

impl<N: Network, V: NetView> App<N, V> {
    /// The network host's summary, at most [`NET_FRESH_FOR`] old.
    pub async fn net_info(&self) -> Option<NetSummary> {
        self.net_info.get(|| self.net.info()).await
    }
}

/// The running server. Dropping it stops it.
pub struct ApiServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ApiServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, drops open connections and waits for the thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Binds `settings.listen` and serves the API for `node` on a thread of its
/// own. Must be called from within the node's tokio runtime. Fails when the
/// address cannot be bound (in use, not local).
pub fn start<N, V>(settings: ApiSettings, node: Arc<Node<N>>, net: V) -> anyhow::Result<ApiServer>
where
    N: Network,
    V: NetView,
{
    let listener = std::net::TcpListener::bind(settings.listen).with_context(|| {
        format!(
            "cannot serve HTTP on {}: the address is in use or not this machine's (choose another with --http ADDR, or turn the server off with --no-http)",
            settings.listen
        )
    })?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App {
        metrics: ApiMetrics::new(node.chain().metrics()),
        node,
        net,
        node_rt: tokio::runtime::Handle::current(),
        request_timeout: settings.request_timeout,
        net_info: Cached::new(NET_FRESH_FOR),
        net_metrics: Cached::new(NET_FRESH_FOR),
        host_names: settings.host_names.clone(),
        streams: StreamSlots::new(
            settings.max_event_streams,
            settings.max_event_streams_per_ip,
        ),
        stream_lifetime: settings.event_stream_lifetime,
    });
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("http".into())
        .spawn(move || {
            chain_node::priority::idle_class();
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(2)
                .thread_name("http")
                .on_thread_start(chain_node::priority::idle_class)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("cannot start the HTTP server's runtime: {e}");
                    return;
                }
            };
            rt.block_on(serve(listener, app, settings, stopped));
            rt.shutdown_timeout(Duration::from_secs(1));
        })?;
    Ok(ApiServer {
        addr,
        stop,
        thread: Some(thread),
    })
}

async fn serve<N: Network, V: NetView>(
    listener: std::net::TcpListener,
    app: Arc<App<N, V>>,
    settings: ApiSettings,
    mut stopped: watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("the HTTP server cannot listen: {e}");
            return;
        }
    };
    let router = routes::router(app);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        // A connection is taken only with a free slot.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s,
            _ = stopped.changed() => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, from) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!("accepting an HTTP connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(tower::Layer::layer(
            &axum::Extension(PeerIp(from.ip())),
            router.clone(),
        ));
        let header_timeout = settings.header_timeout;
        conns.spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = http.serve_connection(io, service).await;
            drop(slot);
        });
        // Finished connections' tasks are reaped as we go.
        while conns.try_join_next().is_some() {}
    }
    conns.abort_all();
}

/// Answers within the request deadline, or 503.
pub(crate) async fn deadline<N: Network, V: NetView>(
    State(app): State<Arc<App<N, V>>>,
    req: Request,
    next: Next,
) -> Response {
    let limit = app.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "the node did not answer within {} s; try again",
                limit.as_secs()
            ),
        ),
    }
}

/// Counts each request by route and status.
pub(crate) async fn count<N: Network, V: NetView>(
    State(app): State<Arc<App<N, V>>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = std::time::Instant::now();
    let r = next.run(req).await;
    let seconds = started.elapsed().as_secs_f64();
    app.metrics.on_request(route, r.status().as_u16(), seconds);
    r
}
