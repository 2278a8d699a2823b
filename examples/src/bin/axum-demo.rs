//! An axum server with gmr (DESIGN §3.1): the README's demo.
//!
//! ```text
//! cargo run -p gmr-examples --bin axum-demo
//! ```
//!
//! Routes: `GET /`, `GET /slow?ms=N` (awaits a timer), `GET /block?ms=N` (blocks its worker
//! thread: the report shows a stuck worker), and the admin endpoint. `--no-gmr` runs the same
//! server without gmr. Ctrl-C or SIGTERM shuts it down gracefully.

use std::process::ExitCode;

use gmr_examples::DemoArgs;

async fn serve(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (config, generated_token) = gmr_examples::load_config(&args, "axum-demo")?;
    let gmr = if args.no_gmr {
        None
    } else {
        Some(gmr_axum::install(&config, gmr::package!())?)
    };
    gmr_examples::serve_axum_demo(
        &args,
        gmr,
        generated_token.as_deref(),
        "hello from axum-demo",
        &[],
    )
    .await
}

fn main() -> ExitCode {
    gmr_examples::run_demo("axum-demo", serve)
}
