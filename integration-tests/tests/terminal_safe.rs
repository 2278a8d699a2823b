//! The text report is terminal-safe (`docs/report-format.md`): newlines, ANSI escape
//! sequences and other control characters in the command line, a path, the environment and a
//! configuration value are escaped in the text view, so none of them can forge a section
//! header or send escape sequences to the terminal of whoever `cat`s the report. JSON keeps
//! the exact values (it escapes by itself).

use std::time::Duration;

use gmr_integration_tests::{Demo, check_full_report, http, write_file};

/// A value that, printed as it is, starts a line with a forged section header, clears the
/// screen, retitles the terminal and reverses the text after it.
const EVIL: &str = "x\n====                          FORGED                            ====\n\u{1b}[2J\u{1b}]0;pwned\u{7}\r\u{202e}y";
/// The start of [`EVIL`] as the text view shows it.
const ESCAPED: &str = "x\\n====                          FORGED";
const RULE: &str = "========================================================================";

/// A character a terminal would act on: anything but `\n` that is a control character, a line
/// separator or a bidirectional control.
fn terminal_unsafe(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            c != '\n'
                && (c.is_control()
                    || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        })
        .collect()
}

/// Lines that look like a section header's middle line without being one.
fn forged_headers(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    (0..lines.len())
        .filter(|&i| {
            let line = lines[i];
            line.starts_with("====")
                && line != RULE
                && !(i > 0 && lines[i - 1] == RULE && lines.get(i + 1) == Some(&RULE))
        })
        .map(|i| lines[i].to_owned())
        .collect()
}

/// The report in stderr: from its first rule to its last section's end (the log line that
/// follows it starts with a timestamp, not with a report line).
fn report_in_stderr(stderr: &str) -> &str {
    let start = stderr.find(RULE).expect("a report on stderr");
    let rest = &stderr[start..];
    let end = rest
        .find("gmr report written")
        .and_then(|at| rest[..at].rfind('\n'))
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn control_characters_in_argv_paths_environment_and_config_are_escaped() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The configuration file lives in a directory whose name holds the evil text: the path is
    // on the command line (`--config`) and is the origin of every value read from the file.
    let evil_dir = dir.path().join(format!("dir{}", EVIL.replace('/', "-")));
    std::fs::create_dir(&evil_dir).expect("evil directory");
    let config = write_file(
        &evil_dir,
        "demo.toml",
        &format!(
            "[app]\nmotd = {}\n",
            serde_json::to_string(EVIL).expect("a TOML basic string")
        ),
    );
    let demo = Demo::start_with_env(
        "axum-demo",
        &["--config", config.to_str().expect("utf-8 path")],
        &[("EVIL_ENV", EVIL), ("DEMO__GMR__SHOW_ENVIRONMENT", "true")],
    );
    let token = demo.token().expect("token in the banner");
    let auth = format!("Authorization: Bearer {token}");
    let text = http(demo.addr, "GET", "/admin/gmr", &[&auth]);
    assert_eq!(text.status, 200);
    demo.signal(libc::SIGUSR2);
    assert!(
        demo.wait_stderr("gmr report written", 1, Duration::from_secs(60)),
        "{}",
        demo.stderr()
    );
    let stderr = demo.stderr();
    for (what, report) in [
        ("http", text.text()),
        ("stderr", report_in_stderr(&stderr).to_owned()),
    ] {
        check_full_report(&report).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            terminal_unsafe(&report),
            Vec::<char>::new(),
            "{what}:\n{report}"
        );
        assert_eq!(forged_headers(&report), Vec::<String>::new(), "{what}");
        let shown = |key: &str| {
            report
                .lines()
                .any(|l| l.trim_start().starts_with(key) && l.contains(ESCAPED))
        };
        assert!(shown("command_line = "), "{what}: argv");
        assert!(shown("EVIL_ENV = "), "{what}: environment");
        assert!(shown("motd = "), "{what}: configuration value");
        assert!(
            report
                .lines()
                .any(|l| l.contains("(from ") && l.contains("dirx\\n====")),
            "{what}: the path of the configuration file"
        );
    }

    let json = http(demo.addr, "GET", "/admin/gmr?format=json", &[&auth]);
    let doc: serde_json::Value = serde_json::from_slice(&json.body).expect("JSON report");
    assert_eq!(doc["configuration"]["values"]["app"]["motd"], EVIL);
    assert_eq!(doc["processes"]["environment"]["EVIL_ENV"], EVIL);
}
