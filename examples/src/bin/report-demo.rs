//! Prints a Guru Meditation Report of itself: the quickest way to see what gmr produces.
//!
//! ```text
//! cargo run -p gmr-examples --bin report-demo
//! cargo run -p gmr-examples --bin report-demo -- --json
//! cargo run -p gmr-examples --bin report-demo -- --config examples/demo.toml
//! ```
//!
//! Two background threads park in `demo_parked_worker` so the `Threads` section holds
//! application frames, and a registered section shows how an application adds its own.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use gmr::{Content, Gmr, Trigger};

static ORDERS_PROCESSED: AtomicU64 = AtomicU64::new(1234);

/// Parks forever: shows up in the report's `Threads` section under this name.
#[inline(never)]
fn demo_parked_worker(ready: std::sync::mpsc::Sender<()>) {
    let _ = ready.send(());
    loop {
        std::thread::park();
    }
}

struct Args {
    config: Option<String>,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: None,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--config" => args.config = Some(it.next().ok_or("--config needs a FILE")?),
            "--json" => args.json = true,
            "-h" | "--help" => {
                return Err("usage: report-demo [--config FILE] [--json]".to_owned());
            }
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    Ok(args)
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let mut builder = config::Config::builder()
        .set_default("gmr.service_name", "report-demo")?
        .set_default(
            "database.url",
            "postgres://demo:demo-password@localhost/demo",
        )?
        .set_default("database.pool_size", 8)?;
    if let Some(path) = &args.config {
        builder = builder.add_source(config::File::with_name(path));
    }
    let app_config = builder.build()?;
    let gmr = Gmr::builder()
        .config(&app_config)
        .package(gmr::package!())
        .build()?;

    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    for i in 0..2 {
        let ready = ready_tx.clone();
        std::thread::Builder::new()
            .name(format!("demo-worker-{i}"))
            .spawn(move || demo_parked_worker(ready))?;
    }
    for _ in 0..2 {
        ready_rx.recv()?;
    }
    gmr::register_section("Orders", || {
        Ok::<_, std::convert::Infallible>(
            Content::new().field("processed", ORDERS_PROCESSED.load(Ordering::Relaxed)),
        )
    });

    let report = gmr.report(Trigger::Api);
    let rendered = if args.json {
        report.to_json_string()
    } else {
        report.to_text()
    };
    std::io::stdout().write_all(rendered.as_bytes())?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "report-demo: {error}");
            ExitCode::FAILURE
        }
    }
}
