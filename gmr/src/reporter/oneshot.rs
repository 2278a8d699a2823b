//! A one-value channel whose receiver can block or be awaited, without an async runtime
//! dependency: the reporter thread answers, a caller waits on a thread or in a task.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    /// A value was delivered (by the sender or by a deadline): later ones are dropped.
    completed: bool,
    /// The sender was dropped without sending.
    closed: bool,
    waker: Option<Waker>,
}

struct Shared<T> {
    slot: Mutex<Slot<T>>,
    ready: Condvar,
}

/// Sends the one value.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
    sent: bool,
}

/// Receives the one value, blocking ([`Receiver::recv`]) or as a future.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        slot: Mutex::new(Slot {
            value: None,
            completed: false,
            closed: false,
            waker: None,
        }),
        ready: Condvar::new(),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
            sent: false,
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    pub(crate) fn send(mut self, value: T) {
        self.finish(Some(value));
    }

    fn finish(&mut self, value: Option<T>) {
        self.sent = true;
        let waker = {
            let mut slot = self
                .shared
                .slot
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if slot.completed {
                return;
            }
            match value {
                Some(v) => {
                    slot.value = Some(v);
                    slot.completed = true;
                }
                None => slot.closed = true,
            }
            slot.waker.take()
        };
        self.shared.ready.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if !self.sent {
            self.finish(None);
        }
    }
}

impl<T: Send + 'static> Receiver<T> {
    /// Arranges for `value` to be delivered at `deadline` unless the sender has answered by
    /// then (the deadline thread holds the channel weakly: nothing is kept alive for it).
    pub(crate) fn deliver_at(&self, deadline: std::time::Instant, value: T) {
        let weak = Arc::downgrade(&self.shared);
        let probe = weak.clone();
        super::deadlines::at(
            deadline,
            Box::new(move || {
                let Some(shared) = weak.upgrade() else { return };
                let waker = {
                    let mut slot = shared.slot.lock().unwrap_or_else(PoisonError::into_inner);
                    if slot.completed || slot.closed {
                        return;
                    }
                    slot.value = Some(value);
                    slot.completed = true;
                    slot.waker.take()
                };
                shared.ready.notify_all();
                if let Some(waker) = waker {
                    waker.wake();
                }
            }),
            // Wanted while either end lives: once the answer has been taken and the sender is
            // gone, the entry can go.
            Box::new(move || probe.strong_count() > 0),
        );
    }
}

impl<T> Receiver<T> {
    /// Blocks until the value arrives; `None` if the sender was dropped without sending.
    pub(crate) fn recv(self) -> Option<T> {
        let mut slot = self
            .shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(value) = slot.value.take() {
                return Some(value);
            }
            if slot.closed {
                return None;
            }
            slot = self
                .shared
                .ready
                .wait(slot)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl<T> Future for Receiver<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self
            .shared
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = slot.value.take() {
            return Poll::Ready(Some(value));
        }
        if slot.closed {
            return Poll::Ready(None);
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_receive_across_threads() {
        let (tx, rx) = channel();
        let t = std::thread::spawn(move || tx.send(7));
        assert_eq!(rx.recv(), Some(7));
        t.join().expect("sender thread");
    }

    #[test]
    fn a_deadline_answers_first_and_a_late_sender_is_ignored() {
        let (tx, rx) = channel();
        rx.deliver_at(
            std::time::Instant::now() + std::time::Duration::from_millis(20),
            "late",
        );
        assert_eq!(rx.recv(), Some("late"));
        tx.send("on time"); // too late: dropped
        let (tx, rx) = channel();
        rx.deliver_at(
            std::time::Instant::now() + std::time::Duration::from_secs(60),
            "late",
        );
        tx.send("on time");
        assert_eq!(rx.recv(), Some("on time"));
    }

    #[test]
    fn dropped_sender_closes() {
        let (tx, rx) = channel::<u8>();
        drop(tx);
        assert_eq!(rx.recv(), None);
    }

    #[test]
    fn future_is_woken() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::task::Wake;
        struct Flag(AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(Arc::clone(&flag));
        let mut cx = Context::from_waker(&waker);
        let (tx, mut rx) = channel();
        assert!(Pin::new(&mut rx).poll(&mut cx).is_pending());
        tx.send("done");
        assert!(flag.0.load(Ordering::SeqCst));
        assert_eq!(Pin::new(&mut rx).poll(&mut cx), Poll::Ready(Some("done")));
    }
}
