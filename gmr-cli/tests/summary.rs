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
