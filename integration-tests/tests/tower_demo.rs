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
    let token = demo.token().expect("generated token in the banner");
    let auth = format!("Authorization: Bearer {token}");
    let ok = http(demo.addr, "GET", "/admin/gmr", &[&auth]);
    assert_eq!(ok.status, 200);
    assert!(ok.text().contains("Guru Meditation"));
    assert!(
        !ok.text().contains(&token),
        "the token never appears in a report"
    );
    assert_eq!(ok.header("cache-control").as_deref(), Some("no-store"));
    let json = http(demo.addr, "GET", "/admin/gmr?format=json", &[&auth]);
    assert_eq!(json.status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&json.body).expect("json report");
    assert_eq!(doc["trigger"], "http");
    let denied = http(demo.addr, "GET", "/admin/gmr", &[]);
    assert_eq!(denied.status, 401);
    assert!(
        denied
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Bearer"))
    );
    assert_eq!(
        http(
            demo.addr,
            "GET",
            "/admin/gmr",
            &["Authorization: Bearer wrong"]
        )
        .status,
        401
    );
    assert_eq!(
        http(
            demo.addr,
            "POST",
            "/admin/gmr",
            &[&auth, "Content-Length: 0"]
        )
        .status,
        405
    );
    assert_eq!(http(demo.addr, "GET", "/nope", &[]).status, 404);
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
