//! An actix-web server with gmr.
//!
//! ```text
//! cargo run -p gmr-examples --bin actix-demo -- --listen 127.0.0.1:0 --workers 4
//! ```
//!
//! Routes: `GET /` (hello), `GET /slow?ms=N` (awaits a timer), `GET /block?ms=N` (blocks its
//! worker thread, so the report shows a stuck worker), `GET /await-lock` (awaits a lock a
//! background task holds forever), `GET /await-channel?ms=N` (awaits a oneshot answered after
//! N ms), and the admin endpoint. `--spans` adds gmr's span layer (actix's `LocalSet` tasks are
//! not in tokio's task dumps; spans show where their requests wait). The gmr hook is
//! installed once, before `HttpServer::new`; each of the `--workers N` (default 2) workers
//! registers its runtime through the middleware. `--no-gmr` runs the same server without any
//! gmr middleware, hook or endpoint. actix-web itself shuts down gracefully on Ctrl-C or
//! SIGTERM.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)]

use std::io::Write as _;
use std::process::ExitCode;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use gmr_examples::{
    DemoArgs, demo_await_channel, demo_await_lock, demo_block_handler, demo_slow_handler, parse_ms,
};

/// Seconds actix-web waits for open requests at shutdown.
const SHUTDOWN_TIMEOUT_S: u64 = 10;

async fn hello() -> &'static str {
    "hello from actix-demo\n"
}

async fn slow(request: HttpRequest) -> HttpResponse {
    match parse_ms(Some(request.query_string())) {
        Ok(duration) => HttpResponse::Ok().body(demo_slow_handler(duration).await),
        Err(message) => HttpResponse::BadRequest().body(message),
    }
}

async fn block(request: HttpRequest) -> HttpResponse {
    match parse_ms(Some(request.query_string())) {
        Ok(duration) => HttpResponse::Ok().body(demo_block_handler(duration)),
        Err(message) => HttpResponse::BadRequest().body(message),
    }
}

async fn await_lock() -> HttpResponse {
    HttpResponse::Ok().body(demo_await_lock().await)
}

async fn await_channel(request: HttpRequest) -> HttpResponse {
    match parse_ms(Some(request.query_string())) {
        Ok(duration) => HttpResponse::Ok().body(demo_await_channel(duration).await),
        Err(message) => HttpResponse::BadRequest().body(message),
    }
}

/// The demo's own routes.
fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/", web::get().to(hello))
        .route("/slow", web::get().to(slow))
        .route("/block", web::get().to(block))
        .route("/await-lock", web::get().to(await_lock))
        .route("/await-channel", web::get().to(await_channel));
}

async fn serve(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let workers = args.workers;
    let (config, generated_token) = gmr_examples::load_config(&args, "actix-demo")?;
    // Once per process, before the server and its workers exist.
    let gmr = if args.no_gmr {
        None
    } else {
        Some(gmr_actix::install(&config, gmr::package!())?)
    };
    gmr_examples::spawn_parked_workers()?;
    gmr_examples::start_lock_holder().await?;

    let listener = std::net::TcpListener::bind(args.listen)?;
    let addr = listener.local_addr()?;
    let server = match gmr.clone() {
        Some(gmr) => HttpServer::new(move || {
            App::new()
                .configure(routes)
                // Records requests in flight and answers the admin endpoint.
                .wrap(gmr.middleware_serving_admin())
        })
        .workers(workers)
        .shutdown_timeout(SHUTDOWN_TIMEOUT_S)
        .listen(listener)?
        .run(),
        None => HttpServer::new(|| App::new().configure(routes))
            .workers(workers)
            .shutdown_timeout(SHUTDOWN_TIMEOUT_S)
            .listen(listener)?
            .run(),
    };
    gmr_examples::print_banner(
        addr,
        gmr.as_ref().map(gmr_actix::GmrActix::guard),
        generated_token.as_deref(),
    );
    let _ = std::io::stdout().flush();

    server.await?;
    tracing::info!("actix-demo stopped");
    // The hook stops with the last clone, after the workers have dropped theirs.
    drop(gmr);
    Ok(())
}

fn main() -> ExitCode {
    let args = match DemoArgs::parse("actix-demo") {
        Ok(args) => args,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "{message}");
            return ExitCode::from(2);
        }
    };
    gmr_examples::init_logging(args.spans);
    match actix_web::rt::System::new().block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "actix-demo: {error}");
            ExitCode::FAILURE
        }
    }
}
