//! The text view of the `Green Threads` section (`docs/report-format.md`).
//!
//! ```text
//! ------------------- requests in flight (axum-demo) --------------------
//! 2 in flight, the oldest for 62.1 s; 1 STUCK in one poll
//!   id  method  path         route        age     last poll   task  state
//!   17  GET     /await-lock  /await-lock  62.1 s  62.1 s ago  23    waiting
//!       waiting in `await_lock` for 62.1 s
//!       spans: request{method=GET} > await_lock
//!       task 23:
//!          0: <tokio::sync::batch_semaphore::Acquire as Future>::poll [axum-demo+0x3c1f20]
//!                    at tokio-1.54.1/src/sync/batch_semaphore.rs:646
//!          …
//!   18  GET     /block       /block       5.0 s   now         24    STUCK 5.0 s in one poll
//!       polled by thread #1234 "tokio-runtime-worker": its stack is in Threads
//! ```
//!
//! A request is one table row; what is known of it goes right under it: where it waits (its
//! innermost span), its span path, the thread blocking in its poll, its task's stack. Task
//! stacks are grouped by identical stacks, like threads; a stack already shown under a request
//! is not repeated.

use std::collections::HashSet;

use super::model::{
    GreenThreadsModel, RequestBlock, RequestEntry, SpansEntry, TaskDumpEntry, TaskGroup, TaskRef,
};
use crate::config::FoldConfig;
use crate::report::align_rows;
use crate::report::stack::{FrameEntry, FrameKind, write_frames};
use crate::report::{Content, SectionBody, TextWriter};

/// Groups up to this size list their task ids on one line; larger ones are cut.
const LISTED_IDS: usize = 12;

use crate::sections::since::render::seconds;

pub(super) fn write_text(m: &GreenThreadsModel, out: &mut TextWriter) {
    if let Some(note) = &m.note {
        out.line(note);
        return;
    }
    if let Some(since) = &m.since {
        crate::sections::since::render::write_green(since, out);
    }
    let fold = FoldConfig {
        enabled: m.folded,
        extra_crates: Vec::new(),
    };
    let mut shown: HashSet<TaskRef> = HashSet::new();
    for block in &m.requests {
        write_requests(m, block, &fold, &mut shown, out);
    }
    if let Some(note) = &m.tasks_note {
        out.line(note);
        out.blank();
    }
    for (i, dump) in m.tasks.iter().enumerate() {
        write_tasks(m, i, dump, &fold, &shown, out);
    }
    if let Some(spans) = &m.spans {
        write_spans(spans, out);
    }
    if let Some(runtimes) = &m.runtimes {
        out.thread_header(" tokio runtimes ");
        Content::from(runtimes.clone()).write_text(out);
        out.blank();
    }
    for source in &m.sources {
        out.thread_header(&format!(" {} ", source.title));
        match (&source.data, &source.error) {
            (Some(data), _) => Content::from(data.clone()).write_text(out),
            (None, Some(error)) => out.line(format_args!("(unavailable: {error})")),
            (None, None) => out.line("(no data)"),
        }
        out.blank();
    }
}

fn write_requests(
    m: &GreenThreadsModel,
    block: &RequestBlock,
    fold: &FoldConfig,
    shown: &mut HashSet<TaskRef>,
    out: &mut TextWriter,
) {
    out.thread_header(&format!(" in-flight requests ({}) ", block.source));
    if let Some(error) = &block.error {
        out.line(format_args!("(unavailable: {error})"));
        out.blank();
        return;
    }
    if block.requests.is_empty() {
        out.line("none");
        out.blank();
        return;
    }
    let oldest = block.requests.iter().map(|r| r.age_ms).max().unwrap_or(0);
    let mut summary = format!(
        "{} in flight, the oldest for {}",
        block.in_flight,
        seconds(oldest)
    );
    if block.stuck_in_poll > 0 {
        summary.push_str(&format!("; {} STUCK in one poll", block.stuck_in_poll));
    }
    out.line(summary);
    let with_tasks = block.requests.iter().any(|r| r.task_id.is_some());
    let mut rows = vec![header(with_tasks)];
    rows.extend(block.requests.iter().map(|r| row(r, with_tasks)));
    let mut lines = align_rows(&rows).into_iter();
    out.indented(|out| {
        if let Some(h) = lines.next() {
            out.line(h);
        }
        for (request, line) in block.requests.iter().zip(lines) {
            out.line(line);
            out.indented(|out| {
                out.indented(|out| write_request_details(m, request, fold, shown, out));
            });
        }
    });
    out.blank();
}

fn header(with_tasks: bool) -> Vec<String> {
    let mut h: Vec<String> = ["id", "method", "path", "route", "age", "last poll"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    if with_tasks {
        h.push("task".into());
    }
    h.push("state".into());
    h
}

fn row(r: &RequestEntry, with_tasks: bool) -> Vec<String> {
    let last_poll = match (r.polled_by_tid, r.last_poll_ms) {
        (Some(_), _) => "now".to_owned(),
        (None, Some(ms)) => format!("{} ago", seconds(ms)),
        (None, None) => "never".to_owned(),
    };
    let mut cells = vec![
        r.id.to_string(),
        r.method.clone(),
        r.path.clone(),
        r.route.clone().unwrap_or_else(|| "-".to_owned()),
        seconds(r.age_ms),
        last_poll,
    ];
    if with_tasks {
        cells.push(r.task_id.map_or_else(|| "-".to_owned(), |t| t.to_string()));
    }
    cells.push(r.state.clone());
    cells
}

fn write_request_details(
    m: &GreenThreadsModel,
    r: &RequestEntry,
    fold: &FoldConfig,
    shown: &mut HashSet<TaskRef>,
    out: &mut TextWriter,
) {
    if let Some(thread) = &r.thread {
        let what = if r.state.starts_with("STUCK") {
            "blocked in one poll on thread"
        } else {
            "polled now by thread"
        };
        out.line(format_args!("{what} {thread}: its stack is in Threads"));
    }
    if let Some(waiting) = &r.waiting_in {
        out.line(waiting);
    }
    if r.spans.len() > 1 || r.other_spans > 0 {
        let path: Vec<String> = r.spans.iter().map(|s| s.label()).collect();
        let mut line = format!("spans: {}", path.join(" > "));
        if r.other_spans > 0 {
            line.push_str(&format!(" (and {} more open)", r.other_spans));
        }
        out.line(line);
    }
    let Some(task) = r.task_id else {
        return;
    };
    match r.task_stack {
        Some(at) => {
            let Some(group) = m.tasks.get(at.dump).and_then(|d| d.groups.get(at.group)) else {
                return;
            };
            if shown.insert(at) {
                out.line(format_args!("task {task}:"));
                write_traces(group, fold, out);
            } else {
                out.line(format_args!(
                    "task {task}: the same stack as a request above"
                ));
            }
        }
        None if m.tasks.iter().any(|d| d.status == "ok") => {
            out.line(format_args!(
                "task {task}: not in the task dump (it runs on a runtime not registered with \
                 gmr, or on a LocalSet)"
            ));
        }
        None => {}
    }
}

/// Writes a task's stacks: those through application code in full; the others (the
/// connection's I/O, a shutdown signal: what every task of a server awaits besides its work)
/// one line each. With no application frame anywhere, the first in full.
fn write_traces(group: &TaskGroup, fold: &FoldConfig, out: &mut TextWriter) {
    if group.traces.is_empty() {
        out.line(
            "   (no stack: the task awaits no tokio resource, e.g. `std::future::pending()` \
             or another crate's channel, or has not been polled yet)",
        );
        return;
    }
    let own: Vec<bool> = group.traces.iter().map(|t| has_application(t)).collect();
    let any_own = own.iter().any(|o| *o);
    let full = |i: usize| own[i] || (!any_own && i == 0);
    for (i, trace) in group.traces.iter().enumerate() {
        if full(i) {
            write_frames(out, trace, fold);
        }
    }
    for (i, trace) in group.traces.iter().enumerate() {
        if !full(i) {
            out.line(format_args!("   also awaiting: {}", one_line(trace)));
        }
    }
}

fn has_application(trace: &[FrameEntry]) -> bool {
    trace.iter().any(|f| f.kind == FrameKind::Application)
}

/// A stack in one line: its innermost function and the crates it runs through (the text
/// view and the page say it alike).
pub(super) fn one_line(trace: &[FrameEntry]) -> String {
    let innermost = trace
        .first()
        .and_then(|f| f.name.as_deref().or(f.function.as_deref()))
        .unwrap_or("<unknown>");
    let mut crates: Vec<&str> = Vec::new();
    for f in trace {
        if let Some(p) = f.package.as_deref()
            && !crates.contains(&p)
        {
            crates.push(p);
        }
    }
    format!(
        "{innermost} ({} frames in {})",
        trace.len(),
        crates.join(", ")
    )
}

fn write_tasks(
    _m: &GreenThreadsModel,
    index: usize,
    dump: &TaskDumpEntry,
    fold: &FoldConfig,
    shown: &HashSet<TaskRef>,
    out: &mut TextWriter,
) {
    let title = if dump.status == "ok" {
        format!(
            " tasks of runtime \"{}\": {} tasks, {} stacks ",
            dump.runtime,
            dump.task_count,
            dump.groups.len()
        )
    } else {
        format!(" tasks of runtime \"{}\" ", dump.runtime)
    };
    out.thread_header(&title);
    if let Some(note) = &dump.note {
        let what = if dump.status == "ok" {
            "note"
        } else {
            "no task stacks"
        };
        out.line(format_args!("{what} ({}): {note}", dump.status));
    }
    for (g, group) in dump.groups.iter().enumerate() {
        let ids: Vec<String> = group
            .tasks
            .iter()
            .take(LISTED_IDS)
            .map(u64::to_string)
            .collect();
        let more = group.tasks.len().saturating_sub(LISTED_IDS);
        let mut list = ids.join(", ");
        if more > 0 {
            list.push_str(&format!(", … {more} more"));
        }
        let head = if group.tasks.len() == 1 {
            format!("1 task: {list}")
        } else {
            format!("{} tasks with this stack: {list}", group.tasks.len())
        };
        let at = TaskRef {
            dump: index,
            group: g,
        };
        if shown.contains(&at) {
            out.line(format_args!("{head} (stack shown under its request above)"));
            continue;
        }
        out.line(head);
        write_traces(group, fold, out);
        out.blank();
    }
    out.blank();
}

fn write_spans(spans: &SpansEntry, out: &mut TextWriter) {
    if !spans.recorded {
        return;
    }
    let listed = spans.outside_requests.len() + spans.outside_requests_not_listed;
    out.thread_header(&format!(
        " spans open ≥ {} outside requests ",
        seconds(spans.span_age_ms)
    ));
    if let Some(note) = &spans.note {
        out.line(note);
    }
    if spans.outside_requests.is_empty() {
        out.line(format_args!("none ({} spans open in all)", spans.open));
        out.blank();
        return;
    }
    out.line(format_args!("{listed} of {} open spans", spans.open));
    let mut rows = vec![vec![
        "open".to_owned(),
        "last entered".to_owned(),
        "span".to_owned(),
    ]];
    for s in &spans.outside_requests {
        rows.push(vec![
            seconds(s.open_ms),
            s.last_entered_ms
                .map_or_else(|| "never".to_owned(), |ms| format!("{} ago", seconds(ms))),
            s.path.clone().unwrap_or_else(|| s.label()),
        ]);
    }
    out.indented(|out| {
        for line in align_rows(&rows) {
            out.line(line);
        }
    });
    if spans.outside_requests_not_listed > 0 {
        out.line(format_args!(
            "… {} more (the JSON report has the first {} only too)",
            spans.outside_requests_not_listed,
            spans.outside_requests.len()
        ));
    }
    out.blank();
}
