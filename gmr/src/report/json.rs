//! The JSON view (`docs/report-format.md`): one document per report.
//!
//! ```json
//! {
//!   "report_version": 2,
//!   "service": "billing", "version": "1.4.2", "host": "web-3", "pid": 4242,
//!   "generated_at": "2026-11-26T03:14:15Z", "trigger": "signal",
//!   "sections": [{"title": "Package", "key": "package"}, …],
//!   "package": { … }, "threads": { … }, …
//! }
//! ```
//!
//! A section whose generator failed is `{"error": "<message>"}` under its key.

use std::collections::HashSet;

use serde_json::{Map, Value, json};

use super::Report;

/// The header fields, which a section key must never shadow.
const HEADER_KEYS: &[&str] = &[
    "report_version",
    "service",
    "version",
    "host",
    "pid",
    "generated_at",
    "trigger",
    "sections",
];

pub(super) fn render(report: &Report) -> Value {
    let header = &report.header;
    let mut doc = Map::new();
    doc.insert("report_version".into(), json!(header.report_version));
    doc.insert("service".into(), json!(header.service));
    doc.insert("version".into(), json!(header.version));
    doc.insert("host".into(), json!(header.host));
    doc.insert("pid".into(), json!(header.pid));
    doc.insert("generated_at".into(), json!(header.generated_at));
    doc.insert("trigger".into(), json!(header.trigger.as_str()));

    let mut index = Vec::with_capacity(report.sections.len());
    let mut bodies = Vec::with_capacity(report.sections.len());
    for (section, key) in report.sections.iter().zip(section_keys(report)) {
        index.push(json!({ "title": section.title, "key": key }));
        let body = match &section.body {
            Ok(body) => super::isolate::catch(|| body.to_json())
                .unwrap_or_else(|panic| json!({ "error": format!("rendering panicked: {panic}") })),
            Err(error) => json!({ "error": error.to_string() }),
        };
        bodies.push((key, body));
    }
    doc.insert("sections".into(), Value::Array(index));
    for (key, body) in bodies {
        doc.insert(key, body);
    }
    Value::Object(doc)
}

/// The key of each section of `report` in its JSON document, in order: the title in
/// `snake_case`, with `_2`, `_3`, … for a key already taken (by a header field or an
/// earlier section).
pub(super) fn section_keys(report: &Report) -> Vec<String> {
    let mut used: HashSet<String> = HEADER_KEYS.iter().map(|k| (*k).to_owned()).collect();
    report
        .sections
        .iter()
        .map(|section| {
            let base = section.json_key();
            let mut key = base.clone();
            let mut n = 2;
            while !used.insert(key.clone()) {
                key = format!("{base}_{n}");
                n += 1;
            }
            key
        })
        .collect()
}

/// The JSON view, pretty-printed, with a final newline.
pub(super) fn render_string(report: &Report) -> String {
    let mut out = serde_json::to_string_pretty(&render(report)).unwrap_or_else(|e| {
        // Serialising a `serde_json::Value` cannot fail; keep a valid document regardless.
        format!("{{\"error\":\"cannot serialise report: {e}\"}}")
    });
    out.push('\n');
    out
}
