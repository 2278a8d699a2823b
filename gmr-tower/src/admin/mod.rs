//! The admin endpoint: the report over HTTP, behind a bearer token (`docs/security.md`).
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
//! * `GET` answers the report as `text/plain`, or in another [`gmr::OutputFormat`] named by
//!   `Accept` (`application/json`, `text/html`) or `?format=` (`?format=json`,
//!   `?format=html`, `?format=text`); `HEAD` answers the same without a body; any other
//!   method is `405` with `Allow: GET, HEAD`.
//! * The HTML page comes with its `Content-Security-Policy`
//!   ([`gmr::OutputFormat::content_security_policy`]): nothing loads, and only the page's own
//!   style and script run.
//! * The token is checked in constant time on SHA-256 digests; a missing or wrong token is
//!   `401` with `WWW-Authenticate: Bearer`. The token never appears in a log or a report.
//! * Every answer carries `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`.
//! * Requests within `admin.min_interval` of a report share it; the report is made and
//!   rendered on gmr's reporter thread and awaited, so no async worker is ever blocked making
//!   or rendering it.
//! * Bad input (a junk query, an unknown format, a malformed header) is a `4xx` with a short
//!   plain message, never a `500` and never a panic.
//! * The endpoint's log events go through gmr's log thread ([`gmr::log_without_blocking`]):
//!   a worker answering a request never waits for the application's log output.

mod auth;
mod negotiate;
mod service;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gmr::{GmrGuard, RenderedReport, ReportHandle, Trigger};
use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::Full;

use self::auth::TokenDigest;
use self::negotiate::{negotiate, parse_query};
pub use self::service::{
    AdminFuture, AdminRoute, AdminRouteBody, AdminRouteFuture, AdminRouteLayer, BoxError,
};

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

/// The admin endpoint: a tower [`Service`](tower_service::Service) answering with the report.
/// Cheap to clone.
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
            // Events on a web worker go through gmr's log thread: a stderr nobody reads must
            // never stop a worker.
            gmr::log_without_blocking(
                || tracing::debug!(reason = ?denied, "gmr admin request denied"),
            );
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
                gmr::log_without_blocking(
                    || tracing::warn!(%error, "gmr admin endpoint could not get a report"),
                );
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
        let policy = rendered.format().content_security_policy();
        let mut answer = AdminAnswer::new(
            StatusCode::OK,
            content_type,
            Bytes::from_owner(Body(rendered)),
        );
        if let Some(policy) = policy {
            match HeaderValue::from_str(policy) {
                Ok(value) => answer
                    .headers
                    .push((header::CONTENT_SECURITY_POLICY, value)),
                // gmr's policy is ASCII; were it not, the page's <meta> still holds it.
                Err(_) => gmr::log_without_blocking(|| {
                    tracing::warn!("gmr's Content-Security-Policy is not a valid header value")
                }),
            }
        }
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
