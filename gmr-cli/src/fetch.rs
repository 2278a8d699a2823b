//! `gmr fetch`: a report from a process's admin endpoint (`GET /admin/gmr`), with the bearer
//! token from a file or the environment, never from the command line (where every user of
//! the machine sees it in the process list).
//!
//! Plain HTTP only: gmr carries no TLS stack. The admin endpoint is meant to be reached on
//! loopback (the process's own machine, `ssh -L`, `kubectl port-forward`, a sidecar); a token
//! is not sent in clear text to an address that is not loopback unless `--allow-plain-http`
//! says so. For HTTPS, use curl with the token in a header file.

use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use gmr::OutputFormat;

use crate::error::CliError;
use crate::http::{self, Url};
use crate::{formats, output};

const EXAMPLES: &str = "\
Examples:
  gmr fetch http://127.0.0.1:8080/admin/gmr --token-file ~/.gmr-token
  GMR_TOKEN=$(cat /run/secrets/gmr) gmr fetch http://127.0.0.1:8080 --format json -o now.json
  kubectl port-forward pod/billing-7 8080 & gmr fetch http://127.0.0.1:8080 --token-file t";

/// The environment variable holding the token when there is no `--token-file`.
pub(crate) const TOKEN_ENV: &str = "GMR_TOKEN";

/// The largest token file read.
const MAX_TOKEN_FILE: u64 = 4096;

/// Fetch a report from a process's admin endpoint (plain HTTP).
///
/// For HTTPS, see docs/cli.md. The bearer token comes from --token-file, else from the environment variable GMR_TOKEN;
/// never from the command line. A URL without a path asks for /admin/gmr.
#[derive(Debug, clap::Args)]
#[command(before_help = EXAMPLES)]
pub(crate) struct Args {
    /// The endpoint: http://HOST:PORT[/PATH] (`admin.path`, /admin/gmr by default).
    url: String,
    /// A file holding the bearer token (`admin.token_file` of the process): a regular file,
    /// at most 4 KiB, surrounding whitespace ignored.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    #[arg(long, short, value_parser = formats::parse, help = formats::help("The view to ask for (the endpoint's default, text, when not given)"))]
    format: Option<OutputFormat>,
    /// Write to this new file (mode 0600; never replaces one) instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Give up after this many seconds (a report takes well under one).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    timeout: u64,
    /// Send the token even though the host is not on this machine (loopback), where plain
    /// HTTP carries it in clear text across the network.
    #[arg(long)]
    allow_plain_http: bool,
}

/// Runs `gmr fetch`.
///
/// # Errors
///
/// [`CliError::Usage`] for a URL gmr cannot fetch, [`CliError::Refused`] for a token file
/// that is not a regular file, [`CliError::Fetch`] when the endpoint cannot be reached or
/// answers with an error.
pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let mut url = Url::parse(&args.url).map_err(CliError::Usage)?;
    if url.path == "/" {
        "/admin/gmr".clone_into(&mut url.path);
    }
    if let Some(format) = args.format {
        if url.query.is_some() {
            return Err(CliError::Usage(
                "the URL has a query string and --format is given: give the format once".to_owned(),
            ));
        }
        url.query = Some(format!("format={}", format.name()));
    }
    let token = token(args.token_file.as_deref())?;
    let addresses = url.addresses().map_err(CliError::Fetch)?;
    if token.is_some() && !args.allow_plain_http && !http::all_loopback(&addresses) {
        return Err(CliError::Refused(format!(
            "{} is not on this machine and plain HTTP would carry the token in clear text: \
             reach the endpoint through a tunnel (ssh -L, kubectl port-forward) and fetch \
             http://127.0.0.1:PORT, or give --allow-plain-http",
            url.host
        )));
    }
    let mut headers = Vec::new();
    if let Some(format) = args.format {
        headers.push(("Accept", format.media_type().to_owned()));
    }
    if let Some(token) = &token {
        headers.push(("Authorization", format!("Bearer {token}")));
    }
    let response = http::get(
        &url,
        &addresses,
        &headers,
        Duration::from_secs(args.timeout.max(1)),
    )
    .map_err(|e| CliError::Fetch(format!("{}: {e}", args.url)))?;
    if response.status != 200 {
        return Err(CliError::Fetch(refusal(&url, &response, token.is_some())));
    }
    if let Some(format) = args.format {
        let media = response
            .content_type
            .as_deref()
            .and_then(|ct| ct.split(';').next())
            .map(str::trim)
            .unwrap_or("");
        if !media.eq_ignore_ascii_case(format.media_type()) {
            return Err(CliError::Fetch(format!(
                "{}: the endpoint answered with `{media}`, not {} ({}): is it a gmr admin \
                 endpoint, and of a gmr that has this format?",
                args.url,
                format.name(),
                format.media_type()
            )));
        }
    }
    output::write(args.output.as_deref(), &response.body)
}

/// What an error answer means, and what to do.
fn refusal(url: &Url, response: &http::Response, had_token: bool) -> String {
    let status = format!("HTTP {} {}", response.status, response.reason);
    let body = first_line(&response.body);
    match response.status {
        401 if had_token => format!(
            "{status}: the token was refused; check --token-file or {TOKEN_ENV} against the process's admin.token"
        ),
        401 => format!(
            "{status}: the endpoint wants a token: give --token-file FILE or set {TOKEN_ENV}"
        ),
        404 => format!(
            "{status}: no report at {}; the endpoint is at admin.path (/admin/gmr by default) and exists only when admin.token or admin.token_file is set",
            url.path
        ),
        _ if body.is_empty() => status,
        _ => format!("{status}: {body}"),
    }
}

/// The first line of an error body, terminal-safe and short.
fn first_line(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().next().unwrap_or("");
    line.chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The token: from `file`, else from [`TOKEN_ENV`], else none.
fn token(file: Option<&Path>) -> Result<Option<String>, CliError> {
    let Some(path) = file else {
        return Ok(std::env::var(TOKEN_ENV)
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty()));
    };
    let read_error = |source| CliError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    if !meta.is_file() {
        return Err(CliError::Refused(format!(
            "{} is not a regular file; a token file is a regular file holding the token",
            path.display()
        )));
    }
    if meta.len() > MAX_TOKEN_FILE {
        return Err(CliError::Refused(format!(
            "{} is {} bytes, more than a token file holds ({MAX_TOKEN_FILE}); is it the token?",
            path.display(),
            meta.len()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        eprintln!(
            "gmr: warning: {} can be read by other users; `chmod 600` it",
            path.display()
        );
    }
    let mut text = String::new();
    file.take(MAX_TOKEN_FILE)
        .read_to_string(&mut text)
        .map_err(read_error)?;
    let token = text.trim();
    if token.is_empty() || token.contains(['\r', '\n']) {
        return Err(CliError::Refused(format!(
            "{} must hold the token on one line",
            path.display()
        )));
    }
    Ok(Some(token.to_owned()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn token_files_are_regular_small_and_one_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("token");
        std::fs::write(&path, "  s3cret-token\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert_eq!(
            token(Some(&path)).expect("read").as_deref(),
            Some("s3cret-token")
        );
        std::fs::write(&path, "a\nb\n").expect("write");
        assert!(token(Some(&path)).is_err());
        std::fs::write(&path, "x".repeat(5000)).expect("write");
        assert!(matches!(token(Some(&path)), Err(CliError::Refused(_))));
        assert!(matches!(token(Some(dir.path())), Err(CliError::Refused(_))));
        assert!(matches!(
            token(Some(&dir.path().join("missing"))),
            Err(CliError::Read { .. })
        ));
    }

    #[test]
    fn error_answers_say_what_to_do() {
        let url = Url::parse("http://127.0.0.1:1/admin/gmr").expect("url");
        let answer = |status, body: &[u8]| http::Response {
            status,
            reason: "Reason".into(),
            content_type: None,
            body: body.to_vec(),
        };
        assert!(
            refusal(&url, &answer(401, b""), false)
                .contains("give --token-file FILE or set GMR_TOKEN")
        );
        assert!(refusal(&url, &answer(401, b""), true).contains("the token was refused"));
        assert!(refusal(&url, &answer(404, b""), true).contains("admin.path"));
        assert_eq!(
            refusal(&url, &answer(503, b"busy \x1b[2J\nmore"), true),
            "HTTP 503 Reason: busy ?[2J"
        );
    }
}
