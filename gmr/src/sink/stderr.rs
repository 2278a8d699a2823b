//! The stderr sink: the default destination, as oslo.reports had it.

use std::io::{self, Write};

use super::{Delivery, OutgoingReport, Sink, SinkError};

/// Writes reports to standard error, in one locked write sequence so that lines of other
/// threads do not interleave with the report.
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrSink;

impl StderrSink {
    /// The stderr sink.
    pub fn new() -> Self {
        StderrSink
    }

    /// Writes `notice` (a line saying why the report is here, ending in a newline) and the
    /// report.
    pub(crate) fn write_with_notice(
        &self,
        notice: Option<&str>,
        report: &OutgoingReport<'_>,
    ) -> Result<(), SinkError> {
        let stderr = io::stderr();
        let mut lock = stderr.lock();
        if let Some(notice) = notice {
            lock.write_all(notice.as_bytes())
                .map_err(SinkError::Stderr)?;
        }
        lock.write_all(report.body().as_bytes())
            .and_then(|()| lock.flush())
            .map_err(SinkError::Stderr)
    }
}

impl Sink for StderrSink {
    fn name(&self) -> &str {
        "stderr"
    }

    fn deliver(&self, report: &OutgoingReport<'_>) -> Result<Delivery, SinkError> {
        self.write_with_notice(None, report)?;
        Ok(Delivery::Stderr)
    }
}
