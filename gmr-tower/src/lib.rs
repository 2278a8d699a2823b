//! Guru Meditation Reports for [tower] services.
//!
//! This crate will hold the framework-neutral half of the web adapters:
//!
//! * `InFlightLayer`, a tower layer that records every request while it is in flight (method,
//!   path without the query string, matched route, age, and the OS thread polling it) so the
//!   report's `Green Threads` section can list them;
//! * the admin endpoint service, which serves the report over HTTP behind a bearer token compared
//!   in constant time, with `admin.min_interval` rate control.
//!
//! It is not written yet: the report engine lives in the [`gmr`] crate.
//!
//! [tower]: https://docs.rs/tower
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use gmr;
