//! [`PackageInfo`] and the [`package!`](crate::package!) macro: the application's identity.
#![forbid(unsafe_code)]

/// The application's package: shown in the `Package` section and used for the default service
/// name. Capture it in the application with [`gmr::package!()`](crate::package!), which reads
/// Cargo's variables of the crate where the macro is written (not of gmr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageInfo {
    /// `CARGO_PKG_NAME`.
    pub name: &'static str,
    /// `CARGO_PKG_VERSION`.
    pub version: &'static str,
    /// `CARGO_PKG_AUTHORS`, colon-separated as Cargo gives them.
    pub authors: &'static str,
    /// `CARGO_PKG_REPOSITORY`.
    pub repository: &'static str,
    /// `CARGO_PKG_DESCRIPTION`.
    pub description: &'static str,
    /// `CARGO_PKG_LICENSE`.
    pub license: &'static str,
    /// `CARGO_BIN_NAME` when the macro is used in a binary target.
    pub bin_name: Option<&'static str>,
    /// `CARGO_MANIFEST_DIR`: where the package was built. Stacks show the application's source
    /// files relative to its workspace, found from here.
    pub manifest_dir: &'static str,
}

impl PackageInfo {
    /// The package of gmr itself: the fallback when the application gives none.
    pub fn gmr() -> Self {
        crate::package!()
    }

    /// The authors as a list.
    pub fn authors_list(&self) -> Vec<&'static str> {
        self.authors
            .split(':')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .collect()
    }
}

/// The [`PackageInfo`] of the crate in which the macro is written.
///
/// ```
/// let package = gmr::package!();
/// assert_eq!(package.name, env!("CARGO_PKG_NAME"));
/// ```
#[macro_export]
macro_rules! package {
    () => {
        $crate::PackageInfo {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            authors: env!("CARGO_PKG_AUTHORS"),
            repository: env!("CARGO_PKG_REPOSITORY"),
            description: env!("CARGO_PKG_DESCRIPTION"),
            license: env!("CARGO_PKG_LICENSE"),
            bin_name: option_env!("CARGO_BIN_NAME"),
            manifest_dir: env!("CARGO_MANIFEST_DIR"),
        }
    };
}
