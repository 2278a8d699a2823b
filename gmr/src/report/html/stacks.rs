//! Stacks in the HTML view: frames read from the JSON into gmr's frame model
//! ([`FrameEntry`]), and written as the text view shows them, with the runs that the text view
//! folds (the same rule, [`shown`]) behind a line that expands them.

use serde::Deserialize as _;
use serde_json::Value;

use super::escape::Html;
use crate::config::FoldConfig;
use crate::report::stack::{FrameEntry, FrameKind, shown};

/// The frames of a JSON stack (innermost first). A frame whose shape gmr does not know (a
/// newer or older report) keeps its name if it has one and is marked unknown; it is never
/// dropped.
pub(crate) fn frames(value: Option<&Value>) -> Vec<FrameEntry> {
    let Some(Value::Array(items)) = value else {
        return Vec::new();
    };
    items.iter().map(frame).collect()
}

fn frame(value: &Value) -> FrameEntry {
    FrameEntry::deserialize(value).unwrap_or_else(|_| {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        let function = text("function")
            .or_else(|| text("name"))
            .or_else(|| value.as_str().map(str::to_owned));
        FrameEntry {
            name: text("name").or_else(|| function.clone()),
            function,
            file: text("file"),
            path: text("path"),
            line: None,
            column: None,
            module: text("module"),
            offset: text("offset"),
            address: text("address").unwrap_or_else(|| "?".to_owned()),
            inlined: false,
            kind: FrameKind::Unknown,
            package: text("crate"),
        }
    })
}

/// The name a frame is shown by: as in the text view, short (generic arguments elided).
pub(crate) fn display_name(frame: &FrameEntry) -> &str {
    frame
        .name
        .as_deref()
        .or(frame.function.as_deref())
        .unwrap_or("<unknown>")
}

/// The CSS class of a frame's kind (`k-application`, …).
pub(crate) fn kind_class(kind: FrameKind) -> &'static str {
    match kind {
        FrameKind::Application => "k-application",
        FrameKind::Library => "k-library",
        FrameKind::Framework => "k-framework",
        FrameKind::Std => "k-std",
        FrameKind::System => "k-system",
        FrameKind::Unknown => "k-unknown",
    }
}

/// A frame's kind in words, as in the JSON.
fn kind_name(kind: FrameKind) -> &'static str {
    match kind {
        FrameKind::Application => "application",
        FrameKind::Library => "library",
        FrameKind::Framework => "framework",
        FrameKind::Std => "std",
        FrameKind::System => "system",
        FrameKind::Unknown => "unknown",
    }
}

/// The fold rule of a section (`folded` in its JSON).
pub(crate) fn fold_config(folded: bool) -> FoldConfig {
    FoldConfig {
        enabled: folded,
        extra_crates: Vec::new(),
    }
}

/// Writes `frames` (innermost first): one line per frame, numbered as in the text view, and
/// each run the text view folds as `… N frames in hyper, tower …`, which expands to its
/// frames.
pub(crate) fn write_frames(html: &mut Html, frames: &[FrameEntry], fold: &FoldConfig) {
    html.open("div", &[("class", "frames")]);
    if frames.is_empty() {
        html.element("div", &[("class", "none")], "(no frames)");
        html.close("div");
        return;
    }
    let keep = shown(frames, fold);
    let mut i = 0;
    while i < frames.len() {
        if keep.get(i).copied().unwrap_or(true) {
            write_frame(html, i, &frames[i]);
            i += 1;
            continue;
        }
        let start = i;
        while i < frames.len() && !keep.get(i).copied().unwrap_or(true) {
            i += 1;
        }
        let mut packages: Vec<&str> = Vec::new();
        for frame in &frames[start..i] {
            let package = frame.package.as_deref().unwrap_or("unknown");
            if !packages.contains(&package) {
                packages.push(package);
            }
        }
        html.open("details", &[("class", "fold")]);
        html.open("summary", &[]);
        html.text_fmt(format_args!(
            "… {} frames in {} …",
            i - start,
            packages.join(", ")
        ));
        html.close("summary");
        for (n, frame) in frames.iter().enumerate().take(i).skip(start) {
            write_frame(html, n, frame);
        }
        html.close("details");
    }
    html.close("div");
}

/// One frame: `4: name [module+0xoffset]`, and `at path:line` below it.
fn write_frame(html: &mut Html, index: usize, frame: &FrameEntry) {
    html.open("div", &[("class", "f")]);
    html.element("span", &[("class", "n")], &index.to_string());
    let full = frame.function.as_deref().unwrap_or("");
    let mut class = String::from("fn ");
    class.push_str(kind_class(frame.kind));
    html.element(
        "span",
        &[("class", &class), ("title", full)],
        display_name(frame),
    );
    let place = match (&frame.module, &frame.offset) {
        (Some(module), Some(offset)) => format!("[{module}+{offset}]"),
        _ => format!("[{}]", frame.address),
    };
    let mut about = format!("address {}, {}", frame.address, kind_name(frame.kind));
    if let Some(package) = &frame.package {
        about.push_str(", crate ");
        about.push_str(package);
    }
    html.element("span", &[("class", "pl"), ("title", &about)], &place);
    if frame.inlined {
        html.element("span", &[("class", "tag")], "inlined");
    }
    if let Some(path) = frame.path.as_deref().or(frame.file.as_deref()) {
        let mut file = frame.file.clone().unwrap_or_default();
        if let (Some(line), Some(column)) = (frame.line, frame.column) {
            file.push_str(&format!(":{line}:{column}"));
        }
        html.open("div", &[("class", "at"), ("title", &file)]);
        html.text("at ");
        html.text(path);
        if let Some(line) = frame.line {
            html.text_fmt(format_args!(":{line}"));
        }
        html.close("div");
    }
    html.close("div");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_json(name: &str, kind: &str, package: &str) -> Value {
        serde_json::json!({
            "function": format!("{name}<T>"), "name": name, "file": null,
            "path": format!("{package}/src/lib.rs"), "line": 7, "column": null,
            "module": "app", "offset": "0x10", "address": "0x5010", "inlined": false,
            "kind": kind, "crate": package,
        })
    }

    #[test]
    fn folded_runs_expand_and_the_rest_show() {
        let stack = Value::Array(vec![
            frame_json("clock_nanosleep", "system", "libc.so.6"),
            frame_json("std::thread::sleep", "std", "std"),
            frame_json("app::handler", "application", "app"),
            frame_json("axum::a", "framework", "axum"),
            frame_json("tower::b", "framework", "tower"),
            frame_json("tokio::c", "framework", "tokio"),
        ]);
        let frames = frames(Some(&stack));
        assert_eq!(frames.len(), 6);
        let mut html = Html::default();
        write_frames(&mut html, &frames, &fold_config(true));
        let out = html.into_string();
        assert!(
            out.contains(
                "<details class=\"fold\"><summary>… 3 frames in axum, tower, tokio …</summary>"
            ),
            "{out}"
        );
        // Every frame is in the page, the folded ones inside the fold.
        for name in ["clock_nanosleep", "app::handler", "axum::a", "tokio::c"] {
            assert!(out.contains(&format!(">{name}</span>")), "{name}: {out}");
        }
        assert!(out.contains("title=\"app::handler&lt;T&gt;\""), "{out}");
        assert!(out.contains(">at app/src/lib.rs:7</div>"), "{out}");

        let mut html = Html::default();
        write_frames(&mut html, &frames, &fold_config(false));
        assert!(!html.into_string().contains("fold"));
    }

    #[test]
    fn unknown_frame_shapes_keep_their_name() {
        let stack = serde_json::json!([{"name": "mystery", "kind": "martian"}, "bare", 3]);
        let frames = frames(Some(&stack));
        assert_eq!(frames.len(), 3);
        assert_eq!(display_name(&frames[0]), "mystery");
        assert_eq!(display_name(&frames[1]), "bare");
        assert_eq!(display_name(&frames[2]), "<unknown>");
        assert!(super::frames(Some(&serde_json::json!({"not": "a list"}))).is_empty());
    }
}
