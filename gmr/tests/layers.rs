//! The layers of gmr point one way (`docs/architecture.md`): no module imports from a layer
//! above its own. This test reads gmr's sources, finds every `crate::…` and `super::…` path
//! outside tests and comments, and checks the layer of what it names.

use std::path::{Path, PathBuf};

/// The layers, lowest first: a module may use its own layer and those below.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "report model and views, settings types",
        &[
            "report",
            "error",
            "package",
            "secrets",
            "procfs",
            "config",
            "config::types",
            "config::duration",
        ],
    ),
    (
        "sections and their sources, sinks",
        &[
            "sections", "capture", "registry", "requests", "runtimes", "sink", "threads", "tracing",
        ],
    ),
    ("engine", &["engine"]),
    ("reporter", &["reporter"]),
    ("triggers", &["triggers"]),
    (
        "autorun, builder, reading and validating the configuration",
        &["autorun", "builder", "config::read", "config::validate"],
    ),
];

/// The layer of a module path (`capture::sys`, `config::read`): its longest listed prefix.
fn layer_of(module: &str) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (rank, (_, modules)) in LAYERS.iter().enumerate() {
        for m in *modules {
            let matches = module == *m || module.starts_with(&format!("{m}::"));
            if matches && best.is_none_or(|(len, _)| m.len() > len) {
                best = Some((m.len(), rank));
            }
        }
    }
    best.map(|(_, rank)| rank)
}

/// The module path of a source file: `src/capture/sys.rs` → `capture::sys`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its `#[cfg(test)]` modules and comments.
fn code(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut skipping_tests = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            skipping_tests = true;
        }
        if skipping_tests {
            // Test modules are the last item of a file here.
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        lines.push(line.split("//").next().unwrap_or("").to_owned());
    }
    lines
}

/// The module paths a line refers to: `crate::a::b` and `super::…` resolved from `module`.
fn references(line: &str, module: &str) -> Vec<String> {
    let mut found = Vec::new();
    let idents = |rest: &str| -> Vec<String> {
        rest.split("::")
            .map(|seg| {
                seg.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .take_while(|seg| seg.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
            .collect()
    };
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().last();
        let after = &rest[at + "crate::".len()..];
        if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$')) {
            found.push(idents(after).join("::"));
        }
        rest = after;
    }
    let mut rest = line;
    while let Some(at) = rest.find("super::") {
        let before = rest[..at].chars().last();
        let mut after = &rest[at..];
        if before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':')) {
            // `super` of `a::b` is `a`, whether `a::b` lives in `a/b.rs` or `a/b/mod.rs`.
            let mut base: Vec<&str> = module.split("::").collect();
            base.pop();
            while let Some(tail) = after.strip_prefix("super::") {
                after = tail;
                if tail.starts_with("super::") {
                    base.pop();
                }
            }
            let mut path: Vec<String> = base.iter().map(|s| (*s).to_owned()).collect();
            path.extend(idents(after));
            found.push(path.join("::"));
            rest = after;
        } else {
            rest = &rest[at + "super::".len()..];
        }
    }
    found.retain(|p| !p.is_empty());
    found
}

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut unplaced = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" {
            continue; // the crate root declares and re-exports everything
        }
        let Some(own) = layer_of(&module) else {
            unplaced.push(module);
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read source");
        // Inline modules (`mod linux { … }`) nest the module path of the lines inside them.
        let mut inline: Vec<(String, i64)> = Vec::new();
        let mut depth: i64 = 0;
        for (n, line) in code(&text).iter().enumerate() {
            let trimmed = line.trim_start();
            let declared = trimmed
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ")
                .strip_prefix("mod ")
                .and_then(|rest| rest.trim_end().strip_suffix('{'))
                .map(|name| name.trim().to_owned());
            let here = std::iter::once(module.clone())
                .chain(inline.iter().map(|(name, _)| name.clone()))
                .collect::<Vec<_>>()
                .join("::");
            for target in references(line, &here) {
                match layer_of(&target) {
                    Some(theirs) if theirs > own => violations.push(format!(
                        "{}:{}: `{here}` ({}) uses `{target}` ({})",
                        file.strip_prefix(&src).unwrap_or(file).display(),
                        n + 1,
                        LAYERS[own].0,
                        LAYERS[theirs].0
                    )),
                    Some(_) => {}
                    None => unplaced.push(target),
                }
            }
            if let Some(name) = declared {
                inline.push((name, depth));
            }
            depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
            while inline.last().is_some_and(|(_, opened)| depth <= *opened) {
                inline.pop();
            }
        }
    }
    unplaced.sort();
    unplaced.dedup();
    assert!(
        unplaced.is_empty(),
        "modules not placed in a layer of this test (and of docs/architecture.md): {unplaced:?}"
    );
    assert!(
        violations.is_empty(),
        "imports from a layer above:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_an_upward_import() {
    let refs = references("use crate::engine::Gmr;", "sink::dir");
    assert_eq!(refs, vec!["engine".to_owned()]);
    assert!(layer_of("engine") > layer_of("sink::dir"));
    let refs = references("use super::super::handler;", "capture::sys");
    assert_eq!(refs, vec!["handler".to_owned()]);
    let refs = references("use super::duration;", "config::read");
    assert_eq!(refs, vec!["config::duration".to_owned()]);
    let refs = references("use super::ReportContext;", "sections::threads");
    assert_eq!(refs, vec!["sections".to_owned()]);
    assert_eq!(layer_of("config::read"), Some(5));
    assert_eq!(layer_of("config::types"), Some(0));
}

#[test]
fn unsafe_code_lives_under_capture_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut offenders = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap_or(file);
        if rel.starts_with("capture") {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read source");
        let uses_unsafe = code(&text).iter().any(|line| {
            line.contains("unsafe ")
                || line.contains("unsafe{")
                || line.contains("allow(unsafe_code)")
        });
        if uses_unsafe {
            offenders.push(format!("{} uses unsafe", rel.display()));
        }
        // Every top-level module (a file directly in src/, or a directory's mod.rs) forbids it.
        let top_level = rel.components().count() == 1
            || (rel.components().count() == 2 && rel.ends_with("mod.rs"));
        if top_level && rel != Path::new("lib.rs") && !text.contains("#![forbid(unsafe_code)]") {
            offenders.push(format!("{} does not forbid unsafe code", rel.display()));
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}
