//! Tests of the whole page: a demo report renders completely, nothing in a report can become
//! markup, unknown parts render generically, the flame graph has a leaf per stack group.

use serde_json::{Value, json};

/// The page of a report file's document, as `gmr view --format html` makes it.
fn render(doc: &Value) -> String {
    let report = crate::Report::from_json(doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
    super::render(&report)
}

/// A report of `axum-demo` with requests in flight, task stacks and spans.
fn demo() -> Value {
    let text = include_str!("../../../tests/html/report.json");
    serde_json::from_str(text).expect("the test report is JSON")
}

/// What an attacker puts in a value.
const PAYLOADS: [&str; 3] = [
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(2)</script>",
    "javascript:alert(3)",
];

/// Fields whose value is not free text but one of a few words or a time: a report with
/// anything else there is refused when read (`Report::from_json`), so no payload can be in them;
/// and the index of sections, whose titles choose each section's layout.
const NOT_TEXT: &[&str] = &["generated_at", "trigger", "kind", "sections"];

/// `value` with every free-text string replaced by a payload, in turn.
fn poison(value: &mut Value, n: &mut usize) {
    match value {
        Value::String(s) => {
            *s = format!("{} {}", PAYLOADS[*n % PAYLOADS.len()], s);
            *n += 1;
        }
        Value::Array(items) => items.iter_mut().for_each(|v| poison(v, n)),
        Value::Object(fields) => fields
            .iter_mut()
            .filter(|(k, _)| !NOT_TEXT.contains(&k.as_str()))
            .for_each(|(_, v)| poison(v, n)),
        _ => {}
    }
}

/// `value` with every key given a payload (sections are then unknown: generic layout).
fn poison_keys(value: &Value, n: &mut usize) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(|v| poison_keys(v, n)).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| {
                    *n += 1;
                    (
                        format!("{k}{}", PAYLOADS[*n % PAYLOADS.len()]),
                        poison_keys(v, n),
                    )
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Elements gmr's page is made of.
const ELEMENTS: &[&str] = &[
    "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "h3", "p",
    "b", "div", "span", "input", "button", "main", "details", "summary", "table", "thead", "tbody",
    "tr", "th", "td", "ul", "ol", "li", "code", "i", "script", "svg", "g", "rect", "text",
];

/// The tags of `page` (`<…>`), the inside of its style and script left out.
fn tags(page: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find('<') {
        let after = &rest[at + 1..];
        let end = after.find('>').expect("every tag ends");
        let tag = &after[..end];
        out.push(tag);
        rest = &after[end + 1..];
        for raw in ["style", "script"] {
            if tag == raw {
                let close = rest.find(&format!("</{raw}>")).expect("closed");
                rest = &rest[close..];
            }
        }
    }
    out
}

/// The markup of `page` is only gmr's: one script (its own), and every element and every
/// attribute one that gmr writes: none made of a payload, no handler, no `href` or `src`.
fn assert_only_gmrs_markup(page: &str) {
    assert_eq!(page.matches("<script>").count(), 1, "only gmr's own script");
    for tag in tags(page) {
        let tag = tag.trim_end_matches('/');
        let name = tag.trim_start_matches('/').split(' ').next().unwrap_or("");
        assert!(ELEMENTS.contains(&name), "element <{tag}> is not gmr's");
        if name == "!DOCTYPE" {
            continue;
        }
        // Attributes: name="value" (values never hold a raw quote) or a bare name.
        let mut attrs = tag[tag.find(' ').map_or(tag.len(), |i| i)..].trim();
        while !attrs.is_empty() {
            let end = attrs.find(['=', ' ']).unwrap_or(attrs.len());
            let attr = &attrs[..end];
            assert!(
                super::escape::attribute_allowed(attr) || attr == "open" || attr == "hidden",
                "attribute {attr} in <{tag}>"
            );
            attrs = &attrs[end..];
            if let Some(value) = attrs.strip_prefix("=\"") {
                let close = value.find('"').expect("quoted value");
                assert!(
                    !value[..close].contains('<'),
                    "raw < in an attribute of <{tag}>"
                );
                attrs = &value[close + 1..];
            }
            attrs = attrs.trim_start();
        }
    }
    // Payloads are there, as text.
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(page.contains("&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;"));
    assert!(page.contains("javascript:alert(3)"));
}

#[test]
fn the_demo_report_renders_every_part() {
    let page = render(&demo());
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"));
    assert!(page.ends_with("</script></body></html>\n"));
    for title in [
        "Package",
        "Threads",
        "Green Threads",
        "Processes",
        "Configuration",
    ] {
        assert!(page.contains(&format!("<h2>{title}</h2>")), "{title}");
    }
    // The flame graph, sanitized.
    assert!(page.contains("<svg width=\"1200\""), "no flame graph");
    for gone in [
        "<?xml",
        "<!DOCTYPE svg",
        "onload",
        "<style type",
        "ecmascript",
        "xmlns",
        "<!--",
    ] {
        assert!(!page.contains(gone), "{gone}");
    }
    // Threads: groups collapsed, with their threads and frames.
    assert!(page.contains("<details class=\"group unit\" data-group=\"0\">"));
    assert!(page.contains(">demo_parked_worker") || page.contains("demo_parked_worker<"));
    // Requests, the oldest first, STUCK highlighted.
    let oldest = page.find("/await-lock</td>").expect("request /await-lock");
    let stuck = page.find("/block</td>").expect("request /block");
    let young = page.find("/slow</td>").expect("request /slow");
    assert!(oldest < stuck && stuck < young, "sorted by age");
    assert!(page.contains("<span class=\"stuck\">STUCK 5.0 s in one poll</span>"));
    assert!(page.contains("<tbody class=\"unit req stuck-row\">"));
    assert!(page.contains("waiting in `await_lock` for 62.0 s"));
    assert!(page.contains("request{method=GET}</code> &gt; <code"));
    // Task stacks, under the request and grouped.
    assert!(page.contains("task 23 stack"));
    assert!(page.contains("2 tasks with this stack"));
    assert!(page.contains("nightly_job{batch=7}"));
    assert!(page.contains("<h3>db pool</h3>"));
}

#[test]
fn task_stacks_without_application_code_are_one_line_each() {
    let mut doc = demo();
    let groups = &mut doc["green_threads"]["tasks"][0]["groups"];
    // The connection's I/O next to the handler's stacks; a task with no stack at all.
    groups[1]["traces"].as_array_mut().expect("traces").push(json!([
        {"name": "tokio::io::PollEvented<E>::poll_read", "address": "0x1", "kind": "framework", "crate": "tokio", "inlined": false},
        {"name": "hyper::proto::h1::conn::Conn<I,B,T>::poll_read", "address": "0x2", "kind": "framework", "crate": "hyper", "inlined": false},
    ]));
    groups
        .as_array_mut()
        .expect("groups")
        .push(json!({"tasks": [99], "traces": []}));
    let page = render(&doc);
    assert!(page.contains(
        "<details class=\"fold also\"><summary>also awaiting: \
         tokio::io::PollEvented&lt;E&gt;::poll_read (2 frames in tokio, hyper)</summary>"
    ));
    // Under the request of task 24 and in the runtime's groups; the handler's two stacks in
    // full in both.
    assert_eq!(page.matches("also awaiting").count(), 2);
    assert!(page.contains("(no stack: the task awaits no tokio resource"));
    assert!(page.contains("<h3>in-flight requests (axum)</h3>"));
}

#[test]
fn nothing_in_a_value_becomes_markup() {
    let mut doc = demo();
    let mut n = 0;
    poison(&mut doc, &mut n);
    assert!(n > 1000, "every string poisoned: {n}");
    let page = render(&doc);
    assert_only_gmrs_markup(&page);
    // Frame names went through inferno too.
    assert!(
        page.contains("<svg width=\"1200\""),
        "the flame graph is drawn"
    );
}

#[test]
fn nothing_in_a_key_becomes_markup() {
    // Keys that are not gmr's: configuration keys, the fields of a generic section, the
    // fields and the title of an application's section.
    let mut doc = demo();
    let mut n = 0;
    doc["configuration"]["values"] = poison_keys(&doc["configuration"]["values"], &mut n);
    doc["processes"] = poison_keys(&doc["processes"], &mut n);
    doc["sections"]
        .as_array_mut()
        .expect("sections")
        .push(json!({"title": "DB pool <img src=x onerror=alert(1)>", "key": "db_pool"}));
    doc["db_pool"] = poison_keys(
        &json!({"connections": [{"id": 1, "state": "busy"}], "text": ["one line"]}),
        &mut n,
    );
    let page = render(&doc);
    assert!(page.contains("<h2>DB pool &lt;img src=x onerror=alert(1)&gt;</h2>"));
    assert!(page.contains("<th>service_name"), "config keys shown");
    assert_only_gmrs_markup(&page);
}

#[test]
fn since_is_laid_out_and_application_sections_render_generically() {
    let mut doc = demo();
    doc["threads"]["since"] = json!({
        "previous_report_at": "2026-11-26T03:14:00Z",
        "interval_ms": 15000,
        "stuck": [{"tid": 30707, "name": "demo-tokio-worker", "stuck_ms": 15000, "since": "2026-11-26T03:14:00Z"}],
        "busy": [{"tid": 30710, "name": "spinner", "cpu_ms": 14800, "cpu_percent": 98}],
        "busy_not_listed": 0, "idle": 6, "moved": 1,
        "appeared": {"count": 1, "threads": ["#30800 \"new-one\""]},
        "vanished": {"count": 0, "threads": []},
    });
    doc["green_threads"]["since"] = json!({
        "previous_report_at": "2026-11-26T03:14:00Z", "interval_ms": 15000,
        "requests": [{"id": 17, "request": "GET /await-lock", "in_flight_ms": 15000, "age_ms": 16000}],
        "requests_finished": 2, "requests_new": 1,
        "tasks": [{"runtime": "axum", "common": 5, "appeared": 2, "vanished": 1}],
    });
    // A field of a newer gmr is read past, as by the text view.
    doc["threads"]["brand_new_field"] = json!({"answer": 42});
    doc["sections"]
        .as_array_mut()
        .expect("sections")
        .push(json!({"title": "DB pool", "key": "db_pool"}));
    doc["db_pool"] = json!({"connections": [{"id": 1, "state": "busy"}], "text": ["one line"]});
    let page = render(&doc);
    assert!(page.contains("<h3>Since the last report</h3>"));
    assert!(page.contains("previous report 2026-11-26T03:14:00Z, 15.0 s before"));
    assert!(page.contains(
        "<li class=\"stuck\">STUCK ≥ 15.0 s  #30707 &quot;demo-tokio-worker&quot;: same stack, not run since 2026-11-26T03:14:00Z</li>"
    ), "{page}");
    assert!(page.contains("busy  #30710 &quot;spinner&quot;: cpu 14.8 s (98 % of the interval)"));
    assert!(page.contains("1 STUCK, 1 busy, 6 idle, 1 moved; 1 new threads, 0 gone"));
    assert!(page.contains("in flight ≥ 15.0 s  request 17  GET /await-lock"));
    assert!(page.contains("tasks of &quot;axum&quot;: 5 in both, 2 new, 1 gone"));
    assert!(!page.contains("brand_new_field"));
    assert!(page.contains("<h2>DB pool</h2>") && page.contains("<div>one line</div>"));
}

#[test]
fn a_section_whose_layout_panics_is_shown_generically() {
    /// A section whose HTML layout panics.
    #[derive(Debug)]
    struct Broken;
    impl crate::report::SectionBody for Broken {
        fn write_text(&self, out: &mut crate::report::TextWriter) {
            out.line("broken");
        }
        fn to_json(&self) -> Value {
            json!({"shown": "anyway"})
        }
        fn write_html(&self, _out: &mut super::Html) {
            panic!("layout bug");
        }
    }
    let mut report = crate::Report::from_json(&demo()).expect("reads");
    report
        .sections
        .push(crate::report::Section::new("Broken", Box::new(Broken)));
    report.sections.push(crate::report::Section::failed(
        "Failed",
        crate::SectionError::Failed("boom".to_owned()),
    ));
    let page = super::render(&report);
    assert!(page.ends_with("</html>\n"));
    assert!(page.contains("(this section&#39;s layout failed: layout bug; its fields follow)"));
    assert!(page.contains("<td>anyway</td>"), "the fields follow");
    assert!(page.contains("(section failed: section generator failed: boom)"));
    assert!(page.contains("<h2>Threads</h2>"), "the rest is intact");
}

/// The frames of the flame graph in `page`: (x, width, y) in samples and pixels.
fn flame_frames(page: &str) -> Vec<(u64, u64, u64)> {
    let mut out = Vec::new();
    for part in page.split("<rect ").skip(1) {
        let attr = |name: &str| -> Option<u64> {
            let at = part.find(&format!(" {name}=\""))? + name.len() + 3;
            part[at..].split('"').next()?.parse().ok()
        };
        if let (Some(x), Some(w), Some(y)) = (attr("data-x"), attr("data-w"), attr("y")) {
            out.push((x, w, y));
        }
    }
    out
}

/// Frames with no frame below them in the icicle.
fn leaves(frames: &[(u64, u64, u64)]) -> usize {
    let step = 16;
    frames
        .iter()
        .filter(|(x, w, y)| {
            !frames
                .iter()
                .any(|(cx, _, cy)| *cy == y + step && cx >= x && *cx < x + w)
        })
        .count()
}

#[test]
fn the_flame_graph_has_a_leaf_per_stack_group_weighted_by_count() {
    let doc = demo();
    let page = render(&doc);
    let frames = flame_frames(&page);
    let thread_groups = doc["threads"]["stacks"].as_array().map_or(0, Vec::len);
    // One trace in the first task group, two in the second.
    assert_eq!(leaves(&frames), thread_groups + 3, "{frames:?}");
    // The root is as wide as every thread and task.
    let threads = doc["threads"]["threads"].as_array().map_or(0, Vec::len) as u64;
    let tasks = 1 + 2 + 2;
    let root = frames.iter().map(|(_, w, _)| *w).max().unwrap_or(0);
    assert_eq!(root, threads + tasks);
    // Icicle: the root on top.
    let top = frames.iter().map(|(_, _, y)| *y).min().unwrap_or(0);
    assert!(
        frames
            .iter()
            .any(|(x, w, y)| *x == 0 && *w == root && *y == top)
    );
    // Frames carry their kind; leaves name their group as the page does.
    assert!(page.contains("<g class=\"fr k-application\">"));
    assert!(page.contains("<g class=\"fr k-leaf\"><title>group 0 · "));
    assert!(page.contains("<span class=\"gid\">group 0</span>"));
}

#[test]
fn the_page_is_the_same_from_the_report_and_from_its_json() {
    let gmr = crate::Gmr::builder()
        .settings(crate::GmrConfig::default())
        .build()
        .expect("engine");
    let report = gmr.report(crate::Trigger::Api);
    let json: Value =
        serde_json::from_str(&report.to_json_string()).expect("the JSON view is JSON");
    let page = crate::OutputFormat::Html.render(&report);
    assert_eq!(page, render(&json), "a report file renders the same page");
    assert!(page.contains("<h2>Threads</h2>"));
    // This test's own thread is in the page and in the flame graph.
    assert!(page.contains("the_page_is_the_same_from_the_report_and_from_its_json"));
}

#[test]
fn stuck_threads_come_first_as_in_the_text_view() {
    let mut doc = demo();
    let groups = doc["threads"]["stacks"].as_array().expect("stacks").clone();
    let last = groups.len() - 1;
    let tid = groups[last]["tids"][0].as_i64().expect("a tid");
    doc["threads"]["since"] = json!({
        "previous_report_at": "2026-11-26T03:14:00Z", "interval_ms": 15000,
        "stuck": [{"tid": tid, "name": "x", "stuck_ms": 15000, "since": "2026-11-26T03:14:00Z"}],
        "busy": [], "busy_not_listed": 0, "idle": 0, "moved": 0,
        "appeared": {"count": 0, "threads": []}, "vanished": {"count": 0, "threads": []},
    });
    let page = render(&doc);
    let stuck_group = page
        .find(&format!("data-group=\"{last}\""))
        .expect("the stuck thread's group");
    let first_group = page.find("data-group=\"0\"").expect("the first group");
    assert!(
        stuck_group < first_group,
        "the STUCK thread's group comes first"
    );
}
