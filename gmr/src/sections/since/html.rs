//! The "since the last report" part in the HTML view: the text view's lines
//! ([`super::render`]) in a box at the top of `Threads` ([`write_threads`]) and of
//! `Green Threads` ([`write_green`]), STUCK highlighted. Made from the part's model, as the
//! text is: with a thousand threads STUCK, it is a thousand lines.

use super::model::{GreenSince, ThreadsSince};
use crate::report::html::Html;

/// `12.3 s`.
fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// The box and its first line: when the previous report was taken.
fn open(html: &mut Html, previous_report_at: &str, interval_ms: u64) {
    html.open("div", &[("class", "since")]);
    html.element("h3", &[], "Since the last report");
    html.open("p", &[]);
    html.text_fmt(format_args!(
        "previous report {previous_report_at}, {} before",
        seconds(interval_ms)
    ));
    html.close("p");
    html.open("ul", &[]);
}

fn close(html: &mut Html) {
    html.close("ul");
    html.close("div");
}

/// `threads.since`: STUCK and busy threads, the counts, the threads that came and went.
pub(crate) fn write_threads(html: &mut Html, since: &ThreadsSince) {
    open(html, &since.previous_report_at, since.interval_ms);
    for t in &since.stuck {
        html.open("li", &[("class", "stuck")]);
        html.text_fmt(format_args!(
            "STUCK ≥ {}  #{} \"{}\": same stack, not run since {}",
            seconds(t.stuck_ms),
            t.tid,
            t.name,
            t.since
        ));
        html.close("li");
    }
    for t in &since.busy {
        html.open("li", &[]);
        html.text_fmt(format_args!(
            "busy  #{} \"{}\": cpu {} ({} % of the interval)",
            t.tid,
            t.name,
            seconds(t.cpu_ms),
            t.cpu_percent
        ));
        html.close("li");
    }
    html.open("li", &[]);
    html.text_fmt(format_args!(
        "{} STUCK, {} busy, {} idle, {} moved; {} new threads, {} gone",
        since.stuck.len(),
        since.busy.len() + since.busy_not_listed,
        since.idle,
        since.moved,
        since.appeared.count,
        since.vanished.count
    ));
    html.close("li");
    for (what, churn) in [("new threads", &since.appeared), ("gone", &since.vanished)] {
        if !churn.threads.is_empty() {
            html.open("li", &[]);
            html.text_fmt(format_args!("{what}: {}", churn.threads.join(", ")));
            html.close("li");
        }
    }
    close(html);
}

/// `green_threads.since`: requests in flight in both reports, the counts, the tasks of each
/// runtime.
pub(crate) fn write_green(html: &mut Html, since: &GreenSince) {
    open(html, &since.previous_report_at, since.interval_ms);
    for r in &since.requests {
        html.open("li", &[("class", "stuck")]);
        html.text_fmt(format_args!(
            "in flight ≥ {}  request {}  {}",
            seconds(r.in_flight_ms),
            r.id,
            r.request
        ));
        html.close("li");
    }
    html.open("li", &[]);
    html.text_fmt(format_args!(
        "{} in flight in both, {} finished, {} new",
        since.requests.len(),
        since.requests_finished,
        since.requests_new
    ));
    html.close("li");
    for t in &since.tasks {
        html.open("li", &[]);
        html.text_fmt(format_args!(
            "tasks of \"{}\": {} in both, {} new, {} gone",
            t.runtime, t.common, t.appeared, t.vanished
        ));
        html.close("li");
    }
    close(html);
}
