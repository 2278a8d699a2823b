//! [`GmrRouter`]: the whole app inside one in-flight layer, with routes found off the
//! request path.
//!
//! `Router::layer` wraps every route's service: axum then clones, boxes and calls one more
//! service per request, about as much again as the in-flight layer's own work. Around the
//! whole router the layer runs once per request, but sees requests before axum has matched
//! them: their route is found when the report lists them, by asking a copy of the router
//! which route the method and path match ([`RouterRoutes`]), with every endpoint and fallback
//! of the copy answering at once: no handler, fallback or middleware of the app runs.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use axum::routing::IntoMakeService;
use bytes::Bytes;
use gmr_tower::{InFlight, InFlightBody, InFlightLayer, RouteResolver};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// An app wrapped by [`crate::GmrAxum::wrap`]: every request recorded in flight once, around
/// the whole router. Serve it with [`GmrRouter::into_make_service`]; cheap to clone.
#[derive(Clone, Debug)]
pub struct GmrRouter {
    inner: InFlight<Router>,
}

impl GmrRouter {
    /// The app inside `layer`, and the copy of its router that finds routes when `layer`'s
    /// table is listed. The caller keeps the copy for as long as the server runs: requests
    /// refer to it weakly, so that dropping it releases the app's state.
    pub(crate) fn new(layer: &InFlightLayer, app: Router) -> (Self, Arc<RouterRoutes>) {
        let routes = Arc::new(RouterRoutes::of(&app));
        let layer = layer.resolving_routes(WeakRoutes(Arc::downgrade(&routes)));
        let router = GmrRouter {
            inner: layer.layer(app),
        };
        (router, routes)
    }

    /// What `axum::serve` takes: `axum::serve(listener, gmr.wrap(app).into_make_service())`.
    /// (For `ConnectInfo`, `axum::ServiceExt::into_make_service_with_connect_info` works the
    /// same way.)
    pub fn into_make_service(self) -> IntoMakeService<Self> {
        axum::ServiceExt::<Request>::into_make_service(self)
    }
}

impl<B> Service<http::Request<B>> for GmrRouter
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GmrRouterFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<http::Request<B>>::poll_ready(&mut self.inner, cx)
    }

    #[inline]
    fn call(&mut self, request: http::Request<B>) -> GmrRouterFuture {
        GmrRouterFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The response future of [`GmrRouter`].
    pub struct GmrRouterFuture {
        #[pin]
        inner: gmr_tower::ResponseFuture<axum::routing::future::RouteFuture<Infallible>>,
    }
}

impl std::fmt::Debug for GmrRouterFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GmrRouterFuture").finish_non_exhaustive()
    }
}

impl Future for GmrRouterFuture {
    type Output = Result<Response, Infallible>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .inner
            .poll(cx)
            .map_ok(|response: Response<InFlightBody<Body>>| response.map(Body::new))
    }
}

/// Finds routes by running a copy of the app's router in which every endpoint answers at
/// once with the `MatchedPath` axum gave it: [`CaptureRoute`], added with `Router::layer`
/// after every other layer, so it is the outermost service of every route, of every method
/// router's fallback (a method the route does not serve: axum's `405`, which has its
/// `MatchedPath` too) and of the router's fallbacks, which are reset to axum's own `404`
/// first (a fallback has no `MatchedPath`, at request time either). No handler, fallback or
/// middleware of the app runs.
///
/// A route inside a service mounted with `nest_service` is that service's business: axum
/// gives it the nest's pattern only as `MatchedNestedPath`, so it has no route here, as it
/// had none with `Router::layer`.
#[derive(Debug)]
pub(crate) struct RouterRoutes {
    router: Router,
}

impl RouterRoutes {
    fn of(app: &Router) -> Self {
        let router = app
            .clone()
            .reset_fallback()
            .layer(tower_layer::layer_fn(|_endpoint| CaptureRoute));
        RouterRoutes { router }
    }

    fn route(&self, method: &http::Method, path: &str) -> Option<String> {
        let request = http::Request::builder()
            .method(method.clone())
            .uri(path)
            .body(Body::empty())
            .ok()?;
        let mut router = self.router.clone();
        let mut future = std::pin::pin!(router.call(request));
        // Every route answers at once, and axum's routing never waits: one poll decides.
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Ok(response)) => response
                .extensions()
                .get::<MatchedPath>()
                .map(|route| route.as_str().to_owned()),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => None,
        }
    }
}

/// What the in-flight layer keeps: the router copy, as long as the [`crate::GmrAxum`] that
/// wrapped the app keeps it (once the server is gone, its requests have no route to find).
#[derive(Debug)]
struct WeakRoutes(Weak<RouterRoutes>);

impl RouteResolver for WeakRoutes {
    fn route(&self, method: &http::Method, path: &str) -> Option<String> {
        self.0.upgrade()?.route(method, path)
    }
}

/// The service [`RouterRoutes`] puts in front of every route: answers with the route's
/// pattern in the response's extensions.
#[derive(Clone, Copy, Debug)]
struct CaptureRoute;

impl Service<Request> for CaptureRoute {
    type Response = Response;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let mut response = Response::new(Body::empty());
        if let Some(path) = request.extensions().get::<MatchedPath>() {
            response.extensions_mut().insert(path.clone());
        }
        std::future::ready(Ok(response))
    }
}
