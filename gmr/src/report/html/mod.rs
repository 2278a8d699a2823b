//! The HTML view: one self-contained page per report.
//!
//! ```
//! let gmr = gmr::Gmr::builder().package(gmr::package!()).build()?;
//! let report = gmr.report(gmr::Trigger::Api);
//! let page = gmr::report::html::render(&report);
//! assert!(page.starts_with("<!DOCTYPE html>"));
//! assert_eq!(page, report.render(gmr::OutputFormat::Html));
//! // A report file renders the same page: `gmr view --format html`.
//! let again = gmr::Report::from_json(&report.to_json())?;
//! assert_eq!(gmr::report::html::render(&again), page);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The page shows what the text view shows, and more to look at: each section collapsible,
//! each stack group collapsible with the frames the text view folds behind a line that
//! expands them, a search box that filters frames, threads and requests, the requests in
//! flight oldest first with `STUCK` highlighted, the "since the last report" part when a
//! report has one, and a flame graph (an icicle: the outermost frame on top) of every thread
//! and task stack, each as wide as the threads or tasks that share it, drawn by `inferno`;
//! clicking a frame zooms into it. A section with no layout of its own (`Package`,
//! `Configuration`, the application's sections) is shown in a generic layout of its JSON:
//! nothing in it is left out, and nothing in it makes rendering fail.
//!
//! Made from the report's sections, as the text view is: each built-in section lays itself
//! out (`Threads` from its model, in `sections/threads/html.rs`, so that a page of 1000
//! threads costs about what its text does), and the flame graph takes the stacks each
//! section gives. A report file renders the same page through [`crate::Report::from_json`].
//! Frames are gmr's frame model, folded by the text view's rule.
//!
//! # What can go wrong
//!
//! * **Script from a report.** A thread name, a request path or a configuration value is
//!   whatever the application, a client or an operator made it: `<img src=x onerror=…>`,
//!   `</script><script>…`, `javascript:…`. Every value reaches the page through one escaping
//!   function (`escape.rs`), as text or as a quoted attribute value whose name is gmr's own;
//!   no value is ever put in a `href`, a `src` or an event handler attribute, and the page's
//!   script only sets `textContent` and classes. inferno's SVG is re-written through the same
//!   writer with an allow-list of elements and attributes (`flame.rs`).
//! * **Script that is not gmr's.** The page carries a Content-Security-Policy (`<meta>`, and
//!   a header from the admin endpoint, [`content_security_policy`]): nothing loads, and only
//!   gmr's own style and script run, allowed by their SHA-256 (no `'unsafe-inline'`, so even an
//!   escaping bug could not run a script).
//! * **A large report.** Each thread is one line and each stack group's frames are written
//!   once, so the page grows with the stack groups, not the threads (`threads-bench --html`
//!   in `gmr-examples` measures the page of 1000 threads and its time against the text view;
//!   the figures are in `docs/performance.md`).
//! * **A part that fails.** A section whose layout panics is shown in the generic layout with
//!   the message, and a flame graph that cannot be drawn says why; the rest of the page is
//!   intact.
#![forbid(unsafe_code)]

mod escape;
mod flame;
pub(crate) mod generic;
mod page;
pub(crate) mod stacks;

pub(crate) use self::escape::Html;
pub(crate) use self::flame::FlameStack;
pub(crate) use self::generic::write_value;

/// The page of `report`: a complete HTML document. Never fails: a section whose layout
/// fails is shown in the generic layout of its JSON, with the failure.
///
/// For a report file, read it first with [`crate::Report::from_json`].
pub fn render(report: &crate::Report) -> String {
    page::render(report)
}

/// The `Content-Security-Policy` to send with the page (the page also carries it in a
/// `<meta>`): no resource loads, only the page's own style and script run (by hash), and no
/// other site may frame it.
pub fn content_security_policy() -> &'static str {
    page::header_policy()
}

#[cfg(test)]
mod tests;
