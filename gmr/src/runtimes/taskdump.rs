//! Task dumps of tokio runtimes (cargo feature `tokio-taskdump`, `--cfg tokio_unstable`): the
//! stack of every task at its last poll, from tokio's structured dump.
//!
//! tokio takes a dump by pausing every worker of the runtime, so it never finishes while a
//! worker is blocked. gmr asks for it (a current-thread runtime from one of its tasks, a
//! multi-thread runtime from a gmr thread, `gmr-dump-ask`) and the report waits at most
//! [`TASK_DUMP_TIMEOUT`]; a runtime with a stuck worker is not even asked (a pending dump makes
//! the healthy workers wait at its barrier). Naming the frames (`Trace::resolve_backtraces`)
//! parses debug information, which can take long the first time: it runs on a gmr thread,
//! one at a time, and the report waits for it at most [`TASK_RESOLVE_TIMEOUT`].
//!
//! # A late worker breaks tokio's dump barrier, and gmr mends it
//!
//! The workers of a multi-thread runtime meet at a barrier before the dump and wait there at
//! most [`TOKIO_BARRIER_WAIT`]. In tokio up to 1.54.1 a worker whose wait times out leaves its
//! arrival counted (tokio-rs/tokio#8370): the worker that comes late (from a long poll, or
//! woken late on a busy machine) then leads a dump alone and waits at the closing barrier for
//! a partner that never comes, holding its core, and the runtime stops running some of its
//! tasks (a server stops answering) until another dump brings the others back to the
//! barrier. So gmr does not ask once and leave: it asks again until one dump comes back
//! sooner than that wait, which only happens when every worker met at the barrier and left
//! both barriers clean. While one request is pending longer than [`ASK_AGAIN_AFTER`], gmr
//! asks a second time (at most two requests at once): a second request keeps waking every
//! worker until the first one ends, which is what brings a worker that gave up on the
//! barrier back to it. gmr stops after [`MEET_LIMIT`] and says so in its log; reports made
//! meanwhile say that gmr is still asking.
// Without the feature or `--cfg tokio_unstable`, only the types and the "unavailable" path
// are used.
#![cfg_attr(not(all(feature = "tokio-taskdump", tokio_unstable)), allow(dead_code))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32};
use std::time::Duration;

use crate::capture::Symbol;

/// How long a task dump may take before the report goes on without it.
pub const TASK_DUMP_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the workers of a multi-thread runtime wait for each other at the barrier before a
/// task dump (tokio 1.54, `trace_core`); a dump that took longer may have left the barrier
/// broken (see the module documentation).
pub(crate) const TOKIO_BARRIER_WAIT: Duration = Duration::from_millis(250);

/// How long a dump request of a multi-thread runtime may be pending before gmr asks a second
/// time, to wake the workers that gave up on tokio's barrier.
pub(crate) const ASK_AGAIN_AFTER: Duration = Duration::from_millis(300);

/// How long gmr keeps asking a multi-thread runtime for dumps until its workers meet in time.
pub(crate) const MEET_LIMIT: Duration = Duration::from_secs(10);

/// The name of the threads that ask a multi-thread runtime for its dump: the one that leads a
/// round of asking, and one per request.
const ASKING_THREAD: &str = "gmr-dump-ask";

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

/// What gmr remembers about the task dumps of one runtime, from one report to the next.
#[derive(Debug, Default)]
pub(crate) struct DumpState {
    /// Set while gmr is still asking tokio for a dump of this runtime.
    in_progress: AtomicBool,
    /// How many requests the last finished round of asking made (1: the workers met at once).
    last_asks: AtomicU32,
}

impl DumpState {
    /// Records that a round of asking ended after `asks` requests.
    fn finished(&self, asks: u32) {
        use std::sync::atomic::Ordering;
        self.last_asks.store(asks, Ordering::Release);
        self.in_progress.store(false, Ordering::Release);
    }
}

/// One runtime to dump.
pub(crate) struct DumpTarget<'a> {
    pub(crate) name: &'a str,
    pub(crate) handle: &'a tokio::runtime::Handle,
    /// What earlier reports left about this runtime's dumps.
    pub(crate) state: &'a Arc<DumpState>,
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
                None if t.state.in_progress.swap(true, Ordering::AcqRel) => {
                    Err(DumpOutcome::Missing {
                        status: "skipped",
                        reason: format!(
                            "gmr is still asking tokio for an earlier task dump of this runtime: \
                             its workers did not all meet at tokio's dump barrier (a worker was \
                             blocked, or woke more than {} ms late), and gmr asks again until \
                             they do, which releases a worker tokio can leave waiting there \
                             (tokio-rs/tokio#8370)",
                            TOKIO_BARRIER_WAIT.as_millis()
                        ),
                    })
                }
                None => start(t.name, t.handle, Arc::clone(t.state)),
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

/// Asks `handle` for a dump; the first dump arrives on the receiver. A multi-thread runtime
/// is asked from a gmr thread, again until its workers meet in time ([`ask::until_met`]).
#[cfg(all(feature = "tokio-taskdump", tokio_unstable))]
fn start(
    name: &str,
    handle: &tokio::runtime::Handle,
    state: Arc<DumpState>,
) -> Result<std::sync::mpsc::Receiver<tokio::runtime::Dump>, DumpOutcome> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    // Polls seen until the dump finishes are tokio's tracing polls, not the application's.
    let running = crate::requests::dump_running();
    let dumping = handle.clone();
    if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread {
        // One thread, no barrier: its dump is taken on the runtime's own thread.
        handle.spawn(async move {
            let dump = dumping.dump().await;
            drop(running);
            state.finished(1);
            // The report may have gone on without it.
            let _ = tx.send(dump);
        });
        return Ok(rx);
    }
    let asking = Arc::clone(&state);
    let name = name.to_owned();
    let spawned = crate::threads::spawn(ASKING_THREAD, move || {
        let met = ask::until_met(&dumping, tx);
        drop(running);
        match met {
            ask::Met::InTime { asks } if asks > 1 => tracing::info!(
                runtime = %name,
                asks,
                "tokio's workers met for a task dump only after gmr asked {asks} times"
            ),
            ask::Met::InTime { .. } => {}
            ask::Met::NotInTime { asks } => tracing::warn!(
                runtime = %name,
                asks,
                "tokio's workers did not meet for a task dump within {} s ({asks} requests): a \
                 worker may be left waiting inside tokio (tokio-rs/tokio#8370) until the next \
                 report asks again",
                MEET_LIMIT.as_secs()
            ),
        }
        asking.finished(met.asks());
    });
    match spawned {
        Ok(_) => Ok(rx),
        Err(e) => {
            state.finished(0);
            Err(DumpOutcome::Missing {
                status: "unavailable",
                reason: format!("cannot start the thread that asks tokio for the task dump: {e}"),
            })
        }
    }
}

/// Asking a multi-thread runtime for dumps until its workers meet at tokio's barrier in time.
#[cfg(all(feature = "tokio-taskdump", tokio_unstable))]
mod ask {
    use std::sync::mpsc::{self, RecvTimeoutError};
    use std::time::{Duration, Instant};

    use super::{ASK_AGAIN_AFTER, ASKING_THREAD, MEET_LIMIT, TOKIO_BARRIER_WAIT};

    /// How often the asking thread looks at its requests.
    const LOOK_EVERY: Duration = Duration::from_millis(20);

    /// How a round of asking ended.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Met {
        /// A dump came back sooner than tokio's barrier wait, after `asks` requests.
        InTime {
            /// Requests made.
            asks: u32,
        },
        /// [`MEET_LIMIT`] passed first (or no thread could be started for a request).
        NotInTime {
            /// Requests made.
            asks: u32,
        },
    }

    impl Met {
        /// Requests made.
        pub(super) fn asks(self) -> u32 {
            match self {
                Self::InTime { asks } | Self::NotInTime { asks } => asks,
            }
        }
    }

    /// What one request brought back.
    struct Answer {
        /// Which request (1 is the first).
        number: u32,
        /// From the request to the answer.
        took: Duration,
        /// The dump, unless the request's thread could not run one.
        dump: Option<tokio::runtime::Dump>,
    }

    /// The requests of one round.
    struct Requests {
        handle: tokio::runtime::Handle,
        answers: mpsc::Sender<Answer>,
        /// Requests made.
        asked: u32,
        /// Requests made and not answered.
        pending: u32,
        /// When the newest request was made.
        newest_at: Instant,
    }

    impl Requests {
        /// Makes one more request, each on its own thread: tokio's request runs to its end
        /// whoever waits for it. False when no thread could be started.
        fn ask(&mut self) -> bool {
            let number = self.asked + 1;
            let handle = self.handle.clone();
            let answers = self.answers.clone();
            let spawned = crate::threads::spawn(ASKING_THREAD, move || {
                let asked = Instant::now();
                let dump = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .ok()
                    .map(|local| local.block_on(handle.dump()));
                let _ = answers.send(Answer {
                    number,
                    took: asked.elapsed(),
                    dump,
                });
            });
            if spawned.is_err() {
                return false;
            }
            self.asked = number;
            self.pending += 1;
            self.newest_at = Instant::now();
            true
        }
    }

    /// Asks `handle` for dumps until one comes back sooner than [`TOKIO_BARRIER_WAIT`] (every
    /// worker met at the barrier, both barriers left clean), or [`MEET_LIMIT`] passes. The
    /// first dump goes to `first`; later ones only mend the barrier.
    pub(super) fn until_met(
        handle: &tokio::runtime::Handle,
        first: mpsc::SyncSender<tokio::runtime::Dump>,
    ) -> Met {
        let started = Instant::now();
        let (answers, answered) = mpsc::channel();
        let mut first = Some(first);
        let mut requests = Requests {
            handle: handle.clone(),
            answers,
            asked: 0,
            pending: 0,
            newest_at: started,
        };
        if !requests.ask() {
            return Met::NotInTime { asks: 0 };
        }
        loop {
            match answered.recv_timeout(LOOK_EVERY) {
                Ok(answer) => {
                    requests.pending -= 1;
                    if answer.number == 1
                        && let (Some(tx), Some(dump)) = (first.take(), answer.dump)
                    {
                        // The report may have gone on without it.
                        let _ = tx.send(dump);
                    }
                    if answer.number == requests.asked {
                        if answer.took < TOKIO_BARRIER_WAIT {
                            return Met::InTime {
                                asks: requests.asked,
                            };
                        }
                        // Late: the barrier may be left broken; a round that meets mends it.
                        if !requests.ask() {
                            return Met::NotInTime {
                                asks: requests.asked,
                            };
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
            }
            if started.elapsed() > MEET_LIMIT {
                return Met::NotInTime {
                    asks: requests.asked,
                };
            }
            if requests.pending < 2
                && requests.newest_at.elapsed() > ASK_AGAIN_AFTER
                && !requests.ask()
            {
                return Met::NotInTime {
                    asks: requests.asked,
                };
            }
        }
    }
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
        let state = Arc::new(DumpState::default());
        let target = |skip: Option<String>| DumpTarget {
            name: "unit",
            handle: runtime.handle(),
            state: &state,
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
            matches!(&again[0].outcome, DumpOutcome::Missing { status: "skipped", reason } if reason.contains("still asking")),
            "{again:?}"
        );
        let skipped = dump_all(&[target(Some("a worker is stuck".into()))]);
        assert!(
            matches!(&skipped[0].outcome, DumpOutcome::Missing { status: "skipped", reason } if reason == "a worker is stuck"),
            "{skipped:?}"
        );
        release_tx.send(()).expect("release");
    }

    #[cfg(all(feature = "tokio-taskdump", tokio_unstable))]
    #[test]
    fn a_worker_late_for_the_barrier_is_not_left_waiting_inside_tokio() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let ticks = Arc::new(AtomicU64::new(0));
        for _ in 0..2 {
            let ticks = Arc::clone(&ticks);
            runtime.spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // One worker inside a poll longer than tokio's barrier wait: the other one gives up
        // there, and the late one then leads a dump alone and waits at the closing barrier.
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let _ = entered_tx.send(());
            std::thread::sleep(TOKIO_BARRIER_WAIT * 2);
        });
        entered_rx.recv().expect("worker busy");
        let state = Arc::new(DumpState::default());
        let target = DumpTarget {
            name: "unit",
            handle: runtime.handle(),
            state: &state,
            skip: None,
        };
        let _first = dump_all(std::slice::from_ref(&target));
        let deadline = std::time::Instant::now() + MEET_LIMIT * 2;
        while state.in_progress.load(Ordering::Acquire) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let still_asking = state.in_progress.load(Ordering::Acquire);
        let asks = state.last_asks.load(Ordering::Acquire);
        // Both workers run tasks again: the tickers move.
        let before = ticks.load(Ordering::Relaxed);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while ticks.load(Ordering::Relaxed) < before + 20 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let moved = ticks.load(Ordering::Relaxed) - before;
        // And the next dump is an ordinary one.
        let next = dump_all(std::slice::from_ref(&target));
        // A worker left inside tokio's barrier would make dropping the runtime wait forever.
        runtime.shutdown_background();
        assert!(!still_asking, "gmr never stopped asking");
        assert!(
            asks > 1,
            "the workers met at once ({asks} request): nothing was late"
        );
        assert!(
            moved >= 20,
            "the tickers moved {moved} times in 5 s after {asks} requests"
        );
        assert!(
            matches!(&next[0].outcome, DumpOutcome::Tasks(tasks) if tasks.len() >= 2),
            "{next:?}"
        );
    }
}
