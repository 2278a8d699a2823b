//! One thread (`gmr-deadlines`, started on first use) that runs actions at deadlines: what lets
//! a caller stop waiting for a report that does not come (the reporter blocked writing to a
//! full stderr pipe, or a capture stuck on a hung filesystem) without an async runtime.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

type Action = Box<dyn FnOnce() + Send>;

struct Entry {
    at: Instant,
    seq: u64,
    action: Action,
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
}

static QUEUE: Mutex<Queue> = Mutex::new(Queue {
    heap: BinaryHeap::new(),
    seq: 0,
    started: false,
});
static WAKE: Condvar = Condvar::new();

/// Runs `action` at `deadline` on the deadline thread. If the thread cannot be started, the
/// action is dropped (the caller then simply waits for its answer, as without a deadline).
pub(crate) fn at(deadline: Instant, action: Action) {
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
    queue.seq += 1;
    let seq = queue.seq;
    queue.heap.push(Reverse(Entry {
        at: deadline,
        seq,
        action,
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
                queue = WAKE.wait(queue).unwrap_or_else(PoisonError::into_inner);
            }
        }
    }
}
