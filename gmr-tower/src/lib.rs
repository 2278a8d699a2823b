//! Guru Meditation Reports for [tower] services: the framework-neutral half of the web
//! adapters.
//!
//! * [`InFlightLayer`] records every request while it is in flight (method, path without the
//!   query string, matched route, age, and the OS thread polling it right now), so the report's
//!   `Green Threads` section lists them and a stuck request points at its thread's stack.
//! * [`AdminEndpoint`] serves the report over HTTP behind a bearer token, at most one report
//!   per `admin.min_interval`, made on gmr's reporter thread so the server keeps serving.
//! * [`GmrTower`] holds both with the installed hook: what `gmr-axum` and `gmr-actix` wrap.
//!
//! ```no_run
//! use std::convert::Infallible;
//!
//! use bytes::Bytes;
//! use http_body_util::Full;
//! use tower::{ServiceBuilder, ServiceExt as _};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = config::Config::builder()
//!     .set_default("gmr.admin.token", "change-me-to-a-long-random-token")?
//!     .build()?;
//! // SIGUSR2, the trigger file, log_dir: keep the guard until the server has shut down.
//! let guard = gmr::Gmr::builder().config(&config).package(gmr::package!()).install()?;
//! // `None` when no token is configured: no token, no endpoint.
//! let admin = gmr_tower::AdminEndpoint::from_guard(&guard);
//!
//! let app = tower::service_fn(move |request: http::Request<String>| {
//!     let admin = admin.clone();
//!     async move {
//!         match admin {
//!             // The endpoint answers every request it is given: send it only its path.
//!             Some(admin) if request.uri().path() == admin.path() => admin.oneshot(request).await,
//!             _ => Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from("hello\n")))),
//!         }
//!     }
//! });
//! let service = ServiceBuilder::new()
//!     .layer(gmr_tower::InFlightLayer::new()) // in-flight requests and their threads
//!     .service(app);
//! // … serve `service` with hyper (`hyper_util::service::TowerToHyperService`).
//! # drop(service); Ok(()) }
//! ```
//!
//! [`AdminEndpoint::route_layer`] is the other way to mount the endpoint: a layer that sends
//! its exact path to it and every other request to the wrapped service (responses then have a
//! boxed body). For an HTTP library not built on `http` 1, record requests with
//! [`InFlightLayer::record`] and answer the admin path with [`AdminEndpoint::answer`].
//!
//! [tower]: https://docs.rs/tower
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod admin;
mod bundle;
mod inflight;

pub use gmr;

pub use crate::admin::{
    AdminAnswer, AdminEndpoint, AdminError, AdminFuture, AdminRoute, AdminRouteBody,
    AdminRouteFuture, AdminRouteLayer, BoxError, REPORT_TIMEOUT,
};
pub use crate::bundle::GmrTower;
pub use crate::inflight::{
    InFlight, InFlightBody, InFlightLayer, InFlightOptions, InFlightPolling, InFlightRecord,
    ResponseFuture, RouteResolver,
};
