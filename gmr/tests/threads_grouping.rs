//! Identical stacks are grouped with their count and TIDs; futex waiters on one lock are
//! flagged together; thread blocks follow the 72-column layout; frames carry module+offset.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod threads_support;

use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::time::Duration;

use threads_support::{
    engine, functions, gettid, in_futex_wait, thread, threads_report, wait_until, with_deadline,
};

#[inline(never)]
fn grouping_parked_worker(ready: &Barrier) {
    ready.wait();
    loop {
        std::thread::park();
    }
}

#[inline(never)]
fn grouping_lock_waiter(lock: &Mutex<()>) {
    let _g = lock.lock();
}

#[test]
fn identical_stacks_are_grouped_and_futex_waiters_flagged() {
    with_deadline(Duration::from_secs(60), || {
        let ready = Arc::new(Barrier::new(13));
        let (tx, rx) = mpsc::channel();
        for i in 0..12 {
            let (ready, tx) = (ready.clone(), tx.clone());
            std::thread::Builder::new()
                .name(format!("grouping-parked-worker-number-{i}"))
                .spawn(move || {
                    gmr::register_current_thread();
                    tx.send(gettid()).expect("tid");
                    grouping_parked_worker(&ready);
                })
                .expect("spawn");
        }
        let parked: Vec<i32> = (0..12).map(|_| rx.recv().expect("tid")).collect();
        ready.wait();

        let lock = Arc::new(Mutex::new(()));
        let held = lock.lock().expect("lock");
        let (tx, rx) = mpsc::channel();
        for _ in 0..3 {
            let (lock, tx) = (lock.clone(), tx.clone());
            std::thread::spawn(move || {
                tx.send(gettid()).expect("tid");
                grouping_lock_waiter(&lock);
            });
        }
        let waiters: Vec<i32> = (0..3).map(|_| rx.recv().expect("tid")).collect();
        wait_until("parked and waiting", Duration::from_secs(20), || {
            parked.iter().chain(&waiters).all(|&t| in_futex_wait(t))
        });

        let gmr = engine();
        let (json, text) = threads_report(&gmr);

        // One group holds the 12 parked workers.
        let id = thread(&json, parked[0]).expect("listed")["stack"]
            .as_u64()
            .expect("stack");
        let group = &json["stacks"][id as usize];
        let mut tids: Vec<i64> = group["tids"]
            .as_array()
            .expect("tids")
            .iter()
            .filter_map(|t| t.as_i64())
            .collect();
        tids.sort_unstable();
        let mut want: Vec<i64> = parked.iter().map(|&t| i64::from(t)).collect();
        want.sort_unstable();
        assert_eq!(tids, want, "the 12 parked threads share one stack");
        assert!(text.contains("12 threads with this stack:"), "{text}");
        assert!(
            functions(&json, parked[0])
                .iter()
                .any(|f| f.ends_with("grouping_parked_worker"))
        );

        // Full names from the registration, not the 15-byte comm.
        assert_eq!(
            thread(&json, parked[0]).expect("listed")["name"]
                .as_str()
                .map(|n| n.starts_with("grouping-parked-worker-number-")),
            Some(true)
        );

        // The three lock waiters are flagged on one futex.
        let flagged = json["futex_waiters"]
            .as_array()
            .expect("futex_waiters")
            .iter()
            .any(|w| {
                let tids: Vec<i64> = w["tids"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|t| t.as_i64()).collect())
                    .unwrap_or_default();
                waiters.iter().all(|t| tids.contains(&i64::from(*t)))
            });
        assert!(
            flagged,
            "lock waiters not flagged together: {}",
            json["futex_waiters"]
        );
        assert!(text.contains("Threads waiting on the same futex"));

        // Layout: thread headers are 72 columns; every frame names module+0xoffset.
        for line in text
            .lines()
            .filter(|l| l.starts_with("------") && l.contains("Thread"))
        {
            assert!(
                line.chars().count() >= 72 && line.ends_with("------"),
                "{line:?}"
            );
        }
        let frames = group["frames"].as_array().expect("frames");
        assert!(!frames.is_empty());
        for f in frames {
            assert!(
                f["module"].is_string()
                    && f["offset"].as_str().is_some_and(|o| o.starts_with("0x")),
                "{f}"
            );
        }
        drop(held);
    });
}
