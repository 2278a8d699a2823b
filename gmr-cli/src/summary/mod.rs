//! `gmr summary`: the reports of many replicas merged into one view: per stack group (threads
//! and tasks) on how many replicas it is and how many threads or tasks have it, the oldest
//! requests in flight fleet-wide with their replica, the replicas whose report is missing or
//! older than the trigger, and the versions of the service seen. Text for a person in a hurry
//! (the oldest requests and the dominant groups first), `--format json` for pipelines.
//!
//! See [`replicas`] for what a replica is and which of its reports stands for it, and
//! [`groups`] for how stacks are matched across replicas and builds.

mod groups;
mod inputs;
mod replicas;
mod requests;
mod text;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use self::groups::Group;
use self::replicas::{Replica, Round};
use self::requests::Request;
use crate::error::CliError;
use crate::output;

const EXAMPLES: &str = "\
Examples:
  gmr summary /var/log/billing/                         # every JSON report in log_dir
  gmr summary --since 2026-11-26T03:14:00Z /shared/reports/
  gmr summary --expect 40 /shared/reports/ | less       # name the replicas that did not answer
  gmr summary --format json /shared/reports/*.json | jq '.thread_groups[0]'";

/// The version of `--format json`'s document; bumped on a breaking change.
pub(crate) const SUMMARY_VERSION: u32 = 1;

/// Merge the reports of many replicas into one view.
///
/// Stack groups with the number of replicas and of threads or tasks with each, the oldest
/// requests in flight fleet-wide, replicas whose report is missing or late, versions. Reads JSON reports (`format = "json"`): files, and directories (`log_dir`) of
/// *_gurumeditation_*.json. A replica is a process (host and pid of the report); its newest
/// report stands for it. Stacks are matched across replicas by function names and file:line,
/// never by address (see docs/cli.md).
#[derive(Debug, clap::Args)]
#[command(before_help = EXAMPLES)]
pub(crate) struct Args {
    /// Report files and directories of report files.
    #[arg(required = true, value_name = "DIR|FILE")]
    paths: Vec<PathBuf>,
    /// The time of the trigger (RFC 3339, as `gmr trigger` prints it): replicas whose newest
    /// report is older are listed as late and left out of the merge. Without it, the round is
    /// the --window before the newest report.
    #[arg(long, value_parser = parse_since, value_name = "TIME")]
    since: Option<OffsetDateTime>,
    /// Without --since: how long before the newest report a report still belongs to the round.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    window: u64,
    /// How many replicas should have answered: the others are counted as missing.
    #[arg(long, value_name = "N")]
    expect: Option<usize>,
    /// `text` (for a person) or `json` (for pipelines; every group and request).
    #[arg(long, short, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    /// Text: how many groups of each kind and how many requests to show.
    #[arg(long, default_value_t = 10, value_name = "N")]
    top: usize,
    /// Write to this new file (mode 0600; never replaces one) instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

fn parse_since(text: &str) -> Result<OffsetDateTime, String> {
    inputs::parse_time(text)
        .ok_or_else(|| format!("`{text}` is not an RFC 3339 time such as 2026-11-26T03:14:15Z"))
}

/// The merged view, as `--format json` writes it.
#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    /// [`SUMMARY_VERSION`].
    pub(crate) summary_version: u32,
    /// Reports generated at or after this time are of the round (RFC 3339).
    pub(crate) round_since: String,
    /// Whether `round_since` was inferred from the newest report and `--window`.
    pub(crate) round_inferred: bool,
    /// Replicas with a report of the round.
    pub(crate) replicas: usize,
    /// `--expect`, if given.
    pub(crate) expected: Option<usize>,
    /// Expected replicas without a report of the round.
    pub(crate) missing: Option<usize>,
    /// The report of each replica of the round.
    pub(crate) reports: Vec<ReportRow>,
    /// Replicas whose newest report is older than the round.
    pub(crate) late: Vec<ReportRow>,
    /// Files that could not be read, with why.
    pub(crate) unreadable: Vec<Unreadable>,
    /// The versions of the service seen, with their replicas.
    pub(crate) versions: Vec<VersionRow>,
    /// Requests in flight on the replicas of the round.
    pub(crate) requests: RequestsPart,
    /// Thread stack groups, on most replicas first.
    pub(crate) thread_groups: Vec<Group>,
    /// Task stack groups, on most replicas first.
    pub(crate) task_groups: Vec<Group>,
    /// Task dumps of the round that gave no stacks (timed out, skipped, unavailable): their
    /// replicas' tasks are in no task group.
    pub(crate) task_dumps_failed: Vec<TaskDumpFailed>,
}

/// A runtime's task dump that gave no stacks.
#[derive(Debug, Serialize)]
pub(crate) struct TaskDumpFailed {
    /// `host:pid`.
    pub(crate) replica: String,
    /// The runtime's name.
    pub(crate) runtime: String,
    /// `timed out`, `skipped`, `unavailable`.
    pub(crate) status: String,
    /// Why, as the report says.
    pub(crate) note: Option<String>,
}

/// One replica's report.
#[derive(Debug, Serialize)]
pub(crate) struct ReportRow {
    /// `host:pid`.
    pub(crate) replica: String,
    /// Host name.
    pub(crate) host: String,
    /// Process id.
    pub(crate) pid: u32,
    /// `service_name`.
    pub(crate) service: String,
    /// The application's version.
    pub(crate) version: String,
    /// When it was generated.
    pub(crate) generated_at: String,
    /// What triggered it.
    pub(crate) trigger: String,
    /// The file.
    pub(crate) file: String,
    /// Older reports of the same replica that were read and left out.
    pub(crate) older_reports: usize,
}

/// A file that could not be read.
#[derive(Debug, Serialize)]
pub(crate) struct Unreadable {
    /// The file.
    pub(crate) file: String,
    /// Why.
    pub(crate) error: String,
}

/// A version of a service and how many replicas run it.
#[derive(Debug, Serialize)]
pub(crate) struct VersionRow {
    /// `service_name`.
    pub(crate) service: String,
    /// The application's version.
    pub(crate) version: String,
    /// Replicas of the round with it.
    pub(crate) replicas: usize,
}

/// The requests in flight.
#[derive(Debug, Serialize)]
pub(crate) struct RequestsPart {
    /// How many, over all replicas of the round.
    pub(crate) in_flight: usize,
    /// How many are stuck in one poll.
    pub(crate) stuck: usize,
    /// Every request, the oldest first.
    pub(crate) oldest: Vec<Request>,
}

/// Runs `gmr summary`.
///
/// # Errors
///
/// No report could be read, or the output cannot be written.
pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let inputs = inputs::read(&args.paths)?;
    let round = replicas::round(inputs.reports, args.since, Duration::from_secs(args.window));
    let summary = summarize(&round, args.expect, inputs.unreadable);
    let mut bytes = if args.format == "json" {
        serde_json::to_string_pretty(&summary).map_err(|e| CliError::Write {
            what: "the summary".to_owned(),
            source: std::io::Error::other(e),
        })?
    } else {
        text::render(&summary, args.top)
    };
    bytes.push('\n');
    output::write(args.output.as_deref(), bytes.as_bytes())
}

/// The merged view of a round.
pub(crate) fn summarize(
    round: &Round,
    expect: Option<usize>,
    unreadable: Vec<(PathBuf, String)>,
) -> Summary {
    let row = |r: &Replica| ReportRow {
        replica: r.label.clone(),
        host: r.report.header.host.clone(),
        pid: r.report.header.pid,
        service: r.report.header.service.clone(),
        version: r.report.header.version.clone(),
        generated_at: r.report.header.generated_at.clone(),
        trigger: r.report.header.trigger.as_str().to_owned(),
        file: r.report.path.display().to_string(),
        older_reports: r.older,
    };
    let mut versions: Vec<VersionRow> = Vec::new();
    for r in &round.fresh {
        let (service, version) = (&r.report.header.service, &r.report.header.version);
        match versions
            .iter_mut()
            .find(|v| &v.service == service && &v.version == version)
        {
            Some(v) => v.replicas += 1,
            None => versions.push(VersionRow {
                service: service.clone(),
                version: version.clone(),
                replicas: 1,
            }),
        }
    }
    versions.sort_by(|a, b| {
        b.replicas
            .cmp(&a.replicas)
            .then_with(|| a.version.cmp(&b.version))
    });
    let requests = requests::in_flight(&round.fresh);
    Summary {
        summary_version: SUMMARY_VERSION,
        round_since: crate::trigger::rfc3339(round.cut.into()),
        round_inferred: round.inferred,
        replicas: round.fresh.len(),
        expected: expect,
        missing: expect.map(|n| n.saturating_sub(round.fresh.len())),
        reports: round.fresh.iter().map(row).collect(),
        late: round.stale.iter().map(row).collect(),
        unreadable: unreadable
            .into_iter()
            .map(|(file, error)| Unreadable {
                file: file.display().to_string(),
                error,
            })
            .collect(),
        versions,
        requests: RequestsPart {
            in_flight: requests.len(),
            stuck: requests.iter().filter(|r| r.stuck()).count(),
            oldest: requests,
        },
        thread_groups: groups::threads(&round.fresh),
        task_groups: groups::tasks(&round.fresh),
        task_dumps_failed: task_dumps_failed(&round.fresh),
    }
}

/// The task dumps of `replicas` whose status is not `ok`.
fn task_dumps_failed(replicas: &[Replica]) -> Vec<TaskDumpFailed> {
    let mut failed = Vec::new();
    for replica in replicas {
        let dumps = replica
            .report
            .doc
            .pointer("/green_threads/tasks")
            .and_then(serde_json::Value::as_array);
        for dump in dumps.into_iter().flatten() {
            let text = |key: &str| dump.get(key).and_then(serde_json::Value::as_str);
            let status = text("status").unwrap_or("unknown");
            if status != "ok" {
                failed.push(TaskDumpFailed {
                    replica: replica.label.clone(),
                    runtime: text("runtime").unwrap_or("?").to_owned(),
                    status: status.to_owned(),
                    note: text("note").map(str::to_owned),
                });
            }
        }
    }
    failed
}
