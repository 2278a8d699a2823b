//! Golden test of the `Threads` text view on synthetic stacks: naming (full paths, bare
//! debug-info names given their crate and module, closures), generic elision, short paths
//! (registry, toolchain, workspace), folding (runtime, framework, std and system runs; extra
//! crates from `threads.fold`; application and library frames shown), group headers and TID
//! lists, threads without a stack.
//!
//! Input: `gmr/tests/golden/threads_input.json`; expected text: `gmr/tests/golden/threads.txt`.
//! After an intended change of the layout, `GMR_BLESS=1 cargo test -p gmr --lib golden`
//! rewrites the expected text; read the diff before committing it.

use serde_json::Value;

use super::model::{FutexWaiters, StackGroup, SyscallEntry, ThreadEntry, ThreadsSection};
use crate::config::FoldConfig;
use crate::report::stack::{RawSymbol, StackStyle, Workspace};
use crate::report::{SectionBody, TextWriter};

const INPUT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/golden/threads_input.json"
);
const EXPECTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/threads.txt");

fn text(v: &Value, key: &str) -> Option<String> {
    v[key].as_str().map(str::to_owned)
}

fn thread(v: &Value, stack: Option<usize>) -> ThreadEntry {
    let cpu = v["cpu"].as_array();
    ThreadEntry {
        tid: v["tid"].as_i64().expect("tid") as i32,
        name: text(v, "name").expect("name"),
        comm: None,
        state: text(v, "state"),
        state_name: text(v, "state").map(|s| {
            crate::capture::threads_proc::state_name(s.chars().next().unwrap_or('?')).to_owned()
        }),
        cpu_user_s: cpu.and_then(|c| c[0].as_f64()),
        cpu_system_s: cpu.and_then(|c| c[1].as_f64()),
        wchan: text(v, "wchan"),
        syscall: text(v, "syscall").map(|text| SyscallEntry {
            nr: 0,
            name: None,
            text,
            futex: v["futex"].as_str().map(str::to_owned),
        }),
        reporting_thread: false,
        stack,
        stack_missing: text(v, "why"),
        start_ticks: None,
        cpu_ns: None,
        sched_runs: None,
        polling: None,
        cpu_ns_after_capture: None,
        sched_runs_after_capture: None,
        cpu_during_capture_ms: None,
    }
}

fn section() -> ThreadsSection {
    let input: Value =
        serde_json::from_str(&std::fs::read_to_string(INPUT).expect("golden input")).expect("JSON");
    let workspace = input["workspace"].as_str().expect("workspace");
    let style = StackStyle {
        workspace: Workspace {
            root: Some(workspace.to_owned()),
            package: Some((
                text(&input, "app_dir").expect("app_dir"),
                text(&input, "app_package").expect("app_package"),
            )),
        },
        app_crate: Some("inventory_svc".to_owned()),
        fold: FoldConfig {
            enabled: true,
            extra_crates: input["fold_extra"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect(),
        },
    };
    let expand = |s: &str| {
        s.replace("{registry}", input["registry"].as_str().unwrap_or_default())
            .replace("{rustc}", input["rustc"].as_str().unwrap_or_default())
    };
    let mut threads = Vec::new();
    let mut stacks = Vec::new();
    for (id, group) in input["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .enumerate()
    {
        let mut frames = Vec::new();
        for (i, f) in group["frames"]
            .as_array()
            .expect("frames")
            .iter()
            .enumerate()
        {
            let file = f["file"].as_str().map(expand);
            let module = f["module"].as_str().unwrap_or("inventory-svc");
            let address = f["address"]
                .as_u64()
                .unwrap_or(0x5555_0000_0000 + i as u64 * 16);
            frames.push(
                style.frame(&RawSymbol {
                    function: f["function"].as_str(),
                    file: file.as_deref(),
                    line: f["line"].as_u64().map(|l| l as u32),
                    column: None,
                    module: (!f["address"].is_u64()).then_some(module),
                    offset: (!f["address"].is_u64())
                        .then(|| f["offset"].as_u64().unwrap_or(0x1000 + i as u64 * 16)),
                    address,
                    inlined: f["inlined"].as_bool().unwrap_or(false),
                    system: f["system"].as_bool().unwrap_or(false),
                }),
            );
        }
        let members = group["threads"].as_array().expect("threads");
        let tids = members.iter().map(|t| thread(t, Some(id)).tid).collect();
        threads.extend(members.iter().map(|t| thread(t, Some(id))));
        stacks.push(StackGroup {
            id,
            tids,
            frames,
            truncated: None,
        });
    }
    threads.extend(
        input["without_stack"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| thread(t, None)),
    );
    threads.sort_by_key(|t| t.tid);
    ThreadsSection {
        stacks_supported: true,
        capture_signal: Some("SIGRTMIN+5 (39)".to_owned()),
        thread_count: threads.len(),
        stacks_captured: threads.iter().filter(|t| t.stack.is_some()).count(),
        capture_ms: 12.345,
        notes: Vec::new(),
        futex_waiters: vec![FutexWaiters {
            address: "0x7f3c8e11ba48".to_owned(),
            tids: vec![4212, 4213],
        }],
        threads,
        stacks,
        folded: true,
        modules: Vec::new(),
        style: None,
        since: None,
    }
}

#[test]
fn the_threads_text_view_matches_its_golden_file() {
    let mut out = TextWriter::new();
    section().write_text(&mut out);
    let got = out.into_string();
    if std::env::var_os("GMR_BLESS").is_some() {
        std::fs::write(EXPECTED, &got).expect("bless");
    }
    let expected = std::fs::read_to_string(EXPECTED).unwrap_or_default();
    assert!(
        got == expected,
        "the Threads text view changed; if intended, bless it (GMR_BLESS=1) and read the diff.\n\
         --- got ---\n{got}\n--- expected ---\n{expected}"
    );
    assert!(
        got.lines().all(|l| l.chars().count() <= 160),
        "a line over 160 columns"
    );
}

#[test]
fn the_golden_json_keeps_every_frame_and_full_names() {
    let json = section().to_json();
    let frames = json["stacks"][0]["frames"].as_array().expect("frames");
    assert_eq!(frames.len(), 16, "JSON keeps every frame");
    let handler = &frames[6];
    assert_eq!(
        handler["function"],
        "<F as axum::handler::Handler<(M,T1),S>>::call::{{closure}}"
    );
    assert_eq!(
        handler["name"],
        "<F as axum::handler::Handler<…>>::call::{closure}"
    );
    assert_eq!(handler["kind"], "framework");
    assert_eq!(frames[4]["kind"], "application");
    assert_eq!(frames[4]["path"], "inventory-svc/src/export.rs");
    assert_eq!(frames[0]["kind"], "system");
    assert_eq!(frames[3]["kind"], "std");
    let library = &json["stacks"][1]["frames"][5];
    assert_eq!(library["kind"], "library");
    assert_eq!(library["crate"], "serde_json");
    assert_eq!(
        json["stacks"][1]["frames"][4]["kind"], "framework",
        "sqlx* is folded"
    );
}

#[test]
fn stuck_and_blocked_threads_come_first_saying_their_request() {
    use crate::sections::since::model::{StuckThread, ThreadChurn, ThreadsSince};
    let mut s = section();
    // The thread of the last one-thread stack group, listed late by default.
    let last = s
        .stacks
        .iter()
        .rev()
        .find(|g| g.tids.len() == 1)
        .expect("a one-thread group")
        .tids[0];
    let thread = s
        .threads
        .iter_mut()
        .find(|t| t.tid == last)
        .expect("its thread");
    thread.polling = Some("request 7 GET /export, 12.3 s in this poll (STUCK)".to_owned());
    s.since = Some(ThreadsSince {
        previous_report_at: "2026-11-26T03:14:03Z".to_owned(),
        interval_ms: 12_000,
        stuck: vec![StuckThread {
            tid: last,
            name: "worker".to_owned(),
            stuck_ms: 12_000,
            since: "2026-11-26T03:14:03Z".to_owned(),
        }],
        busy: Vec::new(),
        busy_not_listed: 0,
        idle: 3,
        moved: 1,
        appeared: ThreadChurn::default(),
        vanished: ThreadChurn::default(),
    });
    let mut out = TextWriter::new();
    s.write_text(&mut out);
    let text = out.into_string();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[2]
            .starts_with("since the last report (2026-11-26T03:14:03Z, 12.0 s before): 1 STUCK"),
        "{text}"
    );
    assert!(
        lines[3].starts_with(&format!("  STUCK ≥ 12.0 s  #{last} ")),
        "{text}"
    );
    let first_block = lines
        .iter()
        .position(|l| l.starts_with("------"))
        .expect("a block");
    assert!(
        lines[first_block].contains(&format!("#{last} "))
            && lines[first_block].contains("STUCK ≥ 12.0 s"),
        "{text}"
    );
    assert_eq!(
        lines[first_block + 1],
        "   polling request 7 GET /export, 12.3 s in this poll (STUCK)"
    );
}
