//! gmr's own threads (`gmr-reporter`, `gmr-signal`, `gmr-file-trigger`, `gmr-deadlines`,
//! `gmr-stderr`, `gmr-log`; with a registered tokio runtime `gmr-runtimes`; with task dumps
//! `gmr-taskdump` and `gmr-dump-ask`).
//!
//! Every one emits its `tracing` events through the relay ([`relay`]): they reach the
//! application's subscriber from `gmr-log`, so no gmr thread ever waits for the application's
//! log output.
//!
//! Every one is started by [`spawn`], which blocks in it every signal it does not handle: a
//! process-directed signal (a `SIGTERM` the application reads with `signalfd` or `sigwait`, a
//! `SIGUSR2` meant for the host) must never be delivered to a gmr thread, where nobody waits
//! for it. The only signal left open is gmr's capture signal, which gmr sends to one thread at
//! a time and which lets the report show the stacks of gmr's own threads too. The mask is set
//! in the parent around the spawn, so the thread never runs a single instruction with signals
//! open; the parent's own mask is restored right after.
#![forbid(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::JoinHandle;

use crate::capture::sys;

pub(crate) mod relay;

/// The capture signal's number (`SIGRTMIN() + threads.capture_signal`), once a hook knows it;
/// 0 before.
static CAPTURE_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Records the capture signal, the one signal gmr's threads leave unblocked.
pub(crate) fn set_capture_signal(signal: i32) {
    CAPTURE_SIGNAL.store(signal, Ordering::Relaxed);
}

/// Starts a gmr thread named `name` running `body`, with every signal blocked but the capture
/// signal, and its `tracing` events relayed ([`relay`]).
///
/// # Errors
///
/// The I/O error of starting the thread.
pub(crate) fn spawn<F, T>(name: &str, body: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_plain(name, move || {
        let _relay = relay::enter();
        body()
    })
}

/// [`spawn`] without the relay: for `gmr-log` itself.
fn spawn_plain<F, T>(name: &str, body: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let capture = CAPTURE_SIGNAL.load(Ordering::Relaxed);
    let keep: &[i32] = if capture > 0 { &[capture] } else { &[] };
    let previous = sys::block_signals_except(keep);
    let spawned = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            crate::capture::names::register_current_thread();
            body()
        });
    sys::restore_signal_mask(&previous);
    spawned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmr_threads_block_process_signals_and_leave_the_caller_alone() {
        let before = sys::blocks_signal(libc::SIGTERM);
        let thread = spawn("gmr-test-thread", || {
            (
                sys::blocks_signal(libc::SIGTERM),
                sys::blocks_signal(libc::SIGUSR2),
                sys::blocks_signal(libc::SIGSEGV),
            )
        })
        .expect("spawn");
        let (term, usr2, segv) = thread.join().expect("join");
        assert!(term && usr2, "process signals are blocked in gmr threads");
        assert!(!segv, "fault signals are not");
        assert_eq!(
            sys::blocks_signal(libc::SIGTERM),
            before,
            "caller's mask restored"
        );
    }
}
