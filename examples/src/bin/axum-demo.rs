//! An axum server with gmr: the README's demo.
//!
//! ```text
//! cargo run -p gmr-examples --bin axum-demo
//! ```
//!
//! Routes: `GET /`, `GET /slow?ms=N` (awaits a timer), `GET /block?ms=N` (blocks its worker
//! thread: the report shows a stuck worker), `GET /await-lock` (awaits a lock a background
//! task holds forever: the async deadlock), `GET /await-channel?ms=N` (awaits a oneshot
//! answered after N ms), `GET /spin?ms=N` (spins a thread of the blocking pool: a busy thread),
//! and the admin endpoint. `--spans` adds gmr's span layer; `--no-gmr`
//! runs the same server without gmr. Ctrl-C or SIGTERM shuts it down gracefully.
//!
//! The lines a user writes are in [`serve`]: install gmr, merge its admin router, wrap the
//! app in its in-flight layer, and drop gmr once the server has shut down.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use gmr_examples::DemoArgs;
// The app with gmr (`Left`) or without (`--no-gmr`, `Right`): one server for both.
use tower::util::Either;

async fn serve(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (config, generated_token) = gmr_examples::load_config(&args, "axum-demo")?;
    gmr_examples::spawn_parked_workers()?;
    gmr_examples::start_lock_holder().await?;
    let routes = gmr_examples::axum_routes::routes("hello from axum-demo");
    let (app, gmr) = if args.no_gmr {
        (Either::Right(routes), None)
    } else {
        // SIGUSR2, the trigger file, log_dir; GET /admin/gmr when a token is configured.
        let gmr = gmr_axum::install(&config, gmr::package!())?;
        let app = routes.merge(gmr.router()); // the admin endpoint
        let app = gmr.wrap(app); // in-flight requests, with their route and thread
        (Either::Left(app), Some(gmr))
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let guard = gmr.as_ref().map(gmr_axum::GmrAxum::guard);
    gmr_examples::announce(&listener, guard, generated_token.as_deref(), &[])?;
    // Graceful on Ctrl-C or SIGTERM, for at most SHUTDOWN_GRACE (`/await-lock` never ends).
    let shutdown = gmr_examples::Shutdown::new();
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.graceful());
    tokio::select! {
        served = server.into_future() => served?,
        () = shutdown.deadline() => {}
    }
    drop(gmr); // the server has shut down: stop gmr's triggers
    Ok(())
}

fn main() -> ExitCode {
    gmr_examples::run_demo("axum-demo", serve)
}
