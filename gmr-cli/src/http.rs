//! A minimal HTTP/1.1 client for `gmr fetch`: one `GET`, `Connection: close`, bounded in time
//! and size, with `Content-Length`, chunked and close-delimited bodies. Plain HTTP only; see
//! `fetch` for why and what to do for HTTPS.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs as _};
use std::time::{Duration, Instant};

/// The largest response read.
pub(crate) const MAX_RESPONSE: usize = 512 << 20;

/// An `http://` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Url {
    /// Host name or address (without brackets for IPv6).
    pub(crate) host: String,
    /// Port.
    pub(crate) port: u16,
    /// Path, from `/`.
    pub(crate) path: String,
    /// Query string without `?`, if any.
    pub(crate) query: Option<String>,
}

impl Url {
    /// Parses `text`, an `http://host[:port][/path][?query]` URL.
    ///
    /// # Errors
    ///
    /// What is wrong, and what to do (for `https://` and for credentials in the URL too).
    pub(crate) fn parse(text: &str) -> Result<Url, String> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "`{text}` is not a URL; give http://HOST:PORT/PATH (e.g. http://127.0.0.1:8080/admin/gmr)"
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "http" => {}
            "https" => {
                return Err(
                    "gmr fetch speaks plain HTTP only (it carries no TLS stack): reach the \
                     endpoint over loopback (ssh -L, kubectl port-forward) and fetch \
                     http://127.0.0.1:PORT/..., or use curl with the token in a header file \
                     (curl -H @header-file https://...)"
                        .to_owned(),
                );
            }
            other => return Err(format!("unsupported scheme `{other}`; give an http:// URL")),
        }
        let (authority, path_query) = match rest.find(['/', '?']) {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(
                "credentials in the URL would be visible to every user in the process list; \
                 give the token with --token-file or GMR_TOKEN"
                    .to_owned(),
            );
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("`{authority}`: an IPv6 address ends with `]`"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(format!("`{text}` has no host"));
        }
        let port = match port {
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| format!("`{port}` is not a port number"))?,
            None => 80,
        };
        let (path, query) = match path_query.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (path_query, None),
        };
        if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(
                "the path holds spaces or control characters; percent-encode them".to_owned(),
            );
        }
        if query.as_deref().is_some_and(|q| {
            q.bytes()
                .any(|b| b.is_ascii_control() || b == b' ' || b == b'#')
        }) {
            return Err("the query holds spaces, `#` or control characters".to_owned());
        }
        Ok(Url {
            host: host.to_owned(),
            port,
            path: if path.is_empty() {
                "/".to_owned()
            } else {
                path.to_owned()
            },
            query,
        })
    }

    /// The `Host` header's value.
    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// The request target: path and query.
    fn target(&self) -> String {
        match &self.query {
            Some(query) => format!("{}?{query}", self.path),
            None => self.path.clone(),
        }
    }

    /// The addresses of the host.
    ///
    /// # Errors
    ///
    /// Why the host does not resolve.
    pub(crate) fn addresses(&self) -> Result<Vec<SocketAddr>, String> {
        let addresses: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .collect();
        if addresses.is_empty() {
            return Err(format!("{} has no address", self.host));
        }
        Ok(addresses)
    }
}

/// Whether every address is on this machine (loopback).
pub(crate) fn all_loopback(addresses: &[SocketAddr]) -> bool {
    addresses.iter().all(|a| match a.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    })
}

/// A response.
#[derive(Debug)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// The reason phrase.
    pub(crate) reason: String,
    /// `Content-Type`, if any.
    pub(crate) content_type: Option<String>,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

/// Sends `GET url` with `headers` to the first of `addresses` that accepts the connection,
/// and reads the response, all within `timeout`.
///
/// # Errors
///
/// Why no response came: connection refused, timeout, a response that is not HTTP or is too
/// large.
pub(crate) fn get(
    url: &Url,
    addresses: &[SocketAddr],
    headers: &[(&str, String)],
    timeout: Duration,
) -> Result<Response, String> {
    let deadline = Instant::now() + timeout;
    let mut last_error = String::from("no address");
    let mut stream = None;
    for address in addresses {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(address, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("cannot connect to {address}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_error)?;
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: gmr/{}\r\nConnection: close\r\n",
        url.target(),
        url.host_header(),
        env!("CARGO_PKG_VERSION")
    );
    for (name, value) in headers {
        if value.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(format!("the {name} header value holds a line break"));
        }
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let io = |what: &str, e: std::io::Error| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            format!("no complete answer within {} s ({what})", timeout.as_secs())
        } else {
            format!("{what}: {e}")
        }
    };
    set_timeouts(&stream, deadline).map_err(|e| io("setting timeouts", e))?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| io("sending the request", e))?;
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        if let Some(response) = complete(&received)? {
            return Ok(response);
        }
        if received.len() > MAX_RESPONSE {
            return Err(format!("the response is larger than {MAX_RESPONSE} bytes"));
        }
        set_timeouts(&stream, deadline).map_err(|e| io("reading the response", e))?;
        match stream.read(&mut buf) {
            Ok(0) => return finish_at_close(&received),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io("reading the response", e)),
        }
    }
}

/// Sets the socket's timeouts to what is left until `deadline` (at least 1 ms).
fn set_timeouts(stream: &TcpStream, deadline: Instant) -> std::io::Result<()> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    stream.set_read_timeout(Some(left))?;
    stream.set_write_timeout(Some(left))
}

/// The parts of a response head.
struct Head {
    status: u16,
    reason: String,
    content_type: Option<String>,
    length: Option<usize>,
    chunked: bool,
    body_at: usize,
}

/// The head of `received`, once it is all there.
fn head(received: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let body_at = match response.parse(received) {
        Ok(httparse::Status::Complete(at)) => at,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("the answer is not HTTP: {e}")),
    };
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    let chunked =
        header("transfer-encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let length = match header("content-length") {
        Some(value) => Some(
            value
                .parse::<usize>()
                .map_err(|_| format!("bad Content-Length `{value}`"))?,
        ),
        None => None,
    };
    Ok(Some(Head {
        status: response.code.unwrap_or(0),
        reason: response.reason.unwrap_or("").to_owned(),
        content_type: header("content-type"),
        length,
        chunked,
        body_at,
    }))
}

/// The response, if `received` holds all of it (by `Content-Length` or the last chunk).
fn complete(received: &[u8]) -> Result<Option<Response>, String> {
    let Some(head) = head(received)? else {
        return Ok(None);
    };
    let body = &received[head.body_at..];
    let body = if head.chunked {
        match dechunk(body)? {
            Some(body) => body,
            None => return Ok(None),
        }
    } else if let Some(length) = head.length {
        if body.len() < length {
            return Ok(None);
        }
        body[..length].to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(response(head, body)))
}

/// The response of a connection the server closed.
fn finish_at_close(received: &[u8]) -> Result<Response, String> {
    let Some(head) = head(received)? else {
        return Err(if received.is_empty() {
            "the server closed the connection without answering".to_owned()
        } else {
            "the server closed the connection in the middle of the answer".to_owned()
        });
    };
    if head.chunked || head.length.is_some() {
        return Err("the server closed the connection before the end of the body".to_owned());
    }
    let body = received[head.body_at..].to_vec();
    Ok(response(head, body))
}

fn response(head: Head, body: Vec<u8>) -> Response {
    Response {
        status: head.status,
        reason: head.reason,
        content_type: head.content_type,
        body,
    }
}

/// The body of a chunked encoding, once its last chunk is there.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let line =
            std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size".to_owned())?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size `{size_text}`"))?;
        let start = line_end + 2;
        if size == 0 {
            return Ok(Some(body));
        }
        let end = start.checked_add(size).ok_or("chunk too large")?;
        if data.len() < end + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[start..end]);
        data = &data[end + 2..];
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn urls() {
        let url = Url::parse("http://127.0.0.1:8080/admin/gmr?format=json").expect("url");
        assert_eq!(
            url,
            Url {
                host: "127.0.0.1".into(),
                port: 8080,
                path: "/admin/gmr".into(),
                query: Some("format=json".into())
            }
        );
        assert_eq!(url.host_header(), "127.0.0.1:8080");
        let url = Url::parse("http://[::1]:9/").expect("v6");
        assert_eq!(
            (url.host.as_str(), url.port, url.host_header().as_str()),
            ("::1", 9, "[::1]:9")
        );
        let url = Url::parse("http://example").expect("no port");
        assert_eq!((url.port, url.path.as_str()), (80, "/"));
        assert!(
            Url::parse("https://x/")
                .expect_err("https")
                .contains("plain HTTP only")
        );
        assert!(
            Url::parse("http://u:pw@x/")
                .expect_err("creds")
                .contains("--token-file")
        );
        assert!(Url::parse("ftp://x/").is_err());
        assert!(Url::parse("x:80").is_err());
        assert!(Url::parse("http://x:99999/").is_err());
        assert!(Url::parse("http://x/a b").is_err());
    }

    #[test]
    fn loopback_addresses() {
        let v4: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let v6: SocketAddr = "[::1]:1".parse().expect("addr");
        let other: SocketAddr = "10.0.0.1:1".parse().expect("addr");
        assert!(all_loopback(&[v4, v6]));
        assert!(!all_loopback(&[v4, other]));
    }

    /// A server on loopback answering one connection with `answer`; what it received.
    fn serve(answer: &'static [u8]) -> (Url, std::thread::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            conn.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.ends_with(b"\r\n\r\n") {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            let _ = conn.write_all(answer);
            got
        });
        let url =
            Url::parse(&format!("http://127.0.0.1:{port}/admin/gmr?format=json")).expect("url");
        (url, handle)
    }

    fn fetch(answer: &'static [u8]) -> (Result<Response, String>, String) {
        let (url, server) = serve(answer);
        let addresses = url.addresses().expect("resolve");
        let response = get(
            &url,
            &addresses,
            &[("Authorization", "Bearer t0k".to_owned())],
            Duration::from_secs(20),
        );
        let request = String::from_utf8(server.join().expect("server")).expect("ascii");
        (response, request)
    }

    #[test]
    fn bodies_by_length_chunks_and_close() {
        let (response, request) = fetch(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        );
        let response = response.expect("response");
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"{}"[..])
        );
        assert_eq!(response.content_type.as_deref(), Some("application/json"));
        assert!(
            request.starts_with("GET /admin/gmr?format=json HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("\r\nAuthorization: Bearer t0k\r\n"),
            "{request}"
        );
        assert!(request.contains("\r\nConnection: close\r\n"), "{request}");

        let (response, _) = fetch(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        );
        assert_eq!(response.expect("chunked").body, b"abcde");

        let (response, _) = fetch(b"HTTP/1.0 401 Unauthorized\r\n\r\nno token");
        let response = response.expect("close-delimited");
        assert_eq!(
            (response.status, response.body.as_slice()),
            (401, &b"no token"[..])
        );

        let (response, _) = fetch(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
        assert!(
            response
                .expect_err("cut")
                .contains("before the end of the body")
        );
        let (response, _) = fetch(b"");
        assert!(response.expect_err("nothing").contains("without answering"));
        let (response, _) = fetch(b"SSH-2.0-OpenSSH\r\n\r\n");
        assert!(response.expect_err("not http").contains("not HTTP"));
    }

    #[test]
    fn a_refused_connection_says_so() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("addr");
        drop(listener);
        let url = Url::parse(&format!("http://{address}/")).expect("url");
        let error = get(&url, &[address], &[], Duration::from_secs(5)).expect_err("refused");
        assert!(
            error.starts_with(&format!("cannot connect to {address}")),
            "{error}"
        );
    }
}
