//! `gmr symbolize`: names for the frames of a report of a stripped binary, from the debug
//! files of its build (found by the build-ids the report lists), with gmr's own symbolizer
//! (`gmr::symbolize`). The output is the report's JSON with those frames named; everything
//! else in it is kept.

use std::path::PathBuf;

use crate::error::CliError;
use crate::{load, output};

const EXAMPLES: &str = "\
Examples:
  gmr symbolize report.json --debug-dir /srv/debug > named.json && gmr view named.json
  objcopy --only-keep-debug billing-api billing-api.debug   # at build time, kept per release
  gmr symbolize report.json --debug-dir ./release-1.4.2/ -o named.json";

/// The debug directory always searched, after those given (gdb's default).
const SYSTEM_DEBUG_DIR: &str = "/usr/lib/debug";

/// Name the frames of a stripped binary's report from the debug files of its build.
///
/// Fills in function, file and line from `module+offset`, with gmr's own symbolizer, from
/// the files of the exact build (found by build-id). In each --debug-dir, a module's files are found as .build-id/xx/yyyy.debug (gdb's layout),
/// as <module> (an unstripped copy) or <module>.debug; and at the module's own path when the
/// file there is of the same build. /usr/lib/debug is searched too. Writes the report's JSON
/// with those frames named; says on stderr what it named and why other frames stay unnamed.
#[derive(Debug, clap::Args)]
#[command(before_help = EXAMPLES)]
pub(crate) struct Args {
    /// The report: a JSON report file, or `-` for standard input.
    report: PathBuf,
    /// A directory of debug files (repeat for several).
    #[arg(long = "debug-dir", value_name = "DIR")]
    debug_dirs: Vec<PathBuf>,
    /// Write to this new file (mode 0600; never replaces one) instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Runs `gmr symbolize`.
///
/// # Errors
///
/// The report cannot be read, or the output cannot be written.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let loaded = load::load(&args.report)?;
    let mut doc = loaded.doc;
    let mut dirs = args.debug_dirs.clone();
    if !dirs
        .iter()
        .any(|d| d.as_path() == std::path::Path::new(SYSTEM_DEBUG_DIR))
    {
        dirs.push(PathBuf::from(SYSTEM_DEBUG_DIR));
    }
    let mut symbolizer = gmr::symbolize::OfflineSymbolizer::new(dirs);
    let done = gmr::symbolize::symbolize_report(&mut doc, &mut symbolizer).map_err(|source| {
        CliError::NotAReport {
            path: loaded.path.clone(),
            source,
        }
    })?;
    let mut json = serde_json::to_string_pretty(&doc).map_err(|e| CliError::Write {
        what: "the report".to_owned(),
        source: std::io::Error::other(e),
    })?;
    json.push('\n');
    output::write(args.output.as_deref(), json.as_bytes())?;
    for (module, file) in &done.debug_files {
        eprintln!("gmr: {module}: debug information from {}", file.display());
    }
    eprintln!(
        "gmr: {} frames named, {} still without a name",
        done.named, done.unnamed
    );
    for problem in &done.problems {
        eprintln!("gmr: {problem}");
    }
    Ok(())
}

/// `gmr symbolize` where gmr does not capture stacks.
///
/// # Errors
///
/// Always: not supported here.
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let _ = (load::load(&args.report)?, SYSTEM_DEBUG_DIR, output::write);
    Err(CliError::Usage(
        "gmr symbolize runs on Linux x86_64 and aarch64, where gmr captures stacks".to_owned(),
    ))
}
