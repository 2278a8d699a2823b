//! Guru Meditation Reports for [tower] services: the framework-neutral half of the web
//! adapters.
//!
//! * [`InFlightLayer`] records every request while it is in flight (method, path without the
//!   query string, matched route, age, and the OS thread polling it right now), so the report's
//!   `Green Threads` section lists them and a stuck request points at its thread's stack.
//! * [`AdminEndpoint`] serves the report over HTTP behind a bearer token, at most one report
//!   per `admin.min_interval`, made on gmr's reporter thread so the server keeps serving.
//!
//! ```no_run
//! use tower::ServiceBuilder;
//!
//! # fn app() -> impl tower::Service<http::Request<String>, Response = http::Response<String>, Error = std::convert::Infallible, Future = std::future::Ready<Result<http::Response<String>, std::convert::Infallible>>> + Clone { tower::service_fn(|_| std::future::ready(Ok(http::Response::new(String::new())))) }
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = config::Config::builder()
//!     .set_default("gmr.admin.token", "change-me-to-a-long-random-token")?
//!     .build()?;
//! let guard = gmr::Gmr::builder().config(&config).package(gmr::package!()).install()?;
//!
//! let mut stack = ServiceBuilder::new().layer(gmr_tower::InFlightLayer::new());
//! let admin = gmr_tower::AdminEndpoint::from_guard(&guard)?;
//! let service = match &admin {
//!     Some(admin) => stack.layer(admin.route_layer()).service(app()),
//!     # None => unreachable!(),
//! };
//! // … serve `service` with hyper; keep `guard` alive until shutdown.
//! # drop(service); Ok(()) }
//! ```
//!
//! [tower]: https://docs.rs/tower
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod admin;
mod inflight;

pub use gmr;

pub use crate::admin::{
    AdminAnswer, AdminEndpoint, AdminError, AdminRoute, AdminRouteLayer, BoxError,
};
pub use crate::inflight::{
    InFlight, InFlightBody, InFlightLayer, InFlightPolling, InFlightRecord, ResponseFuture,
};
