//! Symbolization of frame addresses: each unique address named once, on a thread of its own.
//!
//! Names come from each module's own files (see `locate`: the mapped file, never a newer one
//! at the same path, and its debug information wherever it was split off to): the outermost
//! function at an address from the symbol table (demangled, full path, no hash), inlined
//! functions, file, line and column from the DWARF (addr2line), innermost first.
//!
//! Frames in system libraries (`/lib`, `/usr/lib`: libc, the dynamic loader, distribution
//! libraries) are named from their symbol tables only (`.symtab`, else the build-id debug
//! file's, else `.dynsym`), without file:line: their DWARF (packages such as `libc6-dbg`, which
//! valgrind pulls in) costs tens of megabytes and milliseconds for file:line inside the C
//! library that an operator rarely needs.
//!
//! # What can go wrong, and what happens then
//!
//! * **A library replaced on disk** by a deployment: the file at its path is not the one in
//!   memory (another device or inode). It is named from the mapped copy
//!   (`/proc/self/map_files`), or not at all, never from the new file.
//! * **A library unloaded, another loaded at the same addresses**: names are cached by module
//!   (path, device, inode, load address) and offset, and every change of the module table drops
//!   the modules no longer mapped, so an address is never named after the library that was
//!   there before.
//! * **Debug information too large**: `threads.symbol_budget` bounds the bytes of DWARF mapped
//!   and of symbol tables held; a module that does not fit is named from its symbol table only,
//!   and the report says so.
//! * **A read that blocks** (a debug file on a hung network filesystem) or a slow first parse:
//!   all of it runs on the `gmr-symbolizer` thread; the reporter waits until the capture's
//!   deadline, then reports `module+offset` without names and says why. While that thread is
//!   still stuck, later reports go without names too, saying so.

mod locate;
mod module;
pub(crate) mod offline;
#[cfg(test)]
mod split_debug_tests;
mod symtab;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use self::module::{ModuleKey, key_of};
use self::worker::{Job, Worker};
use super::Symbol;
use super::modules::ModuleInfo;

/// Directories whose libraries are named from their symbol tables only (see the module docs).
const SYSTEM_LIBRARY_DIRS: &[&str] = &["/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"];

/// Whether `path` (from `/proc/self/maps`) is a system library.
pub(crate) fn is_system_library(path: &str) -> bool {
    SYSTEM_LIBRARY_DIRS.iter().any(|dir| path.starts_with(dir))
}

/// A symbol name as a reader wants it: Rust names demangled without their hash, symbol
/// versions (`@GLIBC_2.2.5`) dropped, anything else as it is.
pub(crate) fn demangle(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(demangled) => format!("{demangled:#}"),
        Err(_) => name.split('@').next().unwrap_or(name).to_owned(),
    }
}

/// What symbolization may use: `threads.symbol_budget` and `threads.debug_dirs`.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Bytes of debug information and symbol tables that may be held.
    pub(crate) budget: u64,
    /// Roots of separate debug files.
    pub(crate) debug_dirs: Vec<std::path::PathBuf>,
}

/// Addresses cached before the cache is dropped and refilled.
const MAX_CACHED: usize = 64 * 1024;

/// What a symbolization gave: names by module and offset, and notes for the report.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    names: HashMap<(ModuleKey, u64), Arc<[Symbol]>>,
    /// What the report should say about missing or partial names.
    pub(crate) notes: Vec<String>,
}

impl Resolved {
    /// The functions at `offset` in `module`; empty when unknown.
    pub(crate) fn get(&self, module: &ModuleInfo, offset: u64) -> Arc<[Symbol]> {
        self.names
            .get(&(key_of(module), offset))
            .cloned()
            .unwrap_or_else(|| Arc::from([]))
    }
}

/// The reporter's side of symbolization: the names cache and the symbolizer thread.
#[derive(Debug, Default)]
pub(crate) struct Symbolizer {
    cache: HashMap<(ModuleKey, u64), Arc<[Symbol]>>,
    /// Notes about a module's names (budget, replaced file), said in every report using it.
    module_notes: HashMap<ModuleKey, String>,
    /// The modules of the last module table.
    mapped: Vec<ModuleKey>,
    worker: Option<Worker>,
}

impl Symbolizer {
    /// Forgets everything about modules that are not in `modules` (the module table changed).
    pub(crate) fn retain_modules(&mut self, modules: &[ModuleInfo]) {
        self.mapped = modules.iter().map(key_of).collect();
        let mapped = &self.mapped;
        self.cache.retain(|(key, _), _| mapped.contains(key));
        self.module_notes.retain(|key, _| mapped.contains(key));
    }

    /// Names every `(module, offset)` of `wanted`, waiting for the symbolizer thread until
    /// `deadline`.
    pub(crate) fn resolve(
        &mut self,
        wanted: &[(&ModuleInfo, u64)],
        limits: &Limits,
        deadline: Instant,
    ) -> Resolved {
        let mut resolved = Resolved::default();
        let mut missing: Vec<(ModuleInfo, Vec<u64>)> = Vec::new();
        let mut used: Vec<ModuleKey> = Vec::new();
        for (module, offset) in wanted {
            let key = key_of(module);
            if !used.contains(&key) {
                used.push(key.clone());
            }
            if let Some(found) = self.cache.get(&(key.clone(), *offset)) {
                resolved.names.insert((key, *offset), Arc::clone(found));
                continue;
            }
            match missing.iter_mut().find(|(m, _)| key_of(m) == key) {
                Some((_, offsets)) if offsets.contains(offset) => {}
                Some((_, offsets)) => offsets.push(*offset),
                None => missing.push(((*module).clone(), vec![*offset])),
            }
        }
        if !missing.is_empty() {
            self.ask_worker(missing, limits, deadline, &mut resolved);
        }
        for key in &used {
            if let Some(note) = self.module_notes.get(key)
                && !resolved.notes.contains(note)
            {
                resolved.notes.push(note.clone());
            }
        }
        resolved
    }

    fn ask_worker(
        &mut self,
        missing: Vec<(ModuleInfo, Vec<u64>)>,
        limits: &Limits,
        deadline: Instant,
        resolved: &mut Resolved,
    ) {
        if self.worker.is_none() {
            match Worker::start() {
                Ok(worker) => self.worker = Some(worker),
                Err(error) => {
                    resolved.notes.push(format!(
                        "no function names: cannot start the symbolizer thread: {error}"
                    ));
                    return;
                }
            }
        }
        let Some(worker) = &self.worker else { return };
        if worker.is_busy() {
            resolved.notes.push(
                "no function names for new addresses: the symbolizer is still busy with an \
                 earlier report (a read of debug information may be blocked)"
                    .to_owned(),
            );
            return;
        }
        let (reply, answers) = std::sync::mpsc::channel();
        let job = Job {
            modules: missing.clone(),
            keep: self.mapped.clone(),
            limits: limits.clone(),
            reply,
        };
        if !worker.submit(job) {
            resolved.notes.push(
                "no function names for new addresses: the symbolizer is not answering".to_owned(),
            );
            return;
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        let answer = match answers.recv_timeout(wait) {
            Ok(answer) => answer,
            Err(_) => {
                resolved.notes.push(format!(
                    "function names cut: symbolization did not finish within threads.deadline \
                     ({} ms left for it); frames show module+offset only",
                    wait.as_millis()
                ));
                return;
            }
        };
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        for (((module, offsets), symbols), note) in
            missing.iter().zip(answer.symbols).zip(answer.notes)
        {
            let key = key_of(module);
            if let Some(note) = note {
                self.module_notes.insert(key.clone(), note);
            }
            for (offset, names) in offsets.iter().zip(symbols) {
                self.cache
                    .insert((key.clone(), *offset), Arc::clone(&names));
                resolved.names.insert((key.clone(), *offset), names);
            }
        }
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

    fn resolve_here(address: u64) -> Option<(ModuleInfo, Vec<Symbol>)> {
        let mut table = crate::capture::modules::ModuleTable::new();
        table.refresh().expect("maps");
        let module = table.find(address)?.clone();
        let mut symbolizer = Symbolizer::default();
        symbolizer.retain_modules(std::slice::from_ref(&module));
        let offset = address - module.bias;
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        let limits = Limits {
            budget: u64::MAX,
            debug_dirs: vec!["/usr/lib/debug".into()],
        };
        let resolved = symbolizer.resolve(&[(&module, offset)], &limits, deadline);
        assert!(resolved.notes.is_empty(), "{:?}", resolved.notes);
        let symbols = resolved.get(&module, offset).to_vec();
        Some((module, symbols))
    }

    #[test]
    fn libc_functions_are_named_from_its_symbol_table() {
        let getpid = libc::getpid as *const () as u64;
        let Some((module, symbols)) = resolve_here(getpid) else {
            return; // a statically linked libc: nothing to check
        };
        assert!(module.path.contains("libc"), "{module:?}");
        let name = symbols
            .first()
            .and_then(|s| s.function.clone())
            .unwrap_or_default();
        assert!(name.contains("getpid"), "{name:?}");
        assert!(
            symbols.iter().all(|s| s.file.is_none()),
            "no file:line in libc"
        );
    }

    #[inline(never)]
    fn a_function_with_a_known_name() -> u64 {
        std::hint::black_box(a_function_with_a_known_name as *const () as u64)
    }

    #[test]
    fn own_functions_have_their_full_path_and_file() {
        let address = a_function_with_a_known_name() + 1;
        let (_, symbols) = resolve_here(address).expect("own module");
        let outermost = symbols.last().expect("a symbol");
        assert_eq!(
            outermost.function.as_deref(),
            Some("gmr::capture::symbolize::tests::a_function_with_a_known_name")
        );
        assert!(
            outermost
                .file
                .as_deref()
                .is_some_and(|f| f.ends_with("src/capture/symbolize/mod.rs")),
            "{outermost:?}"
        );
    }

    /// Two libraries built from one template: the same code at the same offsets, different
    /// names.
    fn two_libraries(dir: &std::path::Path) -> Vec<ModuleInfo> {
        ["lib_one_wait", "lib_two_wait"]
            .iter()
            .map(|name| {
                let source = dir.join(format!("{name}.c"));
                std::fs::write(
                    &source,
                    format!("__attribute__((noinline)) int {name}(int x) {{ return x * 7; }}\n"),
                )
                .expect("source");
                let out = dir.join(format!("{name}.so"));
                let status = std::process::Command::new("gcc")
                    .args(["-shared", "-fPIC", "-O0", "-g", "-o"])
                    .arg(&out)
                    .arg(&source)
                    .status()
                    .expect("run gcc");
                assert!(status.success());
                let metadata = std::fs::metadata(&out).expect("library");
                ModuleInfo {
                    name: format!("{name}.so").into(),
                    path: out.to_string_lossy().into_owned().into(),
                    // Both "loaded" at the same address.
                    bias: 0x7f00_0000_0000,
                    range: 0x7f00_0000_0000..0x7f00_0010_0000,
                    file_id: crate::capture::modules::FileId::of(&metadata),
                    map_files: None,
                    build_id: None,
                }
            })
            .collect()
    }

    #[test]
    fn another_module_at_the_same_addresses_has_its_own_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let libraries = two_libraries(dir.path());
        let offset = {
            let data = std::fs::read(&*libraries[0].path).expect("library");
            use object::{Object as _, ObjectSymbol as _};
            object::File::parse(&*data)
                .expect("ELF")
                .symbols()
                .find(|s| s.name() == Ok("lib_one_wait"))
                .map(|s| s.address())
                .expect("symbol")
        };
        let limits = Limits {
            budget: u64::MAX,
            debug_dirs: Vec::new(),
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(60);
        let mut symbolizer = Symbolizer::default();
        let name = |symbolizer: &mut Symbolizer, module: &ModuleInfo| {
            symbolizer
                .resolve(&[(module, offset)], &limits, deadline)
                .get(module, offset)
                .last()
                .and_then(|s| s.function.clone())
        };
        symbolizer.retain_modules(&libraries[..1]);
        assert_eq!(
            name(&mut symbolizer, &libraries[0]).as_deref(),
            Some("lib_one_wait")
        );
        // The first library unloaded, the second loaded at the same address: one module in
        // the table before and after.
        symbolizer.retain_modules(&libraries[1..]);
        assert_eq!(
            name(&mut symbolizer, &libraries[1]).as_deref(),
            Some("lib_two_wait")
        );
    }

    #[test]
    fn demangling_drops_hashes_and_versions() {
        assert_eq!(demangle("_ZN3foo3bar17h0123456789abcdefE"), "foo::bar");
        assert_eq!(
            demangle("__libc_start_main@GLIBC_2.34"),
            "__libc_start_main"
        );
        assert_eq!(demangle("plain"), "plain");
    }
}
