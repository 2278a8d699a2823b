//! The smallest axum server with gmr: copy it as a start.
//!
//! ```text
//! cargo run -p gmr-axum --example hello-axum
//! kill -USR2 <pid>                 # a report on stderr
//! APP__GMR__ADMIN__TOKEN=$(openssl rand -hex 16) cargo run -p gmr-axum --example hello-axum
//! curl -H "Authorization: Bearer $APP__GMR__ADMIN__TOKEN" http://127.0.0.1:3000/admin/gmr
//! ```
#![forbid(unsafe_code)]

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    // The application's configuration, here from APP__SECTION__KEY variables only.
    let config = config::Config::builder()
        .add_source(config::Environment::with_prefix("APP").separator("__"))
        .build()?;
    let gmr = gmr_axum::install(&config, gmr::package!())?;

    let app = Router::new()
        .route("/", get(|| async { "hello\n" }))
        .merge(gmr.router()); // GET /admin/gmr, only if a token is configured
    let app = gmr.wrap(app); // in-flight requests in the report

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!(
        pid = std::process::id(),
        "listening on http://127.0.0.1:3000"
    );
    axum::serve(listener, app.into_make_service())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    drop(gmr); // the server has shut down: stop gmr's triggers
    Ok(())
}
