//! Helpers shared by the `threads_*` integration tests.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use serde_json::Value;

/// An engine with default settings (capture signal SIGRTMIN+5).
pub fn engine() -> gmr::Gmr {
    gmr::Gmr::builder()
        .settings(gmr::GmrConfig::default())
        .build()
        .expect("default settings are valid")
}

/// Takes a report and returns the `Threads` section's JSON and text (the whole report's text).
pub fn threads_report(gmr: &gmr::Gmr) -> (Value, String) {
    let report = gmr.report(gmr::Trigger::Api);
    let section = report
        .section(gmr::report::titles::THREADS)
        .expect("a Threads section");
    let body = match section.body() {
        Ok(body) => body,
        Err(e) => panic!("the Threads section failed: {e}"),
    };
    (body.to_json(), report.to_text())
}

/// The JSON entry of thread `tid`.
pub fn thread(json: &Value, tid: i32) -> Option<&Value> {
    json["threads"]
        .as_array()?
        .iter()
        .find(|t| t["tid"].as_i64() == Some(i64::from(tid)))
}

/// The function names of `tid`'s stack, innermost first (empty without a stack).
pub fn functions(json: &Value, tid: i32) -> Vec<String> {
    let Some(t) = thread(json, tid) else {
        return Vec::new();
    };
    let Some(id) = t["stack"].as_u64() else {
        return Vec::new();
    };
    json["stacks"][id as usize]["frames"]
        .as_array()
        .map(|frames| {
            frames
                .iter()
                .filter_map(|f| f["function"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The calling thread's kernel thread id.
pub fn gettid() -> i32 {
    // SAFETY: SYS_gettid has no arguments and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::syscall(libc::SYS_gettid) as i32
    }
}

/// Waits until `cond` holds, polling, or panics after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether thread `tid` is blocked in a futex wait (from /proc).
pub fn in_futex_wait(tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/wchan"))
        .map(|w| w.contains("futex"))
        .unwrap_or(false)
}

/// Runs `f` on a helper thread and fails the test if it takes longer than `limit` (a hung
/// capture must fail the test, not hang it).
pub fn with_deadline<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("test-driver".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn");
    match rx.recv_timeout(limit) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("the test did not finish within {limit:?}: deadlock?")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the test body panicked (see its message above)")
        }
    }
}
