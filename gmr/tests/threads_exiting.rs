//! (c) Threads that exit while the capture runs cause no error: they are reported as exited, or
//! are simply absent, and every report completes.
#![cfg(target_os = "linux")]
#![allow(clippy::print_stderr)]

mod threads_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use threads_support::{engine, threads_report, with_deadline};

#[test]
fn threads_exiting_during_capture_cause_no_error() {
    with_deadline(Duration::from_secs(120), || {
        let stop = Arc::new(AtomicBool::new(false));
        let spawned = Arc::new(AtomicU64::new(0));
        // Two spawners, each keeping a stream of short-lived threads going.
        let spawners: Vec<_> = (0..2)
            .map(|_| {
                let (stop, spawned) = (stop.clone(), spawned.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let batch: Vec<_> = (0..8)
                            .map(|i| {
                                std::thread::spawn(move || {
                                    std::hint::black_box(vec![i; 128]);
                                })
                            })
                            .collect();
                        for t in batch {
                            let _ = t.join();
                        }
                        spawned.fetch_add(8, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        threads_support::wait_until("threads churning", Duration::from_secs(10), || {
            spawned.load(Ordering::Relaxed) > 100
        });
        let gmr = engine();
        let timeout = gmr.settings().threads.timeout;
        let mut exited = 0;
        for _ in 0..40 {
            let t0 = Instant::now();
            let (json, _) = threads_report(&gmr);
            let took = t0.elapsed();
            for t in json["threads"].as_array().expect("threads") {
                let why = t["stack_missing"].as_str().unwrap_or("");
                // glibc blocks every signal in a thread while it is being created and while it
                // exits, and the kernel's exit path sleeps uninterruptibly: a thread caught at
                // that moment is listed with that reason.
                assert!(
                    why.is_empty()
                        || why.contains("exited")
                        || why.contains("zombie")
                        || why.contains("blocks the capture signal")
                        || why.contains("uninterruptible"),
                    "unexpected reason for #{}: {why}",
                    t["tid"]
                );
                exited += usize::from(!why.is_empty());
            }
            // An exited thread is noticed quickly, not after the whole timeout per thread.
            assert!(
                took < timeout * 4 + Duration::from_secs(3),
                "report took {took:?}"
            );
        }
        stop.store(true, Ordering::Relaxed);
        for s in spawners {
            s.join().expect("spawner");
        }
        eprintln!(
            "{} threads spawned; {exited} listed as exited during the capture",
            spawned.load(Ordering::Relaxed)
        );
    });
}
