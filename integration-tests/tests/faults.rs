//! Faults an operator meets: an unusable `log_dir`, a worker stuck in a blocking call, a burst
//! of signals, and SIGTERM while a report is being made.
// The counts and timings measured are printed: they are part of what the test reports.
#![allow(clippy::print_stderr)]

use std::time::{Duration, Instant};

use gmr_integration_tests::{
    Demo, ReportName, check_full_report, http, report_files, wait_until, write_file,
};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn unwritable_log_dir_falls_back_to_stderr_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A path under a regular file: not a directory for anyone, root included.
    let file = write_file(dir.path(), "a-file", "not a directory\n");
    let log_dir = file.join("reports");
    let config = write_file(
        dir.path(),
        "demo.toml",
        &format!("[gmr]\nlog_dir = {:?}\n", log_dir.display().to_string()),
    );
    let demo = Demo::start(
        "axum-demo",
        &["--config", config.to_str().expect("utf-8 path")],
    );
    demo.signal(libc::SIGUSR2);
    assert!(
        demo.wait_stderr("gmr report written", 1, WAIT),
        "no report:\n{}",
        demo.stderr()
    );
    let stderr = demo.stderr();
    let reason = format!(
        "gmr: cannot write the report to log_dir {}: ",
        log_dir.display()
    );
    let at = stderr
        .find(&reason)
        .unwrap_or_else(|| panic!("no reason line:\n{stderr}"));
    let line = stderr[at..].lines().next().expect("reason line");
    assert!(line.ends_with("writing it to stderr instead"), "{line}");
    // The whole report follows the reason line.
    check_full_report(&stderr[at..]).unwrap_or_else(|e| panic!("{e}:\n{stderr}"));
    assert!(!log_dir.exists());
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
}

/// A config writing JSON reports to `dir/reports`.
fn json_files_config(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let log_dir = dir.join("reports");
    std::fs::create_dir(&log_dir).expect("log_dir");
    let trigger = dir.join("gmr_trigger");
    let config = write_file(
        dir,
        "demo.toml",
        &format!(
            "[gmr]\nlog_dir = {:?}\nformat = \"json\"\nfile_event_handler = {:?}\n\
             file_event_handler_interval = 0.05\n",
            log_dir.display().to_string(),
            trigger.display().to_string()
        ),
    );
    (config, log_dir)
}

/// How a test asks a demo for a report: SIGUSR2, or the trigger file where the host owns the
/// signal (`signal-host-demo`).
#[derive(Clone, Copy)]
enum Ask {
    Signal,
    TriggerFile,
}

/// Takes report number `n` as `ask` says (on gmr's reporter thread: no async worker is needed,
/// and one of them may be blocked) and returns it.
fn take_report(demo: &Demo, log_dir: &std::path::Path, n: usize, ask: Ask) -> serde_json::Value {
    match ask {
        Ask::Signal => demo.signal(libc::SIGUSR2),
        Ask::TriggerFile => gmr_integration_tests::touch(
            &log_dir
                .parent()
                .expect("log_dir has a parent")
                .join("gmr_trigger"),
        ),
    }
    assert!(
        demo.wait_stderr("gmr report written", n, WAIT),
        "report {n}:\n{}",
        demo.stderr()
    );
    let newest = report_files(log_dir)
        .into_iter()
        .filter_map(|path| {
            let name = ReportName::parse(path.file_name()?.to_str()?)?;
            Some((name.seq, path))
        })
        .max()
        .expect("a report file");
    assert_eq!(newest.0, n as u64, "report {n} is the newest file");
    serde_json::from_slice(&std::fs::read(&newest.1).expect("read report")).expect("json report")
}

/// The `/block` request in the JSON report's in-flight listing, once a thread polls it.
fn blocked_request(report: &serde_json::Value) -> Option<serde_json::Value> {
    gmr_integration_tests::in_flight_requests(report)
        .into_iter()
        .find(|request| request["path"] == "/block" && request["polled_by_tid"].is_i64())
        .cloned()
}

/// The function names of the stack of thread `tid` in the JSON report.
fn stack_of(report: &serde_json::Value, tid: i64) -> Vec<String> {
    let stacks = report["threads"]["stacks"].as_array().expect("stacks");
    stacks
        .iter()
        .find(|stack| {
            stack["tids"]
                .as_array()
                .is_some_and(|tids| tids.iter().any(|t| t.as_i64() == Some(tid)))
        })
        .and_then(|stack| stack["frames"].as_array())
        .map(|frames| {
            frames
                .iter()
                .filter_map(|f| f["function"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn blocked_request_is_listed_with_its_thread(name: &str, route: Option<&str>) {
    blocked_request_is_listed_with_its_thread_asking(name, route, Ask::Signal);
}

fn blocked_request_is_listed_with_its_thread_asking(name: &str, route: Option<&str>, ask: Ask) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, log_dir) = json_files_config(dir.path());
    let demo = Demo::start(name, &["--config", config.to_str().expect("utf-8 path")]);
    let addr = demo.addr;
    // A first report warms the symbolizer, so the ones taken while the request blocks are quick.
    let _ = take_report(&demo, &log_dir, 1, ask);
    let mut taken = 1;
    let blocker = std::thread::spawn(move || http(addr, "GET", "/block?ms=6000", &[]));
    // Readiness: ask for reports until one lists the request as polled by a thread whose stack
    // shows the handler. The stacks are captured before the in-flight list, so a report taken
    // just as the request starts can list it with a stack from a moment earlier: such reports
    // are counted and the next one is taken. Bounded: at most 40 reports, and only while the
    // request still blocks (6 s, minus a margin).
    let started = Instant::now();
    let mut found = None;
    let mut early = Vec::new();
    let mut last = serde_json::Value::Null;
    for _ in 0..40 {
        taken += 1;
        let report = take_report(&demo, &log_dir, taken, ask);
        if let Some(request) = blocked_request(&report) {
            let tid = request["polled_by_tid"].as_i64().expect("tid");
            if stack_of(&report, tid)
                .iter()
                .any(|f| f.contains("demo_block_handler"))
            {
                found = Some((report, request));
                break;
            }
            early.push(format!(
                "age_ms {} / capture_ms {}",
                request["age_ms"], report["threads"]["capture_ms"]
            ));
        }
        last = report;
        if started.elapsed() > Duration::from_millis(5000) {
            break;
        }
    }
    if !early.is_empty() {
        eprintln!("{name}: reports listing the request before its stack showed it: {early:?}");
    }
    let (report, request) = found.unwrap_or_else(|| {
        panic!(
            "no report within {:?} lists the /block request polled by a thread that shows \
             demo_block_handler; {} listed it early ({early:?}); last Green Threads: {}; \
             last threads: {}",
            started.elapsed(),
            early.len(),
            last["green_threads"],
            last["threads"]["threads"]
        )
    });
    assert_eq!(request["method"], "GET");
    if let Some(route) = route {
        assert_eq!(request["route"], route, "{request}");
    }
    let tid = request["polled_by_tid"].as_i64().expect("tid");
    assert!(
        request["thread"]
            .as_str()
            .is_some_and(|t| t.starts_with(&format!("#{tid} "))),
        "{request}"
    );
    assert!(
        report["threads"]["threads"]
            .as_array()
            .is_some_and(|threads| threads.iter().any(|t| t["tid"].as_i64() == Some(tid))),
        "thread {tid} is listed in Threads"
    );
    let answer = blocker.join().expect("blocker thread");
    assert_eq!(answer.status, 200);
}

#[test]
fn axum_blocked_request_is_listed_with_route_and_thread() {
    blocked_request_is_listed_with_its_thread("axum-demo", Some("/block"));
}

#[test]
fn tower_blocked_request_is_listed_with_its_thread() {
    blocked_request_is_listed_with_its_thread("tower-demo", None);
}

#[test]
fn signal_host_blocked_request_is_listed_through_the_trigger_file() {
    blocked_request_is_listed_with_its_thread_asking(
        "signal-host-demo",
        Some("/block"),
        Ask::TriggerFile,
    );
}

#[test]
fn a_burst_of_50_sigusr2_is_coalesced_and_the_process_lives() {
    let mut demo = Demo::start("axum-demo", &[]);
    for _ in 0..50 {
        demo.signal(libc::SIGUSR2);
    }
    assert!(
        demo.wait_stderr("gmr report written", 1, WAIT),
        "no report:\n{}",
        demo.stderr()
    );
    // Let the reporter drain: the count must stay unchanged for 3 s (at most 60 s in all).
    let mut last = demo.stderr_count("gmr report written");
    let mut stable_since = Instant::now();
    let settled = wait_until(WAIT, || {
        let now = demo.stderr_count("gmr report written");
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
        stable_since.elapsed() >= Duration::from_secs(3)
    });
    assert!(settled, "reports kept coming");
    let reports = demo.stderr_count("gmr report written");
    eprintln!("a burst of 50 SIGUSR2 gave {reports} report(s)");
    assert!((1..=50).contains(&reports), "{reports} reports");
    assert!(demo.alive(), "the process died:\n{}", demo.stderr());
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
    check_full_report(&demo.stderr()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn sigterm_during_a_report_ends_the_process_cleanly() {
    // Debug logging says when the reporter has taken the signal, so SIGTERM lands in the report.
    let mut demo = Demo::start_with_env("axum-demo", &[], &[("RUST_LOG", "info,gmr=debug")]);
    demo.signal(libc::SIGUSR2);
    assert!(
        demo.wait_stderr("gmr received the trigger signal", 1, WAIT),
        "{}",
        demo.stderr()
    );
    let written_before_term = demo.stderr_count("gmr report written");
    demo.signal(libc::SIGTERM);
    let status = demo
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("still running 30 s after SIGTERM:\n{}", demo.stderr()));
    assert!(status.success(), "{status:?}\n{}", demo.stderr());
    eprintln!(
        "SIGTERM arrived {} the report was written",
        if written_before_term == 0 {
            "before"
        } else {
            "after"
        }
    );
    // Whatever was written is a whole report, never half of one.
    let stderr = demo.stderr();
    if stderr.contains("Guru Meditation") {
        check_full_report(&stderr).unwrap_or_else(|e| panic!("{e}:\n{stderr}"));
    }
}
