//! `actix-demo` as a user runs it: signals, HTTP, the admin endpoint, several workers sharing
//! one hook, a blocked request pointing at its thread, graceful shutdown.

use std::time::{Duration, Instant};

use gmr_integration_tests::{Demo, RawResponse, http, in_flight_requests_of};

/// A JSON report from the admin endpoint.
fn json_report(demo: &Demo, token: &str) -> serde_json::Value {
    let auth = format!("Authorization: Bearer {token}");
    let response = http(demo.addr, "GET", "/admin/gmr?format=json", &[&auth]);
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_slice(&response.body).expect("json report")
}

/// `GET path` of the admin endpoint while `/block` holds one of the workers: actix hands each
/// connection to its next worker in turn, so a request is sent again on a new connection when
/// the first went to the blocked worker (no answer within 3 s).
fn admin_past_block(demo: &Demo, path: &str, token: &str) -> RawResponse {
    let auth = format!("Authorization: Bearer {token}");
    let response = gmr_integration_tests::http_past_a_blocked_worker(
        demo.addr,
        path,
        &[&auth],
        Duration::from_secs(3),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    response
}

/// The names of the actix worker runtimes a report lists.
fn worker_runtimes(report: &serde_json::Value) -> Vec<String> {
    report["green_threads"]["runtimes"]["runtime"]
        .as_array()
        .map(|runtimes| {
            runtimes
                .iter()
                .filter_map(|r| r["name"].as_str())
                .filter(|name| name.starts_with("actix-web worker"))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The kernel names of the process's threads.
fn thread_names(pid: i32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
                .map(|comm| comm.trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn sigusr2_writes_a_full_report_and_the_server_keeps_serving() {
    let demo = Demo::start("actix-demo", &[]);
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
    let stderr = gmr_integration_tests::signal_report(&demo);
    assert!(stderr.contains("in-flight requests (actix)"));
    assert!(
        stderr.contains("actix-web worker"),
        "worker runtimes missing"
    );
    let response = http(demo.addr, "GET", "/", &[]);
    assert_eq!(response.status, 200);
    assert!(response.text().contains("hello from actix-demo"));
    assert_eq!(http(demo.addr, "GET", "/slow?ms=10", &[]).status, 200);
}

#[test]
fn admin_endpoint_auth_and_methods() {
    let demo = Demo::start("actix-demo", &[]);
    gmr_integration_tests::check_admin_endpoint(&demo, "actix-demo");
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
}

#[test]
fn no_gmr_runs_the_same_server_without_gmr() {
    let demo = Demo::start("actix-demo", &["--no-gmr"]);
    assert!(demo.token().is_none());
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
    assert_eq!(http(demo.addr, "GET", "/admin/gmr", &[]).status, 404);
    assert!(
        !thread_names(demo.pid())
            .iter()
            .any(|n| n.starts_with("gmr-")),
        "no gmr thread without gmr"
    );
}

#[test]
fn four_workers_share_one_hook_and_each_registers_its_runtime() {
    let demo = Demo::start("actix-demo", &["--workers", "4"]);
    let token = demo.token().expect("token");
    // Workers start concurrently with the banner; give them a moment to build their apps.
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let report = json_report(&demo, &token);
        if worker_runtimes(&report).len() >= 4 || Instant::now() > deadline {
            break report;
        }
        // Requests within `admin.min_interval` (1 s) share a report.
        std::thread::sleep(Duration::from_millis(1100));
    };
    let runtimes = worker_runtimes(&report);
    assert_eq!(runtimes.len(), 4, "{runtimes:?}");
    let mut distinct = runtimes.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        4,
        "one registration per worker: {runtimes:?}"
    );

    // A thread the reporter starts carries its name until std renames it, so one read
    // can see two for a moment; a second reporter would stay.
    let deadline = Instant::now() + Duration::from_secs(5);
    let names = loop {
        let names = thread_names(demo.pid());
        let reporters = names.iter().filter(|n| *n == "gmr-reporter").count();
        if reporters == 1 || Instant::now() >= deadline {
            break names;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let reporters = names.iter().filter(|n| *n == "gmr-reporter").count();
    assert_eq!(reporters, 1, "one hook per process: {names:?}");
    let signal_threads = names.iter().filter(|n| *n == "gmr-signal").count();
    assert!(signal_threads <= 1, "{names:?}");

    // One signal, one report, however many workers.
    demo.signal(libc::SIGUSR2);
    assert!(
        demo.wait_stderr("gmr report written", 1, Duration::from_secs(60)),
        "{}",
        demo.stderr()
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        demo.stderr().matches("gmr report written").count(),
        1,
        "{}",
        demo.stderr()
    );
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
}

#[test]
fn a_blocked_request_is_listed_with_its_thread_and_stack() {
    let demo = Demo::start("actix-demo", &["--workers", "4"]);
    let token = demo.token().expect("token");
    let addr = demo.addr;
    let blocked = std::thread::spawn(move || http(addr, "GET", "/block?ms=8000", &[]).status);
    let started = Instant::now();
    // Wait until the blocked request shows up (a report within `min_interval` is shared, so
    // retry a little over a second apart), while it is still blocking.
    let (report, request) = loop {
        std::thread::sleep(Duration::from_millis(300));
        let report =
            serde_json::from_slice(&admin_past_block(&demo, "/admin/gmr?format=json", &token).body)
                .expect("json report");
        let request = in_flight_requests_of(&report, "actix")
            .into_iter()
            .find(|r| {
                r["path"] == "/block" && r["in_poll_ms"].as_u64().is_some_and(|ms| ms >= 1000)
            })
            .cloned();
        if let Some(request) = request {
            break (report, request);
        }
        assert!(
            started.elapsed() < Duration::from_millis(6500),
            "the blocked request was not listed in time: {}",
            report["green_threads"]
        );
        std::thread::sleep(Duration::from_millis(800));
    };
    assert_eq!(request["method"], "GET");
    assert_eq!(request["route"], "/block");
    assert!(
        request["age_ms"].as_u64().is_some_and(|age| age < 8000),
        "{request}"
    );
    assert!(request["last_poll_ms"].is_u64(), "{request}");
    let tid = request["polled_by_tid"]
        .as_i64()
        .unwrap_or_else(|| panic!("no polling thread: {request}"));
    assert!(
        request["thread"]
            .as_str()
            .is_some_and(|t| t.starts_with(&format!("#{tid} "))),
        "{request}"
    );

    // That thread's stack, in `Threads`, shows the blocking handler under the request.
    let threads = &report["threads"];
    let thread = threads["threads"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["tid"] == tid))
        .unwrap_or_else(|| panic!("thread #{tid} not in Threads"));
    assert!(
        thread["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("actix-rt|system")),
        "{thread}"
    );
    let stack = thread["stack"]
        .as_u64()
        .and_then(|i| threads["stacks"].get(usize::try_from(i).ok()?))
        .unwrap_or_else(|| panic!("no stack for #{tid}: {thread}"));
    let functions: Vec<&str> = stack["frames"]
        .as_array()
        .map(|frames| {
            frames
                .iter()
                .filter_map(|f| f["function"].as_str())
                .collect()
        })
        .unwrap_or_default();
    let handler = functions
        .iter()
        .position(|f| f.contains("demo_block_handler"))
        .unwrap_or_else(|| panic!("demo_block_handler not on #{tid}: {functions:#?}"));
    let sleep = functions
        .iter()
        .position(|f| f.contains("sleep"))
        .unwrap_or_else(|| panic!("no sleep frame on #{tid}: {functions:#?}"));
    assert!(sleep < handler, "the blocking call is inside the handler");
    assert!(
        functions[handler..]
            .iter()
            .any(|f| f.contains("actix_demo::block")),
        "the route's handler is below it: {functions:#?}"
    );

    // The same in the text view.
    let text = admin_past_block(&demo, "/admin/gmr", &token).text();
    // One table row for the request (method, path, route, age, last poll, task, state), then
    // the line naming the thread it blocks.
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.windows(2).any(|pair| {
            pair[0].contains("GET")
                && pair[0].matches("/block").count() == 2
                && pair[0].contains("STUCK")
                && pair[1].contains(&format!("blocked in one poll on thread #{tid} "))
        }),
        "{text}"
    );
    assert!(text.contains("gmr_examples::demo_block_handler"));

    assert_eq!(blocked.join().expect("block request"), 200);
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut demo = Demo::start("actix-demo", &[]);
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
    demo.signal(libc::SIGTERM);
    let status = demo
        .wait_exit(Duration::from_secs(30))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
    assert!(demo.stderr().contains("gmr autorun hook stopped"));
}
