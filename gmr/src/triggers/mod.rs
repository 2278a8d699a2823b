//! The triggers that ask the reporter thread for a report: the signal and the trigger file.
//! (HTTP lives in the web adapters; the API is [`crate::ReportHandle`].)
//!
//! A trigger only asks [`crate::ReportHandle::request`] for a report; it never builds one.
//! Installing the hook prepares every configured trigger ([`Prepared::new`]: checks that can
//! fail, before any thread starts), then starts them with the reporter's handle
//! ([`Prepared::start`]). Adding a trigger is a module here, its lines in `Prepared`, and its
//! [`crate::Trigger`] variant.
#![forbid(unsafe_code)]

pub(crate) mod file;
pub(crate) mod signal;

use std::io;
use std::path::PathBuf;

use self::file::{FileTrigger, FileWatch, FileWatchError};
use self::signal::{SignalTrigger, signal_name};
use crate::config::{GmrConfig, SignalChoice};
use crate::reporter::ReportHandle;

/// Why a trigger could not be set up.
#[derive(Debug)]
pub(crate) enum TriggerError {
    /// The trigger file cannot be created or examined.
    File { path: PathBuf, source: io::Error },
    /// What is at the trigger file's path is not a regular file (why).
    FileRefused { path: PathBuf, reason: String },
    /// The trigger signal's handler could not be registered.
    Signal { signal: String, source: io::Error },
    /// A trigger's thread could not be started.
    Spawn {
        thread: &'static str,
        source: io::Error,
    },
}

/// The configured triggers, checked and ready to start.
#[derive(Debug)]
pub(crate) struct Prepared {
    file: Option<FileWatch>,
    signal: SignalChoice,
}

impl Prepared {
    /// Checks every configured trigger (the trigger file is created if missing).
    pub(crate) fn new(settings: &GmrConfig) -> Result<Self, TriggerError> {
        let file = match &settings.file_event_handler {
            Some(path) => Some(
                FileWatch::new(path, settings.file_event_handler_interval).map_err(|error| {
                    match error {
                        FileWatchError::Io(source) => TriggerError::File {
                            path: path.clone(),
                            source,
                        },
                        FileWatchError::Refused(reason) => TriggerError::FileRefused {
                            path: path.clone(),
                            reason,
                        },
                    }
                })?,
            ),
            None => None,
        };
        Ok(Prepared {
            file,
            signal: settings.signal,
        })
    }

    /// Starts the triggers, each asking `reports` for reports.
    pub(crate) fn start(self, reports: &ReportHandle) -> Result<Triggers, TriggerError> {
        let file =
            match self.file {
                Some(watch) => Some(FileTrigger::start(watch, reports.clone()).map_err(
                    |source| TriggerError::Spawn {
                        thread: "file trigger",
                        source,
                    },
                )?),
                None => None,
            };
        let signal = match self.signal {
            SignalChoice::None => None,
            SignalChoice::Signal(number) => {
                signal::start(number, reports.clone()).map_err(|source| TriggerError::Signal {
                    signal: signal_name(number),
                    source,
                })?
            }
        };
        Ok(Triggers {
            signal,
            signal_choice: self.signal,
            file,
        })
    }
}

/// The running triggers of the hook; stopped when dropped.
pub(crate) struct Triggers {
    signal: Option<SignalTrigger>,
    signal_choice: SignalChoice,
    file: Option<FileTrigger>,
}

impl Triggers {
    /// The signal that triggers reports, if the signal trigger runs (not with
    /// `signal = "none"`, nor when the host ignores the signal).
    pub(crate) fn active_signal(&self) -> Option<i32> {
        match (self.signal_choice, &self.signal) {
            (SignalChoice::Signal(number), Some(_)) => Some(number),
            _ => None,
        }
    }

    /// Stops every trigger.
    pub(crate) fn stop(&mut self) {
        if let Some(mut signal) = self.signal.take() {
            signal.stop();
        }
        if let Some(mut file) = self.file.take() {
            file.stop();
        }
    }
}

impl Drop for Triggers {
    fn drop(&mut self) {
        self.stop();
    }
}
