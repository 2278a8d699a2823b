//! (a) A thread that blocks every signal is listed without a stack, with the reason, and the
//! report still completes (quickly: the thread is not waited for).
#![cfg(target_os = "linux")]
#![allow(unsafe_code)]

mod threads_support;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use threads_support::{engine, gettid, thread, threads_report, with_deadline};

#[inline(never)]
fn sigblocking_thread(ready: mpsc::Sender<i32>, stop: mpsc::Receiver<()>) {
    // SAFETY: `set` is a valid sigset_t filled by sigfillset; a null old-set pointer is allowed.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    let _ = ready.send(gettid());
    let _ = stop.recv();
}

#[test]
fn thread_blocking_all_signals_is_listed_without_stack() {
    with_deadline(Duration::from_secs(60), || {
        let gmr = engine();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("sigblocker".into())
            .spawn(move || sigblocking_thread(ready_tx, stop_rx))
            .expect("spawn");
        let tid = ready_rx.recv().expect("blocker ready");

        let started = Instant::now();
        let (json, text) = threads_report(&gmr);
        let took = started.elapsed();

        let entry = thread(&json, tid).expect("the blocking thread is listed");
        assert!(entry["stack"].is_null(), "no stack expected: {entry}");
        let why = entry["stack_missing"].as_str().unwrap_or_default();
        assert!(why.contains("blocks the capture signal"), "reason: {why}");
        assert_eq!(entry["name"], "sigblocker");
        assert!(
            text.contains(&format!("Thread #{tid} \"sigblocker\"")),
            "{text}"
        );
        assert!(text.contains("no stack: the thread blocks the capture signal"));
        // The reporting thread itself always has a stack.
        let me = gettid();
        assert!(thread(&json, me).expect("reporter listed")["stack"].is_u64());
        assert!(
            took < gmr.settings().threads.timeout * 5 + Duration::from_secs(5),
            "report took {took:?}"
        );

        // Nothing pending for the blocker either: it was never signalled.
        let sig = libc::SIGRTMIN() + gmr.settings().threads.capture_signal;
        let status =
            std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).expect("status");
        let pending = status
            .lines()
            .find_map(|l| l.strip_prefix("SigPnd:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .expect("SigPnd");
        assert_eq!(
            pending & (1 << (sig - 1)),
            0,
            "capture signal pending on the blocker"
        );

        stop_tx.send(()).expect("stop");
        handle.join().expect("blocker");
    });
}
