//! An axum server with gmr (DESIGN §3.1): the README's demo.
//!
//! ```text
//! cargo run -p gmr-examples --bin axum-demo
//! ```
//!
//! Routes: `GET /`, `GET /slow?ms=N` (awaits a timer), `GET /block?ms=N` (blocks its worker
//! thread: the report shows a stuck worker), and the admin endpoint. `--no-gmr` runs the same
//! server without gmr. Ctrl-C or SIGTERM shuts it down gracefully.

use std::io::Write as _;
use std::process::ExitCode;

use gmr_examples::{DemoArgs, axum_routes, print_banner, shutdown_signal, spawn_parked_workers};

async fn serve(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (config, generated_token) = gmr_examples::load_config(&args, "axum-demo")?;
    let gmr = if args.no_gmr {
        None
    } else {
        Some(gmr_axum::install(&config, gmr::package!())?)
    };
    spawn_parked_workers()?;

    let mut app = axum_routes::routes::<()>("hello from axum-demo");
    if let Some(gmr) = &gmr {
        app = app.merge(gmr.router()).layer(gmr.layer());
    }

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    print_banner(
        listener.local_addr()?,
        gmr.as_ref().map(gmr_axum::GmrAxum::guard),
        generated_token.as_deref(),
    );
    let _ = std::io::stdout().flush();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // The server has shut down: stop gmr's triggers.
    drop(gmr);
    Ok(())
}

fn main() -> ExitCode {
    gmr_examples::run_demo("axum-demo", serve)
}
