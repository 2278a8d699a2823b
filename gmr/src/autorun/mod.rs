//! The autorun hook: oslo's `setup_autorun`, without its flaws.
//!
//! [`GmrBuilder::install`](crate::GmrBuilder::install) validates the configuration, starts the
//! reporter thread and the triggers (signal, trigger file), and returns a
//! [`GmrGuard`]. Dropping the last guard stops the triggers and joins the reporter within a
//! second.
//!
//! One hook per process: installing again while a guard is alive with the *same* settings
//! shares the running hook (so a library and its application, or every actix worker, can call
//! install safely); with different settings it is an [`InstallError::AlreadyInstalled`], never a
//! second reporter.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use crate::engine::Gmr;
use crate::error::ConfigError;
use crate::reporter::{ReportHandle, ReporterThread};
use crate::triggers::signal::signal_name;
use crate::triggers::{Prepared, TriggerError, Triggers};

/// Why the hook could not be installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// A `[gmr]` value is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The trigger file is missing and cannot be created, or cannot be examined.
    #[error(
        "cannot use the trigger file `gmr.file_event_handler` {path}: {source}; create its directory or fix its permissions"
    )]
    TriggerFile {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// What is at the trigger file's path is not a regular file: a FIFO, a directory, a device,
    /// or a symbolic link to nothing (gmr never creates a file through a symbolic link).
    #[error("refusing the trigger file `gmr.file_event_handler` {path}: {reason}")]
    TriggerFileRefused {
        /// The configured path.
        path: PathBuf,
        /// What is there, and what to do.
        reason: String,
    },
    /// The trigger signal's handler could not be registered.
    #[error("cannot handle the trigger signal {signal} (`gmr.signal`): {source}")]
    Signal {
        /// The signal's name.
        signal: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A thread could not be started.
    #[error("cannot start the gmr {thread} thread: {source}")]
    Spawn {
        /// Which thread.
        thread: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A hook with other settings is already installed in this process.
    #[error(
        "gmr is already installed in this process with other settings; install it once at startup and share its guard (or its ReportHandle)"
    )]
    AlreadyInstalled,
}

impl From<TriggerError> for InstallError {
    fn from(error: TriggerError) -> Self {
        match error {
            TriggerError::File { path, source } => InstallError::TriggerFile { path, source },
            TriggerError::FileRefused { path, reason } => {
                InstallError::TriggerFileRefused { path, reason }
            }
            TriggerError::Signal { signal, source } => InstallError::Signal { signal, source },
            TriggerError::Spawn { thread, source } => InstallError::Spawn { thread, source },
        }
    }
}

/// The installed hook. Keep it alive for as long as reports should be taken, typically until
/// the server has shut down; dropping the last guard stops the triggers.
#[derive(Clone)]
#[must_use = "dropping the guard stops the autorun hook at once"]
pub struct GmrGuard {
    installation: Arc<Installation>,
}

impl std::fmt::Debug for GmrGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GmrGuard")
            .field("gmr", &self.installation.gmr)
            .field("signal", &self.installation.signal_active)
            .finish_non_exhaustive()
    }
}

impl GmrGuard {
    /// The engine (its settings, its service name).
    pub fn gmr(&self) -> &Gmr {
        &self.installation.gmr
    }

    /// A handle for asking the reporter thread for reports (the programmatic trigger).
    pub fn reports(&self) -> ReportHandle {
        self.installation.reports.clone()
    }

    /// Whether the signal trigger is active (it is not with `signal = "none"`, or when the host
    /// ignores the signal).
    pub fn signal_trigger_active(&self) -> bool {
        self.installation.signal_active
    }
}

struct Installation {
    gmr: Gmr,
    reports: ReportHandle,
    signal_active: bool,
    parts: Mutex<Parts>,
}

struct Parts {
    triggers: Option<Triggers>,
    reporter: Option<ReporterThread>,
}

impl Drop for Installation {
    fn drop(&mut self) {
        let parts = self.parts.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let Some(mut triggers) = parts.triggers.take() {
            triggers.stop();
        }
        if let Some(mut reporter) = parts.reporter.take() {
            reporter.stop(Duration::from_secs(1));
        }
        tracing::info!(service = %self.gmr.service_name(), "gmr autorun hook stopped");
    }
}

/// The hook of this process, while a guard is alive.
static INSTALLED: Mutex<Weak<Installation>> = Mutex::new(Weak::new());

/// Installs the hook (see the module docs).
pub(crate) fn install(gmr: Gmr) -> Result<GmrGuard, InstallError> {
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(existing) = installed.upgrade() {
        if existing.gmr.settings() == gmr.settings() {
            tracing::debug!("gmr already installed with the same settings; sharing the hook");
            return Ok(GmrGuard {
                installation: existing,
            });
        }
        return Err(InstallError::AlreadyInstalled);
    }
    let settings = gmr.settings();
    // gmr's threads leave the capture signal open (and only it): set before any starts.
    if let Some(signal) = crate::capture::capture_signal_number(settings.threads.capture_signal) {
        crate::threads::set_capture_signal(signal);
        // Its default action kills the process: handled from now on, not from the first
        // report. A signal somebody else owns is left alone (each report then says why it
        // has no stacks of other threads).
        if let Err(why) = crate::capture::install_capture_handler(settings.threads.capture_signal) {
            tracing::warn!(reason = %why, "gmr cannot handle its capture signal; reports will hold no stacks of other threads");
        }
    }
    // Checks that can fail come before any thread starts.
    let prepared = Prepared::new(settings)?;
    let reporter = ReporterThread::start(gmr.clone()).map_err(|source| InstallError::Spawn {
        thread: "reporter",
        source,
    })?;
    let reports = reporter.handle();
    let triggers = prepared.start(&reports)?;
    let signal_active = triggers.active_signal().is_some();
    tracing::info!(
        service = %gmr.service_name(),
        signal = %triggers.active_signal().map_or_else(|| "none".to_owned(), signal_name),
        trigger_file = ?settings.file_event_handler,
        log_dir = ?settings.log_dir,
        "gmr autorun hook installed"
    );
    let installation = Arc::new(Installation {
        gmr,
        reports,
        signal_active,
        parts: Mutex::new(Parts {
            triggers: Some(triggers),
            reporter: Some(reporter),
        }),
    });
    *installed = Arc::downgrade(&installation);
    Ok(GmrGuard { installation })
}
