//! Secrets never leave the process (`docs/security.md`): a password in the configuration file, a URL
//! with credentials, secret environment variables (read as configuration, and listed with
//! `show_environment = true`), and a credential on the command line never appear in any
//! report, text or JSON, from the signal, the trigger file or HTTP; their keys do, masked.
//!
//! The demos reject unknown arguments, so the command-line credential travels in the one free
//! argument they take: the `--config` path, which holds a URL with credentials
//! (`…/s3://u:PASS@h/demo.toml`, a valid directory path).

use std::path::{Path, PathBuf};
use std::time::Duration;

use gmr_integration_tests::{Demo, check_full_report, http, report_files, touch, write_file};

const WAIT: Duration = Duration::from_secs(60);

const FILE_PASSWORD: &str = "S3cret-db-pass-111";
const URL_PASSWORD: &str = "url-pass-222";
const FILE_API_KEY: &str = "key-value-333";
const ADMIN_TOKEN: &str = "admin-token-4444444444444444";
const ENV_CONFIG_TOKEN: &str = "env-token-555";
const ENV_SECRET: &str = "proc-secret-666";
const ENV_URL_PASSWORD: &str = "proxy-pass-777";
const CMDLINE_PASSWORD: &str = "cmdline-pass-888";
/// The password in the demos' built-in `app.database_url`.
const BUILTIN_PASSWORD: &str = "demo-db-password";

/// The body of a PEM private key under `cert_bundle` (after a certificate) and `rsa_bundle`:
/// keys that do not look secret. Not a real key.
const PEM_BODY: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwPemBodyNineNineNine";
const RSA_BODY: &str = "MIIEpAIBAAKCAQEAuRsaBodyTenTenTen";
/// A certificate's body: public, shown.
const CERT_BODY: &str = "MIIBszCCAVmgAwIBAgIUCertificateBody";
/// The signature of a JWT inside an innocent-looking URL value.
const JWT_SIGNATURE: &str = "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
/// Credentials after `Bearer ` and `Basic ` in values whose keys do not look secret.
const BEARER_CREDENTIAL: &str = "bearer-cred-1212";
const BASIC_CREDENTIAL: &str = "YmFzaWM6Y3JlZDEzMTM=";
/// Values under keys named like secrets without the classic words.
const NAMED_SECRETS: [(&str, &str); 9] = [
    ("bearer", "named-bearer-1414"),
    ("jwt", "named-jwt-1515"),
    ("passwort", "named-passw-1616"),
    ("stripe_sk", "named-sk-1717"),
    ("aws_creds", "named-creds-1818"),
    ("session_cookie", "named-cookie-1919"),
    ("otp_seed", "named-otp-2020"),
    ("github_pat", "named-pat-2121"),
    ("sentry_dsn", "named-dsn-2222"),
];
/// Environment variables shown with `show_environment`, masked by the same rules.
const ENV_PAT: &str = "ghp_envpat2323232323";
const ENV_JWT_SIGNATURE: &str = "envJwtSignature2424242424";
const ENV_PEM_BODY: &str = "MIIEvQIBADANEnvPemBody2525";

fn jwt(signature: &str) -> String {
    format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.{signature}")
}

fn pem(label: &str, body: &str) -> String {
    format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
}

/// Every secret the tests seed; none may appear in any report.
fn secrets() -> Vec<&'static str> {
    let mut all = vec![
        FILE_PASSWORD,
        URL_PASSWORD,
        FILE_API_KEY,
        ADMIN_TOKEN,
        ENV_CONFIG_TOKEN,
        ENV_SECRET,
        ENV_URL_PASSWORD,
        CMDLINE_PASSWORD,
        BUILTIN_PASSWORD,
        PEM_BODY,
        RSA_BODY,
        JWT_SIGNATURE,
        BEARER_CREDENTIAL,
        BASIC_CREDENTIAL,
        ENV_PAT,
        ENV_JWT_SIGNATURE,
        ENV_PEM_BODY,
    ];
    all.extend(NAMED_SECRETS.iter().map(|(_, value)| *value));
    all
}

/// Environment of every run: a secret read as configuration, and secret-looking variables of
/// the process environment.
fn secret_env() -> Vec<(&'static str, String)> {
    vec![
        ("DEMO__APP__API_TOKEN", ENV_CONFIG_TOKEN.to_owned()),
        ("MY_SERVICE_SECRET", ENV_SECRET.to_owned()),
        (
            "HTTP_PROXY",
            format!("http://proxyuser:{ENV_URL_PASSWORD}@127.0.0.1:3128"),
        ),
        ("DEMO__GMR__SHOW_ENVIRONMENT", "true".to_owned()),
        ("GITHUB_PAT", ENV_PAT.to_owned()),
        ("JWT", jwt(ENV_JWT_SIGNATURE)),
        (
            "CERT_BUNDLE",
            format!(
                "{}{}",
                pem("CERTIFICATE", CERT_BODY),
                pem("PRIVATE KEY", ENV_PEM_BODY)
            ),
        ),
    ]
}

fn start(config: &Path, env: &[(&'static str, String)]) -> Demo {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Demo::start_with_env(
        "axum-demo",
        &["--config", config.to_str().expect("utf-8 path")],
        &env,
    )
}

/// Takes a report by signal, by the trigger file and by HTTP (text and JSON); returns the
/// texts of every report and everything the process wrote on stderr.
fn take_reports(demo: &Demo, trigger: &Path, log_dir: Option<&Path>) -> Vec<(String, String)> {
    demo.signal(libc::SIGUSR2);
    assert!(
        demo.wait_stderr("gmr report written", 1, WAIT),
        "signal: {}",
        demo.stderr()
    );
    touch(trigger);
    assert!(
        demo.wait_stderr("gmr report written", 2, WAIT),
        "file: {}",
        demo.stderr()
    );
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let text = http(demo.addr, "GET", "/admin/gmr", &[&auth]);
    assert_eq!(text.status, 200);
    let json = http(demo.addr, "GET", "/admin/gmr?format=json", &[&auth]);
    assert_eq!(json.status, 200);
    let mut out = vec![
        ("http text".to_owned(), text.text()),
        ("http json".to_owned(), json.text()),
        ("stderr".to_owned(), demo.stderr()),
    ];
    if let Some(log_dir) = log_dir {
        let files = report_files(log_dir);
        assert_eq!(files.len(), 2, "signal and file reports: {files:?}");
        for file in files {
            let body = std::fs::read_to_string(&file).expect("read report");
            out.push((file.display().to_string(), body));
        }
    }
    out
}

fn assert_no_secret(outputs: &[(String, String)]) {
    for (what, body) in outputs {
        for secret in secrets() {
            assert!(
                !body.contains(secret),
                "{secret:?} leaked in {what}:\n{}",
                body.lines()
                    .filter(|l| l.contains(secret))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

/// The text report shows each secret's key with `***`.
fn assert_masked_text(what: &str, text: &str) {
    check_full_report(text).unwrap_or_else(|e| panic!("{what}: {e}"));
    for expected in [
        "api_token = ***",
        "token = ***",
        "database_url = postgres://demo:***@127.0.0.1:5432/demo",
        "DEMO__APP__API_TOKEN = ***",
        "MY_SERVICE_SECRET = ***",
        "HTTP_PROXY = http://proxyuser:***@127.0.0.1:3128",
        "GITHUB_PAT = ***",
        "JWT = ***",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(expected)),
            "{what}: no line {expected:?}"
        );
    }
}

/// The JSON report shows each secret's key with `***`.
fn assert_masked_json(what: &str, doc: &serde_json::Value) {
    let values = &doc["configuration"]["values"];
    assert_eq!(values["app"]["api_token"], "***", "{what}");
    assert_eq!(values["gmr"]["admin"]["token"], "***", "{what}");
    assert_eq!(
        values["app"]["database_url"], "postgres://demo:***@127.0.0.1:5432/demo",
        "{what}"
    );
    let env = &doc["processes"]["environment"];
    assert_eq!(env["DEMO__APP__API_TOKEN"], "***", "{what}: {env}");
    assert_eq!(env["MY_SERVICE_SECRET"], "***", "{what}");
    assert_eq!(
        env["HTTP_PROXY"], "http://proxyuser:***@127.0.0.1:3128",
        "{what}"
    );
}

fn check_all(outputs: &[(String, String)], more_text: &[&str], more_json: &[(&str, &str)]) {
    assert_no_secret(outputs);
    for (what, body) in outputs {
        if what == "stderr" && !body.contains("Guru Meditation") {
            continue;
        }
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(body) {
            assert_masked_json(what, &doc);
            for (pointer, expected) in more_json {
                assert_eq!(
                    doc.pointer(pointer).and_then(|v| v.as_str()),
                    Some(*expected),
                    "{what}: {pointer}"
                );
            }
        } else {
            assert_masked_text(what, body);
            for expected in more_text {
                assert!(
                    body.lines().any(|l| l.trim_start().starts_with(expected)),
                    "{what}: no line {expected:?}"
                );
            }
        }
    }
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a JSON string is a TOML basic string")
}

/// A config file with a password key, a URL with credentials and a secret in a nested table;
/// reports go to files in `log_dir` in `format`.
fn config_file_secrets(format: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().join("reports");
    std::fs::create_dir(&log_dir).expect("log_dir");
    let trigger = dir.path().join("trigger");
    let config = write_file(
        dir.path(),
        "demo.toml",
        &format!(
            r#"[app]
db_password = "{FILE_PASSWORD}"
replica_url = "postgres://replica:{URL_PASSWORD}@10.0.0.2:5432/demo"

cert_bundle = {cert_bundle}
rsa_bundle = {rsa_bundle}
login_callback = "https://idp.example/cb?state={jwt}&next=/"
curl_example = "curl -H 'Authorization: Bearer {BEARER_CREDENTIAL}' https://api.example/"
proxy_header = "Basic {BASIC_CREDENTIAL}"
{named}
[app.upstream]
api_key = "{FILE_API_KEY}"

[gmr]
log_dir = {log_dir:?}
file_event_handler = {trigger:?}
file_event_handler_interval = 0.1
format = "{format}"

[gmr.admin]
token = "{ADMIN_TOKEN}"
min_interval = "10ms"
"#,
            log_dir = log_dir.display().to_string(),
            trigger = trigger.display().to_string(),
            cert_bundle = toml_string(&format!(
                "{}{}",
                pem("CERTIFICATE", CERT_BODY),
                pem("PRIVATE KEY", PEM_BODY)
            )),
            rsa_bundle = toml_string(&pem("RSA PRIVATE KEY", RSA_BODY)),
            jwt = jwt(JWT_SIGNATURE),
            named = NAMED_SECRETS
                .iter()
                .map(|(key, value)| format!("{key} = \"{value}\"\n"))
                .collect::<String>(),
        ),
    );
    let demo = start(&config, &secret_env());
    let outputs = take_reports(&demo, &trigger, Some(&log_dir));
    check_all(
        &outputs,
        &[
            "db_password = ***",
            "api_key = ***",
            "replica_url = postgres://replica:***@10.0.0.2:5432/demo",
            "bearer = ***",
            "github_pat = ***",
            "login_callback = https://idp.example/cb?state=***&next=/",
        ],
        &[
            ("/configuration/values/app/db_password", "***"),
            ("/configuration/values/app/upstream/api_key", "***"),
            (
                "/configuration/values/app/replica_url",
                "postgres://replica:***@10.0.0.2:5432/demo",
            ),
            ("/configuration/values/app/otp_seed", "***"),
            ("/configuration/values/app/proxy_header", "Basic ***"),
        ],
    );
    // The certificate of a bundle is public: it stays.
    for (what, body) in &outputs {
        if body.contains("cert_bundle") {
            assert!(body.contains(CERT_BODY), "{what}: the certificate went too");
        }
    }
    let json_files = outputs
        .iter()
        .filter(|(what, body)| what.ends_with(".json") && body.starts_with('{'))
        .count();
    assert_eq!(json_files, if format == "json" { 2 } else { 0 });
}

#[test]
fn config_file_secrets_never_appear_in_text_reports() {
    config_file_secrets("text");
}

#[test]
fn config_file_secrets_never_appear_in_json_reports() {
    config_file_secrets("json");
}

/// The credential-bearing `--config` path `dir/s3://u:PASS@h/demo.toml`: an empty file, so
/// no configuration value carries the path as its origin; everything else comes from the
/// environment. Reports go to stderr.
#[test]
fn command_line_and_environment_secrets_never_appear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url_dir: PathBuf = dir
        .path()
        .join("s3:")
        .join(format!("u:{CMDLINE_PASSWORD}@h"));
    std::fs::create_dir_all(&url_dir).expect("url-shaped directory");
    write_file(&url_dir, "demo.toml", "");
    let config = PathBuf::from(format!(
        "{}/s3://u:{CMDLINE_PASSWORD}@h/demo.toml",
        dir.path().display()
    ));
    assert!(config.exists());
    let trigger = dir.path().join("trigger");
    let mut env = secret_env();
    env.extend([
        ("DEMO__APP__DB_PASSWORD", FILE_PASSWORD.to_owned()),
        (
            "DEMO__APP__REPLICA_URL",
            format!("postgres://replica:{URL_PASSWORD}@10.0.0.2:5432/demo"),
        ),
        (
            "DEMO__GMR__FILE_EVENT_HANDLER",
            trigger.display().to_string(),
        ),
        ("DEMO__GMR__FILE_EVENT_HANDLER_INTERVAL", "0.1".to_owned()),
        ("DEMO__GMR__ADMIN__TOKEN", ADMIN_TOKEN.to_owned()),
        ("DEMO__GMR__ADMIN__MIN_INTERVAL", "10ms".to_owned()),
    ]);
    let demo = start(&config, &env);
    let outputs = take_reports(&demo, &trigger, None);
    let masked_path = format!("{}/s3://u:***@h/demo.toml", dir.path().display());
    check_all(
        &outputs,
        &[
            "db_password = ***",
            "replica_url = postgres://replica:***@10.0.0.2:5432/demo",
        ],
        &[
            ("/configuration/values/app/db_password", "***"),
            (
                "/configuration/values/app/replica_url",
                "postgres://replica:***@10.0.0.2:5432/demo",
            ),
        ],
    );
    // The command line is shown, with the credential masked, in every view.
    let stderr = &outputs
        .iter()
        .find(|(w, _)| w == "stderr")
        .expect("stderr")
        .1;
    assert_eq!(
        stderr.matches("Guru Meditation").count(),
        2,
        "signal and file reports on stderr"
    );
    for (what, body) in &outputs {
        assert!(
            body.contains(&masked_path),
            "{what}: the masked --config path is missing"
        );
    }
}

/// The `(from <path>)` origins of configuration values are masked too: a credential in the
/// `--config` path (the `//` of a URL folded to `/` by path normalisation) does not leak.
#[test]
fn a_credential_in_the_config_path_does_not_leak_through_value_origins() {
    const PASSWORD: &str = "cmdline-pass-888";
    const TOKEN: &str = "admin-token-4444444444444444";
    let dir = tempfile::tempdir().expect("tempdir");
    let url_dir = dir.path().join("s3:").join(format!("u:{PASSWORD}@h"));
    std::fs::create_dir_all(&url_dir).expect("url-shaped directory");
    gmr_integration_tests::write_file(
        &url_dir,
        "demo.toml",
        &format!("[gmr.admin]\ntoken = \"{TOKEN}\"\n"),
    );
    let config = std::path::PathBuf::from(format!(
        "{}/s3://u:{PASSWORD}@h/demo.toml",
        dir.path().display()
    ));
    let demo = gmr_integration_tests::Demo::start(
        "axum-demo",
        &["--config", config.to_str().expect("utf-8")],
    );
    let auth = format!("Authorization: Bearer {TOKEN}");
    for path in ["/admin/gmr", "/admin/gmr?format=json"] {
        let report = gmr_integration_tests::http(demo.addr, "GET", path, &[&auth]).text();
        let leaks: Vec<&str> = report.lines().filter(|l| l.contains(PASSWORD)).collect();
        assert!(
            leaks.is_empty(),
            "{path}: the command-line credential leaked:\n{}",
            leaks.join("\n")
        );
    }
    demo.signal(libc::SIGUSR2);
    assert!(demo.wait_stderr("gmr report written", 1, std::time::Duration::from_secs(60)));
    let leaks: Vec<String> = demo
        .stderr()
        .lines()
        .filter(|l| l.contains(PASSWORD))
        .map(str::to_owned)
        .collect();
    assert!(
        leaks.is_empty(),
        "stderr: the command-line credential leaked:\n{}",
        leaks.join("\n")
    );
}
