//! `tower-demo` as a user runs it: signals, HTTP, the admin endpoint, graceful shutdown.

use std::time::Duration;

use gmr_integration_tests::{Demo, http};

#[test]
fn sigusr2_writes_a_full_report_and_the_server_keeps_serving() {
    let demo = Demo::start("tower-demo", &[]);
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
    let stderr = gmr_integration_tests::signal_report(&demo);
    assert!(stderr.contains("tokio runtimes"), "the runtime is listed");
    let response = http(demo.addr, "GET", "/", &[]);
    assert_eq!(response.status, 200);
    assert!(response.text().contains("hello"));
}

#[test]
fn admin_endpoint_auth_and_methods() {
    let demo = Demo::start("tower-demo", &[]);
    gmr_integration_tests::check_admin_endpoint(&demo, "tower-demo");
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
}

#[test]
fn no_gmr_runs_the_same_server_without_gmr() {
    let demo = Demo::start("tower-demo", &["--no-gmr"]);
    assert!(demo.token().is_none());
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
    assert_eq!(http(demo.addr, "GET", "/admin/gmr", &[]).status, 404);
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut demo = Demo::start("tower-demo", &[]);
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
    demo.signal(libc::SIGTERM);
    let status = demo
        .wait_exit(Duration::from_secs(30))
        .expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}");
}
