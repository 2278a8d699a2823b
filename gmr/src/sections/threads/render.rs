//! The text view of the `Threads` section (`docs/report-format.md`).
//!
//! ```text
//! thread_count = 3
//! stacks_captured = 3
//! capture_ms = 1.234
//! capture_signal = SIGRTMIN+5 (39)
//! stacks_supported = true
//!
//! ------      Thread #1201 "worker-0" and 1 more with this stack       ------
//! 2 threads with this stack: #1201 #1202
//! #1201 "worker-0": S (sleeping), cpu 0.000 s user + 0.000 s system, futex(0x7f…, FUTEX_WAIT_BITSET_PRIVATE) (syscall 202) in futex_wait_queue
//! #1202 "worker-1": …
//!
//!    0: syscall [libc.so.6+0x11ba5d, 0x7f3c8e11ba5d]
//!    1: std::sys::pal::unix::futex::futex_wait [app+0x4a2b1, 0x55d04a2b1]
//!              at /rustc/…/library/std/src/sys/pal/unix/futex.rs:72:21
//! ```
//!
//! Frames read like a Rust panic backtrace: one numbered line per function (inlined functions
//! included), `at file:line:column` below when debug info has it, and always the module and the
//! offset in it, for `addr2line -e <module> <offset>`, then the absolute address.
//!
//! Every value of the JSON view appears in the text (the summary lines use the JSON's keys), and
//! every header line is exactly 72 columns (long thread names are shortened with `…` there, and
//! shown whole on the thread line).

use std::fmt::Write as _;

use super::model::{FrameEntry, StackGroup, ThreadEntry, ThreadsSection};
use crate::report::TextWriter;

/// Width of the report.
const WIDTH: usize = 72;

pub(super) fn write_text(s: &ThreadsSection, out: &mut TextWriter) {
    // One `key = value` line per summary field, named as in the JSON.
    out.kv("thread_count", s.thread_count);
    out.kv("stacks_captured", s.stacks_captured);
    out.kv("capture_ms", s.capture_ms);
    if let Some(sig) = &s.capture_signal {
        out.kv("capture_signal", sig);
    }
    out.kv("stacks_supported", s.stacks_supported);
    if !s.stacks_supported {
        out.line("stacks of other threads are not supported on this platform");
    }
    for note in &s.notes {
        out.line(format!("note: {note}"));
    }
    out.blank();

    for group in &s.stacks {
        write_group(s, group, out);
    }
    for t in s.threads.iter().filter(|t| t.stack.is_none()) {
        out.thread_header(&format!(" {} ", thread_title(t)));
        out.line(thread_line(s, t));
        out.line(format!(
            "no stack: {}",
            t.stack_missing.as_deref().unwrap_or("unknown")
        ));
        out.blank();
    }
    if !s.futex_waiters.is_empty() {
        out.thread_header(" Threads waiting on the same futex ");
        for w in &s.futex_waiters {
            let tids: Vec<String> = w.tids.iter().map(|t| format!("#{t}")).collect();
            out.line(format!(
                "futex {}: {} ({} threads: the same lock or condition variable)",
                w.address,
                tids.join(" "),
                w.tids.len()
            ));
        }
        out.blank();
    }
}

/// Room for a title inside a thread header (60 columns, one space each side).
const TITLE_ROOM: usize = WIDTH - 12 - 2;

/// `name`, shortened with `…` so that `fixed` more characters still fit a header.
fn fit_name(name: &str, fixed: usize) -> String {
    let room = TITLE_ROOM.saturating_sub(fixed).max(4);
    if name.chars().count() <= room {
        name.to_owned()
    } else {
        let mut short: String = name.chars().take(room - 1).collect();
        short.push('…');
        short
    }
}

fn thread_title(t: &ThreadEntry) -> String {
    let state = match (&t.state, &t.state_name) {
        (Some(state), Some(name)) => format!(" ({state} {name})"),
        _ => String::new(),
    };
    let head = format!("Thread #{} \"", t.tid);
    let name = fit_name(&t.name, head.chars().count() + 1 + state.chars().count());
    format!("{head}{name}\"{state}")
}

/// One line about a thread: name, state, CPU, what it waits in.
fn thread_line(s: &ThreadsSection, t: &ThreadEntry) -> String {
    let mut line = format!("#{} \"{}\"", t.tid, t.name);
    if let Some(comm) = t.comm.as_deref().filter(|c| !t.name.contains(c)) {
        let _ = write!(line, " (comm \"{comm}\")");
    }
    if let (Some(state), Some(name)) = (&t.state, &t.state_name) {
        let _ = write!(line, ": {state} ({name})");
    }
    if let (Some(u), Some(sys)) = (t.cpu_user_s, t.cpu_system_s) {
        let _ = write!(line, ", cpu {u:.3} s user + {sys:.3} s system");
    }
    if let Some(sc) = &t.syscall {
        let _ = write!(line, ", {} (syscall {})", sc.text, sc.nr);
        if let Some(addr) = &sc.futex
            && s.futex_waiters.iter().any(|w| &w.address == addr)
        {
            line.push_str(" (shared futex)");
        }
    }
    if let Some(w) = &t.wchan {
        let _ = write!(line, " in {w}");
    }
    if t.reporting_thread {
        line.push_str(", the reporting thread");
    }
    line
}

fn write_group(s: &ThreadsSection, g: &StackGroup, out: &mut TextWriter) {
    let members: Vec<&ThreadEntry> = g
        .tids
        .iter()
        .filter_map(|tid| s.threads.iter().find(|t| t.tid == *tid))
        .collect();
    let Some(first) = members.first() else {
        return;
    };
    if members.len() == 1 {
        out.thread_header(&format!(" {} ", thread_title(first)));
    } else {
        let head = format!("Thread #{} \"", first.tid);
        let tail = format!("\" and {} more with this stack", members.len() - 1);
        let name = fit_name(&first.name, head.chars().count() + tail.chars().count());
        out.thread_header(&format!(" {head}{name}{tail} "));
        let tids: Vec<String> = g.tids.iter().map(|t| format!("#{t}")).collect();
        for line in wrap(
            &format!("{} threads with this stack:", members.len()),
            &tids,
        ) {
            out.line(line);
        }
    }
    for t in &members {
        out.line(thread_line(s, t));
    }
    out.blank();
    write_frames(&g.frames, out);
    if let Some(why) = &g.truncated {
        out.line(format!("      ({why})"));
    }
    out.blank();
}

fn write_frames(frames: &[FrameEntry], out: &mut TextWriter) {
    if frames.is_empty() {
        out.line("      (no frames)");
    }
    for (i, f) in frames.iter().enumerate() {
        let location = match (&f.module, &f.offset) {
            (Some(m), Some(o)) => format!("{m}+{o}, {}", f.address),
            _ => f.address.clone(),
        };
        out.line(format!(
            "{i:>4}: {} [{location}]",
            f.function.as_deref().unwrap_or("<unknown>")
        ));
        if let Some(file) = &f.file {
            let mut at = format!("             at {file}");
            if let Some(line) = f.line {
                let _ = write!(at, ":{line}");
                if let Some(col) = f.column {
                    let _ = write!(at, ":{col}");
                }
            }
            out.line(at);
        }
    }
}

/// `head` followed by `items`, wrapped at the report width with a 4-space continuation indent.
fn wrap(head: &str, items: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = head.to_owned();
    for item in items {
        if cur.len() + 1 + item.len() > WIDTH && !cur.trim().is_empty() {
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
    fn wraps_tid_lists_at_72_columns() {
        let tids: Vec<String> = (1000..1040).map(|t| format!("#{t}")).collect();
        let lines = wrap("40 threads with this stack:", &tids);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| l.len() <= WIDTH));
        assert!(lines[1].starts_with("    #"));
    }
}
