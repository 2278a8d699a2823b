//! Naming frames of a report after the fact, on another machine: the same files, lookups and
//! names as in the process (see the parent module), found by the build-ids the report lists
//! instead of through the mapped files.
//!
//! A frame of a report always has `module+offset`; the report's `threads.modules` lists each
//! module's path and build-id. [`OfflineSymbolizer`] finds the files of that exact build, by
//! build-id only (a binary rebuilt from the same sources has other offsets), and reads its
//! symbol table and DWARF as the process would have.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::locate::{hex, locate_offline};
use super::module::{Budget, LoadedModule};

/// A module of a report's process, as its `threads.modules` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReportModule {
    /// File name, as frames name their module (`billing-api`, `libc.so.6`).
    pub name: String,
    /// Its path in the process.
    pub path: String,
    /// Its GNU build-id, hex.
    pub build_id: Option<String>,
}

/// One function at an address: several when calls were inlined, innermost first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SymbolInfo {
    /// Demangled name without the hash.
    pub function: Option<String>,
    /// Source file, as the debug information gives it.
    pub file: Option<String>,
    /// Line.
    pub line: Option<u32>,
    /// Column.
    pub column: Option<u32>,
}

/// Why the frames of a module cannot be named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SymbolizeError {
    /// The report has no build-id for the module, so no file can be proven to be its build.
    #[error(
        "{module}: the report has no build-id for it, so no file can be proven to be its \
         build (link with --build-id, the default of most toolchains)"
    )]
    NoBuildId {
        /// The module's name.
        module: String,
    },
    /// The build-id is not valid hex.
    #[error("{module}: build-id `{build_id}` in the report is not hex")]
    BadBuildId {
        /// The module's name.
        module: String,
        /// The build-id as written.
        build_id: String,
    },
    /// No file of the module's build has names for it.
    #[error(
        "{module}: {reason}; put its debug file at <debug-dir>/.build-id/{prefix}/{rest}.debug \
         (`objcopy --only-keep-debug`), or the unstripped binary as <debug-dir>/{module}"
    )]
    NotFound {
        /// The module's name.
        module: String,
        /// What was searched, or what is missing.
        reason: String,
        /// The first byte of the build-id, hex.
        prefix: String,
        /// The rest of the build-id, hex.
        rest: String,
    },
}

/// Names addresses of a report's modules with their own files, found by build-id in debug
/// directories: the symbolizer of the process, used offline (`gmr symbolize`).
///
/// ```no_run
/// use gmr::symbolize::{OfflineSymbolizer, ReportModule};
///
/// let mut symbolizer = OfflineSymbolizer::new(["/srv/debug"]);
/// let module = ReportModule {
///     name: "billing-api".into(),
///     path: "/usr/local/bin/billing-api".into(),
///     build_id: Some("4f1c0e5a9b2d77e1c3a0f4d2b6e8a1c9d7f30b12".into()),
/// };
/// for symbol in symbolizer.resolve(&module, 0x1b48fa)? {
///     println!("{:?} at {:?}:{:?}", symbol.function, symbol.file, symbol.line);
/// }
/// # Ok::<(), gmr::symbolize::SymbolizeError>(())
/// ```
#[derive(Debug)]
pub struct OfflineSymbolizer {
    debug_dirs: Vec<PathBuf>,
    budget: Budget,
    loaded: HashMap<ReportModule, Result<LoadedModule, SymbolizeError>>,
}

impl OfflineSymbolizer {
    /// A symbolizer looking for debug files under `debug_dirs` (gdb's layout:
    /// `.build-id/xx/yyyy….debug`, and `<name>`, `<name>.debug` for a module `name`), besides
    /// the module's own path when the file there is of the same build.
    pub fn new<P: Into<PathBuf>>(debug_dirs: impl IntoIterator<Item = P>) -> Self {
        OfflineSymbolizer {
            debug_dirs: debug_dirs.into_iter().map(Into::into).collect(),
            budget: Budget {
                limit: u64::MAX,
                used: 0,
            },
            loaded: HashMap::new(),
        }
    }

    /// The functions at `offset` (as a frame's `module+offset` gives it) in `module`, innermost
    /// (inlined) first; empty when its files name nothing there. System libraries (under
    /// `/lib`, `/usr/lib`) are named from their symbol tables only, as in the process.
    ///
    /// # Errors
    ///
    /// Why `module` has no names: no build-id in the report, or no file of its build.
    pub fn resolve(
        &mut self,
        module: &ReportModule,
        offset: u64,
    ) -> Result<Vec<SymbolInfo>, SymbolizeError> {
        let loaded = self.load(module)?;
        Ok(loaded
            .resolve(offset)
            .into_iter()
            .map(|s| SymbolInfo {
                function: s.function,
                file: s.file,
                line: s.line,
                column: s.column,
            })
            .collect())
    }

    /// The file the debug information of `module` is read from, once it was loaded with DWARF.
    pub fn debug_file(&self, module: &ReportModule) -> Option<&Path> {
        self.loaded.get(module)?.as_ref().ok()?.dwarf_file()
    }

    fn load(&mut self, module: &ReportModule) -> Result<&LoadedModule, SymbolizeError> {
        if !self.loaded.contains_key(module) {
            let loaded = load(module, &self.debug_dirs, &mut self.budget);
            self.loaded.insert(module.clone(), loaded);
        }
        match self.loaded.get(module) {
            Some(Ok(loaded)) => Ok(loaded),
            Some(Err(error)) => Err(error.clone()),
            None => Err(SymbolizeError::NoBuildId {
                module: module.name.clone(),
            }),
        }
    }
}

/// Loads the symbols of `module` from the files of its build.
fn load(
    module: &ReportModule,
    debug_dirs: &[PathBuf],
    budget: &mut Budget,
) -> Result<LoadedModule, SymbolizeError> {
    let name = module.name.clone();
    let hex_id = module
        .build_id
        .as_deref()
        .ok_or_else(|| SymbolizeError::NoBuildId {
            module: name.clone(),
        })?;
    let build_id = parse_hex(hex_id).ok_or_else(|| SymbolizeError::BadBuildId {
        module: name.clone(),
        build_id: hex_id.to_owned(),
    })?;
    let canonical = hex(&build_id);
    let (prefix, rest) = canonical.split_at(2.min(canonical.len()));
    let not_found = |reason: String| SymbolizeError::NotFound {
        module: name.clone(),
        reason,
        prefix: prefix.to_owned(),
        rest: rest.to_owned(),
    };
    let located =
        locate_offline(&module.name, &module.path, &build_id, debug_dirs).map_err(&not_found)?;
    let object = located.object.clone();
    let loaded = LoadedModule::from_located(&module.name, &module.path, Ok(located), budget);
    if !loaded.has_names() {
        return Err(not_found(format!(
            "{} is of its build but holds no symbols and no debug information",
            object.display()
        )));
    }
    if !loaded.has_dwarf() && !super::is_system_library(&module.path) {
        return Err(not_found(format!(
            "{} is of its build but has no debug information (no file and line)",
            object.display()
        )));
    }
    Ok(loaded)
}

/// Bytes from hex, `None` unless every character is a hex digit and they pair up.
fn parse_hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_build_ids() {
        assert_eq!(parse_hex("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex(""), None);
    }

    #[test]
    fn a_module_without_a_usable_build_id_is_refused_saying_why() {
        let mut symbolizer = OfflineSymbolizer::new(Vec::<PathBuf>::new());
        let mut module = ReportModule {
            name: "app".into(),
            path: "/nonexistent/app".into(),
            build_id: None,
        };
        assert!(matches!(
            symbolizer.resolve(&module, 0x10),
            Err(SymbolizeError::NoBuildId { .. })
        ));
        module.build_id = Some("xyz".into());
        assert!(matches!(
            symbolizer.resolve(&module, 0x10),
            Err(SymbolizeError::BadBuildId { .. })
        ));
        module.build_id = Some("abcdef01".into());
        let message = symbolizer
            .resolve(&module, 0x10)
            .expect_err("nothing to find")
            .to_string();
        assert!(
            message.contains("no file of this build (build-id abcdef01)")
                && message.contains("<debug-dir>/.build-id/ab/cdef01.debug"),
            "{message}"
        );
    }
}
