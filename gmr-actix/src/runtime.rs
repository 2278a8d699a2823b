//! Each actix worker's runtime in the report's `Green Threads` section.
//!
//! actix-web runs every worker on a thread of its own with a current-thread tokio runtime, and
//! builds the app (so the middleware) on that thread, inside that runtime. The registration is
//! kept in a thread-local slot: at most one per thread however many apps or middleware
//! instances the worker builds, and it ends (the runtime leaves the report) when the worker
//! thread exits at shutdown.

use std::cell::RefCell;

use gmr::TokioRuntimeGuard;

thread_local! {
    static WORKER_RUNTIME: RefCell<Option<TokioRuntimeGuard>> = const { RefCell::new(None) };
}

/// Lists the calling thread's tokio runtime in the `Green Threads` section as
/// `actix-web worker (<thread name>)`, until the thread exits, and records the thread's full
/// name for the `Threads` section ([`gmr::register_current_thread`]). Returns whether it registered
/// now: `false` when this thread already did, or when it runs no tokio runtime.
///
/// [`crate::GmrMiddleware`] calls it on each worker; call it yourself (from the
/// `HttpServer::new` factory) when the middleware is built
/// [`without_runtime_registration`](crate::GmrMiddleware::without_runtime_registration).
pub fn register_worker_runtime() -> bool {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        tracing::debug!("gmr-actix: no tokio runtime on this thread; nothing to register");
        return false;
    };
    WORKER_RUNTIME
        .try_with(|slot| {
            let mut slot = slot.borrow_mut();
            if slot.is_some() {
                return false;
            }
            // The kernel keeps 15 bytes of a thread name; the report shows this one whole.
            gmr::register_current_thread();
            let thread = std::thread::current();
            let name = format!(
                "actix-web worker ({})",
                thread.name().unwrap_or("unnamed thread")
            );
            tracing::debug!(runtime = %name, "gmr-actix: worker runtime registered");
            *slot = Some(gmr::register_tokio_runtime(&handle, name));
            true
        })
        .unwrap_or(false)
}
