//! [`GmrTower`]: gmr installed in a server, as every web adapter holds it: the autorun hook,
//! the in-flight layer and the admin endpoint. `gmr-axum` and `gmr-actix` wrap this same
//! bundle and only translate it into their framework's idiom.

use gmr::{GmrGuard, PackageInfo, ReportHandle};

use crate::admin::AdminEndpoint;
use crate::inflight::{InFlightLayer, InFlightOptions};

/// gmr installed in a server: the hook (SIGUSR2, the trigger file, `log_dir`), the in-flight
/// request table, and the admin endpoint when a token is configured. Cheap to clone; the
/// triggers stop when the last clone (and every other [`GmrGuard`] of the process) is dropped.
///
/// ```no_run
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = config::Config::builder()
///     .add_source(config::File::with_name("app.toml").required(false))
///     .build()?;
/// let gmr = gmr_tower::GmrTower::install(&config, gmr::package!())?;
/// let layer = gmr.layer();                  // wrap the service with it
/// let admin = gmr.admin_endpoint().cloned(); // serve it at `admin.path`, if a token is set
/// # drop((layer, admin)); Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[must_use = "dropping it stops gmr's triggers at once; keep it until the server has shut down"]
pub struct GmrTower {
    parts: Parts,
}

/// What a [`GmrTower`] holds; its accessors are the ones [`__bundle_accessors`] exposes.
#[derive(Clone, Debug)]
struct Parts {
    guard: GmrGuard,
    in_flight: InFlightLayer,
    admin: Option<AdminEndpoint>,
}

impl Parts {
    fn guard(&self) -> &GmrGuard {
        &self.guard
    }

    fn reports(&self) -> ReportHandle {
        self.guard.reports()
    }

    fn in_flight(&self) -> &InFlightLayer {
        &self.in_flight
    }

    fn admin_endpoint(&self) -> Option<&AdminEndpoint> {
        self.admin.as_ref()
    }

    fn admin_path(&self) -> Option<&str> {
        self.admin.as_ref().map(AdminEndpoint::path)
    }
}

impl GmrTower {
    /// Installs gmr from the application's configuration (its `[gmr]` table; every key is
    /// shown, masked, in the `Configuration` section), listing requests as
    /// `in-flight requests (tower)`.
    ///
    /// # Errors
    ///
    /// A [`gmr::InstallError`] naming the invalid key, the unusable trigger file, or a hook
    /// already installed with other settings.
    pub fn install(
        config: &config::Config,
        package: PackageInfo,
    ) -> Result<GmrTower, gmr::InstallError> {
        GmrTower::install_with(config, package, InFlightOptions::default())
    }

    /// [`GmrTower::install`] with the in-flight table's options (its name, hidden paths).
    ///
    /// # Errors
    ///
    /// As [`GmrTower::install`].
    pub fn install_with(
        config: &config::Config,
        package: PackageInfo,
        options: InFlightOptions,
    ) -> Result<GmrTower, gmr::InstallError> {
        let guard = gmr::Gmr::builder()
            .config(config)
            .package(package)
            .install()?;
        Ok(GmrTower::from_guard(guard, options))
    }

    /// Wraps a hook installed with [`gmr::Gmr::builder`] (for settings built in code, extra
    /// sections or sinks). The admin endpoint exists when the hook's settings have a token.
    pub fn from_guard(guard: GmrGuard, options: InFlightOptions) -> GmrTower {
        let admin = AdminEndpoint::from_guard(&guard);
        GmrTower {
            parts: Parts {
                guard,
                in_flight: InFlightLayer::with_options(options),
                admin,
            },
        }
    }

    crate::__bundle_accessors!(parts);

    /// The in-flight layer, to wrap a tower service with (clones share the table). Its
    /// requests are listed in the report while this bundle (or a clone) is alive: keep it
    /// until the server has shut down, as its triggers need anyway. The services it makes
    /// hold no reference count of their own, so a service cloned per request (as hyper and
    /// axum do) costs nothing more for it.
    pub fn layer(&self) -> InFlightLayer {
        self.parts.in_flight.listed_by_owner()
    }
}

/// The accessors that [`GmrTower`] and every adapter's bundle share, with the same names and
/// docs: `guard`, `reports`, `in_flight`, `admin_endpoint`, `admin_path`. Expanded inside an
/// `impl` block of a type whose field `$core` has these methods (a `GmrTower`). Not part of the
/// public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __bundle_accessors {
    ($core:ident) => {
        /// The installed hook.
        pub fn guard(&self) -> &$crate::gmr::GmrGuard {
            self.$core.guard()
        }

        /// Asks gmr's reporter thread for reports (the programmatic trigger). Await its
        /// methods from async code; never block a runtime worker on them.
        pub fn reports(&self) -> $crate::gmr::ReportHandle {
            self.$core.reports()
        }

        /// The in-flight request table (what the report's `in-flight requests (…)` block
        /// shows).
        pub fn in_flight(&self) -> &$crate::InFlightLayer {
            self.$core.in_flight()
        }

        /// The admin endpoint, when a token is configured (no token, no endpoint).
        pub fn admin_endpoint(&self) -> Option<&$crate::AdminEndpoint> {
            self.$core.admin_endpoint()
        }

        /// The admin endpoint's path, when the endpoint exists.
        pub fn admin_path(&self) -> Option<&str> {
            self.$core.admin_path()
        }
    };
}
