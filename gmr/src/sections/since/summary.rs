//! What one report leaves for the next: a compact summary of its threads (identity, stack hash,
//! CPU, idle or not, since when unchanged) and of its green threads (request ids and since when
//! in flight, task ids). Built from the section models, so a report read back from its JSON
//! (`gmr diff`) gives the same summary as the process did.
//!
//! Size: a thread costs 160 bytes, plus its name (at most [`NAME_BYTES`]) and a 20-byte time:
//! at most 228 bytes; a request 72 bytes plus its method and path (at most [`PATH_BYTES`]) and
//! a time; a task 8 bytes. At most [`MAX_THREADS`] threads, [`MAX_REQUESTS`] requests and
//! [`MAX_TASKS`] task ids are kept (the rest are counted only): at most about 2.5 MiB for the
//! largest process, 25 KiB for 100 threads and 50 requests.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use crate::report::stack::{FrameEntry, FrameKind};
use crate::sections::green_threads::GreenThreadsModel;
use crate::sections::threads::ThreadsSection;

/// Threads kept in a summary.
pub(crate) const MAX_THREADS: usize = 10_000;
/// Requests kept in a summary.
pub(crate) const MAX_REQUESTS: usize = 1_000;
/// Task ids kept in a summary.
pub(crate) const MAX_TASKS: usize = 20_000;
/// Bytes of a thread's name kept.
pub(crate) const NAME_BYTES: usize = 48;
/// Bytes of a request's path kept.
pub(crate) const PATH_BYTES: usize = 96;

/// The threads of one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ThreadsSummary {
    /// When the report was taken, in ms on a clock both reports share.
    pub(crate) at_ms: u64,
    /// When, for the reader (RFC 3339).
    pub(crate) at: String,
    /// The threads, by TID.
    pub(crate) threads: Vec<ThreadMark>,
    /// Threads not kept (past [`MAX_THREADS`]).
    pub(crate) not_kept: usize,
}

/// One thread of a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ThreadMark {
    /// Kernel thread id.
    pub(crate) tid: i32,
    /// Its start time in clock ticks: with the TID, tells a thread from a later one that
    /// reused the TID.
    pub(crate) start_ticks: Option<u64>,
    /// Its name, cut to [`NAME_BYTES`].
    pub(crate) name: String,
    /// A hash of its stack's addresses; `None` without a stack.
    pub(crate) stack_hash: Option<u64>,
    /// CPU time when the capture began, on the kernel's finest clock: `schedstat` ns, else
    /// `stat` ticks as ns.
    pub(crate) cpu_ns: Option<u64>,
    /// The same once the capture was over (its signal handler ran on the thread).
    pub(crate) cpu_ns_after: Option<u64>,
    /// How many times it was scheduled (`schedstat`) when the capture began: moves for a
    /// thread in a loop of short sleeps, whose CPU barely does.
    pub(crate) runs: Option<u64>,
    /// The same once the capture was over.
    pub(crate) runs_after: Option<u64>,
    /// Parked in a runtime's or a pool's idle wait.
    pub(crate) idle: bool,
    /// gmr's own helper or the thread making the report: never compared.
    pub(crate) own: bool,
    /// Since when (`at_ms` of the first report that saw it so) its stack and CPU did not move.
    pub(crate) unchanged_since_ms: u64,
    /// The same, for the reader.
    pub(crate) unchanged_since: String,
}

/// The green threads of one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GreenSummary {
    /// When the report was taken, in ms on a clock both reports share.
    pub(crate) at_ms: u64,
    /// When, for the reader (RFC 3339).
    pub(crate) at: String,
    /// Requests in flight, by id.
    pub(crate) requests: Vec<RequestMark>,
    /// Task ids per runtime with a task dump, ascending: `None` for a runtime without one.
    pub(crate) tasks: Vec<(String, Option<Vec<u64>>)>,
}

/// One request of a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestMark {
    /// `gmr::RequestId`.
    pub(crate) id: u64,
    /// `GET /block`, cut to [`PATH_BYTES`].
    pub(crate) what: String,
    /// Since when (`at_ms` of the first report that saw it) it is in flight.
    pub(crate) seen_since_ms: u64,
    /// The same, for the reader.
    pub(crate) seen_since: String,
    /// Its age at this report.
    pub(crate) age_ms: u64,
}

/// A summary of the threads of `section`, taken at `at_ms` (`at` for the reader). Every thread
/// is marked unchanged since this report; [`compare`](super::compare) carries older marks over.
pub(crate) fn threads(section: &ThreadsSection, at_ms: u64, at: &str) -> ThreadsSummary {
    let hashes: Vec<u64> = section
        .stacks
        .iter()
        .map(|g| stack_hash(&g.frames))
        .collect();
    let mut threads: Vec<ThreadMark> = section
        .threads
        .iter()
        .take(MAX_THREADS)
        .map(|t| {
            let group = t.stack.and_then(|i| section.stacks.get(i));
            ThreadMark {
                tid: t.tid,
                start_ticks: t.start_ticks,
                name: cut(&t.name, NAME_BYTES),
                stack_hash: t.stack.and_then(|i| hashes.get(i).copied()),
                cpu_ns: t.cpu_ns.or_else(|| {
                    let s = t.cpu_user_s? + t.cpu_system_s?;
                    Some((s * 1e9).round() as u64)
                }),
                cpu_ns_after: t.cpu_ns_after_capture,
                runs: t.sched_runs,
                runs_after: t.sched_runs_after_capture,
                idle: group.is_some_and(|g| idle_wait(&g.frames)),
                own: t.reporting_thread || t.name.starts_with("gmr-"),
                unchanged_since_ms: at_ms,
                unchanged_since: at.to_owned(),
            }
        })
        .collect();
    threads.sort_by_key(|t| t.tid);
    ThreadsSummary {
        at_ms,
        at: at.to_owned(),
        not_kept: section.threads.len().saturating_sub(threads.len()),
        threads,
    }
}

/// A summary of the green threads of `model`, taken at `at_ms`.
pub(crate) fn green(model: &GreenThreadsModel, at_ms: u64, at: &str) -> GreenSummary {
    let mut requests: Vec<RequestMark> = model
        .requests
        .iter()
        .flat_map(|b| b.requests.iter())
        .take(MAX_REQUESTS)
        .map(|r| RequestMark {
            id: r.id,
            what: cut(&format!("{} {}", r.method, r.path), PATH_BYTES),
            seen_since_ms: at_ms,
            seen_since: at.to_owned(),
            age_ms: r.age_ms,
        })
        .collect();
    requests.sort_by_key(|r| r.id);
    let mut budget = MAX_TASKS;
    let tasks = model
        .tasks
        .iter()
        .map(|dump| {
            let ids = (dump.status == "ok").then(|| {
                let mut ids: Vec<u64> = dump
                    .groups
                    .iter()
                    .flat_map(|g| g.tasks.iter().copied())
                    .take(budget)
                    .collect();
                budget -= ids.len();
                ids.sort_unstable();
                ids
            });
            (dump.runtime.clone(), ids)
        })
        .collect();
    GreenSummary {
        at_ms,
        at: at.to_owned(),
        requests,
        tasks,
    }
}

/// A hash of a stack's addresses, innermost first.
fn stack_hash(frames: &[FrameEntry]) -> u64 {
    let mut h = DefaultHasher::new();
    for f in frames {
        f.address.hash(&mut h);
        f.function.hash(&mut h);
    }
    h.finish()
}

/// A runtime's or pool's own idle waits: a worker parked until a task comes, the blocking
/// pool waiting for a job, `block_on` waiting for its future, the I/O driver waiting for events.
const RUNTIME_IDLE_WAITS: [&str; 9] = [
    "tokio::runtime::scheduler::multi_thread::worker::Context::park",
    "tokio::runtime::scheduler::multi_thread::park::",
    "tokio::runtime::scheduler::current_thread::Context::park",
    "tokio::runtime::park::",
    "tokio::runtime::blocking::pool::Inner::run",
    "tokio::runtime::driver::Driver::park",
    "mio::poll::Poll::poll",
    "mio::sys::unix::selector::Selector::select",
    "rayon_core::sleep::Sleep::sleep",
];

/// Waits for work of hand-written pools: idle only on a thread that is not running a task of a
/// runtime (there, they are a blocking call inside a request).
const PARKED_WAITS: [&str; 5] = [
    "std::thread::park",
    "std::thread::functions::park",
    "std::sync::mpmc::context::Context::wait_until",
    "crossbeam_channel::context::Context::wait_until",
    "std::sync::mpsc::Receiver",
];

/// Frames of a runtime running a task: a parked wait under them is not idle.
const RUNNING_A_TASK: [&str; 3] = [
    "tokio::runtime::task::",
    "tokio::runtime::scheduler::multi_thread::worker::Context::run_task",
    "actix_rt::",
];

/// Whether a stack is idle: from the innermost frame, a runtime's idle wait
/// ([`RUNTIME_IDLE_WAITS`]), or a parked wait ([`PARKED_WAITS`]) on a thread running no
/// runtime task, comes before any frame of the application (an application calling `park`
/// itself is waiting for something of its own).
pub(crate) fn idle_wait(frames: &[FrameEntry]) -> bool {
    let name = |f: &FrameEntry| {
        // `<T as Trait>::f` forms: the path after the `<` counts.
        f.function
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('<')
            .to_owned()
    };
    let runs_a_task = || {
        frames
            .iter()
            .any(|f| RUNNING_A_TASK.iter().any(|r| name(f).starts_with(r)))
    };
    for f in frames {
        if f.kind == FrameKind::Application {
            return false;
        }
        let n = name(f);
        if RUNTIME_IDLE_WAITS.iter().any(|w| n.starts_with(w)) {
            return true;
        }
        if PARKED_WAITS.iter().any(|w| n.starts_with(w)) {
            return !runs_a_task();
        }
    }
    false
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, kind: FrameKind) -> FrameEntry {
        FrameEntry {
            function: Some(function.to_owned()),
            name: None,
            file: None,
            path: None,
            line: None,
            column: None,
            module: None,
            offset: None,
            address: "0x1".to_owned(),
            inlined: false,
            kind,
            package: None,
        }
    }

    #[test]
    fn idle_means_an_idle_wait_before_any_application_frame() {
        let pool = [
            frame("syscall", FrameKind::System),
            frame("std::thread::functions::park", FrameKind::Std),
            frame("my_pool::worker_loop", FrameKind::Library),
        ];
        assert!(idle_wait(&pool));
        let worker = [
            frame("epoll_wait", FrameKind::System),
            frame(
                "mio::sys::unix::selector::Selector::select",
                FrameKind::Framework,
            ),
            frame(
                "tokio::runtime::io::driver::Driver::turn",
                FrameKind::Framework,
            ),
        ];
        assert!(idle_wait(&worker));
        // A parked wait inside a runtime's task is a blocking call, not idle.
        let in_task = [
            frame("syscall", FrameKind::System),
            frame("std::thread::functions::park", FrameKind::Std),
            frame(
                "tokio::runtime::task::harness::Harness<…>::poll",
                FrameKind::Framework,
            ),
        ];
        assert!(!idle_wait(&in_task));
        // A handler blocking in sleep, or parking inside the application: not idle.
        let blocked = [
            frame("std::thread::functions::sleep", FrameKind::Std),
            frame("svc::handler", FrameKind::Application),
            frame(
                "tokio::runtime::scheduler::multi_thread::worker::run",
                FrameKind::Framework,
            ),
        ];
        assert!(!idle_wait(&blocked));
        let own_park = [
            frame("syscall", FrameKind::System),
            frame("svc::wait_for_reply", FrameKind::Application),
            frame("std::thread::functions::park", FrameKind::Std),
        ];
        assert!(!idle_wait(&own_park));
    }

    #[test]
    fn a_summary_stays_as_small_as_documented() {
        // The module docs give these sizes, heap of the name and the times aside.
        assert!(std::mem::size_of::<ThreadMark>() <= 160);
        assert!(std::mem::size_of::<RequestMark>() <= 88);
    }

    #[test]
    fn names_are_cut_on_a_character_boundary() {
        assert_eq!(cut("abc", 8), "abc");
        assert_eq!(cut("ééé", 3), "é");
        assert_eq!(cut("abcdef", 4), "abcd");
    }
}
