//! The one escaping function of the HTML view, and the writer that applies it to every text
//! node and attribute value.
//!
//! Everything from a report (a configuration value, a thread name, a request path, a frame
//! name, a key) reaches the page through [`escape_into`]: `&`, `<`, `>`, `"` and `'` become
//! character references, so a value can never open or close an element, end an attribute, or
//! start a comment, a CDATA section or a script. Control characters (other than newline and
//! tab) are shown as `\u{1b}`, as the text view shows them, so a value cannot hide what
//! follows it either.
//!
//! [`Html`] is the only way the view writes markup: element and attribute *names* are
//! `&'static str` chosen by gmr's code, never by data, and every attribute value is quoted and
//! escaped. Attributes that could run or load something (`on…` handlers, `href`, `src`,
//! `style`, …) are refused outright, so no value can ever reach one.

use std::fmt::Write as _;

/// Appends `text` to `out` with `& < > " '` as character references and control characters
/// (but newline and tab) as `\u{…}`: safe in a text node and in a quoted attribute value.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let (replacement, len): (Option<&str>, usize) = match b {
            b'&' => (Some("&amp;"), 1),
            b'<' => (Some("&lt;"), 1),
            b'>' => (Some("&gt;"), 1),
            b'"' => (Some("&quot;"), 1),
            b'\'' => (Some("&#39;"), 1),
            b'\n' | b'\t' => {
                i += 1;
                continue;
            }
            0..=0x1f | 0x7f => (None, 1),
            // C1 controls, U+0080..=U+009F: 0xC2 0x80..=0x9F in UTF-8.
            0xc2 if bytes.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)) => (None, 2),
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&text[start..i]);
        match replacement {
            Some(r) => out.push_str(r),
            None => {
                let c = text[i..].chars().next().map_or(0, u32::from);
                let _ = write!(out, "\\u{{{c:x}}}");
            }
        }
        i += len;
        start = i;
    }
    out.push_str(&text[start..]);
}

/// `text` escaped by [`escape_into`].
#[cfg(test)]
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// Attribute names the view writes. Anything else is refused: in particular every event
/// handler (`on…`), and every attribute that loads or navigates (`href`, `src`, `action`,
/// `formaction`, `xlink:href`, `srcdoc`, `style`).
const ALLOWED_ATTRIBUTES: &[&str] = &[
    "class",
    "id",
    "open",
    "type",
    "lang",
    "charset",
    "name",
    "content",
    "http-equiv",
    "placeholder",
    "autocomplete",
    "spellcheck",
    "aria-label",
    "title",
    "colspan",
    "hidden",
    "role",
    "data-group",
    "data-key",
    "data-n",
    "data-section",
    // The flame graph's SVG, as the sanitizer re-writes it.
    "viewBox",
    "width",
    "height",
    "x",
    "y",
    "fill",
    "data-x",
    "data-w",
    "data-total",
];

/// Whether the view may write attribute `name`.
pub(crate) fn attribute_allowed(name: &str) -> bool {
    ALLOWED_ATTRIBUTES.contains(&name)
}

/// A page being written: markup from gmr's code, text and attribute values from the report,
/// escaped.
#[derive(Debug, Default)]
pub struct Html {
    out: String,
}

impl Html {
    /// An empty page with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Html {
            out: String::with_capacity(capacity),
        }
    }

    /// Markup written by gmr's code: a `'static` string, never data.
    pub(crate) fn markup(&mut self, markup: &'static str) {
        self.out.push_str(markup);
    }

    /// A text node: `text` escaped.
    pub(crate) fn text(&mut self, text: &str) {
        escape_into(&mut self.out, text);
    }

    /// A text node from formatting arguments, escaped as it is formatted (no string of its
    /// own).
    pub(crate) fn text_fmt(&mut self, args: std::fmt::Arguments<'_>) {
        /// Escapes what is formatted into it.
        struct Escaping<'a>(&'a mut String);
        impl std::fmt::Write for Escaping<'_> {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                escape_into(self.0, s);
                Ok(())
            }
        }
        // Writing to a `String` cannot fail; a `Display` that fails leaves what it wrote.
        let _ = std::fmt::Write::write_fmt(&mut Escaping(&mut self.out), args);
    }

    /// `<tag attr="value" …>`: names from gmr's code, values escaped; a refused attribute
    /// name is left out.
    pub(crate) fn open(&mut self, tag: &'static str, attributes: &[(&'static str, &str)]) {
        self.out.push('<');
        self.out.push_str(tag);
        for (name, value) in attributes {
            debug_assert!(attribute_allowed(name), "attribute {name} is not allowed");
            if !attribute_allowed(name) {
                continue;
            }
            self.out.push(' ');
            self.out.push_str(name);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value);
            self.out.push('"');
        }
        self.out.push('>');
    }

    /// `<tag attr="value" …/>`, as [`Html::open`]: an element without content (in SVG).
    pub(crate) fn empty(&mut self, tag: &'static str, attributes: &[(&'static str, &str)]) {
        self.open(tag, attributes);
        self.out.pop();
        self.out.push_str("/>");
    }

    /// `</tag>`.
    pub(crate) fn close(&mut self, tag: &'static str) {
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push('>');
    }

    /// `<tag attributes>text</tag>`.
    pub(crate) fn element(
        &mut self,
        tag: &'static str,
        attributes: &[(&'static str, &str)],
        text: &str,
    ) {
        self.open(tag, attributes);
        self.text(text);
        self.close(tag);
    }

    /// Appends a part written on its own (through the same escaping).
    pub(crate) fn append(&mut self, part: Html) {
        self.out.push_str(&part.out);
    }

    /// How much has been written: a mark to go back to with [`Html::truncate`].
    pub(crate) fn len(&self) -> usize {
        self.out.len()
    }

    /// Drops what was written after the mark `len` (from [`Html::len`]): the part of a
    /// layout that failed half-way.
    pub(crate) fn truncate(&mut self, len: usize) {
        if self.out.is_char_boundary(len) {
            self.out.truncate(len);
        }
    }

    /// The page.
    pub(crate) fn into_string(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_become_references() {
        assert_eq!(
            escape(r#"<img src=x onerror="alert(1)">&'"#),
            "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;"
        );
        assert_eq!(
            escape("</script><script>alert(2)</script>"),
            "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;"
        );
        assert_eq!(escape("plain ü 中文 text"), "plain ü 中文 text");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(escape("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(escape("nul\0"), "nul\\u{0}");
        assert_eq!(escape("c1\u{85}x\u{9f}"), "c1\\u{85}x\\u{9f}");
        assert_eq!(escape("line\nnext\ttab"), "line\nnext\ttab");
        assert_eq!(escape("\u{7f}"), "\\u{7f}");
        // Not a C1 control: U+00A0..
        assert_eq!(escape("\u{a0}é"), "\u{a0}é");
    }

    #[test]
    fn attribute_names_are_gmrs_and_values_are_escaped() {
        let mut html = Html::default();
        html.open("span", &[("class", "a\" onclick=\"alert(1)")]);
        html.text("<b>");
        html.close("span");
        assert_eq!(
            html.into_string(),
            "<span class=\"a&quot; onclick=&quot;alert(1)\">&lt;b&gt;</span>"
        );
        for refused in [
            "onclick", "onerror", "href", "src", "style", "action", "srcdoc",
        ] {
            assert!(!attribute_allowed(refused), "{refused}");
        }
        assert!(
            ALLOWED_ATTRIBUTES
                .iter()
                .all(|a| !a.starts_with("on") && !a.contains("href") && !a.contains("src"))
        );
    }
}
