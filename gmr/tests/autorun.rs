//! The autorun hook, its triggers and its reporter thread, exercised with real signals and
//! real files.
//!
//! Signals, signal dispositions and the one-hook-per-process rule are process-wide, so every
//! scenario runs in a process of its own: this binary (built with `harness = false`) re-runs
//! itself with `GMR_AUTORUN_SCENARIO=<name>` for each scenario and reports like libtest.
//! Scenarios wait on conditions with deadlines, never on fixed sleeps.
#![allow(unsafe_code)]
// This file is its own test harness: it reports on stdout like libtest.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use gmr::{Delivery, Gmr, GmrGuard, InstallError, ReportError, Trigger};

const SCENARIO_ENV: &str = "GMR_AUTORUN_SCENARIO";
const RULE: &str = "========================================================================";

type Scenario = (&'static str, fn());

const SCENARIOS: &[Scenario] = &[
    (
        "guard_lifecycle_and_one_hook_per_process",
        guard_lifecycle_and_one_hook_per_process,
    ),
    ("sigusr2_writes_a_report", sigusr2_writes_a_report),
    (
        "sigusr2_with_the_file_trigger_still_reports",
        sigusr2_with_the_file_trigger_still_reports,
    ),
    (
        "configured_signal_is_used_and_others_untouched",
        configured_signal_is_used_and_others_untouched,
    ),
    (
        "signal_none_leaves_every_disposition_alone",
        signal_none_leaves_every_disposition_alone,
    ),
    (
        "ignored_signal_is_not_taken_over",
        ignored_signal_is_not_taken_over,
    ),
    ("file_trigger_lifecycle", file_trigger_lifecycle),
    (
        "uncreatable_trigger_file_fails_install",
        uncreatable_trigger_file_fails_install,
    ),
    (
        "programmatic_api_blocking_and_async",
        programmatic_api_blocking_and_async,
    ),
    ("burst_of_signals_coalesces", burst_of_signals_coalesces),
    (
        "a_signal_flood_gives_one_report_per_min_interval",
        a_signal_flood_gives_one_report_per_min_interval,
    ),
    (
        "trigger_file_changes_share_the_min_interval",
        trigger_file_changes_share_the_min_interval,
    ),
    (
        "a_caller_stops_waiting_for_a_stuck_reporter",
        a_caller_stops_waiting_for_a_stuck_reporter,
    ),
    (
        "concurrent_requests_share_reports",
        concurrent_requests_share_reports,
    ),
    ("host_owns_the_signal", host_owns_the_signal),
    (
        "the_capture_signal_is_handled_from_install",
        the_capture_signal_is_handled_from_install,
    ),
    (
        "one_tracing_event_per_report_and_warnings",
        one_tracing_event_per_report_and_warnings,
    ),
    (
        "gmr_never_waits_for_the_applications_log_output",
        gmr_never_waits_for_the_applications_log_output,
    ),
    ("stderr_holds_only_the_report", stderr_holds_only_the_report),
    (
        "stderr_holds_only_the_report_child",
        stderr_holds_only_the_report_child,
    ),
];

/// Scenarios that are only run by another scenario.
const NESTED: &[&str] = &["stderr_holds_only_the_report_child"];

fn main() -> ExitCode {
    if let Ok(name) = std::env::var(SCENARIO_ENV) {
        let Some((_, scenario)) = SCENARIOS.iter().find(|(n, _)| *n == name) else {
            eprintln!("unknown scenario {name}");
            return ExitCode::FAILURE;
        };
        scenario();
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in SCENARIOS.iter().filter(|(n, _)| !NESTED.contains(n)) {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let selected: Vec<&Scenario> = SCENARIOS
        .iter()
        .filter(|(n, _)| !NESTED.contains(n))
        .filter(|(n, _)| filters.is_empty() || filters.iter().any(|f| n.contains(f.as_str())))
        .collect();
    println!("\nrunning {} tests", selected.len());
    let mut failed = Vec::new();
    for (name, _) in &selected {
        let (ok, output) = run_scenario(name, Duration::from_secs(120));
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push((*name, output));
        }
    }
    for (name, output) in &failed {
        println!("\n---- {name} ----\n{output}");
    }
    let passed = selected.len() - failed.len();
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; 0 measured; {} filtered out\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        SCENARIOS.len() - NESTED.len() - selected.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one scenario in a child process with a deadline; returns success and its output.
fn run_scenario(name: &str, timeout: Duration) -> (bool, String) {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return (false, format!("cannot find the test binary: {e}")),
    };
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => return (false, format!("tempdir: {e}")),
    };
    let out_path = dir.path().join("output");
    let Ok(out) = fs::File::create(&out_path) else {
        return (false, "cannot create the output file".to_owned());
    };
    let Ok(err) = out.try_clone() else {
        return (false, "cannot clone the output file".to_owned());
    };
    let child = Command::new(exe)
        .env(SCENARIO_ENV, name)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return (false, format!("cannot start the scenario: {e}")),
    };
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let output = fs::read_to_string(&out_path).unwrap_or_default();
    match status {
        Some(status) if status.success() => (true, output),
        Some(status) => (false, format!("{status}\n{output}")),
        None => (false, format!("timed out after {timeout:?}\n{output}")),
    }
}

// ---------------------------------------------------------------- helpers

fn config(toml: &str) -> config::Config {
    config::Config::builder()
        .add_source(config::File::from_str(toml, config::FileFormat::Toml))
        .build()
        .expect("test config parses")
}

fn install(toml: &str) -> GmrGuard {
    Gmr::builder()
        .config(&config(toml))
        .package(gmr::package!())
        .install()
        .expect("install")
}

/// Polls `condition` every 10 ms until it holds or `timeout` passes.
fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Report files in `dir`.
fn reports_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.contains("_gurumeditation_") && !n.starts_with('.'))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn thread_names() -> Vec<String> {
    fs::read_dir("/proc/self/task")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| fs::read_to_string(e.path().join("comm")).ok())
                .map(|s| s.trim().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn count_threads(name: &str) -> usize {
    thread_names().iter().filter(|n| *n == name).count()
}

/// Waits (bounded) until exactly one thread is named `gmr-reporter`.
///
/// A thread the reporter starts (its symbolizer, its deadline watcher) carries the
/// reporter's name for the moment between `clone` and std naming it, so a single read
/// can see two; a second reporter would stay and fail the wait.
fn one_reporter_thread() -> bool {
    wait_until(Duration::from_secs(5), || {
        count_threads("gmr-reporter") == 1
    })
}

fn raise(signal: i32) {
    // SAFETY: kill with our own pid and a valid signal number has no memory-safety concerns.
    let rc = unsafe { libc::kill(libc::getpid(), signal) };
    assert_eq!(rc, 0, "kill failed");
}

fn disposition(signal: i32) -> usize {
    // SAFETY: zeroed sigaction is valid; a null new action only queries.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(libc::sigaction(signal, std::ptr::null(), &mut old), 0);
        old.sa_sigaction
    }
}

/// Appends a byte: changes size and mtime, visible on any filesystem.
fn touch(path: &Path) {
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open trigger file");
    file.write_all(b".").expect("append to trigger file");
}

fn toml_with_dir(dir: &Path, extra: &str) -> String {
    format!(
        "[gmr]\nservice_name = \"autorun\"\nlog_dir = \"{}\"\n{extra}\n",
        dir.display()
    )
}

// ---------------------------------------------------------------- scenarios

fn guard_lifecycle_and_one_hook_per_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = toml_with_dir(dir.path(), "signal = \"none\"");
    let guard = install(&toml);
    assert!(one_reporter_thread(), "threads: {:?}", thread_names());

    // Same settings: shared, still one reporter.
    let shared = install(&toml);
    assert!(one_reporter_thread(), "threads: {:?}", thread_names());

    // Other settings: a clear error, never a second reporter.
    let other = Gmr::builder()
        .config(&config(&toml_with_dir(
            dir.path(),
            "signal = \"none\"\nmax_reports = 3",
        )))
        .install();
    match other {
        Err(InstallError::AlreadyInstalled) => {}
        other => panic!("expected AlreadyInstalled, got {other:?}"),
    }
    assert!(
        InstallError::AlreadyInstalled
            .to_string()
            .contains("already installed")
    );
    assert!(
        one_reporter_thread(),
        "threads after the refused install: {:?}",
        thread_names()
    );

    let reports = guard.reports();
    drop(shared);
    assert!(
        reports.report_blocking(Trigger::Api).is_ok(),
        "one guard still alive"
    );
    let started = Instant::now();
    drop(guard);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "drop took {took:?}");
    assert!(wait_until(Duration::from_secs(2), || count_threads(
        "gmr-reporter"
    ) == 0));
    assert_eq!(
        reports.report_blocking(Trigger::Api).err(),
        Some(ReportError::Stopped)
    );
    assert!(!reports.request(Trigger::Api));

    // After the last guard, a new install works.
    let again = install(&toml_with_dir(
        dir.path(),
        "signal = \"none\"\nmax_reports = 3",
    ));
    assert!(again.reports().report_blocking(Trigger::Api).is_ok());
}

fn sigusr2_writes_a_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let guard = install(&toml_with_dir(dir.path(), ""));
    assert!(guard.signal_trigger_active());
    raise(libc::SIGUSR2);
    assert!(
        wait_until(Duration::from_secs(30), || reports_in(dir.path()).len()
            == 1),
        "no report after SIGUSR2"
    );
    let text = fs::read_to_string(&reports_in(dir.path())[0]).expect("read report");
    assert!(text.starts_with(RULE));
    assert!(text.contains("trigger = signal"));
    // The process goes on: a second signal gives a second report.
    raise(libc::SIGUSR2);
    assert!(wait_until(Duration::from_secs(30), || reports_in(
        dir.path()
    )
    .len()
        == 2));
}

/// oslo.reports: with the file trigger configured, SIGUSR2 killed the process. Here both work.
fn sigusr2_with_the_file_trigger_still_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("logs dir");
    let trigger = dir.path().join("trigger");
    let guard = install(&toml_with_dir(
        &logs,
        &format!(
            "file_event_handler = \"{}\"\nfile_event_handler_interval = 0.05",
            trigger.display()
        ),
    ));
    assert!(guard.signal_trigger_active());
    raise(libc::SIGUSR2);
    assert!(wait_until(Duration::from_secs(30), || reports_in(&logs)
        .len()
        == 1));
    touch(&trigger);
    assert!(wait_until(Duration::from_secs(30), || reports_in(&logs)
        .len()
        == 2));
    let texts: Vec<String> = reports_in(&logs)
        .iter()
        .map(|p| fs::read_to_string(p).expect("report"))
        .collect();
    assert!(texts.iter().any(|t| t.contains("trigger = signal")));
    assert!(texts.iter().any(|t| t.contains("trigger = file")));
}

fn configured_signal_is_used_and_others_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let usr2_before = disposition(libc::SIGUSR2);
    let guard = install(&toml_with_dir(dir.path(), "signal = \"SIGUSR1\""));
    assert!(guard.signal_trigger_active());
    assert_eq!(disposition(libc::SIGUSR2), usr2_before, "SIGUSR2 untouched");
    assert_eq!(usr2_before, libc::SIG_DFL);
    raise(libc::SIGUSR1);
    assert!(
        wait_until(Duration::from_secs(30), || reports_in(dir.path()).len()
            == 1),
        "no report after SIGUSR1"
    );
}

fn signal_none_leaves_every_disposition_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let signals = [libc::SIGUSR1, libc::SIGUSR2, libc::SIGHUP, libc::SIGQUIT];
    let before: Vec<usize> = signals.iter().map(|s| disposition(*s)).collect();
    let guard = install(&toml_with_dir(dir.path(), "signal = \"none\""));
    assert!(!guard.signal_trigger_active());
    let after: Vec<usize> = signals.iter().map(|s| disposition(*s)).collect();
    assert_eq!(before, after);
}

static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records every tracing event as `LEVEL message field=value …`.
struct Recorder;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorder {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        struct Visitor(String);
        impl tracing::field::Visit for Visitor {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                use std::fmt::Write as _;
                let _ = write!(self.0, " {}={:?}", field.name(), value);
            }
        }
        let mut visitor = Visitor(format!("{}", event.metadata().level()));
        event.record(&mut visitor);
        EVENTS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(visitor.0);
    }
}

fn record_events() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let subscriber = tracing_subscriber::registry().with(Recorder);
    tracing::subscriber::set_global_default(subscriber).expect("set subscriber");
}

fn events_matching(pattern: &str) -> Vec<String> {
    EVENTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|e| e.contains(pattern))
        .cloned()
        .collect()
}

fn ignored_signal_is_not_taken_over() {
    record_events();
    // SAFETY: setting SIG_IGN for SIGUSR2 before any other thread uses it.
    unsafe {
        libc::signal(libc::SIGUSR2, libc::SIG_IGN);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let trigger = dir.path().join("trigger");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("logs dir");
    let guard = install(&toml_with_dir(
        &logs,
        &format!(
            "file_event_handler = \"{}\"\nfile_event_handler_interval = 0.05",
            trigger.display()
        ),
    ));
    assert!(!guard.signal_trigger_active());
    assert_eq!(disposition(libc::SIGUSR2), libc::SIG_IGN, "still ignored");
    assert!(!events_matching("WARN").is_empty(), "a warning says so");
    assert!(events_matching("SIG_IGN").len() == 1, "{:?}", EVENTS.lock());
    raise(libc::SIGUSR2);
    touch(&trigger);
    let reports = guard.reports();
    // The file is written before the count is updated: wait for both.
    assert!(
        wait_until(Duration::from_secs(30), || reports_in(&logs).len() == 1
            && reports.reports_made() == 1),
        "the file trigger still works"
    );
    let report = fs::read_to_string(&reports_in(&logs)[0]).expect("report");
    assert!(
        report.contains("trigger = file"),
        "the ignored signal made no report"
    );
}

fn file_trigger_lifecycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("logs dir");
    let trigger = dir.path().join("gmr_trigger");
    // A change made before install does not fire.
    fs::write(&trigger, b"before").expect("pre-existing trigger");
    let guard = install(&toml_with_dir(
        &logs,
        &format!(
            "signal = \"none\"\nfile_event_handler = \"{}\"\nfile_event_handler_interval = 0.05",
            trigger.display()
        ),
    ));
    let reports = guard.reports();
    // Ten poll intervals: nothing.
    assert!(!wait_until(Duration::from_millis(500), || reports
        .reports_made()
        > 0));

    touch(&trigger);
    assert!(wait_until(Duration::from_secs(30), || reports_in(&logs)
        .len()
        == 1));
    // One touch, one report: still one after ten more intervals.
    assert!(!wait_until(Duration::from_millis(500), || reports_in(
        &logs
    )
    .len()
        > 1));
    let text = fs::read_to_string(&reports_in(&logs)[0]).expect("report");
    assert!(text.contains("trigger = file"));

    // Log rotation: deleted, then re-created by a touch.
    fs::remove_file(&trigger).expect("remove trigger");
    assert!(!wait_until(Duration::from_millis(300), || reports_in(
        &logs
    )
    .len()
        > 1));
    touch(&trigger);
    assert!(wait_until(Duration::from_secs(30), || reports_in(&logs)
        .len()
        == 2));
    touch(&trigger);
    assert!(wait_until(Duration::from_secs(30), || reports_in(&logs)
        .len()
        == 3));
}

fn uncreatable_trigger_file_fails_install() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-dir").join("trigger");
    let result = Gmr::builder()
        .config(&config(&format!(
            "[gmr]\nsignal = \"none\"\nfile_event_handler = \"{}\"\n",
            missing.display()
        )))
        .install();
    let error = result.expect_err("install must fail");
    let message = error.to_string();
    assert!(
        matches!(error, InstallError::TriggerFile { .. }),
        "{message}"
    );
    assert!(message.contains("gmr.file_event_handler"), "{message}");
    assert!(message.contains("no-such-dir"), "{message}");

    // What is not a regular file is refused at install, naming the key and what is there.
    let fifo = dir.path().join("fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink(dir.path().join("planted"), &dangling).expect("symlink");
    for (path, what) in [
        (fifo.as_path(), "a FIFO"),
        (dir.path(), "a directory"),
        (Path::new("/dev/null"), "a device"),
        (dangling.as_path(), "symbolic link"),
    ] {
        let error = Gmr::builder()
            .config(&config(&format!(
                "[gmr]\nsignal = \"none\"\nfile_event_handler = \"{}\"\n",
                path.display()
            )))
            .install()
            .expect_err("install must refuse it");
        let message = error.to_string();
        assert!(
            matches!(error, InstallError::TriggerFileRefused { .. }),
            "{message}"
        );
        assert!(message.contains("gmr.file_event_handler"), "{message}");
        assert!(message.contains(what), "{message}");
    }
    assert!(
        !dir.path().join("planted").exists(),
        "nothing created through the link"
    );

    // A missing file in an existing directory is created.
    let created = dir.path().join("created_trigger");
    let _guard = install(&format!(
        "[gmr]\nsignal = \"none\"\nfile_event_handler = \"{}\"\n",
        created.display()
    ));
    assert!(created.exists());
}

fn programmatic_api_blocking_and_async() {
    let dir = tempfile::tempdir().expect("tempdir");
    let guard = install(&toml_with_dir(dir.path(), "signal = \"none\""));
    let reports = guard.reports();

    let report = reports.report_blocking(Trigger::Api).expect("report");
    assert_eq!(report.header().trigger, Trigger::Api);
    assert!(report.section(gmr::report::titles::THREADS).is_some());
    assert!(reports_in(dir.path()).is_empty(), "a value is not written");

    match reports.write_blocking(Trigger::Api).expect("written") {
        Delivery::File(path) => assert!(path.exists()),
        other => panic!("expected a file, got {other:?}"),
    }

    let a = reports
        .shared_report_blocking(Trigger::Http, Duration::from_secs(60))
        .expect("shared");
    let b = reports
        .shared_report_blocking(Trigger::Http, Duration::from_secs(60))
        .expect("shared");
    assert!(Arc::ptr_eq(&a, &b), "within max_age the report is shared");

    // The async variant leaves the (single) runtime worker free while the report is made.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let done = std::sync::atomic::AtomicBool::new(false);
        let ticks = AtomicUsize::new(0);
        let report = async {
            let r = reports.report(Trigger::Api).await;
            done.store(true, Ordering::SeqCst);
            r
        };
        let ticker = async {
            while !done.load(Ordering::SeqCst) {
                ticks.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        };
        let (report, ()) = tokio::join!(report, ticker);
        assert!(report.is_ok());
        assert!(
            ticks.load(Ordering::SeqCst) > 1,
            "the worker kept running other tasks during the report"
        );
        match reports.write(Trigger::Api).await.expect("async write") {
            Delivery::File(path) => assert!(path.exists()),
            other => panic!("expected a file, got {other:?}"),
        }
    });
}

fn burst_of_signals_coalesces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let guard = install(&toml_with_dir(dir.path(), ""));
    let reports = guard.reports();
    for _ in 0..100 {
        raise(libc::SIGUSR2);
    }
    assert!(wait_until(Duration::from_secs(30), || reports
        .reports_made()
        >= 1));
    // Wait until the count has been still for half a second.
    let mut last = reports.reports_made();
    let mut still_since = Instant::now();
    let settled = wait_until(Duration::from_secs(60), || {
        let now = reports.reports_made();
        if now != last {
            last = now;
            still_since = Instant::now();
        }
        still_since.elapsed() > Duration::from_millis(500)
    });
    assert!(settled);
    let made = reports.reports_made();
    assert!((1..=5).contains(&made), "100 signals gave {made} reports");
    assert_eq!(reports_in(dir.path()).len() as u64, made);
    // Still alive and answering.
    assert!(reports.report_blocking(Trigger::Api).is_ok());
}

/// Waits until `reports_made` has not moved for `still`; the count then.
fn settled_count(reports: &gmr::ReportHandle, still: Duration) -> u64 {
    let mut last = reports.reports_made();
    let mut since = Instant::now();
    assert!(
        wait_until(Duration::from_secs(60), || {
            let now = reports.reports_made();
            if now != last {
                last = now;
                since = Instant::now();
            }
            since.elapsed() >= still
        }),
        "the report count never settled"
    );
    last
}

/// A signal every 10 ms for 1.2 s with `min_interval = "300ms"`: about one report per interval
/// (not 120), and a last report made after the last signal (a trailing report, so the last
/// signal is not lost).
fn a_signal_flood_gives_one_report_per_min_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let guard = install(&toml_with_dir(dir.path(), "min_interval = \"300ms\""));
    let reports = guard.reports();
    let started = Instant::now();
    let mut last_signal = started;
    while started.elapsed() < Duration::from_millis(1200) {
        raise(libc::SIGUSR2);
        last_signal = Instant::now();
        std::thread::sleep(Duration::from_millis(10));
    }
    let last_signal_at = std::time::SystemTime::now() - last_signal.elapsed();
    let made = settled_count(&reports, Duration::from_millis(900));
    let elapsed = started.elapsed();
    // One per started interval over the flood, plus the trailing one.
    let bound = elapsed.as_millis() as u64 / 300 + 2;
    assert!(
        (2..=bound).contains(&made),
        "{made} reports in {elapsed:?} (bound {bound})"
    );
    let files = reports_in(dir.path());
    assert_eq!(files.len() as u64, made);
    let newest = files
        .iter()
        .filter_map(|f| fs::metadata(f).and_then(|m| m.modified()).ok())
        .max()
        .expect("report files");
    assert!(
        newest >= last_signal_at,
        "the last report was made before the last signal"
    );
    // The API is not limited by it.
    let before = reports.reports_made();
    for _ in 0..3 {
        reports.write_blocking(Trigger::Api).expect("written");
    }
    assert_eq!(reports.reports_made(), before + 3);
}

/// Changes of the trigger file closer than `min_interval` share one report too.
fn trigger_file_changes_share_the_min_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("logs");
    let trigger = dir.path().join("trigger");
    let guard = install(&toml_with_dir(
        &logs,
        &format!(
            "signal = \"none\"\nmin_interval = \"2s\"\nfile_event_handler = \"{}\"\nfile_event_handler_interval = 0.02",
            trigger.display()
        ),
    ));
    let reports = guard.reports();
    // Before the first report starts (not when it is seen made, which a loaded machine's debug
    // build may take half a second more for): the interval runs from its start.
    let first = Instant::now();
    touch(&trigger);
    assert!(wait_until(Duration::from_secs(30), || reports
        .reports_made()
        == 1));
    // Changes seen by several polls within the interval: one more report, at its end.
    for _ in 0..5 {
        touch(&trigger);
        // Three polls see the change; no report yet.
        assert!(!wait_until(Duration::from_millis(60), || reports
            .reports_made()
            > 1));
    }
    assert!(wait_until(Duration::from_secs(30), || reports
        .reports_made()
        == 2));
    assert!(
        first.elapsed() >= Duration::from_millis(1500),
        "the second report came {:?} after the first",
        first.elapsed()
    );
    assert_eq!(settled_count(&reports, Duration::from_millis(500)), 2);
}

fn a_caller_stops_waiting_for_a_stuck_reporter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let guard = install(&toml_with_dir(dir.path(), "signal = \"none\""));
    let reports = guard.reports();
    // A section that blocks the reporter until released, as a hung filesystem or a full
    // stderr pipe would.
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let entered_tx = Mutex::new(entered_tx);
    let release_rx = Mutex::new(release_rx);
    let stuck = gmr::register_section("Stuck Section", move || {
        let _ = entered_tx.lock().map(|tx| tx.send(()));
        let _ = release_rx.lock().map(|rx| rx.recv());
        Ok::<_, String>(gmr::Content::new().field("released", true))
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let blocked = {
        let reports = reports.clone();
        std::thread::spawn(move || reports.report_blocking(Trigger::Api))
    };
    entered_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the reporter entered the stuck section");
    let started = Instant::now();
    let answer = runtime.block_on(reports.shared_rendered_within(
        Trigger::Http,
        gmr::OutputFormat::Text,
        Duration::from_millis(1),
        Duration::from_millis(200),
    ));
    assert_eq!(
        answer.err(),
        Some(ReportError::TimedOut(Duration::from_millis(200)))
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    release_tx.send(()).expect("release");
    assert!(blocked.join().expect("thread").is_ok());
    stuck.unregister();
    // The reporter goes on afterwards.
    assert!(reports.report_blocking(Trigger::Api).is_ok());
}

fn concurrent_requests_share_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let guard = install(&toml_with_dir(dir.path(), "signal = \"none\""));
    let reports = guard.reports();
    let before = reports.reports_made();
    let barrier = Arc::new(Barrier::new(50));
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let reports = reports.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                reports.report_blocking(Trigger::Api)
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().expect("thread").is_ok());
    }
    let made = reports.reports_made() - before;
    assert!(
        (1..=3).contains(&made),
        "50 concurrent requests gave {made} reports"
    );
}

static HOST_HANDLER_CALLS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn host_handler(_: libc::c_int) {
    HOST_HANDLER_CALLS.fetch_add(1, Ordering::SeqCst);
}

fn host_owns_the_signal() {
    // The host installs its own SIGUSR2 handler first (as uWSGI does).
    // SAFETY: a valid handler function and a zeroed, then filled, sigaction.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = host_handler as *const () as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR2, &action, std::ptr::null_mut()),
            0
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    fs::create_dir(&logs).expect("logs");
    let trigger = dir.path().join("trigger");
    let guard = install(&toml_with_dir(
        &logs,
        &format!(
            "signal = \"none\"\nfile_event_handler = \"{}\"\nfile_event_handler_interval = 0.05",
            trigger.display()
        ),
    ));
    assert_eq!(
        disposition(libc::SIGUSR2),
        host_handler as *const () as usize
    );
    for expected in 1..=3 {
        raise(libc::SIGUSR2);
        assert!(wait_until(Duration::from_secs(10), || {
            HOST_HANDLER_CALLS.load(Ordering::SeqCst) == expected
        }));
    }
    assert_eq!(guard.reports().reports_made(), 0, "SIGUSR2 is the host's");
    touch(&trigger);
    assert!(wait_until(Duration::from_secs(30), || reports_in(&logs)
        .len()
        == 1));
    assert_eq!(
        disposition(libc::SIGUSR2),
        host_handler as *const () as usize
    );
}

/// The capture signal's default action kills the process: its handler is installed by
/// `install()`, so the signal sent by anyone before the first report is harmless.
fn the_capture_signal_is_handled_from_install() {
    let capture = libc::SIGRTMIN() + 5;
    assert_eq!(disposition(capture), libc::SIG_DFL, "nobody handles it yet");
    let dir = tempfile::tempdir().expect("tempdir");
    let guard = install(&toml_with_dir(dir.path(), "signal = \"none\""));
    assert_eq!(guard.reports().reports_made(), 0, "no report yet");
    assert_ne!(
        disposition(capture),
        libc::SIG_DFL,
        "handled from install on"
    );
    for _ in 0..10 {
        raise(capture);
    }
    // Still alive (a default action would have ended the process at the first one), and
    // reports still capture every thread.
    let report = guard
        .reports()
        .report_blocking(Trigger::Api)
        .expect("a report after the signals");
    let threads = report
        .section(gmr::report::titles::THREADS)
        .and_then(|s| s.body().ok())
        .map(|b| b.to_json())
        .expect("threads section");
    assert!(
        threads["stacks_captured"].as_u64().is_some_and(|n| n >= 2),
        "{threads}"
    );
}

fn one_tracing_event_per_report_and_warnings() {
    record_events();
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing-logs");
    let guard = install(&toml_with_dir(dir.path(), "signal = \"none\""));
    let reports = guard.reports();
    for _ in 0..3 {
        reports.write_blocking(Trigger::Api).expect("written");
    }
    // gmr's threads log through gmr-log: the events follow the reports.
    assert!(wait_until(Duration::from_secs(10), || events_matching(
        "gmr report written"
    )
    .len()
        >= 3));
    let written = events_matching("gmr report written");
    assert_eq!(written.len(), 3, "{written:?}");
    for event in &written {
        assert!(event.starts_with("INFO"), "{event}");
        for field in ["trigger=api", "destination=", "duration_ms=", "bytes="] {
            assert!(event.contains(field), "{field} missing in {event}");
        }
        assert!(event.contains(&dir.path().display().to_string()), "{event}");
    }
    drop(guard);

    // A fallback is a warning.
    let guard = install(&toml_with_dir(&missing, "signal = \"none\""));
    let delivery = guard
        .reports()
        .write_blocking(Trigger::Api)
        .expect("fallback");
    assert!(
        matches!(delivery, Delivery::StderrFallback { .. }),
        "{delivery:?}"
    );
    assert!(wait_until(Duration::from_secs(10), || !events_matching(
        "cannot write the report to log_dir"
    )
    .is_empty()));
    let warnings = events_matching("cannot write the report to log_dir");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("WARN"), "{}", warnings[0]);
}

/// While closed, the application's log output blocks every thread but the scenario's own:
/// what a full stderr pipe does to a subscriber writing to it.
static LOG_GATE: (Mutex<bool>, std::sync::Condvar) = (Mutex::new(false), std::sync::Condvar::new());
static SCENARIO_THREAD: std::sync::OnceLock<std::thread::ThreadId> = std::sync::OnceLock::new();

struct Gate;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Gate {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if SCENARIO_THREAD.get() == Some(&std::thread::current().id()) {
            return;
        }
        let (closed, opened) = &LOG_GATE;
        let mut closed = closed.lock().unwrap_or_else(|e| e.into_inner());
        while *closed {
            closed = opened.wait(closed).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn set_log_gate(closed: bool) {
    *LOG_GATE.0.lock().unwrap_or_else(|e| e.into_inner()) = closed;
    LOG_GATE.1.notify_all();
}

/// The reporter and the admin endpoint's events go through gmr-log: while the application's
/// log output is blocked, reports are still made and delivered, events beyond gmr-log's
/// queue are dropped, and one warning says how many once the output moves again.
fn gmr_never_waits_for_the_applications_log_output() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let _ = SCENARIO_THREAD.set(std::thread::current().id());
    let subscriber = tracing_subscriber::registry().with(Gate).with(Recorder);
    tracing::subscriber::set_global_default(subscriber).expect("set subscriber");
    let dir = tempfile::tempdir().expect("tempdir");
    let guard = install(&toml_with_dir(dir.path(), "signal = \"none\""));
    let reports = guard.reports();
    set_log_gate(true);
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = reports.clone();
    std::thread::spawn(move || {
        for _ in 0..3 {
            let _ = tx.send(writer.write_blocking(Trigger::Api));
        }
    });
    for _ in 0..3 {
        let written = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the reporter made the report while log output was blocked");
        assert!(matches!(written, Ok(Delivery::File(_))), "{written:?}");
    }
    // Events of any thread, through gmr-log: none waits, the ones beyond its queue are counted.
    for i in 0..3000 {
        gmr::log_without_blocking(|| tracing::info!(i, "flood of events"));
    }
    set_log_gate(false);
    assert!(
        wait_until(Duration::from_secs(20), || !events_matching(
            "gmr dropped log events"
        )
        .is_empty()),
        "no warning about dropped events"
    );
    let warning = &events_matching("gmr dropped log events")[0];
    assert!(
        warning.starts_with("WARN") && warning.contains("dropped="),
        "{warning}"
    );
    // Relayed events keep their fields.
    assert!(wait_until(Duration::from_secs(20), || events_matching(
        "gmr report written"
    )
    .iter()
    .any(|e| e.contains("trigger=api") && e.contains("bytes="))));
}

fn stderr_holds_only_the_report() {
    let (ok, output) = run_scenario(
        "stderr_holds_only_the_report_child",
        Duration::from_secs(60),
    );
    assert!(ok, "child failed:\n{output}");
    // The child's stdout and stderr go to the same file: exactly one report and nothing else.
    assert!(
        output.starts_with(RULE),
        "output starts with something else:\n{output}"
    );
    let opening = "====                        Guru Meditation                         ====";
    assert_eq!(
        output.lines().filter(|l| *l == opening).count(),
        1,
        "{output}"
    );
    assert!(output.contains("trigger = signal"));
    let last = output.lines().last().unwrap_or_default();
    assert!(
        !last.contains("gmr"),
        "trailing output after the report: {last:?}"
    );
}

fn stderr_holds_only_the_report_child() {
    let guard = install("[gmr]\nservice_name = \"quiet\"\n");
    raise(libc::SIGUSR2);
    let reports = guard.reports();
    assert!(wait_until(Duration::from_secs(30), || reports
        .reports_made()
        == 1));
    // The report is written before reports_made is read by us only after the write; wait for
    // the reporter to go idle by asking for a value (which queues behind it).
    let _ = reports.report_blocking(Trigger::Api);
}
