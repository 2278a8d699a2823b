//! Added cost of [`gmr_tower::InFlightLayer`] per request, on one thread: a trivial service
//! called and its body read to the end, with and without the layer; and a request recorded
//! by hand (`InFlightLayer::record`, as the actix-web middleware does), marked polled once
//! and removed.
//! Run with `cargo bench -p gmr-tower --bench inflight`.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body::Body;
use http_body_util::Full;
use tower::{Layer, Service};

/// Polls a future that is ready at once (the trivial service's are).
fn ready<F: Future>(future: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

fn drain<B: Body>(body: B) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut body = pin!(body);
    while let Poll::Ready(Some(_)) = body.as_mut().poll_frame(&mut cx) {}
}

type Answer = Result<Response<Full<Bytes>>, std::convert::Infallible>;

fn trivial() -> impl Service<
    Request<()>,
    Response = Response<Full<Bytes>>,
    Error = std::convert::Infallible,
    Future = std::future::Ready<Answer>,
> + Clone {
    tower::service_fn(|_req: Request<()>| {
        std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"ok")))))
    })
}

fn request() -> Request<()> {
    let mut request = Request::new(());
    *request.uri_mut() = http::Uri::from_static("/orders/17?expand=items");
    request
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("inflight_per_request");
    let mut bare = trivial();
    group.bench_function("without_layer", |b| {
        b.iter(|| {
            let response = ready(bare.call(request())).unwrap_or_else(|never| match never {});
            drain(response.into_body());
        })
    });
    let layer = gmr_tower::InFlightLayer::named("bench");
    let mut layered = layer.layer(trivial());
    group.bench_function("with_layer", |b| {
        b.iter(|| {
            let response = ready(layered.call(request())).unwrap_or_else(|never| match never {});
            drain(response.into_body());
        })
    });
    // What the actix-web middleware does per request besides its plumbing: record by hand,
    // one poll mark, remove.
    group.bench_function("record_by_hand", |b| {
        b.iter(|| {
            let record = layer.record("GET", "/orders/17", Some("/orders/{id}"));
            drop(std::hint::black_box(record.polling()));
            drop(record);
        })
    });
    group.finish();
    assert_eq!(layer.in_flight(), 0, "every request was removed");
}

criterion_group!(benches, bench);
criterion_main!(benches);
