//! One thread (`gmr-deadlines`, started on first use) that runs actions at deadlines: what lets
//! a caller stop waiting for a report that does not come (the reporter blocked writing to a
//! full stderr pipe, or a capture stuck on a hung filesystem) without an async runtime.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

type Action = Box<dyn FnOnce() + Send>;

/// Whether an action is still wanted: `false` once whoever waited for it has its answer.
pub(crate) type Wanted = Box<dyn Fn() -> bool + Send>;

struct Entry {
    at: Instant,
    seq: u64,
    action: Action,
    wanted: Wanted,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Queue {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    started: bool,
    /// The length at which entries no longer wanted are dropped.
    compact_at: usize,
}

/// The smallest `compact_at`.
const COMPACT_MIN: usize = 256;

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    heap: BinaryHeap::new(),
    seq: 0,
    started: false,
    compact_at: COMPACT_MIN,
});
static WAKE: Condvar = Condvar::new();

impl Queue {
    /// Drops the entries nobody waits for any more, and the memory of a heap that has shrunk.
    /// Every admin request registers a deadline 30 s ahead and is usually answered within
    /// milliseconds: without this, a flood of requests would keep every answered request's
    /// entry for 30 s.
    fn compact(&mut self) {
        self.heap.retain(|Reverse(entry)| (entry.wanted)());
        self.compact_at = (self.heap.len() * 2).max(COMPACT_MIN);
        if self.heap.capacity() > self.compact_at * 2 {
            self.heap.shrink_to(self.compact_at);
        }
    }
}

/// Runs `action` at `deadline` on the deadline thread, unless `wanted` says by then that
/// nobody waits for it any more. If the thread cannot be started, the action is dropped (the
/// caller then simply waits for its answer, as without a deadline).
pub(crate) fn at(deadline: Instant, action: Action, wanted: Wanted) {
    let mut queue = QUEUE.lock().unwrap_or_else(PoisonError::into_inner);
    if !queue.started {
        match crate::threads::spawn("gmr-deadlines", run) {
            Ok(_) => queue.started = true,
            Err(error) => {
                tracing::warn!(%error, "gmr cannot start its deadline thread; waits are unbounded");
                return;
            }
        }
    }
    if queue.heap.len() >= queue.compact_at {
        queue.compact();
    }
    queue.seq += 1;
    let seq = queue.seq;
    queue.heap.push(Reverse(Entry {
        at: deadline,
        seq,
        action,
        wanted,
    }));
    drop(queue);
    WAKE.notify_all();
}

fn run() {
    let mut queue = QUEUE.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let now = Instant::now();
        match queue.heap.peek().map(|Reverse(e)| e.at) {
            Some(at) if at <= now => {
                if let Some(Reverse(entry)) = queue.heap.pop() {
                    drop(queue);
                    // An action only stores a value and wakes a waiter; a panic in one must
                    // not stop the others.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(entry.action));
                    queue = QUEUE.lock().unwrap_or_else(PoisonError::into_inner);
                }
            }
            Some(at) => {
                queue = WAKE
                    .wait_timeout(queue, at - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            None => {
                if queue.heap.capacity() > COMPACT_MIN {
                    queue.heap.shrink_to(COMPACT_MIN);
                }
                queue = WAKE.wait(queue).unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_nobody_waits_for_are_dropped_long_before_their_deadline() {
        let far = Instant::now() + std::time::Duration::from_secs(3600);
        for _ in 0..10_000 {
            at(far, Box::new(|| {}), Box::new(|| false));
        }
        let len = QUEUE
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .heap
            .len();
        // Other tests may hold a few live entries; the 10,000 answered ones are gone but for
        // at most one compaction interval.
        assert!(len < 2 * COMPACT_MIN + 100, "{len} entries kept");
    }
}
