//! A tokio worker blocked inside a request's poll does not take the admin endpoint with it.
//!
//! tokio drives a multi-thread runtime's I/O from the worker parked on its driver; when that
//! worker wakes with one task that blocks (`/block`: a blocking call in async code), the
//! other worker may stay asleep with nobody accepting connections or reading sockets until
//! the call returns. gmr's runtime watcher sees the stuck worker and wakes the other one
//! (without it, this test failed in its first round in each of 3 runs: the admin endpoint
//! answered 80 to 100 ms after the block ended). Each round blocks one of axum-demo's two
//! workers and asks the admin endpoint for a report: the answer must come while the blocked
//! request is still blocked.

use std::time::{Duration, Instant};

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};

use gmr_integration_tests::{Demo, http};

/// How long each round's request blocks its worker: room for the signal reports that see it
/// in flight and for the watcher's second or two.
const BLOCK: Duration = Duration::from_secs(15);

/// Rounds: a round may place the blocking request on a worker that did not drive I/O, where
/// it leaves the rest of the runtime serving even without gmr's watcher.
const ROUNDS: usize = 2;

/// `GET /block` sent a moment after its connection is open, as a client across a network
/// sends it: the server has then polled the connection and waits for its bytes, so the
/// worker driving I/O is the one woken to run it (what leaves nobody driving I/O once it
/// blocks). The pause is part of the request, not a wait for the server. Whether the answer
/// was a 200, or the error of sending or reading.
fn late_request(addr: SocketAddr) -> std::io::Result<bool> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    std::thread::sleep(Duration::from_millis(300));
    let request = format!(
        "GET /block?ms={} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n",
        BLOCK.as_millis()
    );
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(answer.starts_with(b"HTTP/1.1 200"))
}

#[test]
fn the_admin_endpoint_answers_while_a_worker_is_blocked() {
    let demo = Demo::start("axum-demo", &["--workers", "2"]);
    let auth = format!(
        "Authorization: Bearer {}",
        demo.token().expect("the demo prints its generated token")
    );
    // A first report before any block: its one-time costs (the first parse of the debug
    // demo's debug information) are not paid inside a round.
    gmr_integration_tests::signal_report(&demo);
    for round in 1..=ROUNDS {
        let addr = demo.addr;
        let blocked = std::thread::spawn(move || (late_request(addr), Instant::now()));
        // The request is in flight once a report made by the signal (it does not need the
        // runtime) lists it.
        let in_flight = gmr_integration_tests::wait_until(Duration::from_secs(30), || {
            let (seen, reports) = (demo.stderr().len(), demo.stderr_count("gmr report written"));
            demo.signal(libc::SIGUSR2);
            demo.wait_stderr("gmr report written", reports + 1, Duration::from_secs(30))
                && demo
                    .stderr()
                    .get(seen..)
                    .is_some_and(|report| report.contains("/block"))
        });
        assert!(
            in_flight,
            "round {round}: /block never showed in flight:\n{}",
            demo.stderr()
        );
        let asked = Instant::now();
        let response = http(demo.addr, "GET", "/admin/gmr?format=json", &[&auth]);
        let answered = Instant::now();
        assert_eq!(response.status, 200, "round {round}: {}", response.text());
        let (blocked_answer, unblocked) = blocked.join().expect("the /block client");
        assert!(
            matches!(blocked_answer, Ok(true)),
            "round {round}: /block answered {blocked_answer:?}"
        );
        assert!(
            asked < unblocked,
            "round {round}: the admin endpoint was asked only after the block ended (the \
             signal reports took {:?}): nothing was tested",
            asked.duration_since(unblocked)
        );
        assert!(
            answered < unblocked,
            "round {round}: the admin endpoint answered only {:?} after the blocked request \
             ended: the runtime's I/O was not driven while its worker was blocked",
            answered.duration_since(unblocked)
        );
    }
}
