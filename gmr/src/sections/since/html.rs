//! The "since the last report" part in the HTML view: the text view's lines
//! ([`super::render`]) in a box at the top of `Threads` and of `Green Threads`, STUCK
//! highlighted. Made from the part's JSON (`threads.since`, `green_threads.since`), which is
//! small: a line per STUCK or busy thread and per request in flight in both.

use serde_json::Value;

use crate::report::html::Html;

/// The "since the last report" part, when a report has one, in a box of its own at the top of
/// its section: the lines of the text view (`threads.since`: STUCK and busy threads, counts,
/// threads that came and went; `green_threads.since`: requests in flight in both, counts,
/// tasks), STUCK highlighted.
pub(crate) fn write_since(html: &mut Html, since: &Value) {
    let seconds =
        |key: &str, v: &Value| format!("{:.1} s", v[key].as_u64().unwrap_or(0) as f64 / 1000.0);
    let count = |key: &str| since[key].as_u64().unwrap_or(0);
    let list = |key: &str| since[key].as_array().cloned().unwrap_or_default();
    html.open("div", &[("class", "since")]);
    html.element("h3", &[], "Since the last report");
    html.open("p", &[]);
    html.text_fmt(format_args!(
        "previous report {}, {} before",
        since["previous_report_at"].as_str().unwrap_or("?"),
        seconds("interval_ms", since)
    ));
    html.close("p");
    html.open("ul", &[]);
    if since.get("stuck").is_some() {
        for t in list("stuck") {
            html.open("li", &[("class", "stuck")]);
            html.text_fmt(format_args!(
                "STUCK ≥ {}  #{} \"{}\": same stack, not run since {}",
                seconds("stuck_ms", &t),
                t["tid"],
                t["name"].as_str().unwrap_or(""),
                t["since"].as_str().unwrap_or("?")
            ));
            html.close("li");
        }
        for t in list("busy") {
            html.open("li", &[]);
            html.text_fmt(format_args!(
                "busy  #{} \"{}\": cpu {} ({} % of the interval)",
                t["tid"],
                t["name"].as_str().unwrap_or(""),
                seconds("cpu_ms", &t),
                t["cpu_percent"]
            ));
            html.close("li");
        }
        html.open("li", &[]);
        html.text_fmt(format_args!(
            "{} STUCK, {} busy, {} idle, {} moved; {} new threads, {} gone",
            list("stuck").len(),
            list("busy").len() as u64 + count("busy_not_listed"),
            count("idle"),
            count("moved"),
            since["appeared"]["count"].as_u64().unwrap_or(0),
            since["vanished"]["count"].as_u64().unwrap_or(0)
        ));
        html.close("li");
        for (what, key) in [("new threads", "appeared"), ("gone", "vanished")] {
            let names: Vec<&str> = since[key]["threads"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if !names.is_empty() {
                html.open("li", &[]);
                html.text_fmt(format_args!("{what}: {}", names.join(", ")));
                html.close("li");
            }
        }
    } else {
        for r in list("requests") {
            html.open("li", &[("class", "stuck")]);
            html.text_fmt(format_args!(
                "in flight ≥ {}  request {}  {}",
                seconds("in_flight_ms", &r),
                r["id"],
                r["request"].as_str().unwrap_or("")
            ));
            html.close("li");
        }
        html.open("li", &[]);
        html.text_fmt(format_args!(
            "{} in flight in both, {} finished, {} new",
            list("requests").len(),
            count("requests_finished"),
            count("requests_new")
        ));
        html.close("li");
        for t in list("tasks") {
            html.open("li", &[]);
            html.text_fmt(format_args!(
                "tasks of \"{}\": {} in both, {} new, {} gone",
                t["runtime"].as_str().unwrap_or(""),
                t["common"],
                t["appeared"],
                t["vanished"]
            ));
            html.close("li");
        }
    }
    html.close("ul");
    html.close("div");
}
