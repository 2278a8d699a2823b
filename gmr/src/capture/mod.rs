//! Capture of the stack of every OS thread of the process (`docs/architecture.md`, "The
//! capture").
//!
//! # How a capture runs
//!
//! Everything below runs on the reporting thread, one capture at a time (a global lock, waited
//! for at most until the deadline):
//!
//! 1. **Gather** on the helper thread `gmr-capture-io` ([`cutoff`]), cut by the global deadline
//!    (`threads.deadline`): enumerate `/proc/self/task`; for each thread read `stat` (name,
//!    state, CPU time), `status` (signal masks, seccomp state) and, for a blocked thread,
//!    `wchan` and `syscall` (one descriptor of the task directory and one buffer reused:
//!    [`threads_proc::ProcReader`]); choose the stack copy path (`/proc/self/mem`, else
//!    `process_vm_readv` when no seccomp filter is in force); read `/proc/thread-self/maps`
//!    into the module table and the map table that bounds the copies. All of it happens
//!    before any signal is sent, which would briefly wake a blocked thread out of its call.
//!    `/proc` is read as bytes (a thread name cut inside a UTF-8 character, a file name that
//!    is not UTF-8, lose nothing), and through the thread's own directories (once the main
//!    thread has called `pthread_exit`, `/proc/self/{mem,maps,fd}` read as empty).
//! 2. **Check the capture signal** (`SIGRTMIN() + threads.capture_signal`) is still ours:
//!    install it the first time, reinstall it if someone reset it to the default, and refuse to
//!    signal anybody if another handler took it (reported in the section).
//! 3. **Skip** the threads that cannot answer or must not be asked: those blocking the signal
//!    (`SigBlk`), in uninterruptible sleep (`D`: the signal would wait for the sleep to end),
//!    stopped or traced (`T`, `t`), zombies, and those whose seccomp state differs from the
//!    reporting thread's (their filter may forbid the copy and kill the process). They are
//!    listed from `/proc` with the reason.
//! 4. **Signal** each thread with `rt_tgsigqueueinfo` to its exact TID, carrying a slot index
//!    and a fresh generation, at most [`handler::SLOT_COUNT`] at a time. The handler (see
//!    [`handler`]) copies registers and its stack, up to the top of the stack's mapping, into
//!    its slot. The reporter sleeps on a futex until an answer comes, a request's own timeout
//!    (`threads.timeout`) or the global deadline passes; a thread that exits meanwhile is
//!    noticed within ~10 ms and reported as such.
//! 5. **Unwind** each answer from its copy with framehop (DWARF CFI from `.eh_frame`, frame
//!    pointers otherwise; see [`unwind`]) as soon as it arrives, and re-arm its slot for the
//!    next thread: one slow thread holds one slot, never a batch. A copy that read nothing is
//!    reported as such, never as a one-frame stack.
//! 6. **Own stack**: the reporting thread is not signalled; it unwinds itself in place with
//!    `backtrace::trace` (ordinary code, not a signal handler).
//! 7. **Symbolize** each unique address once, with a cache that outlives the report
//!    ([`symbolize`]); every frame also carries `module+0xoffset`, from the module table built
//!    from the maps ([`modules`]), so a stripped binary still gives a report that
//!    `addr2line -e <module> <offset>` can finish offline.
//!
//! # What can go wrong, and what happens then
//!
//! * A `/proc` read blocks in the kernel (a thread stuck in a page fault on a hung network
//!   file system holds the address space's lock): the gathering job is cut at the deadline,
//!   the section says what it was reading, and the threads it had not read are listed as such.
//!   The stuck helper thread is abandoned; the next capture uses a fresh one.
//! * A thread never answers (it blocked the signal after we read its mask, or it is descheduled
//!   for longer than the timeout): its entry says so; the signal stays pending and, when it is
//!   finally delivered, the handler sees a stale generation and writes nothing.
//! * A handler is still copying when its request times out: the slot stays claimed and is not
//!   reused until the copy ends, so no two threads ever write one slot. The wait for it ends
//!   by the deadline too.
//! * A thread exits, or a library is unloaded, during the capture: sends fail with `ESRCH`,
//!   exited threads are reported as such, and unwind tables are owned copies.
//! * Someone else owns the capture signal: nobody is signalled, the section explains, and the
//!   other handler is left alone.
//! * The process is not dumpable (setuid, file capabilities, `PR_SET_DUMPABLE 0`):
//!   `/proc/self/mem` belongs to root; stacks are copied with `process_vm_readv` unless a
//!   seccomp filter is in force (then the section says why there are none).
//!
//! # Memory
//!
//! The slot pool (32 × 128 KiB, allocated once, pages touched on use), the map table (16 bytes
//! per mapping) and the module and symbol caches: independent of the number of threads except
//! for the per-thread results themselves.
// Elsewhere the capture machinery is compiled but unused: only the `/proc`-free fallback runs.
#![cfg_attr(
    not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )),
    allow(dead_code)
)]

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod cutoff;
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
    /// The thread's seccomp state differs from the reporting thread's: its filter may forbid
    /// the stack copy's system call, and a forbidden call kills the process.
    #[cfg(target_os = "linux")]
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(dead_code)
    )]
    OwnSeccomp {
        /// The thread's.
        thread: threads_proc::Seccomp,
        /// The reporting thread's.
        reporter: threads_proc::Seccomp,
    },
    /// The thread answered, but its stack copy read nothing (`errno`, 0 for an empty read).
    #[cfg_attr(
        any(
            not(target_os = "linux"),
            not(any(target_arch = "x86_64", target_arch = "aarch64"))
        ),
        allow(dead_code)
    )]
    NothingCopied(i32),
    /// Its `/proc` files could not be read (why).
    #[cfg_attr(
        any(
            not(target_os = "linux"),
            not(any(target_arch = "x86_64", target_arch = "aarch64"))
        ),
        allow(dead_code)
    )]
    Unreadable(String),
    /// Its `/proc` files were not read: the reads were cut by the deadline.
    #[cfg_attr(
        any(
            not(target_os = "linux"),
            not(any(target_arch = "x86_64", target_arch = "aarch64"))
        ),
        allow(dead_code)
    )]
    NotRead,
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
            #[cfg(target_os = "linux")]
            NoStack::OwnSeccomp { thread, reporter } => write!(
                f,
                "not signalled: its seccomp state ({thread}) differs from the reporting \
                 thread's ({reporter}); its filter could forbid the stack copy and kill the \
                 process"
            ),
            NoStack::NothingCopied(0) => f.write_str(
                "answered, but the stack copy read nothing (the memory file read as empty): \
                 no stack to show",
            ),
            NoStack::NothingCopied(errno) => write!(
                f,
                "answered, but the stack copy read nothing ({}): no stack to show",
                std::io::Error::from_raw_os_error(*errno)
            ),
            NoStack::Unreadable(why) => write!(f, "its /proc files could not be read: {why}"),
            NoStack::NotRead => f.write_str(
                "not read: the /proc reads were cut by the capture deadline (threads.deadline)",
            ),
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

/// A module (the executable, a shared library, the vDSO) mapped at the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CapturedModule {
    /// File name, as frames name their module.
    pub(crate) name: Arc<str>,
    /// Full path as in `/proc/self/maps`.
    pub(crate) path: Arc<str>,
    /// The GNU build-id, hex, when the module has one.
    pub(crate) build_id: Option<Arc<str>>,
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
    /// The modules mapped, in address order (empty where no module table is built).
    pub(crate) modules: Vec<CapturedModule>,
}

/// Errors that stop a capture as a whole.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CaptureError {
    /// `/proc/self/task` could not be listed.
    #[error("cannot list the threads in /proc/self/task: {0}")]
    ListThreads(#[source] std::io::Error),
    /// Another capture held the capture for the whole deadline.
    #[cfg_attr(
        not(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        )),
        allow(dead_code)
    )]
    #[error("another capture was still running when the deadline (threads.deadline) passed")]
    Busy,
    /// The `/proc` reads were cut by the deadline before the threads were even listed.
    #[cfg_attr(
        not(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        )),
        allow(dead_code)
    )]
    #[error("listing /proc/self/task: {0}")]
    Cut(String),
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
        modules: Vec::new(),
    }
}

/// Linux without a supported architecture: threads from `/proc`, no stacks but our own.
#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "x86_64", target_arch = "aarch64"))
))]
mod linux_proc_only {
    use super::*;

    /// The gathering job: [`gather`], or a stand-in in tests (a read that blocks).
    type GatherFn = fn(&Mutex<Gathered>, Option<ProcReader>, ModuleTable, i32, u64);

    pub(super) fn capture(opts: &CaptureOptions) -> Result<ProcessCapture, CaptureError> {
        capture_with(opts, gather)
    }

    fn capture_with(
        opts: &CaptureOptions,
        gather: GatherFn,
    ) -> Result<ProcessCapture, CaptureError> {
        let started = Instant::now();
        let me = super::sys::current_tid();
        let ticks = super::sys::clock_ticks_per_second();
        let tids = threads_proc::list_tids().map_err(CaptureError::ListThreads)?;
        names::retain(&tids);
        let mut reader =
            threads_proc::ProcReader::open(ticks).map_err(CaptureError::ListThreads)?;
        let mut threads = Vec::new();
        for tid in tids {
            let Ok(p) = reader.read_thread(tid) else {
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
            modules: Vec::new(),
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
    use std::sync::{Arc, Mutex, PoisonError, TryLockError};

    use super::cutoff::IoThread;
    use super::handler::{self, ANSWERS, CopyPath, MapTable, Poll, Slots};
    use super::modules::{ModuleTable, Refreshed};
    use super::symbolize::{self, Symbolizer};
    use super::threads_proc::{ProcReader, ProcThread, Seccomp};
    use super::unwind::{self, NativeCache};
    use super::*;

    /// State that lives across reports: the slots, the module table, the caches, the `/proc`
    /// reader and its helper thread.
    struct Reporter {
        slots: Slots,
        /// `None` while lent to a gathering job that was cut (rebuilt by the next capture).
        modules: Option<ModuleTable>,
        /// `None` likewise.
        reader: Option<ProcReader>,
        io: IoThread,
        unwind_cache: NativeCache,
        symbolizer: Symbolizer,
    }

    static REPORTER: Mutex<Option<Reporter>> = Mutex::new(None);

    /// How often the reporter checks whether unanswered threads still exist.
    const LIVENESS_EVERY: Duration = Duration::from_millis(10);
    /// How long to wait for a handler that is mid-copy when its request times out (never past
    /// the deadline).
    const BUSY_GRACE: Duration = Duration::from_millis(50);

    impl Reporter {
        fn new() -> Self {
            Reporter {
                slots: Slots::new(),
                modules: Some(ModuleTable::new()),
                reader: None,
                io: IoThread::default(),
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

    /// Takes the capture lock, waiting at most until `deadline`.
    fn lock_until(
        deadline: Instant,
    ) -> Result<std::sync::MutexGuard<'static, Option<Reporter>>, CaptureError> {
        loop {
            match REPORTER.try_lock() {
                Ok(guard) => return Ok(guard),
                Err(TryLockError::Poisoned(p)) => return Ok(p.into_inner()),
                Err(TryLockError::WouldBlock) => {
                    if Instant::now() >= deadline {
                        return Err(CaptureError::Busy);
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }

    /// What the gathering job found before any thread is signalled, shared with the reporter
    /// as it goes, so a job cut by the deadline still leaves what it read.
    #[derive(Default)]
    struct Gathered {
        /// What the job is doing now (for the note when it is cut).
        doing: String,
        /// The thread listing, or why it failed.
        tids: Option<Result<Vec<i32>, std::io::Error>>,
        /// The threads read so far, in TID order.
        procs: Vec<ProcThread>,
        /// Threads whose files could not be read, and why (listed, never dropped).
        unreadable: Vec<(i32, String)>,
        /// How stacks are copied, or why they cannot be.
        copy: Option<Result<CopyPath, String>>,
        /// Whether the module table changed and every mapping's range, or why the maps could
        /// not be read.
        maps: Option<Result<Refreshed, std::io::Error>>,
        /// Handed back when the job ends.
        modules: Option<ModuleTable>,
        reader: Option<ProcReader>,
    }

    fn set_doing(shared: &Mutex<Gathered>, what: String) {
        shared.lock().unwrap_or_else(PoisonError::into_inner).doing = what;
    }

    /// The gathering job (on the helper thread): `/proc` reads, the copy path, the maps and
    /// the modules' unwind tables. Every read here may block in the kernel.
    fn gather(
        shared: &Mutex<Gathered>,
        reader: Option<ProcReader>,
        mut modules: ModuleTable,
        me: i32,
        ticks: u64,
    ) {
        let lock = || shared.lock().unwrap_or_else(PoisonError::into_inner);
        set_doing(shared, "listing /proc/self/task".to_owned());
        let mut reader = match reader.map_or_else(|| ProcReader::open(ticks), Ok) {
            Ok(r) => r,
            Err(e) => {
                lock().tids = Some(Err(e));
                lock().modules = Some(modules);
                return;
            }
        };
        let tids = threads_proc::list_tids();
        let listed = tids.as_ref().map(Clone::clone).unwrap_or_default();
        lock().tids = Some(tids);
        let mut own_seccomp = None;
        for tid in listed {
            set_doing(shared, format!("reading /proc/self/task/{tid}"));
            match reader.read_thread(tid) {
                Ok(p) => {
                    if tid == me {
                        own_seccomp = Some(p.seccomp);
                    }
                    lock().procs.push(p);
                }
                // Exited between the listing and the read (`ENOENT`, `ESRCH`, or a file cut
                // short): not a thread of the report.
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        || e.raw_os_error() == Some(libc::ESRCH)
                        || !super::sys::thread_exists(super::sys::getpid(), tid) => {}
                Err(e) => {
                    tracing::debug!(tid, error = %e, "cannot read thread from /proc");
                    lock().unreadable.push((tid, e.to_string()));
                }
            }
        }
        set_doing(shared, "opening /proc/self/mem".to_owned());
        let copy = choose_copy_path(&mut reader, me, own_seccomp);
        if let Ok(path) = copy {
            // The modules' tables below are read along the same path.
            super::sys::set_read_with_vm_readv(path == CopyPath::VmReadv);
        }
        lock().copy = Some(copy);
        set_doing(
            shared,
            "reading /proc/self/maps and the modules' unwind tables".to_owned(),
        );
        let maps = modules.refresh();
        let mut g = lock();
        g.maps = Some(maps);
        g.modules = Some(modules);
        g.reader = Some(reader);
        g.doing = String::new();
    }

    /// `/proc/self/mem` where it can be opened; `process_vm_readv` where it cannot (a process
    /// that is not dumpable) and no seccomp filter is in force (a filter may kill the process
    /// on that call: systemd's `@system-service` set leaves it out).
    fn choose_copy_path(
        reader: &mut ProcReader,
        me: i32,
        own: Option<Seccomp>,
    ) -> Result<CopyPath, String> {
        match super::sys::ensure_mem_fd() {
            Ok(_) => Ok(CopyPath::ProcMem),
            Err(e) => {
                let own = match own {
                    Some(s) => s,
                    None => reader.seccomp(me).map_err(|e2| {
                        format!(
                            "cannot open /proc/self/mem ({e}), and the seccomp state, which says \
                             whether process_vm_readv is safe, is unreadable ({e2})"
                        )
                    })?,
                };
                if own.filtered() {
                    Err(format!(
                        "cannot open /proc/self/mem ({e}); process_vm_readv is not used because \
                         a seccomp filter is in force ({own}), which may kill the process on it"
                    ))
                } else {
                    Ok(CopyPath::VmReadv)
                }
            }
        }
    }

    type Unwound = (Vec<RawFrame>, Option<Truncation>);

    /// How long [`locate`] waits for a capture in progress.
    const LOCATE_WAIT: Duration = Duration::from_millis(500);

    /// [`super::locate_addresses`] with the module table of the captures.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    ///
    /// Uses the table as the last capture left it (read on its helper thread, where a blocked
    /// `/proc` read is cut): no `/proc` read here, and the capture lock is waited for at most
    /// [`LOCATE_WAIT`].
    pub(super) fn locate(addresses: &[u64]) -> Vec<Frame> {
        let guard = lock_until(Instant::now() + LOCATE_WAIT).ok();
        let modules = guard
            .as_ref()
            .and_then(|g| g.as_ref())
            .and_then(|rep| rep.modules.as_ref());
        addresses
            .iter()
            .map(|&address| match modules.and_then(|m| m.find(address)) {
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
        /// When the signal was sent: the per-thread timeout runs from here.
        sent: Instant,
        gone: bool,
    }

    /// The gathering job: [`gather`], or a stand-in in tests (a read that blocks).
    type GatherFn = fn(&Mutex<Gathered>, Option<ProcReader>, ModuleTable, i32, u64);

    pub(super) fn capture(opts: &CaptureOptions) -> Result<ProcessCapture, CaptureError> {
        capture_with(opts, gather)
    }

    fn capture_with(
        opts: &CaptureOptions,
        gather: GatherFn,
    ) -> Result<ProcessCapture, CaptureError> {
        let started = Instant::now();
        let deadline = started + opts.deadline;
        let me = super::sys::gettid();
        let pid = super::sys::getpid();
        let ticks = self::sys::clock_ticks_per_second();
        let mut notes = Vec::new();

        let mut guard = lock_until(deadline)?;
        let rep = guard.get_or_insert_with(Reporter::new);
        rep.slots.set_pid(pid);
        // The helper thread started below leaves the capture signal open: its stack is shown.
        if let Some(sig) = capture_signal_number(opts.signal_offset) {
            crate::threads::set_capture_signal(sig);
        }

        // 1. Everything read before signalling, on the helper thread, cut by the deadline.
        let shared = Arc::new(Mutex::new(Gathered::default()));
        let job_shared = Arc::clone(&shared);
        let reader = rep.reader.take();
        let modules = rep.modules.take().unwrap_or_else(ModuleTable::new);
        let cut = rep
            .io
            .run(deadline, move || {
                gather(&job_shared, reader, modules, me, ticks)
            })
            .err();
        let mut g = std::mem::take(&mut *shared.lock().unwrap_or_else(PoisonError::into_inner));
        if let Some(cut) = &cut {
            let doing = if g.doing.is_empty() {
                "reading /proc".to_owned()
            } else {
                g.doing.clone()
            };
            tracing::warn!(%cut, doing = %doing, "the capture's /proc reads were cut");
            notes.push(format!("{doing}: {cut}; what it had not read is missing"));
        }
        rep.reader = g.reader.take();
        let tids = match g.tids.take() {
            Some(Ok(tids)) => tids,
            Some(Err(e)) => return Err(CaptureError::ListThreads(e)),
            None => {
                return Err(CaptureError::Cut(
                    cut.map_or_else(|| "no answer".to_owned(), |c| c.to_string()),
                ));
            }
        };
        names::retain(&tids);
        let procs = std::mem::take(&mut g.procs);
        let unreadable: HashMap<i32, String> =
            std::mem::take(&mut g.unreadable).into_iter().collect();
        let own_seccomp = procs.iter().find(|p| p.tid == me).map(|p| p.seccomp);

        let copy = g.copy.take().unwrap_or_else(|| {
            Err(format!(
                "the copy path was not chosen: {}",
                cut.as_ref()
                    .map_or_else(|| "no answer".to_owned(), ToString::to_string)
            ))
        });
        let (changed, ranges) = match g.maps.take() {
            Some(Ok(Refreshed { changed, ranges })) => (changed, ranges),
            Some(Err(e)) => {
                notes.push(format!(
                    "cannot read /proc/self/maps ({e}): frames are not attributed to modules"
                ));
                (false, Vec::new())
            }
            None => (false, Vec::new()),
        };
        let modules = g.modules.take().unwrap_or_else(ModuleTable::new);
        if changed {
            // Any change of the module table: names of modules no longer mapped are dropped.
            rep.symbolizer.retain_modules(modules.modules());
        }
        rep.modules = Some(modules);
        let copy_path = copy.as_ref().ok().copied();
        if copy_path == Some(CopyPath::VmReadv) {
            notes.push(format!(
                "stack_copy = {}: /proc/self/mem cannot be opened (the process is not \
                 dumpable) and no seccomp filter is in force",
                CopyPath::VmReadv.name()
            ));
        }
        let signal = copy.and_then(|path| {
            handler::set_copy_path(path);
            rep.ensure_signal(opts.signal_offset)
        });
        if let Err(why) = &signal {
            tracing::warn!(reason = %why, "thread stacks not captured");
            notes.push(format!("thread stacks not captured: {why}"));
        }
        // The stack copies end at the top of their mapping.
        MapTable::publish(&ranges);

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
            } else if let Some(own) = own_seccomp.filter(|own| *own != p.seccomp) {
                Err(NoStack::OwnSeccomp {
                    thread: p.seccomp,
                    reporter: own,
                })
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
            capture_all(rep, &targets, pid, sig, opts, deadline, &mut outcomes);
        }

        // Name every address once, our own stack included, on the symbolizer thread, until
        // the capture's deadline.
        let own = own_stack(opts.max_frames);
        let Reporter {
            modules,
            symbolizer,
            ..
        } = rep;
        let empty = ModuleTable::new();
        let modules = modules.as_ref().unwrap_or(&empty);
        let module_list: Vec<CapturedModule> = modules
            .modules()
            .iter()
            .map(|m| CapturedModule {
                name: Arc::clone(&m.name),
                path: Arc::clone(&m.path),
                build_id: m.build_id.clone(),
            })
            .collect();
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
        let read: std::collections::HashSet<i32> = procs.iter().map(|p| p.tid).collect();
        let mut threads = Vec::with_capacity(tids.len());
        let mut procs = procs.into_iter().peekable();
        for tid in tids {
            let p = match procs.peek() {
                Some(p) if p.tid == tid => procs.next(),
                _ => None,
            };
            if p.is_none() {
                // Unreadable, exited before it was read, or its read was cut.
                if let Some(why) = unreadable.get(&tid) {
                    threads.push(CapturedThread {
                        tid,
                        name: names::lookup_any(tid).unwrap_or_default(),
                        proc: None,
                        reporting: tid == me,
                        stack: Err(NoStack::Unreadable(why.clone())),
                    });
                } else if cut.is_some()
                    && !read.contains(&tid)
                    && super::sys::thread_exists(pid, tid)
                {
                    threads.push(CapturedThread {
                        tid,
                        name: names::lookup_any(tid).unwrap_or_default(),
                        proc: None,
                        reporting: tid == me,
                        stack: Err(NoStack::NotRead),
                    });
                }
                continue;
            }
            let Some(p) = p else { continue };
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
            modules: module_list,
        })
    }

    /// Signals `targets`, at most one per slot at a time, re-arming each slot for the next
    /// thread as soon as its answer is unwound (one slow thread holds one slot, not a batch).
    /// Ends by the deadline: requests still unanswered then are withdrawn.
    fn capture_all(
        rep: &mut Reporter,
        targets: &[i32],
        pid: i32,
        sig: i32,
        opts: &CaptureOptions,
        deadline: Instant,
        outcomes: &mut HashMap<i32, Result<Unwound, NoStack>>,
    ) {
        let mut next = 0;
        let mut free = rep.slots.reusable();
        let mut in_flight: Vec<Request> = Vec::with_capacity(free.len());
        let mut last_liveness = Instant::now();
        loop {
            // Arm and send while slots are free.
            while next < targets.len() && Instant::now() < deadline {
                let Some(index) = free.pop() else {
                    break;
                };
                let tid = targets[next];
                // A slot that cannot be armed (a late handler took it) is not used again here.
                let Some((payload, generation)) = rep.slots.arm(index, tid) else {
                    continue;
                };
                next += 1;
                match super::sys::queue_signal(pid, tid, sig, payload) {
                    Ok(()) => in_flight.push(Request {
                        tid,
                        index,
                        generation,
                        sent: Instant::now(),
                        gone: false,
                    }),
                    Err(e) => {
                        if rep.slots.disarm(index, generation) {
                            free.push(index);
                        }
                        let why = if e.raw_os_error() == Some(libc::ESRCH) {
                            NoStack::Exited
                        } else {
                            NoStack::SendFailed(e.to_string())
                        };
                        outcomes.insert(tid, Err(why));
                    }
                }
            }
            if in_flight.is_empty() {
                let why = if Instant::now() >= deadline {
                    NoStack::Deadline(opts.deadline)
                } else {
                    NoStack::NoSlot
                };
                for &tid in targets.get(next..).unwrap_or_default() {
                    outcomes.insert(tid, Err(why.clone()));
                }
                return;
            }

            let seen = ANSWERS.load(Ordering::Acquire);
            let now = Instant::now();
            let check_liveness = now.duration_since(last_liveness) >= LIVENESS_EVERY;
            if check_liveness {
                last_liveness = now;
            }
            let mut progressed = false;
            let mut wake = deadline.min(now + LIVENESS_EVERY);
            let mut i = 0;
            while i < in_flight.len() {
                let req = &mut in_flight[i];
                let timeout_at = (req.sent + opts.thread_timeout).min(deadline);
                let outcome = match rep.slots.poll(req.index, req.generation) {
                    Poll::Done => Some(collect(rep, req, opts)),
                    Poll::Pending => {
                        if check_liveness && !super::sys::thread_exists(pid, req.tid) {
                            req.gone = true;
                        }
                        if (req.gone || now >= timeout_at)
                            && rep.slots.disarm(req.index, req.generation)
                        {
                            Some(Err(
                                if req.gone || !super::sys::thread_exists(pid, req.tid) {
                                    NoStack::Exited
                                } else {
                                    NoStack::Timeout(opts.thread_timeout)
                                },
                            ))
                        } else {
                            wake = wake.min(timeout_at);
                            None
                        }
                    }
                    Poll::Busy => {
                        // A handler is copying right now: it ends in microseconds unless it is
                        // descheduled. The slot stays claimed until it does.
                        let give_up = (timeout_at + BUSY_GRACE).min(deadline);
                        if now >= give_up {
                            Some(Err(NoStack::Timeout(opts.thread_timeout)))
                        } else {
                            wake = wake.min(give_up);
                            None
                        }
                    }
                    Poll::Lost => Some(Err(NoStack::Timeout(opts.thread_timeout))),
                };
                match outcome {
                    Some(outcome) => {
                        let req = in_flight.swap_remove(i);
                        outcomes.insert(req.tid, outcome);
                        if rep.slots.is_reusable(req.index) {
                            free.push(req.index);
                        }
                        progressed = true;
                    }
                    None => i += 1,
                }
            }
            if progressed {
                continue;
            }
            let now = Instant::now();
            if wake > now {
                super::sys::futex_wait(&ANSWERS, seen, wake - now);
            }
        }
    }

    /// The outcome of an answered request: its stack, unwound from the copy (after which the
    /// slot can be re-armed).
    fn collect(
        rep: &mut Reporter,
        req: &Request,
        opts: &CaptureOptions,
    ) -> Result<Unwound, NoStack> {
        let Reporter {
            slots,
            modules,
            unwind_cache,
            ..
        } = rep;
        let empty;
        let modules = match modules {
            Some(m) => &*m,
            None => {
                empty = ModuleTable::new();
                &empty
            }
        };
        slots
            .read(req.index, req.generation, |answer| {
                if answer.stack.is_empty() {
                    // Nothing to unwind from: one frame would look like a whole stack.
                    return Err(NoStack::NothingCopied(answer.copy_errno));
                }
                Ok(unwind::unwind(
                    modules,
                    unwind_cache,
                    answer.regs,
                    answer.stack,
                    opts.max_frames,
                ))
            })
            .unwrap_or(Err(NoStack::Timeout(opts.thread_timeout)))
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::sync::Condvar;

        /// Released at the end of the test: the stand-in for a file system that recovers.
        static RELEASE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

        /// Lists the threads and reads the reporting thread, then blocks in the next read the
        /// way a read of a thread stuck on a hung file system does.
        fn stalled_gather(
            shared: &Mutex<Gathered>,
            _reader: Option<ProcReader>,
            modules: ModuleTable,
            me: i32,
            ticks: u64,
        ) {
            let lock = || shared.lock().unwrap_or_else(PoisonError::into_inner);
            let tids = threads_proc::list_tids().unwrap_or_default();
            let mut reader = ProcReader::open(ticks).expect("/proc/self/task");
            if let Ok(own) = reader.read_thread(me) {
                lock().procs.push(own);
            }
            let next = tids.iter().find(|&&t| t != me).copied().unwrap_or(0);
            lock().tids = Some(Ok(tids));
            set_doing(shared, format!("reading /proc/self/task/{next}"));
            drop(modules);
            let (released, cvar) = &RELEASE;
            let mut done = released.lock().unwrap_or_else(PoisonError::into_inner);
            while !*done {
                done = cvar.wait(done).unwrap_or_else(PoisonError::into_inner);
            }
        }

        #[test]
        fn a_blocked_proc_read_is_cut_by_the_deadline_and_said() {
            let (tx, rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
            let other = std::thread::spawn(move || {
                tx.send(super::super::sys::gettid()).expect("tid");
                let _ = stop_rx.recv();
            });
            let tid = rx.recv().expect("tid");
            let opts = CaptureOptions {
                signal_offset: 5,
                thread_timeout: Duration::from_millis(200),
                deadline: Duration::from_millis(300),
                max_frames: 64,
                symbol_budget: 128 << 20,
                debug_dirs: Vec::new(),
            };
            let started = Instant::now();
            let cut = capture_with(&opts, stalled_gather).expect("a capture");
            // Bounded: the deadline, plus symbolizing the reporter's own stack.
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{:?}",
                started.elapsed()
            );
            assert!(
                cut.notes
                    .iter()
                    .any(|n| n.starts_with("reading /proc/self/task/")
                        && n.contains("cut by the deadline")),
                "{:?}",
                cut.notes
            );
            let entry = cut
                .threads
                .iter()
                .find(|t| t.tid == tid)
                .expect("the unread thread is listed");
            assert_eq!(entry.stack.as_ref().err(), Some(&NoStack::NotRead));
            let own = cut.threads.iter().find(|t| t.reporting).expect("own");
            assert!(own.stack.is_ok());
            {
                let (released, cvar) = &RELEASE;
                *released.lock().unwrap_or_else(PoisonError::into_inner) = true;
                cvar.notify_all();
            }
            // The next capture runs normally, on a fresh helper thread.
            let next = capture(&CaptureOptions {
                deadline: Duration::from_secs(10),
                ..opts
            })
            .expect("capture");
            assert!(
                next.notes.iter().all(|n| !n.contains("cut")),
                "{:?}",
                next.notes
            );
            let entry = next.threads.iter().find(|t| t.tid == tid).expect("listed");
            assert!(entry.stack.is_ok(), "{:?}", entry.stack);
            stop_tx.send(()).expect("stop");
            other.join().expect("thread");
        }
    }
}
