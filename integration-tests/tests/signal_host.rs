//! `signal-host-demo`, the uWSGI case: the host owns SIGUSR2 and gmr runs with
//! `signal = "none"`. SIGUSR2 reaches the host's handler and makes no report; the trigger file
//! and the admin endpoint do.

use std::time::{Duration, Instant};

use gmr_integration_tests::{
    Demo, check_full_report, http, report_files, touch, wait_report_files, write_file,
};

const WAIT: Duration = Duration::from_secs(60);
const HOST_LINE: &str = "host: received SIGUSR2";
const INTERVAL_S: f64 = 0.1;

struct Setup {
    _dir: tempfile::TempDir,
    log_dir: std::path::PathBuf,
    config: std::path::PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().join("reports");
    std::fs::create_dir(&log_dir).expect("log_dir");
    let trigger = dir.path().join("trigger");
    let config = write_file(
        dir.path(),
        "demo.toml",
        &format!(
            "[gmr]\nlog_dir = {:?}\nfile_event_handler = {:?}\nfile_event_handler_interval = {INTERVAL_S}\n",
            log_dir.display().to_string(),
            trigger.display().to_string()
        ),
    );
    Setup {
        _dir: dir,
        log_dir,
        config,
    }
}

fn start(setup: &Setup) -> Demo {
    Demo::start(
        "signal-host-demo",
        &["--config", setup.config.to_str().expect("utf-8 path")],
    )
}

#[test]
fn sigusr2_reaches_the_host_handler_and_makes_no_report() {
    let setup = setup();
    let mut demo = start(&setup);
    assert!(
        demo.banner
            .iter()
            .any(|l| l.contains("the signal trigger is off")),
        "{:?}",
        demo.banner
    );
    for n in 1..=3 {
        demo.signal(libc::SIGUSR2);
        assert!(
            demo.wait_stdout(HOST_LINE, n, WAIT),
            "the host's handler did not run ({n}); stdout {:?}, stderr:\n{}",
            demo.stdout_lines(),
            demo.stderr()
        );
    }
    // No report follows: watch for ten trigger-file poll intervals (1 s), which is also far
    // longer than the reporter takes to pick up a request.
    let quiet_until = Instant::now() + Duration::from_secs_f64(INTERVAL_S * 10.0);
    while Instant::now() < quiet_until {
        assert!(
            !demo.stderr().contains("gmr report written"),
            "SIGUSR2 made a gmr report:\n{}",
            demo.stderr()
        );
        assert!(report_files(&setup.log_dir).is_empty());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!demo.stderr().contains("Guru Meditation"));
    assert!(demo.alive(), "SIGUSR2 killed the host");
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
}

#[test]
fn the_trigger_file_makes_a_report() {
    let setup = setup();
    let demo = start(&setup);
    let trigger = demo.trigger_file().expect("trigger file in the banner");
    touch(&trigger);
    let files = wait_report_files(&setup.log_dir, 1, WAIT)
        .unwrap_or_else(|| panic!("no report file:\n{}", demo.stderr()));
    let text = std::fs::read_to_string(&files[0]).expect("read report");
    check_full_report(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert!(text.contains("trigger = file"));
    // Thread names longer than the kernel's 15 bytes are shown whole where Rust knows them.
    assert!(text.contains("\"gmr-file-trigger\""), "{text}");
    assert!(!text.contains("\"gmr-file-trigge\""), "{text}");
    // The host still owns SIGUSR2 afterwards.
    demo.signal(libc::SIGUSR2);
    assert!(demo.wait_stdout(HOST_LINE, 1, WAIT));
}

#[test]
fn the_admin_endpoint_makes_a_report() {
    let setup = setup();
    let demo = start(&setup);
    let token = demo.token().expect("generated token");
    let response = http(
        demo.addr,
        "GET",
        "/admin/gmr",
        &[&format!("Authorization: Bearer {token}")],
    );
    assert_eq!(response.status, 200, "{}", response.head);
    let text = response.text();
    check_full_report(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"));
    assert!(text.contains("trigger = http"));
    assert!(
        text.contains("signal = none"),
        "the configuration shows the choice"
    );
    assert_eq!(
        http(demo.addr, "GET", "/admin/gmr", &[]).status,
        401,
        "still authenticated"
    );
}

#[test]
fn signal_host_demo_without_a_trigger_file_in_its_config_uses_its_default() {
    // Built-in defaults: the demo picks a trigger file of its own and prints it.
    let demo = Demo::start("signal-host-demo", &[]);
    let trigger = demo.trigger_file().expect("trigger file in the banner");
    assert!(
        trigger.exists(),
        "created at install: {}",
        trigger.display()
    );
    touch(&trigger);
    assert!(
        demo.wait_stderr("gmr report written", 1, WAIT),
        "no report:\n{}",
        demo.stderr()
    );
    check_full_report(&demo.stderr()).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_file(&trigger);
}
