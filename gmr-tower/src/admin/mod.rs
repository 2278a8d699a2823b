//! The admin endpoint: the report over HTTP, behind a bearer token (DESIGN §6).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = gmr::Gmr::builder().package(gmr::package!()).install()?;
//! // `None` when no token is configured: no token, no endpoint.
//! if let Some(admin) = gmr_tower::AdminEndpoint::from_guard(&guard) {
//!     // Mount `admin` at `admin.path()`, or wrap an app with `admin.route_layer()`.
//!     # let _ = admin;
//! }
//! # Ok(()) }
//! ```
//!
//! * The token is checked first, so an unauthenticated request learns nothing else (not even
//!   which methods exist).
//! * `GET` answers the report as `text/plain`, or as JSON for `Accept: application/json` or
//!   `?format=json` (`?format=text` forces text); `HEAD` answers the same without a body;
//!   any other method is `405` with `Allow: GET, HEAD`.
//! * The token is checked in constant time on SHA-256 digests; a missing or wrong token is
//!   `401` with `WWW-Authenticate: Bearer`. The token never appears in a log or a report.
//! * Every answer carries `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`.
//! * Requests within `admin.min_interval` of a report share it; the report is made and
//!   rendered on gmr's reporter thread and awaited, so no async worker is ever blocked making
//!   or rendering it.
//! * Bad input (a junk query, an unknown format, a malformed header) is a `4xx` with a short
//!   plain message, never a `500` and never a panic.

mod auth;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use gmr::{GmrGuard, OutputFormat, RenderedReport, ReportHandle, Trigger};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower_layer::Layer;
use tower_service::Service;

use self::auth::TokenDigest;

/// How long a request waits for its report before a `503`: far more than a report takes
/// (`threads.deadline` bounds the capture, 5 s by default), so only a stuck reporter hits it.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// The admin endpoint could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No token is configured: the endpoint does not exist without one.
    #[error(
        "the gmr admin endpoint needs a token: set `gmr.admin.token` or `gmr.admin.token_file`"
    )]
    NoToken,
}

/// One answer of the endpoint, independent of the HTTP library (the actix adapter converts it
/// to its own types; [`AdminAnswer::into_response`] gives an `http` response).
#[derive(Debug, Clone)]
pub struct AdminAnswer {
    /// The status.
    pub status: StatusCode,
    /// Every header to send (content type and security headers included).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body (empty for `HEAD`).
    pub body: Bytes,
}

impl AdminAnswer {
    fn new(status: StatusCode, content_type: &'static str, body: Bytes) -> Self {
        AdminAnswer {
            status,
            headers: vec![
                (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                (
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ),
            ],
            body,
        }
    }

    fn plain(status: StatusCode, message: &'static str) -> Self {
        let mut body = String::with_capacity(message.len() + 1);
        body.push_str(message);
        body.push('\n');
        AdminAnswer::new(status, "text/plain; charset=utf-8", Bytes::from(body))
    }

    fn with_header(mut self, name: HeaderName, value: &'static str) -> Self {
        self.headers.push((name, HeaderValue::from_static(value)));
        self
    }

    /// The answer as an `http` response.
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

struct Inner {
    reports: ReportHandle,
    digest: TokenDigest,
    path: String,
    min_interval: Duration,
}

/// The admin endpoint: a tower [`Service`] answering with the report. Cheap to clone.
///
/// It answers every request it is given; mount it at [`AdminEndpoint::path`] with a router, or
/// wrap a service with [`AdminEndpoint::route_layer`], which sends only that path to it.
#[derive(Clone)]
pub struct AdminEndpoint {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AdminEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminEndpoint")
            .field("path", &self.inner.path)
            .field("min_interval", &self.inner.min_interval)
            .field("token", &"***")
            .finish()
    }
}

impl AdminEndpoint {
    /// The endpoint of an installed hook with its `[gmr.admin]` settings; `None` when no
    /// token is configured (no token, no endpoint).
    pub fn from_guard(guard: &GmrGuard) -> Option<Self> {
        AdminEndpoint::new(guard.reports(), &guard.gmr().settings().admin).ok()
    }

    /// An endpoint answering with reports of `reports`, with `admin`'s path, token and
    /// minimum interval.
    ///
    /// # Errors
    ///
    /// [`AdminError::NoToken`] when `admin.token` is not set.
    pub fn new(reports: ReportHandle, admin: &gmr::AdminConfig) -> Result<Self, AdminError> {
        let token = admin.token.as_ref().ok_or(AdminError::NoToken)?;
        Ok(AdminEndpoint {
            inner: Arc::new(Inner {
                reports,
                digest: TokenDigest::of(token.expose()),
                path: admin.path.clone(),
                min_interval: admin.min_interval,
            }),
        })
    }

    /// The path the endpoint is meant to be mounted at (`admin.path`).
    pub fn path(&self) -> &str {
        &self.inner.path
    }

    /// A layer that sends requests for [`AdminEndpoint::path`] to this endpoint and every other
    /// request to the wrapped service.
    pub fn route_layer(&self) -> AdminRouteLayer {
        AdminRouteLayer {
            endpoint: self.clone(),
        }
    }

    /// Answers one request, given its method, its query string, and the raw values of its
    /// `Authorization` and `Accept` headers. This is the whole endpoint; the `Service`
    /// implementation and the actix adapter only translate to and from it.
    pub async fn answer<'a>(
        &self,
        method: &Method,
        query: Option<&str>,
        authorization: impl Iterator<Item = &'a [u8]>,
        accept: Option<&[u8]>,
    ) -> AdminAnswer {
        if let Err(denied) = self.inner.digest.check_values(authorization) {
            tracing::debug!(reason = ?denied, "gmr admin request denied");
            return AdminAnswer::plain(StatusCode::UNAUTHORIZED, denied.message())
                .with_header(header::WWW_AUTHENTICATE, denied.challenge());
        }
        let head = match *method {
            Method::GET => false,
            Method::HEAD => true,
            _ => {
                return AdminAnswer::plain(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method not allowed; use GET or HEAD",
                )
                .with_header(header::ALLOW, "GET, HEAD");
            }
        };
        let format = match parse_query(query) {
            Ok(Some(format)) => format,
            Ok(None) => negotiate(accept),
            Err(message) => return AdminAnswer::plain(StatusCode::BAD_REQUEST, message),
        };
        let rendered = match self
            .inner
            .reports
            .shared_rendered_within(
                Trigger::Http,
                format,
                self.inner.min_interval,
                REPORT_TIMEOUT,
            )
            .await
        {
            Ok(rendered) => rendered,
            Err(error) => {
                tracing::warn!(%error, "gmr admin endpoint could not get a report");
                return AdminAnswer::plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    match error {
                        gmr::ReportError::TimedOut(_) => {
                            "report unavailable: the gmr reporter did not answer in time"
                        }
                        _ => "report unavailable: the gmr reporter is not running",
                    },
                );
            }
        };
        // Rendered on the reporter thread; the body shares its bytes, no copy per request.
        let content_type = rendered.format().content_type();
        let mut answer = AdminAnswer::new(
            StatusCode::OK,
            content_type,
            Bytes::from_owner(Body(rendered)),
        );
        if head {
            answer.body = Bytes::new();
        }
        answer
    }
}

/// A rendered report as the bytes of a response body (shared, not copied).
struct Body(Arc<RenderedReport>);

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The `format` query parameter: `Ok(None)` when absent. Any other parameter, a repeated or
/// malformed one, or an unknown format is an error message for a `400`.
fn parse_query(query: Option<&str>) -> Result<Option<OutputFormat>, &'static str> {
    let Some(query) = query else { return Ok(None) };
    if query.len() > 256 {
        return Err("query string too long; the only parameter is format=<format>");
    }
    let mut format = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "format" {
            return Err("unknown query parameter; the only parameter is format=<format>");
        }
        if format.is_some() {
            return Err("format given twice; give format=<format> once");
        }
        format = Some(OutputFormat::from_name(value).ok_or(
            "unknown format; use format=text or format=json (see gmr::OutputFormat::ALL)",
        )?);
    }
    Ok(format)
}

/// The format `Accept` prefers (by q-value), the default format (text) on a tie, for `*/*`,
/// `text/*`, and when nothing listed is a format gmr has.
fn negotiate(accept: Option<&[u8]>) -> OutputFormat {
    let default = OutputFormat::default();
    let Some(accept) = accept.and_then(|a| std::str::from_utf8(a).ok()) else {
        return default;
    };
    let mut best = (default, 0.0f32);
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        let format = match media.as_str() {
            "*/*" | "text/*" => Some(default),
            media => OutputFormat::ALL
                .iter()
                .copied()
                .find(|f| f.media_type() == media),
        };
        if let Some(format) = format
            && (q > best.1 || (q == best.1 && q > 0.0 && format == default))
        {
            best = (format, q);
        }
    }
    best.0
}

impl<B> Service<Request<B>> for AdminEndpoint {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let endpoint = self.clone();
        let (parts, _body) = request.into_parts();
        Box::pin(async move {
            let answer = endpoint
                .answer(
                    &parts.method,
                    parts.uri.query(),
                    parts
                        .headers
                        .get_all(header::AUTHORIZATION)
                        .iter()
                        .map(HeaderValue::as_bytes),
                    parts.headers.get(header::ACCEPT).map(HeaderValue::as_bytes),
                )
                .await;
            Ok(answer.into_response())
        })
    }
}

/// A layer sending requests for the admin path to the [`AdminEndpoint`] and every other
/// request to the inner service. Made by [`AdminEndpoint::route_layer`].
#[derive(Clone, Debug)]
pub struct AdminRouteLayer {
    endpoint: AdminEndpoint,
}

impl<S> Layer<S> for AdminRouteLayer {
    type Service = AdminRoute<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AdminRoute {
            inner,
            endpoint: self.endpoint.clone(),
        }
    }
}

/// The service made by [`AdminRouteLayer`].
#[derive(Clone, Debug)]
pub struct AdminRoute<S> {
    inner: S,
    endpoint: AdminEndpoint,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AdminRoute<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        use http_body_util::BodyExt as _;
        if request.uri().path() == self.endpoint.path() {
            let mut endpoint = self.endpoint.clone();
            let future = endpoint.call(request);
            Box::pin(async move {
                let response = match future.await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok(response.map(|b| b.map_err(|never| match never {}).boxed_unsync()))
            })
        } else {
            let future = self.inner.call(request);
            Box::pin(async move {
                let response = future.await?;
                Ok(response.map(|b| b.map_err(Into::into).boxed_unsync()))
            })
        }
    }
}

/// The error type of boxed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        assert_eq!(parse_query(None), Ok(None));
        assert_eq!(parse_query(Some("")), Ok(None));
        assert_eq!(
            parse_query(Some("format=json")),
            Ok(Some(OutputFormat::Json))
        );
        assert_eq!(
            parse_query(Some("format=TEXT")),
            Ok(Some(OutputFormat::Text))
        );
        assert_eq!(
            parse_query(Some("&format=json&")),
            Ok(Some(OutputFormat::Json))
        );
        for junk in [
            "format=xml",
            "format",
            "format=json&format=text",
            "x=1",
            "format=json&debug=1",
            "%ff%fe",
            "format=%6Aso%6E",
            "=",
            "a=b=c",
        ] {
            assert!(parse_query(Some(junk)).is_err(), "{junk}");
        }
        assert!(parse_query(Some(&"a".repeat(10_000))).is_err());
    }

    #[test]
    fn accept_negotiation() {
        assert_eq!(negotiate(None), OutputFormat::Text);
        assert_eq!(negotiate(Some(b"application/json")), OutputFormat::Json);
        assert_eq!(
            negotiate(Some(b"text/plain, application/json")),
            OutputFormat::Text
        );
        assert_eq!(
            negotiate(Some(b"text/plain;q=0.5, application/json")),
            OutputFormat::Json
        );
        assert_eq!(negotiate(Some(b"*/*")), OutputFormat::Text);
        assert_eq!(negotiate(Some(b"application/json;q=0")), OutputFormat::Text);
        assert_eq!(negotiate(Some(b"\xff\xfe")), OutputFormat::Text);
        assert_eq!(negotiate(Some(b";;;,,,q=")), OutputFormat::Text);
    }
}
