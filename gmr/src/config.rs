//! The `[gmr]` configuration table (DESIGN §3.2).
//!
//! [`GmrConfig`] is read from the `[gmr]` table of a [`config::Config`] with
//! [`GmrConfig::from_config`], or built in code from [`GmrConfig::default`] and its public
//! fields. Every value is validated when it is read (and again by [`GmrConfig::validate`] for a
//! value built in code): a bad value is a [`ConfigError`] naming the key and the value, never a
//! panic and never a silent fallback. Unknown keys are rejected too, so that a typo such as
//! `log_dirr` does not silently leave reports on stderr.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `service_name` | binary name | report header and file names |
//! | `log_dir` | unset: stderr | directory for report files |
//! | `file_event_handler` | unset | trigger file path |
//! | `file_event_handler_interval` | `1` (seconds) | poll interval, > 0 |
//! | `signal` | `"SIGUSR2"` | trigger signal, or `"none"` |
//! | `format` | `"text"` | `text` or `json` for files and stderr |
//! | `max_reports` | `20` | files kept in `log_dir` per service |
//! | `show_environment` | `false` | list environment variables (masked) in `Processes` |
//! | `admin.path` | `"/admin/gmr"` | admin endpoint path |
//! | `admin.token` / `admin.token_file` | unset: endpoint off | bearer token, or a file holding it |
//! | `admin.min_interval` | `"1s"` | requests closer than this share one report |
//! | `secrets.extra_keys` | `[]` | more key names to mask |
//! | `threads.capture_signal` | `"SIGRTMIN+5"` | real-time signal used to take other threads' stacks |
//! | `threads.timeout` | `"200ms"` | how long one thread may take to answer |
//! | `threads.deadline` | `"5s"` | how long the capture of all threads may take |
//! | `threads.max_frames` | `128` | frames kept per stack |

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use ::config::{Value, ValueKind};

use crate::error::ConfigError;

/// Format of reports written to stderr and to `log_dir`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// oslo's 72-column text layout.
    #[default]
    Text,
    /// One JSON document per report.
    Json,
}

impl OutputFormat {
    /// The file extension of this format (`txt` or `json`).
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Text => "txt",
            OutputFormat::Json => "json",
        }
    }
}

/// Which signal triggers a report.
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
    /// Path of the endpoint, `/admin/gmr` by default.
    pub path: String,
    /// The bearer token, read from `admin.token` or `admin.token_file`. `None`: endpoint off.
    pub token: Option<SecretString>,
    /// Requests closer than this share one report.
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

/// How the stacks of other threads are taken (`[gmr.threads]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadsConfig {
    /// The capture signal is `SIGRTMIN() + capture_signal`.
    pub capture_signal: i32,
    /// How long one thread may take to answer the capture signal.
    pub thread_timeout: Duration,
    /// How long the capture of all threads may take.
    pub deadline: Duration,
    /// Frames kept per stack (innermost first).
    pub max_frames: usize,
}

impl Default for ThreadsConfig {
    fn default() -> Self {
        ThreadsConfig {
            capture_signal: 5,
            thread_timeout: Duration::from_millis(200),
            deadline: Duration::from_secs(5),
            max_frames: 128,
        }
    }
}

/// The validated `[gmr]` configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GmrConfig {
    /// Service name for the report header and file names; `None`: the binary's name.
    pub service_name: Option<String>,
    /// Directory for report files; `None`: reports go to stderr.
    pub log_dir: Option<PathBuf>,
    /// Trigger file: a change of it triggers a report.
    pub file_event_handler: Option<PathBuf>,
    /// How often the trigger file is polled.
    pub file_event_handler_interval: Duration,
    /// The trigger signal.
    pub signal: SignalChoice,
    /// Format for stderr and files.
    pub format: OutputFormat,
    /// Report files kept in `log_dir` per service.
    pub max_reports: usize,
    /// Whether the `Processes` section lists the environment (masked).
    pub show_environment: bool,
    /// The admin endpoint.
    pub admin: AdminConfig,
    /// Key names masked in addition to the built-in patterns.
    pub secret_extra_keys: Vec<String>,
    /// Stack capture of other threads.
    pub threads: ThreadsConfig,
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
            show_environment: false,
            admin: AdminConfig::default(),
            secret_extra_keys: Vec::new(),
            threads: ThreadsConfig::default(),
        }
    }
}

/// The keys gmr knows, as dotted paths below `[gmr]`.
const KNOWN_KEYS: &[&str] = &[
    "service_name",
    "log_dir",
    "file_event_handler",
    "file_event_handler_interval",
    "signal",
    "format",
    "max_reports",
    "show_environment",
    "admin.path",
    "admin.token",
    "admin.token_file",
    "admin.min_interval",
    "secrets.extra_keys",
    "threads.capture_signal",
    "threads.timeout",
    "threads.deadline",
    "threads.max_frames",
];

/// The largest `max_reports` accepted: more would make retention scans slow for no use.
const MAX_REPORTS_LIMIT: usize = 100_000;

impl GmrConfig {
    /// Reads the `[gmr]` table of `config`. A missing table gives the defaults.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first key whose value is invalid, or an unknown key.
    pub fn from_config(config: &::config::Config) -> Result<Self, ConfigError> {
        let table = match config.get::<Value>("gmr") {
            Ok(value) => value,
            Err(::config::ConfigError::NotFound(_)) => return Ok(GmrConfig::default()),
            Err(other) => return Err(ConfigError::Source(other)),
        };
        let mut flat = Vec::new();
        flatten("", table, &mut flat)?;
        let mut out = GmrConfig::default();
        let mut token_file = None;
        for (key, value) in flat {
            out.apply(&key, value, &mut token_file)?;
        }
        if let Some(path) = token_file {
            if out.admin.token.is_some() {
                return Err(ConfigError::Conflict {
                    first: "admin.token",
                    second: "admin.token_file",
                    reason: "set the token in one place only",
                });
            }
            out.admin.token = Some(read_token_file(&path)?);
        }
        out.validate()?;
        Ok(out)
    }

    /// Checks the values of a configuration built in code, with the same rules as
    /// [`GmrConfig::from_config`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first invalid key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(name) = &self.service_name {
            validate_service_name(name)?;
        }
        if self.file_event_handler_interval.is_zero() {
            return Err(invalid(
                "file_event_handler_interval",
                "0",
                "the poll interval must be greater than 0 seconds",
            ));
        }
        if let SignalChoice::Signal(number) = self.signal {
            validate_trigger_signal(number, &format!("{number}"))?;
        }
        if self.max_reports == 0 || self.max_reports > MAX_REPORTS_LIMIT {
            return Err(invalid(
                "max_reports",
                &self.max_reports.to_string(),
                "must be between 1 and 100000",
            ));
        }
        validate_admin_path(&self.admin.path)?;
        if let Some(token) = &self.admin.token {
            validate_token(token.expose(), "admin.token")?;
        }
        if self.admin.min_interval.is_zero() {
            return Err(invalid(
                "admin.min_interval",
                "0s",
                "must be greater than 0 so requests share reports",
            ));
        }
        for key in &self.secret_extra_keys {
            if key.trim().is_empty() {
                return Err(invalid(
                    "secrets.extra_keys",
                    &format!("{key:?}"),
                    "key names must not be empty",
                ));
            }
        }
        validate_capture_signal(self.threads.capture_signal)?;
        if self.threads.thread_timeout.is_zero() {
            return Err(invalid("threads.timeout", "0s", "must be greater than 0"));
        }
        if self.threads.deadline < self.threads.thread_timeout {
            return Err(invalid(
                "threads.deadline",
                &format_duration(self.threads.deadline),
                "must be at least `threads.timeout`",
            ));
        }
        if !(4..=4096).contains(&self.threads.max_frames) {
            return Err(invalid(
                "threads.max_frames",
                &self.threads.max_frames.to_string(),
                "must be between 4 and 4096",
            ));
        }
        Ok(())
    }

    fn apply(
        &mut self,
        key: &str,
        value: Value,
        token_file: &mut Option<PathBuf>,
    ) -> Result<(), ConfigError> {
        match key {
            "service_name" => {
                let name = string(key, value)?;
                validate_service_name(&name)?;
                self.service_name = Some(name);
            }
            "log_dir" => self.log_dir = Some(path(key, value)?),
            "file_event_handler" => self.file_event_handler = Some(path(key, value)?),
            "file_event_handler_interval" => {
                self.file_event_handler_interval = seconds(key, value)?;
            }
            "signal" => self.signal = parse_trigger_signal(&string(key, value)?)?,
            "format" => {
                let text = string(key, value)?;
                self.format = match text.to_ascii_lowercase().as_str() {
                    "text" | "txt" => OutputFormat::Text,
                    "json" => OutputFormat::Json,
                    _ => return Err(invalid(key, &text, "expected \"text\" or \"json\"")),
                };
            }
            "max_reports" => {
                let shown = value.to_string();
                let number = integer(key, value)?;
                self.max_reports = usize::try_from(number)
                    .ok()
                    .filter(|n| (1..=MAX_REPORTS_LIMIT).contains(n))
                    .ok_or_else(|| invalid(key, &shown, "must be between 1 and 100000"))?;
            }
            "show_environment" => self.show_environment = boolean(key, value)?,
            "admin.path" => {
                let path = string(key, value)?;
                validate_admin_path(&path)?;
                self.admin.path = path;
            }
            "admin.token" => {
                let token = match value.kind {
                    ValueKind::String(s) => s,
                    _ => {
                        return Err(ConfigError::WrongType {
                            key: key.to_owned(),
                            value: "***".to_owned(),
                            expected: "a string",
                        });
                    }
                };
                validate_token(&token, key)?;
                self.admin.token = Some(SecretString::new(token));
            }
            "admin.token_file" => *token_file = Some(path(key, value)?),
            "admin.min_interval" => self.admin.min_interval = duration(key, value)?,
            "secrets.extra_keys" => {
                let shown = value.to_string();
                let items = value.into_array().map_err(|_| ConfigError::WrongType {
                    key: key.to_owned(),
                    value: shown,
                    expected: "an array of strings",
                })?;
                self.secret_extra_keys = items
                    .into_iter()
                    .map(|item| string(key, item))
                    .collect::<Result<_, _>>()?;
            }
            "threads.capture_signal" => {
                self.threads.capture_signal = parse_capture_signal(&string(key, value)?)?;
            }
            "threads.timeout" => self.threads.thread_timeout = duration(key, value)?,
            "threads.deadline" => self.threads.deadline = duration(key, value)?,
            "threads.max_frames" => {
                let shown = value.to_string();
                let number = integer(key, value)?;
                self.threads.max_frames = usize::try_from(number)
                    .map_err(|_| invalid(key, &shown, "must be between 4 and 4096"))?;
            }
            other => {
                return Err(ConfigError::UnknownKey {
                    key: other.to_owned(),
                    known: KNOWN_KEYS.join(", "),
                });
            }
        }
        Ok(())
    }
}

/// Flattens nested tables into dotted keys (`admin.token`); arrays stay values.
fn flatten(prefix: &str, value: Value, out: &mut Vec<(String, Value)>) -> Result<(), ConfigError> {
    match value.kind {
        ValueKind::Table(table) => {
            let mut entries: Vec<_> = table.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            for (key, child) in entries {
                let full = if prefix.is_empty() {
                    key
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&full, child, out)?;
            }
            Ok(())
        }
        _ if prefix.is_empty() => Err(ConfigError::NotATable {
            value: value.to_string(),
        }),
        _ => {
            out.push((prefix.to_owned(), value));
            Ok(())
        }
    }
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn string(key: &str, value: Value) -> Result<String, ConfigError> {
    match value.kind {
        ValueKind::String(s) => Ok(s),
        ValueKind::Table(_) | ValueKind::Array(_) | ValueKind::Nil => Err(ConfigError::WrongType {
            key: key.to_owned(),
            value: value.to_string(),
            expected: "a string",
        }),
        _ => Ok(value.to_string()),
    }
}

fn path(key: &str, value: Value) -> Result<PathBuf, ConfigError> {
    let text = string(key, value)?;
    if text.trim().is_empty() {
        return Err(invalid(
            key,
            "\"\"",
            "must not be empty; unset the key instead",
        ));
    }
    if text.contains('\0') {
        return Err(invalid(key, &text, "must not contain a NUL byte"));
    }
    Ok(PathBuf::from(text))
}

fn integer(key: &str, value: Value) -> Result<i64, ConfigError> {
    let shown = value.to_string();
    value.into_int().map_err(|_| ConfigError::WrongType {
        key: key.to_owned(),
        value: shown,
        expected: "an integer",
    })
}

fn boolean(key: &str, value: Value) -> Result<bool, ConfigError> {
    let shown = value.to_string();
    value.into_bool().map_err(|_| ConfigError::WrongType {
        key: key.to_owned(),
        value: shown,
        expected: "true or false",
    })
}

/// A number of seconds (integer or decimal, or a duration string such as `"500ms"`), > 0.
fn seconds(key: &str, value: Value) -> Result<Duration, ConfigError> {
    let shown = value.to_string();
    let parsed = match &value.kind {
        ValueKind::I64(n) => Some(*n as f64),
        ValueKind::I128(n) => Some(*n as f64),
        ValueKind::U64(n) => Some(*n as f64),
        ValueKind::U128(n) => Some(*n as f64),
        ValueKind::Float(f) => Some(*f),
        ValueKind::String(s) => match s.trim().parse::<f64>() {
            Ok(f) => Some(f),
            Err(_) => return parse_duration(s).map_err(|reason| invalid(key, s, &reason)),
        },
        _ => None,
    };
    let Some(secs) = parsed else {
        return Err(ConfigError::WrongType {
            key: key.to_owned(),
            value: shown,
            expected: "a number of seconds",
        });
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(invalid(
            key,
            &shown,
            "must be a number of seconds greater than 0",
        ));
    }
    if secs > 86_400.0 {
        return Err(invalid(
            key,
            &shown,
            "must be at most 86400 seconds (one day)",
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration string (`"1s"`, `"250ms"`, `"2m"`) or a number of seconds.
fn duration(key: &str, value: Value) -> Result<Duration, ConfigError> {
    let shown = value.to_string();
    let parsed = match &value.kind {
        ValueKind::String(s) => parse_duration(s).map_err(|reason| invalid(key, s, &reason))?,
        ValueKind::I64(_) | ValueKind::U64(_) | ValueKind::Float(_) => seconds(key, value)?,
        _ => {
            return Err(ConfigError::WrongType {
                key: key.to_owned(),
                value: shown,
                expected: "a duration such as \"1s\" or \"250ms\"",
            });
        }
    };
    if parsed.is_zero() {
        return Err(invalid(key, &shown, "must be greater than 0"));
    }
    Ok(parsed)
}

/// Parses `"1s"`, `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`, `"100us"`, or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| "expected a duration such as \"1s\", \"250ms\" or \"2m\"".to_owned())?;
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" | "mins" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?}; use one of us, ms, s, m, h"
            ));
        }
    };
    let secs = number * scale;
    if !secs.is_finite() || secs > 86_400.0 {
        return Err("must be at most one day".to_owned());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn format_duration(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

fn validate_service_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "service_name",
            name,
            "use 1 to 128 characters among A-Z a-z 0-9 - _ . (it is part of file names), not starting with a dot",
        ))
    }
}

fn validate_admin_path(path: &str) -> Result<(), ConfigError> {
    let ok = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && !path.contains("//")
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "admin.path",
            path,
            "must be an absolute path such as \"/admin/gmr\": starts with '/', no trailing '/', no query, only A-Z a-z 0-9 / - _ . ~",
        ))
    }
}

fn validate_token(token: &str, key: &str) -> Result<(), ConfigError> {
    if token.len() < 16 {
        return Err(invalid(
            key,
            "***",
            "the token must be at least 16 characters long (e.g. `openssl rand -hex 32`)",
        ));
    }
    if token.len() > 4096 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            key,
            "***",
            "the token must be at most 4096 printable ASCII characters without spaces",
        ));
    }
    Ok(())
}

fn read_token_file(path: &PathBuf) -> Result<SecretString, ConfigError> {
    let contents = std::fs::read_to_string(path).map_err(|source| ConfigError::TokenFile {
        path: path.clone(),
        source,
    })?;
    let token = contents.trim_end_matches(['\n', '\r']).to_owned();
    validate_token(&token, "admin.token_file")?;
    Ok(SecretString::new(token))
}

/// Signals that cannot or must not trigger reports.
const FORBIDDEN_TRIGGER_SIGNALS: &[(i32, &str)] = &[
    (libc::SIGKILL, "SIGKILL cannot be caught"),
    (libc::SIGSTOP, "SIGSTOP cannot be caught"),
    (libc::SIGSEGV, "SIGSEGV reports a memory fault"),
    (libc::SIGBUS, "SIGBUS reports a memory fault"),
    (libc::SIGILL, "SIGILL reports an illegal instruction"),
    (libc::SIGFPE, "SIGFPE reports an arithmetic fault"),
    (libc::SIGABRT, "SIGABRT is how the process aborts"),
    (libc::SIGCHLD, "SIGCHLD reports child processes"),
    (libc::SIGPIPE, "SIGPIPE reports broken pipes"),
    (
        libc::SIGTERM,
        "SIGTERM asks the process to stop; taking it over would keep the process from stopping",
    ),
    (
        libc::SIGINT,
        "SIGINT is Ctrl-C; taking it over would keep the process from stopping",
    ),
];

const NAMED_SIGNALS: &[(&str, i32)] = &[
    ("SIGHUP", libc::SIGHUP),
    ("SIGINT", libc::SIGINT),
    ("SIGQUIT", libc::SIGQUIT),
    ("SIGUSR1", libc::SIGUSR1),
    ("SIGUSR2", libc::SIGUSR2),
    ("SIGTERM", libc::SIGTERM),
    ("SIGWINCH", libc::SIGWINCH),
    ("SIGURG", libc::SIGURG),
    #[cfg(any(target_os = "linux", target_os = "android"))]
    ("SIGPWR", libc::SIGPWR),
    ("SIGTTIN", libc::SIGTTIN),
    ("SIGTTOU", libc::SIGTTOU),
    ("SIGKILL", libc::SIGKILL),
    ("SIGSTOP", libc::SIGSTOP),
    ("SIGSEGV", libc::SIGSEGV),
    ("SIGBUS", libc::SIGBUS),
    ("SIGILL", libc::SIGILL),
    ("SIGFPE", libc::SIGFPE),
    ("SIGABRT", libc::SIGABRT),
    ("SIGCHLD", libc::SIGCHLD),
    ("SIGPIPE", libc::SIGPIPE),
];

/// The conventional name of a signal number (`SIGUSR2`), or `signal N`.
pub fn signal_name(number: i32) -> String {
    NAMED_SIGNALS
        .iter()
        .find(|(_, n)| *n == number)
        .map(|(name, _)| (*name).to_owned())
        .unwrap_or_else(|| format!("signal {number}"))
}

fn parse_trigger_signal(text: &str) -> Result<SignalChoice, ConfigError> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("none") || trimmed.eq_ignore_ascii_case("off") {
        return Ok(SignalChoice::None);
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    let number = NAMED_SIGNALS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, number)| *number)
        .ok_or_else(|| {
            invalid(
                "signal",
                text,
                "expected a signal name such as \"SIGUSR2\", \"SIGUSR1\", \"SIGHUP\", or \"none\"",
            )
        })?;
    validate_trigger_signal(number, text)?;
    Ok(SignalChoice::Signal(number))
}

fn validate_trigger_signal(number: i32, shown: &str) -> Result<(), ConfigError> {
    if let Some((_, why)) = FORBIDDEN_TRIGGER_SIGNALS.iter().find(|(n, _)| *n == number) {
        return Err(invalid(
            "signal",
            shown,
            &format!("{why}; use SIGUSR2 (the default), SIGUSR1, or \"none\""),
        ));
    }
    if !NAMED_SIGNALS.iter().any(|(_, n)| *n == number) {
        return Err(invalid(
            "signal",
            shown,
            "expected a signal name such as \"SIGUSR2\", \"SIGUSR1\", \"SIGHUP\", or \"none\"",
        ));
    }
    Ok(())
}

/// The highest `n` of `SIGRTMIN+n` that stays below `SIGRTMAX` on every Linux libc.
const MAX_CAPTURE_OFFSET: i32 = 28;

fn parse_capture_signal(text: &str) -> Result<i32, ConfigError> {
    let upper = text.trim().to_ascii_uppercase().replace(' ', "");
    let offset = if let Some(rest) = upper.strip_prefix("SIGRTMIN") {
        if rest.is_empty() {
            Some(0)
        } else {
            rest.strip_prefix('+').and_then(|n| n.parse::<i32>().ok())
        }
    } else {
        upper.parse::<i32>().ok()
    };
    let offset = offset.ok_or_else(|| {
        invalid(
            "threads.capture_signal",
            text,
            "expected \"SIGRTMIN+N\" with N between 0 and 28, e.g. \"SIGRTMIN+5\"",
        )
    })?;
    validate_capture_signal(offset).map_err(|_| {
        invalid(
            "threads.capture_signal",
            text,
            "N in \"SIGRTMIN+N\" must be between 0 and 28",
        )
    })?;
    Ok(offset)
}

fn validate_capture_signal(offset: i32) -> Result<(), ConfigError> {
    if (0..=MAX_CAPTURE_OFFSET).contains(&offset) {
        Ok(())
    } else {
        Err(invalid(
            "threads.capture_signal",
            &format!("SIGRTMIN+{offset}"),
            "N in \"SIGRTMIN+N\" must be between 0 and 28",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(toml: &str) -> ::config::Config {
        ::config::Config::builder()
            .add_source(::config::File::from_str(toml, ::config::FileFormat::Toml))
            .build()
            .expect("test TOML parses")
    }

    fn err(toml: &str) -> String {
        match GmrConfig::from_config(&cfg(toml)) {
            Ok(c) => panic!("expected an error for {toml:?}, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn missing_table_gives_defaults() {
        let c = GmrConfig::from_config(&cfg("[app]\nx = 1\n")).expect("defaults");
        assert_eq!(c, GmrConfig::default());
        assert_eq!(c.signal, SignalChoice::Signal(libc::SIGUSR2));
        assert_eq!(c.max_reports, 20);
        assert_eq!(c.admin.path, "/admin/gmr");
        assert_eq!(c.admin.min_interval, Duration::from_secs(1));
        assert_eq!(c.file_event_handler_interval, Duration::from_secs(1));
        assert_eq!(c.format, OutputFormat::Text);
    }

    #[test]
    fn reads_every_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token_path = dir.path().join("token");
        std::fs::write(&token_path, "0123456789abcdef0123\n").expect("write token");
        let c = GmrConfig::from_config(&cfg(&format!(
            r#"
            [gmr]
            service_name = "billing-api"
            log_dir = "/var/log/billing"
            file_event_handler = "/var/log/billing/gmr_trigger"
            file_event_handler_interval = 0.5
            signal = "SIGUSR1"
            format = "json"
            max_reports = 5
            show_environment = true
            [gmr.admin]
            path = "/internal/gmr"
            token_file = "{}"
            min_interval = "250ms"
            [gmr.secrets]
            extra_keys = ["pin", "dsn"]
            [gmr.threads]
            capture_signal = "SIGRTMIN+7"
            timeout = "50ms"
            deadline = "2s"
            max_frames = 64
            "#,
            token_path.display()
        )))
        .expect("valid");
        assert_eq!(c.service_name.as_deref(), Some("billing-api"));
        assert_eq!(c.log_dir, Some(PathBuf::from("/var/log/billing")));
        assert_eq!(
            c.file_event_handler,
            Some(PathBuf::from("/var/log/billing/gmr_trigger"))
        );
        assert_eq!(c.file_event_handler_interval, Duration::from_millis(500));
        assert_eq!(c.signal, SignalChoice::Signal(libc::SIGUSR1));
        assert_eq!(c.format, OutputFormat::Json);
        assert_eq!(c.max_reports, 5);
        assert!(c.show_environment);
        assert_eq!(c.admin.path, "/internal/gmr");
        assert_eq!(
            c.admin.token.as_ref().map(SecretString::expose),
            Some("0123456789abcdef0123")
        );
        assert_eq!(c.admin.min_interval, Duration::from_millis(250));
        assert_eq!(
            c.secret_extra_keys,
            vec!["pin".to_owned(), "dsn".to_owned()]
        );
        assert_eq!(c.threads.capture_signal, 7);
        assert_eq!(c.threads.thread_timeout, Duration::from_millis(50));
        assert_eq!(c.threads.deadline, Duration::from_secs(2));
        assert_eq!(c.threads.max_frames, 64);
    }

    #[test]
    fn signal_none_and_short_names() {
        let c = GmrConfig::from_config(&cfg("[gmr]\nsignal = \"none\"")).expect("none");
        assert_eq!(c.signal, SignalChoice::None);
        let c = GmrConfig::from_config(&cfg("[gmr]\nsignal = \"usr2\"")).expect("usr2");
        assert_eq!(c.signal, SignalChoice::Signal(libc::SIGUSR2));
    }

    #[test]
    fn each_bad_value_names_its_key_and_value() {
        let cases: &[(&str, &str, &str)] = &[
            ("service_name = \"a/b\"", "gmr.service_name", "a/b"),
            ("service_name = \"\"", "gmr.service_name", ""),
            ("log_dir = \"\"", "gmr.log_dir", "\"\""),
            ("log_dir = [1]", "gmr.log_dir", "expected a string"),
            (
                "file_event_handler = \"\"",
                "gmr.file_event_handler",
                "\"\"",
            ),
            (
                "file_event_handler_interval = 0",
                "gmr.file_event_handler_interval",
                "0",
            ),
            (
                "file_event_handler_interval = -3",
                "gmr.file_event_handler_interval",
                "-3",
            ),
            (
                "file_event_handler_interval = \"soon\"",
                "gmr.file_event_handler_interval",
                "soon",
            ),
            ("signal = \"SIGKILL\"", "gmr.signal", "SIGKILL"),
            ("signal = \"SIGSEGV\"", "gmr.signal", "SIGSEGV"),
            ("signal = \"SIGTERM\"", "gmr.signal", "SIGTERM"),
            ("signal = \"INT\"", "gmr.signal", "INT"),
            ("signal = \"SIGFOO\"", "gmr.signal", "SIGFOO"),
            ("format = \"xml\"", "gmr.format", "xml"),
            ("max_reports = 0", "gmr.max_reports", "0"),
            ("max_reports = -1", "gmr.max_reports", "-1"),
            ("max_reports = \"many\"", "gmr.max_reports", "many"),
            (
                "show_environment = \"maybe\"",
                "gmr.show_environment",
                "maybe",
            ),
            ("admin.path = \"admin\"", "gmr.admin.path", "admin"),
            (
                "admin.path = \"/admin?x=1\"",
                "gmr.admin.path",
                "/admin?x=1",
            ),
            (
                "admin.min_interval = \"0s\"",
                "gmr.admin.min_interval",
                "0s",
            ),
            (
                "admin.min_interval = \"fast\"",
                "gmr.admin.min_interval",
                "fast",
            ),
            (
                "admin.min_interval = \"3 fortnights\"",
                "gmr.admin.min_interval",
                "fortnights",
            ),
            (
                "secrets.extra_keys = \"pin\"",
                "gmr.secrets.extra_keys",
                "pin",
            ),
            (
                "secrets.extra_keys = [\"\"]",
                "gmr.secrets.extra_keys",
                "empty",
            ),
            (
                "threads.capture_signal = \"SIGRTMIN+40\"",
                "gmr.threads.capture_signal",
                "SIGRTMIN+40",
            ),
            (
                "threads.capture_signal = \"SIGUSR1\"",
                "gmr.threads.capture_signal",
                "SIGUSR1",
            ),
            ("threads.timeout = \"0ms\"", "gmr.threads.timeout", "0ms"),
            ("threads.deadline = \"1ms\"", "gmr.threads.deadline", "1ms"),
            ("threads.max_frames = 1", "gmr.threads.max_frames", "1"),
            ("log_dirr = \"/tmp\"", "gmr.log_dirr", "known keys"),
        ];
        for (line, key, value) in cases {
            let message = err(&format!("[gmr]\n{line}\n"));
            assert!(
                message.contains(key) && message.contains(value),
                "{line}: message {message:?} should name {key} and {value}"
            );
        }
    }

    #[test]
    fn token_errors_never_show_the_token() {
        let message = err("[gmr.admin]\ntoken = \"short\"\n");
        assert!(message.contains("gmr.admin.token"), "{message}");
        assert!(!message.contains("short"), "{message}");
        let message = err("[gmr.admin]\ntoken = \"has a space in it, long enough\"\n");
        assert!(!message.contains("space in it"), "{message}");
        let message = err("[gmr.admin]\ntoken = 1234567812345678\n");
        assert!(!message.contains("12345678"), "{message}");
    }

    #[test]
    fn gmr_must_be_a_table() {
        let message = err("gmr = 3\n");
        assert!(message.contains("`gmr` must be a table"), "{message}");
    }

    #[test]
    fn token_and_token_file_conflict() {
        let message =
            err("[gmr.admin]\ntoken = \"0123456789abcdef\"\ntoken_file = \"/nonexistent/token\"\n");
        assert!(message.contains("gmr.admin.token") && message.contains("token_file"));
    }

    #[test]
    fn unreadable_token_file_names_key_and_path() {
        let message = err("[gmr.admin]\ntoken_file = \"/nonexistent/gmr-token\"\n");
        assert!(message.contains("gmr.admin.token_file"), "{message}");
        assert!(message.contains("/nonexistent/gmr-token"), "{message}");
    }

    #[test]
    fn values_from_environment_strings_are_coerced() {
        let c = ::config::Config::builder()
            .set_override("gmr.max_reports", "7")
            .and_then(|b| b.set_override("gmr.file_event_handler_interval", "2"))
            .and_then(|b| b.set_override("gmr.show_environment", "true"))
            .and_then(|b| b.build())
            .expect("builds");
        let c = GmrConfig::from_config(&c).expect("valid");
        assert_eq!(c.max_reports, 7);
        assert_eq!(c.file_event_handler_interval, Duration::from_secs(2));
        assert!(c.show_environment);
    }

    #[test]
    fn validate_checks_values_built_in_code() {
        let mut c = GmrConfig {
            file_event_handler_interval: Duration::ZERO,
            ..GmrConfig::default()
        };
        assert!(
            c.validate()
                .expect_err("zero interval")
                .to_string()
                .contains("gmr.file_event_handler_interval")
        );
        c.file_event_handler_interval = Duration::from_secs(1);
        c.signal = SignalChoice::Signal(libc::SIGKILL);
        assert!(
            c.validate()
                .expect_err("SIGKILL")
                .to_string()
                .contains("gmr.signal")
        );
        c.signal = SignalChoice::None;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("").is_err());
    }
}
