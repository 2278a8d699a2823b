//! The requests in flight of every replica (`green_threads.requests[].requests[]`), the oldest
//! first, each with its replica.

use serde::Serialize;
use serde_json::Value;

use super::replicas::Replica;

/// A request in flight on one replica.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Request {
    /// `host:pid` of its replica.
    pub(crate) replica: String,
    /// The replica's service name.
    pub(crate) service: String,
    /// The adapter that listed it.
    pub(crate) source: Option<String>,
    /// Its id in its process.
    pub(crate) id: Option<u64>,
    /// HTTP method.
    pub(crate) method: String,
    /// Path (no query string).
    pub(crate) path: String,
    /// The route it matched.
    pub(crate) route: Option<String>,
    /// Age when its replica's report was made, in milliseconds.
    pub(crate) age_ms: u64,
    /// `running`, `waiting`, `STUCK … in one poll`.
    pub(crate) state: String,
    /// The thread polling it, if any.
    pub(crate) thread: Option<String>,
    /// What that thread's stack is (its headline frame and `path:line`), from the replica's
    /// `Threads` section.
    pub(crate) thread_stack: Option<String>,
    /// Where it waits, from its spans.
    pub(crate) waiting_in: Option<String>,
    /// Its tokio task.
    pub(crate) task_id: Option<u64>,
    /// What its task's stack is (headline, `path:line`, where it waits), from the replica's
    /// task dump (`task_stack` of the request).
    pub(crate) task_stack: Option<String>,
    /// Time since its last poll started, in milliseconds; `None` before its first poll.
    pub(crate) last_poll_ms: Option<u64>,
}

impl Request {
    /// Whether it is stuck in one poll (a blocked thread).
    pub(crate) fn stuck(&self) -> bool {
        self.state.starts_with("STUCK")
    }
}

/// Every request in flight on `replicas`, the oldest first.
///
/// Read from `green_threads.requests[]` (each adapter's block: `source`, `requests`); a
/// report without any there is read from `green_threads.sources[]` whose `data` has
/// `requests` (the shape of reports whose adapters listed requests as a plain source).
pub(crate) fn in_flight(replicas: &[Replica]) -> Vec<Request> {
    let mut requests = Vec::new();
    for replica in replicas {
        let doc = &replica.report.doc;
        let blocks = doc
            .pointer("/green_threads/requests")
            .and_then(Value::as_array);
        let before = requests.len();
        for block in blocks.into_iter().flatten() {
            let source = block.get("source").and_then(Value::as_str);
            let listed = block.get("requests").and_then(Value::as_array);
            for r in listed.into_iter().flatten() {
                requests.push(request(replica, source, r));
            }
        }
        if requests.len() > before {
            continue;
        }
        let sources = doc
            .pointer("/green_threads/sources")
            .and_then(Value::as_array);
        for source in sources.into_iter().flatten() {
            let Some(listed) = source.pointer("/data/requests").and_then(Value::as_array) else {
                continue;
            };
            // `in-flight requests (axum)` is the source `axum`.
            let title = source.get("title").and_then(Value::as_str).unwrap_or("");
            let name = title
                .rsplit_once('(')
                .and_then(|(_, rest)| rest.strip_suffix(')'))
                .unwrap_or(title);
            for r in listed {
                requests.push(request(replica, Some(name), r));
            }
        }
    }
    requests.sort_by(|a, b| {
        b.age_ms
            .cmp(&a.age_ms)
            .then_with(|| a.replica.cmp(&b.replica))
            .then(a.id.cmp(&b.id))
    });
    requests
}

/// One request of `replica`, listed by `source`.
fn request(replica: &Replica, source: Option<&str>, r: &Value) -> Request {
    let text = |key: &str| r.get(key).and_then(Value::as_str).map(str::to_owned);
    let tid = r.get("polled_by_tid").and_then(Value::as_i64);
    let state = text("state")
        .or_else(|| text("stuck").map(|_| "STUCK in one poll".to_owned()))
        .unwrap_or_default();
    Request {
        replica: replica.label.clone(),
        service: replica.report.header.service.clone(),
        source: source.map(str::to_owned),
        id: r.get("id").and_then(Value::as_u64),
        method: text("method").unwrap_or_default(),
        path: text("path").unwrap_or_default(),
        route: text("route"),
        age_ms: r.get("age_ms").and_then(Value::as_u64).unwrap_or(0),
        state,
        thread: text("thread").or_else(|| tid.map(|tid| format!("#{tid}"))),
        thread_stack: tid.and_then(|tid| thread_stack(&replica.report.doc, tid)),
        waiting_in: text("waiting_in"),
        task_id: r.get("task_id").and_then(Value::as_u64),
        task_stack: r
            .get("task_stack")
            .and_then(|at| task_stack(&replica.report.doc, at)),
        last_poll_ms: r.get("last_poll_ms").and_then(Value::as_u64),
    }
}

/// The headline of the stack of thread `tid` in `doc`: `demo_block_handler at src/lib.rs:247`.
fn thread_stack(doc: &Value, tid: i64) -> Option<String> {
    let thread = doc
        .pointer("/threads/threads")?
        .as_array()?
        .iter()
        .find(|t| t.get("tid").and_then(Value::as_i64) == Some(tid))?;
    let index = thread.get("stack")?.as_u64()?;
    let stacks = doc.pointer("/threads/stacks")?.as_array()?;
    let stack = stacks
        .iter()
        .find(|s| s.get("id").and_then(Value::as_u64) == Some(index))
        .or_else(|| stacks.get(usize::try_from(index).ok()?))?;
    let frames = stack.get("frames")?.as_array()?;
    Some(super::groups::headline_of(&[frames.as_slice()]).line())
}

/// The headline of the stack of a request's task, from `task_stack` (`dump` and `group` in
/// `green_threads.tasks`): `demo_slow_handler at src/lib.rs:238, in Sleep::poll_elapsed`.
fn task_stack(doc: &Value, at: &Value) -> Option<String> {
    let dump = usize::try_from(at.get("dump")?.as_u64()?).ok()?;
    let group = usize::try_from(at.get("group")?.as_u64()?).ok()?;
    let group = doc
        .pointer("/green_threads/tasks")?
        .get(dump)?
        .get("groups")?
        .get(group)?;
    let traces: Vec<&[Value]> = group
        .get("traces")?
        .as_array()?
        .iter()
        .filter_map(|t| t.as_array().map(Vec::as_slice))
        .collect();
    let headline = super::groups::headline_of(&traces);
    Some(if headline.innermost == headline.name {
        headline.line()
    } else {
        format!("{}, in `{}`", headline.line(), headline.innermost)
    })
}
