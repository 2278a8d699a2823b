//! Error types of the report engine.
#![forbid(unsafe_code)]

use std::path::PathBuf;

/// A `[gmr]` configuration value that gmr cannot use.
///
/// Every variant names the key (`gmr.log_dir`, `gmr.admin.min_interval`, …) and, except for
/// secrets, the value, so the message alone tells the operator what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The value has the right type but is out of range or malformed.
    #[error("invalid value for `gmr.{key}`: {value}: {reason}")]
    InvalidValue {
        /// The key below `[gmr]`, e.g. `file_event_handler_interval`.
        key: String,
        /// The value as written (masked for secrets).
        value: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// The value is of a type the key does not take (a table where a string is expected, …).
    #[error("invalid value for `gmr.{key}`: {value}: expected {expected}")]
    WrongType {
        /// The key below `[gmr]`.
        key: String,
        /// The value as written (masked for secrets).
        value: String,
        /// The type the key takes.
        expected: &'static str,
    },
    /// `gmr` is set to a value that is not a table (e.g. `gmr = 3`).
    #[error("`gmr` must be a table (`[gmr]` in TOML), found {value}")]
    NotATable {
        /// The value found.
        value: String,
    },
    /// A key gmr does not know: most likely a typo, which would otherwise be silently ignored.
    #[error("unknown key `gmr.{key}`; known keys are: {known}")]
    UnknownKey {
        /// The unknown key below `[gmr]`.
        key: String,
        /// The keys gmr knows, comma separated.
        known: String,
    },
    /// Two keys that cannot be set together.
    #[error("`gmr.{first}` and `gmr.{second}` cannot both be set: {reason}")]
    Conflict {
        /// One of the keys.
        first: &'static str,
        /// The other key.
        second: &'static str,
        /// Why, and what to do.
        reason: &'static str,
    },
    /// The admin token file could not be read.
    #[error(
        "cannot read `gmr.admin.token_file` {path}: {source}; create it (mode 0600) holding the token, or unset the key"
    )]
    TokenFile {
        /// The configured path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The admin token file is not a regular file, or is larger than a token file can be.
    #[error("refusing `gmr.admin.token_file` {path}: {reason}")]
    TokenFileRefused {
        /// The configured path.
        path: PathBuf,
        /// What is wrong with it, and what to do.
        reason: String,
    },
    /// The `config` crate could not produce the `[gmr]` table.
    #[error("cannot read the `[gmr]` table of the configuration: {0}")]
    Source(#[from] ::config::ConfigError),
}

/// Why a section could not be generated. Shown in place of the section's content; the rest of
/// the report is unaffected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SectionError {
    /// The generator returned an error.
    #[error("section generator failed: {0}")]
    Failed(String),
    /// The generator panicked; the panic was caught.
    #[error("section generator panicked: {0}")]
    Panicked(String),
    /// Gathering the section needs a facility this platform does not have.
    #[error("not supported on this platform: {0}")]
    Unsupported(String),
    /// An error read back from a report's JSON (`{"error": "<message>"}`) that is not one of
    /// the kinds above, such as a rendering panic the JSON view recorded: shown as it was
    /// written.
    #[error("{0}")]
    Recorded(String),
}

impl SectionError {
    /// An error from any displayable value.
    pub fn failed(message: impl std::fmt::Display) -> Self {
        SectionError::Failed(message.to_string())
    }

    /// The error whose message a report's JSON recorded (`{"error": "<message>"}`): the kind
    /// that displays as `message` when there is one, else [`SectionError::Recorded`]. Either
    /// way its `Display` is `message`, so a report read back renders as the process did.
    ///
    /// ```
    /// let error = gmr::SectionError::from_message("section generator failed: pool closed");
    /// assert_eq!(error, gmr::SectionError::Failed("pool closed".into()));
    /// assert_eq!(error.to_string(), "section generator failed: pool closed");
    /// ```
    pub fn from_message(message: &str) -> Self {
        let known = message
            .strip_prefix("section generator failed: ")
            .map(|rest| SectionError::Failed(rest.to_owned()))
            .or_else(|| {
                message
                    .strip_prefix("section generator panicked: ")
                    .map(|rest| SectionError::Panicked(rest.to_owned()))
            })
            .or_else(|| {
                message
                    .strip_prefix("not supported on this platform: ")
                    .map(|rest| SectionError::Unsupported(rest.to_owned()))
            });
        known.unwrap_or_else(|| SectionError::Recorded(message.to_owned()))
    }
}
