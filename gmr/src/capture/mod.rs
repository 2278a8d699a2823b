//! Capture of the stack of every OS thread of the process (`docs/architecture.md`, "The
//! capture").
//!
//! # How a capture runs
//!
//! Everything below runs on the reporting thread, one capture at a time (a global lock):
//!
//! 1. **Enumerate** `/proc/self/task`; for each thread read `stat` (name, state, CPU time),
//!    `status` (signal masks) and, for a blocked thread, `wchan` and `syscall`. This happens
//!    before any signal is sent, which would briefly wake a blocked thread out of its call.
//! 2. **Check the capture signal** (`SIGRTMIN() + threads.capture_signal`) is still ours:
//!    install it the first time, reinstall it if someone reset it to the default, and refuse to
//!    signal anybody if another handler took it (reported in the section).
//! 3. **Skip** the threads that cannot answer: those blocking the signal (`SigBlk`), in
//!    uninterruptible sleep (`D`: the signal would wait for the sleep to end), stopped or traced
//!    (`T`, `t`), zombies. They are listed from `/proc` with the reason.
//! 4. **Signal in batches** of at most [`handler::SLOT_COUNT`] threads, each with
//!    `rt_tgsigqueueinfo` to its exact TID, carrying a slot index and a fresh generation. The
//!    handler (see [`handler`]) copies registers and a window of stack into its slot. The
//!    reporter sleeps on a futex until the batch has answered, the per-thread timeout
//!    (`threads.thread_timeout`) or the global deadline (`threads.deadline`) has passed; a thread
//!    that exits meanwhile is noticed within ~10 ms and reported as such.
//! 5. **Unwind** each answer from its copy with framehop (DWARF CFI from `.eh_frame`, frame
//!    pointers otherwise; see [`unwind`]) before the slot is reused.
//! 6. **Own stack**: the reporting thread is not signalled; it unwinds itself in place with
//!    `backtrace::trace` (ordinary code, not a signal handler).
//! 7. **Symbolize** each unique address once, with a cache that outlives the report
//!    ([`symbolize`]); every frame also carries `module+0xoffset`, from the module table built
//!    from `/proc/self/maps` ([`modules`]), so a stripped binary still gives a report that
//!    `addr2line -e <module> <offset>` can finish offline.
//!
//! # What can go wrong, and what happens then
//!
//! * A thread never answers (it blocked the signal after we read its mask, or it is descheduled
//!   for longer than the timeout): its entry says so; the signal stays pending and, when it is
//!   finally delivered, the handler sees a stale generation and writes nothing.
//! * A handler is still copying when its request times out: the slot stays claimed and is not
//!   reused until the copy ends, so no two threads ever write one slot.
//! * A thread exits, or a library is unloaded, during the capture: sends fail with `ESRCH`,
//!   exited threads are reported as such, and unwind tables are owned copies.
//! * Someone else owns the capture signal: nobody is signalled, the section explains, and the
//!   other handler is left alone.
//!
//! # Memory
//!
//! The slot pool (32 × 128 KiB, allocated once, pages touched on use) and the module and symbol
//! caches: independent of the number of threads except for the per-thread results themselves.
// Elsewhere the capture machinery is compiled but unused: only the `/proc`-free fallback runs.
#![cfg_attr(
    not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )),
    allow(dead_code)
)]

pub(crate) mod names;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub(crate) mod symbolize;
#[cfg(target_os = "linux")]
pub(crate) mod threads_proc;

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod handler;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod modules;
pub(crate) mod sys;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod unwind;

use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a capture may do.
#[derive(Debug, Clone)]
pub(crate) struct CaptureOptions {
    /// The capture signal is `SIGRTMIN() + signal_offset`.
    pub(crate) signal_offset: i32,
    /// How long one thread may take to answer.
    pub(crate) thread_timeout: Duration,
    /// How long the whole capture may take.
    pub(crate) deadline: Duration,
    /// Frames kept per stack.
    pub(crate) max_frames: usize,
    /// Bytes of debug information and symbol tables symbolization may hold
    /// (`threads.symbol_budget`).
    pub(crate) symbol_budget: u64,
    /// Where separate debug files are looked for (`threads.debug_dirs`).
    pub(crate) debug_dirs: Vec<std::path::PathBuf>,
}

/// An address in a stack, before symbolization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RawFrame {
    /// The address to look up: the instruction pointer for the innermost frame, the return
    /// address minus one (inside the call instruction) for the callers.
    pub(crate) lookup: u64,
}

/// Why a stack may be incomplete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Truncation {
    /// More frames than the configured maximum.
    MaxFrames(usize),
    /// The unwinder gave up at the first frames (bad unwind info, or code with neither unwind
    /// tables nor frame pointers).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Unwinder(String),
    /// The stack is deeper than the copied window (bytes): the outer frames are not shown.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    Window(usize),
    /// The stack window could not be read (`errno`); only the interrupted frame is shown.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    NoStackCopy(i32),
}

impl std::fmt::Display for Truncation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Truncation::MaxFrames(n) => write!(f, "truncated at {n} frames (threads.max_frames)"),
            Truncation::Unwinder(e) => write!(f, "unwinding stopped early: {e}"),
            Truncation::Window(bytes) => write!(
                f,
                "truncated at the {} KiB stack window: outer frames not shown",
                bytes / 1024
            ),
            Truncation::NoStackCopy(errno) => write!(
                f,
                "the stack could not be copied ({}); only the interrupted frame is shown",
                std::io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

/// Why a thread has no stack in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NoStack {
    /// The thread blocks the capture signal.
    BlocksSignal,
    /// Uninterruptible sleep (`D`).
    Uninterruptible,
    /// Stopped or traced (`T`, `t`).
    Stopped,
    /// Zombie or dead.
    Zombie,
    /// No answer within the per-thread timeout.
    Timeout(Duration),
    /// The thread exited during the capture.
    Exited,
    /// The global deadline passed before its turn.
    Deadline(Duration),
    /// Every slot is still held by a late handler.
    NoSlot,
    /// The capture signal cannot be used (why).
    SignalUnavailable(String),
    /// Sending the signal failed.
    SendFailed(String),
    /// Stacks of other threads are not supported on this platform.
    #[cfg_attr(
        any(
            not(target_os = "linux"),
            target_arch = "x86_64",
            target_arch = "aarch64"
        ),
        allow(dead_code)
    )]
    Unsupported,
}

impl std::fmt::Display for NoStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoStack::BlocksSignal => f.write_str("the thread blocks the capture signal"),
            NoStack::Uninterruptible => {
                f.write_str("uninterruptible sleep (D): not signalled, it could not answer")
            }
            NoStack::Stopped => f.write_str("stopped or traced: not signalled"),
            NoStack::Zombie => f.write_str("zombie: the thread has ended"),
            NoStack::Timeout(t) => {
                write!(f, "no answer within {} ms (threads.timeout)", t.as_millis())
            }
            NoStack::Exited => f.write_str("exited during the capture"),
            NoStack::Deadline(t) => write!(
                f,
                "not captured: the capture deadline of {} ms passed (threads.deadline)",
                t.as_millis()
            ),
            NoStack::NoSlot => f.write_str("not captured: earlier handlers still hold every slot"),
            NoStack::SignalUnavailable(why) => write!(f, "capture signal unavailable: {why}"),
            NoStack::SendFailed(why) => write!(f, "the capture signal could not be sent: {why}"),
            NoStack::Unsupported => {
                f.write_str("stacks of other threads are not supported on this platform")
            }
        }
    }
}

/// One function at an address (several when calls were inlined).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Symbol {
    /// Demangled function name without the hash.
    pub(crate) function: Option<String>,
    /// Source file.
    pub(crate) file: Option<String>,
    /// Line.
    pub(crate) line: Option<u32>,
    /// Column.
    pub(crate) column: Option<u32>,
}

/// One symbolized frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The looked-up address (see [`RawFrame`]).
    pub(crate) address: u64,
    /// The module's file name, if the address is in a known module.
    pub(crate) module: Option<Arc<str>>,
    /// Offset in the module's file address space (what `addr2line -e module` takes).
    pub(crate) offset: Option<u64>,
    /// Whether the module is a system library (libc, the dynamic loader, …).
    pub(crate) system: bool,
    /// Functions at the address, innermost (inlined) first; empty when unknown.
    pub(crate) symbols: Arc<[Symbol]>,
}

/// A thread's stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stack {
    /// Frames, innermost first.
    pub(crate) frames: Vec<Frame>,
    /// Why it may be incomplete.
    pub(crate) truncation: Option<Truncation>,
}

/// One thread.
#[derive(Debug, Clone)]
pub(crate) struct CapturedThread {
    /// Kernel thread id (0 where the platform has none).
    pub(crate) tid: i32,
    /// Full registered name, else `comm`.
    pub(crate) name: String,
    /// What `/proc` says (Linux).
    #[cfg(target_os = "linux")]
    pub(crate) proc: Option<threads_proc::ProcThread>,
    /// Whether this is the thread that made the report.
    pub(crate) reporting: bool,
    /// The stack, or why there is none.
    pub(crate) stack: Result<Stack, NoStack>,
}

/// The result of a capture.
#[derive(Debug, Clone)]
pub(crate) struct ProcessCapture {
    /// Threads in TID order.
    pub(crate) threads: Vec<CapturedThread>,
    /// The capture signal as `SIGRTMIN+n (number)`.
    pub(crate) signal: Option<String>,
    /// Whether stacks of other threads can be captured here.
    pub(crate) stacks_supported: bool,
    /// Problems worth telling the reader (signal taken, maps unreadable, …).
    pub(crate) notes: Vec<String>,
    /// How long the capture took.
    pub(crate) elapsed: Duration,
}

/// Errors that stop a capture as a whole.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CaptureError {
    /// `/proc/self/task` could not be listed.
    #[error("cannot list the threads in /proc/self/task: {0}")]
    ListThreads(#[source] std::io::Error),
}

/// The reporting thread's own stack, unwound in place.
fn own_stack(max_frames: usize) -> Vec<RawFrame> {
    let mut raw = Vec::new();
    backtrace::trace(|frame| {
        let ip = frame.ip() as usize as u64;
        if ip == 0 {
            return false;
        }
        raw.push(RawFrame {
            lookup: ip.saturating_sub(1),
        });
        raw.len() < max_frames.saturating_add(16)
    });
    raw
}

/// Drops gmr's own machinery from the top of the reporting thread's stack, so it starts at
/// gmr's entry point: the reporter's loop (the outermost `gmr::reporter::…` frame), or the
/// outermost gmr frame when the report was asked for on an application thread
/// (`Gmr::report`).
fn trim_own_frames(frames: &mut Vec<Frame>) {
    let in_gmr = |f: &Frame, prefix: &str| {
        f.symbols
            .iter()
            .filter_map(|s| s.function.as_deref())
            .any(|name| name.starts_with(prefix) || name.contains(&format!("<{prefix}")))
    };
    let entry = frames
        .iter()
        .position(|f| in_gmr(f, "gmr::reporter::run"))
        .or_else(|| frames.iter().rposition(|f| in_gmr(f, "gmr::reporter::")));
    let skip = match entry {
        Some(entry) => entry,
        None => frames
            .iter()
            .take_while(|f| in_gmr(f, "gmr::") || in_gmr(f, "backtrace::"))
            .count()
            .saturating_sub(1),
    };
    if skip < frames.len() {
        frames.drain(..skip);
    }
}

/// The number of the capture signal `SIGRTMIN() + offset`, where this platform captures
/// stacks.
pub(crate) fn capture_signal_number(offset: i32) -> Option<i32> {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        let sig = sys::sigrtmin().saturating_add(offset);
        (offset >= 0 && sig <= sys::sigrtmax()).then_some(sig)
    }
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        let _ = offset;
        None
    }
}

/// Installs the capture signal's handler for `SIGRTMIN() + offset` now, before any report:
/// the signal's default action kills the process, so it must be handled from the moment the
/// hook is installed (a stray `kill -RTMIN+5` before the first report would otherwise end the
/// server). Leaves alone a signal that somebody else handles or ignores. Returns the signal.
///
/// # Errors
///
/// Why the signal cannot be used: out of range, taken by another handler, set to `SIG_IGN`,
/// or stacks of other threads are not captured on this platform.
pub(crate) fn install_capture_handler(offset: i32) -> Result<i32, String> {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        linux::ensure_handler(offset)
    }
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        let _ = offset;
        Err("stacks of other threads are not captured on this platform".to_owned())
    }
}

/// Captures every thread of the process. One capture at a time: a concurrent caller waits.
pub(crate) fn capture_threads(opts: &CaptureOptions) -> Result<ProcessCapture, CaptureError> {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        linux::capture(opts)
    }
    #[cfg(all(
        target_os = "linux",
        not(any(target_arch = "x86_64", target_arch = "aarch64"))
    ))]
    {
        linux_proc_only::capture(opts)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(own_thread_only(opts))
    }
}

/// Where an address of this process is: its module, the offset in it, whether the module is a
/// system library. What frames named elsewhere (tokio's task dumps) need to show
/// `module+0xoffset` like every thread frame.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn locate_addresses(addresses: &[u64]) -> Vec<Frame> {
    #[cfg(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ))]
    {
        linux::locate(addresses)
    }
    #[cfg(not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )))]
    {
        addresses
            .iter()
            .map(|&address| Frame {
                address,
                module: None,
                offset: None,
                system: false,
                symbols: Arc::from([]),
            })
            .collect()
    }
}

/// Names `raw` in this process with `backtrace::resolve`, without a module table: the
/// reporting thread's own stack on platforms where other threads are not captured.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn resolve_in_process(raw: &[RawFrame]) -> Vec<Frame> {
    raw.iter()
        .map(|r| {
            let mut symbols = Vec::new();
            // backtrace::resolve subtracts one from the address it is given (it expects return
            // addresses); `lookup` is already inside the instruction, so add it back.
            let probe = r.lookup.wrapping_add(1) as usize as *mut std::ffi::c_void;
            backtrace::resolve(probe, |s| {
                symbols.push(Symbol {
                    function: s.name().map(|n| format!("{n:#}")),
                    file: s.filename().map(|p| p.display().to_string()),
                    line: s.lineno(),
                    column: s.colno(),
                });
            });
            Frame {
                address: r.lookup,
                module: None,
                offset: None,
                system: false,
                symbols: symbols.into(),
            }
        })
        .collect()
}

#[cfg(not(target_os = "linux"))]
fn own_thread_only(opts: &CaptureOptions) -> ProcessCapture {
    let started = Instant::now();
    let mut frames = resolve_in_process(&own_stack(opts.max_frames));
    trim_own_frames(&mut frames);
    frames.truncate(opts.max_frames);
    ProcessCapture {
        threads: vec![CapturedThread {
            tid: sys::current_tid(),
            name: std::thread::current().name().unwrap_or("").to_owned(),
            reporting: true,
            stack: Ok(Stack {
                frames,
                truncation: None,
            }),
        }],
        signal: None,
        stacks_supported: false,
        notes: vec![
            "stacks of other threads are not supported on this platform; only the reporting \
             thread is shown"
                .to_owned(),
        ],
        elapsed: started.elapsed(),
    }
}

/// Linux without a supported architecture: threads from `/proc`, no stacks but our own.
#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "x86_64", target_arch = "aarch64"))
))]
mod linux_proc_only {
    use super::*;

    pub(super) fn capture(opts: &CaptureOptions) -> Result<ProcessCapture, CaptureError> {
        let started = Instant::now();
        let me = super::sys::current_tid();
        let ticks = super::sys::clock_ticks_per_second();
        let tids = threads_proc::list_tids().map_err(CaptureError::ListThreads)?;
        names::retain(&tids);
        let mut threads = Vec::new();
        for tid in tids {
            let Ok(p) = threads_proc::read_thread(tid, ticks) else {
                continue;
            };
            let stack = if tid == me {
                let mut frames = resolve_in_process(&own_stack(opts.max_frames));
                trim_own_frames(&mut frames);
                frames.truncate(opts.max_frames);
                Ok(Stack {
                    frames,
                    truncation: None,
                })
            } else {
                Err(NoStack::Unsupported)
            };
            threads.push(CapturedThread {
                tid,
                name: names::lookup(tid, p.start_ticks).unwrap_or_else(|| p.comm.clone()),
                proc: Some(p),
                reporting: tid == me,
                stack,
            });
        }
        Ok(ProcessCapture {
            threads,
            signal: None,
            stacks_supported: false,
            notes: vec!["stacks of other threads are not supported on this architecture".into()],
            elapsed: started.elapsed(),
        })
    }
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod linux {
    use std::collections::HashMap;
    use std::sync::atomic::Ordering;
    use std::sync::{Mutex, PoisonError};

    use super::handler::{self, ANSWERS, Poll, Slots};
    use super::modules::ModuleTable;
    use super::symbolize::{self, Symbolizer};
    use super::threads_proc::{self, ProcThread};
    use super::unwind::{self, NativeCache};
    use super::*;

    /// State that lives across reports: the slots, the module table, the caches.
    struct Reporter {
        slots: Slots,
        modules: ModuleTable,
        unwind_cache: NativeCache,
        symbolizer: Symbolizer,
    }

    static REPORTER: Mutex<Option<Reporter>> = Mutex::new(None);

    /// How often the reporter checks whether unanswered threads still exist.
    const LIVENESS_EVERY: Duration = Duration::from_millis(10);
    /// How long to wait for a handler that is mid-copy when its request times out.
    const BUSY_GRACE: Duration = Duration::from_millis(50);

    impl Reporter {
        fn new() -> Self {
            Reporter {
                slots: Slots::new(),
                modules: ModuleTable::new(),
                unwind_cache: NativeCache::new(),
                symbolizer: Symbolizer::default(),
            }
        }

        /// Makes sure the capture signal runs our handler. Returns the signal number.
        fn ensure_signal(&mut self, offset: i32) -> Result<i32, String> {
            ensure_handler(offset)
        }
    }

    /// The signals whose handler gmr installed, one bit per signal number.
    static INSTALLED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

    /// Makes sure `SIGRTMIN() + offset` runs our handler: installs it the first time, reinstalls
    /// it (with a warning) if someone reset it to the default, and leaves alone a signal that
    /// another handler took or that is ignored. Returns the signal number.
    pub(super) fn ensure_handler(offset: i32) -> Result<i32, String> {
        let (min, max) = (super::sys::sigrtmin(), super::sys::sigrtmax());
        let sig = min.saturating_add(offset);
        if offset < 0 || sig > max {
            return Err(format!(
                "threads.capture_signal = {offset}: SIGRTMIN+{offset} is outside SIGRTMIN..SIGRTMAX ({min}..{max})"
            ));
        }
        let bit = 1u64.checked_shl(sig as u32).unwrap_or(0);
        let ours: super::sys::SigactionFn = handler::capture_handler;
        // gmr's own threads leave this signal open, so their stacks are captured too.
        crate::threads::set_capture_signal(sig);
        match super::sys::disposition(sig, ours) {
            Ok(super::sys::Disposition::Ours) => Ok(sig),
            Ok(super::sys::Disposition::Default) => {
                if INSTALLED.load(Ordering::Relaxed) & bit != 0 {
                    tracing::warn!(
                        signal = sig,
                        "gmr's capture signal handler was reset to the default; reinstalling it"
                    );
                }
                super::sys::install(sig, ours).map_err(|e| {
                    format!("cannot install the handler of SIGRTMIN+{offset} ({sig}): {e}")
                })?;
                INSTALLED.fetch_or(bit, Ordering::Relaxed);
                tracing::debug!(signal = sig, "installed the thread capture signal handler");
                Ok(sig)
            }
            Ok(super::sys::Disposition::Ignore) => Err(format!(
                "SIGRTMIN+{offset} ({sig}) is set to SIG_IGN by someone else; gmr leaves it \
                 alone: set threads.capture_signal to a free real-time signal"
            )),
            Ok(super::sys::Disposition::Foreign(addr)) => Err(format!(
                "SIGRTMIN+{offset} ({sig}) is handled by another handler (at {addr:#x}); gmr \
                 leaves it alone: set threads.capture_signal to a free real-time signal"
            )),
            Err(e) => Err(format!("cannot query SIGRTMIN+{offset} ({sig}): {e}")),
        }
    }

    type Unwound = (Vec<RawFrame>, Option<Truncation>);

    /// [`super::locate_addresses`] with the module table of the captures.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(super) fn locate(addresses: &[u64]) -> Vec<Frame> {
        let mut guard = REPORTER.lock().unwrap_or_else(PoisonError::into_inner);
        let rep = guard.get_or_insert_with(Reporter::new);
        if let Ok(true) = rep.modules.refresh() {
            rep.symbolizer.retain_modules(rep.modules.modules());
        }
        addresses
            .iter()
            .map(|&address| match rep.modules.find(address) {
                Some(module) => Frame {
                    address,
                    module: Some(Arc::clone(&module.name)),
                    offset: Some(address.wrapping_sub(module.bias)),
                    system: symbolize::is_system_library(&module.path),
                    symbols: Arc::from([]),
                },
                None => Frame {
                    address,
                    module: None,
                    offset: None,
                    system: false,
                    symbols: Arc::from([]),
                },
            })
            .collect()
    }

    /// A request in flight.
    #[derive(Debug)]
    struct Request {
        tid: i32,
        index: usize,
        generation: u64,
        gone: bool,
    }

    pub(super) fn capture(opts: &CaptureOptions) -> Result<ProcessCapture, CaptureError> {
        let started = Instant::now();
        let deadline = started + opts.deadline;
        let me = super::sys::gettid();
        let pid = super::sys::getpid();
        let ticks = self::sys::clock_ticks_per_second();
        let mut notes = Vec::new();

        let tids = threads_proc::list_tids().map_err(CaptureError::ListThreads)?;
        names::retain(&tids);
        let procs: Vec<ProcThread> = tids
            .iter()
            .filter_map(|&tid| match threads_proc::read_thread(tid, ticks) {
                Ok(p) => Some(p),
                // Exited between the listing and the read: not a thread of the report.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    tracing::debug!(tid, error = %e, "cannot read thread from /proc");
                    None
                }
            })
            .collect();

        let mut guard = REPORTER.lock().unwrap_or_else(PoisonError::into_inner);
        let rep = guard.get_or_insert_with(Reporter::new);
        rep.slots.set_pid(pid);
        let signal = self::sys::ensure_mem_fd()
            .map_err(|e| format!("cannot open /proc/self/mem to copy stacks: {e}"))
            .and_then(|_| rep.ensure_signal(opts.signal_offset));
        if let Err(why) = &signal {
            tracing::warn!(reason = %why, "thread stacks not captured");
            notes.push(format!("thread stacks not captured: {why}"));
        }
        match rep.modules.refresh() {
            // Any change of the module table: names of modules no longer mapped are dropped.
            Ok(true) => rep.symbolizer.retain_modules(rep.modules.modules()),
            Ok(false) => {}
            Err(e) => notes.push(format!(
                "cannot read /proc/self/maps ({e}): frames are not attributed to modules"
            )),
        }

        let mut outcomes: HashMap<i32, Result<Unwound, NoStack>> = HashMap::new();
        let mut targets = Vec::new();
        for p in &procs {
            let outcome = if p.tid == me {
                continue;
            } else if matches!(p.state, 'Z' | 'X') {
                Err(NoStack::Zombie)
            } else if p.state == 'D' {
                Err(NoStack::Uninterruptible)
            } else if matches!(p.state, 'T' | 't') {
                Err(NoStack::Stopped)
            } else {
                match &signal {
                    Err(why) => Err(NoStack::SignalUnavailable(why.clone())),
                    Ok(sig) if p.blocks(*sig) => Err(NoStack::BlocksSignal),
                    Ok(_) => {
                        targets.push(p.tid);
                        continue;
                    }
                }
            };
            outcomes.insert(p.tid, outcome);
        }
        if let Ok(sig) = signal {
            capture_batches(rep, &targets, pid, sig, opts, deadline, &mut outcomes);
        }

        // Name every address once, our own stack included, on the symbolizer thread, until
        // the capture's deadline.
        let own = own_stack(opts.max_frames);
        let Reporter {
            modules,
            symbolizer,
            ..
        } = rep;
        let mut wanted = Vec::new();
        for raw in std::iter::once(&own).chain(outcomes.values().filter_map(|o| match o {
            Ok((raw, _)) => Some(raw),
            Err(_) => None,
        })) {
            for frame in raw {
                if let Some(module) = modules.find(frame.lookup) {
                    wanted.push((module, frame.lookup.wrapping_sub(module.bias)));
                }
            }
        }
        let limits = symbolize::Limits {
            budget: opts.symbol_budget,
            debug_dirs: opts.debug_dirs.clone(),
        };
        let resolved = symbolizer.resolve(&wanted, &limits, deadline);
        notes.extend(resolved.notes.iter().cloned());
        let named = |raw: &[RawFrame]| -> Vec<Frame> {
            raw.iter()
                .map(|r| match modules.find(r.lookup) {
                    Some(module) => {
                        let offset = r.lookup.wrapping_sub(module.bias);
                        Frame {
                            address: r.lookup,
                            module: Some(Arc::clone(&module.name)),
                            offset: Some(offset),
                            system: symbolize::is_system_library(&module.path),
                            symbols: resolved.get(module, offset),
                        }
                    }
                    None => Frame {
                        address: r.lookup,
                        module: None,
                        offset: None,
                        system: false,
                        symbols: Arc::from([]),
                    },
                })
                .collect()
        };
        let mut threads = Vec::with_capacity(procs.len());
        for p in procs {
            let tid = p.tid;
            let stack = if tid == me {
                let mut frames = named(&own);
                trim_own_frames(&mut frames);
                let truncation = (frames.len() > opts.max_frames)
                    .then_some(Truncation::MaxFrames(opts.max_frames));
                frames.truncate(opts.max_frames);
                Ok(Stack { frames, truncation })
            } else {
                match outcomes.remove(&tid) {
                    Some(Ok((raw, truncation))) => Ok(Stack {
                        frames: named(&raw),
                        truncation,
                    }),
                    Some(Err(why)) => Err(why),
                    None => Err(NoStack::Deadline(opts.deadline)),
                }
            };
            let name = names::lookup(tid, p.start_ticks)
                .or_else(|| {
                    (tid == me)
                        .then(|| std::thread::current().name().map(str::to_owned))
                        .flatten()
                })
                .unwrap_or_else(|| p.comm.clone());
            threads.push(CapturedThread {
                tid,
                name,
                proc: Some(p),
                reporting: tid == me,
                stack,
            });
        }
        drop(guard);
        let elapsed = started.elapsed();
        tracing::debug!(
            threads = threads.len(),
            elapsed_ms = elapsed.as_secs_f64() * 1e3,
            "captured thread stacks"
        );
        Ok(ProcessCapture {
            threads,
            signal: signal
                .ok()
                .map(|sig| format!("SIGRTMIN+{} ({sig})", opts.signal_offset)),
            stacks_supported: true,
            notes,
            elapsed,
        })
    }

    /// Signals `targets` in batches of free slots and unwinds their answers.
    fn capture_batches(
        rep: &mut Reporter,
        targets: &[i32],
        pid: i32,
        sig: i32,
        opts: &CaptureOptions,
        deadline: Instant,
        outcomes: &mut HashMap<i32, Result<Unwound, NoStack>>,
    ) {
        let mut next = 0;
        while next < targets.len() {
            if Instant::now() >= deadline {
                for &tid in &targets[next..] {
                    outcomes.insert(tid, Err(NoStack::Deadline(opts.deadline)));
                }
                return;
            }
            let free = rep.slots.reusable();
            if free.is_empty() {
                for &tid in &targets[next..] {
                    outcomes.insert(tid, Err(NoStack::NoSlot));
                }
                return;
            }
            // Arm and send.
            let mut batch: Vec<Request> = Vec::with_capacity(free.len());
            for index in free {
                let Some(&tid) = targets.get(next) else {
                    break;
                };
                let Some((payload, generation)) = rep.slots.arm(index, tid) else {
                    continue;
                };
                next += 1;
                match super::sys::queue_signal(pid, tid, sig, payload) {
                    Ok(()) => batch.push(Request {
                        tid,
                        index,
                        generation,
                        gone: false,
                    }),
                    Err(e) => {
                        rep.slots.disarm(index, generation);
                        let why = if e.raw_os_error() == Some(libc::ESRCH) {
                            NoStack::Exited
                        } else {
                            NoStack::SendFailed(e.to_string())
                        };
                        outcomes.insert(tid, Err(why));
                    }
                }
            }
            wait_for_batch(
                rep,
                &mut batch,
                pid,
                (Instant::now() + opts.thread_timeout).min(deadline),
            );
            // Collect: unwind each answer before its slot can be re-armed.
            for req in &batch {
                let outcome = collect(rep, req, pid, opts);
                outcomes.insert(req.tid, outcome);
            }
        }
    }

    /// Sleeps on the answer counter until every request of the batch is answered, has gone, or
    /// `until` has passed.
    fn wait_for_batch(rep: &mut Reporter, batch: &mut [Request], pid: i32, until: Instant) {
        let mut last_liveness = Instant::now();
        loop {
            let seen = ANSWERS.load(Ordering::Acquire);
            let pending = batch
                .iter()
                .filter(|r| {
                    !r.gone
                        && matches!(
                            rep.slots.poll(r.index, r.generation),
                            Poll::Pending | Poll::Busy
                        )
                })
                .count();
            if pending == 0 {
                return;
            }
            let now = Instant::now();
            if now >= until {
                return;
            }
            if now.duration_since(last_liveness) >= LIVENESS_EVERY {
                last_liveness = now;
                for r in batch.iter_mut() {
                    if !r.gone
                        && rep.slots.poll(r.index, r.generation) == Poll::Pending
                        && !super::sys::thread_exists(pid, r.tid)
                    {
                        r.gone = true;
                    }
                }
            }
            super::sys::futex_wait(&ANSWERS, seen, (until - now).min(LIVENESS_EVERY));
        }
    }

    /// The outcome of one request after the wait.
    fn collect(
        rep: &mut Reporter,
        req: &Request,
        pid: i32,
        opts: &CaptureOptions,
    ) -> Result<Unwound, NoStack> {
        let mut poll = rep.slots.poll(req.index, req.generation);
        if poll == Poll::Pending {
            if rep.slots.disarm(req.index, req.generation) {
                return Err(if req.gone || !super::sys::thread_exists(pid, req.tid) {
                    NoStack::Exited
                } else {
                    NoStack::Timeout(opts.thread_timeout)
                });
            }
            poll = rep.slots.poll(req.index, req.generation);
        }
        if poll == Poll::Busy {
            // A handler is copying right now: it finishes in microseconds unless descheduled.
            let until = Instant::now() + BUSY_GRACE;
            while poll == Poll::Busy && Instant::now() < until {
                std::thread::yield_now();
                poll = rep.slots.poll(req.index, req.generation);
            }
        }
        if poll != Poll::Done {
            // Still busy: the slot stays claimed until that handler ends (never reused before).
            return Err(NoStack::Timeout(opts.thread_timeout));
        }
        let Reporter {
            slots,
            modules,
            unwind_cache,
            ..
        } = rep;
        slots
            .read(req.index, req.generation, |answer| {
                unwind::unwind(
                    modules,
                    unwind_cache,
                    answer.regs,
                    answer.stack,
                    answer.copy_errno,
                    opts.max_frames,
                )
            })
            .ok_or(NoStack::Timeout(opts.thread_timeout))
    }
}
