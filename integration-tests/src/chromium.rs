//! A headless Chromium driven over the DevTools protocol, for the tests of the HTML report:
//! open a page, wait for it with a deadline, evaluate in it, collect its console errors and
//! take a screenshot.
//!
//! Chromium is Debian's `chromium` package (`apt-get install -y chromium`; `.ci/run` installs
//! it), or the binary named by `GMR_CHROMIUM`. It runs with a profile of its own in a
//! temporary directory, `--remote-debugging-port=0` (it picks a free port and writes it to
//! `DevToolsActivePort` in the profile), and `--no-sandbox` (CI runs as root, where Chromium's
//! sandbox refuses to start). Every wait has a deadline; nothing sleeps a fixed time.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long Chromium gets to start, and a page to load or a condition to hold.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The Chromium binary: `GMR_CHROMIUM`, else `chromium`, `chromium-browser` or
/// `google-chrome` on `PATH`.
///
/// # Errors
///
/// What to install, when none is found.
pub fn find() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("GMR_CHROMIUM") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("GMR_CHROMIUM={} is not a file", path.display()))
        };
    }
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&dirs) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(
        "the HTML report tests need a headless Chromium and none is installed: \
         `apt-get install -y chromium` (Debian, what .ci/run does), \
         or set GMR_CHROMIUM=/path/to/chromium"
            .to_owned(),
    )
}

/// A running headless Chromium with one page: killed when dropped.
#[derive(Debug)]
pub struct Chromium {
    child: Child,
    socket: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Protocol events received so far (console messages, exceptions, dialogs, responses).
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts Chromium and opens one blank page, `width`×`height` CSS pixels.
    ///
    /// # Panics
    ///
    /// If Chromium is not installed ([`find`] says what to install), does not start, or does
    /// not answer within [`DEADLINE`].
    pub fn start(width: u32, height: u32) -> Chromium {
        let binary = find().unwrap_or_else(|why| panic!("{why}"));
        let profile = tempfile::tempdir().expect("profile directory");
        let stderr = std::fs::File::create(profile.path().join("stderr")).expect("stderr file");
        let child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-sync",
                "--disable-component-update",
                "--mute-audio",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut chromium = Chromium {
            child,
            socket: connect(profile.path()),
            session: String::new(),
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        };
        let target = chromium.browser_call("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_owned();
        let attached = chromium.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        chromium.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            chromium.call(domain, json!({}));
        }
        chromium.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        chromium
    }

    /// Sends `Authorization: Bearer <token>` with every request of the page.
    pub fn set_bearer_token(&mut self, token: &str) {
        self.call(
            "Network.setExtraHTTPHeaders",
            json!({"headers": {"Authorization": format!("Bearer {token}")}}),
        );
    }

    /// Opens `url` and waits until the page has loaded (`document.readyState` is
    /// `complete`).
    ///
    /// # Panics
    ///
    /// If it does not load within [`DEADLINE`].
    pub fn open(&mut self, url: &str) {
        let answer = self.call("Page.navigate", json!({"url": url}));
        assert!(
            answer.get("errorText").is_none(),
            "cannot open {url}: {answer}"
        );
        let loaded = self.wait_for(
            &format!(
                "location.href === {} && document.readyState === 'complete'",
                json!(url)
            ),
            DEADLINE,
        );
        assert!(loaded, "{url} did not load in {DEADLINE:?}");
    }

    /// The value of JavaScript `expression` in the page (awaited if it is a promise).
    ///
    /// # Panics
    ///
    /// If the expression throws.
    pub fn eval(&mut self, expression: &str) -> Value {
        let answer = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(exception) = answer.get("exceptionDetails") {
            panic!("`{expression}` threw: {exception}");
        }
        answer["result"]["value"].clone()
    }

    /// Waits until `expression` is `true` in the page; whether it became so within `timeout`.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let answer = self.call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            );
            if answer["result"]["value"] == json!(true) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Types `text` into the focused element, as a user would (an `input` event follows).
    pub fn type_text(&mut self, text: &str) {
        self.call("Input.insertText", json!({"text": text}));
    }

    /// A left click at (`x`, `y`) CSS pixels of the viewport, pressed and released.
    pub fn click_at(&mut self, x: f64, y: f64) {
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Clicks the centre of the first element matching `selector`, after scrolling it into
    /// view.
    ///
    /// # Panics
    ///
    /// If no element matches.
    pub fn click(&mut self, selector: &str) {
        let at = self.eval(&format!(
            "(() => {{ const e = document.querySelector({s}); if (!e) return null; \
             e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
             return [r.left + Math.min(r.width / 2, 20), r.top + r.height / 2]; }})()",
            s = json!(selector)
        ));
        let (Some(x), Some(y)) = (at[0].as_f64(), at[1].as_f64()) else {
            panic!("nothing matches {selector}");
        };
        self.click_at(x, y);
    }

    /// Writes a PNG of the page, from its top, `height` CSS pixels at most, to `path`.
    ///
    /// # Panics
    ///
    /// If the screenshot cannot be taken or written.
    pub fn screenshot(&mut self, path: &Path, height: u32) {
        // The mouse off the page, everything scrolled to its top.
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": 0, "y": 0}),
        );
        self.eval(
            "window.scrollTo(0, 0); \
             document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; }); true",
        );
        let full = self.eval("document.documentElement.scrollHeight");
        let width = self.eval("document.documentElement.clientWidth");
        let clip_height = full
            .as_f64()
            .unwrap_or(f64::from(height))
            .min(f64::from(height));
        let answer = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": width, "height": clip_height, "scale": 1},
            }),
        );
        let data = answer["data"].as_str().expect("screenshot data");
        let png = data_encoding::BASE64
            .decode(data.as_bytes())
            .expect("base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot directory");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// Console errors, uncaught exceptions, error log entries (a refused inline script or
    /// style is one) and dialogs (`alert`) of the page so far.
    pub fn errors(&mut self) -> Vec<String> {
        // A round trip, so that events sent before it have arrived.
        self.call("Runtime.evaluate", json!({"expression": "1"}));
        self.events
            .iter()
            .filter_map(|e| {
                let params = &e["params"];
                match e["method"].as_str()? {
                    "Runtime.exceptionThrown" => Some(format!("exception: {params}")),
                    "Runtime.consoleAPICalled"
                        if matches!(params["type"].as_str(), Some("error" | "assert")) =>
                    {
                        Some(format!("console.{}: {}", params["type"], params["args"]))
                    }
                    "Log.entryAdded" if params["entry"]["level"] == "error" => {
                        Some(format!("log: {}", params["entry"]))
                    }
                    "Page.javascriptDialogOpening" => Some(format!("dialog: {params}")),
                    _ => None,
                }
            })
            .collect()
    }

    /// The headers of the last response received for `url`.
    pub fn response_headers(&mut self, url: &str) -> Option<Value> {
        self.call("Runtime.evaluate", json!({"expression": "1"}));
        self.events
            .iter()
            .rev()
            .filter(|e| e["method"] == "Network.responseReceived")
            .find(|e| e["params"]["response"]["url"] == url)
            .map(|e| e["params"]["response"]["headers"].clone())
    }

    /// Calls `method` on the page.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params)
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(None, method, params)
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .unwrap_or_else(|e| panic!("DevTools {method}: {e}"));
        let deadline = Instant::now() + DEADLINE;
        loop {
            assert!(
                Instant::now() < deadline,
                "Chromium did not answer {method} in {DEADLINE:?}"
            );
            let message = match self.socket.read() {
                Ok(message) => message,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(e) => panic!("DevTools {method}: {e}"),
            };
            let Message::Text(text) = message else {
                continue;
            };
            let value: Value = serde_json::from_str(&text).expect("DevTools JSON");
            if value["id"] == json!(id) {
                if let Some(error) = value.get("error") {
                    panic!("DevTools {method} failed: {error}");
                }
                return value["result"].clone();
            }
            self.events.push(value);
        }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connects to the browser's DevTools socket, once Chromium has written its port.
fn connect(profile: &Path) -> WebSocket<TcpStream> {
    let port_file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + DEADLINE;
    let (port, path) = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                break (port.trim().to_owned(), path.trim().to_owned());
            }
        }
        if Instant::now() >= deadline {
            let stderr = std::fs::read_to_string(profile.join("stderr")).unwrap_or_default();
            panic!("Chromium did not start in {DEADLINE:?}; its stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).expect("connect");
    // A bounded handshake; then short reads, so that a call's loop checks its deadline.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let url = format!("ws://127.0.0.1:{port}{path}");
    let (socket, _) = tungstenite::client(url.as_str(), stream)
        .unwrap_or_else(|e| panic!("DevTools handshake with {url}: {e}"));
    socket
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    socket
}
