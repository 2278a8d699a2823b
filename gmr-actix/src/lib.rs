//! Guru Meditation Reports for [actix-web] servers.
//!
//! This crate will hold the actix-web glue: a cloneable `Transform` middleware that records
//! in-flight requests, a `configure`/`scope` helper mounting the admin endpoint, one autorun hook
//! per process however many workers run, and the registration of each worker's runtime.
//!
//! It is not written yet: the report engine lives in the [`gmr`] crate.
//!
//! [actix-web]: https://docs.rs/actix-web
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use gmr;
