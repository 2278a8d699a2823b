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
//! ```text
//! cargo run --release -p gmr-examples --bin threads-bench -- --threads 1000 --runs 10
//! cargo run --release -p gmr-examples --bin threads-bench -- --threads 1000 --runs 10 --eu-stack
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
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        threads: 100,
        runs: 10,
        eu_stack: false,
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
            "-h" | "--help" => {
                return Err("usage: threads-bench [--threads N] [--runs R] [--eu-stack]".to_owned());
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

/// Cold (the first) and warm (median of the others) of `times`.
fn cold_and_warm(times: &[f64]) -> (f64, f64) {
    let cold = times.first().copied().unwrap_or(f64::NAN);
    let mut warm: Vec<f64> = times.iter().skip(1).copied().collect();
    warm.sort_by(f64::total_cmp);
    let median = if warm.is_empty() {
        cold
    } else if warm.len() % 2 == 1 {
        warm[warm.len() / 2]
    } else {
        (warm[warm.len() / 2 - 1] + warm[warm.len() / 2]) / 2.0
    };
    (cold, median)
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
