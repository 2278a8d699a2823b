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

/// A request parked in its handler until released; `entered` fires once the handler runs.
struct Parked {
    entered: tokio::sync::oneshot::Receiver<()>,
    release: tokio::sync::oneshot::Sender<()>,
}

/// A handler that parks its request (see [`Parked`]) and counts its calls.
fn parking_handler(
    calls: Arc<std::sync::atomic::AtomicUsize>,
) -> (
    Parked,
    impl Fn() -> std::pin::Pin<Box<dyn Future<Output = &'static str> + Send>> + Clone,
) {
    let (entered_tx, entered) = tokio::sync::oneshot::channel::<()>();
    let (release, release_rx) = tokio::sync::oneshot::channel::<()>();
    let entered_tx = Arc::new(Mutex::new(Some(entered_tx)));
    let release_rx = Arc::new(Mutex::new(Some(release_rx)));
    let handler = move || {
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let entered = entered_tx.lock().expect("lock").take();
        let release = release_rx.lock().expect("lock").take();
        Box::pin(async move {
            if let Some(entered) = entered {
                let _ = entered.send(());
            }
            if let Some(release) = release {
                let _ = release.await;
            }
            "done"
        }) as std::pin::Pin<Box<dyn Future<Output = &'static str> + Send>>
    };
    (Parked { entered, release }, handler)
}

/// Sends `uri` to the wrapped app on its own task; returns the task.
fn send(
    app: &gmr_axum::GmrRouter,
    uri: &str,
) -> tokio::task::JoinHandle<Result<axum::response::Response, std::convert::Infallible>> {
    let request = Request::get(uri)
        .body(axum::body::Body::empty())
        .expect("request");
    tokio::spawn(app.clone().oneshot(request))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapped_app_lists_requests_with_their_route_without_calling_handlers_again() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let middleware_calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (parked, handler) = parking_handler(Arc::clone(&calls));
    let counted = Arc::clone(&middleware_calls);
    let app = Router::new()
        .route("/wrapped/items/{id}", get(handler))
        .nest(
            "/wrapped/api",
            Router::new().route("/users/{id}", get(|| async { "user" })),
        )
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                next.run(request)
            },
        ));
    let app = gmr().wrap(app);
    let request = send(&app, "/wrapped/items/42?secret=x");
    parked.entered.await.expect("handler entered");

    let snapshot = gmr().layer().snapshot();
    let item = snapshot
        .iter()
        .find(|r| r.path == "/wrapped/items/42")
        .expect("request listed, without its query string");
    assert_eq!(item.route.as_deref(), Some("/wrapped/items/{id}"));
    assert_eq!(item.method, "GET");
    assert!(item.task.is_some(), "its tokio task");
    for _ in 0..3 {
        let again = gmr().layer().snapshot();
        assert!(
            again
                .iter()
                .any(|r| r.route.as_deref() == Some("/wrapped/items/{id}"))
        );
    }
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "finding the route called no handler"
    );
    assert_eq!(
        middleware_calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "finding the route ran none of the app's middleware"
    );

    parked.release.send(()).expect("release");
    let response = request.await.expect("join").expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(&body[..], b"done");
    assert!(
        !gmr()
            .layer()
            .snapshot()
            .iter()
            .any(|r| r.path == "/wrapped/items/42"),
        "removed when the response is done"
    );

    // The nested router's routes, and what no route matches, answer as without gmr.
    let nested = send(&app, "/wrapped/api/users/7").await.expect("join");
    assert_eq!(nested.expect("infallible").status(), StatusCode::OK);
    let unknown = send(&app, "/wrapped/nowhere").await.expect("join");
    assert_eq!(unknown.expect("infallible").status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapped_app_finds_nested_routes_and_none_for_the_fallback() {
    let (nested, nested_handler) = parking_handler(Arc::default());
    let (fallback, fallback_handler) = parking_handler(Arc::default());
    let app = Router::new()
        .nest(
            "/fallback-test/api",
            Router::new().route("/users/{id}", get(nested_handler)),
        )
        .fallback(fallback_handler);
    let app = gmr().wrap(app);
    let first = send(&app, "/fallback-test/api/users/7");
    let second = send(&app, "/fallback-test/unknown/path");
    nested.entered.await.expect("nested handler entered");
    fallback.entered.await.expect("fallback entered");

    let snapshot = gmr().layer().snapshot();
    let route_of = |path: &str| {
        snapshot
            .iter()
            .find(|r| r.path == path)
            .map(|r| r.route.clone())
            .expect("listed")
    };
    assert_eq!(
        route_of("/fallback-test/api/users/7").as_deref(),
        Some("/fallback-test/api/users/{id}")
    );
    assert_eq!(
        route_of("/fallback-test/unknown/path"),
        None,
        "the fallback has no route"
    );

    nested.release.send(()).expect("release");
    fallback.release.send(()).expect("release");
    for task in [first, second] {
        let response = task.await.expect("join").expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapped_app_with_hidden_paths_shows_the_route_found_when_recorded() {
    let guard = gmr().guard().clone();
    let hidden = GmrAxum::from_bundle(gmr_axum::gmr_tower::GmrTower::from_guard(
        guard,
        gmr_axum::gmr_tower::InFlightOptions::new("axum-hidden").hide_paths(),
    ));
    let (parked, handler) = parking_handler(Arc::default());
    let app = hidden.wrap(Router::new().route("/hidden/{token}", get(handler)));
    let request = send(&app, "/hidden/s3cr3t-t0ken");
    parked.entered.await.expect("handler entered");

    let snapshot = hidden.layer().snapshot();
    assert_eq!(snapshot.len(), 1, "{snapshot:?}");
    assert_eq!(snapshot[0].route.as_deref(), Some("/hidden/{token}"));
    assert_eq!(
        snapshot[0].path, "/hidden/{token}",
        "the route stands for the path"
    );
    assert!(!format!("{snapshot:?}").contains("s3cr3t"), "{snapshot:?}");

    parked.release.send(()).expect("release");
    let response = request.await.expect("join").expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrapped_app_without_routes_serves_its_fallback() {
    let app = gmr().wrap(Router::new().fallback(|| async { "fallback" }));
    let response = send(&app, "/anything")
        .await
        .expect("join")
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let wrapped_admin = gmr().wrap(Router::new().merge(gmr().router()));
    let request = Request::get("/admin/gmr")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(axum::body::Body::empty())
        .expect("request");
    let response = wrapped_admin.oneshot(request).await.expect("infallible");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the admin route, wrapped"
    );
}
