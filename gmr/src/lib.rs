//! Guru Meditation Reports for Rust services.
//!
//! A Guru Meditation Report (GMR) is a snapshot of a running process, written without stopping
//! it: the package and its version, the stack of every OS thread, the async runtimes and the
//! requests in flight, the process and its resources, and the configuration with secrets masked.
//! Operators of OpenStack know it from `oslo.reports`; `gmr` brings it to Rust services and fixes
//! what the original got wrong (a failing section no longer loses the report, files never collide,
//! signals the host owns are left alone).
//!
//! This crate is the report engine. It has no web-framework dependency: `gmr-tower`, `gmr-axum`
//! and `gmr-actix` adapt it to the frameworks.
//!
//! # Example
//!
//! Build an engine from the application's configuration and render a report of this process:
//!
//! ```
//! let app_config = config::Config::builder()
//!     .set_default("gmr.service_name", "billing")?
//!     .set_default("database.url", "postgres://app:hunter2@db.internal/billing")?
//!     .build()?;
//!
//! let gmr = gmr::Gmr::builder()
//!     .config(&app_config)
//!     .package(gmr::package!())
//!     .build()?;
//!
//! let report = gmr.report(gmr::Trigger::Api);
//! let text = report.to_text();
//! assert!(text.starts_with(&"=".repeat(72)));
//! assert!(text.contains("Guru Meditation"));
//! assert!(text.contains("postgres://app:***@db.internal/billing"));
//! assert!(!text.contains("hunter2"));
//!
//! let json: serde_json::Value = serde_json::from_str(&report.to_json_string())?;
//! assert_eq!(json["service"], "billing");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Layout
//!
//! * [`report`]: the report model ([`Report`], its header and sections), its views (text in
//!   oslo's 72-column layout, JSON) and [`OutputFormat`], the one format type.
//! * [`config`]: [`GmrConfig`], read from the `[gmr]` table of a `config::Config` or built in code.
//! * [`register_section`]: add a section of your own, from any crate, at any time.
//! * [`sink`]: where a report goes: the [`Sink`] trait, stderr, a file in `log_dir`.
//! * [`GmrBuilder`] and [`Gmr`]: the engine; [`GmrBuilder::install`] adds the autorun hook
//!   (reporter thread, signal and file triggers) and [`ReportHandle`] asks it for reports.
//!
//! `docs/architecture.md` draws the layers and the path of a report from trigger to sink.
#![deny(missing_docs)]

mod autorun;
mod builder;
mod capture;
pub mod config;
mod engine;
mod error;
mod package;
mod procfs;
mod registry;
pub mod report;
mod reporter;
pub mod requests;
#[cfg(feature = "tokio")]
mod runtimes;
pub mod secrets;
mod sections;
pub mod sink;
mod threads;
#[cfg(feature = "tracing")]
pub mod tracing;
mod triggers;

pub use crate::autorun::{GmrGuard, InstallError};
pub use crate::builder::GmrBuilder;
pub use crate::capture::names::{name_current_thread, register_current_thread, thread_name};
pub use crate::config::{AdminConfig, GmrConfig, GreenThreadsConfig, SignalChoice, ThreadsConfig};
pub use crate::engine::Gmr;
pub use crate::error::{ConfigError, SectionError};
pub use crate::package::PackageInfo;
pub use crate::registry::{
    GreenThreadsHandle, GreenThreadsSource, RegisteredSection, register_green_threads_source,
    register_section,
};
pub use crate::report::{
    Content, OutputFormat, RenderedReport, Report, ReportHeader, Section, SectionBody, Table,
    Trigger,
};
pub use crate::reporter::{ReportError, ReportHandle};
pub use crate::requests::{InFlightRequest, RequestId, RequestSource, register_request_source};
#[cfg(feature = "tokio")]
pub use crate::runtimes::{
    SAMPLE_WINDOW, TASK_DUMP_TIMEOUT, TASK_RESOLVE_TIMEOUT, TokioRuntimeGuard,
    register_tokio_runtime,
};
pub use crate::sink::{Delivery, OutgoingReport, Sink, SinkError};

/// Naming the frames of a report offline: a report of a stripped binary has `module+offset`
/// for every frame and the build-id of every module; with the debug files of that build, its
/// frames get the names, files and lines the process would have shown, from the same
/// symbolizer (`gmr symbolize` on the command line).
///
/// Debug files are found by build-id only, the way gdb finds them: under a debug directory as
/// `.build-id/xx/yyyy….debug`, as `<module>` or `<module>.debug` in it, or at the module's own
/// path when the file there is of the same build; then its DWARF from wherever it was split
/// off to (`.gnu_debuglink`, a `.dwp` beside it). Linux x86_64 and aarch64, where gmr captures
/// stacks.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub mod symbolize {
    pub use crate::capture::symbolize::offline::{
        OfflineSymbolizer, ReportModule, SymbolInfo, SymbolizeError,
    };
    pub use crate::sections::symbolize::{Symbolized, symbolize_report};
}
pub use crate::triggers::signal::signal_name;

/// Since when: the rules by which every report says what did not move since the one before
/// (`threads.since`, `green_threads.since`), applied to two JSON reports of one process
/// (`gmr diff OLD.json NEW.json`).
pub mod since {
    pub use crate::sections::since::{DiffError, ReportDiff, diff};
}

/// A cheap monotonic timestamp (time since boot) with a resolution of one scheduler tick
/// (1 to 10 ms): what the adapters record as a request's start, costing a few nanoseconds
/// where `Instant::now()` may cost tens. Subtract two of them for an age.
#[inline]
pub fn coarse_monotonic() -> std::time::Duration {
    capture::sys::coarse_monotonic()
}

/// Runs `f` with the `tracing` events it emits handed to gmr's log thread (`gmr-log`), which
/// passes them on to the application's subscriber: the calling thread never waits for the
/// application's log output, even when that output is a full pipe nobody reads. Events keep
/// their level, target and fields (they lose their span context); when the log thread itself
/// is blocked, further events are dropped and counted, and one warning says how many once the
/// output moves again.
///
/// gmr emits every event of its own threads this way; the adapters (`gmr-tower`,
/// `gmr-actix`) use it for the events they emit on web workers, so that a stderr nobody reads
/// never stops a worker.
///
/// ```
/// gmr::log_without_blocking(|| tracing::warn!(status = 503, "report unavailable"));
/// ```
pub fn log_without_blocking<R>(f: impl FnOnce() -> R) -> R {
    threads::relay::without_blocking(f)
}

/// The calling thread's kernel thread id (TID), as listed in the `Threads` section: what an
/// adapter records to say which OS thread is polling a request. `0` where the platform has no
/// such id.
#[inline]
pub fn current_thread_id() -> i32 {
    capture::sys::current_tid()
}
