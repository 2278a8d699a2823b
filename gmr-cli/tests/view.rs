//! `gmr view` on reports of a real process (this test process, through `gmr::Gmr::report`):
//! the JSON of a report, viewed, is the text of the same report byte for byte; and the errors
//! an operator meets (unknown version, malformed file, unknown format) with their exit codes.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use gmr::{Content, Gmr, SectionError, Table, Trigger};

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
