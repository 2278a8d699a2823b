//! The text of the "since the last report" parts, at the top of `Threads` and `Green Threads`:
//!
//! ```text
//! since the last report (2026-12-02T04:10:02Z, 12.3 s before): 1 STUCK, 1 busy, 8 idle, 3 moved; 2 new threads, 1 gone
//!   STUCK ≥ 12.3 s  #5222 "demo-tokio-worker": same stack, not run since 2026-12-02T04:10:02Z
//!   busy            #5230 "spinner": cpu 12.1 s (98 % of the interval)
//!   new threads: #5240 "x", #5241 "y"
//!   gone: #5100 "old"
//! ```

use super::model::{GreenSince, ThreadChurn, ThreadsSince};
use crate::report::TextWriter;

/// `12.3 s`.
pub(crate) fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// The threads part: one summary line, then one line per STUCK and busy thread, then the
/// threads that came and went.
pub(crate) fn write_threads(since: &ThreadsSince, out: &mut TextWriter) {
    out.line(format_args!(
        "since the last report ({}, {} before): {} STUCK, {} busy, {} idle, {} moved; {} new \
         threads, {} gone",
        since.previous_report_at,
        seconds(since.interval_ms),
        since.stuck.len(),
        since.busy.len() + since.busy_not_listed,
        since.idle,
        since.moved,
        since.appeared.count,
        since.vanished.count,
    ));
    for t in &since.stuck {
        out.line(format_args!(
            "  STUCK ≥ {}  #{} \"{}\": same stack, not run since {}",
            seconds(t.stuck_ms),
            t.tid,
            t.name,
            t.since
        ));
    }
    for t in &since.busy {
        out.line(format_args!(
            "  busy  #{} \"{}\": cpu {} ({} % of the interval)",
            t.tid,
            t.name,
            seconds(t.cpu_ms),
            t.cpu_percent
        ));
    }
    if since.busy_not_listed > 0 {
        out.line(format_args!(
            "  … and {} more busy threads",
            since.busy_not_listed
        ));
    }
    churn_line("new threads", &since.appeared, out);
    churn_line("gone", &since.vanished, out);
    out.blank();
}

/// `1 request`, `3 requests`.
fn requests(n: usize) -> String {
    if n == 1 {
        "1 request".to_owned()
    } else {
        format!("{n} requests")
    }
}

fn churn_line(what: &str, churn: &ThreadChurn, out: &mut TextWriter) {
    if churn.count == 0 {
        return;
    }
    let more = churn.count.saturating_sub(churn.threads.len());
    let tail = if more > 0 {
        format!(", … {more} more")
    } else {
        String::new()
    };
    out.line(format_args!("  {what}: {}{tail}", churn.threads.join(", ")));
}

/// The green threads part: one summary line, then one line per request in flight in both.
pub(crate) fn write_green(since: &GreenSince, out: &mut TextWriter) {
    let mut line = format!(
        "since the last report ({}, {} before): {} in flight in both, {} finished, {} new",
        since.previous_report_at,
        seconds(since.interval_ms),
        requests(since.requests.len()),
        since.requests_finished,
        since.requests_new
    );
    for t in &since.tasks {
        line.push_str(&format!(
            "; tasks of \"{}\": {} in both, {} new, {} gone",
            t.runtime, t.common, t.appeared, t.vanished
        ));
    }
    out.line(line);
    for r in &since.requests {
        out.line(format_args!(
            "  in flight ≥ {}  request {}  {}",
            seconds(r.in_flight_ms),
            r.id,
            r.request
        ));
    }
    out.blank();
}
