//! Requests in flight, as the web adapters see them, and which request a thread works for now.
//!
//! An adapter (`gmr-tower`'s in-flight layer, `gmr-actix`'s middleware) gives every request a
//! [`RequestId`], registers a [`RequestSource`] that lists its requests at report time, and
//! marks each poll of a request with [`enter`]. The `Green Threads` section then shows each
//! request joined to what else gmr knows about it: the thread polling it (its stack is in
//! `Threads`), its tokio task (and the task's stack when there is a task dump), and its open
//! tracing spans (with `gmr::tracing::layer()`, cargo feature `tracing`), which find their
//! request through [`current`].
//!
//! Everything here is cheap enough for the request path: an id is a thread-local increment
//! (and one shared increment per 1024 ids), and entering a request is two thread-local writes.
#![forbid(unsafe_code)]

use crate::registry::Registrations;
use std::cell::Cell;
use std::fmt;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A request's id: unique in the process, never reused, increasing with arrival on each
/// thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(NonZeroU64);

/// The first id of the next block of ids handed to a thread.
static NEXT_BLOCK: AtomicU64 = AtomicU64::new(1);

/// Ids a thread takes at once: one shared counter increment per this many requests, so
/// workers never write to one cache line per request.
const ID_BLOCK: u64 = 1024;

thread_local! {
    /// The calling thread's next id and the end of its block (`next == end`: none left).
    static THREAD_IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

impl RequestId {
    /// A new id, never given out before, and greater than every id given out before on the
    /// calling thread. Each thread takes its ids in blocks of 1024 from one counter (ids of
    /// requests that arrived on different threads are not in arrival order).
    #[inline]
    pub fn next() -> Self {
        let n = THREAD_IDS.with(|ids| {
            let (mut next, mut end) = ids.get();
            if next == end {
                next = NEXT_BLOCK.fetch_add(ID_BLOCK, Ordering::Relaxed);
                end = next.wrapping_add(ID_BLOCK);
            }
            ids.set((next.wrapping_add(1), end));
            next
        });
        // 2^64 requests are never reached; should the counter wrap, 0 is skipped.
        RequestId(NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN))
    }

    /// The id as a number (as the report shows it).
    #[inline]
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// The id of a number, `None` for 0.
    #[inline]
    pub fn from_u64(n: u64) -> Option<Self> {
        NonZeroU64::new(n).map(RequestId)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

thread_local! {
    static CURRENT: Cell<u64> = const { Cell::new(0) };
}

/// Marks the calling thread as working for `request` until the returned guard is dropped
/// (adapters enter it around each poll of the request's future). Nests: dropping the guard
/// restores the request entered before.
#[inline]
pub fn enter(request: RequestId) -> EnteredRequest {
    let previous = CURRENT.with(|c| c.replace(request.get()));
    EnteredRequest {
        previous,
        _not_send: std::marker::PhantomData,
    }
}

/// The request the calling thread works for now, if an adapter entered one.
#[inline]
pub fn current() -> Option<RequestId> {
    RequestId::from_u64(CURRENT.with(Cell::get))
}

/// Restores the previously entered request when dropped. Made by [`enter`].
#[derive(Debug)]
#[must_use = "the request is current only while this guard is alive"]
pub struct EnteredRequest {
    previous: u64,
    /// The guard restores a thread-local: it must drop on the thread that made it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for EnteredRequest {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// How long after a task dump polls are still its echo: tokio defers the wakes of the leaf
/// futures it traced until the dump ends, so every traced task is polled once more right
/// after it.
pub const DUMP_ECHO: Duration = Duration::from_millis(100);

/// Counts task dumps running now (tokio re-polls every task of a runtime to trace it), and
/// when the last one ended.
#[derive(Debug)]
pub(crate) struct DumpCounter {
    running: AtomicU64,
    /// When the last dump ended plus [`DUMP_ECHO`], [`crate::coarse_monotonic`] in ms.
    quiet_until_ms: AtomicU64,
}

impl DumpCounter {
    const fn new() -> Self {
        DumpCounter {
            running: AtomicU64::new(0),
            quiet_until_ms: AtomicU64::new(0),
        }
    }

    #[inline]
    fn in_window(&self, now: Duration) -> bool {
        self.running.load(Ordering::Relaxed) != 0
            || (now.as_millis() as u64) < self.quiet_until_ms.load(Ordering::Relaxed)
    }

    /// Counts a dump as running until the returned guard is dropped.
    #[cfg_attr(not(all(feature = "tokio-taskdump", tokio_unstable)), allow(dead_code))]
    fn start(&'static self) -> DumpRunning {
        self.running.fetch_add(1, Ordering::Relaxed);
        DumpRunning { counter: self }
    }
}

/// The task dumps of this process.
static DUMPS: DumpCounter = DumpCounter::new();

/// Whether a poll at `now` ([`crate::coarse_monotonic`]) may be a task dump's: tokio takes a
/// dump by polling every task once in a tracing mode, and polls each traced task once more
/// right after (within [`DUMP_ECHO`]). Such polls are not the application's: adapters do not
/// record them as a request's last poll, and gmr's span layer does not record them as a span
/// being entered. Two relaxed atomic loads.
#[inline]
pub fn in_task_dump_window(now: Duration) -> bool {
    DUMPS.in_window(now)
}

/// Marks a task dump as running until the returned guard is dropped (when the dump itself
/// finishes, which may be long after the report gave up waiting for it).
#[cfg_attr(not(all(feature = "tokio-taskdump", tokio_unstable)), allow(dead_code))]
pub(crate) fn dump_running() -> DumpRunning {
    DUMPS.start()
}

/// Made by [`dump_running`].
#[derive(Debug)]
#[cfg_attr(not(all(feature = "tokio-taskdump", tokio_unstable)), allow(dead_code))]
pub(crate) struct DumpRunning {
    counter: &'static DumpCounter,
}

impl Drop for DumpRunning {
    fn drop(&mut self) {
        let until = crate::capture::sys::coarse_monotonic() + DUMP_ECHO;
        self.counter
            .quiet_until_ms
            .fetch_max(until.as_millis() as u64, Ordering::Relaxed);
        self.counter.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The id of the tokio task running on the calling thread (`tokio::task::try_id`), as a
/// number: what the task dump lists. `None` outside a tokio task, and without gmr's `tokio`
/// feature.
#[inline]
pub fn current_task_id() -> Option<u64> {
    #[cfg(feature = "tokio")]
    {
        task_number::of(tokio::task::try_id()?)
    }
    #[cfg(not(feature = "tokio"))]
    {
        None
    }
}

/// A tokio task id as a number. tokio shows it only through `Display` (formatting and parsing
/// it costs about 15 ns, on every request); its `Hash` writes the same number as one `u64`,
/// which costs about one. The first id is read both ways: the hash is used from then on if
/// they agree, and `Display` otherwise (a tokio that hashes its ids differently).
#[cfg(feature = "tokio")]
mod task_number {
    use std::fmt::{self, Write as _};
    use std::hash::{Hash, Hasher};
    use std::sync::atomic::{AtomicU8, Ordering};

    const UNKNOWN: u8 = 0;
    const HASH_AGREES: u8 = 1;
    const DISPLAY_ONLY: u8 = 2;

    static METHOD: AtomicU8 = AtomicU8::new(UNKNOWN);

    pub(super) fn of(id: tokio::task::Id) -> Option<u64> {
        match METHOD.load(Ordering::Relaxed) {
            HASH_AGREES => by_hash(&id),
            DISPLAY_ONLY => by_display(&id),
            _ => {
                let shown = by_display(&id);
                let agrees = shown.is_some() && by_hash(&id) == shown;
                let method = if agrees { HASH_AGREES } else { DISPLAY_ONLY };
                METHOD.store(method, Ordering::Relaxed);
                shown
            }
        }
    }

    /// The one `u64` that `value`'s `Hash` writes; `None` if it writes anything else.
    pub(super) fn by_hash(value: &impl Hash) -> Option<u64> {
        let mut word = OneWord::default();
        value.hash(&mut word);
        if word.other { None } else { word.word }
    }

    pub(super) fn by_display(value: &impl fmt::Display) -> Option<u64> {
        let mut digits = DigitBuffer::default();
        write!(digits, "{value}").ok()?;
        digits.as_str().parse().ok()
    }

    /// A hasher that keeps the one `u64` written to it.
    #[derive(Default)]
    struct OneWord {
        word: Option<u64>,
        /// Something other than a single `u64` was written.
        other: bool,
    }

    impl Hasher for OneWord {
        fn finish(&self) -> u64 {
            self.word.unwrap_or_default()
        }

        fn write(&mut self, _bytes: &[u8]) {
            self.other = true;
        }

        fn write_u64(&mut self, n: u64) {
            if self.word.replace(n).is_some() {
                self.other = true;
            }
        }
    }

    /// A `u64`'s decimal digits, formatted without allocating.
    #[derive(Default)]
    struct DigitBuffer {
        bytes: [u8; 20],
        len: usize,
    }

    impl DigitBuffer {
        fn as_str(&self) -> &str {
            std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
        }
    }

    impl fmt::Write for DigitBuffer {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.len + s.len();
            let room = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
            room.copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }
}

/// One request in flight, as an adapter lists it at report time.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InFlightRequest {
    /// Its id.
    pub id: RequestId,
    /// The HTTP method.
    pub method: String,
    /// The path, never the query string (or the route, when the adapter hides paths).
    pub path: String,
    /// The route pattern it matched (`/users/{id}`), when the framework tells.
    pub route: Option<String>,
    /// Time since it arrived.
    pub age: Duration,
    /// The kernel TID of the thread polling it right now, if any.
    pub polled_by: Option<i32>,
    /// Time since its last poll started (the current one, while `polled_by` is set); `None`
    /// before its first poll. Polls of a task dump are not counted ([`in_task_dump_window`]).
    pub last_poll: Option<Duration>,
    /// The tokio task that polls it ([`current_task_id`] at its first poll).
    pub task: Option<u64>,
}

impl InFlightRequest {
    /// A request that arrived `age` ago and has not been polled yet.
    pub fn new(
        id: RequestId,
        method: impl Into<String>,
        path: impl Into<String>,
        age: Duration,
    ) -> Self {
        InFlightRequest {
            id,
            method: method.into(),
            path: path.into(),
            route: None,
            age,
            polled_by: None,
            last_poll: None,
            task: None,
        }
    }

    /// With the route pattern it matched.
    pub fn route(mut self, route: Option<impl Into<String>>) -> Self {
        self.route = route.map(Into::into);
        self
    }

    /// With its poll state: the thread polling it now (if any), and the time since its last
    /// poll started.
    pub fn polled(mut self, polled_by: Option<i32>, last_poll: Option<Duration>) -> Self {
        self.polled_by = polled_by;
        self.last_poll = last_poll;
        self
    }

    /// With the tokio task that polls it.
    pub fn task(mut self, task: Option<u64>) -> Self {
        self.task = task;
        self
    }
}

/// Something that lists requests in flight: an adapter's table. Registered with
/// [`register_request_source`].
pub trait RequestSource: Send + Sync + 'static {
    /// The name of this source in the report (`axum`, `actix-web`, the service's name).
    fn name(&self) -> String;
    /// The requests in flight now, oldest first. Called on the reporting thread; must not wait
    /// on async work.
    fn requests(&self) -> Vec<InFlightRequest>;
}

static SOURCES: Registrations<dyn RequestSource> = Registrations::new();

/// Lists `source`'s requests in the `Green Threads` section of every report until the
/// returned handle is unregistered.
pub fn register_request_source(source: Arc<dyn RequestSource>) -> RequestSourceHandle {
    RequestSourceHandle {
        id: SOURCES.add(source),
    }
}

/// The registered request sources, in registration order.
pub(crate) fn sources() -> Vec<Arc<dyn RequestSource>> {
    SOURCES.list()
}

/// A registration made by [`register_request_source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSourceHandle {
    id: u64,
}

impl RequestSourceHandle {
    /// Removes the source from later reports. Returns whether it was still registered.
    pub fn unregister(self) -> bool {
        SOURCES.remove(self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_threads_and_past_a_block() {
        let per_thread = (ID_BLOCK * 3) as usize;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..per_thread)
                        .map(|_| RequestId::next().get())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for thread in threads {
            let ids = thread.join().expect("thread");
            assert!(ids.windows(2).all(|w| w[0] < w[1]), "increasing per thread");
            all.extend(ids);
        }
        assert_eq!(all.len(), 4 * per_thread, "no id given out twice");
    }

    #[test]
    fn ids_increase_and_entering_nests() {
        let a = RequestId::next();
        let b = RequestId::next();
        assert!(b > a);
        assert_eq!(current(), None);
        {
            let _outer = enter(a);
            assert_eq!(current(), Some(a));
            {
                let _inner = enter(b);
                assert_eq!(current(), Some(b));
            }
            assert_eq!(current(), Some(a));
        }
        assert_eq!(current(), None);
        assert_eq!(RequestId::from_u64(a.get()), Some(a));
        assert_eq!(RequestId::from_u64(0), None);
    }

    #[test]
    fn dumps_in_progress_are_counted_until_they_finish() {
        // A counter of its own: the process's is read by other tests running meanwhile.
        static COUNTER: DumpCounter = DumpCounter::new();
        let now = crate::capture::sys::coarse_monotonic();
        assert!(!COUNTER.in_window(now));
        let a = COUNTER.start();
        let b = COUNTER.start();
        assert!(COUNTER.in_window(now));
        drop(a);
        assert!(COUNTER.in_window(now));
        drop(b);
        let ended = crate::capture::sys::coarse_monotonic();
        assert!(
            COUNTER.in_window(ended),
            "its echo: the traced tasks' next polls"
        );
        assert!(!COUNTER.in_window(ended + DUMP_ECHO + Duration::from_millis(20)));
    }

    #[test]
    fn the_current_request_is_per_thread() {
        let a = RequestId::next();
        let _entered = enter(a);
        let other = std::thread::spawn(current).join().expect("thread");
        assert_eq!(other, None);
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn the_task_id_is_the_one_tokio_shows() {
        assert_eq!(current_task_id(), None, "no task on a plain thread");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (shown, ours) = runtime.block_on(async {
            tokio::spawn(async {
                let shown = tokio::task::id().to_string();
                (shown, current_task_id())
            })
            .await
            .expect("task")
        });
        assert_eq!(ours.map(|n| n.to_string()), Some(shown));
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn tokio_task_ids_hash_as_the_number_they_show() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let ids = runtime.block_on(async {
            let mut ids = Vec::new();
            for _ in 0..3 {
                ids.push(
                    tokio::spawn(async { tokio::task::id() })
                        .await
                        .expect("task"),
                );
            }
            ids
        });
        for id in ids {
            // Else every request pays for `Display` (still right, 15 ns slower).
            assert_eq!(
                task_number::by_hash(&id),
                task_number::by_display(&id),
                "{id}"
            );
            assert!(task_number::by_hash(&id).is_some());
        }
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn a_value_that_hashes_as_more_than_one_word_has_no_number() {
        assert_eq!(task_number::by_hash(&7_u64), Some(7));
        assert_eq!(task_number::by_hash(&(1_u64, 2_u64)), None);
        assert_eq!(task_number::by_hash(&"7"), None);
        assert_eq!(task_number::by_hash(&7_u32), None);
    }

    struct Two;
    impl RequestSource for Two {
        fn name(&self) -> String {
            "two".into()
        }
        fn requests(&self) -> Vec<InFlightRequest> {
            let id = RequestId::next();
            vec![
                InFlightRequest::new(id, "GET", "/a", Duration::from_secs(2))
                    .route(Some("/a"))
                    .polled(Some(7), Some(Duration::from_millis(5)))
                    .task(Some(3)),
            ]
        }
    }

    #[test]
    fn sources_register_and_unregister() {
        let handle = register_request_source(Arc::new(Two));
        assert!(sources().iter().any(|s| s.name() == "two"));
        assert!(handle.unregister());
        assert!(!handle.unregister());
        assert!(!sources().iter().any(|s| s.name() == "two"));
    }
}
