//! The report engine: [`Gmr`] gathers every section into a [`Report`] and delivers reports to
//! its sinks.
//!
//! Each section generator runs isolated: an error or a panic becomes that section's error text
//! and the other sections are unaffected (oslo.reports lost the whole report instead). Each
//! report is rendered once per format its sinks ask for.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::config::GmrConfig;
use crate::error::SectionError;
use crate::package::PackageInfo;
use crate::registry::{self, Entry};
use crate::report::{
    OutputFormat, REPORT_VERSION, RenderedReport, Report, ReportHeader, Section, SectionBody,
    Trigger, isolate, time,
};
use crate::sections::{self, ReportContext};
use crate::sink::{Delivery, OutgoingReport, Sink, SinkError, report_file_name};

/// What an engine is made of; assembled by [`crate::GmrBuilder`].
pub(crate) struct EngineParts {
    pub(crate) settings: GmrConfig,
    pub(crate) app_config: Option<::config::Config>,
    pub(crate) package: PackageInfo,
    pub(crate) service: String,
    pub(crate) host: String,
    /// Sections of this engine only, after the registered ones.
    pub(crate) sections: Vec<Arc<Entry>>,
    /// Where reports go, the configured destination (stderr or `log_dir`) first.
    pub(crate) sinks: Vec<Arc<dyn Sink>>,
    /// The last report's summary, for "since the last report"; released with the engine.
    pub(crate) history: crate::sections::since::History,
}

/// The report engine. Cheap to clone; every clone shares the same configuration.
///
/// [`Gmr::report`] builds a report on the calling thread; the autorun hook calls it on its own
/// reporter thread, so an application normally never blocks on it.
#[derive(Clone)]
pub struct Gmr {
    inner: Arc<EngineParts>,
}

impl fmt::Debug for Gmr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gmr")
            .field("service", &self.inner.service)
            .field("settings", &self.inner.settings)
            .field("sinks", &self.inner.sinks)
            .finish_non_exhaustive()
    }
}

/// Sequence number of the reports of this process, part of every file name.
static SEQUENCE: AtomicU64 = AtomicU64::new(1);

impl Gmr {
    pub(crate) fn from_parts(parts: EngineParts) -> Self {
        Gmr {
            inner: Arc::new(parts),
        }
    }

    /// The validated settings.
    pub fn settings(&self) -> &GmrConfig {
        &self.inner.settings
    }

    /// The service name used in headers and file names.
    pub fn service_name(&self) -> &str {
        &self.inner.service
    }

    /// Builds a complete report of this process on the calling thread.
    ///
    /// Sections come in the order `Package`, `Threads`, `Green Threads`, `Processes`,
    /// `Configuration`, then the registered sections in registration order, then this engine's
    /// own. A section whose generator fails or panics shows its error in place.
    pub fn report(&self, trigger: Trigger) -> Report {
        let inner = &*self.inner;
        let now = SystemTime::now();
        let header = ReportHeader {
            service: inner.service.clone(),
            version: inner.package.version.to_owned(),
            host: inner.host.clone(),
            pid: std::process::id(),
            generated_at: time::rfc3339(now),
            generated_at_compact: time::compact_timestamp(now),
            trigger,
            report_version: REPORT_VERSION,
        };
        let ctx = ReportContext {
            settings: &inner.settings,
            app_config: inner.app_config.as_ref(),
            package: &inner.package,
            history: Some(&inner.history),
        };
        let mut out: Vec<Section> = sections::BUILT_IN
            .iter()
            .map(|(title, generate)| isolated(title, || generate(&ctx)))
            .collect();
        for entry in registry::registered_sections()
            .iter()
            .chain(inner.sections.iter())
        {
            out.push(isolated(&entry.title, || (entry.generator)()));
        }
        Report::new(header, out)
    }

    /// Writes `report` to every sink: the configured destination (a file in `log_dir`, or
    /// stderr; an unwritable `log_dir` falls back to stderr with a line saying why) and the
    /// sinks added with [`GmrBuilder::sink`](crate::GmrBuilder::sink). Returns where the
    /// configured destination put it.
    ///
    /// # Errors
    ///
    /// [`SinkError`] when the configured destination, stderr included, could not be written.
    pub fn write_report(&self, report: &Report) -> Result<Delivery, SinkError> {
        let mut rendered: Vec<Arc<RenderedReport>> = Vec::new();
        let mut view = |format: OutputFormat| {
            if let Some(found) = rendered.iter().find(|r| r.format() == format) {
                return Arc::clone(found);
            }
            let new = Arc::new(RenderedReport::render(report, format));
            rendered.push(Arc::clone(&new));
            new
        };
        self.deliver(report.header(), &mut view)
            .map(|(delivery, _)| delivery)
    }

    /// Delivers one report to every sink, each in its format, asking `view` for the report
    /// rendered in that format. Returns where the first sink (the configured destination) put
    /// it and the size of what it wrote; the other sinks' outcomes are logged.
    pub(crate) fn deliver(
        &self,
        header: &ReportHeader,
        view: &mut dyn FnMut(OutputFormat) -> Arc<RenderedReport>,
    ) -> Result<(Delivery, usize), SinkError> {
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let mut first = None;
        for sink in &self.inner.sinks {
            let format = sink.format().unwrap_or(self.inner.settings.format);
            let rendered = view(format);
            let name = report_file_name(header, &self.inner.service, seq, format);
            let outcome = isolate::catch(|| sink.deliver(&OutgoingReport::new(&rendered, &name)))
                .unwrap_or_else(|panic| {
                    Err(SinkError::failed(sink.name(), format!("panicked: {panic}")))
                });
            if first.is_none() {
                first = Some(outcome.map(|delivery| (delivery, rendered.len())));
                continue;
            }
            match outcome {
                Ok(delivery) => {
                    tracing::debug!(sink = sink.name(), destination = %delivery, "gmr report delivered");
                }
                Err(error) => {
                    tracing::warn!(sink = sink.name(), %error, "gmr report could not be delivered to a sink");
                }
            }
        }
        first.unwrap_or_else(|| Err(SinkError::failed("gmr", "no sink is configured")))
    }

    /// Builds a report on the calling thread and writes it to every sink.
    ///
    /// # Errors
    ///
    /// [`SinkError`] when the configured destination, stderr included, could not be written.
    pub fn report_and_write(&self, trigger: Trigger) -> Result<Delivery, SinkError> {
        let report = self.report(trigger);
        self.write_report(&report)
    }
}

/// Runs one generator, turning an error or a panic into a section that shows it.
fn isolated(
    title: &str,
    generate: impl FnOnce() -> Result<Box<dyn SectionBody>, SectionError>,
) -> Section {
    match isolate::catch(generate) {
        Ok(Ok(body)) => Section::new(title, body),
        Ok(Err(error)) => {
            tracing::warn!(section = title, %error, "gmr section generator failed");
            Section::failed(title, error)
        }
        Err(message) => {
            tracing::warn!(section = title, panic = %message, "gmr section generator panicked");
            Section::failed(title, SectionError::Panicked(message))
        }
    }
}
