//! Process-wide registrations: the application's own sections and the sources of the
//! `Green Threads` section.
//!
//! The equivalent of oslo's `register_section("Title", generator)`: any crate may register at
//! any time, before or after the hook is installed; the next report includes the section.
//! Generators are called outside the registry lock, on the reporting thread, so a slow or
//! panicking generator neither blocks registration nor poisons the registry.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use crate::error::SectionError;
use crate::report::{Content, SectionBody};

/// A section generator as stored: produces a body or an error.
pub(crate) type Generator =
    dyn Fn() -> Result<Box<dyn SectionBody>, SectionError> + Send + Sync + 'static;

/// One registered section.
pub(crate) struct Entry {
    id: u64,
    pub(crate) title: String,
    pub(crate) generator: Box<Generator>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("id", &self.id)
            .field("title", &self.title)
            .finish_non_exhaustive()
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);
static SECTIONS: RwLock<Vec<Arc<Entry>>> = RwLock::new(Vec::new());
static GREEN_SOURCES: Registrations<dyn GreenThreadsSource> = Registrations::new();

/// Things registered for every report (sources of a section), each under an id of its own, in
/// registration order.
pub(crate) struct Registrations<T: ?Sized> {
    entries: RwLock<Vec<(u64, Arc<T>)>>,
}

impl<T: ?Sized> Registrations<T> {
    /// None yet.
    pub(crate) const fn new() -> Self {
        Registrations {
            entries: RwLock::new(Vec::new()),
        }
    }

    /// Adds `entry`; returns its id, for [`Registrations::remove`].
    pub(crate) fn add(&self, entry: Arc<T>) -> u64 {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, entry));
        id
    }

    /// What is registered now, in registration order.
    pub(crate) fn list(&self) -> Vec<Arc<T>> {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(_, e)| Arc::clone(e))
            .collect()
    }

    /// Removes the entry `id`; returns whether it was still there.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let before = entries.len();
        entries.retain(|(e, _)| *e != id);
        entries.len() != before
    }
}

/// Wraps a user generator into the stored form.
pub(crate) fn boxed_generator<F, B, E>(generator: F) -> Box<Generator>
where
    F: Fn() -> Result<B, E> + Send + Sync + 'static,
    B: SectionBody + 'static,
    E: fmt::Display,
{
    Box::new(move || {
        generator()
            .map(|body| Box::new(body) as Box<dyn SectionBody>)
            .map_err(SectionError::failed)
    })
}

pub(crate) fn new_entry(title: String, generator: Box<Generator>) -> Arc<Entry> {
    Arc::new(Entry {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        title,
        generator,
    })
}

/// Registers a section of the application's own, shown after the built-in sections in every
/// report of this process from now on, in registration order.
///
/// The generator runs on the reporting thread each time a report is made. It returns a body
/// ([`Content`], or any [`SectionBody`]) or an error; an error or a panic is shown in place of
/// the section and the rest of the report is unaffected.
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// static QUEUE_DEPTH: AtomicUsize = AtomicUsize::new(0);
///
/// gmr::register_section("Job Queue", || {
///     Ok::<_, std::convert::Infallible>(
///         gmr::Content::new().field("depth", QUEUE_DEPTH.load(Ordering::Relaxed)),
///     )
/// });
/// ```
pub fn register_section<F, B, E>(title: impl Into<String>, generator: F) -> RegisteredSection
where
    F: Fn() -> Result<B, E> + Send + Sync + 'static,
    B: SectionBody + 'static,
    E: fmt::Display,
{
    let entry = new_entry(title.into(), boxed_generator(generator));
    let id = entry.id;
    SECTIONS
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .push(entry);
    RegisteredSection { id }
}

/// The sections registered now, in registration order.
pub(crate) fn registered_sections() -> Vec<Arc<Entry>> {
    SECTIONS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// A registration made by [`register_section`]. Dropping it keeps the section registered;
/// call [`RegisteredSection::unregister`] to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisteredSection {
    id: u64,
}

impl RegisteredSection {
    /// Removes the section from later reports. Returns whether it was still registered.
    pub fn unregister(self) -> bool {
        let mut sections = SECTIONS.write().unwrap_or_else(PoisonError::into_inner);
        let before = sections.len();
        sections.retain(|e| e.id != self.id);
        sections.len() != before
    }
}

/// Something the `Green Threads` section shows: an async runtime, or the requests in flight in
/// a web adapter. Registered with [`register_green_threads_source`].
pub trait GreenThreadsSource: Send + Sync + 'static {
    /// The heading of this source's block, e.g. `tokio runtime #1 (multi-thread)`.
    fn title(&self) -> String;
    /// The source's state now. Called on the reporting thread; must not wait on async work.
    ///
    /// # Errors
    ///
    /// A [`SectionError`] shown in place of this source's block.
    fn snapshot(&self) -> Result<Content, SectionError>;
}

/// Registers a source of the `Green Threads` section. Returns a handle that unregisters it.
pub fn register_green_threads_source(source: Arc<dyn GreenThreadsSource>) -> GreenThreadsHandle {
    GreenThreadsHandle {
        id: GREEN_SOURCES.add(source),
    }
}

/// The registered green-thread sources, in registration order.
pub(crate) fn green_threads_sources() -> Vec<Arc<dyn GreenThreadsSource>> {
    GREEN_SOURCES.list()
}

/// A registration made by [`register_green_threads_source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreenThreadsHandle {
    id: u64,
}

impl GreenThreadsHandle {
    /// Removes the source from later reports. Returns whether it was still registered.
    pub fn unregister(self) -> bool {
        GREEN_SOURCES.remove(self.id)
    }
}
