//! (e) After a report no capture signal is left pending on any thread (SigPnd of every thread,
//! ShdPnd of the process), whatever the threads were doing.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod threads_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::time::Duration;

use threads_support::{engine, threads_report, with_deadline};

fn mask(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0)
}

#[test]
fn no_capture_signal_left_pending() {
    with_deadline(Duration::from_secs(60), || {
        let stop = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(Barrier::new(7));
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let mut handles = Vec::new();
        for i in 0..6 {
            let (stop, ready, pair) = (stop.clone(), ready.clone(), pair.clone());
            handles.push(std::thread::spawn(move || {
                ready.wait();
                match i % 3 {
                    // busy
                    0 => {
                        while !stop.load(Ordering::Relaxed) {
                            std::hint::spin_loop();
                        }
                    }
                    // sleeping in nanosleep
                    1 => {
                        while !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    // waiting on a condvar
                    _ => {
                        let (m, c) = &*pair;
                        let mut done = m.lock().expect("lock");
                        while !*done {
                            done = c.wait(done).expect("wait");
                        }
                    }
                }
            }));
        }
        ready.wait();
        let gmr = engine();
        let sig = libc::SIGRTMIN() + gmr.settings().threads.capture_signal;
        let bit = 1u64 << (sig - 1);
        for _ in 0..10 {
            let (json, _) = threads_report(&gmr);
            // Every thread answers, except one caught while glibc blocks all signals around
            // pthread_create or thread exit (the harness starts and ends threads too).
            for t in json["threads"].as_array().expect("threads") {
                let why = t["stack_missing"].as_str().unwrap_or("");
                assert!(
                    why.is_empty()
                        || why.contains("blocks the capture signal")
                        || why.contains("exited"),
                    "thread without stack: {t}"
                );
            }
            assert!(json["stacks_captured"].as_u64().unwrap_or(0) >= 7, "{json}");
            for entry in std::fs::read_dir("/proc/self/task").expect("task dir") {
                let path = entry.expect("entry").path().join("status");
                let Ok(status) = std::fs::read_to_string(&path) else {
                    continue; // exited
                };
                assert_eq!(mask(&status, "SigPnd:") & bit, 0, "pending in {path:?}");
                assert_eq!(
                    mask(&status, "ShdPnd:") & bit,
                    0,
                    "shared pending ({path:?})"
                );
            }
        }
        stop.store(true, Ordering::Relaxed);
        *pair.0.lock().expect("lock") = true;
        pair.1.notify_all();
        for h in handles {
            h.join().expect("thread");
        }
    });
}
