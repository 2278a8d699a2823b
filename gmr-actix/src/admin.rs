//! The admin endpoint in actix-web terms: a translation of [`AdminEndpoint::answer`].
//!
//! actix-web 4 is built on `http` 0.2 types and the endpoint on `http` 1, so the method, the
//! status and the headers cross by their string and byte forms. Everything the endpoint decides
//! (auth, `405`, formats, caching headers) stays in [`gmr_tower::AdminEndpoint`].

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, Resource, guard, web};
use gmr_tower::{AdminAnswer, AdminEndpoint};

/// A resource serving `endpoint` at its path ([`AdminEndpoint::path`]) for every method: `GET`
/// and `HEAD` get the report, any other method the endpoint's `405` with `Allow: GET, HEAD`.
///
/// Only a request whose path is exactly `admin.path`, byte for byte, reaches the endpoint, as on
/// axum and tower. actix matches routes on the percent-decoded path, so the resource also
/// checks the path as received: `/%61dmin/gmr` or `/admin/gm%72` is a 404 like any unknown
/// path, and a proxy rule that blocks `/admin/gmr` by its exact text cannot be walked around.
///
/// Mount it at the root of the app (not inside a scope, which would prefix the path).
/// [`crate::GmrActix::admin`] does this for you.
pub fn admin_resource(endpoint: &AdminEndpoint) -> Resource {
    let endpoint = endpoint.clone();
    let exact = endpoint.path().to_owned();
    web::resource(endpoint.path().to_owned())
        .guard(guard::fn_guard(move |ctx| ctx.head().uri.path() == exact))
        .to(move |request: HttpRequest| {
            let endpoint = endpoint.clone();
            async move { respond(&endpoint, &request).await }
        })
}

/// Answers one request with the endpoint. The report is awaited from gmr's reporter thread;
/// the worker polling this future is never blocked.
pub(crate) async fn respond(endpoint: &AdminEndpoint, request: &HttpRequest) -> HttpResponse {
    // Any method the `http` crate rejects is not GET or HEAD: the endpoint answers 405 for
    // every such method, CONNECT included.
    let method = http::Method::from_bytes(request.method().as_str().as_bytes())
        .unwrap_or(http::Method::CONNECT);
    let query = Some(request.query_string()).filter(|q| !q.is_empty());
    let headers = request.headers();
    let answer = endpoint
        .answer(
            &method,
            query,
            headers
                .get_all(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
            headers.get(header::ACCEPT).map(HeaderValue::as_bytes),
        )
        .await;
    into_response(answer)
}

/// The actix response for an endpoint answer.
fn into_response(answer: AdminAnswer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status.as_u16()).unwrap_or_else(|_| {
        gmr::log_without_blocking(|| {
            tracing::warn!(status = %answer.status, "gmr admin answer with a status actix rejects");
        });
        StatusCode::INTERNAL_SERVER_ERROR
    });
    let mut response = HttpResponse::build(status);
    for (name, value) in &answer.headers {
        match (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            (Ok(name), Ok(value)) => {
                response.append_header((name, value));
            }
            _ => gmr::log_without_blocking(|| {
                tracing::warn!(header = %name, "gmr admin header actix rejects; left out");
            }),
        }
    }
    response.body(answer.body)
}
