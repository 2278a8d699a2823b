//! A stderr nobody reads cannot freeze the server (`docs/security.md`, "Nothing gmr writes
//! can block the server"). `axum-demo`'s stderr is a FIFO whose reader never reads, as with
//! a hung log shipper: the start-up lines and the first report fill the pipe, then every
//! report and every log line of gmr's threads would block whoever writes them.
//!
//! Reports keep coming (signals, and the admin endpoint with a report or a 503 within its
//! bound), `/` keeps answering, and once stderr drains the reports that could not wait are
//! accounted for in one line. (The test fills the pipe itself once the demo has started, so
//! the first report already finds it full, whatever its size.)

use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gmr_integration_tests::{Demo, parse_response, send_and_read, wait_until, write_file};

const TOKEN: &str = "stderr-blocked-token-0123456789";

/// `GET path` with `Connection: close`, waiting at most `timeout` for the whole answer; the
/// status and how long it took (`None` for no answer).
fn get_within(demo: &Demo, path: &str, auth: bool, timeout: Duration) -> (Option<u16>, Duration) {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if auth {
        request.push_str(&format!("Authorization: Bearer {TOKEN}\r\n"));
    }
    request.push_str("\r\n");
    let started = Instant::now();
    let raw = send_and_read(demo.addr, request.as_bytes(), timeout);
    (parse_response(&raw).map(|r| r.status), started.elapsed())
}

/// Writes to the FIFO at `path` until it takes no more.
fn fill(path: &std::path::Path) {
    let mut filler = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .expect("open the FIFO to fill it");
    for size in [4096, 1] {
        let line = vec![b'.'; size];
        loop {
            match std::io::Write::write(&mut filler, &line) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling the FIFO: {e}"),
            }
        }
    }
}

#[test]
fn a_stderr_nobody_reads_cannot_freeze_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("stderr.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(status.success());
    // The read end stays open and unread (until the drain below): writes fill the pipe and
    // then block, and never fail.
    let mut reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the read end");
    let writer = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo)
        .expect("open the write end");
    let drained = dir.path().join("drained");
    let config = write_file(
        dir.path(),
        "demo.toml",
        &format!(
            "[gmr]\nmin_interval = \"1ms\"\n[gmr.admin]\ntoken = \"{TOKEN}\"\nmin_interval = \"1ms\"\n"
        ),
    );
    let demo = Demo::start_with_stderr(
        "axum-demo",
        &["--config", config.to_str().expect("utf-8 path")],
        &[],
        writer,
        &drained,
    );
    // Nobody reads, and the pipe is full: whatever writes to stderr from now on would block.
    fill(&fifo);

    // Each round: a signal (its report goes to stderr), an admin request (its report comes
    // back over HTTP, and is made after the signal's), and `/`. The first report finds the
    // pipe full, the next ones wait in gmr's queue, and the rest are dropped.
    let bound = gmr_tower::REPORT_TIMEOUT + Duration::from_secs(5);
    for round in 0..6 {
        demo.signal(libc::SIGUSR2);
        let (admin, took) = get_within(&demo, "/admin/gmr", true, bound);
        assert!(
            matches!(admin, Some(200 | 503)),
            "round {round}: the admin endpoint answered {admin:?} after {took:?}"
        );
        assert!(
            took <= bound,
            "round {round}: the admin answer took {took:?}"
        );
        let (root, took) = get_within(&demo, "/", false, Duration::from_secs(10));
        assert_eq!(root, Some(200), "round {round}: `/` after {took:?}");
    }

    // Someone reads stderr again.
    let stop = Arc::new(AtomicBool::new(false));
    let drain = {
        let stop = Arc::clone(&stop);
        let drained = drained.clone();
        std::thread::spawn(move || {
            let mut out = std::fs::File::create(&drained).expect("drained file");
            let mut buf = vec![0u8; 64 * 1024];
            while !stop.load(Ordering::Relaxed) {
                match reader.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => std::io::Write::write_all(&mut out, &buf[..n]).expect("keep"),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("reading the FIFO: {e}"),
                }
            }
        })
    };
    let dropped_line = "report(s) could not be written and were dropped";
    assert!(
        demo.wait_stderr(dropped_line, 1, Duration::from_secs(60)),
        "no line about the dropped reports once stderr drained:\n{}",
        demo.stderr()
    );
    let stderr = demo.stderr();
    assert_eq!(stderr.matches(dropped_line).count(), 1, "said once");
    assert!(
        stderr.contains("Guru Meditation"),
        "the first report came out"
    );
    assert!(
        wait_until(Duration::from_secs(30), || demo
            .stderr()
            .contains("gmr report queued")),
        "the log says which reports waited"
    );
    stop.store(true, Ordering::Relaxed);
    drop(demo);
    drain.join().expect("drain thread");
}
