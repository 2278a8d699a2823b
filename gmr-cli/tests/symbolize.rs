//! `gmr symbolize` on a report of a stripped binary: a copy of `axum-demo` stripped of its
//! symbols and debug information (`objcopy --strip-all`) writes a report with `module+offset`
//! and no names; its debug file (`objcopy --only-keep-debug`) put under a debug directory by
//! build-id gives its frames the names, files and lines that the unstripped binary's own
//! report shows.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use gmr_integration_tests::{Demo, demo_binary, wait_report_files, write_file};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn gmr(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gmr"))
        .args(args)
        .output()
        .expect("run gmr")
}

fn objcopy(args: &[&str], from: &Path, to: &Path) {
    let status = Command::new("objcopy")
        .args(args)
        .arg(from)
        .arg(to)
        .status()
        .expect("run objcopy (binutils)");
    assert!(status.success(), "objcopy {args:?} failed");
}

/// The report written by the demo at `binary` after one trigger, as JSON.
fn report_of(binary: &Path, dir: &Path) -> Value {
    let log_dir = dir.join("reports");
    std::fs::create_dir(&log_dir).expect("log_dir");
    let trigger = dir.join("trigger");
    let config = write_file(
        dir,
        "demo.toml",
        &format!(
            "[gmr]\nlog_dir = {:?}\nfile_event_handler = {:?}\nfile_event_handler_interval = 0.1\nformat = \"json\"\n",
            log_dir.display().to_string(),
            trigger.display().to_string()
        ),
    );
    let demo = Demo::start_binary(binary, &["--config", config.to_str().expect("path")], &[]);
    let touched = gmr(&["trigger", trigger.to_str().expect("path")]);
    assert!(touched.status.success());
    let files = wait_report_files(&log_dir, 1, WAIT)
        .unwrap_or_else(|| panic!("no report; stderr:\n{}", demo.stderr()));
    serde_json::from_slice(&std::fs::read(&files[0]).expect("read")).expect("JSON report")
}

/// The frames (function, path, line, kind) of the parked workers' stack.
fn parked_stack(report: &Value) -> Vec<(Value, Value, Value, Value)> {
    let stacks = report["threads"]["stacks"].as_array().expect("stacks");
    let threads = report["threads"]["threads"].as_array().expect("threads");
    let parked = threads
        .iter()
        .find(|t| t["name"] == "demo-parked-0")
        .and_then(|t| t["stack"].as_u64())
        .expect("the parked worker has a stack");
    stacks
        .iter()
        .find(|s| s["id"].as_u64() == Some(parked))
        .and_then(|s| s["frames"].as_array())
        .expect("its frames")
        .iter()
        .map(|f| {
            (
                f["function"].clone(),
                f["path"].clone(),
                f["line"].clone(),
                f["kind"].clone(),
            )
        })
        .collect()
}

#[test]
fn a_stripped_binary_s_report_gets_the_names_of_the_unstripped_one() {
    let original = demo_binary("axum-demo");
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    let stripped = bin.join("axum-demo");
    objcopy(&["--strip-all"], &original, &stripped);
    let debug = dir.path().join("axum-demo.debug");
    objcopy(&["--only-keep-debug"], &original, &debug);

    let run_dir = dir.path().join("stripped-run");
    std::fs::create_dir(&run_dir).expect("run dir");
    let report = report_of(&stripped, &run_dir);
    let module = report["threads"]["modules"]
        .as_array()
        .expect("modules")
        .iter()
        .find(|m| m["name"] == "axum-demo")
        .cloned()
        .expect("the executable is listed");
    let build_id = module["build_id"].as_str().expect("a build-id").to_owned();
    // Stripped: the application's frames have no names.
    let before = parked_stack(&report);
    assert!(
        before.iter().all(|(function, ..)| !function
            .as_str()
            .is_some_and(|f| f.contains("demo_parked_worker"))),
        "{before:?}"
    );

    // The debug file under a debug directory, by build-id (gdb's layout).
    let debug_dir = dir.path().join("debug");
    let by_id = debug_dir.join(".build-id").join(&build_id[..2]);
    std::fs::create_dir_all(&by_id).expect("build-id dir");
    std::fs::rename(&debug, by_id.join(format!("{}.debug", &build_id[2..]))).expect("move");
    let report_path = run_dir.join("report.json");
    std::fs::write(&report_path, report.to_string()).expect("write");
    let named_path = dir.path().join("named.json");
    let out = gmr(&[
        "symbolize",
        report_path.to_str().expect("path"),
        "--debug-dir",
        debug_dir.to_str().expect("path"),
        "-o",
        named_path.to_str().expect("path"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "axum-demo: debug information from {}",
            by_id.display()
        )),
        "{stderr}"
    );
    let named: Value =
        serde_json::from_slice(&std::fs::read(&named_path).expect("read")).expect("JSON");

    // The names, paths, lines and kinds of the unstripped binary's own report.
    let unstripped_dir = dir.path().join("unstripped-run");
    std::fs::create_dir(&unstripped_dir).expect("run dir");
    let reference = report_of(&original, &unstripped_dir);
    assert_eq!(parked_stack(&named), parked_stack(&reference));

    // And the text view shows them.
    let view = gmr(&["view", named_path.to_str().expect("path")]);
    let text = String::from_utf8(view.stdout).expect("utf-8");
    assert!(text.contains("gmr_examples::demo_parked_worker"), "{text}");
    assert!(text.contains("at examples/src/lib.rs:"), "{text}");
    assert!(
        text.contains("frames named offline by `gmr symbolize`"),
        "{text}"
    );

    // Without the debug directory, only the stripped binary itself is of this build: nothing
    // to name the frames with, which is said (with where to put the debug file), not guessed.
    let out = gmr(&["symbolize", report_path.to_str().expect("path")]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gmr: 0 frames named"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} is of its build but holds no symbols and no debug information",
            stripped.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            ".build-id/{}/{}.debug",
            &build_id[..2],
            &build_id[2..]
        )),
        "{stderr}"
    );
    // A binary without this build-id in the debug directory is not used; the unstripped
    // binary of this build, as <debug-dir>/<module>, is.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).expect("dir");
    objcopy(
        &["--remove-section", ".note.gnu.build-id"],
        &original,
        &other.join("axum-demo"),
    );
    let named_count = |debug_dir: &Path| {
        let out = gmr(&[
            "symbolize",
            report_path.to_str().expect("path"),
            "--debug-dir",
            debug_dir.to_str().expect("path"),
        ]);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .find_map(|l| l.strip_prefix("gmr: ")?.split_once(" frames named"))
            .and_then(|(n, _)| n.parse::<usize>().ok())
            .expect("a count")
    };
    assert_eq!(named_count(&other), 0);
    let same = dir.path().join("same");
    std::fs::create_dir(&same).expect("dir");
    std::fs::copy(&original, same.join("axum-demo")).expect("copy");
    assert!(named_count(&same) > 0);
}
