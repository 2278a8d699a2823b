//! A hyper 1 + tower server with gmr and no web framework (DESIGN §3.1).
//!
//! ```text
//! cargo run -p gmr-examples --bin tower-demo -- --listen 127.0.0.1:0
//! ```
//!
//! Routes: `GET /` (hello), `GET /slow?ms=N` (awaits a timer), `GET /block?ms=N` (blocks its
//! worker thread, so the report shows a stuck worker), and the admin endpoint. `--no-gmr` runs
//! the same server without any gmr layer, hook or endpoint: the baseline for overhead
//! measurements. Ctrl-C or SIGTERM shuts it down gracefully.
#![allow(clippy::print_stdout)]

use std::convert::Infallible;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use gmr_examples::{DemoArgs, demo_block_handler, demo_slow_handler, parse_ms};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, gmr_tower::BoxError>;
type App = BoxCloneSyncService<Request<hyper::body::Incoming>, Response<Body>, Infallible>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    use http_body_util::BodyExt as _;
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}

/// The demo's own routes.
async fn route(request: Request<hyper::body::Incoming>) -> Result<Response<Body>, Infallible> {
    if request.method() != Method::GET {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n"));
    }
    let query = request.uri().query();
    Ok(match request.uri().path() {
        "/" => text(StatusCode::OK, "hello from tower-demo\n"),
        "/slow" => match parse_ms(query) {
            Ok(duration) => text(StatusCode::OK, demo_slow_handler(duration).await),
            Err(message) => text(StatusCode::BAD_REQUEST, message),
        },
        "/block" => match parse_ms(query) {
            Ok(duration) => text(StatusCode::OK, demo_block_handler(duration)),
            Err(message) => text(StatusCode::BAD_REQUEST, message),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    })
}

fn app(gmr: Option<(&gmr_tower::InFlightLayer, Option<&gmr_tower::AdminEndpoint>)>) -> App {
    use http_body_util::BodyExt as _;
    use tower::{Layer as _, ServiceExt as _};
    let routes = tower::service_fn(route);
    match gmr {
        None => BoxCloneSyncService::new(routes),
        Some((in_flight, None)) => BoxCloneSyncService::new(
            in_flight
                .layer(routes)
                .map_response(|response| response.map(|body| body.boxed_unsync())),
        ),
        Some((in_flight, Some(admin))) => BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(in_flight.clone())
                .layer(admin.route_layer())
                .service(routes)
                .map_response(|response| response.map(|body| body.boxed_unsync())),
        ),
    }
}

async fn serve(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (config, generated_token) = gmr_examples::load_config(&args, "tower-demo")?;
    let guard = if args.no_gmr {
        None
    } else {
        Some(
            gmr::Gmr::builder()
                .config(&config)
                .package(gmr::package!())
                .install()?,
        )
    };
    // List this runtime (its metrics, stuck workers) in Green Threads.
    let _runtime = guard
        .as_ref()
        .map(|_| gmr::register_tokio_runtime(&tokio::runtime::Handle::current(), "tower-demo"));
    gmr_examples::spawn_parked_workers()?;
    let in_flight = gmr_tower::InFlightLayer::named("tower-demo");
    let admin = match &guard {
        Some(guard) => gmr_tower::AdminEndpoint::from_guard(guard),
        None => None,
    };
    let service = app(guard.as_ref().map(|_| (&in_flight, admin.as_ref())));

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    gmr_examples::print_banner(addr, guard.as_ref(), generated_token.as_deref());
    let _ = std::io::stdout().flush();

    let graceful = GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    let shutdown = gmr_examples::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        continue;
                    }
                };
                let connection = builder
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service.clone()))
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down: waiting up to 10 s for open connections");
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("connections still open after 10 s; exiting");
        }
    }
    drop(guard);
    Ok(())
}

fn main() -> ExitCode {
    gmr_examples::run_demo("tower-demo", serve)
}
