//! Function symbols of an ELF file, with their sizes, so an address outside every function
//! stays unnamed rather than misnamed.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use object::{Object as _, ObjectSymbol as _};

/// The function symbols of one file: (address in the file, size, demangled name), sorted.
#[derive(Debug, Default)]
pub(super) struct SymbolTable {
    symbols: Vec<(u64, u64, Arc<str>)>,
}

impl SymbolTable {
    /// The symbols of `path`: `.symtab`, else `fallback`'s `.symtab` (a separate debug file
    /// keeps the full table of a stripped binary), else `.dynsym`.
    pub(super) fn load(path: &Path, fallback: Option<&Path>) -> Option<SymbolTable> {
        let mut symbols = read_symbols(path, false).unwrap_or_default();
        if symbols.is_empty()
            && let Some(fallback) = fallback
        {
            symbols = read_symbols(fallback, false).unwrap_or_default();
        }
        if symbols.is_empty() {
            symbols = read_symbols(path, true)?;
        }
        symbols.sort_by_key(|(address, _, _)| *address);
        symbols.dedup_by_key(|(address, _, _)| *address);
        Some(SymbolTable { symbols })
    }

    /// The function containing `address` (an address in the file), if one does.
    pub(super) fn find(&self, address: u64) -> Option<&Arc<str>> {
        let i = self.symbols.partition_point(|(a, _, _)| *a <= address);
        let (start, size, name) = self.symbols.get(i.checked_sub(1)?)?;
        (address < start.saturating_add((*size).max(1))).then_some(name)
    }

    /// Whether it holds no symbol.
    pub(super) fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Bytes the table holds (its names and entries).
    pub(super) fn memory(&self) -> u64 {
        self.symbols
            .iter()
            .map(|(_, _, name)| name.len() as u64 + 40)
            .sum()
    }
}

/// The defined function symbols of `path` (`.dynsym` when `dynamic`), demangled.
fn read_symbols(path: &Path, dynamic: bool) -> Option<Vec<(u64, u64, Arc<str>)>> {
    let file = File::open(path).ok()?;
    let cache = object::ReadCache::new(file);
    let parsed = object::File::parse(&cache).ok()?;
    let mut out = Vec::new();
    let symbols = if dynamic {
        parsed.dynamic_symbols()
    } else {
        parsed.symbols()
    };
    for symbol in symbols {
        if symbol.kind() != object::SymbolKind::Text || !symbol.is_definition() {
            continue;
        }
        if let Ok(name) = symbol.name() {
            out.push((
                symbol.address(),
                symbol.size(),
                Arc::<str>::from(super::demangle(name)),
            ));
        }
    }
    Some(out)
}
