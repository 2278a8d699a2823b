//! The async hang as users meet it: requests awaiting a lock a background task holds forever, a
//! channel answered late, a slow upstream. For axum-demo and actix-demo (`--spans`), each
//! request is listed with its route, age, last poll and span path, and the long-open span of the
//! lock holder is listed outside requests. Built with `--features tokio-taskdump` and
//! `RUSTFLAGS="--cfg tokio_unstable"` (a step of `.ci/run`), axum-demo's report also shows the
//! task stack of the request awaiting the lock, the await point (`Acquire`) innermost under the
//! handler's own frame, and the task that holds the lock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gmr_integration_tests::{Demo, http, in_flight_requests_of};
use serde_json::Value;

/// The routes started, and the span each request waits in.
const WAITING: [(&str, &str, &str); 3] = [
    (
        "/await-lock",
        "/await-lock",
        "demo_await_lock{resource=inventory}",
    ),
    (
        "/await-channel",
        "/await-channel?ms=60000",
        "demo_await_channel{ms=60000}",
    ),
    ("/slow", "/slow?ms=60000", "demo_slow_handler{ms=60000}"),
];

/// Starts one request per route of [`WAITING`]; they never answer before the demo is killed.
fn start_waiting_requests(addr: SocketAddr) {
    for (_, target, _) in WAITING {
        // Detached: each ends when the demo is killed at the end of the test.
        std::thread::spawn(move || http(addr, "GET", target, &[]));
    }
}

/// A JSON report from the admin endpoint.
fn json_report(demo: &Demo, auth: &str) -> Value {
    let response = http(demo.addr, "GET", "/admin/gmr?format=json", &[auth]);
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_slice(&response.body).expect("JSON report")
}

/// Whether every request of [`WAITING`] is listed, waiting in its span for over a second (so
/// `span_age` has passed for the lock holder too).
fn all_waiting(report: &Value, source: &str) -> bool {
    let requests = in_flight_requests_of(report, source);
    WAITING.iter().all(|(path, _, _)| {
        requests.iter().any(|r| {
            r["path"] == *path
                && r["last_poll_ms"].as_u64().is_some_and(|ms| ms > 1100)
                && r["waiting_in"]
                    .as_str()
                    .is_some_and(|w| w.starts_with("waiting in"))
        })
    })
}

/// Reports until one shows every request waiting (deadline 30 s; reports within
/// `admin.min_interval` are shared, so asks a little over a second apart).
fn report_with_all_waiting(demo: &Demo, auth: &str, source: &str) -> Value {
    let started = Instant::now();
    loop {
        let report = json_report(demo, auth);
        if all_waiting(&report, source) {
            return report;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the waiting requests were not all listed in 30 s: {}",
            report["green_threads"]
        );
        std::thread::sleep(Duration::from_millis(1100));
    }
}

/// Each request: its route, age, last poll, span path ending in the handler's span, and the
/// "waiting in" line; the lock holder's span outside requests; the same in the text view.
fn each_request_shows_where_it_waits(demo_name: &str, source: &str) -> (Demo, String, Value) {
    let demo = Demo::start(demo_name, &["--spans"]);
    let auth = format!(
        "Authorization: Bearer {}",
        demo.token().expect("the demo prints its token")
    );
    start_waiting_requests(demo.addr);
    let report = report_with_all_waiting(&demo, &auth, source);
    let requests = in_flight_requests_of(&report, source);
    for (path, _, span) in WAITING {
        let request = requests
            .iter()
            .find(|r| r["path"] == path)
            .unwrap_or_else(|| panic!("{path} listed"));
        assert_eq!(request["method"], "GET", "{request}");
        assert_eq!(request["route"], path, "{request}");
        assert_eq!(request["state"], "waiting", "{request}");
        let age = request["age_ms"].as_u64().expect("age_ms");
        let last_poll = request["last_poll_ms"].as_u64().expect("last_poll_ms");
        assert!(last_poll <= age && last_poll > 1100, "{request}");
        let spans: Vec<String> = request["spans"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let fields: Vec<&str> = s["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if fields.is_empty() {
                    s["name"].as_str().unwrap_or_default().to_owned()
                } else {
                    format!(
                        "{}{{{}}}",
                        s["name"].as_str().unwrap_or_default(),
                        fields.join(", ")
                    )
                }
            })
            .collect();
        assert_eq!(
            spans.last().map(String::as_str),
            Some(span),
            "the innermost span of {path}: {spans:?}"
        );
        assert!(
            request["waiting_in"]
                .as_str()
                .is_some_and(|w| w.starts_with(&format!("waiting in `{span}` for "))),
            "{request}"
        );
    }
    let outside = report["green_threads"]["spans"]["outside_requests"].to_string();
    assert!(
        outside.contains("demo_lock_holder"),
        "the lock holder's span is listed outside requests: {outside}"
    );

    // The text view: each request's row, then where it waits.
    let text = http(demo.addr, "GET", "/admin/gmr?format=text", &[&auth]).text();
    let lines: Vec<&str> = text.lines().collect();
    for (path, _, span) in WAITING {
        let row = lines
            .iter()
            .position(|l| {
                let cells: Vec<&str> = l.split_whitespace().collect();
                cells.get(1) == Some(&"GET") && cells.get(2) == Some(&path)
            })
            .unwrap_or_else(|| panic!("a row for {path}:\n{text}"));
        let row_cells: Vec<&str> = lines[row].split_whitespace().collect();
        assert_eq!(
            row_cells.get(3),
            Some(&path),
            "route column: {}",
            lines[row]
        );
        assert!(
            lines[row].contains(" ago ") && lines[row].ends_with("waiting"),
            "age, last poll and state: {}",
            lines[row]
        );
        assert!(
            lines.get(row + 1).is_some_and(|l| l
                .trim_start()
                .starts_with(&format!("waiting in `{span}` for "))),
            "where {path} waits, under its row:\n{text}"
        );
    }
    assert!(
        text.contains("demo_lock_holder{resource=inventory}"),
        "{text}"
    );
    (demo, auth, report)
}

#[test]
fn axum_demo_shows_where_each_request_waits() {
    each_request_shows_where_it_waits("axum-demo", "axum");
}

#[test]
fn actix_demo_shows_where_each_request_waits() {
    each_request_shows_where_it_waits("actix-demo", "actix");
}

/// The function names of one task trace, innermost first.
#[cfg(all(tokio_unstable, feature = "tokio-taskdump"))]
fn functions(trace: &Value) -> Vec<String> {
    trace
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["function"].as_str().map(str::to_owned))
        .collect()
}

#[cfg(all(tokio_unstable, feature = "tokio-taskdump"))]
#[test]
fn axum_demo_shows_the_task_stack_of_a_request_awaiting_a_lock() {
    let (demo, auth, report) = each_request_shows_where_it_waits("axum-demo", "axum");
    let green = &report["green_threads"];
    let dump = &green["tasks"][0];
    assert_eq!(dump["status"], "ok", "{dump}");
    let requests = in_flight_requests_of(&report, "axum");
    let request = requests
        .iter()
        .find(|r| r["path"] == "/await-lock")
        .expect("the /await-lock request");
    let task = request["task_id"].as_u64().expect("task_id");
    let at = &request["task_stack"];
    let group = &green["tasks"][at["dump"].as_u64().expect("dump") as usize]["groups"]
        [at["group"].as_u64().expect("group") as usize];
    assert!(
        group["tasks"]
            .as_array()
            .is_some_and(|t| t.iter().any(|id| id.as_u64() == Some(task))),
        "the group holds the request's task {task}: {group}"
    );
    let trace = group["traces"]
        .as_array()
        .into_iter()
        .flatten()
        .map(functions)
        .find(|f| f.iter().any(|n| n.contains("demo_await_lock")))
        .unwrap_or_else(|| panic!("a trace through the handler: {group}"));
    assert!(
        trace[0].contains("Acquire"),
        "the await point is innermost: {trace:#?}"
    );
    let lock = trace
        .iter()
        .position(|f| f.contains("Mutex") && f.contains("lock"))
        .unwrap_or_else(|| panic!("Mutex::lock in {trace:#?}"));
    let handler = trace
        .iter()
        .position(|f| f.starts_with("gmr_examples::demo_await_lock"))
        .unwrap_or_else(|| panic!("the handler in {trace:#?}"));
    assert!(
        lock < handler,
        "Mutex::lock is under the handler's frame: {trace:#?}"
    );

    // The task holding the lock is listed among the tasks.
    let holder = dump["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["traces"].as_array().into_iter().flatten())
        .any(|t| functions(t).iter().any(|f| f.contains("demo_lock_holder")));
    assert!(holder, "the lock holder's task is listed: {dump}");

    // Text: the task's stack right under the request.
    let text = http(demo.addr, "GET", "/admin/gmr?format=text", &[&auth]).text();
    let lines: Vec<&str> = text.lines().collect();
    let row = lines
        .iter()
        .position(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.get(1) == Some(&"GET") && cells.get(2) == Some(&"/await-lock")
        })
        .expect("the request's row");
    assert!(
        lines[row + 1..]
            .iter()
            .take(4)
            .any(|l| l.trim_start() == format!("task {task}:")),
        "{text}"
    );
    assert!(
        lines[row + 1..]
            .iter()
            .take(6)
            .any(|l| l.contains("0: <tokio::sync::batch_semaphore::Acquire")),
        "{text}"
    );
}

/// A worker blocked in `/block` while `/await-lock` waits: no task dump is asked for (it would
/// stall the other workers), one line says why, and everything that does not need the dump is
/// there: the requests with their last poll and spans, the blocked worker's thread.
#[cfg(all(tokio_unstable, feature = "tokio-taskdump"))]
#[test]
fn a_blocked_worker_does_not_blank_the_section() {
    let demo = Demo::start("axum-demo", &["--spans", "--workers", "3"]);
    let auth = format!(
        "Authorization: Bearer {}",
        demo.token().expect("the demo prints its token")
    );
    let addr = demo.addr;
    std::thread::spawn(move || http(addr, "GET", "/await-lock", &[]));
    let block = std::thread::spawn(move || http(addr, "GET", "/block?ms=10000", &[]).status);
    let started = Instant::now();
    let report = loop {
        let report = json_report(&demo, &auth);
        let requests = in_flight_requests_of(&report, "axum");
        let blocked = requests.iter().any(|r| {
            r["path"] == "/block" && r["in_poll_ms"].as_u64().is_some_and(|ms| ms >= 1000)
        });
        let waiting = requests.iter().any(|r| r["path"] == "/await-lock");
        if blocked && waiting {
            break report;
        }
        assert!(
            started.elapsed() < Duration::from_secs(9),
            "/block and /await-lock were not both listed: {}",
            report["green_threads"]
        );
        std::thread::sleep(Duration::from_millis(1100));
    };
    let green = &report["green_threads"];
    let dump = &green["tasks"][0];
    assert_eq!(dump["status"], "skipped", "{dump}");
    assert!(
        dump["note"]
            .as_str()
            .is_some_and(|n| n.contains("GET /block") && n.contains("blocking a thread")),
        "{dump}"
    );
    let requests = in_flight_requests_of(&report, "axum");
    let waiting = requests
        .iter()
        .find(|r| r["path"] == "/await-lock")
        .expect("/await-lock");
    assert!(waiting["last_poll_ms"].is_u64(), "{waiting}");
    assert!(
        waiting["waiting_in"]
            .as_str()
            .is_some_and(|w| w.contains("demo_await_lock")),
        "{waiting}"
    );
    let blocked = requests
        .iter()
        .find(|r| r["path"] == "/block")
        .expect("/block");
    let tid = blocked["polled_by_tid"].as_i64().expect("its thread");
    assert!(
        report["threads"]["threads"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["tid"].as_i64() == Some(tid))),
        "the blocked worker's thread is in Threads"
    );
    assert!(
        green["spans"]["outside_requests"]
            .to_string()
            .contains("demo_lock_holder"),
        "{}",
        green["spans"]
    );
    let text = http(demo.addr, "GET", "/admin/gmr?format=text", &[&auth]).text();
    assert!(
        text.lines().any(
            |l| l.starts_with("no task stacks (skipped): request ") && l.contains("GET /block")
        ),
        "{text}"
    );
    assert_eq!(block.join().expect("/block client"), 200);
}
