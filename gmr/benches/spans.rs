//! The cost of gmr's span layer on the application's hot path: entering and leaving a span,
//! and opening and closing one, with a bare `tracing_subscriber::registry()` against the same
//! registry with `gmr::tracing::layer()`, measured side by side in one run.
//!
//! Run with `cargo bench -p gmr --features tracing --bench spans`. The figure to quote is the
//! difference between the two lines of each group (target: at most 100 ns per enter + exit).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tracing_subscriber::layer::SubscriberExt as _;

fn with_subscriber(c: &mut Criterion, label: &str, dispatch: &tracing::Dispatch) {
    tracing::dispatcher::with_default(dispatch, || {
        let span = tracing::info_span!("bench_span", sku = 42);
        c.bench_function(&format!("enter+exit/{label}"), |b| {
            b.iter(|| {
                let entered = black_box(&span).enter();
                drop(black_box(entered));
            });
        });
        c.bench_function(&format!("open+close/{label}"), |b| {
            b.iter(|| {
                let span = tracing::info_span!("bench_open", sku = 42);
                drop(black_box(span));
            });
        });
        // A request's typical life: a child span opened, entered and left a few times
        // (one per poll), closed.
        c.bench_function(&format!("request (open, 4 polls, close)/{label}"), |b| {
            b.iter(|| {
                let child = span.in_scope(|| tracing::info_span!("bench_child", attempt = 1));
                for _ in 0..4 {
                    let entered = child.enter();
                    drop(black_box(entered));
                }
                drop(child);
            });
        });
    });
}

fn spans(c: &mut Criterion) {
    let bare = tracing::Dispatch::new(tracing_subscriber::registry());
    let with_gmr =
        tracing::Dispatch::new(tracing_subscriber::registry().with(gmr::tracing::layer()));
    with_subscriber(c, "registry", &bare);
    with_subscriber(c, "registry+gmr", &with_gmr);
}

criterion_group!(benches, spans);
criterion_main!(benches);
