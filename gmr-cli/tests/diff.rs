//! `gmr diff` on two reports of a real axum-demo with a request blocking its worker: the same
//! verdicts as the second report's own "since the last report" part (one module, both
//! places), in text and JSON; and the errors an operator meets (reports of two processes, given
//! newest first) with their exit code.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use gmr_integration_tests::{Demo, http};
use serde_json::Value;

fn gmr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmr"))
        .args(args)
        .output()
        .expect("run gmr")
}

fn json_report(demo: &Demo, auth: &str) -> (Value, String) {
    let response = http(demo.addr, "GET", "/admin/gmr?format=json", &[auth]);
    assert_eq!(response.status, 200, "{}", response.text());
    let text = response.text();
    (serde_json::from_str(&text).expect("JSON report"), text)
}

fn stuck_tids(since: &Value) -> Vec<i64> {
    since["stuck"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["tid"].as_i64())
        .collect()
}

fn save(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write report");
    path.to_str().expect("utf-8 path").to_owned()
}

#[test]
fn diff_gives_the_verdicts_the_process_gave() {
    let demo = Demo::start("axum-demo", &["--workers", "3"]);
    let auth = format!(
        "Authorization: Bearer {}",
        demo.token().expect("the demo prints its token")
    );
    let addr = demo.addr;
    let block = std::thread::spawn(move || http(addr, "GET", "/block?ms=8000", &[]).status);
    // Readiness: a report showing the handler on its thread.
    let started = Instant::now();
    let (old, old_text) = loop {
        let (report, text) = json_report(&demo, &auth);
        if text.contains("gmr_examples::demo_block_handler") {
            break (report, text);
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "/block never showed"
        );
        std::thread::sleep(Duration::from_millis(1100));
    };
    // The time between the reports is what is compared: more than `admin.min_interval`.
    std::thread::sleep(Duration::from_millis(1500));
    let (new, new_text) = json_report(&demo, &auth);
    let dir = tempfile::tempdir().expect("tempdir");
    let old_path = save(dir.path(), "old.json", &old_text);
    let new_path = save(dir.path(), "new.json", &new_text);

    let process_says = stuck_tids(&new["threads"]["since"]);
    assert_eq!(process_says.len(), 1, "{}", new["threads"]["since"]);

    let out = gmr(&["diff", &old_path, &new_path, "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diff: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(stuck_tids(&diff["threads"]), process_says, "{diff}");
    assert_eq!(diff["pid"], old["pid"]);
    assert!(
        diff["green_threads"]["requests"]
            .to_string()
            .contains("GET /block"),
        "{diff}"
    );

    let out = gmr(&["diff", &old_path, &new_path]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("STUCK ≥")
            && l.contains(&format!("#{} ", process_says[0]))),
        "{text}"
    );
    assert!(text.contains("in flight ≥"), "{text}");

    // Newest first: refused, saying what to do.
    let out = gmr(&["diff", &new_path, &old_path]);
    if old["generated_at"] != new["generated_at"] {
        assert_eq!(out.status.code(), Some(2));
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(message.contains("give the older report first"), "{message}");
    }
    // Two processes: refused.
    let mut other = new.clone();
    other["pid"] = serde_json::json!(1);
    let other_path = save(dir.path(), "other.json", &other.to_string());
    let out = gmr(&["diff", &old_path, &other_path]);
    assert_eq!(out.status.code(), Some(2));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(message.contains("different processes"), "{message}");
    assert_eq!(block.join().expect("/block client"), 200);
}
