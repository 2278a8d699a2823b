//! The HTML report in a real browser (headless Chromium, Debian's `chromium`; `.ci/run`
//! installs it): a real demo report served by the admin endpoint loads under its
//! Content-Security-Policy without a console error; a stack group expands; the search finds
//! a known frame; the flame graph has a leaf per stack group of the text view of the same
//! report and zooms on a click; nothing a report holds (a configuration value, a thread
//! name, a request path) becomes an element or a handler. A screenshot of the page is
//! written under `target/` (its path is printed). And `format = "html"` writes `.html` files.
#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use gmr_integration_tests::chromium::{Chromium, DEADLINE};
use gmr_integration_tests::{Demo, http, section, wait_until, write_file};
use serde_json::{Value, json};

/// What an attacker puts in a value.
const PAYLOADS: [&str; 3] = [
    "<img src=x onerror=alert(1)>",
    "</script><script>alert(2)</script>",
    "javascript:alert(3)",
];

/// Requests within this interval share one report: the text, the JSON and the page a test
/// compares are of the same report. The capture gets generous time limits: these tests
/// check the page, and run beside each other and their browsers on a loaded machine, where
/// a thread may take more than the default 200 ms to answer, or the first parse of the
/// debug demo's DWARF more than the default 5 s deadline (the page would then rightly show
/// a missing stack or unnamed frames, and the search below find nothing).
const SHARED: &str = "[gmr.admin]\nmin_interval = \"20s\"\n\
                      [gmr.threads]\ntimeout = \"10s\"\ndeadline = \"60s\"\n";

fn auth(demo: &Demo) -> String {
    format!(
        "Authorization: Bearer {}",
        demo.token().expect("token in the banner")
    )
}

/// The report of `demo` in `format` (`?format=`), as text.
fn fetch(demo: &Demo, format: &str) -> String {
    let response = http(
        demo.addr,
        "GET",
        &format!("/admin/gmr?format={format}"),
        &[&auth(demo)],
    );
    assert_eq!(response.status, 200, "{}", response.text());
    response.text()
}

/// Sends `path` to the demo on a thread of its own, and leaves it in flight.
fn in_flight(demo: &Demo, path: &'static str) {
    let addr = demo.addr;
    std::thread::spawn(move || {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        let _ = gmr_integration_tests::raw_request(addr, request.as_bytes());
    });
}

/// Stack groups in the text view's `Threads`: each application group starts its frames with
/// `0:` or says it has none; gmr's own waiting threads are one line each in one block after
/// them (each of its own stack: checked against the JSON by the caller).
fn text_stack_groups(text: &str) -> usize {
    let threads = section(text, "Threads").expect("a Threads section");
    let with_frames = threads
        .lines()
        .filter(|l| l.starts_with("   0: ") || *l == "      (no frames)")
        .count();
    let helpers = threads
        .lines()
        .skip_while(|l| !l.contains(" gmr's own threads, waiting "))
        .skip(1)
        .skip_while(|l| l.starts_with("-----"))
        .take_while(|l| !l.trim().is_empty())
        .count();
    with_frames + helpers
}

/// Where a test's screenshot goes: under `target/`.
fn screenshot_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

/// Leaves of the flame graph under its frame named `ROOT (…`: frames with no frame below
/// them (`-1` if there is no such frame).
const FLAME_LEAVES: &str = r#"(() => {
  const frames = [...document.querySelectorAll('#gmr-flame g.fr')].map(g => {
    const r = g.querySelector('rect');
    return { x: +r.getAttribute('data-x'), w: +r.getAttribute('data-w'),
             y: +r.getAttribute('y'), name: g.querySelector('title').textContent };
  });
  const root = frames.find(f => f.name.startsWith(ROOT + ' ('));
  if (!root) return -1;
  const under = frames.filter(f => f.y > root.y && f.x >= root.x && f.x < root.x + root.w);
  return under.filter(f => !frames.some(c => c.y === f.y + 16 && c.x >= f.x && c.x < f.x + f.w)).length;
})()"#;

/// [`FLAME_LEAVES`] under the frame `root` (`threads`, `tasks of axum`).
fn flame_leaves(root: &str) -> String {
    FLAME_LEAVES.replace("ROOT", &json!(root).to_string())
}

/// Whatever in the page is made of a payload: elements that load or navigate, handlers,
/// `javascript:` values, a script that is not gmr's; and payloads not shown as text.
const HOSTILE_MARKUP: &str = r#"(() => {
  const payloads = PAYLOADS;
  const problems = [];
  for (const el of document.querySelectorAll('img, iframe, object, embed, a, form, base, link, frame'))
    problems.push('element ' + el.outerHTML.slice(0, 80));
  const scripts = document.querySelectorAll('script');
  if (scripts.length !== 1) problems.push(scripts.length + ' scripts');
  for (const el of document.querySelectorAll('*')) for (const a of el.attributes) {
    if (a.name.startsWith('on')) problems.push('handler ' + a.name + ' on ' + el.tagName);
    if (/^\s*javascript:/i.test(a.value)) problems.push('javascript: in ' + a.name + ' of ' + el.tagName);
    if (['href', 'src', 'srcdoc', 'action', 'formaction', 'xlink:href'].includes(a.name))
      problems.push('attribute ' + a.name + ' on ' + el.tagName);
  }
  if (window.__gmr_dialog !== undefined) problems.push('a dialog was opened: ' + window.__gmr_dialog);
  const text = document.body.textContent;
  for (const p of payloads) if (!text.includes(p)) problems.push('not shown as text: ' + p);
  return problems;
})()"#;

fn hostile_check() -> String {
    HOSTILE_MARKUP.replace("PAYLOADS", &json!(PAYLOADS).to_string())
}

/// A demo with requests in flight (one blocking its worker: STUCK), and the report they are
/// in; the config file's `[gmr.admin] min_interval` makes the next requests share it.
fn demo_with_requests(dir: &Path, extra_config: &str) -> (Demo, Value) {
    let config = write_file(dir, "app.toml", &format!("{SHARED}{extra_config}"));
    let config = config.to_str().expect("UTF-8 path").to_owned();
    let demo = Demo::start("axum-demo", &["--config", &config]);
    in_flight(&demo, "/block?ms=60000");
    in_flight(&demo, "/await-lock");
    let mut doc = Value::Null;
    let stuck = wait_until(Duration::from_secs(50), || {
        doc = serde_json::from_str(&fetch(&demo, "json")).expect("JSON report");
        let text = doc["green_threads"].to_string();
        text.contains("/await-lock") && text.contains("STUCK")
    });
    assert!(
        stuck,
        "the requests never showed in flight: {}",
        doc["green_threads"]
    );
    (demo, doc)
}

#[test]
fn a_demo_report_works_in_chromium() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (demo, doc) = demo_with_requests(dir.path(), "");
    // The text view of the same report (shared within the interval).
    let text = fetch(&demo, "text");
    let generated_at = doc["generated_at"]
        .as_str()
        .expect("generated_at")
        .to_owned();
    assert!(text.contains(&generated_at), "not the same report");

    let mut browser = Chromium::start(1280, 900);
    browser.set_bearer_token(&demo.token().expect("token"));
    // No `?format=`: the browser's own `Accept: text/html` picks the page.
    let url = format!("http://{}/admin/gmr", demo.addr);
    browser.open(&url);
    let headers = browser.response_headers(&url).expect("the page's response");
    let policy = headers["content-security-policy"]
        .as_str()
        .unwrap_or_default();
    assert!(
        policy.starts_with("default-src 'none'; script-src 'sha256-") && !policy.contains("unsafe"),
        "{headers}"
    );
    assert!(
        headers["content-type"]
            .as_str()
            .is_some_and(|t| t.starts_with("text/html")),
        "{headers}"
    );
    let meta = browser.eval("document.querySelector('.meta').textContent");
    assert!(
        meta.as_str().is_some_and(|m| m.contains(&generated_at)),
        "the page is of another report: {meta}"
    );
    // The script ran (under the policy) when the page loaded: it indexed the flame graph.
    let ran = browser.eval("document.querySelector('#gmr-flame g.fr[data-i]') !== null");
    assert_eq!(
        ran,
        json!(true),
        "gmr's script did not run: {:#?}",
        browser.errors()
    );

    // Expand a stack group: its frames show.
    let group = "details.group[data-group='0']";
    assert_eq!(
        browser.eval(&format!("document.querySelector(\"{group}\").open")),
        json!(false)
    );
    browser.click(&format!("{group} > summary"));
    assert!(browser.wait_for(
        &format!("document.querySelector(\"{group}\").open && document.querySelector(\"{group} .f\").offsetHeight > 0"),
        DEADLINE
    ));

    // Search a known frame: it is found and shown, the groups without it are hidden.
    browser.click("#gmr-search");
    browser.type_text("demo_parked_worker");
    assert!(browser.wait_for(
        "document.getElementById('gmr-count').textContent !== ''",
        DEADLINE
    ));
    let found = browser.eval(
        "[...document.querySelectorAll('.f.hit')]\
           .filter(f => f.offsetParent !== null && f.textContent.includes('demo_parked_worker')).length",
    );
    assert!(
        found.as_u64().is_some_and(|n| n >= 1),
        "search found {found}: {}; the report's capture notes: {}, threads: {}",
        browser.eval("document.getElementById('gmr-count').textContent"),
        doc["threads"]["notes"],
        doc["threads"]["threads"]
    );
    let hidden = browser.eval("document.querySelectorAll('details.group.gone').length");
    assert!(
        hidden.as_u64().is_some_and(|n| n >= 1),
        "no group filtered out"
    );
    let marked = browser.eval("document.querySelectorAll('#gmr-flame g.hit').length");
    assert!(
        marked.as_u64().is_some_and(|n| n >= 1),
        "not marked in the flame graph"
    );

    // The flame graph: a leaf per stack group of the text view (and of the JSON).
    let groups = text_stack_groups(&text);
    assert!(groups >= 3, "{text}");
    assert_eq!(
        browser.eval(&flame_leaves("threads")),
        json!(groups),
        "{text}"
    );
    let stacks = doc["threads"]["stacks"].as_array().expect("stack groups");
    assert_eq!(stacks.len(), groups, "{text}");

    // A click on a frame zooms into it; Reset zoom shows everything again.
    browser.click("#gmr-flame g.fr.k-application rect");
    assert!(browser.wait_for(
        "!document.getElementById('gmr-flame-reset').hidden && \
         document.querySelectorAll('#gmr-flame g.zhide').length > 0",
        DEADLINE
    ));
    browser.click("#gmr-flame-reset");
    assert!(browser.wait_for(
        "document.getElementById('gmr-flame-reset').hidden && \
         document.querySelectorAll('#gmr-flame g.zhide').length === 0",
        DEADLINE
    ));

    // STUCK is highlighted.
    let stuck = browser.eval(
        "[...document.querySelectorAll('.stuck')].some(e => e.textContent.startsWith('STUCK'))",
    );
    assert_eq!(stuck, json!(true));

    // The search cleared, one group open: the picture for the handbook.
    browser.eval(
        "(() => { const s = document.getElementById('gmr-search'); s.value = ''; \
         s.dispatchEvent(new Event('input')); return true; })()",
    );
    let errors = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    let path = screenshot_path("gmr-html-report.png");
    browser.screenshot(&path, 1600);
    eprintln!("screenshot of the HTML report: {}", path.display());
    assert!(std::fs::metadata(&path).is_ok_and(|m| m.len() > 10_000));
}

#[test]
fn nothing_in_a_report_runs_in_the_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "[app]\nmotd = {}\nbanner = {}\nhelp_url = {}\n",
        json!(PAYLOADS[0]),
        json!(PAYLOADS[1]),
        json!(PAYLOADS[2])
    );
    let (demo, mut doc) = demo_with_requests(dir.path(), &config);
    let mut browser = Chromium::start(1280, 900);
    // Record a dialog instead of opening one (scripts of the protocol run whatever the CSP).
    browser.call(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": "window.alert = m => { window.__gmr_dialog = String(m); };"}),
    );

    // The page of the endpoint: configuration values.
    browser.set_bearer_token(&demo.token().expect("token"));
    browser.open(&format!("http://{}/admin/gmr?format=html", demo.addr));
    let problems = browser.eval(&hostile_check());
    assert_eq!(problems, json!([]), "the endpoint's page");

    // A thread name and a request path too, in the same report's JSON, as `gmr view` would
    // render a report file.
    let all = PAYLOADS.join(" ");
    doc["threads"]["threads"][0]["name"] = json!(all);
    let request = json!({
        "id": 1, "method": "GET", "path": all, "route": PAYLOADS[2], "age_ms": 1000,
        "state": format!("STUCK {all}"), "thread": all, "polled_by_tid": 1, "in_poll_ms": 1000,
        "last_poll_ms": 1000, "task_id": null, "spans": [], "waiting_in": all,
    });
    let requests =
        json!({"source": all, "in_flight": 1, "stuck_in_poll": 1, "requests": [request]});
    match doc["green_threads"]["requests"].as_array_mut() {
        Some(blocks) => blocks.push(requests),
        None => doc["green_threads"]["requests"] = json!([requests]),
    }
    let report = gmr::Report::from_json(&doc).expect("the hostile report reads back");
    let page = gmr::report::html::render(&report);
    let file = screenshot_path("gmr-html-hostile.html");
    std::fs::write(&file, &page).expect("write the page");
    browser.open(&format!("file://{}", file.display()));
    let problems = browser.eval(&hostile_check());
    assert_eq!(problems, json!([]), "the page of the JSON");
    let name_shown = browser.eval(&format!(
        "[...document.querySelectorAll('td.tname')].some(td => td.textContent === {})",
        json!(all)
    ));
    assert_eq!(name_shown, json!(true), "the thread name is shown as text");
    let path_shown = browser.eval(&format!(
        "[...document.querySelectorAll('td.path')].some(td => td.textContent === {})",
        json!(all)
    ));
    assert_eq!(path_shown, json!(true), "the request path is shown as text");
    let errors = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[test]
fn format_html_writes_html_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).expect("reports dir");
    let config = write_file(
        dir.path(),
        "app.toml",
        &format!(
            "[gmr]\nformat = \"html\"\nlog_dir = {}\n",
            json!(reports.to_str().expect("UTF-8 path"))
        ),
    );
    let demo = Demo::start("axum-demo", &["--config", config.to_str().expect("UTF-8")]);
    demo.signal(libc::SIGUSR2);
    let files = gmr_integration_tests::wait_report_files(&reports, 1, Duration::from_secs(120))
        .expect("a report file");
    let name = files[0]
        .file_name()
        .and_then(|n| n.to_str())
        .expect("file name");
    assert!(name.ends_with(".html"), "{name}");
    let page = std::fs::read_to_string(&files[0]).expect("read the page");
    assert!(
        page.starts_with("<!DOCTYPE html>"),
        "{}",
        &page[..page.len().min(200)]
    );
    assert!(page.contains("Content-Security-Policy"));
    assert!(page.contains("demo_parked_worker"));
}

/// The report of `docs/examples/` (axum-demo built with `tokio_unstable`, `--spans`: task
/// stacks, spans), as `gmr view` would render the file: the Green Threads view of real task
/// dumps in the browser.
#[test]
fn a_report_with_task_stacks_works_in_chromium() {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples/axum-demo-report.json");
    let text = std::fs::read_to_string(&fixture).expect("the example report");
    let doc: Value = serde_json::from_str(&text).expect("JSON");
    let dump = &doc["green_threads"]["tasks"][0];
    let runtime = dump["runtime"].as_str().expect("a runtime");
    let groups = dump["groups"].as_array().expect("task groups");
    assert!(groups.len() >= 3, "the example has task groups");
    let traces: usize = groups
        .iter()
        .map(|g| g["traces"].as_array().map_or(0, Vec::len))
        .sum();
    let report = gmr::Report::from_json(&doc).expect("the example report reads back");
    let page = gmr::report::html::render(&report);
    let file = screenshot_path("gmr-html-tasks.html");
    std::fs::write(&file, &page).expect("write the page");

    let mut browser = Chromium::start(1280, 900);
    browser.open(&format!("file://{}", file.display()));
    // One leaf per thread stack group, and per leaf future of each task group.
    assert_eq!(
        browser.eval(&flame_leaves("threads")),
        json!(doc["threads"]["stacks"].as_array().map_or(0, Vec::len))
    );
    assert_eq!(
        browser.eval(&flame_leaves(&format!("tasks of {runtime}"))),
        json!(traces)
    );
    // Each task group is one collapsible block that says how many tasks share its stack.
    let summaries = browser.eval(
        "[...document.querySelectorAll('details.group.unit > summary .who')]\
           .filter(s => / tasks? with this stack$/.test(s.textContent)).length",
    );
    assert_eq!(summaries, json!(groups.len()));
    // The requests, oldest first, each with its spans and its task's stack.
    let ages = browser.eval(
        "[...document.querySelectorAll('table.requests tbody.req')].map(b => b.querySelector('td:nth-child(5)').textContent)",
    );
    let mut expected: Vec<u64> = doc["green_threads"]["requests"][0]["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter_map(|r| r["age_ms"].as_u64())
        .collect();
    expected.sort_by(|a, b| b.cmp(a));
    let expected: Vec<String> = expected
        .iter()
        .map(|ms| format!("{:.1} s", *ms as f64 / 1000.0))
        .collect();
    assert_eq!(ages, json!(expected), "requests sorted by age");
    let with_stack = browser.eval("document.querySelectorAll('tbody.req details.task').length");
    assert_eq!(
        with_stack,
        json!(expected.len()),
        "every request's task stack"
    );
    let with_spans = browser.eval("document.querySelectorAll('tbody.req .spans code').length");
    assert!(
        with_spans.as_u64().is_some_and(|n| n >= 3),
        "spans: {with_spans}"
    );
    // Open a request's task stack; search finds the handler's frame in a task stack.
    browser.click("tbody.req details.task > summary");
    assert!(browser.wait_for(
        "document.querySelector('tbody.req details.task').open",
        DEADLINE
    ));
    browser.click("#gmr-search");
    browser.type_text("demo_await_lock");
    assert!(browser.wait_for(
        "[...document.querySelectorAll('.f.hit')].some(f => f.offsetParent !== null && f.closest('details.group[data-group^=\"0.\"]'))",
        DEADLINE
    ), "the search does not find demo_await_lock in a task group");
    let errors = browser.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    let path = screenshot_path("gmr-html-tasks.png");
    browser.screenshot(&path, 1600);
    eprintln!(
        "screenshot of the page with task stacks: {}",
        path.display()
    );
}
