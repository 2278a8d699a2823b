//! The `Threads` section: every OS thread of the process with its name, state, CPU time, what it
//! is blocked in, and its symbolized stack, innermost frame first.
//!
//! Threads with identical stacks are shown once, as a group with their count and TIDs (the way
//! Go's goroutine profile `debug=1` and .NET's `pstacks` do), which is what keeps a report of a
//! thousand threads readable. Threads blocked in `futex` on the same address are flagged
//! together: they wait on the same lock or condition variable.
//!
//! The capture itself (signals, unwinding, symbolization) is in `crate::capture`.

#[cfg(test)]
mod golden_tests;
#[cfg(feature = "html")]
mod html;
mod model;
mod render;

pub(crate) use self::model::ThreadsSection;
#[cfg(feature = "tokio")]
pub(crate) use self::model::frame_entries;

use super::ReportContext;
use crate::capture::{CaptureOptions, capture_threads};
use crate::error::SectionError;

/// Generates the `Threads` section.
pub(crate) fn generate(ctx: &ReportContext<'_>) -> Result<ThreadsSection, SectionError> {
    let t = &ctx.settings.threads;
    let opts = CaptureOptions {
        signal_offset: t.capture_signal,
        thread_timeout: t.timeout,
        deadline: t.deadline,
        max_frames: t.max_frames.max(1),
        symbol_budget: t.symbol_budget,
        debug_dirs: t.debug_dirs.clone(),
    };
    let capture = capture_threads(&opts).map_err(SectionError::failed)?;
    let mut section = ThreadsSection::from_capture(capture, &ctx.stack_style());
    mark_polling_threads(&mut section, ctx);
    if let Some(history) = ctx.history {
        // Timed from the capture's start, when the CPU times were read.
        let (now_ms, at) = super::since::now();
        let at_ms = now_ms.saturating_sub(section.capture_ms as u64);
        section.since = history.threads(&section, at_ms, &at);
    }
    Ok(section)
}

/// Marks each thread polling an in-flight request now with that request, so that the thread's
/// block says which request it is inside, and since when (the request sources are read again in
/// `Green Threads`, joined to tasks and spans).
fn mark_polling_threads(section: &mut ThreadsSection, ctx: &ReportContext<'_>) {
    let masker = crate::secrets::Masker::new(&ctx.settings.secrets.extra_keys);
    for source in crate::requests::sources() {
        let Ok(requests) = crate::report::isolate::catch(|| source.requests()) else {
            continue;
        };
        for r in requests {
            let (Some(tid), Some(in_poll)) = (r.polled_by, r.last_poll) else {
                continue;
            };
            let Some(thread) = section.threads.iter_mut().find(|t| t.tid == tid) else {
                continue;
            };
            let stuck = if in_poll >= super::green_threads::STUCK_POLL {
                " (STUCK)"
            } else {
                ""
            };
            thread.polling = Some(format!(
                "request {} {} {}, {:.1} s in this poll{stuck}",
                r.id.get(),
                r.method,
                masker.mask_text(&r.path),
                in_poll.as_secs_f64()
            ));
        }
    }
}
