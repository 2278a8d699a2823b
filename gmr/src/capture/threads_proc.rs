//! What `/proc/self/task/<tid>/` says about each thread: name, state, signal masks, CPU time,
//! wait channel and current system call. Read on the reporting thread before any thread is
//! signalled (the signal would briefly wake a blocked thread out of its system call).

use std::fs;
use std::io;
use std::time::Duration;

/// The system call a blocked thread is in, from `/proc/self/task/<tid>/syscall`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Syscall {
    /// System call number.
    pub(crate) nr: i64,
    /// The six argument registers.
    pub(crate) args: [u64; 6],
}

impl Syscall {
    /// Parses the file: `nr a0 … a5 sp pc` (blocked in a system call), `-1 sp pc` (blocked
    /// elsewhere) or `running`. Only the first form gives a `Syscall`.
    pub(crate) fn parse(text: &str) -> Option<Syscall> {
        let mut fields = text.split_ascii_whitespace();
        let nr: i64 = fields.next()?.parse().ok()?;
        if nr < 0 {
            return None;
        }
        let mut args = [0u64; 6];
        for arg in &mut args {
            let f = fields.next()?;
            *arg = u64::from_str_radix(f.trim_start_matches("0x"), 16).ok()?;
        }
        Some(Syscall { nr, args })
    }

    /// The name of the system call, for the common ones (else `None`).
    pub(crate) fn name(&self) -> Option<&'static str> {
        syscall_name(self.nr)
    }

    /// For a futex wait: the futex address (its first argument), the operation's name.
    pub(crate) fn futex_wait(&self) -> Option<(u64, &'static str)> {
        if self.name() != Some("futex") {
            return None;
        }
        let op = self.args[1];
        let cmd = op & 0x7f;
        let private = op & 128 != 0;
        let name = match (cmd, private) {
            (0, false) => "FUTEX_WAIT",
            (0, true) => "FUTEX_WAIT_PRIVATE",
            (6, false) => "FUTEX_LOCK_PI",
            (6, true) => "FUTEX_LOCK_PI_PRIVATE",
            (9, false) => "FUTEX_WAIT_BITSET",
            (9, true) => "FUTEX_WAIT_BITSET_PRIVATE",
            (11, _) => "FUTEX_WAIT_REQUEUE_PI",
            (13, _) => "FUTEX_LOCK_PI2",
            _ => return None,
        };
        Some((self.args[0], name))
    }

    /// A short rendering: `futex(0x…, FUTEX_WAIT_PRIVATE)`, `epoll_wait(fd 5)`, `read(fd 3)`,
    /// `syscall 1234`.
    pub(crate) fn describe(&self) -> String {
        if let Some((addr, op)) = self.futex_wait() {
            return format!("futex({addr:#x}, {op})");
        }
        match self.name() {
            Some(
                name @ ("read" | "write" | "readv" | "writev" | "pread64" | "pwrite64" | "recvfrom"
                | "recvmsg" | "sendto" | "sendmsg" | "accept" | "accept4" | "connect"
                | "epoll_wait" | "epoll_pwait" | "epoll_pwait2" | "fsync" | "fdatasync"
                | "flock" | "recvmmsg" | "sendmmsg" | "ioctl"),
            ) => format!("{name}(fd {})", self.args[0] as i32),
            Some(name) => format!("{name}()"),
            None => format!("syscall {}", self.nr),
        }
    }
}

/// Names of the system calls a blocked thread is usually in.
#[cfg(target_arch = "x86_64")]
fn syscall_name(nr: i64) -> Option<&'static str> {
    Some(match nr {
        0 => "read",
        1 => "write",
        3 => "close",
        7 => "poll",
        9 => "mmap",
        16 => "ioctl",
        17 => "pread64",
        18 => "pwrite64",
        19 => "readv",
        20 => "writev",
        23 => "select",
        24 => "sched_yield",
        34 => "pause",
        35 => "nanosleep",
        42 => "connect",
        43 => "accept",
        44 => "sendto",
        45 => "recvfrom",
        46 => "sendmsg",
        47 => "recvmsg",
        56 => "clone",
        61 => "wait4",
        72 => "fcntl",
        73 => "flock",
        74 => "fsync",
        75 => "fdatasync",
        128 => "rt_sigtimedwait",
        130 => "rt_sigsuspend",
        202 => "futex",
        208 => "io_getevents",
        230 => "clock_nanosleep",
        232 => "epoll_wait",
        247 => "waitid",
        257 => "openat",
        270 => "pselect6",
        271 => "ppoll",
        275 => "splice",
        281 => "epoll_pwait",
        288 => "accept4",
        299 => "recvmmsg",
        307 => "sendmmsg",
        318 => "getrandom",
        426 => "io_uring_enter",
        435 => "clone3",
        441 => "epoll_pwait2",
        449 => "futex_waitv",
        _ => return None,
    })
}

/// Names of the system calls a blocked thread is usually in (the generic table of aarch64).
#[cfg(target_arch = "aarch64")]
fn syscall_name(nr: i64) -> Option<&'static str> {
    Some(match nr {
        4 => "io_getevents",
        22 => "epoll_pwait",
        25 => "fcntl",
        29 => "ioctl",
        32 => "flock",
        56 => "openat",
        57 => "close",
        63 => "read",
        64 => "write",
        65 => "readv",
        66 => "writev",
        67 => "pread64",
        68 => "pwrite64",
        72 => "pselect6",
        73 => "ppoll",
        76 => "splice",
        82 => "fsync",
        83 => "fdatasync",
        95 => "waitid",
        98 => "futex",
        101 => "nanosleep",
        115 => "clock_nanosleep",
        124 => "sched_yield",
        133 => "rt_sigsuspend",
        137 => "rt_sigtimedwait",
        202 => "accept",
        203 => "connect",
        206 => "sendto",
        207 => "recvfrom",
        211 => "sendmsg",
        212 => "recvmsg",
        220 => "clone",
        222 => "mmap",
        242 => "accept4",
        243 => "recvmmsg",
        260 => "wait4",
        269 => "sendmmsg",
        278 => "getrandom",
        426 => "io_uring_enter",
        435 => "clone3",
        441 => "epoll_pwait2",
        449 => "futex_waitv",
        _ => return None,
    })
}

/// Other architectures: numbers only.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn syscall_name(_nr: i64) -> Option<&'static str> {
    None
}

/// One thread as `/proc` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcThread {
    /// Kernel thread id.
    pub(crate) tid: i32,
    /// `comm` (at most 15 bytes).
    pub(crate) comm: String,
    /// One-letter state.
    pub(crate) state: char,
    /// Signals blocked by the thread (bit `n - 1` for signal `n`).
    pub(crate) sig_blocked: u64,
    /// Signals pending for the thread alone.
    pub(crate) sig_pending: u64,
    /// Its seccomp state: a thread whose state differs from the reporter's is not signalled.
    pub(crate) seccomp: Seccomp,
    /// User CPU time.
    pub(crate) user: Duration,
    /// System CPU time.
    pub(crate) system: Duration,
    /// Start time after boot, in clock ticks (identifies the thread across TID reuse).
    pub(crate) start_ticks: u64,
    /// Time on a CPU in nanoseconds (`schedstat`, finer than the clock ticks of `stat`), when
    /// the kernel has it.
    pub(crate) run_ns: Option<u64>,
    /// How many times it was scheduled onto a CPU (`schedstat`).
    pub(crate) runs: Option<u64>,
    /// `run_ns` and `runs` again once the capture is over (the capture signal's handler ran
    /// on the thread in between).
    pub(crate) sched_after: Option<(u64, u64)>,
    /// Kernel function the thread sleeps in (`wchan`), if blocked.
    pub(crate) wchan: Option<String>,
    /// The system call it is blocked in.
    pub(crate) syscall: Option<Syscall>,
}

impl ProcThread {
    /// Whether `sig` is blocked by the thread.
    pub(crate) fn blocks(&self, sig: i32) -> bool {
        (1..=64).contains(&sig) && self.sig_blocked & (1u64 << (sig - 1)) != 0
    }

    /// Human name of the state letter.
    pub(crate) fn state_name(&self) -> &'static str {
        state_name(self.state)
    }
}

/// Human name of a state letter of `/proc/<pid>/stat`.
pub(crate) fn state_name(state: char) -> &'static str {
    match state {
        'R' => "running",
        'S' => "sleeping",
        'D' => "disk sleep",
        'T' => "stopped",
        't' => "tracing stop",
        'Z' => "zombie",
        'X' => "dead",
        'I' => "idle",
        'P' => "parked",
        _ => "unknown",
    }
}

/// Thread ids of this process, ascending.
pub(crate) fn list_tids() -> io::Result<Vec<i32>> {
    let mut tids: Vec<i32> = fs::read_dir("/proc/self/task")?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable();
    Ok(tids)
}

/// Fields of `status` we need, parsed without building a map.
#[derive(Debug, Default, PartialEq, Eq)]
struct Status {
    state: Option<char>,
    sig_blocked: u64,
    sig_pending: u64,
    seccomp: Seccomp,
}

/// A thread's seccomp state (`Seccomp` and `Seccomp_filters` of its `status`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seccomp {
    /// 0: none, 1: strict, 2: filter; `None` when the kernel does not say.
    pub(crate) mode: Option<u8>,
    /// Number of filters attached (kernels ≥ 5.9 say).
    pub(crate) filters: Option<u32>,
}

impl Seccomp {
    /// Whether a seccomp filter (or strict mode) is in force.
    pub(crate) fn filtered(&self) -> bool {
        self.mode.is_some_and(|m| m != 0) || self.filters.is_some_and(|f| f != 0)
    }
}

impl std::fmt::Display for Seccomp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match self.mode {
            Some(0) => "none",
            Some(1) => "strict",
            Some(2) => "filter",
            Some(_) => "unknown mode",
            None => "not shown",
        };
        match self.filters {
            Some(n) => write!(f, "seccomp {mode}, {n} filters"),
            None => write!(f, "seccomp {mode}"),
        }
    }
}

/// Parses the fields of a `status` file that the capture needs. Bytes: the `Name` line may
/// hold any byte, the lines we read are ASCII.
fn parse_status(bytes: &[u8]) -> Status {
    let mut st = Status::default();
    for line in bytes.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (key, value) = (&line[..colon], &line[colon + 1..]);
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        let value = value.trim();
        match key {
            b"State" => st.state = value.chars().next(),
            b"SigBlk" => st.sig_blocked = u64::from_str_radix(value, 16).unwrap_or(0),
            b"SigPnd" => st.sig_pending = u64::from_str_radix(value, 16).unwrap_or(0),
            b"Seccomp" => st.seccomp.mode = value.parse().ok(),
            b"Seccomp_filters" => st.seccomp.filters = value.parse().ok(),
            _ => {}
        }
    }
    st
}

/// Reads the `/proc` files of threads, reusing one descriptor of the task directory and one
/// buffer for every file: each thread costs one `openat` of its directory and one `openat`
/// and `read` per file, no path walk from `/` and no allocation but the values kept.
///
/// Paths go through `/proc/self/task/<tid>`, never `/proc/self/<file>`: once the main thread
/// has called `pthread_exit`, the leader's own files (`/proc/self/mem`, `maps`, `fd`) read as
/// empty, while every live thread's directory still answers.
#[derive(Debug)]
pub(crate) struct ProcReader {
    task: fs::File,
    buf: Vec<u8>,
    ticks_per_second: u64,
}

impl ProcReader {
    /// Opens `/proc/self/task`.
    pub(crate) fn open(ticks_per_second: u64) -> io::Result<Self> {
        Ok(ProcReader {
            task: fs::File::open("/proc/self/task")?,
            buf: Vec::with_capacity(4096),
            ticks_per_second: ticks_per_second.max(1),
        })
    }

    /// Reads `name` of the directory `dir` into the buffer.
    fn read(&mut self, dir: &fs::File, name: &std::ffi::CStr) -> io::Result<&[u8]> {
        use std::io::Read as _;
        let mut file = super::sys::open_at(dir, name, false)?;
        self.buf.clear();
        file.read_to_end(&mut self.buf)?;
        Ok(&self.buf)
    }

    /// The seccomp state of thread `tid` (for the reporting thread, compared with the others).
    pub(crate) fn seccomp(&mut self, tid: i32) -> io::Result<Seccomp> {
        let dir = self.thread_dir(tid)?;
        Ok(parse_status(self.read(&dir, c"status")?).seccomp)
    }

    fn thread_dir(&self, tid: i32) -> io::Result<fs::File> {
        let name = std::ffi::CString::new(tid.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        super::sys::open_at(&self.task, &name, true)
    }

    /// Thread `tid`'s time on a CPU in nanoseconds and how many times it was scheduled
    /// (`schedstat`), if readable. `schedstat` is scheduler data only (no lock of the thread's
    /// memory map), so reading it cannot block.
    pub(crate) fn schedstat(&mut self, tid: i32) -> Option<(u64, u64)> {
        let dir = self.thread_dir(tid).ok()?;
        self.read(&dir, c"schedstat").ok().and_then(parse_schedstat)
    }

    /// Reads one thread. `Err` with `NotFound` means it has exited.
    pub(crate) fn read_thread(&mut self, tid: i32) -> io::Result<ProcThread> {
        let dir = self.thread_dir(tid)?;
        let stat = crate::procfs::parse_stat(self.read(&dir, c"stat")?).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected /proc/self/task/{tid}/stat"),
            )
        })?;
        let status = parse_status(self.read(&dir, c"status")?);
        let sched = self.read(&dir, c"schedstat").ok().and_then(parse_schedstat);
        let state = status.state.unwrap_or(stat.state);
        let ticks = self.ticks_per_second;
        let to_duration = |t: u64| Duration::from_nanos(t.saturating_mul(1_000_000_000) / ticks);
        let blocked = matches!(state, 'S' | 'D');
        let wchan = if blocked {
            self.read(&dir, c"wchan")
                .ok()
                .map(|w| String::from_utf8_lossy(w).trim().to_owned())
                .filter(|w| !w.is_empty() && w != "0")
        } else {
            None
        };
        // Not readable in a process that is not dumpable: the thread is shown without it.
        let syscall = if blocked {
            self.read(&dir, c"syscall")
                .ok()
                .and_then(|s| Syscall::parse(&String::from_utf8_lossy(s)))
        } else {
            None
        };
        Ok(ProcThread {
            tid,
            comm: stat.comm,
            state,
            sig_blocked: status.sig_blocked,
            sig_pending: status.sig_pending,
            seccomp: status.seccomp,
            user: to_duration(stat.utime),
            system: to_duration(stat.stime),
            start_ticks: stat.starttime,
            run_ns: sched.map(|(ns, _)| ns),
            runs: sched.map(|(_, runs)| runs),
            sched_after: None,
            wchan,
            syscall,
        })
    }
}

/// The first and third fields of `schedstat`: nanoseconds spent on a CPU, and how many times
/// the thread was scheduled.
fn parse_schedstat(schedstat: &[u8]) -> Option<(u64, u64)> {
    let mut fields = std::str::from_utf8(schedstat)
        .ok()?
        .split_ascii_whitespace();
    let ns = fields.next()?.parse().ok()?;
    let runs = fields.nth(1)?.parse().ok()?;
    Some((ns, runs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedstat_gives_nanoseconds_on_a_cpu() {
        assert_eq!(
            parse_schedstat(b"123456789 2000 17\n"),
            Some((123_456_789, 17))
        );
        assert_eq!(parse_schedstat(b""), None);
        assert_eq!(parse_schedstat(b"x 1 2"), None);
        let mut reader = ProcReader::open(100).expect("/proc/self/task");
        let me = super::super::sys::current_tid();
        let (before, _) = reader.schedstat(me).expect("schedstat of this thread");
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(20) {
            std::hint::black_box(0u64);
        }
        let (after, _) = reader.schedstat(me).expect("schedstat of this thread");
        assert!(after > before, "{before} -> {after}");
    }

    #[test]
    fn parses_syscall_lines() {
        let s = Syscall::parse("202 0x7f1c2c000b48 0x189 0x0 0x0 0x0 0xffffffff 0x7f1c3 0x7f1c4\n")
            .expect("parse");
        assert_eq!(s.nr, 202);
        assert_eq!(s.args[0], 0x7f1c2c000b48);
        assert_eq!(Syscall::parse("running\n"), None);
        assert_eq!(Syscall::parse("-1 0x7ffd 0x55aa\n"), None);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(
                s.futex_wait(),
                Some((0x7f1c2c000b48, "FUTEX_WAIT_BITSET_PRIVATE"))
            );
            assert_eq!(
                s.describe(),
                "futex(0x7f1c2c000b48, FUTEX_WAIT_BITSET_PRIVATE)"
            );
            let r = Syscall::parse("0 0x3 0x0 0x0 0x0 0x0 0x0 0x0 0x0").expect("parse");
            assert_eq!(r.describe(), "read(fd 3)");
        }
    }

    #[test]
    fn parses_status_masks() {
        let st = parse_status(
            b"Name:\tcut-\xc3\nState:\tS (sleeping)\nSigPnd:\t0000000000000001\nSigBlk:\tfffffffe7ffbfeff\nSeccomp:\t2\nSeccomp_filters:\t1\n",
        );
        assert_eq!(st.state, Some('S'));
        assert_eq!(st.sig_pending, 1);
        assert_eq!(st.sig_blocked, 0xfffffffe7ffbfeff);
        assert_eq!(
            st.seccomp,
            Seccomp {
                mode: Some(2),
                filters: Some(1)
            }
        );
        assert!(st.seccomp.filtered());
        assert!(!Seccomp::default().filtered());
    }

    #[test]
    fn reads_own_thread() {
        let tid = crate::capture::sys::current_tid();
        let mut reader = ProcReader::open(100).expect("/proc/self/task");
        let t = reader.read_thread(tid).expect("own thread");
        assert_eq!(reader.seccomp(tid).expect("seccomp"), t.seccomp);
        assert_eq!(t.tid, tid);
        assert_eq!(t.state, 'R');
        assert!(list_tids().expect("tids").contains(&tid));
    }
}
