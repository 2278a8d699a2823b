//! The file trigger: a change of `file_event_handler` asks for a report.
//!
//! The file is polled with `stat` every `file_event_handler_interval` on a thread of its own
//! (`gmr-file-trigger`: a `stat` that hangs on a dead network mount stalls only this trigger,
//! never the reporter or the other triggers), not watched with inotify: `stat` works on network filesystems shared by replicas behind a
//! load balancer, where inotify sees no change made by another host. A change is any
//! difference in device, inode, size, modification or status-change time, so `touch`, an
//! append, and a replacement by rename all count; several changes within one interval give
//! one report.
//!
//! oslo.reports refused to start when the file was missing and silently stopped watching when
//! it was deleted. Here a missing file is created at install (or install fails saying why), a
//! deleted file is noted once in the log, and its re-creation (a `touch` after log rotation)
//! counts as a change. A change made before install never fires.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::report::Trigger;
use crate::reporter::ReportHandle;

/// What identifies one state of the trigger file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Fingerprint {
    fn of(path: &Path) -> io::Result<Self> {
        let m = fs::metadata(path)?;
        Ok(Fingerprint {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// Why the trigger file cannot be watched.
#[derive(Debug)]
pub(crate) enum FileWatchError {
    /// The file is missing and cannot be created, or cannot be examined.
    Io(io::Error),
    /// What is at the path is not a regular file (or is a symbolic link to nothing); why.
    Refused(String),
}

impl std::fmt::Display for FileWatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileWatchError::Io(error) => error.fmt(f),
            FileWatchError::Refused(why) => f.write_str(why),
        }
    }
}

/// What a file type is, for messages: `a FIFO`, `a directory`, `a device`.
fn kind_of(file_type: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// The refusal for `path`, which is `kind`.
fn not_regular(kind: &str) -> FileWatchError {
    FileWatchError::Refused(format!(
        "it is {kind}, not a regular file; point `file_event_handler` at a regular file, or at a free name in a directory where gmr may create one"
    ))
}

/// The polling state of the trigger file.
#[derive(Debug)]
pub(crate) struct FileWatch {
    path: PathBuf,
    interval: Duration,
    last: Option<Fingerprint>,
    next_poll: Instant,
}

impl FileWatch {
    /// Starts watching `path`, creating it (empty) if it is missing. The state at this moment is
    /// the baseline: only later changes fire.
    ///
    /// The path must be a regular file, or a symbolic link to one (polled through the link).
    /// A missing file is created with `O_CREAT | O_EXCL | O_NOFOLLOW`, so nothing is ever created
    /// through a symbolic link: a dangling link (planted to make gmr create a file elsewhere) is
    /// refused.
    ///
    /// # Errors
    ///
    /// [`FileWatchError::Refused`] for a FIFO, a directory, a device, a socket or a dangling
    /// symbolic link; [`FileWatchError::Io`] if the file is missing and cannot be created, or
    /// cannot be examined.
    pub(crate) fn new(path: &Path, interval: Duration) -> Result<Self, FileWatchError> {
        check_or_create(path)?;
        let last = Fingerprint::of(path).map_err(FileWatchError::Io)?;
        Ok(FileWatch {
            path: path.to_owned(),
            interval,
            last: Some(last),
            next_poll: Instant::now() + interval,
        })
    }

    /// When the next poll is due.
    pub(crate) fn next_poll(&self) -> Instant {
        self.next_poll
    }

    /// Examines the file once; `true` if it changed since the last poll.
    pub(crate) fn poll(&mut self) -> bool {
        self.next_poll = Instant::now() + self.interval;
        match Fingerprint::of(&self.path) {
            Ok(now) => {
                let changed = self.last != Some(now);
                if self.last.is_none() {
                    tracing::info!(path = %self.path.display(), "gmr trigger file is back");
                }
                self.last = Some(now);
                changed
            }
            Err(error) => {
                if self.last.is_some() {
                    tracing::warn!(
                        path = %self.path.display(),
                        %error,
                        "gmr trigger file is gone; touching it again will trigger a report"
                    );
                }
                self.last = None;
                false
            }
        }
    }
}

/// Checks that `path` is a regular file (or a link to one), creating it if nothing is there.
fn check_or_create(path: &Path) -> Result<(), FileWatchError> {
    // Twice at most: a name that appears between the check and the creation is checked again.
    for _ in 0..2 {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return match fs::metadata(path) {
                    Ok(target) if target.is_file() => Ok(()),
                    Ok(target) => Err(not_regular(&format!(
                        "a symbolic link to {}",
                        kind_of(target.file_type())
                    ))),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => {
                        Err(FileWatchError::Refused(format!(
                            "it is a symbolic link to {}, which does not exist; gmr never creates a file through a symbolic link: remove the link, or point `file_event_handler` at a regular file",
                            fs::read_link(path)
                                .map_or_else(|_| "?".to_owned(), |t| t.display().to_string())
                        )))
                    }
                    Err(error) => Err(FileWatchError::Io(error)),
                };
            }
            Ok(meta) if meta.is_file() => return Ok(()),
            Ok(meta) => return Err(not_regular(kind_of(meta.file_type()))),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                match OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(path)
                {
                    Ok(_) => {
                        tracing::info!(path = %path.display(), "gmr created the missing trigger file");
                        return Ok(());
                    }
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
                    Err(error) => return Err(FileWatchError::Io(error)),
                }
            }
            Err(error) => return Err(FileWatchError::Io(error)),
        }
    }
    Err(FileWatchError::Refused(
        "the name keeps changing while gmr checks it; make it a regular file".to_owned(),
    ))
}

/// The running file trigger: a thread polling a [`FileWatch`] and asking for reports.
pub(crate) struct FileTrigger {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl FileTrigger {
    /// Starts polling `watch` on the thread `gmr-file-trigger`.
    ///
    /// # Errors
    ///
    /// The I/O error of starting the thread.
    pub(crate) fn start(mut watch: FileWatch, reports: ReportHandle) -> io::Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread_stop = Arc::clone(&stop);
        let thread = crate::threads::spawn("gmr-file-trigger", move || {
            let (stopped, wake) = &*thread_stop;
            loop {
                let mut stopped_now = stopped.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if *stopped_now {
                        return;
                    }
                    let left = watch.next_poll().saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    stopped_now = wake
                        .wait_timeout(stopped_now, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                drop(stopped_now);
                if watch.poll() {
                    tracing::debug!(path = %watch.path.display(), "gmr trigger file changed");
                    if !reports.request(Trigger::File) {
                        return;
                    }
                }
            }
        })?;
        Ok(FileTrigger {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops polling and joins the thread (at once, unless a `stat` is hanging: then the
    /// thread is left to end by itself).
    pub(crate) fn stop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(1);
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                tracing::warn!("gmr file trigger is stuck in stat(); leaving it behind");
            }
        }
    }
}

impl Drop for FileTrigger {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Changes size and mtime, so the change is visible even on coarse-timestamp filesystems.
    fn touch_later(path: &Path) {
        let mut f = OpenOptions::new().append(true).open(path).expect("open");
        io::Write::write_all(&mut f, b"x").expect("append");
    }

    #[test]
    fn creates_missing_file_and_fires_only_on_later_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("trigger");
        let mut watch = FileWatch::new(&path, Duration::from_millis(10)).expect("watch");
        assert!(path.exists());
        assert!(!watch.poll(), "no change yet");
        touch_later(&path);
        assert!(watch.poll(), "append is a change");
        assert!(!watch.poll(), "one change fires once");
    }

    #[test]
    fn a_change_before_install_does_not_fire() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("trigger");
        fs::write(&path, b"old").expect("write");
        let mut watch = FileWatch::new(&path, Duration::from_millis(10)).expect("watch");
        assert!(!watch.poll());
    }

    #[test]
    fn deletion_then_recreation_fires() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("trigger");
        let mut watch = FileWatch::new(&path, Duration::from_millis(10)).expect("watch");
        fs::remove_file(&path).expect("remove");
        assert!(!watch.poll(), "deletion does not fire");
        assert!(!watch.poll());
        fs::write(&path, b"").expect("recreate");
        assert!(watch.poll(), "re-creation fires");
        touch_later(&path);
        assert!(watch.poll(), "later touches keep working");
    }

    #[test]
    fn a_dangling_symlink_is_refused_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("planted-target");
        let path = dir.path().join("trigger");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        let error = FileWatch::new(&path, Duration::from_secs(1)).expect_err("refused");
        assert!(matches!(error, FileWatchError::Refused(_)), "{error:?}");
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert!(!target.exists(), "the link's target was created");
    }

    #[test]
    fn a_symlink_to_a_regular_file_is_watched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("real-trigger");
        fs::write(&target, b"").expect("target");
        let path = dir.path().join("trigger");
        std::os::unix::fs::symlink(&target, &path).expect("symlink");
        let mut watch = FileWatch::new(&path, Duration::from_millis(10)).expect("watch");
        touch_later(&target);
        assert!(watch.poll());
    }

    #[test]
    fn only_a_regular_file_can_be_the_trigger() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("run mkfifo");
        assert!(status.success());
        let subdir = dir.path().join("subdir");
        fs::create_dir(&subdir).expect("dir");
        for (path, kind) in [
            (fifo.as_path(), "FIFO"),
            (subdir.as_path(), "directory"),
            (Path::new("/dev/null"), "device"),
        ] {
            let error = FileWatch::new(path, Duration::from_secs(1)).expect_err("refused");
            assert!(
                matches!(error, FileWatchError::Refused(_)),
                "{}: {error:?}",
                path.display()
            );
            let message = error.to_string();
            assert!(message.contains(kind), "{}: {message}", path.display());
            assert!(message.contains("regular file"), "{message}");
        }
    }

    #[test]
    fn uncreatable_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no-such-dir").join("trigger");
        assert!(FileWatch::new(&path, Duration::from_secs(1)).is_err());
    }
}
