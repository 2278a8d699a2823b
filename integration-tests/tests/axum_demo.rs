//! `axum-demo` as a user runs it: SIGUSR2, the admin endpoint's answers over raw TCP, `--no-gmr`,
//! and graceful shutdown.

use std::time::Duration;

use gmr_integration_tests::{
    Demo, check_full_report, http, parse_response, raw_request, signal_report,
};

const WAIT: Duration = Duration::from_secs(60);

/// One raw HTTP/1.1 exchange, exactly the bytes given plus `Host` and `Connection: close`.
fn raw(demo: &Demo, method: &str, path: &str, headers: &str) -> gmr_integration_tests::RawResponse {
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{headers}\r\n",
        demo.addr
    );
    let bytes = raw_request(demo.addr, request.as_bytes()).expect("HTTP exchange");
    parse_response(&bytes)
        .unwrap_or_else(|| panic!("unparsable: {:?}", String::from_utf8_lossy(&bytes)))
}

#[test]
fn sigusr2_writes_a_full_report_and_the_server_keeps_serving() {
    let demo = Demo::start("axum-demo", &[]);
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
    let stderr = signal_report(&demo);
    assert!(stderr.contains("destination=stderr"), "{stderr}");
    let response = http(demo.addr, "GET", "/", &[]);
    assert_eq!(response.status, 200);
    assert!(response.text().contains("hello from axum-demo"));
}

#[test]
fn admin_endpoint_answers_over_raw_tcp() {
    let demo = Demo::start("axum-demo", &[]);
    let token = demo.token().expect("generated token in the banner");
    let auth = format!("Authorization: Bearer {token}\r\n");

    let ok = raw(&demo, "GET", "/admin/gmr", &auth);
    assert_eq!(ok.status, 200, "{}", ok.head);
    check_full_report(&ok.text()).unwrap_or_else(|e| panic!("{e}:\n{}", ok.text()));
    assert!(ok.text().contains("trigger = http"));
    assert!(
        !ok.text().contains(&token),
        "the token never appears in a report"
    );
    assert!(
        !demo.stderr().contains(&token),
        "the token never appears in a log"
    );
    assert_eq!(ok.header("cache-control").as_deref(), Some("no-store"));
    assert!(
        ok.header("content-type")
            .is_some_and(|v| v.starts_with("text/plain")),
        "{}",
        ok.head
    );

    // The scheme is case-insensitive.
    let lower = raw(
        &demo,
        "GET",
        "/admin/gmr",
        &format!("Authorization: bearer {token}\r\n"),
    );
    assert_eq!(lower.status, 200, "{}", lower.head);

    let json = raw(
        &demo,
        "GET",
        "/admin/gmr",
        &format!("{auth}Accept: application/json\r\n"),
    );
    assert_eq!(json.status, 200);
    let doc: serde_json::Value = serde_json::from_slice(&json.body).expect("json report");
    assert_eq!(doc["trigger"], "http");
    assert_eq!(doc["pid"], demo.pid());

    let head = raw(&demo, "HEAD", "/admin/gmr", &auth);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "HEAD has no body");

    for (what, headers) in [
        ("no Authorization", String::new()),
        (
            "a wrong token",
            "Authorization: Bearer wrong-token-0123456789abcdef\r\n".to_owned(),
        ),
        ("the token with one character changed", {
            let mut wrong = token.clone();
            let last = if wrong.ends_with('0') { '1' } else { '0' };
            wrong.pop();
            wrong.push(last);
            format!("Authorization: Bearer {wrong}\r\n")
        }),
        (
            "another scheme",
            format!("Authorization: Basic {token}\r\n"),
        ),
        (
            "the token without a scheme",
            format!("Authorization: {token}\r\n"),
        ),
        ("an empty header", "Authorization:\r\n".to_owned()),
    ] {
        let denied = raw(&demo, "GET", "/admin/gmr", &headers);
        assert_eq!(denied.status, 401, "{what}: {}", denied.head);
        assert!(
            denied
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{what}: {}",
            denied.head
        );
        assert!(!denied.text().contains("Guru Meditation"), "{what}");
    }

    for method in ["POST", "PUT", "DELETE"] {
        let refused = raw(
            &demo,
            method,
            "/admin/gmr",
            &format!("{auth}Content-Length: 0\r\n"),
        );
        assert_eq!(refused.status, 405, "{method}: {}", refused.head);
        assert!(!refused.text().contains("Guru Meditation"), "{method}");
    }
    assert_eq!(raw(&demo, "GET", "/admin/unknown", &auth).status, 404);
    assert_eq!(raw(&demo, "GET", "/nope", "").status, 404);
    assert_eq!(raw(&demo, "GET", "/", "").status, 200);
}

#[test]
fn no_gmr_serves_no_admin_endpoint() {
    let demo = Demo::start("axum-demo", &["--no-gmr"]);
    assert!(demo.token().is_none(), "{:?}", demo.banner);
    assert_eq!(raw(&demo, "GET", "/", "").status, 200);
    assert_eq!(raw(&demo, "GET", "/admin/gmr", "").status, 404);
    assert_eq!(
        raw(
            &demo,
            "GET",
            "/admin/gmr",
            "Authorization: Bearer anything-at-all-0123456789\r\n"
        )
        .status,
        404,
        "no token, no endpoint"
    );
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut demo = Demo::start("axum-demo", &[]);
    assert_eq!(http(demo.addr, "GET", "/", &[]).status, 200);
    demo.signal(libc::SIGTERM);
    let status = demo.wait_exit(WAIT).expect("exits after SIGTERM");
    assert!(status.success(), "{status:?}\n{}", demo.stderr());
}
