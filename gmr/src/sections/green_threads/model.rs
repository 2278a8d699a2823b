//! The data of the `Green Threads` section: requests in flight joined to their threads, tasks
//! and spans; the tasks of each runtime grouped by stack; long-open spans outside requests; the
//! runtimes' metrics; the application's own sources. The JSON view is this model serialized;
//! the text view renders it (see `render`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::report::stack::FrameEntry;

/// The `Green Threads` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GreenThreadsModel {
    /// Requests in flight, one block per adapter.
    #[serde(default)]
    pub(crate) requests: Vec<RequestBlock>,
    /// The task stacks of each registered tokio runtime (cargo feature `tokio-taskdump`).
    #[serde(default)]
    pub(crate) tasks: Vec<TaskDumpEntry>,
    /// Why there are no task stacks at all (the feature is off), when runtimes are registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tasks_note: Option<String>,
    /// Open tracing spans (cargo feature `tracing` and `gmr::tracing::layer()`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) spans: Option<SpansEntry>,
    /// The tokio runtimes and their metrics (cargo feature `tokio`), as a `Content` document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) runtimes: Option<Value>,
    /// The sources registered with `gmr::register_green_threads_source`.
    #[serde(default)]
    pub(crate) sources: Vec<SourceEntry>,
    /// Whether the text view folds runs of runtime, framework and std frames (`threads.fold`).
    #[serde(default = "folded")]
    pub(crate) folded: bool,
    /// Set when nothing at all is registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    /// What did not move since the last report (every report after the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) since: Option<crate::sections::since::model::GreenSince>,
}

fn folded() -> bool {
    true
}

/// The requests in flight of one adapter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RequestBlock {
    /// The adapter's name for them (`axum`, the service's name).
    pub(crate) source: String,
    /// How many are in flight.
    pub(crate) in_flight: usize,
    /// How many have been inside one poll for [`super::STUCK_POLL`] or longer.
    pub(crate) stuck_in_poll: usize,
    /// The requests, oldest first.
    pub(crate) requests: Vec<RequestEntry>,
    /// The error of the adapter's listing, instead of requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// One request in flight.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RequestEntry {
    /// Its id, unique in the process.
    pub(crate) id: u64,
    /// HTTP method.
    pub(crate) method: String,
    /// Path without the query string (the route, when the adapter hides paths).
    pub(crate) path: String,
    /// The route pattern it matched.
    pub(crate) route: Option<String>,
    /// Time since it arrived, in milliseconds.
    pub(crate) age_ms: u64,
    /// What it is doing: `running`, `waiting`, `STUCK N s in one poll`.
    pub(crate) state: String,
    /// The thread polling it now (`#TID "name"`), if any.
    pub(crate) thread: Option<String>,
    /// Its TID.
    pub(crate) polled_by_tid: Option<i32>,
    /// How long the current poll has lasted, in milliseconds.
    pub(crate) in_poll_ms: Option<u64>,
    /// Time since its last poll started, in milliseconds; `None` before its first poll.
    pub(crate) last_poll_ms: Option<u64>,
    /// The tokio task polling it.
    pub(crate) task_id: Option<u64>,
    /// Where its task's stack is in `tasks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) task_stack: Option<TaskRef>,
    /// Its open spans from the outermost to the innermost (the deepest, entered last).
    #[serde(default)]
    pub(crate) spans: Vec<SpanEntry>,
    /// Its other open spans (on other branches, such as the other futures of a `join!`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) other_spans: usize,
    /// Where it waits: "waiting in `reserve_stock{sku=42}` for 12.3 s".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) waiting_in: Option<String>,
}

/// A place in `tasks`: a runtime's dump and one of its stack groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct TaskRef {
    /// Index into `tasks`.
    pub(crate) dump: usize,
    /// Index into that dump's `groups`.
    pub(crate) group: usize,
}

/// One open span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct SpanEntry {
    /// The span's name.
    pub(crate) name: String,
    /// Its target (module path).
    pub(crate) target: String,
    /// Its fields as `name=value`, masked, in recording order.
    pub(crate) fields: Vec<String>,
    /// Fields recorded but not kept (more than gmr keeps per span).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) fields_dropped: usize,
    /// Time since it opened, in milliseconds.
    pub(crate) open_ms: u64,
    /// Time since it was last entered, in milliseconds; `None` if never entered.
    pub(crate) last_entered_ms: Option<u64>,
    /// For spans outside requests: the request-less chain it is in, outermost first
    /// (`job > step`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<String>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl SpanEntry {
    /// `name{a=1 b=2}`, or `name` without fields.
    pub(crate) fn label(&self) -> String {
        if self.fields.is_empty() {
            self.name.clone()
        } else {
            format!("{}{{{}}}", self.name, self.fields.join(" "))
        }
    }
}

/// What gmr knows of open spans.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SpansEntry {
    /// Whether `gmr::tracing::layer()` records spans in this process.
    pub(crate) recorded: bool,
    /// How many spans are open.
    pub(crate) open: usize,
    /// `green_threads.span_age` in milliseconds: spans outside requests open at least this
    /// long are listed.
    pub(crate) span_age_ms: u64,
    /// Spans outside any request open at least `span_age_ms`, the oldest first (innermost
    /// of each chain).
    pub(crate) outside_requests: Vec<SpanEntry>,
    /// Spans outside requests beyond the listed ones.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) outside_requests_not_listed: usize,
    /// Why spans are not shown, when they are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
}

/// The task dump of one runtime.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskDumpEntry {
    /// The runtime's name.
    pub(crate) runtime: String,
    /// `ok`, `skipped`, `timed out`, `unavailable`.
    pub(crate) status: String,
    /// Why there are no task stacks (or why some are missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    /// How many tasks the dump holds.
    pub(crate) task_count: usize,
    /// Tasks grouped by identical stacks, the largest group first.
    pub(crate) groups: Vec<TaskGroup>,
}

/// Tasks with the same stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TaskGroup {
    /// The task ids, ascending.
    pub(crate) tasks: Vec<u64>,
    /// One stack per leaf future the task's last poll reached (several under `join!`),
    /// frames innermost (the await point) first.
    pub(crate) traces: Vec<Vec<FrameEntry>>,
}

/// A source registered by the application.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SourceEntry {
    /// Its title.
    pub(crate) title: String,
    /// Its data, a `Content` document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Value>,
    /// The error it returned instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}
