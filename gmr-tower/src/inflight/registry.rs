//! The table of in-flight requests: sharded, so recording a request never takes a lock that
//! other threads contend for, and a request ends without taking one at all.
//!
//! Each thread is given one shard (round-robin, on its first request) and records its
//! requests there; a request finished on another thread ends in the shard it was recorded in.
//! The report reads every shard, one at a time. Per request the hot path is one uncontended
//! lock/unlock pair and no allocation: the entry lives in its shard's slot (its path and route
//! copied into buffers the slot keeps from one request to the next), and what every poll reads
//! and writes (the request's id and start, which thread polls it, since when) lives in a
//! [`PollCell`] at a fixed address, without the lock.
//!
//! A request ends by clearing its cell's id (one store, no lock: see [`Recorded`]'s `Drop`).
//! Its slot is left as it is until the shard's lock is next taken to record a request: the
//! next record on the same thread reuses it, and a record that finds no free slot lists free
//! every slot whose cell's id was cleared. Only the
//! shard's lock writes a slot, and only under it is a slot read, so a report never reads a
//! slot being rewritten. A cell knows its slot, so a record is one pointer. Cells are allocated
//! in chunks of [`CELL_CHUNK`] when a shard needs more slots than ever before and never freed
//! (64 bytes per slot, bounded by the most requests a shard ever held at once), so a cell a
//! request writes to is never moved or freed under it.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::Method;

use super::RouteResolver;

/// Number of shards: enough that worker threads rarely share one.
const SHARDS: usize = 32;

/// A request as the layer records it: its strings are borrowed, and copied into the buffers
/// of the slot it is stored in (reused from request to request, so recording allocates
/// nothing once a slot has held a path as long).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewEntry<'a> {
    /// Its id in the process ([`gmr::RequestId`]): spans opened while it is polled carry it.
    pub(crate) id: gmr::RequestId,
    pub(crate) method: &'a Method,
    /// Its path, never the query (empty for `CONNECT`'s authority form); not kept by a
    /// registry that hides paths.
    pub(crate) path: &'a str,
    /// The route pattern it matched, when the framework gives one.
    pub(crate) route: Option<&'a str>,
    /// Finds its route when the report lists it (a layer outside the router, where the
    /// framework has not matched it yet); only with no `route`, and a path kept to ask about.
    pub(crate) resolver: Option<&'static dyn RouteResolver>,
    /// When the request was recorded ([`gmr::coarse_monotonic`]).
    pub(crate) started: Duration,
}

/// One request in flight, as the report reads it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// Its id in the process ([`gmr::RequestId`]).
    pub(crate) id: gmr::RequestId,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) route: Option<String>,
    /// When the request was recorded ([`gmr::coarse_monotonic`]).
    pub(crate) started: Duration,
}

/// What a slot holds of the request stored in it, besides its strings (its id and start are
/// in the slot's [`PollCell`], where its polls read them).
#[derive(Debug)]
struct Stored {
    method: Method,
    has_route: bool,
    resolver: Option<&'static dyn RouteResolver>,
}

/// A buffer longer than this is freed when its request ends (under the shard's lock, the
/// slow path), so a burst of long paths does not stay allocated in every slot it passed
/// through.
const KEPT_BUFFER: usize = 1024;

/// One slot of a shard: the request stored in it (if any) and the buffers its strings are
/// copied into. What it holds stays until the slot is reused: the request it belongs to is
/// the one in its cell while that cell's id is set.
#[derive(Debug, Default)]
struct SlotData {
    stored: Option<Stored>,
    path: String,
    route: String,
}

impl SlotData {
    fn store(&mut self, entry: &NewEntry<'_>, keep_path: bool) {
        self.path.clear();
        if keep_path {
            self.path.push_str(entry.path);
        }
        self.route.clear();
        self.route.push_str(entry.route.unwrap_or_default());
        self.stored = Some(Stored {
            method: entry.method.clone(),
            has_route: entry.route.is_some(),
            resolver: entry.resolver,
        });
    }

    /// Whether the buffers hold more than [`KEPT_BUFFER`] bytes: such a request takes the
    /// shard's lock when it ends, to free them at once.
    fn oversized(&self) -> bool {
        self.path.capacity() > KEPT_BUFFER || self.route.capacity() > KEPT_BUFFER
    }

    /// Empties the slot; returns what is to be dropped once the shard's lock is released.
    fn take(&mut self) -> Option<(Stored, String, String)> {
        let stored = self.stored.take()?;
        let oversized = |buffer: &mut String| {
            if buffer.capacity() > KEPT_BUFFER {
                std::mem::take(buffer)
            } else {
                String::new()
            }
        };
        let (path, route) = (oversized(&mut self.path), oversized(&mut self.route));
        Some((stored, path, route))
    }

    /// The stored request (its id and start read from `cell`, the slot's), and the resolver
    /// that finds its route when it was recorded without one; `None` once it ended.
    fn entry(&self, cell: &PollCell) -> Option<(Entry, Option<&'static dyn RouteResolver>)> {
        let id = gmr::RequestId::from_u64(cell.request.load(Ordering::Acquire))?;
        let stored = self.stored.as_ref()?;
        let entry = Entry {
            id,
            method: stored.method.clone(),
            path: self.path.clone(),
            route: stored.has_route.then(|| self.route.clone()),
            started: Duration::from_millis(cell.started_ms.load(Ordering::Relaxed)),
        };
        Some((entry, stored.resolver))
    }
}

/// What a request's polls read and write, without the lock: the slot it belongs to (fixed
/// when the cell is made), the request stored there (written when it is recorded, its id
/// cleared when it ends) and its poll state. A record is a pointer to this cell. One cache
/// line each: requests polled on different threads never write to the same line.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct PollCell {
    /// The shard of the slot this cell belongs to, and the slot's index in it, for good.
    shard: &'static ShardLock,
    index: usize,
    /// The [`gmr::RequestId`] of the request recorded in the slot; 0 once it ended (the slot
    /// is then free to be reused, under the shard's lock).
    request: AtomicU64,
    /// The request's buffers are larger than [`KEPT_BUFFER`]: it ends under the shard's lock.
    oversized: AtomicBool,
    /// When that request was recorded ([`gmr::coarse_monotonic`] in ms).
    started_ms: AtomicU64,
    /// The kernel TID of the thread polling the request right now, or 0.
    pub(crate) polled_by: AtomicI32,
    /// When the current poll started ([`gmr::coarse_monotonic`] in ms; meaningful while
    /// `polled_by` is set). A poll that lasts seconds means a blocked thread.
    pub(crate) poll_started_ms: AtomicU64,
    /// When the request was last polled by the application ([`gmr::coarse_monotonic`] in ms,
    /// 0 before the first): polls of a task dump are left out.
    pub(crate) last_poll_ms: AtomicU64,
    /// The tokio task polling the request ([`gmr::requests::current_task_id`] at its first
    /// poll), 0 when unknown.
    pub(crate) task_id: AtomicU64,
}

impl PollCell {
    fn new(shard: &'static ShardLock, index: usize) -> Self {
        PollCell {
            shard,
            index,
            request: AtomicU64::new(0),
            oversized: AtomicBool::new(false),
            started_ms: AtomicU64::new(0),
            polled_by: AtomicI32::new(0),
            poll_started_ms: AtomicU64::new(0),
            last_poll_ms: AtomicU64::new(0),
            task_id: AtomicU64::new(0),
        }
    }

    /// Whether a request is recorded in this cell's slot now.
    fn in_use(&self) -> bool {
        self.request.load(Ordering::Acquire) != 0
    }
}

/// An entry as the report sees it: the request and its poll state at that moment.
#[derive(Debug)]
pub(crate) struct Seen {
    pub(crate) entry: Entry,
    pub(crate) polled_by: i32,
    pub(crate) poll_started_ms: u64,
    pub(crate) last_poll_ms: u64,
    pub(crate) task_id: u64,
}

/// Cells allocated at once when a shard grows.
pub(crate) const CELL_CHUNK: usize = 64;

#[derive(Default)]
struct Shard {
    slots: Vec<SlotData>,
    /// `cells[i]` belongs to `slots[i]`; never shorter than `slots`.
    cells: Vec<&'static PollCell>,
    /// Slots listed free. When it runs out, the slots whose requests ended since are found by
    /// their cells ([`Shard::reclaim`]). A listed slot may be in use again (reused by the
    /// thread that ended its request): [`Shard::claim`] skips it then.
    free: Vec<usize>,
}

impl Shard {
    /// A free slot's index, reclaiming the slots of ended requests or growing the shard when
    /// none is known to be free.
    ///
    /// Growth keeps the work amortized: the shard grows by a quarter (at least one chunk)
    /// whenever a reclaim finds no more than a quarter of its slots free, so every pass over
    /// the slots is paid for by at least a quarter as many requests; and it grows only while
    /// three quarters of its slots hold requests, so it never holds more than 5/3 of the most
    /// requests in flight at once, plus a chunk.
    #[inline]
    fn claim(&mut self, shard: &'static ShardLock) -> usize {
        // The slot of the request this thread ended last, while it is still free: a worker
        // then keeps reusing the few slots (and cache lines) its requests need, where the
        // free list would walk it through the whole shard.
        if let Some(cell) = LAST_ENDED.take()
            && std::ptr::eq(cell.shard, shard)
            && cell.index < self.slots.len()
            && !cell.in_use()
        {
            return cell.index;
        }
        // A listed slot may have been taken that way since it was listed: it is skipped
        // while in use (and listed again by a later reclaim once it is free).
        while let Some(index) = self.free.pop() {
            if !self.cells[index].in_use() {
                return index;
            }
        }
        self.reclaim_or_grow(shard)
    }

    /// [`Shard::claim`] with no slot known to be free. Out of line: building a chunk of cells
    /// takes a large stack frame, which every record would otherwise set up (and probe).
    #[cold]
    #[inline(never)]
    fn reclaim_or_grow(&mut self, shard: &'static ShardLock) -> usize {
        self.reclaim();
        if self.free.len() <= self.slots.len() / 4 {
            return self.grow(shard);
        }
        match self.free.pop() {
            Some(index) => index,
            None => self.grow(shard),
        }
    }

    /// Lists free every slot whose request ended (its cell's id cleared). Only called with
    /// an empty free list.
    fn reclaim(&mut self) {
        let ended = self.cells[..self.slots.len()]
            .iter()
            .enumerate()
            .filter(|(_, cell)| !cell.in_use())
            .map(|(index, _)| index);
        self.free.extend(ended);
        // Lowest first.
        self.free.reverse();
    }

    /// Adds a quarter more slots (at least one), up to the end of a chunk of cells; returns
    /// the first new slot's index and lists the others free.
    fn grow(&mut self, shard: &'static ShardLock) -> usize {
        let first = self.slots.len();
        let len = (first + first / 4 + 1).next_multiple_of(CELL_CHUNK);
        while self.cells.len() < len {
            let start = self.cells.len();
            let chunk: &'static [PollCell; CELL_CHUNK] =
                Box::leak(Box::new(std::array::from_fn(|i| {
                    PollCell::new(shard, start + i)
                })));
            self.cells.extend(chunk.iter());
        }
        self.slots.resize_with(len, SlotData::default);
        self.free.extend((first + 1..len).rev());
        first
    }
}

/// A shard's lock, alone on its cache lines (128 bytes: adjacent-line prefetch pairs them).
#[derive(Default)]
#[repr(align(128))]
struct ShardLock(Mutex<Shard>);

impl std::fmt::Debug for ShardLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShardLock")
    }
}

impl ShardLock {
    fn locked(&self) -> MutexGuard<'_, Shard> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The registry shared by every clone of one [`crate::InFlightLayer`].
pub(crate) struct Registry {
    /// Inline (no pointer to follow per request), one cache line pair each: workers recording
    /// requests in their own shards never write to the same line.
    shards: [ShardLock; SHARDS],
    /// Paths are never shown ([`crate::InFlightOptions::hide_paths`]), so never kept.
    hide_paths: bool,
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
    /// The cell of the last request this thread ended ([`Shard::claim`] reuses its slot).
    static LAST_ENDED: Cell<Option<&'static PollCell>> = const { Cell::new(None) };
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
#[inline]
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

impl Registry {
    fn new(hide_paths: bool) -> Self {
        Registry {
            shards: std::array::from_fn(|_| ShardLock::default()),
            hide_paths,
        }
    }

    /// Whether this registry keeps no paths (its entries' paths are empty).
    pub(crate) fn hides_paths(&self) -> bool {
        self.hide_paths
    }

    /// A registry that lives for the rest of the process (a few KiB, once per layer): requests
    /// then refer to it without a reference count on the hot path, and its cells point at its
    /// shards.
    pub(crate) fn leaked(hide_paths: bool) -> &'static Registry {
        Box::leak(Box::new(Registry::new(hide_paths)))
    }

    /// Stores `entry` in a free slot of the calling thread's shard; returns the slot's cell.
    fn insert(&'static self, entry: &NewEntry<'_>) -> &'static PollCell {
        let shard_lock = &self.shards[thread_shard()];
        let mut shard = shard_lock.locked();
        // A claimed index is below `slots.len()`, and `cells` is never shorter.
        let index = shard.claim(shard_lock);
        let cell = shard.cells[index];
        let slot = &mut shard.slots[index];
        slot.store(entry, !self.hide_paths);
        cell.oversized.store(slot.oversized(), Ordering::Relaxed);
        cell.started_ms
            .store(entry.started.as_millis() as u64, Ordering::Relaxed);
        // No guard of an earlier request of this slot is alive: it ended with its record.
        cell.polled_by.store(0, Ordering::Relaxed);
        cell.last_poll_ms.store(0, Ordering::Relaxed);
        cell.task_id.store(0, Ordering::Relaxed);
        // Last: the id says the slot holds a request.
        cell.request.store(entry.id.get(), Ordering::Release);
        cell
    }

    /// Every entry now, oldest first. Routes left to a resolver are found here, once every
    /// shard's lock is released (a resolver runs the framework's router).
    pub(crate) fn snapshot(&self) -> Vec<Seen> {
        let mut all = Vec::new();
        for shard in &self.shards {
            let shard = shard.locked();
            for (slot, cell) in shard.slots.iter().zip(&shard.cells) {
                if let Some((entry, resolver)) = slot.entry(cell) {
                    let seen = Seen {
                        entry,
                        polled_by: cell.polled_by.load(Ordering::Relaxed),
                        poll_started_ms: cell.poll_started_ms.load(Ordering::Relaxed),
                        last_poll_ms: cell.last_poll_ms.load(Ordering::Relaxed),
                        task_id: cell.task_id.load(Ordering::Relaxed),
                    };
                    all.push((seen, resolver));
                }
            }
        }
        let mut all: Vec<Seen> = all
            .into_iter()
            .map(|(mut seen, resolver)| {
                if let Some(resolver) = resolver {
                    seen.entry.route = resolver.route(&seen.entry.method, &seen.entry.path);
                }
                seen
            })
            .collect();
        all.sort_by_key(|e| e.entry.started);
        all
    }

    /// How many requests are in flight.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = shard.locked();
                shard.cells[..shard.slots.len()]
                    .iter()
                    .filter(|cell| cell.in_use())
                    .count()
            })
            .sum()
    }
}

/// Ends the request in `cell` under its shard's lock, freeing its oversized buffers at once
/// (the slow path of [`Recorded`]'s `Drop`, for a request whose path or route was longer
/// than [`KEPT_BUFFER`]).
#[cold]
fn end_oversized(cell: &PollCell) {
    let mut shard = cell.shard.locked();
    let removed = shard.slots.get_mut(cell.index).and_then(SlotData::take);
    cell.request.store(0, Ordering::Release);
    if removed.is_some() {
        shard.free.push(cell.index);
    }
    drop(shard);
    // The request's values and its buffers are dropped after the lock is released.
    drop(removed);
}

/// Keeps one entry recorded while alive; ends it when dropped (response finished, or the
/// request or its body dropped because the client went away).
#[derive(Debug)]
pub(crate) struct Recorded {
    /// The cell of the slot the request is stored in (its id and start are there too).
    cell: &'static PollCell,
}

impl Recorded {
    #[inline]
    pub(crate) fn new(registry: &'static Registry, entry: &NewEntry<'_>) -> Self {
        Recorded {
            cell: registry.insert(entry),
        }
    }
    /// [`Recorded::polling`] for a poll that starts when the request is recorded.
    #[inline]
    pub(crate) fn polling_from_arrival(&self) -> PollGuard<'_> {
        let started_ms = self.cell.started_ms.load(Ordering::Relaxed);
        self.polling_since(Duration::from_millis(started_ms))
    }

    /// Marks the request as polled by this thread until the returned guard drops.
    #[inline]
    pub(crate) fn polling(&self) -> PollGuard<'_> {
        self.polling_since(gmr::coarse_monotonic())
    }

    /// [`Recorded::polling`] with the time already read.
    ///
    /// The thread works for the request until the guard drops ([`gmr::requests::enter`]), so
    /// spans opened meanwhile belong to it. A poll made by tokio to trace every task for a task
    /// dump, or right after one, does not count as the request's last poll.
    #[inline]
    fn polling_since(&self, now: Duration) -> PollGuard<'_> {
        let id = self.cell.request.load(Ordering::Relaxed);
        let request = gmr::RequestId::from_u64(id).map(gmr::requests::enter);
        let now_ms = (now.as_millis() as u64).max(1);
        self.cell.poll_started_ms.store(now_ms, Ordering::Relaxed);
        self.cell.polled_by.store(current_tid(), Ordering::Relaxed);
        if !gmr::requests::in_task_dump_window(now) {
            self.cell.last_poll_ms.store(now_ms, Ordering::Relaxed);
        }
        if self.cell.task_id.load(Ordering::Relaxed) == 0
            && let Some(task) = gmr::requests::current_task_id()
        {
            self.cell.task_id.store(task, Ordering::Relaxed);
        }
        PollGuard {
            cell: self.cell,
            _request: request,
        }
    }
}

impl Drop for Recorded {
    /// One store: the slot is reused once the shard's lock next looks for a free one. The
    /// cell is not touched after it (it may hold the next request by then).
    #[inline]
    fn drop(&mut self) {
        if self.cell.oversized.load(Ordering::Relaxed) {
            end_oversized(self.cell);
        } else {
            self.cell.request.store(0, Ordering::Release);
            LAST_ENDED.set(Some(self.cell));
        }
    }
}

/// Clears the polling thread when the poll returns (or unwinds), and restores the request
/// the thread worked for before.
#[derive(Debug)]
pub(crate) struct PollGuard<'a> {
    cell: &'a PollCell,
    /// `None` only for a cell whose id was never written, which a record cannot hold.
    _request: Option<gmr::requests::EnteredRequest>,
}

impl Drop for PollGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.cell.polled_by.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str) -> NewEntry<'_> {
        NewEntry {
            id: gmr::RequestId::next(),
            method: &Method::GET,
            path,
            route: None,
            resolver: None,
            started: gmr::coarse_monotonic(),
        }
    }

    #[test]
    fn insert_remove_and_reuse() {
        let registry = Registry::leaked(false);
        let a = Recorded::new(registry, &entry("/a"));
        let b = Recorded::new(registry, &entry("/b"));
        assert_eq!(registry.len(), 2);
        let paths: Vec<_> = registry
            .snapshot()
            .iter()
            .map(|e| e.entry.path.clone())
            .collect();
        assert_eq!(paths, vec!["/a", "/b"], "oldest first");
        drop(a);
        assert_eq!(registry.len(), 1);
        let c = Recorded::new(registry, &entry("/c"));
        assert_eq!(registry.len(), 2);
        drop((b, c));
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn polling_sets_and_clears_the_thread() {
        let registry = Registry::leaked(false);
        let new = entry("/p");
        let rec = Recorded::new(registry, &new);
        assert_eq!(gmr::requests::current(), None);
        {
            let _guard = rec.polling();
            assert_eq!(rec.cell.polled_by.load(Ordering::Relaxed), current_tid());
            assert_eq!(registry.snapshot()[0].polled_by, current_tid());
            assert_eq!(
                gmr::requests::current(),
                Some(new.id),
                "the thread works for it"
            );
        }
        assert_eq!(rec.cell.polled_by.load(Ordering::Relaxed), 0);
        assert_eq!(gmr::requests::current(), None);
        assert!(
            registry.snapshot()[0].last_poll_ms > 0,
            "the last poll's time stays after the poll"
        );
    }

    #[test]
    fn slots_and_cells_are_reused_past_a_chunk() {
        let registry = Registry::leaked(false);
        let many: Vec<Recorded> = (0..CELL_CHUNK + 3)
            .map(|i| Recorded::new(registry, &entry(&format!("/{i}"))))
            .collect();
        assert_eq!(registry.len(), CELL_CHUNK + 3);
        let last = many.last().expect("records");
        {
            let _guard = last.polling();
            let polled: Vec<i32> = registry.snapshot().iter().map(|s| s.polled_by).collect();
            assert_eq!(polled.iter().filter(|&&t| t == current_tid()).count(), 1);
        }
        drop(many);
        assert_eq!(registry.len(), 0);
        let again = Recorded::new(registry, &entry("/again"));
        assert_eq!(
            registry.snapshot()[0].polled_by,
            0,
            "a reused cell starts clear"
        );
        drop(again);
    }

    #[test]
    fn a_reused_slot_shows_only_its_own_request() {
        let registry = Registry::leaked(false);
        let routed = NewEntry {
            route: Some("/users/{id}"),
            ..entry("/users/12345678")
        };
        drop(Recorded::new(registry, &routed));
        let plain = Recorded::new(registry, &entry("/a"));
        let seen = registry.snapshot();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].entry.path, "/a", "no tail of the longer path");
        assert_eq!(seen[0].entry.route, None, "no route of the earlier request");
        drop(plain);
    }

    #[test]
    fn a_registry_that_hides_paths_keeps_none() {
        let registry = Registry::leaked(true);
        let routed = NewEntry {
            route: Some("/reset/{token}"),
            ..entry("/reset/secret-token")
        };
        let record = Recorded::new(registry, &routed);
        let seen = registry.snapshot();
        assert_eq!(seen[0].entry.path, "");
        assert_eq!(seen[0].entry.route.as_deref(), Some("/reset/{token}"));
        drop(record);
    }

    #[test]
    fn a_long_path_does_not_stay_allocated_in_its_slot() {
        let registry = Registry::leaked(false);
        let long = format!("/{}", "x".repeat(KEPT_BUFFER * 4));
        let record = Recorded::new(registry, &entry(&long));
        assert_eq!(registry.snapshot()[0].entry.path, long);
        let cell = record.cell;
        drop(record);
        let shard = cell.shard.locked();
        let buffer = &shard.slots[cell.index].path;
        assert!(
            buffer.capacity() <= KEPT_BUFFER,
            "{} bytes kept",
            buffer.capacity()
        );
    }

    #[test]
    fn a_short_path_buffer_is_kept_for_the_next_request() {
        let registry = Registry::leaked(false);
        let record = Recorded::new(registry, &entry("/orders/17"));
        let cell = record.cell;
        drop(record);
        let shard = cell.shard.locked();
        assert!(shard.slots[cell.index].path.capacity() >= "/orders/17".len());
    }

    #[test]
    fn removal_from_another_thread() {
        let registry = Registry::leaked(false);
        let rec = Recorded::new(registry, &entry("/x"));
        std::thread::spawn(move || drop(rec))
            .join()
            .expect("thread");
        assert_eq!(registry.len(), 0);
    }

    #[test]
    fn ended_requests_free_their_slots_without_growing_the_shard() {
        let registry = Registry::leaked(false);
        let first = Recorded::new(registry, &entry("/first"));
        let shard = first.cell.shard;
        drop(first);
        // Ended on this thread and on others, ten chunks' worth, two at a time.
        for round in 0..CELL_CHUNK * 5 {
            let a = Recorded::new(registry, &entry("/a"));
            let b = Recorded::new(registry, &entry("/b"));
            assert_eq!(registry.len(), 2, "round {round}");
            drop(a);
            std::thread::spawn(move || drop(b)).join().expect("thread");
        }
        assert_eq!(registry.len(), 0);
        assert!(registry.snapshot().is_empty(), "no ended request listed");
        assert_eq!(shard.locked().slots.len(), CELL_CHUNK, "one chunk, reused");
    }

    #[test]
    fn a_shard_grows_only_while_most_of_its_slots_are_in_use() {
        let registry = Registry::leaked(false);
        // 200 in flight at once, then 10 000 more one after another beside them.
        let held: Vec<Recorded> = (0..200)
            .map(|i| Recorded::new(registry, &entry(&format!("/held/{i}"))))
            .collect();
        let shard = held[0].cell.shard;
        for _ in 0..10_000 {
            drop(Recorded::new(registry, &entry("/brief")));
        }
        let slots = shard.locked().slots.len();
        assert!(
            slots <= 201 * 5 / 3 + CELL_CHUNK,
            "{slots} slots for at most 201 requests at once"
        );
        assert_eq!(registry.len(), 200);
        drop(held);
        assert_eq!(registry.len(), 0);
        let again = Recorded::new(registry, &entry("/again"));
        assert_eq!(registry.snapshot().len(), 1, "only the new request");
        assert_eq!(shard.locked().slots.len(), slots, "the freed slots reused");
        drop(again);
    }

    #[test]
    fn a_report_beside_busy_threads_sees_each_request_whole() {
        let registry = Registry::leaked(false);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..3)
            .map(|worker| {
                std::thread::spawn(move || {
                    let mut held = std::collections::VecDeque::new();
                    for _ in 0..20_000 {
                        let id = gmr::RequestId::next();
                        let path = format!("/{id}");
                        let new = NewEntry { id, ..entry(&path) };
                        held.push_back(Recorded::new(registry, &new));
                        if held.len() > 8 {
                            let done = held.pop_front();
                            // The first worker's end on other threads, as stolen tasks do.
                            if worker == 0 {
                                std::thread::spawn(move || drop(done));
                            }
                        }
                    }
                })
            })
            .collect();
        let reader = {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut seen = 0;
                while !stop.load(Ordering::Relaxed) {
                    for request in registry.snapshot() {
                        assert_eq!(request.entry.path, format!("/{}", request.entry.id));
                        seen += 1;
                    }
                }
                seen
            })
        };
        for worker in workers {
            worker.join().expect("worker");
        }
        stop.store(true, Ordering::Relaxed);
        let seen = reader
            .join()
            .expect("a report saw a request with another's path");
        assert!(seen > 0, "the reports saw requests");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while registry.len() > 0 {
            assert!(std::time::Instant::now() < deadline, "requests left listed");
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_thread_reuses_the_slot_of_the_request_it_ended_last() {
        let registry = Registry::leaked(false);
        let held = Recorded::new(registry, &entry("/held"));
        let first = Recorded::new(registry, &entry("/1"));
        let cell: *const PollCell = first.cell;
        drop(first);
        for i in 0..CELL_CHUNK * 3 {
            let next = Recorded::new(registry, &entry("/next"));
            assert!(std::ptr::eq(next.cell, cell), "request {i} in another slot");
            drop(next);
        }
        drop(held);
    }

    #[test]
    fn a_listed_slot_reused_by_its_thread_is_not_handed_out_twice() {
        let registry = Registry::leaked(false);
        let mut records: Vec<Recorded> = (0..CELL_CHUNK)
            .map(|i| Recorded::new(registry, &entry(&format!("/{i}"))))
            .collect();
        // Ended on another thread: free, not listed, no hint of this thread's.
        let fifth = records.remove(5);
        let fifth_cell = fifth.cell;
        std::thread::spawn(move || drop(fifth))
            .join()
            .expect("thread");
        // The next record finds the list empty: the reclaim lists the fifth slot (and the
        // shard grows, listing the new slots above it).
        LAST_ENDED.set(None);
        records.push(Recorded::new(registry, &entry("/grown")));
        // This thread then reuses the listed slot as the one it ended last.
        LAST_ENDED.set(Some(fifth_cell));
        let reused = Recorded::new(registry, &entry("/reused"));
        assert!(std::ptr::eq(reused.cell, fifth_cell));
        records.push(reused);
        // Every listed slot handed out: the fifth, in use, is skipped.
        for i in 0..CELL_CHUNK * 2 {
            records.push(Recorded::new(registry, &entry(&format!("/more/{i}"))));
        }
        let mut cells: Vec<*const PollCell> = records.iter().map(|r| r.cell as *const _).collect();
        let in_flight = cells.len();
        cells.sort();
        cells.dedup();
        assert_eq!(cells.len(), in_flight, "one slot per request in flight");
        assert_eq!(registry.len(), in_flight);
    }
}
