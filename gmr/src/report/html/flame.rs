//! The flame graph of the HTML view: every thread stack and every task stack as one icicle
//! (the outermost frame on top), each stack as wide as the threads or tasks that share it,
//! drawn by [`inferno`].
//!
//! The stacks go to inferno as folded lines (`threads;outer;…;inner;group 3 · 37 threads 37`):
//! a first frame says whose stacks they are (`threads`, `tasks of <runtime>`), and a last
//! one names the stack group, as the text of the page does, so that every group is one leaf
//! of the graph, even when two groups show the same names.
//!
//! What can go wrong, and what this module does about it:
//!
//! * **inferno's SVG is a document of its own**: an XML declaration, a `<!DOCTYPE>`, an
//!   `onload` handler on its root, its own `<style>` and `<script>` (which would also need
//!   `'unsafe-inline'` under the page's Content-Security-Policy, take over Ctrl-F and rewrite the
//!   page's URL on each click, breaking a reload of `?format=html`). So its output is
//!   re-read and written again through the page's writer with an allow-list: only `svg`,
//!   `g`, `rect`, `text` and `title` elements, only geometry and colour attributes (`fg:x`
//!   and `fg:w` become `data-x` and `data-w`), and every text and attribute value through the
//!   page's one escaping function. The page's own script does the zooming.
//! * **A name with `;`** (`[u8; 8]`) would split a frame in two: `;` becomes `,`.
//! * **Narrow frames**: inferno drops frames narrower than `min_width`; here nothing is
//!   dropped, so every group is in the graph however rare its stack.
//! * **Colours** are not random (a report renders the same twice): frames are coloured by their
//!   kind (application, library, framework, std, system), as the text of the page marks them.

use std::collections::HashMap;

use inferno::flamegraph::color::{MultiPalette, Palette};
use inferno::flamegraph::{self, Direction, Options};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

use super::escape::Html;
use super::stacks;
use crate::report::stack::FrameEntry;

/// The width inferno draws for; the page scales the graph to its own width.
const IMAGE_WIDTH: usize = 1200;

/// One stack of the graph.
#[derive(Debug)]
pub struct FlameStack {
    /// Whose stacks: `threads`, `tasks of <runtime>`.
    pub(crate) root: String,
    /// The frames, innermost first.
    pub(crate) frames: Vec<FrameEntry>,
    /// The stack group, as the page names it: `group 3 · 37 threads`.
    pub(crate) leaf: String,
    /// How many threads or tasks have this stack.
    pub(crate) weight: u64,
}

/// A frame's name as a folded-stack frame: no `;`, no control characters, never empty.
fn folded_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c == ';' {
                ','
            } else if c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        "?".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The folded lines of `stacks` (outermost frame first, the weight last), and the class of
/// each frame name: its kind's, `k-root` for whose stacks they are, `k-leaf` for a group.
fn folded(stacks: &[FlameStack]) -> (Vec<String>, HashMap<String, &'static str>) {
    let mut classes = HashMap::new();
    let lines = stacks
        .iter()
        .map(|s| {
            let mut line = folded_name(&s.root);
            classes.entry(line.clone()).or_insert("k-root");
            let leaf = folded_name(&s.leaf);
            classes.entry(leaf.clone()).or_insert("k-leaf");
            for frame in s.frames.iter().rev() {
                let name = folded_name(stacks::display_name(frame));
                line.push(';');
                line.push_str(&name);
                classes
                    .entry(name)
                    .or_insert_with(|| stacks::kind_class(frame.kind));
            }
            line.push(';');
            line.push_str(&leaf);
            line.push(' ');
            line.push_str(&s.weight.to_string());
            line
        })
        .collect();
    (lines, classes)
}

/// Why there is no graph.
#[derive(Debug, thiserror::Error)]
pub(super) enum FlameError {
    /// No stack in the report.
    #[error("no thread or task stacks in this report")]
    NoStacks,
    /// inferno refused the lines.
    #[error("inferno could not draw the stacks: {0}")]
    Inferno(#[source] std::io::Error),
    /// inferno's SVG could not be read back.
    #[error("inferno's SVG could not be read: {0}")]
    Svg(String),
}

/// The flame graph of `stacks` as sanitized inline SVG.
pub(super) fn draw(stacks: &[FlameStack]) -> Result<Html, FlameError> {
    if stacks.is_empty() {
        return Err(FlameError::NoStacks);
    }
    let (lines, classes) = folded(stacks);
    let mut options = Options::default();
    options.direction = Direction::Inverted;
    let threads: u64 = stacks
        .iter()
        .filter(|s| s.root == "threads")
        .map(|s| s.weight)
        .sum();
    let tasks: u64 = stacks
        .iter()
        .filter(|s| s.root != "threads")
        .map(|s| s.weight)
        .sum();
    options.title = format!(
        "{threads} threads and {tasks} tasks in {} stacks: a frame is as wide as the threads and tasks in it",
        stacks.len()
    );
    options.count_name = "threads/tasks".to_owned();
    options.name_type = "Frame:".to_owned();
    options.image_width = Some(IMAGE_WIDTH);
    options.min_width = 0.0;
    options.deterministic = true;
    options.colors = Palette::Multi(MultiPalette::Rust);
    let mut svg = Vec::new();
    flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)
        .map_err(FlameError::Inferno)?;
    let svg = String::from_utf8(svg).map_err(|e| FlameError::Svg(e.to_string()))?;
    sanitize(&svg, &classes)
}

/// Elements kept, by their name in inferno's SVG.
fn element(name: &[u8]) -> Option<&'static str> {
    Some(match name {
        b"svg" => "svg",
        b"g" => "g",
        b"rect" => "rect",
        b"text" => "text",
        b"title" => "title",
        _ => return None,
    })
}

/// Attributes kept, with their name on the page.
fn attribute(name: &[u8]) -> Option<&'static str> {
    Some(match name {
        b"x" => "x",
        b"y" => "y",
        b"width" => "width",
        b"height" => "height",
        b"viewBox" => "viewBox",
        b"fill" => "fill",
        b"fg:x" => "data-x",
        b"fg:w" => "data-w",
        b"total_samples" => "data-total",
        _ => return None,
    })
}

/// inferno's interactive texts, which the page replaces with its own controls.
const DROPPED_IDS: &[&str] = &["details", "unzoom", "search", "matched"];

/// What one start tag of inferno's becomes.
enum Kept {
    /// Written with these attributes and this class.
    Element(&'static str, Vec<(&'static str, String)>, Option<String>),
    /// Left out with everything inside it.
    Dropped,
}

fn keep(start: &BytesStart<'_>) -> Result<Kept, FlameError> {
    let Some(name) = element(start.name().as_ref()) else {
        return Ok(Kept::Dropped);
    };
    let mut attributes = Vec::new();
    let mut class = None;
    for attr in start.attributes() {
        let attr = attr.map_err(|e| FlameError::Svg(e.to_string()))?;
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| FlameError::Svg(e.to_string()))?;
        let key = attr.key.as_ref();
        if key == b"id" {
            if DROPPED_IDS.contains(&value.as_ref()) {
                return Ok(Kept::Dropped);
            }
            class = Some(format!("fg-{value}"));
            continue;
        }
        if key == b"fill" && value.contains("url(") {
            // The background gradient: the page colours the background itself.
            return Ok(Kept::Dropped);
        }
        if let Some(kept) = attribute(key) {
            attributes.push((kept, value.into_owned()));
        }
    }
    Ok(Kept::Element(name, attributes, class))
}

/// The class of a frame's `g` from its tooltip (`name (3 threads/tasks, 0.30%)`).
fn frame_class(title: &str, classes: &HashMap<String, &'static str>) -> String {
    let name = title.rfind(" (").map_or(title, |at| &title[..at]);
    let class = match classes.get(name) {
        Some(class) => class,
        None if title.starts_with("all (") => "k-root",
        None => "k-unknown",
    };
    format!("fr {class}")
}

/// inferno's SVG written again through the page's writer, with the allow-list of the module
/// doc; each frame's `g` gets the class of its frame's kind.
fn sanitize(svg: &str, classes: &HashMap<String, &'static str>) -> Result<Html, FlameError> {
    let bad = |e: &dyn std::fmt::Display| FlameError::Svg(e.to_string());
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut out = Html::with_capacity(svg.len());
    // The elements written and still open.
    let mut open: Vec<&'static str> = Vec::new();
    // Depth inside an element left out with everything in it.
    let mut dropping = 0usize;
    // A frame's `g`, written once its title says which frame it is.
    let mut pending_g = false;
    // The text of the `title` being read.
    let mut title: Option<String> = None;
    loop {
        match reader.read_event().map_err(|e| bad(&e))? {
            Event::Eof => break,
            Event::Start(_) if dropping > 0 => dropping += 1,
            Event::End(_) if dropping > 0 => dropping -= 1,
            _ if dropping > 0 => {}
            Event::Start(start) => match keep(&start)? {
                Kept::Dropped => dropping = 1,
                Kept::Element("g", _, _) => {
                    flush_g(&mut out, &mut pending_g, None, classes);
                    pending_g = true;
                    open.push("g");
                }
                Kept::Element("title", _, _) => {
                    title = Some(String::new());
                    open.push("title");
                }
                Kept::Element(name, attributes, class) => {
                    flush_g(&mut out, &mut pending_g, None, classes);
                    write_start(&mut out, name, &attributes, class.as_deref(), false);
                    open.push(name);
                }
            },
            Event::Empty(start) => {
                if let Kept::Element(name, attributes, class) = keep(&start)? {
                    flush_g(&mut out, &mut pending_g, None, classes);
                    write_start(&mut out, name, &attributes, class.as_deref(), true);
                }
            }
            Event::End(_) => match open.pop() {
                Some("title") => {
                    let text = title.take().unwrap_or_default();
                    flush_g(&mut out, &mut pending_g, Some(&text), classes);
                    out.element("title", &[], &text);
                }
                Some(name) => {
                    flush_g(&mut out, &mut pending_g, None, classes);
                    out.close(name);
                }
                None => return Err(FlameError::Svg("an end tag without a start".to_owned())),
            },
            Event::Text(text) => {
                let text = text.decode().map_err(|e| bad(&e))?;
                write_text(&mut out, &mut title, &text);
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref().map_err(|e| bad(&e))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = reference.decode().map_err(|e| bad(&e))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| FlameError::Svg(format!("unknown entity &{name};")))?
                            .to_owned()
                    }
                };
                write_text(&mut out, &mut title, &resolved);
            }
            // Declarations, doctypes, comments, CDATA and processing instructions: none kept.
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err(FlameError::Svg("the SVG ends inside an element".to_owned()));
    }
    Ok(out)
}

fn write_text(out: &mut Html, title: &mut Option<String>, text: &str) {
    match title {
        Some(title) => title.push_str(text),
        None => out.text(text),
    }
}

fn write_start(
    out: &mut Html,
    name: &'static str,
    attributes: &[(&'static str, String)],
    class: Option<&str>,
    empty: bool,
) {
    let mut attrs: Vec<(&'static str, &str)> =
        attributes.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match class {
        Some(class) => attrs.push(("class", class)),
        None if name == "svg" => attrs.push(("class", "fg")),
        None => {}
    }
    if empty {
        out.empty(name, &attrs);
    } else {
        out.open(name, &attrs);
    }
}

/// Writes the `g` of a frame once its class is known (from its title, else plain).
fn flush_g(
    out: &mut Html,
    pending: &mut bool,
    title: Option<&str>,
    classes: &HashMap<String, &'static str>,
) {
    if !*pending {
        return;
    }
    *pending = false;
    let class = title.map_or_else(|| "fr".to_owned(), |t| frame_class(t, classes));
    out.open("g", &[("class", &class)]);
}
