//! Reports under load: while four loopback clients keep the server busy (two on keep-alive
//! connections, two opening a connection per request), ten reports are taken, alternating the
//! admin endpoint and SIGUSR2. Not one request may fail.
// The counts and timings measured are printed: they are part of what the test reports.
#![allow(clippy::print_stderr)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gmr_integration_tests::{Demo, check_full_report, http, write_file};

const TOKEN: &str = "integration-test-token-0123456789";
const REPORTS: usize = 10;
/// Each client stops after this many requests, or when the reports are done, or after
/// `CLIENT_DEADLINE`, whichever comes first.
const MAX_REQUESTS_PER_CLIENT: usize = 20_000;
const CLIENT_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
    first_failure: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn record(&self, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self
                    .first_failure
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                first.get_or_insert(error);
            }
        }
    }
}

/// One `GET /` on an open keep-alive connection: status 200 and the whole body read.
fn keep_alive_get(reader: &mut BufReader<TcpStream>) -> Result<(), String> {
    reader
        .get_mut()
        .write_all(b"GET / HTTP/1.1\r\nHost: load\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut status = String::new();
    reader
        .read_line(&mut status)
        .map_err(|e| format!("read status: {e}"))?;
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("status line {status:?}"));
    }
    let mut length = None;
    loop {
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("read header: {e}"))?;
        if line == "\r\n" {
            break;
        }
        if line.is_empty() {
            return Err("connection closed in the headers".to_owned());
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let length = length.ok_or("no Content-Length")?;
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("read body: {e}"))?;
    if !body.starts_with(b"hello") {
        return Err(format!("body {:?}", String::from_utf8_lossy(&body)));
    }
    Ok(())
}

fn connect(addr: SocketAddr) -> Result<BufReader<TcpStream>, String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    Ok(BufReader::new(stream))
}

fn keep_alive_client(addr: SocketAddr, done: &AtomicBool, tally: &Tally) {
    let started = Instant::now();
    let mut connection = connect(addr);
    for _ in 0..MAX_REQUESTS_PER_CLIENT {
        if done.load(Ordering::Relaxed) || started.elapsed() > CLIENT_DEADLINE {
            break;
        }
        let outcome = match &mut connection {
            Ok(reader) => keep_alive_get(reader),
            Err(error) => Err(error.clone()),
        };
        if outcome.is_err() {
            // A failed exchange is counted; go on with a fresh connection.
            connection = connect(addr);
        }
        tally.record(outcome);
    }
}

fn fresh_connection_client(addr: SocketAddr, done: &AtomicBool, tally: &Tally) {
    let started = Instant::now();
    for _ in 0..MAX_REQUESTS_PER_CLIENT {
        if done.load(Ordering::Relaxed) || started.elapsed() > CLIENT_DEADLINE {
            break;
        }
        let outcome = gmr_integration_tests::raw_request(
            addr,
            b"GET / HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n",
        )
        .map_err(|e| format!("exchange: {e}"))
        .and_then(|raw| {
            let response = gmr_integration_tests::parse_response(&raw)
                .ok_or_else(|| format!("unparsable {:?}", String::from_utf8_lossy(&raw)))?;
            if response.status == 200 && response.text().starts_with("hello") {
                Ok(())
            } else {
                Err(format!("answer {}", response.head))
            }
        });
        tally.record(outcome);
    }
}

fn reports_under_load(name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_file(
        dir.path(),
        "demo.toml",
        &format!("[gmr.admin]\ntoken = {TOKEN:?}\nmin_interval = \"1us\"\n"),
    );
    // gmr's debug events count the reports actually made (one thread capture each).
    let demo = Demo::start_with_env(
        name,
        &["--config", config.to_str().expect("utf-8 path")],
        &[("RUST_LOG", "info,gmr=debug")],
    );
    let addr = demo.addr;
    let done = AtomicBool::new(false);
    let tally = Tally::default();
    let started = Instant::now();
    let mut http_reports = Vec::new();
    std::thread::scope(|scope| {
        let clients = [
            scope.spawn(|| keep_alive_client(addr, &done, &tally)),
            scope.spawn(|| keep_alive_client(addr, &done, &tally)),
            scope.spawn(|| fresh_connection_client(addr, &done, &tally)),
            scope.spawn(|| fresh_connection_client(addr, &done, &tally)),
        ];
        // Stop the clients whatever happens below (a failed assertion included).
        struct StopOnDrop<'a>(&'a AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&done);
        // The load is running before the first report.
        assert!(
            gmr_integration_tests::wait_until(Duration::from_secs(30), || {
                tally.ok.load(Ordering::Relaxed) >= 20
            }),
            "the load did not start"
        );
        let mut signals = 0;
        for n in 0..REPORTS {
            if n % 2 == 0 {
                let response = http(
                    addr,
                    "GET",
                    "/admin/gmr?format=json",
                    &[&format!("Authorization: Bearer {TOKEN}")],
                );
                assert_eq!(response.status, 200, "report {n}: {}", response.head);
                let doc: serde_json::Value =
                    serde_json::from_slice(&response.body).expect("json report");
                assert!(doc["sections"].is_array(), "report {n}: {doc}");
                http_reports.push(doc["trigger"].as_str().unwrap_or("?").to_owned());
            } else {
                signals += 1;
                demo.signal(libc::SIGUSR2);
                assert!(
                    demo.wait_stderr("gmr report written", signals, Duration::from_secs(60)),
                    "signal report {signals}:\n{}",
                    demo.stderr()
                );
            }
        }
        done.store(true, Ordering::Relaxed);
        for client in clients {
            client.join().expect("client thread");
        }
    });
    let ok = tally.ok.load(Ordering::Relaxed);
    let failed = tally.failed.load(Ordering::Relaxed);
    eprintln!(
        "{name}: {REPORTS} reports under load in {:?}; {ok} requests served, {failed} failed",
        started.elapsed()
    );
    assert_eq!(
        failed,
        0,
        "{name}: first failure: {:?}",
        tally.first_failure.lock().expect("tally")
    );
    assert!(
        ok >= 100,
        "{name}: only {ok} requests: the load was not there"
    );
    assert_eq!(demo.stderr_count("gmr report written"), REPORTS / 2);
    check_full_report(&demo.stderr()).unwrap_or_else(|e| panic!("{e}"));
    // An admin request that arrives while the signal's report is being finished joins it
    // (concurrent triggers share a report, `docs/security.md`), so its answer may say `signal`.
    assert_eq!(http_reports.len(), REPORTS / 2);
    assert!(
        http_reports.iter().all(|t| t == "http" || t == "signal"),
        "{http_reports:?}"
    );
    let made = demo.stderr_count("captured thread stacks");
    eprintln!("{name}: {made} reports made; admin answers' triggers {http_reports:?}");
    assert!(
        (REPORTS / 2 + 1..=REPORTS).contains(&made),
        "{made} reports made"
    );
}

#[test]
fn axum_demo_serves_every_request_while_ten_reports_are_taken() {
    reports_under_load("axum-demo");
}

#[test]
fn tower_demo_serves_every_request_while_ten_reports_are_taken() {
    reports_under_load("tower-demo");
}
