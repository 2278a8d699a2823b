//! The data of the `Threads` section, built from a capture: threads, stack groups, futex waiters.
//! The JSON view is this model serialized; the text view renders it (see `render`).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::capture::{Frame, ProcessCapture};
pub(crate) use crate::report::stack::FrameEntry;
use crate::report::stack::{RawSymbol, StackStyle, StyleEntry};

/// The `Threads` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ThreadsSection {
    /// Whether stacks of other threads can be captured on this platform.
    pub(crate) stacks_supported: bool,
    /// The capture signal, e.g. `SIGRTMIN+5 (39)`.
    pub(crate) capture_signal: Option<String>,
    /// Number of threads.
    pub(crate) thread_count: usize,
    /// Threads whose stack was captured.
    pub(crate) stacks_captured: usize,
    /// How long the capture took, in milliseconds.
    pub(crate) capture_ms: f64,
    /// Problems worth telling the reader.
    pub(crate) notes: Vec<String>,
    /// Every thread, in TID order.
    pub(crate) threads: Vec<ThreadEntry>,
    /// Distinct stacks, the most common first.
    pub(crate) stacks: Vec<StackGroup>,
    /// Futex addresses with more than one waiter.
    pub(crate) futex_waiters: Vec<FutexWaiters>,
    /// Whether the text view folds runs of runtime, framework and std frames
    /// (`threads.fold`).
    #[serde(default = "folded")]
    pub(crate) folded: bool,
    /// The modules mapped (executable, shared libraries, vDSO) with their build-ids: what
    /// names the frames of a stripped binary offline (`gmr symbolize`).
    #[serde(default)]
    pub(crate) modules: Vec<ModuleEntry>,
    /// How the process named and classified its frames (`gmr symbolize` names frames the
    /// same way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) style: Option<StyleEntry>,
    /// What did not move since the last report (every report after the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) since: Option<crate::sections::since::model::ThreadsSince>,
}

/// A module mapped in the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ModuleEntry {
    /// File name, as frames name their `module`.
    pub(crate) name: String,
    /// Full path in the process (`/proc/self/maps`).
    pub(crate) path: String,
    /// The GNU build-id, hex.
    #[serde(default)]
    pub(crate) build_id: Option<String>,
}

fn folded() -> bool {
    true
}

/// One thread.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ThreadEntry {
    /// Kernel thread id.
    pub(crate) tid: i32,
    /// Full registered name, else the kernel's `comm`.
    pub(crate) name: String,
    /// The kernel's 15-byte `comm`, when known.
    pub(crate) comm: Option<String>,
    /// One-letter state (`R`, `S`, `D`, …).
    pub(crate) state: Option<String>,
    /// The state in words.
    pub(crate) state_name: Option<String>,
    /// User CPU time in seconds.
    pub(crate) cpu_user_s: Option<f64>,
    /// System CPU time in seconds.
    pub(crate) cpu_system_s: Option<f64>,
    /// Kernel wait channel of a blocked thread.
    pub(crate) wchan: Option<String>,
    /// The system call a blocked thread is in.
    pub(crate) syscall: Option<SyscallEntry>,
    /// Whether this thread made the report.
    pub(crate) reporting_thread: bool,
    /// Index into `stacks` of this thread's stack.
    pub(crate) stack: Option<usize>,
    /// Why the thread has no stack.
    pub(crate) stack_missing: Option<String>,
    /// Its start time after boot in clock ticks: with the TID, names one thread across
    /// reports (a TID can be reused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) start_ticks: Option<u64>,
    /// Its CPU time in nanoseconds (`schedstat`) when the capture began, finer than
    /// `cpu_user_s` + `cpu_system_s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cpu_ns: Option<u64>,
    /// How many times it had been scheduled onto a CPU (`schedstat`) when the capture began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sched_runs: Option<u64>,
    /// `cpu_ns` and `sched_runs` once the capture was over: the next report compares its
    /// start with these, so the capture's own signal handler does not count as the thread
    /// moving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cpu_ns_after_capture: Option<u64>,
    /// See `cpu_ns_after_capture`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) sched_runs_after_capture: Option<u64>,
    /// The in-flight request this thread is polling, when one is:
    /// `request 1 GET /block, 4.6 s in this poll (STUCK)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) polling: Option<String>,
    /// The CPU it used while the report captured the stacks: a thread spinning shows
    /// milliseconds, a blocked one 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cpu_during_capture_ms: Option<f64>,
}

/// A blocked thread's system call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SyscallEntry {
    /// Number.
    pub(crate) nr: i64,
    /// Name, for the common ones.
    pub(crate) name: Option<String>,
    /// Short rendering, e.g. `futex(0x7f…, FUTEX_WAIT_PRIVATE)`.
    pub(crate) text: String,
    /// The futex address, for a futex wait.
    pub(crate) futex: Option<String>,
}

/// Threads sharing one stack.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StackGroup {
    /// Position in `stacks`.
    pub(crate) id: usize,
    /// The threads with this stack.
    pub(crate) tids: Vec<i32>,
    /// Frames, innermost first; inlined functions are frames of their own, at the same address.
    pub(crate) frames: Vec<FrameEntry>,
    /// Why the stack may be incomplete.
    pub(crate) truncated: Option<String>,
}

/// Threads waiting on one futex.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct FutexWaiters {
    /// The futex address, hex.
    pub(crate) address: String,
    /// The waiting threads.
    pub(crate) tids: Vec<i32>,
}

/// The frames of a stack as the report shows them: one entry per function, inlined ones first.
#[cfg_attr(not(feature = "tokio"), allow(unreachable_pub))]
pub(crate) fn frame_entries(frames: &[Frame], style: &StackStyle) -> Vec<FrameEntry> {
    let mut out = Vec::with_capacity(frames.len());
    for f in frames {
        let raw = RawSymbol {
            module: f.module.as_deref(),
            offset: f.offset,
            address: f.address,
            system: f.system,
            ..RawSymbol::default()
        };
        if f.symbols.is_empty() {
            out.push(style.frame(&raw));
            continue;
        }
        let last = f.symbols.len() - 1;
        for (i, s) in f.symbols.iter().enumerate() {
            out.push(style.frame(&RawSymbol {
                function: s.function.as_deref(),
                file: s.file.as_deref(),
                line: s.line,
                column: s.column,
                inlined: i < last,
                ..raw.clone()
            }));
        }
    }
    out
}

impl ThreadsSection {
    /// Builds the section from a capture: groups identical stacks and futex waiters, and
    /// names frames in `style`.
    pub(crate) fn from_capture(capture: ProcessCapture, style: &StackStyle) -> Self {
        let thread_count = capture.threads.len();
        let mut stacks: Vec<StackGroup> = Vec::new();
        // Key: the frame addresses plus the truncation note.
        let mut by_key: HashMap<(Vec<u64>, Option<String>), usize> = HashMap::new();
        let mut threads = Vec::with_capacity(thread_count);
        #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
        let mut futexes: BTreeMap<u64, Vec<i32>> = BTreeMap::new();
        let mut stacks_captured = 0;
        for t in capture.threads {
            let (stack, stack_missing) = match &t.stack {
                Ok(stack) => {
                    stacks_captured += 1;
                    let truncated = stack.truncation.as_ref().map(ToString::to_string);
                    let key = (
                        stack.frames.iter().map(|f| f.address).collect::<Vec<_>>(),
                        truncated.clone(),
                    );
                    let id = *by_key.entry(key).or_insert_with(|| {
                        stacks.push(StackGroup {
                            id: stacks.len(),
                            tids: Vec::new(),
                            frames: frame_entries(&stack.frames, style),
                            truncated,
                        });
                        stacks.len() - 1
                    });
                    if let Some(g) = stacks.get_mut(id) {
                        g.tids.push(t.tid);
                    }
                    (Some(id), None)
                }
                Err(why) => (None, Some(why.to_string())),
            };
            #[cfg(target_os = "linux")]
            let entry = {
                let p = t.proc.as_ref();
                let syscall = p.and_then(|p| p.syscall.as_ref()).map(|s| {
                    let futex = s.futex_wait().map(|(addr, _)| addr);
                    if let Some(addr) = futex {
                        futexes.entry(addr).or_default().push(t.tid);
                    }
                    SyscallEntry {
                        nr: s.nr,
                        name: s.name().map(str::to_owned),
                        text: s.describe(),
                        futex: futex.map(|a| format!("{a:#x}")),
                    }
                });
                ThreadEntry {
                    tid: t.tid,
                    name: t.name,
                    comm: p.map(|p| p.comm.clone()),
                    state: p.map(|p| p.state.to_string()),
                    state_name: p.map(|p| p.state_name().to_owned()),
                    cpu_user_s: p.map(|p| p.user.as_secs_f64()),
                    cpu_system_s: p.map(|p| p.system.as_secs_f64()),
                    wchan: p.and_then(|p| p.wchan.clone()),
                    syscall,
                    reporting_thread: t.reporting,
                    stack,
                    stack_missing,
                    start_ticks: p.map(|p| p.start_ticks),
                    cpu_ns: p.and_then(|p| p.run_ns),
                    sched_runs: p.and_then(|p| p.runs),
                    polling: None,
                    cpu_ns_after_capture: p.and_then(|p| p.sched_after).map(|(ns, _)| ns),
                    sched_runs_after_capture: p.and_then(|p| p.sched_after).map(|(_, r)| r),
                    cpu_during_capture_ms: p.and_then(|p| {
                        let (after, _) = p.sched_after?;
                        let during = after.saturating_sub(p.run_ns?);
                        Some((during as f64 / 1e3).round() / 1e3)
                    }),
                }
            };
            #[cfg(not(target_os = "linux"))]
            let entry = ThreadEntry {
                tid: t.tid,
                name: t.name,
                comm: None,
                state: None,
                state_name: None,
                cpu_user_s: None,
                cpu_system_s: None,
                wchan: None,
                syscall: None,
                reporting_thread: t.reporting,
                stack,
                stack_missing,
                start_ticks: None,
                cpu_ns: None,
                sched_runs: None,
                polling: None,
                cpu_ns_after_capture: None,
                sched_runs_after_capture: None,
                cpu_during_capture_ms: None,
            };
            threads.push(entry);
        }
        // Most common stacks first; ties by lowest TID. Renumber and re-point the threads.
        let mut order: Vec<usize> = (0..stacks.len()).collect();
        order.sort_by_key(|&i| {
            let g = &stacks[i];
            (
                std::cmp::Reverse(g.tids.len()),
                g.tids.first().copied().unwrap_or(i32::MAX),
            )
        });
        let mut renumber = vec![0usize; stacks.len()];
        for (new, &old) in order.iter().enumerate() {
            renumber[old] = new;
        }
        let mut old_stacks: Vec<Option<StackGroup>> = stacks.into_iter().map(Some).collect();
        let stacks: Vec<StackGroup> = order
            .iter()
            .enumerate()
            .filter_map(|(new, &old)| {
                let mut g = old_stacks.get_mut(old)?.take()?;
                g.id = new;
                Some(g)
            })
            .collect();
        for t in &mut threads {
            if let Some(s) = t.stack.as_mut() {
                *s = renumber.get(*s).copied().unwrap_or(*s);
            }
        }
        let futex_waiters = futexes
            .into_iter()
            .filter(|(_, tids)| tids.len() > 1)
            .map(|(addr, tids)| FutexWaiters {
                address: format!("{addr:#x}"),
                tids,
            })
            .collect();
        ThreadsSection {
            stacks_supported: capture.stacks_supported,
            capture_signal: capture.signal,
            thread_count,
            stacks_captured,
            capture_ms: (capture.elapsed.as_secs_f64() * 1e6).round() / 1e3,
            notes: capture.notes,
            threads,
            stacks,
            futex_waiters,
            folded: style.fold.enabled,
            modules: capture
                .modules
                .iter()
                .map(|m| ModuleEntry {
                    name: m.name.to_string(),
                    path: m.path.to_string(),
                    build_id: m.build_id.as_deref().map(str::to_owned),
                })
                .collect(),
            style: Some(style.entry()),
            since: None,
        }
    }
}

impl crate::report::SectionBody for ThreadsSection {
    fn write_text(&self, out: &mut crate::report::TextWriter) {
        super::render::write_text(self, out);
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|e| {
            serde_json::json!({ "error": format!("cannot serialize the Threads section: {e}") })
        })
    }

    #[cfg(feature = "html")]
    fn write_html(&self, out: &mut crate::report::html::Html) {
        super::html::write(self, out);
    }

    #[cfg(feature = "html")]
    fn flame_stacks(&self) -> Vec<crate::report::html::FlameStack> {
        super::html::flame_stacks(self)
    }
}
