//! The smallest axum server with gmr: copy it as a start.
//!
//! ```text
//! cargo run -p gmr-axum --example hello-axum
//! kill -USR2 <pid>                 # a report on stderr
//! GMR_TOKEN=$(openssl rand -hex 16) cargo run -p gmr-axum --example hello-axum
//! curl -H "Authorization: Bearer $GMR_TOKEN" http://127.0.0.1:3000/admin/gmr
//! ```
#![forbid(unsafe_code)]

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    // `[gmr]` settings from the environment here (GMR_TOKEN → gmr.admin.token); an
    // application usually hands gmr its whole configuration.
    let mut config = config::Config::builder();
    if let Ok(token) = std::env::var("GMR_TOKEN") {
        config = config.set_override("gmr.admin.token", token)?;
    }
    let gmr = gmr_axum::install(&config.build()?, gmr::package!())?;

    let app = Router::new()
        .route("/", get(|| async { "hello\n" }))
        .merge(gmr.router()) // GET /admin/gmr, only if a token is configured
        .layer(gmr.layer()); // in-flight requests in the report

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!(
        pid = std::process::id(),
        "listening on http://127.0.0.1:3000"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    drop(gmr); // the server has shut down: stop gmr's triggers
    Ok(())
}
