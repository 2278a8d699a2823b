//! gmr-axum through `tower::ServiceExt::oneshot`: the admin router for any state, auth,
//! unknown paths, the in-flight layer with `MatchedPath`, the runtime in `Green Threads`.

use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use gmr_axum::GmrAxum;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

const TOKEN: &str = "axum-test-token-0123456789abcdef";

/// One hook per process: every test shares it. Installed in a runtime that lives as long as
/// the process, so the listed runtime stays valid.
fn gmr() -> &'static GmrAxum {
    static GMR: OnceLock<GmrAxum> = OnceLock::new();
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    GMR.get_or_init(|| {
        let runtime = RUNTIME.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .expect("runtime")
        });
        let config = config::Config::builder()
            .set_default("gmr.signal", "none")
            .and_then(|b| b.set_default("gmr.service_name", "axum-test"))
            .and_then(|b| b.set_default("gmr.admin.token", TOKEN))
            .and_then(|b| b.set_default("gmr.admin.min_interval", "1ms"))
            .and_then(|b| b.build())
            .expect("config");
        let _entered = runtime.enter();
        gmr_axum::install(&config, gmr::package!()).expect("install")
    })
}

#[derive(Clone)]
struct AppState {
    greeting: &'static str,
}

fn app() -> Router {
    let state = AppState { greeting: "hello" };
    Router::new()
        .route(
            "/",
            get(|State(s): State<AppState>| async move { s.greeting }),
        )
        .merge(gmr().router::<AppState>())
        .with_state(state)
        .layer(gmr().layer())
}

async fn status(app: Router, method: &str, uri: &str, auth: bool) -> StatusCode {
    let mut request = Request::builder().method(method).uri(uri);
    if auth {
        request = request.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
    }
    app.oneshot(request.body(axum::body::Body::empty()).expect("request"))
        .await
        .expect("infallible")
        .status()
}

#[tokio::test]
async fn admin_router_auth_matrix_and_unknown_paths() {
    assert_eq!(status(app(), "GET", "/", false).await, StatusCode::OK);
    assert_eq!(
        status(app(), "GET", "/admin/gmr", true).await,
        StatusCode::OK
    );
    assert_eq!(
        status(app(), "HEAD", "/admin/gmr", true).await,
        StatusCode::OK
    );
    assert_eq!(
        status(app(), "GET", "/admin/gmr", false).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(app(), "POST", "/admin/gmr", true).await,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(
        status(app(), "GET", "/admin/unknown", false).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(app(), "GET", "/admin/gmr/x", true).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn admin_router_serves_text_and_json() {
    let response = app()
        .oneshot(
            Request::get("/admin/gmr?format=json")
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["service"], "axum-test");
    assert_eq!(json["trigger"], "http");
    let runtimes = &json["green_threads"]["runtimes"];
    assert!(
        runtimes["runtime"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["name"] == "axum")),
        "{runtimes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_requests_carry_the_matched_route() {
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let entered_tx = Arc::new(Mutex::new(Some(entered_tx)));
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let release_rx = Arc::new(Mutex::new(Some(release_rx)));
    let app = Router::new()
        .route(
            "/items/{id}",
            get(move |Path(id): Path<u32>| {
                let entered = entered_tx.lock().expect("lock").take();
                let release = release_rx.lock().expect("lock").take();
                async move {
                    if let Some(entered) = entered {
                        let _ = entered.send(());
                    }
                    if let Some(release) = release {
                        let _ = release.await;
                    }
                    format!("item {id}")
                }
            }),
        )
        .layer(gmr().layer());
    let request = tokio::spawn(
        app.oneshot(
            Request::get("/items/42?secret=x")
                .body(axum::body::Body::empty())
                .expect("request"),
        ),
    );
    entered_rx.await.expect("handler entered");
    let snapshot = gmr().layer().snapshot();
    let item = snapshot
        .iter()
        .find(|r| r.path == "/items/42")
        .expect("request listed, without its query string");
    assert_eq!(item.route.as_deref(), Some("/items/{id}"));
    assert_eq!(item.method, "GET");
    assert!(item.task.is_some(), "its tokio task");
    release_tx.send(()).expect("release");
    let response = request.await.expect("join").expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let _ = response.into_body().collect().await;
    let still = gmr().layer().snapshot();
    assert!(
        !still.iter().any(|r| r.path == "/items/42"),
        "removed when the response is done"
    );
}
