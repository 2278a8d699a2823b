//! `gmr`: the command line of Guru Meditation Reports (`docs/cli.md`).
//!
//! Each subcommand is one module with its `Args` (clap) and its `run`; this file lists them
//! and turns their errors into messages and exit codes. Adding a subcommand is a module, a
//! variant of [`Command`] and a line of [`run`].
#![forbid(unsafe_code)]
// Printing is this binary's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod diff;
mod error;
mod fetch;
mod formats;
mod http;
mod load;
mod output;
mod summary;
mod symbolize;
mod trigger;
mod view;

use clap::{Parser, Subcommand};

use crate::error::CliError;

const EXAMPLES: &str = "\
Examples:
  gmr view report.json                       # re-render a JSON report as the 72-column text
  gmr diff old.json new.json                 # what did not move between two reports
  gmr summary /var/log/billing/              # merge the reports of every replica
  gmr summary --since 2026-11-26T03:14:00Z /shared/reports/*.json --format json
  gmr symbolize report.json --debug-dir /srv/debug > named.json
  gmr fetch http://127.0.0.1:8080/admin/gmr --token-file ~/.gmr-token
  gmr trigger /shared/gmr_trigger            # one report from every replica watching it";

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  something else failed (writing the output)
  2  the command line is wrong (gmr diff: the two reports are not of one process, or come
     newest first)
  3  a file cannot be read (a report, a token file), or a report is not one gmr reads (not
     JSON: file:line:column, not a report, unknown report_version)
  4  gmr fetch: the endpoint cannot be reached or answered with an error
  5  a path or value is refused (a trigger file that is a symbolic link or not a regular
     file, a token file that is not a regular file, an output file that exists, a token
     that plain HTTP would carry off this machine)

Reports, file names and formats: docs/cli.md and docs/report-format.md.";

/// View, compare, merge, symbolize, fetch and trigger Guru Meditation Reports.
#[derive(Debug, Parser)]
#[command(
    name = "gmr",
    version,
    before_help = EXAMPLES,
    after_help = EXIT_CODES,
    propagate_version = true,
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    View(view::Args),
    Diff(diff::Args),
    Summary(summary::Args),
    Symbolize(symbolize::Args),
    Fetch(fetch::Args),
    Trigger(trigger::Args),
}

/// Runs the command.
fn run(command: &Command) -> Result<(), CliError> {
    match command {
        Command::View(args) => view::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Summary(args) => summary::run(args),
        Command::Symbolize(args) => symbolize::run(args),
        Command::Fetch(args) => fetch::run(args),
        Command::Trigger(args) => trigger::run(args),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(&cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gmr: {error}");
            std::process::ExitCode::from(error.exit_code() as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_help_opens_with_examples() {
        let mut command = Cli::command();
        let help = command.render_help().to_string();
        assert!(help.starts_with("Examples:\n  gmr view"), "{help}");
        assert!(help.contains("Exit codes:"), "{help}");
        for sub in command.get_subcommands_mut() {
            let name = sub.get_name().to_owned();
            let help = sub.render_help().to_string();
            assert!(
                help.starts_with(&format!("Examples:\n  gmr {name}")),
                "{name}: {help}"
            );
        }
    }
}
