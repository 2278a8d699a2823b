//! `gmr summary` on reports of this process made to look like several replicas (host and pid
//! of the header): replicas whose newest report is older than the trigger are listed as late
//! and left out, `--expect` counts the missing ones, unreadable files are listed, older
//! reports of a replica give way to its newest, and versions are counted.

use std::path::Path;
use std::process::{Command, Output};

use gmr::{Gmr, Trigger};
use serde_json::Value;

fn gmr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmr"))
        .args(args)
        .output()
        .expect("run gmr")
}

/// A report of this process as replica `host:pid`, generated at `at`, of version `version`.
fn replica(dir: &Path, base: &Value, host: &str, pid: u32, at: &str, version: &str, seq: u32) {
    let mut doc = base.clone();
    doc["host"] = host.into();
    doc["pid"] = pid.into();
    doc["generated_at"] = at.into();
    doc["version"] = version.into();
    let compact: String = at
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    let name = format!("svc_gurumeditation_{compact}_{host}_{pid}_{seq}.json");
    std::fs::write(dir.join(name), doc.to_string()).expect("write report");
}

#[test]
fn late_missing_unreadable_and_versions() {
    let engine = Gmr::builder()
        .package(gmr::package!())
        .build()
        .expect("engine");
    let base = engine.report(Trigger::File).to_json();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    replica(d, &base, "web-1", 101, "2026-11-26T03:14:15Z", "1.4.2", 1);
    replica(d, &base, "web-2", 202, "2026-11-26T03:14:16Z", "1.4.3", 1);
    // web-2's earlier report gives way to its newest.
    replica(d, &base, "web-2", 202, "2026-11-26T03:00:00Z", "1.4.3", 0);
    // web-3 did not answer this trigger: its newest report is from before.
    replica(d, &base, "web-3", 303, "2026-11-26T02:00:00Z", "1.4.2", 1);
    std::fs::write(
        d.join("svc_gurumeditation_20261126T031415_web-4_404_1.json"),
        "{\"report_",
    )
    .expect("write");
    let dir_arg = d.to_str().expect("utf-8 path");

    let out = gmr(&[
        "summary",
        "--since",
        "2026-11-26T03:14:00Z",
        "--expect",
        "4",
        "--format",
        "json",
        dir_arg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(s["summary_version"], 1);
    assert_eq!(s["replicas"], 2);
    assert_eq!((&s["expected"], &s["missing"]), (&4.into(), &2.into()));
    let reports: Vec<&str> = s["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .filter_map(|r| r["replica"].as_str())
        .collect();
    assert_eq!(reports, ["web-1:101", "web-2:202"]);
    assert_eq!(s["reports"][1]["older_reports"], 1);
    assert_eq!(s["late"][0]["replica"], "web-3:303");
    assert_eq!(s["late"][0]["generated_at"], "2026-11-26T02:00:00Z");
    let unreadable = s["unreadable"][0]["error"].as_str().expect("unreadable");
    assert!(unreadable.contains(":1:"), "line and column: {unreadable}");
    let versions: Vec<(String, u64)> = s["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["version"].as_str().unwrap_or("").to_owned(),
                v["replicas"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(versions, [("1.4.2".to_owned(), 1), ("1.4.3".to_owned(), 1)]);
    // Every stack of the two fresh replicas is on both.
    let groups = s["thread_groups"].as_array().expect("groups");
    assert!(!groups.is_empty());
    assert!(
        groups.iter().all(|g| g["replicas"] == 2 && g["of"] == 2),
        "{groups:?}"
    );

    let text = gmr(&[
        "summary",
        "--since",
        "2026-11-26T03:14:00Z",
        "--expect",
        "4",
        dir_arg,
    ]);
    let text = String::from_utf8(text.stdout).expect("utf-8");
    assert!(text.starts_with("gmr summary: 2 replicas"), "{text}");
    assert!(
        text.contains(
            "MISSING: 2 of 4 expected replicas have no report of this round (1 of them late, below)"
        ),
        "{text}"
    );
    assert!(
        text.contains("LATE: 1 replica whose newest report is older than the round"),
        "{text}"
    );
    let late = text
        .find("Late: newest report older than the round")
        .expect("late table");
    assert!(text[late..].contains("web-3:303"), "{text}");
    assert!(text.contains("Unreadable files (1):"), "{text}");
    assert!(text.contains("2/2 replicas, "), "{text}");

    // Without --since, the round is the window before the newest report: web-3 is still late.
    let inferred = gmr(&["summary", "--format", "json", dir_arg]);
    let s: Value = serde_json::from_slice(&inferred.stdout).expect("JSON");
    assert_eq!(
        (&s["replicas"], &s["round_inferred"]),
        (&2.into(), &true.into())
    );
    assert_eq!(s["round_since"], "2026-11-26T03:13:16Z");
}

#[test]
fn nothing_readable_is_an_error_with_exit_code_3() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = gmr(&["summary", dir.path().to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no report could be read"));
}

/// A frame as the JSON view writes it (`docs/report-format.md`, frame fields).
fn frame(function: &str, path: &str, line: u32, offset: u32, kind: &str) -> Value {
    serde_json::json!({
        "function": function, "name": function, "file": format!("/src/{path}"), "path": path,
        "line": line, "module": "svc", "offset": format!("{offset:#x}"),
        "address": format!("{:#x}", 0x5555_0000_u32 + offset), "inlined": false, "kind": kind,
    })
}

/// The tokio task dump of one runtime, in the shape of `green_threads.tasks[]`: `pool` tasks
/// awaiting the pool (their work awaits a semaphore, their connection a read), one task
/// awaiting shutdown; `offset` moves every address, as another build of the same source does.
fn task_dump(pool: &[u64], offset: u32) -> Value {
    let read = vec![
        frame(
            "tokio::io::PollEvented<…>::poll_read",
            "tokio-1.54.1/src/io/poll_evented.rs",
            170,
            offset + 0x10,
            "framework",
        ),
        frame(
            "hyper::proto::h1::conn::Conn<…>::poll_read",
            "hyper-1.8.1/src/proto/h1/conn.rs",
            270,
            offset + 0x20,
            "framework",
        ),
    ];
    let acquire = vec![
        frame(
            "tokio::sync::batch_semaphore::Acquire::poll",
            "tokio-1.54.1/src/sync/batch_semaphore.rs",
            610,
            offset + 0x30,
            "framework",
        ),
        frame(
            "app::pool::Pool::acquire::{async_fn}",
            "src/pool.rs",
            42,
            offset + 0x40,
            "application",
        ),
        frame(
            "app::handlers::checkout::{async_fn}",
            "src/handlers.rs",
            17,
            offset + 0x50,
            "application",
        ),
    ];
    let shutdown = vec![
        frame(
            "tokio::sync::notify::Notified::poll",
            "tokio-1.54.1/src/sync/notify.rs",
            1228,
            offset + 0x60,
            "framework",
        ),
        frame(
            "app::shutdown::{async_fn}",
            "src/main.rs",
            88,
            offset + 0x70,
            "application",
        ),
    ];
    serde_json::json!({
        "runtime": "main", "status": "ok", "task_count": pool.len() + 1,
        "groups": [
            {"tasks": pool, "traces": [read, acquire]},
            {"tasks": [1], "traces": [shutdown]},
        ],
    })
}

/// A request in flight, as `green_threads.requests[].requests[]` holds it.
fn request(id: u64, path: &str, age_ms: u64, task: Option<(u64, usize)>) -> Value {
    serde_json::json!({
        "id": id, "method": "GET", "path": path, "route": path, "age_ms": age_ms,
        "state": "waiting", "thread": null, "polled_by_tid": null, "in_poll_ms": null,
        "last_poll_ms": age_ms, "task_id": task.map(|t| t.0),
        "task_stack": task.map(|(_, group)| serde_json::json!({"dump": 0, "group": group})),
        "spans": [],
    })
}

#[test]
fn task_groups_and_requests_merge_across_replicas_and_builds() {
    let engine = Gmr::builder()
        .package(gmr::package!())
        .build()
        .expect("engine");
    let base = engine.report(Trigger::File).to_json();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let at = "2026-11-26T03:14:15Z";
    let with = |tasks: Value, requests: Vec<Value>| {
        let mut doc = base.clone();
        doc["green_threads"]["tasks"] = serde_json::json!([tasks]);
        doc["green_threads"]["requests"] = serde_json::json!([{
            "source": "axum", "in_flight": requests.len(), "stuck_in_poll": 0,
            "requests": requests,
        }]);
        doc
    };
    // Two builds of one source (other addresses), and a replica whose dump timed out.
    let a = with(
        task_dump(&[10, 11, 12], 0x1000),
        vec![request(1, "/checkout", 9_000, Some((10, 0)))],
    );
    let b = with(
        task_dump(&[20, 21], 0x8000),
        vec![
            request(4, "/checkout", 12_500, Some((20, 0))),
            request(5, "/", 40, None),
        ],
    );
    let c = with(
        serde_json::json!({"runtime": "main", "status": "timed out",
            "note": "the task dump did not finish in 1000 ms", "task_count": 0, "groups": []}),
        vec![],
    );
    replica(d, &a, "web-1", 101, at, "1.4.2", 1);
    replica(d, &b, "web-2", 202, at, "1.4.2", 1);
    replica(d, &c, "web-3", 303, at, "1.4.2", 1);
    let dir_arg = d.to_str().expect("utf-8 path");

    let out = gmr(&["summary", "--since", at, "--format", "json", dir_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let groups = s["task_groups"].as_array().expect("task groups");
    assert_eq!(groups.len(), 2, "{groups:?}");
    let pool = &groups[0];
    assert_eq!(
        (&pool["replicas"], &pool["of"], &pool["count"]),
        (&2.into(), &3.into(), &5.into()),
        "{pool}"
    );
    assert_eq!(pool["headline"], "app::pool::Pool::acquire::{async_fn}");
    assert_eq!(pool["headline_at"], "src/pool.rs:42");
    // Where its work waits, not where its connection does.
    assert_eq!(
        pool["innermost"],
        "tokio::sync::batch_semaphore::Acquire::poll"
    );
    assert_eq!(groups[1]["headline"], "app::shutdown::{async_fn}");
    assert_eq!(groups[1]["count"], 2);
    assert_eq!(s["task_dumps_failed"][0]["replica"], "web-3:303");
    assert_eq!(s["task_dumps_failed"][0]["status"], "timed out");

    // The oldest request fleet-wide, with its replica and its task's stack.
    let oldest = &s["requests"]["oldest"];
    assert_eq!(s["requests"]["in_flight"], 3);
    assert_eq!(
        (
            &oldest[0]["replica"],
            &oldest[0]["id"],
            &oldest[0]["task_id"]
        ),
        (&"web-2:202".into(), &4.into(), &20.into())
    );
    assert_eq!(
        oldest[0]["task_stack"],
        "`app::pool::Pool::acquire::{async_fn}` at src/pool.rs:42, in `tokio::sync::batch_semaphore::Acquire::poll`"
    );
    assert_eq!(oldest[1]["replica"], "web-1:101");
    assert_eq!(oldest[2]["task_stack"], Value::Null);

    let text = gmr(&["summary", "--since", at, dir_arg]);
    let text = String::from_utf8(text.stdout).expect("utf-8");
    assert!(
        text.contains(
            "2/3 replicas, 5 tasks: `app::pool::Pool::acquire::{async_fn}`  on web-1:101, web-2:202"
        ),
        "{text}"
    );
    assert!(
        text.contains("its task #20: `app::pool::Pool::acquire::{async_fn}` at src/pool.rs:42"),
        "{text}"
    );
    assert!(
        text.contains(
            "web-3:303, runtime main: timed out: the task dump did not finish in 1000 ms"
        ),
        "{text}"
    );
    let requests = text.find("Oldest requests in flight").expect("requests");
    let tasks = text.find("Task stacks: 2 groups").expect("task groups");
    assert!(requests < tasks, "{text}");
}
