//! Where a report goes: stderr (the default) or a file in `log_dir` (DESIGN §3.3).
//!
//! Files are named `{service}_gurumeditation_{YYYYMMDDTHHMMSS}_{host}_{pid}_{seq}.{txt|json}`:
//! oslo's prefix keeps existing globs working, and host, pid and a per-process sequence number
//! make names unique across replicas sharing a directory and across reports in one second.
//! A file is written under a temporary name, with mode 0600, and then linked to its final name
//! without ever replacing or following what is there, so readers never see half a report and a
//! planted symlink is refused. After each file, the oldest files of the service beyond
//! `max_reports` are removed; another process's reports only once they are a minute old, so
//! replicas answering one touch of a shared trigger file never delete each other's reports.
//!
//! When `log_dir` cannot be written (missing, not a directory, no permission, disk full), the
//! report goes to stderr after a line saying why, and a warning is logged.

mod dir;

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::GmrConfig;
use crate::report::Report;

pub use self::dir::report_file_name;

/// Where a report was written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// To standard error.
    Stderr,
    /// To this file in `log_dir`.
    File(PathBuf),
    /// To standard error, because `log_dir` could not be written.
    StderrFallback {
        /// The configured directory.
        log_dir: PathBuf,
        /// Why the file could not be written.
        reason: String,
    },
}

impl std::fmt::Display for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Delivery::Stderr => f.write_str("stderr"),
            Delivery::File(path) => write!(f, "{}", path.display()),
            Delivery::StderrFallback { log_dir, reason } => write!(
                f,
                "stderr (log_dir {} unusable: {reason})",
                log_dir.display()
            ),
        }
    }
}

/// A report could not be written anywhere.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// Writing to stderr failed (closed, or a full pipe that errored).
    #[error("cannot write the report to stderr: {0}")]
    Stderr(#[source] io::Error),
}

/// Why a file in `log_dir` could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FileError {
    #[error("{path} is not a usable directory: {source}")]
    Directory {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("refusing to write {path}: something already exists at that name (a symlink?)")]
    Exists { path: PathBuf },
}

/// Sequence number of the reports of this process, part of every file name.
static SEQUENCE: AtomicU64 = AtomicU64::new(1);

/// Writes `report` where `settings` say; returns where, and the size of the rendered report.
pub(crate) fn deliver(
    report: &Report,
    settings: &GmrConfig,
    service: &str,
) -> Result<(Delivery, usize), SinkError> {
    let rendered = report.render(settings.format);
    let bytes = rendered.len();
    let Some(log_dir) = &settings.log_dir else {
        write_stderr(None, &rendered)?;
        return Ok((Delivery::Stderr, bytes));
    };
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let name = report_file_name(report.header(), service, seq, settings.format);
    match dir::write_report_file(log_dir, &name, rendered.as_bytes()) {
        Ok(path) => {
            dir::enforce_retention(log_dir, report.header(), service, settings.max_reports);
            Ok((Delivery::File(path), bytes))
        }
        Err(error) => {
            let reason = error.to_string();
            tracing::warn!(
                log_dir = %log_dir.display(),
                %reason,
                "gmr cannot write the report to log_dir; writing it to stderr instead"
            );
            let line = format!(
                "gmr: cannot write the report to log_dir {}: {reason}; writing it to stderr instead\n",
                log_dir.display()
            );
            write_stderr(Some(&line), &rendered)?;
            Ok((
                Delivery::StderrFallback {
                    log_dir: log_dir.clone(),
                    reason,
                },
                bytes,
            ))
        }
    }
}

/// Writes the optional notice and the report to stderr in one locked write sequence, so lines
/// of other threads do not interleave with the report.
fn write_stderr(notice: Option<&str>, rendered: &str) -> Result<(), SinkError> {
    let stderr = io::stderr();
    let mut lock = stderr.lock();
    if let Some(notice) = notice {
        lock.write_all(notice.as_bytes())
            .map_err(SinkError::Stderr)?;
    }
    lock.write_all(rendered.as_bytes())
        .and_then(|()| lock.flush())
        .map_err(SinkError::Stderr)
}
