//! Since when (issue 16): reports of one axum-demo process with a worker blocked in `/block`,
//! a thread of the blocking pool spinning for `/spin`, idle pool threads (`demo-parked-*`, the
//! idle tokio workers): the second report flags exactly the blocked thread `STUCK ≥` the time
//! between the reports, the spinning one busy, the idle ones neither, and the `/block` request
//! `in flight ≥`; a report after the block ends shows it gone.

use std::time::{Duration, Instant};

use gmr_integration_tests::{Demo, http, in_flight_requests};
use serde_json::Value;

fn json_report(demo: &Demo, auth: &str) -> Value {
    let response = http(demo.addr, "GET", "/admin/gmr?format=json", &[auth]);
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_slice(&response.body).expect("JSON report")
}

/// The TID of the thread whose stack holds `function`.
fn thread_in(report: &Value, function: &str) -> Option<i64> {
    let stacks = report["threads"]["stacks"].as_array()?;
    let stack = stacks.iter().find(|s| {
        s["frames"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["function"] == function))
    })?;
    stack["tids"].as_array()?.first()?.as_i64()
}

fn tids(list: &Value) -> Vec<i64> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["tid"].as_i64())
        .collect()
}

#[test]
fn a_blocked_thread_is_stuck_a_spinning_one_busy_an_idle_one_neither() {
    let demo = Demo::start("axum-demo", &["--workers", "4"]);
    let auth = format!(
        "Authorization: Bearer {}",
        demo.token().expect("the demo prints its token")
    );
    let addr = demo.addr;
    let spin = std::thread::spawn(move || http(addr, "GET", "/spin?ms=20000", &[]).status);
    let block = std::thread::spawn(move || http(addr, "GET", "/block?ms=9000", &[]).status);

    // Readiness: a report with the blocked handler and the spinning one on their threads.
    let started = Instant::now();
    let first = loop {
        let report = json_report(&demo, &auth);
        if thread_in(&report, "gmr_examples::demo_block_handler").is_some()
            && thread_in(&report, "gmr_examples::demo_spin_handler").is_some()
        {
            break report;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "/block and /spin never showed on their threads: {}",
            report["threads"]
        );
        std::thread::sleep(Duration::from_millis(1100));
    };
    let blocked = thread_in(&first, "gmr_examples::demo_block_handler").expect("blocked thread");
    // The time between the two reports is what is measured: more than `admin.min_interval`.
    std::thread::sleep(Duration::from_millis(1500));
    let second = json_report(&demo, &auth);
    let since = &second["threads"]["since"];
    assert!(
        since.is_object(),
        "the second report compares: {}",
        second["threads"]
    );
    let interval = since["interval_ms"].as_u64().expect("interval_ms");
    assert!(interval >= 1000, "{since}");

    // Exactly the blocked thread is STUCK, for at least the time between the reports.
    assert_eq!(tids(&since["stuck"]), vec![blocked], "{since}");
    let stuck_ms = since["stuck"][0]["stuck_ms"].as_u64().expect("stuck_ms");
    assert!(stuck_ms >= interval, "{since}");

    // The spinning thread is busy, not stuck; it used CPU during the capture too.
    let spinner = thread_in(&second, "gmr_examples::demo_spin_handler").expect("spinning thread");
    assert!(tids(&since["busy"]).contains(&spinner), "{since}");
    let spinning = second["threads"]["threads"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["tid"].as_i64() == Some(spinner)))
        .expect("the spinning thread listed");
    assert!(
        spinning["cpu_during_capture_ms"]
            .as_f64()
            .is_some_and(|ms| ms > 0.5),
        "a spinning thread uses CPU during the capture: {spinning}"
    );

    // The idle pool threads are neither.
    let parked: Vec<i64> = second["threads"]["threads"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| {
            t["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("demo-parked"))
        })
        .filter_map(|t| t["tid"].as_i64())
        .collect();
    assert_eq!(parked.len(), 2);
    for tid in &parked {
        assert!(!tids(&since["stuck"]).contains(tid), "{since}");
        assert!(!tids(&since["busy"]).contains(tid), "{since}");
    }
    assert!(since["idle"].as_u64().is_some_and(|n| n >= 2), "{since}");

    // The request in /block is in flight in both reports.
    let green = &second["green_threads"]["since"];
    let block_id = in_flight_requests(&second)
        .into_iter()
        .find(|r| r["path"] == "/block")
        .and_then(|r| r["id"].as_u64())
        .expect("/block in flight");
    let long = green["requests"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["id"].as_u64() == Some(block_id)))
        .unwrap_or_else(|| panic!("/block in flight in both: {green}"));
    let green_interval = green["interval_ms"].as_u64().expect("interval_ms");
    assert!(green_interval >= 1000, "{green}");
    assert!(
        long["in_flight_ms"]
            .as_u64()
            .is_some_and(|ms| ms >= green_interval),
        "{long}"
    );
    assert_eq!(long["request"], "GET /block");

    // The text view, same report (within `admin.min_interval`): the line and the header tag.
    let text = http(demo.addr, "GET", "/admin/gmr?format=text", &[&auth]).text();
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("STUCK ≥") && l.contains(&format!("#{blocked} "))),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("------ Thread #")
            && l.contains(&format!("#{blocked} "))
            && l.contains("STUCK ≥")),
        "{text}"
    );
    assert!(text.contains("in flight ≥"), "{text}");
    // The blocked thread's block comes first, saying which request it is inside.
    let lines: Vec<&str> = text.lines().collect();
    let first_block = lines
        .iter()
        .position(|l| l.starts_with("------ Thread #") || l.contains(" threads with this stack"))
        .expect("a stack block");
    assert!(
        lines[first_block].contains(&format!("#{blocked} ")),
        "{text}"
    );
    assert!(
        lines[first_block + 1].starts_with(&format!("   polling request {block_id} GET /block, "))
            && lines[first_block + 1].ends_with("(STUCK)"),
        "{text}"
    );

    // After the block ends: not stuck any more, the request gone.
    assert_eq!(block.join().expect("/block client"), 200);
    std::thread::sleep(Duration::from_millis(1100));
    let third = json_report(&demo, &auth);
    let since = &third["threads"]["since"];
    assert!(!tids(&since["stuck"]).contains(&blocked), "{since}");
    let green = &third["green_threads"]["since"];
    assert!(
        !green["requests"].to_string().contains("GET /block"),
        "{green}"
    );
    assert!(
        green["requests_finished"].as_u64().is_some_and(|n| n >= 1),
        "{green}"
    );
    drop(demo);
    let _ = spin.join();
}
