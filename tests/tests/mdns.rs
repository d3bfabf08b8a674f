//! mDNS discovery: two nodes without --dest find each other on a LAN.
//!
//! Multicast must not leave this machine, so the test builds its own LAN:
//! two network namespaces joined by a veth pair (10.213.x.0/24), one node in
//! each. Creating namespaces needs root and iproute2; where the machine does
//! not allow it, the test says so and checks nothing else.

#![allow(clippy::unwrap_used)]

use e2e_tests::{bin, Env};
use std::process::{Command, Stdio};
use std::time::Duration;

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Two namespaces and a veth pair, removed on drop.
struct Lan {
    ns: [String; 2],
}

impl Lan {
    fn new(subnet: u8) -> Option<Lan> {
        let tag = std::process::id() % 100_000;
        let ns = [format!("chain-mdns-a{tag}"), format!("chain-mdns-b{tag}")];
        let veth = [format!("cma{tag}"), format!("cmb{tag}")];
        let lan = Lan { ns: ns.clone() };
        let ok = ip(&["netns", "add", &ns[0]])
            && ip(&["netns", "add", &ns[1]])
            && ip(&[
                "link", "add", &veth[0], "type", "veth", "peer", "name", &veth[1],
            ])
            && ip(&["link", "set", &veth[0], "netns", &ns[0]])
            && ip(&["link", "set", &veth[1], "netns", &ns[1]]);
        if !ok {
            return None;
        }
        for i in 0..2 {
            let addr = format!("10.213.{subnet}.{}/24", i + 1);
            let ok = ip(&["-n", &ns[i], "addr", "add", &addr, "dev", &veth[i]])
                && ip(&[
                    "-n",
                    &ns[i],
                    "link",
                    "set",
                    &veth[i],
                    "up",
                    "multicast",
                    "on",
                ])
                && ip(&["-n", &ns[i], "link", "set", "lo", "up"]);
            if !ok {
                return None;
            }
        }
        Some(lan)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for n in &self.ns {
            ip(&["netns", "del", n]);
        }
    }
}

#[test]
fn two_nodes_find_each_other_with_mdns() {
    let Some(lan) = Lan::new(7) else {
        eprintln!("mDNS test skipped: this machine does not let the test create network namespaces (needs root and iproute2), and multicast must not leave the machine");
        return;
    };
    let env = Env::new();
    let w = env.wallet("a", "w");
    env.json("node", "a", &["createblockchain", "-address", &w]);
    env.copy_chain("a", "b");
    let mut procs = Vec::new();
    for (i, id) in ["a", "b"].iter().enumerate() {
        let log = env.path().join(format!("mdns-{id}.log"));
        let f = std::fs::File::create(&log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &lan.ns[i]])
            .arg(bin("node"))
            .args([
                "--data-dir",
                env.path().to_str().unwrap(),
                "startp2p",
                "--listen",
                &format!("/ip4/10.213.7.{}/tcp/4100", i + 1),
            ])
            .env("NODE_ID", id)
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap();
        procs.push(e2e_tests::Proc { child, log });
    }
    for p in &procs {
        p.wait_for_log("found a peer on the LAN", Duration::from_secs(30));
        p.wait_for_log("peer connected", Duration::from_secs(30));
    }
}
