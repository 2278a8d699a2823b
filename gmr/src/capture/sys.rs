//! The system calls of the capture machinery that run on the reporting thread, each wrapped
//! safely: signal disposition, sending the capture signal to one thread, checking that a thread
//! still exists, waiting on the answer counter, and reading our own memory without faulting.
//!
//! Nothing here runs inside the signal handler; the handler's own calls are in
//! [`super::handler`].
#![allow(unsafe_code)]

use std::io;
use std::mem::MaybeUninit;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use libc::{c_int, c_void};

/// `si_code` of a signal sent with `sigqueue`/`rt_tgsigqueueinfo` (`SI_QUEUE`).
pub(crate) const SI_QUEUE: i32 = -1;

/// The kernel's `siginfo_t` as filled for `SI_QUEUE` on 64-bit Linux (128 bytes).
///
/// Declared here rather than taken from `libc` because `libc::siginfo_t` keeps the union fields
/// private and has no constructor; the layout is the kernel ABI (`include/uapi/asm-generic/siginfo.h`):
/// three `int`s, padding to 8, then the `_rt` member `{ pid, uid, sigval }`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueInfo {
    /// Signal number.
    pub(crate) signo: i32,
    /// Always 0 here.
    pub(crate) errno: i32,
    /// [`SI_QUEUE`].
    pub(crate) code: i32,
    _pad: i32,
    /// Sender's pid.
    pub(crate) pid: i32,
    /// Sender's uid.
    pub(crate) uid: u32,
    /// The `sigval` payload: slot index and generation.
    pub(crate) value: u64,
    _rest: [u64; 12],
}

const _: () = assert!(std::mem::size_of::<QueueInfo>() == 128);
const _: () = assert!(std::mem::size_of::<QueueInfo>() == std::mem::size_of::<libc::siginfo_t>());

impl QueueInfo {
    pub(crate) fn new(signo: i32, pid: i32, value: u64) -> Self {
        QueueInfo {
            signo,
            errno: 0,
            code: SI_QUEUE,
            _pad: 0,
            pid,
            // SAFETY: getuid has no preconditions and cannot fail.
            uid: unsafe { libc::getuid() },
            value,
            _rest: [0; 12],
        }
    }
}

/// The kernel thread id of the calling thread (async-signal-safe: one raw system call).
pub(crate) fn gettid() -> i32 {
    // SAFETY: SYS_gettid takes no arguments, cannot fail and touches no memory.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The process id.
pub(crate) fn getpid() -> i32 {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() }
}

/// `SIGRTMIN()` as the C library sees it (glibc reserves the first few real-time signals).
pub(crate) fn sigrtmin() -> i32 {
    libc::SIGRTMIN()
}

/// `SIGRTMAX()`.
pub(crate) fn sigrtmax() -> i32 {
    libc::SIGRTMAX()
}

/// Who handles a signal right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// `SIG_DFL`: for a real-time signal, delivery would kill the process.
    Default,
    /// `SIG_IGN`.
    Ignore,
    /// Our handler, installed with `SA_SIGINFO`.
    Ours,
    /// Somebody else's handler (its address).
    Foreign(usize),
}

/// The signature of an `SA_SIGINFO` handler.
pub(crate) type SigactionFn = extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void);

/// The current disposition of `sig`, compared with `ours`.
pub(crate) fn disposition(sig: i32, ours: SigactionFn) -> io::Result<Disposition> {
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null `act` only queries; `old` points to writable memory of the right type,
    // which the call fills completely on success (and which is zeroed anyway).
    let rc = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: zero-initialised and filled by sigaction; every bit pattern is valid for this
    // plain-data struct.
    let old = unsafe { old.assume_init() };
    Ok(match old.sa_sigaction {
        libc::SIG_DFL => Disposition::Default,
        libc::SIG_IGN => Disposition::Ignore,
        h if h == ours as *const () as usize && old.sa_flags & libc::SA_SIGINFO != 0 => {
            Disposition::Ours
        }
        h => Disposition::Foreign(h),
    })
}

/// Installs `handler` for `sig` with `SA_SIGINFO | SA_RESTART` and every signal blocked while it
/// runs. No `SA_ONSTACK`: Rust's alternate signal stack is a few KiB and meant for stack
/// overflow reports; the handler runs on the thread's own stack, like any function call.
pub(crate) fn install(sig: i32, handler: SigactionFn) -> io::Result<()> {
    let mut act = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: `act` is zeroed memory of the right type; we set the fields sigaction reads and
    // fill the mask with sigfillset before use. The handler is an `extern "C"` function with
    // the SA_SIGINFO signature and lives for the whole program.
    let rc = unsafe {
        let p = act.as_mut_ptr();
        (*p).sa_sigaction = handler as *const () as usize;
        (*p).sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        libc::sigfillset(&mut (*p).sa_mask);
        libc::sigaction(sig, p, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Queues `sig` with payload `value` to thread `tid` of process `pid` (`rt_tgsigqueueinfo`):
/// exactly that thread, never another one of the process.
pub(crate) fn queue_signal(pid: i32, tid: i32, sig: i32, value: u64) -> io::Result<()> {
    let mut info = QueueInfo::new(sig, pid, value);
    // SAFETY: `info` is a valid, fully initialised 128-byte siginfo for SI_QUEUE that lives
    // across the call; the kernel only reads it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_tgsigqueueinfo,
            pid as libc::c_long,
            tid as libc::c_long,
            sig as libc::c_long,
            &mut info as *mut QueueInfo,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether thread `tid` of process `pid` still exists (`tgkill` with signal 0 sends nothing).
pub(crate) fn thread_exists(pid: i32, tid: i32) -> bool {
    // SAFETY: signal 0 performs only the existence and permission checks.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            pid as libc::c_long,
            tid as libc::c_long,
            0,
        )
    };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Sleeps until `word` is woken or no longer holds `expected`, or `timeout` passes.
/// Spurious returns are fine: the caller re-checks its condition.
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `word` is a live, aligned u32 for the duration of the call; `ts` is a valid
    // relative timeout. FUTEX_WAIT only reads the word.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const libc::timespec,
        );
    }
}

/// Copies `buf.len()` bytes of our own memory at `addr` into `buf` with `process_vm_readv`,
/// which returns a short count (or an error) instead of faulting on unmapped memory. Returns
/// how many bytes were copied from the start.
pub(crate) fn read_own_memory(addr: u64, buf: &mut [u8]) -> io::Result<usize> {
    const CHUNK: u64 = 4096;
    const IOVS: usize = 256;
    let pid = getpid();
    let mut done = 0usize;
    while done < buf.len() {
        // One iovec per 4 KiB-aligned chunk: a partial transfer stops at the first chunk that
        // cannot be read, so `done` always counts a contiguous readable prefix.
        let mut remote = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; IOVS];
        let mut n = 0;
        let start = addr.wrapping_add(done as u64);
        let mut at = start;
        let end = addr.saturating_add(buf.len() as u64);
        while n < IOVS && at < end {
            let next = ((at / CHUNK).saturating_add(1))
                .saturating_mul(CHUNK)
                .min(end);
            remote[n] = libc::iovec {
                iov_base: at as *mut c_void,
                iov_len: (next - at) as usize,
            };
            n += 1;
            at = next;
        }
        let want = (at - start) as usize;
        let dst = &mut buf[done..done + want];
        let local = libc::iovec {
            iov_base: dst.as_mut_ptr().cast(),
            iov_len: dst.len(),
        };
        // SAFETY: `local` describes `dst`, writable and alive for the call; `remote` are plain
        // addresses of our own process that the kernel checks (EFAULT, never a fault).
        let got = unsafe {
            libc::process_vm_readv(pid, &local, 1, remote.as_ptr(), n as libc::c_ulong, 0)
        };
        if got < 0 {
            let err = io::Error::last_os_error();
            if done == 0 && err.raw_os_error() != Some(libc::EFAULT) {
                return Err(err);
            }
            break;
        }
        done += got as usize;
        if (got as usize) < want {
            break;
        }
    }
    Ok(done)
}
