//! The page: its head (the Content-Security-Policy, the style), the report's header, the
//! controls, the flame graph, every section in report order, and the script.
//!
//! The style and the script are constants of gmr ([`STYLE`], [`SCRIPT`]), inline so that the
//! page is one self-contained file, and allowed by their SHA-256 in the page's
//! Content-Security-Policy (a `<meta>` of the page, so that it holds for a file opened from
//! disk too; the admin endpoint sends it as a header as well). Nothing from the report is in
//! either: the script reads the page, so no report content is ever script.

use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::escape::Html;
use super::flame;
use super::generic::{self, Fields};
use super::{green, threads};
use crate::report::isolate;

/// The page's style sheet.
pub(super) const STYLE: &str = include_str!("page.css");

/// The page's script.
pub(super) const SCRIPT: &str = include_str!("page.js");

/// The header fields of the JSON document (not sections).
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

/// `'sha256-…'` of `source`, as a CSP source expression.
fn hash_source(source: &str) -> String {
    format!("'sha256-{}'", base64(&Sha256::digest(source.as_bytes())))
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The policy in the page's `<meta>`: nothing loads, only gmr's own style and script run.
pub(super) fn meta_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        format!(
            "default-src 'none'; script-src {}; style-src {}; base-uri 'none'; form-action 'none'",
            hash_source(SCRIPT),
            hash_source(STYLE)
        )
    })
}

/// The policy the admin endpoint sends with the page: the `<meta>` one, and no framing
/// (which a `<meta>` cannot say).
pub(super) fn header_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| format!("{}; frame-ancestors 'none'", meta_policy()))
}

/// A section of the document: its title and key, in report order.
struct SectionRef<'a> {
    title: &'a str,
    key: &'a str,
}

/// The sections of `doc` in report order: its `sections` index, else every field that is not
/// a header field.
fn sections(doc: &Value) -> Vec<SectionRef<'_>> {
    let indexed: Vec<SectionRef<'_>> = doc
        .get("sections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let key = s.get("key")?.as_str()?;
            let title = s.get("title").and_then(Value::as_str).unwrap_or(key);
            Some(SectionRef { title, key })
        })
        .collect();
    let mut out = indexed;
    // Fields the index does not list are sections too (a document written by hand, or cut).
    for key in doc.as_object().into_iter().flat_map(|o| o.keys()) {
        if !HEADER_KEYS.contains(&key.as_str()) && !out.iter().any(|s| s.key == key) {
            out.push(SectionRef { title: key, key });
        }
    }
    out
}

/// The page of the JSON report `doc`.
pub(super) fn render(doc: &Value) -> String {
    let mut html = Html::with_capacity(64 * 1024);
    let mut header = Fields::of(doc);
    let service = header.str("service").unwrap_or("?");
    let version = header.str("version");
    let host = header.str("host").unwrap_or("?");
    let pid = header.get("pid").map(Value::to_string).unwrap_or_default();
    let generated_at = header.str("generated_at").unwrap_or("?");
    let trigger = header.str("trigger").unwrap_or("?");
    let report_version = header
        .get("report_version")
        .map(Value::to_string)
        .unwrap_or_default();
    header.skip(&["sections"]);

    html.markup("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    html.open(
        "meta",
        &[
            ("http-equiv", "Content-Security-Policy"),
            ("content", meta_policy()),
        ],
    );
    html.markup(
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">",
    );
    html.open("title", &[]);
    html.text_fmt(format_args!(
        "Guru Meditation: {service} on {host} (pid {pid}), {generated_at}"
    ));
    html.close("title");
    html.markup("<style>");
    html.markup(STYLE);
    html.markup("</style></head><body>");

    html.markup("<header class=\"top\"><h1>Guru Meditation Report</h1>");
    html.open("p", &[("class", "meta")]);
    html.element("b", &[], service);
    if let Some(version) = version {
        html.text(" ");
        html.text(version);
    }
    html.text_fmt(format_args!(
        " · host {host} · pid {pid} · {generated_at} · trigger {trigger} · report version {report_version}"
    ));
    html.close("p");
    html.markup(
        "<div class=\"tools\"><input type=\"search\" id=\"gmr-search\" \
         placeholder=\"Search frames, threads and requests ( / )\" autocomplete=\"off\" \
         spellcheck=\"false\" aria-label=\"Search frames, threads and requests\">\
         <span id=\"gmr-count\"></span>\
         <button type=\"button\" id=\"gmr-expand\">Expand all</button>\
         <button type=\"button\" id=\"gmr-collapse\">Collapse all</button></div></header><main>",
    );
    let extra = header.rest();
    let extra: Vec<(&str, &Value)> = extra
        .into_iter()
        .filter(|(k, _)| !sections(doc).iter().any(|s| s.key == *k))
        .collect();

    write_flame(&mut html, doc);

    for section in sections(doc) {
        let Some(value) = doc.get(section.key) else {
            continue;
        };
        write_section(&mut html, &section, value);
    }
    if !extra.is_empty() {
        html.markup("<details class=\"section\" open><summary><h2>Other fields</h2></summary><div class=\"body\">");
        generic::write_fields(&mut html, extra);
        html.markup("</div></details>");
    }
    html.markup("</main><script>");
    html.markup(SCRIPT);
    html.markup("</script></body></html>\n");
    html.into_string()
}

/// The flame graph block, or why there is none.
fn write_flame(html: &mut Html, doc: &Value) {
    html.markup(
        "<details class=\"section\" open id=\"gmr-flame\"><summary><h2>Flame graph: every \
         thread and task stack</h2></summary><div class=\"body\">",
    );
    let drawn = isolate::catch(|| flame::draw(&flame::collect(doc)));
    match drawn {
        Ok(Ok(svg)) => {
            html.markup(
                "<div class=\"flame-bar\"><span id=\"gmr-flame-info\"></span>\
                 <button type=\"button\" id=\"gmr-flame-reset\" hidden>Reset zoom</button></div>\
                 <div class=\"legend\"><span><i class=\"k-application\"></i>application</span>\
                 <span><i class=\"k-library\"></i>library</span>\
                 <span><i class=\"k-framework\"></i>runtime, framework</span>\
                 <span><i class=\"k-std\"></i>std</span><span><i class=\"k-system\"></i>system</span>\
                 <span><i class=\"k-leaf\"></i>stack group (width: threads or tasks)</span>\
                 <span>Click a frame to zoom into it.</span></div>",
            );
            html.markup("<div class=\"fg-wrap\">");
            html.append(svg);
            html.markup("</div>");
        }
        Ok(Err(why)) => {
            html.element("p", &[("class", "none")], &why.to_string());
        }
        Err(panic) => {
            html.element(
                "p",
                &[("class", "error")],
                &format!("the flame graph failed: {panic}"),
            );
        }
    }
    html.markup("</div></details>");
}

/// One section: a collapsible block with its layout (`Threads`, `Green Threads`) or the
/// generic one; a section whose generator failed shows its error; a layout that panics
/// falls back to the generic layout with the panic's message.
fn write_section(html: &mut Html, section: &SectionRef<'_>, value: &Value) {
    html.open(
        "details",
        &[
            ("class", "section"),
            ("open", ""),
            ("data-key", section.key),
        ],
    );
    html.markup("<summary><h2>");
    html.text(section.title);
    html.markup("</h2></summary><div class=\"body\">");
    let failed = value
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("error"))
        .and_then(Value::as_str);
    if let Some(error) = failed {
        html.element(
            "p",
            &[("class", "error")],
            &format!("(section failed: {error})"),
        );
    } else {
        let layout = |value: &Value| -> Html {
            let mut part = Html::with_capacity(16 * 1024);
            match section.key {
                "threads" => threads::write(&mut part, value),
                "green_threads" => green::write(&mut part, value),
                _ => generic::write_value(&mut part, value),
            }
            part
        };
        match isolate::catch(|| layout(value)) {
            Ok(part) => html.append(part),
            Err(panic) => {
                html.element(
                    "p",
                    &[("class", "error")],
                    &format!("(this section's layout failed: {panic}; its fields follow)"),
                );
                generic::write_value(html, value);
            }
        }
    }
    html.markup("</div></details>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        // sha256("") in base64, as browsers compute a CSP hash.
        assert_eq!(
            hash_source(""),
            "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
        );
    }

    #[test]
    fn the_policy_allows_only_the_pages_own_style_and_script() {
        let policy = meta_policy();
        assert!(policy.starts_with("default-src 'none'; script-src 'sha256-"));
        assert!(!policy.contains("unsafe"));
        assert!(!policy.contains("frame-ancestors"), "ignored in <meta>");
        assert!(header_policy().ends_with("; frame-ancestors 'none'"));
        assert!(policy.contains(&hash_source(SCRIPT)));
        assert!(policy.contains(&hash_source(STYLE)));
        // The script writes no markup.
        assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("outerHTML"));
        assert!(!SCRIPT.contains("insertAdjacentHTML") && !SCRIPT.contains("document.write"));
        assert!(!SCRIPT.contains("eval(") && !SCRIPT.contains("Function("));
    }
}
