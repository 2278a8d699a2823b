//! Stack frames as the report shows them: the same model and renderer for thread stacks and
//! task stacks.
//!
//! A frame has its full name and source path (the JSON keeps them) and what the text view
//! shows: a short name (generic arguments elided, a path added to bare names), a short path
//! (`axum-0.8.9/src/routing/route.rs:149`, `std/src/thread/functions.rs:289`, the application's
//! files relative to its workspace), and a kind: application, library, framework, std, system.
//! The text view folds runs of framework, std and system frames into one line and always shows
//! the innermost frames and every application and library frame.

mod fold;
mod names;
mod paths;

use serde::{Deserialize, Serialize};

#[cfg(feature = "html")]
pub(crate) use self::fold::shown;
pub(crate) use self::fold::write_frames;
pub(crate) use self::paths::Workspace;
use self::paths::{Origin, Source};
use crate::config::FoldConfig;

/// Who a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FrameKind {
    /// The application's own code (its workspace, or its crate).
    Application,
    /// A dependency that is not a runtime or framework crate.
    Library,
    /// A runtime or web-framework crate (tokio, hyper, tower, axum, actix, futures, …), gmr's
    /// adapters included, and the crates in `threads.fold`.
    Framework,
    /// The standard library (`std`, `core`, `alloc`).
    Std,
    /// A system library (libc, the dynamic loader).
    System,
    /// An address in no known module.
    Unknown,
}

/// One function in a stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct FrameEntry {
    /// Demangled function name without hash, with its generic arguments; `None` when unknown.
    pub(crate) function: Option<String>,
    /// The name the text view shows: generic arguments elided, a path added to bare names.
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// Source file, as the debug information gives it.
    pub(crate) file: Option<String>,
    /// The source path the text view shows (`axum-0.8.9/src/routing/route.rs`).
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// Line.
    pub(crate) line: Option<u32>,
    /// Column.
    pub(crate) column: Option<u32>,
    /// Module file name.
    pub(crate) module: Option<String>,
    /// Offset in the module (`addr2line -e <module> <offset>`), hex.
    pub(crate) offset: Option<String>,
    /// Absolute address, hex.
    pub(crate) address: String,
    /// Whether this function was inlined into the next frame.
    pub(crate) inlined: bool,
    /// Who the frame belongs to.
    #[serde(default = "unknown")]
    pub(crate) kind: FrameKind,
    /// The package of the frame (`hyper-util`, `std`, the application's package).
    #[serde(default, rename = "crate")]
    pub(crate) package: Option<String>,
}

/// Functions that the compiler and the C runtime put around every Rust program and thread
/// (`main`, `_start`, `__rust_try`, …): plumbing, like std.
fn is_runtime_glue(name: &str) -> bool {
    matches!(name, "main" | "_start") || name.starts_with("__rust_")
}

fn unknown() -> FrameKind {
    FrameKind::Unknown
}

/// What a frame is made from.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawSymbol<'a> {
    /// The demangled function name.
    pub(crate) function: Option<&'a str>,
    /// The source file.
    pub(crate) file: Option<&'a str>,
    /// Line.
    pub(crate) line: Option<u32>,
    /// Column.
    pub(crate) column: Option<u32>,
    /// Module file name.
    pub(crate) module: Option<&'a str>,
    /// Offset in the module.
    pub(crate) offset: Option<u64>,
    /// Absolute address.
    pub(crate) address: u64,
    /// Inlined into the next frame.
    pub(crate) inlined: bool,
    /// The module is a system library.
    pub(crate) system: bool,
}

/// How frames of one application are read: its workspace and crate, and what to fold.
#[derive(Debug, Clone, Default)]
pub(crate) struct StackStyle {
    /// Where the application's files are.
    pub(crate) workspace: Workspace,
    /// The application's crate name (`inventory_svc`), for frames without a source path.
    pub(crate) app_crate: Option<String>,
    /// What the text view folds.
    pub(crate) fold: FoldConfig,
}

/// A [`StackStyle`] as a report's JSON keeps it (`threads.style`): how the process named and
/// classified its frames, so that frames named later, offline (`gmr symbolize`), read as the
/// process would have named them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StyleEntry {
    /// The root of the workspace the application was built in.
    #[serde(default)]
    pub(crate) workspace_root: Option<String>,
    /// The application package's directory, relative to the root.
    #[serde(default)]
    pub(crate) package_dir: Option<String>,
    /// The application package's name.
    #[serde(default)]
    pub(crate) package: Option<String>,
    /// The application's crate name.
    #[serde(default)]
    pub(crate) app_crate: Option<String>,
    /// The crates `threads.fold` adds to the folded ones.
    #[serde(default)]
    pub(crate) fold_crates: Vec<String>,
}

impl StackStyle {
    /// This style as the JSON keeps it.
    pub(crate) fn entry(&self) -> StyleEntry {
        StyleEntry {
            workspace_root: self.workspace.root.clone(),
            package_dir: self.workspace.package.as_ref().map(|(dir, _)| dir.clone()),
            package: self
                .workspace
                .package
                .as_ref()
                .map(|(_, name)| name.clone()),
            app_crate: self.app_crate.clone(),
            fold_crates: self.fold.extra_crates.clone(),
        }
    }

    /// The style a report's JSON recorded.
    #[cfg_attr(
        not(all(
            target_os = "linux",
            any(target_arch = "x86_64", target_arch = "aarch64")
        )),
        allow(dead_code)
    )]
    pub(crate) fn from_entry(entry: &StyleEntry) -> StackStyle {
        StackStyle {
            workspace: Workspace {
                root: entry.workspace_root.clone(),
                package: entry
                    .package
                    .clone()
                    .map(|name| (entry.package_dir.clone().unwrap_or_default(), name)),
            },
            app_crate: entry.app_crate.clone(),
            fold: FoldConfig {
                extra_crates: entry.fold_crates.clone(),
                ..FoldConfig::default()
            },
        }
    }
}

/// Runtime and framework crates: their frames fold (as package names, `*` a prefix).
const FRAMEWORK_CRATES: &[&str] = &[
    "tokio",
    "tokio-*",
    "mio",
    "hyper",
    "hyper-*",
    "h2",
    "h3",
    "http",
    "http-body",
    "http-body-*",
    "httparse",
    "want",
    "try-lock",
    "tower",
    "tower-*",
    "axum",
    "axum-*",
    "actix",
    "actix-*",
    "futures",
    "futures-*",
    "async-*",
    "pin-project",
    "pin-project-lite",
    "tracing",
    "tracing-*",
    "parking_lot",
    "parking_lot_core",
    "lock_api",
    "crossbeam-*",
    "rayon",
    "rayon-core",
    "socket2",
    "signal-hook",
    "signal-hook-*",
    "bytes",
    "slab",
    "gmr",
    "gmr-*",
    "backtrace",
    "tonic",
    "tonic-*",
    "warp",
    "poem",
    "salvo",
    "rocket",
    "tower_service",
];

/// The standard library's crates.
const STD_CRATES: &[&str] = &[
    "std",
    "core",
    "alloc",
    "proc_macro",
    "panic_unwind",
    "panic_abort",
];

/// Whether `package` matches `pattern` (`actix-*` matches `actix-web`), `-` and `_` alike.
fn matches(pattern: &str, package: &str) -> bool {
    let norm = |s: &str| s.replace('_', "-");
    let (pattern, package) = (norm(pattern), norm(package));
    match pattern.strip_suffix('*') {
        Some(prefix) => package.starts_with(prefix),
        None => pattern == package,
    }
}

impl StackStyle {
    /// The kind of a frame of `package` from `source`.
    fn kind(&self, package: Option<&str>, source: Source, system: bool) -> FrameKind {
        if system {
            return FrameKind::System;
        }
        let Some(package) = package else {
            return if source == Source::Workspace {
                FrameKind::Application
            } else {
                FrameKind::Unknown
            };
        };
        if source == Source::Toolchain || STD_CRATES.contains(&package) {
            return FrameKind::Std;
        }
        let own = self
            .workspace
            .package
            .as_ref()
            .is_some_and(|(_, name)| matches(name, package))
            || self
                .app_crate
                .as_deref()
                .is_some_and(|app| matches(app, package));
        if own {
            return FrameKind::Application;
        }
        let folded = FRAMEWORK_CRATES
            .iter()
            .copied()
            .chain(self.fold.extra_crates.iter().map(String::as_str))
            .any(|p| matches(p, package));
        if folded {
            return FrameKind::Framework;
        }
        match source {
            Source::Workspace => FrameKind::Application,
            Source::Registry | Source::Git => FrameKind::Library,
            Source::Toolchain => FrameKind::Std,
            Source::Other => FrameKind::Library,
        }
    }

    /// The frame of `raw`.
    pub(crate) fn frame(&self, raw: &RawSymbol<'_>) -> FrameEntry {
        let origin: Option<Origin> = raw.file.map(|f| paths::origin(f, &self.workspace));
        let function = raw.function.map(str::to_owned);
        // The package: from the source path, else from the name's path.
        let package = origin
            .as_ref()
            .and_then(|o| o.package.clone())
            .or_else(|| raw.function.and_then(names::crate_of).map(str::to_owned));
        let source = origin.as_ref().map_or(Source::Other, |o| o.source);
        let kind = if raw.module.is_none() && raw.function.is_none() {
            FrameKind::Unknown
        } else if package.is_none() && raw.function.is_some_and(is_runtime_glue) {
            FrameKind::Std
        } else {
            self.kind(package.as_deref(), source, raw.system)
        };
        let name = raw.function.map(|f| {
            let short = names::elide_generics(f);
            if names::has_path(&short) {
                return short;
            }
            // A bare name from the debug information: its crate and module from the path.
            match (&package, origin.as_ref().and_then(|o| o.in_src.as_deref())) {
                (Some(package), Some(in_src)) => {
                    let module = paths::module_path(in_src);
                    let krate = package.replace('-', "_");
                    if module.is_empty() {
                        format!("{krate}::{short}")
                    } else {
                        format!("{krate}::{module}::{short}")
                    }
                }
                _ => short,
            }
        });
        FrameEntry {
            function,
            name,
            file: raw.file.map(str::to_owned),
            path: origin.map(|o| o.display),
            line: raw.line,
            column: raw.column,
            module: raw.module.map(str::to_owned),
            offset: raw.offset.map(|o| format!("{o:#x}")),
            address: format!("{:#x}", raw.address),
            inlined: raw.inlined,
            kind,
            package: package.or_else(|| {
                if raw.system {
                    raw.module.map(str::to_owned)
                } else {
                    (kind == FrameKind::Std).then(|| "std".to_owned())
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn style() -> StackStyle {
        StackStyle {
            workspace: Workspace {
                root: Some("/work/main".into()),
                package: Some(("examples".into(), "gmr-examples".into())),
            },
            app_crate: Some("gmr_examples".into()),
            fold: FoldConfig::default(),
        }
    }

    fn raw<'a>(function: &'a str, file: Option<&'a str>) -> RawSymbol<'a> {
        RawSymbol {
            function: Some(function),
            file,
            line: Some(10),
            module: Some("app"),
            offset: Some(0x10),
            address: 0x5000,
            ..RawSymbol::default()
        }
    }

    #[test]
    fn kinds_names_and_paths() {
        let s = style();
        let f = s.frame(&raw(
            "poll<core::pin::Pin<X>>",
            Some("/root/.cargo/registry/src/index.crates.io-1/futures-util-0.3.34/src/future/future/map.rs"),
        ));
        assert_eq!(f.kind, FrameKind::Framework);
        assert_eq!(
            f.name.as_deref(),
            Some("futures_util::future::future::map::poll<…>")
        );
        assert_eq!(
            f.path.as_deref(),
            Some("futures-util-0.3.34/src/future/future/map.rs")
        );
        assert_eq!(f.package.as_deref(), Some("futures-util"));

        let f = s.frame(&raw(
            "demo_block_handler",
            Some("/work/main/examples/src/lib.rs"),
        ));
        assert_eq!(f.kind, FrameKind::Application);
        assert_eq!(f.name.as_deref(), Some("gmr_examples::demo_block_handler"));

        let f = s.frame(&raw(
            "std::thread::sleep",
            Some("/rustc/abc/library/std/src/thread/functions.rs"),
        ));
        assert_eq!(f.kind, FrameKind::Std);

        let f = s.frame(&raw(
            "serde_json::de::from_str",
            Some("/root/.cargo/registry/src/index.crates.io-1/serde_json-1.0.1/src/de.rs"),
        ));
        assert_eq!(f.kind, FrameKind::Library);

        // No debug info: the crate from the symbol's path.
        let f = s.frame(&raw("gmr_examples::demo_block_handler", None));
        assert_eq!(f.kind, FrameKind::Application);
        let f = s.frame(&raw("tokio::runtime::park::park", None));
        assert_eq!(f.kind, FrameKind::Framework);
        assert_eq!(s.frame(&raw("__rust_try", None)).kind, FrameKind::Std);
        assert_eq!(s.frame(&raw("main", None)).kind, FrameKind::Std);
        let mut sys = raw("clock_nanosleep", None);
        sys.system = true;
        sys.module = Some("libc.so.6");
        assert_eq!(s.frame(&sys).kind, FrameKind::System);

        // Extra crates to fold.
        let mut s = style();
        s.fold.extra_crates = vec!["serde_*".into()];
        let f = s.frame(&raw(
            "serde_json::de::from_str",
            Some("/root/.cargo/registry/src/index.crates.io-1/serde_json-1.0.1/src/de.rs"),
        ));
        assert_eq!(f.kind, FrameKind::Framework);
    }
}
