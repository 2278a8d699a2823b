//! Every libc call of gmr, each wrapped safely: the only place outside the signal handler
//! where gmr uses `unsafe`.
//!
//! The portable calls come first (host name, clock ticks, thread id, signal disposition, the
//! coarse clock). The calls of the capture machinery that run on the reporting thread follow,
//! in [`capture_calls`]: signal disposition, sending the capture signal to one thread,
//! checking that a thread still exists, waiting on the answer counter, and reading our own
//! memory without faulting (through `/proc/self/mem`, whose descriptor the handler uses too).
//!
//! Nothing here runs inside the signal handler; the handler's own calls are in
//! `super::handler`.
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
#[inline]
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

/// Opens `name` relative to the directory `dir` (`openat`, `O_CLOEXEC`; `O_DIRECTORY` when
/// `directory`), read-only: a `/proc` file opened without walking its whole path again.
///
/// # Errors
///
/// The I/O error of `openat` (`NotFound` for a thread that has exited).
#[cfg(target_os = "linux")]
pub(crate) fn open_at(
    dir: &std::fs::File,
    name: &std::ffi::CStr,
    directory: bool,
) -> std::io::Result<std::fs::File> {
    use std::os::fd::{AsRawFd as _, FromRawFd as _};
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | if directory { libc::O_DIRECTORY } else { 0 };
    // SAFETY: `dir` is an open descriptor for the duration of the call and `name` a valid C
    // string; openat only reads them.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is owned by nobody else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// The calling thread's signal mask, as a value to restore later.
pub(crate) struct SignalMask(libc::sigset_t);

/// Blocks every signal in the calling thread but `keep` and the synchronous fault signals
/// (which cannot be usefully blocked), returning the mask it had.
pub(crate) fn block_signals_except(keep: &[i32]) -> SignalMask {
    // SAFETY: sigset_t is plain data; sigfillset/sigdelset initialise and edit the local set,
    // and pthread_sigmask reads `set` and writes the old mask into `old`, both valid locals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        for sig in keep
            .iter()
            .chain(&[libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE])
        {
            libc::sigdelset(&mut set, *sig);
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, &mut old);
        SignalMask(old)
    }
}

/// Restores a mask returned by [`block_signals_except`].
pub(crate) fn restore_signal_mask(mask: &SignalMask) {
    // SAFETY: `mask.0` is a mask pthread_sigmask itself filled in; nothing is written.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask.0, std::ptr::null_mut());
    }
}

/// Whether the calling thread blocks `signal`.
#[cfg(test)]
pub(crate) fn blocks_signal(signal: i32) -> bool {
    // SAFETY: a null new mask only queries the current mask into the local `current`.
    unsafe {
        let mut current: libc::sigset_t = std::mem::zeroed();
        libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut current);
        libc::sigismember(&current, signal) == 1
    }
}

/// Gives the memory the C allocator holds free back to the system (`malloc_trim(0)` with
/// glibc: the free pages of every arena, not only the top of the main heap). A no-op with
/// other C libraries. Called by the reporter once it has been idle for a moment after making
/// reports: a flood of reports leaves free memory scattered over the arenas of the threads
/// that served it, which glibc would otherwise keep for the life of the process.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only walks the allocator's own arenas
    // under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Waits up to `timeout` until `fd` can take a write (`poll` for `POLLOUT`): `Ok(true)` when
/// it can, or when a write would fail at once (the reader is gone: the write then says why);
/// `Ok(false)` when the time passed (or a signal interrupted the wait). On a pipe, "can take a
/// write" means room for at least `PIPE_BUF` bytes, so a write of that size does not block.
///
/// # Errors
///
/// `EBADF` when `fd` is not open (`POLLNVAL`); the I/O error of `poll`.
pub(crate) fn wait_writable(
    fd: std::os::fd::BorrowedFd<'_>,
    timeout: std::time::Duration,
) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd as _;
    let mut pollfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pollfd` is one valid, writable pollfd for the duration of the call.
    let rc = unsafe { libc::poll(&mut pollfd, 1, millis) };
    if rc < 0 {
        let error = std::io::Error::last_os_error();
        return if error.kind() == std::io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(error)
        };
    }
    if pollfd.revents & libc::POLLNVAL != 0 {
        return Err(std::io::Error::from_raw_os_error(libc::EBADF));
    }
    Ok(rc > 0 && pollfd.revents & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) != 0)
}

pub(crate) use self::file_calls::*;

/// The calls that publish a report file from its descriptor (`sink/dir.rs`): an unnamed file
/// (`O_TMPFILE`) given its name with `linkat`, and the directory-relative calls of the fallback
/// for filesystems without `O_TMPFILE`. Every path argument is one name inside a directory
/// descriptor, never a path that could be redirected.
mod file_calls {
    use std::ffi::CStr;
    use std::fs::File;
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};

    /// The result of a call returning `-1` on error.
    fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    }

    /// An unnamed regular file in the directory `dir` (`O_TMPFILE`), open for writing, with
    /// `mode` (less the umask). Nobody else can open it: it has no name until [`link_fd_at`]
    /// gives it one.
    ///
    /// # Errors
    ///
    /// `EOPNOTSUPP` (or `EISDIR`, `EINVAL` on old kernels) where the filesystem has no
    /// `O_TMPFILE`; the I/O error otherwise. Always `Unsupported` outside Linux.
    pub(crate) fn open_unnamed_in(dir: BorrowedFd<'_>, mode: u32) -> io::Result<File> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // SAFETY: `dir` is a live descriptor for the duration of the call, the path is a
            // NUL-terminated literal, and the mode is passed as the variadic `mode_t` openat
            // expects with O_TMPFILE.
            let fd = check(unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    c".".as_ptr(),
                    libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC,
                    mode as libc::mode_t,
                )
            })?;
            // SAFETY: openat just returned this descriptor, which nothing else owns.
            Ok(unsafe { File::from_raw_fd(fd) })
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = (dir, mode);
            Err(io::Error::from(io::ErrorKind::Unsupported))
        }
    }

    /// Creates `name` in `dir` for writing with `mode` (less the umask): exclusively, never
    /// following a symbolic link (`O_CREAT | O_EXCL | O_NOFOLLOW`).
    ///
    /// # Errors
    ///
    /// `EEXIST` if anything is at that name; the I/O error otherwise.
    pub(crate) fn create_new_in(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<File> {
        // SAFETY: `dir` is live, `name` is NUL-terminated and outlives the call; the mode is
        // the variadic `mode_t` openat takes with O_CREAT.
        let fd = check(unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_WRONLY | libc::O_CLOEXEC,
                mode as libc::mode_t,
            )
        })?;
        // SAFETY: openat just returned this descriptor, which nothing else owns.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Gives the open file `file` the name `name` in `dir` (`linkat`), failing with `EEXIST`
    /// rather than replacing anything at that name (a symbolic link is not followed there).
    /// The link is made from the descriptor: `AT_EMPTY_PATH`, or where that needs a capability
    /// the process lacks, `/proc/self/fd/N` with `AT_SYMLINK_FOLLOW` (the magic link of the
    /// descriptor itself, not a path anyone else can change).
    ///
    /// # Errors
    ///
    /// `EEXIST` if the name is taken; the I/O error otherwise.
    pub(crate) fn link_fd_at(file: &File, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // SAFETY: both descriptors are live, both paths are NUL-terminated and outlive the
            // call; linkat only reads them.
            let first = check(unsafe {
                libc::linkat(
                    file.as_raw_fd(),
                    c"".as_ptr(),
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::AT_EMPTY_PATH,
                )
            });
            match first {
                Ok(_) => return Ok(()),
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::EPERM)) => {}
                Err(e) => return Err(e),
            }
            let magic = std::ffi::CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
                .map_err(io::Error::other)?;
            // SAFETY: as above; `magic` is a NUL-terminated path that outlives the call.
            check(unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    magic.as_ptr(),
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    libc::AT_SYMLINK_FOLLOW,
                )
            })
            .map(drop)
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = (file, dir, name);
            Err(io::Error::from(io::ErrorKind::Unsupported))
        }
    }

    /// Links `from` to `to`, both names in `dir`, without following a symbolic link at `from`
    /// and failing with `EEXIST` if `to` is taken.
    ///
    /// # Errors
    ///
    /// The I/O error.
    pub(crate) fn link_name_at(dir: BorrowedFd<'_>, from: &CStr, to: &CStr) -> io::Result<()> {
        // SAFETY: `dir` is live; both names are NUL-terminated and outlive the call.
        check(unsafe {
            libc::linkat(
                dir.as_raw_fd(),
                from.as_ptr(),
                dir.as_raw_fd(),
                to.as_ptr(),
                0,
            )
        })
        .map(drop)
    }

    /// Renames `from` to `to`, both names in `dir` (replacing what is at `to`: the caller
    /// checks first and verifies after).
    ///
    /// # Errors
    ///
    /// The I/O error.
    pub(crate) fn rename_at(dir: BorrowedFd<'_>, from: &CStr, to: &CStr) -> io::Result<()> {
        // SAFETY: `dir` is live; both names are NUL-terminated and outlive the call.
        check(unsafe {
            libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr())
        })
        .map(drop)
    }

    /// Removes the name `name` from `dir` (never a directory).
    ///
    /// # Errors
    ///
    /// The I/O error (`ENOENT` when it is already gone).
    pub(crate) fn unlink_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
        // SAFETY: `dir` is live; `name` is NUL-terminated and outlives the call.
        check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }).map(drop)
    }

    /// The device and inode of what `name` in `dir` is, without following a symbolic link.
    ///
    /// # Errors
    ///
    /// The I/O error (`ENOENT` when nothing is there).
    pub(crate) fn identity_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<(u64, u64)> {
        let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
        // SAFETY: `dir` is live, `name` is NUL-terminated, and `st` is writable memory of the
        // right type that fstatat fills on success.
        check(unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                name.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })?;
        // SAFETY: zero-initialised and filled by fstatat; plain data.
        let st = unsafe { st.assume_init() };
        #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
        Ok((st.st_dev as u64, st.st_ino as u64))
    }
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub(crate) use self::capture_calls::*;

/// The system calls of the capture machinery (Linux x86_64 and aarch64).
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod capture_calls {

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
    const _: () =
        assert!(std::mem::size_of::<QueueInfo>() == std::mem::size_of::<libc::siginfo_t>());

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

    /// An open `/proc/self/mem` of this process, read by the signal handler with `pread64`, or
    /// -1.
    ///
    /// `pread` on `/proc/self/mem` returns the readable prefix of a range (or `EIO`) instead of
    /// faulting, like `process_vm_readv`; unlike it, it is allowed by the common seccomp profiles
    /// (systemd's `@system-service` leaves `process_vm_readv` out, and a filtered call kills the
    /// process with SIGSYS by default: a diagnostic tool must never do that).
    pub(crate) static MEM_FD: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

    /// What `MEM_FD` was opened as: pid, device and inode (a forked child must open its own; a
    /// descriptor the application closed and reused for another file is not ours any more).
    static MEM_FD_ID: std::sync::Mutex<Option<(i32, u64, u64)>> = std::sync::Mutex::new(None);

    /// The device and inode of an open descriptor (`fstat`).
    fn file_id(fd: i32) -> io::Result<(u64, u64)> {
        let mut st = MaybeUninit::<libc::stat>::zeroed();
        // SAFETY: `st` is writable memory of the right type; fstat fills it on success and
        // touches nothing else; a closed `fd` is an EBADF error.
        let rc = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: zeroed, then filled by fstat: plain data.
        let st = unsafe { st.assume_init() };
        Ok((st.st_dev, st.st_ino))
    }

    /// Makes sure [`MEM_FD`] is an open `/proc/self/mem` of this process: opens it the first
    /// time, after a fork, or when the application closed or replaced the descriptor, and
    /// otherwise keeps the one it has (a capture opens no descriptor once the first one is open).
    ///
    /// It is opened through `/proc/thread-self/mem`: once the main thread has called
    /// `pthread_exit`, the leader's `/proc/self/mem` opens but reads nothing. The descriptor
    /// keeps the address space, so it stays valid after the opening thread exits.
    ///
    /// # Errors
    ///
    /// The I/O error of opening the file (`PermissionDenied` in a process that is not
    /// dumpable, where it belongs to root).
    pub(crate) fn ensure_mem_fd() -> io::Result<i32> {
        use std::os::fd::IntoRawFd;
        use std::sync::atomic::Ordering;
        let pid = getpid();
        let mut id = MEM_FD_ID
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fd = MEM_FD.load(Ordering::Acquire);
        if fd >= 0
            && let Some((opened_pid, dev, ino)) = *id
            && opened_pid == pid
            && file_id(fd).is_ok_and(|now| now == (dev, ino))
        {
            return Ok(fd);
        }
        let file = std::fs::File::open("/proc/thread-self/mem")
            .or_else(|_| std::fs::File::open(format!("/proc/self/task/{}/mem", gettid())))?;
        let new_fd = file.into_raw_fd();
        let (dev, ino) = file_id(new_fd)?;
        *id = Some((pid, dev, ino));
        // An earlier descriptor was closed or replaced by the application (or belongs to the
        // parent of a fork): it is not ours any more, so it is left alone rather than closed.
        MEM_FD.store(new_fd, Ordering::Release);
        Ok(new_fd)
    }

    /// The copy path in force for [`read_own_memory`] (the handler has its own copy of it).
    static READ_PATH: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    const READ_PROC_MEM: u8 = 1;
    const READ_VM_READV: u8 = 2;

    /// Makes [`read_own_memory`] use `process_vm_readv` (`true`) or `/proc/self/mem`.
    pub(crate) fn set_read_with_vm_readv(vm_readv: bool) {
        READ_PATH.store(
            if vm_readv {
                READ_VM_READV
            } else {
                READ_PROC_MEM
            },
            std::sync::atomic::Ordering::Release,
        );
    }

    /// Copies our own memory at `addr` into `buf` with `process_vm_readv` on our own pid, which
    /// stops at the first unreadable page instead of faulting. Returns the bytes copied.
    fn vm_readv_own(addr: u64, buf: &mut [u8]) -> io::Result<usize> {
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast::<c_void>(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as usize as *mut c_void,
            iov_len: buf.len(),
        };
        // SAFETY: `local` describes `buf`, writable for its length for the duration of the
        // call; the kernel checks `remote` (EFAULT or a short count, never a fault).
        let got = unsafe { libc::process_vm_readv(getpid(), &local, 1, &remote, 1, 0) };
        if got < 0 {
            let err = io::Error::last_os_error();
            return if err.raw_os_error() == Some(libc::EFAULT) {
                Ok(0)
            } else {
                Err(err)
            };
        }
        Ok(got as usize)
    }

    /// Copies our own memory at `addr` into `buf` with `pread64` on [`MEM_FD`] (or
    /// `process_vm_readv`, see [`set_read_with_vm_readv`]), which stops at the first unreadable
    /// page instead of faulting. Returns how many bytes were copied from the start.
    pub(crate) fn read_own_memory(addr: u64, buf: &mut [u8]) -> io::Result<usize> {
        if READ_PATH.load(std::sync::atomic::Ordering::Acquire) == READ_VM_READV {
            return vm_readv_own(addr, buf);
        }
        // The capture checks the descriptor once before it reads modules and stacks; open it here
        // only if nothing has yet.
        let fd = match MEM_FD.load(std::sync::atomic::Ordering::Acquire) {
            fd if fd >= 0 => fd,
            _ => ensure_mem_fd()?,
        };
        let Ok(offset) = libc::off_t::try_from(addr) else {
            return Ok(0);
        };
        let mut done = 0usize;
        while done < buf.len() {
            let rest = &mut buf[done..];
            // SAFETY: `rest` is writable for `rest.len()` bytes and outlives the call.
            let got = unsafe {
                libc::pread(
                    fd,
                    rest.as_mut_ptr().cast::<c_void>(),
                    rest.len(),
                    offset.saturating_add(done as libc::off_t),
                )
            };
            if got <= 0 {
                let err = io::Error::last_os_error();
                if got < 0 && done == 0 && err.raw_os_error() != Some(libc::EIO) {
                    return Err(err);
                }
                break;
            }
            done += got as usize;
        }
        Ok(done)
    }
}
