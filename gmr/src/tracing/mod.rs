//! Open tracing spans in the report (cargo feature `tracing`): where each request is waiting,
//! on every runtime (actix-web's `LocalSet` included) and on stable Rust.
//!
//! Add [`layer()`] to the application's subscriber:
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt as _;
//!
//! let subscriber = tracing_subscriber::registry().with(gmr::tracing::layer());
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("reserve_stock", sku = 42);
//!     let _entered = span.enter();
//!     // A report taken now lists `reserve_stock{sku=42}` and how long it has been entered.
//! });
//! ```
//!
//! The `Green Threads` section then shows, under each request in flight, its open spans from
//! the outermost to the innermost, their fields (masked by the same rules as the
//! configuration), and the time since the innermost was last entered: "waiting in
//! `reserve_stock{sku=42}` for 12.3 s". A span belongs to a request when it opens inside one
//! (while an adapter polls the request, see [`crate::requests::enter`]) or inside a span that
//! belongs to one. Spans open longer than `green_threads.span_age` outside any request
//! (background jobs) are listed too.
//!
//! Cost: opening a span adds one allocation and one uncontended lock; entering one adds a coarse
//! clock read and one store (the span is found in a small per-thread cache of the spans the
//! thread entered last); leaving one adds nothing. `benches/spans.rs` measures it.
//! Spans that the subscriber's filters disable never reach the layer.
#![forbid(unsafe_code)]

mod fields;
mod recent;
mod table;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, PoisonError};

use ::tracing::Subscriber;
use ::tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

pub(crate) use self::fields::Fields;
pub(crate) use self::table::SpanView;
use self::table::{NewSpan, OpenSpan, SpanTable};

/// The process's table of open spans, shared by every [`GmrLayer`].
fn table() -> &'static SpanTable {
    static TABLE: OnceLock<SpanTable> = OnceLock::new();
    TABLE.get_or_init(SpanTable::new)
}

/// Whether a [`GmrLayer`] was ever made: the report says so when spans are not recorded.
static LAYER_MADE: AtomicBool = AtomicBool::new(false);

/// The layer that lets reports show open spans. Made by [`layer()`].
#[derive(Debug, Clone)]
pub struct GmrLayer {
    _private: (),
}

/// A [`tracing_subscriber::Layer`] that records open spans for the report.
///
/// Every layer made shares one table of open spans; add one to the subscriber.
pub fn layer() -> GmrLayer {
    LAYER_MADE.store(true, Ordering::Relaxed);
    GmrLayer { _private: () }
}

impl<S> tracing_subscriber::Layer<S> for GmrLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let parent: Option<Arc<OpenSpan>> = span
            .parent()
            .and_then(|p| p.extensions().get::<Arc<OpenSpan>>().cloned());
        let request = match &parent {
            Some(parent) if parent.request != 0 => parent.request,
            _ => crate::requests::current().map_or(0, crate::requests::RequestId::get),
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let metadata = attrs.metadata();
        let open = table().open(NewSpan {
            name: metadata.name(),
            target: metadata.target(),
            parent,
            request,
            fields,
        });
        span.extensions_mut().insert(open);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(open) = span.extensions().get::<Arc<OpenSpan>>()
        {
            values.record(&mut *open.fields.lock().unwrap_or_else(PoisonError::into_inner));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if recent::with_cached(id.into_u64(), OpenSpan::entered).is_some() {
            return;
        }
        if let Some(span) = ctx.span(id)
            && let Some(open) = span.extensions().get::<Arc<OpenSpan>>()
        {
            open.entered();
            recent::remember(id.into_u64(), open);
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(&id)
            && let Some(open) = span.extensions_mut().remove::<Arc<OpenSpan>>()
        {
            open.close();
            table().close(&open);
        }
    }
}

/// The open spans now, by opening order; `None` when no [`GmrLayer`] was made in this process.
pub(crate) fn open_spans() -> Option<Vec<SpanView>> {
    LAYER_MADE
        .load(Ordering::Relaxed)
        .then(|| table().snapshot())
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    fn ours(name: &str) -> Vec<SpanView> {
        open_spans()
            .expect("layer made")
            .into_iter()
            .filter(|s| s.target == module_path!() && s.name.starts_with(name))
            .collect()
    }

    #[test]
    fn spans_are_listed_while_open_with_their_request_and_fields() {
        let subscriber = tracing_subscriber::registry().with(layer());
        ::tracing::subscriber::with_default(subscriber, || {
            let request = crate::requests::RequestId::next();
            let outer = {
                let _in_request = crate::requests::enter(request);
                ::tracing::info_span!("unit_outer", sku = 42, note = "a b")
            };
            let inner = outer.in_scope(|| ::tracing::info_span!("unit_inner", attempt = 1));
            inner.record("attempt", 2);
            let background = ::tracing::info_span!("unit_background");
            {
                let _entered = inner.enter();
                let spans = ours("unit_");
                assert_eq!(spans.len(), 3, "{spans:?}");
                let [o, i, b] = [&spans[0], &spans[1], &spans[2]];
                assert_eq!((o.name, o.request), ("unit_outer", request.get()));
                assert_eq!(
                    (i.name, i.request, i.parent),
                    ("unit_inner", request.get(), Some(o.serial)),
                    "the child inherits its parent's request"
                );
                assert!(i.last_entered.is_some());
                assert_eq!(i.fields.values, vec![("attempt", "2".to_owned())]);
                assert_eq!(
                    o.fields.values,
                    vec![("sku", "42".to_owned()), ("note", "a b".to_owned())]
                );
                assert_eq!((b.name, b.request), ("unit_background", 0));
            }
            drop(inner);
            drop(outer);
            assert_eq!(ours("unit_").len(), 1);
            drop(background);
            assert!(ours("unit_").is_empty());
        });
    }
}
