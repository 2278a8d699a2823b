//! Reading report files: the bytes (bounded), the JSON (with line and column of a syntax
//! error), the version, and the report (`gmr::Report::from_json`).

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::CliError;

/// The largest report file read: a report of 10 000 threads is a few tens of MiB.
pub(crate) const MAX_REPORT: u64 = 512 << 20;

/// A report file read and checked.
#[derive(Debug)]
pub(crate) struct Loaded {
    /// Where it was read from (`-` for standard input).
    pub(crate) path: PathBuf,
    /// Its JSON document.
    pub(crate) doc: Value,
    /// The report the document holds.
    pub(crate) report: gmr::Report,
}

/// Reads `path` (`-` for standard input) as a report's JSON view.
///
/// # Errors
///
/// [`CliError::Read`], [`CliError::TooLarge`], [`CliError::NotJson`] (with line and column) or
/// [`CliError::NotAReport`] (an unknown `report_version` among them).
pub(crate) fn load(path: &Path) -> Result<Loaded, CliError> {
    let doc = read_json(path)?;
    let report = gmr::Report::from_json(&doc).map_err(|source| CliError::NotAReport {
        path: path.to_owned(),
        source,
    })?;
    Ok(Loaded {
        path: path.to_owned(),
        doc,
        report,
    })
}

/// Reads `path` (`-` for standard input) as one JSON document.
///
/// # Errors
///
/// As [`load`], except that any JSON document is accepted.
pub(crate) fn read_json(path: &Path) -> Result<Value, CliError> {
    let bytes = read_bounded(path)?;
    serde_json::from_slice(&bytes).map_err(|error| CliError::NotJson {
        path: path.to_owned(),
        line: error.line(),
        column: error.column(),
        message: without_position(&error),
    })
}

/// The bytes of `path`, at most [`MAX_REPORT`].
fn read_bounded(path: &Path) -> Result<Vec<u8>, CliError> {
    let read_error = |source| CliError::Read {
        path: path.to_owned(),
        source,
    };
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(MAX_REPORT + 1)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
    } else {
        let file = std::fs::File::open(path).map_err(read_error)?;
        let meta = file.metadata().map_err(read_error)?;
        if meta.is_dir() {
            return Err(read_error(std::io::Error::other(
                "it is a directory; give a report file (`gmr summary` takes directories)",
            )));
        }
        file.take(MAX_REPORT + 1)
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
    }
    let size = bytes.len() as u64;
    if size > MAX_REPORT {
        return Err(CliError::TooLarge {
            path: path.to_owned(),
            size,
            limit: MAX_REPORT,
        });
    }
    Ok(bytes)
}

/// serde_json's message without its own ` at line L column C` (the error names the position
/// as `file:line:column` instead).
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    message
        .strip_suffix(&suffix)
        .map_or_else(|| message.clone(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_malformed_file_names_the_file_and_the_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("broken.json");
        std::fs::write(&path, "{\n  \"report_version\": 2,\n  \"service\": ]\n}\n").expect("write");
        let error = load(&path).expect_err("malformed");
        let message = error.to_string();
        assert_eq!(
            message,
            format!("{}:3:14: not valid JSON: expected value", path.display())
        );
        assert_eq!(error.exit_code(), crate::error::ExitCode::BadReport);
    }

    #[test]
    fn an_unknown_version_is_refused_saying_which_versions_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("future.json");
        std::fs::write(&path, "{\"report_version\": 99}").expect("write");
        let message = load(&path).expect_err("refused").to_string();
        let reads = gmr::report::READABLE_VERSIONS
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        assert!(
            message.starts_with(&format!(
                "{}: report_version 99 is not one this gmr reads (it reads {reads})",
                path.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn missing_files_and_directories_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.json");
        let message = load(&missing).expect_err("missing").to_string();
        assert!(message.starts_with(&format!("cannot read {}: ", missing.display())));
        let message = load(dir.path()).expect_err("a directory").to_string();
        assert!(message.contains("it is a directory"), "{message}");
    }
}
