//! A sink defined outside gmr: `gmr::Sink` implemented in this crate receives every report,
//! in its own format, next to the configured destination, with no change to gmr.

use std::sync::{Arc, Mutex};

use gmr::{Delivery, OutgoingReport, OutputFormat, Sink, SinkError, Trigger};

/// What the sink was given, per report.
#[derive(Debug, Clone)]
struct Received {
    format: OutputFormat,
    file_name: String,
    service: String,
    trigger: Trigger,
    body: String,
    rendered: Arc<gmr::RenderedReport>,
}

/// Records every report it receives.
#[derive(Debug)]
struct RecordingSink {
    format: Option<OutputFormat>,
    received: Mutex<Vec<Received>>,
}

impl RecordingSink {
    fn new(format: Option<OutputFormat>) -> Arc<Self> {
        Arc::new(RecordingSink {
            format,
            received: Mutex::new(Vec::new()),
        })
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().expect("sink lock").clone()
    }
}

impl Sink for RecordingSink {
    fn name(&self) -> &str {
        "recording"
    }

    fn format(&self) -> Option<OutputFormat> {
        self.format
    }

    fn deliver(&self, report: &OutgoingReport<'_>) -> Result<Delivery, SinkError> {
        let mut received = self
            .received
            .lock()
            .map_err(|_| SinkError::failed("recording", "lock poisoned"))?;
        received.push(Received {
            format: report.format(),
            file_name: report.file_name().to_owned(),
            service: report.header().service.clone(),
            trigger: report.header().trigger,
            body: report.body().to_owned(),
            rendered: Arc::clone(report.rendered()),
        });
        Ok(Delivery::Sink {
            name: "recording".to_owned(),
            destination: format!("report #{}", received.len()),
        })
    }
}

/// A sink that always fails: its failure is logged, the configured destination still works.
#[derive(Debug)]
struct FailingSink;

impl Sink for FailingSink {
    fn name(&self) -> &str {
        "failing"
    }

    fn deliver(&self, _report: &OutgoingReport<'_>) -> Result<Delivery, SinkError> {
        Err(SinkError::failed("failing", "the destination is down"))
    }
}

fn config(dir: &std::path::Path) -> config::Config {
    config::Config::builder()
        .set_default("gmr.service_name", "sink-test")
        .and_then(|b| b.set_default("gmr.signal", "none"))
        .and_then(|b| b.set_default("gmr.log_dir", dir.display().to_string()))
        .and_then(|b| b.build())
        .expect("config")
}

#[test]
fn sinks_of_another_crate_receive_every_report_in_their_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json_sink = RecordingSink::new(Some(OutputFormat::Json));
    let another_json_sink = RecordingSink::new(Some(OutputFormat::Json));
    let default_format_sink = RecordingSink::new(None);
    let gmr = gmr::Gmr::builder()
        .config(&config(dir.path()))
        .sink(json_sink.clone())
        .sink(Arc::new(FailingSink))
        .sink(another_json_sink.clone())
        .sink(default_format_sink.clone())
        .build()
        .expect("engine");

    let delivery = gmr.report_and_write(Trigger::Api).expect("written");
    // The configured destination comes first and answers for the report.
    let Delivery::File(path) = delivery else {
        panic!("expected a file in log_dir, got {delivery:?}");
    };
    let file = std::fs::read_to_string(&path).expect("report file");
    assert!(file.contains("Guru Meditation"), "text in log_dir");

    let got = json_sink.received();
    assert_eq!(got.len(), 1, "one report, one delivery");
    let report = &got[0];
    assert_eq!(report.format, OutputFormat::Json);
    assert_eq!(report.service, "sink-test");
    assert_eq!(report.trigger, Trigger::Api);
    let json: serde_json::Value = serde_json::from_str(&report.body).expect("a JSON document");
    assert_eq!(json["service"], "sink-test");
    // The suggested name is the report's file name, with the extension of the sink's format.
    let stem = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".txt"))
        .expect("a .txt report file");
    assert_eq!(report.file_name, format!("{stem}.json"));

    // Two sinks of one format share one rendering; the default format is the configured one.
    let other = another_json_sink.received();
    assert_eq!(other.len(), 1, "a failing sink before it changes nothing");
    assert!(Arc::ptr_eq(&other[0].rendered, &report.rendered));
    let text = default_format_sink.received();
    assert_eq!(text.len(), 1);
    assert_eq!(text[0].format, OutputFormat::Text);
    assert_eq!(text[0].body, file);
}

#[test]
fn the_reporter_thread_delivers_to_added_sinks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sink = RecordingSink::new(None);
    let guard = gmr::Gmr::builder()
        .config(&config(dir.path()))
        .sink(sink.clone())
        .install()
        .expect("install");
    let reports = guard.reports();
    for _ in 0..2 {
        reports.write_blocking(Trigger::Api).expect("written");
    }
    let got = sink.received();
    assert_eq!(got.len(), 2, "every report reaches the sink");
    assert_ne!(got[0].file_name, got[1].file_name, "names never collide");
    drop(guard);
}
