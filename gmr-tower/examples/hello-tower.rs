//! The smallest hyper + tower server with gmr: copy it as a start.
//!
//! ```text
//! cargo run -p gmr-tower --example hello-tower
//! kill -USR2 <pid>                 # a report on stderr
//! APP__GMR__ADMIN__TOKEN=$(openssl rand -hex 16) cargo run -p gmr-tower --example hello-tower
//! curl -H "Authorization: Bearer $APP__GMR__ADMIN__TOKEN" http://127.0.0.1:3000/admin/gmr
//! ```
#![forbid(unsafe_code)]

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tower::{ServiceBuilder, ServiceExt as _};

async fn hello<B>(_request: http::Request<B>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    Ok(http::Response::new(Full::new(Bytes::from_static(
        b"hello\n",
    ))))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    // The application's configuration, here from APP__SECTION__KEY variables only.
    let config = config::Config::builder()
        .add_source(config::Environment::with_prefix("APP").separator("__"))
        .build()?;
    let gmr = gmr_tower::GmrTower::install(&config, gmr::package!())?;
    let _runtime = gmr::register_tokio_runtime(&tokio::runtime::Handle::current(), "main");

    // The admin endpoint answers its path (if a token is set); the rest goes to `hello`.
    let admin = gmr.admin_endpoint().cloned();
    let app = tower::service_fn(move |request: http::Request<hyper::body::Incoming>| {
        let admin = admin.clone();
        async move {
            match admin {
                Some(admin) if request.uri().path() == admin.path() => admin.oneshot(request).await,
                _ => hello(request).await,
            }
        }
    });
    let service = ServiceBuilder::new()
        .layer(gmr.layer()) // in-flight requests in the report
        .service(app);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!(
        pid = std::process::id(),
        "listening on http://127.0.0.1:3000"
    );
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = accepted?;
                let service = TowerToHyperService::new(service.clone());
                tokio::spawn(async move {
                    let served = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    if let Err(error) = served {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    drop(gmr); // the server has shut down: stop gmr's triggers
    Ok(())
}
