//! Guru Meditation Reports for [axum] servers.
//!
//! Three lines at startup: install the hook (SIGUSR2, the trigger file, `log_dir`) from the
//! application's `config::Config`, merge the admin router, wrap the app in the in-flight
//! layer. Keep the returned [`GmrAxum`] until the server has shut down; dropping it stops the
//! triggers.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = config::Config::builder()
//!         .add_source(config::File::with_name("app.toml").required(false))
//!         .build()?;
//!     let gmr = gmr_axum::install(&config, gmr::package!())?;
//!
//!     let app = Router::new()
//!         .route("/", get(|| async { "hello" }))
//!         .merge(gmr.router()); // GET /admin/gmr, only if a token is configured
//!     let app = gmr.wrap(app);  // in-flight requests, with their matched route
//!
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     axum::serve(listener, app.into_make_service())
//!         .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
//!         .await?;
//!     drop(gmr); // the server has shut down: stop the triggers
//!     Ok(())
//! }
//! ```
//!
//! What it wires:
//!
//! * [`install`] validates `[gmr]`, starts gmr's reporter thread and triggers, and lists the
//!   current tokio runtime (with its metrics, stuck workers flagged) in `Green Threads`.
//! * [`GmrAxum::wrap`] records every request in flight, with its route and the OS thread
//!   polling it, for the `Green Threads` section: once around the whole router, which costs a
//!   request about half of what [`GmrAxum::layer`] (the same layer on every route) does.
//! * [`GmrAxum::router`] serves the report at `admin.path` for any app state `S`; without a
//!   configured token it is an empty router (no token, no endpoint). Unknown paths stay 404.
//!
//! [axum]: https://docs.rs/axum
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod wrap;

use axum::Router;
use gmr::{GmrGuard, PackageInfo, TokioRuntimeGuard};
use gmr_tower::{GmrTower, InFlightLayer, InFlightOptions};

pub use gmr;
pub use gmr_tower;

pub use crate::wrap::{GmrRouter, GmrRouterFuture};

/// Why gmr could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The hook could not be installed (an invalid `[gmr]` value, an unusable trigger file, …).
    #[error(transparent)]
    Install(#[from] gmr::InstallError),
}

/// gmr installed in an axum server: the [`GmrTower`] bundle (hook, in-flight layer, admin
/// endpoint) plus the server's tokio runtime listed in `Green Threads`. Cheap to clone; the
/// triggers stop when the last clone (and every other [`GmrGuard`] of the process) is dropped.
#[derive(Clone, Debug)]
#[must_use = "dropping it stops gmr's triggers at once; keep it until the server has shut down"]
pub struct GmrAxum {
    core: GmrTower,
    _runtime: Option<std::sync::Arc<TokioRuntimeGuard>>,
    /// The router copies of the apps [`GmrAxum::wrap`] wrapped, kept while the server runs
    /// (the in-flight table refers to them weakly: dropping the last clone of this bundle
    /// releases them and the apps' state).
    wrapped: std::sync::Arc<std::sync::Mutex<Vec<std::sync::Arc<wrap::RouterRoutes>>>>,
}

/// Installs gmr from the application's configuration (its `[gmr]` table; every key is shown,
/// masked, in the `Configuration` section). Call it once at startup, inside the runtime that
/// serves the app so that runtime is listed in `Green Threads`. Requests are listed as
/// `in-flight requests (axum)`.
///
/// # Errors
///
/// [`Error::Install`] naming the invalid key, the unusable trigger file, or a hook already
/// installed with other settings.
pub fn install(config: &config::Config, package: PackageInfo) -> Result<GmrAxum, Error> {
    install_with(config, package, InFlightOptions::new("axum"))
}

/// [`install`] with the in-flight table's options, e.g. hidden paths for a service whose paths
/// carry tokens: `InFlightOptions::new("axum").hide_paths()`.
///
/// # Errors
///
/// As [`install`].
pub fn install_with(
    config: &config::Config,
    package: PackageInfo,
    options: InFlightOptions,
) -> Result<GmrAxum, Error> {
    Ok(GmrAxum::from_bundle(GmrTower::install_with(
        config, package, options,
    )?))
}

impl GmrAxum {
    /// Wraps an already installed hook; requests are listed as `in-flight requests (axum)`.
    pub fn from_guard(guard: GmrGuard) -> Self {
        GmrAxum::from_bundle(GmrTower::from_guard(guard, InFlightOptions::new("axum")))
    }

    /// Wraps a bundle, listing the current tokio runtime (if any) in `Green Threads`.
    pub fn from_bundle(core: GmrTower) -> Self {
        let runtime = tokio::runtime::Handle::try_current()
            .ok()
            .map(|handle| std::sync::Arc::new(gmr::register_tokio_runtime(&handle, "axum")));
        if runtime.is_none() {
            tracing::debug!("gmr-axum installed outside a tokio runtime: no runtime is listed");
        }
        GmrAxum {
            core,
            _runtime: runtime,
            wrapped: std::sync::Arc::default(),
        }
    }

    /// `app` with every request recorded in flight, for the `Green Threads` section: the
    /// in-flight layer once around the whole router. Call it on the finished app (routes,
    /// admin router merged, state given, layers added); serve the result with
    /// [`GmrRouter::into_make_service`].
    ///
    /// Requests are listed with the route they matched: the layer runs before axum matches
    /// them, so the report asks a copy of the router which route each request's method and
    /// path match, without running any handler, fallback or middleware of the app. With
    /// hidden paths ([`install_with`]), that is asked once per request instead, when it is
    /// recorded (the path is not kept to ask later).
    ///
    /// This [`GmrAxum`] keeps the copy of the router (and so the app's state) until its last
    /// clone is dropped, which is once the server has shut down: wrap once per server, at
    /// startup.
    ///
    /// ```no_run
    /// # async fn run(config: config::Config) -> Result<(), Box<dyn std::error::Error>> {
    /// let gmr = gmr_axum::install(&config, gmr::package!())?;
    /// let app = axum::Router::new()
    ///     .route("/", axum::routing::get(|| async { "hello" }))
    ///     .merge(gmr.router());
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
    /// axum::serve(listener, gmr.wrap(app).into_make_service()).await?;
    /// # Ok(()) }
    /// ```
    pub fn wrap(&self, app: Router) -> GmrRouter {
        let (router, routes) = GmrRouter::new(&self.core.layer(), app);
        self.wrapped
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(routes);
        router
    }

    /// The in-flight layer, for `Router::layer` after the routes (it then sees `MatchedPath`)
    /// or for a router inside another service. Prefer [`GmrAxum::wrap`]: `Router::layer` wraps
    /// every route's service, which axum clones, boxes and calls per request, about as much
    /// again as the layer's own work. Its requests are listed while this [`GmrAxum`] (or a
    /// clone) is alive; the services it makes hold no reference count.
    pub fn layer(&self) -> InFlightLayer {
        self.core.layer()
    }

    /// A router serving the report at `admin.path`, for any app state, to `merge` or `nest`.
    /// Empty when no token is configured.
    ///
    /// ```no_run
    /// use axum::extract::State;
    /// use axum::routing::get;
    ///
    /// #[derive(Clone)]
    /// struct AppState {
    ///     greeting: &'static str,
    /// }
    ///
    /// # async fn run(config: config::Config) -> Result<(), Box<dyn std::error::Error>> {
    /// let gmr = gmr_axum::install(&config, gmr::package!())?;
    /// let app: axum::Router = axum::Router::new()
    ///     .route("/", get(|State(state): State<AppState>| async move { state.greeting }))
    ///     .merge(gmr.router()) // a `Router<AppState>`: the state type is inferred
    ///     .with_state(AppState { greeting: "hello" });
    /// let app = gmr.wrap(app);
    /// # drop(app); Ok(()) }
    /// ```
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        match self.core.admin_endpoint() {
            Some(admin) => Router::new().route_service(admin.path(), admin.clone()),
            None => Router::new(),
        }
    }

    gmr_tower::__bundle_accessors!(core);
}
