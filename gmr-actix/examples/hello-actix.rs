//! The smallest actix-web server with gmr: copy it as a start.
//!
//! ```text
//! cargo run -p gmr-actix --example hello-actix
//! kill -USR2 <pid>                 # a report on stderr
//! GMR_TOKEN=$(openssl rand -hex 16) cargo run -p gmr-actix --example hello-actix
//! curl -H "Authorization: Bearer $GMR_TOKEN" http://127.0.0.1:3000/admin/gmr
//! ```
#![forbid(unsafe_code)]

use actix_web::{App, HttpServer, web};

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let mut config = config::Config::builder();
    if let Ok(token) = std::env::var("GMR_TOKEN") {
        config = config.set_override("gmr.admin.token", token)?;
    }
    // Once per process, outside the `HttpServer::new` factory.
    let gmr = gmr_actix::install(&config.build()?, gmr::package!())?;

    let factory_gmr = gmr.clone();
    let server = HttpServer::new(move || {
        App::new()
            .configure(factory_gmr.admin()) // GET /admin/gmr, only if a token is configured
            .route("/", web::get().to(|| async { "hello\n" }))
            .wrap(factory_gmr.middleware()) // in-flight requests and each worker's runtime
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
