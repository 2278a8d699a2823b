//! The generic layout of the HTML view: any JSON value as tables and lists. Every section
//! that the view has no layout of its own for (`Package`, `Processes`, `Configuration`, the
//! application's sections, a section of a newer gmr) renders this way, and so does every
//! field a known section has that the view does not know: the JSON keeps growing, and no value
//! of it is ever left out of the page.
//!
//! * an object is a two-column table of its fields (`text_tables`, the text view's column
//!   choice, is not shown; a `text` list of lines is shown as lines);
//! * a list of objects is a table, one row per item, with a column per field;
//! * a list of scalars is one comma-separated line;
//! * a string that starts with `STUCK` is highlighted, and so is a table row holding one.

use serde_json::{Map, Value};

use super::escape::Html;

/// How deep the layout nests tables; deeper values are shown as compact JSON.
const MAX_DEPTH: usize = 16;

/// The key of the text view's column choice in `Content` documents: not data.
const TABLES_KEY: &str = "text_tables";

/// Whether a string is a `STUCK …` verdict (highlighted wherever it appears).
pub(crate) fn is_stuck(text: &str) -> bool {
    text.starts_with("STUCK")
}

/// Writes `text`, highlighted if it is a `STUCK …` verdict.
pub(crate) fn write_str(html: &mut Html, text: &str) {
    if is_stuck(text) {
        html.element("span", &[("class", "stuck")], text);
    } else {
        html.text(text);
    }
}

/// Writes the fields of an object as a two-column table (nothing for no fields).
pub(crate) fn write_fields<'a>(
    html: &mut Html,
    fields: impl IntoIterator<Item = (&'a str, &'a Value)>,
) {
    write_fields_at(html, fields, 0);
}

fn write_fields_at<'a>(
    html: &mut Html,
    fields: impl IntoIterator<Item = (&'a str, &'a Value)>,
    depth: usize,
) {
    let mut open = false;
    for (key, value) in fields {
        if key == TABLES_KEY {
            continue;
        }
        if !open {
            html.open("table", &[("class", "kv")]);
            html.open("tbody", &[]);
            open = true;
        }
        html.open("tr", &[]);
        html.element("th", &[], key);
        html.open("td", &[]);
        if (key == "text" || key == "text_lines") && value.as_array().is_some_and(|a| all_str(a)) {
            write_lines(html, value);
        } else {
            write_value_at(html, value, depth + 1);
        }
        html.close("td");
        html.close("tr");
    }
    if open {
        html.close("tbody");
        html.close("table");
    }
}

/// Writes any value in the generic layout.
pub(crate) fn write_value(html: &mut Html, value: &Value) {
    write_value_at(html, value, 0);
}

fn write_value_at(html: &mut Html, value: &Value, depth: usize) {
    if depth > MAX_DEPTH {
        html.element("code", &[], &value.to_string());
        return;
    }
    match value {
        Value::Null => html.element("span", &[("class", "none")], "–"),
        Value::Bool(b) => html.text(if *b { "true" } else { "false" }),
        Value::Number(n) => html.text(&n.to_string()),
        Value::String(s) => write_str(html, s),
        Value::Array(items) if items.is_empty() => {
            html.element("span", &[("class", "none")], "(none)");
        }
        Value::Array(items) if items.iter().all(is_scalar) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    html.text(", ");
                }
                write_value_at(html, item, depth + 1);
            }
        }
        Value::Array(items) if items.iter().all(Value::is_object) => {
            write_rows(html, items, depth);
        }
        Value::Array(items) => {
            html.open("ol", &[("class", "items")]);
            for item in items {
                html.open("li", &[]);
                write_value_at(html, item, depth + 1);
                html.close("li");
            }
            html.close("ol");
        }
        Value::Object(fields) if fields.is_empty() => {
            html.element("span", &[("class", "none")], "(empty)");
        }
        Value::Object(fields) => {
            write_fields_at(html, fields.iter().map(|(k, v)| (k.as_str(), v)), depth);
        }
    }
}

/// A list of objects as a table: a column per field, in the order fields first appear.
fn write_rows(html: &mut Html, rows: &[Value], depth: usize) {
    let mut columns: Vec<&str> = Vec::new();
    for row in rows {
        if let Value::Object(fields) = row {
            for key in fields.keys() {
                if key != TABLES_KEY && !columns.contains(&key.as_str()) {
                    columns.push(key);
                }
            }
        }
    }
    html.open("table", &[("class", "rows")]);
    html.open("thead", &[]);
    html.open("tr", &[]);
    for column in &columns {
        html.element("th", &[], column);
    }
    html.close("tr");
    html.close("thead");
    html.open("tbody", &[]);
    let empty = Map::new();
    for row in rows {
        let fields = row.as_object().unwrap_or(&empty);
        let stuck = fields.values().any(|v| v.as_str().is_some_and(is_stuck));
        html.open("tr", &[("class", if stuck { "stuck-row" } else { "" })]);
        for column in &columns {
            html.open("td", &[]);
            if let Some(value) = fields.get(*column) {
                write_value_at(html, value, depth + 1);
            }
            html.close("td");
        }
        html.close("tr");
    }
    html.close("tbody");
    html.close("table");
}

/// Free text lines, one per line.
fn write_lines(html: &mut Html, lines: &Value) {
    html.open("div", &[("class", "lines")]);
    for line in lines.as_array().into_iter().flatten() {
        html.open("div", &[]);
        write_str(html, line.as_str().unwrap_or(""));
        html.close("div");
    }
    html.close("div");
}

fn all_str(items: &[Value]) -> bool {
    items.iter().all(Value::is_string)
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Object(_) | Value::Array(_))
}

/// An object's fields, with the ones a layout reads marked, so that the rest can be shown in
/// the generic layout: a field gmr does not know yet is never lost.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    fields: Option<&'a Map<String, Value>>,
    read: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    /// The fields of `value` (none if it is not an object).
    pub(crate) fn of(value: &'a Value) -> Self {
        Fields {
            fields: value.as_object(),
            read: Vec::new(),
        }
    }

    /// Field `key`, marked as read.
    pub(crate) fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        if !self.read.contains(&key) {
            self.read.push(key);
        }
        self.fields?.get(key).filter(|v| !v.is_null())
    }

    /// Field `key` as a string, marked as read.
    pub(crate) fn str(&mut self, key: &'static str) -> Option<&'a str> {
        self.get(key).and_then(Value::as_str)
    }

    /// Field `key` as an unsigned integer, marked as read.
    pub(crate) fn u64(&mut self, key: &'static str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    /// Field `key` as a list, marked as read (empty if absent).
    pub(crate) fn list(&mut self, key: &'static str) -> &'a [Value] {
        self.get(key)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// Field `key` as a boolean, marked as read.
    pub(crate) fn bool(&mut self, key: &'static str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// Marks fields as read without reading them (shown some other way).
    pub(crate) fn skip(&mut self, keys: &[&'static str]) {
        for key in keys {
            let _ = self.get(key);
        }
    }

    /// The fields not read, in document order, nulls left out.
    pub(crate) fn rest(&self) -> Vec<(&'a str, &'a Value)> {
        self.fields
            .into_iter()
            .flatten()
            .filter(|(k, v)| !self.read.contains(&k.as_str()) && !v.is_null())
            .map(|(k, v)| (k.as_str(), v))
            .collect()
    }
}

/// Problems worth telling the reader, one per line.
pub(crate) fn write_notes(html: &mut Html, notes: &[Value]) {
    if notes.is_empty() {
        return;
    }
    html.open("ul", &[("class", "notes")]);
    for note in notes {
        html.open("li", &[]);
        html.text("note: ");
        match note.as_str() {
            Some(text) => write_str(html, text),
            None => write_value(html, note),
        }
        html.close("li");
    }
    html.close("ul");
}

/// The fields of a section the view does not lay out, in the generic layout.
pub(crate) fn write_rest(html: &mut Html, fields: &Fields<'_>) {
    let rest = fields.rest();
    if !rest.is_empty() {
        html.open("div", &[("class", "more")]);
        write_fields(html, rest);
        html.close("div");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(value: &Value) -> String {
        let mut html = Html::default();
        write_value(&mut html, value);
        html.into_string()
    }

    #[test]
    fn objects_lists_and_tables() {
        let value = serde_json::json!({
            "pool": {"size": 4, "name": "db"},
            "tags": ["a", "b"],
            "none": [],
            "missing": null,
            "conns": [{"id": 1, "state": "idle"}, {"id": 2, "age": "3s", "state": "STUCK 3 s"}],
            "text_tables": {"conns": ["id"]},
            "text": ["free <line>"],
        });
        let out = render(&value);
        assert!(
            out.starts_with("<table class=\"kv\"><tbody><tr><th>pool</th><td><table class=\"kv\">"),
            "{out}"
        );
        assert!(out.contains("<th>tags</th><td>a, b</td>"), "{out}");
        assert!(out.contains("<th>none</th><td><span class=\"none\">(none)</span></td>"));
        assert!(
            out.contains("<thead><tr><th>id</th><th>state</th><th>age</th></tr></thead>"),
            "{out}"
        );
        assert!(out.contains("<tr class=\"stuck-row\"><td>2</td><td><span class=\"stuck\">STUCK 3 s</span></td><td>3s</td></tr>"), "{out}");
        assert!(!out.contains("text_tables"));
        assert!(
            out.contains("<div class=\"lines\"><div>free &lt;line&gt;</div></div>"),
            "{out}"
        );
    }

    #[test]
    fn deep_values_end_as_compact_json() {
        let mut value = serde_json::json!("<leaf>");
        for _ in 0..40 {
            value = serde_json::json!({ "k": value });
        }
        let out = render(&value);
        assert!(out.contains("<code>"), "{out}");
        assert!(out.contains("&lt;leaf&gt;") && !out.contains("<leaf>"));
    }

    #[test]
    fn fields_not_read_are_the_rest() {
        let value = serde_json::json!({"a": 1, "b": "x", "c": null, "d": [1]});
        let mut fields = Fields::of(&value);
        assert_eq!(fields.u64("a"), Some(1));
        assert_eq!(fields.str("zz"), None);
        let rest: Vec<&str> = fields.rest().into_iter().map(|(k, _)| k).collect();
        assert_eq!(rest, vec!["b", "d"]);
    }
}
