//! `gmr view`: a JSON report rendered as the process would have rendered it, by gmr's own
//! renderers (`gmr::Report::from_json`, then `gmr::Report::render`).

use std::path::PathBuf;

use gmr::OutputFormat;

use crate::error::CliError;
use crate::{formats, load, output};

const EXAMPLES: &str = "\
Examples:
  gmr view billing_gurumeditation_20261126T031415_web-3_4242_1.json
  gmr view report.json | less                # the 72-column text an operator knows
  gmr view report.json --format json         # the JSON, normalised
  gmr view report.json --format html > report.html   # the page, with its flame graph
  curl -s -H @auth http://127.0.0.1:8080/admin/gmr?format=json | gmr view -";

/// Render a JSON report exactly as the process would have.
///
/// The same renderers as in the process (the text view by default), from the report's JSON.
#[derive(Debug, clap::Args)]
#[command(before_help = EXAMPLES)]
pub(crate) struct Args {
    /// The report: a JSON report file (`format = "json"`, or `?format=json` from the admin
    /// endpoint), or `-` for standard input.
    report: PathBuf,
    #[arg(long, short, default_value = "text", value_parser = formats::parse, help = formats::help("The view to render"))]
    format: OutputFormat,
    /// Write to this new file (mode 0600; never replaces one) instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Runs `gmr view`.
///
/// # Errors
///
/// The report cannot be read, or the output cannot be written.
pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let loaded = load::load(&args.report)?;
    let rendered = loaded.report.render(args.format);
    output::write(args.output.as_deref(), rendered.as_bytes())
}
