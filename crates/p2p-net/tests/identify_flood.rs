//! An identity that pushes identify messages listing 50,000 addresses
//! does not grow the host's memory or slow its answers. Its own test
//! binary: the process's resident memory is measured, and no other test
//! may share it.

#![allow(clippy::unwrap_used)]

mod common;

use common::{chainless_status, serving_host};
use p2p_net::hostile::Identity;
use p2p_net::Multiaddr;
use std::time::{Duration, Instant};

/// This process's resident memory, in bytes (Linux).
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

/// The median of five `Status` round trips from `asker`.
async fn round_trip(asker: &Identity) -> Duration {
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        asker.request(chainless_status()).await.unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    times[2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_addresses_pushed_through_identify_change_nothing() {
    let dn = tempfile::tempdir().unwrap();
    let (_n, n_addr) = serving_host(&dn, vec![], 64).await;
    let pusher = Identity::spawn().unwrap();
    let asker = Identity::spawn().unwrap();
    pusher.connect(&n_addr).await.unwrap();
    asker.connect(&n_addr).await.unwrap();
    pusher.request(chainless_status()).await.unwrap();
    let before_rtt = round_trip(&asker).await;
    let before = resident();
    // Pushes of 350 new addresses each (an identify message is at most
    // 4 KiB).
    let per_push = 350;
    let total: usize = 50_000;
    for k in 0..total.div_ceil(per_push) {
        let addrs: Vec<Multiaddr> = (0..per_push)
            .map(|i| {
                let n = k * per_push + i;
                format!(
                    "/ip4/10.{}.{}.{}/tcp/{}",
                    (n >> 16) & 255,
                    (n >> 8) & 255,
                    n & 255,
                    1000 + n % 50_000
                )
                .parse()
                .unwrap()
            })
            .collect();
        pusher.push_addresses(addrs).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Time for the host to take what was sent.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_rtt = round_trip(&asker).await;
    let grown = resident().saturating_sub(before);
    println!(
        "resident memory grew by {:.1} MiB; Status round trip {:?} before, {:?} after",
        grown as f64 / (1024.0 * 1024.0),
        before_rtt,
        after_rtt
    );
    assert!(grown < 16 << 20, "resident memory grew by {grown} bytes");
    assert!(
        after_rtt < Duration::from_millis(50),
        "round trip {after_rtt:?}"
    );
}
