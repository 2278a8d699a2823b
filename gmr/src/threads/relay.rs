//! gmr's threads never wait for the application's log output.
//!
//! gmr logs with `tracing`, and the application's subscriber decides where events go: often
//! straight to stderr, written on the thread that emitted the event. When stderr is a pipe
//! nobody reads (a hung log shipper, `2> fifo`), that write blocks, and a reporter blocked in
//! "gmr report written" makes no more reports: not to `log_dir`, not over HTTP. So every gmr
//! thread emits its events to the **relay** (a thread-default subscriber set by
//! [`super::spawn`]), which only records them into a bounded queue; the thread `gmr-log`
//! hands them to the application's subscriber. If that thread is blocked, the queue fills and
//! further events are dropped and counted; once the output moves again, one warning says how
//! many were lost. [`without_blocking`] does the same for events gmr emits on the
//! application's threads (the admin endpoint's, on web workers).
//!
//! A relayed event keeps its callsite (level, target, module, file, line) and its fields; it
//! loses its span context (gmr's threads enter no spans) and is timestamped when `gmr-log`
//! hands it on. The relay asks the application's subscriber whether an event is enabled, and
//! answers callsite registration as it does, so the application's filters and their cached
//! interests are unchanged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tracing::field::{DisplayValue, Field, Value, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::{Interest, NoSubscriber};
use tracing::{Dispatch, Event, Metadata, Subscriber};

/// Events waiting for `gmr-log`; more are dropped (and counted).
const QUEUE: usize = 1024;

/// The most fields of one event that are relayed.
const MAX_FIELDS: usize = 32;

/// How often `gmr-log` looks at the application's subscriber again (it may be set after gmr
/// started, or replaced).
const REFRESH: Duration = Duration::from_secs(1);

/// The application's subscriber: the default of `gmr-log`, which sets no default of its own.
static TARGET: RwLock<Option<Dispatch>> = RwLock::new(None);

/// The application's level hint when the relay started.
static HINT: OnceLock<Option<LevelFilter>> = OnceLock::new();

/// Events dropped because the queue was full.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The relay, once started (`None` if `gmr-log` could not be started: events are then
/// emitted directly, as without the relay).
static RELAY: OnceLock<Option<Dispatch>> = OnceLock::new();

/// Makes the relay the calling thread's default subscriber for as long as the guard lives.
pub(crate) fn enter() -> Option<tracing::dispatcher::DefaultGuard> {
    relay().map(tracing::dispatcher::set_default)
}

/// Runs `f` with its events handed to `gmr-log` (see the module docs).
pub(crate) fn without_blocking<R>(f: impl FnOnce() -> R) -> R {
    match relay() {
        Some(dispatch) => tracing::dispatcher::with_default(dispatch, f),
        None => f(),
    }
}

fn relay() -> Option<&'static Dispatch> {
    RELAY.get_or_init(start).as_ref()
}

/// Starts `gmr-log` and makes the relay, once `gmr-log` has found the application's
/// subscriber (so the relay's first answers are the application's).
fn start() -> Option<Dispatch> {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let (ready_tx, ready_rx) = mpsc::channel();
    let spawned = super::spawn_plain("gmr-log", move || {
        refresh();
        let _ = HINT.set(LevelFilter::current().into());
        let _ = ready_tx.send(());
        run(&rx);
    });
    match spawned {
        Ok(_) => {
            // A thread that started answers at once; without an answer, events go direct.
            ready_rx.recv_timeout(Duration::from_secs(5)).ok()?;
            Some(Dispatch::new(Relay { tx }))
        }
        Err(error) => {
            tracing::warn!(%error, "gmr cannot start its log thread; its events are written directly");
            None
        }
    }
}

/// Looks at the application's subscriber: the default of this thread, which has none of its
/// own, so the global one.
fn refresh() {
    let current = tracing::dispatcher::get_default(|dispatch| {
        (!dispatch.is::<NoSubscriber>()).then(|| dispatch.clone())
    });
    *TARGET.write().unwrap_or_else(PoisonError::into_inner) = current;
}

/// The body of `gmr-log`: hands each event on, says when some were dropped.
fn run(rx: &Receiver<Captured>) {
    let mut refreshed = Instant::now();
    loop {
        match rx.recv_timeout(REFRESH) {
            Ok(captured) => replay(&captured),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if refreshed.elapsed() >= REFRESH {
            refresh();
            refreshed = Instant::now();
        }
        let dropped = DROPPED.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "gmr dropped log events while the application's log output was blocked (a full stderr pipe?)"
            );
        }
    }
}

/// Hands one recorded event to the application's subscriber.
fn replay(captured: &Captured) {
    let Some(target) = TARGET
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
    else {
        return;
    };
    let meta = captured.meta;
    if !target.enabled(meta) {
        return;
    }
    let fields = meta.fields();
    match captured.fields.first() {
        None => {
            let values = fields.value_set(&[]);
            target.event(&Event::new_child_of(None::<Id>, meta, &values));
        }
        Some((first, _)) => {
            let entries: [(&Field, Option<&dyn Value>); MAX_FIELDS] =
                std::array::from_fn(|i| match captured.fields.get(i) {
                    Some((field, value)) => (field, Some(value.as_value())),
                    None => (first, None),
                });
            let values = fields.value_set(&entries);
            target.event(&Event::new_child_of(None::<Id>, meta, &values));
        }
    }
}

/// One field's value, owned.
enum Recorded {
    Str(String),
    Shown(DisplayValue<String>),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Bool(bool),
}

impl Recorded {
    fn as_value(&self) -> &dyn Value {
        match self {
            Recorded::Str(v) => v,
            Recorded::Shown(v) => v,
            Recorded::I64(v) => v,
            Recorded::U64(v) => v,
            Recorded::I128(v) => v,
            Recorded::U128(v) => v,
            Recorded::F64(v) => v,
            Recorded::Bool(v) => v,
        }
    }
}

/// An event recorded by the relay, waiting for `gmr-log`.
struct Captured {
    meta: &'static Metadata<'static>,
    fields: Vec<(Field, Recorded)>,
}

impl Visit for Captured {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `Debug` of a `%display` or `?debug` field, and of the message, is how the
        // application's subscriber would show it too.
        self.push(
            field,
            Recorded::Shown(tracing::field::display(format!("{value:?}"))),
        );
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, Recorded::Str(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, Recorded::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, Recorded::U64(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.push(field, Recorded::I128(value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.push(field, Recorded::U128(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, Recorded::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, Recorded::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.push(
            field,
            Recorded::Shown(tracing::field::display(value.to_string())),
        );
    }
}

impl Captured {
    fn push(&mut self, field: &Field, value: Recorded) {
        if self.fields.len() < MAX_FIELDS {
            self.fields.push((field.clone(), value));
        }
    }
}

/// The thread-default subscriber of gmr's threads: records events for `gmr-log`.
struct Relay {
    tx: SyncSender<Captured>,
}

impl Relay {
    fn with_target<T>(&self, f: impl FnOnce(&Dispatch) -> T) -> Option<T> {
        TARGET
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(f)
    }
}

impl Subscriber for Relay {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        // The application's own answer, so its cached interests do not change.
        self.with_target(|target| target.register_callsite(meta))
            .unwrap_or_else(Interest::sometimes)
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        self.with_target(|target| target.enabled(meta))
            .unwrap_or(false)
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        HINT.get().copied().flatten()
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // gmr's threads enter no spans; a section of the application's may: its events are
        // relayed without it.
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut captured = Captured {
            meta: event.metadata(),
            fields: Vec::new(),
        };
        event.record(&mut captured);
        match self.tx.try_send(captured) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(_)) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
