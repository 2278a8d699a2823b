//! [`LogDirSink`]: report files in `log_dir`, created atomically with mode 0600, and their
//! retention.
//!
//! A report is written into an unnamed file (`O_TMPFILE`) of the directory, synced, and then
//! given its final name with `linkat` from its descriptor: nobody can open, swap or replace the
//! file before it has its name, readers never see half a report, and an existing name (a
//! planted file or symlink) is refused, never replaced or followed. Where the filesystem has no
//! `O_TMPFILE`, the report goes to a temporary name that cannot be guessed, created
//! exclusively without following links, linked to its final name, and the final name is then
//! checked to be that very file (same device and inode): a swap is detected, never published.
//!
//! A directory that users other than the owner can write without the sticky bit is refused
//! (at install, and again before each report): there anyone could delete or replace a report
//! after it is written. After each file, the oldest files of the service beyond `max_reports`
//! are removed, never the report just written (whatever the other files' modification times);
//! another process's reports only once they are a minute old, so replicas answering one touch
//! of a shared trigger file never delete each other's reports.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::naming::{INFIX, sanitize_name};
use super::{Delivery, OutgoingReport, Sink, SinkError};
use crate::capture::sys;
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
        let unwritable = |error: FileError| SinkError::Unwritable {
            destination: self.dir.clone(),
            reason: error.to_string(),
        };
        let published = write_report_file(&self.dir, report.file_name(), report.body().as_bytes())
            .map_err(unwritable)?;
        enforce_retention(
            &self.dir,
            report.header(),
            &self.service,
            self.max_reports,
            report.file_name(),
        );
        // Never say "written" of a file that is gone (another process's cleanup).
        if !published.still_there() {
            return Err(unwritable(FileError::Gone {
                path: published.path,
            }));
        }
        Ok(Delivery::File(published.path))
    }
}

/// Why `dir` must not hold reports, if it must not: it can be written by users other than its
/// owner (group or others) and has no sticky bit, so they could delete or replace reports.
/// `None` for a directory that is fine, or that cannot be examined (a missing `log_dir` falls
/// back to stderr when a report is written).
pub(crate) fn loose_directory(dir: &Path) -> Option<String> {
    let meta = fs::metadata(dir).ok()?;
    meta.is_dir()
        .then(|| loose_mode(meta.permissions().mode()))
        .flatten()
}

/// The reason a directory of `mode` is refused, or `None`.
fn loose_mode(mode: u32) -> Option<String> {
    let mode = mode & 0o7777;
    (mode & 0o022 != 0 && mode & 0o1000 == 0).then(|| {
        format!(
            "mode {mode:04o}: other users can write it and it has no sticky bit, so they could delete or replace reports; make it writable by its owner only (`chmod go-w`), or set the sticky bit on a shared directory (`chmod +t`)"
        )
    })
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
    #[error("refusing to write to {path}: {reason}")]
    LooseDirectory { path: PathBuf, reason: String },
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
    #[error(
        "refusing {path}: another file took the report's place before it was published (someone else writes to log_dir?)"
    )]
    Replaced { path: PathBuf },
    #[error("{path} was removed right after it was written (another process cleans log_dir?)")]
    Gone { path: PathBuf },
}

/// A report file that was published: its path, and what identifies it. The file stays open
/// while this lives, so its inode number cannot be reused by another file meanwhile.
#[derive(Debug)]
pub(super) struct Published {
    pub(super) path: PathBuf,
    dir: File,
    name: CString,
    identity: (u64, u64),
    _file: File,
}

impl Published {
    /// Whether the final name still holds the file gmr wrote.
    pub(super) fn still_there(&self) -> bool {
        sys::identity_at(self.dir.as_fd(), &self.name).is_ok_and(|id| id == self.identity)
    }
}

/// How the file gets its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    /// An unnamed `O_TMPFILE` linked from its descriptor; where the filesystem has none,
    /// [`Method::Named`].
    Unnamed,
    /// A temporary name that cannot be guessed, linked, and checked to be the same file.
    // Chosen directly only by the tests; otherwise the fallback of `Unnamed`.
    #[cfg_attr(not(test), allow(dead_code))]
    Named,
}

/// Writes `contents` to `dir/name` atomically, mode 0600, never replacing or following
/// anything at `name` (see the module docs).
pub(super) fn write_report_file(
    dir: &Path,
    name: &str,
    contents: &[u8],
) -> Result<Published, FileError> {
    write_report_file_with(dir, name, contents, Method::Unnamed)
}

/// [`write_report_file`] with the publishing method chosen (the tests use both).
pub(super) fn write_report_file_with(
    dir: &Path,
    name: &str,
    contents: &[u8],
    method: Method,
) -> Result<Published, FileError> {
    let not_a_dir = |source| FileError::Directory {
        path: dir.to_owned(),
        source,
    };
    let dir_file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(not_a_dir)?;
    let meta = dir_file.metadata().map_err(not_a_dir)?;
    if let Some(reason) = loose_mode(meta.permissions().mode()) {
        return Err(FileError::LooseDirectory {
            path: dir.to_owned(),
            reason,
        });
    }
    let final_path = dir.join(name);
    let c_name = CString::new(name).map_err(|e| FileError::Create {
        path: final_path.clone(),
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
    })?;
    let unnamed = match method {
        Method::Unnamed => match sys::open_unnamed_in(dir_file.as_fd(), 0o600) {
            Ok(file) => Some(file),
            Err(e) if no_tmpfile(&e) => None,
            Err(source) => {
                return Err(FileError::Create {
                    path: final_path,
                    source,
                });
            }
        },
        Method::Named => None,
    };
    let file = match unnamed {
        Some(file) => {
            fill(&file, contents, &final_path)?;
            sys::link_fd_at(&file, dir_file.as_fd(), &c_name)
                .map_err(|source| exists_or(source, &final_path))?;
            file
        }
        None => publish_named(dir_file.as_fd(), &c_name, name, contents, &final_path)?,
    };
    let file_meta = file.metadata().map_err(|source| FileError::Write {
        path: final_path.clone(),
        source,
    })?;
    Ok(Published {
        path: final_path,
        dir: dir_file,
        name: c_name,
        identity: (file_meta.dev(), file_meta.ino()),
        _file: file,
    })
}

/// Whether `error` says the filesystem (or kernel) has no `O_TMPFILE`.
fn no_tmpfile(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::Unsupported
        || matches!(
            error.raw_os_error(),
            Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL | libc::ENOSYS)
        )
}

/// `EEXIST` as [`FileError::Exists`], anything else as a write error.
fn exists_or(source: io::Error, path: &Path) -> FileError {
    if source.kind() == io::ErrorKind::AlreadyExists {
        FileError::Exists {
            path: path.to_owned(),
        }
    } else {
        FileError::Write {
            path: path.to_owned(),
            source,
        }
    }
}

/// Writes and syncs `contents`, with the mode exactly 0600 (the umask may have removed bits,
/// never added).
fn fill(mut file: &File, contents: &[u8], path: &Path) -> Result<(), FileError> {
    let write_error = |source| FileError::Write {
        path: path.to_owned(),
        source,
    };
    file.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(write_error)?;
    file.write_all(contents).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}

/// The fallback without `O_TMPFILE`: a temporary name nobody can guess, created exclusively
/// without following links, written, linked (or renamed, without hard links) to the final
/// name, which is then checked to hold this very file.
fn publish_named(
    dir: BorrowedFd<'_>,
    c_name: &CString,
    name: &str,
    contents: &[u8],
    final_path: &Path,
) -> Result<File, FileError> {
    let mut attempt = 0;
    let (file, temp) = loop {
        let temp = CString::new(format!(".{name}.{:016x}.tmp", unguessable())).map_err(|e| {
            FileError::Create {
                path: final_path.to_owned(),
                source: io::Error::new(io::ErrorKind::InvalidInput, e),
            }
        })?;
        match sys::create_new_in(dir, &temp, 0o600) {
            Ok(file) => break (file, temp),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 3 => attempt += 1,
            Err(source) => {
                return Err(FileError::Create {
                    path: final_path.to_owned(),
                    source,
                });
            }
        }
    };
    let result = fill(&file, contents, final_path).and_then(|()| {
        match sys::link_name_at(dir, &temp, c_name) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(FileError::Exists {
                path: final_path.to_owned(),
            }),
            Err(_) => {
                // No hard links on this filesystem: rename, if the name is free. The check
                // below tells whether the name then holds this file.
                if sys::identity_at(dir, c_name).is_ok() {
                    return Err(FileError::Exists {
                        path: final_path.to_owned(),
                    });
                }
                sys::rename_at(dir, &temp, c_name).map_err(|source| FileError::Write {
                    path: final_path.to_owned(),
                    source,
                })
            }
        }
    });
    // The temporary name goes in every case (it may already be gone after a rename).
    let _ = sys::unlink_at(dir, &temp);
    result?;
    let ours = file.metadata().map_err(|source| FileError::Write {
        path: final_path.to_owned(),
        source,
    })?;
    match sys::identity_at(dir, c_name) {
        Ok(id) if id == (ours.dev(), ours.ino()) => Ok(file),
        _ => Err(FileError::Replaced {
            path: final_path.to_owned(),
        }),
    }
}

/// 64 bits nobody outside the process can predict: std's per-process random hash keys, over a
/// counter and the time.
fn unguessable() -> u64 {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

/// How old another process's report must be before this process may remove it for
/// `max_reports`: replicas that answer one touch of a shared trigger file at the same moment
/// must not delete each other's fresh reports.
const OTHERS_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the oldest report files of `service` in `dir` beyond `max_reports`. Files of other
/// services, temporary files and anything that is not a regular file are left alone; so are
/// the report just written (`keep`), whatever the modification times of the others (a clock
/// that jumped, a planted file dated in the future), and reports of other processes (other
/// host or pid) younger than [`OTHERS_GRACE`]. Oldest is by modification time, then by name.
fn enforce_retention(
    dir: &Path,
    header: &ReportHeader,
    service: &str,
    max_reports: usize,
    keep: &str,
) {
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
    let excess = reports.len() - max_reports;
    reports.retain(|(_, name)| name != keep);
    reports.sort();
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
        let path = write_report_file(dir.path(), "a.txt", b"hello")
            .expect("written")
            .path;
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
    fn a_symlink_at_a_former_temporary_name_is_never_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").expect("victim");
        std::os::unix::fs::symlink(&victim, dir.path().join(".t.txt.tmp")).expect("symlink");
        for (method, name) in [(Method::Unnamed, "t.txt"), (Method::Named, "u.txt")] {
            let published =
                write_report_file_with(dir.path(), name, b"report", method).expect("written");
            assert_eq!(fs::read(&published.path).expect("read"), b"report");
        }
        assert_eq!(fs::read(&victim).expect("victim"), b"precious");
    }

    #[test]
    fn the_named_fallback_publishes_the_file_it_wrote() {
        let dir = tempfile::tempdir().expect("tempdir");
        let published =
            write_report_file_with(dir.path(), "n.txt", b"named", Method::Named).expect("written");
        assert_eq!(fs::read(&published.path).expect("read"), b"named");
        let mode = fs::metadata(&published.path)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert!(published.still_there());
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("n.txt")],
            "no temporary left"
        );
        // A planted symlink at the final name is refused by the fallback too.
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").expect("victim");
        std::os::unix::fs::symlink(&victim, dir.path().join("s.txt")).expect("symlink");
        let error = write_report_file_with(dir.path(), "s.txt", b"report", Method::Named)
            .expect_err("refused");
        assert!(matches!(error, FileError::Exists { .. }), "{error}");
        assert_eq!(fs::read(&victim).expect("victim"), b"precious");
    }

    #[test]
    fn a_replaced_or_removed_file_is_not_still_there() {
        let dir = tempfile::tempdir().expect("tempdir");
        let published = write_report_file(dir.path(), "r.txt", b"ours").expect("written");
        assert!(published.still_there());
        fs::remove_file(&published.path).expect("remove");
        assert!(!published.still_there(), "removed");
        fs::write(&published.path, b"theirs").expect("replace");
        assert!(!published.still_there(), "another file at the name");
    }

    #[test]
    fn a_directory_others_can_write_without_the_sticky_bit_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (mode, refused) in [
            (0o777, true),
            (0o775, true),
            (0o757, true),
            (0o1777, false),
            (0o1775, false),
            (0o755, false),
            (0o700, false),
        ] {
            fs::set_permissions(dir.path(), fs::Permissions::from_mode(mode)).expect("chmod");
            let reason = loose_directory(dir.path());
            assert_eq!(reason.is_some(), refused, "{mode:o}: {reason:?}");
            if let Some(reason) = reason {
                assert!(reason.contains(&format!("{mode:04o}")), "{reason}");
            }
            let written = write_report_file(dir.path(), &format!("m{mode:o}.txt"), b"r");
            match written {
                Err(FileError::LooseDirectory { reason, .. }) => {
                    assert!(refused, "{mode:o}: {reason}");
                    assert!(reason.contains(&format!("{mode:04o}")), "{reason}");
                }
                Ok(_) => assert!(!refused, "{mode:o} was written to"),
                Err(other) => panic!("{mode:o}: {other}"),
            }
        }
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).expect("chmod");
        assert_eq!(loose_directory(&dir.path().join("missing")), None);
    }

    #[test]
    fn retention_never_removes_the_report_just_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Reports of this very process dated in the future (a clock that jumped back, or
        // files planted to push the new report out).
        let future = std::time::SystemTime::now() + std::time::Duration::from_secs(86_400);
        for i in 0..3u64 {
            let path = dir.path().join(format!(
                "svc_gurumeditation_2099_web-1.example_4242_{i}.txt"
            ));
            fs::write(&path, b"old").expect("write");
            fs::File::options()
                .write(true)
                .open(&path)
                .expect("open")
                .set_modified(future + std::time::Duration::from_secs(i))
                .expect("mtime");
        }
        let sink = LogDirSink::new(dir.path(), "svc", 2);
        let rendered = std::sync::Arc::new(crate::report::RenderedReport::render(
            &crate::report::Report::new(header(), Vec::new()),
            OutputFormat::Text,
        ));
        let name = "svc_gurumeditation_20261126T031415_web-1.example_4242_9.txt";
        let delivery = sink
            .deliver(&OutgoingReport::new(&rendered, name))
            .expect("delivered");
        let Delivery::File(path) = delivery else {
            panic!("{delivery:?}")
        };
        assert!(path.exists(), "the new report was removed by retention");
        let kept = fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(kept, 2, "max_reports still holds");
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
        enforce_retention(dir.path(), &header(), "svc", 2, "none");
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
        enforce_retention(dir.path(), &header(), "svc", 1, "none");
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
