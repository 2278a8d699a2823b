//! Names stay right when libraries change under the process: a shared library replaced on disk
//! (a deployment writing a new file over the path) is named from the mapped copy, not the new
//! file; a library unloaded and another loaded at the same addresses gets its own names.
//!
//! The libraries are built with gcc at test time, each with a function that blocks its thread
//! in `read` on a pipe, so the function is on a stack when the report is taken.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#![allow(unsafe_code)]

mod threads_support;

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use threads_support::{engine, functions, gettid, threads_report, with_deadline};

/// A library whose `<name>` function blocks in `read(fd)`; every library built from this
/// template has the same code at the same offsets (the names are of equal length).
fn library_source(name: &str) -> String {
    format!(
        "#include <unistd.h>\n\
         __attribute__((noinline)) int {name}(int fd) {{ char c; return (int)read(fd, &c, 1); }}\n"
    )
}

fn build_library(dir: &Path, file: &str, function: &str) -> PathBuf {
    let source = dir.join(format!("{function}.c"));
    std::fs::write(&source, library_source(function)).expect("write source");
    let out = dir.join(file);
    let status = Command::new("gcc")
        .args([
            "-shared",
            "-fPIC",
            "-O0",
            "-g",
            "-fno-omit-frame-pointer",
            "-o",
        ])
        .arg(&out)
        .arg(&source)
        .status()
        .expect("run gcc (install gcc)");
    assert!(status.success(), "gcc failed for {function}");
    out
}

/// A library loaded with `dlopen`.
struct Library(*mut libc::c_void);

// SAFETY: the handle is only passed to dlsym/dlclose, which are thread-safe.
unsafe impl Send for Library {}

impl Library {
    fn open(path: &Path) -> Library {
        let c_path = CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path; the library runs no constructors of interest.
        let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        assert!(!handle.is_null(), "dlopen {}", path.display());
        Library(handle)
    }

    /// The blocking function `name`.
    fn function(&self, name: &str) -> extern "C" fn(libc::c_int) -> libc::c_int {
        let c_name = CString::new(name).expect("name");
        // SAFETY: a valid handle and NUL-terminated name.
        let symbol = unsafe { libc::dlsym(self.0, c_name.as_ptr()) };
        assert!(!symbol.is_null(), "dlsym {name}");
        // SAFETY: the symbol is a C function `int name(int)`.
        unsafe {
            std::mem::transmute::<*mut libc::c_void, extern "C" fn(libc::c_int) -> libc::c_int>(
                symbol,
            )
        }
    }

    fn close(self) {
        // SAFETY: the handle came from dlopen and no code of the library runs any more.
        let rc = unsafe { libc::dlclose(self.0) };
        assert_eq!(rc, 0, "dlclose");
    }
}

/// A thread blocked inside `function` until its pipe is written to.
struct Blocked {
    tid: i32,
    wake: libc::c_int,
    thread: std::thread::JoinHandle<()>,
}

fn block_in(function: extern "C" fn(libc::c_int) -> libc::c_int) -> Blocked {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
    let (read_end, write_end) = (fds[0], fds[1]);
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _ = tx.send(gettid());
        function(read_end);
        // SAFETY: closing our own descriptor.
        unsafe { libc::close(read_end) };
    });
    let tid = rx.recv().expect("thread started");
    Blocked {
        tid,
        wake: write_end,
        thread,
    }
}

impl Blocked {
    fn release(self) {
        // SAFETY: writing one byte from a valid buffer to our pipe, then closing it.
        unsafe {
            libc::write(self.wake, b"x".as_ptr().cast(), 1);
            libc::close(self.wake);
        }
        self.thread.join().expect("blocked thread");
    }
}

/// Waits until `tid`'s stack shows a function containing `name` (the thread may still be on
/// its way into `read`).
fn stack_with(tid: i32, name: &str) -> (Vec<String>, serde_json::Value) {
    let gmr = engine();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (json, _) = threads_report(&gmr);
        let names = functions(&json, tid);
        if names.iter().any(|f| f.contains(name)) || std::time::Instant::now() > deadline {
            return (names, json);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The start of the mapping of `path` in /proc/self/maps (` (deleted)` once replaced).
fn mapped_at(path: &Path) -> Option<u64> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let path = path.to_string_lossy();
    maps.lines()
        .find(|l| l.ends_with(&*path) || l.ends_with(&format!("{path} (deleted)")))
        .and_then(|l| u64::from_str_radix(l.split('-').next()?, 16).ok())
}

#[test]
fn names_follow_the_mapped_library_not_the_file_on_disk() {
    with_deadline(Duration::from_secs(120), || {
        let dir = tempfile::tempdir().expect("tempdir");
        let installed = build_library(dir.path(), "libdeploy.so", "lib_old_wait");
        let newer = build_library(dir.path(), "libnewer.so", "lib_new_wait");

        // 1. Replaced on disk before gmr ever read it: a deployment renames a new build over
        //    the path while the old one is mapped.
        let library = Library::open(&installed);
        let blocked = block_in(library.function("lib_old_wait"));
        std::fs::rename(&newer, &installed).expect("replace on disk");
        let (names, json) = stack_with(blocked.tid, "lib_old_wait");
        assert!(
            names.iter().any(|f| f == "lib_old_wait"),
            "named from the mapped library: {names:?}"
        );
        assert!(
            !names.iter().any(|f| f.contains("lib_new_wait")),
            "never from the new file: {names:?}"
        );
        let notes = json["notes"].to_string();
        assert!(notes.contains("replaced on disk"), "{notes}");
        let first_range = mapped_at(&installed);
        blocked.release();
        library.close();

        // 2. Another library loaded after it, the module table as long as before (the same
        //    addresses when the kernel reuses the range; the unit test
        //    `capture::symbolize::tests::another_module_at_the_same_addresses_has_its_own_names`
        //    pins that case down).
        let other = build_library(dir.path(), "libother.so", "lib_alt_wait");
        let library = Library::open(&other);
        let where_mapped = format!(
            "old library at {first_range:x?}, new one at {:x?}",
            mapped_at(&other)
        );
        let blocked = block_in(library.function("lib_alt_wait"));
        let (names, _) = stack_with(blocked.tid, "lib_alt_wait");
        assert!(
            names.iter().any(|f| f == "lib_alt_wait"),
            "the new library's own names ({where_mapped}): {names:?}"
        );
        assert!(
            !names.iter().any(|f| f.contains("lib_old_wait")),
            "{names:?}"
        );
        blocked.release();
        library.close();
    });
}
