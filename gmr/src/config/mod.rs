//! The `[gmr]` configuration table (`docs/configuration.md`).
//!
//! [`GmrConfig`] is read from the `[gmr]` table of a [`config::Config`] with
//! [`GmrConfig::from_config`], or built in code from [`GmrConfig::default`] and its public
//! fields, each named as its key (`threads.timeout` is `settings.threads.timeout`). Every value
//! is validated once: as it is read, or by [`GmrConfig::validate`] for a configuration built in
//! code. A bad value is a [`ConfigError`](crate::ConfigError) naming the key and the value,
//! never a panic and never a silent fallback. Unknown keys are rejected too, so that a typo
//! such as `log_dirr` does not silently leave reports on stderr.
//!
//! The module is split by job: `types` (the settings), `read` (from a `config::Config`),
//! `validate` (the rule of each key), `duration` and `size` (duration and size strings).
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `service_name` | binary name | report header and file names |
//! | `log_dir` | unset: stderr | directory for report files |
//! | `file_event_handler` | unset | trigger file path |
//! | `file_event_handler_interval` | `1` (seconds) | poll interval, > 0 |
//! | `signal` | `"SIGUSR2"` | trigger signal, or `"none"` |
//! | `format` | `"text"` | `text` or `json` for files and stderr |
//! | `max_reports` | `20` | files kept in `log_dir` per service |
//! | `min_interval` | `"1s"` | signal and file triggers closer than this share one report |
//! | `show_environment` | `false` | list environment variables (masked) in `Processes` |
//! | `admin.path` | `"/admin/gmr"` | admin endpoint path |
//! | `admin.token` / `admin.token_file` | unset: endpoint off | bearer token, or a file holding it |
//! | `admin.min_interval` | `"1s"` | requests closer than this share one report |
//! | `secrets.extra_keys` | `[]` | more key names to mask |
//! | `threads.capture_signal` | `"SIGRTMIN+5"` | real-time signal used to take other threads' stacks |
//! | `threads.timeout` | `"200ms"` | how long one thread may take to answer |
//! | `threads.deadline` | `"5s"` | how long the capture of all threads may take |
//! | `threads.max_frames` | `128` | frames kept per stack |
//! | `green_threads.span_age` | `"1s"` | spans outside requests open this long are listed |
#![forbid(unsafe_code)]

mod duration;
mod read;
mod size;
mod types;
mod validate;

pub use self::types::{
    AdminConfig, FoldConfig, GmrConfig, GreenThreadsConfig, OutputFormat, SecretString,
    SecretsConfig, SignalChoice, ThreadsConfig,
};

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn cfg(toml: &str) -> ::config::Config {
        ::config::Config::builder()
            .add_source(::config::File::from_str(toml, ::config::FileFormat::Toml))
            .build()
            .expect("test TOML parses")
    }

    fn err(toml: &str) -> String {
        match GmrConfig::from_config(&cfg(toml)) {
            Ok(c) => panic!("expected an error for {toml:?}, got {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[cfg(feature = "html")]
    #[test]
    fn format_html_is_a_format() {
        let c = GmrConfig::from_config(&cfg("[gmr]\nformat = \"html\"\n")).expect("valid");
        assert_eq!(c.format, OutputFormat::Html);
        let message = err("[gmr]\nformat = \"xml\"\n");
        assert!(message.contains("text, json, html"), "{message}");
    }

    #[test]
    fn missing_table_gives_defaults() {
        let c = GmrConfig::from_config(&cfg("[app]\nx = 1\n")).expect("defaults");
        assert_eq!(c, GmrConfig::default());
        assert_eq!(c.signal, SignalChoice::Signal(libc::SIGUSR2));
        assert_eq!(c.max_reports, 20);
        assert_eq!(c.admin.path, "/admin/gmr");
        assert_eq!(c.admin.min_interval, Duration::from_secs(1));
        assert_eq!(c.min_interval, Duration::from_secs(1));
        assert_eq!(c.file_event_handler_interval, Duration::from_secs(1));
        assert_eq!(c.format, OutputFormat::Text);
    }

    #[test]
    fn reads_every_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token_path = dir.path().join("token");
        std::fs::write(&token_path, "0123456789abcdef0123\n").expect("write token");
        let c = GmrConfig::from_config(&cfg(&format!(
            r#"
            [gmr]
            service_name = "billing-api"
            log_dir = "/var/log/billing"
            file_event_handler = "/var/log/billing/gmr_trigger"
            file_event_handler_interval = 0.5
            signal = "SIGUSR1"
            format = "json"
            max_reports = 5
            min_interval = "2s"
            show_environment = true
            [gmr.admin]
            path = "/internal/gmr"
            token_file = "{}"
            min_interval = "250ms"
            [gmr.secrets]
            extra_keys = ["pin", "dsn"]
            [gmr.threads]
            capture_signal = "SIGRTMIN+7"
            timeout = "50ms"
            deadline = "2s"
            max_frames = 64
            "#,
            token_path.display()
        )))
        .expect("valid");
        assert_eq!(c.service_name.as_deref(), Some("billing-api"));
        assert_eq!(c.log_dir, Some(PathBuf::from("/var/log/billing")));
        assert_eq!(
            c.file_event_handler,
            Some(PathBuf::from("/var/log/billing/gmr_trigger"))
        );
        assert_eq!(c.file_event_handler_interval, Duration::from_millis(500));
        assert_eq!(c.signal, SignalChoice::Signal(libc::SIGUSR1));
        assert_eq!(c.format, OutputFormat::Json);
        assert_eq!(c.max_reports, 5);
        assert_eq!(c.min_interval, Duration::from_secs(2));
        assert!(c.show_environment);
        assert_eq!(c.admin.path, "/internal/gmr");
        assert_eq!(
            c.admin.token.as_ref().map(SecretString::expose),
            Some("0123456789abcdef0123")
        );
        assert_eq!(c.admin.min_interval, Duration::from_millis(250));
        assert_eq!(
            c.secrets.extra_keys,
            vec!["pin".to_owned(), "dsn".to_owned()]
        );
        assert_eq!(c.threads.capture_signal, 7);
        assert_eq!(c.threads.timeout, Duration::from_millis(50));
        assert_eq!(c.threads.deadline, Duration::from_secs(2));
        assert_eq!(c.threads.max_frames, 64);
    }

    #[test]
    fn signal_none_and_short_names() {
        let c = GmrConfig::from_config(&cfg("[gmr]\nsignal = \"none\"")).expect("none");
        assert_eq!(c.signal, SignalChoice::None);
        let c = GmrConfig::from_config(&cfg("[gmr]\nsignal = \"usr2\"")).expect("usr2");
        assert_eq!(c.signal, SignalChoice::Signal(libc::SIGUSR2));
    }

    #[test]
    fn each_bad_value_names_its_key_and_value() {
        let cases: &[(&str, &str, &str)] = &[
            ("service_name = \"a/b\"", "gmr.service_name", "a/b"),
            ("service_name = \"\"", "gmr.service_name", ""),
            ("log_dir = \"\"", "gmr.log_dir", "\"\""),
            ("log_dir = [1]", "gmr.log_dir", "expected a string"),
            (
                "file_event_handler = \"\"",
                "gmr.file_event_handler",
                "\"\"",
            ),
            (
                "file_event_handler_interval = 0",
                "gmr.file_event_handler_interval",
                "0",
            ),
            (
                "file_event_handler_interval = -3",
                "gmr.file_event_handler_interval",
                "-3",
            ),
            (
                "file_event_handler_interval = \"soon\"",
                "gmr.file_event_handler_interval",
                "soon",
            ),
            ("signal = \"SIGKILL\"", "gmr.signal", "SIGKILL"),
            ("signal = \"SIGSEGV\"", "gmr.signal", "SIGSEGV"),
            ("signal = \"SIGTERM\"", "gmr.signal", "SIGTERM"),
            ("signal = \"INT\"", "gmr.signal", "INT"),
            ("signal = \"SIGFOO\"", "gmr.signal", "SIGFOO"),
            ("format = \"xml\"", "gmr.format", "xml"),
            ("max_reports = 0", "gmr.max_reports", "0"),
            ("max_reports = -1", "gmr.max_reports", "-1"),
            ("max_reports = \"many\"", "gmr.max_reports", "many"),
            ("min_interval = \"0s\"", "gmr.min_interval", "0s"),
            ("min_interval = \"soon\"", "gmr.min_interval", "soon"),
            ("min_interval = true", "gmr.min_interval", "true"),
            (
                "show_environment = \"maybe\"",
                "gmr.show_environment",
                "maybe",
            ),
            ("admin.path = \"admin\"", "gmr.admin.path", "admin"),
            (
                "admin.path = \"/admin?x=1\"",
                "gmr.admin.path",
                "/admin?x=1",
            ),
            (
                "admin.min_interval = \"0s\"",
                "gmr.admin.min_interval",
                "0s",
            ),
            (
                "admin.min_interval = \"fast\"",
                "gmr.admin.min_interval",
                "fast",
            ),
            (
                "admin.min_interval = \"3 fortnights\"",
                "gmr.admin.min_interval",
                "fortnights",
            ),
            (
                "secrets.extra_keys = \"pin\"",
                "gmr.secrets.extra_keys",
                "pin",
            ),
            (
                "secrets.extra_keys = [\"\"]",
                "gmr.secrets.extra_keys",
                "empty",
            ),
            (
                "threads.capture_signal = \"SIGRTMIN+40\"",
                "gmr.threads.capture_signal",
                "SIGRTMIN+40",
            ),
            (
                "threads.capture_signal = \"SIGUSR1\"",
                "gmr.threads.capture_signal",
                "SIGUSR1",
            ),
            ("threads.timeout = \"0ms\"", "gmr.threads.timeout", "0ms"),
            ("threads.deadline = \"1ms\"", "gmr.threads.deadline", "1ms"),
            ("threads.max_frames = 1", "gmr.threads.max_frames", "1"),
            ("log_dirr = \"/tmp\"", "gmr.log_dirr", "known keys"),
        ];
        for (line, key, value) in cases {
            let message = err(&format!("[gmr]\n{line}\n"));
            assert!(
                message.contains(key) && message.contains(value),
                "{line}: message {message:?} should name {key} and {value}"
            );
        }
    }

    #[test]
    fn strict_values_are_refused_naming_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("max_reports = 1.5", "gmr.max_reports", "1.5"),
            ("max_reports = 2.9", "gmr.max_reports", "2.9"),
            ("max_reports = true", "gmr.max_reports", "true"),
            ("max_reports = 1e3", "gmr.max_reports", "1000"),
            ("max_reports = \"1e3\"", "gmr.max_reports", "1e3"),
            ("max_reports = \"1.5\"", "gmr.max_reports", "1.5"),
            ("max_reports = \"true\"", "gmr.max_reports", "true"),
            ("threads.max_frames = 64.0", "gmr.threads.max_frames", "64"),
            ("show_environment = 2", "gmr.show_environment", "2"),
            ("show_environment = -1", "gmr.show_environment", "-1"),
            ("show_environment = 1.0", "gmr.show_environment", "1"),
            ("show_environment = \"2\"", "gmr.show_environment", "2"),
            ("signal = \" SIGUSR1\"", "gmr.signal", "SIGUSR1"),
            ("signal = \"SIGUSR1 \"", "gmr.signal", "SIGUSR1"),
            ("format = \" json\"", "gmr.format", "json"),
            ("format = \"json\\n\"", "gmr.format", "json"),
            (
                "threads.capture_signal = \"SIGRTMIN+5 \"",
                "gmr.threads.capture_signal",
                "SIGRTMIN+5",
            ),
            (
                "admin.path = \"/admin/../gmr\"",
                "gmr.admin.path",
                "/admin/../gmr",
            ),
            (
                "admin.path = \"/admin/./gmr\"",
                "gmr.admin.path",
                "/admin/./gmr",
            ),
            ("admin.path = \"/..\"", "gmr.admin.path", "/.."),
            ("admin.path = \"/.\"", "gmr.admin.path", "/."),
            ("admin.path = \"/admin/..\"", "gmr.admin.path", "/admin/.."),
        ];
        for (line, key, value) in cases {
            let message = err(&format!("[gmr]\n{line}\n"));
            assert!(
                message.contains(key) && message.contains(value),
                "{line}: message {message:?} should name {key} and {value}"
            );
        }
        // What stays accepted: whole numbers and the documented boolean words, also as the
        // strings environment variables give; dots inside a segment of admin.path.
        let c = GmrConfig::from_config(&cfg(
            "[gmr]\nmax_reports = \"7\"\nshow_environment = 1\n[gmr.admin]\npath = \"/admin/gmr.v2/.well-known\"\n",
        ))
        .expect("valid");
        assert_eq!(c.max_reports, 7);
        assert!(c.show_environment);
        assert_eq!(c.admin.path, "/admin/gmr.v2/.well-known");
        for (text, expected) in [("yes", true), ("Off", false), ("0", false), ("TRUE", true)] {
            let c =
                GmrConfig::from_config(&cfg(&format!("[gmr]\nshow_environment = \"{text}\"\n")))
                    .expect("a boolean word");
            assert_eq!(c.show_environment, expected, "{text}");
        }
    }

    #[test]
    fn admin_path_dot_segments_are_refused_in_code_too() {
        let mut c = GmrConfig::default();
        c.admin.path = "/admin/../gmr".to_owned();
        let message = c.validate().expect_err("dot segment").to_string();
        assert!(message.contains("gmr.admin.path"), "{message}");
    }

    #[test]
    fn token_errors_never_show_the_token() {
        let message = err("[gmr.admin]\ntoken = \"short\"\n");
        assert!(message.contains("gmr.admin.token"), "{message}");
        assert!(!message.contains("short"), "{message}");
        let message = err("[gmr.admin]\ntoken = \"has a space in it, long enough\"\n");
        assert!(!message.contains("space in it"), "{message}");
        let message = err("[gmr.admin]\ntoken = 1234567812345678\n");
        assert!(!message.contains("12345678"), "{message}");
    }

    #[test]
    fn gmr_must_be_a_table() {
        let message = err("gmr = 3\n");
        assert!(message.contains("`gmr` must be a table"), "{message}");
    }

    #[test]
    fn token_and_token_file_conflict() {
        let message =
            err("[gmr.admin]\ntoken = \"0123456789abcdef\"\ntoken_file = \"/nonexistent/token\"\n");
        assert!(message.contains("gmr.admin.token") && message.contains("token_file"));
    }

    #[test]
    fn unreadable_token_file_names_key_and_path() {
        let message = err("[gmr.admin]\ntoken_file = \"/nonexistent/gmr-token\"\n");
        assert!(message.contains("gmr.admin.token_file"), "{message}");
        assert!(message.contains("/nonexistent/gmr-token"), "{message}");
    }

    /// The messages of the warnings emitted while `f` runs on this thread.
    fn warnings_during(f: impl FnOnce()) -> Vec<String> {
        use std::sync::{Arc, Mutex};
        use tracing_subscriber::layer::SubscriberExt as _;
        #[derive(Clone, Default)]
        struct Warnings(Arc<Mutex<Vec<String>>>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
            fn on_event(
                &self,
                event: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                struct Text(String);
                impl tracing::field::Visit for Text {
                    fn record_debug(
                        &mut self,
                        field: &tracing::field::Field,
                        value: &dyn std::fmt::Debug,
                    ) {
                        self.0.push_str(&format!(" {}={value:?}", field.name()));
                    }
                }
                if *event.metadata().level() == tracing::Level::WARN {
                    let mut text = Text(String::new());
                    event.record(&mut text);
                    self.0.lock().expect("lock").push(text.0);
                }
            }
        }
        let warnings = Warnings::default();
        let subscriber = tracing_subscriber::registry().with(warnings.clone());
        tracing::subscriber::with_default(subscriber, f);
        warnings.0.lock().expect("lock").clone()
    }

    fn token_file_config(path: &std::path::Path) -> Result<GmrConfig, crate::ConfigError> {
        GmrConfig::from_config(&cfg(&format!(
            "[gmr.admin]\ntoken_file = \"{}\"\n",
            path.display()
        )))
    }

    #[test]
    fn a_fifo_token_file_is_refused_without_hanging() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("token-fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("run mkfifo");
        assert!(status.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(token_file_config(&path).map_err(|e| e.to_string()));
        });
        let message = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("reading a FIFO token file must not hang")
            .expect_err("a FIFO is refused");
        assert!(message.contains("gmr.admin.token_file"), "{message}");
        assert!(message.contains("FIFO"), "{message}");
        assert!(message.contains("regular file"), "{message}");
    }

    #[test]
    fn token_files_are_regular_files_of_bounded_size() {
        let message = token_file_config(std::path::Path::new("/dev/zero"))
            .expect_err("a device is refused")
            .to_string();
        assert!(message.contains("gmr.admin.token_file"), "{message}");
        assert!(message.contains("regular file"), "{message}");
        let dir = tempfile::tempdir().expect("tempdir");
        let message = token_file_config(dir.path())
            .expect_err("a directory is refused")
            .to_string();
        assert!(message.contains("directory"), "{message}");
        let big = dir.path().join("big");
        std::fs::write(&big, "a".repeat(1 << 20)).expect("write");
        let message = token_file_config(&big)
            .expect_err("a large file is refused")
            .to_string();
        assert!(
            message.contains("gmr.admin.token_file") && message.contains("bytes"),
            "{message}"
        );
        assert!(!message.contains("aaaa"), "never the contents: {message}");
    }

    #[test]
    fn a_token_file_readable_by_others_gets_a_warning() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef0123\n").expect("write token");
        for (mode, warned) in [(0o600, false), (0o400, false), (0o640, true), (0o604, true)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let warnings = warnings_during(|| {
                token_file_config(&path).expect("a valid token file");
            });
            assert_eq!(!warnings.is_empty(), warned, "{mode:o}: {warnings:?}");
            for warning in &warnings {
                assert!(warning.contains("gmr.admin.token_file"), "{warning}");
                assert!(warning.contains(&format!("{mode:o}")), "{warning}");
                assert!(!warning.contains("0123456789abcdef"), "{warning}");
            }
        }
    }

    #[test]
    fn values_from_environment_strings_are_coerced() {
        let c = ::config::Config::builder()
            .set_override("gmr.max_reports", "7")
            .and_then(|b| b.set_override("gmr.file_event_handler_interval", "2"))
            .and_then(|b| b.set_override("gmr.show_environment", "true"))
            .and_then(|b| b.build())
            .expect("builds");
        let c = GmrConfig::from_config(&c).expect("valid");
        assert_eq!(c.max_reports, 7);
        assert_eq!(c.file_event_handler_interval, Duration::from_secs(2));
        assert!(c.show_environment);
    }

    #[test]
    fn validate_checks_values_built_in_code() {
        let mut c = GmrConfig {
            file_event_handler_interval: Duration::ZERO,
            ..GmrConfig::default()
        };
        assert!(
            c.validate()
                .expect_err("zero interval")
                .to_string()
                .contains("gmr.file_event_handler_interval")
        );
        c.file_event_handler_interval = Duration::from_secs(1);
        c.signal = SignalChoice::Signal(libc::SIGKILL);
        assert!(
            c.validate()
                .expect_err("SIGKILL")
                .to_string()
                .contains("gmr.signal")
        );
        c.signal = SignalChoice::None;
        assert!(c.validate().is_ok());
    }
}
