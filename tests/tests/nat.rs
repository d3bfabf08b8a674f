//! Two home networks behind NATs and one public node, as libp2p's own
//! hole-punch interop tests (`test-plans`) build them, with network
//! namespaces instead of containers:
//!
//! ```text
//!   h1 10.0.1.2 ── r1 ══ "internet" 198.51.100.0/24 ══ r2 ── h2 10.0.2.2
//!                  .11     public node .1, seed .2      .12
//! ```
//!
//! The public node dials the seed, another public node, as public nodes
//! dial one another: AutoNAT tests a node's address over connections the
//! node dialled.
//!
//! r1 and r2 masquerade with nftables (`masquerade`, or `masquerade
//! random,fully-random` to approximate a symmetric NAT) and may drop UDP.
//! The test creates everything it needs and removes it whatever happens;
//! it needs root, iproute2 and nftables (`scripts/setup.sh` installs
//! them), and where the machine does not allow it, it says so and checks
//! nothing else.

#![allow(clippy::unwrap_used)]

use e2e_tests::{bin, eventually, Env, Proc};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

fn quiet(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn ip(args: &[&str]) -> bool {
    quiet(Command::new("ip").args(args))
}

/// How the home routers translate.
#[derive(Clone, Copy)]
struct Routers {
    /// `random,fully-random`: a new port for every destination.
    symmetric: bool,
    /// Drop UDP in both directions (no QUIC).
    drop_udp: bool,
}

/// The namespaces: the internet, two routers, two home hosts.
struct Lab {
    ns: [String; 5],
}

const INET: usize = 0;
const R2: usize = 2;
const H1: usize = 3;
const H2: usize = 4;
const PUBLIC: &str = "198.51.100.1";
const SEED: &str = "198.51.100.2";

impl Lab {
    fn new(routers: Routers) -> Option<Lab> {
        // Unique per lab: the tests of this file run at once.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tag = format!("{}{n}", std::process::id() % 10_000);
        let ns = ["i", "r1", "r2", "h1", "h2"].map(|n| format!("cnat-{n}-{tag}"));
        let lab = Lab { ns: ns.clone() };
        for n in &ns {
            if !ip(&["netns", "add", n]) || !ip(&["-n", n, "link", "set", "lo", "up"]) {
                return None;
            }
        }
        let inet = &ns[INET];
        let ok = ip(&["-n", inet, "link", "add", "br0", "type", "bridge"])
            && ip(&["-n", inet, "link", "set", "br0", "up"])
            && ip(&[
                "-n",
                inet,
                "addr",
                "add",
                &format!("{PUBLIC}/24"),
                "dev",
                "br0",
            ])
            && ip(&[
                "-n",
                inet,
                "addr",
                "add",
                &format!("{SEED}/24"),
                "dev",
                "br0",
            ]);
        if !ok {
            return None;
        }
        for k in 1..=2 {
            let (router, host) = (&ns[k], &ns[k + 2]);
            let (wan, wan_peer) = (format!("cw{k}a{tag}"), format!("cw{k}b{tag}"));
            let (lan, lan_peer) = (format!("cl{k}a{tag}"), format!("cl{k}b{tag}"));
            let ok = ip(&[
                "link", "add", &wan, "type", "veth", "peer", "name", &wan_peer,
            ]) && ip(&["link", "set", &wan, "netns", router])
                && ip(&["link", "set", &wan_peer, "netns", inet])
                && ip(&["-n", inet, "link", "set", &wan_peer, "master", "br0"])
                && ip(&["-n", inet, "link", "set", &wan_peer, "up"])
                && ip(&[
                    "-n",
                    router,
                    "addr",
                    "add",
                    &format!("198.51.100.1{k}/24"),
                    "dev",
                    &wan,
                ])
                && ip(&["-n", router, "link", "set", &wan, "up"])
                && ip(&[
                    "link", "add", &lan, "type", "veth", "peer", "name", &lan_peer,
                ])
                && ip(&["link", "set", &lan, "netns", router])
                && ip(&["link", "set", &lan_peer, "netns", host])
                && ip(&[
                    "-n",
                    router,
                    "addr",
                    "add",
                    &format!("10.0.{k}.1/24"),
                    "dev",
                    &lan,
                ])
                && ip(&["-n", router, "link", "set", &lan, "up"])
                && ip(&[
                    "-n",
                    host,
                    "addr",
                    "add",
                    &format!("10.0.{k}.2/24"),
                    "dev",
                    &lan_peer,
                ])
                && ip(&["-n", host, "link", "set", &lan_peer, "up"])
                && ip(&[
                    "-n",
                    host,
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("10.0.{k}.1"),
                ])
                && quiet(Command::new("ip").args([
                    "netns",
                    "exec",
                    router,
                    "sysctl",
                    "-qw",
                    "net.ipv4.ip_forward=1",
                ]))
                && lab.nft(router, &rules(&wan, routers));
            if !ok {
                return None;
            }
        }
        Some(lab)
    }

    fn nft(&self, ns: &str, rules: &str) -> bool {
        use std::io::Write;
        let child = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(mut child) = child else { return false };
        let written = child
            .stdin
            .take()
            .is_some_and(|mut i| i.write_all(rules.as_bytes()).is_ok());
        written && child.wait().map(|s| s.success()).unwrap_or(false)
    }

    /// Starts `node startp2p` as `id` inside namespace `which`.
    fn node(&self, env: &Env, which: usize, id: &str, args: &[&str]) -> Proc {
        let log = env.path().join(format!("nat-{id}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns[which]])
            .arg(bin("node"))
            .args(["--data-dir", env.path().to_str().unwrap(), "startp2p"])
            .args(["--no-mdns", "--http", "127.0.0.1:0"])
            .args(args)
            .env("NODE_ID", id)
            .env(
                "RUST_LOG",
                std::env::var("E2E_RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        Proc { child, log }
    }

    /// GETs `path` from the HTTP API of the node in namespace `which`.
    fn get(&self, which: usize, node: &Proc, path: &str) -> Option<Vec<u8>> {
        let base = node.log_text().lines().find_map(|l| {
            let rest = l.strip_prefix("HTTP API and explorer on ")?;
            Some(rest.split(' ').next()?.trim_end_matches('/').to_string())
        })?;
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns[which], "curl", "-sf"])
            .arg(format!("{base}{path}"))
            .output()
            .ok()?;
        out.status.success().then_some(out.stdout)
    }

    /// GETs `path` from the API of the node in namespace `which` as JSON.
    fn api(&self, which: usize, node: &Proc, path: &str) -> Option<Value> {
        serde_json::from_slice(&self.get(which, node, path)?).ok()
    }

    /// Adds nftables counters to router `which` of the bytes it forwards
    /// from each of `sources` (before its own rules), named `from_<i>`.
    fn count_forwarded(&self, which: usize, sources: &[&str]) -> bool {
        let mut rules = String::from("table ip count {\n");
        for i in 0..sources.len() {
            rules += &format!(" counter from_{i} {{}}\n");
        }
        rules += " chain forwarded {\n  type filter hook forward priority -10; policy accept;\n";
        for (i, s) in sources.iter().enumerate() {
            rules += &format!("  ip saddr {s} counter name from_{i}\n");
        }
        rules += " }\n}\n";
        self.nft(&self.ns[which], &rules)
    }

    /// The bytes counted so far by counter `from_<i>` of router `which`.
    fn forwarded(&self, which: usize, i: usize) -> u64 {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns[which],
                "nft",
                "-j",
                "list",
                "counter",
                "ip",
                "count",
            ])
            .arg(format!("from_{i}"))
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|e| e["counter"]["bytes"].as_u64())
            .unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Deleting a namespace removes its veth ends, bridge and rules.
        for n in &self.ns {
            ip(&["netns", "del", n]);
        }
    }
}

/// A home router's nftables rules: masquerade out of `wan`; drop what
/// arrives on `wan` unasked (a home router's firewall: silently, so a
/// hole punch's first SYN is not answered with a reset); maybe drop UDP.
fn rules(wan: &str, r: Routers) -> String {
    let flags = if r.symmetric {
        " random,fully-random"
    } else {
        ""
    };
    let udp = if r.drop_udp {
        "  meta l4proto udp drop\n"
    } else {
        ""
    };
    format!(
        "table ip nat {{\n chain post {{\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"{wan}\" masquerade{flags}\n }}\n}}\n\
         table inet filter {{\n\
         \x20chain inbound {{\n  type filter hook input priority 0; policy accept;\n  iifname \"{wan}\" ct state new drop\n{udp} }}\n\
         \x20chain through {{\n  type filter hook forward priority 0; policy accept;\n  iifname \"{wan}\" ct state new drop\n{udp} }}\n}}\n"
    )
}

/// The text after `prefix` on the first line of `log` that has it.
fn after(log: &str, prefix: &str) -> Option<String> {
    log.lines().find_map(|l| {
        l.find(prefix)
            .map(|i| l[i + prefix.len()..].trim().to_string())
    })
}

/// The three nodes of the walk-through, started and joined: the public
/// node, h1 behind r1 with the public node as -dest, and h2 behind r2
/// with h1's relayed address as -dest (plus `h2_dest_extra`).
/// Fields drop in order: the nodes are stopped before their data and
/// their namespaces go.
struct Walk {
    _seed: Proc,
    public: Proc,
    h1: Proc,
    h2: Proc,
    h1_relayed: String,
    env: Env,
    lab: Lab,
}

/// `h1_blocks`: blocks on top of the shared genesis that only h1 holds.
fn walk(routers: Routers, h2_public_dest: bool, h1_blocks: usize) -> Option<Walk> {
    let Some(lab) = Lab::new(routers) else {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
        // As root (as CI runs) the lab must build: a skip there would hide
        // a missing nftables.
        assert!(!root, "cannot build the NAT lab as root: are iproute2 and nftables installed (scripts/setup.sh)?");
        eprintln!("NAT test skipped: building network namespaces needs root");
        return None;
    };
    let env = Env::new();
    let params = chain_core::block::ChainParams::default();
    let pkh = chain_core::PubkeyHash([9; 20]);
    let genesis = chain_core::test_utils::genesis(&params, pkh);
    let chain = chain_core::test_utils::chain_of(&params, &genesis, h1_blocks, pkh);
    for id in ["pub", "seed", "h2"] {
        env.store_chain(id, &chain[..1]);
    }
    env.store_chain("h1", &chain);
    let start_public = |id: &str, ip: &str, dest: &[&str]| {
        let tcp = format!("/ip4/{ip}/tcp/4100");
        let quic = format!("/ip4/{ip}/udp/4100/quic-v1");
        let mut args = vec!["--listen", &tcp, "--listen", &quic];
        for d in dest {
            args.extend(["-dest", d]);
        }
        let node = lab.node(&env, INET, id, &args);
        let log = node.wait_for_log(&format!("Listening on {tcp}/p2p/"), Duration::from_secs(20));
        let addr = format!("{tcp}/p2p/{}", after(&log, &format!("{tcp}/p2p/")).unwrap());
        (node, addr)
    };
    let (seed, seed_addr) = start_public("seed", SEED, &[]);
    let (public, public_addr) = start_public("pub", PUBLIC, &[&seed_addr]);
    let home = |port: u16| {
        [
            format!("/ip4/0.0.0.0/tcp/{port}"),
            format!("/ip4/0.0.0.0/udp/{port}/quic-v1"),
        ]
    };
    let [t1, q1] = home(4101);
    let h1 = lab.node(
        &env,
        H1,
        "h1",
        &["--listen", &t1, "--listen", &q1, "-dest", &public_addr],
    );
    let log = h1.wait_for_log("Reachable through a relay at ", Duration::from_secs(90));
    let h1_relayed = after(&log, "Reachable through a relay at ").unwrap();
    let [t2, q2] = home(4102);
    let mut args = vec!["--listen", &t2, "--listen", &q2, "-dest", &h1_relayed];
    if h2_public_dest {
        args.extend(["-dest", &public_addr]);
    }
    let h2 = lab.node(&env, H2, "h2", &args);
    Some(Walk {
        _seed: seed,
        public,
        h1,
        h2,
        h1_relayed,
        env,
        lab,
    })
}

/// The address at which `which`'s API lists the peer `id`, if it does.
fn listed(w: &Walk, which: usize, node: &Proc, id: &str) -> Option<String> {
    let peers = w.lab.api(which, node, "/api/peers")?;
    peers["peers"].as_array()?.iter().find_map(|p| {
        (p["id"].as_str()? == id).then(|| p["address"].as_str().unwrap_or("").to_string())
    })
}

fn peer_id_of(addr: &str) -> String {
    addr.rsplit("/p2p/").next().unwrap().to_string()
}

fn punch_succeeds(routers: Routers) {
    let Some(w) = walk(routers, false, 0) else {
        return;
    };
    // 1. AutoNAT: the home node learnt it is private, the public node that
    // it is public.
    let h1_log = w.h1.log_text();
    assert!(
        h1_log.contains("not reachable from outside (AutoNAT)"),
        "h1 never found it is private:\n{h1_log}"
    );
    let public_log = w.public.wait_for_log(
        "reachable from outside at this address",
        Duration::from_secs(30),
    );
    assert!(
        public_log.contains(&format!("address=/ip4/{PUBLIC}/")),
        "{public_log}"
    );
    let status = eventually(Duration::from_secs(10), "h1's /api/status", || {
        w.lab.api(H1, &w.h1, "/api/status")
    });
    assert_eq!(status["reachability"]["state"], "private", "{status}");
    assert_eq!(
        status["reachability"]["relayed"],
        w.h1_relayed.as_str(),
        "{status}"
    );
    let status = eventually(
        Duration::from_secs(10),
        "the public node's /api/status",
        || w.lab.api(INET, &w.public, "/api/status"),
    );
    assert_eq!(status["reachability"]["state"], "public", "{status}");
    // 2. The relayed address names the public node as the relay.
    let public_id = peer_id_of(&after(&public_log, "Listening on ").unwrap());
    assert!(
        w.h1_relayed.starts_with(&format!(
            "/ip4/{PUBLIC}/tcp/4100/p2p/{public_id}/p2p-circuit/p2p/"
        )),
        "{}",
        w.h1_relayed
    );
    // 3. DCUtR: h2, which knew h1 only by its relayed address, ends up
    // connected to it directly, at h1's router's address.
    let h1_id = peer_id_of(&w.h1_relayed);
    eventually(Duration::from_secs(90), "a hole punch", || {
        [&w.h1, &w.h2]
            .iter()
            .any(|p| p.log_text().contains("hole punch succeeded"))
            .then_some(())
    });
    let direct = eventually(
        Duration::from_secs(30),
        "h1 listed at a direct address",
        || listed(&w, H2, &w.h2, &h1_id).filter(|a| !a.contains("/p2p-circuit")),
    );
    assert!(
        direct.starts_with("/ip4/198.51.100.11/"),
        "h1 is reached at its router's address: {direct}"
    );
    if routers.drop_udp {
        assert!(direct.contains("/tcp/"), "{direct}");
    }
    eprintln!(
        "h2 reaches h1 at {direct}; logs in {}",
        w.env.path().display()
    );
}

/// Tests 1 to 3: AutoNAT, a relay reservation and the tutorial's -dest on
/// a relayed address, and a hole punch.
#[test]
fn behind_two_nats_home_nodes_learn_they_are_private_relay_and_punch_through() {
    punch_succeeds(Routers {
        symmetric: false,
        drop_udp: false,
    });
}

/// Test 5: with UDP dropped by both routers, the punch succeeds over TCP.
#[test]
fn with_udp_blocked_the_punch_succeeds_over_tcp() {
    punch_succeeds(Routers {
        symmetric: false,
        drop_udp: true,
    });
}

/// Test 6: behind NATs that pick a new port for every destination, the
/// punch fails; h2 stays connected to h1 through the relay, and the blocks
/// only h1 had reach h2 through the public node (nothing syncs over the
/// circuit).
#[test]
fn behind_symmetric_nats_the_punch_fails_and_the_relay_keeps_them_connected() {
    let Some(w) = walk(
        Routers {
            symmetric: true,
            drop_udp: false,
        },
        true,
        H1_BLOCKS,
    ) else {
        return;
    };
    let h1_id = peer_id_of(&w.h1_relayed);
    eventually(Duration::from_secs(120), "the hole punches to fail", || {
        let n = w.h2.log_text().matches("hole punch failed").count()
            + w.h1.log_text().matches("hole punch failed").count();
        (n >= 3).then_some(())
    });
    for p in [&w.h1, &w.h2] {
        assert!(
            !p.log_text().contains("hole punch succeeded"),
            "a punch through symmetric NATs succeeded:\n{}",
            p.log_text()
        );
    }
    // The public node is h2's direct peer; h1 is reached only through it.
    let public_id = peer_id_of(&after(&w.public.log_text(), "Listening on ").unwrap());
    let public_listed = eventually(
        Duration::from_secs(30),
        "the public node as h2's peer",
        || listed(&w, H2, &w.h2, &public_id),
    );
    assert!(!public_listed.contains("/p2p-circuit"), "{public_listed}");
    if let Some(a) = listed(&w, H2, &w.h2, &h1_id) {
        assert!(a.contains("/p2p-circuit"), "h1 can only be relayed: {a}");
    }
    // The blocks only h1 had reach h2: not over the circuit, on which
    // requests are not served, but through the public node.
    eventually(Duration::from_secs(60), "h1's blocks at h2", || {
        let s = w.lab.api(H2, &w.h2, "/api/status")?;
        (s["tip"]["height"].as_u64()? == H1_BLOCKS as u64).then_some(())
    });
    let h2_log = w.h2.log_text();
    assert!(
        !h2_log.contains("hole punch succeeded"),
        "h2 got the blocks, and no direct connection to h1 was made"
    );
}

/// Test 4: once h1 and h2 are connected directly, a 500-block sync
/// between the two home networks runs over that connection. The blocks
/// enter home 1 after the punch, from a second node there (h1b) that h1
/// syncs from; h2 fetches them from home 1 (h1 or h1b) over direct
/// connections, and from the public node, which fetched them from home 1
/// too. The relay forwards nothing meanwhile: the bytes over h2's relayed
/// connections (its bandwidth metrics) do not grow, and the bytes router
/// r2 forwards from r1's address grow by much of the chain.
#[test]
fn a_500_block_sync_between_home_nodes_runs_over_the_direct_connection() {
    let Some(w) = walk(
        Routers {
            symmetric: false,
            drop_udp: false,
        },
        false,
        0,
    ) else {
        return;
    };
    let h1_id = peer_id_of(&w.h1_relayed);
    eventually(
        Duration::from_secs(90),
        "h1 listed at a direct address",
        || listed(&w, H2, &w.h2, &h1_id).filter(|a| !a.contains("/p2p-circuit")),
    );
    // Circuits are closed once the direct connection has lasted 5 s.
    let circuit_bytes = || -> u64 {
        let text = String::from_utf8(w.lab.get(H2, &w.h2, "/metrics").unwrap()).unwrap();
        text.lines()
            .filter(|l| l.starts_with("libp2p_bandwidth_bytes_total") && l.contains("p2p-circuit"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    eventually(Duration::from_secs(30), "h2's circuits closed", || {
        let s = w.lab.api(H2, &w.h2, "/api/status")?;
        (s["reachability"]["state"].is_string() && relayed_connections(&w) == Some(0)).then_some(())
    });
    assert!(
        w.lab.count_forwarded(R2, &["198.51.100.11", PUBLIC]),
        "nft counters on r2"
    );
    let circuit_before = circuit_bytes();

    let params = chain_core::block::ChainParams::default();
    let pkh = chain_core::PubkeyHash([9; 20]);
    let genesis = chain_core::test_utils::genesis(&params, pkh);
    let chain = chain_core::test_utils::chain_of(&params, &genesis, SYNC_BLOCKS, pkh);
    let chain_bytes: usize = chain[1..].iter().map(|b| b.encoded_len()).sum();
    w.env.store_chain("h1b", &chain);
    let h1_local = format!("/ip4/127.0.0.1/tcp/4101/p2p/{h1_id}");
    let h1b = w.lab.node(
        &w.env,
        H1,
        "h1b",
        &["--listen", "/ip4/0.0.0.0/tcp/4111", "-dest", &h1_local],
    );
    eventually(Duration::from_secs(120), "the 500 blocks at h2", || {
        let s = w.lab.api(H2, &w.h2, "/api/status")?;
        (s["tip"]["height"].as_u64()? == SYNC_BLOCKS as u64).then_some(())
    });
    let circuit_after = circuit_bytes();
    let direct = w.lab.forwarded(R2, 0);
    let via_public = w.lab.forwarded(R2, 1);
    eprintln!(
        "500 blocks ({chain_bytes} bytes) reached h2: r2 forwarded {direct} bytes from home 1's \
         router and {via_public} from the public node; h2's relayed connections carried \
         {circuit_before} bytes before the sync and {circuit_after} after; logs in {}",
        w.env.path().display()
    );
    assert_eq!(
        circuit_before, circuit_after,
        "bytes went over a circuit during the sync"
    );
    assert!(
        direct as usize >= chain_bytes / 4,
        "home 1 sent {direct} bytes of a {chain_bytes}-byte chain directly"
    );
    drop(h1b);
}

/// Blocks of the direct-sync test.
const SYNC_BLOCKS: usize = 500;

/// h2's `nat_relayed_connections` gauge.
fn relayed_connections(w: &Walk) -> Option<u64> {
    let text = String::from_utf8(w.lab.get(H2, &w.h2, "/metrics")?).ok()?;
    text.lines()
        .find(|l| l.starts_with("nat_relayed_connections "))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

/// Blocks only h1 holds at the start of the symmetric-NAT test.
const H1_BLOCKS: usize = 20;
