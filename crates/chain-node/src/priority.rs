//! Thread priorities: work done for others (peers' reads, the HTTP API)
//! runs in Linux's idle scheduling class, below the node's own validation.

/// Puts the calling thread in Linux's idle scheduling class (SCHED_IDLE),
/// or at nice 19 where that is refused. An idle-class thread runs on CPU
/// time the node leaves over and gives a core up at once when a node
/// thread wakes; at any nice level a waking node thread may still wait out
/// the other thread's time slice, and a sync is a chain of such wake-ups.
/// Threads the calling thread starts afterwards inherit the class.
pub fn idle_class() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::{
            set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
            ThreadPriority, ThreadSchedulePolicy,
        };
        let idle = set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        );
        if idle.is_err() {
            let _ = rustix::process::nice(19);
        }
    }
}
