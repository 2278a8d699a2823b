//! Which files hold a module's symbols: the file that is mapped (not a newer one at the same
//! path), and its debug information, in the binary itself or split off beside it.
//!
//! The mapped file is the one at the module's path when its device and inode are those of the
//! mapping; otherwise (replaced by a deployment, or deleted) it is opened through
//! `/proc/self/map_files`, which always gives the mapped inode. Separate debug files are found
//! the way gdb finds them:
//!
//! * by build-id: `/usr/lib/debug/.build-id/xx/yyyy….debug` (and under every directory of
//!   `threads.debug_dirs`, `/usr/lib/debug` by default);
//! * by `.gnu_debuglink`: the named file next to the binary, in its `.debug/` directory, or
//!   under a debug directory followed by the binary's directory;
//! * `<binary>.debug` next to the binary;
//! * `split-debuginfo = "packed"`: `<binary>.dwp` next to the binary, which addr2line's loader
//!   opens itself from the binary's skeleton units.
//!
//! A debug file with a build-id that differs from the binary's is not used.

use std::fs::File;
use std::path::{Path, PathBuf};

use object::{Object as _, ObjectSection as _};

use crate::capture::modules::{FileId, ModuleInfo};

/// Where a module's symbols are read from.
#[derive(Debug, Clone)]
pub(super) struct Located {
    /// The mapped file.
    pub(super) object: PathBuf,
    /// The file with its DWARF, when there is one (the object itself, or a separate file).
    pub(super) dwarf: Option<PathBuf>,
    /// How the DWARF was found, for the report: `in the binary`, `build-id`, `.gnu_debuglink`,
    /// `beside the binary`, `.dwp`.
    pub(super) dwarf_source: Option<&'static str>,
    /// Bytes of DWARF that loading it may touch (the debug sections, and a `.dwp`).
    pub(super) dwarf_bytes: u64,
    /// The file was replaced on disk: read through `/proc/self/map_files`.
    pub(super) replaced: bool,
}

/// Finds the files of `module`.
///
/// # Errors
///
/// Why its symbols cannot be read (the mapped file cannot be opened).
pub(super) fn locate(module: &ModuleInfo, debug_dirs: &[PathBuf]) -> Result<Located, String> {
    let path = Path::new(&*module.path);
    let same_file = std::fs::metadata(path)
        .map(|m| FileId::of(&m) == module.file_id)
        .unwrap_or(false);
    let (object, replaced) = if same_file {
        (path.to_path_buf(), false)
    } else {
        match &module.map_files {
            Some(map_files) if File::open(&**map_files).is_ok() => {
                (PathBuf::from(&**map_files), true)
            }
            _ => {
                return Err(format!(
                    "{} was replaced on disk and the mapped copy cannot be read",
                    module.path
                ));
            }
        }
    };
    locate_debug(object, path, replaced, debug_dirs)
}

/// Finds the files of a module of a report's process, on another machine (`gmr symbolize`):
/// the file of this build, verified by its build-id, at the module's path, or as `<name>` or
/// `<name>.debug` in a debug directory, or as `.build-id/xx/yyyy….debug` under one; then its
/// debug information from there, as [`locate`] does.
///
/// # Errors
///
/// Why no file of this build was found, and where it was looked for.
pub(super) fn locate_offline(
    name: &str,
    path: &str,
    build_id: &[u8],
    debug_dirs: &[PathBuf],
) -> Result<Located, String> {
    let mut files = vec![PathBuf::from(path)];
    if !name.is_empty() && !name.contains('/') && name != "." && name != ".." {
        for dir in debug_dirs {
            files.push(dir.join(name));
            files.push(dir.join(format!("{name}.debug")));
        }
    }
    files.extend(
        candidates(Path::new(path), Some(build_id), None, debug_dirs)
            .into_iter()
            .map(|(candidate, _)| candidate),
    );
    // The first file of this build whose DWARF is found (in it or split off from it); else the
    // first of this build at all (a symbol table may still name its functions).
    let mut tried = Vec::new();
    let mut without_dwarf = None;
    for file in files {
        if tried.contains(&file) {
            continue;
        }
        tried.push(file.clone());
        if file_build_id(&file).as_deref() != Some(build_id) {
            continue;
        }
        match locate_debug(file.clone(), &file, false, debug_dirs) {
            Ok(located) if located.dwarf.is_some() => return Ok(located),
            Ok(located) => {
                without_dwarf.get_or_insert(located);
            }
            Err(_) => {}
        }
    }
    without_dwarf.ok_or_else(|| {
        let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        format!(
            "no file of this build (build-id {}) in {}",
            hex(build_id),
            tried.join(", ")
        )
    })
}

/// The build-id of the ELF file at `path`, if it is one and has one.
fn file_build_id(path: &Path) -> Option<Vec<u8>> {
    let file = File::open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let cache = object::ReadCache::new(file);
    let parsed = object::File::parse(&cache).ok()?;
    parsed.build_id().ok().flatten().map(<[u8]>::to_vec)
}

/// Bytes as lowercase hex.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Finds the debug information of `object` (read through `object`; `path` is where its
/// sibling files, a `.dwp`, a `.gnu_debuglink` target, are).
fn locate_debug(
    object: PathBuf,
    path: &Path,
    replaced: bool,
    debug_dirs: &[PathBuf],
) -> Result<Located, String> {
    let file = File::open(&object).map_err(|e| format!("cannot open {}: {e}", object.display()))?;
    let cache = object::ReadCache::new(file);
    let parsed = object::File::parse(&cache)
        .map_err(|e| format!("cannot parse {}: {e}", object.display()))?;
    let own = debug_bytes(&parsed);
    let build_id = parsed.build_id().ok().flatten().map(<[u8]>::to_vec);
    let mut located = Located {
        object: object.clone(),
        dwarf: None,
        dwarf_source: None,
        dwarf_bytes: 0,
        replaced,
    };
    if own > 0 {
        // The binary has DWARF; a `.dwp` beside it holds the split units, if any.
        let dwp = dwp_size(path);
        located.dwarf = Some(object);
        located.dwarf_source = Some(if dwp > 0 { ".dwp" } else { "in the binary" });
        located.dwarf_bytes = own + dwp;
        return Ok(located);
    }
    let debuglink = parsed
        .gnu_debuglink()
        .ok()
        .flatten()
        .map(|(name, _crc)| String::from_utf8_lossy(name).into_owned());
    let candidates = candidates(path, build_id.as_deref(), debuglink.as_deref(), debug_dirs);
    for (candidate, source) in candidates {
        if let Some(bytes) = usable_debug_file(&candidate, build_id.as_deref()) {
            located.dwarf = Some(candidate);
            located.dwarf_source = Some(source);
            located.dwarf_bytes = bytes;
            break;
        }
    }
    Ok(located)
}

/// The separate debug files to try, in gdb's order.
fn candidates(
    binary: &Path,
    build_id: Option<&[u8]>,
    debuglink: Option<&str>,
    debug_dirs: &[PathBuf],
) -> Vec<(PathBuf, &'static str)> {
    let mut out = Vec::new();
    if let Some((first, rest)) = build_id.and_then(<[u8]>::split_first) {
        let rest: String = rest.iter().map(|b| format!("{b:02x}")).collect();
        for root in debug_dirs {
            out.push((
                root.join(".build-id")
                    .join(format!("{first:02x}"))
                    .join(format!("{rest}.debug")),
                "build-id",
            ));
        }
    }
    let dir = binary.parent().unwrap_or(Path::new("/"));
    if let Some(link) = debuglink.filter(|l| !l.is_empty() && !l.contains('/')) {
        out.push((dir.join(link), ".gnu_debuglink"));
        out.push((dir.join(".debug").join(link), ".gnu_debuglink"));
        let relative = dir.strip_prefix("/").unwrap_or(dir);
        for root in debug_dirs {
            out.push((root.join(relative).join(link), ".gnu_debuglink"));
        }
    }
    if let Some(name) = binary.file_name() {
        let mut beside = name.to_os_string();
        beside.push(".debug");
        out.push((dir.join(beside), "beside the binary"));
    }
    out
}

/// The DWARF bytes of a debug file, if it is one for a binary with `build_id`.
fn usable_debug_file(path: &Path, build_id: Option<&[u8]>) -> Option<u64> {
    let file = File::open(path).ok()?;
    let cache = object::ReadCache::new(file);
    let parsed = object::File::parse(&cache).ok()?;
    if let (Some(want), Ok(Some(have))) = (build_id, parsed.build_id())
        && want != have
    {
        tracing::debug!(path = %path.display(), "gmr skips a debug file of another build");
        return None;
    }
    let bytes = debug_bytes(&parsed);
    (bytes > 0).then_some(bytes)
}

/// The size of the DWARF sections of an object file, 0 when it has no `.debug_info` (a
/// stripped binary keeps `.debug_gdb_scripts`, an allocated section that is not DWARF).
fn debug_bytes<'data, R: object::ReadRef<'data>>(file: &object::File<'data, R>) -> u64 {
    let dwarf = |name: &str| {
        (name.starts_with(".debug_") || name.starts_with(".zdebug_"))
            && name != ".debug_gdb_scripts"
    };
    let has_info = file.sections().any(|s| {
        s.name()
            .is_ok_and(|n| n == ".debug_info" || n == ".zdebug_info")
    });
    if !has_info {
        return 0;
    }
    file.sections()
        .filter(|s| s.name().is_ok_and(dwarf))
        .map(|s| s.size())
        .sum()
}

/// The size of `<binary>.dwp`, 0 when there is none.
fn dwp_size(binary: &Path) -> u64 {
    let mut dwp = binary.as_os_str().to_os_string();
    dwp.push(".dwp");
    std::fs::metadata(dwp).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_file_candidates_follow_gdb() {
        let found = candidates(
            Path::new("/opt/app/bin/server"),
            Some(&[0xab, 0xcd, 0xef]),
            Some("server.debug"),
            &[PathBuf::from("/usr/lib/debug")],
        );
        let paths: Vec<String> = found.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(
            paths,
            vec![
                "/usr/lib/debug/.build-id/ab/cdef.debug",
                "/opt/app/bin/server.debug",
                "/opt/app/bin/.debug/server.debug",
                "/usr/lib/debug/opt/app/bin/server.debug",
                "/opt/app/bin/server.debug",
            ]
        );
        assert_eq!(found[0].1, "build-id");
        // A debuglink with a directory in it is not followed.
        assert_eq!(
            candidates(Path::new("/bin/x"), None, Some("../evil"), &[]).len(),
            1
        );
    }
}
