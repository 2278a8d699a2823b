//! The titles of the built-in sections, in report order: part of the report format that
//! operators and tools know (oslo.reports' names). Defined here once; the sections, the views
//! and the tests use these constants.

/// The application's identity; the text view also shows the report's header here.
pub const PACKAGE: &str = "Package";
/// Every OS thread with its stack.
pub const THREADS: &str = "Threads";
/// Async runtimes, tasks and in-flight requests: Rust's green threads.
pub const GREEN_THREADS: &str = "Green Threads";
/// This process, its resources and its children.
pub const PROCESSES: &str = "Processes";
/// The application's configuration, masked.
pub const CONFIGURATION: &str = "Configuration";

/// Every built-in title, in report order.
pub const BUILT_IN: [&str; 5] = [PACKAGE, THREADS, GREEN_THREADS, PROCESSES, CONFIGURATION];
