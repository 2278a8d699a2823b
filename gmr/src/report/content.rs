//! [`Content`]: the body of an application's own section, a tree of fields, groups, tables
//! and lines.

use serde_json::{Map, Value};

use super::{SectionBody, TextWriter};

/// The JSON key that records which fields are tables and which of their columns the text view
/// shows, so that a JSON report renders to the same text.
const TABLES_KEY: &str = "text_tables";

/// The widest a table cell is shown (the JSON keeps it whole).
const MAX_CELL: usize = 60;

/// The body of a section registered by the application: ordered fields (`key = value`),
/// nested groups, tables, and free text lines.
///
/// The text view shows fields as `key = value`, groups as `key:` followed by their fields
/// indented, lists of scalars inline, tables as aligned columns one row per line, and lines as
/// written; the JSON view is an object with the same fields in the same order (a table is an
/// array of objects, free text lines are under `"text"`).
///
/// ```
/// let body = gmr::Content::new()
///     .field("pool_size", 16)
///     .field("idle", 3)
///     .group("primary", gmr::Content::new().field("host", "db-1").field("lag_ms", 0))
///     .table(
///         "connections",
///         gmr::Table::new(["id", "state", "age"])
///             .row(gmr::Content::new().field("id", 1).field("state", "idle").field("age", "3s"))
///             .row(gmr::Content::new().field("id", 2).field("state", "busy").field("age", "12s")),
///     )
///     .line("last failover: never");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Content {
    fields: Map<String, Value>,
    lines: Vec<String>,
    /// Table fields and the columns the text view shows.
    tables: Map<String, Value>,
}

/// Rows of one kind: a table in the text view (the chosen columns, one row per line), an
/// array of objects in the JSON (every field of every row).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    columns: Vec<String>,
    rows: Vec<Value>,
}

impl Table {
    /// A table whose text view shows `columns`, in this order.
    pub fn new<C: Into<String>>(columns: impl IntoIterator<Item = C>) -> Self {
        Table {
            columns: columns.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row: its fields named as the columns are shown, all of them are in the JSON.
    #[must_use]
    pub fn row(mut self, row: Content) -> Self {
        self.rows.push(row.into_json());
        self
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
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

    /// Adds a table under `key`.
    #[must_use]
    pub fn table(mut self, key: impl Into<String>, table: Table) -> Self {
        let key = key.into();
        self.tables.insert(
            key.clone(),
            Value::Array(table.columns.into_iter().map(Value::String).collect()),
        );
        self.fields.insert(key, Value::Array(table.rows));
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
        if !self.tables.is_empty() {
            fields.insert(TABLES_KEY.to_owned(), Value::Object(self.tables));
        }
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
            Value::Object(mut fields) => {
                let tables = match fields.shift_remove(TABLES_KEY) {
                    Some(Value::Object(tables)) => tables,
                    _ => Map::new(),
                };
                Content {
                    fields,
                    lines: Vec::new(),
                    tables,
                }
            }
            Value::String(text) => Content {
                fields: Map::new(),
                lines: text.lines().map(str::to_owned).collect(),
                tables: Map::new(),
            },
            other => Content::new().field("value", other),
        }
    }
}

impl Content {
    /// The body of a registered section read back from a report's JSON view (`gmr view`):
    /// as [`From<Value>`](#impl-From<Value>-for-Content), and the free text lines, which the
    /// JSON keeps last under `text` (or `text_lines` when a field is named `text`), are lines
    /// again. A field of its own named `text`, last and holding only strings, reads back as
    /// lines too: the JSON view does not tell the two apart.
    pub(crate) fn from_report_json(value: Value) -> Content {
        let mut content = Content::from(value);
        let lines_key = match content.fields.keys().next_back().map(String::as_str) {
            Some("text_lines") => "text_lines",
            Some("text") if !content.fields.contains_key("text_lines") => "text",
            _ => return content,
        };
        let is_lines = matches!(
            content.fields.get(lines_key),
            Some(Value::Array(items)) if items.iter().all(Value::is_string)
        );
        if is_lines && let Some(Value::Array(items)) = content.fields.shift_remove(lines_key) {
            content.lines = items
                .into_iter()
                .filter_map(|item| match item {
                    Value::String(line) => Some(line),
                    _ => None,
                })
                .collect();
        }
        content
    }
}

impl SectionBody for Content {
    fn write_text(&self, out: &mut TextWriter) {
        for (key, value) in &self.fields {
            match (self.tables.get(key), value) {
                (Some(Value::Array(columns)), Value::Array(rows)) => {
                    write_table(out, key, columns, rows);
                }
                _ => write_value(out, key, value),
            }
        }
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

/// Writes `key:` and the rows as aligned columns, one row per line.
fn write_table(out: &mut TextWriter, key: &str, columns: &[Value], rows: &[Value]) {
    let columns: Vec<&str> = columns.iter().filter_map(Value::as_str).collect();
    if rows.is_empty() {
        out.kv(key, "(none)");
        return;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| cell(row.get(*c).unwrap_or(&Value::Null)))
                .collect()
        })
        .collect();
    let mut lines = align_rows(
        std::iter::once(columns.iter().map(|c| (*c).to_owned()).collect())
            .chain(cells)
            .collect::<Vec<Vec<String>>>()
            .as_slice(),
    )
    .into_iter();
    out.line(format_args!("{key}:"));
    out.indented(|out| {
        if let Some(header) = lines.next() {
            out.line(header);
        }
        for (row, text) in rows.iter().zip(lines) {
            out.line(text);
            // A row's own tables (a runtime's workers), under it.
            if let Some(Value::Object(inner)) = row.get(TABLES_KEY) {
                out.indented(|out| {
                    for (inner_key, inner_columns) in inner {
                        if let (Value::Array(c), Some(Value::Array(r))) =
                            (inner_columns, row.get(inner_key))
                        {
                            write_table(out, inner_key, c, r);
                        }
                    }
                });
            }
        }
    });
}

/// Rows of cells as lines with aligned columns (two spaces between columns, no trailing
/// spaces); the first row is usually the header. The layout of every table of a report's text
/// view, for tools that print tables beside it (`gmr summary`).
///
/// ```
/// let rows = vec![vec!["id".to_owned(), "path".to_owned()], vec!["1".to_owned(), "/block".to_owned()]];
/// assert_eq!(gmr::report::align_rows(&rows), ["id  path", "1   /block"]);
/// ```
pub fn align_rows(rows: &[Vec<String>]) -> Vec<String> {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let mut text = String::new();
            for (i, value) in row.iter().enumerate() {
                text.push_str(value);
                if i + 1 < row.len() {
                    let pad = widths[i].saturating_sub(value.chars().count());
                    text.push_str(&" ".repeat(pad + 2));
                }
            }
            text.trim_end().to_owned()
        })
        .collect()
}

/// A table cell: a scalar as the text shows it, `-` for none, cut to [`MAX_CELL`].
fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => "-".to_owned(),
        Value::Array(items) => items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        Value::Object(_) => "{…}".to_owned(),
        other => scalar(other),
    };
    if text.chars().count() > MAX_CELL {
        let mut short: String = text.chars().take(MAX_CELL - 1).collect();
        short.push('…');
        short
    } else {
        text
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
    fn tables_align_their_columns_and_round_trip_through_json() {
        let body = Content::new().field("count", 2).table(
            "requests",
            Table::new(["method", "path", "age"])
                .row(
                    Content::new()
                        .field("method", "GET")
                        .field("path", "/block")
                        .field("age", "2.1s")
                        .field("age_ms", 2100),
                )
                .row(
                    Content::new()
                        .field("method", "POST")
                        .field("path", "/orders/17")
                        .field("age", "0.3s")
                        .field("age_ms", 300),
                ),
        );
        let mut w = TextWriter::new();
        body.write_text(&mut w);
        assert_eq!(
            w.as_str(),
            "count = 2\nrequests:\n  method  path        age\n  GET     /block      2.1s\n  POST    /orders/17  0.3s\n"
        );
        let json = body.to_json();
        assert_eq!(
            json["requests"][0]["age_ms"], 2100,
            "every field is in the JSON"
        );
        assert_eq!(json["text_tables"]["requests"][1], "path");
        // The same text from the JSON.
        let mut again = TextWriter::new();
        Content::from(json).write_text(&mut again);
        assert_eq!(again.as_str(), w.as_str());
    }

    #[test]
    fn reads_back_from_its_json_to_the_same_text() {
        let bodies = [
            Content::new()
                .field("size", 16)
                .group("primary", Content::new().field("host", "db-1"))
                .table(
                    "rows",
                    Table::new(["id"]).row(Content::new().field("id", 1).field("x", 2)),
                )
                .line("free text")
                .line("more"),
            Content::new()
                .field("text", "a field named text")
                .line("a line"),
            Content::new().line("only lines"),
            Content::new().field("tags", vec!["a", "b"]),
        ];
        for body in bodies {
            let mut w = TextWriter::new();
            body.write_text(&mut w);
            let again = Content::from_report_json(body.to_json());
            let mut w2 = TextWriter::new();
            again.write_text(&mut w2);
            assert_eq!(w2.as_str(), w.as_str());
            assert_eq!(again.to_json(), body.to_json());
        }
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
