//! What the demo servers share: the command line of `docs/README.md` ("The demos"), configuration loading, the
//! parked background threads, the start-up banner, and the demo routes' parameters.
#![forbid(unsafe_code)]
// Printing the banner on stdout is what a demo is for.
#![allow(clippy::print_stdout)]

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The command line every demo accepts.
#[derive(Debug, Clone)]
pub struct DemoArgs {
    /// `--listen ADDR` (default `127.0.0.1:8080`; port 0 picks a free port).
    pub listen: SocketAddr,
    /// `--config FILE` (TOML).
    pub config: Option<PathBuf>,
    /// `--no-gmr`: the same server without any gmr layer, hook or endpoint.
    pub no_gmr: bool,
    /// `--workers N`: worker threads (tokio workers, or actix-web workers), 1 to 256; default 2.
    pub workers: usize,
    /// `--spans`: add gmr's span layer (`gmr::tracing::layer()`) to the demo's subscriber, so
    /// reports show each request's open spans.
    pub spans: bool,
}

impl DemoArgs {
    /// Parses `std::env::args()`.
    ///
    /// # Errors
    ///
    /// A usage message for an unknown argument or a bad value.
    pub fn parse(program: &str) -> Result<Self, String> {
        let usage = format!(
            "usage: {program} [--listen ADDR] [--config FILE] [--no-gmr] [--workers N] [--spans]"
        );
        let mut args = DemoArgs {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            config: None,
            no_gmr: false,
            workers: 2,
            spans: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--listen" => {
                    let value = it
                        .next()
                        .ok_or_else(|| format!("--listen needs ADDR\n{usage}"))?;
                    args.listen = value
                        .parse()
                        .map_err(|e| format!("--listen {value:?}: {e}\n{usage}"))?;
                }
                "--config" => {
                    args.config = Some(PathBuf::from(
                        it.next()
                            .ok_or_else(|| format!("--config needs FILE\n{usage}"))?,
                    ));
                }
                "--no-gmr" => args.no_gmr = true,
                "--spans" => args.spans = true,
                "--workers" => {
                    let value = it
                        .next()
                        .ok_or_else(|| format!("--workers needs N\n{usage}"))?;
                    args.workers = value
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=256).contains(n))
                        .ok_or_else(|| {
                            format!("--workers {value:?}: a number from 1 to 256\n{usage}")
                        })?;
                }
                "-h" | "--help" => return Err(usage),
                other => return Err(format!("unknown argument {other:?}\n{usage}")),
            }
        }
        Ok(args)
    }
}

/// The demo's configuration: built-in defaults, then `--config FILE`, then environment
/// variables `DEMO__SECTION__KEY`. When no admin token is configured, a random one is set (a
/// demo-only convenience: the library never does that) and returned.
///
/// # Errors
///
/// The config crate's error for an unreadable or invalid file.
pub fn load_config(
    args: &DemoArgs,
    service: &str,
) -> Result<(config::Config, Option<String>), config::ConfigError> {
    let mut builder = config::Config::builder()
        .set_default("gmr.service_name", service)?
        .set_default("app.greeting", "hello from the gmr demo")?
        .set_default(
            "app.database_url",
            "postgres://demo:demo-db-password@127.0.0.1:5432/demo",
        )?;
    if let Some(path) = &args.config {
        builder = builder.add_source(config::File::from(path.clone()));
    }
    builder = builder.add_source(config::Environment::with_prefix("DEMO").separator("__"));
    let config = builder.build()?;
    let has_token = config.get_string("gmr.admin.token").is_ok()
        || config.get_string("gmr.admin.token_file").is_ok();
    if has_token || args.no_gmr {
        return Ok((config, None));
    }
    let token = random_token();
    let config = config::Config::builder()
        .add_source(config)
        .set_override("gmr.admin.token", token.clone())?
        .build()?;
    Ok((config, Some(token)))
}

/// 32 hex characters from the kernel's random source.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // No /dev/urandom: derive something unguessable enough for a demo from time and pid.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            ^ u128::from(std::process::id()) << 64;
        bytes = seed.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parks forever: a demo's background threads wait here, so a report visibly holds
/// application frames.
#[inline(never)]
pub fn demo_parked_worker(ready: std::sync::mpsc::Sender<()>) {
    let _ = ready.send(());
    loop {
        std::thread::park();
    }
}

/// Starts the two named background threads parked in [`demo_parked_worker`] and waits until
/// both are parked.
///
/// # Errors
///
/// The error of spawning a thread.
pub fn spawn_parked_workers() -> std::io::Result<()> {
    let (tx, rx) = std::sync::mpsc::channel();
    for i in 0..2 {
        let ready = tx.clone();
        std::thread::Builder::new()
            .name(format!("demo-parked-{i}"))
            .spawn(move || demo_parked_worker(ready))?;
    }
    for _ in 0..2 {
        rx.recv()
            .map_err(|e| std::io::Error::other(format!("parked worker did not start: {e}")))?;
    }
    Ok(())
}

/// Prints the first stdout line `listening on http://ADDR`, then how to get a report.
pub fn print_banner(
    addr: SocketAddr,
    guard: Option<&gmr::GmrGuard>,
    generated_token: Option<&str>,
) {
    println!("listening on http://{addr}");
    let pid = std::process::id();
    let Some(guard) = guard else {
        println!("gmr is off (--no-gmr): pid {pid}");
        return;
    };
    let settings = guard.gmr().settings();
    if guard.signal_trigger_active() {
        if let gmr::SignalChoice::Signal(n) = settings.signal {
            println!(
                "report: kill -{} {pid}",
                gmr::signal_name(n).trim_start_matches("SIG")
            );
        }
    } else {
        println!("report: the signal trigger is off (pid {pid})");
    }
    if let Some(path) = &settings.file_event_handler {
        println!("report: touch {}", path.display());
    }
    match &settings.log_dir {
        Some(dir) => println!("reports are written to {}", dir.display()),
        None => println!("reports are written to stderr"),
    }
    if settings.admin.token.is_some() {
        let shown = generated_token.unwrap_or("$TOKEN");
        println!(
            "report: curl -H 'Authorization: Bearer {shown}' http://{addr}{}",
            settings.admin.path
        );
        if generated_token.is_some() {
            println!("(demo-only: a random admin token was generated because none is configured)");
        }
    }
}

/// The `ms` query parameter of `/slow`, `/block` and `/await-channel`: 0 to 60000.
///
/// # Errors
///
/// A message for a `400` answer.
pub fn parse_ms(query: Option<&str>) -> Result<Duration, &'static str> {
    let query = query.unwrap_or("");
    let mut ms = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("ms", value)) => {
                ms = Some(
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|v| *v <= 60_000)
                        .ok_or("ms must be a whole number of milliseconds from 0 to 60000")?,
                );
            }
            _ => return Err("unknown query parameter; use ?ms=N"),
        }
    }
    Ok(Duration::from_millis(ms.unwrap_or(1000)))
}

/// Awaits a timer (`/slow`): the request waits without holding a thread.
#[inline(never)]
#[tracing::instrument(skip_all, fields(ms = duration.as_millis() as u64))]
pub async fn demo_slow_handler(duration: Duration) -> String {
    tokio::time::sleep(duration).await;
    format!("slept {} ms without blocking\n", duration.as_millis())
}

/// Blocks the worker thread (`/block`): the report shows this function on that thread's
/// stack, under the request that called it.
#[inline(never)]
#[tracing::instrument(skip_all, fields(ms = duration.as_millis() as u64))]
pub fn demo_block_handler(duration: Duration) -> String {
    std::thread::sleep(duration);
    format!("blocked a worker thread for {} ms\n", duration.as_millis())
}

/// Spins on a CPU for `duration` (`/spin`, run on tokio's blocking pool): the report shows a
/// thread that is busy, not stuck, its CPU moving between reports and during the capture.
#[inline(never)]
#[tracing::instrument(skip_all, fields(ms = duration.as_millis() as u64))]
pub fn demo_spin_handler(duration: Duration) -> String {
    let started = std::time::Instant::now();
    let mut turns: u64 = 0;
    while started.elapsed() < duration {
        turns = std::hint::black_box(turns.wrapping_add(1));
    }
    format!(
        "spun a CPU for {} ms ({turns} turns)\n",
        duration.as_millis()
    )
}

/// The lock that [`demo_lock_holder`] holds for the life of the process.
static DEMO_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Starts the background task that takes `DEMO_LOCK` and never gives it back (the async
/// deadlock of `/await-lock`), and waits until it holds the lock. Call it once, inside the
/// demo's runtime.
///
/// # Errors
///
/// When the task ended before taking the lock.
pub async fn start_lock_holder() -> Result<(), Box<dyn std::error::Error>> {
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(demo_lock_holder(held_tx));
    held_rx
        .await
        .map_err(|_| "the lock holder task ended before taking the lock".into())
}

/// Takes `DEMO_LOCK` and keeps it forever, inside a span open for the life of the process
/// (a background job, as the report lists it).
#[inline(never)]
#[tracing::instrument(skip_all, fields(resource = "inventory"))]
pub async fn demo_lock_holder(held: tokio::sync::oneshot::Sender<()>) {
    let _held = DEMO_LOCK.lock().await;
    let _ = held.send(());
    // A tokio timer (not `std::future::pending`), so that a task dump shows where it waits.
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// Awaits `DEMO_LOCK` (`/await-lock`), which the lock holder never releases: the request
/// waits forever without holding a thread, the async deadlock the report must explain.
#[inline(never)]
#[tracing::instrument(skip_all, fields(resource = "inventory"))]
pub async fn demo_await_lock() -> String {
    let _guard = DEMO_LOCK.lock().await;
    "got the lock (the holder let it go?)\n".to_owned()
}

/// Awaits a oneshot that a spawned task answers after `duration` (`/await-channel`).
#[inline(never)]
#[tracing::instrument(skip_all, fields(ms = duration.as_millis() as u64))]
pub async fn demo_await_channel(duration: Duration) -> String {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(demo_channel_answerer(duration, tx));
    match rx.await {
        Ok(answer) => format!("{answer}\n"),
        Err(_) => "the answering task went away\n".to_owned(),
    }
}

/// Answers [`demo_await_channel`]'s oneshot after `duration`.
#[inline(never)]
async fn demo_channel_answerer(duration: Duration, tx: tokio::sync::oneshot::Sender<String>) {
    tokio::time::sleep(duration).await;
    let _ = tx.send(format!("answered after {} ms", duration.as_millis()));
}

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG` (default `info`),
/// with gmr's span layer when `spans` is set (`--spans`).
pub fn init_logging(spans: bool) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_filter(filter);
    let registry = tracing_subscriber::registry().with(logs);
    let _ = if spans {
        // The one line that shows each request's open spans in reports.
        registry.with(gmr::tracing::layer()).try_init()
    } else {
        registry.try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_parameter() {
        assert_eq!(parse_ms(None), Ok(Duration::from_millis(1000)));
        assert_eq!(parse_ms(Some("ms=250")), Ok(Duration::from_millis(250)));
        assert!(parse_ms(Some("ms=-1")).is_err());
        assert!(parse_ms(Some("ms=99999999")).is_err());
        assert!(parse_ms(Some("x=1")).is_err());
    }

    #[test]
    fn tokens_are_32_hex() {
        let token = random_token();
        assert_eq!(token.len(), 32);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(token, random_token());
    }
}

/// The demo routes as an axum router (used by `axum-demo` and `signal-host-demo`).
pub mod axum_routes {
    use axum::Router;
    use axum::extract::RawQuery;
    use axum::http::StatusCode;
    use axum::routing::get;

    /// `GET /`, `GET /slow?ms=N`, `GET /block?ms=N`, `GET /await-lock`,
    /// `GET /await-channel?ms=N`.
    pub fn routes<S: Clone + Send + Sync + 'static>(greeting: &'static str) -> Router<S> {
        Router::new()
            .route("/", get(move || async move { format!("{greeting}\n") }))
            .route("/slow", get(slow))
            .route("/block", get(block))
            .route("/spin", get(spin))
            .route("/await-lock", get(super::demo_await_lock))
            .route("/await-channel", get(await_channel))
    }

    async fn await_channel(RawQuery(query): RawQuery) -> (StatusCode, String) {
        match super::parse_ms(query.as_deref()) {
            Ok(duration) => (StatusCode::OK, super::demo_await_channel(duration).await),
            Err(message) => (StatusCode::BAD_REQUEST, format!("{message}\n")),
        }
    }

    async fn slow(RawQuery(query): RawQuery) -> (StatusCode, String) {
        match super::parse_ms(query.as_deref()) {
            Ok(duration) => (StatusCode::OK, super::demo_slow_handler(duration).await),
            Err(message) => (StatusCode::BAD_REQUEST, format!("{message}\n")),
        }
    }

    /// Spins a thread of tokio's blocking pool on purpose: the report shows it busy.
    async fn spin(RawQuery(query): RawQuery) -> (StatusCode, String) {
        match super::parse_ms(query.as_deref()) {
            Ok(duration) => {
                match tokio::task::spawn_blocking(move || super::demo_spin_handler(duration)).await
                {
                    Ok(answer) => (StatusCode::OK, answer),
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
                }
            }
            Err(message) => (StatusCode::BAD_REQUEST, format!("{message}\n")),
        }
    }

    /// Blocks the worker thread on purpose: the report shows it.
    async fn block(RawQuery(query): RawQuery) -> (StatusCode, String) {
        match super::parse_ms(query.as_deref()) {
            Ok(duration) => (StatusCode::OK, super::demo_block_handler(duration)),
            Err(message) => (StatusCode::BAD_REQUEST, format!("{message}\n")),
        }
    }
}

/// Prints the banner for the server listening on `listener` (see [`print_banner`]), then the
/// `extra` lines, and flushes stdout so a reader sees them at once.
///
/// # Errors
///
/// The I/O error of reading the listener's address.
pub fn announce(
    listener: &tokio::net::TcpListener,
    guard: Option<&gmr::GmrGuard>,
    generated_token: Option<&str>,
    extra: &[String],
) -> std::io::Result<()> {
    use std::io::Write as _;
    print_banner(listener.local_addr()?, guard, generated_token);
    for line in extra {
        println!("{line}");
    }
    std::io::stdout().flush()
}

/// A multi-thread runtime with `workers` workers whose threads register their full names with
/// gmr.
///
/// # Errors
///
/// The I/O error of starting the runtime.
pub fn demo_runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("demo-tokio-worker")
        .on_thread_start(gmr::register_current_thread)
        .enable_all()
        .build()
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// How long a demo waits for open requests after Ctrl-C or SIGTERM before it exits anyway
/// (a request awaiting `/await-lock` never ends by itself).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Shuts an axum server down gracefully on Ctrl-C or SIGTERM, but not forever: race
/// [`Shutdown::deadline`] against the server, whose graceful-shutdown future is
/// [`Shutdown::graceful`].
///
/// ```no_run
/// # async fn run(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
/// let shutdown = gmr_examples::Shutdown::new();
/// let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.graceful());
/// tokio::select! {
///     served = server.into_future() => served?,
///     () = shutdown.deadline() => {}
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct Shutdown {
    begun: std::sync::Arc<tokio::sync::Notify>,
}

impl Shutdown {
    /// Nothing asked yet.
    pub fn new() -> Self {
        Shutdown::default()
    }

    /// Resolves once Ctrl-C or SIGTERM came ([`Shutdown::deadline`] must be polled too).
    pub fn graceful(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let begun = std::sync::Arc::clone(&self.begun);
        async move { begun.notified().await }
    }

    /// Waits for Ctrl-C or SIGTERM, starts the graceful shutdown, and resolves
    /// [`SHUTDOWN_GRACE`] later, saying that requests were still open.
    pub async fn deadline(&self) {
        shutdown_signal().await;
        tracing::info!(
            "shutting down: waiting up to {} s for open requests",
            SHUTDOWN_GRACE.as_secs()
        );
        // A permit: the graceful future resolves even if it is not waiting yet.
        self.begun.notify_one();
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        tracing::warn!(
            "requests still open after {} s; exiting",
            SHUTDOWN_GRACE.as_secs()
        );
    }
}

/// Runs `serve` on [`demo_runtime`] and turns its outcome into an exit code, printing errors
/// on stderr.
pub fn run_demo<F>(name: &str, serve: impl FnOnce(DemoArgs) -> F) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<(), Box<dyn std::error::Error>>>,
{
    use std::io::Write as _;
    let args = match DemoArgs::parse(name) {
        Ok(args) => args,
        Err(message) => {
            let _ = writeln!(std::io::stderr(), "{message}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(args.spans);
    let runtime = match demo_runtime(args.workers) {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = writeln!(
                std::io::stderr(),
                "{name}: cannot start the runtime: {error}"
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "{name}: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
