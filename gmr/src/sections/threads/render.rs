//! The text view of the `Threads` section (`docs/report-format.md`).
//!
//! ```text
//! 7 threads, 7 stacks captured in 12.345 ms (capture signal SIGRTMIN+5 (39))
//!
//! ------ Thread #1204 "tokio-worker" sleeping, cpu 0.03s, in clock_nanosleep ------
//!    0: clock_nanosleep [libc.so.6+0xcf545]
//!    1: std::sys::thread::unix::sleep::nanosleep [app+0x42ccd6]
//!              at std/src/sys/thread/unix.rs:553
//!       … 1 frames in std …
//!    3: std::thread::sleep [app+0x42ccd6]
//!              at std/src/thread/functions.rs:289
//!    4: inventory_svc::render_export_csv [app+0x1b48fa]
//!              at src/export.rs:239
//!       … 88 frames in axum, tower, hyper, tokio, std, libc.so.6 …
//!
//! ------ 2 threads with this stack: sleeping, in futex ------
//! #1201 "worker-0" sleeping, cpu 0.00s, in futex 0x7f3c8e11ba48 (shared)
//! #1202 "worker-1" sleeping, cpu 0.00s, in futex 0x7f3c8e11ba48 (shared)
//!    0: syscall [libc.so.6+0x101827]
//! ```
//!
//! A thread is one header line (TID, name, state, CPU time, what it is blocked in); a group of
//! threads with one stack has its count in the header and one such line per thread (a list of
//! TIDs for large groups). Frames read like a Rust panic backtrace, with runs of runtime,
//! framework and std frames folded (see `report::stack`). The JSON keeps every frame, full
//! names and paths.

use std::fmt::Write as _;

use super::model::{StackGroup, ThreadEntry, ThreadsSection};
use crate::config::FoldConfig;
use crate::report::TextWriter;
use crate::report::stack::write_frames;

/// The longest line the view writes.
const MAX_LINE: usize = 160;

/// Groups up to this size list one line per thread; larger ones a list of TIDs.
const LISTED: usize = 8;

pub(super) fn write_text(s: &ThreadsSection, out: &mut TextWriter) {
    let mut summary = format!(
        "{} threads, {} stacks captured in {} ms",
        s.thread_count, s.stacks_captured, s.capture_ms
    );
    if let Some(sig) = &s.capture_signal {
        let _ = write!(summary, " (capture signal {sig})");
    }
    if !s.stacks_supported {
        summary.push_str("; stacks of other threads are not supported on this platform");
    }
    out.line(summary);
    for note in &s.notes {
        out.line(format_args!("note: {note}"));
    }
    out.blank();
    if let Some(since) = &s.since {
        crate::sections::since::render::write_threads(since, out);
    }

    let fold = FoldConfig {
        enabled: s.folded,
        extra_crates: Vec::new(),
    };
    let mut helpers: Vec<&ThreadEntry> = Vec::new();
    // What the reader looks for first: stacks of threads STUCK since the last report or
    // blocked inside a request, then the rest, most common first (the JSON keeps that order).
    let urgent = |g: &&StackGroup| {
        g.tids.iter().any(|tid| {
            s.threads.iter().any(|t| {
                t.tid == *tid
                    && (t.polling.as_deref().is_some_and(|p| p.ends_with("(STUCK)"))
                        || s.since
                            .as_ref()
                            .is_some_and(|since| since.stuck.iter().any(|st| st.tid == t.tid)))
            })
        })
    };
    let ordered = s
        .stacks
        .iter()
        .filter(urgent)
        .chain(s.stacks.iter().filter(|g| !urgent(g)));
    for group in ordered {
        match gmr_helpers_only(s, group, &fold) {
            Some(members) => helpers.extend(members),
            None => write_group(s, group, &fold, out),
        }
    }
    if !helpers.is_empty() {
        // gmr's own threads waiting for work: one line each, after the application's; their
        // frames are in the JSON (and in the text with `threads.fold = false`).
        helpers.sort_by_key(|t| t.tid);
        out.thread_header(" gmr's own threads, waiting (frames in the JSON report) ");
        for t in helpers {
            out.line(thread_line(s, t));
        }
        out.blank();
    }
    for t in s.threads.iter().filter(|t| t.stack.is_none()) {
        out.thread_header(&format!(" {} ", thread_title(s, t)));
        out.line(format_args!(
            "no stack: {}",
            t.stack_missing.as_deref().unwrap_or("unknown")
        ));
        out.blank();
    }
    if !s.futex_waiters.is_empty() {
        out.thread_header(" Threads waiting on the same futex ");
        for w in &s.futex_waiters {
            let tids: Vec<String> = w.tids.iter().map(|t| format!("#{t}")).collect();
            for line in wrap(
                &format!(
                    "futex {} ({} threads: one lock or condition variable):",
                    w.address,
                    w.tids.len()
                ),
                &tids,
            ) {
                out.line(line);
            }
        }
        out.blank();
    }
}

/// What a thread is blocked in, for its header: `in futex 0x…`, `in recvfrom(fd 9)`, `in
/// <wchan>`; empty for a running thread.
fn blocked_in(s: &ThreadsSection, t: &ThreadEntry) -> String {
    if let Some(sc) = &t.syscall {
        if let Some(addr) = &sc.futex {
            let shared = s.futex_waiters.iter().any(|w| &w.address == addr);
            return format!("in futex {addr}{}", if shared { " (shared)" } else { "" });
        }
        return format!("in {}", sc.text.trim_end_matches("()"));
    }
    t.wchan
        .as_deref()
        .map(|w| format!("in {w}"))
        .unwrap_or_default()
}

/// State, CPU time and what the thread is blocked in: `sleeping, cpu 0.03s, in futex 0x…`.
fn condition(s: &ThreadsSection, t: &ThreadEntry) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(state) = &t.state_name {
        parts.push(state.clone());
    }
    if let Some(stuck) = s
        .since
        .as_ref()
        .and_then(|since| since.stuck.iter().find(|st| st.tid == t.tid))
    {
        parts.push(format!(
            "STUCK ≥ {}",
            crate::sections::since::render::seconds(stuck.stuck_ms)
        ));
    }
    if let (Some(u), Some(sys)) = (t.cpu_user_s, t.cpu_system_s) {
        match t.cpu_during_capture_ms.filter(|ms| *ms >= 1.0) {
            Some(ms) => parts.push(format!("cpu {:.2}s (+{ms:.0} ms during capture)", u + sys)),
            None => parts.push(format!("cpu {:.2}s", u + sys)),
        }
    }
    let blocked = blocked_in(s, t);
    if !blocked.is_empty() {
        parts.push(blocked);
    }
    if t.reporting_thread {
        parts.push("making this report".to_owned());
    }
    parts.join(", ")
}

/// A thread's header: `Thread #1204 "tokio-worker" sleeping, cpu 0.03s, in clock_nanosleep`.
fn thread_title(s: &ThreadsSection, t: &ThreadEntry) -> String {
    let rest = condition(s, t);
    let head = format!("Thread #{} ", t.tid);
    let room = MAX_LINE - 14 - head.len() - rest.len() - 3;
    format!("{head}\"{}\" {rest}", fit(&t.name, room))
}

/// One line about a thread of a group: `#1201 "worker-0" sleeping, cpu 0.00s, in futex 0x…`.
fn thread_line(s: &ThreadsSection, t: &ThreadEntry) -> String {
    let rest = condition(s, t);
    let head = format!("#{} ", t.tid);
    let room = MAX_LINE - head.len() - rest.len() - 3;
    format!("{head}\"{}\" {rest}", fit(&t.name, room))
}

/// `name`, shortened with `…` to at most `room` characters (at least 8).
fn fit(name: &str, room: usize) -> String {
    let room = room.max(8);
    if name.chars().count() <= room {
        name.to_owned()
    } else {
        let mut short: String = name.chars().take(room - 1).collect();
        short.push('…');
        short
    }
}

/// The threads of `g` when all of them are gmr's own helpers and frames fold.
fn gmr_helpers_only<'a>(
    s: &'a ThreadsSection,
    g: &StackGroup,
    fold: &FoldConfig,
) -> Option<Vec<&'a ThreadEntry>> {
    if !fold.enabled {
        return None;
    }
    let members: Vec<&ThreadEntry> = g
        .tids
        .iter()
        .filter_map(|tid| s.threads.iter().find(|t| t.tid == *tid))
        .collect();
    (!members.is_empty() && members.iter().all(|t| is_gmr_helper(t))).then_some(members)
}

fn write_group(s: &ThreadsSection, g: &StackGroup, fold: &FoldConfig, out: &mut TextWriter) {
    let members: Vec<&ThreadEntry> = g
        .tids
        .iter()
        .filter_map(|tid| s.threads.iter().find(|t| t.tid == *tid))
        .collect();
    let Some(first) = members.first() else {
        return;
    };
    if members.len() == 1 {
        out.thread_header(&format!(" {} ", thread_title(s, first)));
        if let Some(request) = &first.polling {
            out.line(format_args!("   polling {request}"));
        }
    } else {
        out.thread_header(&format!(
            " {} threads with this stack: {} ",
            members.len(),
            common_condition(s, &members)
        ));
        if members.len() <= LISTED {
            for t in &members {
                out.line(thread_line(s, t));
                if let Some(request) = &t.polling {
                    out.line(format_args!("   polling {request}"));
                }
            }
        } else {
            let tids: Vec<String> = members
                .iter()
                .map(|t| format!("#{} \"{}\"", t.tid, fit(&t.name, 24)))
                .collect();
            for line in wrap("", &tids) {
                out.line(line.trim_start());
            }
        }
    }
    write_frames(out, &g.frames, fold);
    if let Some(why) = &g.truncated {
        out.line(format_args!("      ({why})"));
    }
    out.blank();
}

/// A thread of gmr's own (`gmr-signal`, `gmr-symbolizer`, …) that is not making this report.
fn is_gmr_helper(t: &ThreadEntry) -> bool {
    t.name.starts_with("gmr-") && !t.reporting_thread
}

/// What the threads of a group share: their state and what they are blocked in, when every
/// one has the same (`sleeping, in futex`); `various states` otherwise.
fn common_condition(s: &ThreadsSection, members: &[&ThreadEntry]) -> String {
    let summary = |t: &ThreadEntry| {
        let blocked = blocked_in(s, t);
        let kind = blocked
            .split([' ', '('])
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        match &t.state_name {
            Some(state) if kind.is_empty() => state.clone(),
            Some(state) => format!("{state}, {kind}"),
            None => kind,
        }
    };
    let first = summary(members[0]);
    if members.iter().all(|t| summary(t) == first) {
        first
    } else {
        "various states".to_owned()
    }
}

/// `head` followed by `items`, wrapped at [`MAX_LINE`] with a 4-space continuation indent.
fn wrap(head: &str, items: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = head.to_owned();
    for item in items {
        if cur.chars().count() + 1 + item.chars().count() > MAX_LINE && !cur.trim().is_empty() {
            lines.push(std::mem::replace(&mut cur, "   ".to_owned()));
        }
        cur.push(' ');
        cur.push_str(item);
    }
    lines.push(cur);
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_long_lists() {
        let tids: Vec<String> = (1000..1100).map(|t| format!("#{t}")).collect();
        let lines = wrap("100 threads:", &tids);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.chars().count() <= MAX_LINE));
        assert!(lines[1].starts_with("    #"));
        assert_eq!(fit("a-very-long-thread-name", 8), "a-very-…");
    }
}
