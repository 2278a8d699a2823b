//! The built-in sections read back from a report's JSON view: each body through its own model,
//! so a report read back ([`Report::from_json`]) renders with the same code as the process
//! that wrote it. The document around the bodies is read in `report::parse`.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::configuration::ConfigurationSection;
use super::green_threads::{GreenThreadsModel, GreenThreadsSection};
use super::package::{PackageFields, PackageSection};
use super::processes::ProcessesSection;
use super::threads::ThreadsSection;
use crate::report::parse::{BodyError, ParseError, kind, read};
use crate::report::{Report, SectionBody, titles};

impl Report {
    /// Rebuilds a report from its JSON view ([`Report::to_json`]): the header, the sections in
    /// their order, each built-in section through its own model, registered sections as
    /// [`Content`](crate::Content) (the JSON keeps which fields are tables), and failed
    /// sections as their errors. Its text view is then the text the process would have
    /// written; `gmr view` is this and [`Report::render`].
    ///
    /// Fields this gmr does not know are ignored and missing optional ones take their
    /// defaults, but a `report_version` outside [`READABLE_VERSIONS`](crate::report::READABLE_VERSIONS)
    /// is refused. Parse the text with serde_json's `float_roundtrip` feature for numbers
    /// (such as `capture_ms`) to read back exactly as written.
    ///
    /// A registered section whose body is not a [`Content`](crate::Content) renders from its
    /// JSON as a `Content` would, which may differ from the text its own type wrote.
    ///
    /// ```
    /// let gmr = gmr::Gmr::builder().package(gmr::package!()).build()?;
    /// let report = gmr.report(gmr::Trigger::Api);
    /// let again = gmr::Report::from_json(&report.to_json())?;
    /// assert_eq!(again.to_text(), report.to_text());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ParseError`] naming what is wrong: not a report, an unknown `report_version` (with
    /// the versions this gmr reads), a header field, or a section's body and where in it.
    pub fn from_json(doc: &Value) -> Result<Report, ParseError> {
        read(doc, built_in)
    }
}

/// The body of the built-in section `title`; `None` for any other title.
fn built_in(title: &str, body: &Value) -> Option<Result<Box<dyn SectionBody>, BodyError>> {
    Some(match title {
        titles::PACKAGE => {
            typed::<PackageFields>(body).map(|f| boxed(PackageSection::from_fields(f)))
        }
        titles::THREADS => typed::<ThreadsSection>(body).map(boxed),
        titles::GREEN_THREADS => {
            typed::<GreenThreadsModel>(body).map(|m| boxed(GreenThreadsSection::from_model(m)))
        }
        titles::PROCESSES => match body {
            Value::Object(fields) => Ok(boxed(ProcessesSection::from_fields(fields.clone()))),
            other => Err(BodyError {
                path: String::new(),
                message: format!("expected an object, found {}", kind(other)),
            }),
        },
        titles::CONFIGURATION => {
            ConfigurationSection::from_json(body)
                .map(boxed)
                .map_err(|message| BodyError {
                    path: String::new(),
                    message,
                })
        }
        _ => return None,
    })
}

/// `body` deserialized as `T`, or where and why not.
fn typed<T: DeserializeOwned>(body: &Value) -> Result<T, BodyError> {
    serde_path_to_error::deserialize(body).map_err(|error| BodyError {
        path: error.path().to_string(),
        message: error.inner().to_string(),
    })
}

fn boxed<B: SectionBody + 'static>(body: B) -> Box<dyn SectionBody> {
    Box::new(body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::report::{Report, titles};
    use crate::{Content, Gmr, SectionError, Trigger};

    /// A report of this process with every built-in section, a configuration, registered
    /// sections (content with a table and lines, a failing one).
    fn report() -> Report {
        let config = ::config::Config::builder()
            .set_default("gmr.service_name", "read-back")
            .and_then(|b| b.set_default("database.url", "postgres://app:pw@db/x"))
            .and_then(|b| b.set_default("database.pool", 8))
            .and_then(|b| b.build())
            .expect("config");
        let gmr = Gmr::builder()
            .config(&config)
            .package(crate::package!())
            .section("Job Queue", || {
                Ok::<_, String>(
                    Content::new()
                        .field("depth", 3)
                        .table(
                            "jobs",
                            crate::Table::new(["id", "state"])
                                .row(Content::new().field("id", 1).field("state", "running")),
                        )
                        .line("oldest: 12 s"),
                )
            })
            .section("Broken", || Err::<Content, _>("pool closed"))
            .build()
            .expect("engine");
        gmr.report(Trigger::Api)
    }

    #[test]
    fn a_report_reads_back_to_the_same_text_and_json() {
        let report = report();
        let json = report.to_json();
        // Through text, as a file is read.
        let doc: serde_json::Value = serde_json::from_str(&report.to_json_string()).expect("JSON");
        let again = Report::from_json(&doc).expect("reads back");
        assert_eq!(again.to_text(), report.to_text());
        assert_eq!(again.to_json(), json);
        assert_eq!(again.header(), report.header());
        assert!(matches!(
            again.section("Broken").map(|s| s.body().err().cloned()),
            Some(Some(SectionError::Failed(_)))
        ));
    }

    #[test]
    fn a_body_of_the_wrong_shape_says_where() {
        let mut doc = report().to_json();
        doc["threads"]["stacks"][0]["frames"][0]["address"] = json!(17);
        let message = Report::from_json(&doc).expect_err("refused").to_string();
        assert!(
            message.starts_with("section `Threads`, at `threads.stacks[0].frames[0].address`: "),
            "{message}"
        );
        let mut doc = report().to_json();
        doc["processes"] = json!([1, 2]);
        let message = Report::from_json(&doc).expect_err("refused").to_string();
        assert_eq!(
            message,
            "section `Processes`, at `processes`: expected an object, found an array"
        );
        // Fields a newer gmr adds are ignored.
        let mut doc = report().to_json();
        doc["threads"]["since"] = json!({"previous": "2026-01-01T00:00:00Z"});
        doc["package"]["new_field"] = json!(1);
        let report = Report::from_json(&doc).expect("reads");
        assert!(report.section(titles::THREADS).is_some());
    }
}
