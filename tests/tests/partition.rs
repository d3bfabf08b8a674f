//! A partition heals: five nodes split into groups of two and three mine
//! their own branches with transactions on both sides; once reconnected,
//! every node moves to the branch with the most work, and the losing
//! branch's transactions are confirmed again on the winning one.

#![allow(clippy::unwrap_used)]

use e2e_tests::{eventually, free_id, Env};
use std::time::Duration;

const HEAL: Duration = Duration::from_secs(30);

fn send(env: &Env, id: &str, from: &str, to: &str, peer: &str) -> String {
    let v = env.json(
        "wallet-cli",
        id,
        &[
            "send", "-from", from, "-to", to, "-amount", "1", "-peer", peer,
        ],
    );
    assert_eq!(v["accepted"], true, "{v}");
    v["txid"].as_str().unwrap().to_string()
}

fn height(env: &Env, id: &str) -> u64 {
    env.tip(id).map_or(0, |t| t.0)
}

fn confirmed_txids(env: &Env, id: &str) -> Vec<String> {
    env.blocks(id)
        .iter()
        .flat_map(|b| b["transactions"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t["txid"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn five_nodes_split_two_and_three_converge_on_most_work() {
    let env = Env::new();
    let ids: Vec<String> = (0..5).map(|_| free_id()).collect();
    let (n1, n2, n3, n4, n5) = (&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]);
    let w1 = env.wallet(n1, "w1");
    let w3 = env.wallet(n3, "w3");
    env.json("node", n1, &["createblockchain", "-address", "w1"]);
    // w3 gets coins of its own, so the two sides spend different outputs.
    env.json(
        "wallet-cli",
        n1,
        &["send", "-from", "w1", "-to", &w3, "-amount", "10", "-mint"],
    );
    for id in &ids[1..] {
        env.copy_chain(n1, id);
    }

    // Group one: n1 (minter) and n2. Group two: n3 (minter), n4, n5.
    let a1 = env.start_node(n1, &["-minter", "w1", "--min-txs", "1"]);
    let mut a2 = env.start_node(n2, &["-dest", &a1.addr]);
    let a3 = env.start_node(n3, &["-minter", "w3", "--min-txs", "1"]);
    let _a4 = env.start_node(n4, &["-dest", &a3.addr]);
    let _a5 = env.start_node(n5, &["-dest", &a3.addr]);
    std::thread::sleep(Duration::from_secs(2));

    // One block on side one, two on side two.
    let lost = send(&env, n1, "w1", &w3, &a1.addr);
    eventually(HEAL, "side one to mint", || {
        (height(&env, n1) == 2).then_some(())
    });
    send(&env, n3, "w3", &w1, &a3.addr);
    eventually(HEAL, "side two to mint", || {
        (height(&env, n3) == 2).then_some(())
    });
    send(&env, n3, "w3", &w1, &a3.addr);
    eventually(HEAL, "side two to mint again", || {
        (height(&env, n3) == 3).then_some(())
    });
    let side_two_tip = env.tip(n3).unwrap();
    eventually(HEAL, "each side to agree within itself", || {
        (env.tip(n2) == env.tip(n1) && env.tip(n4) == env.tip(n3) && env.tip(n5) == env.tip(n3))
            .then_some(())
    });
    assert_ne!(env.tip(n1), env.tip(n3), "the sides are apart");
    assert!(!confirmed_txids(&env, n3).contains(&lost));

    // Heal: n2 comes back knowing a node of the other side.
    assert!(a2.proc.terminate(Duration::from_secs(20)));
    let _a2 = env.start_node(n2, &["-dest", &a1.addr, "-dest", &a3.addr]);
    let tip = eventually(
        HEAL,
        "all five nodes on the branch with the most work",
        || {
            let tips: Vec<_> = ids.iter().map(|id| env.tip(id)).collect();
            let first = tips[0].clone()?;
            (first.0 >= side_two_tip.0 && tips.iter().all(|t| t.as_ref() == Some(&first)))
                .then_some(first)
        },
    );
    // The winning branch holds side two's blocks.
    let chain: Vec<String> = env
        .blocks(n1)
        .iter()
        .map(|b| b["hash"].as_str().unwrap().to_string())
        .collect();
    assert!(chain.contains(&side_two_tip.1), "{tip:?}");
    // Side one's transaction went back to the mempool and is confirmed again.
    eventually(
        HEAL,
        "the losing side's transaction to be confirmed again",
        || {
            ids.iter()
                .all(|id| confirmed_txids(&env, id).contains(&lost))
                .then_some(())
        },
    );
}
