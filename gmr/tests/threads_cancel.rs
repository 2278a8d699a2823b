//! A thread with a pending `pthread_cancel` survives a report: the capture handler makes no
//! call that is a cancellation point (glibc's `pread` is one, and would act on the pending
//! cancellation inside the handler).
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#![allow(unsafe_code)]

mod threads_support;

use std::os::unix::thread::JoinHandleExt as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use threads_support::{engine, gettid, thread, threads_report, with_deadline};

unsafe extern "C" {
    /// glibc's `pthread_setcancelstate` (not in the `libc` crate).
    fn pthread_setcancelstate(state: libc::c_int, old: *mut libc::c_int) -> libc::c_int;
}
/// glibc's `PTHREAD_CANCEL_DISABLE`.
const PTHREAD_CANCEL_DISABLE: libc::c_int = 1;

/// Spins without reaching a cancellation point until `stop`, then disables cancellation so
/// the pending request never acts (its forced unwind would abort a Rust thread).
#[inline(never)]
fn cancel_pending_spin(stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        // `sched_yield` is not a cancellation point; it leaves the CPU to the reporter.
        std::thread::yield_now();
    }
    let mut old = 0;
    // SAFETY: pthread_setcancelstate with a valid state and a writable out-pointer.
    unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut old) };
}

#[test]
fn a_thread_with_a_pending_cancel_survives_reports() {
    with_deadline(Duration::from_secs(60), || {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let spin_stop = Arc::clone(&stop);
        let worker = std::thread::Builder::new()
            .name("cancel-pending".into())
            .spawn(move || {
                tx.send(gettid()).expect("tid");
                cancel_pending_spin(&spin_stop);
                "survived"
            })
            .expect("spawn");
        let tid = rx.recv().expect("tid");
        // Deferred cancellation (the default): the request stays pending while the thread
        // spins.
        // SAFETY: the pthread_t of a live, joinable thread.
        let rc = unsafe { libc::pthread_cancel(worker.as_pthread_t()) };
        assert_eq!(rc, 0);
        let gmr = engine();
        let mut answered = 0;
        for _ in 0..5 {
            let (json, text) = threads_report(&gmr);
            let entry = thread(&json, tid).unwrap_or_else(|| panic!("#{tid} missing: {text}"));
            // On a loaded machine a report may find it descheduled past the timeout, or still
            // in the handler of the previous one (every signal blocked): not every report needs
            // its stack, but the handler must have run on it with the cancel pending.
            answered += usize::from(entry["stack"].is_u64());
        }
        assert!(answered >= 1, "the thread never answered");
        stop.store(true, Ordering::Release);
        assert_eq!(worker.join().expect("thread"), "survived");
    });
}
