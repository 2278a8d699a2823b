//! Reading a report back from its JSON view: the document's header, its index of sections and
//! each section's body, into a [`Report`] that renders as the process rendered it
//! ([`Report::from_json`], which `gmr view` uses).
//!
//! This module knows the shape of the document (`docs/report-format.md`): the header fields,
//! `sections` (titles and keys in report order), a failed section as `{"error": "<message>"}`,
//! and the body of a registered section as a [`Content`] document. The bodies of the built-in
//! sections are read by their own models, in the sections layer above, which hands its reader
//! to `read`; so the text of a report read back comes from the same renderer as the text the
//! process wrote.
//!
//! Reading is lenient where the format may grow and strict where a guess would mislead: fields
//! it does not know are ignored (a newer gmr may add some), a missing optional field takes its
//! default, but an unknown `report_version` is refused, since its fields may mean something
//! else.

use serde_json::{Map, Value};

use super::{Content, REPORT_VERSION, Report, ReportHeader, Section, SectionBody, Trigger};
use crate::error::SectionError;

/// The values of `report_version` this gmr reads.
pub const READABLE_VERSIONS: &[u32] = &[REPORT_VERSION];

/// Why a JSON document cannot be read back as a report.
///
/// Each message says which field is wrong and what was expected; positions in the file (line
/// and column) are the JSON parser's to give, before the document reaches this reader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The document is not a JSON object.
    #[error("not a gmr report: the document is {found}, where a report is a JSON object")]
    NotAnObject {
        /// What it is instead (`an array`, `a string`, …).
        found: &'static str,
    },
    /// The document has no `report_version`.
    #[error(
        "not a gmr report: no `report_version` field (the JSON view of a gmr report has one; \
         is this a text report, or another tool's JSON?)"
    )]
    NoVersion,
    /// The document's `report_version` is not one this gmr reads.
    #[error("report_version {found} is not one this gmr reads (it reads {readable}); {advice}")]
    UnsupportedVersion {
        /// The version found, as written.
        found: String,
        /// The versions this gmr reads, e.g. `2`.
        readable: String,
        /// What to do.
        advice: &'static str,
    },
    /// A header field is missing or has the wrong type.
    #[error("header field `{field}`: {problem}")]
    Header {
        /// The field (`service`, `pid`, …).
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// An entry of the `sections` index is malformed.
    #[error("`sections[{index}]`: {problem}")]
    Index {
        /// Its position in the index.
        index: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// The index names a section whose body is not in the document.
    #[error("section `{title}`: the document has no `{key}` field, which `sections` names")]
    MissingSection {
        /// The section's title.
        title: String,
        /// Its key.
        key: String,
    },
    /// A section's body does not have the shape of its section.
    #[error("section `{title}`, at `{path}`: {message}")]
    Section {
        /// The section's title.
        title: String,
        /// Where in the document, e.g. `threads.stacks[2].frames[0]`.
        path: String,
        /// What is wrong there.
        message: String,
    },
}

/// Why a built-in section's body cannot be read: where in the body, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyError {
    /// The path inside the body (`stacks[2].frames[0]`), empty for the body itself.
    pub(crate) path: String,
    /// What is wrong there.
    pub(crate) message: String,
}

/// Reads the body of a built-in section of this title; `None` for a title that is not built in.
pub(crate) type BodyReader =
    fn(title: &str, body: &Value) -> Option<Result<Box<dyn SectionBody>, BodyError>>;

/// The header fields of the document, which a section key never shadows.
const HEADER: [&str; 7] = [
    "service",
    "version",
    "host",
    "pid",
    "generated_at",
    "trigger",
    "report_version",
];

/// Reads `doc`, the JSON view of a report, with `built_in` reading the built-in sections.
///
/// # Errors
///
/// A [`ParseError`] naming the field that is missing or wrong.
pub(crate) fn read(doc: &Value, built_in: BodyReader) -> Result<Report, ParseError> {
    let Value::Object(fields) = doc else {
        return Err(ParseError::NotAnObject { found: kind(doc) });
    };
    let header = header(fields)?;
    let index = match fields.get("sections") {
        Some(Value::Array(index)) => index,
        Some(other) => {
            return Err(ParseError::Header {
                field: "sections",
                problem: format!("expected an array of {{title, key}}, found {}", kind(other)),
            });
        }
        None => {
            return Err(ParseError::Header {
                field: "sections",
                problem: "missing".to_owned(),
            });
        }
    };
    let mut sections = Vec::with_capacity(index.len());
    for (i, entry) in index.iter().enumerate() {
        let string = |name: &str| match entry.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(ParseError::Index {
                index: i,
                problem: format!("`{name}` must be a string, found {}", kind(other)),
            }),
            None => Err(ParseError::Index {
                index: i,
                problem: format!("missing `{name}`"),
            }),
        };
        let (title, key) = (string("title")?, string("key")?);
        if HEADER.contains(&key.as_str()) || key == "sections" {
            return Err(ParseError::Index {
                index: i,
                problem: format!("key `{key}` is a header field, never a section's"),
            });
        }
        let Some(body) = fields.get(&key) else {
            return Err(ParseError::MissingSection { title, key });
        };
        sections.push(section(title, &key, body, built_in)?);
    }
    Ok(Report::new(header, sections))
}

/// One section: its error, its built-in body, or a registered section's [`Content`].
fn section(
    title: String,
    key: &str,
    body: &Value,
    built_in: BodyReader,
) -> Result<Section, ParseError> {
    if let Some(message) = recorded_error(body) {
        return Ok(Section::failed(title, SectionError::from_message(message)));
    }
    match built_in(&title, body) {
        Some(Ok(body)) => Ok(Section::new(title, body)),
        Some(Err(error)) => Err(ParseError::Section {
            path: if error.path.is_empty() || error.path == "." {
                key.to_owned()
            } else {
                format!("{key}.{}", error.path)
            },
            title,
            message: error.message,
        }),
        None => Ok(Section::new(
            title,
            Box::new(Content::from_report_json(body.clone())),
        )),
    }
}

/// The message of a section that failed: a body that is exactly `{"error": "<message>"}`.
fn recorded_error(body: &Value) -> Option<&str> {
    match body {
        Value::Object(fields) if fields.len() == 1 => fields.get("error")?.as_str(),
        _ => None,
    }
}

/// The header of the document, after checking its version.
fn header(fields: &Map<String, Value>) -> Result<ReportHeader, ParseError> {
    let version = fields.get("report_version").ok_or(ParseError::NoVersion)?;
    let report_version = version
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| READABLE_VERSIONS.contains(v));
    let Some(report_version) = report_version else {
        let newest = READABLE_VERSIONS
            .iter()
            .copied()
            .max()
            .unwrap_or(REPORT_VERSION);
        let advice = match version.as_u64() {
            Some(v) if v > u64::from(newest) => {
                "it was written by a newer gmr: read it with a gmr command of that release or later"
            }
            Some(_) => "it was written by an older gmr: read it with a gmr command of that release",
            None => "a report_version is a positive integer",
        };
        return Err(ParseError::UnsupportedVersion {
            found: version.to_string(),
            readable: READABLE_VERSIONS
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            advice,
        });
    };
    let text = |field: &'static str| match fields.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ParseError::Header {
            field,
            problem: format!("expected a string, found {}", kind(other)),
        }),
        None => Err(ParseError::Header {
            field,
            problem: "missing".to_owned(),
        }),
    };
    let pid = fields
        .get("pid")
        .and_then(Value::as_u64)
        .and_then(|p| u32::try_from(p).ok())
        .ok_or_else(|| ParseError::Header {
            field: "pid",
            problem: format!(
                "expected a process id (a positive integer), found {}",
                fields.get("pid").map_or("nothing", kind)
            ),
        })?;
    let generated_at = text("generated_at")?;
    let generated_at_compact =
        super::time::compact_of_rfc3339(&generated_at).ok_or_else(|| ParseError::Header {
            field: "generated_at",
            problem: format!("`{generated_at}` is not an RFC 3339 time (2026-11-26T03:14:15Z)"),
        })?;
    let trigger_name = text("trigger")?;
    let trigger = Trigger::from_name(&trigger_name).ok_or_else(|| ParseError::Header {
        field: "trigger",
        problem: format!("`{trigger_name}` is not a trigger gmr knows (signal, file, http, api)"),
    })?;
    Ok(ReportHeader {
        service: text("service")?,
        version: match fields.get("version") {
            None | Some(Value::Null) => String::new(),
            Some(_) => text("version")?,
        },
        host: text("host")?,
        pid,
        generated_at,
        generated_at_compact,
        trigger,
        report_version,
    })
}

/// What a JSON value is, for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn no_built_in(_: &str, _: &Value) -> Option<Result<Box<dyn SectionBody>, BodyError>> {
        None
    }

    fn strict(title: &str, _: &Value) -> Option<Result<Box<dyn SectionBody>, BodyError>> {
        (title == "Strict").then(|| {
            Err(BodyError {
                path: "rows[1]".to_owned(),
                message: "missing field `id`".to_owned(),
            })
        })
    }

    fn doc() -> Value {
        json!({
            "report_version": REPORT_VERSION,
            "service": "billing", "version": "1.4.2", "host": "web-3", "pid": 4242,
            "generated_at": "2026-11-26T03:14:15Z", "trigger": "file",
            "sections": [
                {"title": "Pool", "key": "pool"},
                {"title": "Broken", "key": "broken"},
                {"title": "Odd", "key": "odd"},
            ],
            "pool": {"size": 16, "text": ["last failover: never"]},
            "broken": {"error": "section generator failed: pool closed"},
            "odd": {"error": "rendering panicked: oops"},
            "a_field_of_a_newer_gmr": true,
        })
    }

    #[test]
    fn reads_the_header_sections_errors_and_content() {
        let report = read(&doc(), no_built_in).expect("reads");
        let h = report.header();
        assert_eq!(
            (
                h.service.as_str(),
                h.version.as_str(),
                h.host.as_str(),
                h.pid
            ),
            ("billing", "1.4.2", "web-3", 4242)
        );
        assert_eq!(h.generated_at_compact, "20261126T031415");
        assert_eq!(h.trigger, Trigger::File);
        let titles: Vec<&str> = report.sections().iter().map(Section::title).collect();
        assert_eq!(titles, ["Pool", "Broken", "Odd"]);
        let text = report.to_text();
        assert!(text.contains("size = 16\nlast failover: never\n"), "{text}");
        assert!(
            text.contains("(section unavailable: section generator failed: pool closed)"),
            "{text}"
        );
        assert!(
            text.contains("(section unavailable: rendering panicked: oops)"),
            "{text}"
        );
        // The JSON of the report read back is the document (less what this gmr does not know).
        let mut expected = doc();
        if let Some(fields) = expected.as_object_mut() {
            fields.shift_remove("a_field_of_a_newer_gmr");
        }
        assert_eq!(report.to_json(), expected);
    }

    #[test]
    fn refuses_unknown_versions_saying_which_it_reads() {
        for (version, advice) in [
            (json!(REPORT_VERSION + 1), "newer gmr"),
            (json!(1), "older gmr"),
            (json!("2"), "positive integer"),
        ] {
            let mut d = doc();
            d["report_version"] = version.clone();
            let error = read(&d, no_built_in).expect_err("refused");
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("report_version {version} is not one")),
                "{message}"
            );
            assert!(
                message.contains(&format!("(it reads {REPORT_VERSION})")),
                "{message}"
            );
            assert!(message.contains(advice), "{message}");
        }
        let mut d = doc();
        d.as_object_mut().map(|f| f.shift_remove("report_version"));
        assert_eq!(read(&d, no_built_in).err(), Some(ParseError::NoVersion));
        assert_eq!(
            read(&json!([1]), no_built_in).err(),
            Some(ParseError::NotAnObject { found: "an array" })
        );
    }

    #[test]
    fn names_the_field_that_is_wrong() {
        let cases: [(&str, Value, &str); 5] = [
            (
                "pid",
                json!(-1),
                "header field `pid`: expected a process id",
            ),
            (
                "trigger",
                json!("cron"),
                "`cron` is not a trigger gmr knows",
            ),
            ("generated_at", json!("yesterday"), "not an RFC 3339 time"),
            (
                "service",
                json!(3),
                "header field `service`: expected a string, found a number",
            ),
            (
                "sections",
                json!({}),
                "header field `sections`: expected an array",
            ),
        ];
        for (field, value, expected) in cases {
            let mut d = doc();
            d[field] = value;
            let message = read(&d, no_built_in).expect_err(field).to_string();
            assert!(message.contains(expected), "{field}: {message}");
        }
        let mut d = doc();
        d["sections"][1] = json!({"title": "Gone", "key": "gone"});
        assert_eq!(
            read(&d, no_built_in).err(),
            Some(ParseError::MissingSection {
                title: "Gone".into(),
                key: "gone".into()
            })
        );
        d["sections"][1] = json!({"title": "Shadow", "key": "pid"});
        assert!(matches!(
            read(&d, no_built_in),
            Err(ParseError::Index { index: 1, .. })
        ));
        let mut d = doc();
        d["sections"][0]["title"] = json!("Strict");
        assert_eq!(
            read(&d, strict).expect_err("bad body").to_string(),
            "section `Strict`, at `pool.rows[1]`: missing field `id`"
        );
    }
}
