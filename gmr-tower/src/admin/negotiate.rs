//! Which format an admin request asks for: `?format=` first, then `Accept`. Every format of
//! [`gmr::OutputFormat`] is offered; none is listed here.

use gmr::OutputFormat;

/// The `format` query parameter: `Ok(None)` when absent. Any other parameter, a repeated or
/// malformed one, or an unknown format is an error message for a `400`.
pub(super) fn parse_query(query: Option<&str>) -> Result<Option<OutputFormat>, &'static str> {
    let Some(query) = query else { return Ok(None) };
    if query.len() > 256 {
        return Err("query string too long; the only parameter is format=<format>");
    }
    let mut format = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "format" {
            return Err("unknown query parameter; the only parameter is format=<format>");
        }
        if format.is_some() {
            return Err("format given twice; give format=<format> once");
        }
        format = Some(OutputFormat::from_name(value).ok_or_else(unknown_format)?);
    }
    Ok(format)
}

/// The message for an unknown `format=`: the formats there are.
fn unknown_format() -> &'static str {
    static MESSAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MESSAGE.get_or_init(|| {
        let names: Vec<String> = OutputFormat::ALL
            .iter()
            .map(|f| format!("format={}", f.name()))
            .collect();
        format!("unknown format; use one of {}", names.join(", "))
    })
}

/// The format `Accept` prefers (by q-value), the default format (text) on a tie, for `*/*`,
/// `text/*`, and when nothing listed is a format gmr has.
pub(super) fn negotiate(accept: Option<&[u8]>) -> OutputFormat {
    let default = OutputFormat::default();
    let Some(accept) = accept.and_then(|a| std::str::from_utf8(a).ok()) else {
        return default;
    };
    let mut best = (default, 0.0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        let format = match media.as_str() {
            "*/*" | "text/*" => Some(default),
            media => OutputFormat::ALL
                .iter()
                .copied()
                .find(|f| f.media_type() == media),
        };
        if let Some(format) = format
            && (q > best.1 || (q == best.1 && q > 0.0 && format == default))
        {
            best = (format, q);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        assert_eq!(parse_query(None), Ok(None));
        assert_eq!(parse_query(Some("")), Ok(None));
        assert_eq!(
            parse_query(Some("format=json")),
            Ok(Some(OutputFormat::Json))
        );
        assert_eq!(
            parse_query(Some("format=TEXT")),
            Ok(Some(OutputFormat::Text))
        );
        assert_eq!(
            parse_query(Some("&format=json&")),
            Ok(Some(OutputFormat::Json))
        );
        for junk in [
            "format=xml",
            "format",
            "format=json&format=text",
            "x=1",
            "format=json&debug=1",
            "%ff%fe",
            "format=%6Aso%6E",
            "=",
            "a=b=c",
        ] {
            assert!(parse_query(Some(junk)).is_err(), "{junk}");
        }
        assert!(parse_query(Some(&"a".repeat(10_000))).is_err());
        assert!(
            parse_query(Some("format=xml")).is_err_and(
                |m| m.starts_with("unknown format; use one of format=text, format=json")
            )
        );
    }

    #[cfg(feature = "html")]
    #[test]
    fn html_by_query_and_by_a_browsers_accept() {
        assert_eq!(
            parse_query(Some("format=html")),
            Ok(Some(OutputFormat::Html))
        );
        assert_eq!(
            parse_query(Some("format=xml")),
            Err("unknown format; use one of format=text, format=json, format=html")
        );
        assert_eq!(negotiate(Some(b"text/html")), OutputFormat::Html);
        // What a browser sends for a page.
        assert_eq!(
            negotiate(Some(
                b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
            )),
            OutputFormat::Html
        );
        assert_eq!(
            negotiate(Some(b"text/html;q=0.5, text/plain")),
            OutputFormat::Text
        );
        assert_eq!(
            negotiate(Some(b"text/html, application/json")),
            OutputFormat::Html,
            "first of equals that is not the default: as for JSON"
        );
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(negotiate(None), OutputFormat::Text);
        assert_eq!(negotiate(Some(b"application/json")), OutputFormat::Json);
        assert_eq!(
            negotiate(Some(b"text/plain, application/json")),
            OutputFormat::Text
        );
        assert_eq!(
            negotiate(Some(b"text/plain;q=0.5, application/json")),
            OutputFormat::Json
        );
        assert_eq!(negotiate(Some(b"*/*")), OutputFormat::Text);
        assert_eq!(negotiate(Some(b"application/json;q=0")), OutputFormat::Text);
        assert_eq!(negotiate(Some(b"\xff\xfe")), OutputFormat::Text);
        assert_eq!(negotiate(Some(b";;;,,,q=")), OutputFormat::Text);
    }
}
