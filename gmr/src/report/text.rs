//! The text view: oslo.reports' 72-column layout (`docs/report-format.md`).
//!
//! ```text
//! ========================================================================
//! ====                        Guru Meditation                         ====
//! ========================================================================
//! ||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||||
//!
//!
//! ========================================================================
//! ====                            Package                             ====
//! ========================================================================
//! service = billing
//! ...
//! ```

use std::fmt::{self, Write as _};

use super::{Report, ReportHeader, titles};

/// Width of the report in columns.
pub(crate) const WIDTH: usize = 72;

/// A buffer of report lines with an indentation level.
///
/// Section bodies write through it so that every section shares the same layout rules.
#[derive(Debug, Default)]
pub struct TextWriter {
    buf: String,
    indent: usize,
}

impl TextWriter {
    /// An empty writer.
    pub fn new() -> Self {
        TextWriter::default()
    }

    /// Writes one line at the current indentation.
    pub fn line(&mut self, text: impl fmt::Display) {
        self.pad();
        // Writing to a String cannot fail.
        let _ = write!(self.buf, "{text}");
        self.buf.push('\n');
    }

    /// Writes an empty line.
    pub fn blank(&mut self) {
        self.buf.push('\n');
    }

    /// Writes `key = value` at the current indentation.
    pub fn kv(&mut self, key: &str, value: impl fmt::Display) {
        self.pad();
        let _ = write!(self.buf, "{key} = {value}");
        self.buf.push('\n');
    }

    /// Writes the lines that `body` writes, indented two more columns.
    pub fn indented(&mut self, body: impl FnOnce(&mut TextWriter)) {
        self.indent += 2;
        body(self);
        self.indent -= 2;
    }

    /// Writes the three-line header of a section: 72 `=`, `====` + title centred in 64 + `====`,
    /// 72 `=`.
    pub fn section_header(&mut self, title: &str) {
        let rule = "=".repeat(WIDTH);
        let _ = writeln!(self.buf, "{rule}");
        let _ = writeln!(self.buf, "===={}====", centre(title, WIDTH - 8));
        let _ = writeln!(self.buf, "{rule}");
    }

    /// Writes a thread block header: `------` + title centred in 60 + `------`.
    ///
    /// The title is usually ` Thread #<tid> ` plus the thread's name and state.
    pub fn thread_header(&mut self, title: &str) {
        let _ = writeln!(self.buf, "------{}------", centre(title, WIDTH - 12));
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        &self.buf
    }

    /// The text written.
    pub fn into_string(self) -> String {
        self.buf
    }

    fn pad(&mut self) {
        for _ in 0..self.indent {
            self.buf.push(' ');
        }
    }
}

/// Centres `title` in `width` columns the way Python's `str.center` does for an even width
/// (the extra space of an odd padding goes to the right). A longer title is kept whole.
pub(crate) fn centre(title: &str, width: usize) -> String {
    let len = title.chars().count();
    if len >= width {
        return title.to_owned();
    }
    let pad = width - len;
    let left = pad / 2;
    let right = pad - left;
    format!("{}{title}{}", " ".repeat(left), " ".repeat(right))
}

/// Renders the whole report.
pub(super) fn render(report: &Report) -> String {
    let mut out = TextWriter::new();
    out.section_header("Guru Meditation");
    out.line("|".repeat(WIDTH));
    out.blank();
    out.blank();
    let has_package = report.sections.iter().any(|s| s.title == titles::PACKAGE);
    if !has_package {
        out.section_header("Report");
        write_header_fields(&mut out, &report.header);
    }
    for section in &report.sections {
        out.section_header(&section.title);
        if section.title == titles::PACKAGE {
            write_header_fields(&mut out, &report.header);
        }
        match &section.body {
            Ok(body) => {
                // A body that panics while rendering loses only what it wrote: its lines are
                // rolled back and the panic is shown in its place.
                let mark = out.buf.len();
                let indent = out.indent;
                if let Err(panic) = super::isolate::catch(|| body.write_text(&mut out)) {
                    out.buf.truncate(mark);
                    out.indent = indent;
                    out.line(format_args!(
                        "(section unavailable: rendering panicked: {panic})"
                    ));
                }
            }
            Err(error) => out.line(format_args!("(section unavailable: {error})")),
        }
    }
    out.into_string()
}

/// The report's identity, shown first in the `Package` section.
fn write_header_fields(out: &mut TextWriter, header: &ReportHeader) {
    out.kv("service", &header.service);
    out.kv("host", &header.host);
    out.kv("pid", header.pid);
    out.kv("generated_at", &header.generated_at);
    out.kv("trigger", header.trigger);
    out.kv("report_version", header.report_version);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centre_matches_python() {
        // "Guru Meditation".center(64): 24 spaces left, 25 right.
        let c = centre("Guru Meditation", 64);
        assert_eq!(c.len(), 64);
        assert!(c.starts_with(&" ".repeat(24)) && !c.starts_with(&" ".repeat(25)));
        assert_eq!(centre("ab", 6), "  ab  ");
        assert_eq!(centre("abc", 6), " abc  ");
        assert_eq!(centre("toolongtitle", 4), "toolongtitle");
    }

    #[test]
    fn headers_are_72_columns() {
        let mut w = TextWriter::new();
        w.section_header("Threads");
        w.thread_header(" Thread #1234 ");
        for line in w.as_str().lines() {
            assert_eq!(line.len(), 72, "{line:?}");
        }
        assert_eq!(
            w.as_str().lines().nth(1),
            Some("====                            Threads                             ====")
        );
        assert_eq!(
            w.as_str().lines().nth(3),
            Some("------                        Thread #1234                        ------")
        );
    }

    #[test]
    fn indentation_nests() {
        let mut w = TextWriter::new();
        w.kv("a", 1);
        w.indented(|w| {
            w.kv("b", 2);
            w.indented(|w| w.line("c"));
        });
        w.line("d");
        assert_eq!(w.as_str(), "a = 1\n  b = 2\n    c\nd\n");
    }
}
