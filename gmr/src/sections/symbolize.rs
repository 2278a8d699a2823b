//! Naming the frames of a report's JSON offline (`gmr symbolize`): a report of a stripped
//! binary has `module+offset` for every frame and the build-id of every module
//! (`threads.modules`); with the debug files of that build, its frames get the names, files
//! and lines the process would have shown, made by the same code (the symbolizer of the
//! capture, then the naming, shortening and classification of `report::stack` in the style
//! the process recorded, `threads.style`).
//!
//! Only frame arrays change (`threads.stacks[].frames`, `green_threads.tasks[].groups[].traces[]`):
//! every other field of the document, known to this gmr or not, is kept as it is.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use serde_json::Value;

use crate::capture::symbolize::offline::{OfflineSymbolizer, ReportModule, SymbolInfo};
use crate::report::Report;
use crate::report::parse::ParseError;
use crate::report::stack::{RawSymbol, StackStyle, StyleEntry};

/// What [`symbolize_report`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Symbolized {
    /// Frames (addresses) that have names now that they lacked: a file and line, or a name.
    pub named: usize,
    /// Frames still without a name, outside system libraries.
    pub unnamed: usize,
    /// The modules whose frames were named, with the file their debug information came from.
    pub debug_files: Vec<(String, PathBuf)>,
    /// Why the frames of other modules have no names, one line per module, saying what to do.
    pub problems: Vec<String>,
}

/// Names, in `doc` (a report's JSON view), every frame that has no file and line, from the
/// files of its module's build that `symbolizer` finds: with its inlined functions, file and
/// line, or with its name alone where the debug information has no line for it. A note in
/// `threads.notes` says the names were added offline. Frames that already have a file and
/// line are left as they are.
///
/// ```no_run
/// let mut doc: serde_json::Value =
///     serde_json::from_str(&std::fs::read_to_string("report.json")?)?;
/// let mut symbolizer = gmr::symbolize::OfflineSymbolizer::new(["/srv/debug"]);
/// let done = gmr::symbolize::symbolize_report(&mut doc, &mut symbolizer)?;
/// eprintln!("{} frames named, {} without names", done.named, done.unnamed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// A [`ParseError`] when `doc` is not a report this gmr reads ([`Report::from_json`]); the
/// document is then unchanged.
pub fn symbolize_report(
    doc: &mut Value,
    symbolizer: &mut OfflineSymbolizer,
) -> Result<Symbolized, ParseError> {
    Report::from_json(doc)?;
    let modules = module_list(doc);
    let style = style_of(doc);
    let mut done = Symbolized::default();
    let mut problems = BTreeSet::new();
    let mut used: Vec<ReportModule> = Vec::new();
    let mut namer = Namer {
        symbolizer,
        modules: &modules,
        style: &style,
        problems: &mut problems,
        used: &mut used,
        done: &mut done,
    };
    if let Some(Value::Array(stacks)) = doc.pointer_mut("/threads/stacks") {
        for stack in stacks {
            if let Some(Value::Array(frames)) = stack.get_mut("frames") {
                namer.rewrite(frames);
            }
        }
    }
    if let Some(Value::Array(dumps)) = doc.pointer_mut("/green_threads/tasks") {
        for dump in dumps {
            let Some(Value::Array(groups)) = dump.get_mut("groups") else {
                continue;
            };
            for group in groups {
                let Some(Value::Array(traces)) = group.get_mut("traces") else {
                    continue;
                };
                for trace in traces {
                    if let Value::Array(frames) = trace {
                        namer.rewrite(frames);
                    }
                }
            }
        }
    }
    done.problems = problems.into_iter().collect();
    done.debug_files = used
        .iter()
        .filter_map(|m| Some((m.name.clone(), symbolizer.debug_file(m)?.to_owned())))
        .collect();
    if done.named > 0
        && let Some(Value::Array(notes)) = doc.pointer_mut("/threads/notes")
    {
        let files: Vec<String> = done
            .debug_files
            .iter()
            .map(|(_, file)| file.display().to_string())
            .collect();
        notes.push(Value::String(format!(
            "{} frames named offline by `gmr symbolize`, from {}",
            done.named,
            files.join(", ")
        )));
    }
    Ok(done)
}

/// The modules the report lists, by name.
fn module_list(doc: &Value) -> HashMap<String, Vec<ReportModule>> {
    let mut by_name: HashMap<String, Vec<ReportModule>> = HashMap::new();
    let Some(Value::Array(list)) = doc.pointer("/threads/modules") else {
        return by_name;
    };
    for entry in list {
        let text = |key: &str| entry.get(key).and_then(Value::as_str).map(str::to_owned);
        let (Some(name), Some(path)) = (text("name"), text("path")) else {
            continue;
        };
        by_name.entry(name.clone()).or_default().push(ReportModule {
            name,
            path,
            build_id: text("build_id"),
        });
    }
    by_name
}

/// How the process named its frames: `threads.style`, else its crate from `package.product`.
fn style_of(doc: &Value) -> StackStyle {
    let recorded = doc
        .pointer("/threads/style")
        .and_then(|style| serde_json::from_value::<StyleEntry>(style.clone()).ok());
    let entry = recorded.unwrap_or_else(|| StyleEntry {
        app_crate: doc
            .pointer("/package/product")
            .and_then(Value::as_str)
            .map(|p| p.replace('-', "_")),
        ..StyleEntry::default()
    });
    StackStyle::from_entry(&entry)
}

/// The state of one pass over a report.
struct Namer<'a> {
    symbolizer: &'a mut OfflineSymbolizer,
    modules: &'a HashMap<String, Vec<ReportModule>>,
    style: &'a StackStyle,
    problems: &'a mut BTreeSet<String>,
    used: &'a mut Vec<ReportModule>,
    done: &'a mut Symbolized,
}

impl Namer<'_> {
    /// Names the frames of one stack. One address is one or more entries (inlined functions
    /// first, the outermost last): each address without a file is replaced by its names.
    fn rewrite(&mut self, frames: &mut Vec<Value>) {
        let old = std::mem::take(frames);
        let mut at = 0;
        while at < old.len() {
            let end = run_end(&old, at);
            let run = &old[at..=end];
            match self.names(&run[run.len() - 1]) {
                Some(named) => frames.extend(named),
                None => frames.extend_from_slice(run),
            }
            at = end + 1;
        }
    }

    /// The entries naming the address of `frame` (the outermost entry of its run), if it has
    /// no file yet and its module's files give it one, or a name it lacks.
    fn names(&mut self, frame: &Value) -> Option<Vec<Value>> {
        if frame.get("file").is_some_and(Value::is_string) {
            return None;
        }
        let has_name = frame.get("function").is_some_and(Value::is_string);
        let system = frame.get("kind").and_then(Value::as_str) == Some("system");
        let name = frame.get("module").and_then(Value::as_str)?;
        let offset = hex_u64(frame.get("offset").and_then(Value::as_str)?)?;
        let address = frame
            .get("address")
            .and_then(Value::as_str)
            .and_then(hex_u64)
            .unwrap_or(offset);
        let symbols = match self.modules.get(name).map(Vec::as_slice) {
            Some([module]) => match self.symbolizer.resolve(module, offset) {
                Ok(symbols) => {
                    if !self.used.contains(module) {
                        self.used.push(module.clone());
                    }
                    symbols
                }
                Err(error) => {
                    self.problems.insert(error.to_string());
                    Vec::new()
                }
            },
            Some([]) | None => {
                self.problems.insert(format!(
                    "{name}: not in the report's `threads.modules` (a report of a gmr that \
                     lists no modules cannot be symbolized: take a new report)"
                ));
                Vec::new()
            }
            Some(_) => {
                self.problems.insert(format!(
                    "{name}: several modules of this name in the report; their frames cannot \
                     be told apart"
                ));
                Vec::new()
            }
        };
        let more = symbols.iter().any(|s| s.file.is_some())
            || (!has_name && symbols.iter().any(|s| s.function.is_some()));
        if !more {
            if !has_name && !system {
                self.done.unnamed += 1;
            }
            return None;
        }
        self.done.named += 1;
        Some(self.entries(&symbols, name, offset, address, system))
    }

    /// The frame entries of `symbols`, innermost first, named in the process's style.
    fn entries(
        &self,
        symbols: &[SymbolInfo],
        module: &str,
        offset: u64,
        address: u64,
        system: bool,
    ) -> Vec<Value> {
        let last = symbols.len().saturating_sub(1);
        symbols
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let entry = self.style.frame(&RawSymbol {
                    function: s.function.as_deref(),
                    file: s.file.as_deref(),
                    line: s.line,
                    column: s.column,
                    module: Some(module),
                    offset: Some(offset),
                    address,
                    inlined: i < last,
                    system,
                });
                serde_json::to_value(entry).unwrap_or(Value::Null)
            })
            .collect()
    }
}

/// The index of the last entry of the address starting at `start`: the entries after it at
/// the same address while they are marked inlined.
fn run_end(frames: &[Value], start: usize) -> usize {
    let address = frames[start].get("address");
    let mut end = start;
    while end + 1 < frames.len()
        && frames[end].get("inlined").and_then(Value::as_bool) == Some(true)
        && frames[end + 1].get("address") == address
    {
        end += 1;
    }
    end
}

/// `0x1b48fa` as a number.
fn hex_u64(text: &str) -> Option<u64> {
    u64::from_str_radix(text.strip_prefix("0x").unwrap_or(text), 16).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::{Gmr, Trigger};

    /// What a report of a stripped binary has for an address: `module+offset` only.
    fn stripped(frame: &Value) -> Value {
        json!({
            "function": null, "name": null, "file": null, "path": null, "line": null,
            "column": null, "module": frame["module"], "offset": frame["offset"],
            "address": frame["address"], "inlined": false, "kind": "unknown", "crate": null,
        })
    }

    #[test]
    fn frames_of_a_stripped_report_get_the_names_the_process_gave() {
        let gmr = Gmr::builder()
            .package(crate::package!())
            .build()
            .expect("engine");
        let original = gmr.report(Trigger::Api).to_json();
        let own = std::env::current_exe().expect("test binary");
        let own_name = own
            .file_name()
            .and_then(|n| n.to_str())
            .expect("file name")
            .to_owned();
        let mut doc = original.clone();
        // Strip every frame of this binary, as if it had no debug information.
        let mut stripped_frames = 0;
        for stack in doc["threads"]["stacks"].as_array_mut().expect("stacks") {
            let frames = stack["frames"].as_array().expect("frames").clone();
            let mut out = Vec::new();
            let mut at = 0;
            while at < frames.len() {
                let end = run_end(&frames, at);
                if frames[end]["module"] == own_name.as_str() && frames[end]["file"].is_string() {
                    out.push(stripped(&frames[end]));
                    stripped_frames += 1;
                } else {
                    out.extend_from_slice(&frames[at..=end]);
                }
                at = end + 1;
            }
            stack["frames"] = Value::Array(out);
        }
        assert!(stripped_frames > 0, "frames of {own_name} in {original}");

        // The binary at its path is of the same build: its own DWARF names the frames.
        let mut symbolizer = OfflineSymbolizer::new(Vec::<PathBuf>::new());
        let done = symbolize_report(&mut doc, &mut symbolizer).expect("symbolized");
        assert_eq!(done.named, stripped_frames, "{done:?}");
        assert_eq!(done.debug_files.len(), 1, "{done:?}");
        assert_eq!(doc["threads"]["stacks"], original["threads"]["stacks"]);
        let notes = doc["threads"]["notes"].as_array().expect("notes");
        assert!(
            notes
                .last()
                .and_then(Value::as_str)
                .is_some_and(|n| n.contains("named offline by `gmr symbolize`")),
            "{notes:?}"
        );
        // Nothing left to do the second time.
        let again = symbolize_report(&mut doc, &mut symbolizer).expect("symbolized");
        assert_eq!(again.named, 0);
    }

    #[test]
    fn modules_the_report_does_not_list_are_named_as_a_problem() {
        let gmr = Gmr::builder()
            .package(crate::package!())
            .build()
            .expect("engine");
        let mut doc = gmr.report(Trigger::Api).to_json();
        doc["threads"]["modules"] = json!([]);
        let frames = doc["threads"]["stacks"][0]["frames"]
            .as_array()
            .expect("frames")
            .clone();
        let frame = frames
            .iter()
            .find(|f| f["kind"] != "system" && f["module"].is_string())
            .expect("a frame with a module");
        doc["threads"]["stacks"][0]["frames"] = json!([stripped(frame)]);
        let mut symbolizer = OfflineSymbolizer::new(Vec::<PathBuf>::new());
        let done = symbolize_report(&mut doc, &mut symbolizer).expect("symbolized");
        assert_eq!(done.named, 0);
        assert!(done.unnamed >= 1, "{done:?}");
        assert!(
            done.problems[0].contains("not in the report's `threads.modules`"),
            "{:?}",
            done.problems
        );
        assert!(symbolize_report(&mut json!({"report_version": 99}), &mut symbolizer).is_err());
    }
}
