//! The few libc calls the engine needs outside the capture machinery, each wrapped safely.
#![allow(unsafe_code)]

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of CPU times in `/proc`.
pub(crate) fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf takes an integer name and has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// The host name (`gethostname`), or `None` if it cannot be read.
pub(crate) fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call; gethostname
    // writes at most `len` bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

/// The calling thread's kernel thread id.
#[cfg(target_os = "linux")]
pub(crate) fn current_tid() -> i32 {
    // SAFETY: gettid has no preconditions and cannot fail.
    unsafe { libc::gettid() }
}

/// The calling thread's kernel thread id (not available on this platform: 0).
#[cfg(not(target_os = "linux"))]
pub(crate) fn current_tid() -> i32 {
    0
}

/// Whether `signal`'s disposition is `SIG_IGN` right now (set by the host or inherited).
pub(crate) fn signal_is_ignored(signal: i32) -> std::io::Result<bool> {
    // SAFETY: an all-zero sigaction is a valid value to be overwritten by the kernel.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; `old` is a valid, writable sigaction.
    let rc = unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(old.sa_sigaction == libc::SIG_IGN)
}

/// A cheap monotonic clock: `CLOCK_MONOTONIC_COARSE` (a few ns, resolution of one scheduler
/// tick, 1 to 10 ms) where Linux has it, else `CLOCK_MONOTONIC`. Time since an arbitrary
/// point (boot).
pub(crate) fn coarse_monotonic() -> std::time::Duration {
    #[cfg(target_os = "linux")]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;
    #[cfg(not(target_os = "linux"))]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; clock_gettime writes only into it.
    let rc = unsafe { libc::clock_gettime(CLOCK, &mut ts) };
    if rc != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}
