//! A host that owns SIGUSR2 itself, as uWSGI does (DESIGN §3.1): it installs its own SIGUSR2
//! handler before the server starts, and runs gmr with `signal = "none"`, so reports come from
//! the trigger file or the admin endpoint only.
//!
//! ```text
//! cargo run -p gmr-examples --bin signal-host-demo -- --listen 127.0.0.1:0
//! kill -USR2 <pid>          # the host prints "host: received SIGUSR2"; no report
//! touch <trigger file>      # a report, as the banner says
//! ```

#![allow(clippy::print_stdout)]

use std::io::Write as _;
use std::process::ExitCode;

use gmr_examples::DemoArgs;
use tokio::signal::unix::{SignalKind, signal};

async fn serve(args: DemoArgs) -> Result<(), Box<dyn std::error::Error>> {
    // The host's own handler comes first: SIGUSR2 is the host's, not gmr's.
    let mut sigusr2 = signal(SignalKind::user_defined2())?;
    tokio::spawn(async move {
        while sigusr2.recv().await.is_some() {
            println!("host: received SIGUSR2 (the host's own handler; gmr leaves it alone)");
            let _ = std::io::stdout().flush();
        }
    });

    let (config, generated_token) = gmr_examples::load_config(&args, "signal-host-demo")?;
    let gmr = if args.no_gmr {
        None
    } else {
        // Signal "none"; a trigger file unless the configuration names one.
        let default_trigger = std::env::temp_dir().join(format!(
            "signal-host-demo-{}.gmr_trigger",
            std::process::id()
        ));
        let mut builder = config::Config::builder()
            .add_source(config.clone())
            .set_override("gmr.signal", "none")?;
        if config.get_string("gmr.file_event_handler").is_err() {
            builder = builder.set_override(
                "gmr.file_event_handler",
                default_trigger.display().to_string(),
            )?;
        }
        Some(gmr_axum::install(&builder.build()?, gmr::package!())?)
    };
    let host_line = format!(
        "SIGUSR2 belongs to the host here: kill -USR2 {} prints a host line",
        std::process::id()
    );
    gmr_examples::serve_axum_demo(
        &args,
        gmr,
        generated_token.as_deref(),
        "hello from signal-host-demo",
        &[host_line],
    )
    .await
}

fn main() -> ExitCode {
    gmr_examples::run_demo("signal-host-demo", serve)
}
