//! The report model and its two views.
//!
//! A [`Report`] is a [`ReportHeader`] (who, where, when, why) and an ordered list of
//! [`Section`]s. Each section holds either a body, a value implementing [`SectionBody`] that can
//! render itself to text and to JSON from the same data, or the [`SectionError`] that stopped its
//! generator. A failing section never loses the rest of the report.
//!
//! The text view ([`Report::to_text`]) follows oslo.reports' 72-column layout that operators
//! know; the JSON view ([`Report::to_json`]) is one document with `report_version` and one field
//! per section, holding every value the text shows; the HTML view (`html`, cargo feature
//! `html`) is one self-contained page, made from the sections as the text is. [`OutputFormat`]
//! names the views; a [`RenderedReport`] is a report rendered in one of them.
//!
//! A report's JSON view reads back into a [`Report`] ([`Report::from_json`], see [`parse`]):
//! what `gmr view` renders, with the same renderers as the process that wrote it.
//!
//! This is the lowest layer of gmr (see `docs/architecture.md`): it knows nothing of how
//! sections are gathered, where reports go or what triggers them.
#![forbid(unsafe_code)]

mod content;
mod format;
#[cfg(feature = "html")]
pub mod html;
pub(crate) mod isolate;
mod json;
pub mod parse;
pub(crate) mod stack;
mod text;
pub(crate) mod time;
pub mod titles;

use std::fmt;

pub use self::content::align_rows;
pub use self::content::{Content, Table};
pub(crate) use self::content::{scalar as content_scalar, write_fields};
pub use self::format::{OutputFormat, RenderedReport, ReportViews};
pub use self::parse::{ParseError, READABLE_VERSIONS};
pub use self::text::TextWriter;
use crate::error::SectionError;

/// The version of the JSON document's schema. Bumped on a breaking change.
pub const REPORT_VERSION: u32 = 2;

/// What asked for a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Trigger {
    /// The configured signal (SIGUSR2 by default).
    Signal,
    /// A change of the trigger file.
    File,
    /// A request to the admin endpoint.
    Http,
    /// A call of the programmatic API.
    Api,
}

impl Trigger {
    /// Every trigger.
    pub const ALL: &'static [Trigger] =
        &[Trigger::Signal, Trigger::File, Trigger::Http, Trigger::Api];

    /// The trigger of a name as [`Trigger::as_str`] writes it.
    ///
    /// ```
    /// assert_eq!(gmr::Trigger::from_name("file"), Some(gmr::Trigger::File));
    /// assert_eq!(gmr::Trigger::from_name("cron"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Trigger> {
        Trigger::ALL.iter().copied().find(|t| t.as_str() == name)
    }

    /// The name used in the report and in logs: `signal`, `file`, `http` or `api`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Signal => "signal",
            Trigger::File => "file",
            Trigger::Http => "http",
            Trigger::Api => "api",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who, where, when and why: the identity of one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportHeader {
    /// The service name (`[gmr] service_name`, or the binary's name).
    pub service: String,
    /// The application's version (from [`crate::package!`]).
    pub version: String,
    /// The host name.
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// When the report was generated, RFC 3339 in UTC.
    pub generated_at: String,
    /// The same instant, as `YYYYMMDDTHHMMSS` (UTC) for file names.
    pub generated_at_compact: String,
    /// What asked for the report.
    pub trigger: Trigger,
    /// The schema version of the JSON view, [`REPORT_VERSION`].
    pub report_version: u32,
}

/// The content of a section: renders itself to the text view and to the JSON view.
///
/// Both renderings must come from the same data: every value the text shows is in the JSON.
/// Built-in sections implement it on their own data types; an application's sections return a
/// [`Content`], which implements it for any tree of keys, values and lists.
pub trait SectionBody: fmt::Debug + Send + Sync {
    /// Writes the section's lines (without its three-line title header).
    fn write_text(&self, out: &mut TextWriter);
    /// The section's data as a JSON value.
    fn to_json(&self) -> serde_json::Value;

    /// Writes the section in the HTML view: the generic layout of [`SectionBody::to_json`].
    /// gmr's own sections lay themselves out; the writer is gmr's, so only they can.
    #[cfg(feature = "html")]
    #[doc(hidden)]
    fn write_html(&self, out: &mut html::Html) {
        html::write_value(out, &self.to_json());
    }

    /// The stacks this section adds to the HTML view's flame graph: none, unless it is one of
    /// gmr's sections of stacks (`Threads`, `Green Threads`).
    #[cfg(feature = "html")]
    #[doc(hidden)]
    fn flame_stacks(&self) -> Vec<html::FlameStack> {
        Vec::new()
    }
}

/// One section of a report: a title and its body, or the error that stopped its generator.
#[derive(Debug)]
pub struct Section {
    title: String,
    body: Result<Box<dyn SectionBody>, SectionError>,
}

impl Section {
    /// A section with its body.
    pub fn new(title: impl Into<String>, body: Box<dyn SectionBody>) -> Self {
        Section {
            title: title.into(),
            body: Ok(body),
        }
    }

    /// A section whose generator failed: the error is shown in place of the content.
    pub fn failed(title: impl Into<String>, error: SectionError) -> Self {
        Section {
            title: title.into(),
            body: Err(error),
        }
    }

    /// The section's title.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The body, or the error that stopped the generator.
    pub fn body(&self) -> Result<&dyn SectionBody, &SectionError> {
        self.body.as_deref()
    }

    /// The key of this section in the JSON document: the title in `snake_case`
    /// (`Green Threads` → `green_threads`).
    pub fn json_key(&self) -> String {
        json_key(&self.title)
    }
}

/// The JSON field name of a section title: lowercase ASCII letters, digits and `_`.
pub(crate) fn json_key(title: &str) -> String {
    let mut key = String::with_capacity(title.len());
    let mut last_was_sep = true;
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            key.push(c.to_ascii_lowercase());
            last_was_sep = false;
        } else if !last_was_sep {
            key.push('_');
            last_was_sep = true;
        }
    }
    while key.ends_with('_') {
        key.pop();
    }
    if key.is_empty() {
        key.push_str("section");
    }
    key
}

/// A complete report: the header and the sections in order.
#[derive(Debug)]
pub struct Report {
    header: ReportHeader,
    sections: Vec<Section>,
}

impl Report {
    /// A report from its parts. Sections keep the given order.
    pub fn new(header: ReportHeader, sections: Vec<Section>) -> Self {
        Report { header, sections }
    }

    /// The header.
    pub fn header(&self) -> &ReportHeader {
        &self.header
    }

    /// The sections in report order.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The section with this title, if any.
    pub fn section(&self, title: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.title == title)
    }

    /// The text view: oslo's 72-column layout (`docs/report-format.md`).
    pub fn to_text(&self) -> String {
        text::render(self)
    }

    /// The JSON view as a value (`docs/report-format.md`).
    pub fn to_json(&self) -> serde_json::Value {
        json::render(self)
    }

    /// The JSON view, pretty-printed, with a final newline.
    pub fn to_json_string(&self) -> String {
        json::render_string(self)
    }

    /// The report rendered in `format`.
    pub fn render(&self, format: OutputFormat) -> String {
        format.render(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keys_are_snake_case() {
        assert_eq!(json_key("Package"), "package");
        assert_eq!(json_key("Green Threads"), "green_threads");
        assert_eq!(json_key("  DB pool (primary) "), "db_pool_primary");
        assert_eq!(json_key("!!!"), "section");
    }
}
