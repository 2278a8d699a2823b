//! The `Green Threads` section in the HTML view, read from its JSON (a few hundred requests
//! and the groups of task stacks, not one entry per task): the requests in flight
//! of each adapter as a table, the oldest first, `STUCK` rows highlighted, each with what is
//! known of it below (the thread blocking in its poll, where it waits, its spans, its task's
//! stack); the task stacks of each runtime grouped like threads; long-open spans; the
//! runtimes and the application's sources in the generic layout.

use serde_json::Value;

use crate::report::html::generic::{self, Fields, write_rest};
use crate::report::html::{FlameStack, Html, stacks};
use crate::report::stack::{FrameEntry, FrameKind};
use crate::sections::since::html as since;
use crate::sections::since::model::GreenSince;

use super::render::one_line;

/// Writes the `Green Threads` section from its JSON, and its "since the last report" part.
pub(super) fn write(html: &mut Html, section: &Value, since: Option<&GreenSince>) {
    let mut s = Fields::of(section);
    let fold = stacks::fold_config(s.bool("folded").unwrap_or(true));
    if let Some(note) = s.str("note") {
        html.element("p", &[("class", "summary")], note);
    }
    s.skip(&["since"]);
    if let Some(since) = since {
        since::write_green(html, since);
    }
    let tasks = s.list("tasks");
    for block in s.list("requests") {
        write_requests(html, block, tasks, &fold);
    }
    if let Some(note) = s.str("tasks_note") {
        html.element("p", &[("class", "note")], note);
    }
    for (i, dump) in tasks.iter().enumerate() {
        write_tasks(html, i, dump, &fold);
    }
    if let Some(spans) = s.get("spans") {
        write_spans(html, spans);
    }
    if let Some(runtimes) = s.get("runtimes") {
        html.element("h3", &[], "tokio runtimes");
        generic::write_value(html, runtimes);
    }
    for source in s.list("sources") {
        let mut f = Fields::of(source);
        html.element("h3", &[], f.str("title").unwrap_or("(untitled source)"));
        match (f.get("data"), f.str("error")) {
            (Some(data), _) => generic::write_value(html, data),
            (None, Some(error)) => {
                html.element(
                    "p",
                    &[("class", "error")],
                    &format!("(unavailable: {error})"),
                );
            }
            (None, None) => html.element("p", &[("class", "none")], "(no data)"),
        }
        write_rest(html, &f);
    }
    write_rest(html, &s);
}

/// `12.3 s`.
fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn write_requests(
    html: &mut Html,
    block: &Value,
    tasks: &[Value],
    fold: &crate::config::FoldConfig,
) {
    let mut b = Fields::of(block);
    let source = b.str("source").unwrap_or("?");
    html.element("h3", &[], &format!("in-flight requests ({source})"));
    if let Some(error) = b.str("error") {
        html.element(
            "p",
            &[("class", "error")],
            &format!("(unavailable: {error})"),
        );
        write_rest(html, &b);
        return;
    }
    let in_flight = b.u64("in_flight");
    let stuck = b.u64("stuck_in_poll").unwrap_or(0);
    let mut requests: Vec<&Value> = b.list("requests").iter().collect();
    if requests.is_empty() {
        html.element("p", &[("class", "none")], "none");
        write_rest(html, &b);
        return;
    }
    let age = |r: &Value| r.get("age_ms").and_then(Value::as_u64).unwrap_or(0);
    // The oldest first (a stable sort: equal ages keep the adapter's order).
    requests.sort_by_key(|r| std::cmp::Reverse(age(r)));
    let oldest = requests.first().map_or(0, |r| age(r));
    html.open("p", &[("class", "summary")]);
    html.text_fmt(format_args!(
        "{} in flight, the oldest for {}",
        in_flight.unwrap_or(requests.len() as u64),
        seconds(oldest)
    ));
    if stuck > 0 {
        html.text("; ");
        html.element(
            "span",
            &[("class", "stuck")],
            &format!("{stuck} STUCK in one poll"),
        );
    }
    html.close("p");
    html.open("table", &[("class", "rows requests")]);
    html.open("thead", &[]);
    html.markup(
        "<tr><th>id</th><th>method</th><th>path</th><th>route</th><th>age</th>\
         <th>last poll</th><th>task</th><th>state</th></tr>",
    );
    html.close("thead");
    for request in requests {
        write_request(html, request, tasks, fold);
    }
    html.close("table");
    write_rest(html, &b);
}

fn write_request(
    html: &mut Html,
    request: &Value,
    tasks: &[Value],
    fold: &crate::config::FoldConfig,
) {
    let mut r = Fields::of(request);
    let state = r.str("state").unwrap_or("");
    let stuck = generic::is_stuck(state);
    html.open(
        "tbody",
        &[(
            "class",
            if stuck {
                "unit req stuck-row"
            } else {
                "unit req"
            },
        )],
    );
    html.open("tr", &[("class", "t")]);
    let id = r.get("id").map(Value::to_string).unwrap_or_default();
    html.element("td", &[], &id);
    html.element("td", &[], r.str("method").unwrap_or(""));
    html.element("td", &[("class", "path")], r.str("path").unwrap_or(""));
    html.element("td", &[], r.str("route").unwrap_or("-"));
    html.element("td", &[], &r.u64("age_ms").map(seconds).unwrap_or_default());
    let polled_by = r.get("polled_by_tid");
    let last_poll = match (polled_by, r.u64("last_poll_ms")) {
        (Some(_), _) => "now".to_owned(),
        (None, Some(ms)) => format!("{} ago", seconds(ms)),
        (None, None) => "never".to_owned(),
    };
    html.element("td", &[], &last_poll);
    let task = r.get("task_id").map(Value::to_string);
    html.element("td", &[], task.as_deref().unwrap_or("-"));
    html.open("td", &[]);
    generic::write_str(html, state);
    html.close("td");
    html.close("tr");

    // What is known of it, under its row.
    let thread = r.str("thread");
    let waiting = r.str("waiting_in");
    let spans = r.list("spans");
    let other_spans = r.u64("other_spans").unwrap_or(0);
    let task_stack = r.get("task_stack");
    let in_poll = r.u64("in_poll_ms");
    let rest = r.rest();
    let has_detail = thread.is_some()
        || waiting.is_some()
        || !spans.is_empty()
        || task_stack.is_some()
        || !rest.is_empty();
    if has_detail {
        html.open("tr", &[("class", "detail")]);
        html.open("td", &[("colspan", "8")]);
        if let Some(thread) = thread {
            html.open("div", &[]);
            html.text(if stuck {
                "blocked in one poll on thread "
            } else {
                "polled now by thread "
            });
            html.text(thread);
            if let Some(ms) = in_poll {
                html.text_fmt(format_args!(" (this poll: {})", seconds(ms)));
            }
            html.text(": its stack is in Threads");
            if let Some(tid) = polled_by {
                html.element("span", &[("class", "none")], &format!(" (TID {tid})"));
            }
            html.close("div");
        }
        if let Some(waiting) = waiting {
            html.open("div", &[]);
            generic::write_str(html, waiting);
            html.close("div");
        }
        if !spans.is_empty() {
            html.open("div", &[("class", "spans")]);
            html.text("spans: ");
            for (i, span) in spans.iter().enumerate() {
                if i > 0 {
                    html.text(" > ");
                }
                write_span_label(html, span);
            }
            if other_spans > 0 {
                html.text_fmt(format_args!(" (and {other_spans} more open)"));
            }
            html.close("div");
        }
        if let Some(at) = task_stack {
            let dump = at.get("dump").and_then(Value::as_u64).unwrap_or(u64::MAX);
            let group = at.get("group").and_then(Value::as_u64).unwrap_or(u64::MAX);
            let found = usize::try_from(dump)
                .ok()
                .and_then(|d| tasks.get(d))
                .and_then(|d| d.get("groups"))
                .and_then(Value::as_array)
                .and_then(|g| usize::try_from(group).ok().and_then(|i| g.get(i)));
            html.open("details", &[("class", "fold task")]);
            html.open("summary", &[]);
            html.text_fmt(format_args!(
                "task {} stack (task group {group} of runtime dump {dump})",
                task.as_deref().unwrap_or("?")
            ));
            html.close("summary");
            match found {
                Some(group) => write_traces(html, group, fold),
                None => html.element("div", &[("class", "none")], "(not in the task dump)"),
            }
            html.close("details");
        }
        if !rest.is_empty() {
            generic::write_fields(html, rest);
        }
        html.close("td");
        html.close("tr");
    }
    html.close("tbody");
}

/// `name{a=1 b=2}` of a span entry, and its other fields in a tooltip.
fn write_span_label(html: &mut Html, span: &Value) {
    let mut s = Fields::of(span);
    let name = s.str("name").unwrap_or("?");
    let fields: Vec<&str> = s.list("fields").iter().filter_map(Value::as_str).collect();
    let label = if fields.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", fields.join(" "))
    };
    let mut tip: Vec<String> = Vec::new();
    tip.extend(s.str("target").map(|t| format!("target {t}")));
    tip.extend(s.u64("open_ms").map(|ms| format!("open {}", seconds(ms))));
    tip.extend(
        s.u64("last_entered_ms")
            .map(|ms| format!("last entered {} ago", seconds(ms))),
    );
    for (key, value) in s.rest() {
        tip.push(format!("{key} {value}"));
    }
    html.element("code", &[("title", &tip.join(", "))], &label);
}

/// The traces of one task group (one stack per leaf future its last poll reached), by the
/// text view's rule: those through application code in full; the others (the connection's
/// I/O, a shutdown signal: what every task of a server awaits besides its work) one line
/// each, expandable; with no application frame anywhere, the first in full.
fn write_traces(html: &mut Html, group: &Value, fold: &crate::config::FoldConfig) {
    let traces: Vec<Vec<FrameEntry>> = group
        .get("traces")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|t| stacks::frames(Some(t)))
        .collect();
    if traces.is_empty() {
        html.element(
            "div",
            &[("class", "none")],
            "(no stack: the task awaits no tokio resource, e.g. `std::future::pending()` \
             or another crate's channel, or has not been polled yet)",
        );
        return;
    }
    let own: Vec<bool> = traces.iter().map(|t| has_application(t)).collect();
    let any_own = own.contains(&true);
    let full = |i: usize| own[i] || (!any_own && i == 0);
    for (i, trace) in traces.iter().enumerate() {
        if full(i) {
            stacks::write_frames(html, trace, fold);
        }
    }
    for (i, trace) in traces.iter().enumerate() {
        if !full(i) {
            html.open("details", &[("class", "fold also")]);
            html.open("summary", &[]);
            html.text("also awaiting: ");
            html.text(&one_line(trace));
            html.close("summary");
            stacks::write_frames(html, trace, fold);
            html.close("details");
        }
    }
}

fn has_application(trace: &[FrameEntry]) -> bool {
    trace.iter().any(|f| f.kind == FrameKind::Application)
}

fn write_tasks(html: &mut Html, index: usize, dump: &Value, fold: &crate::config::FoldConfig) {
    let mut d = Fields::of(dump);
    let runtime = d.str("runtime").unwrap_or("?");
    let status = d.str("status").unwrap_or("?");
    let count = d.u64("task_count").unwrap_or(0);
    html.element("h3", &[], &format!("tasks of runtime {runtime}"));
    html.open("p", &[("class", "summary")]);
    html.text_fmt(format_args!("{count} tasks, dump {status}"));
    html.close("p");
    if let Some(note) = d.str("note") {
        html.element("p", &[("class", "note")], note);
    }
    for (g, group) in d.list("groups").iter().enumerate() {
        let mut gf = Fields::of(group);
        let ids: Vec<String> = gf.list("tasks").iter().map(Value::to_string).collect();
        let traces = gf.list("traces");
        // The innermost application frame of any of its stacks names the group.
        let top = traces.iter().find_map(|t| {
            stacks::frames(Some(t))
                .iter()
                .find(|f| f.kind == FrameKind::Application)
                .map(|f| stacks::display_name(f).to_owned())
        });
        let group_id = format!("{index}.{g}");
        html.open(
            "details",
            &[("class", "group unit"), ("data-group", &group_id)],
        );
        html.open("summary", &[]);
        html.open("span", &[("class", "who")]);
        html.text_fmt(format_args!(
            "{} {} with this stack",
            ids.len(),
            if ids.len() == 1 { "task" } else { "tasks" }
        ));
        html.close("span");
        if let Some(top) = top {
            html.text(" · ");
            html.element("span", &[("class", "top")], &top);
        }
        html.element(
            "span",
            &[("class", "gid")],
            &format!("task group {group_id}"),
        );
        html.close("summary");
        html.open("div", &[("class", "ids")]);
        html.text("tasks: ");
        html.text(&ids.join(" "));
        html.close("div");
        write_traces(html, group, fold);
        gf.skip(&["traces"]);
        let rest = gf.rest();
        if !rest.is_empty() {
            generic::write_fields(html, rest);
        }
        html.close("details");
    }
    write_rest(html, &d);
}

fn write_spans(html: &mut Html, spans: &Value) {
    let mut s = Fields::of(spans);
    html.element("h3", &[], "open spans");
    if let Some(note) = s.str("note") {
        html.element("p", &[("class", "note")], note);
    }
    let recorded = s.bool("recorded").unwrap_or(false);
    let open = s.u64("open").unwrap_or(0);
    let age = s.u64("span_age_ms").unwrap_or(0);
    html.open("p", &[("class", "summary")]);
    if recorded {
        html.text_fmt(format_args!(
            "{open} open; outside requests, open for {} or longer:",
            seconds(age)
        ));
    } else {
        html.text("not recorded (add gmr::tracing::layer() to the subscriber)");
    }
    html.close("p");
    let outside = s.list("outside_requests");
    if !outside.is_empty() {
        html.open("table", &[("class", "rows")]);
        html.open("thead", &[]);
        html.markup("<tr><th>span</th><th>path</th><th>open for</th><th>last entered</th></tr>");
        html.close("thead");
        html.open("tbody", &[]);
        for span in outside {
            html.open("tr", &[("class", "t")]);
            html.open("td", &[]);
            write_span_label(html, span);
            html.close("td");
            let path = span.get("path").and_then(Value::as_str).unwrap_or("");
            html.element("td", &[], path);
            let open = span.get("open_ms").and_then(Value::as_u64).map(seconds);
            html.element("td", &[], open.as_deref().unwrap_or(""));
            let entered = span
                .get("last_entered_ms")
                .and_then(Value::as_u64)
                .map_or_else(|| "never".to_owned(), |ms| format!("{} ago", seconds(ms)));
            html.element("td", &[], &entered);
            html.close("tr");
        }
        html.close("tbody");
        html.close("table");
    }
    if let Some(more) = s.u64("outside_requests_not_listed").filter(|n| *n > 0) {
        html.element(
            "p",
            &[("class", "note")],
            &format!("and {more} more not listed"),
        );
    }
    write_rest(html, &s);
}

/// Every task stack of the section's JSON, for the flame graph: one per group and leaf
/// future, as wide as the group's tasks.
pub(super) fn flame_stacks(section: &Value) -> Vec<FlameStack> {
    let mut out = Vec::new();
    let dumps = section
        .get("tasks")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (d, dump) in dumps.iter().enumerate() {
        let runtime = dump.get("runtime").and_then(Value::as_str).unwrap_or("?");
        let groups = dump
            .get("groups")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (g, group) in groups.iter().enumerate() {
            let count = group
                .get("tasks")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
                .max(1);
            let traces = group
                .get("traces")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            for (t, trace) in traces.iter().enumerate() {
                let leaf_future = if traces.len() > 1 {
                    format!(", leaf future {t}")
                } else {
                    String::new()
                };
                out.push(FlameStack {
                    root: format!("tasks of {runtime}"),
                    frames: stacks::frames(Some(trace)),
                    leaf: format!(
                        "task group {d}.{g}{leaf_future} · {count} {}",
                        if count == 1 { "task" } else { "tasks" }
                    ),
                    weight: count as u64,
                });
            }
        }
    }
    out
}
