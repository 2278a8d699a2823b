//! [`Content`]: the body of an application's own section, a tree of fields, groups and lines.

use serde_json::{Map, Value};

use super::{SectionBody, TextWriter};

/// The body of a section registered by the application: ordered fields (`key = value`),
/// nested groups, and free text lines.
///
/// The text view shows fields as `key = value`, groups as `key:` followed by their fields
/// indented, lists of scalars inline, and lines as written; the JSON view is an object with the
/// same fields in the same order (free text lines under `"text"`).
///
/// ```
/// let body = gmr::Content::new()
///     .field("pool_size", 16)
///     .field("idle", 3)
///     .group("primary", gmr::Content::new().field("host", "db-1").field("lag_ms", 0))
///     .line("last failover: never");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Content {
    fields: Map<String, Value>,
    lines: Vec<String>,
}

impl Content {
    /// An empty body.
    pub fn new() -> Self {
        Content::default()
    }

    /// Adds `key = value`. Any value that converts to JSON works: strings, numbers, booleans,
    /// `Option`s, vectors. A repeated key replaces the earlier value in place.
    #[must_use]
    pub fn field(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// Adds a nested group under `key`.
    #[must_use]
    pub fn group(mut self, key: impl Into<String>, group: Content) -> Self {
        self.fields.insert(key.into(), group.into_json());
        self
    }

    /// Adds a free text line.
    #[must_use]
    pub fn line(mut self, text: impl Into<String>) -> Self {
        self.lines.push(text.into());
        self
    }

    /// A body from any serialisable value: a struct's fields become the section's fields.
    ///
    /// # Errors
    ///
    /// The `serde_json` error if the value cannot be serialised (e.g. a map with non-string keys).
    pub fn from_serialize<T: serde::Serialize + ?Sized>(
        value: &T,
    ) -> Result<Self, serde_json::Error> {
        Ok(Content::from(serde_json::to_value(value)?))
    }

    /// Whether the body has neither fields nor lines.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.lines.is_empty()
    }

    fn into_json(self) -> Value {
        let mut fields = self.fields;
        if !self.lines.is_empty() {
            let key = if fields.contains_key("text") {
                "text_lines"
            } else {
                "text"
            };
            fields.insert(
                key.to_owned(),
                Value::Array(self.lines.into_iter().map(Value::String).collect()),
            );
        }
        Value::Object(fields)
    }
}

impl From<Value> for Content {
    fn from(value: Value) -> Self {
        match value {
            Value::Object(fields) => Content {
                fields,
                lines: Vec::new(),
            },
            Value::String(text) => Content {
                fields: Map::new(),
                lines: text.lines().map(str::to_owned).collect(),
            },
            other => Content::new().field("value", other),
        }
    }
}

impl SectionBody for Content {
    fn write_text(&self, out: &mut TextWriter) {
        write_fields(out, &self.fields);
        for line in &self.lines {
            out.line(line);
        }
    }

    fn to_json(&self) -> Value {
        self.clone().into_json()
    }
}

/// Writes an object's fields in the generic layout shared by [`Content`] and built-in sections.
pub(crate) fn write_fields(out: &mut TextWriter, fields: &Map<String, Value>) {
    for (key, value) in fields {
        write_value(out, key, value);
    }
}

/// Writes one `key = value`, or `key:` and a nested block for objects and lists of objects.
fn write_value(out: &mut TextWriter, key: &str, value: &Value) {
    match value {
        Value::Object(fields) if fields.is_empty() => out.kv(key, "(empty)"),
        Value::Object(fields) => {
            out.line(format_args!("{key}:"));
            out.indented(|out| write_fields(out, fields));
        }
        Value::Array(items) if items.iter().all(is_scalar) => {
            let inline = items.iter().map(scalar).collect::<Vec<_>>().join(", ");
            if inline.len() + key.len() + 5 <= super::text::WIDTH {
                out.kv(key, format_args!("[{inline}]"));
            } else {
                out.line(format_args!("{key}:"));
                out.indented(|out| {
                    for item in items {
                        out.line(format_args!("- {}", scalar(item)));
                    }
                });
            }
        }
        Value::Array(items) => {
            out.line(format_args!("{key}:"));
            out.indented(|out| {
                for (i, item) in items.iter().enumerate() {
                    write_value(out, &format!("[{i}]"), item);
                }
            });
        }
        other => out.kv(key, scalar(other)),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Object(_) | Value::Array(_))
}

/// A scalar as the text view shows it: strings without quotes, `null` as `(none)`.
pub(crate) fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "(none)".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_layout() {
        let body = Content::new()
            .field("size", 16)
            .field("name", "pool")
            .field("tags", vec!["a", "b"])
            .field("missing", Value::Null)
            .group("primary", Content::new().field("host", "db-1"))
            .line("free text");
        let mut w = TextWriter::new();
        body.write_text(&mut w);
        assert_eq!(
            w.as_str(),
            "size = 16\nname = pool\ntags = [a, b]\nmissing = (none)\nprimary:\n  host = db-1\nfree text\n"
        );
    }

    #[test]
    fn json_keeps_order_and_lines() {
        let body = Content::new().field("z", 1).field("a", 2).line("x");
        let json = body.to_json();
        let keys: Vec<_> = json
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(keys, vec!["z", "a", "text"]);
        assert_eq!(json["text"][0], "x");
    }

    #[test]
    fn long_scalar_lists_go_one_per_line() {
        let items: Vec<String> = (0..20).map(|i| format!("item-number-{i}")).collect();
        let mut w = TextWriter::new();
        Content::new().field("items", items).write_text(&mut w);
        assert!(w.as_str().starts_with("items:\n  - item-number-0\n"));
    }

    #[test]
    fn from_serialize_uses_struct_fields() {
        #[derive(serde::Serialize)]
        struct Pool {
            size: u32,
            name: &'static str,
        }
        let body = Content::from_serialize(&Pool { size: 4, name: "p" }).expect("serialises");
        assert_eq!(body.to_json()["size"], 4);
    }
}
