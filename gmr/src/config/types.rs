//! The types of the validated `[gmr]` configuration. Every field is named as its key below
//! `[gmr]`: `threads.timeout` is `settings.threads.timeout`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use crate::report::OutputFormat;

/// Which signal triggers a report (`signal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalChoice {
    /// Leave every signal's disposition alone (the host owns the signals).
    None,
    /// This signal number (e.g. `libc::SIGUSR2`).
    Signal(i32),
}

impl Default for SignalChoice {
    fn default() -> Self {
        SignalChoice::Signal(libc::SIGUSR2)
    }
}

/// The admin endpoint's settings (`[gmr.admin]`). The endpoint exists only when a token is set.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// `admin.path`: path of the endpoint, `/admin/gmr` by default.
    pub path: String,
    /// `admin.token`, or the contents of `admin.token_file`. `None`: endpoint off.
    pub token: Option<SecretString>,
    /// `admin.min_interval`: requests closer than this share one report.
    pub min_interval: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            path: "/admin/gmr".to_owned(),
            token: None,
            min_interval: Duration::from_secs(1),
        }
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("path", &self.path)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("min_interval", &self.min_interval)
            .finish()
    }
}

/// A string that never shows itself in `Debug` or `Display` output (the admin token).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        SecretString(secret.into())
    }

    /// The secret itself. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

/// What is masked besides the built-in patterns (`[gmr.secrets]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SecretsConfig {
    /// `secrets.extra_keys`: more key names to mask.
    pub extra_keys: Vec<String>,
}

/// How the stacks of other threads are taken (`[gmr.threads]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadsConfig {
    /// `threads.capture_signal`: the capture signal is `SIGRTMIN() + capture_signal`.
    pub capture_signal: i32,
    /// `threads.timeout`: how long one thread may take to answer the capture signal.
    pub timeout: Duration,
    /// `threads.deadline`: how long the capture of all threads may take.
    pub deadline: Duration,
    /// `threads.max_frames`: frames kept per stack (innermost first).
    pub max_frames: usize,
    /// `threads.symbol_budget`: bytes of debug information and symbol tables that naming
    /// frames may hold; a module beyond it is named from its symbol table only.
    pub symbol_budget: u64,
    /// `threads.fold`: which runs of frames the text view folds into one line.
    pub fold: FoldConfig,
    /// `threads.debug_dirs`: where separate debug files are looked for by build-id
    /// (`<dir>/.build-id/xx/yyyy.debug`) and by `.gnu_debuglink` (`<dir>/<binary's dir>/…`).
    pub debug_dirs: Vec<PathBuf>,
}

/// Which runs of frames the text view folds (`threads.fold`): `true` (the default) folds the
/// runtime, framework and standard-library crates, `false` shows every frame, and a list of
/// crate names folds those too. JSON keeps every frame whatever this says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoldConfig {
    /// Whether anything is folded.
    pub enabled: bool,
    /// Crates folded besides the built-in list (names as in paths: `sqlx`, `my_db_layer`).
    pub extra_crates: Vec<String>,
}

impl Default for FoldConfig {
    fn default() -> Self {
        FoldConfig {
            enabled: true,
            extra_crates: Vec::new(),
        }
    }
}

impl Default for ThreadsConfig {
    fn default() -> Self {
        ThreadsConfig {
            capture_signal: 5,
            timeout: Duration::from_millis(200),
            deadline: Duration::from_secs(5),
            max_frames: 128,
            symbol_budget: 128 << 20,
            fold: FoldConfig::default(),
            debug_dirs: vec![PathBuf::from("/usr/lib/debug")],
        }
    }
}

/// What the `Green Threads` section shows (`[gmr.green_threads]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreenThreadsConfig {
    /// `green_threads.span_age`: spans outside any request open at least this long are listed
    /// (background jobs), with `gmr::tracing::layer()`.
    pub span_age: Duration,
}

impl Default for GreenThreadsConfig {
    fn default() -> Self {
        GreenThreadsConfig {
            span_age: Duration::from_secs(1),
        }
    }
}

/// The validated `[gmr]` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GmrConfig {
    /// `service_name`: for the report header and file names; `None`: the binary's name.
    pub service_name: Option<String>,
    /// `log_dir`: directory for report files; `None`: reports go to stderr.
    pub log_dir: Option<PathBuf>,
    /// `file_event_handler`: a change of this file triggers a report.
    pub file_event_handler: Option<PathBuf>,
    /// `file_event_handler_interval`: how often the trigger file is polled.
    pub file_event_handler_interval: Duration,
    /// `signal`: the trigger signal.
    pub signal: SignalChoice,
    /// `format`: the format of reports on stderr and in `log_dir`.
    pub format: OutputFormat,
    /// `max_reports`: report files kept in `log_dir` per service.
    pub max_reports: usize,
    /// `min_interval`: reports asked for by the signal and the trigger file closer than this
    /// share one report; the last one asked for within an interval is made when it ends.
    pub min_interval: Duration,
    /// `show_environment`: whether the `Processes` section lists the environment (masked).
    pub show_environment: bool,
    /// `[gmr.admin]`: the admin endpoint.
    pub admin: AdminConfig,
    /// `[gmr.secrets]`: what is masked besides the built-in patterns.
    pub secrets: SecretsConfig,
    /// `[gmr.threads]`: stack capture of other threads.
    pub threads: ThreadsConfig,
    /// `[gmr.green_threads]`: requests, tasks and spans.
    pub green_threads: GreenThreadsConfig,
}

impl Default for GmrConfig {
    fn default() -> Self {
        GmrConfig {
            service_name: None,
            log_dir: None,
            file_event_handler: None,
            file_event_handler_interval: Duration::from_secs(1),
            signal: SignalChoice::default(),
            format: OutputFormat::Text,
            max_reports: 20,
            min_interval: Duration::from_secs(1),
            show_environment: false,
            admin: AdminConfig::default(),
            secrets: SecretsConfig::default(),
            threads: ThreadsConfig::default(),
            green_threads: GreenThreadsConfig::default(),
        }
    }
}
