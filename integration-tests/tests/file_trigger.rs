//! The trigger file and `log_dir` as operators use them: `touch` produces a report file named
//! as `docs/report-format.md` names them, with mode 0600, log rotation of the trigger file keeps it working, replicas
//! sharing a directory and a trigger file each write their own report, and `max_reports` holds.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gmr_integration_tests::{
    Demo, ReportName, check_full_report, report_files, sanitized_hostname, touch,
    wait_report_files, write_file,
};

const REPORT_WRITTEN: &str = "gmr report written";
const WAIT: Duration = Duration::from_secs(60);

/// A tempdir with `reports/` (the log_dir), `trigger` (the trigger file path) and a config
/// file holding both, plus `extra` lines under `[gmr]`.
struct Setup {
    dir: tempfile::TempDir,
    log_dir: PathBuf,
    trigger: PathBuf,
    config: PathBuf,
}

fn setup(extra: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().join("reports");
    std::fs::create_dir(&log_dir).expect("create log_dir");
    let trigger = dir.path().join("trigger");
    let config = write_file(
        dir.path(),
        "demo.toml",
        &format!(
            "[gmr]\nlog_dir = {:?}\nfile_event_handler = {:?}\nfile_event_handler_interval = 0.1\n{extra}\n",
            log_dir.display().to_string(),
            trigger.display().to_string(),
        ),
    );
    Setup {
        dir,
        log_dir,
        trigger,
        config,
    }
}

fn config_arg(setup: &Setup) -> [&str; 2] {
    ["--config", setup.config.to_str().expect("utf-8 path")]
}

fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8 file name")
}

#[test]
fn touch_writes_a_report_file_named_per_design_with_mode_0600() {
    let setup = setup("");
    let demo = Demo::start("axum-demo", &config_arg(&setup));
    assert_eq!(
        demo.trigger_file().as_deref(),
        Some(setup.trigger.as_path()),
        "banner: {:?}",
        demo.banner
    );
    assert!(
        setup.trigger.exists(),
        "the trigger file is created at install"
    );
    assert!(report_files(&setup.log_dir).is_empty());

    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    touch(&setup.trigger);
    let files = wait_report_files(&setup.log_dir, 1, WAIT)
        .unwrap_or_else(|| panic!("no report file after a touch; stderr:\n{}", demo.stderr()));
    assert!(demo.wait_stderr(REPORT_WRITTEN, 1, WAIT));
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert_eq!(files.len(), 1, "one touch, one report: {files:?}");
    let path = &files[0];

    let name = ReportName::parse(file_name(path)).expect("§3.3 name");
    assert_eq!(name.service, "axum-demo");
    assert_eq!(name.host, sanitized_hostname());
    assert_eq!(name.pid, u32::try_from(demo.pid()).expect("pid"));
    assert_eq!(name.seq, 1, "the first report file of the process");
    assert_eq!(name.extension, "txt");
    let unix = u64::try_from(name.unix_seconds).expect("after 1970");
    assert!(
        before.saturating_sub(1) <= unix && unix <= after + 1,
        "timestamp {} not UTC now ({before}..={after})",
        name.timestamp
    );

    let meta = std::fs::symlink_metadata(path).expect("stat report");
    assert!(meta.file_type().is_file(), "a regular file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "mode 0600");

    let text = std::fs::read_to_string(path).expect("read report");
    check_full_report(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert!(text.contains("trigger = file"));
    assert!(
        demo.stderr().contains(file_name(path)),
        "the log line names the file"
    );
    // Nothing but the report: no temporary left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&setup.log_dir)
        .expect("read log_dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn json_format_writes_json_files() {
    let setup = setup("format = \"json\"");
    let demo = Demo::start("tower-demo", &config_arg(&setup));
    touch(&setup.trigger);
    let files = wait_report_files(&setup.log_dir, 1, WAIT)
        .unwrap_or_else(|| panic!("no report file; stderr:\n{}", demo.stderr()));
    let name = ReportName::parse(file_name(&files[0])).expect("§3.3 name");
    assert_eq!(name.extension, "json");
    assert_eq!(name.service, "tower-demo");
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).expect("read")).expect("one JSON doc");
    assert_eq!(doc["trigger"], "file");
    assert_eq!(doc["pid"], u64::from(name.pid));
    assert_eq!(doc["service"], "tower-demo");
    assert!(doc["report_version"].is_u64());
}

#[test]
fn deleting_and_recreating_the_trigger_file_keeps_it_working() {
    let setup = setup("");
    let demo = Demo::start("axum-demo", &config_arg(&setup));
    touch(&setup.trigger);
    assert!(
        wait_report_files(&setup.log_dir, 1, WAIT).is_some(),
        "first touch: {}",
        demo.stderr()
    );
    assert!(demo.wait_stderr(REPORT_WRITTEN, 1, WAIT));

    // Log rotation: the file goes away; the watcher notes it.
    std::fs::remove_file(&setup.trigger).expect("remove trigger");
    assert!(
        demo.wait_stderr("gmr trigger file is gone", 1, WAIT),
        "deletion not noticed:\n{}",
        demo.stderr()
    );
    assert_eq!(
        demo.stderr_count(REPORT_WRITTEN),
        1,
        "deletion is no trigger"
    );

    touch(&setup.trigger);
    let files = wait_report_files(&setup.log_dir, 2, WAIT).unwrap_or_else(|| {
        panic!(
            "no report after the trigger file came back; stderr:\n{}",
            demo.stderr()
        )
    });
    assert_eq!(files.len(), 2);
    // And it keeps working after that.
    assert!(demo.wait_stderr(REPORT_WRITTEN, 2, WAIT));
    touch(&setup.trigger);
    assert!(
        wait_report_files(&setup.log_dir, 3, WAIT).is_some(),
        "a later touch: {}",
        demo.stderr()
    );
}

#[test]
fn replicas_sharing_log_dir_and_trigger_each_write_their_own_report() {
    let setup = setup("service_name = \"replica\"");
    let demos: Vec<Demo> = ["axum-demo", "tower-demo", "signal-host-demo"]
        .iter()
        .map(|name| Demo::start(name, &config_arg(&setup)))
        .collect();
    for demo in &demos {
        assert_eq!(
            demo.trigger_file().as_deref(),
            Some(setup.trigger.as_path())
        );
    }
    touch(&setup.trigger);
    if wait_report_files(&setup.log_dir, 3, WAIT).is_none() {
        let errs: Vec<String> = demos.iter().map(Demo::stderr).collect();
        panic!("not three reports; stderr:\n{}", errs.join("\n-----\n"));
    }
    for demo in &demos {
        assert!(demo.wait_stderr(REPORT_WRITTEN, 1, WAIT));
    }
    let files = report_files(&setup.log_dir);
    assert_eq!(
        files.len(),
        3,
        "one touch, one report per replica: {files:?}"
    );
    let names: Vec<ReportName> = files
        .iter()
        .map(|f| ReportName::parse(file_name(f)).expect("§3.3 name"))
        .collect();
    let mut pids: Vec<u32> = names.iter().map(|n| n.pid).collect();
    pids.sort_unstable();
    let mut expected: Vec<u32> = demos
        .iter()
        .map(|d| u32::try_from(d.pid()).expect("pid"))
        .collect();
    expected.sort_unstable();
    assert_eq!(pids, expected, "each replica wrote its own report");
    for name in &names {
        assert_eq!(name.service, "replica");
    }
    let mut distinct: Vec<&str> = files.iter().map(|f| file_name(f)).collect();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "distinct names");
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        check_full_report(&text).unwrap_or_else(|e| panic!("{e} in {}", file.display()));
    }
    drop(setup.dir);
}

#[test]
fn max_reports_keeps_the_newest_files() {
    let setup = setup("max_reports = 2");
    let demo = Demo::start("axum-demo", &config_arg(&setup));
    let mut written = Vec::new();
    for n in 1..=4 {
        touch(&setup.trigger);
        assert!(
            demo.wait_stderr(REPORT_WRITTEN, n, WAIT),
            "report {n} missing:\n{}",
            demo.stderr()
        );
        let files = report_files(&setup.log_dir);
        assert!(files.len() <= 2, "after report {n}: {files:?}");
        written.extend(
            files
                .iter()
                .map(|f| ReportName::parse(file_name(f)).expect("§3.3 name").seq),
        );
    }
    let mut seqs: Vec<u64> = report_files(&setup.log_dir)
        .iter()
        .map(|f| ReportName::parse(file_name(f)).expect("§3.3 name").seq)
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![3, 4], "the two newest of four are kept");
    written.sort_unstable();
    written.dedup();
    assert_eq!(written, vec![1, 2, 3, 4], "every report was written once");
}
