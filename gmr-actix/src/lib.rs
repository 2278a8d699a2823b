//! Guru Meditation Reports for [actix-web] servers.
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//!
//! #[actix_web::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = config::Config::builder()
//!         .set_default("gmr.admin.token", "change-me-to-a-long-random-token")?
//!         .build()?;
//!     // Once per process, outside the `HttpServer::new` factory.
//!     let gmr = gmr_actix::install(&config, gmr::package!())?;
//!
//!     let factory_gmr = gmr.clone();
//!     HttpServer::new(move || {
//!         App::new()
//!             .route("/", web::get().to(|| async { "hello" }))
//!             // Records requests in flight; answers GET /admin/gmr when a token is configured.
//!             .wrap(factory_gmr.middleware_serving_admin())
//!     })
//!     .workers(4)
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await?;
//!
//!     // Dropping the last clone of `gmr` stops the triggers.
//!     drop(gmr);
//!     Ok(())
//! }
//! ```
//!
//! # The model
//!
//! actix-web runs one single-threaded tokio runtime per worker thread and calls the
//! `HttpServer::new` factory once on each worker. So the pieces are split by lifetime:
//!
//! * **Once per process**, before the server starts: [`install`] installs gmr's autorun hook
//!   (SIGUSR2, the trigger file, `log_dir`) and returns a [`GmrActix`]. It owns the
//!   [`gmr::GmrGuard`], the in-flight request table and the admin endpoint (when a token is
//!   configured), and is cheap to clone into the factory. However many workers run, there is one
//!   hook and one reporter thread.
//! * **Once per worker**: [`GmrMiddleware`] (from [`GmrActix::middleware`]) registers the
//!   worker's runtime the first time the worker builds the app, so each worker is listed with its
//!   metrics in the report's `Green Threads` section (see [`register_worker_runtime`]).
//! * **Per request**: the middleware records the request (method, path without the query
//!   string, matched route, age) until its response body is finished or dropped, and names the
//!   OS thread polling it, so a request stuck in a blocking call points at that thread's stack in
//!   the `Threads` section.
//!
//! The admin endpoint answers `GET`/`HEAD` at `admin.path` behind the bearer token, from the
//! middleware ([`GmrActix::middleware_serving_admin`]), before the app's routing (so no route
//! of the app shadows it), or from [`GmrActix::admin`]'s resource in an app without it. An app
//! wrapping [`GmrActix::middleware`] and mounting neither has no endpoint. The report is made on gmr's reporter thread and awaited: no actix worker is
//! ever blocked making it, even when every other worker is stuck. The endpoint's behaviour (auth,
//! `405`, formats, `Cache-Control: no-store`) is [`gmr_tower::AdminEndpoint`]'s; this crate only
//! translates it to actix-web types.
//!
//! [actix-web]: https://docs.rs/actix-web
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod admin;
mod middleware;
mod runtime;

use actix_web::web::ServiceConfig;
use gmr_tower::{GmrTower, InFlightOptions};

pub use gmr;
pub use gmr_tower;

pub use crate::admin::admin_resource;
pub use crate::middleware::{GmrFuture, GmrMiddleware, GmrMiddlewareService, RecordedFuture};
pub use crate::runtime::register_worker_runtime;

/// The title suffix of the in-flight table: requests are listed as `in-flight requests (actix)`.
pub const IN_FLIGHT_NAME: &str = "actix";

/// Why gmr could not be set up for an actix-web server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The autorun hook could not be installed (an invalid `[gmr]` value, a trigger file that
    /// cannot be created, a hook already installed with other settings…).
    #[error(transparent)]
    Install(#[from] gmr::InstallError),
}

/// Installs gmr's autorun hook with the `[gmr]` table of `config` (the whole configuration is
/// shown, masked, in the report's `Configuration` section) and returns what the actix-web
/// server needs. Call it once, outside the `HttpServer::new` factory; clone the result into the
/// factory. Requests are listed as `in-flight requests (actix)`.
///
/// # Errors
///
/// [`Error::Install`] naming the `[gmr]` key to fix, or a hook already installed in this process
/// with other settings.
pub fn install(config: &config::Config, package: gmr::PackageInfo) -> Result<GmrActix, Error> {
    install_with(config, package, InFlightOptions::new(IN_FLIGHT_NAME))
}

/// [`install`] with the in-flight table's options, e.g. hidden paths for a service whose paths
/// carry tokens: `InFlightOptions::new("actix").hide_paths()`.
///
/// # Errors
///
/// As [`install`].
pub fn install_with(
    config: &config::Config,
    package: gmr::PackageInfo,
    options: InFlightOptions,
) -> Result<GmrActix, Error> {
    Ok(GmrActix::from_bundle(GmrTower::install_with(
        config, package, options,
    )?))
}

/// gmr for one actix-web server: the [`GmrTower`] bundle (hook, in-flight table, admin
/// endpoint) in actix-web's idiom. Cheap to clone (reference counts); clone it into the
/// `HttpServer::new` factory.
///
/// The hook runs while any clone is alive: keep one until the server has shut down.
#[derive(Clone, Debug)]
#[must_use = "dropping it stops gmr's triggers at once; keep it until the server has shut down"]
pub struct GmrActix {
    core: GmrTower,
}

impl GmrActix {
    /// Wraps a hook installed with [`gmr::Gmr::builder`] (for settings built in code, or extra
    /// sections). The admin endpoint exists when the hook's settings have a token.
    pub fn from_guard(guard: gmr::GmrGuard) -> Self {
        GmrActix::from_bundle(GmrTower::from_guard(
            guard,
            InFlightOptions::new(IN_FLIGHT_NAME),
        ))
    }

    /// Wraps a bundle.
    pub fn from_bundle(core: GmrTower) -> Self {
        GmrActix { core }
    }

    /// The middleware recording in-flight requests and registering each worker's runtime.
    /// Every clone shares one table; use it in every worker (`App::wrap`).
    pub fn middleware(&self) -> GmrMiddleware {
        GmrMiddleware::new(self.core.layer())
    }

    /// [`GmrActix::middleware`], also answering the admin endpoint at `admin.path` when a
    /// token is configured ([`GmrMiddleware::serving_admin`]): the way to mount the endpoint
    /// in an app that wraps the middleware. It answers before the app's routing, so no route
    /// or `scope` of the app can shadow it, and the app's requests pay nothing for it (a
    /// resource from [`GmrActix::admin`] costs each of them about 20 ns). Without a token it
    /// is [`GmrActix::middleware`].
    ///
    /// ```no_run
    /// # fn f(gmr: &gmr_actix::GmrActix) {
    /// let app = actix_web::App::new()
    ///     .route("/", actix_web::web::get().to(|| async { "hello" }))
    ///     .wrap(gmr.middleware_serving_admin());
    /// # drop(app); }
    /// ```
    pub fn middleware_serving_admin(&self) -> GmrMiddleware {
        let middleware = self.middleware();
        match self.core.admin_endpoint() {
            Some(endpoint) => middleware.serving_admin(endpoint.clone()),
            None => middleware,
        }
    }

    /// An `App::configure` function mounting the admin endpoint at `admin.path` as a
    /// resource, for an app without gmr's middleware (an admin-only app on another port); it
    /// mounts nothing when no token is configured (the path then stays `404`, like any unknown
    /// path). An app wrapping the middleware is better served by
    /// [`GmrActix::middleware_serving_admin`].
    ///
    /// actix tries an app's resources in the order they were registered, and checking one
    /// that does not match costs a request about 20 ns (actix sets up its match state for
    /// each). Mount it before a catch-all route (`/{tail:.*}`, `actix_files::Files` at `/`),
    /// which would otherwise answer the admin path itself.
    ///
    /// ```no_run
    /// # fn f(gmr: &gmr_actix::GmrActix) {
    /// let app = actix_web::App::new().configure(gmr.admin());
    /// # drop(app); }
    /// ```
    pub fn admin(&self) -> impl FnOnce(&mut ServiceConfig) + 'static {
        let endpoint = self.core.admin_endpoint().cloned();
        move |config: &mut ServiceConfig| {
            if let Some(endpoint) = endpoint {
                config.service(admin_resource(&endpoint));
            }
        }
    }

    gmr_tower::__bundle_accessors!(core);
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use actix_web::test::{TestRequest, call_service, init_service};
    use actix_web::{App, web};

    // This test binary's only hook: no token, so no endpoint.
    #[actix_web::test]
    async fn without_a_token_there_is_no_endpoint() {
        let config = config::Config::builder()
            .set_default("gmr.signal", "none")
            .and_then(|b| b.build())
            .expect("configuration");
        let gmr = crate::install(&config, gmr::package!()).expect("install");
        assert!(gmr.admin_endpoint().is_none());
        let app = init_service(
            App::new()
                .configure(gmr.admin())
                .route("/", web::get().to(|| async { "hello" }))
                .wrap(gmr.middleware()),
        )
        .await;
        for (path, status) in [("/admin/gmr", StatusCode::NOT_FOUND), ("/", StatusCode::OK)] {
            let request = TestRequest::get()
                .uri(path)
                .insert_header(("Authorization", "Bearer anything"))
                .to_request();
            assert_eq!(call_service(&app, request).await.status(), status, "{path}");
        }
        assert_eq!(gmr.in_flight().in_flight(), 0);
    }
}
