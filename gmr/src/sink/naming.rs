//! The names of report files.

use crate::report::{OutputFormat, ReportHeader};

/// The infix that every report file name carries (oslo's, so existing globs keep working).
pub(super) const INFIX: &str = "_gurumeditation_";

/// The file name of a report: `{service}_gurumeditation_{YYYYMMDDTHHMMSS}_{host}_{pid}_{seq}.{ext}`.
pub fn report_file_name(
    header: &ReportHeader,
    service: &str,
    seq: u64,
    format: OutputFormat,
) -> String {
    format!(
        "{}{INFIX}{}_{}_{}_{seq}.{}",
        sanitize_name(service),
        header.generated_at_compact,
        sanitize_name(&header.host),
        header.pid,
        format.extension()
    )
}

/// Keeps `A-Z a-z 0-9 - _ .` and replaces anything else with `-`, so the name is safe in a file
/// name; never empty, never starting with a dot.
pub(crate) fn sanitize_name(raw: &str) -> String {
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while name.starts_with('.') {
        name.remove(0);
    }
    name.truncate(128);
    if name.is_empty() {
        name.push_str("service");
    }
    name
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::report::Trigger;

    pub(crate) fn header() -> ReportHeader {
        ReportHeader {
            service: "svc".into(),
            version: "1.0.0".into(),
            host: "web-1.example".into(),
            pid: 4242,
            generated_at: "2026-11-26T03:14:15Z".into(),
            generated_at_compact: "20261126T031415".into(),
            trigger: Trigger::Signal,
            report_version: 1,
        }
    }

    #[test]
    fn file_name_layout() {
        assert_eq!(
            report_file_name(&header(), "svc", 7, OutputFormat::Text),
            "svc_gurumeditation_20261126T031415_web-1.example_4242_7.txt"
        );
        assert_eq!(
            report_file_name(&header(), "my svc", 1, OutputFormat::Json),
            "my-svc_gurumeditation_20261126T031415_web-1.example_4242_1.json"
        );
    }

    #[test]
    fn names_are_file_safe() {
        assert_eq!(sanitize_name("my app/v2"), "my-app-v2");
        assert_eq!(sanitize_name("..hidden"), "hidden");
        assert_eq!(sanitize_name(""), "service");
    }
}
