//! The `Threads` section in the HTML view: the summary line and notes, then one collapsible
//! block per stack group (its threads as a table, its frames with folded runs expandable),
//! the threads without a stack, and the futex waiters: what the text view shows, read from
//! the section's JSON (`docs/report-format.md`, "threads").
//!
//! Every field the view does not lay out (a newer report's, such as `since` or per-thread
//! flags) is shown in the generic layout next to where it belongs.

use std::collections::HashMap;

use serde_json::Value;

use super::escape::Html;
use super::generic::{self, Fields};
use super::stacks;

/// One thread's entry, and what the view reads of it.
struct Thread<'a> {
    fields: Fields<'a>,
    tid: i64,
    name: &'a str,
    condition: String,
    blocked_kind: String,
    state_name: Option<&'a str>,
    detail: String,
    reporting: bool,
}

impl<'a> Thread<'a> {
    fn read(value: &'a Value, shared_futexes: &[&str]) -> Self {
        let mut f = Fields::of(value);
        let tid = f.get("tid").and_then(Value::as_i64).unwrap_or(-1);
        let name = f.str("name").unwrap_or("");
        let comm = f.str("comm");
        let state = f.str("state");
        let state_name = f.str("state_name");
        let cpu = match (f.f64("cpu_user_s"), f.f64("cpu_system_s")) {
            (Some(u), Some(s)) => Some(u + s),
            _ => None,
        };
        let wchan = f.str("wchan");
        let syscall = f.get("syscall");
        let reporting = f.bool("reporting_thread").unwrap_or(false);
        let polling = f.str("polling");
        let during = f.f64("cpu_during_capture_ms");
        // The counters "since the last report" compares; the view shows its verdicts.
        f.skip(&[
            "stack",
            "stack_missing",
            "start_ticks",
            "cpu_ns",
            "sched_runs",
            "cpu_ns_after_capture",
            "sched_runs_after_capture",
        ]);

        let mut sc = syscall.map(Fields::of);
        let blocked = match sc.as_mut() {
            Some(sc) => match (sc.str("futex"), sc.str("text")) {
                (Some(addr), _) => {
                    let shared = if shared_futexes.contains(&addr) {
                        " (shared)"
                    } else {
                        ""
                    };
                    format!("in futex {addr}{shared}")
                }
                (None, Some(text)) => format!("in {}", text.trim_end_matches("()")),
                (None, None) => String::new(),
            },
            None => wchan.map(|w| format!("in {w}")).unwrap_or_default(),
        };
        let blocked_kind = blocked
            .split([' ', '('])
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let mut parts: Vec<String> = Vec::new();
        parts.extend(state_name.map(str::to_owned));
        parts.extend(cpu.map(|c| match during.filter(|ms| *ms >= 1.0) {
            Some(ms) => format!("cpu {c:.2}s (+{ms:.0} ms during capture)"),
            None => format!("cpu {c:.2}s"),
        }));
        if !blocked.is_empty() {
            parts.push(blocked);
        }
        if reporting {
            parts.push("making this report".to_owned());
        }
        if let Some(request) = polling {
            parts.push(format!("polling {request}"));
        }
        // What the header line leaves out, for the tooltip.
        let mut detail: Vec<String> = Vec::new();
        detail.extend(state.map(|s| format!("state {s}")));
        if let Some(sc) = sc.as_mut() {
            let nr = sc.get("nr").map(Value::to_string);
            match (sc.str("name"), nr) {
                (Some(n), Some(nr)) => detail.push(format!("syscall {n} ({nr})")),
                (None, Some(nr)) => detail.push(format!("syscall {nr}")),
                (Some(n), None) => detail.push(format!("syscall {n}")),
                (None, None) => {}
            }
            sc.skip(&["text", "futex"]);
            for (key, value) in sc.rest() {
                detail.push(format!("{key} {value}"));
            }
        }
        detail.extend(wchan.map(|w| format!("wchan {w}")));
        detail.extend(comm.filter(|c| *c != name).map(|c| format!("comm {c}")));
        Thread {
            fields: f,
            tid,
            name,
            condition: parts.join(", "),
            blocked_kind,
            state_name,
            detail: detail.join(", "),
            reporting,
        }
    }

    /// One of gmr's own threads (`gmr-signal`, …) that is not making this report.
    fn is_gmr_helper(&self) -> bool {
        self.name.starts_with("gmr-") && !self.reporting
    }

    fn summary(&self) -> String {
        match self.state_name {
            Some(state) if self.blocked_kind.is_empty() => state.to_owned(),
            Some(state) => format!("{state}, {}", self.blocked_kind),
            None => self.blocked_kind.clone(),
        }
    }
}

/// Writes the `Threads` section from its JSON.
pub(super) fn write(html: &mut Html, section: &Value) {
    let mut s = Fields::of(section);
    let supported = s.bool("stacks_supported").unwrap_or(true);
    let signal = s.str("capture_signal");
    let count = s.u64("thread_count").unwrap_or(0);
    let captured = s.u64("stacks_captured").unwrap_or(0);
    let ms = s
        .get("capture_ms")
        .map(Value::to_string)
        .unwrap_or_default();
    let notes = s.list("notes");
    let threads = s.list("threads");
    let groups = s.list("stacks");
    let futex_waiters = s.list("futex_waiters");
    let fold = stacks::fold_config(s.bool("folded").unwrap_or(true));
    let since = s.get("since");

    html.open("p", &[("class", "summary")]);
    html.text_fmt(format_args!(
        "{count} threads, {captured} stacks captured in {ms} ms"
    ));
    if let Some(signal) = signal {
        html.text_fmt(format_args!(" (capture signal {signal})"));
    }
    if !supported {
        html.text("; stacks of other threads are not supported on this platform");
    }
    html.close("p");
    write_notes(html, notes);
    if let Some(since) = since {
        write_since(html, since);
    }

    let shared: Vec<&str> = futex_waiters
        .iter()
        .filter_map(|w| w.get("address").and_then(Value::as_str))
        .collect();
    let read: Vec<Thread<'_>> = threads.iter().map(|t| Thread::read(t, &shared)).collect();
    let by_tid: HashMap<i64, usize> = read.iter().enumerate().map(|(i, t)| (t.tid, i)).collect();
    let mut listed = vec![false; read.len()];

    // As in the text view: stacks of threads STUCK since the last report or blocked inside a
    // request first, then the rest in their order.
    let stuck_tids: Vec<i64> = since
        .and_then(|s| s["stuck"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|t| t["tid"].as_i64())
        .collect();
    let blocked_tids: Vec<i64> = threads
        .iter()
        .filter(|t| {
            t["polling"]
                .as_str()
                .is_some_and(|p| p.ends_with("(STUCK)"))
        })
        .filter_map(|t| t["tid"].as_i64())
        .collect();
    let urgent = |group: &Value| {
        group["tids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_i64)
            .any(|tid| stuck_tids.contains(&tid) || blocked_tids.contains(&tid))
    };
    let ordered = groups
        .iter()
        .enumerate()
        .filter(|(_, g)| urgent(g))
        .chain(groups.iter().enumerate().filter(|(_, g)| !urgent(g)));
    for (position, group) in ordered {
        write_group(html, position, group, &read, &by_tid, &mut listed, &fold);
    }

    let without: Vec<usize> = threads
        .iter()
        .enumerate()
        .filter(|(i, t)| {
            !listed.get(*i).copied().unwrap_or(true) && t.get("stack").is_none_or(Value::is_null)
        })
        .map(|(i, _)| i)
        .collect();
    if !without.is_empty() {
        html.open("details", &[("class", "group unit")]);
        html.open("summary", &[]);
        html.text_fmt(format_args!("{} threads without a stack", without.len()));
        html.close("summary");
        html.open("table", &[("class", "threads")]);
        html.open("tbody", &[]);
        for i in without {
            let why = threads
                .get(i)
                .and_then(|t| t.get("stack_missing"))
                .and_then(Value::as_str)
                .unwrap_or("unknown");
            if let Some(t) = read.get(i) {
                write_thread_row(html, t, Some(why));
            }
            if let Some(flag) = listed.get_mut(i) {
                *flag = true;
            }
        }
        html.close("tbody");
        html.close("table");
        html.close("details");
    }
    // Threads pointing at a stack group that is not there: listed, never lost.
    let stray: Vec<usize> = (0..read.len())
        .filter(|i| !listed.get(*i).copied().unwrap_or(true))
        .collect();
    if !stray.is_empty() {
        html.open("details", &[("class", "group unit")]);
        html.element("summary", &[], "threads whose stack group is missing");
        html.open("table", &[("class", "threads")]);
        html.open("tbody", &[]);
        for i in stray {
            if let Some(t) = read.get(i) {
                write_thread_row(html, t, None);
            }
        }
        html.close("tbody");
        html.close("table");
        html.close("details");
    }

    if !futex_waiters.is_empty() {
        html.element("h3", &[], "Threads waiting on the same futex");
        html.open("table", &[("class", "rows")]);
        html.open("thead", &[]);
        html.markup("<tr><th>futex</th><th>threads</th><th>waiting</th></tr>");
        html.close("thead");
        html.open("tbody", &[]);
        for w in futex_waiters {
            let mut wf = Fields::of(w);
            let address = wf.str("address").unwrap_or("?");
            let tids: Vec<String> = wf.list("tids").iter().map(|t| format!("#{t}")).collect();
            html.open("tr", &[]);
            html.element("td", &[("class", "mono")], address);
            html.element("td", &[], &tids.len().to_string());
            html.open("td", &[]);
            html.text(&tids.join(" "));
            generic::write_fields(html, wf.rest());
            html.close("td");
            html.close("tr");
        }
        html.close("tbody");
        html.close("table");
    }
    write_rest(html, &s);
}

/// Problems worth telling the reader, one per line.
pub(super) fn write_notes(html: &mut Html, notes: &[Value]) {
    if notes.is_empty() {
        return;
    }
    html.open("ul", &[("class", "notes")]);
    for note in notes {
        html.open("li", &[]);
        html.text("note: ");
        match note.as_str() {
            Some(text) => generic::write_str(html, text),
            None => generic::write_value(html, note),
        }
        html.close("li");
    }
    html.close("ul");
}

/// The "since the last report" part, when a report has one, in a box of its own at the top of
/// its section: the lines of the text view (`threads.since`: STUCK and busy threads, counts,
/// threads that came and went; `green_threads.since`: requests in flight in both, counts,
/// tasks), STUCK highlighted.
pub(super) fn write_since(html: &mut Html, since: &Value) {
    let seconds =
        |key: &str, v: &Value| format!("{:.1} s", v[key].as_u64().unwrap_or(0) as f64 / 1000.0);
    let count = |key: &str| since[key].as_u64().unwrap_or(0);
    let list = |key: &str| since[key].as_array().cloned().unwrap_or_default();
    html.open("div", &[("class", "since")]);
    html.element("h3", &[], "Since the last report");
    html.open("p", &[]);
    html.text_fmt(format_args!(
        "previous report {}, {} before",
        since["previous_report_at"].as_str().unwrap_or("?"),
        seconds("interval_ms", since)
    ));
    html.close("p");
    html.open("ul", &[]);
    if since.get("stuck").is_some() {
        for t in list("stuck") {
            html.open("li", &[("class", "stuck")]);
            html.text_fmt(format_args!(
                "STUCK ≥ {}  #{} \"{}\": same stack, not run since {}",
                seconds("stuck_ms", &t),
                t["tid"],
                t["name"].as_str().unwrap_or(""),
                t["since"].as_str().unwrap_or("?")
            ));
            html.close("li");
        }
        for t in list("busy") {
            html.open("li", &[]);
            html.text_fmt(format_args!(
                "busy  #{} \"{}\": cpu {} ({} % of the interval)",
                t["tid"],
                t["name"].as_str().unwrap_or(""),
                seconds("cpu_ms", &t),
                t["cpu_percent"]
            ));
            html.close("li");
        }
        html.open("li", &[]);
        html.text_fmt(format_args!(
            "{} STUCK, {} busy, {} idle, {} moved; {} new threads, {} gone",
            list("stuck").len(),
            list("busy").len() as u64 + count("busy_not_listed"),
            count("idle"),
            count("moved"),
            since["appeared"]["count"].as_u64().unwrap_or(0),
            since["vanished"]["count"].as_u64().unwrap_or(0)
        ));
        html.close("li");
        for (what, key) in [("new threads", "appeared"), ("gone", "vanished")] {
            let names: Vec<&str> = since[key]["threads"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !names.is_empty() {
                html.open("li", &[]);
                html.text_fmt(format_args!("{what}: {}", names.join(", ")));
                html.close("li");
            }
        }
    } else {
        for r in list("requests") {
            html.open("li", &[("class", "stuck")]);
            html.text_fmt(format_args!(
                "in flight ≥ {}  request {}  {}",
                seconds("in_flight_ms", &r),
                r["id"],
                r["request"].as_str().unwrap_or("")
            ));
            html.close("li");
        }
        html.open("li", &[]);
        html.text_fmt(format_args!(
            "{} in flight in both, {} finished, {} new",
            list("requests").len(),
            count("requests_finished"),
            count("requests_new")
        ));
        html.close("li");
        for t in list("tasks") {
            html.open("li", &[]);
            html.text_fmt(format_args!(
                "tasks of \"{}\": {} in both, {} new, {} gone",
                t["runtime"].as_str().unwrap_or(""),
                t["common"],
                t["appeared"],
                t["vanished"]
            ));
            html.close("li");
        }
    }
    html.close("ul");
    html.close("div");
}

/// The fields of a section the view does not lay out, in the generic layout.
pub(super) fn write_rest(html: &mut Html, fields: &Fields<'_>) {
    let rest = fields.rest();
    if !rest.is_empty() {
        html.open("div", &[("class", "more")]);
        generic::write_fields(html, rest);
        html.close("div");
    }
}

fn write_group(
    html: &mut Html,
    position: usize,
    group: &Value,
    threads: &[Thread<'_>],
    by_tid: &HashMap<i64, usize>,
    listed: &mut [bool],
    fold: &crate::config::FoldConfig,
) {
    let mut g = Fields::of(group);
    let id = g.u64("id").map_or(position, |id| id as usize);
    let members: Vec<usize> = g
        .list("tids")
        .iter()
        .filter_map(Value::as_i64)
        .filter_map(|tid| by_tid.get(&tid).copied())
        .collect();
    let tid_count = g.list("tids").len();
    let frames = stacks::frames(g.get("frames"));
    let truncated = g.str("truncated");
    for &m in &members {
        if let Some(flag) = listed.get_mut(m) {
            *flag = true;
        }
    }
    let member = |i: usize| threads.get(i);
    let own = !members.is_empty()
        && members
            .iter()
            .all(|&m| member(m).is_some_and(Thread::is_gmr_helper));

    let group_id = id.to_string();
    html.open(
        "details",
        &[
            ("class", if own { "group unit own" } else { "group unit" }),
            ("data-group", &group_id),
        ],
    );
    html.open("summary", &[]);
    match (members.as_slice(), tid_count) {
        ([only], 1) => {
            if let Some(t) = member(*only) {
                html.open("span", &[("class", "who")]);
                html.text_fmt(format_args!("Thread #{} \"{}\"", t.tid, t.name));
                html.close("span");
                html.text(" ");
                html.text(&t.condition);
            }
        }
        _ => {
            html.open("span", &[("class", "who")]);
            html.text_fmt(format_args!("{tid_count} threads with this stack"));
            html.close("span");
            let summaries: Vec<String> = members
                .iter()
                .filter_map(|&m| member(m).map(Thread::summary))
                .collect();
            let common = match summaries.first() {
                Some(first) if summaries.iter().all(|s| s == first) => first.clone(),
                Some(_) => "various states".to_owned(),
                None => String::new(),
            };
            if !common.is_empty() {
                html.text(": ");
                html.text(&common);
            }
        }
    }
    if let Some(app) = frames
        .iter()
        .find(|f| f.kind == crate::report::stack::FrameKind::Application)
    {
        html.text(" · ");
        html.element("span", &[("class", "top")], stacks::display_name(app));
    }
    if own {
        html.element("span", &[("class", "tag")], "gmr's own thread, waiting");
    }
    html.element("span", &[("class", "gid")], &format!("group {id}"));
    html.close("summary");

    html.open("table", &[("class", "threads")]);
    html.open("tbody", &[]);
    for &m in &members {
        if let Some(t) = threads.get(m) {
            write_thread_row(html, t, None);
        }
    }
    html.close("tbody");
    html.close("table");
    stacks::write_frames(html, &frames, fold);
    if let Some(why) = truncated {
        html.open("div", &[("class", "note")]);
        html.text_fmt(format_args!("({why})"));
        html.close("div");
    }
    let rest = g.rest();
    if !rest.is_empty() {
        generic::write_fields(html, rest);
    }
    html.close("details");
}

/// One thread as a table row: TID, name, state and what it is blocked in, and any field of
/// its entry the view does not know.
fn write_thread_row(html: &mut Html, t: &Thread<'_>, no_stack: Option<&str>) {
    html.open("tr", &[("class", "t")]);
    html.element("td", &[("class", "tid")], &format!("#{}", t.tid));
    html.element("td", &[("class", "tname")], t.name);
    html.open("td", &[("title", &t.detail)]);
    html.text(&t.condition);
    if let Some(why) = no_stack {
        html.text(" — no stack: ");
        generic::write_str(html, why);
    }
    html.close("td");
    let rest = t.fields.rest();
    html.open("td", &[("class", "flags")]);
    for (i, (key, value)) in rest.iter().enumerate() {
        if i > 0 {
            html.text(", ");
        }
        html.text(key);
        html.text(": ");
        generic::write_value(html, value);
    }
    html.close("td");
    html.close("tr");
}
