//! Where a command's result goes: standard output, or a new file (`--output`) created mode
//! 0600 without following a symbolic link and without replacing anything.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use crate::error::CliError;

/// Writes `bytes` to `output`, or to standard output when there is none. A closed standard
/// output (`gmr view r.json | head`) is not an error.
///
/// # Errors
///
/// [`CliError::Refused`] when the file exists; [`CliError::Write`] when writing fails.
pub(crate) fn write(output: Option<&Path>, bytes: &[u8]) -> Result<(), CliError> {
    match output {
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
                Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                    Err(CliError::Write {
                        what: "standard output".to_owned(),
                        source: error,
                    })
                }
                _ => Ok(()),
            }
        }
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(path)
                .map_err(|error| match error.kind() {
                    std::io::ErrorKind::AlreadyExists => CliError::Refused(format!(
                        "{} exists; gmr never replaces a file: remove it or choose another name",
                        path.display()
                    )),
                    _ => CliError::Write {
                        what: path.display().to_string(),
                        source: error,
                    },
                })?;
            file.write_all(bytes)
                .and_then(|()| file.sync_all())
                .map_err(|source| CliError::Write {
                    what: path.display().to_string(),
                    source,
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn files_are_new_private_and_never_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.json");
        write(Some(&path), b"{}\n").expect("written");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let error = write(Some(&path), b"again").expect_err("exists");
        assert_eq!(error.exit_code(), crate::error::ExitCode::Refused);
        assert_eq!(std::fs::read(&path).expect("read"), b"{}\n");
        // Not through a dangling link either.
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).expect("symlink");
        assert!(write(Some(&link), b"x").is_err());
        assert!(!dir.path().join("elsewhere").exists());
    }
}
