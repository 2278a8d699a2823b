//! The capture signal handler and the slots it writes into.
//!
//! # Why the handler does so little
//!
//! A signal interrupts a thread at an arbitrary instruction: inside `malloc` holding the arena
//! lock, inside the dynamic loader holding its lock while `dlopen` runs, inside the unwinder of a
//! panic holding the `dl_iterate_phdr` lock, in the middle of a function prologue. Any code the
//! handler runs that takes one of those locks deadlocks the thread (and then the report); any
//! code that trusts half-written data crashes the process. That is exactly what happened to
//! projects that unwound inside a handler: the `backtrace` maintainers state that
//! `backtrace::trace` is not async-signal-safe (rust-lang/backtrace-rs#742, #414), and pprof-rs
//! users hit deadlocks and segfaults from unwinding in its SIGPROF handler (tikv/pprof-rs#36,
//! #75, #203). So the handler here does not unwind, symbolize, allocate, lock, log, touch lazy
//! thread-locals or contain a panicking path. It only:
//!
//! 1. checks that the signal is ours (`SI_QUEUE` from our own pid) and decodes the slot index and
//!    generation from the payload;
//! 2. claims the slot with one compare-and-swap from `ARMED(gen)` to `BUSY(gen)`: a late answer to
//!    an earlier request (whose generation the reporter has moved on from) fails the swap and
//!    writes nothing;
//! 3. checks that it runs on the thread the slot was armed for;
//! 4. copies the registers the unwinder needs from the `ucontext` (x86_64: RIP, RSP, RBP;
//!    aarch64: PC, SP, X29, X30);
//! 5. copies its own stack, from the stack pointer up to the top of the mapping that holds it
//!    (looked up in the [`MapTable`] the reporter filled before signalling; at most
//!    [`STACK_WINDOW`] bytes), with one raw system call: `pread64` on the pre-opened
//!    `/proc/self/mem`, or `process_vm_readv` on our own pid where that file cannot be opened
//!    (a process that is not dumpable; see [`CopyPath`]). Either stops at an unmapped page
//!    with a short count or an error instead of a fault. They are issued with `syscall()`,
//!    not through glibc's `pread`: the wrapper is a cancellation point, and a thread with a
//!    pending `pthread_cancel` would be cancelled (unwound) inside the handler.
//! 6. publishes the slot with a release store of `DONE(gen)`, bumps the answer counter and wakes
//!    the reporter with `FUTEX_WAKE`.
//!
//! `errno` is saved and restored around all of it. Arithmetic is wrapping or saturating, array
//! accesses use `get`, and nothing can panic (a panic in a handler cannot unwind through the
//! signal frame). The unwinding (framehop, DWARF CFI with frame-pointer fallback) and the
//! symbolization happen afterwards on the reporting thread, from the copy, where a bad CFI entry
//! can only truncate a stack.
//!
//! # Memory
//!
//! The slots live in one [`Pool`] allocated once, by the reporter, before the first signal is
//! sent, and never freed (a handler still running late can therefore never touch freed memory).
//! [`SLOT_COUNT`] slots of [`STACK_WINDOW`] bytes each: at most that many threads are asked at
//! once (a slot is re-armed for the next thread as soon as its answer is unwound), so memory
//! does not grow with the number of threads.
//!
//! # What can still go wrong
//!
//! * A thread whose stack is almost exhausted can overflow it when the signal frame and this
//!   handler's small frame (well under 1 KiB) are pushed. The same holds for any signal.
//! * The signal interrupts a blocking system call. With `SA_RESTART` most restart transparently;
//!   a few (`epoll_wait`, `nanosleep`, futex waits with a timeout) return `EINTR`, which correct
//!   code already handles.
//! * A thread that blocks the signal after the reporter read its mask keeps it pending until it
//!   unblocks it; the handler then finds a stale generation and returns at once.
//! * A thread with a seccomp filter of its own may forbid the copy's system call, and a
//!   forbidden call kills the process: the reporter never signals a thread whose seccomp state
//!   differs from its own, and uses `process_vm_readv` only when no filter is in force (systemd's
//!   `@system-service` set, for one, leaves it out).
//! * The map table is rewritten by the next capture while a late handler reads it: entries are
//!   atomics, so a torn read only gives a wrong copy length, which the kernel bounds anyway (the
//!   copy is a system call, never a plain memory read).
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use libc::{c_int, c_void};

use super::sys::{QueueInfo, SI_QUEUE};

/// Number of slots: how many threads are signalled at once.
pub(crate) const SLOT_COUNT: usize = 32;

/// Bytes of stack copied per thread, from the stack pointer up.
pub(crate) const STACK_WINDOW: usize = 128 * 1024;

const FREE: u64 = 0;
const ARMED: u64 = 1;
const BUSY: u64 = 2;
const DONE: u64 = 3;
const PHASE_MASK: u64 = 3;

/// The largest generation that fits the signal payload next to an 8-bit slot index.
pub(crate) const MAX_GENERATION: u64 = (1 << 56) - 1;

const fn pack(generation: u64, phase: u64) -> u64 {
    (generation << 2) | phase
}

/// Signal payload: slot index in the low 8 bits, generation above.
pub(crate) const fn encode_payload(index: usize, generation: u64) -> u64 {
    (generation << 8) | (index as u64 & 0xff)
}

/// Our pid, as the handler compares it with the sender's (refreshed before each capture, so a
/// forked child answers only its own reporter).
static OUR_PID: AtomicI32 = AtomicI32::new(0);

/// The slot pool, published once by the reporter; null until then.
static POOL: AtomicPtr<Pool> = AtomicPtr::new(std::ptr::null_mut());

/// Count of answers; the reporter sleeps on it with `FUTEX_WAIT`, handlers bump it and wake it.
pub(crate) static ANSWERS: AtomicU32 = AtomicU32::new(0);

/// How the handler copies its stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CopyPath {
    /// `pread64` on the descriptor of `/proc/self/mem` in [`super::sys::MEM_FD`].
    ProcMem,
    /// `process_vm_readv` on our own pid: for processes that are not dumpable, whose
    /// `/proc/self/mem` belongs to root. Only chosen when no seccomp filter is in force.
    VmReadv,
}

impl CopyPath {
    /// The name the report shows.
    pub(crate) fn name(self) -> &'static str {
        match self {
            CopyPath::ProcMem => "/proc/self/mem",
            CopyPath::VmReadv => "process_vm_readv",
        }
    }
}

const COPY_NONE: u32 = 0;
const COPY_PROC_MEM: u32 = 1;
const COPY_VM_READV: u32 = 2;

/// The copy path in force, set by the reporter before it signals anybody.
static COPY: AtomicU32 = AtomicU32::new(COPY_NONE);

/// Sets the copy path the handler uses (call before signalling).
pub(crate) fn set_copy_path(path: CopyPath) {
    let value = match path {
        CopyPath::ProcMem => COPY_PROC_MEM,
        CopyPath::VmReadv => COPY_VM_READV,
    };
    COPY.store(value, Ordering::Release);
}

/// The address ranges of the process's mappings, sorted, prepared by the reporter before it
/// signals anybody (from `/proc/self/maps`) and only read by the handler: the stack copy ends
/// at the top of the mapping that holds the stack pointer, so an idle thread copies the few
/// KiB it uses, not [`STACK_WINDOW`], and never reads a neighbouring mapping.
///
/// Leaked, never freed (a late handler may read it at any time); replaced by a larger one
/// when the process has more mappings than it holds.
#[derive(Debug)]
pub(crate) struct MapTable {
    /// `[start, end)` pairs, sorted by start; the first `len` are valid.
    ranges: Box<[(AtomicU64, AtomicU64)]>,
    len: AtomicUsize,
}

static MAPS: AtomicPtr<MapTable> = AtomicPtr::new(std::ptr::null_mut());

impl MapTable {
    /// Publishes `ranges` (sorted by start, not overlapping) for the handler. Call from the
    /// reporter only (one writer at a time: under the capture lock).
    pub(crate) fn publish(ranges: &[(u64, u64)]) {
        let mut table = MAPS.load(Ordering::Acquire);
        let capacity = if table.is_null() {
            0
        } else {
            // SAFETY: a published table is never freed.
            unsafe { (&*table).ranges.len() }
        };
        if table.is_null() || capacity < ranges.len() {
            let fresh = Box::leak(Box::new(MapTable {
                ranges: (0..ranges.len().next_power_of_two().max(256))
                    .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                    .collect(),
                len: AtomicUsize::new(0),
            }));
            table = fresh;
        }
        // SAFETY: `table` is a leaked table (published or about to be), never freed.
        let t = unsafe { &*table };
        // Shrink first, so a handler never sees more entries than are written.
        t.len.store(0, Ordering::Release);
        for (slot, &(start, end)) in t.ranges.iter().zip(ranges) {
            slot.0.store(start, Ordering::Relaxed);
            slot.1.store(end, Ordering::Relaxed);
        }
        t.len
            .store(ranges.len().min(t.ranges.len()), Ordering::Release);
        MAPS.store(table, Ordering::Release);
    }

    /// The end of the mapping that holds `addr`, if the table has one. Async-signal-safe:
    /// atomic loads and a binary search, no allocation.
    #[inline(always)]
    fn end_of(addr: u64) -> Option<u64> {
        let table = MAPS.load(Ordering::Acquire);
        if table.is_null() {
            return None;
        }
        // SAFETY: a published table is never freed.
        let t = unsafe { &*table };
        let len = t.len.load(Ordering::Acquire).min(t.ranges.len());
        let (mut lo, mut hi) = (0usize, len);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (start, end) = t.ranges.get(mid)?;
            if start.load(Ordering::Relaxed) > addr {
                hi = mid;
            } else if end.load(Ordering::Relaxed) <= addr {
                lo = mid + 1;
            } else {
                return Some(end.load(Ordering::Relaxed));
            }
        }
        None
    }
}

/// Registers captured from the interrupted context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Regs {
    /// Program counter.
    pub(crate) pc: u64,
    /// Stack pointer.
    pub(crate) sp: u64,
    /// Frame pointer (RBP / X29).
    pub(crate) fp: u64,
    /// Link register (X30 on aarch64; 0 on x86_64).
    pub(crate) lr: u64,
}

/// One thread's answer: where the handler writes, and what the reporter reads back.
pub(crate) struct Slot {
    state: AtomicU64,
    tid: AtomicI32,
    pc: AtomicU64,
    sp: AtomicU64,
    fp: AtomicU64,
    lr: AtomicU64,
    stack_len: AtomicUsize,
    copy_errno: AtomicI32,
    /// `STACK_WINDOW` bytes (a leaked, zeroed allocation: never freed, untouched pages cost no
    /// memory), written only by the handler that owns the slot in `BUSY` (through the kernel, by
    /// `pread` of `/proc/self/mem`) and read only by the reporter once the slot is `DONE`.
    stack: *mut u8,
}

// SAFETY: every field but `stack` is atomic; `stack` points to a leaked allocation that lives for
// the rest of the process. `stack` is accessed under the slot protocol: the
// handler writes it only between winning the ARMED->BUSY swap and its release store of DONE; the
// reporter reads it only after an acquire load that saw DONE for the generation it armed, and
// re-arms (allowing the next write) only after that read has ended. The two never overlap.
unsafe impl Sync for Slot {}
// SAFETY: as for Sync; the pointer is never freed, so moving the owner between threads is fine.
unsafe impl Send for Slot {}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("state", &self.state.load(Ordering::Relaxed))
            .field("tid", &self.tid.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// The preallocated slots.
#[derive(Debug)]
pub(crate) struct Pool {
    slots: [Slot; SLOT_COUNT],
}

/// What the reporter sees when it looks at a slot it armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Poll {
    /// Not answered yet.
    Pending,
    /// A handler is copying right now.
    Busy,
    /// Answered.
    Done,
    /// The slot no longer belongs to this generation.
    Lost,
}

/// A completed capture, borrowed from its slot.
#[derive(Debug)]
pub(crate) struct Answer<'a> {
    /// The registers.
    pub(crate) regs: Regs,
    /// The stack bytes starting at `regs.sp`.
    pub(crate) stack: &'a [u8],
    /// `errno` of the stack copy when it copied nothing, 0 otherwise.
    pub(crate) copy_errno: i32,
}

/// Exclusive access to the pool for the (single) reporter. Not `Clone`: all arming and reading
/// goes through `&mut self`, so two reporters can never use the slots at once.
#[derive(Debug)]
pub(crate) struct Slots {
    pool: &'static Pool,
    next_generation: u64,
}

impl Slots {
    /// Allocates the pool (once per process) and publishes it to the handler.
    ///
    /// Call only from the reporter's state, created once under its lock.
    pub(crate) fn new() -> Self {
        let existing = POOL.load(Ordering::Acquire);
        let pool: &'static Pool = if existing.is_null() {
            let pool = Box::new(Pool {
                slots: std::array::from_fn(|_| Slot {
                    state: AtomicU64::new(pack(0, FREE)),
                    tid: AtomicI32::new(0),
                    pc: AtomicU64::new(0),
                    sp: AtomicU64::new(0),
                    fp: AtomicU64::new(0),
                    lr: AtomicU64::new(0),
                    stack_len: AtomicUsize::new(0),
                    copy_errno: AtomicI32::new(0),
                    stack: Box::leak(vec![0u8; STACK_WINDOW].into_boxed_slice()).as_mut_ptr(),
                }),
            });
            let raw = Box::into_raw(pool);
            match POOL.compare_exchange(
                std::ptr::null_mut(),
                raw,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                // SAFETY: `raw` came from Box::into_raw and is never freed: the pool lives for
                // the rest of the process.
                Ok(_) => unsafe { &*raw },
                Err(winner) => {
                    // SAFETY: our box was never published; nobody else has seen `raw`.
                    drop(unsafe { Box::from_raw(raw) });
                    // SAFETY: `winner` is a published pool, never freed.
                    unsafe { &*winner }
                }
            }
        } else {
            // SAFETY: a published pool is never freed.
            unsafe { &*existing }
        };
        Slots {
            pool,
            next_generation: 1,
        }
    }

    /// Records our pid for the handler's sender check, and frees slots left `ARMED` by an
    /// earlier capture (one whose handler found a thread-id mismatch after its request was
    /// abandoned): no request of this reporter is outstanding between captures, so a late
    /// handler for such a slot now finds a stale generation and writes nothing.
    pub(crate) fn set_pid(&mut self, pid: i32) {
        OUR_PID.store(pid, Ordering::Release);
        for slot in &self.pool.slots {
            let state = slot.state.load(Ordering::Acquire);
            if state & PHASE_MASK == ARMED {
                let generation = state >> 2;
                let _ = slot.state.compare_exchange(
                    state,
                    pack(generation, FREE),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
        }
    }

    /// Indexes of slots that can be armed now (free, or answered earlier). A slot whose handler
    /// was still copying when its request timed out stays `BUSY` and is skipped until it ends.
    pub(crate) fn reusable(&self) -> Vec<usize> {
        self.pool
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                let phase = s.state.load(Ordering::Acquire) & PHASE_MASK;
                phase == FREE || phase == DONE
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Whether slot `index` can be armed now (free, or answered and read).
    pub(crate) fn is_reusable(&self, index: usize) -> bool {
        self.pool.slots.get(index).is_some_and(|s| {
            let phase = s.state.load(Ordering::Acquire) & PHASE_MASK;
            phase == FREE || phase == DONE
        })
    }

    /// Arms slot `index` for thread `tid` and returns the payload to send and its generation.
    pub(crate) fn arm(&mut self, index: usize, tid: i32) -> Option<(u64, u64)> {
        let slot = self.pool.slots.get(index)?;
        let current = slot.state.load(Ordering::Acquire);
        let phase = current & PHASE_MASK;
        if phase != FREE && phase != DONE {
            return None;
        }
        let generation = self.next_generation;
        self.next_generation = if generation >= MAX_GENERATION {
            1
        } else {
            generation + 1
        };
        slot.tid.store(tid, Ordering::Relaxed);
        slot.stack_len.store(0, Ordering::Relaxed);
        slot.copy_errno.store(0, Ordering::Relaxed);
        slot.state
            .compare_exchange(
                current,
                pack(generation, ARMED),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .ok()?;
        Some((encode_payload(index, generation), generation))
    }

    /// The state of slot `index` for `generation`.
    pub(crate) fn poll(&self, index: usize, generation: u64) -> Poll {
        let Some(slot) = self.pool.slots.get(index) else {
            return Poll::Lost;
        };
        let state = slot.state.load(Ordering::Acquire);
        if state == pack(generation, ARMED) {
            Poll::Pending
        } else if state == pack(generation, BUSY) {
            Poll::Busy
        } else if state == pack(generation, DONE) {
            Poll::Done
        } else {
            Poll::Lost
        }
    }

    /// Withdraws an unanswered request: a handler that runs later finds a stale generation and
    /// writes nothing. Returns false if a handler has already claimed the slot.
    pub(crate) fn disarm(&mut self, index: usize, generation: u64) -> bool {
        let Some(slot) = self.pool.slots.get(index) else {
            return true;
        };
        slot.state
            .compare_exchange(
                pack(generation, ARMED),
                pack(generation, FREE),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Runs `f` on the answer in slot `index` if it is `DONE` for `generation`.
    pub(crate) fn read<R>(
        &mut self,
        index: usize,
        generation: u64,
        f: impl FnOnce(&Answer<'_>) -> R,
    ) -> Option<R> {
        let slot = self.pool.slots.get(index)?;
        if slot.state.load(Ordering::Acquire) != pack(generation, DONE) {
            return None;
        }
        let len = slot.stack_len.load(Ordering::Relaxed).min(STACK_WINDOW);
        // SAFETY: the acquire load above saw DONE(generation), so the handler's writes to the
        // buffer happened before; no handler can write again until this slot is re-armed, which
        // needs `&mut self`, which we hold until `f` returns. `len` is clamped to the buffer.
        let stack: &[u8] = unsafe { std::slice::from_raw_parts(slot.stack, len) };
        let answer = Answer {
            regs: Regs {
                pc: slot.pc.load(Ordering::Relaxed),
                sp: slot.sp.load(Ordering::Relaxed),
                fp: slot.fp.load(Ordering::Relaxed),
                lr: slot.lr.load(Ordering::Relaxed),
            },
            stack,
            copy_errno: slot.copy_errno.load(Ordering::Relaxed),
        };
        Some(f(&answer))
    }
}

/// The handler installed for the capture signal. See the module documentation.
pub(crate) extern "C" fn capture_handler(
    _signo: c_int,
    info: *mut libc::siginfo_t,
    context: *mut c_void,
) {
    // SAFETY: __errno_location returns the calling thread's errno address (initial-exec TLS set
    // up before the thread ran any code); reading and writing it is async-signal-safe.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: `errno` is valid and aligned for the life of the thread.
    let saved = unsafe { errno.read() };
    answer(info, context);
    // SAFETY: as above.
    unsafe { errno.write(saved) };
}

/// The body of the handler: async-signal-safe by construction (see the module documentation).
#[inline(always)]
fn answer(info: *mut libc::siginfo_t, context: *mut c_void) {
    if info.is_null() || context.is_null() {
        return;
    }
    // SAFETY: for an SA_SIGINFO handler the kernel passes a valid 128-byte siginfo_t, whose
    // layout for SI_QUEUE is QueueInfo (same size, checked at compile time); we only read it.
    let info = unsafe { &*(info as *const QueueInfo) };
    if info.code != SI_QUEUE || info.pid != OUR_PID.load(Ordering::Acquire) {
        return;
    }
    let index = (info.value & 0xff) as usize;
    let generation = info.value >> 8;
    let pool = POOL.load(Ordering::Acquire);
    if pool.is_null() {
        return;
    }
    // SAFETY: a published pool is never freed.
    let pool = unsafe { &*pool };
    let Some(slot) = pool.slots.get(index) else {
        return;
    };
    if slot
        .state
        .compare_exchange(
            pack(generation, ARMED),
            pack(generation, BUSY),
            Ordering::AcqRel,
            Ordering::Relaxed,
        )
        .is_err()
    {
        return; // stale or foreign payload: write nothing
    }
    // SAFETY: SYS_gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) } as i32;
    if slot.tid.load(Ordering::Relaxed) != tid {
        slot.state.store(pack(generation, ARMED), Ordering::Release);
        return;
    }
    let regs = registers(context);
    let (len, err) = copy_stack(regs.sp, slot.stack);
    slot.pc.store(regs.pc, Ordering::Relaxed);
    slot.sp.store(regs.sp, Ordering::Relaxed);
    slot.fp.store(regs.fp, Ordering::Relaxed);
    slot.lr.store(regs.lr, Ordering::Relaxed);
    slot.stack_len.store(len, Ordering::Relaxed);
    slot.copy_errno.store(err, Ordering::Relaxed);
    slot.state.store(pack(generation, DONE), Ordering::Release);
    ANSWERS.fetch_add(1, Ordering::Release);
    // SAFETY: FUTEX_WAKE only uses the address of the live static word; no memory is accessed.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            ANSWERS.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

/// Registers of the interrupted context (x86_64: RIP, RSP, RBP).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn registers(context: *mut c_void) -> Regs {
    // SAFETY: the third argument of an SA_SIGINFO handler is the ucontext_t of the interrupted
    // context, valid for the duration of the handler; we only read it.
    let uc = unsafe { &*(context as *const libc::ucontext_t) };
    let gregs = &uc.uc_mcontext.gregs;
    let reg = |i: c_int| gregs.get(i as usize).map_or(0, |v| *v as u64);
    Regs {
        pc: reg(libc::REG_RIP),
        sp: reg(libc::REG_RSP),
        fp: reg(libc::REG_RBP),
        lr: 0,
    }
}

/// Registers of the interrupted context (aarch64: PC, SP, X29 as frame pointer, X30 as link
/// register; pointer-authentication bits of X30 are stripped later, by the unwinder).
#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn registers(context: *mut c_void) -> Regs {
    // SAFETY: the third argument of an SA_SIGINFO handler is the ucontext_t of the interrupted
    // context, valid for the duration of the handler; we only read it.
    let uc = unsafe { &*(context as *const libc::ucontext_t) };
    let mc = &uc.uc_mcontext;
    Regs {
        pc: mc.pc,
        sp: mc.sp,
        fp: mc.regs.get(29).copied().unwrap_or(0),
        lr: mc.regs.get(30).copied().unwrap_or(0),
    }
}

/// How many bytes to copy from `sp`: up to the top of its mapping, at most [`STACK_WINDOW`].
#[inline(always)]
fn copy_len(sp: u64) -> usize {
    match MapTable::end_of(sp) {
        Some(end) => {
            usize::try_from(end.saturating_sub(sp)).map_or(STACK_WINDOW, |n| n.min(STACK_WINDOW))
        }
        None => STACK_WINDOW,
    }
}

/// Copies the stack from `sp` up (see [`copy_len`]) into `dst` (a slot buffer of
/// [`STACK_WINDOW`] bytes) along the [`CopyPath`] in force, with a raw system call (no
/// cancellation point): the kernel copies the readable prefix and stops at the first unmapped
/// page (a short count, `EIO` or `EFAULT`), never faulting. Returns the bytes copied and errno
/// when nothing could be copied.
#[inline(always)]
fn copy_stack(sp: u64, dst: *mut u8) -> (usize, i32) {
    if sp > i64::MAX as u64 {
        return (0, libc::EFAULT);
    }
    let len = copy_len(sp);
    let got = match COPY.load(Ordering::Acquire) {
        COPY_PROC_MEM => {
            let fd = super::sys::MEM_FD.load(Ordering::Acquire);
            if fd < 0 {
                return (0, libc::EBADF);
            }
            // SAFETY: `dst` is the slot buffer of STACK_WINDOW bytes, owned by this handler while
            // the slot is BUSY, and `len <= STACK_WINDOW`. The kernel validates the source range
            // of /proc/self/mem (a short count or EIO, never a fault). A raw system call: no
            // cancellation point.
            unsafe {
                libc::syscall(
                    libc::SYS_pread64,
                    fd as libc::c_long,
                    dst.cast::<c_void>(),
                    len,
                    sp as libc::off_t,
                )
            }
        }
        COPY_VM_READV => {
            let local = libc::iovec {
                iov_base: dst.cast::<c_void>(),
                iov_len: len,
            };
            let remote = libc::iovec {
                iov_base: sp as usize as *mut c_void,
                iov_len: len,
            };
            // SAFETY: `local` describes the slot buffer (see above); `remote` is only read by
            // the kernel, which checks it (EFAULT or a short count, never a fault). Both iovecs
            // live on this frame across the call. A raw system call: no cancellation point.
            unsafe {
                libc::syscall(
                    libc::SYS_process_vm_readv,
                    OUR_PID.load(Ordering::Acquire) as libc::c_long,
                    &local as *const libc::iovec,
                    1 as libc::c_ulong,
                    &remote as *const libc::iovec,
                    1 as libc::c_ulong,
                    0 as libc::c_ulong,
                )
            }
        }
        _ => return (0, libc::EBADF),
    };
    if got < 0 {
        // SAFETY: reading this thread's errno, see capture_handler.
        (0, unsafe { libc::__errno_location().read() })
    } else {
        (got as usize, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips() {
        let p = encode_payload(31, 123_456);
        assert_eq!(p & 0xff, 31);
        assert_eq!(p >> 8, 123_456);
        assert_eq!(pack(7, DONE) & PHASE_MASK, DONE);
        assert_eq!(pack(7, DONE) >> 2, 7);
    }
}
