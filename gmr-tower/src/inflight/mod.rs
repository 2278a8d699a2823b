//! [`InFlightLayer`]: makes the requests in flight visible in the report.
//!
//! ```
//! use tower::ServiceBuilder;
//!
//! let in_flight = gmr_tower::InFlightLayer::new();
//! let service = ServiceBuilder::new()
//!     .layer(in_flight.clone())
//!     .service_fn(|_req: http::Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hello")))
//!     });
//! # drop(service);
//! ```
//!
//! Each request is recorded when the service is called: method, path (never the query string),
//! matched route when the framework provides it, and start time. While its future or its
//! response body is being polled, the entry names the OS thread polling it; a request stuck in
//! a blocking call therefore points at a thread whose stack the `Threads` section shows. The
//! entry goes away when the response body ends or is dropped, or when the request future is
//! dropped (the client went away): every exit path drops the same guard.
//!
//! Every poll marks the thread as working for the request ([`gmr::requests::enter`]), so the
//! tracing spans it opens belong to the request (with `gmr::tracing::layer()`), and records
//! the time of the poll and, at the first one, the request's tokio task
//! ([`gmr::requests::current_task_id`]).
//!
//! The report's `Green Threads` section lists the requests oldest first with their age, the
//! time since their last poll, their task (and its stack, with a task dump) and their spans.

mod registry;

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use gmr::requests::{InFlightRequest, RequestId, RequestSource, RequestSourceHandle};
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use self::registry::{NewEntry, PollGuard, Recorded, Registry};

/// The registry of one layer and its registration as a request source.
struct Tracker {
    registry: &'static Registry,
    handle: RequestSourceHandle,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.handle.unregister();
    }
}

/// The request source of one layer; unregistered when the last clone of the layer (and of
/// the services that keep it listed) is dropped.
struct Source {
    registry: &'static Registry,
    options: InFlightOptions,
}

impl RequestSource for Source {
    fn name(&self) -> String {
        self.options.name.clone()
    }

    fn requests(&self) -> Vec<InFlightRequest> {
        requests(self.registry)
    }
}

/// How an [`InFlightLayer`] lists its requests; fixed when the layer is made.
///
/// ```
/// let layer = gmr_tower::InFlightLayer::with_options(
///     gmr_tower::InFlightOptions::new("api").hide_paths(),
/// );
/// # drop(layer);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlightOptions {
    name: String,
    hide_paths: bool,
}

impl Default for InFlightOptions {
    fn default() -> Self {
        InFlightOptions::new("tower")
    }
}

impl InFlightOptions {
    /// Requests listed as `in-flight requests (<name>)`, with their paths.
    pub fn new(name: impl Into<String>) -> Self {
        InFlightOptions {
            name: name.into(),
            hide_paths: false,
        }
    }

    /// Lists requests by their matched route instead of their path (`(hidden)` where the
    /// framework gives no route): for services whose paths carry tokens or personal data
    /// (`/reset/<token>`, signed download links).
    #[must_use]
    pub fn hide_paths(mut self) -> Self {
        self.hide_paths = true;
        self
    }

    /// The name in `in-flight requests (<name>)`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether paths are hidden.
    pub fn hides_paths(&self) -> bool {
        self.hide_paths
    }
}

/// The requests of `registry` now, oldest first, as the report lists them.
fn requests(registry: &Registry) -> Vec<InFlightRequest> {
    let hide_paths = registry.hides_paths();
    let now = gmr::coarse_monotonic();
    let now_ms = now.as_millis() as u64;
    registry
        .snapshot()
        .into_iter()
        .map(|seen| {
            let e = &seen.entry;
            let path = if hide_paths {
                e.route.as_deref().unwrap_or("(hidden)")
            } else {
                &e.path
            };
            // While a thread polls it, its current poll is its last; else its last counted one.
            let last = if seen.polled_by != 0 {
                seen.poll_started_ms
            } else {
                seen.last_poll_ms
            };
            let last_poll =
                (last != 0).then(|| std::time::Duration::from_millis(now_ms.saturating_sub(last)));
            InFlightRequest::new(e.id, e.method.as_str(), path, now.saturating_sub(e.started))
                .route(e.route.as_deref())
                .polled((seen.polled_by != 0).then_some(seen.polled_by), last_poll)
                .task((seen.task_id != 0).then_some(seen.task_id))
        })
        .collect()
}

/// Finds the route pattern a request matches, for an [`InFlightLayer`] that wraps a whole
/// router (where the framework has not matched the request yet, so it carries no route).
///
/// Asked when the report lists the request, off the request path: a layer outside the
/// router costs each request nothing for its route. A layer that hides paths keeps no path
/// to ask about later, and asks once per request, when it records it.
///
/// `gmr-axum`'s `GmrAxum::wrap` is built on it: it asks a clone of the app's router which
/// route the method and path match, without running any handler.
pub trait RouteResolver: std::fmt::Debug + Send + Sync + 'static {
    /// The route pattern `method` and `path` (without the query) match, or `None` when no
    /// route does (the request went to the fallback).
    fn route(&self, method: &http::Method, path: &str) -> Option<String>;
}

/// A tower [`Layer`] recording every request while it is in flight. Cheap to clone; clones
/// share one table, listed as one block of the report's `Green Threads` section.
#[derive(Clone)]
pub struct InFlightLayer {
    tracker: Arc<Tracker>,
    /// Finds the route of requests that arrive without one (see [`RouteResolver`]).
    resolver: Option<&'static dyn RouteResolver>,
    /// Whether the services it makes keep the table listed in the report (a reference count
    /// each, incremented on every clone: hyper and axum clone the service per request).
    /// `false` for the layer a bundle hands out: the bundle keeps the table listed, and is
    /// kept until the server has shut down.
    services_keep_listed: bool,
}

impl std::fmt::Debug for InFlightLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightLayer")
            .field("in_flight", &self.tracker.registry.len())
            .field("resolves_routes", &self.resolver.is_some())
            .finish()
    }
}

impl Default for InFlightLayer {
    fn default() -> Self {
        InFlightLayer::new()
    }
}

impl InFlightLayer {
    /// A layer whose requests are listed as `in-flight requests (tower)`.
    pub fn new() -> Self {
        InFlightLayer::named("tower")
    }

    /// A layer whose requests are listed as `in-flight requests (<name>)`.
    pub fn named(name: impl Into<String>) -> Self {
        InFlightLayer::with_options(InFlightOptions::new(name))
    }

    /// A layer with `options` (its name, whether paths are hidden).
    pub fn with_options(options: InFlightOptions) -> Self {
        let registry = Registry::leaked(options.hide_paths);
        let handle = gmr::register_request_source(Arc::new(Source { registry, options }));
        InFlightLayer {
            tracker: Arc::new(Tracker { registry, handle }),
            resolver: None,
            services_keep_listed: true,
        }
    }

    /// A clone of this layer (same table) whose services find the route of a request that
    /// carries none with `resolver`: for a layer around a whole router. The resolver lives
    /// for the rest of the process (requests refer to it without a reference count): make
    /// one per server, at startup.
    pub fn resolving_routes(&self, resolver: impl RouteResolver) -> InFlightLayer {
        InFlightLayer {
            resolver: Some(Box::leak(Box::new(resolver))),
            ..self.clone()
        }
    }

    /// A clone whose services do not keep the table listed: for a bundle ([`crate::GmrTower`])
    /// that keeps it listed itself, so that cloning a service per request costs no reference
    /// count.
    pub(crate) fn listed_by_owner(&self) -> InFlightLayer {
        InFlightLayer {
            services_keep_listed: false,
            ..self.clone()
        }
    }

    /// How many requests are in flight now.
    pub fn in_flight(&self) -> usize {
        self.tracker.registry.len()
    }

    /// This layer's requests now, oldest first (what the report's `Green Threads` section
    /// lists under `in-flight requests (<name>)`).
    pub fn snapshot(&self) -> Vec<InFlightRequest> {
        requests(self.tracker.registry)
    }

    /// Records a request by hand, for adapters of HTTP libraries other than `http` 1 (the
    /// actix-web middleware uses it). `path` may hold a query string: it is cut off here. The
    /// request is listed until the returned record is dropped.
    ///
    /// The path and route are copied into buffers the layer reuses from request to request:
    /// recording allocates nothing once the layer has seen as many requests at once.
    #[inline]
    pub fn record(&self, method: &str, path: &str, route: Option<&str>) -> InFlightRecord {
        let path = path.split('?').next().unwrap_or_default();
        // Any token is a valid (extension) method; only bytes no HTTP library would accept
        // end up as `INVALID`.
        let method = http::Method::from_bytes(method.as_bytes())
            .or_else(|_| http::Method::from_bytes(b"INVALID"))
            .unwrap_or_default();
        let entry = NewEntry {
            id: RequestId::next(),
            method: &method,
            path,
            route,
            resolver: None,
            started: gmr::coarse_monotonic(),
        };
        InFlightRecord {
            recorded: Recorded::new(self.tracker.registry, &entry),
        }
    }

    /// [`InFlightLayer::record`] with the route as a shared string.
    #[deprecated(
        since = "0.2.0",
        note = "`record` no longer copies the route into a new allocation: call it instead"
    )]
    pub fn record_shared(
        &self,
        method: &str,
        path: &str,
        route: Option<Arc<str>>,
    ) -> InFlightRecord {
        self.record(method, path, route.as_deref())
    }
}

/// A request recorded with [`InFlightLayer::record`]; listed until dropped.
#[derive(Debug)]
pub struct InFlightRecord {
    recorded: Recorded,
}

impl InFlightRecord {
    /// Marks the request as being polled by the calling thread until the returned guard is
    /// dropped: call it at the start of every poll of the request's future and body.
    #[inline]
    pub fn polling(&self) -> InFlightPolling<'_> {
        InFlightPolling {
            _guard: self.recorded.polling(),
        }
    }

    /// [`InFlightRecord::polling`] for a poll that starts as the request is recorded (a
    /// middleware calling its inner service right after [`InFlightLayer::record`]): the poll's
    /// start is the recorded time, so the clock is not read again.
    #[inline]
    pub fn polling_from_arrival(&self) -> InFlightPolling<'_> {
        InFlightPolling {
            _guard: self.recorded.polling_from_arrival(),
        }
    }
}

/// Returned by [`InFlightRecord::polling`]; clears the polling thread when dropped.
#[derive(Debug)]
pub struct InFlightPolling<'a> {
    _guard: PollGuard<'a>,
}

impl<S> Layer<S> for InFlightLayer {
    type Service = InFlight<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InFlight {
            inner,
            registry: self.tracker.registry,
            resolver: self.resolver,
            _keep_listed: self.services_keep_listed.then(|| Arc::clone(&self.tracker)),
        }
    }
}

/// The service made by [`InFlightLayer`].
#[derive(Clone)]
pub struct InFlight<S> {
    inner: S,
    registry: &'static Registry,
    resolver: Option<&'static dyn RouteResolver>,
    /// Keeps the table listed in the report while this service lives (`None` when the bundle
    /// that made the layer does).
    _keep_listed: Option<Arc<Tracker>>,
}

impl<S: std::fmt::Debug> std::fmt::Debug for InFlight<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("inner", &self.inner)
            .finish()
    }
}

/// The route of a request, if the framework recorded one.
fn matched_route<B>(_request: &Request<B>) -> Option<&str> {
    #[cfg(feature = "matched-path")]
    if let Some(path) = _request.extensions().get::<axum::extract::MatchedPath>() {
        return Some(path.as_str());
    }
    None
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for InFlight<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<InFlightBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // Cheap after the first request on a thread: lets the report show the worker's full name.
        gmr::register_current_thread();
        let now = gmr::coarse_monotonic();
        let method = request.method();
        let path = request.uri().path_and_query().map_or("", |p| p.path());
        let (route, resolver) = match (matched_route(&request), self.resolver) {
            (Some(route), _) => (Some(Cow::Borrowed(route)), None),
            // The path is not kept to find the route when the report asks: find it now.
            (None, Some(resolver)) if self.registry.hides_paths() => {
                (resolver.route(method, path).map(Cow::Owned), None)
            }
            (None, resolver) => (None, resolver),
        };
        let entry = NewEntry {
            id: RequestId::next(),
            method,
            path,
            route: route.as_deref(),
            resolver,
            started: now,
        };
        let recorded = Recorded::new(self.registry, &entry);
        let inner = {
            let _polling = recorded.polling_from_arrival();
            self.inner.call(request)
        };
        ResponseFuture {
            inner,
            recorded: Some(recorded),
        }
    }
}

pin_project! {
    /// The response future of [`InFlight`]: marks the polling thread, and hands the record to
    /// the response body. Dropping it early (client gone) removes the record.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        recorded: Option<Recorded>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<InFlightBody<B>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _polling = this.recorded.as_ref().map(Recorded::polling);
            match this.inner.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(result) => result,
            }
        };
        let recorded = this.recorded.take();
        Poll::Ready(result.map(|response| {
            response.map(|body| InFlightBody {
                inner: body,
                recorded,
            })
        }))
    }
}

pin_project! {
    /// The response body of [`InFlight`]: keeps the request recorded until its last frame (or
    /// until it is dropped).
    pub struct InFlightBody<B> {
        #[pin]
        inner: B,
        recorded: Option<Recorded>,
    }
}

impl<B> std::fmt::Debug for InFlightBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlightBody")
            .field("in_flight", &self.recorded.is_some())
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for InFlightBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        let polled = {
            let _polling = this.recorded.as_ref().map(Recorded::polling);
            this.inner.as_mut().poll_frame(cx)
        };
        let finished = match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => true,
            Poll::Ready(Some(Ok(_))) => this.inner.is_end_stream(),
            Poll::Pending => false,
        };
        if finished {
            this.recorded.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use std::sync::Mutex;
    use std::task::Waker;
    use tower::ServiceExt;

    /// A body that yields one frame once the gate is opened.
    #[derive(Clone, Default)]
    struct Gate(Arc<Mutex<(bool, Option<Waker>)>>);

    impl Gate {
        fn open(&self) {
            let mut state = self.0.lock().expect("gate");
            state.0 = true;
            if let Some(waker) = state.1.take() {
                waker.wake();
            }
        }
    }

    struct GatedBody {
        gate: Gate,
        sent: bool,
    }

    impl Body for GatedBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.sent {
                return Poll::Ready(None);
            }
            let mut state = self.gate.0.lock().expect("gate");
            if !state.0 {
                state.1 = Some(cx.waker().clone());
                return Poll::Pending;
            }
            drop(state);
            self.sent = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
        }
    }

    /// A service answering with a body that waits for the returned gate, wrapped by `layer`.
    fn gated(
        layer: &InFlightLayer,
    ) -> (
        Gate,
        impl Service<
            Request<()>,
            Response = Response<InFlightBody<GatedBody>>,
            Error = std::convert::Infallible,
        > + use<>,
    ) {
        let gate = Gate::default();
        let body_gate = gate.clone();
        let svc = layer.layer(tower::service_fn(move |_req: Request<()>| {
            let gate = body_gate.clone();
            async move {
                Ok::<_, std::convert::Infallible>(Response::new(GatedBody { gate, sent: false }))
            }
        }));
        (gate, svc)
    }

    fn hello(
        req: Request<()>,
    ) -> impl Future<Output = Result<Response<Full<Bytes>>, std::convert::Infallible>> {
        let _ = req;
        async { Ok(Response::new(Full::new(Bytes::from_static(b"hi")))) }
    }

    #[tokio::test]
    async fn entry_lives_until_the_body_ends_and_hides_the_query() {
        let layer = InFlightLayer::named("unit-body");
        let (gate, svc) = gated(&layer);
        let response = svc
            .oneshot(Request::get("/stream?secret=1").body(()).expect("request"))
            .await
            .expect("response");
        assert_eq!(layer.in_flight(), 1, "body not finished yet");
        let snapshot = layer.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].path, "/stream", "no query string");
        assert_eq!(snapshot[0].method, "GET");
        assert!(snapshot[0].last_poll.is_some(), "polled once, at the call");
        assert_eq!(snapshot[0].polled_by, None, "nobody polls it now");
        gate.open();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(body, Bytes::from_static(b"x"));
        assert_eq!(layer.in_flight(), 0);
    }

    #[test]
    fn records_by_hand_without_the_query() {
        let layer = InFlightLayer::named("unit-manual");
        let record = layer.record("DELETE", "/items/3?token=abc", Some("/items/{id}"));
        {
            let _polling = record.polling();
            let listed = layer.snapshot();
            assert_eq!(listed[0].method, "DELETE");
            assert_eq!(listed[0].path, "/items/3", "no query string");
            assert_eq!(listed[0].route.as_deref(), Some("/items/{id}"));
            assert_eq!(listed[0].polled_by, Some(gmr::current_thread_id()));
            assert_eq!(listed[0].task, None, "not in a tokio task");
        }
        drop(record);
        assert_eq!(layer.in_flight(), 0);
    }

    #[test]
    fn a_record_is_one_pointer() {
        // Every response future and body of the layer and the actix middleware carries one:
        // a larger record makes them larger types, moved on every response.
        assert_eq!(
            std::mem::size_of::<Option<InFlightRecord>>(),
            std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn a_poll_from_arrival_starts_at_the_recorded_time() {
        let layer = InFlightLayer::named("unit-from-arrival");
        let record = layer.record("GET", "/slow-routing", None);
        // Let the coarse clock move on, so "since arrival" and "since now" differ.
        let recorded_at = gmr::coarse_monotonic();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while gmr::coarse_monotonic() < recorded_at + std::time::Duration::from_millis(60) {
            assert!(
                std::time::Instant::now() < deadline,
                "the clock never moved"
            );
            std::thread::yield_now();
        }
        let _polling = record.polling_from_arrival();
        let listed = layer.snapshot();
        assert_eq!(listed[0].polled_by, Some(gmr::current_thread_id()));
        let in_this_poll = listed[0].last_poll.expect("being polled");
        assert!(
            in_this_poll >= std::time::Duration::from_millis(50),
            "the poll started when the request was recorded: {in_this_poll:?}"
        );
    }

    #[tokio::test]
    async fn complete_bodies_end_the_entry_at_once() {
        let layer = InFlightLayer::named("unit-full");
        let svc = layer.layer(tower::service_fn(hello));
        let response = svc
            .oneshot(Request::get("/").body(()).expect("request"))
            .await
            .expect("response");
        // `Full` knows its length; the entry ends once its only frame is read.
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(body, Bytes::from_static(b"hi"));
        assert_eq!(layer.in_flight(), 0);
    }

    #[tokio::test]
    async fn dropped_request_future_removes_the_entry() {
        let layer = InFlightLayer::named("unit-drop");
        let started = Arc::new(tokio::sync::Notify::new());
        let notify = Arc::clone(&started);
        let mut svc = layer.layer(tower::service_fn(move |_req: Request<()>| {
            let notify = Arc::clone(&notify);
            async move {
                notify.notify_one();
                std::future::pending::<()>().await;
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
            }
        }));
        let call = svc
            .ready()
            .await
            .expect("ready")
            .call(Request::get("/hang").body(()).expect("request"));
        let task = tokio::spawn(call);
        started.notified().await;
        assert_eq!(layer.in_flight(), 1);
        task.abort();
        let _ = task.await;
        assert_eq!(layer.in_flight(), 0, "client gone: entry removed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_being_polled_names_its_thread() {
        let layer = InFlightLayer::named("unit-thread");
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let svc = layer.layer(tower::service_fn(move |_req: Request<()>| {
            let entered = entered_tx.clone();
            let release = Arc::clone(&release_rx);
            async move {
                // Blocks its worker thread, as a stuck handler would.
                let _ = entered.send(gmr::current_thread_id());
                let _ = release.lock().expect("release").recv();
                Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
            }
        }));
        let task = tokio::spawn(svc.oneshot(Request::get("/block").body(()).expect("request")));
        let tid = entered_rx.recv().expect("handler entered");
        let snapshot = layer.snapshot();
        assert_eq!(snapshot[0].polled_by, Some(tid));
        let task_id = snapshot[0].task.expect("the request's tokio task");
        assert!(task_id > 0);
        release_tx.send(()).expect("release");
        let response = task.await.expect("join").expect("response");
        let _ = response.into_body().collect().await;
        assert_eq!(layer.in_flight(), 0);
    }

    #[test]
    fn hidden_paths_show_the_route_or_nothing() {
        let layer = InFlightLayer::with_options(InFlightOptions::new("unit-hidden").hide_paths());
        let routed = layer.record("GET", "/reset/secret-token-123", Some("/reset/{token}"));
        let bare = layer.record("GET", "/download/signed-abc", None);
        let listed = layer.snapshot();
        let paths: Vec<&str> = listed.iter().map(|r| r.path.as_str()).collect();
        assert_eq!(paths, vec!["/reset/{token}", "(hidden)"]);
        let held: Vec<String> = layer
            .tracker
            .registry
            .snapshot()
            .into_iter()
            .map(|seen| seen.entry.path)
            .collect();
        assert_eq!(held, vec!["", ""], "a hidden path is not even kept");
        drop((routed, bare));
    }

    /// Routes `/orders/<n>` to `/orders/{id}`, counting how often it is asked.
    #[derive(Debug, Default)]
    struct Orders {
        asked: std::sync::atomic::AtomicUsize,
    }

    impl RouteResolver for Orders {
        fn route(&self, method: &http::Method, path: &str) -> Option<String> {
            self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (method == http::Method::GET && path.starts_with("/orders/"))
                .then(|| "/orders/{id}".to_owned())
        }
    }

    /// A leaked resolver, to count its calls after the layer took it.
    fn orders() -> &'static Orders {
        Box::leak(Box::default())
    }

    /// A leaked [`Orders`] given to a layer stays readable by the test.
    impl RouteResolver for &'static Orders {
        fn route(&self, method: &http::Method, path: &str) -> Option<String> {
            Orders::route(self, method, path)
        }
    }

    fn asked(resolver: &Orders) -> usize {
        resolver.asked.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn a_resolving_layer_finds_routes_when_listed_not_per_request() {
        let resolver = orders();
        let layer = InFlightLayer::named("unit-resolving").resolving_routes(resolver);
        let (gate, svc) = gated(&layer);
        let mut request = Request::new(());
        *request.uri_mut() = http::Uri::from_static("/orders/17?expand=items");
        let response = svc.oneshot(request).await.expect("response");
        let (other_gate, other) = gated(&layer);
        let mut request = Request::new(());
        *request.uri_mut() = http::Uri::from_static("/health");
        let other_response = other.oneshot(request).await.expect("response");
        assert_eq!(asked(resolver), 0, "recording asks nothing");

        let listed = layer.snapshot();
        let routes: Vec<(&str, Option<&str>)> = listed
            .iter()
            .map(|r| (r.path.as_str(), r.route.as_deref()))
            .collect();
        assert_eq!(
            routes,
            vec![("/orders/17", Some("/orders/{id}")), ("/health", None)]
        );
        assert_eq!(asked(resolver), 2, "asked once per listed request");

        gate.open();
        other_gate.open();
        let _ = response.into_body().collect().await;
        let _ = other_response.into_body().collect().await;
        assert_eq!(layer.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_resolving_layer_that_hides_paths_finds_the_route_when_recording() {
        let resolver = orders();
        let layer =
            InFlightLayer::with_options(InFlightOptions::new("unit-resolving-hidden").hide_paths())
                .resolving_routes(resolver);
        let (gate, svc) = gated(&layer);
        let mut request = Request::new(());
        *request.uri_mut() = http::Uri::from_static("/orders/secret-17");
        let response = svc.oneshot(request).await.expect("response");
        assert_eq!(
            asked(resolver),
            1,
            "asked when recorded: the path is not kept"
        );

        let listed = layer.snapshot();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].route.as_deref(), Some("/orders/{id}"));
        assert_eq!(
            listed[0].path, "/orders/{id}",
            "the route stands for the path"
        );
        assert_eq!(asked(resolver), 1, "not asked again when listed");
        assert!(!format!("{listed:?}").contains("secret"), "{listed:?}");

        gate.open();
        let _ = response.into_body().collect().await;
        assert_eq!(layer.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_layer_that_hides_paths_does_not_keep_them() {
        let layer =
            InFlightLayer::with_options(InFlightOptions::new("unit-hidden-svc").hide_paths());
        let (gate, svc) = gated(&layer);
        let response = svc
            .oneshot(
                Request::get("/reset/secret-token")
                    .body(())
                    .expect("request"),
            )
            .await
            .expect("response");
        let held = layer.tracker.registry.snapshot();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].entry.path, "");
        assert_eq!(layer.snapshot()[0].path, "(hidden)");
        gate.open();
        response.into_body().collect().await.expect("body");
        assert_eq!(layer.in_flight(), 0);
    }

    #[test]
    fn polls_mark_the_thread_the_time_and_the_request() {
        let layer = InFlightLayer::named("unit-polls");
        let record = layer.record("GET", "/block", Some("/block"));
        let before = layer.snapshot();
        assert_eq!((before[0].polled_by, before[0].last_poll), (None, None));
        let id = before[0].id;
        {
            let _polling = record.polling();
            assert_eq!(
                gmr::requests::current(),
                Some(id),
                "spans opened now are its own"
            );
            let now = layer.snapshot();
            assert_eq!(now[0].polled_by, Some(gmr::current_thread_id()));
            assert!(now[0].last_poll.is_some());
        }
        assert_eq!(gmr::requests::current(), None);
        let after = layer.snapshot();
        assert_eq!(after[0].polled_by, None);
        assert!(
            after[0].last_poll.is_some(),
            "when it was last polled stays"
        );
        assert!(after[0].id == id && after[0].age >= after[0].last_poll.unwrap_or_default());
    }

    #[tokio::test]
    async fn the_green_threads_section_lists_the_layer() {
        let layer = InFlightLayer::named("unit-section");
        let (gate, svc) = gated(&layer);
        let response = svc
            .oneshot(Request::post("/orders/17").body(()).expect("request"))
            .await
            .expect("response");
        let report = gmr::Gmr::builder()
            .build()
            .expect("engine")
            .report(gmr::Trigger::Api);
        let text = report.to_text();
        assert!(text.contains("in-flight requests (unit-section)"), "{text}");
        assert!(text.contains("POST    /orders/17"), "{text}");
        gate.open();
        let _ = response.into_body().collect().await;
        drop(layer);
        let text = gmr::Gmr::builder()
            .build()
            .expect("engine")
            .report(gmr::Trigger::Api)
            .to_text();
        assert!(
            !text.contains("in-flight requests (unit-section)"),
            "unregistered on drop"
        );
    }

    fn listed(name: &str) -> bool {
        gmr::Gmr::builder()
            .build()
            .expect("engine")
            .report(gmr::Trigger::Api)
            .to_text()
            .contains(&format!("in-flight requests ({name})"))
    }

    #[tokio::test]
    async fn a_service_keeps_its_table_listed_after_its_layer_is_dropped() {
        let layer = InFlightLayer::named("unit-kept-by-service");
        let svc = layer.layer(tower::service_fn(hello));
        drop(layer);
        assert!(listed("unit-kept-by-service"));
        let response = svc
            .clone()
            .oneshot(Request::get("/").body(()).expect("request"))
            .await
            .expect("response");
        drop(response);
        drop(svc);
        assert!(!listed("unit-kept-by-service"));
    }

    #[tokio::test]
    async fn services_of_an_owner_listed_layer_leave_the_listing_to_the_owner() {
        let owner = InFlightLayer::named("unit-owner-listed");
        let svc = owner.listed_by_owner().layer(tower::service_fn(hello));
        assert!(
            svc._keep_listed.is_none(),
            "no reference count per service clone"
        );
        let (gate, gated_svc) = gated(&owner.listed_by_owner());
        let response = gated_svc
            .oneshot(Request::get("/stream").body(()).expect("request"))
            .await
            .expect("response");
        assert_eq!(
            owner.in_flight(),
            1,
            "the owner sees its services' requests"
        );
        assert!(listed("unit-owner-listed"));
        gate.open();
        response.into_body().collect().await.expect("body");
        drop(owner);
        assert!(
            !listed("unit-owner-listed"),
            "listed while the owner lives, not while its services do"
        );
        drop(svc);
    }
}
