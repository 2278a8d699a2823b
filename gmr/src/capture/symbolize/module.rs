//! One module's symbols as the worker holds them: its symbol table, and its DWARF (inlined
//! functions, file and line) when the memory budget allows.

use std::sync::Arc;

use super::locate::{Located, locate};
use super::symtab::SymbolTable;
use super::{demangle, is_system_library};
use crate::capture::Symbol;
use crate::capture::modules::ModuleInfo;

/// What loading debug information has cost so far, and what the budget left out.
#[derive(Debug, Default)]
pub(super) struct Budget {
    /// The limit in bytes (`threads.symbol_budget`).
    pub(super) limit: u64,
    /// Bytes of DWARF mapped and symbol tables held.
    pub(super) used: u64,
}

/// A module's symbols.
pub(super) struct LoadedModule {
    symtab: Option<SymbolTable>,
    dwarf: Option<addr2line::Loader>,
    /// What the report should say about this module's names, if anything.
    pub(super) note: Option<String>,
    /// What it costs against the budget.
    pub(super) cost: u64,
    /// The file its DWARF is read from.
    dwarf_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("has_symtab", &self.symtab.is_some())
            .field("has_dwarf", &self.dwarf.is_some())
            .field("note", &self.note)
            .field("cost", &self.cost)
            .finish()
    }
}

impl LoadedModule {
    /// Loads `module`'s symbols, its DWARF only if `budget` has room for it.
    pub(super) fn load(
        module: &ModuleInfo,
        debug_dirs: &[std::path::PathBuf],
        budget: &mut Budget,
    ) -> LoadedModule {
        if module.path.starts_with('[') {
            // The vDSO is no file: its frames keep `[vdso]+offset`, and that is no problem
            // worth a note in every report.
            return LoadedModule {
                symtab: None,
                dwarf: None,
                note: None,
                cost: 0,
                dwarf_file: None,
            };
        }
        LoadedModule::from_located(
            &module.name,
            &module.path,
            locate(module, debug_dirs),
            budget,
        )
    }

    /// Loads the symbols of the module `name` (mapped from `path`) from the files `located`
    /// found, its DWARF only if `budget` has room for it.
    pub(super) fn from_located(
        name: &str,
        path: &str,
        located: Result<Located, String>,
        budget: &mut Budget,
    ) -> LoadedModule {
        let located = match located {
            Ok(located) => located,
            Err(note) => {
                return LoadedModule {
                    symtab: None,
                    dwarf: None,
                    note: Some(note),
                    cost: 0,
                    dwarf_file: None,
                };
            }
        };
        let mut note = located
            .replaced
            .then(|| format!("{name} was replaced on disk: named from the mapped copy"));
        // System libraries are named from their symbol tables only: their DWARF (packages such
        // as libc6-dbg) costs tens of megabytes for file:line inside the C library.
        let system = is_system_library(path);
        let dwarf = if system {
            None
        } else {
            load_dwarf(name, &located, budget, &mut note)
        };
        let symtab = SymbolTable::load(&located.object, located.dwarf.as_deref());
        let symtab_cost = symtab.as_ref().map_or(0, SymbolTable::memory);
        budget.used = budget.used.saturating_add(symtab_cost);
        let cost = symtab_cost + dwarf.as_ref().map_or(0, |_| located.dwarf_bytes);
        LoadedModule {
            symtab,
            dwarf,
            note,
            cost,
            dwarf_file: located.dwarf.filter(|_| !system),
        }
    }

    /// Whether any name can come from it: a symbol table, or DWARF.
    pub(super) fn has_names(&self) -> bool {
        self.dwarf.is_some() || self.symtab.as_ref().is_some_and(|t| !t.is_empty())
    }

    /// Whether its DWARF is loaded (names with file and line).
    pub(super) fn has_dwarf(&self) -> bool {
        self.dwarf.is_some()
    }

    /// The file its DWARF comes from, when it has some.
    pub(super) fn dwarf_file(&self) -> Option<&std::path::Path> {
        self.dwarf_file.as_deref()
    }

    /// The functions at `offset` (an address in the file), innermost (inlined) first. The
    /// outermost is named from the symbol table, with its full path; inlined ones as the
    /// debug information names them.
    pub(super) fn resolve(&self, offset: u64) -> Vec<Symbol> {
        let mut frames = Vec::new();
        if let Some(dwarf) = &self.dwarf
            && let Ok(mut iter) = dwarf.find_frames(offset)
        {
            while let Ok(Some(frame)) = iter.next() {
                let function = frame
                    .function
                    .as_ref()
                    .and_then(|f| f.raw_name().ok())
                    .map(|name| demangle(&name));
                let location = frame.location.as_ref();
                frames.push(Symbol {
                    function,
                    file: location.and_then(|l| l.file).map(str::to_owned),
                    line: location.and_then(|l| l.line),
                    column: location.and_then(|l| l.column),
                });
            }
        }
        let named = self.symtab.as_ref().and_then(|t| t.find(offset));
        match (frames.last_mut(), named) {
            (Some(outermost), Some(name)) => outermost.function = Some(name.to_string()),
            (None, Some(name)) => frames.push(Symbol {
                function: Some(name.to_string()),
                ..Symbol::default()
            }),
            _ => {}
        }
        frames
    }
}

/// The DWARF of `module`, if it has some and the budget has room for it.
fn load_dwarf(
    name: &str,
    located: &Located,
    budget: &mut Budget,
    note: &mut Option<String>,
) -> Option<addr2line::Loader> {
    let path = located.dwarf.as_ref()?;
    if budget.used.saturating_add(located.dwarf_bytes) > budget.limit {
        *note = Some(format!(
            "{name}: names from the symbol table only, no file:line: its {} MiB of debug info \
             exceed what is left of threads.symbol_budget ({} MiB)",
            located.dwarf_bytes / (1 << 20),
            budget.limit / (1 << 20)
        ));
        return None;
    }
    match addr2line::Loader::new(path) {
        Ok(loader) => {
            budget.used = budget.used.saturating_add(located.dwarf_bytes);
            tracing::debug!(
                module = %name,
                debug_info = %path.display(),
                source = located.dwarf_source.unwrap_or("?"),
                "gmr loaded debug info"
            );
            Some(loader)
        }
        Err(error) => {
            *note = Some(format!(
                "{name}: cannot read the debug info in {}: {error}",
                path.display()
            ));
            None
        }
    }
}

/// The key of a loaded module: the same path, file and load address.
pub(super) type ModuleKey = (Arc<str>, crate::capture::modules::FileId, u64);

/// The key of `module`.
pub(super) fn key_of(module: &ModuleInfo) -> ModuleKey {
    (Arc::clone(&module.path), module.file_id, module.bias)
}
