//! Parsing of the `/proc` files the sections read (Linux).
//!
//! Each reader returns `io::Result` so a section can say what it could not read; the parsers
//! are pure functions of the file's bytes, tested on captured samples.
//!
//! # Bytes, not text
//!
//! `/proc` files are bytes. A thread name is whatever the thread set, cut by the kernel at 15
//! bytes, possibly inside a UTF-8 character (std cuts `Builder::name` the same way); a path
//! in `maps` is any file name. Reading such a file as a `String` fails, and everything the
//! file held would be lost with it (a thread dropped from the report, a module table gone).
//! So every file is read as bytes, parsed as bytes, and only the values shown are converted,
//! lossily (an invalid byte becomes `U+FFFD`).
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;

/// Fields of `/proc/<pid>/stat` (or `task/<tid>/stat`) that the report shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stat {
    /// `comm`, at most 15 bytes.
    pub comm: String,
    /// One-letter state (`R`, `S`, `D`, `T`, `Z`, …).
    pub state: char,
    /// Parent process id.
    pub ppid: i64,
    /// User CPU time, in clock ticks.
    pub utime: u64,
    /// System CPU time, in clock ticks.
    pub stime: u64,
    /// Thread count.
    pub num_threads: i64,
    /// Start time after boot, in clock ticks.
    pub starttime: u64,
}

/// Parses a `stat` line. `comm` may contain spaces, parentheses and any byte: it ends at the
/// last `)`, and is converted lossily.
pub(crate) fn parse_stat(bytes: &[u8]) -> Option<Stat> {
    let open = bytes.iter().position(|&b| b == b'(')?;
    let close = bytes.iter().rposition(|&b| b == b')')?;
    let comm = String::from_utf8_lossy(bytes.get(open + 1..close)?).into_owned();
    // After the last `)` there are only numbers and the state letter: ASCII.
    let rest = std::str::from_utf8(bytes.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    // The first is field 3 (state); field N is the (N - 3)th.
    let mut field = {
        let mut at = 3usize;
        move |n: usize| -> Option<&str> {
            let skip = n.checked_sub(at)?;
            at = n + 1;
            fields.nth(skip)
        }
    };
    Some(Stat {
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        utime: field(14)?.parse().ok()?,
        stime: field(15)?.parse().ok()?,
        num_threads: field(20)?.parse().ok()?,
        starttime: field(22)?.parse().ok()?,
        comm,
    })
}

/// Reads and parses a `stat` file.
pub(crate) fn read_stat(path: &Path) -> io::Result<Stat> {
    let bytes = fs::read(path)?;
    parse_stat(&bytes).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected format of {}", path.display()),
        )
    })
}

/// Parses a `status` file into its `Key: value` pairs (values trimmed, converted lossily: the
/// `Name` of a thread may hold any byte).
pub(crate) fn parse_status(bytes: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Reads and parses a `status` file.
pub(crate) fn read_status(path: &Path) -> io::Result<HashMap<String, String>> {
    Ok(parse_status(&fs::read(path)?))
}

/// A `status` size such as `VmRSS:   12345 kB`, in bytes.
pub(crate) fn status_kib_as_bytes(status: &HashMap<String, String>, key: &str) -> Option<u64> {
    let value = status.get(key)?;
    let number = value.split_whitespace().next()?.parse::<u64>().ok()?;
    Some(number * 1024)
}

/// The system boot time in seconds since the epoch (`btime` of `/proc/stat`).
pub(crate) fn boot_time() -> io::Result<u64> {
    let text = fs::read_to_string("/proc/stat")?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no btime in /proc/stat"))
}

/// Splits a NUL-separated file such as `cmdline` or `environ`.
pub(crate) fn split_nul(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|&b| b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect()
}

/// The soft and hard limits of one resource in `/proc/<pid>/limits` (`None`: unlimited).
pub(crate) fn parse_limit(text: &str, name: &str) -> Option<(Option<u64>, Option<u64>)> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let mut fields = line[name.len()..].split_whitespace();
    let parse = |v: &str| {
        if v == "unlimited" {
            Some(None)
        } else {
            v.parse::<u64>().ok().map(Some)
        }
    };
    let soft = parse(fields.next()?)?;
    let hard = parse(fields.next()?)?;
    Some((soft, hard))
}

/// The user name of `uid` from `/etc/passwd`, if listed there.
pub(crate) fn user_name(uid: u32) -> Option<String> {
    let text = fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let mut parts = line.split(':');
        let name = parts.next()?;
        let _password = parts.next()?;
        let id: u32 = parts.next()?.parse().ok()?;
        (id == uid).then(|| name.to_owned())
    })
}

/// The memory limit of this process's cgroup, in bytes, if it has one.
///
/// cgroup v2: `memory.max` of the group in `/proc/self/cgroup` (`0::/path`); cgroup v1:
/// `memory.limit_in_bytes` of the memory controller's group. "max" or an absurdly large v1
/// value means no limit.
pub(crate) fn cgroup_memory_limit() -> Option<u64> {
    let cgroups = fs::read_to_string("/proc/self/cgroup").ok()?;
    for line in cgroups.lines() {
        let mut parts = line.splitn(3, ':');
        let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let path = path.trim_start_matches('/');
        let candidate = if controllers.is_empty() {
            format!("/sys/fs/cgroup/{path}/memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory/{path}/memory.limit_in_bytes")
        } else {
            continue;
        };
        let candidate = candidate.replace("//", "/");
        if let Ok(text) = fs::read_to_string(&candidate) {
            let text = text.trim();
            if text == "max" {
                return None;
            }
            if let Ok(bytes) = text.parse::<u64>() {
                // cgroup v1 reports "no limit" as a huge page-aligned number.
                return (bytes < (1 << 60)).then_some(bytes);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
                        150 35 0 0 20 0 7 0 123456 1000000 500 18446744073709551615 \
                        1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_with_parentheses_in_comm() {
        let stat = parse_stat(STAT.as_bytes()).expect("parses");
        assert_eq!(stat.comm, "my (odd) app");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 1);
        assert_eq!(stat.utime, 150);
        assert_eq!(stat.stime, 35);
        assert_eq!(stat.num_threads, 7);
        assert_eq!(stat.starttime, 123456);
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn stat_and_status_with_a_name_cut_inside_a_character() {
        // 14 ASCII bytes and the first byte of `é`: what the kernel keeps of a longer name.
        let mut stat = b"77 (fourteen-bytes\xc3) S 1".to_vec();
        stat.extend_from_slice(&STAT.as_bytes()[STAT.find(") S 1").expect("sample") + 5..]);
        let parsed = parse_stat(&stat).expect("parses");
        assert_eq!(parsed.comm, "fourteen-bytes\u{fffd}");
        assert_eq!(parsed.starttime, 123456);
        let status = parse_status(b"Name:\tfourteen-bytes\xc3\nState:\tS (sleeping)\n");
        assert_eq!(
            status.get("State").map(String::as_str),
            Some("S (sleeping)")
        );
        assert_eq!(
            status.get("Name").map(String::as_str),
            Some("fourteen-bytes\u{fffd}")
        );
    }

    #[test]
    fn status_and_sizes() {
        let status = parse_status(b"Name:\tapp\nVmRSS:\t  2048 kB\nUid:\t1000\t1000\t1000\t1000\n");
        assert_eq!(status.get("Name").map(String::as_str), Some("app"));
        assert_eq!(status_kib_as_bytes(&status, "VmRSS"), Some(2048 * 1024));
        assert_eq!(status_kib_as_bytes(&status, "VmHWM"), None);
    }

    #[test]
    fn limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max open files            1024                 524288               files     \n\
                    Max processes             unlimited            unlimited            processes \n";
        assert_eq!(
            parse_limit(text, "Max open files"),
            Some((Some(1024), Some(524288)))
        );
        assert_eq!(parse_limit(text, "Max processes"), Some((None, None)));
        assert_eq!(parse_limit(text, "Max stack size"), None);
    }

    #[test]
    fn nul_split() {
        assert_eq!(
            split_nul(b"a\0bc\0\0"),
            vec!["a".to_owned(), "bc".to_owned()]
        );
    }

    #[test]
    fn reads_own_process() {
        let stat = read_stat(Path::new("/proc/self/stat")).expect("own stat");
        assert!(stat.num_threads >= 1);
        let status = read_status(Path::new("/proc/self/status")).expect("own status");
        assert!(status.contains_key("VmRSS"));
    }
}
