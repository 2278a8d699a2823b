//! The page: its head (the Content-Security-Policy, the style), the report's header, the
//! controls, the flame graph, every section in report order (each in its own layout,
//! [`crate::report::SectionBody::write_html`]), and the script.
//!
//! The style and the script are constants of gmr ([`STYLE`], [`SCRIPT`]), inline so that the
//! page is one self-contained file, and allowed by their SHA-256 in the page's
//! Content-Security-Policy (a `<meta>` of the page, so that it holds for a file opened from
//! disk too; the admin endpoint sends it as a header as well). Nothing from the report is in
//! either: the script reads the page, so no report content is ever script.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::escape::Html;
use super::flame::{self, FlameStack};
use super::generic;
use crate::report::json::section_keys;
use crate::report::{Report, Section, isolate};

/// The page's style sheet.
pub(super) const STYLE: &str = include_str!("page.css");

/// The page's script.
pub(super) const SCRIPT: &str = include_str!("page.js");

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

/// The page of `report`.
pub(super) fn render(report: &Report) -> String {
    let mut html = Html::with_capacity(64 * 1024);
    let header = report.header();
    let service = header.service.as_str();
    let host = header.host.as_str();
    let pid = header.pid;
    let generated_at = header.generated_at.as_str();

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
    if !header.version.is_empty() {
        html.text(" ");
        html.text(&header.version);
    }
    html.text_fmt(format_args!(
        " · host {host} · pid {pid} · {generated_at} · trigger {} · report version {}",
        header.trigger, header.report_version
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

    write_flame(&mut html, report);
    for (section, key) in report.sections().iter().zip(section_keys(report)) {
        write_section(&mut html, section, &key);
    }
    html.markup("</main><script>");
    html.markup(SCRIPT);
    html.markup("</script></body></html>\n");
    html.into_string()
}

/// The flame graph block: the stacks of every section that has some, or why there is none.
fn write_flame(html: &mut Html, report: &Report) {
    html.markup(
        "<details class=\"section\" open id=\"gmr-flame\"><summary><h2>Flame graph: every \
         thread and task stack</h2></summary><div class=\"body\">",
    );
    let drawn = isolate::catch(|| {
        let stacks: Vec<FlameStack> = report
            .sections()
            .iter()
            .filter_map(|s| s.body().ok())
            .flat_map(|body| body.flame_stacks())
            .collect();
        flame::draw(&stacks)
    });
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

/// One section: a collapsible block with the section's own layout (or the generic one of its
/// JSON); a section whose generator failed shows its error; a layout that panics falls back
/// to the generic layout with the panic's message.
fn write_section(html: &mut Html, section: &Section, key: &str) {
    html.open(
        "details",
        &[("class", "section"), ("open", ""), ("data-key", key)],
    );
    html.markup("<summary><h2>");
    html.text(section.title());
    html.markup("</h2></summary><div class=\"body\">");
    match section.body() {
        Err(error) => {
            html.element(
                "p",
                &[("class", "error")],
                &format!("(section failed: {error})"),
            );
        }
        Ok(body) => {
            // Written in place; a layout that panics half-way is cut back to where it began.
            let mark = html.len();
            let laid_out = isolate::catch(|| body.write_html(html));
            match laid_out {
                Ok(()) => {}
                Err(panic) => {
                    html.truncate(mark);
                    html.element(
                        "p",
                        &[("class", "error")],
                        &format!("(this section's layout failed: {panic}; its fields follow)"),
                    );
                    match isolate::catch(|| body.to_json()) {
                        Ok(value) => generic::write_value(html, &value),
                        Err(panic) => html.element(
                            "p",
                            &[("class", "error")],
                            &format!("(and its JSON failed: {panic})"),
                        ),
                    }
                }
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
