//! The smallest actix-web server with gmr: copy it as a start.
//!
//! ```text
//! cargo run -p gmr-actix --example hello-actix
//! kill -USR2 <pid>                 # a report on stderr
//! APP__GMR__ADMIN__TOKEN=$(openssl rand -hex 16) cargo run -p gmr-actix --example hello-actix
//! curl -H "Authorization: Bearer $APP__GMR__ADMIN__TOKEN" http://127.0.0.1:3000/admin/gmr
//! ```
#![forbid(unsafe_code)]

use actix_web::{App, HttpServer, web};

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    // The application's configuration, here from APP__SECTION__KEY variables only.
    let config = config::Config::builder()
        .add_source(config::Environment::with_prefix("APP").separator("__"))
        .build()?;
    // Once per process, outside the `HttpServer::new` factory.
    let gmr = gmr_actix::install(&config, gmr::package!())?;

    let factory_gmr = gmr.clone();
    let server = HttpServer::new(move || {
        App::new()
            .route("/", web::get().to(|| async { "hello\n" }))
            // In-flight requests, each worker's runtime, GET /admin/gmr (with a token).
            .wrap(factory_gmr.middleware_serving_admin())
    })
    .bind(("127.0.0.1", 3000))?
    .run();
    tracing::info!(
        pid = std::process::id(),
        "listening on http://127.0.0.1:3000"
    );
    server.await?;
    drop(gmr); // the server has shut down: stop gmr's triggers
    Ok(())
}
