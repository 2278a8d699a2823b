//! (b) Reports in a row (200 by default, `GMR_STRESS_REPORTS` to change) while 8 threads
//! allocate, panic and catch the unwind, take `std::backtrace::Backtrace::force_capture()` and
//! `dlopen`/`dlclose` in loops: no deadlock, no crash, every report complete.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#![allow(unsafe_code)]
#![allow(clippy::print_stderr)]

mod threads_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use threads_support::{engine, gettid, thread, threads_report, with_deadline};

#[inline(never)]
fn churn(kind: usize, stop: &AtomicBool, work: &AtomicU64) {
    while !stop.load(Ordering::Relaxed) {
        match kind % 4 {
            0 => {
                let v: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 64 + i * 32]).collect();
                std::hint::black_box(v);
            }
            1 => {
                let r = std::panic::catch_unwind(|| {
                    panic!("stress panic");
                });
                assert!(r.is_err());
            }
            2 => {
                let bt = std::backtrace::Backtrace::force_capture();
                std::hint::black_box(bt.to_string().len());
            }
            _ => {
                for lib in [c"libm.so.6", c"libdl.so.2", c"libc.so.6"] {
                    // SAFETY: dlopen/dlclose of system libraries with a valid C string; the
                    // handle is closed exactly once.
                    unsafe {
                        let h = libc::dlopen(lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
                        if !h.is_null() {
                            libc::dlclose(h);
                        }
                    }
                }
            }
        }
        work.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn reports_in_a_row_under_allocation_panics_backtraces_and_dlopen() {
    let reports: usize = std::env::var("GMR_STRESS_REPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    // Panics are caught on purpose: keep the output readable.
    std::panic::set_hook(Box::new(|_| {}));
    with_deadline(Duration::from_secs(300), move || {
        let stop = Arc::new(AtomicBool::new(false));
        let work = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let mut handles = Vec::new();
        for kind in 0..8 {
            let (stop, work, tx) = (stop.clone(), work.clone(), tx.clone());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("stress-{kind}"))
                    .spawn(move || {
                        tx.send(gettid()).expect("tid");
                        churn(kind, &stop, &work);
                    })
                    .expect("spawn"),
            );
        }
        let tids: Vec<i32> = (0..8).map(|_| rx.recv().expect("tid")).collect();
        let gmr = engine();
        let started = Instant::now();
        let mut slowest = Duration::ZERO;
        let mut missing = 0usize;
        for i in 0..reports {
            let t0 = Instant::now();
            let (json, _) = threads_report(&gmr);
            slowest = slowest.max(t0.elapsed());
            assert!(json["stacks_supported"].as_bool().unwrap_or(false));
            for &tid in &tids {
                let entry = thread(&json, tid)
                    .unwrap_or_else(|| panic!("report {i}: stress thread #{tid} not listed"));
                if !entry["stack"].is_u64() {
                    missing += 1;
                    eprintln!(
                        "report {i}: thread #{tid} without stack: {}",
                        entry["stack_missing"]
                    );
                }
            }
        }
        let elapsed = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().expect("stress thread");
        }
        eprintln!(
            "{reports} reports in {elapsed:?} (slowest {slowest:?}), {} work items, {missing} stacks missing",
            work.load(Ordering::Relaxed)
        );
        // A stack may be missed only if the thread was descheduled past the timeout; with 8
        // busy threads on a small machine allow a handful, never a pattern.
        assert!(
            missing <= reports * 8 / 100,
            "{missing} of {} stacks missing",
            reports * 8
        );
    });
}
