//! [`OutputFormat`]: the one format type of gmr, and [`RenderedReport`], a report rendered in
//! one of them.
//!
//! Sinks, the reporter thread and the web adapters' admin endpoint all speak this type: a new
//! view is a variant here (its name, file extension, media type and renderer) and a module next
//! to this one; nothing else in gmr or its adapters lists the formats.

use std::fmt;
use std::sync::Arc;

use super::{Report, ReportHeader};

/// A view of a report: what sinks write and what the admin endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OutputFormat {
    /// oslo's 72-column text layout.
    #[default]
    Text,
    /// One JSON document per report.
    Json,
    /// One self-contained HTML page per report, made from the JSON document
    /// ([`crate::report::html`]; cargo feature `html`).
    #[cfg(feature = "html")]
    Html,
}

impl OutputFormat {
    /// Every format, the default first.
    pub const ALL: &'static [OutputFormat] = &[
        OutputFormat::Text,
        OutputFormat::Json,
        #[cfg(feature = "html")]
        OutputFormat::Html,
    ];

    /// The name used in configuration (`format = "json"`) and in `?format=`.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Text => "text",
            OutputFormat::Json => "json",
            #[cfg(feature = "html")]
            OutputFormat::Html => "html",
        }
    }

    /// The format of a name, case-insensitively (`text` also answers to `txt` and `plain`).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "txt" | "plain" => Some(OutputFormat::Text),
            _ => OutputFormat::ALL.iter().copied().find(|f| f.name() == name),
        }
    }

    /// The names of every format, for error messages (`text, json, html`).
    pub fn names() -> String {
        OutputFormat::ALL
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The file extension of report files in this format (`txt`, `json`, `html`).
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Text => "txt",
            OutputFormat::Json => "json",
            #[cfg(feature = "html")]
            OutputFormat::Html => "html",
        }
    }

    /// The `Content-Type` of this format.
    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Text => "text/plain; charset=utf-8",
            OutputFormat::Json => "application/json",
            #[cfg(feature = "html")]
            OutputFormat::Html => "text/html; charset=utf-8",
        }
    }

    /// The `Content-Security-Policy` to send with a report in this format, if it needs one:
    /// the HTML page's (nothing loads, only its own style and script run). The admin
    /// endpoint sends it; the page also carries it in a `<meta>`.
    pub fn content_security_policy(self) -> Option<&'static str> {
        #[cfg(feature = "html")]
        if self == OutputFormat::Html {
            return Some(super::html::content_security_policy());
        }
        None
    }

    /// The media type without parameters (`text/plain`), as an `Accept` header names it.
    pub fn media_type(self) -> &'static str {
        let full = self.content_type();
        full.split(';').next().unwrap_or(full)
    }

    /// Renders `report` in this format.
    pub fn render(self, report: &Report) -> String {
        match self {
            OutputFormat::Text => super::text::render(report),
            OutputFormat::Json => super::json::render_string(report),
            #[cfg(feature = "html")]
            OutputFormat::Html => super::html::render(report),
        }
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A report rendered in one format: what a sink writes and what the admin endpoint serves.
/// Rendered once per format asked for (on gmr's reporter thread when the reporter makes it) and
/// shared by reference count from there.
#[derive(Debug)]
pub struct RenderedReport {
    header: ReportHeader,
    format: OutputFormat,
    body: String,
}

impl RenderedReport {
    /// Renders `report` in `format`.
    pub fn render(report: &Report, format: OutputFormat) -> Self {
        RenderedReport {
            header: report.header().clone(),
            format,
            body: format.render(report),
        }
    }

    /// Who, where, when and why.
    pub fn header(&self) -> &ReportHeader {
        &self.header
    }

    /// The format of [`RenderedReport::as_str`].
    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// The rendered report.
    pub fn as_str(&self) -> &str {
        &self.body
    }

    /// The rendered report as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.body.as_bytes()
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.body.len()
    }

    /// Whether it is empty (never, for a rendered report).
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }
}

impl AsRef<[u8]> for RenderedReport {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// The views of one report, each rendered on first use and then shared: a report is rendered
/// once per format actually asked for, never in every format in advance.
#[derive(Debug)]
pub struct ReportViews {
    report: Arc<Report>,
    rendered: std::sync::Mutex<Vec<Arc<RenderedReport>>>,
}

impl ReportViews {
    /// The views of `report`, none rendered yet.
    pub fn new(report: Arc<Report>) -> Self {
        ReportViews {
            report,
            rendered: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The report.
    pub fn report(&self) -> &Arc<Report> {
        &self.report
    }

    /// The view in `format`, rendered now if no one asked for it before.
    pub fn get(&self, format: OutputFormat) -> Arc<RenderedReport> {
        if let Some(found) = self.rendered_already(format) {
            return found;
        }
        // Rendered outside the lock: a large report takes milliseconds.
        let rendered = Arc::new(RenderedReport::render(&self.report, format));
        let mut views = self
            .rendered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match views.iter().find(|r| r.format == format) {
            Some(raced) => Arc::clone(raced),
            None => {
                views.push(Arc::clone(&rendered));
                rendered
            }
        }
    }

    /// The view in `format` if it has been rendered.
    pub fn rendered_already(&self, format: OutputFormat) -> Option<Arc<RenderedReport>> {
        self.rendered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .find(|r| r.format == format)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases() {
        for format in OutputFormat::ALL {
            assert_eq!(OutputFormat::from_name(format.name()), Some(*format));
            assert!(!format.extension().is_empty());
            assert!(format.content_type().starts_with(format.media_type()));
        }
        assert_eq!(OutputFormat::from_name("TXT"), Some(OutputFormat::Text));
        assert_eq!(OutputFormat::from_name("Json"), Some(OutputFormat::Json));
        assert_eq!(OutputFormat::from_name("xml"), None);
        #[cfg(not(feature = "html"))]
        assert_eq!(OutputFormat::names(), "text, json");
        assert_eq!(OutputFormat::Json.media_type(), "application/json");
        assert_eq!(OutputFormat::Json.content_security_policy(), None);
        assert_eq!(OutputFormat::Text.content_security_policy(), None);
    }

    #[cfg(feature = "html")]
    #[test]
    fn html_is_a_format_with_a_policy() {
        assert_eq!(OutputFormat::names(), "text, json, html");
        assert_eq!(OutputFormat::from_name("HTML"), Some(OutputFormat::Html));
        assert_eq!(OutputFormat::Html.extension(), "html");
        assert_eq!(OutputFormat::Html.media_type(), "text/html");
        let policy = OutputFormat::Html
            .content_security_policy()
            .expect("a policy");
        assert!(policy.starts_with("default-src 'none'"));
    }
}
