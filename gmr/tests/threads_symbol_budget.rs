//! `threads.symbol_budget` bounds what symbolization holds: with a budget too small for this
//! binary's debug information, frames are named from the symbol table only (no file:line) and
//! the report says the budget cut them. Its own process: the symbolizer keeps what it loaded.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod threads_support;

use std::sync::mpsc;
use std::time::Duration;

use threads_support::{gettid, thread, threads_report, with_deadline};

#[inline(never)]
fn parked_for_the_budget_test(ready: &mpsc::Sender<i32>) {
    let _ = ready.send(gettid());
    loop {
        std::thread::park();
    }
}

#[test]
fn a_small_budget_names_frames_from_the_symbol_table_and_says_so() {
    with_deadline(Duration::from_secs(120), || {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || parked_for_the_budget_test(&tx));
        let tid = rx.recv().expect("parked");
        let config = config::Config::builder()
            .set_default("gmr.threads.symbol_budget", "1MiB")
            .and_then(|b| b.build())
            .expect("config");
        let gmr = gmr::Gmr::builder().config(&config).build().expect("engine");
        let (json, text) = threads_report(&gmr);
        let notes = json["notes"].to_string();
        assert!(notes.contains("threads.symbol_budget"), "{notes}");
        assert!(
            text.contains("threads.symbol_budget"),
            "said in the text too"
        );
        let entry = thread(&json, tid).expect("parked thread");
        let stack = &json["stacks"][entry["stack"].as_u64().expect("stack") as usize];
        let frame = stack["frames"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|f| {
                f["function"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("parked_for_the_budget_test"))
            })
            .unwrap_or_else(|| panic!("named from the symbol table: {stack}"));
        assert!(
            frame["file"].is_null() && frame["line"].is_null(),
            "{frame}"
        );
    });
}
