//! Each thread's cache of the spans it entered last, so that entering a span again (every poll
//! of an instrumented future) costs no registry lookup and no lock.
//!
//! A cached span is used only while it is open: once closed, its id may belong to a new span,
//! and the lookup goes to the registry again.

use std::cell::RefCell;
use std::sync::Arc;

use super::table::OpenSpan;

/// Spans kept per thread: a handler's spans, nested a few deep, fit.
const SLOTS: usize = 8;

#[derive(Default)]
struct Recent {
    slots: [(u64, Option<Arc<OpenSpan>>); SLOTS],
    /// The slot the next miss replaces.
    next: usize,
}

thread_local! {
    static RECENT: RefCell<Recent> = RefCell::new(Recent::default());
}

/// Runs `f` on the open span of `id` if this thread entered it lately; `None` otherwise.
pub(super) fn with_cached<R>(id: u64, f: impl FnOnce(&OpenSpan) -> R) -> Option<R> {
    RECENT
        .try_with(|recent| {
            let recent = recent.try_borrow().ok()?;
            let (_, span) = recent.slots.iter().find(|(cached, _)| *cached == id)?;
            span.as_deref().filter(|span| !span.is_closed()).map(f)
        })
        .ok()
        .flatten()
}

/// Remembers that this thread entered the open span of `id`.
pub(super) fn remember(id: u64, span: &Arc<OpenSpan>) {
    let _ = RECENT.try_with(|recent| {
        if let Ok(mut recent) = recent.try_borrow_mut() {
            let at = match recent.slots.iter().position(|(cached, _)| *cached == id) {
                Some(at) => at,
                None => {
                    let at = recent.next;
                    recent.next = (at + 1) % SLOTS;
                    at
                }
            };
            recent.slots[at] = (id, Some(Arc::clone(span)));
        }
    });
}
