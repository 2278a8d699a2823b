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

use crate::autorun::ReportHandle;
use crate::config::signal_name;
use crate::report::Trigger;

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
    if crate::sys::signal_is_ignored(signal)? {
        tracing::warn!(
            signal = %signal_name(signal),
            "gmr leaves the signal alone: the host ignores it (SIG_IGN); use the trigger file or the admin endpoint"
        );
        return Ok(None);
    }
    let mut signals = Signals::new([signal])?;
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("gmr-signal".to_owned())
        .spawn(move || {
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
