//! The admin endpoint as tower services: [`AdminEndpoint`] itself, and [`AdminRoute`], which
//! sends the admin path to it and every other request to the wrapped service. Both return
//! named futures.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response};
use http_body_util::Full;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::AdminEndpoint;

/// The error type of boxed bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response future of [`AdminEndpoint`]: the report awaited from gmr's reporter thread.
pub struct AdminFuture {
    inner: Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>>,
}

impl std::fmt::Debug for AdminFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminFuture").finish_non_exhaustive()
    }
}

impl Future for AdminFuture {
    type Output = Result<Response<Full<Bytes>>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx).map(Ok)
    }
}

impl<B> Service<Request<B>> for AdminEndpoint {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = AdminFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let endpoint = self.clone();
        let (parts, _body) = request.into_parts();
        AdminFuture {
            inner: Box::pin(async move {
                endpoint
                    .answer(
                        &parts.method,
                        parts.uri.query(),
                        parts
                            .headers
                            .get_all(header::AUTHORIZATION)
                            .iter()
                            .map(HeaderValue::as_bytes),
                        parts.headers.get(header::ACCEPT).map(HeaderValue::as_bytes),
                    )
                    .await
                    .into_response()
            }),
        }
    }
}

/// A layer sending requests for the admin path to the [`AdminEndpoint`] and every other
/// request to the inner service. Made by [`AdminEndpoint::route_layer`].
#[derive(Clone, Debug)]
pub struct AdminRouteLayer {
    pub(super) endpoint: AdminEndpoint,
}

impl<S> Layer<S> for AdminRouteLayer {
    type Service = AdminRoute<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AdminRoute {
            inner,
            endpoint: self.endpoint.clone(),
        }
    }
}

/// The service made by [`AdminRouteLayer`].
#[derive(Clone, Debug)]
pub struct AdminRoute<S> {
    inner: S,
    endpoint: AdminEndpoint,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AdminRoute<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<AdminRouteBody<ResBody>>;
    type Error = S::Error;
    type Future = AdminRouteFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.uri().path() == self.endpoint.path() {
            AdminRouteFuture::admin(self.endpoint.clone().call(request))
        } else {
            AdminRouteFuture::inner(self.inner.call(request))
        }
    }
}

pin_project! {
    /// The response future of [`AdminRoute`]: the endpoint's, or the inner service's.
    pub struct AdminRouteFuture<F> {
        #[pin]
        state: Route<F>,
    }
}

pin_project! {
    #[project = RouteProjection]
    enum Route<F> {
        Admin {
            #[pin]
            future: AdminFuture,
        },
        Inner {
            #[pin]
            future: F,
        },
    }
}

impl<F> AdminRouteFuture<F> {
    fn admin(future: AdminFuture) -> Self {
        AdminRouteFuture {
            state: Route::Admin { future },
        }
    }

    fn inner(future: F) -> Self {
        AdminRouteFuture {
            state: Route::Inner { future },
        }
    }
}

impl<F> std::fmt::Debug for AdminRouteFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let to = match self.state {
            Route::Admin { .. } => "admin endpoint",
            Route::Inner { .. } => "inner service",
        };
        f.debug_struct("AdminRouteFuture").field("to", &to).finish()
    }
}

impl<F, ResBody, E> Future for AdminRouteFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<AdminRouteBody<ResBody>>, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            RouteProjection::Admin { future } => future.poll(cx).map(|answer| {
                let response = match answer {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                Ok(response.map(AdminRouteBody::Left))
            }),
            RouteProjection::Inner { future } => future
                .poll(cx)
                .map(|result| result.map(|r| r.map(AdminRouteBody::Right))),
        }
    }
}

/// The response body of [`AdminRoute`]: the report's (`Left`), or the inner service's as it
/// is (`Right`; not boxed, so requests that are not for the admin path cost no allocation
/// here). A `Body<Data = Bytes, Error = BoxError>`.
pub type AdminRouteBody<B> = http_body_util::Either<Full<Bytes>, B>;
