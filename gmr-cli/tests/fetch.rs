//! `gmr fetch` against a real demo's admin endpoint, on loopback: the token from a file or
//! the environment (never from the command line), the formats, and what an operator is told
//! when the token is missing or wrong.

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};

use gmr_integration_tests::Demo;

fn gmr(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gmr"));
    command.args(args).env_remove("GMR_TOKEN");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run gmr")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn fetches_text_and_json_with_the_token_from_a_file_or_the_environment() {
    let demo = Demo::start("axum-demo", &[]);
    let token = demo.token().expect("the demo prints its generated token");
    let dir = tempfile::tempdir().expect("tempdir");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let token_file = token_file.to_str().expect("utf-8 path");
    let url = format!("http://{}", demo.addr);

    // Text, the endpoint's default; a URL without a path asks for /admin/gmr.
    let text = gmr(&["fetch", &url, "--token-file", token_file], &[]);
    assert!(text.status.success(), "{}", stderr(&text));
    let body = String::from_utf8(text.stdout.clone()).expect("utf-8");
    gmr_integration_tests::check_full_report(&body).unwrap_or_else(|e| panic!("{e}"));
    assert!(body.contains("trigger = http"));
    assert!(
        stderr(&text).is_empty(),
        "no warning for a 0600 file: {}",
        stderr(&text)
    );

    // JSON into a file, with the token from the environment; it views as a report.
    let out = dir.path().join("fetched.json");
    let json = gmr(
        &[
            "fetch",
            &format!("{url}/admin/gmr"),
            "--format",
            "json",
            "-o",
            out.to_str().expect("path"),
        ],
        &[("GMR_TOKEN", &token)],
    );
    assert!(json.status.success(), "{}", stderr(&json));
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("read")).expect("JSON");
    assert_eq!(doc["trigger"], "http");
    let mode = std::fs::metadata(&out).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "a report file is private");
    let view = gmr(&["view", out.to_str().expect("path")], &[]);
    assert!(view.status.success(), "{}", stderr(&view));
    assert!(!String::from_utf8_lossy(&view.stdout).contains(&token));
}

#[test]
fn a_missing_or_wrong_token_says_what_to_do_with_exit_code_4() {
    let demo = Demo::start("axum-demo", &[]);
    let url = format!("http://{}/admin/gmr", demo.addr);
    let none = gmr(&["fetch", &url], &[]);
    assert_eq!(none.status.code(), Some(4));
    assert!(
        stderr(&none).contains("give --token-file FILE or set GMR_TOKEN"),
        "{}",
        stderr(&none)
    );
    let wrong = gmr(&["fetch", &url], &[("GMR_TOKEN", "not-the-token")]);
    assert_eq!(wrong.status.code(), Some(4));
    assert!(
        stderr(&wrong).contains("the token was refused"),
        "{}",
        stderr(&wrong)
    );
    assert!(
        !stderr(&wrong).contains("not-the-token"),
        "the token is never printed"
    );
    // No token option on the command line at all.
    let argv = gmr(&["fetch", &url, "--token", "x"], &[]);
    assert_eq!(argv.status.code(), Some(2));
    // HTTPS is refused saying what to do instead.
    let https = gmr(&["fetch", "https://127.0.0.1:1/admin/gmr"], &[]);
    assert_eq!(https.status.code(), Some(2));
    assert!(
        stderr(&https).contains("plain HTTP only"),
        "{}",
        stderr(&https)
    );
}
