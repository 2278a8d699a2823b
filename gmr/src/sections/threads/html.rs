//! The `Threads` section in the HTML view, from its model (as the text view, `render.rs`):
//! the summary line and notes, the "since the last report" box, then one collapsible block
//! per stack group (its threads as a table, its frames with the folded runs expandable), the
//! stacks of threads STUCK since the last report or blocked inside a request first; then the
//! threads without a stack and the futex waiters. The module table and the stack style are
//! shown in the generic layout below.
//!
//! Made from the model, not from the JSON: a report of a thousand threads is a thousand rows,
//! and building and reading their JSON would cost several times what the page itself does.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::model::{StackGroup, ThreadEntry, ThreadsSection};
use crate::config::FoldConfig;
use crate::report::html::generic::{self, write_notes};
use crate::report::html::{FlameStack, Html, stacks};
use crate::report::stack::FrameKind;

/// One thread's entry, and what the view shows of it.
struct Thread<'a> {
    entry: &'a ThreadEntry,
    /// State, CPU, what it is blocked in, what it polls: the line after its name.
    condition: String,
    /// `in futex`, `in epoll_wait`: what it is blocked in, without the arguments.
    blocked_kind: String,
    /// What the line leaves out (state letter, syscall number, wchan, comm), for the tooltip.
    detail: String,
}

impl<'a> Thread<'a> {
    fn read(entry: &'a ThreadEntry, shared_futexes: &[&str]) -> Self {
        // A thousand rows: each string is written once, into room made for it.
        let mut blocked = String::with_capacity(48);
        match &entry.syscall {
            Some(sc) => match &sc.futex {
                Some(addr) => {
                    let shared = if shared_futexes.contains(&addr.as_str()) {
                        " (shared)"
                    } else {
                        ""
                    };
                    let _ = write!(blocked, "in futex {addr}{shared}");
                }
                None => {
                    let _ = write!(blocked, "in {}", sc.text.trim_end_matches("()"));
                }
            },
            None => {
                if let Some(w) = &entry.wchan {
                    let _ = write!(blocked, "in {w}");
                }
            }
        }
        // `in futex`, `in epoll_wait`: the first two words, without the arguments.
        let kind_end = blocked
            .match_indices([' ', '('])
            .nth(1)
            .map_or(blocked.len(), |(at, _)| at);
        let blocked_kind = blocked[..kind_end].to_owned();

        let mut condition = String::with_capacity(128);
        let sep = |out: &mut String| {
            if !out.is_empty() {
                out.push_str(", ");
            }
        };
        if let Some(state) = &entry.state_name {
            condition.push_str(state);
        }
        if let (Some(u), Some(s)) = (entry.cpu_user_s, entry.cpu_system_s) {
            sep(&mut condition);
            let _ = write!(condition, "cpu {:.2}s", u + s);
            if let Some(ms) = entry.cpu_during_capture_ms.filter(|ms| *ms >= 1.0) {
                let _ = write!(condition, " (+{ms:.0} ms during capture)");
            }
        }
        if !blocked.is_empty() {
            sep(&mut condition);
            condition.push_str(&blocked);
        }
        if entry.reporting_thread {
            sep(&mut condition);
            condition.push_str("making this report");
        }
        if let Some(request) = &entry.polling {
            sep(&mut condition);
            let _ = write!(condition, "polling {request}");
        }

        let mut detail = String::with_capacity(128);
        if let Some(state) = &entry.state {
            let _ = write!(detail, "state {state}");
        }
        if let Some(sc) = &entry.syscall {
            sep(&mut detail);
            match &sc.name {
                Some(name) => {
                    let _ = write!(detail, "syscall {name} ({})", sc.nr);
                }
                None => {
                    let _ = write!(detail, "syscall {}", sc.nr);
                }
            }
        }
        if let Some(wchan) = &entry.wchan {
            sep(&mut detail);
            let _ = write!(detail, "wchan {wchan}");
        }
        if let Some(comm) = entry.comm.as_ref().filter(|c| **c != entry.name) {
            sep(&mut detail);
            let _ = write!(detail, "comm {comm}");
        }
        Thread {
            entry,
            condition,
            blocked_kind,
            detail,
        }
    }

    /// One of gmr's own threads (`gmr-signal`, …) that is not making this report.
    fn is_gmr_helper(&self) -> bool {
        self.entry.name.starts_with("gmr-") && !self.entry.reporting_thread
    }

    fn summary(&self) -> String {
        match &self.entry.state_name {
            Some(state) if self.blocked_kind.is_empty() => state.clone(),
            Some(state) => format!("{state}, {}", self.blocked_kind),
            None => self.blocked_kind.clone(),
        }
    }
}

/// Writes the `Threads` section.
pub(super) fn write(s: &ThreadsSection, html: &mut Html) {
    html.open("p", &[("class", "summary")]);
    html.text_fmt(format_args!(
        "{} threads, {} stacks captured in {} ms",
        s.thread_count, s.stacks_captured, s.capture_ms
    ));
    if let Some(signal) = &s.capture_signal {
        html.text_fmt(format_args!(" (capture signal {signal})"));
    }
    if !s.stacks_supported {
        html.text("; stacks of other threads are not supported on this platform");
    }
    html.close("p");
    let notes: Vec<Value> = s.notes.iter().map(|n| Value::from(n.as_str())).collect();
    write_notes(html, &notes);
    if let Some(since) = &s.since {
        crate::sections::since::html::write_threads(html, since);
    }

    let shared: Vec<&str> = s.futex_waiters.iter().map(|w| w.address.as_str()).collect();
    let read: Vec<Thread<'_>> = s.threads.iter().map(|t| Thread::read(t, &shared)).collect();
    let by_tid: HashMap<i32, usize> = read
        .iter()
        .enumerate()
        .map(|(i, t)| (t.entry.tid, i))
        .collect();
    let mut listed = vec![false; read.len()];
    let fold = stacks::fold_config(s.folded);

    // As in the text view: stacks of threads STUCK since the last report or blocked inside a
    // request first, then the rest in their order.
    let stuck: Vec<i32> = s
        .since
        .iter()
        .flat_map(|since| since.stuck.iter().map(|t| t.tid))
        .chain(
            s.threads
                .iter()
                .filter(|t| t.polling.as_deref().is_some_and(|p| p.ends_with("(STUCK)")))
                .map(|t| t.tid),
        )
        .collect();
    let urgent = |group: &StackGroup| group.tids.iter().any(|tid| stuck.contains(tid));
    let ordered = s
        .stacks
        .iter()
        .filter(|g| urgent(g))
        .chain(s.stacks.iter().filter(|g| !urgent(g)));
    for group in ordered {
        write_group(html, group, &read, &by_tid, &mut listed, &fold);
    }

    let without: Vec<usize> = (0..read.len())
        .filter(|&i| !listed[i] && read[i].entry.stack.is_none())
        .collect();
    if !without.is_empty() {
        html.open("details", &[("class", "group unit")]);
        html.open("summary", &[]);
        html.text_fmt(format_args!("{} threads without a stack", without.len()));
        html.close("summary");
        html.open("table", &[("class", "threads")]);
        html.open("tbody", &[]);
        for &i in &without {
            let why = read[i].entry.stack_missing.as_deref().unwrap_or("unknown");
            write_thread_row(html, &read[i], Some(why));
            listed[i] = true;
        }
        html.close("tbody");
        html.close("table");
        html.close("details");
    }
    // Threads pointing at a stack group that is not there: listed, never lost.
    let stray: Vec<usize> = (0..read.len()).filter(|&i| !listed[i]).collect();
    if !stray.is_empty() {
        html.open("details", &[("class", "group unit")]);
        html.element("summary", &[], "threads whose stack group is missing");
        html.open("table", &[("class", "threads")]);
        html.open("tbody", &[]);
        for i in stray {
            write_thread_row(html, &read[i], None);
        }
        html.close("tbody");
        html.close("table");
        html.close("details");
    }

    if !s.futex_waiters.is_empty() {
        html.element("h3", &[], "Threads waiting on the same futex");
        html.open("table", &[("class", "rows")]);
        html.open("thead", &[]);
        html.markup("<tr><th>futex</th><th>threads</th><th>waiting</th></tr>");
        html.close("thead");
        html.open("tbody", &[]);
        for w in &s.futex_waiters {
            let tids: Vec<String> = w.tids.iter().map(|t| format!("#{t}")).collect();
            html.open("tr", &[]);
            html.element("td", &[("class", "mono")], &w.address);
            html.element("td", &[], &tids.len().to_string());
            html.element("td", &[], &tids.join(" "));
            html.close("tr");
        }
        html.close("tbody");
        html.close("table");
    }
    write_more(html, s);
}

/// The module table and the stack style, in the generic layout.
fn write_more(html: &mut Html, s: &ThreadsSection) {
    let modules = (!s.modules.is_empty()).then(|| serde_json::to_value(&s.modules));
    let style = s.style.as_ref().map(serde_json::to_value);
    let fields: Vec<(&str, Value)> = [("modules", modules), ("style", style)]
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?.ok()?)))
        .collect();
    if !fields.is_empty() {
        html.open("div", &[("class", "more")]);
        generic::write_fields(html, fields.iter().map(|(k, v)| (*k, v)));
        html.close("div");
    }
}

fn write_group(
    html: &mut Html,
    group: &StackGroup,
    threads: &[Thread<'_>],
    by_tid: &HashMap<i32, usize>,
    listed: &mut [bool],
    fold: &FoldConfig,
) {
    let members: Vec<usize> = group
        .tids
        .iter()
        .filter_map(|tid| by_tid.get(tid).copied())
        .collect();
    for &m in &members {
        listed[m] = true;
    }
    let own = !members.is_empty() && members.iter().all(|&m| threads[m].is_gmr_helper());

    let group_id = group.id.to_string();
    html.open(
        "details",
        &[
            ("class", if own { "group unit own" } else { "group unit" }),
            ("data-group", &group_id),
        ],
    );
    html.open("summary", &[]);
    match (members.as_slice(), group.tids.len()) {
        ([only], 1) => {
            let t = &threads[*only];
            html.open("span", &[("class", "who")]);
            html.text_fmt(format_args!("Thread #{} \"{}\"", t.entry.tid, t.entry.name));
            html.close("span");
            html.text(" ");
            html.text(&t.condition);
        }
        (_, count) => {
            html.open("span", &[("class", "who")]);
            html.text_fmt(format_args!("{count} threads with this stack"));
            html.close("span");
            let mut summaries = members.iter().map(|&m| threads[m].summary());
            let common = match summaries.next() {
                Some(first) if summaries.all(|s| s == first) => first,
                Some(_) => "various states".to_owned(),
                None => String::new(),
            };
            if !common.is_empty() {
                html.text(": ");
                html.text(&common);
            }
        }
    }
    if let Some(app) = group
        .frames
        .iter()
        .find(|f| f.kind == FrameKind::Application)
    {
        html.text(" · ");
        html.element("span", &[("class", "top")], stacks::display_name(app));
    }
    if own {
        html.element("span", &[("class", "tag")], "gmr's own thread, waiting");
    }
    html.element("span", &[("class", "gid")], &format!("group {}", group.id));
    html.close("summary");

    html.open("table", &[("class", "threads")]);
    html.open("tbody", &[]);
    for &m in &members {
        write_thread_row(html, &threads[m], None);
    }
    html.close("tbody");
    html.close("table");
    stacks::write_frames(html, &group.frames, fold);
    if let Some(why) = &group.truncated {
        html.open("div", &[("class", "note")]);
        html.text_fmt(format_args!("({why})"));
        html.close("div");
    }
    html.close("details");
}

/// One thread as a table row: TID, name, and its state and what it is blocked in (the rest
/// in the tooltip).
fn write_thread_row(html: &mut Html, t: &Thread<'_>, no_stack: Option<&str>) {
    html.open("tr", &[("class", "t")]);
    html.open("td", &[("class", "tid")]);
    html.text_fmt(format_args!("#{}", t.entry.tid));
    html.close("td");
    html.element("td", &[("class", "tname")], &t.entry.name);
    html.open("td", &[("title", &t.detail)]);
    html.text(&t.condition);
    if let Some(why) = no_stack {
        html.text(" — no stack: ");
        generic::write_str(html, why);
    }
    html.close("td");
    html.close("tr");
}

/// The section's stack groups for the flame graph, each as wide as its threads.
pub(super) fn flame_stacks(s: &ThreadsSection) -> Vec<FlameStack> {
    s.stacks
        .iter()
        .map(|group| {
            let count = group.tids.len().max(1);
            FlameStack {
                root: "threads".to_owned(),
                frames: group.frames.clone(),
                leaf: format!(
                    "group {} · {count} {}",
                    group.id,
                    if count == 1 { "thread" } else { "threads" }
                ),
                weight: count as u64,
            }
        })
        .collect()
}
