//! [`LogDirSink`]: report files in `log_dir`, created atomically with mode 0600, and their
//! retention.
//!
//! A file is written under a temporary name, with mode 0600, and then linked to its final name
//! without ever replacing or following what is there, so readers never see half a report and a
//! planted symlink is refused. After each file, the oldest files of the service beyond
//! `max_reports` are removed; another process's reports only once they are a minute old, so
//! replicas answering one touch of a shared trigger file never delete each other's reports.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::naming::{INFIX, sanitize_name};
use super::{Delivery, OutgoingReport, Sink, SinkError};
use crate::report::{OutputFormat, ReportHeader};

/// Writes each report to a file of its own in a directory, keeping the newest `max_reports`
/// of the service.
#[derive(Debug, Clone)]
pub struct LogDirSink {
    dir: PathBuf,
    service: String,
    max_reports: usize,
}

impl LogDirSink {
    /// Reports of `service` in `dir`, at most `max_reports` of them kept.
    pub fn new(dir: impl Into<PathBuf>, service: impl Into<String>, max_reports: usize) -> Self {
        LogDirSink {
            dir: dir.into(),
            service: service.into(),
            max_reports: max_reports.max(1),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Sink for LogDirSink {
    fn name(&self) -> &str {
        "log_dir"
    }

    fn deliver(&self, report: &OutgoingReport<'_>) -> Result<Delivery, SinkError> {
        let path = write_report_file(&self.dir, report.file_name(), report.body().as_bytes())
            .map_err(|error| SinkError::Unwritable {
                destination: self.dir.clone(),
                reason: error.to_string(),
            })?;
        enforce_retention(&self.dir, report.header(), &self.service, self.max_reports);
        Ok(Delivery::File(path))
    }
}

/// Why a file in `log_dir` could not be written.
#[derive(Debug, thiserror::Error)]
pub(super) enum FileError {
    #[error("{path} is not a usable directory: {source}")]
    Directory {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("refusing to write {path}: something already exists at that name (a symlink?)")]
    Exists { path: PathBuf },
}

/// Writes `contents` to `dir/name` atomically: a temporary file (created exclusively, never
/// following a symlink, mode 0600) is written and synced, then hard-linked to the final name,
/// which fails rather than replace anything already there.
pub(super) fn write_report_file(
    dir: &Path,
    name: &str,
    contents: &[u8],
) -> Result<PathBuf, FileError> {
    let meta = fs::metadata(dir).map_err(|source| FileError::Directory {
        path: dir.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(FileError::Directory {
            path: dir.to_owned(),
            source: io::Error::new(io::ErrorKind::NotADirectory, "not a directory"),
        });
    }
    let final_path = dir.join(name);
    let temp_path = dir.join(format!(".{name}.tmp"));
    let result = write_temp(&temp_path, contents).and_then(|()| publish(&temp_path, &final_path));
    // The temporary name is removed in every case; it may already be gone.
    let _ = fs::remove_file(&temp_path);
    result.map(|()| final_path)
}

fn write_temp(temp_path: &Path, contents: &[u8]) -> Result<(), FileError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(temp_path)
        .map_err(|source| FileError::Create {
            path: temp_path.to_owned(),
            source,
        })?;
    let write_error = |source| FileError::Write {
        path: temp_path.to_owned(),
        source,
    };
    // The umask may have removed bits, never added: make the mode exactly 0600.
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(write_error)?;
    file.write_all(contents).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}

/// Gives the temporary file its final name without replacing anything.
fn publish(temp_path: &Path, final_path: &Path) -> Result<(), FileError> {
    match fs::hard_link(temp_path, final_path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(FileError::Exists {
            path: final_path.to_owned(),
        }),
        Err(_) => {
            // A filesystem without hard links: check, then rename (rename never follows a
            // symlink at the target; the name holds a pid and a sequence number, so only a
            // planted entry can be there).
            if fs::symlink_metadata(final_path).is_ok() {
                return Err(FileError::Exists {
                    path: final_path.to_owned(),
                });
            }
            fs::rename(temp_path, final_path).map_err(|source| FileError::Write {
                path: final_path.to_owned(),
                source,
            })
        }
    }
}

/// How old another process's report must be before this process may remove it for
/// `max_reports`: replicas that answer one touch of a shared trigger file at the same moment
/// must not delete each other's fresh reports.
const OTHERS_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the oldest report files of `service` in `dir` beyond `max_reports`. Files of other
/// services, temporary files and anything that is not a regular file are left alone; so are
/// reports of other processes (other host or pid) younger than [`OTHERS_GRACE`]. Oldest is by
/// modification time, then by name.
fn enforce_retention(dir: &Path, header: &ReportHeader, service: &str, max_reports: usize) {
    let prefix = format!("{}{INFIX}", sanitize_name(service));
    let own = format!("_{}_{}_", sanitize_name(&header.host), header.pid);
    let now = std::time::SystemTime::now();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(log_dir = %dir.display(), %error, "gmr cannot list log_dir for retention");
            return;
        }
    };
    let mut reports: Vec<(std::time::SystemTime, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let is_report = name.starts_with(&prefix)
                && OutputFormat::ALL.iter().any(|f| {
                    name.strip_suffix(f.extension())
                        .is_some_and(|n| n.ends_with('.'))
                });
            if !is_report {
                return None;
            }
            let meta = entry.metadata().ok()?;
            meta.is_file()
                .then(|| (meta.modified().unwrap_or(std::time::UNIX_EPOCH), name))
        })
        .collect();
    if reports.len() <= max_reports {
        return;
    }
    reports.sort();
    let excess = reports.len() - max_reports;
    let removable = reports.into_iter().take(excess).filter(|(modified, name)| {
        name.contains(&own)
            || now
                .duration_since(*modified)
                .is_ok_and(|age| age >= OTHERS_GRACE)
    });
    for (_, name) in removable {
        let path = dir.join(&name);
        match fs::remove_file(&path) {
            Ok(()) => {
                tracing::debug!(path = %path.display(), "gmr removed an old report (max_reports)")
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "gmr cannot remove an old report")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::naming::tests::header;

    #[test]
    fn writes_with_mode_0600_and_no_temp_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_report_file(dir.path(), "a.txt", b"hello").expect("written");
        assert_eq!(fs::read(&path).expect("read"), b"hello");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("a.txt")]);
    }

    #[test]
    fn refuses_a_symlink_at_the_final_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").expect("victim");
        std::os::unix::fs::symlink(&victim, dir.path().join("r.txt")).expect("symlink");
        let error = write_report_file(dir.path(), "r.txt", b"report").expect_err("refused");
        assert!(matches!(error, FileError::Exists { .. }), "{error}");
        assert_eq!(fs::read(&victim).expect("victim"), b"precious");
        assert!(!dir.path().join(".r.txt.tmp").exists());
    }

    #[test]
    fn refuses_a_symlink_at_the_temporary_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").expect("victim");
        std::os::unix::fs::symlink(&victim, dir.path().join(".t.txt.tmp")).expect("symlink");
        assert!(write_report_file(dir.path(), "t.txt", b"report").is_err());
        assert_eq!(fs::read(&victim).expect("victim"), b"precious");
    }

    #[test]
    fn missing_dir_and_file_as_dir_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            write_report_file(&dir.path().join("missing"), "x.txt", b""),
            Err(FileError::Directory { .. })
        ));
        let file = dir.path().join("file");
        fs::write(&file, b"").expect("file");
        assert!(matches!(
            write_report_file(&file, "x.txt", b""),
            Err(FileError::Directory { .. })
        ));
    }

    #[test]
    fn retention_keeps_the_newest_of_this_service_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = std::time::SystemTime::now() - std::time::Duration::from_secs(1000);
        for i in 0..6u64 {
            let name = format!("svc_gurumeditation_2026_web-1.example_4242_{i}.txt");
            let path = dir.path().join(&name);
            fs::write(&path, b"r").expect("write");
            let file = fs::File::options().write(true).open(&path).expect("open");
            file.set_modified(base + std::time::Duration::from_secs(i))
                .expect("mtime");
        }
        fs::write(dir.path().join("other_gurumeditation_x.txt"), b"o").expect("other");
        fs::write(dir.path().join("svc_gurumeditation_notes.md"), b"n").expect("notes");
        enforce_retention(dir.path(), &header(), "svc", 2);
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "other_gurumeditation_x.txt",
                "svc_gurumeditation_2026_web-1.example_4242_4.txt",
                "svc_gurumeditation_2026_web-1.example_4242_5.txt",
                "svc_gurumeditation_notes.md",
            ]
        );
    }

    #[test]
    fn retention_spares_fresh_reports_of_other_replicas() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let write = |name: &str, modified: std::time::SystemTime| {
            let path = dir.path().join(name);
            fs::write(&path, b"r").expect("write");
            fs::File::options()
                .write(true)
                .open(&path)
                .expect("open")
                .set_modified(modified)
                .expect("mtime");
        };
        // An old report of another replica, fresh ones of two others, and ours.
        write("svc_gurumeditation_1_web-9_77_1.txt", old);
        write(
            "svc_gurumeditation_2_web-2_88_1.txt",
            std::time::SystemTime::now(),
        );
        write(
            "svc_gurumeditation_2_web-3_99_1.txt",
            std::time::SystemTime::now(),
        );
        write(
            "svc_gurumeditation_2_web-1.example_4242_1.txt",
            std::time::SystemTime::now(),
        );
        enforce_retention(dir.path(), &header(), "svc", 1);
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        // The old one goes; the other replicas' fresh reports stay even beyond max_reports.
        assert_eq!(
            names,
            vec![
                "svc_gurumeditation_2_web-1.example_4242_1.txt",
                "svc_gurumeditation_2_web-2_88_1.txt",
                "svc_gurumeditation_2_web-3_99_1.txt",
            ]
        );
    }
}
