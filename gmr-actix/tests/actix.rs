//! The middleware, the admin endpoint and worker registration, driven with `actix_web::test`.
//!
//! One gmr hook per process: every test shares one [`GmrActix`] with fixed settings
//! (`signal = "none"`, so the test binary's signals are left alone). Tests that look at
//! in-flight requests use a table of their own, so tests running in parallel do not see each
//! other's requests.

use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::test as actix_test;
use actix_web::{App, HttpResponse, web};
use gmr_actix::{GmrActix, GmrMiddleware};
use gmr_tower::InFlightLayer;

const TOKEN: &str = "actix-test-token-0123456789abcdef";

fn gmr() -> &'static GmrActix {
    static GMR: OnceLock<GmrActix> = OnceLock::new();
    GMR.get_or_init(|| {
        let config = config::Config::builder()
            .set_default("gmr.service_name", "gmr-actix-tests")
            .and_then(|b| b.set_default("gmr.signal", "none"))
            .and_then(|b| b.set_default("gmr.admin.token", TOKEN))
            .and_then(|b| b.set_default("app.database_password", "hunter2-actix"))
            .and_then(|b| b.build())
            .expect("test configuration");
        gmr_actix::install(&config, gmr::package!()).expect("install gmr")
    })
}

/// An app as `actix_web::test::init_service` makes it, answering with bodies of type `B`.
trait TestApp<B>:
    actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >
{
}

impl<S, B> TestApp<B> for S where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >
{
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

/// `GET uri` with the admin token.
fn authorized_get(uri: &str) -> actix_http::Request {
    actix_test::TestRequest::get()
        .uri(uri)
        .insert_header(bearer(TOKEN))
        .to_request()
}

/// The requests of the in-flight table `source` in a report's `Green Threads` JSON.
fn in_flight_requests(report: &serde_json::Value, source: &str) -> serde_json::Value {
    report["green_threads"]["requests"]
        .as_array()
        .and_then(|blocks| blocks.iter().find(|b| b["source"] == source))
        .map(|b| b["requests"].clone())
        .unwrap_or_else(|| {
            panic!(
                "no in-flight table {source:?} in {}",
                report["green_threads"]
            )
        })
}

/// The three ways an app gets the admin endpoint: the middleware serving it, the resource
/// alone (an app without the middleware), and the resource with the recording middleware. Each
/// test below runs against all three.
macro_rules! for_each_admin_app {
    (|$app:ident| $check:expr) => {{
        let gmr = gmr();
        let hello = || async { "hello" };
        {
            let $app = actix_test::init_service(
                App::new()
                    .route("/", web::get().to(hello))
                    .wrap(gmr.middleware_serving_admin()),
            )
            .await;
            $check
        }
        {
            let $app = actix_test::init_service(
                App::new()
                    .configure(gmr.admin())
                    .route("/", web::get().to(hello)),
            )
            .await;
            $check
        }
        {
            let $app = actix_test::init_service(
                App::new()
                    .configure(gmr.admin())
                    .route("/", web::get().to(hello))
                    .wrap(gmr.middleware()),
            )
            .await;
            $check
        }
    }};
}

#[actix_web::test]
async fn admin_auth_matrix() {
    for_each_admin_app!(|app| check_auth_matrix(&app).await);
}

async fn check_auth_matrix<B: actix_web::body::MessageBody>(app: &impl TestApp<B>) {
    // 200 with the token: text, no-store, the token and the secret never shown.
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::get()
            .uri("/admin/gmr")
            .insert_header(bearer(TOKEN))
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(
        headers.get("cache-control").expect("cache-control"),
        "no-store"
    );
    assert!(
        headers
            .get("content-type")
            .expect("content-type")
            .to_str()
            .expect("ascii")
            .starts_with("text/plain")
    );
    let body = actix_test::read_body(response).await;
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("Guru Meditation"), "{text}");
    assert!(text.contains(gmr::report::titles::GREEN_THREADS));
    assert!(!text.contains(TOKEN), "the token never appears in a report");
    assert!(!text.contains("hunter2-actix"), "config secret leaked");

    // JSON by query and by Accept.
    for request in [
        actix_test::TestRequest::get()
            .uri("/admin/gmr?format=json")
            .insert_header(bearer(TOKEN)),
        actix_test::TestRequest::get()
            .uri("/admin/gmr")
            .insert_header(bearer(TOKEN))
            .insert_header(("Accept", "application/json")),
    ] {
        let response = actix_test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers().get("content-type").expect("type"),
            "application/json"
        );
        let doc: serde_json::Value = actix_test::read_body_json(response).await;
        // `http`, or `api` when it shares the report another test just took.
        assert!(
            doc["trigger"] == "http" || doc["trigger"] == "api",
            "{}",
            doc["trigger"]
        );
        assert_eq!(doc["service"], "gmr-actix-tests");
    }

    // 401 without a token and with a wrong one, with a Bearer challenge.
    for request in [
        actix_test::TestRequest::get().uri("/admin/gmr"),
        actix_test::TestRequest::get()
            .uri("/admin/gmr")
            .insert_header(bearer("wrong-token")),
        actix_test::TestRequest::get()
            .uri("/admin/gmr")
            .insert_header(("Authorization", format!("Basic {TOKEN}"))),
    ] {
        let response = actix_test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response
            .headers()
            .get("www-authenticate")
            .expect("WWW-Authenticate")
            .to_str()
            .expect("ascii");
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert_eq!(
            response.headers().get("cache-control").expect("no-store"),
            "no-store"
        );
    }

    // 405 for other methods, even with the token.
    for method in [
        actix_web::http::Method::POST,
        actix_web::http::Method::DELETE,
    ] {
        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::default()
                .method(method)
                .uri("/admin/gmr")
                .insert_header(bearer(TOKEN))
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers().get("allow").expect("Allow"), "GET, HEAD");
    }

    // HEAD: the headers of GET, no body.
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::default()
            .method(actix_web::http::Method::HEAD)
            .uri("/admin/gmr")
            .insert_header(bearer(TOKEN))
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(actix_test::read_body(response).await.is_empty());

    // A bad query is a 400, not a report.
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::get()
            .uri("/admin/gmr?format=xml")
            .insert_header(bearer(TOKEN))
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Unknown paths stay 404 (not 401), next to and below the endpoint.
    for path in ["/nope", "/admin/gmr/x", "/admin"] {
        let response =
            actix_test::call_service(&app, actix_test::TestRequest::get().uri(path).to_request())
                .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let response =
        actix_test::call_service(&app, actix_test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Only the exact bytes of `admin.path` reach the endpoint, as on axum and tower: actix matches
/// routes on the percent-decoded path, so without a check `/%61dmin/gmr` would get the report
/// and defeat a proxy rule that blocks `/admin/gmr` by its exact text.
#[actix_web::test]
async fn only_the_exact_admin_path_reaches_the_endpoint() {
    for_each_admin_app!(|app| check_only_the_exact_path(&app).await);
}

async fn check_only_the_exact_path<B: actix_web::body::MessageBody>(app: &impl TestApp<B>) {
    for path in [
        "/%61dmin/gmr",
        "/admin/gm%72",
        "/%61%64%6d%69%6e/%67%6d%72",
        "/ADMIN/gmr",
        "/admin%2Fgmr",
        "/admin/gmr/",
        "//admin/gmr",
        "/admin//gmr",
        "/admin/./gmr",
        "/admin/x/../gmr",
    ] {
        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::get()
                .uri(path)
                .insert_header(bearer(TOKEN))
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body = actix_test::read_body(response).await;
        assert!(
            !String::from_utf8_lossy(&body).contains("Guru Meditation"),
            "{path} got the report"
        );
    }
    // The exact path still works, with a query string too.
    for path in ["/admin/gmr", "/admin/gmr?format=json"] {
        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::get()
                .uri(path)
                .insert_header(bearer(TOKEN))
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

/// The middleware serving the admin path answers it before routing: a catch-all route of the
/// app, which would shadow a resource mounted after it, does not, and the admin request is not
/// listed among the requests in flight of the report it gets.
#[actix_web::test]
async fn the_middleware_answers_the_admin_path_before_a_catch_all_route() {
    let gmr = gmr();
    let app = actix_test::init_service(
        App::new()
            .route("/{tail:.*}", web::get().to(|| async { "catch-all" }))
            .configure(gmr.admin())
            .wrap(gmr.middleware_serving_admin()),
    )
    .await;
    let response = actix_test::call_service(&app, authorized_get("/admin/gmr?format=json")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let report: serde_json::Value = actix_test::read_body_json(response).await;
    let listed = in_flight_requests(&report, gmr_actix::IN_FLIGHT_NAME);
    let paths: Vec<&str> = listed
        .as_array()
        .map(|requests| requests.iter().filter_map(|r| r["path"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        !paths.contains(&"/admin/gmr"),
        "the admin request is not listed: {paths:?}"
    );
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::get().uri("/other").to_request(),
    )
    .await;
    assert_eq!(
        actix_test::read_body(response).await,
        "catch-all",
        "the app's routes are its own"
    );
}

/// The recording middleware alone answers no admin path: an app gets the endpoint only where it
/// mounts it (a public app beside an internal admin one, with one token).
#[actix_web::test]
async fn the_recording_middleware_alone_serves_no_endpoint() {
    let gmr = gmr();
    let app = actix_test::init_service(
        App::new()
            .route("/", web::get().to(|| async { "hello" }))
            .wrap(gmr.middleware()),
    )
    .await;
    let response = actix_test::call_service(&app, authorized_get("/admin/gmr")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_request_names_its_route_and_the_thread_polling_it() {
    let _ = gmr();
    let layer = InFlightLayer::named("actix-polled");
    let seen = layer.clone();
    let app = actix_test::init_service(
        App::new()
            .route(
                "/items/{id}",
                web::get().to(move || {
                    // Looks at the table while this request is being polled.
                    let listed: Vec<serde_json::Value> = seen
                        .snapshot()
                        .iter()
                        .map(|r| {
                            serde_json::json!({
                                "method": r.method,
                                "path": r.path,
                                "route": r.route,
                                "polled_by": r.polled_by,
                                "current": gmr::requests::current().map(|id| id.get()),
                                "id": r.id.get(),
                            })
                        })
                        .collect();
                    async move { HttpResponse::Ok().json(listed) }
                }),
            )
            .wrap(GmrMiddleware::new(layer.clone())),
    )
    .await;
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::get()
            .uri("/items/42?secret=query")
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let snapshot: serde_json::Value = actix_test::read_body_json(response).await;
    assert_eq!(snapshot.as_array().map(Vec::len), Some(1), "{snapshot}");
    let request = &snapshot[0];
    assert_eq!(request["method"], "GET");
    assert_eq!(request["path"], "/items/42", "without its query string");
    assert_eq!(request["route"], "/items/{id}");
    assert_eq!(request["polled_by"], gmr::current_thread_id());
    assert_eq!(
        request["current"], request["id"],
        "the handler runs as the request: its spans belong to it"
    );
    assert_eq!(layer.in_flight(), 0, "removed once the response is read");
}

#[actix_web::test]
async fn a_waiting_request_stays_listed_until_its_body_is_done() {
    let _ = gmr();
    let layer = InFlightLayer::named("actix-waiting");
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let release_rx = std::sync::Mutex::new(Some(release_rx));
    let release_rx = std::sync::Arc::new(release_rx);
    let app = actix_test::init_service(
        App::new()
            .route(
                "/wait",
                web::get().to(move || {
                    let release = release_rx.lock().expect("lock").take();
                    async move {
                        if let Some(release) = release {
                            let _ = release.await;
                        }
                        HttpResponse::Ok().body("done")
                    }
                }),
            )
            .wrap(GmrMiddleware::new(layer.clone())),
    )
    .await;
    let call = actix_web::rt::spawn(async move {
        let response = actix_test::call_service(
            &app,
            actix_test::TestRequest::get().uri("/wait").to_request(),
        )
        .await;
        actix_test::read_body(response).await
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while layer.in_flight() == 0 {
        assert!(Instant::now() < deadline, "request never recorded");
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    let snapshot = layer.snapshot();
    let request = &snapshot[0];
    assert_eq!(request.route.as_deref(), Some("/wait"));
    assert_eq!(request.polled_by, None, "not being polled: waiting");
    assert!(request.last_poll.is_some(), "it was polled once");
    release_tx.send(()).expect("release");
    let body = call.await.expect("call");
    assert_eq!(&body[..], b"done");
    assert_eq!(layer.in_flight(), 0);
}

#[actix_web::test]
async fn a_dropped_request_is_removed() {
    let _ = gmr();
    let layer = InFlightLayer::named("actix-dropped");
    let app = actix_test::init_service(
        App::new()
            .route(
                "/forever",
                web::get().to(|| async {
                    std::future::pending::<()>().await;
                    HttpResponse::Ok().finish()
                }),
            )
            .wrap(GmrMiddleware::new(layer.clone())),
    )
    .await;
    let call = actix_web::rt::spawn(async move {
        actix_test::call_service(
            &app,
            actix_test::TestRequest::get().uri("/forever").to_request(),
        )
        .await;
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while layer.in_flight() == 0 {
        assert!(Instant::now() < deadline, "request never recorded");
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    call.abort();
    let _ = call.await;
    assert_eq!(layer.in_flight(), 0, "the client went away: no entry left");
}

/// Blocks the worker (here: the test thread) in a function whose name the report must show.
#[inline(never)]
fn actix_test_blocking_handler(release: &mpsc::Receiver<()>) -> &'static str {
    let _ = release.recv_timeout(Duration::from_secs(30));
    "released"
}

#[actix_web::test]
async fn a_blocked_request_points_at_its_thread_in_a_full_report() {
    let gmr = gmr();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = std::sync::Arc::new(std::sync::Mutex::new(release_rx));
    let app = actix_test::init_service(
        App::new()
            .route(
                "/block/{n}",
                web::get().to(move || {
                    let release = std::sync::Arc::clone(&release_rx);
                    async move {
                        let release = release.lock().expect("lock");
                        HttpResponse::Ok().body(actix_test_blocking_handler(&release))
                    }
                }),
            )
            .wrap(gmr.middleware()),
    )
    .await;
    let worker_tid = gmr::current_thread_id();
    // While this thread is blocked in the handler, another thread takes a report.
    let reports = gmr.reports();
    let in_flight = gmr.in_flight().clone();
    let reporter = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !in_flight.snapshot().iter().any(|r| r.path == "/block/7") {
            if Instant::now() > deadline {
                let _ = release_tx.send(());
                panic!("the blocked request was never recorded");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let report = reports.report_blocking(gmr::Trigger::Api);
        let _ = release_tx.send(());
        report.expect("report").to_json()
    });
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::get().uri("/block/7").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let report = reporter.join().expect("reporter thread");

    let data = in_flight_requests(&report, "actix");
    let request = data
        .as_array()
        .and_then(|r| r.iter().find(|r| r["path"] == "/block/7"))
        .unwrap_or_else(|| panic!("request not listed: {data}"));
    assert_eq!(request["method"], "GET");
    assert_eq!(request["route"], "/block/{n}");
    assert!(request["age_ms"].is_u64());
    assert_eq!(request["polled_by_tid"], worker_tid);

    // The worker's runtime is listed, registered by the middleware.
    let runtimes = &report["green_threads"]["runtimes"];
    assert!(
        runtimes["runtime"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("actix-web worker")))),
        "{runtimes}"
    );

    // That thread's stack shows the blocking handler.
    let threads = &report["threads"];
    let supported = cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    ));
    assert_eq!(threads["stacks_supported"], supported);
    if supported {
        let stack_index = threads["threads"]
            .as_array()
            .and_then(|t| t.iter().find(|t| t["tid"] == worker_tid))
            .and_then(|t| t["stack"].as_u64())
            .unwrap_or_else(|| panic!("no stack for the worker thread: {threads}"));
        let stack = &threads["stacks"][usize::try_from(stack_index).expect("index")];
        assert!(
            stack["frames"]
                .as_array()
                .is_some_and(|frames| frames.iter().any(|f| f["function"]
                    .as_str()
                    .is_some_and(|f| f.contains("actix_test_blocking_handler")))),
            "blocking handler missing from the worker's stack: {stack}"
        );
    }
}

#[test]
fn one_hook_however_many_installs() {
    let first = gmr();
    // A second install with the same settings shares the hook instead of failing.
    let config = config::Config::builder()
        .set_default("gmr.service_name", "gmr-actix-tests")
        .and_then(|b| b.set_default("gmr.signal", "none"))
        .and_then(|b| b.set_default("gmr.admin.token", TOKEN))
        .and_then(|b| b.set_default("app.database_password", "hunter2-actix"))
        .and_then(|b| b.build())
        .expect("test configuration");
    let second = gmr_actix::install(&config, gmr::package!()).expect("shared install");
    assert_eq!(
        second.guard().gmr().service_name(),
        first.guard().gmr().service_name()
    );
    // Different settings: a typed error, never a second reporter.
    let other = config::Config::builder()
        .set_default("gmr.signal", "none")
        .and_then(|b| b.set_default("gmr.service_name", "another"))
        .and_then(|b| b.build())
        .expect("other configuration");
    match gmr_actix::install(&other, gmr::package!()) {
        Err(gmr_actix::Error::Install(gmr::InstallError::AlreadyInstalled)) => {}
        other => panic!("expected AlreadyInstalled, got {other:?}"),
    }
    let reporters = || {
        std::fs::read_dir("/proc/self/task")
            .map(|tasks| {
                tasks
                    .flatten()
                    .filter(|t| {
                        std::fs::read_to_string(t.path().join("comm"))
                            .is_ok_and(|c| c.trim() == "gmr-reporter")
                    })
                    .count()
            })
            .unwrap_or(1)
    };
    // A thread the reporter starts carries its name until std renames it, so one read
    // can see two for a moment; a second reporter would stay.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut seen = reporters();
    while seen != 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
        seen = reporters();
    }
    assert_eq!(seen, 1, "one reporter thread per process");
}

/// A response body that yields one chunk once its gate is opened.
struct GatedBody(std::sync::Arc<std::sync::Mutex<(bool, Option<std::task::Waker>, bool)>>);

impl actix_web::body::MessageBody for GatedBody {
    type Error = std::convert::Infallible;

    fn size(&self) -> actix_web::body::BodySize {
        actix_web::body::BodySize::Stream
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<web::Bytes, Self::Error>>> {
        let mut state = self.0.lock().expect("gate");
        if state.2 {
            return std::task::Poll::Ready(None);
        }
        if !state.0 {
            state.1 = Some(cx.waker().clone());
            return std::task::Poll::Pending;
        }
        state.2 = true;
        std::task::Poll::Ready(Some(Ok(web::Bytes::from_static(b"streamed"))))
    }
}

#[actix_web::test]
async fn a_streamed_response_stays_listed_until_its_body_ends_or_is_dropped() {
    let _ = gmr();
    let layer = InFlightLayer::named("actix-streamed");
    let gate = std::sync::Arc::new(std::sync::Mutex::new((false, None, false)));
    let body_gate = std::sync::Arc::clone(&gate);
    let app = actix_test::init_service(
        App::new()
            .route(
                "/stream",
                web::get().to(move || {
                    let gate = std::sync::Arc::clone(&body_gate);
                    async move { HttpResponse::Ok().body(GatedBody(gate)) }
                }),
            )
            .wrap(GmrMiddleware::new(layer.clone())),
    )
    .await;

    // Read to the end: listed while the body is pending, removed at its end.
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::get().uri("/stream").to_request(),
    )
    .await;
    assert_eq!(layer.in_flight(), 1, "the body is not finished yet");
    {
        let mut state = gate.lock().expect("gate");
        state.0 = true;
        if let Some(waker) = state.1.take() {
            waker.wake();
        }
    }
    let body = actix_test::read_body(response).await;
    assert_eq!(&body[..], b"streamed");
    assert_eq!(layer.in_flight(), 0);

    // Dropped unread (the client went away): removed too.
    *gate.lock().expect("gate") = (false, None, false);
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::get().uri("/stream").to_request(),
    )
    .await;
    assert_eq!(layer.in_flight(), 1);
    drop(response);
    assert_eq!(layer.in_flight(), 0);
}

#[actix_web::test]
async fn an_in_memory_response_ends_the_request_when_it_is_made() {
    let _ = gmr();
    let layer = InFlightLayer::named("actix-in-memory");
    let app = actix_test::init_service(
        App::new()
            .route("/text", web::get().to(|| async { "all in memory" }))
            .route(
                "/none",
                web::get()
                    .to(|| async { HttpResponse::NoContent().body(actix_web::body::None::new()) }),
            )
            .wrap(GmrMiddleware::new(layer.clone())),
    )
    .await;
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::get().uri("/text").to_request(),
    )
    .await;
    assert_eq!(
        layer.in_flight(),
        0,
        "nothing is left to wait for but actix writing the bytes out"
    );
    assert_eq!(
        actix_web::body::MessageBody::size(response.response().body()),
        actix_web::body::BodySize::Sized(13)
    );
    assert_eq!(&actix_test::read_body(response).await[..], b"all in memory");

    // A body of no size keeps it (a length would be written for it otherwise).
    let response = actix_test::call_service(
        &app,
        actix_test::TestRequest::get().uri("/none").to_request(),
    )
    .await;
    assert_eq!(layer.in_flight(), 0);
    assert_eq!(
        actix_web::body::MessageBody::size(response.response().body()),
        actix_web::body::BodySize::None
    );
    assert!(actix_test::read_body(response).await.is_empty());
}
