//! The timestamps of reports: RFC 3339 for readers, a compact form for file names.

use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// RFC 3339 in UTC with seconds precision, e.g. `2026-11-26T03:14:15Z`.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let at = OffsetDateTime::from(at);
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// `YYYYMMDDTHHMMSS` in UTC, for file names.
pub(crate) fn compact_timestamp(at: SystemTime) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]");
    OffsetDateTime::from(at)
        .format(&format)
        .unwrap_or_else(|_| "19700101T000000".to_owned())
}

/// The compact form of an RFC 3339 time, in UTC (`2026-11-26T05:14:15+02:00` is
/// `20261126T031415`); `None` when `text` is not RFC 3339.
pub(crate) fn compact_of_rfc3339(text: &str) -> Option<String> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some(compact_timestamp(SystemTime::from(at)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
        assert_eq!(rfc3339(at), "2026-11-18T11:06:40Z");
        assert_eq!(compact_timestamp(at), "20261118T110640");
        assert_eq!(
            compact_of_rfc3339("2026-11-26T05:14:15+02:00").as_deref(),
            Some("20261126T031415")
        );
        assert_eq!(
            compact_of_rfc3339(&rfc3339(at)).as_deref(),
            Some("20261118T110640")
        );
        assert_eq!(compact_of_rfc3339("2026-13-01T00:00:00Z"), None);
    }
}
