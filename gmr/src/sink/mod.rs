//! Where a report goes: the [`Sink`] trait, and its two built-in implementations, stderr (the
//! default) and a file in `log_dir`, with the stderr fallback as a wrapper
//! (`docs/report-format.md` names the files).
//!
//! A sink is told one rendered report ([`OutgoingReport`]): its format, its header and a file
//! name it may use. gmr renders each report once per format its sinks ask for. Sinks of other
//! crates (a test sink, a future `gmr-opentelemetry`) implement [`Sink`] and are added with
//! [`GmrBuilder::sink`](crate::GmrBuilder::sink).
//!
//! Files are named `{service}_gurumeditation_{YYYYMMDDTHHMMSS}_{host}_{pid}_{seq}.{txt|json}`:
//! oslo's prefix keeps existing globs working, and host, pid and a per-process sequence number
//! make names unique across replicas sharing a directory and across reports in one second.
//! When `log_dir` cannot be written (missing, not a directory, no permission, disk full), the
//! report goes to stderr after a line saying why, and a warning is logged.
#![forbid(unsafe_code)]

mod dir;
mod fallback;
mod naming;
mod stderr;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub use self::dir::LogDirSink;
pub(crate) use self::dir::loose_directory;
pub use self::fallback::StderrFallback;
pub use self::naming::report_file_name;
pub(crate) use self::naming::sanitize_name;
pub use self::stderr::StderrSink;
use crate::report::{OutputFormat, RenderedReport, ReportHeader};

/// A destination for reports. Implement it to send reports somewhere gmr does not know.
///
/// `deliver` runs on gmr's reporter thread, once per report; it may block for as long as the
/// destination needs (the reporter makes no other report meanwhile), but should bound its own
/// waits. An error is logged and returned to a caller waiting for the report; it never stops
/// the reporter.
///
/// ```
/// use std::sync::{Arc, Mutex};
///
/// #[derive(Debug, Default)]
/// struct Recorder(Mutex<Vec<String>>);
///
/// impl gmr::Sink for Recorder {
///     fn name(&self) -> &str {
///         "recorder"
///     }
///     fn deliver(&self, report: &gmr::OutgoingReport<'_>) -> Result<gmr::Delivery, gmr::SinkError> {
///         self.0.lock().map_err(|_| gmr::SinkError::failed("recorder", "poisoned"))?
///             .push(report.file_name().to_owned());
///         Ok(gmr::Delivery::Sink { name: "recorder".into(), destination: "memory".into() })
///     }
/// }
///
/// let recorder = Arc::new(Recorder::default());
/// let gmr = gmr::Gmr::builder().sink(recorder.clone()).build()?;
/// gmr.report_and_write(gmr::Trigger::Api)?;
/// assert_eq!(recorder.0.lock().unwrap().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Sink: fmt::Debug + Send + Sync + 'static {
    /// A short name for logs and messages (`stderr`, `log_dir`).
    fn name(&self) -> &str;

    /// The format this sink wants; `None` (the default) takes the configured `format`.
    fn format(&self) -> Option<OutputFormat> {
        None
    }

    /// Delivers one report.
    ///
    /// # Errors
    ///
    /// A [`SinkError`] saying why the report could not be delivered.
    fn deliver(&self, report: &OutgoingReport<'_>) -> Result<Delivery, SinkError>;
}

/// One rendered report as a [`Sink`] receives it.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingReport<'a> {
    rendered: &'a Arc<RenderedReport>,
    file_name: &'a str,
}

impl<'a> OutgoingReport<'a> {
    /// A report to deliver, with the file name a file-like sink should use.
    pub fn new(rendered: &'a Arc<RenderedReport>, file_name: &'a str) -> Self {
        OutgoingReport {
            rendered,
            file_name,
        }
    }

    /// The format of [`OutgoingReport::body`].
    pub fn format(&self) -> OutputFormat {
        self.rendered.format()
    }

    /// Who, where, when and why.
    pub fn header(&self) -> &'a ReportHeader {
        self.rendered.header()
    }

    /// The suggested file name: `{service}_gurumeditation_{YYYYMMDDTHHMMSS}_{host}_{pid}_{seq}.{ext}`,
    /// unique across replicas and across reports of this process.
    pub fn file_name(&self) -> &'a str {
        self.file_name
    }

    /// The rendered report.
    pub fn body(&self) -> &'a str {
        self.rendered.as_str()
    }

    /// The rendered report itself (shared: keep a clone to deliver it later).
    pub fn rendered(&self) -> &'a Arc<RenderedReport> {
        self.rendered
    }
}

/// Where a report was written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// To standard error.
    Stderr,
    /// Queued for standard error, which nobody reads right now (a full pipe): written when it
    /// drains.
    StderrQueued,
    /// To this file in `log_dir`.
    File(PathBuf),
    /// To standard error, because `log_dir` (or the sink's destination) could not be written.
    StderrFallback {
        /// The destination that failed: the configured `log_dir`.
        log_dir: PathBuf,
        /// Why the report could not be written there.
        reason: String,
    },
    /// To a sink of the application's own.
    Sink {
        /// The sink's name ([`Sink::name`]).
        name: String,
        /// Where it went, as the sink says it.
        destination: String,
    },
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delivery::Stderr => f.write_str("stderr"),
            Delivery::StderrQueued => {
                f.write_str("stderr (queued: nobody reads stderr; written when it drains)")
            }
            Delivery::File(path) => write!(f, "{}", path.display()),
            Delivery::StderrFallback { log_dir, reason } => write!(
                f,
                "stderr (log_dir {} unusable: {reason})",
                log_dir.display()
            ),
            Delivery::Sink { name, destination } => write!(f, "{name}: {destination}"),
        }
    }
}

/// A report could not be delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// Writing to stderr failed (closed), or the report was dropped because nobody reads
    /// stderr and reports already wait for it (`WouldBlock`).
    #[error("cannot write the report to stderr: {0}")]
    Stderr(#[source] io::Error),
    /// A destination on disk could not be written (`log_dir` missing, not a directory, no
    /// permission, disk full, a planted file at the report's name).
    #[error("cannot write the report to {}: {reason}", destination.display())]
    Unwritable {
        /// The directory or file that failed.
        destination: PathBuf,
        /// Why.
        reason: String,
    },
    /// A sink of the application's own failed.
    #[error("sink {sink} failed: {reason}")]
    Failed {
        /// The sink's name.
        sink: String,
        /// Why.
        reason: String,
    },
}

impl SinkError {
    /// The error of a sink of the application's own.
    pub fn failed(sink: impl Into<String>, reason: impl fmt::Display) -> Self {
        SinkError::Failed {
            sink: sink.into(),
            reason: reason.to_string(),
        }
    }
}
