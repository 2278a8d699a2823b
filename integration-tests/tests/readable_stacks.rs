//! Stacks read like a Rust backtrace in the builds users ship: for each adapter's demo, the
//! handler that blocks a worker is named with its full path, file and line, in the JSON and in
//! the text view, the report stays short (one request in `/block`: at most 150 lines for
//! axum-demo, no line over 160 columns), and the reporting thread's stack starts at gmr's entry
//! point. `.ci/run` runs this file on a release build (`cargo test --release`), with the
//! profile the docs recommend (`debug = "line-tables-only"`, this workspace's).

use std::time::{Duration, Instant};

use gmr_integration_tests::{Demo, http};
use serde_json::Value;

/// `GET path` of the admin endpoint while `/block` holds a worker: a connection actix hands to
/// the blocked worker is given up after a few seconds and sent again (to the next worker).
fn admin(demo: &Demo, path: &str, auth: &str) -> gmr_integration_tests::RawResponse {
    gmr_integration_tests::http_past_a_blocked_worker(
        demo.addr,
        path,
        &[auth],
        Duration::from_secs(5),
    )
}

/// A JSON report, the TID of the thread polling `/block` and the frames of its stack, once a
/// report shows the request polled by a thread inside `demo_block_handler`.
fn report_with_blocked_handler(demo: &Demo, auth: &str) -> (Value, i64, Vec<Value>) {
    let started = Instant::now();
    let mut last = Value::Null;
    // Within the 15 s that `/block` lasts; on loaded cores a report can miss a thread's stack
    // (it did not answer the capture signal in time), so ask again.
    while started.elapsed() < Duration::from_secs(14) {
        let response = admin(demo, "/admin/gmr?format=json", auth);
        assert_eq!(response.status, 200, "{}", response.text());
        let report: Value = serde_json::from_str(&response.text()).expect("JSON report");
        let tid = gmr_integration_tests::in_flight_requests(&report)
            .into_iter()
            .find(|r| r["path"] == "/block")
            .and_then(|r| r["polled_by_tid"].as_i64());
        let frames = tid.and_then(|tid| {
            let stack = report["threads"]["threads"]
                .as_array()?
                .iter()
                .find(|t| t["tid"].as_i64() == Some(tid))?["stack"]
                .as_u64()?;
            report["threads"]["stacks"][stack as usize]["frames"]
                .as_array()
                .cloned()
        });
        if let (Some(frames), Some(tid)) = (&frames, tid)
            && frames
                .iter()
                .any(|f| f["function"] == "gmr_examples::demo_block_handler")
        {
            return (report, tid, frames.clone());
        }
        // Keep the last report that had the request, to say what was wrong with it.
        if tid.is_some() || last.is_null() {
            last = report;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!(
        "no report showed the blocked handler: {}\n{}",
        last["green_threads"], last["threads"]
    );
}

fn blocked_handler_is_named_with_path_file_and_line(name: &str) {
    let demo = Demo::start(name, &[]);
    let token = demo.token().expect("the demo prints its token");
    let auth = format!("Authorization: Bearer {token}");
    let addr = demo.addr;
    let blocker = std::thread::spawn(move || http(addr, "GET", "/block?ms=15000", &[]));
    let (report, tid, frames) = report_with_blocked_handler(&demo, &auth);

    // JSON: the full name, the source file, the line, the kind.
    let handler = frames
        .iter()
        .find(|f| f["function"] == "gmr_examples::demo_block_handler")
        .expect("handler frame");
    assert_eq!(
        handler["name"], "gmr_examples::demo_block_handler",
        "{handler}"
    );
    assert_eq!(handler["path"], "examples/src/lib.rs", "{handler}");
    assert!(
        handler["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("examples/src/lib.rs"))
    );
    let line = handler["line"].as_u64().expect("a line");
    assert_eq!(handler["kind"], "application", "{handler}");
    // The call it blocks in is inside it.
    let position = |name: &str| {
        frames
            .iter()
            .position(|f| f["function"].as_str().is_some_and(|n| n.contains(name)))
    };
    assert!(
        position("sleep") < position("demo_block_handler"),
        "{frames:?}"
    );

    // Text (the same report when asked within `admin.min_interval`, else one taken while
    // `/block` still holds the same thread): the same frame, full name and `at path:line`,
    // and the request in one table row naming its thread.
    let text = admin(&demo, "/admin/gmr?format=text", &auth).text();
    let at = format!("at examples/src/lib.rs:{line}");
    let shown = text
        .lines()
        .zip(text.lines().skip(1))
        .any(|(frame, location)| {
            frame.contains(": gmr_examples::demo_block_handler [") && location.trim() == at
        });
    assert!(shown, "the handler and `{at}` in the text view:\n{text}");
    // The request's row, then the line naming the thread it blocks (or that polls it now).
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.windows(2).any(|pair| {
            pair[0].contains("GET")
                && pair[0].contains("/block")
                && pair[1].contains(&format!("thread #{tid} "))
        }),
        "{text}"
    );
    let longest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(longest <= 160, "a line of {longest} columns");
    if name == "axum-demo" {
        // Taken while the admin request and `/block` were in flight.
        let lines = text.lines().count();
        assert!(lines <= 150, "{lines} lines:\n{text}");
    }

    // The reporting thread's stack starts at gmr's entry point, without the capture machinery.
    let reporter = report["threads"]["threads"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["reporting_thread"] == true))
        .expect("the reporting thread");
    let stack = &report["threads"]["stacks"][reporter["stack"].as_u64().expect("stack") as usize];
    // The first frame is gmr's entry point (its name, crate and module derived from its path
    // when the debug information gives it bare).
    let first = stack["frames"][0]["name"].as_str().unwrap_or_default();
    assert!(
        first.starts_with("gmr::reporter::"),
        "starts at gmr's entry point: {}",
        stack["frames"][0]
    );
    assert!(
        !stack["frames"].to_string().contains("gmr::capture::"),
        "no capture machinery: {stack}"
    );

    assert_eq!(blocker.join().expect("the /block request").status, 200);
}

#[test]
fn axum_demo_names_the_blocked_handler() {
    blocked_handler_is_named_with_path_file_and_line("axum-demo");
}

#[test]
fn actix_demo_names_the_blocked_handler() {
    blocked_handler_is_named_with_path_file_and_line("actix-demo");
}

#[test]
fn tower_demo_names_the_blocked_handler() {
    blocked_handler_is_named_with_path_file_and_line("tower-demo");
}
