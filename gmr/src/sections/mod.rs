//! The built-in sections, in report order: `Package`, `Threads`, `Green Threads`, `Processes`,
//! `Configuration` ([`crate::report::titles`]). Each module gathers its data into a small model
//! and renders it to both views from that model.
//!
//! A section is one entry of [`BUILT_IN`]: a title and a generator, all with the same
//! signature. Adding a section is a module here and an entry in that table.
#![forbid(unsafe_code)]

pub(crate) mod configuration;
pub(crate) mod green_threads;
pub(crate) mod package;
pub(crate) mod processes;
mod read;
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub(crate) mod symbolize;
pub(crate) mod threads;

use crate::config::GmrConfig;
use crate::error::SectionError;
use crate::package::PackageInfo;
use crate::report::stack::{StackStyle, Workspace};
use crate::report::{SectionBody, titles};

/// What a built-in section generator may look at.
#[derive(Debug)]
pub(crate) struct ReportContext<'a> {
    /// The validated configuration.
    pub(crate) settings: &'a GmrConfig,
    /// The application's whole configuration, if one was handed to gmr.
    pub(crate) app_config: Option<&'a ::config::Config>,
    /// The application's package.
    pub(crate) package: &'a PackageInfo,
}

impl ReportContext<'_> {
    /// How stack frames of this application are named, shortened and folded.
    pub(crate) fn stack_style(&self) -> StackStyle {
        StackStyle {
            workspace: Workspace::of(self.package.manifest_dir, self.package.name),
            app_crate: Some(self.package.name.replace('-', "_")),
            fold: self.settings.threads.fold.clone(),
        }
    }
}

/// A section generator: a body, or the error that stopped it.
pub(crate) type Generator = fn(&ReportContext<'_>) -> Result<Box<dyn SectionBody>, SectionError>;

/// The built-in sections, in report order.
pub(crate) const BUILT_IN: [(&str, Generator); 5] = [
    (titles::PACKAGE, |ctx| Ok(boxed(package::generate(ctx)))),
    (titles::THREADS, |ctx| threads::generate(ctx).map(boxed)),
    (titles::GREEN_THREADS, |ctx| {
        Ok(boxed(green_threads::generate(ctx)))
    }),
    (titles::PROCESSES, |ctx| processes::generate(ctx).map(boxed)),
    (titles::CONFIGURATION, |ctx| {
        Ok(boxed(configuration::generate(ctx)))
    }),
];

fn boxed<B: SectionBody + 'static>(body: B) -> Box<dyn SectionBody> {
    Box::new(body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_follows_the_titles() {
        let titles: Vec<&str> = super::BUILT_IN.iter().map(|(title, _)| *title).collect();
        assert_eq!(titles, crate::report::titles::BUILT_IN);
    }
}
