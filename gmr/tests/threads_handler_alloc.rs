//! The capture signal handler allocates nothing: a counting global allocator watches the
//! target thread while reports are taken, so any allocation made by the handler (which runs on
//! the target thread) is counted.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#![allow(unsafe_code)]

mod threads_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use threads_support::{engine, functions, gettid, threads_report, with_deadline};

/// Counts the allocations made on the thread whose TID is in `WATCHED`.
struct CountingAlloc;

static WATCHED: AtomicI32 = AtomicI32::new(0);
static ON_WATCHED: AtomicUsize = AtomicUsize::new(0);

impl CountingAlloc {
    fn count(&self) {
        let watched = WATCHED.load(Ordering::Relaxed);
        // gettid is one raw system call: it neither allocates nor touches lazy TLS.
        if watched != 0 && gettid() == watched {
            ON_WATCHED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: forwards every call to the system allocator unchanged; counting uses atomics only.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.count();
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

static STOP: AtomicBool = AtomicBool::new(false);
/// Set by a probe once it runs its non-allocating loop.
static IN_PROBE: AtomicBool = AtomicBool::new(false);
static ALLOCATE_ONCE: AtomicBool = AtomicBool::new(false);

/// Spins without allocating until told to stop; allocates once when asked (to prove the
/// counter works).
#[inline(never)]
fn alloc_probe_spin() {
    IN_PROBE.store(true, Ordering::Release);
    while !STOP.load(Ordering::Acquire) {
        if ALLOCATE_ONCE.load(Ordering::Acquire) {
            std::hint::black_box(Box::new([0u8; 64]));
            ALLOCATE_ONCE.store(false, Ordering::Release);
        }
        std::hint::spin_loop();
    }
}

/// Blocks in a system call (`pause`-like: a futex wait with a timeout) without allocating.
#[inline(never)]
fn alloc_probe_blocked(flag: &AtomicI32) {
    IN_PROBE.store(true, Ordering::Release);
    while !STOP.load(Ordering::Acquire) {
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        };
        // SAFETY: waits on a live atomic with a valid relative timeout; reads only.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                flag.as_ptr(),
                libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
                0,
                &ts as *const libc::timespec,
            );
        }
    }
}

fn watch(name: &'static str, body: fn(), expect_fn: &'static str) {
    with_deadline(Duration::from_secs(60), move || {
        // The two tests share the statics: one at a time.
        static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _serial = SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let gmr = engine();
        // Warm up: install the handler, build the caches, outside the watch.
        let _ = threads_report(&gmr);

        let ready = Arc::new(Barrier::new(2));
        let tid = Arc::new(AtomicI32::new(0));
        let t = {
            let (ready, tid) = (ready.clone(), tid.clone());
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    tid.store(gettid(), Ordering::Release);
                    ready.wait();
                    body();
                })
                .expect("spawn")
        };
        ready.wait();
        threads_support::wait_until("the probe loop", Duration::from_secs(10), || {
            IN_PROBE.load(Ordering::Acquire)
        });
        let target = tid.load(Ordering::Acquire);
        ON_WATCHED.store(0, Ordering::SeqCst);
        WATCHED.store(target, Ordering::SeqCst);
        // Five reports whose handler ran on the target. On a loaded 2-core machine a spinning
        // thread can be descheduled past `threads.timeout`: such a report lists it without a
        // stack, for that reason only, and another report is taken (at most 40).
        let mut answered = 0;
        for _ in 0..40 {
            let (json, _) = threads_report(&gmr);
            let fns = functions(&json, target);
            if fns.iter().any(|f| f.contains(expect_fn)) {
                answered += 1;
                if answered == 5 {
                    break;
                }
                continue;
            }
            let missing = threads_support::thread(&json, target)
                .and_then(|t| t["stack_missing"].as_str().map(str::to_owned))
                .unwrap_or_default();
            assert!(
                missing.starts_with("no answer within"),
                "target stack lacks {expect_fn}: {fns:?} (stack_missing: {missing:?})"
            );
        }
        assert_eq!(answered, 5, "five reports captured the target's stack");
        let during = ON_WATCHED.load(Ordering::SeqCst);

        // The counter does see allocations on the target thread (the spinning probe
        // allocates once on request).
        let spinning = expect_fn == "alloc_probe_spin";
        if spinning {
            ALLOCATE_ONCE.store(true, Ordering::Release);
            threads_support::wait_until("the probe allocation", Duration::from_secs(10), || {
                !ALLOCATE_ONCE.load(Ordering::Acquire)
            });
        }
        let probe = ON_WATCHED.load(Ordering::SeqCst);
        WATCHED.store(0, Ordering::SeqCst);
        STOP.store(true, Ordering::Release);
        t.join().expect("target thread");
        STOP.store(false, Ordering::Release);
        IN_PROBE.store(false, Ordering::Release);

        assert_eq!(
            during, 0,
            "{during} allocations on the target thread during 5 captures"
        );
        if spinning {
            assert!(
                probe > 0,
                "the counting allocator missed the probe allocation"
            );
        }
    });
}

#[test]
fn handler_allocates_nothing_on_a_running_thread() {
    watch("alloc-probe-spin", alloc_probe_spin, "alloc_probe_spin");
}

#[test]
fn handler_allocates_nothing_on_a_blocked_thread() {
    static WORD: AtomicI32 = AtomicI32::new(0);
    watch(
        "alloc-probe-blocked",
        || alloc_probe_blocked(&WORD),
        "alloc_probe_blocked",
    );
}
