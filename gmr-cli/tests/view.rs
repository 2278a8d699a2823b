//! `gmr view` on reports of real processes: a running `axum-demo` (its JSON report file, viewed,
//! is the text the same process serves for that report, byte for byte, in every format) and
//! this test process (through `gmr::Gmr::report`, with registered sections and sources); and
//! the errors an operator meets (unknown version, malformed file, unknown format) with their
//! exit codes.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gmr::{Content, Gmr, SectionError, Table, Trigger};
use gmr_integration_tests::{Demo, report_files, send_and_read, wait_until, write_file};
use serde_json::Value;

fn gmr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmr"))
        .args(args)
        .output()
        .expect("run gmr")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A source of the Green Threads section with a table, as an application registers one.
struct Pool;

impl gmr::GreenThreadsSource for Pool {
    fn title(&self) -> String {
        "connection pool".to_owned()
    }

    fn snapshot(&self) -> Result<Content, SectionError> {
        Ok(Content::new().field("size", 4).table(
            "waiters",
            Table::new(["task", "waited"])
                .row(Content::new().field("task", 7).field("waited", "1.5 s"))
                .row(Content::new().field("task", 9).field("waited", "0.2 s")),
        ))
    }
}

/// An engine with everything a report can hold: configuration from a file with secrets,
/// registered sections (fields, a table, lines, a failing one), a Green Threads source.
fn engine(dir: &Path) -> Gmr {
    let file = dir.join("app.toml");
    std::fs::write(
        &file,
        "[gmr]\nservice_name = \"view-test\"\n[database]\nurl = \"postgres://app:hunter2@db/x\"\npool = 8\nhosts = [\"a\", \"b\"]\n",
    )
    .expect("config file");
    let config = config::Config::builder()
        .add_source(config::File::from(file))
        .build()
        .expect("config");
    Gmr::builder()
        .config(&config)
        .package(gmr::package!())
        .section("Job Queue", || {
            Ok::<_, String>(
                Content::new()
                    .field("depth", 3)
                    .group(
                        "oldest",
                        Content::new().field("id", 17).field("age", "12 s"),
                    )
                    .table(
                        "jobs",
                        Table::new(["id", "state"]).row(
                            Content::new()
                                .field("id", 1)
                                .field("state", "running\u{1b}[2J"),
                        ),
                    )
                    .line("drained at 03:00"),
            )
        })
        .section("Broken", || Err::<Content, _>("pool closed"))
        .build()
        .expect("engine")
}

/// The paths of the requests in flight in a report's JSON, and whether spans were recorded
/// for `/block` and a span outside requests (the demo's lock holder) is listed.
fn in_flight(doc: &Value) -> (HashSet<String>, bool) {
    let requests: Vec<&Value> = doc
        .pointer("/green_threads/requests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|block| block.get("requests")?.as_array())
        .flatten()
        .collect();
    let paths = requests
        .iter()
        .filter_map(|r| r.get("path")?.as_str().map(str::to_owned))
        .collect();
    let block_spans = requests.iter().any(|r| {
        r["path"] == "/block"
            && r["polled_by_tid"].is_i64()
            && r["spans"].as_array().is_some_and(|s| !s.is_empty())
    });
    let outside = doc
        .pointer("/green_threads/spans/outside_requests")
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty());
    (paths, block_spans && outside)
}

/// Asks `demo` for a report with SIGUSR2 and waits for its new file in `log_dir`.
fn signal_report(demo: &Demo, log_dir: &Path, seen: &mut HashSet<PathBuf>) -> Option<PathBuf> {
    demo.signal(libc::SIGUSR2);
    let mut new = None;
    wait_until(Duration::from_secs(30), || {
        new = report_files(log_dir)
            .into_iter()
            .find(|f| !seen.contains(f));
        new.is_some()
    });
    let file = new?;
    seen.insert(file.clone());
    Some(file)
}

#[test]
fn a_demo_s_json_report_views_as_the_text_it_serves_for_the_same_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().join("reports");
    std::fs::create_dir(&log_dir).expect("log_dir");
    // Reports go to log_dir as JSON; the admin endpoint answers any request within ten
    // minutes of a report with that same report, in the format asked for.
    let config = write_file(
        dir.path(),
        "demo.toml",
        &format!(
            "[gmr]\nlog_dir = {:?}\nformat = \"json\"\n[gmr.admin]\nmin_interval = \"10m\"\n[database]\nurl = \"postgres://app:hunter2@db/x\"\n",
            log_dir.display().to_string()
        ),
    );
    let demo = Demo::start(
        "axum-demo",
        &["--config", config.to_str().expect("utf-8 path"), "--spans"],
    );
    let token = demo.token().expect("the demo prints its generated token");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, &token).expect("token file");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    // Requests in flight: one blocking its worker thread, one awaiting a timer, one awaiting
    // the lock the demo never releases. The clients end when the demo is killed.
    let addr = demo.addr;
    let start_client = move |target: &'static str| {
        std::thread::spawn(move || {
            let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            send_and_read(addr, request.as_bytes(), Duration::from_secs(90))
        })
    };
    let targets = [
        ("/block", "/block?ms=60000"),
        ("/slow", "/slow?ms=60000"),
        ("/await-lock", "/await-lock"),
    ];
    let mut clients: Vec<_> = targets
        .iter()
        .map(|(path, target)| (*path, *target, start_client(target)))
        .collect();

    // Reports until one holds all three requests, /block with its thread and spans.
    let want: HashSet<String> = ["/block", "/slow", "/await-lock"].map(str::to_owned).into();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = HashSet::new();
    let file = loop {
        let file = signal_report(&demo, &log_dir, &mut seen)
            .unwrap_or_else(|| panic!("no report file; stderr:\n{}", demo.stderr()));
        let doc: Value =
            serde_json::from_slice(&std::fs::read(&file).expect("read report")).expect("JSON");
        let (paths, detailed) = in_flight(&doc);
        if paths.is_superset(&want) && detailed {
            break file;
        }
        assert!(
            Instant::now() < deadline,
            "no report with the three requests in flight: {paths:?}, spans {detailed}; demo \
             stderr:\n{}",
            demo.stderr()
        );
        // A client whose request never reached the server (its connection failed: it has
        // ended with nothing) is started again.
        for (path, target, client) in &mut clients {
            if !paths.contains(*path) && client.is_finished() {
                *client = start_client(target);
            }
        }
    };
    let file = file.to_str().expect("utf-8 path");

    let url = format!("http://{}/admin/gmr", demo.addr);
    for format in gmr::OutputFormat::ALL {
        let served = gmr(&[
            "fetch",
            &url,
            "--token-file",
            token_file.to_str().expect("utf-8 path"),
            "--format",
            format.name(),
        ]);
        assert!(
            served.status.success(),
            "{format}: {}; demo stderr:\n{}",
            stderr(&served),
            demo.stderr()
        );
        let viewed = gmr(&["view", file, "--format", format.name()]);
        assert!(viewed.status.success(), "{format}: {}", stderr(&viewed));
        assert_eq!(stdout(&viewed), stdout(&served), "{format}");
        if *format == gmr::OutputFormat::Json {
            // The endpoint served the very report of the file.
            assert_eq!(
                stdout(&served).into_bytes(),
                std::fs::read(file).expect("read report")
            );
        }
    }
    // The text is a full report with what the requests show.
    let text = stdout(&gmr(&["view", file]));
    gmr_integration_tests::check_full_report(&text).unwrap_or_else(|e| panic!("{e}"));
    for needle in [
        "/block",
        "/await-lock",
        "gmr_examples::demo_block_handler",
        "demo_lock_holder",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    assert!(!text.contains("hunter2"));

    drop(demo);
    for (_, _, client) in clients {
        let _ = client.join();
    }
}

#[test]
fn the_json_of_a_report_views_as_its_text_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gmr_engine = engine(dir.path());
    let source = gmr::register_green_threads_source(Arc::new(Pool));
    for trigger in [Trigger::Signal, Trigger::File] {
        let report = gmr_engine.report(trigger);
        let path = dir.path().join(format!("{trigger}.json"));
        std::fs::write(&path, report.to_json_string()).expect("write report");
        let path = path.to_str().expect("utf-8 path");

        let view = gmr(&["view", path]);
        assert!(view.status.success(), "{}", stderr(&view));
        let text = report.to_text();
        assert!(text.contains("connection pool") && text.contains("drained at 03:00"));
        assert!(!text.contains("hunter2"));
        assert_eq!(stdout(&view), text);

        let json = gmr(&["view", path, "--format", "json"]);
        assert_eq!(stdout(&json), report.to_json_string());

        // From standard input too.
        let piped = Command::new(env!("CARGO_BIN_EXE_gmr"))
            .args(["view", "-"])
            .stdin(std::fs::File::open(path).expect("open"))
            .output()
            .expect("run gmr");
        assert_eq!(stdout(&piped), text);
    }
    source.unregister();
}

#[test]
fn every_format_of_gmr_renders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = engine(dir.path()).report(Trigger::Api);
    let path = dir.path().join("r.json");
    std::fs::write(&path, report.to_json_string()).expect("write");
    for format in gmr::OutputFormat::ALL {
        let out = gmr(&[
            "view",
            path.to_str().expect("path"),
            "--format",
            format.name(),
        ]);
        assert!(out.status.success(), "{format}: {}", stderr(&out));
        assert_eq!(stdout(&out), report.render(*format), "{format}");
    }
}

#[test]
fn an_unknown_report_version_is_refused_with_exit_code_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut doc = engine(dir.path()).report(Trigger::Api).to_json();
    doc["report_version"] = serde_json::json!(gmr::report::REPORT_VERSION + 1);
    let path = dir.path().join("newer.json");
    std::fs::write(&path, doc.to_string()).expect("write");
    let out = gmr(&["view", path.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(3));
    let message = stderr(&out);
    assert!(
        message.contains(&format!(
            "report_version {} is not one this gmr reads (it reads {})",
            gmr::report::REPORT_VERSION + 1,
            gmr::report::REPORT_VERSION
        )),
        "{message}"
    );
    assert!(message.contains(path.to_str().expect("path")), "{message}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_malformed_file_is_named_with_line_and_column() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = engine(dir.path()).report(Trigger::Api).to_json_string();
    // Cut in the middle of line 3.
    let cut: String = text.lines().take(2).collect::<Vec<_>>().join("\n") + "\n  \"service\": \"x";
    let path = dir.path().join("cut.json");
    std::fs::write(&path, cut).expect("write");
    let out = gmr(&["view", path.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(3));
    let message = stderr(&out);
    assert!(
        message.starts_with(&format!("gmr: {}:3:", path.display())),
        "{message}"
    );
    assert!(message.contains("not valid JSON"), "{message}");
    let missing = gmr(&["view", "/nonexistent/report.json"]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(stderr(&missing).contains("cannot read /nonexistent/report.json"));
}

#[test]
fn an_unknown_format_is_a_usage_error_listing_the_formats() {
    let out = gmr(&["view", "r.json", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&gmr::OutputFormat::names()),
        "{}",
        stderr(&out)
    );
}
