//! A stack deeper than the copied window says that it was cut there, instead of ending silently.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod threads_support;

use std::sync::mpsc;
use std::time::Duration;

use threads_support::{engine, gettid, thread, threads_report, with_deadline};

/// Recurses with a 2 KiB frame each level: 200 levels are ~400 KiB of stack, beyond the window.
#[inline(never)]
fn deep_stack_frame(level: u32, parked: &mpsc::Sender<i32>) -> u64 {
    let mut pad = [0u8; 2048];
    pad[(level as usize) % 2048] = level as u8;
    std::hint::black_box(&mut pad);
    if level == 0 {
        let _ = parked.send(gettid());
        loop {
            std::thread::park();
        }
    }
    u64::from(pad[0]) + deep_stack_frame(level - 1, parked)
}

#[test]
fn a_stack_deeper_than_the_window_is_marked_truncated() {
    with_deadline(Duration::from_secs(60), || {
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("deep-stack".into())
            .stack_size(4 * 1024 * 1024)
            .spawn(move || deep_stack_frame(200, &tx))
            .expect("spawn");
        let tid = rx.recv().expect("deep thread parked");
        let (json, _text) = threads_report(&engine());
        let entry = thread(&json, tid).expect("deep thread listed");
        let id = entry["stack"].as_u64().expect("a stack");
        let stack = &json["stacks"][id as usize];
        let note = stack["truncated"].as_str().unwrap_or_default();
        assert!(note.contains("stack window"), "{stack}");
        let frames = stack["frames"].as_array().map_or(0, Vec::len);
        assert!(
            frames > 10,
            "the frames inside the window are shown: {stack}"
        );
    });
}
