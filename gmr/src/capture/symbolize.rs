//! Symbolization of frame addresses, once per unique address, on the reporting thread.
//!
//! Uses `backtrace::resolve` (gimli/addr2line on Linux): demangled function names without the
//! hash (`{:#}`), file, line and column where debug info has them, and inlined functions as
//! separate entries, innermost first. Results are cached across reports, keyed by address and
//! bounded; the cache is dropped when the module table changes (an address may then belong to
//! another library).
//!
//! `backtrace::resolve` loads the list of libraries once, at its first use: a library loaded
//! later is still named with `module+0xoffset` by the report, but without function names.

use std::collections::HashMap;
use std::sync::Arc;

/// One function at an address (several when calls were inlined).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Symbol {
    /// Demangled function name without the hash.
    pub(crate) function: Option<String>,
    /// Source file.
    pub(crate) file: Option<String>,
    /// Line.
    pub(crate) line: Option<u32>,
    /// Column.
    pub(crate) column: Option<u32>,
}

/// Addresses kept in the cache before it is cleared.
const MAX_CACHED: usize = 64 * 1024;

/// The per-address symbol cache.
#[derive(Debug, Default)]
pub(crate) struct Symbolizer {
    cache: HashMap<u64, Arc<[Symbol]>>,
}

impl Symbolizer {
    /// Forgets every cached address.
    pub(crate) fn clear(&mut self) {
        self.cache.clear();
    }

    /// The functions at `lookup` (an address inside the instruction: see
    /// [`super::unwind::RawFrame`]), innermost first; empty when unknown.
    pub(crate) fn resolve(&mut self, lookup: u64) -> Arc<[Symbol]> {
        if let Some(found) = self.cache.get(&lookup) {
            return found.clone();
        }
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        let mut symbols = Vec::new();
        // backtrace::resolve subtracts one from the address it is given (it expects return
        // addresses); `lookup` is already inside the instruction, so add it back.
        let probe = lookup.wrapping_add(1) as usize as *mut std::ffi::c_void;
        backtrace::resolve(probe, |s| {
            symbols.push(Symbol {
                function: s.name().map(|n| format!("{n:#}")),
                file: s.filename().map(|p| p.display().to_string()),
                line: s.lineno(),
                column: s.colno(),
            });
        });
        let symbols: Arc<[Symbol]> = symbols.into();
        self.cache.insert(lookup, symbols.clone());
        symbols
    }
}
