//! What gmr adds to one request, per adapter: the demo's hello route through a whole axum
//! `Router`, an actix-web `App` and a tower service, each with everything gmr adds (the hook
//! installed, the in-flight layer or middleware, the admin route mounted) and without.
//!
//! ```text
//! cargo bench -p gmr-examples --bench request_path
//! ```
//!
//! Each measurement runs its requests in a loop inside one runtime entry (`iter_custom`), so
//! the runtime's own cost per `block_on` is not counted; the request is built and the
//! response body read to the end inside the loop, the same in both arms.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
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

fn bench_axum(c: &mut Criterion) {
    let rt = runtime();
    let routes: axum::Router = gmr_examples::axum_routes::routes("hello");
    let gmr = rt.block_on(async { gmr_axum::install(&config(), gmr::package!()) });
    let gmr = gmr.expect("install");
    let with: axum::Router = gmr_examples::axum_routes::routes("hello")
        .merge(gmr.router())
        .layer(gmr.layer());
    let mut group = c.benchmark_group("request_path/axum");
    for (name, app) in [("without_gmr", routes), ("with_gmr", with)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut app = app.clone();
                    let start = Instant::now();
                    for _ in 0..iters {
                        let request = Request::get("/")
                            .body(axum::body::Body::empty())
                            .expect("request");
                        let ready = ServiceExt::<Request<axum::body::Body>>::ready(&mut app)
                            .await
                            .expect("ready");
                        let response = ready.call(request).await.expect("response");
                        let body = response.into_body().collect().await.expect("body");
                        std::hint::black_box(body);
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
    assert_eq!(gmr.in_flight().in_flight(), 0);
}

type TowerBody = http_body_util::combinators::UnsyncBoxBody<Bytes, gmr_tower::BoxError>;

/// The tower demo's hello route.
async fn tower_hello(_request: Request<Full<Bytes>>) -> Result<Response<TowerBody>, Infallible> {
    Ok(Response::new(
        Full::new(Bytes::from_static(b"hello\n"))
            .map_err(|never| match never {})
            .boxed_unsync(),
    ))
}

fn bench_tower(c: &mut Criterion) {
    use tower::util::BoxCloneSyncService;
    type App = BoxCloneSyncService<Request<Full<Bytes>>, Response<TowerBody>, Infallible>;
    let rt = runtime();
    let gmr = gmr_tower::GmrTower::install(&config(), gmr::package!()).expect("install");
    let admin = gmr.admin_endpoint().expect("a token: an endpoint").clone();
    let without: App = BoxCloneSyncService::new(tower::service_fn(tower_hello));
    // As `tower-demo` builds it.
    let with: App = BoxCloneSyncService::new(
        tower::ServiceBuilder::new()
            .layer(gmr.layer())
            .layer(admin.route_layer())
            .service(tower::service_fn(tower_hello))
            .map_response(|response| response.map(|body| body.boxed_unsync())),
    );
    let mut group = c.benchmark_group("request_path/tower");
    for (name, app) in [("without_gmr", without), ("with_gmr", with)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut app = app.clone();
                    let start = Instant::now();
                    for _ in 0..iters {
                        let request = Request::get("/")
                            .body(Full::new(Bytes::new()))
                            .expect("request");
                        let ready = app.ready().await.expect("ready");
                        let response = ready.call(request).await.expect("response");
                        let body = response.into_body().collect().await.expect("body");
                        std::hint::black_box(body);
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
    assert_eq!(gmr.in_flight().in_flight(), 0);
}

fn bench_actix(c: &mut Criterion) {
    use actix_web::test::{TestRequest, call_service, init_service, read_body};
    use actix_web::{App, web};
    let system = actix_web::rt::System::new();
    let gmr = gmr_actix::install(&config(), gmr::package!()).expect("install");
    let mut group = c.benchmark_group("request_path/actix");
    let hello = || async { "hello\n" };
    let without = system.block_on(init_service(App::new().route("/", web::get().to(hello))));
    let with = system.block_on(init_service(
        App::new()
            .configure(gmr.admin())
            .route("/", web::get().to(hello))
            .wrap(gmr.middleware()),
    ));
    group.bench_function("without_gmr", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let response =
                        call_service(&without, TestRequest::get().uri("/").to_request()).await;
                    std::hint::black_box(read_body(response).await);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("with_gmr", |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let response =
                        call_service(&with, TestRequest::get().uri("/").to_request()).await;
                    std::hint::black_box(read_body(response).await);
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    assert_eq!(gmr.in_flight().in_flight(), 0);
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
criterion_main!(benches);
