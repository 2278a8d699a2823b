//! The stderr sink: the default destination, as oslo.reports had it, written by a thread of
//! its own so that a stderr nobody reads can never stop the process.
//!
//! Reports are handed to `gmr-stderr` through a bounded queue. The thread waits for stderr to
//! have room (`poll`) without holding any lock, then takes std's stderr lock only to write as
//! much as stderr takes at once, in pieces of at most `PIPE_BUF` bytes that end at a line end,
//! so the lines of other threads do not interleave with the report while stderr is being read,
//! and no thread logging to stderr waits behind gmr while it is not. When stderr is a full pipe
//! (a hung log shipper, `2> fifo` that nobody reads):
//!
//! * the reporter does not wait: the report is queued ([`Delivery::StderrQueued`]) and written
//!   when stderr drains;
//! * a report that finds the queue full is dropped ([`SinkError::Stderr`], `WouldBlock`), and
//!   once stderr drains one line says how many were dropped.
//!
//! While stderr is being read, a report is delivered once it is written (up to
//! [`WRITE_WAIT`]), so what is logged after "gmr report written" follows the report.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::{Delivery, OutgoingReport, Sink, SinkError};
use crate::capture::sys;
use crate::report::RenderedReport;

/// Writes reports to standard error, from the thread `gmr-stderr` (see the module docs).
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrSink;

/// Reports that may wait for `gmr-stderr` besides the one it is writing.
pub(crate) const QUEUE: usize = 2;

/// How long a delivery waits for its report to be written while stderr is being read.
pub(crate) const WRITE_WAIT: Duration = Duration::from_secs(2);

/// How long `gmr-stderr` waits for room before it calls stderr stalled (deliveries then stop
/// waiting for their writes).
const STALL: Duration = Duration::from_millis(100);

/// The most bytes written at once: a pipe takes this many atomically, without blocking once
/// `poll` said it has room (`PIPE_BUF` on Linux).
const PIECE: usize = 4096;

/// How a report was handed to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handed {
    /// Written.
    Written,
    /// Queued: stderr is not being read; it is written when stderr drains.
    Queued,
}

/// One report (and the line before it) for `gmr-stderr`.
struct Job {
    notice: Option<String>,
    report: Arc<RenderedReport>,
    done: Arc<Done>,
}

/// The outcome of a job, for the delivery waiting on it.
#[derive(Default)]
struct Done {
    outcome: Mutex<Option<io::Result<()>>>,
    ready: Condvar,
}

impl Done {
    fn finish(&self, outcome: io::Result<()>) {
        *self.outcome.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        self.ready.notify_all();
    }

    /// The outcome, if the job ends within `timeout`.
    fn wait(&self, timeout: Duration) -> Option<io::Result<()>> {
        let outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut outcome, _) = self
            .ready
            .wait_timeout_while(outcome, timeout, |o| o.is_none())
            .unwrap_or_else(PoisonError::into_inner);
        outcome.take()
    }
}

/// What `gmr-stderr` and the deliveries share.
struct Queue {
    jobs: VecDeque<Job>,
    /// Reports dropped since the last line saying so.
    dropped: u64,
    /// `gmr-stderr` has been waiting for room for more than [`STALL`].
    stalled: bool,
    started: bool,
}

static QUEUE_STATE: Mutex<Queue> = Mutex::new(Queue {
    jobs: VecDeque::new(),
    dropped: 0,
    stalled: false,
    started: false,
});
static WAKE: Condvar = Condvar::new();

fn queue() -> MutexGuard<'static, Queue> {
    QUEUE_STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StderrSink {
    /// The stderr sink.
    pub fn new() -> Self {
        StderrSink
    }

    /// Hands `notice` (a line saying why the report is here, ending in a newline) and the
    /// report to `gmr-stderr`, and waits for the write while stderr is being read.
    pub(crate) fn write_with_notice(
        &self,
        notice: Option<&str>,
        report: &OutgoingReport<'_>,
    ) -> Result<Handed, SinkError> {
        let done = Arc::new(Done::default());
        let stalled = {
            let mut queue = queue();
            if !queue.started {
                crate::threads::spawn("gmr-stderr", run).map_err(SinkError::Stderr)?;
                queue.started = true;
            }
            if queue.jobs.len() >= QUEUE {
                queue.dropped += 1;
                return Err(SinkError::Stderr(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "nobody reads it and {QUEUE} reports already wait for it: this one is dropped (a line on stderr says so once it drains)"
                    ),
                )));
            }
            queue.jobs.push_back(Job {
                notice: notice.map(str::to_owned),
                report: Arc::clone(report.rendered()),
                done: Arc::clone(&done),
            });
            queue.stalled
        };
        WAKE.notify_all();
        if stalled {
            return Ok(Handed::Queued);
        }
        // Wait for the write, but not once stderr turns out to be stalled.
        let until = std::time::Instant::now() + WRITE_WAIT;
        loop {
            match done.wait(STALL) {
                Some(Ok(())) => return Ok(Handed::Written),
                Some(Err(error)) => return Err(SinkError::Stderr(error)),
                None if queue().stalled || std::time::Instant::now() >= until => {
                    return Ok(Handed::Queued);
                }
                None => {}
            }
        }
    }
}

impl Sink for StderrSink {
    fn name(&self) -> &str {
        "stderr"
    }

    fn deliver(&self, report: &OutgoingReport<'_>) -> Result<Delivery, SinkError> {
        match self.write_with_notice(None, report)? {
            Handed::Written => Ok(Delivery::Stderr),
            Handed::Queued => Ok(Delivery::StderrQueued),
        }
    }
}

/// The body of `gmr-stderr`: writes each queued report, and after them, once, how many were
/// dropped.
fn run() {
    loop {
        let next = {
            let mut queue = queue();
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break Ok(job);
                }
                if queue.dropped > 0 {
                    break Err(std::mem::take(&mut queue.dropped));
                }
                queue = WAKE.wait(queue).unwrap_or_else(PoisonError::into_inner);
            }
        };
        match next {
            Ok(job) => {
                let outcome = job
                    .notice
                    .as_deref()
                    .map_or(Ok(()), |notice| write_all(notice.as_bytes()))
                    .and_then(|()| write_all(job.report.as_bytes()));
                job.done.finish(outcome);
            }
            Err(dropped) => {
                let line = format!(
                    "gmr: {dropped} report(s) could not be written and were dropped: nobody read stderr and {QUEUE} reports already waited for it\n"
                );
                // Nobody waits for this line; if stderr fails, there is nowhere to say so.
                let _ = write_all(line.as_bytes());
            }
        }
    }
}

/// Writes `bytes` to stderr: waits for room holding no lock, then writes under std's stderr
/// lock for as long as stderr takes the pieces at once.
fn write_all(mut bytes: &[u8]) -> io::Result<()> {
    let stderr = io::stderr();
    while !bytes.is_empty() {
        wait_for_room(&stderr)?;
        let mut lock = stderr.lock();
        loop {
            let n = piece(bytes);
            lock.write_all(&bytes[..n])?;
            bytes = &bytes[n..];
            if bytes.is_empty() || !sys::wait_writable(stderr.as_fd(), Duration::ZERO)? {
                break;
            }
        }
    }
    Ok(())
}

/// Waits, holding no lock, until stderr has room, saying it is stalled after [`STALL`].
fn wait_for_room(stderr: &io::Stderr) -> io::Result<()> {
    let mut stalled = false;
    while !sys::wait_writable(stderr.as_fd(), STALL)? {
        if !stalled {
            stalled = true;
            queue().stalled = true;
        }
    }
    if stalled {
        queue().stalled = false;
    }
    Ok(())
}

/// How much of `bytes` to write next: at most [`PIECE`] bytes, up to the last line end
/// within them when there is one.
fn piece(bytes: &[u8]) -> usize {
    if bytes.len() <= PIECE {
        return bytes.len();
    }
    bytes[..PIECE]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(PIECE, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_end_at_line_ends_and_fit_a_pipe() {
        let text = "a line\n".repeat(1000);
        let n = piece(text.as_bytes());
        assert!(n <= PIECE && text.as_bytes()[n - 1] == b'\n', "{n}");
        let long = vec![b'x'; PIECE * 2];
        assert_eq!(piece(&long), PIECE);
        assert_eq!(piece(b"short"), 5);
    }
}
