//! The `Threads` section: every OS thread of the process from `/proc/self/task`, and the stack
//! of the thread producing the report.
//!
//! The stacks of the other threads are taken by the capture machinery (`crate::capture`);
//! until it is wired in, the section says in one line that they are not captured.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::error::SectionError;
use crate::procfs;
use crate::report::{ReportContext, SectionBody, TextWriter};

/// One OS thread as `/proc` describes it.
#[derive(Debug, Clone)]
struct ThreadInfo {
    tid: i32,
    name: String,
    state: String,
    cpu_user: f64,
    cpu_system: f64,
}

/// One frame of the reporting thread's stack.
#[derive(Debug, Clone)]
struct Frame {
    function: String,
    location: Option<String>,
    address: usize,
}

/// What the `Threads` section shows.
#[derive(Debug)]
pub(crate) struct ThreadsSection {
    reporter_tid: i32,
    threads: Vec<ThreadInfo>,
    reporter_stack: Vec<Frame>,
}

const OTHERS_NOT_CAPTURED: &str = "stacks of the other threads are not captured yet";

pub(crate) fn generate(ctx: &ReportContext<'_>) -> Result<ThreadsSection, SectionError> {
    let reporter_tid = crate::sys::current_tid();
    let ticks = crate::sys::clock_ticks_per_second() as f64;
    let entries = fs::read_dir("/proc/self/task")
        .map_err(|e| SectionError::Unsupported(format!("cannot list /proc/self/task: {e}")))?;
    let mut threads: Vec<ThreadInfo> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|tid| {
            // A thread may exit between the listing and the read: skip it.
            let stat = procfs::read_stat(
                &Path::new("/proc/self/task")
                    .join(tid.to_string())
                    .join("stat"),
            )
            .ok()?;
            Some(ThreadInfo {
                tid,
                name: stat.comm,
                state: stat.state.to_string(),
                cpu_user: stat.utime as f64 / ticks,
                cpu_system: stat.stime as f64 / ticks,
            })
        })
        .collect();
    threads.sort_by_key(|t| t.tid);
    let mut reporter_stack = Vec::new();
    backtrace::trace(|frame| {
        let address = frame.ip() as usize;
        let mut function = None;
        let mut location = None;
        backtrace::resolve_frame(frame, |symbol| {
            if function.is_none() {
                function = symbol.name().map(|n| format!("{n:#}"));
                location = match (symbol.filename(), symbol.lineno()) {
                    (Some(file), Some(line)) => Some(format!("{}:{line}", file.display())),
                    _ => None,
                };
            }
        });
        reporter_stack.push(Frame {
            function: function.unwrap_or_else(|| "<unknown>".to_owned()),
            location,
            address,
        });
        reporter_stack.len() < ctx.settings.threads.max_frames
    });
    Ok(ThreadsSection {
        reporter_tid,
        threads,
        reporter_stack,
    })
}

impl SectionBody for ThreadsSection {
    fn write_text(&self, out: &mut TextWriter) {
        out.line(OTHERS_NOT_CAPTURED);
        out.blank();
        for t in &self.threads {
            out.thread_header(&format!(" Thread #{} {} ({}) ", t.tid, t.name, t.state));
            out.kv("cpu_user", format_args!("{:.2}s", t.cpu_user));
            out.kv("cpu_system", format_args!("{:.2}s", t.cpu_system));
            if t.tid == self.reporter_tid {
                for (i, f) in self.reporter_stack.iter().enumerate() {
                    out.line(format_args!("{i:>4}: {} [{:#x}]", f.function, f.address));
                    if let Some(loc) = &f.location {
                        out.line(format_args!("          at {loc}"));
                    }
                }
            }
            out.blank();
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "note": OTHERS_NOT_CAPTURED,
            "threads": self.threads.iter().map(|t| {
                let mut v = json!({
                    "tid": t.tid, "name": t.name, "state": t.state,
                    "cpu_user": format!("{:.2}s", t.cpu_user),
                    "cpu_system": format!("{:.2}s", t.cpu_system),
                });
                if t.tid == self.reporter_tid {
                    v["frames"] = self.reporter_stack.iter().map(|f| json!({
                        "function": f.function, "location": f.location,
                        "address": format!("{:#x}", f.address),
                    })).collect();
                }
                v
            }).collect::<Vec<_>>(),
        })
    }
}
