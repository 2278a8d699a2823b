//! The table of in-flight requests: sharded, so recording a request never takes a lock that
//! other threads contend for.
//!
//! Each thread is given one shard (round-robin, on its first request) and records its
//! requests there; a request finished on another thread removes itself from the shard it was
//! recorded in. The report reads every shard, one at a time. Per request the hot path is one
//! allocation (the entry) and two uncontended lock/unlock pairs.

use std::cell::Cell;
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{Method, Uri};

/// Number of shards: enough that worker threads rarely share one.
const SHARDS: usize = 32;

/// The target of a request as received; only its path is ever shown (never the query).
#[derive(Debug)]
pub(crate) enum Target {
    /// An `http` 1 URI (tower, hyper, axum): cloning it is a reference-count increment.
    Uri(Uri),
    /// The path from another HTTP library (actix-web), query already removed.
    Path(Box<str>),
}

impl Target {
    pub(crate) fn path(&self) -> &str {
        match self {
            Target::Uri(uri) => uri.path(),
            Target::Path(path) => path,
        }
    }
}

/// The route pattern a request matched, kept without copying it per request.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    /// axum's `MatchedPath` (a reference-counted string): cloning it is an increment.
    #[cfg(feature = "matched-path")]
    Matched(axum::extract::MatchedPath),
    /// A pattern shared by the requests of one route (e.g. from an adapter's per-thread cache).
    Shared(Arc<str>),
}

impl Route {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            #[cfg(feature = "matched-path")]
            Route::Matched(path) => path.as_str(),
            Route::Shared(route) => route,
        }
    }
}

/// One request in flight.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) method: Method,
    pub(crate) target: Target,
    pub(crate) route: Option<Route>,
    /// When the request was recorded ([`gmr::coarse_monotonic`]).
    pub(crate) started: Duration,
    /// The kernel TID of the thread polling the request right now, or 0.
    pub(crate) polled_by: AtomicI32,
    /// When the current poll started ([`gmr::coarse_monotonic`] in ms; meaningful while
    /// `polled_by` is set). A poll that lasts seconds means a blocked thread.
    pub(crate) poll_started_ms: AtomicU64,
}

#[derive(Default)]
struct Shard {
    slots: Vec<Option<Arc<Entry>>>,
    free: Vec<usize>,
}

/// The registry shared by every clone of one [`crate::InFlightLayer`].
pub(crate) struct Registry {
    shards: Vec<Mutex<Shard>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("shards", &self.shards.len())
            .finish()
    }
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    static THREAD_TID: Cell<i32> = const { Cell::new(0) };
}

fn thread_shard() -> usize {
    THREAD_SHARD.with(|cell| {
        let mut shard = cell.get();
        if shard == usize::MAX {
            shard = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
            cell.set(shard);
        }
        shard
    })
}

/// The calling thread's kernel TID, cached per thread (one syscall per thread, not per poll).
pub(crate) fn current_tid() -> i32 {
    THREAD_TID.with(|cell| {
        let mut tid = cell.get();
        if tid == 0 {
            tid = gmr::current_thread_id();
            cell.set(tid);
        }
        tid
    })
}

/// Where an entry is stored; removing it needs this.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    shard: usize,
    index: usize,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    /// A registry that lives for the rest of the process (a few KiB, once per layer): requests
    /// then refer to it without a reference count on the hot path.
    pub(crate) fn leaked() -> &'static Registry {
        Box::leak(Box::new(Registry::new()))
    }

    pub(crate) fn insert(&self, entry: Arc<Entry>) -> Slot {
        let shard_index = thread_shard();
        let mut shard = self.shards[shard_index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let index = match shard.free.pop() {
            Some(index) => {
                shard.slots[index] = Some(entry);
                index
            }
            None => {
                shard.slots.push(Some(entry));
                shard.slots.len() - 1
            }
        };
        Slot {
            shard: shard_index,
            index,
        }
    }

    pub(crate) fn remove(&self, slot: Slot) {
        let mut shard = self.shards[slot.shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(place) = shard.slots.get_mut(slot.index)
            && place.take().is_some()
        {
            shard.free.push(slot.index);
        }
    }

    /// Every entry now, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<Arc<Entry>> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            all.extend(shard.slots.iter().flatten().cloned());
        }
        all.sort_by_key(|e| e.started);
        all
    }

    /// How many requests are in flight.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap_or_else(PoisonError::into_inner);
                s.slots.len() - s.free.len()
            })
            .sum()
    }
}

/// Keeps one entry recorded while alive; removes it when dropped (response finished, or the
/// request or its body dropped because the client went away).
#[derive(Debug)]
pub(crate) struct Recorded {
    registry: &'static Registry,
    entry: Arc<Entry>,
    slot: Slot,
}

impl Recorded {
    pub(crate) fn new(registry: &'static Registry, entry: Entry) -> Self {
        let entry = Arc::new(entry);
        let slot = registry.insert(Arc::clone(&entry));
        Recorded {
            registry,
            entry,
            slot,
        }
    }

    /// Marks the request as polled by this thread until the returned guard drops.
    pub(crate) fn polling(&self) -> PollGuard<'_> {
        self.entry.poll_started_ms.store(
            gmr::coarse_monotonic().as_millis() as u64,
            Ordering::Relaxed,
        );
        self.entry.polled_by.store(current_tid(), Ordering::Relaxed);
        PollGuard { entry: &self.entry }
    }
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.registry.remove(self.slot);
    }
}

/// Clears the polling thread when the poll returns (or unwinds).
#[derive(Debug)]
pub(crate) struct PollGuard<'a> {
    entry: &'a Entry,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.entry.polled_by.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> Entry {
        Entry {
            method: Method::GET,
            target: Target::Uri(path.parse().expect("uri")),
            route: None,
            started: gmr::coarse_monotonic(),
            polled_by: AtomicI32::new(0),
            poll_started_ms: AtomicU64::new(0),
        }
    }

    #[test]
    fn insert_remove_and_reuse() {
        let registry = Registry::leaked();
        let a = Recorded::new(registry, entry("/a"));
        let b = Recorded::new(registry, entry("/b"));
        assert_eq!(registry.len(), 2);
        let paths: Vec<_> = registry
            .snapshot()
            .iter()
            .map(|e| e.target.path().to_owned())
            .collect();
        assert_eq!(paths, vec!["/a", "/b"], "oldest first");
        drop(a);
        assert_eq!(registry.len(), 1);
        let c = Recorded::new(registry, entry("/c"));
        assert_eq!(registry.len(), 2);
        drop((b, c));
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn polling_sets_and_clears_the_thread() {
        let registry = Registry::leaked();
        let rec = Recorded::new(registry, entry("/p"));
        {
            let _guard = rec.polling();
            assert_eq!(rec.entry.polled_by.load(Ordering::Relaxed), current_tid());
        }
        assert_eq!(rec.entry.polled_by.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn removal_from_another_thread() {
        let registry = Registry::leaked();
        let rec = Recorded::new(registry, entry("/x"));
        std::thread::spawn(move || drop(rec))
            .join()
            .expect("thread");
        assert_eq!(registry.len(), 0);
    }
}
