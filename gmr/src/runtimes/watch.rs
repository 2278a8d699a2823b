//! Keeps a multi-thread runtime serving while one of its workers is stuck inside one poll.
//!
//! tokio's multi-thread scheduler drives I/O and timers from whichever worker parks on the
//! driver; the others sleep on a condition variable. When the driving worker wakes with one
//! task and that task blocks (a blocking call in async code: the hang a report is taken
//! for), nobody may be left driving I/O: no connection is accepted and no socket read, the
//! admin endpoint's included, until the blocking call returns, though the other workers are
//! free (the task in a worker's LIFO slot cannot be stolen: tokio-rs/tokio#4941). A task
//! spawned from outside the runtime wakes a sleeping worker, which takes the driver when it
//! parks again.
//!
//! So `gmr-runtimes`, started with the first registered multi-thread runtime, samples the
//! worker counters of every registered multi-thread runtime each [`WATCH_INTERVAL`]. tokio
//! publishes a worker's counters when it parks, when it wakes and every 61 polls; a worker
//! that was active (between parks) at both samples with none of its counters moved has not
//! come back from one poll for the whole interval, or is running a few long polls in a row
//! (stable tokio cannot tell them apart). Its runtime is then given an empty task, once per
//! interval while that lasts, and never a second one before the first has run: when every
//! worker is blocked, nothing piles up. Nothing is spawned while no worker looks stuck, and
//! a runtime with one worker, or a current-thread runtime (an actix worker), is left alone:
//! there is no other worker to wake.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::task::JoinHandle;

use super::{PollProbe, Sample, sample};

/// How often the workers' counters are sampled; a stuck worker leaves its runtime's I/O
/// undriven for at most about twice this.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Starts `gmr-runtimes` once per process (tried again by a later registration if it could
/// not be started).
pub(super) fn start() {
    static STARTED: Mutex<bool> = Mutex::new(false);
    let mut started = STARTED.lock().unwrap_or_else(PoisonError::into_inner);
    if *started {
        return;
    }
    match crate::threads::spawn("gmr-runtimes", run) {
        Ok(_) => *started = true,
        Err(error) => tracing::warn!(
            %error,
            "gmr cannot start its runtime watcher: a worker stuck inside one poll may leave \
             its runtime's I/O undriven until the poll returns"
        ),
    }
}

/// What the watcher keeps of one runtime between two samples.
struct Watched {
    sample: Sample,
    /// The empty task last given to the runtime, until it has run.
    nudge: Option<JoinHandle<()>>,
}

fn run() {
    let mut watched: HashMap<u64, Watched> = HashMap::new();
    loop {
        std::thread::sleep(WATCH_INTERVAL);
        let listed: Vec<(u64, Handle)> = super::listed()
            .into_iter()
            .filter(|(_, handle)| watchable(handle))
            .collect();
        let mut next = HashMap::with_capacity(listed.len());
        for (id, handle) in listed {
            let before = watched.remove(&id);
            // A panic here (a task hook of the application's runtime runs on this thread when
            // a task is spawned) must not end the watch of the other runtimes.
            let step = std::panic::catch_unwind(AssertUnwindSafe(|| watch(&handle, before)));
            if let Ok(now) = step {
                next.insert(id, now);
            }
        }
        watched = next;
    }
}

/// Whether a runtime has workers the watcher could wake: multi-thread, with more than one.
fn watchable(handle: &Handle) -> bool {
    handle.runtime_flavor() == RuntimeFlavor::MultiThread && handle.metrics().num_workers() > 1
}

/// Samples one runtime, and gives it an empty task if a worker looks stuck since `before`
/// and the last such task has run.
fn watch(handle: &Handle, before: Option<Watched>) -> Watched {
    let sample = sample(handle);
    let (last, pending) = match before {
        Some(b) => (Some(b.sample), b.nudge.filter(|task| !task.is_finished())),
        None => (None, None),
    };
    let nudge = match pending {
        Some(task) => Some(task),
        // On a runtime shutting down the task is cancelled at once (and so finished).
        None if last.is_some_and(|last| any_stuck(&last, &sample)) => Some(handle.spawn(async {})),
        None => None,
    };
    Watched { sample, nudge }
}

/// Whether a worker was active at both samples with none of its counters moved.
fn any_stuck(before: &Sample, after: &Sample) -> bool {
    before.workers == after.workers
        && before
            .per_worker
            .iter()
            .zip(&after.per_worker)
            .zip(before.probes.iter().zip(&after.probes))
            .any(|((b, a), (pb, pa))| b == a && PollProbe::unmoved_while_active(pb, pa))
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

    #[test]
    fn a_runtime_with_every_worker_blocked_gets_one_empty_task_not_one_per_interval() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime");
        let handle = runtime.handle().clone();
        assert!(watchable(&handle));
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = std::sync::Arc::new(std::sync::Mutex::new(release_rx));
        for _ in 0..2 {
            let (started, release) = (started_tx.clone(), std::sync::Arc::clone(&release_rx));
            // Blocks its worker until released (or 30 s): both workers are stuck.
            handle.spawn(async move {
                let _ = started.send(());
                let release = release.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = release.recv_timeout(Duration::from_secs(30));
            });
        }
        for _ in 0..2 {
            started_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("a blocking task started");
        }
        let blocked_tasks = handle.metrics().num_alive_tasks();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut watched = watch(&handle, None);
        while watched.nudge.is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            watched = watch(&handle, Some(watched));
        }
        assert!(watched.nudge.is_some(), "no empty task for a stuck runtime");
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(50));
            watched = watch(&handle, Some(watched));
        }
        // One empty task waiting for a worker, not one per sample.
        assert_eq!(handle.metrics().num_alive_tasks(), blocked_tasks + 1);
        drop(release_tx);
        drop(runtime);
    }

    #[test]
    fn a_runtime_with_one_worker_is_not_watched() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("runtime");
        assert!(!watchable(runtime.handle()));
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert!(!watchable(current.handle()));
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
