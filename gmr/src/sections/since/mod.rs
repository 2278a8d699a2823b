//! Since when: what did not move since the last report.
//!
//! Every report after the first in a process compares itself with the one before and says, at
//! the top of `Threads` and of `Green Threads` (JSON: `threads.since`, `green_threads.since`),
//! which threads are `STUCK ≥ Δt` (same stack, not run at all, not idle), which are busy, which
//! requests are `in flight ≥ Δt`, and which threads and tasks came and went. The rules are in
//! [`compare`]; what is kept between reports is the compact summary of [`summary`] (its size is
//! documented there), held by the engine and released with it.
//!
//! `gmr diff OLD.json NEW.json` applies the same rules to two reports read back from their JSON
//! ([`diff`]).

pub(crate) mod compare;
#[cfg(feature = "html")]
pub(crate) mod html;
pub(crate) mod model;
pub(crate) mod render;
pub(crate) mod summary;

use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use self::model::{GreenSince, ThreadsSince};
use self::summary::{GreenSummary, ThreadsSummary};
use crate::report::{ParseError, Report, TextWriter};
use crate::sections::green_threads::GreenThreadsModel;
use crate::sections::threads::ThreadsSection;

/// The summaries of the last report, kept for the next one.
#[derive(Debug, Default)]
pub(crate) struct History {
    last: Mutex<Last>,
}

#[derive(Debug, Default)]
struct Last {
    threads: Option<ThreadsSummary>,
    green: Option<GreenSummary>,
}

impl History {
    /// Compares `section` (taken at `at_ms` on the monotonic clock, `at` for the reader) with
    /// the last report's threads and keeps its summary for the next.
    pub(crate) fn threads(
        &self,
        section: &ThreadsSection,
        at_ms: u64,
        at: &str,
    ) -> Option<ThreadsSince> {
        let mut now = summary::threads(section, at_ms, at);
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let since = last
            .threads
            .as_ref()
            .filter(|previous| previous.at_ms <= at_ms)
            .map(|previous| compare::threads(previous, &mut now));
        last.threads = Some(now);
        since
    }

    /// The same for the green threads.
    pub(crate) fn green(
        &self,
        model: &GreenThreadsModel,
        at_ms: u64,
        at: &str,
    ) -> Option<GreenSince> {
        let mut now = summary::green(model, at_ms, at);
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let since = last
            .green
            .as_ref()
            .filter(|previous| previous.at_ms <= at_ms)
            .map(|previous| compare::green(previous, &mut now));
        last.green = Some(now);
        since
    }
}

/// Now, as "since the last report" times its summaries: ms on the monotonic clock (immune to
/// wall-clock steps), and the wall-clock time for the reader.
pub(crate) fn now() -> (u64, String) {
    let at_ms =
        u64::try_from(crate::capture::sys::coarse_monotonic().as_millis()).unwrap_or(u64::MAX);
    (
        at_ms,
        crate::report::time::rfc3339(std::time::SystemTime::now()),
    )
}

/// Why two reports cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DiffError {
    /// One of them is not a report this gmr reads.
    #[error("the {which} report: {source}")]
    Unreadable {
        /// `old` or `new`.
        which: &'static str,
        /// What is wrong with it.
        source: ParseError,
    },
    /// They come from different processes: nothing carries over from one to the other.
    #[error(
        "the reports are of different processes (pid {old_pid} of {old_service}, pid \
         {new_pid} of {new_service}): compare two reports of one process, or use `gmr summary` \
         for reports of several"
    )]
    DifferentProcesses {
        /// The old report's service.
        old_service: String,
        /// The old report's pid.
        old_pid: u64,
        /// The new report's service.
        new_service: String,
        /// The new report's pid.
        new_pid: u64,
    },
    /// The "old" report was taken after the "new" one.
    #[error(
        "the old report ({old_at}) was taken after the new one ({new_at}): give the older \
         report first"
    )]
    OutOfOrder {
        /// When the old report was taken.
        old_at: String,
        /// When the new report was taken.
        new_at: String,
    },
}

/// Two reports of one process compared by the rules of "since the last report"
/// (`gmr diff OLD.json NEW.json`).
#[derive(Debug, Clone)]
pub struct ReportDiff {
    service: String,
    pid: u64,
    old_at: String,
    new_at: String,
    threads: Option<ThreadsSince>,
    green: Option<GreenSince>,
}

impl ReportDiff {
    /// How many threads are `STUCK` in the new report (same stack, not run, not idle).
    pub fn stuck_threads(&self) -> usize {
        self.threads.as_ref().map_or(0, |t| t.stuck.len())
    }

    /// How many requests are in flight in both reports.
    pub fn requests_in_both(&self) -> usize {
        self.green.as_ref().map_or(0, |g| g.requests.len())
    }

    /// The comparison as text: a header line, then the parts as the new report would have
    /// shown them at the top of `Threads` and `Green Threads`.
    pub fn to_text(&self) -> String {
        let mut out = TextWriter::new();
        out.line(format_args!(
            "{} (pid {}): {} → {}",
            self.service, self.pid, self.old_at, self.new_at
        ));
        out.blank();
        out.line("Threads");
        match &self.threads {
            Some(t) => render::write_threads(t, &mut out),
            None => {
                out.line("  (a report has no Threads section to compare)");
                out.blank();
            }
        }
        out.line("Green Threads");
        match &self.green {
            Some(g) => render::write_green(g, &mut out),
            None => {
                out.line("  (a report has no Green Threads section to compare)");
                out.blank();
            }
        }
        out.into_string()
    }

    /// The comparison as JSON: `service`, `pid`, `old_generated_at`, `new_generated_at`, and
    /// `threads` and `green_threads` shaped as `threads.since` and `green_threads.since` of a
    /// report (`null` when a report lacks the section).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "service": self.service,
            "pid": self.pid,
            "old_generated_at": self.old_at,
            "new_generated_at": self.new_at,
            "threads": self.threads,
            "green_threads": self.green,
        })
    }
}

/// Compares two JSON reports of one process, `old` taken before `new`, by the rules the
/// process applies between its own reports. Their times are the reports' `generated_at`
/// (whole seconds).
///
/// ```no_run
/// let read = |p: &str| -> serde_json::Value {
///     serde_json::from_slice(&std::fs::read(p).expect("read")).expect("JSON")
/// };
/// let diff = gmr::since::diff(&read("old.json"), &read("new.json"))?;
/// print!("{}", diff.to_text());
/// # Ok::<(), gmr::since::DiffError>(())
/// ```
///
/// # Errors
///
/// [`DiffError`]: a file that is not a report this gmr reads, reports of two processes, or
/// reports given newest first.
pub fn diff(old: &Value, new: &Value) -> Result<ReportDiff, DiffError> {
    Report::from_json(old).map_err(|source| DiffError::Unreadable {
        which: "old",
        source,
    })?;
    Report::from_json(new).map_err(|source| DiffError::Unreadable {
        which: "new",
        source,
    })?;
    let service = |d: &Value| d["service"].as_str().unwrap_or_default().to_owned();
    let pid = |d: &Value| d["pid"].as_u64().unwrap_or_default();
    if pid(old) != pid(new) || service(old) != service(new) {
        return Err(DiffError::DifferentProcesses {
            old_service: service(old),
            old_pid: pid(old),
            new_service: service(new),
            new_pid: pid(new),
        });
    }
    let at = |d: &Value| d["generated_at"].as_str().unwrap_or_default().to_owned();
    let (old_at, new_at) = (at(old), at(new));
    let ms = |text: &str| crate::report::time::unix_ms_of_rfc3339(text).unwrap_or_default();
    let (old_ms, new_ms) = (ms(&old_at), ms(&new_at));
    if old_ms > new_ms {
        return Err(DiffError::OutOfOrder { old_at, new_at });
    }
    let threads = typed::<ThreadsSection>(&old["threads"])
        .zip(typed::<ThreadsSection>(&new["threads"]))
        .map(|(o, n)| {
            let previous = summary::threads(&o, old_ms, &old_at);
            let mut now = summary::threads(&n, new_ms, &new_at);
            compare::threads(&previous, &mut now)
        });
    let green = typed::<GreenThreadsModel>(&old["green_threads"])
        .zip(typed::<GreenThreadsModel>(&new["green_threads"]))
        .map(|(o, n)| {
            let previous = summary::green(&o, old_ms, &old_at);
            let mut now = summary::green(&n, new_ms, &new_at);
            compare::green(&previous, &mut now)
        });
    Ok(ReportDiff {
        service: service(new),
        pid: pid(new),
        old_at,
        new_at,
        threads,
        green,
    })
}

/// A section body as its model; `None` for a section that failed (`{"error": …}`) or is absent.
fn typed<T: serde::de::DeserializeOwned>(body: &Value) -> Option<T> {
    if body.get("error").is_some() {
        return None;
    }
    serde_json::from_value(body.clone()).ok()
}
