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
    /// User CPU time.
    pub(crate) user: Duration,
    /// System CPU time.
    pub(crate) system: Duration,
    /// Start time after boot, in clock ticks (identifies the thread across TID reuse).
    pub(crate) start_ticks: u64,
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
}

fn parse_status(text: &str) -> Status {
    let mut st = Status::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "State" => st.state = value.chars().next(),
            "SigBlk" => st.sig_blocked = u64::from_str_radix(value, 16).unwrap_or(0),
            "SigPnd" => st.sig_pending = u64::from_str_radix(value, 16).unwrap_or(0),
            _ => {}
        }
    }
    st
}

/// Reads one thread. `Err` with `NotFound` means it has exited.
pub(crate) fn read_thread(tid: i32, ticks_per_second: u64) -> io::Result<ProcThread> {
    let dir = format!("/proc/self/task/{tid}");
    let stat_text = fs::read_to_string(format!("{dir}/stat"))?;
    let stat = crate::procfs::parse_stat(&stat_text).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, format!("unexpected {dir}/stat"))
    })?;
    let status = parse_status(&fs::read_to_string(format!("{dir}/status"))?);
    let state = status.state.unwrap_or(stat.state);
    let ticks = ticks_per_second.max(1);
    let to_duration = |t: u64| Duration::from_nanos(t.saturating_mul(1_000_000_000) / ticks);
    let blocked = matches!(state, 'S' | 'D');
    let wchan = if blocked {
        fs::read_to_string(format!("{dir}/wchan"))
            .ok()
            .map(|w| w.trim().to_owned())
            .filter(|w| !w.is_empty() && w != "0")
    } else {
        None
    };
    let syscall = if blocked {
        fs::read_to_string(format!("{dir}/syscall"))
            .ok()
            .and_then(|s| Syscall::parse(&s))
    } else {
        None
    };
    Ok(ProcThread {
        tid,
        comm: stat.comm,
        state,
        sig_blocked: status.sig_blocked,
        sig_pending: status.sig_pending,
        user: to_duration(stat.utime),
        system: to_duration(stat.stime),
        start_ticks: stat.starttime,
        wchan,
        syscall,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "Name:\tx\nState:\tS (sleeping)\nSigPnd:\t0000000000000001\nSigBlk:\tfffffffe7ffbfeff\n",
        );
        assert_eq!(st.state, Some('S'));
        assert_eq!(st.sig_pending, 1);
        assert_eq!(st.sig_blocked, 0xfffffffe7ffbfeff);
    }

    #[test]
    fn reads_own_thread() {
        let tid = crate::capture::sys::current_tid();
        let t = read_thread(tid, 100).expect("own thread");
        assert_eq!(t.tid, tid);
        assert_eq!(t.state, 'R');
        assert!(list_tids().expect("tids").contains(&tid));
    }
}
