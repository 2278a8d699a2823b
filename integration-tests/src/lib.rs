//! Helpers for whole-process tests of the demo binaries: start a demo on a free port, wait for
//! its `listening on` line and for files with deadlines, talk raw HTTP over loopback, send
//! signals, and kill what was started even when a test fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of a demo binary of `gmr-examples`, building it if `cargo test` has not.
///
/// # Panics
///
/// If the binary cannot be found or built: the test cannot run without it.
pub fn demo_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let binary = profile_dir.join(name);
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "-p", "gmr-examples", "--bin", name])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of {name} failed");
    }
    assert!(binary.exists(), "{} not found", binary.display());
    binary
}

/// A running demo: killed when dropped.
#[derive(Debug)]
pub struct Demo {
    child: Child,
    /// The address from the `listening on` line.
    pub addr: SocketAddr,
    /// The lines printed on stdout up to and including the banner.
    pub banner: Vec<String>,
    /// Where the demo's stderr goes.
    pub stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Demo {
    /// Starts `name` with `--listen 127.0.0.1:0` and `extra` arguments, and waits (up to
    /// 120 s, a cold debug build can be slow) for its `listening on` line.
    ///
    /// # Panics
    ///
    /// If the demo does not start or does not print the line in time.
    pub fn start(name: &str, extra: &[&str]) -> Demo {
        Demo::start_with_env(name, extra, &[])
    }

    /// [`Demo::start`] with environment variables.
    ///
    /// # Panics
    ///
    /// As [`Demo::start`].
    pub fn start_with_env(name: &str, extra: &[&str], env: &[(&str, &str)]) -> Demo {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr_path = dir.path().join("stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut command = Command::new(demo_binary(name));
        command
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start demo");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut banner = Vec::new();
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let parsed = line
                        .strip_prefix("listening on http://")
                        .and_then(|a| a.parse::<SocketAddr>().ok());
                    banner.push(line);
                    if let Some(addr) = parsed {
                        break addr;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let err = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                    panic!("{name} did not print `listening on` in time; stderr:\n{err}");
                }
            }
        };
        // The rest of the banner follows at once; collect what is there within a moment.
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
            banner.push(line);
        }
        Demo {
            child,
            addr,
            banner,
            stderr_path,
            _dir: dir,
        }
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits i32")
    }

    /// The admin token from the banner's curl line, if any.
    pub fn token(&self) -> Option<String> {
        self.banner.iter().find_map(|line| {
            let rest = line.split("Bearer ").nth(1)?;
            Some(rest.split('\'').next()?.to_owned())
        })
    }

    /// Sends `signal` to the demo.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// What the demo wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits until stderr contains `needle` `count` times.
    pub fn wait_stderr(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.stderr().matches(needle).count() >= count)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the process to exit; its exit code, or `None` on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw HTTP/1.1 response.
#[derive(Debug)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The header block.
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends `request` bytes as they are and reads the answer until the server closes (30 s
/// deadline).
///
/// # Errors
///
/// The I/O error of connecting, writing or reading.
pub fn raw_request(addr: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.write_all(request)?;
    let mut out = Vec::new();
    stream.read_to_end(&mut out)?;
    Ok(out)
}

/// `GET`-style request with `Connection: close` and the given extra header lines.
///
/// # Panics
///
/// If the server does not answer with a parsable HTTP response.
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> RawResponse {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let raw = raw_request(addr, request.as_bytes()).expect("HTTP exchange");
    parse_response(&raw)
        .unwrap_or_else(|| panic!("unparsable response: {:?}", String::from_utf8_lossy(&raw)))
}

/// Parses a raw HTTP/1.1 response (with `Content-Length` or chunked body).
pub fn parse_response(raw: &[u8]) -> Option<RawResponse> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body)?;
    }
    Some(RawResponse { status, head, body })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

impl RawResponse {
    /// The value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.head.lines().find_map(|line| {
            line.to_ascii_lowercase()
                .starts_with(&prefix)
                .then(|| line[prefix.len()..].trim().to_owned())
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}
