//! The admin endpoint through tower's `oneshot`: auth matrix, formats, methods, bad input,
//! cost control, and the route layer.

use std::sync::OnceLock;

use bytes::Bytes;
use gmr::GmrGuard;
use gmr_tower::{AdminEndpoint, AdminError};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use tower::{Layer, ServiceExt};

const TOKEN: &str = "test-admin-token-0123456789abcdef";
const RULE: &str = "========================================================================";

/// One hook per process: every test shares it.
fn guard() -> &'static GmrGuard {
    static GUARD: OnceLock<GmrGuard> = OnceLock::new();
    GUARD.get_or_init(|| {
        let config = config::Config::builder()
            .set_default("gmr.signal", "none")
            .and_then(|b| b.set_default("gmr.service_name", "admin-test"))
            .and_then(|b| b.set_default("gmr.admin.token", TOKEN))
            .and_then(|b| b.set_default("gmr.admin.min_interval", "1s"))
            .and_then(|b| b.build())
            .expect("config");
        gmr::Gmr::builder()
            .config(&config)
            .package(gmr::package!())
            .install()
            .expect("install")
    })
}

fn endpoint() -> AdminEndpoint {
    AdminEndpoint::from_guard(guard()).expect("token configured")
}

async fn send(request: Request<()>) -> (StatusCode, http::HeaderMap, Bytes) {
    let response = endpoint().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts.status, parts.headers, body)
}

fn get(uri: &str) -> http::request::Builder {
    Request::get(uri)
}

fn authorized(uri: &str) -> Request<()> {
    get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(())
        .expect("request")
}

fn assert_security_headers(headers: &http::HeaderMap) {
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

#[tokio::test]
async fn get_with_token_returns_the_text_report() {
    let (status, headers, body) = send(authorized("/admin/gmr")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
    assert_security_headers(&headers);
    let text = String::from_utf8(body.to_vec()).expect("utf-8");
    assert!(text.starts_with(RULE), "{text}");
    assert!(text.contains("trigger = http"));
    assert!(!text.contains(TOKEN), "the token never appears in a report");
}

#[tokio::test]
async fn json_by_accept_or_query() {
    for request in [
        get("/admin/gmr")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::ACCEPT, "application/json")
            .body(())
            .expect("request"),
        authorized("/admin/gmr?format=json"),
    ] {
        let (status, headers, body) = send(request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        assert_security_headers(&headers);
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["service"], "admin-test");
        assert!(!json.to_string().contains(TOKEN));
    }
    // ?format=text wins over Accept.
    let request = get("/admin/gmr?format=text")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::ACCEPT, "application/json")
        .body(())
        .expect("request");
    let (_, headers, _) = send(request).await;
    assert_eq!(headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
}

/// The HTML page, by `?format=html` or a browser's `Accept`, with its Content-Security-Policy.
#[cfg(feature = "html")]
#[tokio::test]
async fn html_by_accept_or_query_with_its_policy() {
    for request in [
        get("/admin/gmr")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(
                header::ACCEPT,
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            )
            .body(())
            .expect("request"),
        authorized("/admin/gmr?format=html"),
    ] {
        let (status, headers, body) = send(request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_security_headers(&headers);
        let policy = headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .expect("ASCII");
        assert_eq!(
            Some(policy),
            gmr::OutputFormat::Html.content_security_policy()
        );
        assert!(policy.starts_with("default-src 'none'; script-src 'sha256-"));
        assert!(!policy.contains("unsafe-inline"));
        let page = String::from_utf8(body.to_vec()).expect("utf-8");
        assert!(page.starts_with("<!DOCTYPE html>"), "{page}");
        assert!(page.contains("admin-test"));
        assert!(!page.contains(TOKEN), "the token never appears in a report");
    }
    // Text and JSON need no policy.
    let (_, headers, _) = send(authorized("/admin/gmr?format=json")).await;
    assert!(!headers.contains_key(header::CONTENT_SECURITY_POLICY));
    // The same token check first: no page, no policy without it.
    let request = get("/admin/gmr?format=html")
        .header(header::ACCEPT, "text/html")
        .body(())
        .expect("request");
    let (status, headers, body) = send(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_security_headers(&headers);
    assert!(!headers.contains_key(header::CONTENT_SECURITY_POLICY));
    assert!(!String::from_utf8_lossy(&body).contains("<!DOCTYPE"));
}

#[tokio::test]
async fn head_has_headers_and_no_body() {
    let request = Request::head("/admin/gmr")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(())
        .expect("request");
    let (status, headers, body) = send(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_security_headers(&headers);
    assert!(body.is_empty());
}

#[tokio::test]
async fn other_methods_are_405_with_allow() {
    for method in [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ] {
        let request = Request::builder()
            .method(method.clone())
            .uri("/admin/gmr")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(())
            .expect("request");
        let (status, headers, _) = send(request).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(headers[header::ALLOW], "GET, HEAD");
        assert_security_headers(&headers);
    }
}

#[tokio::test]
async fn an_unauthenticated_request_learns_nothing_about_methods() {
    let request = Request::post("/admin/gmr").body(()).expect("request");
    let (status, headers, _) = send(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers.get(header::ALLOW).is_none());
}

#[tokio::test]
async fn bad_authorization_is_401_with_a_bearer_challenge() {
    let huge = format!("Bearer {}", "a".repeat(64 * 1024));
    let cases: Vec<Option<Vec<u8>>> = vec![
        None,
        Some(b"".to_vec()),
        Some(b"Bearer".to_vec()),
        Some(b"Bearer ".to_vec()),
        Some(format!("Basic {TOKEN}").into_bytes()),
        Some(format!("Token {TOKEN}").into_bytes()),
        Some(format!("Bearer  {TOKEN}").into_bytes()),
        Some(format!("Bearer {TOKEN} ").into_bytes()),
        Some(format!(" Bearer {TOKEN}").into_bytes()),
        Some(format!("Bearer {}", &TOKEN[..10]).into_bytes()),
        Some(format!("Bearer {TOKEN}0").into_bytes()),
        Some(b"Bearer wrong".to_vec()),
        Some(b"Bearer \xff\xfe\xfd".to_vec()),
        Some(huge.into_bytes()),
        Some(TOKEN.as_bytes().to_vec()),
    ];
    for value in cases {
        let mut builder = get("/admin/gmr");
        if let Some(value) = &value {
            builder = builder.header(
                header::AUTHORIZATION,
                http::HeaderValue::from_bytes(value).expect("header value"),
            );
        }
        let (status, headers, body) = send(builder.body(()).expect("request")).await;
        let shown = value
            .as_ref()
            .map(|v| String::from_utf8_lossy(&v[..v.len().min(40)]).into_owned());
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{shown:?}");
        assert!(
            headers[header::WWW_AUTHENTICATE]
                .to_str()
                .is_ok_and(|v| v.starts_with("Bearer")),
            "{shown:?}"
        );
        assert_security_headers(&headers);
        assert!(body.len() < 200, "short plain message");
        assert!(!String::from_utf8_lossy(&body).contains(TOKEN));
    }
}

#[tokio::test]
async fn bad_queries_are_400() {
    for query in [
        "format=xml",
        "format=",
        "format",
        "format=json&format=text",
        "debug=1",
        "format=json&x=1",
        "%ff",
        "a=b=c",
        "<script>",
        "format=%00",
    ] {
        let uri = format!("/admin/gmr?{query}");
        let Ok(request) = get(&uri)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(())
        else {
            continue; // not even a valid URI: the HTTP layer rejects it before us
        };
        let (status, headers, body) = send(request).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/plain; charset=utf-8");
        assert_security_headers(&headers);
        assert!(!body.is_empty() && body.len() < 200);
    }
}

#[tokio::test]
async fn the_worker_keeps_serving_while_a_report_is_made() {
    // A current-thread runtime: if the endpoint blocked its only worker, the ticker could not
    // run until the answer came.
    let ticks = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    let request = async {
        // A fresh report (format json bypasses nothing: min_interval may share the last one,
        // so ask the reporter directly for a new one as well).
        let (status, _, _) = send(authorized("/admin/gmr")).await;
        let _ = guard().reports().report(gmr::Trigger::Http).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        status
    };
    let ticker = async {
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            ticks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::task::yield_now().await;
        }
    };
    let (status, ()) = tokio::join!(request, ticker);
    assert_eq!(status, StatusCode::OK);
    assert!(ticks.load(std::sync::atomic::Ordering::SeqCst) > 1);
}

#[test]
fn no_token_no_endpoint() {
    let error =
        AdminEndpoint::new(guard().reports(), &gmr::AdminConfig::default()).expect_err("no token");
    assert!(matches!(error, AdminError::NoToken));
    assert!(error.to_string().contains("gmr.admin.token"));
}

#[tokio::test]
async fn route_layer_sends_only_the_admin_path_to_the_endpoint() {
    let app = tower::service_fn(|request: Request<()>| async move {
        let status = if request.uri().path() == "/" {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        let mut response = Response::new(Full::new(Bytes::from_static(b"app")));
        *response.status_mut() = status;
        Ok::<_, std::convert::Infallible>(response)
    });
    let service = endpoint().route_layer().layer(app);
    let status_of = |uri: &'static str, auth: bool| {
        let service = service.clone();
        async move {
            let mut builder = get(uri);
            if auth {
                builder = builder.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
            }
            service
                .oneshot(builder.body(()).expect("request"))
                .await
                .expect("infallible")
                .status()
        }
    };
    assert_eq!(status_of("/", false).await, StatusCode::OK);
    assert_eq!(status_of("/unknown", false).await, StatusCode::NOT_FOUND);
    assert_eq!(status_of("/admin/gmrx", false).await, StatusCode::NOT_FOUND);
    assert_eq!(
        status_of("/admin/gmr", false).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_of("/admin/gmr", true).await, StatusCode::OK);
}
