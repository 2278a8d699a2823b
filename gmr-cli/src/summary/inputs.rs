//! The reports `gmr summary` reads: JSON report files named on the command line, and those in
//! directories (`*_gurumeditation_*.json`, as gmr names them in `log_dir`). A file that cannot
//! be read is listed with its error; the others are still merged.

use std::path::{Path, PathBuf};

use serde_json::Value;
use time::OffsetDateTime;

use crate::error::CliError;
use crate::load;

/// A report read for the summary.
#[derive(Debug)]
pub(crate) struct Input {
    /// The file.
    pub(crate) path: PathBuf,
    /// Its JSON document.
    pub(crate) doc: Value,
    /// Its header.
    pub(crate) header: gmr::ReportHeader,
    /// When it was generated.
    pub(crate) at: OffsetDateTime,
}

/// What the inputs gave: the reports read, and the files that could not be.
#[derive(Debug, Default)]
pub(crate) struct Inputs {
    /// The reports.
    pub(crate) reports: Vec<Input>,
    /// Files that could not be read, with why.
    pub(crate) unreadable: Vec<(PathBuf, String)>,
}

/// Whether `name` is a JSON report file name gmr writes.
fn is_report_name(name: &str) -> bool {
    name.contains("_gurumeditation_") && name.ends_with(".json") && !name.starts_with('.')
}

/// Reads every report of `paths` (files, and directories of report files).
///
/// # Errors
///
/// [`CliError::NoReports`] when no report could be read at all, saying what was found.
pub(crate) fn read(paths: &[PathBuf]) -> Result<Inputs, CliError> {
    let mut files = Vec::new();
    let mut text_only = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| CliError::Read {
                path: path.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = Vec::new();
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if is_report_name(name) {
                    found.push(entry.path());
                } else if name.contains("_gurumeditation_") && name.ends_with(".txt") {
                    text_only.push(entry.path());
                }
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut inputs = Inputs::default();
    for path in files {
        match read_one(&path) {
            Ok(input) => inputs.reports.push(input),
            Err(error) => inputs.unreadable.push((path, error.to_string())),
        }
    }
    if inputs.reports.is_empty() {
        let mut message = format!(
            "no report could be read from {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !text_only.is_empty() {
            message.push_str(&format!(
                "; {} text reports were found: gmr summary reads JSON reports (set `format = \"json\"` in [gmr])",
                text_only.len()
            ));
        }
        for (path, error) in &inputs.unreadable {
            message.push_str(&format!("\n  {}: {error}", path.display()));
        }
        return Err(CliError::NoReports(message));
    }
    Ok(inputs)
}

/// Reads one report.
fn read_one(path: &Path) -> Result<Input, CliError> {
    let loaded = load::load(path)?;
    let header = loaded.report.header().clone();
    let at = parse_time(&header.generated_at).ok_or_else(|| {
        CliError::NoReports(format!(
            "{}: generated_at `{}` is not an RFC 3339 time",
            path.display(),
            header.generated_at
        ))
    })?;
    Ok(Input {
        path: loaded.path,
        doc: loaded.doc,
        header,
        at,
    })
}

/// An RFC 3339 time.
pub(crate) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names() {
        assert!(is_report_name(
            "billing_gurumeditation_20261126T031415_web-3_4242_1.json"
        ));
        assert!(!is_report_name(
            "billing_gurumeditation_20261126T031415_web-3_4242_1.txt"
        ));
        assert!(!is_report_name(".billing_gurumeditation_x.json.tmp"));
        assert!(!is_report_name("other.json"));
    }

    #[test]
    fn a_directory_of_text_reports_says_to_write_json() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path()
                .join("svc_gurumeditation_20261126T031415_h_1_1.txt"),
            "text",
        )
        .expect("write");
        let message = read(&[dir.path().to_owned()])
            .expect_err("nothing to read")
            .to_string();
        assert!(message.contains("format = \"json\""), "{message}");
    }
}
