//! The signal trigger: SIGUSR2 (by default) asks for a report.
//!
//! The handler is signal-hook's, which only writes to a self-pipe; a thread `gmr-signal` reads
//! the pipe and queues a request with the reporter. Nothing is built in the handler.
//!
//! We never take a signal the host chose to ignore: if its disposition is `SIG_IGN` at install,
//! gmr logs a warning and leaves it alone (the other triggers still work). With
//! `signal = "none"`, no disposition is touched at all. Once registered, signal-hook's handler
//! stays installed for the life of the process (signal-hook cannot restore the previous
//! disposition safely); after the guard is dropped, the signal is consumed and ignored rather
//! than killing the process.

use std::io;
use std::thread::JoinHandle;

use signal_hook::iterator::Signals;
use signal_hook::iterator::backend::Handle;

use crate::report::Trigger;
use crate::reporter::ReportHandle;

/// Signals that cannot or must not trigger reports, and why.
const FORBIDDEN: &[(i32, &str)] = &[
    (libc::SIGKILL, "SIGKILL cannot be caught"),
    (libc::SIGSTOP, "SIGSTOP cannot be caught"),
    (libc::SIGSEGV, "SIGSEGV reports a memory fault"),
    (libc::SIGBUS, "SIGBUS reports a memory fault"),
    (libc::SIGILL, "SIGILL reports an illegal instruction"),
    (libc::SIGFPE, "SIGFPE reports an arithmetic fault"),
    (libc::SIGABRT, "SIGABRT is how the process aborts"),
    (libc::SIGCHLD, "SIGCHLD reports child processes"),
    (libc::SIGPIPE, "SIGPIPE reports broken pipes"),
    (
        libc::SIGTERM,
        "SIGTERM asks the process to stop; taking it over would keep the process from stopping",
    ),
    (
        libc::SIGINT,
        "SIGINT is Ctrl-C; taking it over would keep the process from stopping",
    ),
];

/// The signals gmr knows by name.
const NAMED: &[(&str, i32)] = &[
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGTERM", libc::SIGTERM),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGURG", libc::SIGURG),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    ("SIGPWR", libc::SIGPWR),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGKILL", libc::SIGKILL),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGBUS", libc::SIGBUS),
    ("SIGILL", libc::SIGILL),
    ("SIGFPE", libc::SIGFPE),
    ("SIGABRT", libc::SIGABRT),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGPIPE", libc::SIGPIPE),
];

/// What to write instead of a name gmr does not know.
pub(crate) const NAME_HINT: &str =
    "expected a signal name such as \"SIGUSR2\", \"SIGUSR1\", \"SIGHUP\", or \"none\"";

/// The conventional name of a signal number (`SIGUSR2`), or `signal N`.
pub fn signal_name(number: i32) -> String {
    NAMED
        .iter()
        .find(|(_, n)| *n == number)
        .map(|(name, _)| (*name).to_owned())
        .unwrap_or_else(|| format!("signal {number}"))
}

/// The number of a signal name, with or without `SIG`, in any case (`usr2`, `SIGUSR2`).
pub(crate) fn number_of(name: &str) -> Option<i32> {
    let upper = name.trim().to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    NAMED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, number)| *number)
}

/// Why `number` cannot be the trigger signal, or `None` when it can.
pub(crate) fn why_not_a_trigger(number: i32) -> Option<String> {
    if let Some((_, why)) = FORBIDDEN.iter().find(|(n, _)| *n == number) {
        return Some(format!(
            "{why}; use SIGUSR2 (the default), SIGUSR1, or \"none\""
        ));
    }
    (!NAMED.iter().any(|(_, n)| *n == number)).then(|| NAME_HINT.to_owned())
}

/// The running signal trigger.
pub(crate) struct SignalTrigger {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

/// Starts the trigger for `signal`, or returns `None` (with a warning) if the host ignores it.
///
/// # Errors
///
/// The I/O error of registering the handler or starting the thread.
pub(crate) fn start(signal: i32, reports: ReportHandle) -> io::Result<Option<SignalTrigger>> {
    if crate::capture::sys::signal_is_ignored(signal)? {
        tracing::warn!(
            signal = %signal_name(signal),
            "gmr leaves the signal alone: the host ignores it (SIG_IGN); use the trigger file or the admin endpoint"
        );
        return Ok(None);
    }
    let mut signals = Signals::new([signal])?;
    let handle = signals.handle();
    let thread = crate::threads::spawn("gmr-signal", move || {
        for received in signals.forever() {
            tracing::debug!(signal = %signal_name(received), "gmr received the trigger signal");
            if !reports.request(Trigger::Signal) {
                break;
            }
        }
    });
    let thread = match thread {
        Ok(thread) => thread,
        Err(error) => {
            handle.close();
            return Err(error);
        }
    };
    tracing::debug!(signal = %signal_name(signal), "gmr signal trigger installed");
    Ok(Some(SignalTrigger {
        handle,
        thread: Some(thread),
    }))
}

impl SignalTrigger {
    /// Stops reading signals and joins the thread.
    pub(crate) fn stop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SignalTrigger {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signal_table() {
        assert_eq!(signal_name(libc::SIGUSR2), "SIGUSR2");
        assert_eq!(signal_name(1000), "signal 1000");
        assert_eq!(number_of("usr1"), Some(libc::SIGUSR1));
        assert_eq!(number_of("SIGFOO"), None);
        assert_eq!(why_not_a_trigger(libc::SIGUSR2), None);
        assert!(why_not_a_trigger(libc::SIGTERM).is_some_and(|w| w.contains("SIGTERM")));
        assert!(why_not_a_trigger(1000).is_some());
    }
}
