//! Full thread names.
//!
//! The kernel keeps 15 bytes of a thread's name (`comm`), and `std::thread::current().name()` can
//! only be asked by the thread itself. So threads that want their full name in the report say it
//! once, from the thread: [`register_current_thread`] (the name Rust gave it) or
//! [`name_current_thread`] (any name). The gmr adapters call the former on their worker threads.
//! The registry is an ordinary mutex-protected map: it is written by ordinary code and read by
//! the reporter, never touched by the signal handler.
//!
//! An entry remembers the thread's start time, so a recycled thread id never shows a dead
//! thread's name; entries of exited threads are dropped at each report.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

#[derive(Debug, Clone)]
struct Entry {
    name: String,
    /// Start time of the thread in clock ticks, if it could be read.
    start_ticks: Option<u64>,
}

static NAMES: Mutex<Option<HashMap<i32, Entry>>> = Mutex::new(None);

thread_local! {
    static REGISTERED: Cell<bool> = const { Cell::new(false) };
}

fn names() -> MutexGuard<'static, Option<HashMap<i32, Entry>>> {
    NAMES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records the name Rust gave the calling thread (`std::thread::Builder::name`), so the report
/// shows it in full rather than the 15 characters the kernel keeps.
///
/// Cheap after the first call on a thread (one thread-local check), so it can be called on every
/// request. Does nothing for an unnamed thread or on platforms without thread ids.
#[inline]
pub fn register_current_thread() {
    if !REGISTERED.with(Cell::get) {
        register_first_time();
    }
}

/// [`register_current_thread`]'s first call on a thread.
#[cold]
fn register_first_time() {
    REGISTERED.with(|r| r.set(true));
    if let Some(name) = std::thread::current().name() {
        name_current_thread(name);
    }
}

/// Gives the calling thread a name for the report (overrides the name Rust gave it).
pub fn name_current_thread(name: impl Into<String>) {
    let tid = crate::capture::sys::current_tid();
    if tid <= 0 {
        return;
    }
    let start_ticks = own_start_ticks();
    names().get_or_insert_with(HashMap::new).insert(
        tid,
        Entry {
            name: name.into(),
            start_ticks,
        },
    );
}

#[cfg(target_os = "linux")]
fn own_start_ticks() -> Option<u64> {
    let bytes = std::fs::read("/proc/thread-self/stat").ok()?;
    Some(crate::procfs::parse_stat(&bytes)?.starttime)
}

#[cfg(not(target_os = "linux"))]
fn own_start_ticks() -> Option<u64> {
    None
}

/// The registered name of `tid`, if it was registered by the thread that now has this id.
pub(crate) fn lookup(tid: i32, start_ticks: u64) -> Option<String> {
    let guard = names();
    let entry = guard.as_ref()?.get(&tid)?;
    match entry.start_ticks {
        Some(t) if t != start_ticks => None,
        _ => Some(entry.name.clone()),
    }
}

/// The registered name of `tid`, whoever registered it (for a thread whose start time could
/// not be read).
pub(crate) fn lookup_any(tid: i32) -> Option<String> {
    Some(names().as_ref()?.get(&tid)?.name.clone())
}

/// Drops the entries of threads not in `alive`.
pub(crate) fn retain(alive: &[i32]) {
    if let Some(map) = names().as_mut() {
        map.retain(|tid, _| alive.binary_search(tid).is_ok());
    }
}

/// The name the report shows for thread `tid` of this process: the registered name (see
/// [`register_current_thread`]) if the thread registered one, else the kernel's `comm`;
/// `None` if the thread does not exist (any more).
pub fn thread_name(tid: i32) -> Option<String> {
    let stat =
        crate::procfs::read_stat(std::path::Path::new(&format!("/proc/self/task/{tid}/stat")))
            .ok()?;
    Some(lookup(tid, stat.starttime).unwrap_or(stat.comm))
}
