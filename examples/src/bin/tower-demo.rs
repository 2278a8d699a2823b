//! A hyper 1 + tower server with gmr and no web framework.
//!
//! ```text
//! cargo run -p gmr-examples --bin tower-demo -- --listen 127.0.0.1:0
//! ```
//!
//! Routes: `GET /` (hello), `GET /slow?ms=N` (awaits a timer), `GET /block?ms=N` (blocks its
//! worker thread, so the report shows a stuck worker), `GET /await-lock` (awaits a lock a
//! background task holds forever), `GET /await-channel?ms=N` (awaits a oneshot answered after
//! N ms), and the admin endpoint. `--spans` adds gmr's span layer; `--no-gmr` runs
//! the same server without any gmr layer, hook or endpoint: the baseline for overhead
//! measurements. Ctrl-C or SIGTERM shuts it down gracefully.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::process::ExitCode;

use bytes::Bytes;
use gmr_examples::{
    DemoArgs, demo_await_channel, demo_await_lock, demo_block_handler, demo_slow_handler, parse_ms,
};
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

/// The app's body, with gmr and without: boxed once, where the whole app's answers leave it
/// (the routes answer with `Full`, gmr's layers wrap that, and then it is boxed).
type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, gmr_tower::BoxError>;
type App = BoxCloneSyncService<Request<hyper::body::Incoming>, Response<Body>, Infallible>;

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response
}

/// The demo's own routes.
async fn route(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
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
        "/await-lock" => text(StatusCode::OK, demo_await_lock().await),
        "/await-channel" => match parse_ms(query) {
            Ok(duration) => text(StatusCode::OK, demo_await_channel(duration).await),
            Err(message) => text(StatusCode::BAD_REQUEST, message),
        },
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    })
}

/// The service: the demo routes, wrapped by gmr's layers when gmr is on.
fn app(gmr: Option<&gmr_tower::GmrTower>) -> App {
    use http_body_util::BodyExt as _;
    use tower::{Layer as _, ServiceExt as _};
    let routes = tower::service_fn(route);
    let Some(gmr) = gmr else {
        return BoxCloneSyncService::new(routes.map_response(|response| {
            response.map(|body| body.map_err(gmr_tower::BoxError::from).boxed_unsync())
        }));
    };
    match gmr.admin_endpoint() {
        // The admin endpoint answers its path; every other request goes to the routes.
        Some(admin) => BoxCloneSyncService::new(
            ServiceBuilder::new()
                .layer(gmr.layer()) // in-flight requests and their threads
                .layer(admin.route_layer())
                .service(routes)
                .map_response(|response| {
                    response.map(|body| body.map_err(gmr_tower::BoxError::from).boxed_unsync())
                }),
        ),
        None => BoxCloneSyncService::new(gmr.layer().layer(routes).map_response(|response| {
            response.map(|body| body.map_err(gmr_tower::BoxError::from).boxed_unsync())
        })),
    }
}

async fn serve(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (config, generated_token) = gmr_examples::load_config(&args, "tower-demo")?;
    // SIGUSR2, the trigger file, log_dir, the in-flight table and (with a token) the endpoint.
    let gmr = if args.no_gmr {
        None
    } else {
        let options = gmr_tower::InFlightOptions::new("tower-demo");
        Some(gmr_tower::GmrTower::install_with(
            &config,
            gmr::package!(),
            options,
        )?)
    };
    // List this runtime (its metrics, stuck workers) in Green Threads.
    let _runtime = gmr
        .as_ref()
        .map(|_| gmr::register_tokio_runtime(&tokio::runtime::Handle::current(), "tower-demo"));
    gmr_examples::spawn_parked_workers()?;
    let service = app(gmr.as_ref());

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let guard = gmr.as_ref().map(gmr_tower::GmrTower::guard);
    gmr_examples::announce(&listener, guard, generated_token.as_deref(), &[])?;

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
    let grace = gmr_examples::SHUTDOWN_GRACE;
    tracing::info!(
        "shutting down: waiting up to {} s for open connections",
        grace.as_secs()
    );
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {
            tracing::warn!("connections still open after {} s; exiting", grace.as_secs());
        }
    }
    drop(gmr); // the server has shut down: stop gmr's triggers
    Ok(())
}

fn main() -> ExitCode {
    gmr_examples::run_demo("tower-demo", serve)
}
