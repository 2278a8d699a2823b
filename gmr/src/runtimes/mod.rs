//! Tokio runtimes in the `Green Threads` section (cargo feature `tokio`).
//!
//! Every runtime registered with [`register_tokio_runtime`] is shown with tokio's stable
//! metrics: workers, alive tasks, global queue depth, and per worker its total busy time and
//! park count. The metrics are sampled twice, [`SAMPLE_WINDOW`] apart, on the reporting thread
//! (all runtimes in the same window). A worker whose busy time and park count did not move
//! while tasks sat in the global queue is flagged **stuck**: it is inside one poll (a blocking
//! call, a long computation, a deadlock) and is not taking work.
//!
//! An axum server registers its multi-thread runtime once; an actix-web server registers each
//! worker's current-thread runtime. Registration ends when the returned guard is dropped.
//!
//! A registered multi-thread runtime whose worker is stuck inside one poll is kept driving its
//! I/O, so the rest of the server, the admin endpoint included, goes on answering ([`watch`]).
//!
//! With the cargo feature `tokio-taskdump` (and `RUSTFLAGS="--cfg tokio_unstable"`, which
//! tokio requires), each runtime also gets a task dump: the stack of every task (see
//! [`taskdump`]). actix's `LocalSet` tasks are not in it (tokio cannot see them).
#![forbid(unsafe_code)]

pub(crate) mod taskdump;
mod watch;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::{Handle, RuntimeFlavor};

pub use self::taskdump::{TASK_DUMP_TIMEOUT, TASK_RESOLVE_TIMEOUT};
use crate::report::{Content, Table};

/// The time between the two metric samples of a report.
pub const SAMPLE_WINDOW: Duration = Duration::from_millis(50);

struct Registered {
    id: u64,
    name: String,
    handle: Handle,
    /// Its task dumps: whether gmr is still asking tokio for one.
    dumps: Arc<taskdump::DumpState>,
}

/// The runtimes registered now.
struct Runtimes {
    entries: Vec<Registered>,
    next_id: u64,
}

static RUNTIMES: Mutex<Runtimes> = Mutex::new(Runtimes {
    entries: Vec::new(),
    next_id: 1,
});

/// Keeps a runtime listed in the report; dropping it removes the runtime.
#[derive(Debug)]
#[must_use = "the runtime is listed only while this guard is alive"]
pub struct TokioRuntimeGuard {
    id: u64,
}

impl Drop for TokioRuntimeGuard {
    fn drop(&mut self) {
        let mut runtimes = RUNTIMES.lock().unwrap_or_else(PoisonError::into_inner);
        runtimes.entries.retain(|r| r.id != self.id);
    }
}

/// Lists the runtime of `handle` under `name` in the `Green Threads` section of every report,
/// until the returned guard is dropped.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let _runtime = gmr::register_tokio_runtime(&tokio::runtime::Handle::current(), "main");
/// # }
/// ```
pub fn register_tokio_runtime(handle: &Handle, name: impl Into<String>) -> TokioRuntimeGuard {
    let mut runtimes = RUNTIMES.lock().unwrap_or_else(PoisonError::into_inner);
    let id = runtimes.next_id;
    runtimes.next_id += 1;
    runtimes.entries.push(Registered {
        id,
        name: name.into(),
        handle: handle.clone(),
        dumps: Arc::default(),
    });
    drop(runtimes);
    if handle.runtime_flavor() == RuntimeFlavor::MultiThread {
        watch::start();
    }
    TokioRuntimeGuard { id }
}

/// The registered runtimes now, by id.
fn listed() -> Vec<(u64, Handle)> {
    RUNTIMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entries
        .iter()
        .map(|r| (r.id, r.handle.clone()))
        .collect()
}

/// One sample of one runtime's metrics.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    workers: usize,
    alive_tasks: usize,
    global_queue_depth: usize,
    /// Per worker: total busy time and park count.
    per_worker: Vec<(Duration, u64)>,
    /// Per worker: whether it looked busy in one poll (see [`PollProbe`]).
    probes: Vec<PollProbe>,
}

/// What tells a worker inside one poll from one that parks between polls: tokio's park/unpark
/// count (even while the worker is active) and, with `--cfg tokio_unstable`, its poll count.
/// tokio publishes a worker's counters only between polls (at maintenance and before parking),
/// so a worker active at both samples whose counters did not move has not finished a poll in
/// the whole window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PollProbe {
    park_unpark: u64,
    polls: Option<u64>,
}

impl PollProbe {
    fn of(metrics: &tokio::runtime::RuntimeMetrics, worker: usize) -> Self {
        #[cfg(target_has_atomic = "64")]
        let park_unpark = metrics.worker_park_unpark_count(worker);
        #[cfg(not(target_has_atomic = "64"))]
        let park_unpark = 1;
        #[cfg(all(tokio_unstable, target_has_atomic = "64"))]
        let polls = Some(metrics.worker_poll_count(worker));
        #[cfg(not(all(tokio_unstable, target_has_atomic = "64")))]
        let polls = {
            let _ = (metrics, worker);
            None
        };
        PollProbe { park_unpark, polls }
    }

    /// Active (an even park/unpark count) at both samples, with no poll finished between them.
    /// Without the poll count (stable tokio) this cannot be told from a busy worker.
    fn in_one_poll(before: &Self, after: &Self) -> bool {
        before.polls.is_some() && Self::unmoved_while_active(before, after)
    }

    /// Active (an even park/unpark count) at both samples, and nothing it counts moved between
    /// them: inside one poll, or (without the poll count) running a few long polls in a row.
    fn unmoved_while_active(before: &Self, after: &Self) -> bool {
        before == after && after.park_unpark.is_multiple_of(2)
    }
}

fn sample(handle: &Handle) -> Sample {
    let metrics = handle.metrics();
    let workers = metrics.num_workers();
    Sample {
        workers,
        alive_tasks: metrics.num_alive_tasks(),
        global_queue_depth: metrics.global_queue_depth(),
        per_worker: (0..workers).map(|w| worker_counters(&metrics, w)).collect(),
        probes: (0..workers).map(|w| PollProbe::of(&metrics, w)).collect(),
    }
}

#[cfg(target_has_atomic = "64")]
fn worker_counters(metrics: &tokio::runtime::RuntimeMetrics, worker: usize) -> (Duration, u64) {
    (
        metrics.worker_total_busy_duration(worker),
        metrics.worker_park_count(worker),
    )
}

#[cfg(not(target_has_atomic = "64"))]
fn worker_counters(_metrics: &tokio::runtime::RuntimeMetrics, _worker: usize) -> (Duration, u64) {
    (Duration::ZERO, 0)
}

/// A worker is stuck when neither counter moved between the samples while work was queued.
fn stuck_workers(before: &Sample, after: &Sample) -> Vec<bool> {
    let queued = before.global_queue_depth > 0 && after.global_queue_depth > 0;
    before
        .per_worker
        .iter()
        .zip(&after.per_worker)
        .map(|(b, a)| queued && b == a)
        .collect()
}

/// One runtime's row: its counters, and its workers as a table of their own.
fn describe(name: &str, flavor: RuntimeFlavor, before: &Sample, after: &Sample) -> Content {
    let stuck = stuck_workers(before, after);
    let mut workers = Table::new(["worker", "busy_total", "park_count", "state"]);
    for (i, (busy, parks)) in after.per_worker.iter().enumerate() {
        let state = if stuck.get(i).copied().unwrap_or(false) {
            format!(
                "STUCK: no progress in {} ms with {} tasks queued",
                SAMPLE_WINDOW.as_millis(),
                after.global_queue_depth
            )
        } else {
            "ok".to_owned()
        };
        workers = workers.row(
            Content::new()
                .field("worker", i)
                .field("busy_total", format!("{:.3}s", busy.as_secs_f64()))
                .field("park_count", *parks)
                .field("state", state),
        );
    }
    Content::new()
        .field("name", name)
        .field(
            "flavor",
            match flavor {
                RuntimeFlavor::CurrentThread => "current-thread",
                RuntimeFlavor::MultiThread => "multi-thread",
                _ => "other",
            },
        )
        .field("workers", after.workers)
        .field("alive_tasks", after.alive_tasks)
        .field("global_queue_depth", after.global_queue_depth)
        .field("stuck_workers", stuck.iter().filter(|s| **s).count())
        .table("worker_metrics", workers)
}

/// The runtimes now: their metrics over [`SAMPLE_WINDOW`], and their task dumps when built in.
#[derive(Debug)]
pub(crate) struct RuntimesSnapshot {
    /// The runtimes and their workers, as the report shows them.
    pub(crate) metrics: Content,
    /// One dump per runtime (empty without the feature `tokio-taskdump`).
    pub(crate) dumps: Vec<taskdump::RuntimeDump>,
}

/// Workers that have not finished a poll during the whole window (see [`PollProbe`]).
fn workers_in_one_poll(before: &Sample, after: &Sample) -> Vec<usize> {
    before
        .probes
        .iter()
        .zip(&after.probes)
        .enumerate()
        .filter(|(_, (b, a))| PollProbe::in_one_poll(b, a))
        .map(|(i, _)| i)
        .collect()
}

/// Why no task dump should be asked of a runtime: tokio's dump pauses every worker at a
/// barrier until all of them reach it, so while one worker is inside a long poll the dump
/// cannot finish, and the healthy workers would wait at the barrier (serving nothing) until
/// that poll returns. `blocked_polls` are the requests gmr knows to be inside one poll
/// (from the in-flight sources); gmr cannot tell which runtime runs them, so any of them
/// skips every runtime's dump.
fn dump_skip_reason(before: &Sample, after: &Sample, blocked_polls: &[String]) -> Option<String> {
    let stuck = stuck_workers(before, after).iter().filter(|s| **s).count();
    if stuck > 0 {
        return Some(format!(
            "{stuck} worker(s) of this runtime made no progress in {} ms with tasks queued; \
             tokio cannot dump tasks while a worker is blocked",
            SAMPLE_WINDOW.as_millis()
        ));
    }
    if let Some(first) = blocked_polls.first() {
        let more = match blocked_polls.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        return Some(format!(
            "{first}{more} is blocking a thread inside one poll; tokio cannot dump tasks while \
             a worker is blocked, and asking would stall the other workers until it returns"
        ));
    }
    let busy = workers_in_one_poll(before, after);
    if !busy.is_empty() {
        let list: Vec<String> = busy.iter().map(usize::to_string).collect();
        return Some(format!(
            "worker(s) {} finished no poll in {} ms; tokio cannot dump tasks while a worker is \
             inside a poll, and asking would stall the other workers until it returns",
            list.join(", "),
            SAMPLE_WINDOW.as_millis()
        ));
    }
    None
}

/// The registered runtimes now; `None` when none is registered. `blocked_polls` names the
/// requests known to be blocking a thread inside one poll (`request 4 (GET /block)`): no task
/// dump is asked for while there is one.
pub(crate) fn snapshot(blocked_polls: &[String]) -> Option<RuntimesSnapshot> {
    type Listed = (String, Handle, Arc<taskdump::DumpState>);
    let handles: Vec<Listed> = RUNTIMES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entries
        .iter()
        .map(|r| (r.name.clone(), r.handle.clone(), Arc::clone(&r.dumps)))
        .collect();
    if handles.is_empty() {
        return None;
    }
    let before: Vec<Sample> = handles.iter().map(|(_, h, _)| sample(h)).collect();
    std::thread::sleep(SAMPLE_WINDOW);
    let mut runtimes = Table::new([
        "name",
        "flavor",
        "workers",
        "alive_tasks",
        "global_queue_depth",
        "stuck_workers",
    ]);
    let mut targets = Vec::with_capacity(handles.len());
    for ((name, handle, dumps), before) in handles.iter().zip(&before) {
        let after = sample(handle);
        runtimes = runtimes.row(describe(name, handle.runtime_flavor(), before, &after));
        targets.push(taskdump::DumpTarget {
            name,
            handle,
            state: dumps,
            skip: dump_skip_reason(before, &after, blocked_polls),
        });
    }
    let dumps = taskdump::dump_all(&targets);
    Some(RuntimesSnapshot {
        metrics: Content::new()
            .field("runtimes", handles.len())
            .field("sample_window_ms", SAMPLE_WINDOW.as_millis() as u64)
            .table("runtime", runtimes),
        dumps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(depth: usize, workers: &[(u64, u64)]) -> Sample {
        Sample {
            workers: workers.len(),
            alive_tasks: 3,
            global_queue_depth: depth,
            per_worker: workers
                .iter()
                .map(|(ms, parks)| (Duration::from_millis(*ms), *parks))
                .collect(),
            probes: Vec::new(),
        }
    }

    #[test]
    fn stuck_means_still_counters_while_work_is_queued() {
        let before = s(4, &[(100, 10), (200, 20)]);
        let after = s(6, &[(100, 10), (250, 22)]);
        assert_eq!(stuck_workers(&before, &after), vec![true, false]);
        // No queued work: an idle parked worker is not stuck.
        let before = s(0, &[(100, 10)]);
        let after = s(0, &[(100, 10)]);
        assert_eq!(stuck_workers(&before, &after), vec![false]);
    }

    fn probe(park_unpark: u64, polls: Option<u64>) -> PollProbe {
        PollProbe { park_unpark, polls }
    }

    #[test]
    fn in_one_poll_means_active_with_no_poll_finished() {
        // Active (even), no poll finished: inside one poll.
        assert!(PollProbe::in_one_poll(
            &probe(4, Some(9)),
            &probe(4, Some(9))
        ));
        // Parked (odd) all along: idle, not in a poll.
        assert!(!PollProbe::in_one_poll(
            &probe(5, Some(9)),
            &probe(5, Some(9))
        ));
        // A poll finished, or the worker parked in between.
        assert!(!PollProbe::in_one_poll(
            &probe(4, Some(9)),
            &probe(4, Some(10))
        ));
        assert!(!PollProbe::in_one_poll(
            &probe(4, Some(9)),
            &probe(6, Some(9))
        ));
        // Without the poll count a busy worker looks the same: never claimed.
        assert!(!PollProbe::in_one_poll(&probe(4, None), &probe(4, None)));
    }

    #[test]
    fn a_request_blocked_in_a_poll_skips_the_dump_and_says_which() {
        let idle = s(0, &[(100, 10)]);
        assert_eq!(dump_skip_reason(&idle, &idle, &[]), None);
        let reason = dump_skip_reason(
            &idle,
            &idle,
            &[
                "request 4 (GET /block)".to_owned(),
                "request 7 (GET /x)".to_owned(),
            ],
        )
        .expect("skipped");
        assert!(
            reason.starts_with("request 4 (GET /block) (and 1 more) is blocking a thread"),
            "{reason}"
        );
        let mut busy = s(0, &[(100, 10)]);
        busy.probes = vec![probe(8, Some(3))];
        let reason = dump_skip_reason(&busy, &busy, &[]).expect("skipped");
        assert!(
            reason.starts_with("worker(s) 0 finished no poll in 50 ms"),
            "{reason}"
        );
    }

    #[test]
    fn a_blocked_current_thread_runtime_is_flagged_stuck() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let handle = runtime.handle().clone();
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let blocker = std::thread::spawn(move || {
            runtime.block_on(async move {
                tokio::spawn(async move {
                    let _ = entered_tx.send(());
                    // Blocks the runtime's only worker.
                    let _ = release_rx.recv();
                })
                .await
                .expect("blocking task");
            });
        });
        entered_rx.recv().expect("worker entered the blocking task");
        // Queue work the stuck worker cannot take.
        for _ in 0..3 {
            handle.spawn(async {});
        }
        let _guard = register_tokio_runtime(&handle, "unit-blocked");
        let snapshot = snapshot(&[]).expect("a runtime is registered");
        let json = crate::report::SectionBody::to_json(&snapshot.metrics);
        let rt = json["runtime"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == "unit-blocked"))
            .cloned()
            .expect("runtime listed");
        assert_eq!(rt["flavor"], "current-thread");
        assert_eq!(rt["stuck_workers"], 1, "{rt}");
        assert!(
            rt["worker_metrics"][0]["state"]
                .as_str()
                .is_some_and(|s| s.starts_with("STUCK"))
        );
        // No dump is even attempted of a runtime with a stuck worker.
        if taskdump::AVAILABLE {
            let dump = snapshot
                .dumps
                .iter()
                .find(|d| d.runtime == "unit-blocked")
                .expect("a dump entry");
            assert!(
                matches!(&dump.outcome, taskdump::DumpOutcome::Missing { status: "skipped", reason } if reason.contains("blocked")),
                "{dump:?}"
            );
        }
        release_tx.send(()).expect("release");
        blocker.join().expect("runtime thread");
    }
}
