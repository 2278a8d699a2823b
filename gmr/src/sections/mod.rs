//! The built-in sections, in report order: `Package`, `Threads`, `Green Threads`, `Processes`,
//! `Configuration`. Each module gathers its data into a small model and renders it to both
//! views from that model.

pub(crate) mod configuration;
pub(crate) mod green_threads;
pub(crate) mod package;
pub(crate) mod processes;
pub(crate) mod threads;

/// Titles of the built-in sections, in report order.
pub(crate) const BUILT_IN_TITLES: [&str; 5] = [
    "Package",
    "Threads",
    "Green Threads",
    "Processes",
    "Configuration",
];
