//! `gmr diff`: two JSON reports of one process compared by the rules the process applies
//! between its own reports ("since the last report": `gmr::since`).

use std::path::PathBuf;

use crate::error::CliError;
use crate::{load, output};

const EXAMPLES: &str = "\
Examples:
  gmr diff billing_gurumeditation_20261126T031415_web-3_4242_1.json \\
           billing_gurumeditation_20261126T031425_web-3_4242_2.json
  gmr diff old.json new.json --format json | jq '.threads.stuck'
  gmr diff old.json - < new.json";

/// How `gmr diff` writes the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DiffFormat {
    /// The lines a report shows at the top of Threads and Green Threads.
    Text,
    /// `threads` and `green_threads` shaped as a report's `threads.since` and
    /// `green_threads.since`.
    Json,
}

/// Compare two reports of one process: what did not move between them.
///
/// Threads with the same stack that did not run at all and are not idle are STUCK, for at
/// least the time between the reports; threads that used CPU are busy; requests in both are
/// in flight; threads and tasks that came and went are counted. The same rules as the
/// "since the last report" part of every report after a process's first.
#[derive(Debug, clap::Args)]
#[command(before_help = EXAMPLES)]
pub(crate) struct Args {
    /// The older JSON report, or `-` for standard input.
    old: PathBuf,
    /// The newer JSON report of the same process, or `-` for standard input.
    new: PathBuf,
    /// `text` (default) or `json`.
    #[arg(long, short, value_enum, default_value_t = DiffFormat::Text)]
    format: DiffFormat,
    /// Write to this new file (mode 0600; never replaces one) instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Runs `gmr diff`.
///
/// # Errors
///
/// A report cannot be read, the two are not of one process or come newest first, or the output
/// cannot be written.
pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    if args.old.as_os_str() == "-" && args.new.as_os_str() == "-" {
        return Err(CliError::Usage(
            "only one of the two reports can be read from standard input".to_owned(),
        ));
    }
    let old = load::load(&args.old)?;
    let new = load::load(&args.new)?;
    let diff = gmr::since::diff(&old.doc, &new.doc).map_err(|e| CliError::NotComparable {
        old: args.old.clone(),
        new: args.new.clone(),
        reason: e.to_string(),
    })?;
    let rendered = match args.format {
        DiffFormat::Text => diff.to_text(),
        DiffFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&diff.to_json()).map_err(|e| CliError::Write {
                    what: "the comparison as JSON".to_owned(),
                    source: std::io::Error::other(e),
                })?;
            text.push('\n');
            text
        }
    };
    output::write(args.output.as_deref(), rendered.as_bytes())
}
