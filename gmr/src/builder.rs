//! [`GmrBuilder`]: the one way to make an engine, with or without installing the autorun hook.
//!
//! It reads and validates the configuration, picks the configured destination (stderr, or
//! `log_dir` with the stderr fallback), adds the application's sinks and sections, and either
//! returns the engine ([`GmrBuilder::build`]) or installs the hook ([`GmrBuilder::install`]).
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use crate::autorun::{self, GmrGuard, InstallError};
use crate::config::GmrConfig;
use crate::engine::{EngineParts, Gmr};
use crate::error::ConfigError;
use crate::package::PackageInfo;
use crate::registry::{Entry, boxed_generator, new_entry};
use crate::report::SectionBody;
use crate::sink::{LogDirSink, Sink, StderrFallback, StderrSink, loose_directory, sanitize_name};

/// Builds a [`Gmr`] engine: the configuration, the application's package, and optional
/// sections and sinks of this engine only.
#[derive(Default)]
#[must_use = "a builder does nothing until `build` or `install` is called"]
pub struct GmrBuilder {
    app_config: Option<::config::Config>,
    settings: Option<GmrConfig>,
    package: Option<PackageInfo>,
    sections: Vec<Arc<Entry>>,
    sinks: Vec<Arc<dyn Sink>>,
}

impl fmt::Debug for GmrBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GmrBuilder")
            .field("has_app_config", &self.app_config.is_some())
            .field("settings", &self.settings)
            .field("package", &self.package)
            .field("sections", &self.sections)
            .field("sinks", &self.sinks)
            .finish()
    }
}

impl Gmr {
    /// A builder for the engine.
    pub fn builder() -> GmrBuilder {
        GmrBuilder::default()
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

    /// Another destination for every report, after the configured one (stderr or `log_dir`).
    /// It receives each report rendered in its [`Sink::format`], or in the configured
    /// `format`.
    pub fn sink(mut self, sink: Arc<dyn Sink>) -> Self {
        self.sinks.push(sink);
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
    /// An [`InstallError`] naming what to fix: an invalid `[gmr]` value, a trigger file that
    /// cannot be created, a signal that cannot be handled, or a hook already installed with
    /// other settings.
    pub fn install(self) -> Result<GmrGuard, InstallError> {
        autorun::install(self.build()?)
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
        let host = crate::capture::sys::hostname().unwrap_or_else(|| "unknown-host".to_owned());
        if let Some(reason) = settings.log_dir.as_deref().and_then(loose_directory) {
            return Err(ConfigError::InvalidValue {
                key: "log_dir".to_owned(),
                value: settings
                    .log_dir
                    .as_deref()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                reason,
            });
        }
        let destination: Arc<dyn Sink> = match &settings.log_dir {
            Some(dir) => Arc::new(StderrFallback::new(LogDirSink::new(
                dir.clone(),
                service.clone(),
                settings.max_reports,
            ))),
            None => Arc::new(StderrSink::new()),
        };
        let mut sinks = vec![destination];
        sinks.extend(self.sinks);
        Ok(Gmr::from_parts(EngineParts {
            history: crate::sections::since::History::default(),
            settings,
            app_config: self.app_config,
            package,
            service,
            host,
            sections: self.sections,
            sinks,
        }))
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn a_log_dir_others_can_write_without_the_sticky_bit_fails_build_and_install() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))
            .expect("chmod");
        let settings = GmrConfig {
            log_dir: Some(dir.path().to_owned()),
            signal: crate::config::SignalChoice::None,
            ..GmrConfig::default()
        };
        let message = Gmr::builder()
            .settings(settings.clone())
            .build()
            .expect_err("build refuses the directory")
            .to_string();
        assert!(message.contains("gmr.log_dir"), "{message}");
        assert!(message.contains("0777"), "{message}");
        let error = Gmr::builder()
            .settings(settings.clone())
            .install()
            .expect_err("install refuses the directory");
        assert!(
            matches!(
                error,
                InstallError::Config(ConfigError::InvalidValue { .. })
            ),
            "{error}"
        );
        // The sticky bit (a shared directory such as /tmp) makes it acceptable.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777))
            .expect("chmod");
        assert!(Gmr::builder().settings(settings).build().is_ok());
    }
}
