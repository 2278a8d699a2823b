//! [`StderrFallback`]: a sink that, when the one it wraps fails, writes the report to stderr
//! after a line saying why, so a report is never lost to an unwritable `log_dir` (oslo.reports
//! lost it).

use std::path::PathBuf;

use super::{Delivery, OutgoingReport, Sink, SinkError, StderrSink};

/// Delivers to the wrapped sink, or to stderr when it fails.
#[derive(Debug)]
pub struct StderrFallback<S> {
    inner: S,
    stderr: StderrSink,
}

impl<S: Sink> StderrFallback<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        StderrFallback {
            inner,
            stderr: StderrSink::new(),
        }
    }
}

impl<S: Sink> Sink for StderrFallback<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn format(&self) -> Option<crate::report::OutputFormat> {
        self.inner.format()
    }

    fn deliver(&self, report: &OutgoingReport<'_>) -> Result<Delivery, SinkError> {
        let error = match self.inner.deliver(report) {
            Ok(delivery) => return Ok(delivery),
            Err(error) => error,
        };
        let (destination, reason) = match error {
            SinkError::Unwritable {
                destination,
                reason,
            } => (destination, reason),
            other => (PathBuf::from(self.inner.name()), other.to_string()),
        };
        tracing::warn!(
            log_dir = %destination.display(),
            %reason,
            "gmr cannot write the report to log_dir; writing it to stderr instead"
        );
        let line = format!(
            "gmr: cannot write the report to log_dir {}: {reason}; writing it to stderr instead\n",
            destination.display()
        );
        // Queued or written: either way the report is on its way to stderr.
        self.stderr.write_with_notice(Some(&line), report)?;
        Ok(Delivery::StderrFallback {
            log_dir: destination,
            reason,
        })
    }
}
