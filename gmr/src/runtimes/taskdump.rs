//! Task dumps of tokio runtimes (cargo feature `tokio-taskdump`, `--cfg tokio_unstable`): the
//! stack of every task at its last poll, from tokio's structured dump.
//!
//! tokio takes a dump by pausing every worker of the runtime, so it never finishes while a
//! worker is blocked. gmr asks for it from a task of the runtime and waits at most
//! [`TASK_DUMP_TIMEOUT`]; a runtime with a stuck worker is not even asked (a pending dump makes
//! the healthy workers wait at its barrier). Naming the frames (`Trace::resolve_backtraces`)
//! parses debug information, which can take long the first time: it runs on a gmr thread,
//! one at a time, and the report waits for it at most [`TASK_RESOLVE_TIMEOUT`].
// Without the feature or `--cfg tokio_unstable`, only the types and the "unavailable" path
// are used.
#![cfg_attr(not(all(feature = "tokio-taskdump", tokio_unstable)), allow(dead_code))]

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::capture::Symbol;

/// How long a task dump may take before the report goes on without it.
pub const TASK_DUMP_TIMEOUT: Duration = Duration::from_secs(1);

/// How long naming the frames of the dumps may take before the report goes on without them.
pub const TASK_RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// One frame of a task's stack: the address looked up and the functions there, innermost
/// (inlined) first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskFrame {
    /// The address inside the call instruction (a return address minus one).
    pub(crate) address: u64,
    /// The functions at the address, innermost first.
    pub(crate) symbols: Vec<Symbol>,
}

/// One task of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DumpedTask {
    /// tokio's task id.
    pub(crate) id: u64,
    /// One stack per leaf future its last poll reached, innermost (the await point) first.
    pub(crate) traces: Vec<Vec<TaskFrame>>,
}

/// What became of one runtime's dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DumpOutcome {
    /// The dump, every task named.
    Tasks(Vec<DumpedTask>),
    /// No dump: the status word (`skipped`, `timed out`, `unavailable`) and why.
    Missing {
        /// `skipped`, `timed out`, `unavailable`.
        status: &'static str,
        /// Why, in a sentence.
        reason: String,
    },
}

/// The dump of one runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuntimeDump {
    /// The runtime's registered name.
    pub(crate) runtime: String,
    /// The tasks, or why there are none.
    pub(crate) outcome: DumpOutcome,
}

/// One runtime to dump.
pub(crate) struct DumpTarget<'a> {
    pub(crate) name: &'a str,
    pub(crate) handle: &'a tokio::runtime::Handle,
    /// Set while a dump of this runtime is still running.
    pub(crate) in_progress: &'a Arc<AtomicBool>,
    /// Why no dump is asked for (a stuck worker), if any.
    pub(crate) skip: Option<String>,
}

/// Whether task dumps are built in.
#[cfg(test)]
pub(crate) const AVAILABLE: bool = cfg!(all(feature = "tokio-taskdump", tokio_unstable));

/// Dumps every target, all at once, within [`TASK_DUMP_TIMEOUT`] for the dumps and
/// [`TASK_RESOLVE_TIMEOUT`] for naming their frames.
#[cfg(all(feature = "tokio-taskdump", tokio_unstable))]
pub(crate) fn dump_all(targets: &[DumpTarget<'_>]) -> Vec<RuntimeDump> {
    use std::sync::atomic::Ordering;

    let started = std::time::Instant::now();
    let pending: Vec<(
        String,
        Result<std::sync::mpsc::Receiver<tokio::runtime::Dump>, DumpOutcome>,
    )> = targets
        .iter()
        .map(|t| {
            let started = match &t.skip {
                Some(reason) => Err(DumpOutcome::Missing {
                    status: "skipped",
                    reason: reason.clone(),
                }),
                None if t.in_progress.swap(true, Ordering::AcqRel) => Err(DumpOutcome::Missing {
                    status: "skipped",
                    reason: "the previous task dump of this runtime has not finished \
                                     (a worker was blocked then)"
                        .to_owned(),
                }),
                None => Ok(start(t.handle, Arc::clone(t.in_progress))),
            };
            (t.name.to_owned(), started)
        })
        .collect();
    let dump_deadline = started + TASK_DUMP_TIMEOUT;
    let mut dumps = Vec::new();
    let mut out: Vec<RuntimeDump> = Vec::with_capacity(pending.len());
    for (runtime, started) in pending {
        match started {
            Err(outcome) => out.push(RuntimeDump { runtime, outcome }),
            Ok(rx) => {
                let left = dump_deadline.saturating_duration_since(std::time::Instant::now());
                match rx.recv_timeout(left) {
                    Ok(dump) => {
                        dumps.push((out.len(), dump));
                        // Filled in once named.
                        out.push(RuntimeDump {
                            runtime,
                            outcome: DumpOutcome::Tasks(Vec::new()),
                        });
                    }
                    Err(_) => out.push(RuntimeDump {
                        runtime,
                        outcome: DumpOutcome::Missing {
                            status: "timed out",
                            reason: format!(
                                "the task dump did not finish in {} ms: tokio cannot dump tasks \
                                 while a worker is blocked (see the runtime's workers below)",
                                TASK_DUMP_TIMEOUT.as_millis()
                            ),
                        },
                    }),
                }
            }
        }
    }
    if dumps.is_empty() {
        return out;
    }
    match resolve::named(dumps, TASK_RESOLVE_TIMEOUT) {
        Ok(named) => {
            for (index, tasks) in named {
                if let Some(entry) = out.get_mut(index) {
                    entry.outcome = DumpOutcome::Tasks(tasks);
                }
            }
        }
        Err(reason) => {
            for entry in &mut out {
                if matches!(entry.outcome, DumpOutcome::Tasks(_)) {
                    entry.outcome = DumpOutcome::Missing {
                        status: "timed out",
                        reason: reason.clone(),
                    };
                }
            }
        }
    }
    out
}

/// Asks `handle` for a dump from one of its tasks; the dump arrives on the receiver.
#[cfg(all(feature = "tokio-taskdump", tokio_unstable))]
fn start(
    handle: &tokio::runtime::Handle,
    in_progress: Arc<AtomicBool>,
) -> std::sync::mpsc::Receiver<tokio::runtime::Dump> {
    use std::sync::atomic::Ordering;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let dumping = handle.clone();
    // Polls seen until the dump finishes are tokio's tracing polls, not the application's.
    let running = crate::requests::dump_running();
    handle.spawn(async move {
        let dump = dumping.dump().await;
        drop(running);
        in_progress.store(false, Ordering::Release);
        // The report may have gone on without it.
        let _ = tx.send(dump);
    });
    rx
}

/// Without `--cfg tokio_unstable`, or without the feature: one line per runtime saying so.
#[cfg(not(all(feature = "tokio-taskdump", tokio_unstable)))]
pub(crate) fn dump_all(targets: &[DumpTarget<'_>]) -> Vec<RuntimeDump> {
    if cfg!(feature = "tokio-taskdump") {
        targets
            .iter()
            .map(|t| RuntimeDump {
                runtime: t.name.to_owned(),
                outcome: DumpOutcome::Missing {
                    status: "unavailable",
                    reason: "built without RUSTFLAGS=\"--cfg tokio_unstable\", which tokio's \
                             task dumps need"
                        .to_owned(),
                },
            })
            .collect()
    } else {
        Vec::new()
    }
}

/// Naming the frames of dumps, on a gmr thread.
#[cfg(all(feature = "tokio-taskdump", tokio_unstable))]
mod resolve {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::{DumpedTask, TaskFrame};
    use crate::capture::Symbol;

    /// Set while a thread names frames; a report that finds it set does not start another.
    static BUSY: AtomicBool = AtomicBool::new(false);

    /// Clears [`BUSY`] when the naming thread ends, however it ends.
    struct Busy;
    impl Drop for Busy {
        fn drop(&mut self) {
            BUSY.store(false, Ordering::Release);
        }
    }

    type Named = Vec<(usize, Vec<DumpedTask>)>;

    /// The tasks of each dump, named, within `timeout`.
    pub(super) fn named(
        dumps: Vec<(usize, tokio::runtime::Dump)>,
        timeout: Duration,
    ) -> Result<Named, String> {
        if BUSY.swap(true, Ordering::AcqRel) {
            return Err(
                "the frames of an earlier task dump are still being named (the first dump \
                 reads the debug information); the next report has them"
                    .to_owned(),
            );
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let spawned = crate::threads::spawn("gmr-taskdump", move || {
            let _busy = Busy;
            let named: Named = dumps
                .into_iter()
                .map(|(index, dump)| (index, tasks_of(&dump)))
                .collect();
            let _ = tx.send(named);
        });
        if let Err(e) = spawned {
            BUSY.store(false, Ordering::Release);
            return Err(format!(
                "cannot start the thread that names task frames: {e}"
            ));
        }
        rx.recv_timeout(timeout).map_err(|_| {
            format!(
                "naming the tasks' frames took longer than {} ms (the first dump reads the \
                 debug information); the next report has them",
                timeout.as_millis()
            )
        })
    }

    fn tasks_of(dump: &tokio::runtime::Dump) -> Vec<DumpedTask> {
        dump.tasks()
            .iter()
            .map(|task| DumpedTask {
                id: task.id().to_string().parse().unwrap_or(0),
                traces: task
                    .trace()
                    .resolve_backtraces()
                    .iter()
                    .map(|backtrace| {
                        let frames: Vec<TaskFrame> = backtrace
                            .frames()
                            .enumerate()
                            .map(|(i, frame)| {
                                let ip = frame.ip() as usize as u64;
                                TaskFrame {
                                    // Return addresses point after the call.
                                    address: if i == 0 { ip } else { ip.saturating_sub(1) },
                                    symbols: frame
                                        .symbols()
                                        .map(|s| Symbol {
                                            function: s
                                                .name_raw()
                                                .and_then(|raw| std::str::from_utf8(raw).ok())
                                                .map(crate::capture::symbolize::demangle),
                                            file: s.filename().map(|p| p.display().to_string()),
                                            line: s.lineno(),
                                            column: s.colno(),
                                        })
                                        .collect(),
                                }
                            })
                            .collect();
                        super::trim_tracing_frames(frames)
                    })
                    .collect(),
            })
            .collect()
    }
}

/// Drops the innermost frames that belong to tokio's tracing machinery (the stack walk and
/// the leaf hook), so that a task's stack starts at its await point.
pub(crate) fn trim_tracing_frames(frames: Vec<TaskFrame>) -> Vec<TaskFrame> {
    let machinery = |f: &TaskFrame| {
        f.symbols.is_empty()
            || f.symbols.iter().all(|s| {
                s.function.as_deref().is_none_or(|name| {
                    name.starts_with("backtrace::")
                        || name.contains("tokio::runtime::task::trace::")
                        || name.contains("tokio::runtime::dump::")
                })
            })
    };
    let skip = frames.iter().take_while(|f| machinery(f)).count();
    if skip == frames.len() {
        return frames;
    }
    frames.into_iter().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(names: &[&str]) -> TaskFrame {
        TaskFrame {
            address: 1,
            symbols: names
                .iter()
                .map(|n| Symbol {
                    function: Some((*n).to_owned()),
                    ..Symbol::default()
                })
                .collect(),
        }
    }

    #[test]
    fn the_stack_starts_at_the_await_point() {
        let frames = vec![
            frame(&["backtrace::backtrace::libunwind::trace"]),
            frame(&[
                "tokio::runtime::task::trace::trace_leaf::{{closure}}",
                "tokio::runtime::task::trace::trace_leaf",
            ]),
            frame(&[
                "<tokio::sync::batch_semaphore::Acquire as core::future::future::Future>::poll",
            ]),
            frame(&["app::handler::{async_fn#0}"]),
        ];
        let trimmed = trim_tracing_frames(frames);
        assert_eq!(trimmed.len(), 2);
        assert!(
            trimmed[0].symbols[0]
                .function
                .as_deref()
                .is_some_and(|f| f.contains("Acquire"))
        );
        // Nothing but machinery: kept as it is rather than emptied.
        let only = vec![frame(&["backtrace::trace"])];
        assert_eq!(trim_tracing_frames(only.clone()), only);
    }

    #[cfg(all(feature = "tokio-taskdump", tokio_unstable))]
    #[test]
    fn dumps_list_named_tasks_and_time_out_when_a_worker_is_blocked() {
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
        let in_progress = Arc::new(AtomicBool::new(false));
        let target = |skip: Option<String>| DumpTarget {
            name: "unit",
            handle: runtime.handle(),
            in_progress: &in_progress,
            skip,
        };
        let dumps = dump_all(&[target(None)]);
        let DumpOutcome::Tasks(tasks) = &dumps[0].outcome else {
            panic!("no tasks: {dumps:?}");
        };
        let waiting = tasks
            .iter()
            .find(|t| {
                t.traces.iter().flatten().flat_map(|f| &f.symbols).any(|s| {
                    s.function
                        .as_deref()
                        .is_some_and(|f| f.contains("dumped_task_waiting_forever"))
                })
            })
            .expect("the sleeping task is in the dump");
        assert!(waiting.id > 0);
        let innermost = &waiting.traces[0][0];
        assert!(
            innermost.symbols.iter().any(|s| s
                .function
                .as_deref()
                .is_some_and(|f| f.contains("Sleep") || f.contains("sleep"))),
            "the await point is innermost: {innermost:?}"
        );

        // A blocked worker: the dump times out, and the next one is not started.
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        runtime.spawn(async move {
            let _ = entered_tx.send(());
            let _ = release_rx.recv();
        });
        entered_rx.recv().expect("worker blocked");
        let started = std::time::Instant::now();
        let dumps = dump_all(&[target(None)]);
        assert!(
            matches!(
                &dumps[0].outcome,
                DumpOutcome::Missing {
                    status: "timed out",
                    ..
                }
            ),
            "{dumps:?}"
        );
        assert!(started.elapsed() < TASK_DUMP_TIMEOUT * 3);
        let again = dump_all(&[target(None)]);
        assert!(
            matches!(&again[0].outcome, DumpOutcome::Missing { status: "skipped", reason } if reason.contains("has not finished")),
            "{again:?}"
        );
        let skipped = dump_all(&[target(Some("a worker is stuck".into()))]);
        assert!(
            matches!(&skipped[0].outcome, DumpOutcome::Missing { status: "skipped", reason } if reason == "a worker is stuck"),
            "{skipped:?}"
        );
        release_tx.send(()).expect("release");
    }
}
