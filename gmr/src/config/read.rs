//! Reading the `[gmr]` table of a `config::Config` into a [`GmrConfig`].
//!
//! Each key is converted to its type here and checked by its rule in `validate` as it is read,
//! so an error message shows the value as written. Unknown keys are rejected: a typo such as
//! `log_dirr` would otherwise silently leave reports on stderr.

use std::path::PathBuf;
use std::time::Duration;

use ::config::{Value, ValueKind};

use super::types::{FoldConfig, GmrConfig, OutputFormat, SecretString, SignalChoice};
use super::validate::{self, invalid};
use super::{duration, size};
use crate::error::ConfigError;
use crate::triggers::signal as trigger_signal;

/// The keys gmr knows, as dotted paths below `[gmr]`.
pub(super) const KNOWN_KEYS: &[&str] = &[
    "service_name",
    "log_dir",
    "file_event_handler",
    "file_event_handler_interval",
    "signal",
    "format",
    "max_reports",
    "min_interval",
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
    "threads.symbol_budget",
    "threads.fold",
    "threads.debug_dirs",
    "green_threads.span_age",
];

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
            out.read_key(&key, value, &mut token_file)?;
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
        validate::across_keys(&out)?;
        Ok(out)
    }

    fn read_key(
        &mut self,
        key: &str,
        value: Value,
        token_file: &mut Option<PathBuf>,
    ) -> Result<(), ConfigError> {
        let shown = value.to_string();
        match key {
            "service_name" => {
                let name = string(key, value)?;
                validate::service_name(&name)?;
                self.service_name = Some(name);
            }
            "log_dir" => self.log_dir = Some(path(key, value)?),
            "file_event_handler" => self.file_event_handler = Some(path(key, value)?),
            "file_event_handler_interval" => {
                let interval = seconds(key, value)?;
                validate::poll_interval(interval, &shown)?;
                self.file_event_handler_interval = interval;
            }
            "signal" => {
                let text = name(key, value)?;
                let choice = trigger_signal_choice(&text)?;
                validate::signal(choice, &text)?;
                self.signal = choice;
            }
            "format" => {
                let text = name(key, value)?;
                self.format = OutputFormat::from_name(&text).ok_or_else(|| {
                    invalid(
                        key,
                        &text,
                        &format!("expected one of: {}", OutputFormat::names()),
                    )
                })?;
            }
            "max_reports" => {
                self.max_reports = validate::max_reports(integer(key, value)?, &shown)?
            }
            "min_interval" => {
                let interval = duration_value(key, value)?;
                validate::min_interval(interval, &shown)?;
                self.min_interval = interval;
            }
            "show_environment" => self.show_environment = boolean(key, value)?,
            "admin.path" => {
                let path = string(key, value)?;
                validate::admin_path(&path)?;
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
                validate::token(&token, key)?;
                self.admin.token = Some(SecretString::new(token));
            }
            "admin.token_file" => *token_file = Some(path(key, value)?),
            "admin.min_interval" => {
                let interval = duration_value(key, value)?;
                validate::admin_min_interval(interval, &shown)?;
                self.admin.min_interval = interval;
            }
            "secrets.extra_keys" => {
                let items = value.into_array().map_err(|_| ConfigError::WrongType {
                    key: key.to_owned(),
                    value: shown,
                    expected: "an array of strings",
                })?;
                let keys = items
                    .into_iter()
                    .map(|item| string(key, item))
                    .collect::<Result<Vec<_>, _>>()?;
                validate::extra_keys(&keys)?;
                self.secrets.extra_keys = keys;
            }
            "threads.capture_signal" => {
                let text = name(key, value)?;
                let offset = capture_signal_offset(&text)?;
                validate::capture_signal(offset, &text)?;
                self.threads.capture_signal = offset;
            }
            "threads.timeout" => {
                let timeout = duration_value(key, value)?;
                validate::threads_timeout(timeout, &shown)?;
                self.threads.timeout = timeout;
            }
            "threads.deadline" => self.threads.deadline = duration_value(key, value)?,
            "threads.max_frames" => {
                self.threads.max_frames = validate::max_frames(integer(key, value)?, &shown)?;
            }
            "threads.symbol_budget" => {
                let bytes = match &value.kind {
                    ValueKind::String(s) => {
                        size::parse_size(s).map_err(|reason| invalid(key, s, &reason))?
                    }
                    _ => u64::try_from(integer(key, value)?)
                        .map_err(|_| invalid(key, &shown, "must not be negative"))?,
                };
                validate::symbol_budget(bytes, &shown)?;
                self.threads.symbol_budget = bytes;
            }
            "threads.fold" => self.threads.fold = fold(key, value)?,
            "green_threads.span_age" => {
                self.green_threads.span_age = duration_value(key, value)?;
            }
            "threads.debug_dirs" => {
                let items = value
                    .into_array()
                    .map_err(|_| wrong_type(key, shown, "an array of directories"))?;
                self.threads.debug_dirs = items
                    .into_iter()
                    .map(|item| path(key, item))
                    .collect::<Result<_, _>>()?;
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
    validate::path(key, &text)?;
    Ok(PathBuf::from(text))
}

/// The error for a value of a type `key` does not take.
fn wrong_type(key: &str, shown: String, expected: &'static str) -> ConfigError {
    ConfigError::WrongType {
        key: key.to_owned(),
        value: shown,
        expected,
    }
}

/// What an integer key takes, for messages.
const WHOLE_NUMBER: &str = "a whole number such as 20 (no decimals, exponent or boolean)";

/// A whole number: an integer, or a string of one (`"7"`, what an environment variable gives).
/// Decimals (`1.5`, even `2.0`), exponents (`1e3`) and booleans are refused rather than
/// rounded or converted.
fn integer(key: &str, value: Value) -> Result<i64, ConfigError> {
    let shown = value.to_string();
    let whole = match &value.kind {
        ValueKind::I64(n) => Some(*n),
        ValueKind::U64(n) => i64::try_from(*n).ok(),
        ValueKind::I128(n) => i64::try_from(*n).ok(),
        ValueKind::U128(n) => i64::try_from(*n).ok(),
        ValueKind::String(s) if s.bytes().all(|b| b.is_ascii_digit() || b == b'-') => {
            s.parse::<i64>().ok()
        }
        _ => None,
    };
    whole.ok_or_else(|| wrong_type(key, shown, WHOLE_NUMBER))
}

/// What a boolean key takes, for messages.
const BOOLEAN: &str = "true or false (also yes/no, on/off, 1/0)";

/// A boolean: `true`/`false`, the integers 1 and 0, or one of the words `true`, `false`, `yes`,
/// `no`, `on`, `off`, `1`, `0` in any case (what an environment variable gives). Any other
/// number (`2`, `-1`, `1.0`) is refused rather than taken for `true`.
fn boolean(key: &str, value: Value) -> Result<bool, ConfigError> {
    let shown = value.to_string();
    let parsed = match &value.kind {
        ValueKind::Boolean(b) => Some(*b),
        ValueKind::I64(n) => bit(i128::from(*n)),
        ValueKind::U64(n) => bit(i128::from(*n)),
        ValueKind::I128(n) => bit(*n),
        ValueKind::U128(n) => i128::try_from(*n).ok().and_then(bit),
        ValueKind::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| wrong_type(key, shown, BOOLEAN))
}

/// 1 and 0 as booleans; any other number is not one.
fn bit(n: i128) -> Option<bool> {
    match n {
        1 => Some(true),
        0 => Some(false),
        _ => None,
    }
}

/// A name (`signal`, `format`, `threads.capture_signal`): a string without spaces around it.
/// Spaces are refused, never trimmed silently, so `" json"` is an error that says so.
fn name(key: &str, value: Value) -> Result<String, ConfigError> {
    let text = string(key, value)?;
    if text.trim() != text {
        return Err(invalid(
            key,
            &format!("{text:?}"),
            "remove the spaces (or other whitespace) around the value",
        ));
    }
    Ok(text)
}

/// A number of seconds (integer or decimal), or a duration string such as `"500ms"`.
fn seconds(key: &str, value: Value) -> Result<Duration, ConfigError> {
    let shown = value.to_string();
    let secs = match &value.kind {
        ValueKind::I64(n) => *n as f64,
        ValueKind::I128(n) => *n as f64,
        ValueKind::U64(n) => *n as f64,
        ValueKind::U128(n) => *n as f64,
        ValueKind::Float(f) => *f,
        ValueKind::String(s) => match s.trim().parse::<f64>() {
            Ok(f) => f,
            Err(_) => {
                return duration::parse_duration(s).map_err(|reason| invalid(key, s, &reason));
            }
        },
        _ => {
            return Err(ConfigError::WrongType {
                key: key.to_owned(),
                value: shown,
                expected: "a number of seconds",
            });
        }
    };
    duration::seconds(secs).map_err(|reason| invalid(key, &shown, &reason))
}

/// A duration string (`"1s"`, `"250ms"`, `"2m"`) or a number of seconds.
fn duration_value(key: &str, value: Value) -> Result<Duration, ConfigError> {
    let shown = value.to_string();
    match &value.kind {
        ValueKind::String(s) => {
            duration::parse_duration(s).map_err(|reason| invalid(key, s, &reason))
        }
        ValueKind::I64(_) | ValueKind::U64(_) | ValueKind::Float(_) => seconds(key, value),
        _ => Err(ConfigError::WrongType {
            key: key.to_owned(),
            value: shown,
            expected: "a duration such as \"1s\" or \"250ms\"",
        }),
    }
}

/// `threads.fold`: `true`, `false`, or a list of more crates to fold.
fn fold(key: &str, value: Value) -> Result<FoldConfig, ConfigError> {
    let shown = value.to_string();
    match value.kind {
        ValueKind::Boolean(enabled) => Ok(FoldConfig {
            enabled,
            extra_crates: Vec::new(),
        }),
        ValueKind::Array(items) => {
            let extra_crates = items
                .into_iter()
                .map(|item| string(key, item))
                .collect::<Result<Vec<_>, _>>()?;
            validate::fold_crates(&extra_crates)?;
            Ok(FoldConfig {
                enabled: true,
                extra_crates,
            })
        }
        ValueKind::String(s) if matches!(s.trim(), "true" | "false") => Ok(FoldConfig {
            enabled: s.trim() == "true",
            extra_crates: Vec::new(),
        }),
        _ => Err(wrong_type(
            key,
            shown,
            "true, false, or a list of crate names",
        )),
    }
}

/// `signal`: `"none"`/`"off"`, or a signal name with or without `SIG`.
fn trigger_signal_choice(text: &str) -> Result<SignalChoice, ConfigError> {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("none") || trimmed.eq_ignore_ascii_case("off") {
        return Ok(SignalChoice::None);
    }
    trigger_signal::number_of(trimmed)
        .map(SignalChoice::Signal)
        .ok_or_else(|| invalid("signal", text, trigger_signal::NAME_HINT))
}

/// `threads.capture_signal`: `"SIGRTMIN+N"`, `"SIGRTMIN"` or a bare `N`.
fn capture_signal_offset(text: &str) -> Result<i32, ConfigError> {
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
    offset.ok_or_else(|| {
        invalid(
            "threads.capture_signal",
            text,
            &format!(
                "expected \"SIGRTMIN+N\" with N between 0 and {}, e.g. \"SIGRTMIN+5\"",
                validate::MAX_CAPTURE_OFFSET
            ),
        )
    })
}

/// The largest `admin.token_file` read: a token is at most 4096 characters, and a line ending
/// may follow it.
const TOKEN_FILE_LIMIT: u64 = 8 * 1024;

/// Reads `admin.token_file`: a regular file (or a link to one) of at most
/// [`TOKEN_FILE_LIMIT`] bytes. It is opened with `O_NONBLOCK` and checked with `fstat` before a
/// byte is read, so a FIFO (which would wait for a writer) or a device (`/dev/zero`, which
/// never ends) is refused at once instead of hanging or growing the process. A file readable
/// by its group or by others gets a warning: the token guards every report.
fn read_token_file(path: &PathBuf) -> Result<SecretString, ConfigError> {
    use std::io::Read as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

    let io_error = |source| ConfigError::TokenFile {
        path: path.clone(),
        source,
    };
    let refused = |reason: String| ConfigError::TokenFileRefused {
        path: path.clone(),
        reason,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(io_error)?;
    let meta = file.metadata().map_err(io_error)?;
    if !meta.is_file() {
        return Err(refused(format!(
            "it is {}, not a regular file; put the token in a regular file (mode 0600)",
            file_kind(meta.file_type())
        )));
    }
    if meta.len() > TOKEN_FILE_LIMIT {
        return Err(refused(format!(
            "it holds {} bytes, more than the {TOKEN_FILE_LIMIT} bytes a token file may hold; it must hold only the token",
            meta.len()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o044 != 0 {
        tracing::warn!(
            key = "gmr.admin.token_file",
            path = %path.display(),
            mode = %format!("{mode:o}"),
            "the admin token file is readable by its group or by others; make it 0600 (chmod 600)"
        );
    }
    let mut contents = String::new();
    // The file may grow after the check: never read more than the limit.
    file.take(TOKEN_FILE_LIMIT + 1)
        .read_to_string(&mut contents)
        .map_err(io_error)?;
    if contents.len() as u64 > TOKEN_FILE_LIMIT {
        return Err(refused(format!(
            "it holds more than the {TOKEN_FILE_LIMIT} bytes a token file may hold; it must hold only the token"
        )));
    }
    let token = contents.trim_end_matches(['\n', '\r']).to_owned();
    validate::token(&token, "admin.token_file")?;
    Ok(SecretString::new(token))
}

/// What a file type is, for messages.
fn file_kind(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}
