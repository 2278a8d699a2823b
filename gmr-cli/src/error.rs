//! What can go wrong in a `gmr` command, and the exit code of each kind (`docs/cli.md`).

use std::path::PathBuf;

/// The exit codes of `gmr`, documented in `docs/cli.md` and `gmr --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitCode {
    /// 1: something else failed (writing the output, a file the command creates).
    Failure = 1,
    /// 2: the command line is wrong (clap's own code for usage errors too), or `gmr diff` was
    /// given reports of two processes, or newest first.
    Usage = 2,
    /// 3: a file cannot be read (a report, a token file), or a report is not JSON, not a
    /// report, or of a `report_version` this gmr does not read.
    BadReport = 3,
    /// 4: `gmr fetch`: the endpoint cannot be reached, or answered with an error.
    Fetch = 4,
    /// 5: a path or value is refused: the trigger file is a symbolic link or not a regular
    /// file, the token file is not a regular file, an output file exists, a token would
    /// cross the network in clear text.
    Refused = 5,
}

/// An error of a command: its message says what to do.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not JSON: where the parser stopped.
    #[error("{path}:{line}:{column}: not valid JSON: {message}")]
    NotJson {
        /// The file.
        path: PathBuf,
        /// Line, from 1.
        line: usize,
        /// Column, from 1.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A file is JSON but not a report this gmr reads.
    #[error("{path}: {source}")]
    NotAReport {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: gmr::report::ParseError,
    },
    /// A report file is larger than a report can be.
    #[error("{path}: {size} bytes is larger than a report can be ({limit} bytes); is it a report?")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Nothing to read: a directory without JSON reports.
    #[error("{0}")]
    NoReports(String),
    /// `gmr diff`: the two reports cannot be compared.
    #[error("cannot compare {old} with {new}: {reason}")]
    NotComparable {
        /// The older report.
        old: PathBuf,
        /// The newer report.
        new: PathBuf,
        /// Why.
        reason: String,
    },
    /// An argument has a value the command cannot use.
    #[error("{0}")]
    Usage(String),
    /// `gmr fetch` failed.
    #[error("{0}")]
    Fetch(String),
    /// A path or value is refused for safety.
    #[error("{0}")]
    Refused(String),
    /// Writing the output failed.
    #[error("cannot write {what}: {source}")]
    Write {
        /// Where.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// The process's exit code for this error.
    pub(crate) fn exit_code(&self) -> ExitCode {
        match self {
            CliError::Read { .. }
            | CliError::NotJson { .. }
            | CliError::NotAReport { .. }
            | CliError::TooLarge { .. }
            | CliError::NoReports(_) => ExitCode::BadReport,
            CliError::Fetch(_) => ExitCode::Fetch,
            CliError::Refused(_) => ExitCode::Refused,
            CliError::Usage(_) | CliError::NotComparable { .. } => ExitCode::Usage,
            CliError::Write { .. } => ExitCode::Failure,
        }
    }
}
