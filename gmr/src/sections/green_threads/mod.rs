//! The `Green Threads` section: Rust's green threads are async tasks. It shows, in this order:
//!
//! * the requests in flight of every adapter, oldest first, each joined to what else gmr
//!   knows about it: the thread polling it now (its stack is in `Threads`), when it was last
//!   polled, its open tracing spans and where it waits, and its tokio task's stack;
//! * the tasks of each tokio runtime grouped by identical stacks (task dumps);
//! * long-open spans outside requests (background jobs);
//! * the runtimes' metrics, and the application's own sources.
//!
//! Each part is gathered on its own: a blocked worker that stops the task dump leaves the
//! requests, spans and metrics in place, with one line saying why there are no task stacks.

#[cfg(feature = "html")]
mod html;
mod model;
mod render;
#[cfg(feature = "tracing")]
mod spans;
#[cfg(feature = "tokio")]
mod tasks;

#[cfg(any(feature = "tokio", feature = "tracing"))]
use std::collections::HashMap;
use std::time::Duration;

pub(crate) use self::model::GreenThreadsModel;
#[cfg(feature = "tokio")]
use self::model::TaskRef;
use self::model::{RequestBlock, RequestEntry, SourceEntry};
use crate::registry::green_threads_sources;
use crate::report::isolate;
use crate::report::{SectionBody, TextWriter};
use crate::requests::InFlightRequest;
use crate::secrets::Masker;

/// A poll that lasts this long means a blocked thread: the request is flagged STUCK.
pub(crate) const STUCK_POLL: Duration = Duration::from_secs(1);

/// The line shown when nothing is registered.
const NOTHING_REGISTERED: &str = "no async runtime or request tracking is registered";

/// What the `Green Threads` section shows.
#[derive(Debug)]
pub(crate) struct GreenThreadsSection {
    model: GreenThreadsModel,
}

/// Generates the `Green Threads` section.
pub(crate) fn generate(ctx: &super::ReportContext<'_>) -> GreenThreadsSection {
    let style = ctx.stack_style();
    let masker = Masker::new(&ctx.settings.secrets.extra_keys);
    let mut model = GreenThreadsModel {
        requests: Vec::new(),
        tasks: Vec::new(),
        tasks_note: None,
        spans: None,
        runtimes: None,
        sources: Vec::new(),
        folded: ctx.settings.threads.fold.enabled,
        note: None,
        since: None,
    };

    // Requests and spans first, as they are: a task dump polls every task once more.
    #[cfg(feature = "tracing")]
    let mut request_spans = open_spans(&mut model, ctx, &masker);

    for source in crate::requests::sources() {
        let name = source.name();
        let block = match isolate::catch(|| source.requests()) {
            Ok(requests) => {
                let mut entries: Vec<RequestEntry> = requests
                    .into_iter()
                    .map(|r| request_entry(r, &masker))
                    .collect();
                #[cfg(feature = "tracing")]
                for entry in &mut entries {
                    if let Some(spans) = request_spans.remove(&entry.id) {
                        entry.waiting_in =
                            spans::waiting_in(&spans.chain, entry.polled_by_tid.is_some());
                        entry.spans = spans.chain;
                        entry.other_spans = spans.others;
                    }
                }
                entries.sort_by_key(|e| std::cmp::Reverse(e.age_ms));
                RequestBlock {
                    source: name,
                    in_flight: entries.len(),
                    stuck_in_poll: entries
                        .iter()
                        .filter(|e| e.in_poll_ms >= Some(STUCK_POLL.as_millis() as u64))
                        .count(),
                    requests: entries,
                    error: None,
                }
            }
            Err(panic) => RequestBlock {
                source: name,
                in_flight: 0,
                stuck_in_poll: 0,
                requests: Vec::new(),
                error: Some(format!("source panicked: {panic}")),
            },
        };
        model.requests.push(block);
    }

    // Then the runtimes: their sampling window and task dumps take the longest.
    #[cfg(feature = "tokio")]
    {
        let task_index = runtimes(&mut model, &style);
        for entry in model
            .requests
            .iter_mut()
            .flat_map(|b| b.requests.iter_mut())
        {
            entry.task_stack = entry.task_id.and_then(|t| task_index.get(&t).copied());
        }
    }
    #[cfg(not(feature = "tokio"))]
    let _ = &style;

    model.sources = green_threads_sources()
        .into_iter()
        .map(|source| {
            let title = source.title();
            let (data, error) = match isolate::catch(|| source.snapshot()) {
                Ok(Ok(content)) => (Some(content.to_json()), None),
                Ok(Err(error)) => (None, Some(error.to_string())),
                Err(panic) => (None, Some(format!("source panicked: {panic}"))),
            };
            SourceEntry { title, data, error }
        })
        .collect();

    if model.requests.is_empty()
        && model.runtimes.is_none()
        && model.spans.is_none()
        && model.sources.is_empty()
    {
        model.note = Some(NOTHING_REGISTERED.to_owned());
    } else if let Some(history) = ctx.history {
        let (at_ms, at) = super::since::now();
        model.since = history.green(&model, at_ms, &at);
    }
    GreenThreadsSection { model }
}

/// The runtimes' metrics and task dumps into `model`; where each task's stack is.
#[cfg(feature = "tokio")]
fn runtimes(
    model: &mut GreenThreadsModel,
    style: &crate::report::stack::StackStyle,
) -> HashMap<u64, TaskRef> {
    let blocked_polls: Vec<String> = model
        .requests
        .iter()
        .flat_map(|b| b.requests.iter())
        .filter(|r| {
            r.in_poll_ms
                .is_some_and(|ms| ms >= STUCK_POLL.as_millis() as u64)
        })
        .map(|r| format!("request {} ({} {})", r.id, r.method, r.path))
        .collect();
    let Some(snapshot) = isolate::catch(|| crate::runtimes::snapshot(&blocked_polls))
        .ok()
        .flatten()
    else {
        return HashMap::new();
    };
    model.runtimes = Some(snapshot.metrics.to_json());
    if snapshot.dumps.is_empty() {
        model.tasks_note = Some(
            "task stacks are off: build with gmr's cargo feature `tokio-taskdump` and \
             RUSTFLAGS=\"--cfg tokio_unstable\""
                .to_owned(),
        );
        return HashMap::new();
    }
    let (dumps, index) = tasks::entries(snapshot.dumps, style);
    model.tasks = dumps;
    index
}

/// The open spans: the spans block into `model`, and the spans of each request by its id.
#[cfg(feature = "tracing")]
fn open_spans(
    model: &mut GreenThreadsModel,
    ctx: &super::ReportContext<'_>,
    masker: &Masker,
) -> HashMap<u64, spans::RequestSpans> {
    let Some(views) = crate::tracing::open_spans() else {
        return HashMap::new();
    };
    let now = crate::capture::sys::coarse_monotonic();
    let (per_request, block) = spans::join(views, now, ctx.settings.green_threads.span_age, masker);
    model.spans = Some(block);
    per_request
}

/// One request as the report shows it.
fn request_entry(r: InFlightRequest, masker: &Masker) -> RequestEntry {
    // Sources keep times at different precisions (gmr-tower: the request's start in
    // nanoseconds, its polls in milliseconds); a request is never last polled before it began.
    let last_poll = r.last_poll.map(|d| d.min(r.age));
    let in_poll = r.polled_by.and(last_poll);
    let stuck = in_poll.filter(|d| *d >= STUCK_POLL);
    let thread = r
        .polled_by
        .map(|tid| match crate::capture::names::thread_name(tid) {
            Some(name) => format!("#{tid} \"{name}\""),
            None => format!("#{tid} (exited)"),
        });
    let state = match (stuck, r.polled_by) {
        (Some(d), _) => format!("STUCK {:.1} s in one poll", d.as_secs_f64()),
        (None, Some(_)) => "running".to_owned(),
        (None, None) => "waiting".to_owned(),
    };
    RequestEntry {
        id: r.id.get(),
        method: r.method,
        path: masker.mask_text(&r.path),
        route: r.route,
        age_ms: r.age.as_millis() as u64,
        state,
        thread,
        polled_by_tid: r.polled_by,
        in_poll_ms: in_poll.map(|d| d.as_millis() as u64),
        last_poll_ms: last_poll.map(|d| d.as_millis() as u64),
        task_id: r.task,
        task_stack: None,
        spans: Vec::new(),
        other_spans: 0,
        waiting_in: None,
    }
}

impl GreenThreadsSection {
    /// The section of a model read back from a report's JSON (`gmr view`).
    pub(crate) fn from_model(model: GreenThreadsModel) -> Self {
        GreenThreadsSection { model }
    }
}

impl SectionBody for GreenThreadsSection {
    fn write_text(&self, out: &mut TextWriter) {
        render::write_text(&self.model, out);
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.model).unwrap_or_else(
            |e| serde_json::json!({ "error": format!("cannot serialize the section: {e}") }),
        )
    }

    #[cfg(feature = "html")]
    fn write_html(&self, out: &mut crate::report::html::Html) {
        html::write(out, &self.to_json(), self.model.since.as_ref());
    }

    #[cfg(feature = "html")]
    fn flame_stacks(&self) -> Vec<crate::report::html::FlameStack> {
        html::flame_stacks(&self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_request_is_never_last_polled_before_it_began() {
        let id = crate::requests::RequestId::next();
        // Started 1775.6 ms ago, last polled "1776 ms ago" by a millisecond clock.
        let request = InFlightRequest::new(id, "GET", "/x", Duration::from_micros(1_775_600))
            .polled(None, Some(Duration::from_millis(1776)));
        let entry = request_entry(request, &Masker::new(&[]));
        assert_eq!((entry.age_ms, entry.last_poll_ms), (1775, Some(1775)));

        let polling = InFlightRequest::new(id, "GET", "/x", Duration::from_millis(10))
            .polled(Some(42), Some(Duration::from_millis(11)));
        let entry = request_entry(polling, &Masker::new(&[]));
        assert_eq!(entry.in_poll_ms, Some(10));
    }
}
