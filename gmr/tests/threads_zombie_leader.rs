//! After the main thread calls `pthread_exit` (the thread-group leader is then a zombie and
//! `/proc/self/mem`, `/proc/self/maps` and `/proc/self/fd` of the leader read as empty),
//! reports keep full stacks, 100 reports leak no descriptor, and a stack copy that read
//! nothing is flagged rather than shown as a one-frame stack.
//!
//! The main thread must exit, so this binary is its own harness (`harness = false`): the
//! scenario runs on a thread, which ends the process with the test's result.
#![cfg_attr(
    not(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )),
    allow(dead_code, unused_imports)
)]
#![allow(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]
// `main` is the C entry point: glibc's `pthread_exit` unwinds the main thread, which must
// not cross std's `catch_unwind` around a Rust `main` (it aborts: "exception not rethrown").
#![cfg_attr(
    all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ),
    no_main
)]

mod threads_support;

use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use threads_support::{engine, gettid, thread, threads_report, wait_until};

const NAME: &str = "threads_zombie_leader::reports_after_the_main_thread_exited";

/// Parks `depth` frames deep, so the stack has frames to lose.
#[inline(never)]
fn zombie_leader_parked(depth: u32, release: &mpsc::Receiver<()>) {
    if depth > 0 {
        zombie_leader_parked(depth - 1, release);
        std::hint::black_box(depth);
        return;
    }
    let _ = release.recv();
}

/// The frames of `tid`'s stack that are in this test binary (attributed to its module: the
/// maps were read). Function names are not checked: the symbolizer finds the executable
/// through `/proc/self/exe`, which a zombie leader no longer shows.
fn own_frames(json: &Value, tid: i32) -> usize {
    // argv[0]: `current_exe` reads `/proc/self/exe`, empty too.
    let exe = std::env::args()
        .next()
        .and_then(|p| {
            std::path::Path::new(&p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default();
    let Some(id) = thread(json, tid).and_then(|t| t["stack"].as_u64()) else {
        return 0;
    };
    json["stacks"][id as usize]["frames"]
        .as_array()
        .map_or(0, |frames| {
            frames
                .iter()
                .filter(|f| f["module"].as_str() == Some(exe.as_str()))
                .count()
        })
}

/// Open descriptors of the process (the leader's `/proc/self/fd` is empty once it exited).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/thread-self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn scenario(leader: i32) {
    wait_until("the main thread to exit", Duration::from_secs(30), || {
        std::fs::read_to_string(format!("/proc/self/task/{leader}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    });
    let (tx, rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let parked = std::thread::Builder::new()
        .name("parked-deep".into())
        .spawn(move || {
            tx.send(gettid()).expect("tid");
            zombie_leader_parked(12, &release_rx);
        })
        .expect("spawn");
    let tid = rx.recv().expect("tid");
    let gmr = engine();
    // The first report opens what the capture keeps open (a few tries: on a loaded machine
    // the thread may be descheduled past the timeout).
    let mut tries = 0;
    let (json, text) = loop {
        let (json, text) = threads_report(&gmr);
        tries += 1;
        if thread(&json, tid).is_some_and(|t| t["stack"].is_u64()) || tries == 5 {
            break (json, text);
        }
    };
    let deep = own_frames(&json, tid);
    assert!(
        deep >= 13,
        "full stack of #{tid} expected, {deep} frames:\n{text}"
    );
    let notes = json["notes"].to_string();
    assert!(!notes.contains("/proc/self/maps"), "{notes}");
    // The leader has no stack: not a one-frame stack.
    let leader_entry = thread(&json, leader).expect("leader listed");
    assert!(leader_entry["stack"].is_null(), "{leader_entry}");
    for id in 0..json["stacks"].as_array().map_or(0, Vec::len) {
        let frames = json["stacks"][id]["frames"].as_array().map_or(0, Vec::len);
        let flagged = !json["stacks"][id]["truncated"].is_null();
        assert!(
            frames > 1 || flagged,
            "a one-frame stack: {}",
            json["stacks"][id]
        );
    }
    let before = open_fds();
    let mut missed = 0;
    for i in 0..100 {
        let (json, _) = threads_report(&gmr);
        let entry = thread(&json, tid).expect("parked thread listed");
        if entry["stack"].is_u64() {
            let deep = own_frames(&json, tid);
            assert!(deep >= 13, "report {i}: {deep} frames of #{tid}");
        } else {
            // Descheduled past the timeout on a loaded machine: allowed now and then, but an
            // empty copy never.
            let why = entry["stack_missing"].as_str().unwrap_or_default();
            assert!(why.contains("no answer within"), "report {i}: {entry}");
            missed += 1;
        }
    }
    assert!(
        missed <= 5,
        "{missed} of 100 reports without the parked thread's stack"
    );
    let after = open_fds();
    assert_eq!(before, after, "descriptors leaked by 100 reports");
    release_tx.send(()).expect("release");
    parked.join().expect("parked");
}

/// The process's entry point (see the crate attributes): starts the scenario, then ends the
/// main thread with `pthread_exit`; no value with a destructor is live when it does.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn main(
    _argc: libc::c_int,
    _argv: *const *const libc::c_char,
) -> libc::c_int {
    start();
    // SAFETY: ends the main thread only; the scenario thread ends the process. Nothing on
    // this frame needs dropping.
    unsafe { libc::pthread_exit(std::ptr::null_mut()) }
}

/// Starts the scenario and its watchdog; returns at once.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
fn start() {
    if std::env::args().any(|a| a == "--list") {
        println!("{NAME}: test");
        std::process::exit(0);
    }
    println!("\nrunning 1 test");
    let leader = gettid();
    // A hung capture must fail the test, not hang it.
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(300));
        println!("test {NAME} ... FAILED (did not finish within 300 s)");
        std::process::exit(101);
    });
    std::thread::Builder::new()
        .name("scenario".into())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(|| scenario(leader));
            match outcome {
                Ok(()) => {
                    println!("test {NAME} ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n");
                    std::process::exit(0);
                }
                Err(_) => {
                    println!("test {NAME} ... FAILED\n\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n");
                    std::process::exit(101);
                }
            }
        })
        .expect("spawn the scenario");
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
fn main() {
    println!(
        "\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
    );
}
