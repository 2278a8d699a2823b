//! The text view of a stack: one numbered line per function, `at path:line` below it, and
//! runs of runtime, framework, std and system frames folded into one line.
//!
//! Always shown: the two innermost frames (the call that blocks and its caller), every
//! application, library and unknown frame, and the last frame of a folded run before an
//! application frame (the function the application called). A run of one frame is shown
//! rather than folded.

use std::fmt::Write as _;

use super::{FrameEntry, FrameKind};
use crate::config::FoldConfig;
use crate::report::TextWriter;

/// How many innermost frames always show.
const INNERMOST: usize = 2;

fn foldable(frame: &FrameEntry, fold: &FoldConfig) -> bool {
    fold.enabled
        && matches!(
            frame.kind,
            FrameKind::Framework | FrameKind::Std | FrameKind::System
        )
}

/// Which frames the text view shows (the others fold): one flag per frame. The HTML view
/// folds the same frames, under a line that expands them.
pub(crate) fn shown(frames: &[FrameEntry], fold: &FoldConfig) -> Vec<bool> {
    let mut keep: Vec<bool> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| i < INNERMOST || !foldable(f, fold))
        .collect();
    // The function an application frame called: the outermost frame of the run below it.
    for i in 1..frames.len() {
        if !keep[i - 1] && frames[i].kind == FrameKind::Application {
            keep[i - 1] = true;
        }
    }
    // A run of one hidden frame is shown rather than folded.
    for i in 0..keep.len() {
        let alone = !keep[i] && (i == 0 || keep[i - 1]) && keep.get(i + 1).is_none_or(|k| *k);
        if alone {
            keep[i] = true;
        }
    }
    keep
}

/// Writes `frames` (innermost first).
pub(crate) fn write_frames(out: &mut TextWriter, frames: &[FrameEntry], fold: &FoldConfig) {
    if frames.is_empty() {
        out.line("      (no frames)");
        return;
    }
    let keep = shown(frames, fold);
    let mut i = 0;
    while i < frames.len() {
        if keep[i] {
            write_frame(out, i, &frames[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < frames.len() && !keep[i] {
            i += 1;
        }
        let mut packages: Vec<&str> = Vec::new();
        for frame in &frames[start..i] {
            let package = frame.package.as_deref().unwrap_or("unknown");
            if !packages.contains(&package) {
                packages.push(package);
            }
        }
        out.line(format_args!(
            "      … {} frames in {} …",
            i - start,
            packages.join(", ")
        ));
    }
}

fn write_frame(out: &mut TextWriter, index: usize, frame: &FrameEntry) {
    let name = frame
        .name
        .as_deref()
        .or(frame.function.as_deref())
        .unwrap_or("<unknown>");
    let place = match (&frame.module, &frame.offset) {
        (Some(module), Some(offset)) => format!("{module}+{offset}"),
        _ => frame.address.clone(),
    };
    out.line(format_args!("{index:>4}: {name} [{place}]"));
    if let Some(path) = frame.path.as_deref().or(frame.file.as_deref()) {
        let mut at = format!("             at {path}");
        if let Some(line) = frame.line {
            let _ = write!(at, ":{line}");
        }
        out.line(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str, kind: FrameKind, package: &str) -> FrameEntry {
        FrameEntry {
            function: Some(name.to_owned()),
            name: Some(name.to_owned()),
            file: None,
            path: Some(format!("{package}/src/lib.rs")),
            line: Some(7),
            column: None,
            module: Some("app".to_owned()),
            offset: Some("0x10".to_owned()),
            address: "0x5010".to_owned(),
            inlined: false,
            kind,
            package: Some(package.to_owned()),
        }
    }

    fn render(frames: &[FrameEntry], fold: &FoldConfig) -> String {
        let mut out = TextWriter::new();
        write_frames(&mut out, frames, fold);
        out.into_string()
    }

    #[test]
    fn runtime_runs_fold_and_application_frames_show() {
        use FrameKind::*;
        let frames = vec![
            frame("clock_nanosleep", System, "libc.so.6"),
            frame("std::sys::thread::unix::sleep::nanosleep", Std, "std"),
            frame("std::sys::thread::unix::sleep", Std, "std"),
            frame("std::thread::sleep", Std, "std"),
            frame("app::handler", Application, "app"),
            frame("axum::a", Framework, "axum"),
            frame("tower::b", Framework, "tower"),
            frame("hyper::c", Framework, "hyper"),
            frame("tokio::d", Framework, "tokio"),
            frame("start_thread", System, "libc.so.6"),
        ];
        let text = render(&frames, &FoldConfig::default());
        assert_eq!(
            text,
            "   0: clock_nanosleep [app+0x10]\n             at libc.so.6/src/lib.rs:7\n\
             \x20  1: std::sys::thread::unix::sleep::nanosleep [app+0x10]\n             at std/src/lib.rs:7\n\
             \x20  2: std::sys::thread::unix::sleep [app+0x10]\n             at std/src/lib.rs:7\n\
             \x20  3: std::thread::sleep [app+0x10]\n             at std/src/lib.rs:7\n\
             \x20  4: app::handler [app+0x10]\n             at app/src/lib.rs:7\n\
             \x20     … 5 frames in axum, tower, hyper, tokio, libc.so.6 …\n"
        );
        // Folding off: every frame.
        let all = render(
            &frames,
            &FoldConfig {
                enabled: false,
                extra_crates: Vec::new(),
            },
        );
        assert_eq!(all.matches(" [app+0x10]").count(), frames.len());
    }

    #[test]
    fn the_function_the_application_called_shows() {
        use FrameKind::*;
        let frames = vec![
            frame("syscall", System, "libc.so.6"),
            frame("std::a", Std, "std"),
            frame("std::b", Std, "std"),
            frame("std::c", Std, "std"),
            frame("std::d", Std, "std"),
            frame("app::main", Application, "app"),
        ];
        let text = render(&frames, &FoldConfig::default());
        assert!(text.contains("   1: std::a"), "{text}");
        assert!(text.contains("      … 2 frames in std …"), "{text}");
        assert!(text.contains("   4: std::d"), "{text}");
        assert!(text.contains("   5: app::main"), "{text}");
    }
}
