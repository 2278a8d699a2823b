//! The report engine: [`Gmr`] gathers every section into a [`Report`] and hands reports to the
//! sink.
//!
//! Each section generator runs isolated: an error or a panic becomes that section's error text
//! and the other sections are unaffected (oslo.reports lost the whole report instead).

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::GmrConfig;
use crate::error::{ConfigError, SectionError};
use crate::package::PackageInfo;
use crate::registry::{self, Entry, boxed_generator, new_entry};
use crate::report::{
    REPORT_VERSION, Report, ReportContext, ReportHeader, Section, SectionBody, Trigger,
};
use crate::sections;
use crate::sink::{self, Delivery, SinkError};

/// Builds a [`Gmr`] engine: the configuration, the application's package, and optional
/// sections of this engine only.
#[derive(Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct GmrBuilder {
    app_config: Option<::config::Config>,
    settings: Option<GmrConfig>,
    package: Option<PackageInfo>,
    sections: Vec<Arc<Entry>>,
}

impl fmt::Debug for GmrBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GmrBuilder")
            .field("has_app_config", &self.app_config.is_some())
            .field("settings", &self.settings)
            .field("package", &self.package)
            .field("sections", &self.sections)
            .finish()
    }
}

impl GmrBuilder {
    /// The application's whole configuration: gmr reads its `[gmr]` table, and the
    /// `Configuration` section shows every key of it, masked.
    pub fn config(mut self, config: &::config::Config) -> Self {
        self.app_config = Some(config.clone());
        self
    }

    /// Settings built in code. They take precedence over the `[gmr]` table of
    /// [`GmrBuilder::config`], whose keys are still shown in the `Configuration` section.
    pub fn settings(mut self, settings: GmrConfig) -> Self {
        self.settings = Some(settings);
        self
    }

    /// The application's package, usually `gmr::package!()`.
    pub fn package(mut self, package: PackageInfo) -> Self {
        self.package = Some(package);
        self
    }

    /// A section of this engine only (process-wide sections use
    /// [`crate::register_section`]). Shown after the registered sections.
    pub fn section<F, B, E>(mut self, title: impl Into<String>, generator: F) -> Self
    where
        F: Fn() -> Result<B, E> + Send + Sync + 'static,
        B: SectionBody + 'static,
        E: fmt::Display,
    {
        self.sections
            .push(new_entry(title.into(), boxed_generator(generator)));
        self
    }

    /// Validates the configuration, builds the engine and installs the autorun hook: the
    /// reporter thread, the signal trigger and the file trigger. Keep the returned guard alive
    /// while the server runs.
    ///
    /// ```no_run
    /// let guard = gmr::Gmr::builder().package(gmr::package!()).install()?;
    /// // … run the server; `kill -USR2 <pid>` now writes a report to stderr …
    /// drop(guard); // stops the triggers
    /// # Ok::<(), gmr::InstallError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// An [`InstallError`](crate::InstallError) naming what to fix: an invalid `[gmr]` value,
    /// a trigger file that cannot be created, a signal that cannot be handled, or a hook
    /// already installed with other settings.
    pub fn install(self) -> Result<crate::GmrGuard, crate::InstallError> {
        crate::autorun::install(self.build()?)
    }

    /// Validates the configuration and builds the engine.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the invalid `[gmr]` key and its value.
    pub fn build(self) -> Result<Gmr, ConfigError> {
        let settings = match self.settings {
            Some(settings) => {
                settings.validate()?;
                settings
            }
            None => match &self.app_config {
                Some(config) => GmrConfig::from_config(config)?,
                None => GmrConfig::default(),
            },
        };
        let package = self.package.unwrap_or_else(PackageInfo::gmr);
        let service = settings
            .service_name
            .clone()
            .unwrap_or_else(|| default_service_name(&package));
        let host = crate::sys::hostname().unwrap_or_else(|| "unknown-host".to_owned());
        Ok(Gmr {
            inner: Arc::new(Inner {
                settings,
                app_config: self.app_config,
                package,
                service,
                host,
                sections: self.sections,
            }),
        })
    }
}

struct Inner {
    settings: GmrConfig,
    app_config: Option<::config::Config>,
    package: PackageInfo,
    service: String,
    host: String,
    sections: Vec<Arc<Entry>>,
}

/// The report engine. Cheap to clone; every clone shares the same configuration.
///
/// [`Gmr::report`] builds a report on the calling thread; the autorun hook calls it on its own
/// reporter thread, so an application normally never blocks on it.
#[derive(Clone)]
pub struct Gmr {
    inner: Arc<Inner>,
}

impl fmt::Debug for Gmr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gmr")
            .field("service", &self.inner.service)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Gmr {
    /// A builder for the engine.
    pub fn builder() -> GmrBuilder {
        GmrBuilder::default()
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
            generated_at: rfc3339(now),
            generated_at_compact: compact_timestamp(now),
            trigger,
            report_version: REPORT_VERSION,
        };
        let ctx = ReportContext {
            settings: &inner.settings,
            app_config: inner.app_config.as_ref(),
            trigger,
        };
        let [package, threads, green, processes, configuration] = sections::BUILT_IN_TITLES;
        let mut out = Vec::new();
        out.push(isolated(package, || {
            Ok(boxed(sections::package::PackageSection::new(
                inner.package.clone(),
            )))
        }));
        out.push(isolated(threads, || {
            sections::threads::generate(&ctx).map(boxed)
        }));
        out.push(isolated(green, || {
            Ok(boxed(sections::green_threads::generate()))
        }));
        out.push(isolated(processes, || {
            sections::processes::generate(&ctx).map(boxed)
        }));
        out.push(isolated(configuration, || {
            Ok(boxed(sections::configuration::generate(&ctx)))
        }));
        for entry in registry::registered_sections()
            .iter()
            .chain(inner.sections.iter())
        {
            out.push(isolated(&entry.title, || (entry.generator)()));
        }
        Report::new(header, out)
    }

    /// Writes `report` to the configured sink: a file in `log_dir`, or stderr. An unwritable
    /// `log_dir` falls back to stderr with a line saying why.
    ///
    /// # Errors
    ///
    /// [`SinkError`] when even stderr cannot be written.
    pub fn write_report(&self, report: &Report) -> Result<Delivery, SinkError> {
        self.write_report_sized(report)
            .map(|(delivery, _)| delivery)
    }

    /// [`Gmr::write_report`], also returning the size of the rendered report in bytes.
    pub(crate) fn write_report_sized(
        &self,
        report: &Report,
    ) -> Result<(Delivery, usize), SinkError> {
        sink::deliver(report, &self.inner.settings, &self.inner.service)
    }

    /// Builds a report on the calling thread and writes it to the configured sink.
    ///
    /// # Errors
    ///
    /// [`SinkError`] when even stderr cannot be written.
    pub fn report_and_write(&self, trigger: Trigger) -> Result<Delivery, SinkError> {
        let report = self.report(trigger);
        self.write_report(&report)
    }
}

fn boxed<B: SectionBody + 'static>(body: B) -> Box<dyn SectionBody> {
    Box::new(body)
}

/// Runs one generator, turning an error or a panic into a section that shows it.
fn isolated(
    title: &str,
    generate: impl FnOnce() -> Result<Box<dyn SectionBody>, SectionError>,
) -> Section {
    match catch_unwind(AssertUnwindSafe(generate)) {
        Ok(Ok(body)) => Section::new(title, body),
        Ok(Err(error)) => {
            tracing::warn!(section = title, %error, "gmr section generator failed");
            Section::failed(title, error)
        }
        Err(panic) => {
            let message = panic_message(&panic);
            tracing::warn!(section = title, panic = %message, "gmr section generator panicked");
            Section::failed(title, SectionError::Panicked(message))
        }
    }
}

/// The message of a caught panic payload.
pub(crate) fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(panic payload is not a string)".to_owned()
    }
}

/// The default service name: the running binary's file name, else the package's name.
fn default_service_name(package: &PackageInfo) -> String {
    let from_exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let raw = from_exe
        .or_else(|| package.bin_name.map(str::to_owned))
        .unwrap_or_else(|| package.name.to_owned());
    sanitize_name(&raw)
}

/// Keeps `A-Z a-z 0-9 - _ .` and replaces anything else with `-`, so the name is safe in a file
/// name; never empty, never starting with a dot.
pub(crate) fn sanitize_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while name.starts_with('.') {
        name.remove(0);
    }
    name.truncate(128);
    if name.is_empty() {
        name.push_str("service");
    }
    name
}

/// RFC 3339 in UTC with seconds precision, e.g. `2026-11-26T03:14:15Z`.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let at = OffsetDateTime::from(at);
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// `YYYYMMDDTHHMMSS` in UTC, for file names.
pub(crate) fn compact_timestamp(at: SystemTime) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]");
    OffsetDateTime::from(at)
        .format(&format)
        .unwrap_or_else(|_| "19700101T000000".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(rfc3339(at), "2026-11-18T11:06:40Z");
        assert_eq!(compact_timestamp(at), "20261118T110640");
    }

    #[test]
    fn names_are_file_safe() {
        assert_eq!(sanitize_name("my app/v2"), "my-app-v2");
        assert_eq!(sanitize_name("..hidden"), "hidden");
        assert_eq!(sanitize_name(""), "service");
    }
}
