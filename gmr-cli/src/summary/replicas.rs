//! Which report stands for each replica, and which replicas are late.
//!
//! A replica is a process: the `host` and `pid` of its reports' header (two replicas may share
//! a `service_name`, or not). Its newest report stands for it; the report is of this round
//! when it was generated at or after the trigger (`--since`, to the second, as reports give
//! `generated_at`), or, without `--since`, within `--window` of the newest report of all.

use std::collections::BTreeMap;
use std::time::Duration;

use time::OffsetDateTime;

use super::inputs::Input;

/// One replica and its newest report.
#[derive(Debug)]
pub(crate) struct Replica {
    /// `host:pid`.
    pub(crate) label: String,
    /// Its newest report.
    pub(crate) report: Input,
    /// How many older reports of it were read (and left out).
    pub(crate) older: usize,
}

/// The replicas of one round.
#[derive(Debug)]
pub(crate) struct Round {
    /// Replicas with a report of this round, by label.
    pub(crate) fresh: Vec<Replica>,
    /// Replicas whose newest report is older than the round.
    pub(crate) stale: Vec<Replica>,
    /// The time a report of this round is generated at or after.
    pub(crate) cut: OffsetDateTime,
    /// Whether `cut` was inferred (no `--since`).
    pub(crate) inferred: bool,
}

/// Splits `reports` into replicas and a round starting at `since`, or `window` before the
/// newest report.
pub(crate) fn round(reports: Vec<Input>, since: Option<OffsetDateTime>, window: Duration) -> Round {
    let mut by_replica: BTreeMap<(String, u32), Vec<Input>> = BTreeMap::new();
    for report in reports {
        by_replica
            .entry((report.header.host.clone(), report.header.pid))
            .or_default()
            .push(report);
    }
    let newest_of_all = by_replica
        .values()
        .flatten()
        .map(|r| r.at)
        .max()
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let (cut, inferred) = match since {
        Some(since) => (since.replace_nanosecond(0).unwrap_or(since), false),
        None => (newest_of_all - window, true),
    };
    let mut fresh = Vec::new();
    let mut stale = Vec::new();
    for ((host, pid), mut reports) in by_replica {
        // Newest last: by time, then by file name (its sequence number breaks a tie).
        reports.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.path.cmp(&b.path)));
        let older = reports.len() - 1;
        let Some(report) = reports.pop() else {
            continue;
        };
        let replica = Replica {
            label: format!("{host}:{pid}"),
            report,
            older,
        };
        if replica.report.at >= cut {
            fresh.push(replica);
        } else {
            stale.push(replica);
        }
    }
    Round {
        fresh,
        stale,
        cut,
        inferred,
    }
}
