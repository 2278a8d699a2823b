//! Stack groups merged across replicas: threads with one stack, tasks with one stack.
//!
//! # How groups are matched across replicas
//!
//! Two replicas of one service may run different builds (a rolling deployment), where every
//! address and `module+offset` differs for the same code. A stack is therefore keyed by what
//! stays the same across builds of the same source: for each frame, innermost first, its
//! function (`function`, the full name with generic arguments) and its source location
//! (`path`, the short path that is the same on every build machine, else `file`; and `line`).
//! A frame without a name (a stripped binary) is keyed by `module+offset`, which matches only
//! within one build: `gmr symbolize` the reports first to merge those across builds. A task
//! group's key is the keys of its traces, in order.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use super::replicas::Replica;

/// Frames shown under a group: the innermost and the application's, at most this many.
const SHOWN_FRAMES: usize = 6;

/// Names (of threads, of runtimes) kept per group.
const NAMES: usize = 8;

/// A stack found on one or more replicas.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Group {
    /// On how many replicas.
    pub(crate) replicas: usize,
    /// Of how many (the replicas of the round).
    pub(crate) of: usize,
    /// Threads (or tasks) with this stack, over all replicas.
    pub(crate) count: usize,
    /// The frame that says what the stack is: the innermost of the application, else of a
    /// library, else of a framework, else the innermost.
    pub(crate) headline: String,
    /// The headline frame's `path:line`, when known.
    pub(crate) headline_at: Option<String>,
    /// The innermost frame: where it waits or runs.
    pub(crate) innermost: String,
    /// The frames worth showing: the innermost and the application's.
    pub(crate) frames: Vec<FrameLine>,
    /// Thread names (for tasks, runtime names) seen with this stack.
    pub(crate) names: Vec<String>,
    /// Per replica: how many threads or tasks.
    pub(crate) members: Vec<Member>,
    /// The key it was matched by.
    #[serde(skip)]
    key: String,
}

/// One frame as the summary shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FrameLine {
    /// The name the report's text view shows.
    pub(crate) name: String,
    /// `path:line`, when known.
    pub(crate) location: Option<String>,
    /// `application`, `library`, `framework`, `std`, `system`, `unknown`.
    pub(crate) kind: String,
}

/// A replica's share of a group.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Member {
    /// `host:pid`.
    pub(crate) replica: String,
    /// Threads or tasks there.
    pub(crate) count: usize,
}

/// One stack of one report: its frames (one trace, or several for a task), how many, names.
struct Found<'a> {
    traces: Vec<&'a [Value]>,
    count: usize,
    names: Vec<String>,
}

/// The thread groups of `replicas`, on most replicas first.
pub(crate) fn threads(replicas: &[Replica]) -> Vec<Group> {
    merge(replicas, |doc| {
        let threads = doc.pointer("/threads/threads").and_then(Value::as_array);
        let Some(stacks) = doc.pointer("/threads/stacks").and_then(Value::as_array) else {
            return Vec::new();
        };
        stacks
            .iter()
            .enumerate()
            .filter_map(|(i, stack)| {
                let frames = stack.get("frames")?.as_array()?;
                let id = stack.get("id").and_then(Value::as_u64).unwrap_or(i as u64);
                let count = stack
                    .get("tids")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let names = threads
                    .into_iter()
                    .flatten()
                    .filter(|t| t.get("stack").and_then(Value::as_u64) == Some(id))
                    .filter_map(|t| t.get("name")?.as_str().map(str::to_owned))
                    .collect();
                Some(Found {
                    traces: vec![frames.as_slice()],
                    count,
                    names,
                })
            })
            .collect()
    })
}

/// The task groups of `replicas` (`green_threads.tasks[].groups[]`), on most replicas first.
pub(crate) fn tasks(replicas: &[Replica]) -> Vec<Group> {
    merge(replicas, |doc| {
        let Some(dumps) = doc
            .pointer("/green_threads/tasks")
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        dumps
            .iter()
            .flat_map(|dump| {
                let runtime = dump
                    .get("runtime")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_owned();
                dump.get("groups")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(move |group| {
                        let traces = group
                            .get("traces")?
                            .as_array()?
                            .iter()
                            .filter_map(|t| t.as_array().map(Vec::as_slice))
                            .collect();
                        let count = group
                            .get("tasks")
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len);
                        Some(Found {
                            traces,
                            count,
                            names: vec![runtime.clone()],
                        })
                    })
            })
            .collect()
    })
}

/// Merges the stacks `found` gives for each replica.
fn merge(replicas: &[Replica], found: impl for<'a> Fn(&'a Value) -> Vec<Found<'a>>) -> Vec<Group> {
    let of = replicas.len();
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for replica in replicas {
        for stack in found(&replica.report.doc) {
            let key = key(&stack.traces);
            let at = *index.entry(key.clone()).or_insert_with(|| {
                groups.push(new_group(&stack.traces, key, of));
                groups.len() - 1
            });
            let Some(group) = groups.get_mut(at) else {
                continue;
            };
            group.count += stack.count;
            match group
                .members
                .iter_mut()
                .find(|m| m.replica == replica.label)
            {
                Some(member) => member.count += stack.count,
                None => {
                    group.replicas += 1;
                    group.members.push(Member {
                        replica: replica.label.clone(),
                        count: stack.count,
                    });
                }
            }
            for name in stack.names {
                if group.names.len() < NAMES && !group.names.contains(&name) {
                    group.names.push(name);
                }
            }
        }
    }
    groups.sort_by(|a, b| {
        b.replicas
            .cmp(&a.replicas)
            .then(b.count.cmp(&a.count))
            .then_with(|| a.headline.cmp(&b.headline))
            .then_with(|| a.key.cmp(&b.key))
    });
    groups
}

/// The key of a stack (see the module docs).
fn key(traces: &[&[Value]]) -> String {
    traces
        .iter()
        .map(|frames| frames.iter().map(frame_key).collect::<Vec<_>>().join("\n"))
        .collect::<Vec<_>>()
        .join("\n--\n")
}

/// The key of one frame: function and location, or `module+offset` without a name.
fn frame_key(frame: &Value) -> String {
    let text = |key: &str| frame.get(key).and_then(Value::as_str);
    match text("function").or_else(|| text("name")) {
        Some(function) => {
            let place = text("path").or_else(|| text("file")).unwrap_or("");
            let line = frame.get("line").and_then(Value::as_u64).unwrap_or(0);
            format!("{function} @ {place}:{line}")
        }
        None => format!(
            "{}+{}",
            text("module").unwrap_or("?"),
            text("offset").or_else(|| text("address")).unwrap_or("?")
        ),
    }
}

/// A group from its first stack.
fn new_group(traces: &[&[Value]], key: String, of: usize) -> Group {
    let frames: Vec<&Value> = traces.iter().flat_map(|t| t.iter()).collect();
    let kind = |f: &Value| {
        f.get("kind")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned()
    };
    let Headline {
        name: headline,
        at: headline_at,
        innermost,
    } = headline_of(traces);
    let mut shown: Vec<FrameLine> = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        if shown.len() >= SHOWN_FRAMES {
            break;
        }
        if i == 0 || kind(frame) == "application" {
            shown.push(FrameLine {
                name: display(frame),
                location: location(frame),
                kind: kind(frame),
            });
        }
    }
    Group {
        replicas: 0,
        of,
        count: 0,
        headline,
        headline_at,
        innermost,
        frames: shown,
        names: Vec::new(),
        members: Vec::new(),
        key,
    }
}

/// What a stack is, in a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Headline {
    /// The frame that says what the stack is: the innermost of the application, else of a
    /// library, else of a framework, else the innermost.
    pub(crate) name: String,
    /// Its `path:line`, when known.
    pub(crate) at: Option<String>,
    /// The innermost frame of the trace that frame is in: where it waits or runs.
    pub(crate) innermost: String,
}

impl Headline {
    /// `` `name` at path:line ``.
    pub(crate) fn line(&self) -> String {
        match &self.at {
            Some(at) => format!("`{}` at {at}", self.name),
            None => format!("`{}`", self.name),
        }
    }
}

/// The headline of a stack of one or more traces (a task awaiting several leaf futures has
/// one trace per future: its work, and its connection's I/O). The traces are searched in
/// order for an application frame, then a library frame, then a framework frame; the
/// innermost frame is that of the trace the headline is in, so a task whose work awaits a
/// lock is "in" the lock, not in its connection's read.
pub(crate) fn headline_of(traces: &[&[Value]]) -> Headline {
    fn kind(f: &Value) -> &str {
        f.get("kind").and_then(Value::as_str).unwrap_or("unknown")
    }
    let found = ["application", "library", "framework"]
        .iter()
        .find_map(|wanted| {
            traces.iter().find_map(|trace| {
                let frame = trace.iter().find(|f| kind(f) == *wanted)?;
                Some((frame, *trace))
            })
        })
        .or_else(|| {
            let trace = traces.iter().find(|t| !t.is_empty())?;
            Some((trace.first()?, *trace))
        });
    match found {
        Some((frame, trace)) => Headline {
            name: display(frame),
            at: location(frame),
            innermost: trace.first().map_or_else(|| display(frame), display),
        },
        None => Headline {
            name: "(no frames)".to_owned(),
            at: None,
            innermost: "(no frames)".to_owned(),
        },
    }
}

/// A frame's name as the text view shows it; `module+offset` without one.
fn display(frame: &Value) -> String {
    let text = |key: &str| frame.get(key).and_then(Value::as_str);
    text("name").or_else(|| text("function")).map_or_else(
        || {
            format!(
                "{}+{}",
                text("module").unwrap_or("?"),
                text("offset").unwrap_or("?")
            )
        },
        str::to_owned,
    )
}

/// `path:line` of a frame.
fn location(frame: &Value) -> Option<String> {
    let place = frame
        .get("path")
        .and_then(Value::as_str)
        .or_else(|| frame.get("file").and_then(Value::as_str))?;
    Some(match frame.get("line").and_then(Value::as_u64) {
        Some(line) => format!("{place}:{line}"),
        None => place.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn frame(function: &str, path: &str, line: u64, offset: &str, kind: &str) -> Value {
        json!({"function": function, "name": function, "path": path, "line": line,
               "module": "app", "offset": offset, "address": offset, "kind": kind})
    }

    #[test]
    fn stacks_match_by_names_and_lines_not_addresses() {
        let build_a = [
            frame("syscall", "", 0, "0x10", "system"),
            frame(
                "app::pool::acquire",
                "src/pool.rs",
                42,
                "0x1000",
                "application",
            ),
        ];
        let build_b = [
            frame("syscall", "", 0, "0x99", "system"),
            frame(
                "app::pool::acquire",
                "src/pool.rs",
                42,
                "0x2000",
                "application",
            ),
        ];
        assert_eq!(key(&[&build_a]), key(&[&build_b]));
        let other_line = [
            frame("syscall", "", 0, "0x10", "system"),
            frame(
                "app::pool::acquire",
                "src/pool.rs",
                43,
                "0x1000",
                "application",
            ),
        ];
        assert_ne!(key(&[&build_a]), key(&[&other_line]));
        let stripped = [json!({"module": "app", "offset": "0x1000", "function": null})];
        assert_eq!(key(&[&stripped]), "app+0x1000");
        let group = new_group(&[&build_a], key(&[&build_a]), 3);
        assert_eq!(group.headline, "app::pool::acquire");
        assert_eq!(group.innermost, "syscall");
        assert_eq!(group.frames.len(), 2);
        assert_eq!(group.frames[1].location.as_deref(), Some("src/pool.rs:42"));
    }
}
