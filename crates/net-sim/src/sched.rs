//! How the simulation's threads share the cores.
//!
//! Every node's networking runs on the runtime's few workers, and each
//! node's chain on threads of its own (`chain`, `chain-write`, `reads-N`).
//! The kernel shares the cores between threads, not between nodes: while
//! fifty nodes connect a block, the two workers that carry the networking
//! of all hundred get a small share of the machine, and every node's
//! gossip waits on other nodes' checks. On its own machine
//! a node's networking does not wait for another node's chain, so the
//! simulation can run the chain threads at a lower priority (a `nice`
//! value some steps above the process's): the workers are served first
//! and the chain threads take the rest. Then it is the chain's work that
//! waits: payments, each checked at every node, spread more slowly.

/// The highest `nice` value.
const NICEST: i32 = 19;

/// Whether a thread named `comm` is one of a node's chain threads.
pub fn is_chain_thread(comm: &str) -> bool {
    comm == "chain" || comm == "chain-write" || comm.starts_with("reads-")
}

/// A thread's `nice` value, from its `/proc/<pid>/task/<tid>/stat` line.
fn nice_of(stat: &str) -> Option<i32> {
    // The name, in parentheses, may hold spaces: fields are counted after
    // its closing one, from the third (the state); `nice` is the 19th.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(16)?.parse().ok()
}

/// The `nice` value the chain threads get: `steps` above the process's,
/// at most 19.
pub fn chain_nice(steps: i32) -> std::io::Result<i32> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    let base =
        nice_of(&stat).ok_or_else(|| std::io::Error::other("no nice value in /proc/self/stat"))?;
    Ok((base + steps).min(NICEST))
}

/// Sets [`chain_nice`]`(steps)` on every chain thread of this process that
/// has a lower value, with `renice` (util-linux); returns how many it
/// changed. Linux only (elsewhere 0).
pub fn lower_chain_threads(steps: i32) -> std::io::Result<usize> {
    if !cfg!(target_os = "linux") {
        return Ok(0);
    }
    let target = chain_nice(steps)?;
    let mut tids = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?;
        // A thread that ended since the listing is skipped.
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(task.path().join("comm")),
            std::fs::read_to_string(task.path().join("stat")),
        ) else {
            continue;
        };
        if is_chain_thread(comm.trim_end()) && nice_of(&stat).is_some_and(|n| n < target) {
            tids.push(task.file_name().to_string_lossy().into_owned());
        }
    }
    if tids.is_empty() {
        return Ok(0);
    }
    let out = std::process::Command::new("renice")
        .args(["-n", &target.to_string(), "-p"])
        .args(&tids)
        .output()?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "renice failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(tids.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn chain_threads_are_found_by_name() {
        for name in ["chain", "chain-write", "reads-0", "reads-11"] {
            assert!(is_chain_thread(name), "{name}");
        }
        for name in ["tokio-rt-worker", "net-sim", "chainy", "futures-timer"] {
            assert!(!is_chain_thread(name), "{name}");
        }
    }

    #[test]
    fn nice_is_read_after_the_name() {
        let stat = "4242 (reads-1 (x) y) S 1 2 3 0 -1 4194368 9 0 0 0 5 6 0 0 20 10 1 0 77 0 0";
        assert_eq!(nice_of(stat), Some(10));
        assert_eq!(nice_of("4242 (chain) S 1"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_chain_thread_is_lowered_and_others_are_not() {
        let nice_of_task = |tid: &str| {
            std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
                .ok()
                .and_then(|s| nice_of(&s))
        };
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready) = std::sync::mpsc::channel::<()>();
        let t = std::thread::Builder::new()
            .name("chain".into())
            .spawn(move || {
                // Running, so its name is set.
                ready_tx.send(()).unwrap();
                wait.recv().unwrap()
            })
            .unwrap();
        ready.recv().unwrap();
        let before: Vec<String> = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let target = chain_nice(10).unwrap();
        assert!(lower_chain_threads(10).unwrap() >= 1);
        let mut lowered = 0;
        for tid in &before {
            // Other tests' threads may have ended since.
            let Ok(comm) = std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")) else {
                continue;
            };
            if is_chain_thread(comm.trim_end()) {
                assert_eq!(nice_of_task(tid), Some(target));
                lowered += 1;
            } else if let Some(n) = nice_of_task(tid) {
                assert!(n < target, "{comm}");
            }
        }
        assert!(lowered >= 1);
        // Done once: a second call finds nothing to change.
        assert_eq!(lower_chain_threads(10).unwrap(), 0);
        go.send(()).unwrap();
        t.join().unwrap();
    }
}
