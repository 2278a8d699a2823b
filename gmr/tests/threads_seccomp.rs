//! A thread with a seccomp filter of its own (one the reporting thread does not have) is not
//! signalled: its filter may forbid the system calls of the capture handler, and a forbidden
//! call kills the process. It is listed with the reason, and the process and the thread
//! survive the report.
//!
//! The filter here kills the process on `pread64` and `process_vm_readv`, the calls a stack
//! copy uses: signalling that thread would end this test binary.
#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#![allow(unsafe_code)]

mod threads_support;

use std::sync::mpsc;
use std::time::Duration;

use threads_support::{engine, gettid, thread, threads_report, with_deadline};

const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;

/// Installs, on the calling thread only, a filter that kills the process on `pread64` or
/// `process_vm_readv` and allows everything else.
fn forbid_stack_copy_calls() {
    let stmt = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jeq = |k: u32, jt: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf: 0,
        k,
    };
    let mut filter = [
        // A = seccomp_data.nr
        stmt((libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16, 0),
        jeq(libc::SYS_pread64 as u32, 2),
        jeq(libc::SYS_process_vm_readv as u32, 1),
        stmt((libc::BPF_RET | libc::BPF_K) as u16, SECCOMP_RET_ALLOW),
        stmt(
            (libc::BPF_RET | libc::BPF_K) as u16,
            SECCOMP_RET_KILL_PROCESS,
        ),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: prctl with integer arguments; then a valid, live BPF program for this thread.
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog
            ),
            0,
            "seccomp filter: {}",
            std::io::Error::last_os_error()
        );
    }
}

#[test]
fn a_thread_with_its_own_seccomp_filter_is_listed_not_signalled() {
    with_deadline(Duration::from_secs(60), || {
        let (tx, rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let filtered = std::thread::Builder::new()
            .name("own-seccomp".into())
            .spawn(move || {
                forbid_stack_copy_calls();
                tx.send(gettid()).expect("tid");
                let _ = release_rx.recv();
                "survived"
            })
            .expect("spawn");
        let tid = rx.recv().expect("tid");
        let gmr = engine();
        let mut others_answered = 0;
        for _ in 0..3 {
            let (json, text) = threads_report(&gmr);
            let entry = thread(&json, tid).unwrap_or_else(|| panic!("#{tid} missing: {text}"));
            assert!(entry["stack"].is_null(), "{entry}");
            let why = entry["stack_missing"].as_str().unwrap_or_default();
            assert!(why.contains("seccomp"), "{entry}");
            // The other threads are still signalled (the reporter's own stack is one).
            others_answered += usize::from(json["stacks_captured"].as_u64().unwrap_or(0) >= 2);
        }
        assert!(others_answered >= 1, "no other thread answered");
        release_tx.send(()).expect("release");
        assert_eq!(filtered.join().expect("thread"), "survived");
    });
}
