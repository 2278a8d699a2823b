//! `/proc` is bytes, not text: a thread whose name std cut inside a UTF-8 character is still
//! listed (its name shown lossily), and a mapped file whose name is not UTF-8 or holds a
//! newline does not cost the report its module table.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#![allow(unsafe_code)]

mod threads_support;

use std::os::unix::ffi::OsStrExt as _;
use std::sync::mpsc;
use std::time::Duration;

use threads_support::{engine, gettid, thread, threads_report, with_deadline};

/// A name of 14 ASCII bytes and an `é` (2 bytes): the kernel keeps 15 bytes, so `comm` ends
/// with the first byte of the `é`, which is not UTF-8.
const CUT_NAME: &str = "fourteen-bytes\u{e9}";

#[test]
fn a_thread_whose_name_was_cut_inside_a_character_is_listed() {
    assert_eq!(CUT_NAME.len(), 16);
    with_deadline(Duration::from_secs(60), || {
        let (tx, rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let worker = std::thread::Builder::new()
            .name(CUT_NAME.to_owned())
            .spawn(move || {
                tx.send(gettid()).expect("tid");
                let _ = release_rx.recv();
            })
            .expect("spawn");
        let tid = rx.recv().expect("tid");
        let comm = std::fs::read(format!("/proc/self/task/{tid}/comm")).expect("comm");
        assert!(
            std::str::from_utf8(&comm).is_err(),
            "the kernel kept a cut character: {comm:?}"
        );
        let gmr = engine();
        let mut with_stack = 0;
        for _ in 0..3 {
            let (json, text) = threads_report(&gmr);
            let entry =
                thread(&json, tid).unwrap_or_else(|| panic!("thread #{tid} missing: {text}"));
            let name = entry["comm"].as_str().unwrap_or_default();
            assert!(name.starts_with("fourteen-bytes"), "{entry}");
            with_stack += usize::from(entry["stack"].is_u64());
        }
        assert!(with_stack >= 1, "its stack was never captured");
        release_tx.send(()).expect("release");
        worker.join().expect("worker");
    });
}

#[test]
fn an_odd_file_name_in_the_maps_keeps_the_module_table() {
    with_deadline(Duration::from_secs(60), || {
        let dir = tempfile::tempdir().expect("tempdir");
        // Not UTF-8, and a newline (the kernel shows it as `\012`).
        let name = std::ffi::OsStr::from_bytes(b"odd-\xff\xfe-name\nwith-newline.bin");
        let path = dir.path().join(name);
        std::fs::write(&path, [0u8; 4096]).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        // SAFETY: a fresh private read-only mapping of a 4 KiB file we own; unmapped below.
        let addr = unsafe {
            use std::os::fd::AsRawFd as _;
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(addr, libc::MAP_FAILED, "mmap");
        let maps = std::fs::read("/proc/self/maps").expect("maps");
        assert!(
            std::str::from_utf8(&maps).is_err(),
            "the maps are not UTF-8"
        );

        let gmr = engine();
        let (json, text) = threads_report(&gmr);
        let notes = json["notes"].to_string();
        assert!(!notes.contains("/proc/self/maps"), "{notes}");
        // The reporting thread's frames are attributed to this test binary's module.
        let me = gettid();
        let entry = thread(&json, me).expect("reporting thread listed");
        let id = entry["stack"].as_u64().expect("own stack") as usize;
        let exe = std::env::current_exe().expect("exe");
        let exe_name = exe
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let frames = json["stacks"][id]["frames"].as_array().expect("frames");
        assert!(
            frames
                .iter()
                .any(|f| f["module"].as_str() == Some(&exe_name)),
            "no frame in {exe_name}: {text}"
        );
        // SAFETY: the mapping made above, unmapped once.
        unsafe { libc::munmap(addr, 4096) };
    });
}
