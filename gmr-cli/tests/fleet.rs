//! `gmr trigger` and `gmr summary` on reports written by real demo processes: three replicas
//! of `axum-demo` sharing a trigger file and a `log_dir` (JSON reports), one `/block` request
//! in one of them, one trigger; the summary names that replica and request, and counts the
//! groups every replica has as 3/3.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use gmr_integration_tests::{Demo, send_and_read, wait_report_files, wait_until, write_file};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn gmr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmr"))
        .args(args)
        .output()
        .expect("run gmr")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

/// The system call number of `clock_nanosleep`, where `std::thread::sleep` (the `/block`
/// handler) waits.
#[cfg(target_arch = "x86_64")]
const CLOCK_NANOSLEEP: &str = "230";
#[cfg(target_arch = "aarch64")]
const CLOCK_NANOSLEEP: &str = "115";

/// Whether a thread of `pid` sleeps in `clock_nanosleep`: the `/block` handler is running.
fn blocking_in_handler(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        std::fs::read_to_string(task.path().join("syscall"))
            .is_ok_and(|s| s.split_whitespace().next() == Some(CLOCK_NANOSLEEP))
    })
}

fn config(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let log_dir = dir.join("reports");
    std::fs::create_dir(&log_dir).expect("log_dir");
    let trigger = dir.join("trigger");
    let config = write_file(
        dir,
        "fleet.toml",
        &format!(
            "[gmr]\nlog_dir = {:?}\nfile_event_handler = {:?}\nfile_event_handler_interval = 0.1\nformat = \"json\"\n",
            log_dir.display().to_string(),
            trigger.display().to_string()
        ),
    );
    (config, log_dir, trigger)
}

#[test]
fn one_trigger_three_replicas_one_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (config, log_dir, trigger) = config(dir.path());
    let config = config.to_str().expect("utf-8 path");
    let demos: Vec<Demo> = (0..3)
        .map(|_| Demo::start("axum-demo", &["--config", config]))
        .collect();
    let blocked = &demos[1];
    let addr = blocked.addr;
    // Never panics when the demo is killed at the end with the request still blocked.
    let blocker = std::thread::spawn(move || {
        send_and_read(
            addr,
            b"GET /block?ms=20000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(30),
        )
    });
    assert!(
        wait_until(WAIT, || blocking_in_handler(blocked.pid())),
        "the /block handler never ran; stderr:\n{}",
        blocked.stderr()
    );

    // One trigger, through the command.
    let touched = gmr(&["trigger", trigger.to_str().expect("utf-8 path")]);
    assert!(
        touched.status.success(),
        "{}",
        String::from_utf8_lossy(&touched.stderr)
    );
    let printed = stdout(&touched);
    let since = printed
        .lines()
        .next()
        .and_then(|l| l.rsplit_once(" at "))
        .map(|(_, at)| at.to_owned())
        .unwrap_or_else(|| panic!("no time in {printed:?}"));
    let files = wait_report_files(&log_dir, 3, WAIT).unwrap_or_else(|| {
        let errs: Vec<String> = demos.iter().map(Demo::stderr).collect();
        panic!("not three reports; stderr:\n{}", errs.join("\n-----\n"))
    });
    assert_eq!(files.len(), 3, "one report per replica: {files:?}");
    let log_dir = log_dir.to_str().expect("utf-8 path");

    let json = gmr(&["summary", "--since", &since, "--format", "json", log_dir]);
    assert!(
        json.status.success(),
        "{}",
        String::from_utf8_lossy(&json.stderr)
    );
    let summary: Value = serde_json::from_str(&stdout(&json)).expect("summary JSON");
    assert_eq!(summary["replicas"], 3, "{summary}");
    assert_eq!(summary["late"], serde_json::json!([]));
    // The replicas are the three processes.
    let mut pids: Vec<i64> = summary["reports"]
        .as_array()
        .expect("reports")
        .iter()
        .filter_map(|r| r["pid"].as_i64())
        .collect();
    pids.sort_unstable();
    let mut want: Vec<i64> = demos.iter().map(|d| i64::from(d.pid())).collect();
    want.sort_unstable();
    assert_eq!(pids, want);

    // The oldest request fleet-wide is /block, on the blocked replica, polled by the thread
    // that is in the handler.
    let request = &summary["requests"]["oldest"][0];
    assert_eq!(request["path"], "/block", "{summary}");
    assert!(
        request["replica"]
            .as_str()
            .is_some_and(|r| r.ends_with(&format!(":{}", blocked.pid()))),
        "{request}"
    );
    assert!(
        request["thread_stack"]
            .as_str()
            .is_some_and(|s| s.contains("demo_block_handler")),
        "{request}"
    );
    assert_eq!(summary["requests"]["in_flight"], 1, "{summary}");

    // The parked workers are on every replica: 3/3, two threads each.
    let groups = summary["thread_groups"].as_array().expect("groups");
    let parked = groups
        .iter()
        .find(|g| g["headline"] == "gmr_examples::demo_parked_worker")
        .unwrap_or_else(|| panic!("no parked-worker group: {groups:?}"));
    assert_eq!(
        (&parked["replicas"], &parked["of"], &parked["count"]),
        (&3.into(), &3.into(), &6.into())
    );
    let handler = groups
        .iter()
        .find(|g| g["headline"] == "gmr_examples::demo_block_handler")
        .unwrap_or_else(|| panic!("no handler group: {groups:?}"));
    assert_eq!(handler["replicas"], 1);
    assert_eq!(handler["members"][0]["replica"], request["replica"]);
    let versions = summary["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0]["replicas"], 3);

    // The text says the same, the stuck request first.
    let text = gmr(&["summary", "--since", &since, log_dir]);
    assert!(text.status.success());
    let text = stdout(&text);
    assert!(
        text.starts_with("gmr summary: 3 replicas (axum-demo "),
        "{text}"
    );
    let replica = request["replica"].as_str().expect("replica");
    let request_line = text
        .lines()
        .find(|l| l.contains("/block"))
        .unwrap_or_else(|| panic!("no /block line:\n{text}"));
    assert!(
        request_line.contains(replica) && request_line.contains("GET"),
        "{text}"
    );
    assert!(
        text.contains("3/3 replicas, 6 threads: `gmr_examples::demo_parked_worker`"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "1/3 replicas, 1 thread: `gmr_examples::demo_block_handler`  on {replica}"
        )),
        "{text}"
    );
    let requests_at = text
        .find("Oldest requests in flight")
        .expect("requests part");
    let groups_at = text.find("Thread stacks").expect("groups part");
    assert!(requests_at < groups_at, "{text}");

    // Each report views as text with gmr's own renderer.
    let view = gmr(&["view", files[0].to_str().expect("utf-8 path")]);
    assert!(view.status.success());
    gmr_integration_tests::check_full_report(&stdout(&view)).unwrap_or_else(|e| panic!("{e}"));

    drop(demos);
    let _ = blocker.join();
}
