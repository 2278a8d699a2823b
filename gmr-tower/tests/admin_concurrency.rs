//! Cost control: 100 concurrent authorized requests make one report and get 100 identical
//! answers. In a test binary of its own so that no other test makes reports meanwhile.

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use tower::ServiceExt;

const TOKEN: &str = "concurrency-token-0123456789abcdef";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_requests_make_one_report() {
    let config = config::Config::builder()
        .set_default("gmr.signal", "none")
        .and_then(|b| b.set_default("gmr.admin.token", TOKEN))
        .and_then(|b| b.set_default("gmr.admin.min_interval", "30s"))
        .and_then(|b| b.build())
        .expect("config");
    let guard = gmr::Gmr::builder()
        .config(&config)
        .install()
        .expect("install");
    let endpoint = gmr_tower::AdminEndpoint::from_guard(&guard).expect("token configured");
    let before = guard.reports().reports_made();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                let request = Request::get("/admin/gmr")
                    .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                    .body(())
                    .expect("request");
                let response = endpoint.oneshot(request).await.expect("infallible");
                let status = response.status();
                let body: Bytes = response
                    .into_body()
                    .collect()
                    .await
                    .expect("body")
                    .to_bytes();
                (status, body)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("join"));
    }
    assert!(answers.iter().all(|(status, _)| *status == StatusCode::OK));
    assert!(
        answers.iter().all(|(_, body)| body == &answers[0].1),
        "identical answers"
    );
    assert_eq!(
        guard.reports().reports_made() - before,
        1,
        "one report for 100 requests"
    );
}
