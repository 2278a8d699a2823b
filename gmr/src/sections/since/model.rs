//! The "since the last report" parts as reports carry them: `threads.since` and
//! `green_threads.since` in JSON, the first lines of `Threads` and `Green Threads` in text.

use serde::{Deserialize, Serialize};

/// Names listed of the threads that appeared or vanished, and of busy threads.
pub(crate) const LISTED: usize = 20;

/// What did not move among the threads since the last report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ThreadsSince {
    /// When the previous report was taken (RFC 3339).
    pub(crate) previous_report_at: String,
    /// The time between the two reports.
    pub(crate) interval_ms: u64,
    /// Threads with the same stack that did not run at all, not idle: blocked. The longest
    /// first.
    pub(crate) stuck: Vec<StuckThread>,
    /// Threads that used CPU between the reports, the most first (at most [`LISTED`]).
    pub(crate) busy: Vec<BusyThread>,
    /// Busy threads beyond those listed.
    #[serde(default)]
    pub(crate) busy_not_listed: usize,
    /// Threads in an idle wait (a runtime's or a pool's) in both reports.
    pub(crate) idle: usize,
    /// Threads whose stack changed, or that ran without using measurable CPU.
    pub(crate) moved: usize,
    /// Threads of this report that the previous one did not have.
    pub(crate) appeared: ThreadChurn,
    /// Threads of the previous report that are gone.
    pub(crate) vanished: ThreadChurn,
}

/// A thread that did not move.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StuckThread {
    /// Kernel thread id, as in `threads`.
    pub(crate) tid: i32,
    /// Its name.
    pub(crate) name: String,
    /// How long it has not moved at least: from the first report that saw it so.
    pub(crate) stuck_ms: u64,
    /// That first report's time (RFC 3339).
    pub(crate) since: String,
}

/// A thread that used CPU between the reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BusyThread {
    /// Kernel thread id.
    pub(crate) tid: i32,
    /// Its name.
    pub(crate) name: String,
    /// CPU it used between the two reports.
    pub(crate) cpu_ms: u64,
    /// Its share of the interval, in percent (100 for a thread spinning the whole time).
    pub(crate) cpu_percent: u32,
}

/// Threads that came or went.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ThreadChurn {
    /// How many.
    pub(crate) count: usize,
    /// `#<tid> "<name>"` of the first [`LISTED`].
    pub(crate) threads: Vec<String>,
}

/// What did not move among the green threads since the last report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct GreenSince {
    /// When the previous report was taken (RFC 3339).
    pub(crate) previous_report_at: String,
    /// The time between the two reports.
    pub(crate) interval_ms: u64,
    /// Requests in flight in both reports, the longest first.
    pub(crate) requests: Vec<LongRequest>,
    /// Requests of the previous report that finished.
    pub(crate) requests_finished: usize,
    /// Requests that started since.
    pub(crate) requests_new: usize,
    /// Per runtime with a task dump in both reports: tasks in both, new, gone.
    pub(crate) tasks: Vec<TaskChurn>,
}

/// A request in flight in both reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LongRequest {
    /// `gmr::RequestId`, as in `requests`.
    pub(crate) id: u64,
    /// `GET /block`.
    pub(crate) request: String,
    /// In flight at least this long: from the first report that saw it.
    pub(crate) in_flight_ms: u64,
    /// Its age now.
    pub(crate) age_ms: u64,
}

/// The tasks of one runtime, compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TaskChurn {
    /// The runtime's registered name.
    pub(crate) runtime: String,
    /// Tasks in both dumps.
    pub(crate) common: usize,
    /// Tasks only in this one.
    pub(crate) appeared: usize,
    /// Tasks only in the previous one.
    pub(crate) vanished: usize,
}
