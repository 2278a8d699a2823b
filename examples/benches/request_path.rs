//! What gmr adds to one request, per adapter: the demo's hello route through a whole axum
//! `Router`, an actix-web `App` and a tower service, each with everything gmr adds (the hook
//! installed, the in-flight layer or middleware, the admin route mounted) and without. The
//! axum app is wrapped as `axum-demo` wraps it (`GmrAxum::wrap`); `axum-layer` measures the
//! same layer on every route (`Router::layer`) for reference.
//!
//! ```text
//! cargo bench -p gmr-examples --bench request_path
//! ```
//!
//! Each measurement runs its requests in a loop inside one task (`iter_custom`), as a server
//! polls a connection's requests inside a task of its own, so the runtime's own cost per
//! `block_on` is not counted; the request is built and the response body read to the end
//! inside the loop, the same in both arms.
//!
//! After criterion's figures, a paired measurement (`paired/<adapter>` lines) alternates
//! chunks of 100 requests with and without gmr, 400 times, and prints the median time per
//! request of each arm and the median of the chunk pairs' differences: on a machine whose
//! speed drifts (shared cores), the difference of neighbouring chunks is the steadier figure.
//! `GMR_BENCH_PAIRED_ONLY=1` runs only that; `GMR_BENCH_PAIRED_ONLY=axum,tower` runs it for
//! the adapters named (`axum`, `axum-layer`, `axum-noop-layer`, `tower`, `actix`, and
//! `actix-parts`: the admin resource alone, the middleware alone, a do-nothing middleware), e.g.
//! under `perf record`.
//!
//! `GMR_BENCH_ONE_ARM=with` (or `without`) runs 20 000 requests of one arm of each selected
//! adapter, untimed, for counting instructions where the machine's speed is too unsteady to
//! time a change: the difference of `valgrind --tool=cachegrind` totals of the two arms,
//! divided by 20 000, is what gmr adds per request in instructions, the same from run to run.

#![allow(clippy::print_stdout)]

use std::convert::Infallible;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use tower::{Service as _, ServiceExt};

/// The configuration of every arm with gmr: a token, so the admin route is mounted.
fn config() -> config::Config {
    config::Config::builder()
        .set_default("gmr.admin.token", "bench-token-0123456789abcdef0123")
        .and_then(|b| b.build())
        .expect("configuration")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// `n` hello requests through a clone of an axum app, run as a task of `rt`: a server polls
/// each connection's requests inside a task, which gmr's poll marks look up once per request.
fn axum_task<S>(rt: &tokio::runtime::Runtime, app: &S, n: u64) -> Duration
where
    S: tower::Service<
            Request<axum::body::Body>,
            Response = axum::response::Response,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let mut app = app.clone();
    rt.block_on(async move {
        tokio::spawn(async move { axum_requests(&mut app, n).await })
            .await
            .expect("the requests' task")
    })
}

/// `n` hello requests through an axum app.
async fn axum_requests<S>(app: &mut S, n: u64) -> Duration
where
    S: tower::Service<
            Request<axum::body::Body>,
            Response = axum::response::Response,
            Error = Infallible,
        >,
{
    let start = Instant::now();
    for _ in 0..n {
        let request = Request::get("/")
            .body(axum::body::Body::empty())
            .expect("request");
        let ready = ServiceExt::<Request<axum::body::Body>>::ready(app)
            .await
            .expect("ready");
        let response = ready.call(request).await.expect("response");
        let body = response.into_body().collect().await.expect("body");
        std::hint::black_box(body);
    }
    start.elapsed()
}

/// The axum apps without and with gmr (as `axum-demo` builds them), and the hook.
fn axum_apps(
    rt: &tokio::runtime::Runtime,
) -> (axum::Router, gmr_axum::GmrRouter, gmr_axum::GmrAxum) {
    let routes: axum::Router = gmr_examples::axum_routes::routes("hello");
    let gmr = rt.block_on(async { gmr_axum::install(&config(), gmr::package!()) });
    let gmr = gmr.expect("install");
    let with = gmr.wrap(gmr_examples::axum_routes::routes("hello").merge(gmr.router()));
    (routes, with, gmr)
}

fn bench_axum(c: &mut Criterion) {
    let rt = runtime();
    let (without, with, gmr) = axum_apps(&rt);
    let mut group = c.benchmark_group("request_path/axum");
    group.bench_function("without_gmr", |b| {
        b.iter_custom(|iters| axum_task(&rt, &without, iters))
    });
    group.bench_function("with_gmr", |b| {
        b.iter_custom(|iters| axum_task(&rt, &with, iters))
    });
    group.finish();
    assert_eq!(gmr.in_flight().in_flight(), 0);
}

type TowerBody = http_body_util::combinators::UnsyncBoxBody<Bytes, gmr_tower::BoxError>;

/// The tower demo's hello route.
async fn tower_hello(_request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(b"hello\n"))))
}

type TowerApp =
    tower::util::BoxCloneSyncService<Request<Full<Bytes>>, Response<TowerBody>, Infallible>;

/// `n` hello requests through a clone of a tower app, run as a task of `rt` (as
/// [`axum_task`]).
fn tower_task(rt: &tokio::runtime::Runtime, app: &TowerApp, n: u64) -> Duration {
    let mut app = app.clone();
    rt.block_on(async move {
        tokio::spawn(async move { tower_requests(&mut app, n).await })
            .await
            .expect("the requests' task")
    })
}

/// `n` hello requests through a tower app.
async fn tower_requests(app: &mut TowerApp, n: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let request = Request::get("/")
            .body(Full::new(Bytes::new()))
            .expect("request");
        let ready = app.ready().await.expect("ready");
        let response = ready.call(request).await.expect("response");
        let body = response.into_body().collect().await.expect("body");
        std::hint::black_box(body);
    }
    start.elapsed()
}

/// The tower apps without and with gmr (as `tower-demo` builds them), and the hook.
fn tower_apps() -> (TowerApp, TowerApp, gmr_tower::GmrTower) {
    use tower::util::BoxCloneSyncService;
    type App = TowerApp;
    let gmr = gmr_tower::GmrTower::install(&config(), gmr::package!()).expect("install");
    let admin = gmr.admin_endpoint().expect("a token: an endpoint").clone();
    // The app's answers are boxed once where they leave it, with gmr and without.
    let without: App =
        BoxCloneSyncService::new(tower::service_fn(tower_hello).map_response(|response| {
            response.map(|body| body.map_err(|never| match never {}).boxed_unsync())
        }));
    // As `tower-demo` builds it.
    let with: App = BoxCloneSyncService::new(
        tower::ServiceBuilder::new()
            .layer(gmr.layer())
            .layer(admin.route_layer())
            .service(tower::service_fn(tower_hello))
            .map_response(|response| response.map(|body| body.boxed_unsync())),
    );
    (without, with, gmr)
}

fn bench_tower(c: &mut Criterion) {
    let rt = runtime();
    let (without, with, gmr) = tower_apps();
    let mut group = c.benchmark_group("request_path/tower");
    for (name, app) in [("without_gmr", without), ("with_gmr", with)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| tower_task(&rt, &app, iters))
        });
    }
    group.finish();
    assert_eq!(gmr.in_flight().in_flight(), 0);
}

/// An actix app as `init_service` makes it, answering with body `Body`.
trait ActixApp:
    actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<Self::Body>,
        Error = actix_web::Error,
    > + 'static
{
    type Body: actix_web::body::MessageBody + 'static;
}

impl<S, B> ActixApp for S
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    type Body = B;
}

/// The actix apps without and with gmr (as `actix-demo` builds them), and the hook.
fn actix_apps(
    system: &actix_web::rt::SystemRunner,
) -> (Rc<impl ActixApp>, Rc<impl ActixApp>, gmr_actix::GmrActix) {
    use actix_web::test::init_service;
    use actix_web::{App, web};
    let gmr = gmr_actix::install(&config(), gmr::package!()).expect("install");
    let hello = || async { "hello\n" };
    let without =
        Rc::new(system.block_on(init_service(App::new().route("/", web::get().to(hello)))));
    let with = Rc::new(
        system.block_on(init_service(
            App::new()
                .route("/", web::get().to(hello))
                .wrap(gmr.middleware_serving_admin()),
        )),
    );
    (without, with, gmr)
}

fn bench_actix(c: &mut Criterion) {
    let system = actix_web::rt::System::new();
    let (without, with, gmr) = actix_apps(&system);
    let mut group = c.benchmark_group("request_path/actix");
    group.bench_function("without_gmr", |b| {
        b.iter_custom(|iters| actix_task(&system, &without, iters))
    });
    group.bench_function("with_gmr", |b| {
        b.iter_custom(|iters| actix_task(&system, &with, iters))
    });
    group.finish();
    assert_eq!(gmr.in_flight().in_flight(), 0);
}

/// `n` hello requests through an actix app, run as a task of `system` (as [`axum_task`]; actix
/// runs each connection as a task of its worker).
fn actix_task(system: &actix_web::rt::SystemRunner, app: &Rc<impl ActixApp>, n: u64) -> Duration {
    let app = Rc::clone(app);
    system.block_on(async move {
        actix_web::rt::spawn(async move { actix_requests(&*app, n).await })
            .await
            .expect("the requests' task")
    })
}

/// `n` hello requests through an actix app.
async fn actix_requests(app: &impl ActixApp, n: u64) -> Duration {
    use actix_web::test::{TestRequest, call_service, read_body};
    let start = Instant::now();
    for _ in 0..n {
        let response = call_service(app, TestRequest::get().uri("/").to_request()).await;
        std::hint::black_box(read_body(response).await);
    }
    start.elapsed()
}

/// Alternates chunks of requests with and without gmr; prints the median per request of each
/// arm and of the chunk pairs' differences. With `GMR_BENCH_ONE_ARM` set (`with` or
/// `without`), runs only that arm's requests instead, untimed (see the module docs).
fn paired(adapter: &str, mut run: impl FnMut(bool, u64) -> Duration) {
    if let Ok(arm) = std::env::var("GMR_BENCH_ONE_ARM") {
        let with = match arm.as_str() {
            "with" => true,
            "without" => false,
            other => panic!("GMR_BENCH_ONE_ARM is `with` or `without`, not `{other}`"),
        };
        run(with, ONE_ARM_REQUESTS);
        println!("one_arm/{adapter}: {ONE_ARM_REQUESTS} requests {arm} gmr");
        return;
    }
    const CHUNK: u64 = 100;
    const ROUNDS: usize = 400;
    let per_request = |d: Duration| d.as_secs_f64() * 1e9 / CHUNK as f64;
    // Warm up both arms.
    for with in [false, true] {
        run(with, CHUNK * 20);
    }
    let (mut without, mut with, mut added) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        // Alternate which arm goes first, so neither always runs on a warmer cache.
        let first = round % 2 == 0;
        let a = per_request(run(first, CHUNK));
        let b = per_request(run(!first, CHUNK));
        let (w, wo) = if first { (a, b) } else { (b, a) };
        with.push(w);
        without.push(wo);
        added.push(w - wo);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "paired/{adapter}: without_gmr {:.1} ns, with_gmr {:.1} ns, added by gmr {:.1} ns per request (medians of {ROUNDS} alternated chunks of {CHUNK})",
        median(&mut without),
        median(&mut with),
        median(&mut added)
    );
}

/// Requests run by `GMR_BENCH_ONE_ARM`.
const ONE_ARM_REQUESTS: u64 = 20_000;

/// [`paired`] for an actix app with gmr (or a part of it) against `without`.
fn paired_actix(
    name: &str,
    system: &actix_web::rt::SystemRunner,
    with: &Rc<impl ActixApp>,
    without: &Rc<impl ActixApp>,
) {
    paired(name, |g, n| {
        if g {
            actix_task(system, with, n)
        } else {
            actix_task(system, without, n)
        }
    });
}

/// Whether the paired measurement of `adapter` runs (`GMR_BENCH_PAIRED_ONLY` names it, or is
/// `1` or unset).
fn selected(adapter: &str) -> bool {
    match std::env::var("GMR_BENCH_PAIRED_ONLY") {
        Ok(list) if list != "1" => list.split(',').any(|name| name.trim() == adapter),
        _ => true,
    }
}

fn paired_all() {
    let rt = runtime();
    if selected("axum") {
        let (without, with, gmr) = axum_apps(&rt);
        paired("axum", |g, n| {
            if g {
                axum_task(&rt, &with, n)
            } else {
                axum_task(&rt, &without, n)
            }
        });
        drop(gmr);
    }
    if selected("axum-layer") {
        // For reference: the in-flight layer on every route (`Router::layer`) instead of
        // around the whole router.
        let (without, _, gmr) = axum_apps(&rt);
        let layered: axum::Router = gmr_examples::axum_routes::routes("hello")
            .merge(gmr.router())
            .layer(gmr.layer());
        paired("axum-layer", |g, n| {
            axum_task(&rt, if g { &layered } else { &without }, n)
        });
        drop(gmr);
    }
    if selected("axum-noop-layer") {
        // For reference: what axum's `Router::layer` costs with a layer that does nothing
        // (every route's service wrapped, boxed and cloned per request).
        let (without, _, _) = axum_apps(&rt);
        let noop: axum::Router =
            gmr_examples::axum_routes::routes("hello").layer(tower::layer::layer_fn(|inner| {
                tower::util::MapRequest::new(inner, |r: Request<axum::body::Body>| r)
            }));
        paired("axum-noop-layer", |g, n| {
            axum_task(&rt, if g { &noop } else { &without }, n)
        });
    }
    if selected("tower") {
        let (without, with, gmr) = tower_apps();
        paired("tower", |g, n| {
            tower_task(&rt, if g { &with } else { &without }, n)
        });
        drop(gmr);
    }
    if selected("actix") {
        let system = actix_web::rt::System::new();
        let (without, with, gmr) = actix_apps(&system);
        paired_actix("actix", &system, &with, &without);
        drop(gmr);
    }
    if selected("actix-parts") {
        // For reference, each against the app without gmr: the admin resource alone, the
        // middleware alone, and a middleware that does nothing (what actix's `App::wrap`
        // costs by itself).
        use actix_web::dev::Service as _;
        use actix_web::test::init_service;
        use actix_web::{App, web};
        let system = actix_web::rt::System::new();
        let (without, _, gmr) = actix_apps(&system);
        let hello = || async { "hello\n" };
        let admin_only = Rc::new(
            system.block_on(init_service(
                App::new()
                    .configure(gmr.admin())
                    .route("/", web::get().to(hello)),
            )),
        );
        let middleware_only = Rc::new(
            system.block_on(init_service(
                App::new()
                    .route("/", web::get().to(hello))
                    .wrap(gmr.middleware()),
            )),
        );
        let noop = Rc::new(
            system.block_on(init_service(
                App::new()
                    .route("/", web::get().to(hello))
                    .wrap_fn(|request, service| service.call(request)),
            )),
        );
        paired_actix("actix-admin-only", &system, &admin_only, &without);
        paired_actix("actix-middleware-only", &system, &middleware_only, &without);
        paired_actix("actix-noop-middleware", &system, &noop, &without);
        drop(gmr);
    }
}

fn configured() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = configured();
    targets = bench_axum, bench_tower, bench_actix
}

fn main() {
    if std::env::var_os("GMR_BENCH_PAIRED_ONLY").is_none() {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    paired_all();
}
