//! gmr-axum through `tower::ServiceExt::oneshot`: the admin router for any state, auth,
//! unknown paths, the in-flight layer with `MatchedPath`, the runtime in `Green Threads`.

use std::sync::atomic::{AtomicUsize, Ordering};
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

/// A bundle on the shared hook with an in-flight table of its own, so that what one test
/// lists is its own requests only.
fn own_gmr(name: &str, hide_paths: bool) -> GmrAxum {
    let mut options = gmr_axum::gmr_tower::InFlightOptions::new(name);
    if hide_paths {
        options = options.hide_paths();
    }
    GmrAxum::from_bundle(gmr_axum::gmr_tower::GmrTower::from_guard(
        gmr().guard().clone(),
        options,
    ))
}

/// Counts calls.
type Calls = Arc<AtomicUsize>;

fn calls(counter: &Calls) -> usize {
    counter.load(Ordering::SeqCst)
}

/// A request parked in its handler until released; `entered` fires once the handler runs.
struct Parked {
    entered: tokio::sync::oneshot::Receiver<()>,
    release: tokio::sync::oneshot::Sender<()>,
}

type BoxedAnswer = std::pin::Pin<Box<dyn Future<Output = &'static str> + Send>>;

/// A handler that parks its request (see [`Parked`]) and counts its calls.
fn parking_handler(calls: Calls) -> (Parked, impl Fn() -> BoxedAnswer + Clone) {
    let (entered_tx, entered) = tokio::sync::oneshot::channel::<()>();
    let (release, release_rx) = tokio::sync::oneshot::channel::<()>();
    let entered_tx = Arc::new(Mutex::new(Some(entered_tx)));
    let release_rx = Arc::new(Mutex::new(Some(release_rx)));
    let handler = move || {
        calls.fetch_add(1, Ordering::SeqCst);
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
        }) as BoxedAnswer
    };
    (Parked { entered, release }, handler)
}

/// `router` with a middleware (`Router::layer`) that counts the requests it sees.
fn counting_requests(router: Router, counter: Calls) -> Router {
    router.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            counter.fetch_add(1, Ordering::SeqCst);
            next.run(request)
        },
    ))
}

/// Sends a request to the wrapped app on its own task; returns the task.
fn send(
    app: &gmr_axum::GmrRouter,
    method: http::Method,
    uri: &str,
) -> tokio::task::JoinHandle<Result<axum::response::Response, std::convert::Infallible>> {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(axum::body::Body::empty())
        .expect("request");
    tokio::spawn(app.clone().oneshot(request))
}

/// The route each listed request has, by path.
fn routes_by_path(gmr: &GmrAxum) -> Vec<(String, Option<String>)> {
    let mut listed: Vec<_> = gmr
        .layer()
        .snapshot()
        .into_iter()
        .map(|r| (r.path, r.route))
        .collect();
    listed.sort();
    listed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapped_app_lists_requests_with_their_route_without_running_the_app() {
    let gmr = own_gmr("axum-wrapped", false);
    let (handler_calls, middleware_calls, fallback_calls, refused_calls) = (
        Calls::default(),
        Calls::default(),
        Calls::default(),
        Calls::default(),
    );
    let (parked, handler) = parking_handler(Arc::clone(&handler_calls));
    let (nested_parked, nested_handler) = parking_handler(Calls::default());
    let (fallback_parked, fallback) = parking_handler(Arc::clone(&fallback_calls));
    let (refused_parked, refused) = parking_handler(Arc::clone(&refused_calls));
    let app = Router::new()
        .route("/items/{id}", get(handler))
        .route("/only-get", get(|| async { "get" }))
        .nest(
            "/api",
            Router::new().route("/users/{id}", get(nested_handler)),
        )
        .method_not_allowed_fallback(refused)
        .fallback(fallback);
    let app = counting_requests(app, Arc::clone(&middleware_calls));
    let app = gmr.wrap(app);
    let requests = [
        send(&app, http::Method::GET, "/items/42?secret=x"),
        send(&app, http::Method::GET, "/api/users/7"),
        send(&app, http::Method::GET, "/nowhere/at/all"),
        send(&app, http::Method::POST, "/only-get"),
    ];
    for entered in [
        parked.entered,
        nested_parked.entered,
        fallback_parked.entered,
        refused_parked.entered,
    ] {
        entered.await.expect("handler entered");
    }

    for _ in 0..3 {
        assert_eq!(
            routes_by_path(&gmr),
            vec![
                (
                    "/api/users/7".to_owned(),
                    Some("/api/users/{id}".to_owned())
                ),
                ("/items/42".to_owned(), Some("/items/{id}".to_owned())),
                ("/nowhere/at/all".to_owned(), None),
                ("/only-get".to_owned(), Some("/only-get".to_owned())),
            ],
            "paths without their query, with the route axum matched (none for the fallback)"
        );
    }
    assert_eq!(calls(&handler_calls), 1, "finding routes called no handler");
    assert_eq!(calls(&fallback_calls), 1, "nor the fallback");
    assert_eq!(
        calls(&refused_calls),
        1,
        "nor the method-not-allowed fallback"
    );
    assert_eq!(calls(&middleware_calls), 4, "nor the app's middleware");

    for release in [
        parked.release,
        nested_parked.release,
        fallback_parked.release,
        refused_parked.release,
    ] {
        release.send(()).expect("release");
    }
    for request in requests {
        let response = request.await.expect("join").expect("infallible");
        let _ = response.into_body().collect().await.expect("body");
    }
    assert_eq!(
        gmr.layer().in_flight(),
        0,
        "removed when the responses are done"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapped_app_with_hidden_paths_shows_the_route_found_when_recorded() {
    let gmr = own_gmr("axum-wrapped-hidden", true);
    let (parked, handler) = parking_handler(Calls::default());
    let app = gmr.wrap(Router::new().route("/hidden/{token}", get(handler)));
    let request = send(&app, http::Method::GET, "/hidden/s3cr3t-t0ken");
    parked.entered.await.expect("handler entered");

    let snapshot = gmr.layer().snapshot();
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
async fn a_wrapped_app_answers_as_without_gmr_and_serves_the_admin_route() {
    let gmr = own_gmr("axum-wrapped-answers", false);
    let app = gmr.wrap(
        Router::new()
            .route("/", get(|| async { "hello" }))
            .merge(gmr.router()),
    );
    let answer = |method: http::Method, uri: &'static str, auth: bool| {
        let mut request = Request::builder().method(method).uri(uri);
        if auth {
            request = request.header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        }
        let request = request.body(axum::body::Body::empty()).expect("request");
        let app = app.clone();
        async move { app.oneshot(request).await.expect("infallible").status() }
    };
    for (method, uri, auth, status) in [
        (http::Method::GET, "/", false, StatusCode::OK),
        (
            http::Method::POST,
            "/",
            false,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (http::Method::GET, "/nowhere", false, StatusCode::NOT_FOUND),
        (
            http::Method::GET,
            "/admin/gmr",
            false,
            StatusCode::UNAUTHORIZED,
        ),
        (http::Method::GET, "/admin/gmr", true, StatusCode::OK),
    ] {
        assert_eq!(
            answer(method.clone(), uri, auth).await,
            status,
            "{method} {uri}"
        );
    }

    let without_routes = gmr.wrap(Router::new().fallback(|| async { "fallback" }));
    let response = send(&without_routes, http::Method::GET, "/anything")
        .await
        .expect("join")
        .expect("infallible");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "an app of a fallback only"
    );
}

#[tokio::test]
async fn the_app_state_is_released_with_the_bundle_that_wrapped_it() {
    let gmr = own_gmr("axum-wrapped-state", false);
    let state = Arc::new(());
    let app = Router::new()
        .route("/", get(|State(_): State<Arc<()>>| async { "hello" }))
        .with_state(Arc::clone(&state));
    let app = gmr.wrap(app);
    assert!(Arc::strong_count(&state) > 1, "held while serving");
    drop(app);
    drop(gmr);
    assert_eq!(
        Arc::strong_count(&state),
        1,
        "no copy of the router outlives the bundle and the served app"
    );
}
