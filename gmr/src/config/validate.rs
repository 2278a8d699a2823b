//! The rules for each `[gmr]` value, and the checks across keys.
//!
//! Each value goes through its rule once: [`GmrConfig::from_config`] applies it as the value is
//! read (the message then shows the value as written), [`GmrConfig::validate`] applies every
//! rule to a configuration built in code. Both end with [`across_keys`].

use std::time::Duration;

use super::types::{GmrConfig, SignalChoice};
use super::{duration, size};
use crate::error::ConfigError;
use crate::triggers::signal as trigger_signal;

/// An [`ConfigError::InvalidValue`] for `key`.
pub(super) fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_owned(),
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

/// The largest `max_reports` accepted: more would make retention scans slow for no use.
const MAX_REPORTS_LIMIT: i64 = 100_000;

/// The highest `n` of `SIGRTMIN+n` that stays below `SIGRTMAX` on every Linux libc.
pub(super) const MAX_CAPTURE_OFFSET: i32 = 28;

/// `service_name`: part of file names.
pub(super) fn service_name(name: &str) -> Result<(), ConfigError> {
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

/// `log_dir`, `file_event_handler`, `admin.token_file`: a usable path.
pub(super) fn path(key: &str, text: &str) -> Result<(), ConfigError> {
    if text.trim().is_empty() {
        return Err(invalid(
            key,
            "\"\"",
            "must not be empty; unset the key instead",
        ));
    }
    if text.contains('\0') {
        return Err(invalid(key, text, "must not contain a NUL byte"));
    }
    Ok(())
}

/// A duration that must not be zero.
fn positive(key: &str, value: Duration, shown: &str, reason: &str) -> Result<(), ConfigError> {
    if value.is_zero() {
        Err(invalid(key, shown, reason))
    } else {
        Ok(())
    }
}

/// `file_event_handler_interval`: the trigger file's poll interval.
pub(super) fn poll_interval(interval: Duration, shown: &str) -> Result<(), ConfigError> {
    positive(
        "file_event_handler_interval",
        interval,
        shown,
        "must be a number of seconds greater than 0",
    )
}

/// `signal`: a signal that may trigger reports.
pub(super) fn signal(choice: SignalChoice, shown: &str) -> Result<(), ConfigError> {
    match choice {
        SignalChoice::None => Ok(()),
        SignalChoice::Signal(number) => match trigger_signal::why_not_a_trigger(number) {
            Some(why) => Err(invalid("signal", shown, &why)),
            None => Ok(()),
        },
    }
}

/// `max_reports`.
pub(super) fn max_reports(n: i64, shown: &str) -> Result<usize, ConfigError> {
    usize::try_from(n)
        .ok()
        .filter(|_| (1..=MAX_REPORTS_LIMIT).contains(&n))
        .ok_or_else(|| invalid("max_reports", shown, "must be between 1 and 100000"))
}

/// `admin.path`: an absolute path of plain segments. `.` and `..` segments are refused: a
/// proxy or a framework may resolve them (`/admin/../gmr` is `/gmr` to one and not to
/// another), so the path a proxy rule names would not be the path the endpoint answers.
pub(super) fn admin_path(path: &str) -> Result<(), ConfigError> {
    let ok = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && !path.contains("//")
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~'));
    if !ok {
        return Err(invalid(
            "admin.path",
            path,
            "must be an absolute path such as \"/admin/gmr\": starts with '/', no trailing '/', no query, only A-Z a-z 0-9 / - _ . ~",
        ));
    }
    if path.split('/').any(|segment| matches!(segment, "." | "..")) {
        return Err(invalid(
            "admin.path",
            path,
            "must not have `.` or `..` segments (proxies and frameworks resolve them differently); write the path they lead to",
        ));
    }
    Ok(())
}

/// `admin.token` and the contents of `admin.token_file` (`key` says which). The message never
/// shows the token.
pub(super) fn token(token: &str, key: &str) -> Result<(), ConfigError> {
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

/// `min_interval`: the signal and file triggers' interval.
pub(super) fn min_interval(interval: Duration, shown: &str) -> Result<(), ConfigError> {
    positive(
        "min_interval",
        interval,
        shown,
        "must be greater than 0 so signals and trigger-file changes share reports",
    )
}

/// `admin.min_interval`.
pub(super) fn admin_min_interval(interval: Duration, shown: &str) -> Result<(), ConfigError> {
    positive(
        "admin.min_interval",
        interval,
        shown,
        "must be greater than 0 so requests share reports",
    )
}

/// `secrets.extra_keys`.
pub(super) fn extra_keys(keys: &[String]) -> Result<(), ConfigError> {
    match keys.iter().find(|k| k.trim().is_empty()) {
        Some(key) => Err(invalid(
            "secrets.extra_keys",
            &format!("{key:?}"),
            "key names must not be empty",
        )),
        None => Ok(()),
    }
}

/// `threads.capture_signal`: the `N` of `SIGRTMIN+N`.
pub(super) fn capture_signal(offset: i32, shown: &str) -> Result<(), ConfigError> {
    if (0..=MAX_CAPTURE_OFFSET).contains(&offset) {
        Ok(())
    } else {
        Err(invalid(
            "threads.capture_signal",
            shown,
            "N in \"SIGRTMIN+N\" must be between 0 and 28",
        ))
    }
}

/// `threads.timeout`.
pub(super) fn threads_timeout(timeout: Duration, shown: &str) -> Result<(), ConfigError> {
    positive("threads.timeout", timeout, shown, "must be greater than 0")
}

/// `threads.max_frames`.
pub(super) fn max_frames(n: i64, shown: &str) -> Result<usize, ConfigError> {
    usize::try_from(n)
        .ok()
        .filter(|n| (4..=4096).contains(n))
        .ok_or_else(|| invalid("threads.max_frames", shown, "must be between 4 and 4096"))
}

/// The smallest `threads.symbol_budget` accepted: less cannot even hold a symbol table.
const MIN_SYMBOL_BUDGET: u64 = 1 << 20;

/// `threads.symbol_budget`.
pub(super) fn symbol_budget(bytes: u64, shown: &str) -> Result<(), ConfigError> {
    if bytes < MIN_SYMBOL_BUDGET {
        return Err(invalid(
            "threads.symbol_budget",
            shown,
            "must be at least 1 MiB, e.g. \"128MiB\"",
        ));
    }
    Ok(())
}

/// `threads.fold` as a list: crate names.
pub(super) fn fold_crates(crates: &[String]) -> Result<(), ConfigError> {
    match crates.iter().find(|c| {
        c.is_empty()
            || !c
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '*'))
    }) {
        Some(bad) => Err(invalid(
            "threads.fold",
            &format!("{bad:?}"),
            "expected crate names such as \"sqlx\" (a trailing * matches a prefix: \"actix-*\")",
        )),
        None => Ok(()),
    }
}

/// The checks that involve more than one key.
pub(super) fn across_keys(config: &GmrConfig) -> Result<(), ConfigError> {
    if config.threads.deadline < config.threads.timeout {
        return Err(invalid(
            "threads.deadline",
            &duration::show(config.threads.deadline),
            "must be at least `threads.timeout`",
        ));
    }
    Ok(())
}

impl GmrConfig {
    /// Checks the values of a configuration built in code, with the same rules as
    /// [`GmrConfig::from_config`].
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the first invalid key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(name) = &self.service_name {
            service_name(name)?;
        }
        for (key, path_value) in [
            ("log_dir", &self.log_dir),
            ("file_event_handler", &self.file_event_handler),
        ] {
            if let Some(p) = path_value {
                path(key, &p.to_string_lossy())?;
            }
        }
        poll_interval(
            self.file_event_handler_interval,
            &duration::show(self.file_event_handler_interval),
        )?;
        if let SignalChoice::Signal(number) = self.signal {
            signal(self.signal, &number.to_string())?;
        }
        let reports = i64::try_from(self.max_reports).unwrap_or(i64::MAX);
        max_reports(reports, &self.max_reports.to_string())?;
        min_interval(self.min_interval, &duration::show(self.min_interval))?;
        admin_path(&self.admin.path)?;
        if let Some(secret) = &self.admin.token {
            token(secret.expose(), "admin.token")?;
        }
        admin_min_interval(
            self.admin.min_interval,
            &duration::show(self.admin.min_interval),
        )?;
        extra_keys(&self.secrets.extra_keys)?;
        capture_signal(
            self.threads.capture_signal,
            &format!("SIGRTMIN+{}", self.threads.capture_signal),
        )?;
        threads_timeout(self.threads.timeout, &duration::show(self.threads.timeout))?;
        let frames = i64::try_from(self.threads.max_frames).unwrap_or(i64::MAX);
        max_frames(frames, &self.threads.max_frames.to_string())?;
        symbol_budget(
            self.threads.symbol_budget,
            &size::show(self.threads.symbol_budget),
        )?;
        fold_crates(&self.threads.fold.extra_crates)?;
        for dir in &self.threads.debug_dirs {
            path("threads.debug_dirs", &dir.to_string_lossy())?;
        }
        across_keys(self)
    }
}
