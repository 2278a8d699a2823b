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
///
/// **Terminal-safe.** Everything written through it is escaped: a
/// newline, a carriage return, an ANSI escape sequence or any other control character in a
/// value (a configuration value, a thread name, an argument, an environment variable, a path)
/// is shown as `\n`, `\r`, `\t` or `\u{1b}` on the line it belongs to. So a value can never
/// start a line of its own, forge a section header, or send escape sequences to the terminal
/// of whoever reads the report with `cat`. A line that would start with `====` (the mark of a
/// section header) is shifted right by one space: only gmr's own headers start a line with it.
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

    /// Writes one line at the current indentation, control characters escaped.
    pub fn line(&mut self, text: impl fmt::Display) {
        let mark = self.buf.len();
        self.pad();
        // Writing to a String cannot fail.
        let _ = write!(Escaping(&mut self.buf), "{text}");
        self.end_line(mark);
    }

    /// Writes an empty line.
    pub fn blank(&mut self) {
        self.buf.push('\n');
    }

    /// Writes `key = value` at the current indentation, control characters escaped.
    pub fn kv(&mut self, key: &str, value: impl fmt::Display) {
        let mark = self.buf.len();
        self.pad();
        let _ = write!(Escaping(&mut self.buf), "{key} = {value}");
        self.end_line(mark);
    }

    /// Writes the lines that `body` writes, indented two more columns.
    pub fn indented(&mut self, body: impl FnOnce(&mut TextWriter)) {
        self.indent += 2;
        body(self);
        self.indent -= 2;
    }

    /// Writes the three-line header of a section: 72 `=`, `====` + title centred in 64 + `====`,
    /// 72 `=`. Control characters in the title are escaped.
    pub fn section_header(&mut self, title: &str) {
        let rule = "=".repeat(WIDTH);
        let title = escape_control(title);
        let _ = writeln!(self.buf, "{rule}");
        let _ = writeln!(self.buf, "===={}====", centre(&title, WIDTH - 8));
        let _ = writeln!(self.buf, "{rule}");
    }

    /// Writes a thread block header: `------` + title centred in 60 + `------`. Control
    /// characters in the title (a thread's name) are escaped.
    ///
    /// The title is usually ` Thread #<tid> ` plus the thread's name and state.
    pub fn thread_header(&mut self, title: &str) {
        let title = escape_control(title);
        let _ = writeln!(self.buf, "------{}------", centre(&title, WIDTH - 12));
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

    /// Ends the line begun at `mark`: shifts it if it would look like a section header.
    fn end_line(&mut self, mark: usize) {
        if self.buf[mark..].starts_with("====") {
            self.buf.insert(mark, ' ');
        }
        self.buf.push('\n');
    }
}

/// Whether `c` must not reach a terminal as it is: the C0 and C1 control characters (newline,
/// carriage return, tab, `ESC`, `DEL`, …), the Unicode line and paragraph separators, and the
/// bidirectional controls that reorder how a line is displayed.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// Writes `c` escaped: `\n`, `\r`, `\t`, or `\u{hex}`.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        other => {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(other));
        }
    }
}

/// `text` with every control character escaped as the text view shows it (`\n`, `\r`, `\t`,
/// `\u{1b}` for `ESC`; see [`TextWriter`]). Text without one is returned as it is.
fn escape_control(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A `fmt::Write` into a `String` that escapes control characters as they are written.
struct Escaping<'a>(&'a mut String);

impl fmt::Write for Escaping<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if !s.chars().any(is_unsafe) {
            self.0.push_str(s);
            return Ok(());
        }
        for c in s.chars() {
            if is_unsafe(c) {
                push_escaped(self.0, c);
            } else {
                self.0.push(c);
            }
        }
        Ok(())
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
    fn control_characters_are_escaped_everywhere() {
        let evil = "x\n====                             FORGED                             ====\n\u{1b}[2J\u{1b}]0;title\u{7}\r\tdone\u{9b}31m\u{202e}";
        let mut w = TextWriter::new();
        w.line(evil);
        w.kv("key", evil);
        w.kv(evil, "value");
        w.indented(|w| w.line(format_args!("- {evil}")));
        w.section_header(evil);
        w.thread_header(evil);
        let text = w.into_string();
        for c in text.chars() {
            assert!(c == '\n' || !is_unsafe(c), "{c:?} reached the text: {text}");
        }
        // Each call wrote its own lines and nothing else: 1 + 1 + 1 + 1 + 3 + 1.
        assert_eq!(text.lines().count(), 8, "{text}");
        assert!(
            text.contains("x\\n====") && text.contains("\\u{1b}[2J"),
            "{text}"
        );
        assert!(text.contains("\\r\\tdone\\u{9b}31m\\u{202e}"), "{text}");
        // No line but gmr's own header starts like a section header.
        let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("====")).collect();
        assert_eq!(headers.len(), 3, "{headers:?}");
        assert_eq!(
            escape_control("plain text: é ü 日本"),
            "plain text: é ü 日本"
        );
    }

    #[test]
    fn a_value_cannot_start_a_line_like_a_header() {
        let mut w = TextWriter::new();
        w.line("==== FORGED ====");
        w.kv("====", "x");
        assert_eq!(w.as_str(), " ==== FORGED ====\n ==== = x\n");
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
