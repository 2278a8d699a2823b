//! Keeps a multi-thread runtime serving while one of its workers is stuck inside one poll.
//!
//! tokio's multi-thread scheduler drives I/O and timers from whichever worker parks on the
//! driver; the others sleep on a condition variable. When the driving worker wakes with one
//! task and that task blocks (a blocking call in async code: the hang a report is taken
//! for), nobody may be left driving I/O: no connection is accepted and no socket read, the
//! admin endpoint's included, until the blocking call returns, though the other workers are
//! free (tokio-rs/tokio#4941 and #8065 are the scheduler's side of it). A task spawned from
//! outside the runtime wakes a sleeping worker, which takes the driver when it parks again.
//!
//! So `gmr-runtimes`, started with the first registered runtime, samples the worker
//! counters of every registered multi-thread runtime each [`WATCH_INTERVAL`]. A worker that
//! was active (between parks) at both samples with none of its counters moved has not come
//! back from one poll for the whole interval (tokio publishes the counters between polls),
//! and its runtime is then given an empty task, once per interval while that lasts. Nothing
//! is spawned while no worker looks stuck, and a current-thread runtime (an actix worker) is
//! left alone: it has no other worker to wake. A worker counted stuck that was in fact busy
//! with long polls costs one empty task per interval.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};

use super::{PollProbe, Sample, sample};

/// How often the workers' counters are sampled; a stuck worker leaves its runtime's I/O
/// undriven for at most about twice this.
pub(crate) const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Starts `gmr-runtimes` once per process; later calls do nothing.
pub(super) fn start() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        if let Err(error) = crate::threads::spawn("gmr-runtimes", run) {
            crate::log_without_blocking(|| {
                tracing::warn!(
                    %error,
                    "gmr cannot start its runtime watcher: a worker stuck inside one poll may \
                     leave its runtime's I/O undriven until the poll returns"
                );
            });
        }
    });
}

fn run() {
    let mut last: HashMap<u64, Sample> = HashMap::new();
    loop {
        std::thread::sleep(WATCH_INTERVAL);
        let now: Vec<(u64, Handle)> = super::listed()
            .into_iter()
            .filter(|(_, handle)| handle.runtime_flavor() == RuntimeFlavor::MultiThread)
            .collect();
        let mut samples = HashMap::with_capacity(now.len());
        for (id, handle) in now {
            let current = sample(&handle);
            if last
                .get(&id)
                .is_some_and(|before| any_stuck(before, &current))
            {
                // Dropping the JoinHandle detaches the task; on a runtime shutting down it is
                // cancelled at once.
                drop(handle.spawn(async {}));
            }
            samples.insert(id, current);
        }
        last = samples;
    }
}

/// Whether a worker was active at both samples with none of its counters moved.
fn any_stuck(before: &Sample, after: &Sample) -> bool {
    before.workers == after.workers
        && before
            .per_worker
            .iter()
            .zip(&after.per_worker)
            .zip(before.probes.iter().zip(&after.probes))
            .any(|((b, a), (pb, pa))| b == a && stalled(pb, pa))
}

/// Active (an even park/unpark count) at both samples, and the count did not move.
fn stalled(before: &PollProbe, after: &PollProbe) -> bool {
    before == after && after.park_unpark.is_multiple_of(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_worker(busy_ms: u64, parks: u64, park_unpark: u64) -> Sample {
        Sample {
            workers: 1,
            alive_tasks: 1,
            global_queue_depth: 0,
            per_worker: vec![(Duration::from_millis(busy_ms), parks)],
            probes: vec![PollProbe {
                park_unpark,
                polls: None,
            }],
        }
    }

    #[test]
    fn an_active_worker_whose_counters_did_not_move_is_stuck() {
        assert!(any_stuck(&one_worker(10, 3, 6), &one_worker(10, 3, 6)));
    }

    #[test]
    fn a_parked_worker_or_one_that_moved_is_not() {
        // Parked at both samples (an odd park/unpark count).
        assert!(!any_stuck(&one_worker(10, 3, 7), &one_worker(10, 3, 7)));
        // Busy time published between the samples.
        assert!(!any_stuck(&one_worker(10, 3, 6), &one_worker(15, 3, 6)));
        // Parked and unparked between the samples.
        assert!(!any_stuck(&one_worker(10, 3, 6), &one_worker(10, 4, 8)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_blocked_inside_a_poll_is_seen_stuck() {
        let handle = Handle::current();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let blocked = tokio::spawn(async move {
            let _ = started_tx.send(());
            // Blocks this worker inside one poll until released (or 30 s).
            let _ = release_rx.recv_timeout(Duration::from_secs(30));
        });
        started_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the blocking task started");
        let stuck = tokio::task::spawn_blocking(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let mut before = sample(&handle);
            while std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
                let after = sample(&handle);
                if any_stuck(&before, &after) {
                    return true;
                }
                before = after;
            }
            false
        })
        .await
        .expect("sampler");
        let _ = release_tx.send(());
        blocked.await.expect("blocked task");
        assert!(stuck, "a worker blocked for seconds was never seen stuck");
    }
}
