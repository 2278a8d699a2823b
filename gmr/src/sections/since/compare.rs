//! The comparison rules, one place for the process and for `gmr diff`:
//!
//! * a thread is the same thread when its TID and start time match (its name, when either
//!   report lacks the start time);
//! * it did **not move** when its stack hash, its CPU time and its scheduling count are the
//!   same in both reports; then it is **idle** if it waits in a runtime's or pool's idle wait
//!   ([`idle_wait`](super::summary::idle_wait)), else **STUCK**, for at least the time since
//!   the first report that saw it so;
//! * it is **busy** when it used at least [`BUSY_MIN_MS`] of CPU and 1 % of the interval;
//! * any other thread **moved** (a changed stack, a loop of short sleeps);
//! * a request is **in flight ≥ Δt** when both reports list its id, Δt from the first report
//!   that listed it;
//! * threads and tasks that only one report has **appeared** or **vanished**.
//!
//! gmr's own helper threads and the thread making the report are never compared.

use std::collections::{HashMap, HashSet};

use super::model::{
    BusyThread, GreenSince, LISTED, LongRequest, StuckThread, TaskChurn, ThreadChurn, ThreadsSince,
};
use super::summary::{GreenSummary, ThreadMark, ThreadsSummary};

/// CPU a thread must use between two reports to count as busy.
pub(crate) const BUSY_MIN_MS: u64 = 10;

/// Compares the threads of `now` with `previous`, and carries over into `now` since when each
/// thread that did not move has been so.
pub(crate) fn threads(previous: &ThreadsSummary, now: &mut ThreadsSummary) -> ThreadsSince {
    let interval_ms = now.at_ms.saturating_sub(previous.at_ms);
    let by_tid: HashMap<i32, &ThreadMark> = previous.threads.iter().map(|t| (t.tid, t)).collect();
    let mut matched: HashSet<i32> = HashSet::new();
    let mut stuck = Vec::new();
    let mut busy = Vec::new();
    let (mut idle, mut moved) = (0, 0);
    let mut appeared = Vec::new();
    for t in &mut now.threads {
        let before = by_tid.get(&t.tid).copied().filter(|p| same_thread(p, t));
        let Some(before) = before else {
            if !t.own {
                appeared.push(label(t));
            }
            continue;
        };
        matched.insert(t.tid);
        if t.own || before.own {
            continue;
        }
        if did_not_move(before, t) {
            t.unchanged_since_ms = before.unchanged_since_ms;
            t.unchanged_since = before.unchanged_since.clone();
            if t.idle {
                idle += 1;
            } else {
                stuck.push(StuckThread {
                    tid: t.tid,
                    name: t.name.clone(),
                    stuck_ms: now.at_ms.saturating_sub(t.unchanged_since_ms),
                    since: t.unchanged_since.clone(),
                });
            }
            continue;
        }
        let cpu_ms = cpu_between_ms(before, t);
        if cpu_ms >= BUSY_MIN_MS && cpu_ms.saturating_mul(100) >= interval_ms {
            busy.push(BusyThread {
                tid: t.tid,
                name: t.name.clone(),
                cpu_ms,
                cpu_percent: u32::try_from(cpu_ms.saturating_mul(100) / interval_ms.max(1))
                    .unwrap_or(u32::MAX),
            });
        } else if t.idle && before.idle {
            idle += 1;
        } else {
            moved += 1;
        }
    }
    let vanished: Vec<String> = previous
        .threads
        .iter()
        .filter(|p| !p.own && !matched.contains(&p.tid))
        .map(label)
        .collect();
    stuck.sort_by(|a, b| b.stuck_ms.cmp(&a.stuck_ms).then(a.tid.cmp(&b.tid)));
    busy.sort_by(|a, b| b.cpu_ms.cmp(&a.cpu_ms).then(a.tid.cmp(&b.tid)));
    let busy_not_listed = busy.len().saturating_sub(LISTED);
    busy.truncate(LISTED);
    ThreadsSince {
        previous_report_at: previous.at.clone(),
        interval_ms,
        stuck,
        busy,
        busy_not_listed,
        idle,
        moved,
        appeared: churn(appeared),
        vanished: churn(vanished),
    }
}

/// Compares the green threads of `now` with `previous`, and carries over into `now` since when
/// each request has been in flight.
pub(crate) fn green(previous: &GreenSummary, now: &mut GreenSummary) -> GreenSince {
    let interval_ms = now.at_ms.saturating_sub(previous.at_ms);
    let before: HashMap<u64, _> = previous.requests.iter().map(|r| (r.id, r)).collect();
    let mut requests = Vec::new();
    let mut requests_new = 0;
    for r in &mut now.requests {
        match before.get(&r.id) {
            Some(b) => {
                r.seen_since_ms = b.seen_since_ms;
                r.seen_since = b.seen_since.clone();
                requests.push(LongRequest {
                    id: r.id,
                    request: r.what.clone(),
                    in_flight_ms: now.at_ms.saturating_sub(r.seen_since_ms),
                    age_ms: r.age_ms,
                });
            }
            None => requests_new += 1,
        }
    }
    let still: HashSet<u64> = now.requests.iter().map(|r| r.id).collect();
    let requests_finished = previous
        .requests
        .iter()
        .filter(|r| !still.contains(&r.id))
        .count();
    requests.sort_by(|a, b| b.in_flight_ms.cmp(&a.in_flight_ms).then(a.id.cmp(&b.id)));
    let tasks = now
        .tasks
        .iter()
        .filter_map(|(runtime, ids)| {
            let ids = ids.as_ref()?;
            let old = previous
                .tasks
                .iter()
                .find(|(r, _)| r == runtime)
                .and_then(|(_, ids)| ids.as_ref())?;
            let common = ids
                .iter()
                .filter(|id| old.binary_search(id).is_ok())
                .count();
            Some(TaskChurn {
                runtime: runtime.clone(),
                common,
                appeared: ids.len() - common,
                vanished: old.len().saturating_sub(common),
            })
        })
        .collect();
    GreenSince {
        previous_report_at: previous.at.clone(),
        interval_ms,
        requests,
        requests_finished,
        requests_new,
        tasks,
    }
}

/// The same thread: the same TID and start time (or name, without start times).
fn same_thread(before: &ThreadMark, now: &ThreadMark) -> bool {
    match (before.start_ticks, now.start_ticks) {
        (Some(b), Some(n)) => b == n,
        _ => before.name == now.name,
    }
}

/// CPU a thread may use between two reports and still count as not moved: what the capture
/// signal's handler may leave behind (the thread finishing its interrupted call after the
/// capture's last read).
pub(crate) const STILL_CPU_NS: u64 = 1_000_000;

/// The same stack, and neither CPU time nor scheduling count moved between the end of the
/// previous capture and the start of this one (beyond what the previous capture's signal
/// handler may leave behind: [`STILL_CPU_NS`] and one more run).
fn did_not_move(before: &ThreadMark, now: &ThreadMark) -> bool {
    let same_stack = now.stack_hash.is_some() && now.stack_hash == before.stack_hash;
    let still_cpu = match (before.cpu_ns_after.or(before.cpu_ns), now.cpu_ns) {
        (Some(b), Some(n)) => n.saturating_sub(b) < STILL_CPU_NS,
        _ => false,
    };
    let still_runs = match (before.runs_after.or(before.runs), now.runs) {
        (Some(b), Some(n)) => n.saturating_sub(b) <= 1,
        _ => true,
    };
    same_stack && still_cpu && still_runs
}

/// CPU used between the end of the previous capture and the start of this one.
fn cpu_between_ms(before: &ThreadMark, now: &ThreadMark) -> u64 {
    before
        .cpu_ns_after
        .or(before.cpu_ns)
        .zip(now.cpu_ns)
        .map_or(0, |(b, n)| n.saturating_sub(b) / 1_000_000)
}

fn label(t: &ThreadMark) -> String {
    format!("#{} \"{}\"", t.tid, t.name)
}

fn churn(mut threads: Vec<String>) -> ThreadChurn {
    let count = threads.len();
    threads.truncate(LISTED);
    ThreadChurn { count, threads }
}

#[cfg(test)]
mod tests {
    use super::super::summary::RequestMark;
    use super::*;

    fn mark(tid: i32, stack: u64, cpu_ms: u64, runs: u64, idle: bool) -> ThreadMark {
        ThreadMark {
            tid,
            start_ticks: Some(100 + tid as u64),
            name: format!("t{tid}"),
            stack_hash: Some(stack),
            cpu_ns: Some(cpu_ms * 1_000_000),
            cpu_ns_after: Some(cpu_ms * 1_000_000 + 20_000),
            runs: Some(runs),
            runs_after: Some(runs + 1),
            idle,
            own: false,
            unchanged_since_ms: 0,
            unchanged_since: String::new(),
        }
    }

    fn summary(at_ms: u64, threads: Vec<ThreadMark>) -> ThreadsSummary {
        let at = format!("t={at_ms}");
        ThreadsSummary {
            at_ms,
            at: at.clone(),
            threads: threads
                .into_iter()
                .map(|mut t| {
                    t.unchanged_since_ms = at_ms;
                    t.unchanged_since = at.clone();
                    t
                })
                .collect(),
            not_kept: 0,
        }
    }

    #[test]
    fn blocked_is_stuck_spinning_is_busy_idle_is_neither() {
        let first = summary(
            1_000,
            vec![
                mark(1, 7, 50, 10, false), // blocked
                mark(2, 8, 50, 10, false), // spinning
                mark(3, 9, 50, 10, true),  // idle pool thread
                mark(4, 5, 50, 10, false), // short sleeps
                mark(5, 5, 50, 10, false), // exits
                mark(6, 5, 50, 10, false), // TID reused below
            ],
        );
        let mut second = summary(
            6_000,
            vec![
                mark(1, 7, 50, 10, false),
                mark(2, 8, 5_000, 900, false),
                mark(3, 9, 50, 10, true),
                mark(4, 5, 51, 60, false),
                ThreadMark {
                    start_ticks: Some(999),
                    ..mark(6, 5, 50, 10, false)
                },
                mark(7, 5, 0, 1, false),
            ],
        );
        let since = threads(&first, &mut second);
        assert_eq!(since.interval_ms, 5_000);
        assert_eq!(since.stuck.len(), 1, "{since:?}");
        assert_eq!((since.stuck[0].tid, since.stuck[0].stuck_ms), (1, 5_000));
        assert_eq!(since.busy.len(), 1);
        assert_eq!((since.busy[0].tid, since.busy[0].cpu_percent), (2, 98));
        assert_eq!(since.idle, 1);
        assert_eq!(since.moved, 1, "the short sleeper moved");
        assert_eq!(
            since.appeared.count, 2,
            "#6 is a new thread on a reused TID, and #7"
        );
        assert_eq!(since.vanished.count, 2);

        // A third report: Δt runs from the first report that saw it unchanged.
        let mut third = summary(9_000, vec![mark(1, 7, 50, 10, false)]);
        let since = threads(&second, &mut third);
        assert_eq!(since.stuck[0].stuck_ms, 8_000);
        assert_eq!(since.stuck[0].since, "t=1000");
        // Once it moves, it is no longer stuck and its clock restarts.
        let mut fourth = summary(10_000, vec![mark(1, 3, 50, 11, false)]);
        let since = threads(&third, &mut fourth);
        assert!(since.stuck.is_empty());
        assert_eq!(fourth.threads[0].unchanged_since_ms, 10_000);
    }

    fn request(id: u64, at_ms: u64) -> RequestMark {
        RequestMark {
            id,
            what: format!("GET /r{id}"),
            seen_since_ms: at_ms,
            seen_since: format!("t={at_ms}"),
            age_ms: 1,
        }
    }

    #[test]
    fn requests_in_both_are_in_flight_since_the_first_report_that_saw_them() {
        let first = GreenSummary {
            at_ms: 1_000,
            at: "t=1000".into(),
            requests: vec![request(1, 1_000), request(2, 1_000)],
            tasks: vec![("axum".into(), Some(vec![1, 2, 3])), ("other".into(), None)],
        };
        let mut second = GreenSummary {
            at_ms: 4_000,
            at: "t=4000".into(),
            requests: vec![request(2, 4_000), request(3, 4_000)],
            tasks: vec![
                ("axum".into(), Some(vec![2, 3, 4, 5])),
                ("other".into(), Some(vec![1])),
            ],
        };
        let since = green(&first, &mut second);
        assert_eq!(since.requests.len(), 1);
        assert_eq!(
            (since.requests[0].id, since.requests[0].in_flight_ms),
            (2, 3_000)
        );
        assert_eq!((since.requests_finished, since.requests_new), (1, 1));
        assert_eq!(
            since.tasks,
            vec![TaskChurn {
                runtime: "axum".into(),
                common: 2,
                appeared: 2,
                vanished: 1
            }],
            "a runtime without a dump in one report is not compared"
        );
        let mut third = GreenSummary {
            at_ms: 9_000,
            ..second.clone()
        };
        let since = green(&second, &mut third);
        assert_eq!(since.requests[0].in_flight_ms, 8_000);
    }
}
