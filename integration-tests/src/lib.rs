//! Helpers for whole-process tests of the demo binaries: start a demo on a free port, wait for
//! its `listening on` line and for files with deadlines, talk raw HTTP over loopback, send
//! signals, and kill what was started even when a test fails.
#![forbid(unsafe_code)]

pub mod chromium;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The path of a demo binary of `gmr-examples`, brought up to date with `cargo build` once per
/// test process (a no-op taking a fraction of a second when nothing changed), so a test never
/// runs a binary older than the code under test. Set `GMR_IT_NO_BUILD=1` to use the binaries
/// next to the test binary as they are.
///
/// # Panics
///
/// If the binary cannot be found or built: the test cannot run without it.
pub fn demo_binary(name: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let binary = profile_dir.join(name);
    let skip_build = std::env::var_os("GMR_IT_NO_BUILD").is_some_and(|v| v != "0");
    // One build at a time, and one per binary per process.
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !built.iter().any(|b| b == name) && (!skip_build || !binary.exists()) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut command = Command::new(cargo);
        command.args(["build", "-p", "gmr-examples", "--bin", name]);
        if cfg!(feature = "tokio-taskdump") {
            command.args(["--features", "gmr-examples/tokio-taskdump"]);
        }
        // Into the target directory this test binary lives in, however it was chosen.
        if let Some(target_dir) = profile_dir.parent() {
            command.arg("--target-dir").arg(target_dir);
        }
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            command.arg("--release");
        }
        let status = command.status().expect("run cargo build");
        assert!(status.success(), "cargo build of {name} failed");
        built.push(name.to_owned());
    }
    drop(built);
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
    /// The stdout lines printed after the banner, fed by the reader thread (kept open so the
    /// demo can go on printing: dropping it would close the pipe under the demo).
    stdout: std::sync::Mutex<StdoutLines>,
    _dir: tempfile::TempDir,
}

/// Stdout lines received after the banner, and the channel they arrive on.
#[derive(Debug)]
struct StdoutLines {
    rx: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
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
        Demo::start_binary(&demo_binary(name), extra, env)
    }

    /// [`Demo::start_with_env`] of the demo binary at `binary` (a copy of one, stripped or
    /// moved), which is not brought up to date.
    ///
    /// # Panics
    ///
    /// As [`Demo::start`].
    pub fn start_binary(binary: &Path, extra: &[&str], env: &[(&str, &str)]) -> Demo {
        let dir = tempfile::tempdir().expect("tempdir");
        let stderr_path = dir.path().join("stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        Demo::launch(binary.to_owned(), extra, env, stderr, stderr_path, dir)
    }

    /// [`Demo::start_with_env`] with the demo's stderr going to `stderr` (a pipe, a FIFO);
    /// [`Demo::stderr`] then reads `stderr_path`, where the test puts what it reads from it.
    ///
    /// # Panics
    ///
    /// As [`Demo::start`].
    pub fn start_with_stderr(
        name: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        stderr: std::fs::File,
        stderr_path: &Path,
    ) -> Demo {
        let dir = tempfile::tempdir().expect("tempdir");
        Demo::launch(
            demo_binary(name),
            extra,
            env,
            stderr,
            stderr_path.to_owned(),
            dir,
        )
    }

    fn launch(
        binary: PathBuf,
        extra: &[&str],
        env: &[(&str, &str)],
        stderr: std::fs::File,
        stderr_path: PathBuf,
        dir: tempfile::TempDir,
    ) -> Demo {
        let name = binary.file_name().map_or_else(
            || binary.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut command = Command::new(&binary);
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
            stdout: std::sync::Mutex::new(StdoutLines {
                rx,
                seen: Vec::new(),
            }),
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

    /// Sends `signal` (a number) to the demo, with kill(1) as an operator would.
    pub fn signal(&self, signal: i32) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// What the demo wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits until stderr contains `needle` `count` times.
    pub fn wait_stderr(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.stderr().matches(needle).count() >= count)
    }

    /// The stdout lines printed after the banner so far.
    pub fn stdout_lines(&self) -> Vec<String> {
        let mut lines = self
            .stdout
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Ok(line) = lines.rx.try_recv() {
            lines.seen.push(line);
        }
        lines.seen.clone()
    }

    /// Waits until `count` stdout lines printed after the banner contain `needle`.
    pub fn wait_stdout(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        wait_until(timeout, || {
            self.stdout_lines()
                .iter()
                .filter(|line| line.contains(needle))
                .count()
                >= count
        })
    }

    /// How many times `needle` occurs in stderr so far.
    pub fn stderr_count(&self, needle: &str) -> usize {
        self.stderr().matches(needle).count()
    }

    /// The trigger file from the banner's `report: touch <path>` line, if any.
    pub fn trigger_file(&self) -> Option<PathBuf> {
        self.banner
            .iter()
            .find_map(|line| line.strip_prefix("report: touch ").map(PathBuf::from))
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

/// The bytes of a request without a body, with `Connection: close` and the extra `headers`
/// lines.
fn request_text(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> String {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request
}

/// `GET`-style request with `Connection: close` and the given extra header lines.
///
/// # Panics
///
/// If the server does not answer with a parsable HTTP response.
pub fn http(addr: SocketAddr, method: &str, path: &str, headers: &[&str]) -> RawResponse {
    let request = request_text(addr, method, path, headers);
    let raw = raw_request(addr, request.as_bytes()).expect("HTTP exchange");
    parse_response(&raw)
        .unwrap_or_else(|| panic!("unparsable response: {:?}", String::from_utf8_lossy(&raw)))
}

/// [`http`] to a demo with a worker blocked on purpose (`/block`), where a connection can land
/// on the blocked worker: actix hands each new connection to its next worker in turn, and one
/// handed to a blocked worker waits until it returns (then often gets a `408`). A request
/// with no complete answer within `patience` is sent again on a new connection, which goes to
/// another worker, up to four times.
///
/// # Panics
///
/// If no try got a complete answer other than `408`.
pub fn http_past_a_blocked_worker(
    addr: SocketAddr,
    path: &str,
    headers: &[&str],
    patience: Duration,
) -> RawResponse {
    let request = request_text(addr, "GET", path, headers);
    let mut outcomes = Vec::new();
    for _ in 0..4 {
        let answer = (|| {
            let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
            stream.set_read_timeout(Some(patience))?;
            stream.write_all(request.as_bytes())?;
            let mut out = Vec::new();
            stream.read_to_end(&mut out)?;
            Ok::<_, std::io::Error>(out)
        })();
        match answer.as_deref().map(parse_response) {
            Ok(Some(response)) if response.status != 408 => return response,
            Ok(Some(response)) => outcomes.push(format!("status {}", response.status)),
            Ok(None) => outcomes.push("an unparsable answer".to_owned()),
            Err(error) => outcomes.push(error.to_string()),
        }
    }
    panic!("GET {path}: no answer in four tries: {outcomes:?}");
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

/// The five built-in section titles, in report order (`docs/report-format.md`).
pub const SECTIONS: [&str; 5] = gmr::report::titles::BUILT_IN;

/// The middle line of a section header: `====` + `title` centred in 64 + `====`.
pub fn section_header(title: &str) -> String {
    format!("===={title:^64}====")
}

/// The body of section `title` in a text report: from its header to the next section header
/// (or the end). `None` if the section is missing.
pub fn section<'a>(report: &'a str, title: &str) -> Option<&'a str> {
    let header = section_header(title);
    let start = report.find(&header)? + header.len();
    let rest = &report[start..];
    // Skip the closing `=` line of this header, then stop at the next header's first line.
    let body_start = rest.find('\n').map_or(rest.len(), |i| i + 1);
    let body_start = body_start + rest[body_start..].find('\n').map_or(0, |i| i + 1);
    let body = &rest[body_start..];
    let end = body.find(&"=".repeat(72)).unwrap_or(body.len());
    Some(&body[..end])
}

/// Checks that `report` holds the `Guru Meditation` header and the five section headers in
/// order, and that `Threads` shows the demo's parked workers; the problem found, if any.
///
/// # Errors
///
/// A description of the first thing missing.
pub fn check_full_report(report: &str) -> Result<(), String> {
    let mut from = report
        .find(&section_header("Guru Meditation"))
        .ok_or("no `Guru Meditation` header")?;
    for title in SECTIONS {
        let header = section_header(title);
        let at = report[from..]
            .find(&header)
            .ok_or_else(|| format!("section {title} missing or out of order"))?;
        from += at + header.len();
    }
    let threads = section(report, gmr::report::titles::THREADS).ok_or("no Threads section")?;
    if !threads.contains("demo_parked_worker") {
        return Err("no demo_parked_worker frame in Threads".to_owned());
    }
    Ok(())
}

/// Sends SIGUSR2 to `demo`, waits for its report on stderr, and checks it the way every demo's
/// test does: complete ([`check_full_report`]), made by the signal, for this pid, and without
/// the demo's built-in database password. Returns stderr.
///
/// # Panics
///
/// If no report comes within two minutes or the report fails a check.
pub fn signal_report(demo: &Demo) -> String {
    demo.signal(libc::SIGUSR2);
    assert!(
        demo.wait_stderr("gmr report written", 1, Duration::from_secs(120)),
        "no report on stderr:\n{}",
        demo.stderr()
    );
    let stderr = demo.stderr();
    check_full_report(&stderr).unwrap_or_else(|e| panic!("{e}:\n{stderr}"));
    let package = section(&stderr, gmr::report::titles::PACKAGE).expect("Package");
    assert!(package.contains("trigger = signal"), "{package}");
    assert!(
        package.contains(&format!("pid = {}", demo.pid())),
        "{package}"
    );
    assert!(!stderr.contains("demo-db-password"), "config secret leaked");
    stderr
}

/// Checks a demo's admin endpoint over raw HTTP with the token from its banner: text and JSON
/// (by query and by `Accept`) with the security headers and the token absent from the report;
/// 401 with a `Bearer` challenge without the token or with a wrong one; 405 with `Allow` for
/// POST; 404 for paths around it. Returns the JSON report.
///
/// # Panics
///
/// If any answer differs.
pub fn check_admin_endpoint(demo: &Demo, service: &str) -> serde_json::Value {
    let token = demo.token().expect("generated token in the banner");
    let auth = format!("Authorization: Bearer {token}");
    let ok = http(demo.addr, "GET", "/admin/gmr", &[&auth]);
    assert_eq!(ok.status, 200);
    assert!(ok.text().contains("Guru Meditation"));
    assert!(
        !ok.text().contains(&token),
        "the token never appears in a report"
    );
    assert_eq!(ok.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        ok.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(
        ok.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );

    let json = http(demo.addr, "GET", "/admin/gmr?format=json", &[&auth]);
    assert_eq!(json.status, 200);
    assert_eq!(
        json.header("content-type").as_deref(),
        Some("application/json")
    );
    let doc: serde_json::Value = serde_json::from_slice(&json.body).expect("json report");
    assert_eq!(doc["trigger"], "http");
    assert_eq!(doc["service"], service);
    let by_accept = http(
        demo.addr,
        "GET",
        "/admin/gmr",
        &[&auth, "Accept: application/json"],
    );
    assert_eq!(by_accept.status, 200);
    serde_json::from_slice::<serde_json::Value>(&by_accept.body).expect("json by Accept");

    for headers in [&[][..], &["Authorization: Bearer wrong"][..]] {
        let denied = http(demo.addr, "GET", "/admin/gmr", headers);
        assert_eq!(denied.status, 401, "{headers:?}");
        assert!(
            denied
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{headers:?}"
        );
        assert!(!denied.text().contains("Guru Meditation"));
    }
    let post = http(
        demo.addr,
        "POST",
        "/admin/gmr",
        &[&auth, "Content-Length: 0"],
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow").as_deref(), Some("GET, HEAD"));
    assert_eq!(http(demo.addr, "GET", "/nope", &[&auth]).status, 404);
    assert_eq!(http(demo.addr, "GET", "/admin/gmr/x", &[&auth]).status, 404);
    doc
}

/// Writes `contents` to `dir/name` and returns the path (a `--config FILE` for a demo).
///
/// # Panics
///
/// If the file cannot be written.
pub fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write file");
    path
}

/// Changes a trigger file so that its size and mtime change: appends one byte (creating the
/// file if it is missing).
///
/// # Panics
///
/// If the file cannot be written.
pub fn touch(path: &Path) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open trigger file");
    file.write_all(b"x").expect("append to trigger file");
}

/// The report files in `dir` (final names only: `*_gurumeditation_*.txt|json|html`, not the
/// `.name.tmp` temporaries), sorted by name.
pub fn report_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| {
                    path.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| ReportName::parse(n).is_some())
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Waits until `dir` holds at least `count` report files; the files then, or `None` on timeout.
pub fn wait_report_files(dir: &Path, count: usize, timeout: Duration) -> Option<Vec<PathBuf>> {
    let mut files = Vec::new();
    wait_until(timeout, || {
        files = report_files(dir);
        files.len() >= count
    })
    .then_some(files)
}

/// A report file name (`docs/report-format.md`, "Report files"), taken apart:
/// `{service}_gurumeditation_{YYYYMMDDTHHMMSS}_{host}_{pid}_{seq}.{txt|json|html}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportName {
    /// The service name.
    pub service: String,
    /// The UTC time as written, `YYYYMMDDTHHMMSS`.
    pub timestamp: String,
    /// The same time in seconds since the Unix epoch.
    pub unix_seconds: i64,
    /// The host name (sanitised).
    pub host: String,
    /// The process id.
    pub pid: u32,
    /// The per-process sequence number.
    pub seq: u64,
    /// `txt`, `json` or `html`.
    pub extension: String,
}

impl ReportName {
    /// Parses a file name; `None` unless every part is well formed.
    pub fn parse(name: &str) -> Option<ReportName> {
        let (stem, extension) = name.rsplit_once('.')?;
        if !matches!(extension, "txt" | "json" | "html") {
            return None;
        }
        let (service, rest) = stem.split_once("_gurumeditation_")?;
        if service.is_empty() || service.starts_with('.') || !service.chars().all(name_char) {
            return None;
        }
        let (rest, seq) = rest.rsplit_once('_')?;
        let (rest, pid) = rest.rsplit_once('_')?;
        let (timestamp, host) = rest.split_once('_')?;
        if host.is_empty() || !host.chars().all(name_char) {
            return None;
        }
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(seq) || !digits(pid) {
            return None;
        }
        let unix_seconds = parse_compact_utc(timestamp)?;
        Some(ReportName {
            service: service.to_owned(),
            timestamp: timestamp.to_owned(),
            unix_seconds,
            host: host.to_owned(),
            pid: pid.parse().ok()?,
            seq: seq.parse().ok()?,
            extension: extension.to_owned(),
        })
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// `YYYYMMDDTHHMMSS` (UTC) to seconds since the Unix epoch, checking every field's range.
fn parse_compact_utc(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 15 || bytes[8] != b'T' {
        return None;
    }
    if !bytes[..8].iter().chain(&bytes[9..]).all(u8::is_ascii_digit) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text[range].parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, minute, second) = (num(9..11)?, num(11..13)?, num(13..15)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let month_len = *month_days.get(usize::try_from(month - 1).ok()?)?;
    if !(1..=month_len).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// This machine's host name as gmr puts it in file names (the kernel's host name, characters
/// outside `A-Z a-z 0-9 - _ .` replaced by `-`).
pub fn sanitized_hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("read the host name");
    name.trim_end_matches('\n')
        .chars()
        .map(|c| if name_char(c) { c } else { '-' })
        .collect()
}

/// Sends `request` as it is and reads whatever comes back within `timeout` (the server may
/// answer, close, or reset): the bytes read, possibly none. Never panics on I/O errors. A
/// read interrupted by a signal (gmr's capture signal, when the calling process reports on
/// itself) goes on reading: a socket with a timeout is not restarted by `SA_RESTART`.
pub fn send_and_read(addr: SocketAddr, request: &[u8], timeout: Duration) -> Vec<u8> {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(10)) else {
        return Vec::new();
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let _ = stream.write_all(request);
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 8192];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    out
}

/// Every in-flight request of a JSON report, from all request sources
/// (`green_threads.requests[].requests[]`).
pub fn in_flight_requests(report: &serde_json::Value) -> Vec<&serde_json::Value> {
    report["green_threads"]["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|block| block["requests"].as_array())
        .flatten()
        .collect()
}

/// The in-flight requests of one request source (`axum`, `actix`, `tower`) of a JSON report.
pub fn in_flight_requests_of<'a>(
    report: &'a serde_json::Value,
    source: &str,
) -> Vec<&'a serde_json::Value> {
    report["green_threads"]["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|block| block["source"] == source)
        .filter_map(|block| block["requests"].as_array())
        .flatten()
        .collect()
}
