//! A host that owns SIGUSR2 itself, as uWSGI does: it installs its own SIGUSR2
//! handler before the server starts, and runs gmr with `signal = "none"`, so reports come from
//! the trigger file or the admin endpoint only.
//!
//! ```text
//! cargo run -p gmr-examples --bin signal-host-demo -- --listen 127.0.0.1:0
//! kill -USR2 <pid>          # the host prints "host: received SIGUSR2"; no report
//! touch <trigger file>      # a report, as the banner says
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)]

use std::io::Write as _;
use std::process::ExitCode;

use gmr_examples::DemoArgs;
use tokio::signal::unix::{SignalKind, signal};
use tower::util::Either;

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
    gmr_examples::spawn_parked_workers()?;
    gmr_examples::start_lock_holder().await?;
    let routes = gmr_examples::axum_routes::routes("hello from signal-host-demo");
    let (app, gmr) = if args.no_gmr {
        (Either::Right(routes), None)
    } else {
        // Signal "none": gmr leaves SIGUSR2 to the host. A trigger file unless the
        // configuration names one.
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
        let gmr = gmr_axum::install(&builder.build()?, gmr::package!())?;
        let app = gmr.wrap(routes.merge(gmr.router()));
        (Either::Left(app), Some(gmr))
    };
    let host_line = format!(
        "SIGUSR2 belongs to the host here: kill -USR2 {} prints a host line",
        std::process::id()
    );
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let guard = gmr.as_ref().map(gmr_axum::GmrAxum::guard);
    gmr_examples::announce(&listener, guard, generated_token.as_deref(), &[host_line])?;
    // Graceful on Ctrl-C or SIGTERM, for at most SHUTDOWN_GRACE (`/await-lock` never ends).
    let shutdown = gmr_examples::Shutdown::new();
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.graceful());
    tokio::select! {
        served = server.into_future() => served?,
        () = shutdown.deadline() => {}
    }
    drop(gmr); // the server has shut down: stop gmr's triggers
    Ok(())
}

fn main() -> ExitCode {
    gmr_examples::run_demo("signal-host-demo", serve)
}
