//! Debug information split off a stripped binary is found: by build-id, by
//! `.gnu_debuglink`, beside the binary, and in a `.dwp` package. Each test builds a small
//! program (C with gcc and binutils' `objcopy` and `strip`; Rust with `rustc -C
//! split-debuginfo=packed` for the `.dwp`), splits its debug information the way a
//! distribution or a release pipeline does, and names a function of it by file and line.

use std::path::{Path, PathBuf};
use std::process::Command;

use object::{Object as _, ObjectSymbol as _};

use super::module::{Budget, LoadedModule};
use crate::capture::Symbol;
use crate::capture::modules::{FileId, ModuleInfo};

const SOURCE: &str = "#include <stdio.h>\n\
__attribute__((noinline)) int marker_function(int x) { return x * 3 + 1; }\n\
int main(int argc, char **argv) { printf(\"%d\\n\", marker_function(argc)); return 0; }\n";

/// The line of `marker_function` in [`SOURCE`].
const MARKER_LINE: u32 = 2;

fn run(dir: &Path, program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {program} (install gcc and binutils): {e}"));
    assert!(status.success(), "{program} {args:?} failed");
}

/// Builds `prog` in a fresh directory with `extra` gcc flags; returns the directory and the
/// address of `marker_function` (a non-PIE binary: addresses are file addresses).
fn build(extra: &[&str]) -> (tempfile::TempDir, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("prog.c"), SOURCE).expect("source");
    let mut args = vec!["-g", "-O0", "-no-pie", "-Wl,--build-id", "-o", "prog"];
    args.extend_from_slice(extra);
    args.push("prog.c");
    run(dir.path(), "gcc", &args);
    let data = std::fs::read(dir.path().join("prog")).expect("binary");
    let file = object::File::parse(&*data).expect("ELF");
    let address = file
        .symbols()
        .find(|s| s.name() == Ok("marker_function"))
        .map(|s| s.address())
        .expect("marker_function in the symbol table");
    (dir, address)
}

/// Splits the debug information of `prog` into `prog.debug` and strips `prog` completely.
fn split(dir: &Path) {
    run(dir, "objcopy", &["--only-keep-debug", "prog", "prog.debug"]);
    run(dir, "strip", &["--strip-all", "prog"]);
}

fn module(path: &Path) -> ModuleInfo {
    let metadata = std::fs::metadata(path).expect("binary");
    ModuleInfo {
        name: "prog".into(),
        path: path.to_string_lossy().into_owned().into(),
        bias: 0,
        range: 0..u64::MAX,
        file_id: FileId::of(&metadata),
        map_files: None,
        build_id: None,
    }
}

/// The functions at `address` of the binary at `path`, with `debug_dirs`.
fn resolve(path: &Path, address: u64, debug_dirs: &[PathBuf]) -> Vec<Symbol> {
    let mut budget = Budget {
        limit: u64::MAX,
        used: 0,
    };
    LoadedModule::load(&module(path), debug_dirs, &mut budget).resolve(address)
}

fn assert_named_with_line(symbols: &[Symbol], how: &str) {
    let outermost = symbols.last().unwrap_or_else(|| panic!("{how}: no symbol"));
    assert_eq!(
        outermost.function.as_deref(),
        Some("marker_function"),
        "{how}: {symbols:?}"
    );
    assert!(
        outermost
            .file
            .as_deref()
            .is_some_and(|f| f.ends_with("prog.c")),
        "{how}: {symbols:?}"
    );
    assert_eq!(outermost.line, Some(MARKER_LINE), "{how}: {symbols:?}");
}

fn has_no_line(symbols: &[Symbol]) -> bool {
    symbols.iter().all(|s| s.line.is_none())
}

#[test]
fn an_unstripped_binary_names_itself() {
    let (dir, address) = build(&[]);
    assert_named_with_line(
        &resolve(&dir.path().join("prog"), address, &[]),
        "unstripped",
    );
}

#[test]
fn a_debug_file_is_found_by_build_id() {
    let (dir, address) = build(&[]);
    split(dir.path());
    let binary = dir.path().join("prog");
    // Installed as a distribution does, under .build-id/xx/yyyy.debug of a debug directory.
    let data = std::fs::read(dir.path().join("prog.debug")).expect("debug file");
    let build_id = object::File::parse(&*data)
        .expect("ELF")
        .build_id()
        .expect("notes")
        .expect("a build-id")
        .to_vec();
    let root = dir.path().join("debug-root");
    let (first, rest) = build_id.split_first().expect("non-empty");
    let rest: String = rest.iter().map(|b| format!("{b:02x}")).collect();
    let place = root.join(".build-id").join(format!("{first:02x}"));
    std::fs::create_dir_all(&place).expect("mkdir");
    std::fs::rename(
        dir.path().join("prog.debug"),
        place.join(format!("{rest}.debug")),
    )
    .expect("install");
    // Not in the debug directories gmr looks in: no name (the symbol table went with
    // `strip --strip-all`).
    assert!(has_no_line(&resolve(&binary, address, &[])));
    assert_named_with_line(&resolve(&binary, address, &[root]), "build-id");
}

#[test]
fn a_debug_file_is_found_by_gnu_debuglink() {
    let (dir, address) = build(&[]);
    split(dir.path());
    run(
        dir.path(),
        "objcopy",
        &["--add-gnu-debuglink=prog.debug", "prog"],
    );
    // In the binary's `.debug/` directory, as the link's search path allows.
    std::fs::create_dir(dir.path().join(".debug")).expect("mkdir");
    std::fs::rename(
        dir.path().join("prog.debug"),
        dir.path().join(".debug").join("prog.debug"),
    )
    .expect("move");
    assert_named_with_line(
        &resolve(&dir.path().join("prog"), address, &[]),
        "debuglink",
    );
}

#[test]
fn a_debug_file_beside_the_binary_is_found() {
    let (dir, address) = build(&[]);
    split(dir.path());
    // No debuglink: `prog.debug` next to `prog` is found by its name.
    assert_named_with_line(&resolve(&dir.path().join("prog"), address, &[]), "beside");
}

#[test]
fn a_debug_file_of_another_build_is_not_used() {
    let (dir, address) = build(&[]);
    split(dir.path());
    // The debug file of a different program, under the right name.
    let (other, _) = build(&["-DUNUSED_DEFINE=1", "-Wl,--build-id=0x0123456789abcdef"]);
    split(other.path());
    std::fs::copy(
        other.path().join("prog.debug"),
        dir.path().join("prog.debug"),
    )
    .expect("copy");
    assert!(has_no_line(&resolve(
        &dir.path().join("prog"),
        address,
        &[]
    )));
}

#[test]
fn a_dwp_package_is_found() {
    // What `split-debuginfo = "packed"` gives on Linux: the binary with skeleton units (their
    // line tables stay in it) and `<binary>.dwp` beside it, with the functions and inlining.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("prog.rs"),
        "#[inline(always)]\nfn inlined_helper(x: u32) -> u32 { std::hint::black_box(x) * 3 + 1 }\n\
         #[inline(never)]\nfn marker_function(x: u32) -> u32 { inlined_helper(x) + 1 }\n\
         fn main() { println!(\"{}\", marker_function(std::env::args().count() as u32)); }\n",
    )
    .expect("source");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    run(
        dir.path(),
        &rustc,
        &[
            "-g",
            "-C",
            "split-debuginfo=packed",
            "-o",
            "prog",
            "prog.rs",
        ],
    );
    let binary = dir.path().join("prog");
    assert!(
        dir.path().join("prog.dwp").is_file(),
        "rustc wrote prog.dwp"
    );
    let data = std::fs::read(&binary).expect("binary");
    let (start, size) = object::File::parse(&*data)
        .expect("ELF")
        .symbols()
        .find(|s| {
            s.name()
                .is_ok_and(|n| super::demangle(n) == "prog::marker_function")
        })
        .map(|s| (s.address(), s.size()))
        .expect("marker_function in the symbol table");
    let inlined_at = |symbols: &[Symbol]| {
        symbols
            .iter()
            .any(|s| s.function.as_deref() == Some("prog::inlined_helper"))
    };
    // An address inside the inlined helper: named through the package.
    let (address, symbols) = (start..start + size)
        .map(|a| (a, resolve(&binary, a, &[])))
        .find(|(_, symbols)| inlined_at(symbols))
        .expect("the inlined helper is named from the .dwp");
    let outermost = symbols.last().expect("a symbol");
    assert_eq!(outermost.function.as_deref(), Some("prog::marker_function"));
    assert!(
        symbols
            .iter()
            .all(|s| s.file.as_deref().is_some_and(|f| f.ends_with("prog.rs"))),
        "{symbols:?}"
    );
    // Without the package the inlined function is gone.
    std::fs::remove_file(dir.path().join("prog.dwp")).expect("remove .dwp");
    assert!(!inlined_at(&resolve(&binary, address, &[])));
}

#[test]
fn a_stripped_rust_binary_finds_its_debug_file() {
    // A Rust binary keeps `.debug_gdb_scripts` (an allocated section) through `strip`: the
    // binary must not be taken for one with its DWARF in it.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("prog.rs"),
        "#[inline(never)]\nfn marker_function(x: u32) -> u32 { x * 3 + 1 }\n\
         fn main() { println!(\"{}\", marker_function(std::env::args().count() as u32)); }\n",
    )
    .expect("source");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    run(dir.path(), &rustc, &["-g", "-o", "prog", "prog.rs"]);
    let data = std::fs::read(dir.path().join("prog")).expect("binary");
    let address = object::File::parse(&*data)
        .expect("ELF")
        .symbols()
        .find(|s| {
            s.name()
                .is_ok_and(|n| super::demangle(n) == "prog::marker_function")
        })
        .map(|s| s.address())
        .expect("marker_function in the symbol table");
    split(dir.path());
    run(
        dir.path(),
        "objcopy",
        &["--add-gnu-debuglink=prog.debug", "prog"],
    );
    let symbols = resolve(&dir.path().join("prog"), address, &[]);
    let outermost = symbols.last().expect("a symbol");
    assert_eq!(outermost.function.as_deref(), Some("prog::marker_function"));
    assert_eq!(outermost.line, Some(2), "{symbols:?}");
}
