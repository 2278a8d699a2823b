//! `gmr trigger`: one report from every process watching a trigger file
//! (`file_event_handler`), by changing the file safely.
//!
//! `touch` follows symbolic links and creates files through dangling ones: whoever can plant a
//! link in a shared directory decides which file gets created or has its times changed. Here
//! nothing is done through a link. A missing file is created with `O_CREAT | O_EXCL |
//! O_NOFOLLOW` (as gmr creates it at install); an existing one must be a regular file, checked
//! before it is opened (opening a device or a FIFO can have effects of its own) and again on
//! the descriptor, opened with `O_NOFOLLOW | O_NONBLOCK`; its modification time is set through
//! that descriptor. The watchers see the change (their poll compares size, times and inode) at
//! their next poll, `file_event_handler_interval` later.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::CliError;

const EXAMPLES: &str = "\
Examples:
  gmr trigger /shared/gmr_trigger            # every replica watching it writes a report
  gmr trigger /shared/gmr_trigger && sleep 5 && gmr summary /shared/reports/";

/// Touch a trigger file safely: every process watching it writes a report.
///
/// The file is the processes' `file_event_handler`. Never follows a symbolic link and never creates a file through one; a missing file is
/// created (mode 0600). Prints the time of the change, which `gmr summary --since` takes.
#[derive(Debug, clap::Args)]
#[command(before_help = EXAMPLES)]
pub(crate) struct Args {
    /// The trigger file: the `file_event_handler` of the processes.
    path: PathBuf,
}

/// What was done to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Touched {
    /// It existed; its modification time is now.
    Updated,
    /// It did not exist and was created.
    Created,
}

/// Runs `gmr trigger`.
///
/// # Errors
///
/// [`CliError::Refused`] for a symbolic link or anything but a regular file;
/// [`CliError::Write`] when the file cannot be changed or created.
pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let at = SystemTime::now();
    let touched = touch(&args.path)?;
    let when = rfc3339(at);
    let what = match touched {
        Touched::Updated => "touched",
        Touched::Created => "created",
    };
    println!("{what} {} at {when}", args.path.display());
    println!("reports follow within the watchers' file_event_handler_interval; then:");
    println!("  gmr summary --since {when} <log_dir>");
    Ok(())
}

/// Changes `path`'s modification time, or creates it, never through a symbolic link.
///
/// # Errors
///
/// As [`run`].
pub(crate) fn touch(path: &Path) -> Result<Touched, CliError> {
    let write_error = |source: io::Error| CliError::Write {
        what: path.display().to_string(),
        source,
    };
    // Twice at most: a file that appears between the check and the creation is checked again.
    for _ in 0..2 {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(path)
                    .map_or_else(|_| "?".to_owned(), |t| t.display().to_string());
                return Err(CliError::Refused(format!(
                    "{} is a symbolic link (to {target}); gmr trigger never changes or creates \
                     a file through a link: give the file itself",
                    path.display()
                )));
            }
            Ok(meta) if meta.is_file() => {
                let file = OpenOptions::new()
                    .write(true)
                    .custom_flags(
                        libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
                    )
                    .open(path)
                    .map_err(|error| refused_or(path, error))?;
                let meta = file.metadata().map_err(write_error)?;
                if !meta.is_file() {
                    return Err(not_regular(path, meta.file_type()));
                }
                file.set_modified(SystemTime::now()).map_err(write_error)?;
                return Ok(Touched::Updated);
            }
            Ok(meta) => return Err(not_regular(path, meta.file_type())),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                match OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(path)
                {
                    Ok(_) => return Ok(Touched::Created),
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(error) => return Err(write_error(error)),
                }
            }
            Err(error) => return Err(write_error(error)),
        }
    }
    Err(CliError::Refused(format!(
        "{} keeps changing while gmr checks it; make it a regular file",
        path.display()
    )))
}

/// The error of opening an existing file: `ELOOP` means it became a link meanwhile.
fn refused_or(path: &Path, error: io::Error) -> CliError {
    if error.raw_os_error() == Some(libc::ELOOP) {
        CliError::Refused(format!(
            "{} became a symbolic link while gmr checked it; it is left alone",
            path.display()
        ))
    } else {
        CliError::Write {
            what: path.display().to_string(),
            source: error,
        }
    }
}

/// The refusal of `path`, which is not a regular file.
fn not_regular(path: &Path, file_type: fs::FileType) -> CliError {
    let kind = if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    CliError::Refused(format!(
        "{} is {kind}; a trigger file is a regular file",
        path.display()
    ))
}

/// `at` as RFC 3339 in UTC, to the second (as reports write `generated_at`).
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    let at = at.replace_nanosecond(0).unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    use std::time::Duration;

    use super::*;
    use crate::error::ExitCode;

    #[test]
    fn an_existing_file_gets_a_new_mtime_a_missing_one_is_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("trigger");
        assert_eq!(touch(&path).expect("created"), Touched::Created);
        let meta = fs::metadata(&path).expect("stat");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let old = SystemTime::now() - Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(old))
            .expect("age the file");
        let before = fs::metadata(&path).expect("stat");
        assert_eq!(touch(&path).expect("touched"), Touched::Updated);
        let after = fs::metadata(&path).expect("stat");
        assert!(after.modified().expect("mtime") > before.modified().expect("mtime"));
        assert_eq!(after.ino(), before.ino(), "the same file, not a new one");
        assert_eq!(after.len(), 0, "nothing written into it");
    }

    #[test]
    fn links_and_other_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A dangling link: nothing is created where it points.
        let target = dir.path().join("planted");
        let link = dir.path().join("trigger");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let error = touch(&link).expect_err("refused");
        assert_eq!(error.exit_code(), ExitCode::Refused);
        assert!(error.to_string().contains("is a symbolic link"), "{error}");
        assert!(!target.exists());
        // A link to a regular file: its times are not changed.
        fs::write(&target, "").expect("target");
        let old = SystemTime::now() - Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&target)
            .and_then(|f| f.set_modified(old))
            .expect("age");
        assert!(touch(&link).is_err());
        let mtime = fs::metadata(&target)
            .and_then(|m| m.modified())
            .expect("mtime");
        assert!(mtime <= old + Duration::from_secs(1));
        // A directory and a FIFO.
        let error = touch(dir.path()).expect_err("a directory");
        assert!(error.to_string().contains("is a directory"), "{error}");
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(status.success());
        let error = touch(&fifo).expect_err("a FIFO");
        assert!(error.to_string().contains("is a FIFO"), "{error}");
    }
}
