//! (d) Two threads deadlocked on two mutexes both show, in their stacks, the functions that
//! locked them.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod threads_support;

use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::time::Duration;

use threads_support::{
    engine, functions, gettid, in_futex_wait, threads_report, wait_until, with_deadline,
};

#[inline(never)]
fn deadlock_first_locker(a: &Mutex<u32>, b: &Mutex<u32>, both: &Barrier) {
    let ga = a.lock().expect("a");
    both.wait();
    let gb = b.lock().expect("b"); // never acquired: the other thread holds b and wants a
    std::hint::black_box((*ga, *gb));
}

#[inline(never)]
fn deadlock_second_locker(a: &Mutex<u32>, b: &Mutex<u32>, both: &Barrier) {
    let gb = b.lock().expect("b");
    both.wait();
    let ga = a.lock().expect("a");
    std::hint::black_box((*ga, *gb));
}

#[test]
fn deadlocked_threads_show_the_functions_that_locked() {
    with_deadline(Duration::from_secs(60), || {
        let a = Arc::new(Mutex::new(1));
        let b = Arc::new(Mutex::new(2));
        let both = Arc::new(Barrier::new(2));
        let (tx, rx) = mpsc::channel();
        for first in [true, false] {
            let (a, b, both, tx) = (a.clone(), b.clone(), both.clone(), tx.clone());
            std::thread::Builder::new()
                .name(if first { "deadlock-1" } else { "deadlock-2" }.into())
                .spawn(move || {
                    tx.send((first, gettid())).expect("send tid");
                    if first {
                        deadlock_first_locker(&a, &b, &both);
                    } else {
                        deadlock_second_locker(&a, &b, &both);
                    }
                })
                .expect("spawn");
        }
        let mut tids = [0; 2];
        for _ in 0..2 {
            let (first, tid) = rx.recv().expect("tid");
            tids[usize::from(!first)] = tid;
        }
        // The deadlock is complete once both wait in the kernel on a futex.
        wait_until("both threads blocked", Duration::from_secs(20), || {
            tids.iter().all(|&t| in_futex_wait(t))
        });

        let gmr = engine();
        let (json, text) = threads_report(&gmr);
        for (tid, name) in [
            (tids[0], "deadlock_first_locker"),
            (tids[1], "deadlock_second_locker"),
        ] {
            let fns = functions(&json, tid);
            assert!(
                fns.iter().any(|f| f.ends_with(name)),
                "thread #{tid} lacks {name}: {fns:?}\n{text}"
            );
            assert!(
                fns.iter()
                    .any(|f| f.contains("Mutex") && f.contains("lock")),
                "thread #{tid} not in Mutex::lock: {fns:?}"
            );
            // Blocked in futex, with the syscall shown.
            let t = threads_support::thread(&json, tid).expect("listed");
            assert_eq!(t["syscall"]["name"], "futex", "{t}");
        }
        assert!(text.contains("deadlock_first_locker"));
        assert!(text.contains("deadlock_second_locker"));
        // The deadlocked threads stay blocked; the test process ends with them.
    });
}
