//! The open spans gmr knows about, readable by the report at any time.
//!
//! tracing-subscriber's registry cannot be listed from outside a subscriber call, so the layer
//! keeps its own table: each open span is one [`OpenSpan`], shared between the span's
//! extensions (where entering and leaving it find it without a lookup) and one of
//! [`SHARDS`] shards here (where the report lists it). A span is added when it opens and removed
//! when it closes; entering and leaving a span touch only its own atomics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::fields::Fields;

/// Shards of the table: spans opened on different threads rarely share a lock.
const SHARDS: usize = 16;

/// One open span.
#[derive(Debug)]
pub(crate) struct OpenSpan {
    /// Unique for the life of the process (tracing's span ids are reused).
    pub(crate) serial: u64,
    /// The span's name.
    pub(crate) name: &'static str,
    /// The span's target (its module path, by default).
    pub(crate) target: &'static str,
    /// The enclosing span, if it is open and known to gmr.
    pub(crate) parent: Option<Arc<OpenSpan>>,
    /// The request the span belongs to (its parent's, else the request entered on the thread
    /// that opened it), 0 for none.
    pub(crate) request: u64,
    /// When it opened, [`crate::coarse_monotonic`].
    pub(crate) opened: Duration,
    /// When it was last entered, [`crate::coarse_monotonic`] in milliseconds; 0 before the first.
    pub(crate) last_entered_ms: AtomicU64,
    /// Whether it has closed (a thread's cache of recently entered spans may still hold it).
    closed: AtomicBool,
    /// Its fields.
    pub(crate) fields: Mutex<Fields>,
}

impl OpenSpan {
    /// Notes that a thread entered the span now (not while tokio re-polls every task for a
    /// task dump: those entries are not the application's).
    pub(crate) fn entered(&self) {
        let now = crate::capture::sys::coarse_monotonic();
        if crate::requests::in_task_dump_window(now) {
            return;
        }
        let now = now.as_millis() as u64;
        self.last_entered_ms.store(now.max(1), Ordering::Relaxed);
    }

    /// Marks the span closed: its id may now be given to another span.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Whether the span has closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The span as the report reads it.
    fn view(&self) -> SpanView {
        let fields = self
            .fields
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let last = self.last_entered_ms.load(Ordering::Relaxed);
        SpanView {
            serial: self.serial,
            parent: self.parent.as_ref().map(|p| p.serial),
            name: self.name,
            target: self.target,
            request: self.request,
            opened: self.opened,
            last_entered: (last != 0).then(|| Duration::from_millis(last)),
            fields,
        }
    }
}

/// A copy of one open span, taken by the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SpanView {
    pub(crate) serial: u64,
    pub(crate) parent: Option<u64>,
    pub(crate) name: &'static str,
    pub(crate) target: &'static str,
    pub(crate) request: u64,
    pub(crate) opened: Duration,
    pub(crate) last_entered: Option<Duration>,
    pub(crate) fields: Fields,
}

/// The table of open spans.
pub(crate) struct SpanTable {
    shards: [Mutex<HashMap<u64, Arc<OpenSpan>>>; SHARDS],
    next_serial: AtomicU64,
}

impl std::fmt::Debug for SpanTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanTable").finish_non_exhaustive()
    }
}

/// Everything a span opens with, besides its serial.
pub(crate) struct NewSpan {
    pub(crate) name: &'static str,
    pub(crate) target: &'static str,
    pub(crate) parent: Option<Arc<OpenSpan>>,
    pub(crate) request: u64,
    pub(crate) fields: Fields,
}

impl SpanTable {
    pub(crate) fn new() -> Self {
        SpanTable {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            next_serial: AtomicU64::new(1),
        }
    }

    fn shard(&self, serial: u64) -> &Mutex<HashMap<u64, Arc<OpenSpan>>> {
        &self.shards[(serial as usize) % SHARDS]
    }

    /// Adds an opening span and returns it.
    pub(crate) fn open(&self, span: NewSpan) -> Arc<OpenSpan> {
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        let open = Arc::new(OpenSpan {
            serial,
            name: span.name,
            target: span.target,
            parent: span.parent,
            request: span.request,
            opened: crate::capture::sys::coarse_monotonic(),
            last_entered_ms: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            fields: Mutex::new(span.fields),
        });
        self.shard(serial)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(serial, Arc::clone(&open));
        open
    }

    /// Removes a closing span.
    pub(crate) fn close(&self, span: &OpenSpan) {
        let removed = self
            .shard(span.serial)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&span.serial);
        // The last reference may free a chain of parents: outside the lock.
        drop(removed);
    }

    /// Every open span now, by serial (opening order).
    pub(crate) fn snapshot(&self) -> Vec<SpanView> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let spans: Vec<Arc<OpenSpan>> = shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .cloned()
                .collect();
            all.extend(spans.iter().map(|s| s.view()));
        }
        all.sort_by_key(|s| s.serial);
        all
    }

    /// How many spans are open.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(name: &'static str, parent: Option<Arc<OpenSpan>>, request: u64) -> NewSpan {
        NewSpan {
            name,
            target: "t",
            parent,
            request,
            fields: Fields::default(),
        }
    }

    #[test]
    fn open_enter_exit_close() {
        let table = SpanTable::new();
        let outer = table.open(new("outer", None, 7));
        let inner = table.open(new("inner", Some(Arc::clone(&outer)), 7));
        inner.entered();
        let views = table.snapshot();
        assert_eq!(views.len(), 2);
        assert_eq!(views[1].parent, Some(views[0].serial));
        assert!(views[1].last_entered.is_some());
        assert_eq!(views[0].last_entered, None);
        assert!(!inner.is_closed());
        inner.close();
        assert!(inner.is_closed());
        table.close(&inner);
        assert_eq!(table.len(), 1);
        table.close(&outer);
        assert_eq!(table.len(), 0);
    }
}
