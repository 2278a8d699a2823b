//! Rendering cost of the two views: a report of 1000 synthetic threads of 30 frames each,
//! rendered to text and to JSON. Run with `cargo bench -p gmr --bench render`.

use criterion::{Criterion, criterion_group, criterion_main};
use gmr::report::REPORT_VERSION;
use gmr::{Content, Report, ReportHeader, Section, Trigger};

fn synthetic_report(threads: usize, frames: usize) -> Report {
    let mut body = Content::new();
    for t in 0..threads {
        let mut thread = Content::new()
            .field("tid", 10_000 + t)
            .field("name", format!("worker-{t}"))
            .field("state", "S (sleeping)");
        for f in 0..frames {
            thread = thread.group(
                format!("frame_{f:02}"),
                Content::new()
                    .field(
                        "function",
                        format!("my_service::handlers::module_{f}::function_{f}"),
                    )
                    .field(
                        "location",
                        format!("src/handlers/module_{f}.rs:{}", 100 + f),
                    )
                    .field("module", format!("my-service+0x{:x}", 0x1000 + f * 0x40)),
            );
        }
        body = body.group(format!("thread_{t}"), thread);
    }
    let header = ReportHeader {
        service: "bench".into(),
        version: "1.0.0".into(),
        host: "bench-host".into(),
        pid: 4242,
        generated_at: "2026-11-26T03:14:15Z".into(),
        generated_at_compact: "20261126T031415".into(),
        trigger: Trigger::Api,
        report_version: REPORT_VERSION,
    };
    Report::new(
        header,
        vec![Section::new(gmr::report::titles::THREADS, Box::new(body))],
    )
}

fn render(c: &mut Criterion) {
    let report = synthetic_report(1000, 30);
    let mut group = c.benchmark_group("render_1000_threads_30_frames");
    group.sample_size(20);
    group.bench_function("text", |b| b.iter(|| report.to_text()));
    group.bench_function("json", |b| b.iter(|| report.to_json_string()));
    group.finish();
}

criterion_group!(benches, render);
criterion_main!(benches);
