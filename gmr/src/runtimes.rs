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
//! With the cargo feature `tokio-taskdump` (and `RUSTFLAGS="--cfg tokio_unstable"`, which
//! tokio requires), each runtime also gets a task dump: the stack of every task. tokio takes it
//! by pausing every worker, so it never finishes while a worker is blocked; gmr asks for it
//! from a task and waits at most [`TASK_DUMP_TIMEOUT`], then says it timed out. actix's
//! `LocalSet` tasks are not in it (tokio cannot see them).
#![forbid(unsafe_code)]

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::runtime::{Handle, RuntimeFlavor};

use crate::error::SectionError;
use crate::registry::{GreenThreadsHandle, GreenThreadsSource, register_green_threads_source};
use crate::report::{Content, Table};

/// The time between the two metric samples of a report.
pub const SAMPLE_WINDOW: Duration = Duration::from_millis(50);

/// How long a task dump may take before the report goes on without it.
pub const TASK_DUMP_TIMEOUT: Duration = Duration::from_secs(1);

struct Registered {
    id: u64,
    name: String,
    handle: Handle,
    /// A task dump of this runtime is still running (at most one at a time).
    #[cfg_attr(not(feature = "tokio-taskdump"), allow(dead_code))]
    dumping: Arc<std::sync::atomic::AtomicBool>,
}

/// The runtimes registered now, and the single green-threads source that shows them all.
struct Runtimes {
    entries: Vec<Registered>,
    next_id: u64,
    source: Option<GreenThreadsHandle>,
}

static RUNTIMES: Mutex<Runtimes> = Mutex::new(Runtimes {
    entries: Vec::new(),
    next_id: 1,
    source: None,
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
        if runtimes.entries.is_empty()
            && let Some(source) = runtimes.source.take()
        {
            source.unregister();
        }
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
        dumping: Arc::new(std::sync::atomic::AtomicBool::new(false)),
    });
    if runtimes.source.is_none() {
        runtimes.source = Some(register_green_threads_source(Arc::new(TokioSource)));
    }
    TokioRuntimeGuard { id }
}

/// One sample of one runtime's metrics.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    workers: usize,
    alive_tasks: usize,
    global_queue_depth: usize,
    /// Per worker: total busy time and park count.
    per_worker: Vec<(Duration, u64)>,
}

fn sample(handle: &Handle) -> Sample {
    let metrics = handle.metrics();
    let workers = metrics.num_workers();
    Sample {
        workers,
        alive_tasks: metrics.num_alive_tasks(),
        global_queue_depth: metrics.global_queue_depth(),
        per_worker: (0..workers).map(|w| worker_counters(&metrics, w)).collect(),
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

/// The task dump of one runtime, under [`TASK_DUMP_TIMEOUT`].
///
/// Skipped when a worker is stuck (tokio cannot finish a dump then, and a pending dump makes the
/// healthy workers wait at its barrier on every tick) and while an earlier dump of the same
/// runtime is still running.
#[cfg(all(feature = "tokio-taskdump", tokio_unstable))]
fn task_dump(
    handle: &Handle,
    in_progress: &Arc<std::sync::atomic::AtomicBool>,
    stuck: bool,
) -> Option<Value> {
    use std::sync::atomic::Ordering;
    if stuck {
        return Some(serde_json::json!(
            "skipped: a worker is stuck, and tokio cannot dump tasks while a worker is blocked"
        ));
    }
    if in_progress.swap(true, Ordering::AcqRel) {
        return Some(serde_json::json!(
            "skipped: the previous task dump has not finished yet"
        ));
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let dumping = handle.clone();
    let done = Arc::clone(in_progress);
    handle.spawn(async move {
        let dump = dumping.dump().await;
        done.store(false, Ordering::Release);
        let traces: Vec<String> = dump
            .tasks()
            .iter()
            .map(|task| task.trace().to_string())
            .collect();
        let _ = tx.send(traces);
    });
    Some(match rx.recv_timeout(TASK_DUMP_TIMEOUT) {
        Ok(traces) => serde_json::json!({ "tasks": traces.len(), "traces": traces }),
        Err(_) => serde_json::json!(format!(
            "timed out after {} ms: tokio cannot dump tasks while a worker is blocked",
            TASK_DUMP_TIMEOUT.as_millis()
        )),
    })
}

#[cfg(all(feature = "tokio-taskdump", not(tokio_unstable)))]
fn task_dump(
    _handle: &Handle,
    _in_progress: &Arc<std::sync::atomic::AtomicBool>,
    _stuck: bool,
) -> Option<Value> {
    Some(serde_json::json!(
        "unavailable: build with RUSTFLAGS=\"--cfg tokio_unstable\" for tokio task dumps"
    ))
}

#[cfg(not(feature = "tokio-taskdump"))]
fn task_dump(
    _handle: &Handle,
    _in_progress: &Arc<std::sync::atomic::AtomicBool>,
    _stuck: bool,
) -> Option<Value> {
    None
}

struct TokioSource;

impl GreenThreadsSource for TokioSource {
    fn title(&self) -> String {
        "tokio runtimes".to_owned()
    }

    fn snapshot(&self) -> Result<Content, SectionError> {
        type Listed = (String, Handle, Arc<std::sync::atomic::AtomicBool>);
        let handles: Vec<Listed> = RUNTIMES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .iter()
            .map(|r| (r.name.clone(), r.handle.clone(), Arc::clone(&r.dumping)))
            .collect();
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
        let mut count = 0usize;
        for ((name, handle, dumping), before) in handles.iter().zip(&before) {
            let after = sample(handle);
            let stuck = stuck_workers(before, &after).iter().any(|s| *s);
            let mut runtime = describe(name, handle.runtime_flavor(), before, &after);
            if let Some(dump) = task_dump(handle, dumping, stuck) {
                runtime = runtime.field("task_dump", dump);
            }
            runtimes = runtimes.row(runtime);
            count += 1;
        }
        Ok(Content::new()
            .field("runtimes", count)
            .field("sample_window_ms", SAMPLE_WINDOW.as_millis() as u64)
            .table("runtime", runtimes))
    }
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

    #[cfg(all(feature = "tokio-taskdump", tokio_unstable))]
    #[test]
    fn task_dump_lists_tasks_and_times_out_when_a_worker_is_blocked() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        #[inline(never)]
        async fn dumped_task_waiting_forever() {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        runtime.spawn(dumped_task_waiting_forever());
        let in_progress = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dump = task_dump(runtime.handle(), &in_progress, false).expect("feature on");
        assert!(dump["tasks"].as_u64().is_some_and(|n| n >= 1), "{dump}");
        assert!(
            dump.to_string().contains("dumped_task_waiting_forever"),
            "{dump}"
        );

        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        runtime.spawn(async move {
            let _ = entered_tx.send(());
            let _ = release_rx.recv();
        });
        entered_rx.recv().expect("worker blocked");
        let started = std::time::Instant::now();
        let dump = task_dump(runtime.handle(), &in_progress, false).expect("feature on");
        assert!(
            dump.as_str().is_some_and(|s| s.starts_with("timed out")),
            "{dump}"
        );
        assert!(started.elapsed() < TASK_DUMP_TIMEOUT * 3);
        // The dump still pending: the next report does not start another one.
        let again = task_dump(runtime.handle(), &in_progress, false).expect("feature on");
        assert!(
            again
                .as_str()
                .is_some_and(|s| s.contains("has not finished")),
            "{again}"
        );
        // A stuck worker: no dump is even attempted.
        let stuck = task_dump(runtime.handle(), &in_progress, true).expect("feature on");
        assert!(
            stuck.as_str().is_some_and(|s| s.starts_with("skipped")),
            "{stuck}"
        );
        release_tx.send(()).expect("release");
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
        let content = TokioSource.snapshot().expect("snapshot");
        let json = crate::report::SectionBody::to_json(&content);
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
        release_tx.send(()).expect("release");
        blocker.join().expect("runtime thread");
    }
}
