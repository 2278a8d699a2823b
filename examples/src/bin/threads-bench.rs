//! Measures full reports of a process with many threads.
//!
//! `threads-bench --threads N --runs R` spawns N threads parked about 20 frames deep in
//! `bench_parked_thread`, then takes R full reports (capture, unwind, symbolize, render the whole
//! report to text), printing one line per report and then
//! `summary threads=N cold_ms=… warm_median_ms=… peak_rss_delta_kb=…`, where the peak RSS delta
//! is `VmHWM` after the last report minus `VmHWM` before the first.
//!
//! With `--eu-stack`, each report is followed by `eu-stack -p <this pid>` (elfutils) on the
//! same process, timed the same way (wall clock of the whole command, its output discarded),
//! and the summary adds its cold and warm median and the ratios: how many times faster gmr's
//! report is than eu-stack's stacks, side by side in one run.
//!
//! With `--html`, the last report is then rendered R more times to text and to HTML, in
//! turn, and the bench prints `html threads=N text_bytes=… html_bytes=…
//! text_render_median_ms=… html_render_median_ms=… ratio=…`, then R whole reports in each
//! view, in turn (capture and render), as `html whole_report … ratio=…`. The targets of the
//! HTML view for 1000 threads: at most 1.5 MB, and twice the text view's time.
//! `--html-out FILE` also writes the page.
//!
//! ```text
//! cargo run --release -p gmr-examples --bin threads-bench -- --threads 1000 --runs 10
//! cargo run --release -p gmr-examples --bin threads-bench -- --threads 1000 --runs 10 --eu-stack
//! cargo run --release -p gmr-examples --bin threads-bench -- --threads 1000 --runs 10 --html
//! ```
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// Frames of `bench_parked_thread` recursion below the thread's entry.
const DEPTH: u32 = 20;

/// Parks the thread `depth` frames deep in itself, until `release` is set.
#[inline(never)]
fn bench_parked_thread(depth: u32, parked: &AtomicUsize, release: &(Mutex<bool>, Condvar)) {
    if depth > 0 {
        bench_parked_thread(depth - 1, parked, release);
        // Keeps the call from being a tail call, so every level stays on the stack.
        std::hint::black_box(depth);
        return;
    }
    let (lock, cvar) = release;
    let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
    parked.fetch_add(1, Ordering::Release);
    while !*done {
        done = cvar.wait(done).unwrap_or_else(|e| e.into_inner());
    }
}

fn vm_hwm_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

struct Args {
    threads: usize,
    runs: usize,
    eu_stack: bool,
    html: bool,
    html_out: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        threads: 100,
        runs: 10,
        eu_stack: false,
        html: false,
        html_out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            it.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse()
                .map_err(|e| format!("{name}: {e}"))
        };
        match flag.as_str() {
            "--threads" => args.threads = value("--threads")?,
            "--runs" => args.runs = value("--runs")?.max(1),
            "--eu-stack" => args.eu_stack = true,
            "--html" => args.html = true,
            "--html-out" => {
                args.html = true;
                args.html_out = Some(it.next().ok_or("--html-out needs a file")?.into());
            }
            "-h" | "--help" => {
                return Err(
                    "usage: threads-bench [--threads N] [--runs R] [--eu-stack] \
                            [--html] [--html-out FILE]"
                        .to_owned(),
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// Times `eu-stack -p <our pid>` (its output discarded). `Err` if it cannot run or fails.
fn time_eu_stack() -> Result<f64, String> {
    let t0 = Instant::now();
    let output = std::process::Command::new("eu-stack")
        .arg("-p")
        .arg(std::process::id().to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run eu-stack (apt-get install elfutils): {e}"))?;
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    // eu-stack exits with 1 when it could not unwind some frame of some thread, after
    // printing every stack: that run still counts.
    if output.status.success() || output.status.code() == Some(1) {
        if !output.status.success() {
            eprintln!(
                "eu-stack: {}",
                String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .next()
                    .unwrap_or("")
            );
        }
        Ok(ms)
    } else {
        Err(format!(
            "eu-stack failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The median of `times`; `None` if there are none.
fn median(times: &[f64]) -> Option<f64> {
    let mut sorted = times.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Cold (the first) and warm (median of the others) of `times`.
fn cold_and_warm(times: &[f64]) -> (f64, f64) {
    let cold = times.first().copied().unwrap_or(f64::NAN);
    (cold, median(&times[times.len().min(1)..]).unwrap_or(cold))
}

/// Renders `report` `runs` times to text and to HTML, in turn, and prints the sizes and the
/// median times; then takes `runs` whole reports in each view, in turn (capture and render,
/// what a reader of each view waits for), and prints their medians; writes the page to `out`
/// if given.
fn html_against_text(
    gmr: &gmr::Gmr,
    report: &gmr::Report,
    threads: usize,
    runs: usize,
    out: Option<&std::path::Path>,
) -> Result<(), String> {
    let (mut text_ms, mut html_ms) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    let (mut text, mut page) = (String::new(), String::new());
    for _ in 0..runs {
        let t0 = Instant::now();
        text = report.render(gmr::OutputFormat::Text);
        text_ms.push(t0.elapsed().as_secs_f64() * 1e3);
        let t0 = Instant::now();
        page = report.render(gmr::OutputFormat::Html);
        html_ms.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let text_median = median(&text_ms).unwrap_or(f64::NAN);
    let html_median = median(&html_ms).unwrap_or(f64::NAN);
    println!(
        "html threads={threads} text_bytes={} html_bytes={} text_render_median_ms={text_median:.2} \
         html_render_median_ms={html_median:.2} ratio={:.2} bench_parked_thread_in_page={}",
        text.len(),
        page.len(),
        html_median / text_median,
        page.contains("bench_parked_thread"),
    );
    let (mut text_full, mut html_full) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        for (format, times) in [
            (gmr::OutputFormat::Text, &mut text_full),
            (gmr::OutputFormat::Html, &mut html_full),
        ] {
            let t0 = Instant::now();
            std::hint::black_box(gmr.report(gmr::Trigger::Api).render(format));
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    let text_full = median(&text_full).unwrap_or(f64::NAN);
    let html_full = median(&html_full).unwrap_or(f64::NAN);
    println!(
        "html whole_report threads={threads} text_median_ms={text_full:.1} \
         html_median_ms={html_full:.1} ratio={:.2}",
        html_full / text_full
    );
    if let Some(out) = out {
        std::fs::write(out, &page).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        println!("page written to {}", out.display());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let gmr = match gmr::Gmr::builder()
        .settings(gmr::GmrConfig::default())
        .build()
    {
        Ok(g) => g,
        Err(e) => {
            eprintln!("cannot build gmr: {e}");
            return ExitCode::FAILURE;
        }
    };

    let parked = Arc::new(AtomicUsize::new(0));
    let release = Arc::new((Mutex::new(false), Condvar::new()));
    let mut handles = Vec::with_capacity(args.threads);
    for i in 0..args.threads {
        let (parked, release) = (parked.clone(), release.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("bench-{i}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                gmr::register_current_thread();
                bench_parked_thread(DEPTH, &parked, &release);
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                eprintln!("cannot spawn thread {i}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    while parked.load(Ordering::Acquire) < args.threads {
        std::thread::yield_now();
    }

    let hwm_before = vm_hwm_kb().unwrap_or(0);
    let mut times = Vec::with_capacity(args.runs);
    let mut eu_times = Vec::with_capacity(args.runs);
    let mut last_report = None;
    for run in 1..=args.runs {
        let t0 = Instant::now();
        let report = gmr.report(gmr::Trigger::Api);
        let text = report.to_text();
        let ms = t0.elapsed().as_secs_f64() * 1e3;
        let section = report
            .section(gmr::report::titles::THREADS)
            .and_then(|s| s.body().ok());
        let json = section.map(|b| b.to_json());
        let field = |k: &str| {
            json.as_ref()
                .and_then(|j| j[k].as_f64())
                .unwrap_or(f64::NAN)
        };
        let groups = json
            .as_ref()
            .and_then(|j| j["stacks"].as_array().map(Vec::len))
            .unwrap_or(0);
        println!(
            "report {run}: {ms:.1} ms (threads section: capture {:.1} ms, {} threads, {} stacks, {} groups), {} bytes of text in {} lines (longest {}), bench_parked_thread shown: {}",
            field("capture_ms"),
            field("thread_count"),
            field("stacks_captured"),
            groups,
            text.len(),
            text.lines().count(),
            text.lines().map(|l| l.chars().count()).max().unwrap_or(0),
            text.contains("bench_parked_thread"),
        );
        times.push(ms);
        last_report = Some(report);
        if args.eu_stack {
            match time_eu_stack() {
                Ok(ms) => {
                    println!("eu-stack {run}: {ms:.1} ms");
                    eu_times.push(ms);
                }
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    let hwm_after = vm_hwm_kb().unwrap_or(0);

    let (cold, warm_median) = cold_and_warm(&times);
    let mut summary = format!(
        "summary threads={} cold_ms={cold:.1} warm_median_ms={warm_median:.1} peak_rss_delta_kb={}",
        args.threads,
        hwm_after.saturating_sub(hwm_before)
    );
    if args.eu_stack {
        let (eu_cold, eu_warm) = cold_and_warm(&eu_times);
        summary.push_str(&format!(
            " eu_stack_cold_ms={eu_cold:.1} eu_stack_warm_median_ms={eu_warm:.1} \
             cold_ratio={:.1} warm_ratio={:.1}",
            eu_cold / cold,
            eu_warm / warm_median
        ));
    }
    println!("{summary}");
    if args.html
        && let Some(report) = &last_report
        && let Err(e) = html_against_text(
            &gmr,
            report,
            args.threads,
            args.runs,
            args.html_out.as_deref(),
        )
    {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }

    {
        let (lock, cvar) = &*release;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
    }
    for h in handles {
        let _ = h.join();
    }
    ExitCode::SUCCESS
}
