//! A process that is not dumpable (`prctl(PR_SET_DUMPABLE, 0)`, as setuid binaries and
//! binaries with file capabilities are) and runs as an unprivileged user cannot open
//! `/proc/self/mem` (it becomes root's): the capture copies stacks with `process_vm_readv`
//! instead (no seccomp filter is in force here) and the section says which path it used.
//!
//! The test re-runs itself as `nobody` (uid 65534), from a copy of this binary that `nobody`
//! can execute; tests run as root here. As another user it is skipped with a message: it
//! cannot change users.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#![allow(unsafe_code)]
#![allow(clippy::print_stderr)]

mod threads_support;

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use threads_support::{engine, functions, gettid, thread, threads_report, with_deadline};

const CHILD_ENV: &str = "GMR_NONDUMPABLE_CHILD";
const TEST: &str = "a_non_dumpable_process_still_gets_stacks";
const NOBODY: u32 = 65534;

#[inline(never)]
fn nondumpable_parked(depth: u32, release: &mpsc::Receiver<()>) {
    if depth > 0 {
        nondumpable_parked(depth - 1, release);
        std::hint::black_box(depth);
        return;
    }
    let _ = release.recv();
}

/// The child: not dumpable, as `nobody`; takes reports and checks them.
fn child() {
    // SAFETY: prctl with integer arguments.
    assert_eq!(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) }, 0);
    // SAFETY: getuid has no preconditions.
    assert_eq!(unsafe { libc::getuid() }, NOBODY);
    let denied = std::fs::File::open("/proc/self/mem").expect_err("/proc/self/mem is root's");
    assert_eq!(denied.kind(), std::io::ErrorKind::PermissionDenied);
    with_deadline(Duration::from_secs(60), || {
        let (tx, rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let parked = std::thread::spawn(move || {
            tx.send(gettid()).expect("tid");
            nondumpable_parked(8, &release_rx);
        });
        let tid = rx.recv().expect("tid");
        let gmr = engine();
        let (json, text) = threads_report(&gmr);
        assert!(thread(&json, tid).is_some(), "{text}");
        let fns = functions(&json, tid);
        assert!(
            fns.iter()
                .filter(|f| f.contains("nondumpable_parked"))
                .count()
                >= 8,
            "{fns:?}\n{text}"
        );
        assert!(json["stacks_captured"].as_u64().unwrap_or(0) >= 2, "{text}");
        let notes = json["notes"].to_string();
        assert!(notes.contains("stack_copy = process_vm_readv"), "{notes}");
        assert!(
            text.contains("note: stack_copy = process_vm_readv"),
            "{text}"
        );
        release_tx.send(()).expect("release");
        parked.join().expect("parked");
    });
}

#[test]
fn a_non_dumpable_process_still_gets_stacks() {
    if std::env::var_os(CHILD_ENV).is_some() {
        child();
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: changing to uid {NOBODY} needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let exe = dir.path().join("threads_nondumpable");
    std::fs::copy(std::env::current_exe().expect("exe"), &exe).expect("copy");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let output = Command::new(&exe)
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .current_dir(dir.path())
        .uid(NOBODY)
        .gid(NOBODY)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}
