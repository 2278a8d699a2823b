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
//! outlives its request. Responses leave the middleware with actix's [`BoxBody`].
//!
//! Building the middleware's service on a worker registers that worker's runtime with gmr
//! (once per thread, see [`crate::register_worker_runtime`]).
//!
//! A middleware [`serving_admin`](GmrMiddleware::serving_admin) (what
//! [`crate::GmrActix::middleware_serving_admin`] makes when a token is configured) answers a request whose
//! path is exactly `admin.path` itself, before the app's routing, and does not record it: no
//! route or scope of the app can shadow the endpoint, and the app's requests pay one string
//! comparison for it rather than one more resource for actix to match (about 20 ns each).
//!
//! # Cost per request
//!
//! `match_pattern()` walks the app's resource map and builds a new `String` on every call,
//! which costs more than everything else the middleware does. So each worker's service keeps
//! the patterns of the paths it has seen ([`ROUTE_CACHE_PATHS`] at most; past that, patterns
//! are computed per request again): a path of an app always matches the same pattern, and
//! pattern is copied from the cache into the in-flight table's reused buffers.
//!
//! A body type of the middleware's own would make every response a different, larger type
//! than the app's `BoxBody`, moved (`memmove`) several times on its way out: about 60 ns per
//! request in `cargo bench -p gmr-examples --bench request_path`. So a response in memory
//! leaves as the `BoxBody` it came as, and only a streamed body is boxed once more.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::web::Bytes;
use gmr_tower::{AdminEndpoint, InFlightLayer, InFlightRecord};
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
    admin: Option<AdminEndpoint>,
}

impl GmrMiddleware {
    /// A middleware recording requests in `in_flight`, and registering the runtime of each
    /// worker that builds it.
    pub fn new(in_flight: InFlightLayer) -> Self {
        GmrMiddleware {
            in_flight,
            register_runtime: true,
            admin: None,
        }
    }

    /// Also answers `endpoint`'s path (`admin.path`) itself, before the app's routing (what
    /// [`crate::GmrActix::middleware_serving_admin`] makes): no route of the app can shadow it,
    /// and the app's requests do not pay for one more resource to match. Admin requests are
    /// not listed in flight.
    #[must_use]
    pub fn serving_admin(mut self, endpoint: AdminEndpoint) -> Self {
        self.admin = Some(endpoint);
        self
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
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
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
            admin: self.admin.clone(),
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
    /// The admin endpoint this service answers, if any ([`GmrMiddleware::serving_admin`]).
    admin: Option<AdminEndpoint>,
    /// Route pattern by path, for this worker's app (see the module docs).
    routes: RefCell<RouteCache>,
}

impl<S> GmrMiddlewareService<S> {
    /// Records `request` with the route pattern it matches, from the cache or computed (and
    /// cached).
    #[inline]
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
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = S::Error;
    type Future = GmrFuture<S::Future>;

    forward_ready!(service);

    #[inline]
    fn call(&self, request: ServiceRequest) -> Self::Future {
        if let Some(admin) = &self.admin
            && request.path() == admin.path()
        {
            return GmrFuture::admin(admin.clone(), request);
        }
        let record = self.record(&request);
        let inner = {
            // The inner services' `call` (routing, inner middleware) runs right after the
            // request is recorded: its poll starts at the recorded time.
            let _polling = record.polling_from_arrival();
            self.service.call(request)
        };
        GmrFuture::recorded(RecordedFuture {
            inner,
            record: Some(record),
        })
    }
}

/// The admin endpoint's answer to one request, made on gmr's reporter thread and awaited.
type AdminAnswer = Pin<Box<dyn Future<Output = ServiceResponse<BoxBody>>>>;

pin_project! {
    /// The response future of [`GmrMiddlewareService`]: the app's response to a recorded
    /// request ([`RecordedFuture`]), or the admin endpoint's answer.
    pub struct GmrFuture<F> {
        #[pin]
        state: Answer<F>,
    }
}

pin_project! {
    #[project = AnswerProjection]
    enum Answer<F> {
        Recorded {
            #[pin]
            future: RecordedFuture<F>,
        },
        Admin {
            future: AdminAnswer,
        },
    }
}

impl<F> GmrFuture<F> {
    #[inline]
    fn recorded(future: RecordedFuture<F>) -> Self {
        GmrFuture {
            state: Answer::Recorded { future },
        }
    }

    fn admin(endpoint: AdminEndpoint, request: ServiceRequest) -> Self {
        let future = Box::pin(async move {
            let response = crate::admin::respond(&endpoint, request.request()).await;
            request.into_response(response)
        });
        GmrFuture {
            state: Answer::Admin { future },
        }
    }
}

impl<F> std::fmt::Debug for GmrFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let to = match &self.state {
            Answer::Recorded { future } => future as &dyn std::fmt::Debug,
            Answer::Admin { .. } => &"admin endpoint",
        };
        f.debug_struct("GmrFuture").field("answer", to).finish()
    }
}

impl<F, B, E> Future for GmrFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, E>>,
    B: MessageBody + 'static,
{
    type Output = Result<ServiceResponse<BoxBody>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            AnswerProjection::Recorded { future } => future.poll(cx),
            AnswerProjection::Admin { future } => future.as_mut().poll(cx).map(Ok),
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
    B: MessageBody + 'static,
{
    type Output = Result<ServiceResponse<BoxBody>, E>;

    #[inline]
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
            result.map(|response| response.map_body(move |_, body| recorded_body(body, record))),
        )
    }
}

/// The response body: a body already all in memory (a string, a `Vec`, `Bytes`: what most
/// handlers return) as it is, the request ending now, since what is left is actix writing it
/// out; any other body (a stream, a file) boxed with the record, so the request stays listed
/// until the body ends, fails or is dropped.
///
/// A `BoxBody` rather than a body type of gmr's own: an app's routes answer with `BoxBody`, so
/// a response in memory passes through unchanged, and only a streamed one is boxed again.
#[inline]
fn recorded_body<B: MessageBody + 'static>(body: B, record: Option<InFlightRecord>) -> BoxBody {
    match body.size() {
        // `try_into_bytes` would give such a body a size (and the response a length).
        BodySize::None => BoxBody::new(body),
        BodySize::Sized(_) | BodySize::Stream => match body.try_into_bytes() {
            Ok(bytes) => BoxBody::new(bytes),
            Err(inner) => BoxBody::new(RecordedStream { inner, record }),
        },
    }
}

pin_project! {
    /// A streamed response body, keeping its request recorded until its last chunk, an error,
    /// or until it is dropped; each poll is marked.
    struct RecordedStream<B> {
        #[pin]
        inner: B,
        record: Option<InFlightRecord>,
    }
}

impl<B: MessageBody> MessageBody for RecordedStream<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.project();
        let polled = {
            let _polling = this.record.as_ref().map(InFlightRecord::polling);
            this.inner.poll_next(cx)
        };
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.record.take();
        }
        polled
    }
}
