//! The `Green Threads` section: Rust's green threads are async tasks. It shows every source
//! registered with [`crate::register_green_threads_source`] (the async runtimes and the
//! in-flight requests of the web adapters), one block per source.

use serde_json::{Map, Value, json};

use crate::registry::green_threads_sources;
use crate::report::{Content, SectionBody, TextWriter};

/// One source's block: its title and its data or the error it returned.
#[derive(Debug)]
struct SourceBlock {
    title: String,
    data: Result<Content, String>,
}

/// What the `Green Threads` section shows.
#[derive(Debug)]
pub(crate) struct GreenThreadsSection {
    sources: Vec<SourceBlock>,
}

/// The line shown when nothing is registered.
const NOTHING_REGISTERED: &str = "no async runtime or request tracking is registered";

/// Generates the `Green Threads` section.
pub(crate) fn generate(_ctx: &super::ReportContext<'_>) -> GreenThreadsSection {
    let sources = green_threads_sources()
        .into_iter()
        .map(|source| {
            let title = source.title();
            let data = match crate::report::isolate::catch(|| source.snapshot()) {
                Ok(Ok(content)) => Ok(content),
                Ok(Err(error)) => Err(error.to_string()),
                Err(panic) => Err(format!("source panicked: {panic}")),
            };
            SourceBlock { title, data }
        })
        .collect();
    GreenThreadsSection { sources }
}

impl SectionBody for GreenThreadsSection {
    fn write_text(&self, out: &mut TextWriter) {
        if self.sources.is_empty() {
            out.line(NOTHING_REGISTERED);
            return;
        }
        for source in &self.sources {
            out.thread_header(&format!(" {} ", source.title));
            match &source.data {
                Ok(content) => content.write_text(out),
                Err(error) => out.line(format_args!("(unavailable: {error})")),
            }
            out.blank();
        }
    }

    fn to_json(&self) -> Value {
        let sources: Vec<Value> = self
            .sources
            .iter()
            .map(|s| {
                let mut block = Map::new();
                block.insert("title".into(), json!(s.title));
                match &s.data {
                    Ok(data) => block.insert("data".into(), data.to_json()),
                    Err(error) => block.insert("error".into(), json!(error)),
                };
                Value::Object(block)
            })
            .collect();
        if sources.is_empty() {
            json!({ "sources": sources, "note": NOTHING_REGISTERED })
        } else {
            json!({ "sources": sources })
        }
    }
}
