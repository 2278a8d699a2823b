//! The reporter thread: the one place where reports are made.
//!
//! Triggers (the signal, the trigger file, HTTP, the API) never build a report themselves; they
//! put a request in the reporter's queue and, if they want an answer, wait on a one-shot
//! channel. The reporter is an OS thread, not an async task, so a report can be made while
//! every runtime worker is stuck.
//!
//! **Coalescing.** One report is made at a time. Requests that arrive while a report is being
//! made *join* it: they get that report (and, if any of them wants it written, it is written
//! once). The signal and file triggers are limited to one report per `min_interval` (default
//! 1 s): the first request is answered at once, the ones within the interval after it share
//! one report made when the interval ends. A flood of signals therefore gives one report per
//! interval, never one per signal, and the last signal still gets a report made after it.
//! [`ReportHandle::shared_report`] also reuses the last report while it is younger than a given
//! age, which is how the admin endpoint bounds report generation to one per `min_interval`.
//!
//! **Rendering.** A report is rendered once per format actually asked for, on this thread:
//! the format of the sinks when it is written, and each format an admin request asks for
//! ([`ReportHandle::shared_rendered`]). The last report keeps its views, so requests within
//! `max_age` of it are served its bytes without rendering again; a request for a format it
//! was not rendered in yet is rendered here, not on the caller's (web worker) thread.
//!
//! **What can go wrong.** A section generator that panics is isolated by the engine; a panic
//! anywhere else in the making of a report is caught here and answered as an error, and the
//! thread goes on. Requests made after the reporter stopped are answered
//! [`ReportError::Stopped`] at once instead of waiting forever.
#![forbid(unsafe_code)]

mod deadlines;
mod oneshot;

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::engine::Gmr;
use crate::report::{OutputFormat, RenderedReport, Report, ReportViews, Trigger, isolate};
use crate::sink::Delivery;

/// Why a report could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The autorun hook was stopped (its guard dropped): no reporter thread answers.
    #[error("the gmr reporter has stopped (the guard returned by install() was dropped)")]
    Stopped,
    /// Making the report panicked outside any section; the panic message.
    #[error("making the report failed: {0}")]
    Failed(String),
    /// The report was made but could not be written anywhere; the sink's message.
    #[error("{0}")]
    Sink(String),
    /// No report came within the time the caller allowed.
    #[error("no report within {0:?}: the reporter is busy or blocked (the log says why)")]
    TimedOut(Duration),
}

type ValueReply = oneshot::Sender<Result<Arc<Report>, ReportError>>;
type WriteReply = oneshot::Sender<Result<Delivery, ReportError>>;
type RenderedReply = oneshot::Sender<Result<Arc<RenderedReport>, ReportError>>;

/// What a request wants back.
enum Want {
    /// The report as a value (not written anywhere).
    Value(ValueReply),
    /// The report written to the sinks, and where the configured destination put it.
    Write(WriteReply),
    /// The report rendered in one format.
    Rendered(OutputFormat, RenderedReply),
    /// The report written to the sinks; nobody waits (signal and file triggers).
    Fire,
}

struct Request {
    trigger: Trigger,
    want: Want,
    /// A recent report to render instead of making a new one (for [`Want::Rendered`]).
    reuse: Option<Arc<ReportViews>>,
}

impl Request {
    fn new(trigger: Trigger, want: Want) -> Self {
        Request {
            trigger,
            want,
            reuse: None,
        }
    }

    fn wants_sink(&self) -> bool {
        matches!(self.want, Want::Write(_) | Want::Fire)
    }

    /// A request of the signal or file trigger, limited to one report per `min_interval`.
    fn is_fire(&self) -> bool {
        matches!(self.want, Want::Fire)
    }
}

/// The last report made, with the views rendered of it so far.
struct Last {
    at: Instant,
    views: Arc<ReportViews>,
}

#[derive(Default)]
struct State {
    queue: Vec<Request>,
    /// `Some` while a report is being made: requests that join it.
    joined: Option<Vec<Request>>,
    stopping: bool,
    exited: bool,
    last: Option<Last>,
    reports_made: u64,
    /// When the last report for the signal and file triggers started.
    last_fired: Option<Instant>,
    /// Reports were made since the allocator's free memory was last given back.
    trim_pending: bool,
}

impl State {
    /// When queued trigger requests may have their report: `None` without any; `now`, or
    /// `min_interval` after the last such report started.
    fn fire_at(&self, min_interval: Duration, now: Instant) -> Option<Instant> {
        if !self.queue.iter().any(Request::is_fire) {
            return None;
        }
        Some(match self.last_fired {
            Some(last) => last + min_interval,
            None => now,
        })
    }
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A cheap, cloneable handle for asking the reporter thread for reports.
///
/// Obtained from [`crate::GmrGuard::reports`]. Every method hands the work to the reporter
/// thread; the `async` ones never block the calling task's worker.
#[derive(Clone)]
pub struct ReportHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ReportHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportHandle")
            .field("reports_made", &self.reports_made())
            .finish()
    }
}

impl ReportHandle {
    /// Asks for a report as a value and waits for it without blocking the async worker.
    ///
    /// # Errors
    ///
    /// [`ReportError::Stopped`] after the guard was dropped; [`ReportError::Failed`] if making
    /// the report panicked outside a section.
    pub async fn report(&self, trigger: Trigger) -> Result<Arc<Report>, ReportError> {
        self.ask_value(trigger, None)
            .await
            .unwrap_or_else(|| Err(self.lost()))
    }

    /// Asks for a report as a value and blocks the calling thread until it is made.
    ///
    /// # Errors
    ///
    /// As [`ReportHandle::report`].
    pub fn report_blocking(&self, trigger: Trigger) -> Result<Arc<Report>, ReportError> {
        self.ask_value(trigger, None)
            .recv()
            .unwrap_or_else(|| Err(self.lost()))
    }

    /// Like [`ReportHandle::report`], but returns the last report if it was made less than
    /// `max_age` ago, and joins the report in progress if there is one. However often this is
    /// called, at most one report is made per `max_age`.
    ///
    /// # Errors
    ///
    /// As [`ReportHandle::report`].
    pub async fn shared_report(
        &self,
        trigger: Trigger,
        max_age: Duration,
    ) -> Result<Arc<Report>, ReportError> {
        self.ask_value(trigger, Some(max_age))
            .await
            .unwrap_or_else(|| Err(self.lost()))
    }

    /// The blocking form of [`ReportHandle::shared_report`].
    ///
    /// # Errors
    ///
    /// As [`ReportHandle::report`].
    pub fn shared_report_blocking(
        &self,
        trigger: Trigger,
        max_age: Duration,
    ) -> Result<Arc<Report>, ReportError> {
        self.ask_value(trigger, Some(max_age))
            .recv()
            .unwrap_or_else(|| Err(self.lost()))
    }

    /// Like [`ReportHandle::shared_report`], rendered in `format` on the reporter thread: what
    /// an HTTP endpoint serves. The last report is reused while it is younger than `max_age`
    /// (rendered in `format` on the reporter thread if nobody asked for that format yet).
    ///
    /// # Errors
    ///
    /// As [`ReportHandle::report`].
    pub async fn shared_rendered(
        &self,
        trigger: Trigger,
        format: OutputFormat,
        max_age: Duration,
    ) -> Result<Arc<RenderedReport>, ReportError> {
        self.ask_rendered(trigger, format, max_age)
            .await
            .unwrap_or_else(|| Err(self.lost()))
    }

    /// [`ReportHandle::shared_rendered`], giving up with [`ReportError::TimedOut`] after
    /// `timeout`: what a server answering HTTP uses, so a stuck reporter never leaves its
    /// requests hanging.
    ///
    /// # Errors
    ///
    /// As [`ReportHandle::report`], and [`ReportError::TimedOut`].
    pub async fn shared_rendered_within(
        &self,
        trigger: Trigger,
        format: OutputFormat,
        max_age: Duration,
        timeout: Duration,
    ) -> Result<Arc<RenderedReport>, ReportError> {
        let answer = self.ask_rendered(trigger, format, max_age);
        answer.deliver_at(
            Instant::now() + timeout,
            Err(ReportError::TimedOut(timeout)),
        );
        answer.await.unwrap_or_else(|| Err(self.lost()))
    }

    fn ask_rendered(
        &self,
        trigger: Trigger,
        format: OutputFormat,
        max_age: Duration,
    ) -> oneshot::Receiver<Result<Arc<RenderedReport>, ReportError>> {
        let (tx, rx) = oneshot::channel();
        let state = self.shared.lock();
        let recent = state
            .last
            .as_ref()
            .filter(|last| last.at.elapsed() <= max_age)
            .map(|last| Arc::clone(&last.views));
        drop(state);
        if let Some(rendered) = recent.as_ref().and_then(|v| v.rendered_already(format)) {
            tx.send(Ok(rendered));
            return rx;
        }
        self.enqueue(Request {
            trigger,
            want: Want::Rendered(format, tx),
            reuse: recent,
        });
        rx
    }

    /// Asks for a report written to the configured sink and waits (without blocking the async
    /// worker) for where it went.
    ///
    /// # Errors
    ///
    /// As [`ReportHandle::report`], and [`ReportError::Sink`] if it could not be written
    /// anywhere.
    pub async fn write(&self, trigger: Trigger) -> Result<Delivery, ReportError> {
        self.ask_write(trigger)
            .await
            .unwrap_or_else(|| Err(self.lost()))
    }

    /// The blocking form of [`ReportHandle::write`].
    ///
    /// # Errors
    ///
    /// As [`ReportHandle::write`].
    pub fn write_blocking(&self, trigger: Trigger) -> Result<Delivery, ReportError> {
        self.ask_write(trigger)
            .recv()
            .unwrap_or_else(|| Err(self.lost()))
    }

    /// Asks for a report written to the sink and returns at once. Used by the signal and file
    /// triggers, and limited like them to one report per `min_interval`: a request within the
    /// interval after the last such report shares the report made when the interval ends.
    /// Returns `false` if the reporter has stopped.
    pub fn request(&self, trigger: Trigger) -> bool {
        self.enqueue(Request::new(trigger, Want::Fire))
    }

    /// The error for a request whose answer was dropped: the reporter stopped, or the report
    /// failed (the reporter logged why and goes on).
    fn lost(&self) -> ReportError {
        let state = self.shared.lock();
        if state.exited || state.stopping {
            ReportError::Stopped
        } else {
            ReportError::Failed("the report failed; the log says why".to_owned())
        }
    }

    /// How many reports the reporter thread has made.
    pub fn reports_made(&self) -> u64 {
        self.shared.lock().reports_made
    }

    fn ask_value(
        &self,
        trigger: Trigger,
        max_age: Option<Duration>,
    ) -> oneshot::Receiver<Result<Arc<Report>, ReportError>> {
        let (tx, rx) = oneshot::channel();
        let state = self.shared.lock();
        if let (Some(max_age), Some(last)) = (max_age, &state.last)
            && last.at.elapsed() <= max_age
        {
            tx.send(Ok(Arc::clone(last.views.report())));
            return rx;
        }
        drop(state);
        self.enqueue(Request::new(trigger, Want::Value(tx)));
        rx
    }

    fn ask_write(&self, trigger: Trigger) -> oneshot::Receiver<Result<Delivery, ReportError>> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(Request::new(trigger, Want::Write(tx)));
        rx
    }

    /// Queues a request, or joins the report in progress. A request made after the reporter
    /// stopped is answered (by dropping its reply sender) at once. Requests of the signal and
    /// file triggers never join: they wait in the queue for their interval (`min_interval`).
    fn enqueue(&self, request: Request) -> bool {
        let mut state = self.shared.lock();
        if state.stopping || state.exited {
            return false;
        }
        match state.joined.as_mut() {
            Some(joined) if !request.is_fire() => joined.push(request),
            _ => state.queue.push(request),
        }
        drop(state);
        self.shared.wake.notify_all();
        true
    }
}

/// The running reporter thread. Stopping it answers every waiting request.
pub(crate) struct ReporterThread {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl ReporterThread {
    /// Starts the thread `gmr-reporter`.
    pub(crate) fn start(gmr: Gmr) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = crate::threads::spawn("gmr-reporter", move || run(&thread_shared, &gmr))?;
        Ok(ReporterThread {
            shared,
            thread: Some(thread),
        })
    }

    pub(crate) fn handle(&self) -> ReportHandle {
        ReportHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Asks the thread to stop and waits up to `timeout` for it; a report in progress is let
    /// finish in the background if it takes longer.
    pub(crate) fn stop(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        state.stopping = true;
        self.shared.wake.notify_all();
        while !state.exited {
            let now = Instant::now();
            if now >= deadline {
                tracing::warn!(
                    "gmr reporter did not stop within {timeout:?} (a report is still being made); leaving it to finish in the background"
                );
                return;
            }
            state = self
                .shared
                .wake
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(state);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ReporterThread {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop(Duration::from_secs(1));
        }
    }
}

/// Marks the reporter as gone however its thread ends (return or panic), answering every
/// request still waiting (their reply senders are dropped) so nobody waits forever.
struct ExitGuard<'a>(&'a Shared);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.exited = true;
        state.queue.clear();
        state.joined = None;
        drop(state);
        self.0.wake.notify_all();
    }
}

/// How long the reporter waits, idle after making reports, before it gives the allocator's
/// free memory back to the system: long enough that a flood of requests is over (trimming
/// between its reports would only slow them), short enough that the memory comes back soon.
const TRIM_WHEN_IDLE: Duration = Duration::from_secs(1);

/// The thread's body: wait for requests, make reports, until asked to stop.
///
/// Requests of the signal and file triggers are limited to one report per `min_interval`: the
/// first is answered at once, those that come within the interval after it share one report
/// made when the interval ends (so the last signal of a flood still gets a report made after
/// it). Other requests are answered at once meanwhile.
fn run(shared: &Shared, gmr: &Gmr) {
    let _exit = ExitGuard(shared);
    let min_interval = gmr.settings().min_interval;
    loop {
        let batch = {
            let mut state = shared.lock();
            let fire_now = loop {
                if state.stopping {
                    return;
                }
                let now = Instant::now();
                let fire_at = state.fire_at(min_interval, now);
                let fire_now = fire_at.is_some_and(|at| at <= now);
                if fire_now || state.queue.iter().any(|r| !r.is_fire()) {
                    break fire_now;
                }
                state = match fire_at {
                    Some(at) => {
                        shared
                            .wake
                            .wait_timeout(state, at - now)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0
                    }
                    None if state.trim_pending => {
                        let (mut state, waited) = shared
                            .wake
                            .wait_timeout(state, TRIM_WHEN_IDLE)
                            .unwrap_or_else(PoisonError::into_inner);
                        if waited.timed_out() && state.queue.is_empty() {
                            state.trim_pending = false;
                            drop(state);
                            crate::capture::sys::release_free_memory();
                            state = shared.lock();
                        }
                        state
                    }
                    None => shared
                        .wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner),
                };
            };
            let queue = std::mem::take(&mut state.queue);
            let (batch, deferred): (Vec<Request>, Vec<Request>) =
                queue.into_iter().partition(|r| fire_now || !r.is_fire());
            state.queue = deferred;
            if fire_now {
                state.last_fired = Some(Instant::now());
            }
            if batch.iter().any(|r| r.reuse.is_none()) {
                state.joined = Some(Vec::new());
                state.trim_pending = true;
            }
            batch
        };
        let (reuse, make): (Vec<Request>, Vec<Request>) =
            batch.into_iter().partition(|r| r.reuse.is_some());
        for request in reuse {
            answer_from_recent(request);
        }
        if make.is_empty() {
            continue;
        }
        // make_report isolates sections and their rendering; this catches anything else, so
        // one bad report never takes the reporter (and every later request) down with it.
        if let Err(panic) = isolate::catch(|| make_report(shared, gmr, make)) {
            tracing::error!(%panic, "gmr report failed; the reporter goes on");
            // Requests that joined the failed report are answered (their senders dropped).
            shared.lock().joined = None;
        }
    }
}

/// Answers a request for a recent report in a format it was not rendered in yet.
fn answer_from_recent(request: Request) {
    let (Some(views), Want::Rendered(format, reply)) = (request.reuse, request.want) else {
        return;
    };
    reply.send(render(&views, format));
}

/// `views` in `format`, rendered now if needed; a panic while rendering is an error.
fn render(views: &ReportViews, format: OutputFormat) -> Result<Arc<RenderedReport>, ReportError> {
    isolate::catch(|| views.get(format)).map_err(ReportError::Failed)
}

/// Makes one report for `batch` and for every request that joins while it is being made.
fn make_report(shared: &Shared, gmr: &Gmr, batch: Vec<Request>) {
    let Some(first) = batch.first() else { return };
    let trigger = first.trigger;
    let started = Instant::now();
    let made = isolate::catch(|| Arc::new(ReportViews::new(Arc::new(gmr.report(trigger)))))
        .map_err(ReportError::Failed);

    let write = |views: &ReportViews| {
        let header = views.report().header();
        match gmr.deliver(header, &mut |format| views.get(format)) {
            Ok((delivery, bytes)) => {
                if delivery == Delivery::StderrQueued {
                    tracing::warn!(
                        trigger = %trigger,
                        destination = %delivery,
                        duration_ms = started.elapsed().as_millis() as u64,
                        bytes,
                        "gmr report queued: nobody reads stderr; it is written when stderr drains"
                    );
                } else {
                    tracing::info!(
                        trigger = %trigger,
                        destination = %delivery,
                        duration_ms = started.elapsed().as_millis() as u64,
                        bytes,
                        "gmr report written"
                    );
                }
                Ok(delivery)
            }
            Err(error) => {
                tracing::error!(trigger = %trigger, %error, "gmr report could not be written");
                Err(ReportError::Sink(error.to_string()))
            }
        }
    };

    let mut delivery = None;
    if let Ok(views) = &made
        && batch.iter().any(Request::wants_sink)
    {
        delivery = Some(write(views));
    }
    let joined = {
        let mut state = shared.lock();
        if let Ok(views) = &made {
            state.last = Some(Last {
                at: Instant::now(),
                views: Arc::clone(views),
            });
            state.reports_made += 1;
        }
        state.joined.take().unwrap_or_default()
    };
    // Requests that join from here on wait for the next report; these are all answered below.
    match &made {
        Ok(views) => {
            if delivery.is_none() && joined.iter().any(Request::wants_sink) {
                delivery = Some(write(views));
            }
            if delivery.is_none() {
                // Returned to the caller (the admin endpoint, the API): still one event per
                // report, at info, so reports served over HTTP leave a trace.
                tracing::info!(
                    trigger = %trigger,
                    destination = "returned to the caller",
                    duration_ms = started.elapsed().as_millis() as u64,
                    requests = batch.len() + joined.len(),
                    "gmr report made"
                );
            }
        }
        Err(error) => tracing::error!(trigger = %trigger, %error, "gmr report failed"),
    }
    if batch.len() + joined.len() > 1 {
        tracing::debug!(
            requests = batch.len() + joined.len(),
            "gmr coalesced requests into one report"
        );
    }
    for request in batch.into_iter().chain(joined) {
        match request.want {
            Want::Value(reply) => reply.send(
                made.as_ref()
                    .map(|v| Arc::clone(v.report()))
                    .map_err(Clone::clone),
            ),
            Want::Write(reply) => reply.send(match (&made, &delivery) {
                (Err(e), _) => Err(e.clone()),
                (Ok(_), Some(result)) => result.clone(),
                (Ok(_), None) => Err(ReportError::Failed("report was not written".to_owned())),
            }),
            Want::Rendered(format, reply) => reply.send(match &made {
                Err(e) => Err(e.clone()),
                Ok(views) => render(views, format),
            }),
            Want::Fire => {}
        }
    }
}
