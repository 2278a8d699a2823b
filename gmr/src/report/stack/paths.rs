//! Where a source file comes from, and how the report shows its path.
//!
//! * a crate from a registry: `<cargo home>/registry/src/index.crates.io-<hash>/axum-0.8.9/src/routing/route.rs`
//!   is `axum-0.8.9/src/routing/route.rs`, of crate `axum`;
//! * a crate from git: `<cargo home>/git/checkouts/<name>-<hash>/<rev>/src/lib.rs` is
//!   `<name>@<rev>/src/lib.rs`;
//! * the toolchain: `/rustc/<hash>/library/std/src/thread/functions.rs` (or the same under a
//!   rustup toolchain's `rust-src`) is `std/src/thread/functions.rs`, of crate `std`;
//! * the application's workspace: relative to the workspace root, `examples/src/lib.rs`, of the
//!   crate in that directory;
//! * anything else as it is.

/// What a source path says about its frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The path as the report shows it.
    pub(crate) display: String,
    /// The package the file belongs to, as its directory names it (`hyper-util`, `std`).
    pub(crate) package: Option<String>,
    /// Where the package comes from.
    pub(crate) source: Source,
    /// The file's path inside its package's `src/`, e.g. `routing/route.rs`.
    pub(crate) in_src: Option<String>,
}

/// Where a package comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// crates.io or another registry.
    Registry,
    /// A git dependency.
    Git,
    /// The Rust toolchain (`std`, `core`, `alloc`, …).
    Toolchain,
    /// The application's workspace.
    Workspace,
    /// Somewhere else.
    Other,
}

/// How to read paths of one application: its workspace root, and the package whose manifest
/// is in which directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Workspace {
    /// The workspace root, without a trailing `/`.
    pub(crate) root: Option<String>,
    /// The application package: its directory relative to the root and its name.
    pub(crate) package: Option<(String, String)>,
}

impl Workspace {
    /// The workspace of a package whose manifest is in `manifest_dir`: the nearest ancestor
    /// with a `Cargo.lock` when the build tree is on this machine, else the manifest's parent.
    pub(crate) fn of(manifest_dir: &str, package: &str) -> Workspace {
        let manifest = std::path::Path::new(manifest_dir);
        if manifest_dir.is_empty() || !manifest.is_absolute() {
            return Workspace::default();
        }
        let root = manifest
            .ancestors()
            .find(|dir| dir.join("Cargo.lock").is_file())
            .or_else(|| manifest.parent())
            .unwrap_or(manifest);
        let relative = manifest
            .strip_prefix(root)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        Workspace {
            root: Some(root.to_string_lossy().trim_end_matches('/').to_owned()),
            package: Some((relative, package.to_owned())),
        }
    }
}

/// The origin of `file`.
pub(crate) fn origin(file: &str, workspace: &Workspace) -> Origin {
    if let Some(rest) = after(file, "/registry/src/") {
        // `index.crates.io-<hash>/axum-0.8.9/src/…`
        let rest = rest.split_once('/').map_or(rest, |(_, r)| r);
        let (dir, tail) = rest.split_once('/').unwrap_or((rest, ""));
        return Origin {
            display: rest.to_owned(),
            package: Some(strip_version(dir).to_owned()),
            source: Source::Registry,
            in_src: tail.strip_prefix("src/").map(str::to_owned),
        };
    }
    if let Some(rest) = after(file, "/git/checkouts/") {
        // `<name>-<hash>/<rev>/…`
        let mut parts = rest.splitn(3, '/');
        let (dir, rev, tail) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let name = dir.rsplit_once('-').map_or(dir, |(n, _)| n);
        return Origin {
            display: format!("{name}@{rev}/{tail}"),
            package: Some(name.to_owned()),
            source: Source::Git,
            in_src: tail.strip_prefix("src/").map(str::to_owned),
        };
    }
    if let Some(rest) = after(file, "/library/")
        .filter(|_| file.starts_with("/rustc/") || file.contains("/rustlib/src/rust/"))
    {
        let (package, tail) = rest.split_once('/').unwrap_or((rest, ""));
        return Origin {
            display: rest.to_owned(),
            package: Some(package.to_owned()),
            source: Source::Toolchain,
            in_src: tail.strip_prefix("src/").map(str::to_owned),
        };
    }
    if let Some(root) = &workspace.root
        && let Some(relative) = file
            .strip_prefix(root.as_str())
            .and_then(|r| r.strip_prefix('/'))
    {
        let (package, in_src) = workspace_package(relative, workspace);
        return Origin {
            display: relative.to_owned(),
            package,
            source: Source::Workspace,
            in_src,
        };
    }
    Origin {
        display: file.to_owned(),
        package: None,
        source: Source::Other,
        in_src: None,
    }
}

/// The package of a workspace file (`gmr-tower/src/inflight/mod.rs` → `gmr-tower`, or the
/// application's own package for a file under its directory) and its path inside `src/`.
fn workspace_package(relative: &str, workspace: &Workspace) -> (Option<String>, Option<String>) {
    if let Some((dir, name)) = &workspace.package {
        let inside = if dir.is_empty() {
            Some(relative)
        } else {
            relative
                .strip_prefix(dir.as_str())
                .and_then(|r| r.strip_prefix('/'))
        };
        if let Some(inside) = inside
            && let Some(in_src) = inside.strip_prefix("src/")
        {
            return (Some(name.clone()), Some(in_src.to_owned()));
        }
    }
    match relative.split_once("/src/") {
        Some((dir, in_src)) if !dir.contains('/') => {
            (Some(dir.to_owned()), Some(in_src.to_owned()))
        }
        _ => (None, None),
    }
}

/// The text after the first `marker` in `path`.
fn after<'a>(path: &'a str, marker: &str) -> Option<&'a str> {
    path.find(marker).map(|at| &path[at + marker.len()..])
}

/// `hyper-util-0.1.21` → `hyper-util`: the package name before its version.
fn strip_version(dir: &str) -> &str {
    let mut name = dir;
    while let Some((head, tail)) = name.rsplit_once('-') {
        if tail.chars().next().is_some_and(|c| c.is_ascii_digit()) && tail.contains('.') {
            return head;
        }
        name = head;
    }
    dir
}

/// The module path of a file inside `src/`: `routing/route.rs` → `routing::route`,
/// `lib.rs` → ``, `a/mod.rs` → `a`, `bin/x.rs` → `` (a binary crate's root).
pub(crate) fn module_path(in_src: &str) -> String {
    let without = in_src.strip_suffix(".rs").unwrap_or(in_src);
    if without.starts_with("bin/") {
        return String::new();
    }
    let parts: Vec<&str> = without
        .split('/')
        .filter(|p| !matches!(*p, "lib" | "main" | "mod"))
        .collect();
    parts.join("::")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> Workspace {
        Workspace {
            root: Some("/work/main".into()),
            package: Some(("examples".into(), "gmr-examples".into())),
        }
    }

    #[test]
    fn registry_git_toolchain_and_workspace_paths() {
        let o = origin(
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/axum-0.8.9/src/routing/route.rs",
            &ws(),
        );
        assert_eq!(o.display, "axum-0.8.9/src/routing/route.rs");
        assert_eq!(o.package.as_deref(), Some("axum"));
        assert_eq!(o.source, Source::Registry);
        assert_eq!(o.in_src.as_deref(), Some("routing/route.rs"));
        let o = origin(
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hyper-util-0.1.21/src/service/glue.rs",
            &ws(),
        );
        assert_eq!(o.package.as_deref(), Some("hyper-util"));
        let o = origin(
            "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/std/src/thread/functions.rs",
            &ws(),
        );
        assert_eq!(o.display, "std/src/thread/functions.rs");
        assert_eq!(o.package.as_deref(), Some("std"));
        assert_eq!(o.source, Source::Toolchain);
        let o = origin(
            "/home/me/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/lib/rustlib/src/rust/library/core/src/future/future.rs",
            &ws(),
        );
        assert_eq!(o.display, "core/src/future/future.rs");
        let o = origin(
            "/root/.cargo/git/checkouts/mylib-0123abcd/4f2e1a9/src/pool.rs",
            &ws(),
        );
        assert_eq!(o.display, "mylib@4f2e1a9/src/pool.rs");
        assert_eq!(o.package.as_deref(), Some("mylib"));
        let o = origin("/work/main/examples/src/lib.rs", &ws());
        assert_eq!(o.display, "examples/src/lib.rs");
        assert_eq!(o.package.as_deref(), Some("gmr-examples"));
        assert_eq!(o.source, Source::Workspace);
        let o = origin("/work/main/gmr-tower/src/inflight/mod.rs", &ws());
        assert_eq!(o.package.as_deref(), Some("gmr-tower"));
        assert_eq!(o.in_src.as_deref(), Some("inflight/mod.rs"));
        let o = origin("/usr/include/stdio.h", &ws());
        assert_eq!(
            (o.display.as_str(), o.source),
            ("/usr/include/stdio.h", Source::Other)
        );
    }

    #[test]
    fn module_paths() {
        assert_eq!(module_path("routing/route.rs"), "routing::route");
        assert_eq!(module_path("lib.rs"), "");
        assert_eq!(module_path("inflight/mod.rs"), "inflight");
        assert_eq!(module_path("bin/axum-demo.rs"), "");
        assert_eq!(strip_version("tokio-1.54.1"), "tokio");
        assert_eq!(strip_version("h2-0.4.5"), "h2");
        assert_eq!(strip_version("no-version"), "no-version");
    }
}
