//! Whole-report behaviour of the engine: layout, order, JSON/text agreement, isolation of
//! failing sections, registration at any time, and the sinks.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use gmr::{Content, Delivery, Gmr, Trigger};
use serde_json::Value;

/// Sections registered with `gmr::register_section` are process-wide: the tests that register
/// sections, or check the exact list of sections, take turns.
static REGISTRY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn registry_turn() -> std::sync::MutexGuard<'static, ()> {
    REGISTRY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn engine_with(toml: &str) -> Gmr {
    let config = config::Config::builder()
        .add_source(config::File::from_str(toml, config::FileFormat::Toml))
        .build()
        .expect("test config");
    Gmr::builder()
        .config(&config)
        .package(gmr::package!())
        .build()
        .expect("valid gmr config")
}

const RULE: &str = "========================================================================";

#[test]
fn text_opens_with_oslo_block_and_sections_in_order() {
    let _turn = registry_turn();
    let gmr = engine_with("[gmr]\nservice_name = \"layout-test\"\n[app]\nport = 8080\n");
    let title = "Layout Test Custom Section";
    let handle = gmr::register_section(title, || {
        Ok::<_, String>(Content::new().field("answer", 42))
    });
    let text = gmr.report(Trigger::Api).to_text();
    handle.unregister();

    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], RULE);
    assert_eq!(
        lines[1],
        "====                        Guru Meditation                         ===="
    );
    assert_eq!(lines[2], RULE);
    assert_eq!(lines[3], "|".repeat(72));
    assert_eq!(lines[4], "");
    assert_eq!(lines[5], "");
    assert_eq!(lines[6], RULE);
    assert_eq!(
        lines[7],
        "====                            Package                             ===="
    );
    assert_eq!(lines[8], RULE);
    assert_eq!(lines[9], "service = layout-test");

    // Section titles, in order: the built-in five, then the registered one.
    let titles: Vec<&str> = lines
        .windows(3)
        .filter(|w| w[0] == RULE && w[2] == RULE && w[1].starts_with("====") && w[1].len() == 72)
        .map(|w| w[1].trim_matches('=').trim())
        .collect();
    assert_eq!(
        titles,
        ["Guru Meditation"]
            .into_iter()
            .chain(gmr::report::titles::BUILT_IN)
            .chain([title])
            .collect::<Vec<_>>()
    );
    for line in text.lines().filter(|l| l.starts_with("====")) {
        assert_eq!(
            line.chars().count(),
            72,
            "section header line not 72 columns: {line:?}"
        );
    }
    // A block header is 72 columns, or longer when its title (a thread's name, state, CPU and
    // what it waits in) needs it; never past 160.
    for line in text.lines().filter(|l| l.starts_with("------")) {
        let width = line.chars().count();
        assert!(
            (72..=160).contains(&width) && line.ends_with("------"),
            "block header line of {width} columns: {line:?}"
        );
    }
}

/// Every scalar leaf of a JSON value, as the text view would show it.
fn leaves(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
        Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        Value::String(s) => {
            out.insert(s.clone());
        }
        // `null` and `false` are the absence of a value or a marker; the text shows neither.
        Value::Null | Value::Bool(false) => {}
        other => {
            out.insert(other.to_string());
        }
    }
}

#[test]
fn json_parses_and_holds_the_same_data_as_the_text() {
    let _turn = registry_turn();
    let gmr = engine_with(
        "[gmr]\nservice_name = \"json-test\"\n\
         [database]\nurl = \"postgres://app:hunter2@db/x\"\npassword = \"pw-123\"\nhosts = [\"b\", \"a\"]\n",
    );
    let title = "Json Test Pool";
    let handle = gmr::register_section(title, || {
        Ok::<_, String>(
            Content::new()
                .field("size", 16)
                .group("primary", Content::new().field("host", "db-1"))
                .line("free text line"),
        )
    });
    let report = gmr.report(Trigger::Signal);
    handle.unregister();
    let text = report.to_text();
    let json: Value = serde_json::from_str(&report.to_json_string()).expect("JSON parses");

    assert_eq!(json["report_version"], gmr::report::REPORT_VERSION);
    assert_eq!(json["service"], "json-test");
    assert_eq!(json["trigger"], "signal");
    assert_eq!(json["pid"], std::process::id());
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        json["generated_at"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z'))
    );
    let keys: Vec<&str> = json["sections"]
        .as_array()
        .expect("sections index")
        .iter()
        .filter_map(|s| s["key"].as_str())
        .collect();
    assert_eq!(
        keys,
        vec![
            "package",
            "threads",
            "green_threads",
            "processes",
            "configuration",
            "json_test_pool"
        ]
    );
    for key in &keys {
        assert!(json.get(*key).is_some(), "section field {key} missing");
    }

    // Every value of the JSON appears in the text…
    // (`sections` is the index of section keys, not a shown value; `threads` keeps every frame
    // with its full name, path and address, which the text view shortens and folds: its own
    // test, `threads_text_shows_every_thread_and_stack`, checks what the text keeps.)
    let mut json_leaves = BTreeSet::new();
    let mut shown = json.clone();
    shown.as_object_mut().map(|o| o.remove("sections"));
    shown.as_object_mut().map(|o| o.remove("threads"));
    leaves(&shown, &mut json_leaves);
    let mut all_leaves = BTreeSet::new();
    leaves(&json, &mut all_leaves);
    for leaf in &json_leaves {
        assert!(
            text.contains(leaf.as_str()),
            "JSON value {leaf:?} not in the text view"
        );
    }
    // …and every `key = value` of the text is in the JSON.
    for line in text.lines() {
        let Some((key, value)) = line.trim().split_once(" = ") else {
            continue;
        };
        let is_field = key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']'));
        if !is_field {
            continue;
        }
        let value = value.split("  (from ").next().unwrap_or(value);
        if value.starts_with('[') || value == "(none)" || value == "(empty)" {
            continue;
        }
        // A value with its machine-readable twin (`53.9 MiB (56541184 bytes)`): both parts.
        let (value, twin) = match value.split_once(" (") {
            Some((head, tail)) if tail.ends_with(" bytes)") || tail.ends_with(" s)") => {
                (head, tail.split(' ').next())
            }
            _ => (value, None),
        };
        for part in std::iter::once(value).chain(twin) {
            assert!(
                all_leaves.contains(part) || all_leaves.iter().any(|l| l.contains(part)),
                "text value {part:?} (line {line:?}) not in the JSON"
            );
        }
    }
    assert!(!text.contains("hunter2") && !text.contains("pw-123"));
    assert!(!json.to_string().contains("hunter2"));
}

#[test]
fn failing_and_panicking_sections_leave_the_rest_intact() {
    let _turn = registry_turn();
    let gmr = engine_with("[gmr]\nservice_name = \"isolation\"\n");
    let failing = gmr::register_section("Isolation Failing", || {
        Err::<Content, _>("the pool is gone")
    });
    let panicking = gmr::register_section("Isolation Panicking", || -> Result<Content, String> {
        panic!("generator exploded")
    });
    let healthy = gmr::register_section("Isolation Healthy", || {
        Ok::<_, String>(Content::new().field("status", "fine"))
    });
    let report = gmr.report(Trigger::Api);
    for handle in [failing, panicking, healthy] {
        handle.unregister();
    }
    let text = report.to_text();
    assert!(text.contains("(section unavailable: section generator failed: the pool is gone)"));
    assert!(text.contains("(section unavailable: section generator panicked: generator exploded)"));
    assert!(text.contains("status = fine"));
    for title in gmr::report::titles::BUILT_IN
        .into_iter()
        .filter(|t| *t != gmr::report::titles::GREEN_THREADS)
    {
        let section = report.section(title).expect("built-in section present");
        assert!(section.body().is_ok(), "{title} should be intact");
    }
    let json = report.to_json();
    assert_eq!(
        json["isolation_failing"]["error"],
        "section generator failed: the pool is gone"
    );
    assert_eq!(
        json["isolation_panicking"]["error"],
        "section generator panicked: generator exploded"
    );
    assert_eq!(json["isolation_healthy"]["status"], "fine");
}

/// A body whose rendering panics (not its generator).
#[derive(Debug)]
struct PanickingBody;

impl gmr::SectionBody for PanickingBody {
    fn write_text(&self, out: &mut gmr::report::TextWriter) {
        out.line("half a line before the panic");
        out.indented(|_| panic!("write_text exploded"));
    }

    fn to_json(&self) -> Value {
        panic!("to_json exploded")
    }
}

#[test]
fn a_body_that_panics_while_rendering_leaves_the_rest_intact() {
    let _turn = registry_turn();
    let gmr = engine_with("[gmr]\nservice_name = \"render-panic\"\n");
    let bad = gmr::register_section("Render Panic", || Ok::<_, String>(PanickingBody));
    let after = gmr::register_section("After Render Panic", || {
        Ok::<_, String>(Content::new().field("still", "here"))
    });
    let report = gmr.report(Trigger::Api);
    bad.unregister();
    after.unregister();
    let text = report.to_text();
    assert!(
        text.contains("(section unavailable: rendering panicked: write_text exploded)"),
        "{text}"
    );
    assert!(
        !text.contains("half a line before the panic"),
        "partial output rolled back"
    );
    assert!(text.contains("still = here"));
    // Indentation is restored: the next section's lines start at column 0.
    assert!(text.lines().any(|l| l == "still = here"));
    let json: Value = serde_json::from_str(&report.to_json_string()).expect("json");
    assert_eq!(
        json["render_panic"]["error"],
        "rendering panicked: to_json exploded"
    );
    assert_eq!(json["after_render_panic"]["still"], "here");
}

#[test]
fn sections_registered_after_build_appear_and_unregister() {
    let _turn = registry_turn();
    let gmr = engine_with("");
    let before = gmr.report(Trigger::Api);
    assert!(before.section("Late Registration").is_none());
    let handle = gmr::register_section("Late Registration", || {
        Ok::<_, String>(Content::new().field("late", true))
    });
    assert!(
        gmr.report(Trigger::Api)
            .section("Late Registration")
            .is_some()
    );
    assert!(handle.unregister());
    assert!(
        gmr.report(Trigger::Api)
            .section("Late Registration")
            .is_none()
    );
    assert!(!handle.unregister());
}

#[test]
fn engine_local_sections_follow_registered_ones() {
    let _turn = registry_turn();
    let gmr = Gmr::builder()
        .section("Engine Local", || {
            Ok::<_, String>(Content::new().field("x", 1))
        })
        .build()
        .expect("builds");
    let report = gmr.report(Trigger::Api);
    let titles: Vec<&str> = report.sections().iter().map(|s| s.title()).collect();
    assert_eq!(titles.last(), Some(&"Engine Local"));
}

#[test]
fn log_dir_files_are_named_0600_and_unique_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gmr = engine_with(&format!(
        "[gmr]\nservice_name = \"sink-test\"\nlog_dir = \"{}\"\nformat = \"json\"\n",
        dir.path().display()
    ));
    let first = gmr.report_and_write(Trigger::Api).expect("written");
    let second = gmr.report_and_write(Trigger::Api).expect("written");
    let (Delivery::File(a), Delivery::File(b)) = (&first, &second) else {
        panic!("expected files, got {first:?} and {second:?}");
    };
    assert_ne!(a, b);
    for path in [a, b] {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name");
        let parts: Vec<&str> = name.trim_end_matches(".json").split('_').collect();
        // sink-test _ gurumeditation _ YYYYMMDDTHHMMSS _ host _ pid _ seq
        assert_eq!(parts[0], "sink-test", "{name}");
        assert_eq!(parts[1], "gurumeditation", "{name}");
        assert_eq!(parts[2].len(), 15, "{name}");
        assert_eq!(parts[2].as_bytes()[8], b'T', "{name}");
        assert_eq!(
            parts[parts.len() - 2],
            std::process::id().to_string(),
            "{name}"
        );
        assert!(parts[parts.len() - 1].parse::<u64>().is_ok(), "{name}");
        let mode = std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}");
        let body: Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
        assert_eq!(body["service"], "sink-test");
    }
}

#[test]
fn max_reports_is_honoured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gmr = engine_with(&format!(
        "[gmr]\nservice_name = \"retention\"\nlog_dir = \"{}\"\nmax_reports = 3\n",
        dir.path().display()
    ));
    let mut written = Vec::new();
    for _ in 0..5 {
        match gmr.report_and_write(Trigger::Api).expect("written") {
            Delivery::File(path) => written.push(path),
            other => panic!("expected a file, got {other:?}"),
        }
    }
    let remaining: BTreeSet<_> = std::fs::read_dir(dir.path())
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(remaining.len(), 3, "{remaining:?}");
    // The newest survive (same-second files are ordered by mtime, then name).
    assert!(remaining.contains(&written[4]), "{remaining:?}");
}

#[test]
fn unwritable_log_dir_falls_back_to_stderr_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("does-not-exist");
    let gmr = engine_with(&format!(
        "[gmr]\nservice_name = \"fallback\"\nlog_dir = \"{}\"\n",
        missing.display()
    ));
    match gmr.report_and_write(Trigger::Api).expect("delivered") {
        Delivery::StderrFallback { log_dir, reason } => {
            assert_eq!(log_dir, missing);
            assert!(reason.contains("does-not-exist"), "{reason}");
        }
        other => panic!("expected the stderr fallback, got {other:?}"),
    }
}

#[test]
fn bad_config_fails_build_naming_the_key() {
    let config = config::Config::builder()
        .add_source(config::File::from_str(
            "[gmr]\nfile_event_handler_interval = -1\n",
            config::FileFormat::Toml,
        ))
        .build()
        .expect("config");
    let error = Gmr::builder().config(&config).build().expect_err("invalid");
    assert!(
        error
            .to_string()
            .contains("gmr.file_event_handler_interval"),
        "{error}"
    );
}

#[test]
fn threads_text_shows_every_thread_and_stack() {
    // Other tests register sections and name threads with control characters.
    let _turn = registry_turn();
    let gmr = engine_with("[gmr]\nservice_name = \"threads-text\"\n");
    let report = gmr.report(Trigger::Api);
    let text = report.to_text();
    let json = report.to_json();
    let threads = &json["threads"];
    let section = text
        .split("====                            Threads                             ====")
        .nth(1)
        .expect("a Threads section");
    let section = section.split("Green Threads").next().unwrap_or(section);
    for thread in threads["threads"].as_array().expect("threads") {
        let tid = thread["tid"].as_i64().expect("tid");
        let name = thread["name"].as_str().expect("name");
        assert!(
            section.contains(&format!("#{tid} ")),
            "thread {tid} in the text"
        );
        assert!(section.contains(name), "its name {name:?} in the text");
    }
    // gmr's own helper threads are one line each, by design: their frames are in the JSON.
    let shown_stacks: std::collections::BTreeSet<u64> = threads["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .filter(|t| !t["name"].as_str().unwrap_or("").starts_with("gmr-"))
        .filter_map(|t| t["stack"].as_u64())
        .collect();
    for (index, group) in threads["stacks"]
        .as_array()
        .expect("stacks")
        .iter()
        .enumerate()
    {
        if !shown_stacks.contains(&(index as u64)) {
            continue;
        }
        // The innermost frame of every stack is shown, by its short name.
        let first = &group["frames"][0];
        let name = first["name"]
            .as_str()
            .or(first["function"].as_str())
            .unwrap_or("<unknown>");
        assert!(section.contains(name), "innermost frame {name:?} shown");
        // Every application frame is shown.
        for frame in group["frames"].as_array().expect("frames") {
            if frame["kind"] == "application" {
                let name = frame["name"].as_str().expect("a named frame");
                assert!(section.contains(name), "application frame {name:?} shown");
            }
        }
    }
    assert!(section.contains(&format!(
        "{} threads, {} stacks captured",
        threads["thread_count"], threads["stacks_captured"]
    )));
}

/// Whether `text` holds a character a terminal would act on (anything but `\n` that is a
/// control character, a line separator or a bidirectional control).
fn terminal_unsafe(text: &str) -> Option<char> {
    text.chars().find(|&c| {
        c != '\n'
            && (c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
    })
}

/// The lines of `text` that look like the middle line of a section header but are not one
/// (a genuine header's middle line sits between two rules of 72 `=`).
fn forged_headers(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter(|(i, line)| {
            line.starts_with("====")
                && **line != RULE
                && !(*i > 0
                    && lines[i - 1] == RULE
                    && lines.get(i + 1).is_some_and(|next| *next == RULE))
        })
        .map(|(_, line)| (*line).to_owned())
        .collect()
}

#[test]
fn the_text_view_is_terminal_safe() {
    let _turn = registry_turn();
    const EVIL: &str = "x\n====                          FORGED                            ====\n\u{1b}[2J\u{1b}]0;pwned\u{7}\r\u{202e}";
    // A configuration value and a key, a thread name, and a registered section's title and
    // lines, each holding newlines, a forged header and terminal escapes.
    let config = config::Config::builder()
        .set_default("app.motd", EVIL)
        .and_then(|b| b.set_default("app.nested.evil_key", "plain"))
        .and_then(|b| b.set_default("gmr.service_name", "terminal-test"))
        .and_then(|b| b.build())
        .expect("config");
    let gmr = Gmr::builder()
        .config(&config)
        .build()
        .expect("valid gmr config");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("evil{EVIL}"))
        .spawn(move || {
            gmr::register_current_thread();
            let _ = ready_tx.send(());
            let _ = stop_rx.recv();
        })
        .expect("spawn");
    ready_rx.recv().expect("thread ready");
    let handle = gmr::register_section(format!("Section{EVIL}"), || {
        Ok::<_, String>(Content::new().field("field", EVIL).line(EVIL))
    });
    let report = gmr.report(Trigger::Api);
    handle.unregister();
    let _ = stop_tx.send(());
    thread.join().expect("join");

    let text = report.to_text();
    assert_eq!(terminal_unsafe(&text), None, "{text}");
    assert_eq!(forged_headers(&text), Vec::<String>::new());
    let escaped = "x\\n====                          FORGED";
    let threads = text
        .split("Thread #")
        .find(|block| block.contains("evilx"))
        .expect("the evil thread is listed");
    assert!(threads.contains(escaped), "thread name: {threads}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("motd = ") && l.contains(escaped)),
        "config value"
    );
    // JSON escapes by itself: it keeps the exact values.
    let json = report.to_json();
    assert_eq!(json["configuration"]["values"]["app"]["motd"], EVIL);
    assert!(json.to_string().contains("\\u001b[2J"));
}
