//! Guru Meditation Reports for [axum] servers.
//!
//! This crate will hold the axum glue: one call at startup that installs the autorun hook from
//! the application's `config::Config` and returns a guard kept across
//! `axum::serve(..).with_graceful_shutdown(..)`, a `router()` serving the admin endpoint for any
//! app state, and the in-flight layer wired to axum's `MatchedPath`.
//!
//! It is not written yet: the report engine lives in the [`gmr`] crate.
//!
//! [axum]: https://docs.rs/axum
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use gmr;
