//! An attacker's view of the demos: more than 50 malformed, oversized, truncated and stalled
//! requests over raw TCP, against `axum-demo` and `tower-demo`. After each one the process is
//! alive and serves a valid request; no answer is a 5xx; no answer without the token holds a
//! report; at the end the admin endpoint still works with the token.
// The counts and timings measured are printed: they are part of what the test reports.
#![allow(clippy::print_stderr)]

use std::io::Write as _;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use gmr_integration_tests::{Demo, http, parse_response, send_and_read};

/// How a case is sent.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Sent whole; the answer is read until the server closes (or 2 s).
    Whole,
    /// Sent, then the client goes quiet for 300 ms and hangs up: a request cut short.
    Stall,
    /// Sent, then the write half is shut: the client stopped sending half-way.
    HalfClose,
    /// Sent one byte at a time, 10 ms apart, then the client hangs up (slowloris).
    Trickle,
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    mode: Mode,
}

fn case(name: &'static str, bytes: impl Into<Vec<u8>>, mode: Mode) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        mode,
    }
}

fn get(path_and_headers: &str) -> Vec<u8> {
    format!("GET {path_and_headers}\r\nConnection: close\r\n\r\n").into_bytes()
}

fn with_header(name: &[u8], value: &[u8]) -> Vec<u8> {
    let mut r = b"GET /admin/gmr HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".to_vec();
    r.extend_from_slice(name);
    r.extend_from_slice(b": ");
    r.extend_from_slice(value);
    r.extend_from_slice(b"\r\n\r\n");
    r
}

/// Deterministic junk bytes (a small LCG), so a failure can be replayed.
fn junk(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

fn cases() -> Vec<Case> {
    use Mode::{HalfClose, Stall, Trickle, Whole};
    let big = |n: usize| "a".repeat(n);
    vec![
        // Request lines.
        case("garbage line", "GARBAGE\r\n\r\n", Whole),
        case("method only", "GET\r\n\r\n", Whole),
        case("HTTP/0.9 request", "GET /\r\n", Whole),
        case("HTTP/0.9 admin", "GET /admin/gmr\r\n\r\n", Whole),
        case(
            "unknown version",
            "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
            Whole,
        ),
        case("version junk", "GET / HTTQ/1.1\r\nHost: x\r\n\r\n", Whole),
        case(
            "extra token",
            "GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
            Whole,
        ),
        case(
            "double spaces",
            "GET  /  HTTP/1.1\r\nHost: x\r\n\r\n",
            Whole,
        ),
        case(
            "lowercase method",
            "get /admin/gmr HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Whole,
        ),
        case(
            "NUL in method",
            b"G\0T / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Whole,
        ),
        case(
            "NUL in path",
            b"GET /\0 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Whole,
        ),
        case(
            "non-UTF-8 path",
            b"GET /\xff\xfe\xfd HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Whole,
        ),
        case(
            "absolute-form to admin",
            get("http://evil.example/admin/gmr HTTP/1.1\r\nHost: x"),
            Whole,
        ),
        case("asterisk-form", get("* HTTP/1.1\r\nHost: x"), Whole),
        case(
            "CONNECT",
            "CONNECT 127.0.0.1:1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Whole,
        ),
        case(
            "bare LF line ends",
            "GET /admin/gmr HTTP/1.1\nHost: x\nConnection: close\n\n",
            Whole,
        ),
        case(
            "leading empty lines",
            "\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Whole,
        ),
        case(
            "100 KiB URI",
            get(&format!("/{} HTTP/1.1\r\nHost: x", big(100 * 1024))),
            Whole,
        ),
        case(
            "10 KiB method",
            format!(
                "{} / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                "A".repeat(10 * 1024)
            ),
            Whole,
        ),
        // Percent-encoding and queries.
        case(
            "invalid percent-encoding",
            get("/%zz HTTP/1.1\r\nHost: x"),
            Whole,
        ),
        case(
            "invalid percent-encoding in admin path",
            get("/admin/gmr%ZZ HTTP/1.1\r\nHost: x"),
            Whole,
        ),
        case("encoded NUL", get("/%00 HTTP/1.1\r\nHost: x"), Whole),
        case(
            "encoded slash",
            get("/admin%2Fgmr HTTP/1.1\r\nHost: x"),
            Whole,
        ),
        case(
            "truncated escape",
            get("/admin/gmr?format=% HTTP/1.1\r\nHost: x"),
            Whole,
        ),
        case(
            "non-UTF-8 escapes in query",
            get("/admin/gmr?format=%ff%fe HTTP/1.1\r\nHost: x"),
            Whole,
        ),
        case("junk ms", get("/slow?ms=%zz HTTP/1.1\r\nHost: x"), Whole),
        case(
            "huge ms",
            get("/block?ms=99999999999999999999999 HTTP/1.1\r\nHost: x"),
            Whole,
        ),
        case("negative ms", get("/slow?ms=-1 HTTP/1.1\r\nHost: x"), Whole),
        case(
            "dot segments",
            get("/../../etc/passwd HTTP/1.1\r\nHost: x"),
            Whole,
        ),
        case(
            "query of 64 KiB",
            get(&format!(
                "/admin/gmr?{} HTTP/1.1\r\nHost: x",
                big(64 * 1024)
            )),
            Whole,
        ),
        // Headers.
        case(
            "header without colon",
            "GET / HTTP/1.1\r\nHost x\r\n\r\n",
            Whole,
        ),
        case(
            "space in header name",
            "GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
            Whole,
        ),
        case(
            "space before colon",
            "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            Whole,
        ),
        case(
            "non-UTF-8 header value",
            with_header(b"X-Junk", b"\xff\xfe\xfd"),
            Whole,
        ),
        case(
            "non-UTF-8 Authorization",
            with_header(b"Authorization", b"Bearer \xff\xfe\xfd\xfc"),
            Whole,
        ),
        case(
            "non-UTF-8 header name",
            with_header(b"X-\xff\xfe", b"y"),
            Whole,
        ),
        case(
            "NUL in header value",
            with_header(b"X-Junk", b"a\0b"),
            Whole,
        ),
        case(
            "obs-fold",
            "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
            Whole,
        ),
        case(
            "64 KiB header value",
            with_header(b"X-Big", big(64 * 1024).as_bytes()),
            Whole,
        ),
        case(
            "70 KiB header name",
            with_header(big(70 * 1024).as_bytes(), b"v"),
            Whole,
        ),
        case(
            "1 MiB Authorization",
            with_header(
                b"Authorization",
                format!("Bearer {}", big(1024 * 1024)).as_bytes(),
            ),
            Whole,
        ),
        case(
            "10 KiB bearer token",
            with_header(
                b"Authorization",
                format!("Bearer {}", big(10 * 1024)).as_bytes(),
            ),
            Whole,
        ),
        case(
            "1000 headers",
            {
                let mut r = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
                for i in 0..1000 {
                    r.push_str(&format!("X-H{i}: {i}\r\n"));
                }
                r.push_str("\r\n");
                r
            },
            Whole,
        ),
        case(
            "duplicate Host",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
            Whole,
        ),
        case(
            "duplicate Authorization",
            "GET /admin/gmr HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer aaaaaaaaaaaaaaaaaaaa\r\nAuthorization: Bearer bbbbbbbbbbbbbbbbbbbb\r\nConnection: close\r\n\r\n",
            Whole,
        ),
        case(
            "Authorization with extra spaces",
            with_header(b"Authorization", b"Bearer    aaaaaaaaaaaaaaaaaaaa   "),
            Whole,
        ),
        // Bodies and framing.
        case(
            "absurd Content-Length",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
            Whole,
        ),
        case(
            "negative Content-Length",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
            Whole,
        ),
        case(
            "non-numeric Content-Length",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            Whole,
        ),
        case(
            "two Content-Lengths",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            Whole,
        ),
        case(
            "Content-Length and chunked",
            "POST /admin/gmr HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/gmr HTTP/1.1\r\nHost: x\r\n\r\n",
            Whole,
        ),
        case(
            "unknown Transfer-Encoding",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: bogus\r\n\r\nxyz",
            Whole,
        ),
        case(
            "bad chunk size",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
            Whole,
        ),
        case(
            "huge chunk size",
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nabc\r\n",
            Whole,
        ),
        case(
            "GET with a body",
            "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            Whole,
        ),
        case(
            "Expect 100-continue, 1 GiB",
            "POST /admin/gmr HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1073741824\r\n\r\n",
            Stall,
        ),
        case(
            "websocket upgrade",
            "GET /admin/gmr HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
            Whole,
        ),
        case(
            "h2c upgrade",
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
            Whole,
        ),
        case(
            "HTTP/2 preface then nothing",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            Stall,
        ),
        case(
            "HTTP/2 preface then junk",
            [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), junk(512, 7)].concat(),
            Whole,
        ),
        case(
            "TLS ClientHello",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"
                .iter()
                .copied()
                .chain(junk(160, 3))
                .collect::<Vec<u8>>(),
            Whole,
        ),
        case("4 KiB of binary junk", junk(4096, 42), Whole),
        case(
            "pipelined valid then garbage",
            "GET / HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\n",
            Whole,
        ),
        // Truncated and stalled clients.
        case("request line cut short", "GET /admin/gmr HTT", Stall),
        case(
            "headers never end",
            "GET / HTTP/1.1\r\nHost: x\r\nX-A: b",
            Stall,
        ),
        case("one byte", "G", Stall),
        case("nothing at all", "", Stall),
        case(
            "body cut short",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
            Stall,
        ),
        case(
            "half-close in the headers",
            "GET /admin/gmr HTTP/1.1\r\nHost: x\r\nAuthoriz",
            HalfClose,
        ),
        case(
            "half-close in the body",
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab",
            HalfClose,
        ),
        case(
            "slowloris",
            "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: 0123456789",
            Trickle,
        ),
    ]
}

/// Sends one case; what came back (possibly nothing).
fn send(addr: SocketAddr, case: &Case) -> Vec<u8> {
    match case.mode {
        Mode::Whole => send_and_read(addr, &case.bytes, Duration::from_secs(2)),
        Mode::Stall => send_and_read(addr, &case.bytes, Duration::from_millis(300)),
        Mode::HalfClose => {
            let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
                return Vec::new();
            };
            let _ = stream.write_all(&case.bytes);
            let _ = stream.shutdown(Shutdown::Write);
            let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
            let mut out = Vec::new();
            let _ = std::io::Read::read_to_end(&mut stream, &mut out);
            out
        }
        Mode::Trickle => {
            let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
                return Vec::new();
            };
            for byte in &case.bytes {
                if stream.write_all(std::slice::from_ref(byte)).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Vec::new()
        }
    }
}

fn malformed_requests_leave_the_server_up(name: &str) {
    let mut demo = Demo::start(name, &[]);
    let token = demo.token().expect("generated token");
    let cases = cases();
    assert!(cases.len() >= 50, "{} cases", cases.len());
    let started = Instant::now();
    for case in &cases {
        let answer = send(demo.addr, case);
        if let Some(response) = parse_response(&answer) {
            assert!(
                response.status < 500,
                "{name}: {:?} got {}",
                case.name,
                response.head
            );
        }
        let text = String::from_utf8_lossy(&answer);
        assert!(
            !text.contains("Guru Meditation"),
            "{name}: {:?} got a report without the token",
            case.name
        );
        assert!(
            !text.contains(&token),
            "{name}: {:?} echoed the token",
            case.name
        );
        assert!(
            demo.alive(),
            "{name} died after {:?}:\n{}",
            case.name,
            demo.stderr()
        );
        let ok = http(demo.addr, "GET", "/", &[]);
        assert_eq!(ok.status, 200, "{name}: after {:?}", case.name);
    }
    eprintln!(
        "{name}: {} malformed requests in {:?}",
        cases.len(),
        started.elapsed()
    );
    let report = http(
        demo.addr,
        "GET",
        "/admin/gmr",
        &[&format!("Authorization: Bearer {token}")],
    );
    assert_eq!(report.status, 200);
    assert!(report.text().contains("Guru Meditation"));
    assert!(!demo.stderr().contains("panicked"), "{}", demo.stderr());
}

#[test]
fn axum_demo_survives_malformed_requests() {
    malformed_requests_leave_the_server_up("axum-demo");
}

#[test]
fn tower_demo_survives_malformed_requests() {
    malformed_requests_leave_the_server_up("tower-demo");
}

/// The admin endpoint answers its exact path only, byte for byte, on every adapter: a path
/// that decodes or normalizes to `/admin/gmr` is a 404 (a proxy rule that blocks
/// `/admin/gmr` by its exact text must not be walked around by encoding a letter).
#[test]
fn encoded_admin_paths_are_404_on_every_demo() {
    for name in ["axum-demo", "tower-demo", "actix-demo"] {
        let demo = Demo::start(name, &[]);
        let token = demo.token().expect("token in the banner");
        let auth = format!("Authorization: Bearer {token}");
        for path in [
            "/%61dmin/gmr",
            "/admin/gm%72",
            "/%61%64%6d%69%6e/%67%6d%72",
            "/admin%2Fgmr",
            "/admin/gmr/",
            "/admin//gmr",
            "/admin/./gmr",
            "/admin/x/../gmr",
        ] {
            let answer = http(demo.addr, "GET", path, &[&auth]);
            assert_eq!(answer.status, 404, "{name} {path}: {}", answer.text());
            assert!(
                !answer.text().contains("Guru Meditation"),
                "{name} {path} got the report"
            );
        }
        assert_eq!(
            http(demo.addr, "GET", "/admin/gmr", &[&auth]).status,
            200,
            "{name}: the exact path still works"
        );
    }
}
