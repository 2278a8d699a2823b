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
//!
//! Frames in system libraries (`/lib`, `/usr/lib`: libc, the dynamic loader, distribution
//! libraries) are named from the library's own symbol table (`.symtab`, else `.dynsym`, with
//! symbol sizes, so an address outside every symbol stays unnamed rather than misnamed), and
//! get no file:line. `backtrace` would look for their separate debug files in
//! `/usr/lib/debug` (installed with packages such as `libc6-dbg`, which valgrind pulls in),
//! and parsing those costs tens of megabytes and tens of milliseconds per report process, for
//! file:line inside the C library that an operator rarely needs.

use std::collections::HashMap;
use std::sync::Arc;

/// Directories whose libraries are named from their symbol tables only (see the module docs).
const SYSTEM_LIBRARY_DIRS: &[&str] = &["/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"];

/// Whether `path` (from `/proc/self/maps`) is a system library.
pub(crate) fn is_system_library(path: &str) -> bool {
    SYSTEM_LIBRARY_DIRS.iter().any(|dir| path.starts_with(dir))
}

/// The function symbols of one library file: (address in the file, size, name), sorted.
#[derive(Debug, Default)]
struct SymbolTable {
    symbols: Vec<(u64, u64, Arc<str>)>,
}

impl SymbolTable {
    /// Reads the function symbols of the ELF file at `path` (`.symtab`, else `.dynsym`).
    fn load(path: &str) -> Option<SymbolTable> {
        use object::{Object as _, ObjectSymbol as _};
        let data = std::fs::read(path).ok()?;
        let file = object::File::parse(&*data).ok()?;
        let collect = |symbols: &mut dyn Iterator<Item = object::Symbol<'_, '_>>| {
            symbols
                .filter(|s| s.kind() == object::SymbolKind::Text && s.is_definition())
                .filter_map(|s| Some((s.address(), s.size(), Arc::<str>::from(s.name().ok()?))))
                .collect::<Vec<_>>()
        };
        let mut symbols = collect(&mut file.symbols());
        if symbols.is_empty() {
            // A stripped library: its separate debug file, if installed, still has the full
            // `.symtab` (internal functions such as `start_thread` included). Only the symbol
            // table is read from it, never its DWARF.
            symbols = file
                .build_id()
                .ok()
                .flatten()
                .and_then(debug_file_symbols)
                .unwrap_or_default();
        }
        if symbols.is_empty() {
            symbols = collect(&mut file.dynamic_symbols());
        }
        symbols.sort_by_key(|(address, _, _)| *address);
        Some(SymbolTable { symbols })
    }

    /// The function containing `address` (an address in the file), if one does.
    #[inline]
    fn find(&self, address: u64) -> Option<&Arc<str>> {
        let i = self.symbols.partition_point(|(a, _, _)| *a <= address);
        let (start, size, name) = self.symbols.get(i.checked_sub(1)?)?;
        (address < start.saturating_add((*size).max(1))).then_some(name)
    }
}

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

/// The function symbols of the separate debug file of the object with `build_id`
/// (`/usr/lib/debug/.build-id/xx/yyyy.debug`), if installed.
fn debug_file_symbols(build_id: &[u8]) -> Option<Vec<(u64, u64, Arc<str>)>> {
    use object::{Object as _, ObjectSymbol as _};
    let (first, rest) = build_id.split_first()?;
    let rest: String = rest.iter().map(|b| format!("{b:02x}")).collect();
    let path = format!("/usr/lib/debug/.build-id/{first:02x}/{rest}.debug");
    let data = std::fs::read(path).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let symbols: Vec<_> = file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.is_definition())
        .filter_map(|s| Some((s.address(), s.size(), Arc::<str>::from(s.name().ok()?))))
        .collect();
    (!symbols.is_empty()).then_some(symbols)
}

/// The per-address symbol cache.
#[derive(Debug, Default)]
pub(crate) struct Symbolizer {
    cache: HashMap<u64, Arc<[Symbol]>>,
    /// Symbol tables of system libraries, by path (`None`: unreadable).
    system: HashMap<Arc<str>, Option<SymbolTable>>,
}

impl Symbolizer {
    /// Forgets every cached address.
    pub(crate) fn clear(&mut self) {
        self.cache.clear();
        self.system.clear();
    }

    /// The function at `offset` (an address in the file) of the system library at `path`,
    /// from its symbol table; cached per address like [`Symbolizer::resolve`].
    pub(crate) fn resolve_system(
        &mut self,
        lookup: u64,
        path: &Arc<str>,
        offset: u64,
    ) -> Arc<[Symbol]> {
        if let Some(found) = self.cache.get(&lookup) {
            return found.clone();
        }
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        let table = self
            .system
            .entry(Arc::clone(path))
            .or_insert_with(|| SymbolTable::load(path));
        let symbols: Arc<[Symbol]> = match table.as_ref().and_then(|t| t.find(offset)) {
            Some(name) => Arc::new([Symbol {
                // `__libc_start_main@GLIBC_2.2.5`: the symbol version is not part of the name.
                function: Some(name.split('@').next().unwrap_or(name).to_owned()),
                ..Symbol::default()
            }]),
            None => Arc::new([]),
        };
        self.cache.insert(lookup, symbols.clone());
        symbols
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_libraries_are_recognised() {
        assert!(is_system_library("/usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(is_system_library("/lib/x86_64-linux-gnu/libm.so.6"));
        assert!(!is_system_library("/opt/app/lib/libapp.so"));
        assert!(!is_system_library("/work/target/release/app"));
        assert!(!is_system_library("[vdso]"));
    }

    #[test]
    fn libc_functions_are_named_from_its_symbol_table() {
        // The address of a libc function, as a file offset of libc: found through /proc/self/maps.
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let getpid = libc::getpid as *const () as u64;
        let Some((path, bias)) = maps.lines().find_map(|line| {
            let mut f = line.split_whitespace();
            let range = f.next()?;
            let _perms = f.next()?;
            let file_offset = u64::from_str_radix(f.next()?, 16).ok()?;
            let (_dev, _inode) = (f.next()?, f.next()?);
            let path = f.next()?;
            let (start, end) = range.split_once('-')?;
            let (start, end) = (
                u64::from_str_radix(start, 16).ok()?,
                u64::from_str_radix(end, 16).ok()?,
            );
            ((start..end).contains(&getpid) && path.contains("libc"))
                .then(|| (path.to_owned(), start - file_offset))
        }) else {
            return; // a statically linked or unusual libc: nothing to check
        };
        let mut symbolizer = Symbolizer::default();
        let path: Arc<str> = path.into();
        // For libc the file offset and the address in the file agree in the text segment.
        let symbols = symbolizer.resolve_system(getpid, &path, getpid - bias);
        let name = symbols
            .first()
            .and_then(|s| s.function.clone())
            .unwrap_or_default();
        assert!(name.contains("getpid"), "{name:?}");
    }
}
