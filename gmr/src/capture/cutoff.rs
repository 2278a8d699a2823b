//! Blocking reads cut by a deadline: the capture's `/proc` reads run on a helper thread
//! (`gmr-capture-io`), and the reporter waits for them only until its deadline.
//!
//! # Why
//!
//! A read of `/proc/self/maps`, `/proc/self/mem` or a thread's files can block in the kernel:
//! `maps` and `mem` take the address space's lock, which waits behind a writer that waits
//! behind a thread stuck in a page fault on a hung network file system; opening `mem` waits
//! behind an `exec`. Read on the reporter itself, one such read would hang every later report
//! (and every caller waiting for one) for as long as the file system stays hung.
//!
//! # How
//!
//! [`IoThread::run`] hands the job to the helper thread and waits for its answer until the
//! deadline. When the deadline passes first, the job is *abandoned*: the reporter goes on with
//! what it has (the job shares its partial results if it wants them kept) and says in the
//! report what was cut; the helper thread is forgotten and a fresh one is started by the next
//! job. The stuck thread ends by itself when its read returns, and then finds nobody waiting.
//! At most [`MAX_STUCK`] helper threads may be stuck at once: past that, jobs are refused at
//! once instead of piling threads up behind a file system that stays hung.
//!
//! Helper threads are started by [`crate::threads::spawn`], so they block every signal gmr
//! does not handle, like every gmr thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

/// How many abandoned helper threads may still be stuck before jobs are refused.
pub(crate) const MAX_STUCK: usize = 2;

/// Why a job gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Cut {
    /// The deadline passed while the job was running; it goes on, abandoned.
    #[error("cut by the deadline: the read did not return in time (still blocked in the kernel)")]
    Deadline,
    /// Earlier jobs are still stuck: this one was not started.
    #[error("not started: {0} earlier reads are still blocked in the kernel")]
    TooManyStuck(usize),
    /// The helper thread could not be started.
    #[error("the helper thread could not be started: {0}")]
    Spawn(String),
}

type Job = Box<dyn FnOnce() + Send + 'static>;

const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const ABANDONED: u8 = 2;

/// The helper thread of one reporter. Not `Clone`: one owner, under the capture lock.
#[derive(Debug, Default)]
pub(crate) struct IoThread {
    jobs: Option<mpsc::Sender<Job>>,
    /// Helper threads whose job was abandoned and has not returned yet.
    stuck: Arc<AtomicUsize>,
}

impl IoThread {
    /// Runs `job` on the helper thread and returns its answer, or [`Cut`] if `until` passes
    /// first (or the job cannot be started).
    pub(crate) fn run<T, F>(&mut self, until: Instant, job: F) -> Result<T, Cut>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let stuck = self.stuck.load(Ordering::Acquire);
        if stuck >= MAX_STUCK {
            return Err(Cut::TooManyStuck(stuck));
        }
        let (answer_tx, answer_rx) = mpsc::sync_channel::<T>(1);
        let state = Arc::new(AtomicU8::new(RUNNING));
        let job_state = Arc::clone(&state);
        let job_stuck = Arc::clone(&self.stuck);
        let wrapped: Job = Box::new(move || {
            let answer = job();
            let _ = answer_tx.send(answer);
            if job_state.swap(FINISHED, Ordering::AcqRel) == ABANDONED {
                job_stuck.fetch_sub(1, Ordering::AcqRel);
            }
        });
        let sender = self.sender()?;
        if let Err(mpsc::SendError(wrapped)) = sender.send(wrapped) {
            // The helper thread is gone (it cannot panic, but be sure): start another.
            self.jobs = None;
            self.sender()?
                .send(wrapped)
                .map_err(|_| Cut::Spawn("the helper thread ended".to_owned()))?;
        }
        let wait = until.saturating_duration_since(Instant::now());
        match answer_rx.recv_timeout(wait) {
            Ok(answer) => Ok(answer),
            Err(_) => {
                self.stuck.fetch_add(1, Ordering::AcqRel);
                if state.swap(ABANDONED, Ordering::AcqRel) == FINISHED {
                    // It finished just now: not stuck after all.
                    self.stuck.fetch_sub(1, Ordering::AcqRel);
                    if let Ok(answer) = answer_rx.try_recv() {
                        return Ok(answer);
                    }
                }
                // The thread is busy with the abandoned job: the next job gets a fresh one.
                self.jobs = None;
                Err(Cut::Deadline)
            }
        }
    }

    /// The live helper thread's queue, starting the thread if needed.
    fn sender(&mut self) -> Result<&mpsc::Sender<Job>, Cut> {
        if self.jobs.is_none() {
            let (tx, rx) = mpsc::channel::<Job>();
            crate::threads::spawn("gmr-capture-io", move || {
                // Ends when its reporter forgets it (the sender is dropped).
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .map_err(|e| Cut::Spawn(e.to_string()))?;
            self.jobs = Some(tx);
        }
        self.jobs
            .as_ref()
            .ok_or_else(|| Cut::Spawn("no helper thread".to_owned()))
    }
}

impl IoThread {
    /// Helper threads stuck in an abandoned job right now.
    #[cfg(test)]
    fn stuck(&self) -> usize {
        self.stuck.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn answers_and_cuts_a_blocked_read() {
        let mut io = IoThread::default();
        let soon = || Instant::now() + Duration::from_secs(30);
        assert_eq!(io.run(soon(), || 7), Ok(7));

        // A read that blocks until released (a hung file system, injected).
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let started = Instant::now();
        let cut = io.run(Instant::now() + Duration::from_millis(100), move || {
            let _ = release_rx.recv();
            1
        });
        assert_eq!(cut, Err(Cut::Deadline));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the wait ended at the deadline"
        );
        assert!(io.stuck() >= 1);
        // The reporter is not stuck with it: the next job runs on a fresh thread.
        assert_eq!(io.run(soon(), || 8), Ok(8));
        // Released, the abandoned job ends and is no longer counted.
        release_tx.send(()).expect("release");
        let until = Instant::now() + Duration::from_secs(30);
        while io.stuck() != 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(io.stuck(), 0);
    }

    #[test]
    fn refuses_jobs_while_too_many_reads_are_stuck() {
        let mut io = IoThread::default();
        let mut releases = Vec::new();
        let mut refused = None;
        for _ in 0..=MAX_STUCK + 1 {
            let (tx, rx) = mpsc::channel::<()>();
            releases.push(tx);
            match io.run(Instant::now() + Duration::from_millis(20), move || {
                let _ = rx.recv();
            }) {
                Err(Cut::TooManyStuck(n)) => {
                    refused = Some(n);
                    break;
                }
                other => assert_eq!(other, Err(Cut::Deadline)),
            }
        }
        assert!(refused.is_some_and(|n| n >= MAX_STUCK), "{refused:?}");
        drop(releases);
        let until = Instant::now() + Duration::from_secs(30);
        while io.stuck() != 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(io.stuck(), 0);
    }
}
