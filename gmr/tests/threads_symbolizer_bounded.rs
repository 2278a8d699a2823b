//! A debug-file read that blocks cannot hold a report: symbolization runs on a thread of its
//! own and the report goes on without names at `threads.deadline`, saying why. Simulated with a
//! stripped library whose "debug file" beside it is a FIFO nobody writes to: opening it blocks
//! like a read from a hung network filesystem.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#![allow(unsafe_code)]

mod threads_support;

use std::ffi::CString;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use threads_support::{gettid, thread, threads_report, with_deadline};

#[test]
fn a_blocked_debug_file_read_cuts_names_at_the_deadline() {
    with_deadline(Duration::from_secs(120), || {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("hang.c");
        std::fs::write(
            &source,
            "#include <unistd.h>\n\
             __attribute__((noinline)) int hang_wait(int fd) { char c; return (int)read(fd, &c, 1); }\n",
        )
        .expect("source");
        let library = dir.path().join("libhang.so");
        let built = Command::new("gcc")
            .args(["-shared", "-fPIC", "-O0", "-o"])
            .arg(&library)
            .arg(&source)
            .status()
            .expect("run gcc");
        assert!(built.success());
        let stripped = Command::new("strip")
            .arg("--strip-debug")
            .arg(&library)
            .status();
        assert!(stripped.expect("run strip").success());
        let fifo = dir.path().join("libhang.so.debug");
        let c_fifo = CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0, "mkfifo");

        let c_library = CString::new(library.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid path; the library has no constructors.
        let handle = unsafe { libc::dlopen(c_library.as_ptr(), libc::RTLD_NOW) };
        assert!(!handle.is_null(), "dlopen");
        // SAFETY: a valid handle and name; the symbol is `int hang_wait(int)`.
        let wait: extern "C" fn(libc::c_int) -> libc::c_int =
            unsafe { std::mem::transmute(libc::dlsym(handle, c"hang_wait".as_ptr())) };
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: a valid array of two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let (tx, rx) = mpsc::channel();
        let read_end = fds[0];
        std::thread::spawn(move || {
            let _ = tx.send(gettid());
            wait(read_end);
        });
        let tid = rx.recv().expect("blocked thread");

        let config = config::Config::builder()
            .set_default("gmr.threads.deadline", "2s")
            .and_then(|b| b.build())
            .expect("config");
        let gmr = gmr::Gmr::builder().config(&config).build().expect("engine");
        let started = Instant::now();
        let (json, _) = threads_report(&gmr);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "the report took {took:?}");
        let notes = json["notes"].to_string();
        assert!(
            notes.contains("did not finish within threads.deadline"),
            "{notes}"
        );
        assert!(thread(&json, tid).is_some(), "the thread is listed");
        // The symbolizer is still stuck: the next report says so, and is not held either.
        let started = Instant::now();
        let (json, _) = threads_report(&gmr);
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            json["notes"].to_string().contains("still busy"),
            "{}",
            json["notes"]
        );

        // Unblock the symbolizer (a writer appears and leaves) and the thread.
        drop(std::fs::OpenOptions::new().write(true).open(&fifo));
        // SAFETY: writing one byte to our own pipe.
        unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) };
    });
}
