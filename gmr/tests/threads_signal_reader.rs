//! An application that reads a process-directed signal in a thread of its own (`sigwait`,
//! the pattern of `signalfd` too: the signal blocked everywhere, read by one thread) gets every
//! one of them while gmr's threads run and reports are made: gmr's threads block every signal
//! they do not handle, whatever the mask of the thread that started them.
//!
//! Process-wide signal masks: this binary is its own harness (`harness = false`), so no test
//! harness thread leaves the signal open. The hook is installed *before* the application
//! blocks the signal (as an application does when it installs gmr first thing in `main`): a
//! gmr thread that inherited the open mask would take the signal, whose default action ends
//! the process.
#![allow(unsafe_code)]
#![allow(clippy::print_stdout)]

mod threads_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use threads_support::wait_until;

const NAME: &str = "threads_signal_reader::the_application_reads_every_signal";
/// Signals sent, one at a time, each waited for.
const SIGNALS: usize = 200;

fn sigset(signal: i32) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and edit a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signal);
        set
    }
}

fn scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let trigger = dir.path().join("trigger");
    let settings = format!(
        "[gmr]\nlog_dir = {:?}\nfile_event_handler = {:?}\n",
        dir.path().display().to_string(),
        trigger.display().to_string()
    );
    let config = config::Config::builder()
        .add_source(config::File::from_str(&settings, config::FileFormat::Toml))
        .build()
        .expect("config");
    let guard = gmr::Gmr::builder()
        .config(&config)
        .install()
        .expect("install");
    let reports = guard.reports();
    // One report, so every lazily started gmr thread exists.
    reports.write_blocking(gmr::Trigger::Api).expect("report");

    // Now the application blocks SIGUSR1 and reads it in a thread of its own.
    let set = sigset(libc::SIGUSR1);
    // SAFETY: a valid set; the old mask is not needed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    let received = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    std::thread::Builder::new()
        .name("app-sigwait".into())
        .spawn(move || {
            loop {
                let mut signal = 0;
                // SAFETY: a valid set and out-pointer; SIGUSR1 is blocked in this thread.
                if unsafe { libc::sigwait(&set, &mut signal) } == 0 && signal == libc::SIGUSR1 {
                    counter.fetch_add(1, Ordering::AcqRel);
                }
            }
        })
        .expect("spawn the reader");

    for i in 0..SIGNALS {
        if i % 20 == 0 {
            reports.write_blocking(gmr::Trigger::Api).expect("report");
        }
        // SAFETY: kill with our own pid: a process-directed signal.
        assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) }, 0);
        wait_until(
            "the application to read the signal",
            Duration::from_secs(10),
            || received.load(Ordering::Acquire) > i,
        );
    }
    assert_eq!(received.load(Ordering::Acquire), SIGNALS);
    drop(guard);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("{NAME}: test");
        return;
    }
    println!("\nrunning 1 test");
    match std::panic::catch_unwind(scenario) {
        Ok(()) => {
            println!(
                "test {NAME} ... ok\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
            );
        }
        Err(_) => {
            println!(
                "test {NAME} ... FAILED\n\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n"
            );
            std::process::exit(101);
        }
    }
}
