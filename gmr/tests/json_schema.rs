//! The JSON report against its documented schema, `docs/report.schema.json`.
//!
//! Real reports of this process (every built-in section, registered sections, a failing one, a
//! configuration from a file and from the environment, a registered tokio runtime when the
//! `tokio` feature is on) are checked against the schema with a small validator of the JSON
//! Schema subset the schema uses, and so is a report of `axum-demo` kept in
//! `docs/examples/axum-demo-report.json` (in-flight requests and a runtime, which only the
//! adapters produce). The `data` of gmr's own `Green Threads` sources is checked against its
//! documented definition. The schema must also document
//! exactly the top-level keys a report has, and `docs/report-format.md` must name every field
//! the schema describes, so neither document can drift from the code unnoticed.

use gmr::report::{REPORT_VERSION, titles};
use std::collections::BTreeSet;
use std::path::Path;

use gmr::{Content, Gmr, Trigger};
use serde_json::{Map, Value};

const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/report.schema.json");
const FORMAT_DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/report-format.md");
const DEMO_REPORT_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../docs/examples/axum-demo-report.json"
);

/// The header fields of every report, in document order.
const HEADER_KEYS: [&str; 8] = [
    "report_version",
    "service",
    "version",
    "host",
    "pid",
    "generated_at",
    "trigger",
    "sections",
];

/// The built-in sections: title and JSON key, in report order.
const BUILT_IN: [(&str, &str); 5] = [
    (titles::PACKAGE, "package"),
    (titles::THREADS, "threads"),
    (titles::GREEN_THREADS, "green_threads"),
    (titles::PROCESSES, "processes"),
    (titles::CONFIGURATION, "configuration"),
];

/// Keywords that only annotate; the validator accepts and ignores them.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "title",
    "description",
    "$defs",
];

/// Keywords the validator checks. A schema keyword outside these and [`ANNOTATIONS`] fails the
/// test: the schema must not promise a rule that nothing checks.
const ASSERTIONS: &[&str] = &[
    "$ref",
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minimum",
    "minLength",
    "anyOf",
    "oneOf",
    "format",
];

const TYPES: &[&str] = &[
    "object", "array", "string", "integer", "number", "boolean", "null",
];

fn load_json(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid JSON: {e}"))
}

fn schema() -> Value {
    load_json(SCHEMA_PATH)
}

/// A validator for the subset of JSON Schema draft 2020-12 listed in [`ASSERTIONS`], with
/// `$ref` limited to `#/$defs/<name>`.
struct Validator<'s> {
    root: &'s Value,
}

impl<'s> Validator<'s> {
    fn new(root: &'s Value) -> Self {
        Validator { root }
    }

    fn resolve(&self, reference: &str) -> Option<&'s Value> {
        let name = reference.strip_prefix("#/$defs/")?;
        self.root.get("$defs")?.get(name)
    }

    /// The errors of `value` against `schema`, each prefixed by its JSON pointer.
    fn errors(&self, schema: &Value, value: &Value, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.check(schema, value, at, &mut out);
        out
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
        let rules = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                out.push(format!("{at}: not allowed here (schema `false`)"));
                return;
            }
            Value::Object(rules) => rules,
            other => {
                out.push(format!(
                    "{at}: schema is neither an object nor a boolean: {other}"
                ));
                return;
            }
        };
        for (keyword, arg) in rules {
            match keyword.as_str() {
                k if ANNOTATIONS.contains(&k) => {}
                "$ref" => match arg.as_str().and_then(|r| self.resolve(r)) {
                    Some(target) => self.check(target, value, at, out),
                    None => out.push(format!("{at}: unresolvable $ref {arg}")),
                },
                "type" => {
                    let allowed: Vec<&str> = match arg {
                        Value::String(t) => vec![t.as_str()],
                        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                        _ => Vec::new(),
                    };
                    if !allowed.iter().any(|t| has_type(value, t)) {
                        out.push(format!(
                            "{at}: expected type {}, found {}",
                            allowed.join(" or "),
                            type_name(value)
                        ));
                    }
                }
                "enum" => {
                    let options = arg.as_array().map(Vec::as_slice).unwrap_or_default();
                    if !options.contains(value) {
                        out.push(format!("{at}: {value} is not one of {arg}"));
                    }
                }
                "const" => {
                    if arg != value {
                        out.push(format!("{at}: expected {arg}, found {value}"));
                    }
                }
                "required" => {
                    if let Value::Object(fields) = value {
                        for name in arg.as_array().into_iter().flatten() {
                            let name = name.as_str().unwrap_or_default();
                            if !fields.contains_key(name) {
                                out.push(format!("{at}: missing required field `{name}`"));
                            }
                        }
                    }
                }
                "properties" => {
                    if let (Value::Object(fields), Value::Object(props)) = (value, arg) {
                        for (name, sub) in props {
                            if let Some(field) = fields.get(name) {
                                self.check(sub, field, &format!("{at}/{name}"), out);
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    if let Value::Object(fields) = value {
                        let declared = rules.get("properties").and_then(Value::as_object);
                        for (name, field) in fields {
                            if declared.is_some_and(|d| d.contains_key(name)) {
                                continue;
                            }
                            let field_at = format!("{at}/{name}");
                            if arg == &Value::Bool(false) {
                                out.push(format!("{field_at}: field not documented in the schema"));
                            } else {
                                self.check(arg, field, &field_at, out);
                            }
                        }
                    }
                }
                "items" => {
                    if let Value::Array(items) = value {
                        for (i, item) in items.iter().enumerate() {
                            self.check(arg, item, &format!("{at}/{i}"), out);
                        }
                    }
                }
                "minimum" => {
                    if let (Some(n), Some(min)) = (value.as_f64(), arg.as_f64())
                        && value.is_number()
                        && n < min
                    {
                        out.push(format!("{at}: {value} is less than the minimum {arg}"));
                    }
                }
                "minLength" => {
                    if let (Some(s), Some(min)) = (value.as_str(), arg.as_u64())
                        && (s.chars().count() as u64) < min
                    {
                        out.push(format!("{at}: {value:?} is shorter than {min}"));
                    }
                }
                "anyOf" | "oneOf" => {
                    let branches = arg.as_array().map(Vec::as_slice).unwrap_or_default();
                    let results: Vec<Vec<String>> = branches
                        .iter()
                        .map(|branch| self.errors(branch, value, at))
                        .collect();
                    let matching = results.iter().filter(|e| e.is_empty()).count();
                    let ok = if keyword == "anyOf" {
                        matching >= 1
                    } else {
                        matching == 1
                    };
                    if !ok {
                        out.push(format!(
                            "{at}: {matching} of the {keyword} branches match; their errors: {}",
                            results
                                .iter()
                                .map(|e| e.join("; "))
                                .collect::<Vec<_>>()
                                .join(" | ")
                        ));
                    }
                }
                "format" => {
                    if let Some(s) = value.as_str() {
                        match arg.as_str() {
                            Some("date-time") => {
                                if !is_rfc3339(s) {
                                    out.push(format!("{at}: {s:?} is not an RFC 3339 date-time"));
                                }
                            }
                            _ => out.push(format!("{at}: unsupported format {arg}")),
                        }
                    }
                }
                other => out.push(format!("{at}: unsupported schema keyword `{other}`")),
            }
        }
    }
}

fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        // JSON Schema: a number with a zero fractional part is an integer.
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, RFC 3339 section 5.6.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let date_time_ok = (|| {
        let (_year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        let separators = b.get(4) == Some(&b'-')
            && b.get(7) == Some(&b'-')
            && matches!(b.get(10), Some(b'T' | b't'))
            && b.get(13) == Some(&b':')
            && b.get(16) == Some(&b':');
        Some(
            separators
                && (1..=12).contains(&month)
                && (1..=31).contains(&day)
                && hour <= 23
                && minute <= 59
                && second <= 60,
        )
    })();
    if date_time_ok != Some(true) {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
                && (u32::from(*h1 - b'0') * 10 + u32::from(*h2 - b'0')) <= 23
                && (u32::from(*m1 - b'0') * 10 + u32::from(*m2 - b'0')) <= 59
        }
        _ => false,
    }
}

/// Every sub-schema of `schema` with the pointer where it sits, for the well-formedness lint.
fn walk<'a>(schema: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((at.clone(), schema));
    let Value::Object(rules) = schema else {
        return;
    };
    for (keyword, arg) in rules {
        match (keyword.as_str(), arg) {
            ("properties" | "$defs", Value::Object(map)) => {
                for (name, sub) in map {
                    walk(sub, format!("{at}/{keyword}/{name}"), out);
                }
            }
            ("additionalProperties" | "items", sub) => {
                walk(sub, format!("{at}/{keyword}"), out);
            }
            ("anyOf" | "oneOf", Value::Array(branches)) => {
                for (i, sub) in branches.iter().enumerate() {
                    walk(sub, format!("{at}/{keyword}/{i}"), out);
                }
            }
            _ => {}
        }
    }
}

/// Checks `report` against the schema and the top-level documentation rule; panics with every
/// error found.
fn assert_conforms(report: &Value, schema: &Value) {
    let validator = Validator::new(schema);
    let mut errors = validator.errors(schema, report, "");

    let doc = report.as_object().expect("a report is a JSON object");
    let documented = schema["properties"]
        .as_object()
        .expect("the schema has top-level properties");
    let index = doc
        .get("sections")
        .and_then(Value::as_array)
        .expect("a report has a `sections` index");
    let built_in_titles: Vec<&str> = BUILT_IN.iter().map(|(title, _)| *title).collect();
    let registered_keys: BTreeSet<&str> = index
        .iter()
        .filter(|entry| !built_in_titles.contains(&entry["title"].as_str().unwrap_or_default()))
        .filter_map(|entry| entry["key"].as_str())
        .collect();

    // Every top-level key is documented, or is a registered section listed in the index.
    for key in doc.keys() {
        if !documented.contains_key(key) && !registered_keys.contains(key.as_str()) {
            errors.push(format!(
                "/{key}: top-level key missing from docs/report.schema.json `properties`"
            ));
        }
    }
    // Nothing documented that the report does not have.
    for key in documented.keys() {
        if !doc.contains_key(key) {
            errors.push(format!(
                "/{key}: documented in the schema but absent from the report"
            ));
        }
    }
    // Every index entry has its field, and keys are unique.
    let mut seen = BTreeSet::new();
    for entry in index {
        let key = entry["key"].as_str().unwrap_or_default();
        if !doc.contains_key(key) {
            errors.push(format!("/sections: `{key}` is listed but has no field"));
        }
        if !seen.insert(key) {
            errors.push(format!("/sections: `{key}` is listed twice"));
        }
    }
    // The built-in sections open the index, in order, under their documented keys.
    let opening: Vec<(&str, &str)> = index
        .iter()
        .take(BUILT_IN.len())
        .map(|e| {
            (
                e["title"].as_str().unwrap_or_default(),
                e["key"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    if opening != BUILT_IN {
        errors.push(format!(
            "/sections: expected the built-in sections {BUILT_IN:?} first, found {opening:?}"
        ));
    }
    // The header fields come first, in the documented order.
    let first_keys: Vec<&str> = doc
        .keys()
        .take(HEADER_KEYS.len())
        .map(String::as_str)
        .collect();
    if first_keys != HEADER_KEYS {
        errors.push(format!(
            "header fields out of order: expected {HEADER_KEYS:?}, found {first_keys:?}"
        ));
    }

    assert!(
        errors.is_empty(),
        "the report does not match docs/report.schema.json:\n  {}",
        errors.join("\n  ")
    );
}

#[test]
fn schema_is_well_formed_and_uses_only_checked_keywords() {
    let schema = schema();
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "the schema declares draft 2020-12"
    );
    let validator = Validator::new(&schema);
    let mut nodes = Vec::new();
    walk(&schema, String::new(), &mut nodes);
    let mut problems = Vec::new();
    for (at, node) in nodes {
        let Some(rules) = node.as_object() else {
            if !node.is_boolean() {
                problems.push(format!("{at}: a schema must be an object or a boolean"));
            }
            continue;
        };
        for (keyword, arg) in rules {
            if !ANNOTATIONS.contains(&keyword.as_str()) && !ASSERTIONS.contains(&keyword.as_str()) {
                problems.push(format!(
                    "{at}: keyword `{keyword}` is not checked by this test"
                ));
            }
            match keyword.as_str() {
                "$ref" if arg.as_str().and_then(|r| validator.resolve(r)).is_none() => {
                    problems.push(format!("{at}: $ref {arg} does not resolve"));
                }
                "type" => {
                    let names: Vec<&Value> = match arg {
                        Value::Array(ts) => ts.iter().collect(),
                        other => vec![other],
                    };
                    for name in names {
                        if !name.as_str().is_some_and(|n| TYPES.contains(&n)) {
                            problems.push(format!("{at}: unknown type {name}"));
                        }
                    }
                }
                "format" if arg != "date-time" => {
                    problems.push(format!("{at}: format {arg} is not checked by this test"));
                }
                "required" => {
                    let props = rules.get("properties").and_then(Value::as_object);
                    for name in arg.as_array().into_iter().flatten() {
                        let name = name.as_str().unwrap_or_default();
                        if !props.is_some_and(|p| p.contains_key(name)) {
                            problems.push(format!(
                                "{at}: required field `{name}` has no entry in `properties`"
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    // The top level documents exactly the header and the built-in sections, all required.
    let documented: BTreeSet<&str> = schema["properties"]
        .as_object()
        .expect("top-level properties")
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = HEADER_KEYS
        .iter()
        .copied()
        .chain(BUILT_IN.iter().map(|(_, key)| *key))
        .collect();
    if documented != expected {
        problems.push(format!(
            "top-level properties {documented:?} differ from the report's fixed keys {expected:?}"
        ));
    }
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .expect("top-level required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if required != expected {
        problems.push(format!(
            "top-level `required` {required:?} should list every fixed key {expected:?}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn validator_rejects_what_the_schema_forbids() {
    // The validator must be able to fail, or a passing test proves nothing.
    let schema = schema();
    let validator = Validator::new(&schema);
    let report = Gmr::builder()
        .package(gmr::package!())
        .build()
        .expect("default engine")
        .report(Trigger::Api)
        .to_json();
    assert!(validator.errors(&schema, &report, "").is_empty());

    let broken = |edit: &dyn Fn(&mut Map<String, Value>)| {
        let mut copy = report.clone();
        edit(copy.as_object_mut().expect("object"));
        !validator.errors(&schema, &copy, "").is_empty()
    };
    assert!(broken(&|d| {
        d.remove("pid");
    }));
    assert!(broken(&|d| {
        d.insert("trigger".into(), "cron".into());
    }));
    assert!(broken(&|d| {
        d.insert("report_version".into(), (REPORT_VERSION + 1).into());
    }));
    assert!(broken(&|d| {
        d.insert("generated_at".into(), "2026-11-26 03:14:15".into());
    }));
    assert!(broken(&|d| {
        d.insert("pid".into(), "42".into());
    }));
    assert!(broken(&|d| {
        d["package"]
            .as_object_mut()
            .expect("package")
            .insert("undocumented".into(), 1.into());
    }));
    assert!(broken(&|d| {
        d["threads"]
            .as_object_mut()
            .expect("threads")
            .remove("stacks");
    }));
    assert!(broken(&|d| {
        d.insert("processes".into(), serde_json::json!({ "error": 7 }));
    }));

    assert!(is_rfc3339("2026-11-26T03:14:15Z"));
    assert!(is_rfc3339("2026-11-26T03:14:15.25+01:00"));
    assert!(!is_rfc3339("2026-13-26T03:14:15Z"));
    assert!(!is_rfc3339("2026-11-26T03:14:15"));
    assert!(!is_rfc3339("20261126T031415Z"));
}

#[test]
fn report_without_configuration_matches_schema() {
    let gmr = Gmr::builder()
        .package(gmr::package!())
        .build()
        .expect("default engine");
    let report = gmr.report(Trigger::Signal).to_json();
    assert_conforms(&report, &schema());
    assert_eq!(report["trigger"], "signal");
    assert!(
        report["configuration"]["note"].is_string(),
        "no config handed to gmr gives the `note` form: {}",
        report["configuration"]
    );
    assert!(report["processes"]["environment"].is_string());
}

#[test]
fn report_with_configuration_and_registered_sections_matches_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.toml");
    std::fs::write(
        &file,
        r#"
        [gmr]
        service_name = "schema-test"
        show_environment = true
        [gmr.secrets]
        extra_keys = ["pin"]
        [database]
        url = "postgres://app:hunter2@db.internal/billing"
        password = "s3cr3t"
        pool = 16
        [[upstreams]]
        name = "a"
        weights = [3, 1, 2]
        "#,
    )
    .expect("write config");
    let mut env = config::Map::new();
    env.insert("APP__DATABASE__HOST".to_owned(), "db-9".to_owned());
    let cfg = config::Config::builder()
        .add_source(config::File::from(file.as_path()))
        .add_source(
            config::Environment::with_prefix("APP")
                .separator("__")
                .source(Some(env)),
        )
        .build()
        .expect("config");

    // Registered sections: a normal one, one whose title collides with a header field, and a
    // failing one. Registration is process-wide; other tests tolerate these sections.
    let ok = gmr::register_section("Schema Test Queue", || {
        Ok::<_, String>(
            Content::new()
                .field("depth", 3)
                .group("oldest", Content::new().field("age_ms", 1500))
                .line("free text"),
        )
    });
    let colliding = gmr::register_section("Service", || {
        Ok::<_, String>(Content::new().field("shadow", true))
    });
    let failing = gmr::register_section("Schema Test Failing", || {
        Err::<Content, _>("database unreachable")
    });

    let gmr = Gmr::builder()
        .config(&cfg)
        .package(gmr::package!())
        .build()
        .expect("valid [gmr]");
    let report = gmr.report(Trigger::Api).to_json();
    ok.unregister();
    colliding.unregister();
    failing.unregister();

    let schema = schema();
    assert_conforms(&report, &schema);

    assert_eq!(report["service"], "schema-test");
    assert_eq!(report["schema_test_queue"]["depth"], 3);
    assert_eq!(report["schema_test_queue"]["text"][0], "free text");
    assert_eq!(
        report["service_2"]["shadow"], true,
        "a section key never shadows a header field"
    );
    let validator = Validator::new(&schema);
    let error_schema = &schema["$defs"]["section_error"];
    let failed = &report["schema_test_failing"];
    assert!(
        validator.errors(error_schema, failed, "").is_empty(),
        "a failed section has the documented error form: {failed}"
    );
    assert_eq!(
        failed["error"],
        "section generator failed: database unreachable"
    );

    let configuration = &report["configuration"];
    assert_eq!(
        configuration["values"]["database"]["url"],
        "postgres://app:***@db.internal/billing"
    );
    assert_eq!(configuration["values"]["database"]["password"], "***");
    assert_eq!(configuration["values"]["upstreams"][0]["weights"][2], 2);
    assert_eq!(configuration["origins"]["database.host"], "the environment");
    assert!(
        configuration["origins"]["database.pool"]
            .as_str()
            .is_some_and(|o| o.ends_with("app.toml")),
        "{configuration}"
    );
    assert!(report["processes"]["environment"].is_object());
}

/// The requests of the in-flight table `source` in a report.
fn in_flight(report: &Value, source: &str) -> Vec<Value> {
    report["green_threads"]["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["source"] == source)
        .and_then(|b| b["requests"].as_array())
        .cloned()
        .unwrap_or_else(|| panic!("no in-flight table {source:?}"))
}

#[test]
fn axum_demo_report_matches_schema() {
    // A real report of `axum-demo --spans` built with `--cfg tokio_unstable` and the feature
    // `tokio-taskdump` (admin endpoint, `?format=json`), taken while `/await-lock`,
    // `/await-channel` and `/slow` were in flight (no worker blocked, so the task dump ran).
    let report = load_json(DEMO_REPORT_PATH);
    assert_conforms(&report, &schema());
    let green = &report["green_threads"];
    assert!(green["runtimes"]["runtime"].is_array(), "runtimes listed");
    assert_eq!(green["spans"]["recorded"], true, "spans recorded");
    let requests = in_flight(&report, "axum");
    let by_path = |path: &str| {
        requests
            .iter()
            .find(|r| r["path"] == path)
            .unwrap_or_else(|| panic!("the {path} request"))
    };

    // A waiting request says since when it was last polled.
    let slow = by_path("/slow");
    assert!(
        slow["last_poll_ms"].as_u64().is_some_and(|ms| ms > 1000),
        "{slow}"
    );
    assert!(slow["polled_by_tid"].is_null(), "{slow}");

    // The task holding the lock is among the tasks.
    assert!(
        green["tasks"].to_string().contains("demo_lock_holder"),
        "the lock holder's task is listed"
    );

    // A request awaiting a lock points at its task's stack, the await point innermost.
    let waiting = by_path("/await-lock");
    assert!(
        waiting["waiting_in"]
            .as_str()
            .is_some_and(|w| w.contains("demo_await_lock")),
        "{waiting}"
    );
    let at = &waiting["task_stack"];
    let group = &green["tasks"][at["dump"].as_u64().expect("dump") as usize]["groups"]
        [at["group"].as_u64().expect("group") as usize];
    let trace = group["traces"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t.to_string().contains("demo_await_lock"))
        .expect("a trace through the handler");
    assert!(
        trace[0]["function"]
            .as_str()
            .is_some_and(|f| f.contains("Acquire")),
        "the await point is innermost: {}",
        trace[0]
    );
}

/// A registered tokio runtime: `green_threads.runtimes` matches `$defs/tokio_runtimes`. Runs when gmr's
/// `tokio` feature is on (`cargo test --workspace`, or `-p gmr --features tokio`).
#[cfg(feature = "tokio")]
#[test]
fn report_with_a_tokio_runtime_matches_schema() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let registered = gmr::register_tokio_runtime(runtime.handle(), "schema-test");
    let gmr = Gmr::builder()
        .package(gmr::package!())
        .build()
        .expect("default engine");
    let report = gmr.report(Trigger::Api).to_json();
    drop(registered);
    assert_conforms(&report, &schema());
    let data = &report["green_threads"]["runtimes"];
    assert!(
        data["runtime"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r["name"] == "schema-test" && r["workers"] == 1),
        "{data}"
    );
}

/// A live in-flight listing (a polled request past the stuck threshold, and a waiting one)
/// conforms to the schema: the fixture cannot drift from the code unnoticed.
#[test]
fn live_in_flight_requests_match_schema() {
    let layer = gmr_tower::InFlightLayer::named("schema-live");
    let waiting = layer.record("GET", "/slow?ms=100", Some("/slow"));
    let stuck = layer.record("GET", "/block", Some("/block"));
    let polling = stuck.polling();
    // Inside one poll for more than a second: the listing flags it.
    let until = std::time::Instant::now() + std::time::Duration::from_millis(1100);
    while std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let gmr = Gmr::builder()
        .package(gmr::package!())
        .build()
        .expect("default engine");
    let report = gmr.report(Trigger::Api).to_json();
    drop(polling);
    drop((stuck, waiting));
    assert_conforms(&report, &schema());
    let block = report["green_threads"]["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["source"] == "schema-live")
        .expect("the layer is listed");
    assert_eq!(block["stuck_in_poll"], 1, "{block}");
    let stuck = block["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["path"] == "/block")
        .expect("the stuck request");
    assert!(
        stuck["state"]
            .as_str()
            .is_some_and(|s| s.starts_with("STUCK")),
        "{block}"
    );
}

#[test]
fn report_format_doc_names_every_schema_field() {
    let schema = schema();
    let doc = std::fs::read_to_string(FORMAT_DOC_PATH).expect("docs/report-format.md");
    let mut nodes = Vec::new();
    walk(&schema, String::new(), &mut nodes);
    let mut fields = BTreeSet::new();
    for (_, node) in nodes {
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            fields.extend(props.keys().map(String::as_str));
        }
    }
    let missing: Vec<&str> = fields
        .into_iter()
        .filter(|field| !doc.contains(&format!("`{field}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/report-format.md does not name these fields of docs/report.schema.json: {missing:?}"
    );
    assert!(
        Path::new(SCHEMA_PATH).is_file(),
        "the schema lives at docs/report.schema.json"
    );
}
