//! [`GmrMiddleware`]: makes the requests in flight visible in the report.
//!
//! ```
//! use actix_web::{App, web};
//!
//! let in_flight = gmr_tower::InFlightLayer::named("actix");
//! let middleware = gmr_actix::GmrMiddleware::new(in_flight.clone());
//! let app = App::new()
//!     .route("/", web::get().to(|| async { "hello" }))
//!     .wrap(middleware);
//! # drop(app);
//! ```
//!
//! Each request is recorded when the middleware is called: method, path (never the query
//! string), the route pattern it matches (`req.match_pattern()`, known before routing from the
//! app's resource map) and its start time. Every poll of the request's future and of its
//! response body runs under [`gmr_tower::InFlightRecord::polling`], so a request stuck in a
//! blocking call names the OS thread it blocks. A response whose body is already all in
//! memory (a string, a `Vec`, `Bytes`: what most handlers return) ends the request when the
//! response is made, as nothing but actix writing the bytes out is left; any other body gets
//! the record, which is dropped when the body ends, fails or is dropped. Dropping the future
//! (the client went away) drops it too: every exit path drops the same value, so no entry
//! outlives its request.
//!
//! Building the middleware's service on a worker registers that worker's runtime with gmr
//! (once per thread, see [`crate::register_worker_runtime`]).
//!
//! # Cost per request
//!
//! `match_pattern()` walks the app's resource map and builds a new `String` on every call,
//! which costs more than everything else the middleware does. So each worker's service keeps
//! the patterns of the paths it has seen ([`ROUTE_CACHE_PATHS`] at most; past that, patterns
//! are computed per request again): a path of an app always matches the same pattern, and
//! pattern is copied from the cache into the in-flight table's reused buffers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::web::Bytes;
use gmr_tower::{InFlightLayer, InFlightRecord};
use pin_project_lite::pin_project;

/// The actix-web middleware ([`Transform`]) recording every request while it is in flight.
///
/// Build it once, outside the `HttpServer::new` factory, and clone it into each worker's app
/// (usually through [`crate::GmrActix::middleware`]): clones share one table, listed as one
/// `in-flight requests` block of the report's `Green Threads` section.
#[derive(Clone, Debug)]
pub struct GmrMiddleware {
    in_flight: InFlightLayer,
    register_runtime: bool,
}

impl GmrMiddleware {
    /// A middleware recording requests in `in_flight`, and registering the runtime of each
    /// worker that builds it.
    pub fn new(in_flight: InFlightLayer) -> Self {
        GmrMiddleware {
            in_flight,
            register_runtime: true,
        }
    }

    /// Leaves worker runtimes alone: for servers that register their runtimes themselves.
    #[must_use]
    pub fn without_runtime_registration(mut self) -> Self {
        self.register_runtime = false;
        self
    }

    /// The table the middleware records requests in.
    pub fn in_flight(&self) -> &InFlightLayer {
        &self.in_flight
    }
}

impl<S, B> Transform<S, ServiceRequest> for GmrMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>>,
    B: MessageBody,
{
    type Response = ServiceResponse<RecordedBody<B>>;
    type Error = S::Error;
    type Transform = GmrMiddlewareService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        // Called on the worker thread, inside its runtime, when the worker builds the app.
        if self.register_runtime {
            crate::runtime::register_worker_runtime();
        }
        ready(Ok(GmrMiddlewareService {
            service,
            in_flight: self.in_flight.clone(),
            routes: RefCell::new(RouteCache::default()),
        }))
    }
}

/// Paths whose route pattern one worker's service keeps.
const ROUTE_CACHE_PATHS: usize = 256;

/// Route pattern by path. foldhash (seeded per process) rather than SipHash: a lookup costs a
/// third as much, and the cache never holds more than [`ROUTE_CACHE_PATHS`] paths a client
/// could choose.
type RouteCache = HashMap<Box<str>, Option<Box<str>>, foldhash::fast::RandomState>;

/// The service made by [`GmrMiddleware`] for one worker.
#[derive(Debug)]
pub struct GmrMiddlewareService<S> {
    service: S,
    in_flight: InFlightLayer,
    /// Route pattern by path, for this worker's app (see the module docs).
    routes: RefCell<RouteCache>,
}

impl<S> GmrMiddlewareService<S> {
    /// Records `request` with the route pattern it matches, from the cache or computed (and
    /// cached).
    fn record(&self, request: &ServiceRequest) -> InFlightRecord {
        let (method, path) = (request.method().as_str(), request.path());
        let Ok(mut routes) = self.routes.try_borrow_mut() else {
            return self
                .in_flight
                .record(method, path, request.match_pattern().as_deref());
        };
        if let Some(route) = routes.get(path) {
            return self.in_flight.record(method, path, route.as_deref());
        }
        let route = request.match_pattern();
        let record = self.in_flight.record(method, path, route.as_deref());
        if routes.len() < ROUTE_CACHE_PATHS {
            routes.insert(path.into(), route.map(String::into_boxed_str));
        }
        record
    }
}

impl<S, B> Service<ServiceRequest> for GmrMiddlewareService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>>,
    B: MessageBody,
{
    type Response = ServiceResponse<RecordedBody<B>>;
    type Error = S::Error;
    type Future = RecordedFuture<S::Future>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let record = self.record(&request);
        let inner = {
            // The inner services' `call` (routing, inner middleware) runs right after the
            // request is recorded: its poll starts at the recorded time.
            let _polling = record.polling_from_arrival();
            self.service.call(request)
        };
        RecordedFuture {
            inner,
            record: Some(record),
        }
    }
}

pin_project! {
    /// The response future of [`GmrMiddlewareService`]: marks the polling thread, and hands the
    /// record to the response body. Dropping it early (client gone) removes the record.
    pub struct RecordedFuture<F> {
        #[pin]
        inner: F,
        record: Option<InFlightRecord>,
    }
}

impl<F> std::fmt::Debug for RecordedFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordedFuture")
            .field("in_flight", &self.record.is_some())
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for RecordedFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, E>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<RecordedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _polling = this.record.as_ref().map(InFlightRecord::polling);
            match this.inner.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => result,
            }
        };
        // An error response is rendered by actix after this: the record ends with the future.
        let record = this.record.take();
        Poll::Ready(
            result
                .map(|response| response.map_body(move |_, body| RecordedBody::new(body, record))),
        )
    }
}

pin_project! {
    /// The response body of [`GmrMiddleware`]: keeps the request recorded until its last chunk,
    /// an error, or until it is dropped. A body that is already all in memory (a string, a
    /// `Vec`, `Bytes`) ends the request when the response is made: what is left is actix
    /// writing it out.
    pub struct RecordedBody<B> {
        #[pin]
        state: BodyState<B>,
    }
}

pin_project! {
    #[project = BodyStateProj]
    enum BodyState<B> {
        /// All in memory; nothing recorded any more.
        Complete { bytes: Bytes },
        /// Made while it is read: recorded until its end (no record for a body of no size).
        Streaming {
            #[pin]
            inner: B,
            record: Option<InFlightRecord>,
        },
    }
}

impl<B: MessageBody> RecordedBody<B> {
    fn new(body: B, record: Option<InFlightRecord>) -> Self {
        let state = match body.size() {
            // `try_into_bytes` would give such a body a size (and the response a length).
            BodySize::None => BodyState::Streaming {
                inner: body,
                record: None,
            },
            BodySize::Sized(_) | BodySize::Stream => match body.try_into_bytes() {
                Ok(bytes) => BodyState::Complete { bytes },
                Err(inner) => BodyState::Streaming { inner, record },
            },
        };
        RecordedBody { state }
    }
}

impl<B> std::fmt::Debug for RecordedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let in_flight = matches!(
            self.state,
            BodyState::Streaming {
                record: Some(_),
                ..
            }
        );
        f.debug_struct("RecordedBody")
            .field("in_flight", &in_flight)
            .finish_non_exhaustive()
    }
}

impl<B: MessageBody> MessageBody for RecordedBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        match &self.state {
            BodyState::Complete { bytes } => bytes.size(),
            BodyState::Streaming { inner, .. } => inner.size(),
        }
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        match self.project().state.project() {
            BodyStateProj::Complete { bytes } => match Pin::new(bytes).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(chunk))),
                _ => Poll::Ready(None),
            },
            BodyStateProj::Streaming { inner, record } => {
                let polled = {
                    let _polling = record.as_ref().map(InFlightRecord::polling);
                    inner.poll_next(cx)
                };
                if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
                    record.take();
                }
                polled
            }
        }
    }

    fn try_into_bytes(self) -> Result<Bytes, Self> {
        match self.state {
            BodyState::Complete { bytes } => Ok(bytes),
            // A body that is already all in memory is done: the record ends with it.
            BodyState::Streaming { inner, record } => {
                inner.try_into_bytes().map_err(|inner| RecordedBody {
                    state: BodyState::Streaming { inner, record },
                })
            }
        }
    }
}
