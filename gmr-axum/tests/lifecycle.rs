//! Without a token there is no endpoint; dropping the guard after the server has shut down
//! stops the triggers. (Its own test binary: one gmr hook per process.)

use axum::Router;
use axum::routing::get;
use gmr::{ReportError, Trigger};
use http::{Request, StatusCode, header};
use tower::ServiceExt;

#[tokio::test]
async fn no_token_no_endpoint_and_drop_after_shutdown_stops_the_triggers() {
    let config = config::Config::builder()
        .set_default("gmr.signal", "none")
        .and_then(|b| b.build())
        .expect("config");
    let gmr = gmr_axum::install(&config, gmr::package!()).expect("install");
    assert_eq!(gmr.admin_path(), None);
    let app: Router = Router::new()
        .route("/", get(|| async { "hello" }))
        .merge(gmr.router())
        .layer(gmr.layer());
    let response = app
        .clone()
        .oneshot(
            Request::get("/admin/gmr")
                .header(header::AUTHORIZATION, "Bearer anything-at-all-0123456789")
                .body(axum::body::Body::empty())
                .expect("request"),
        )
        .await
        .expect("infallible");
    assert_eq!(
        response.status(),
        StatusCode::NOT_FOUND,
        "no token, no endpoint"
    );

    // Serve for real on loopback and shut down gracefully, then drop the guard.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop_rx.await;
            })
            .into_future(),
    );
    let reports = gmr.reports();
    assert!(
        reports.report(Trigger::Api).await.is_ok(),
        "running while serving"
    );
    stop_tx.send(()).expect("stop");
    server.await.expect("join").expect("served");
    drop(gmr);
    assert_eq!(
        reports.report(Trigger::Api).await.err(),
        Some(ReportError::Stopped),
        "triggers stopped once the server shut down and the guard was dropped"
    );
}
