//! Helpers for end-to-end tests: locate the real binaries, run them in a
//! temporary data directory, and stop every process a test started.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary next to the running test executable.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> or target/<profile>/<bench> -> target/<profile>/<name>
    let mut dir = exe.parent().expect("target directory");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("target directory");
    }
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        p.display()
    );
    p
}

/// A temporary data directory shared by the commands of one test.
pub struct Env {
    /// The directory (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    /// A new empty data directory.
    pub fn new() -> Env {
        let mut dir = tempfile::tempdir().expect("temporary directory");
        // E2E_KEEP=1 keeps the data directories and logs for inspection.
        if std::env::var_os("E2E_KEEP").is_some() {
            dir.disable_cleanup(true);
            eprintln!("keeping {}", dir.path().display());
        }
        Env { dir }
    }

    /// The data directory path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A command for `bin` as node `node_id`, in this data directory.
    pub fn cmd(&self, bin_name: &str, node_id: &str, args: &[&str]) -> Command {
        let mut c = Command::new(bin(bin_name));
        c.args(args)
            .env("NODE_ID", node_id)
            .env(
                "RUST_LOG",
                std::env::var("E2E_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .arg("--data-dir")
            .arg(self.path());
        c
    }

    /// Runs a command to completion.
    pub fn run(&self, bin_name: &str, node_id: &str, args: &[&str]) -> Output {
        self.cmd(bin_name, node_id, args)
            .output()
            .expect("run binary")
    }

    /// Runs a command that must succeed and print one JSON object.
    pub fn json(&self, bin_name: &str, node_id: &str, args: &[&str]) -> Value {
        let mut all: Vec<&str> = args.to_vec();
        all.push("--json");
        let out = self.run(bin_name, node_id, &all);
        assert!(
            out.status.success(),
            "{bin_name} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{bin_name} {args:?}: not JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, bin_name: &str, node_id: &str, args: &[&str]) -> String {
        let out = self.run(bin_name, node_id, args);
        assert!(
            !out.status.success(),
            "{bin_name} {args:?} should have failed"
        );
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!err.trim().is_empty(), "a failure must say why");
        err
    }

    /// Starts a long-running process; it is killed when the guard drops.
    pub fn spawn(&self, bin_name: &str, node_id: &str, args: &[&str], log: &Path) -> Proc {
        let f = std::fs::File::create(log).expect("log file");
        let child = self
            .cmd(bin_name, node_id, args)
            .stdout(f.try_clone().expect("log"))
            .stderr(f)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn");
        Proc {
            child,
            log: log.to_path_buf(),
        }
    }
}

/// A started process, ended by pid when dropped.
pub struct Proc {
    /// The process.
    pub child: Child,
    /// Where its output goes.
    pub log: PathBuf,
}

impl Proc {
    /// Its output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`, or panics after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let t = self.log_text();
            if t.contains(needle) {
                return t;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {needle:?} in {}:\n{t}",
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for a clean exit; returns whether it exited 0.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        // The pid belongs to a child this test started and still owns.
        let pid = i32::try_from(self.child.id()).expect("pid fits in i32");
        let _ = send_signal(pid, 15);
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

fn send_signal(pid: i32, sig: i32) -> std::io::Result<()> {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()?;
    if st.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("kill failed"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The project root. Read at run time: cargo sets the variable for tests it
/// runs, and a value compiled in would be stale when the shared target
/// directory reuses a test binary built from another clone.
pub fn repo() -> std::path::PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    dir.parent().map(Into::into).unwrap_or(dir)
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Polls `f` until it returns `Some`, or panics after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A running node in a test: its process, id and dialable address.
pub struct Node {
    /// The process.
    pub proc: Proc,
    /// Its NODE_ID (also its port).
    pub id: String,
    /// Its full /ip4/127.0.0.1/tcp/<port>/p2p/<id> address.
    pub addr: String,
    /// Its HTTP API's base URL (http://127.0.0.1:<port>), when it serves one.
    pub http: Option<String>,
}

impl Node {
    /// Its peer id, as logs print it.
    pub fn peer_id(&self) -> String {
        self.addr.rsplit('/').next().unwrap_or_default().to_string()
    }
}

/// Whether a node's log says it banned the peer `peer_id`.
pub fn banned(log: &str, peer_id: &str) -> bool {
    log.lines()
        .any(|l| l.contains("peer banned") && l.contains(peer_id))
}

/// The status a peer holding `chain` (the genesis first) truly has.
pub fn status_of_chain(chain: &[chain_core::Block], agent: &str) -> p2p_proto::Status {
    let tip = &chain[chain.len() - 1];
    let work = chain.iter().fold(chain_core::Work::default(), |w, b| {
        w.saturating_add(b.header.work())
    });
    p2p_proto::Status {
        protocol_version: p2p_proto::PROTOCOL_VERSION,
        genesis: chain[0].hash(),
        best_height: tip.header.height,
        best_hash: tip.hash(),
        total_work: work.to_be_bytes(),
        agent: agent.into(),
    }
}

impl Env {
    /// Starts `node startp2p` as `id` on 127.0.0.1:<id>, with mDNS off, plus `extra` flags,
    /// and waits until it prints its address.
    pub fn start_node(&self, id: &str, extra: &[&str]) -> Node {
        let listen = format!("/ip4/127.0.0.1/tcp/{id}");
        let mut args = vec!["startp2p", "--no-mdns", "--listen", &listen];
        // The API on a port the system picks: NODE_ID + 1000 may be
        // another test's.
        if !extra.iter().any(|a| *a == "--http" || *a == "--no-http") {
            args.extend_from_slice(&["--http", "127.0.0.1:0"]);
        }
        args.extend_from_slice(extra);
        let log = self.path().join(format!(
            "node-{id}-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let proc = self.spawn("node", id, &args, &log);
        let prefix = format!("Listening on /ip4/127.0.0.1/tcp/{id}/p2p/");
        let text = proc.wait_for_log(&prefix, Duration::from_secs(20));
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .expect("listening line");
        let addr = line.trim_start_matches("Listening on ").trim().to_string();
        let http = text.lines().find_map(|l| {
            let rest = l.strip_prefix("HTTP API and explorer on ")?;
            Some(rest.split('/').take(3).collect::<Vec<_>>().join("/"))
        });
        Node {
            proc,
            id: id.to_string(),
            addr,
            http,
        }
    }

    /// (height, tip hash) of a node's chain, read-only.
    pub fn tip(&self, id: &str) -> Option<(u64, String)> {
        let out = self.run("node", id, &["printchain", "--json"]);
        if !out.status.success() {
            return None;
        }
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        Some((v["height"].as_u64()?, v["tip"].as_str()?.to_string()))
    }

    /// The best chain's blocks, newest first, as printchain --json gives them.
    pub fn blocks(&self, id: &str) -> Vec<Value> {
        self.json("node", id, &["printchain"])["blocks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The confirmed balance of `address` in node `id`'s chain.
    pub fn balance(&self, id: &str, address: &str) -> u64 {
        self.json("wallet-cli", id, &["getbalance", "--address", address])["balance"]
            .as_u64()
            .expect("balance")
    }

    /// Creates a wallet key with an alias in node `id`'s wallet and returns its address.
    pub fn wallet(&self, id: &str, alias: &str) -> String {
        self.json("wallet-cli", id, &["createwallet", "--alias", alias])["address"]
            .as_str()
            .expect("address")
            .to_string()
    }

    /// Creates node `id`'s chain from `blocks` (the genesis first), as if
    /// it had synced them.
    pub fn store_chain(&self, id: &str, blocks: &[chain_core::Block]) {
        let dir = self.path().join(format!("blocks_{id}"));
        let mut store = chain_store::ChainStore::create(&dir, &blocks[0]).expect("create chain");
        for b in &blocks[1..] {
            store
                .accept_block(b, u64::MAX / 4)
                .expect("test chains are valid");
        }
    }

    /// Copies node `from`'s chain directory to node `to`, as the tutorial does.
    pub fn copy_chain(&self, from: &str, to: &str) {
        let st = Command::new("cp")
            .arg("-r")
            .arg(self.path().join(format!("blocks_{from}")))
            .arg(self.path().join(format!("blocks_{to}")))
            .status()
            .expect("cp");
        assert!(st.success());
    }
}

/// A base NODE_ID for `n` nodes a script starts with their HTTP API on its
/// default port (`NODE_ID + 1000`): the `n` ports from it and the `n` HTTP
/// ports free, all below Linux's ephemeral range (32768 and up), where the
/// nodes' own outbound connections can take one of them between this
/// check and a node's bind.
pub fn free_node_ports(n: u16) -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos()
        ^ std::process::id();
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    for k in 0..200u32 {
        // 20,000 to 29,999: with its HTTP ports, below 31,100.
        let base = 20_000 + (seed.wrapping_add(k.wrapping_mul(7_919)) % 10_000) as u16;
        if (base..base + n).all(free) && (base + 1_000..base + 1_000 + n).all(free) {
            return base;
        }
    }
    panic!("no {n} free ports in a row below the ephemeral range");
}

/// A distinct free port as a node id.
pub fn free_id() -> String {
    free_port().to_string()
}

/// A peer played by the test itself, in process: it connects to a node,
/// answers every request with an error, and sends what the test tells it
/// to, valid or not.
pub struct TestPeer {
    rt: tokio::runtime::Runtime,
    /// The peer's network handle.
    pub net: p2p_net::NetHandle,
    node: String,
    _dir: tempfile::TempDir,
}

impl TestPeer {
    /// A new peer with a fresh identity, dialling the node at `node_addr`.
    pub fn connect(node_addr: &str) -> TestPeer {
        Self::serving(node_addr, |_| p2p_proto::Response::Error {
            reason: "test peer".into(),
        })
    }

    /// Like [`TestPeer::connect`], answering each request with `answer`.
    pub fn serving(
        node_addr: &str,
        answer: impl Fn(p2p_proto::Request) -> p2p_proto::Response + Send + Sync + 'static,
    ) -> TestPeer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = tempfile::tempdir().expect("temporary directory");
        let cfg = p2p_net::NetConfig {
            identity_dir: dir.path().to_path_buf(),
            listen: vec![],
            bootstrap: vec![node_addr.parse().expect("node address")],
            mdns: false,
            agent: "e2e-test-peer".into(),
            max_connections: 8,
            gossip: p2p_net::GossipParams::default(),
            reach: Default::default(),
            link: None,
        };
        let (net, mut events, _task) = rt.block_on(p2p_net::start(cfg)).expect("peer starts");
        let node = node_addr
            .rsplit("/p2p/")
            .next()
            .expect("address ends in /p2p/<id>")
            .to_string();
        let node_id: p2p_net::PeerId = node.parse().expect("a peer id");
        // The dialer speaks first: its status, as a node sends on
        // connecting; what this peer says its chain is, or no chain.
        let no_chain = no_chain_status();
        let hello = match answer(no_chain.clone()) {
            p2p_proto::Response::Status(s) => p2p_proto::Request::Status(s),
            _ => no_chain,
        };
        let responder = net.clone();
        rt.spawn(async move {
            while let Some(ev) = events.recv().await {
                match ev {
                    p2p_net::NetEvent::Request { request, reply, .. } => {
                        let _ = responder.respond(reply, answer(request)).await;
                    }
                    p2p_net::NetEvent::Connected { peer, .. } if peer == node_id => {
                        let r = responder.clone();
                        let hello = hello.clone();
                        tokio::spawn(async move {
                            let _ = r.request(peer, hello).await;
                        });
                    }
                    _ => {}
                }
            }
        });
        TestPeer {
            rt,
            net,
            node,
            _dir: dir,
        }
    }

    /// This peer's id, as the node's logs print it.
    pub fn id(&self) -> String {
        self.net.local_peer_id().to_string()
    }

    /// Whether the peer is connected to the node now.
    pub fn connected(&self) -> bool {
        self.rt
            .block_on(self.net.peers())
            .map(|p| p.iter().any(|p| p.to_string() == self.node))
            .unwrap_or(false)
    }

    /// Announces `a` once the node takes gossip from this peer; returns the
    /// error if that never happens within 10 s.
    pub fn publish(&self, a: p2p_proto::Announcement) -> Result<(), String> {
        let start = Instant::now();
        loop {
            match self.rt.block_on(self.net.publish(a.clone())) {
                Ok(()) => return Ok(()),
                Err(e) if start.elapsed() > Duration::from_secs(10) => return Err(e.to_string()),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

impl Drop for TestPeer {
    fn drop(&mut self) {
        self.rt.block_on(self.net.shutdown());
    }
}

/// Writes raw bytes on the sync protocol of the node at `addr` from a fresh
/// identity, as a misbehaving peer would; returns how the exchange ended.
pub fn send_junk(addr: &str, bytes: Vec<u8>) -> Result<Vec<u8>, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let addr: p2p_net::Multiaddr = addr.parse().expect("node address");
    rt.block_on(p2p_net::send_raw(&addr, bytes, Duration::from_secs(5)))
        .map_err(|e| e.to_string())
}

/// A frame whose body is not a valid request.
pub fn garbage_frame(seed: u8) -> Vec<u8> {
    let body: Vec<u8> = (0..200u8)
        .map(|i| i.wrapping_mul(31).wrapping_add(seed) | 0x80)
        .collect();
    let mut f = p2p_proto::frame_header(body.len()).to_vec();
    f.extend_from_slice(&body);
    f
}

/// A frame header that claims far more than any message may hold.
pub fn oversized_frame() -> Vec<u8> {
    let mut f = p2p_proto::frame_header(64 * 1024 * 1024).to_vec();
    f.extend_from_slice(&[0u8; 1024]);
    f
}

/// A status request from a peer with no chain (all zero, as
/// `docs/protocol.md` says such a peer sends).
fn no_chain_status() -> p2p_proto::Request {
    p2p_proto::Request::Status(p2p_proto::Status {
        protocol_version: p2p_proto::PROTOCOL_VERSION,
        genesis: chain_core::BlockHash::ZERO,
        best_height: 0,
        best_hash: chain_core::BlockHash::ZERO,
        total_work: [0; 32],
        agent: "e2e-test-peer".into(),
    })
}

impl TestPeer {
    /// The node's status, asked once (a request counts against the node's
    /// rate limit of [`p2p_net::REQUESTS_PER_SEC`]).
    pub fn status(&self) -> Result<p2p_proto::Status, String> {
        let peer: p2p_net::PeerId = self.node.parse().map_err(|e| format!("peer id: {e}"))?;
        let ask = no_chain_status();
        match self.rt.block_on(self.net.request(peer, ask)) {
            Ok(p2p_proto::Response::Status(s)) => Ok(s),
            Ok(other) => Err(format!("answered {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Sends one request and waits for its answer.
    pub fn request(&self, r: p2p_proto::Request) -> Result<p2p_proto::Response, String> {
        let peer: p2p_net::PeerId = self.node.parse().map_err(|e| format!("peer id: {e}"))?;
        self.rt
            .block_on(self.net.request(peer, r))
            .map_err(|e| e.to_string())
    }

    /// Sends `n` status requests as fast as one connection carries them;
    /// returns how many were refused by the node's rate limit.
    pub fn rate_limited_count(&self, n: usize) -> usize {
        let peer: p2p_net::PeerId = self.node.parse().expect("peer id");
        let status = no_chain_status();
        // At most 48 in flight: a connection carries 64 streams at once, and
        // a request past that fails here without reaching the node.
        let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(48));
        self.rt.block_on(async {
            let mut tasks = Vec::with_capacity(n);
            for _ in 0..n {
                let net = self.net.clone();
                let r = status.clone();
                let in_flight = in_flight.clone();
                tasks.push(tokio::spawn(async move {
                    let _slot = in_flight.acquire_owned().await;
                    net.request(peer, r).await
                }));
            }
            let mut limited = 0;
            for t in tasks {
                if let Ok(Ok(p2p_proto::Response::Error { reason })) = t.await {
                    if reason.contains("rate limited") {
                        limited += 1;
                    }
                }
            }
            limited
        })
    }
}

/// A small HTTP client for tests of the node's API: answers of any status
/// come back as (status, body) instead of errors.
pub mod http {
    use std::io::Read;

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(std::time::Duration::from_secs(20)))
            .build()
            .into()
    }

    /// GET: (status, body as text).
    pub fn get(url: &str) -> (u16, String) {
        let (s, b) = get_bytes(url);
        (s, String::from_utf8_lossy(&b).into_owned())
    }

    /// GET: (status, body).
    pub fn get_bytes(url: &str) -> (u16, Vec<u8>) {
        let mut r = agent().get(url).call().expect("HTTP request");
        let mut body = Vec::new();
        r.body_mut()
            .as_reader()
            .read_to_end(&mut body)
            .expect("HTTP body");
        (r.status().as_u16(), body)
    }

    /// GET, parsed as JSON; panics unless the status is `want`.
    pub fn json(url: &str, want: u16) -> serde_json::Value {
        let (s, body) = get(url);
        assert_eq!(s, want, "GET {url}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {body}"))
    }

    /// POST a text body: (status, body).
    pub fn post(url: &str, body: &str) -> (u16, String) {
        let mut r = agent().post(url).send(body).expect("HTTP request");
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (r.status().as_u16(), text)
    }
}
